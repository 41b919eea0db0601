//! [`Builder`]: a green thread with a name or a stack size of its own, shaped like
//! [`std::thread::Builder`].

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::join::task_parts;
use super::record::TaskRecord;
use super::thread::{install_panic_hook, Built, GreenThread};
use super::{scheduler, JoinHandle};

/// Configures a green thread before it is spawned: its name (in panic messages, the
/// deadlock report, [`GreenThread::name`] and [`JoinError`](crate::JoinError)'s message)
/// and its stack size.
///
/// [`spawn`](Builder::spawn) starts it on the scheduler running the caller, as
/// [`bobbin::spawn`](crate::spawn) does: inside [`run`](crate::run) or on a runtime worker
/// (there it stays on that worker's scheduler, like every green thread not started through
/// the runtime's queues). For a green thread any worker of a runtime may take, pass the
/// builder to [`Runtime::spawn_with`](crate::Runtime::spawn_with) or
/// [`runtime::spawn_with`](crate::runtime::spawn_with) (`Send` closures, as their `spawn`).
///
/// # Examples
/// ```
/// let name = bobbin::run(|| {
///     let h = bobbin::Builder::new()
///         .name("deep".into())
///         .stack_size(1024 * 1024)
///         .spawn(|| bobbin::current().name().unwrap().to_owned())
///         .unwrap();
///     h.join().unwrap()
/// });
/// assert_eq!(name, "deep");
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder for a green thread with no name and its scheduler's stack size.
    ///
    /// # Examples
    /// ```
    /// let v = bobbin::run(|| bobbin::Builder::new().spawn(|| 7).unwrap().join().unwrap());
    /// assert_eq!(v, 7);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the green thread. Names need not be unique; the id tells green threads apart.
    /// The name appears in its panic messages (see [the module docs](crate::sched)), in its
    /// [`JoinError`](crate::JoinError)s and in the deadlock report.
    ///
    /// # Examples
    /// ```
    /// bobbin::run(|| {
    ///     let h = bobbin::Builder::new().name("reader".into()).spawn(|| ()).unwrap();
    ///     assert_eq!(h.thread().name(), Some("reader"));
    /// });
    /// ```
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// The usable size of the green thread's stack in bytes (rounded up to whole pages),
    /// instead of its scheduler's (128 KiB for [`run`](crate::run), the runtime builder's
    /// for a runtime). Stacks of each size come from a pool of their own.
    ///
    /// # Examples
    /// A recursion that needs about 512 KiB of stack:
    /// ```
    /// fn depth(n: u32) -> u32 {
    ///     let frame = std::hint::black_box([0u8; 1024]);
    ///     if n == 0 { u32::from(frame[0]) } else { depth(n - 1) + 1 }
    /// }
    /// let d = bobbin::run(|| {
    ///     bobbin::Builder::new().stack_size(4 << 20).spawn(|| depth(500)).unwrap().join().unwrap()
    /// });
    /// assert_eq!(d, 500);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the green thread on the current scheduler (see [`spawn`](crate::spawn)).
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] for a stack size of zero or one too large to map;
    /// [`io::ErrorKind::Other`] outside a scheduler. If no stack can be allocated when the
    /// green thread is due to start, its join says so, as for `spawn`.
    ///
    /// # Examples
    /// ```
    /// assert!(bobbin::Builder::new().spawn(|| ()).is_err()); // no scheduler here
    /// bobbin::run(|| {
    ///     assert!(bobbin::Builder::new().stack_size(0).spawn(|| ()).is_err());
    /// });
    /// ```
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if !scheduler::in_scheduler() {
            return Err(io::Error::other(
                "bobbin::Builder::spawn called outside a scheduler: start one with bobbin::run",
            ));
        }
        let record = self.into_record()?;
        let (body, abort, handle) = task_parts(f, record);
        scheduler::spawn_local(Box::new(body), abort);
        Ok(handle)
    }

    /// The record of a green thread built with these settings (checked), for `spawn` here
    /// and the runtime's `spawn_with`.
    pub(crate) fn into_record(self) -> io::Result<TaskRecord> {
        let stack_size = match self.stack_size {
            None => None,
            Some(bytes) => {
                crate::stack::checked_stack_size(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                NonZeroUsize::new(bytes)
            }
        };
        if self.name.is_some() {
            install_panic_hook();
        }
        let built =
            (self.name.is_some() || stack_size.is_some()).then(|| Arc::new(Built { name: self.name, stack_size }));
        Ok(TaskRecord::new(GreenThread::new(built)))
    }
}
