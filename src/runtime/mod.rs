//! The multi-threaded runtime: green threads on N worker threads that balance work by
//! stealing from each other.
//!
//! Each worker runs the per-thread scheduler of [`run`](crate::run) and owns a
//! crossbeam-deque `Worker` of jobs; tasks spawned from outside the workers go to a shared
//! `Injector`. A worker with nothing ready takes a job from its own deque (newest first, so
//! spawn-then-join recursion runs depth first and keeps few stacks alive), then from the
//! injector, then steals a batch of the oldest jobs of a random other worker, and only then
//! sleeps; queuing a job wakes one sleeping worker.
//!
//! # Thread-locals and where a green thread runs
//!
//! Compiled code may compute the address of a thread-local once and keep it across a
//! call. A green thread that suspended on one OS thread and continued on another could then
//! read or write the first thread's thread-locals. So by default a green thread that has
//! *not started* may be taken by any worker, and once it has started it stays on that
//! worker for the rest of its life: wake-ups from any thread (a channel send, a finished
//! join, a timer) put it back in its own worker's run queue and wake that worker.
//! [`Builder::allow_migration`] lifts the rule for runtimes whose green threads keep no
//! thread-local state across suspension points.
//!
//! A `thread_local!` is per OS thread, so every green thread of a worker shares the
//! worker's value, and a green thread that migrated sees the new worker's. For state that
//! belongs to one green thread, use [`green_local!`](crate::green_local): its value is per
//! green thread, follows the green thread to whichever worker runs it, and is dropped when
//! the green thread ends.
//!
//! # Shutdown
//!
//! Dropping a [`Runtime`] stops its workers and joins them. Green threads still alive then
//! (parked, sleeping, or ready but not running) are unwound on their worker: every value on
//! their stacks is dropped, and their joiners get a [`JoinError`](crate::JoinError) saying
//! the runtime shut down. Tasks that had not started are dropped and their joiners told the
//! same. If the last reference to a runtime is dropped by one of its own green threads,
//! the drop cannot wait for the workers: it asks them to stop and returns at once. A green
//! thread that never gives control back (a busy loop without yielding) keeps
//! its worker, and so the drop, waiting.
//!
//! ```
//! use bobbin::Runtime;
//!
//! let rt = Runtime::builder().workers(2).build().unwrap();
//! let sum = rt.block_on(|| {
//!     let parts: Vec<_> = (0..8u64).map(|i| bobbin::runtime::spawn(move || (i * 1000..(i + 1) * 1000).sum::<u64>())).collect();
//!     parts.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(sum, (0..8000u64).sum());
//! ```

mod scope;
pub(crate) mod worker;

pub use scope::Scope;

use std::fmt;
use std::panic;
use std::sync::Arc;

use crate::engine::MigrationPermit;
use crate::error::Error;
use crate::sched::work::StartJob;
use crate::sched::{self, JoinHandle};
use crate::stack::DEFAULT_STACK_SIZE;
use worker::{RtJob, RtShared, WorkerPart};

/// A multi-threaded green-thread runtime. See the [module docs](self).
///
/// `Send` and `Sync`: any thread may spawn onto it through a shared reference.
///
/// # Examples
/// Several OS threads spawning onto one runtime through a shared reference:
/// ```
/// use bobbin::Runtime;
///
/// let rt = Runtime::builder().workers(2).build().unwrap();
/// let total: u64 = std::thread::scope(|s| {
///     let callers: Vec<_> = (0..4u64)
///         .map(|i| {
///             let rt = &rt;
///             s.spawn(move || rt.spawn(move || i * 100).join().unwrap())
///         })
///         .collect();
///     callers.into_iter().map(|c| c.join().unwrap()).sum()
/// });
/// assert_eq!(total, 600);
/// ```
pub struct Runtime {
    shared: Arc<RtShared>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

/// Configures and starts a [`Runtime`].
///
/// # Examples
/// ```
/// let rt = bobbin::Runtime::builder().workers(3).stack_size(64 * 1024).build().unwrap();
/// assert_eq!(rt.workers(), 3);
/// assert_eq!(rt.block_on(|| "on a worker"), "on a worker");
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    workers: Option<usize>,
    stack_size: usize,
    migration: Option<MigrationPermit>,
}

