//! Stackful coroutines, generators and green threads for x86-64 Linux.
//!
//! A coroutine is an ordinary Rust closure running on a machine stack of its own: it can
//! suspend from any depth of ordinary (non-`async`) calls and be resumed later.
//!
//! Layers, from the bottom:
//! - [`context`]: saved machine contexts, `swap`, and a System V call frame builder.
//! - [`stack`]: mmap'd, guard-paged, pooled stacks.
//! - [`Coroutine`] and [`Generator`]: the safe layer.
//! - [`run`], [`spawn`], [`yield_now`], [`sleep`], [`JoinHandle`] and [`sync`]: green
//!   threads on a per-thread scheduler.
//! - [`Runtime`]: green threads on several worker threads with work stealing.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod arch;
pub mod context;
pub mod coroutine;
mod error;
mod generator;
pub mod runtime;
mod sched;
pub mod stack;
pub mod sync;
mod trap;

pub use coroutine::{Coroutine, CoroutineResult, Yielder};
pub use error::Error;
pub use generator::Generator;
pub use runtime::Runtime;
pub use sched::{run, sleep, spawn, yield_now, JoinError, JoinHandle};

/// The README's examples, compiled and run as doc-tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
