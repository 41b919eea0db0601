//! The crate's one error type.

use std::any::Any;
use std::io;

/// Everything that can go wrong in bobbin for a reason the caller controls.
///
/// Each variant says what happened and, where the cause lies outside the program (the
/// kernel refusing a mapping), what to look at.
///
/// # Examples
/// ```
/// use bobbin::coroutine::Builder;
/// use bobbin::{Coroutine, Error};
///
/// #[allow(unconditional_recursion)] // until the guard page stops it
/// fn deep(n: u64) -> u64 {
///     let frame = std::hint::black_box([n; 128]);
///     deep(n + 1) + frame[0]
/// }
/// let mut co: Coroutine<(), (), u64> = Builder::new().stack_size(64 * 1024).spawn(|_, ()| deep(0)).unwrap();
/// let err = co.try_resume(()).unwrap_err();
/// assert!(matches!(err, Error::StackOverflow { stack_size: 65536 }));
/// assert_eq!(err.to_string(), "coroutine overflowed its stack of 65536 bytes");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The top of a stack handed to [`Context::init`](crate::context::Context::init) is
    /// not 16-byte aligned, as the System V ABI requires.
    #[error("stack top {top:#x} is not 16-byte aligned")]
    UnalignedStack {
        /// Address one past the last word of the stack.
        top: usize,
    },

    /// A stack size of zero, one too large for the address space, or one too small for
    /// what has to be placed on it.
    #[error("invalid stack size of {size} bytes: {reason}")]
    InvalidStackSize {
        /// The size that was asked for, in bytes.
        size: usize,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The initial frame (spilled arguments and the bootstrap chain) does not fit in the
    /// stack given to [`Context::init`](crate::context::Context::init).
    #[error("the initial frame needs {needed} bytes but the stack holds only {available}")]
    StackTooSmall {
        /// Bytes the initial frame needs.
        needed: usize,
        /// Bytes the stack holds.
        available: usize,
    },

    /// The kernel refused to map or protect a stack.
    #[error("could not allocate a stack of {size} bytes: {source}; {hint}")]
    StackAllocation {
        /// The requested usable size, in bytes.
        size: usize,
        /// The operating-system error.
        #[source]
        source: io::Error,
        /// What to look at.
        hint: &'static str,
    },

    /// The coroutine ran past the end of its stack and hit the guard region. It is
    /// finished; values that were alive on its stack have been leaked, not dropped.
    #[error("coroutine overflowed its stack of {stack_size} bytes")]
    StackOverflow {
        /// Usable size of the overflowed stack, in bytes.
        stack_size: usize,
    },

    /// The coroutine panicked; the payload is the value it panicked with.
    #[error("coroutine panicked: {}", panic_message(.0.as_ref()))]
    Panicked(Box<dyn Any + Send + 'static>),

    /// The coroutine has already finished (returned, panicked or overflowed).
    #[error("coroutine has already finished")]
    Finished,

    /// The coroutine is running: it was resumed from inside itself, directly or through a
    /// chain of coroutines it resumed.
    #[error("coroutine is already running: it was resumed from inside itself")]
    ResumedFromInside,

    /// A runtime or scheduler was configured with zero worker threads.
    #[error("a runtime needs at least one worker thread")]
    NoWorkers,

    /// The operating system refused to start a thread.
    #[error("could not start a worker thread: {0}")]
    ThreadSpawn(#[source] io::Error),

    /// A signal-related system call failed.
    #[error("signal setup failed: {0}")]
    Signal(#[source] io::Error),
}

/// The message of a panic payload, when it is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}