impl Runtime {
    /// A builder with defaults: one worker per available CPU, 128 KiB green-thread stacks,
    /// no migration of started green threads.
    ///
    /// # Examples
    /// ```
    /// let rt = bobbin::Runtime::builder().build().unwrap();
    /// let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// assert_eq!(rt.workers(), cpus);
    /// ```
    pub fn builder() -> Builder {
        Builder { workers: None, stack_size: DEFAULT_STACK_SIZE, migration: None }
    }

    /// A runtime with the default configuration.
    ///
    /// # Errors
    /// As [`Builder::build`].
    ///
    /// # Examples
    /// ```
    /// let rt = bobbin::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(|| 2 + 2), 4);
    /// ```
    pub fn new() -> Result<Runtime, Error> {
        Runtime::builder().build()
    }

    /// Number of worker threads.
    ///
    /// # Examples
    /// ```
    /// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
    /// assert_eq!(rt.workers(), 2);
    /// ```
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Spawns a green thread on the runtime. From one of this runtime's workers it goes on
    /// that worker's deque (where idle workers steal it); from anywhere else, on the
    /// runtime's injector.
    ///
    /// # Examples
    /// ```
    /// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
    /// let handles: Vec<_> = (0..10u32).map(|i| rt.spawn(move || i * i)).collect();
    /// let squares: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_on(&self.shared, f)
    }

    /// Spawns a green thread with a [`bobbin::Builder`](crate::Builder)'s name and stack
    /// size on the runtime, as [`spawn`](Runtime::spawn) does.
    ///
    /// # Errors
    /// [`std::io::ErrorKind::InvalidInput`] for a stack size of zero or one too large.
    ///
    /// # Examples
    /// ```
    /// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
    /// let h = rt
    ///     .spawn_with(bobbin::Builder::new().name("indexer".into()).stack_size(1 << 20), || {
    ///         bobbin::current().name().map(str::to_owned)
    ///     })
    ///     .unwrap();
    /// assert_eq!(h.thread().name(), Some("indexer"));
    /// assert_eq!(h.join().unwrap().as_deref(), Some("indexer"));
    /// ```
    pub fn spawn_with<F, T>(&self, builder: sched::Builder, f: F) -> std::io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Ok(spawn_built_on(&self.shared, builder.into_record()?, f))
    }

    /// Runs `f` as a green thread on the runtime and blocks the calling thread until it
    /// returns its value. Called from a green thread of a per-thread scheduler, parks that
    /// green thread instead.
    ///
    /// # Panics
    /// With `f`'s panic payload if `f` panics; if called from one of this runtime's own
    /// workers (the worker would wait for itself: use [`spawn`] and join instead).
    ///
    /// # Examples
    /// ```
    /// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
    /// let (thread, child) = rt.block_on(|| {
    ///     // On a worker: its green threads can fan out with `runtime::spawn`.
    ///     let thread = std::thread::current().name().map(str::to_owned);
    ///     let child = bobbin::runtime::spawn(|| 1);
    ///     (thread, child.join().unwrap())
    /// });
    /// assert!(thread.unwrap().starts_with("bobbin-worker-"));
    /// assert_eq!(child, 1);
    /// ```
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if worker::current_runtime().is_some_and(|rt| Arc::ptr_eq(&rt, &self.shared)) {
            panic!(
                "bobbin: Runtime::block_on called from one of the runtime's own green threads; \
                 spawn the work and join it instead"
            );
        }
        match self.spawn(f).join() {
            Ok(value) => value,
            Err(e) => panic::resume_unwind(e.into_panic()),
        }
    }
}

/// Spawns a green thread on the runtime whose worker is running the caller. Use it inside
/// [`Runtime::block_on`] or [`Runtime::spawn`] to fan work out across the workers.
///
/// # Panics
/// If the caller is not running on a worker of a [`Runtime`].
///
/// # Examples
/// Parallel merge sort, one green thread per half down to a cutoff:
/// ```
/// fn sort(mut v: Vec<u32>) -> Vec<u32> {
///     if v.len() <= 64 {
///         v.sort_unstable();
///         return v;
///     }
///     let right = v.split_off(v.len() / 2);
///     let right = bobbin::runtime::spawn(move || sort(right));
///     let left = sort(v);
///     let right = right.join().unwrap();
///     let mut out = Vec::with_capacity(left.len() + right.len());
///     let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
///     while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
///         out.push(if a <= b { l.next().unwrap() } else { r.next().unwrap() });
///     }
///     out.extend(l.chain(r));
///     out
/// }
/// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
/// let input: Vec<u32> = (0..10_000u32).map(|i| i.wrapping_mul(2_654_435_761) % 1000).collect();
/// let mut expected = input.clone();
/// expected.sort_unstable();
/// assert_eq!(rt.block_on(move || sort(input)), expected);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (body, abort, handle) = sched::send_task(f);
    let job = RtJob::Start(StartJob::new(body, abort));
    if worker::push_current_worker_job(job).is_err() {
        // The job is dropped unstarted; its joiner would be told so, but the caller errs.
        panic!("bobbin::runtime::spawn called outside a Runtime's green thread: use Runtime::spawn");
    }
    handle
}

