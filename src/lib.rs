//! Stackful coroutines, generators and green threads for x86-64 and aarch64 Linux.
//!
//! A coroutine is an ordinary Rust closure running on a machine stack of its own: it can
//! suspend from any depth of ordinary (non-`async`) calls and be resumed later. Every stack
//! is mmap'd with a guard page below it, so running off its end is reported as an error
//! instead of corrupting memory.
//!
//! # A guided tour
//!
//! ## Generators
//!
//! A [`Generator`] turns a loop that yields into an [`Iterator`]. The yielding code can be
//! a plain recursive function: the generator's stack holds its frames.
//!
//! ```
//! use bobbin::{Generator, Yielder};
//!
//! fn walk(n: u32, y: &Yielder<(), u32>) {
//!     if n > 0 {
//!         walk(n - 1, y);
//!         y.suspend(n);
//!     }
//! }
//! let v: Vec<u32> = Generator::new(|y| walk(5, y)).filter(|n| n % 2 == 1).collect();
//! assert_eq!(v, [1, 3, 5]);
//! ```
//!
//! ## Coroutines
//!
//! A [`Coroutine`] passes values both ways: `resume(input)` runs it until it calls
//! `suspend(value)` (which returns the next input) or returns. Panics come out of
//! `resume`; a stack overflow comes out of `try_resume` as [`Error::StackOverflow`].
//!
//! ```
//! use bobbin::{Coroutine, CoroutineResult};
//!
//! let mut running_total = Coroutine::new(|y, mut x: u64| {
//!     let mut sum = 0;
//!     while x != 0 {
//!         sum += x;
//!         x = y.suspend(sum);
//!     }
//!     sum
//! });
//! assert_eq!(running_total.resume(3), CoroutineResult::Yield(3));
//! assert_eq!(running_total.resume(4), CoroutineResult::Yield(7));
//! assert_eq!(running_total.resume(0), CoroutineResult::Return(7));
//! ```
//!
//! ## Green threads on one thread
//!
//! [`run`] turns the calling thread into a scheduler; [`spawn`], [`yield_now`], [`sleep`]
//! and [`JoinHandle`] mirror `std::thread`, and [`sync`] has channels that park the green
//! thread instead of blocking the OS thread. Every blocking call also works outside a
//! scheduler, where it blocks the OS thread.
//!
//! ```
//! let squares = bobbin::run(|| {
//!     let (tx, rx) = bobbin::sync::bounded(4);
//!     let producer = bobbin::spawn(move || (1..=5u32).for_each(|i| tx.send(i * i).unwrap()));
//!     let got: Vec<u32> = rx.iter().collect();
//!     producer.join().unwrap();
//!     got
//! });
//! assert_eq!(squares, [1, 4, 9, 16, 25]);
//! ```
//!
//! ## The multi-threaded runtime
//!
//! A [`Runtime`] runs green threads on several worker threads that steal work from each
//! other. Its tasks must be `Send`; a green thread that has started stays on its worker
//! (see [`runtime`] for why, and for the `unsafe` opt-out).
//!
//! ```
//! fn fib(n: u64) -> u64 {
//!     if n < 15 {
//!         return if n < 2 { n } else { fib(n - 1) + fib(n - 2) };
//!     }
//!     let left = bobbin::runtime::spawn(move || fib(n - 1));
//!     fib(n - 2) + left.join().unwrap()
//! }
//! let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
//! assert_eq!(rt.block_on(|| fib(20)), 6765);
//! ```
//!
//! ## The low-level layer
//!
//! [`context`] starts any `extern "C"` function on a stack with its arguments placed as
//! the System V ABI says (spilled ones included), switches with [`context::Context::swap`]
//! and reads the return values when the function returns into the backstop. The stack may
//! be any 16-byte-aligned `&mut [u64]`; [`stack`] provides guard-paged stacks and their
//! pools.
//!
//! ```
//! use bobbin::context::{Context, ContextHandle, Val};
//! use bobbin::stack::Stack;
//!
//! extern "C" fn area(w: f64, h: f64, scale: u32) -> f64 {
//!     w * h * scale as f64
//! }
//! let mut stack = Stack::new(16 * 1024).unwrap();
//! let mut parent = ContextHandle::new();
//! let args = [Val::F64(1.5), Val::F64(4.0), Val::U32(2)];
//! let mut child = ContextHandle::create_and_init(stack.words_mut(), area as *const () as usize, &args).unwrap();
//! // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
//! unsafe { Context::swap(&mut parent, &mut child) };
//! assert_eq!(child.get_untyped_retval().as_f64(), 12.0);
//! ```
//!
//! See `RELIABILITY.md` for what is guaranteed and how it is tested, and the README for
//! measured performance against other libraries.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

mod arch;
pub mod context;
pub mod coroutine;
mod engine;
mod error;
mod generator;
pub mod io;
pub mod net;
mod park;
pub mod runtime;
pub mod sched;
pub mod stack;
pub mod sync;
mod trap;

pub use coroutine::{Coroutine, CoroutineResult, Yielder};
pub use error::Error;
pub use generator::{Generator, ScopedGenerator};
pub use runtime::Runtime;
pub use sched::stall::{watch_stalls, Stall};
pub use sched::{
    current, run, scope, sleep, spawn, spawn_blocking, try_current, yield_now, Builder, GreenLocal, GreenThread,
    GreenThreadId, JoinError, JoinHandle, Scope, ScopedJoinHandle,
};

/// The README's examples, compiled and run as doc-tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
