//! Synchronisation that parks green threads instead of blocking their OS thread: channels
//! (one file each per part under `channel/`), and next to them, [`Mutex`], [`RwLock`] and [`Condvar`],
//! shaped like their `std::sync` namesakes (poisoning included), [`Barrier`], a
//! counting [`Semaphore`], [`OnceLock`] and [`LazyLock`] for a value set once, and
//! [`oneshot`] channels for one message. All of them work between
//! green threads of any scheduler or worker and plain OS threads.
//!
//! [`channel`] makes an unbounded channel and [`bounded`] one that holds at most `cap`
//! messages (`bounded(0)` is a rendezvous: a send waits for a receiver to take its
//! message); all are multi-producer, multi-consumer and FIFO, and both ends can be cloned
//! and sent to other threads. [`Select`] and the [`select!`](crate::select!) macro wait on
//! several channel operations at once and complete exactly one. The names and error types
//! follow `std::sync::mpsc` and crossbeam-channel. Outside a scheduler, waiting calls block
//! the OS thread.
//!
//! ```
//! use bobbin::sync::channel;
//!
//! let sum = bobbin::run(|| {
//!     let (tx, rx) = channel();
//!     for i in 0..4u32 {
//!         let tx = tx.clone();
//!         bobbin::spawn(move || tx.send(i).unwrap());
//!     }
//!     drop(tx);
//!     rx.iter().sum::<u32>()
//! });
//! assert_eq!(sum, 6);
//! ```

mod barrier;
mod channel;
mod condvar;
mod mutex;
mod once;
pub mod oneshot;
mod rwlock;

pub use barrier::{Barrier, BarrierWaitResult, Semaphore, SemaphorePermit};
pub use channel::{
    bounded, channel, IntoIter, Iter, ReadyTimeoutError, Receiver, RecvError, RecvTimeoutError, Select,
    SelectTimeoutError, SelectedOperation, SendError, SendTimeoutError, Sender, TryIter, TryReadyError, TryRecvError,
    TrySelectError, TrySendError,
};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use once::{LazyLock, OnceLock};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