/// [`spawn`] with a [`bobbin::Builder`](crate::Builder)'s name and stack size.
///
/// # Errors
/// [`std::io::ErrorKind::InvalidInput`] for a stack size of zero or one too large;
/// [`std::io::ErrorKind::Other`] if the caller is not running on a worker of a [`Runtime`].
///
/// # Examples
/// ```
/// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
/// let len = rt.block_on(|| {
///     let h = bobbin::runtime::spawn_with(bobbin::Builder::new().name("leaf".into()), || {
///         bobbin::current().name().unwrap().len()
///     });
///     h.unwrap().join().unwrap()
/// });
/// assert_eq!(len, 4);
/// ```
pub fn spawn_with<F, T>(builder: sched::Builder, f: F) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let rt = worker::current_runtime()
        .ok_or_else(|| std::io::Error::other("bobbin::runtime::spawn_with called outside a Runtime's green thread"))?;
    Ok(spawn_built_on(&rt, builder.into_record()?, f))
}

fn spawn_on<F, T>(rt: &Arc<RtShared>, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (body, abort, handle) = sched::send_task(f);
    push_job(rt, body, abort);
    handle
}

fn spawn_built_on<F, T>(rt: &Arc<RtShared>, record: sched::record::TaskRecord, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (body, abort, handle) = sched::send_task_with(f, record);
    push_job(rt, body, abort);
    handle
}

/// Queues a green thread to start: on the calling worker's deque, or the injector.
fn push_job(rt: &Arc<RtShared>, body: Option<sched::SendBody>, abort: sched::SendAbort) {
    let job = RtJob::Start(StartJob::new(body, abort));
    if let Err(job) = worker::push_worker_job(rt, job) {
        rt.inject(job);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shared.begin_shutdown();
        if worker::current_runtime().is_some_and(|rt| Arc::ptr_eq(&rt, &self.shared)) {
            // Dropped by one of its own green threads (it held the last reference): joining
            // would wait for ourselves. The workers stop on their own once this green
            // thread gives control back.
            return;
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.shared.drain_injector();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.workers.len())
            .field("stack_size", &self.shared.stack_size)
            .field("migration", &self.shared.migration.is_some())
            .finish()
    }
}

impl Builder {
    /// Number of worker threads (at least one).
    ///
    /// # Examples
    /// ```
    /// let rt = bobbin::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.workers(), 1);
    /// assert!(matches!(bobbin::Runtime::builder().workers(0).build(), Err(bobbin::Error::NoWorkers)));
    /// ```
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n);
        self
    }

    /// Usable stack size of each green thread in bytes, rounded up to whole pages.
    ///
    /// # Examples
    /// A deep recursion needs a bigger stack than the default 128 KiB:
    /// ```
    /// fn depth(n: u32) -> u32 {
    ///     let frame = std::hint::black_box([n; 256]); // 1 KiB per call
    ///     if n == 0 { 0 } else { depth(n - 1) + 1 + frame[0] - n }
    /// }
    /// let rt = bobbin::Runtime::builder().workers(1).stack_size(4 << 20).build().unwrap();
    /// assert_eq!(rt.block_on(|| depth(1000)), 1000);
    /// assert!(bobbin::Runtime::builder().stack_size(0).build().is_err());
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Lets a suspended green thread continue on another worker than the one it started on,
    /// so a busy worker's ready green threads can be stolen, not only its unstarted ones.
    ///
    /// # Safety
    /// No green thread of this runtime may keep, across a point where it can be suspended
    /// (a yield, a join, a channel operation, a sleep, anything that parks), the address of
    /// a thread-local variable or any value tied to its OS thread: a `&` into a
    /// `thread_local!`, a `MutexGuard` or other `!Send` guard, a `Rc` shared with thread
    /// state. Compiled code may keep a thread-local's address across a call without the
    /// source showing it, so in practice: do not access thread-locals (your own or those of
    /// libraries that keep per-thread state) from such green threads at all. Breaking this
    /// rule is undefined behaviour: one OS thread's thread-locals could be used from
    /// another.
    ///
    /// Values in [`green_local!`](crate::green_local)s move with their green thread, as
    /// the values on its stack do, and are under the same rule.
    ///
    /// One piece of thread state is taken care of here: std's count of a thread's panics. A
    /// green thread that parks while its OS thread is panicking (a destructor that waits
    /// during an unwinding) continues on the same worker, so that its unwinding ends on the
    /// thread whose count it raised.
    ///
    /// # Examples
    /// ```
    /// // SAFETY: the green threads below touch no thread-local state.
    /// let rt = unsafe { bobbin::Runtime::builder().workers(2).allow_migration() }.build().unwrap();
    /// let sum = rt.block_on(|| {
    ///     let parts: Vec<_> = (0..8u64)
    ///         .map(|i| {
    ///             bobbin::runtime::spawn(move || {
    ///                 bobbin::yield_now(); // may continue on the other worker
    ///                 i
    ///             })
    ///         })
    ///         .collect();
    ///     parts.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    /// });
    /// assert_eq!(sum, 28);
    /// ```
    pub unsafe fn allow_migration(mut self) -> Builder {
        self.migration = Some(MigrationPermit::granted());
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    /// [`Error::NoWorkers`] for zero workers; [`Error::InvalidStackSize`] for a zero or
    /// absurd stack size; [`Error::ThreadSpawn`] if the OS refuses a thread (the workers
    /// already started are stopped first).
    ///
    /// # Examples
    /// ```
    /// use bobbin::{Error, Runtime};
    ///
    /// let rt = Runtime::builder().workers(2).build().unwrap();
    /// assert_eq!(rt.block_on(|| 40 + 2), 42);
    /// assert!(matches!(Runtime::builder().workers(0).build(), Err(Error::NoWorkers)));
    /// ```
    pub fn build(self) -> Result<Runtime, Error> {
        let n = match self.workers {
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if n == 0 {
            return Err(Error::NoWorkers);
        }
        let stack_size = crate::stack::checked_stack_size(self.stack_size)?;
        let (shared, deques) = RtShared::new(n, stack_size, self.migration);
        let mut rt = Runtime { shared, workers: Vec::with_capacity(n) };
        for (index, deque) in deques.into_iter().enumerate() {
            let part = WorkerPart::new(index, deque, Arc::clone(&rt.shared));
            let spawned = worker_thread_builder(index).spawn(move || worker::run(part));
            match spawned {
                Ok(handle) => rt.workers.push(handle),
                // Dropping `rt` stops and joins the workers started so far.
                Err(e) => return Err(Error::ThreadSpawn(e)),
            }
        }
        Ok(rt)
    }
}

/// The thread builder for worker `index`: named, so panics and debuggers say which worker.
fn worker_thread_builder(index: usize) -> std::thread::Builder {
    std::thread::Builder::new().name(format!("bobbin-worker-{index}"))
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::Runtime;
    use crate::sched::scheduler;

    #[test]
    fn a_failed_worker_is_reported_to_every_joiner_and_later_caller() {
        let rt = Runtime::builder().workers(1).build().unwrap();
        // Parked on the only worker when it fails: its joiner must learn why.
        let parked = rt.spawn(|| crate::sleep(std::time::Duration::from_secs(3600)));
        let failed = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(|| {
                scheduler::inject_fault();
                crate::yield_now();
            })
        }));
        let payload = failed.expect_err("the worker failed under block_on");
        let message = crate::error::panic_message(payload.as_ref()).to_owned();
        assert!(message.contains("internal error") && message.contains("injected scheduler fault"), "{message}");
        let err = parked.join().expect_err("the parked green thread was unwound");
        assert!(!err.is_panic());
        assert!(err.to_string().contains("internal error"), "{err}");
        // The runtime has no worker left: later work is refused with the same reason,
        // instead of waiting forever.
        let later = catch_unwind(AssertUnwindSafe(|| rt.block_on(|| 1)));
        let payload = later.expect_err("a runtime whose worker failed runs nothing");
        assert!(crate::error::panic_message(payload.as_ref()).contains("internal error"));
    }
}
