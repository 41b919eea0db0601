//! The per-thread green-thread scheduler: [`run`], [`spawn`], [`yield_now`], [`sleep`] and
//! [`JoinHandle`], shaped like their `std::thread` namesakes.
//!
//! [`run`] turns the calling OS thread into a scheduler until the closure it is given and
//! every green thread spawned meanwhile have finished. Green threads are coroutines on
//! pooled, guard-paged stacks; they give control back by yielding, by parking (joining an
//! unfinished green thread, receiving from an empty channel, sleeping) or by returning.
//!
//! Scheduling is fair: a green thread that yields runs again only after every other ready
//! green thread has run once. Spawned green threads wait in a queue of their own and start
//! as the ready ones make room: at once while fewer than 64 green threads are ready, and
//! otherwise `1 + ready/16` after each full round of the ready queue. Short-lived green
//! threads so reuse a few hot stacks instead of cycling through one cold stack each, and
//! green threads behind many that never park still start within a number of switches
//! proportional to how many there are.
//!
//! Nothing preempts a green thread, but bobbin's own operations cannot be spun on forever:
//! every switch into a green thread gives it a budget of 128 operations, each channel
//! operation or join that does not park spends one, and the one that finds it spent yields
//! first. A green thread that computes for long without calling bobbin still holds its
//! scheduler; [`watch_stalls`](crate::watch_stalls) (or `BOBBIN_STALL_WARN_MS`) names it.
//! How the parts fit (the driver an idle scheduler sleeps in, the parking protocol, the
//! work source a runtime worker supplies) is in the repository's `ARCHITECTURE.md`.
//!
//! Blocking calls work outside a scheduler too: [`JoinHandle::join`], channel receives and
//! [`sleep`] then block the OS thread, so library code can use them anywhere.
//!
//! ```
//! let total = bobbin::run(|| {
//!     let handles: Vec<_> = (1..=10u64).map(|i| bobbin::spawn(move || {
//!         bobbin::yield_now();
//!         i * i
//!     })).collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 385);
//! ```

mod blocking;
pub(crate) mod budget;
pub(crate) mod driver;
pub(crate) mod park;
mod policy;
pub(crate) mod reactor;
mod run;
pub(crate) use run::run_worker;
pub(crate) mod scheduler;
pub(crate) mod stall;
mod timer;
pub(crate) mod work;

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler::Unparker;

pub use blocking::{spawn_blocking, IDLE_TIMEOUT, MAX_THREADS};

use crate::park::{Lock, LockGuard};

/// Runs `f` as the first green thread of a scheduler on the calling thread and returns its
/// value once `f` and every green thread spawned from it have finished.
///
/// # Panics
/// If `f` panics, with its payload (the green threads still alive are unwound first); if
/// called inside another `run` on the same thread; with a deadlock report if every green
/// thread is parked and nothing can wake them.
///
/// # Examples
/// `run` returns only when the green threads spawned meanwhile have finished too, joined
/// or not:
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// let finished = Arc::new(AtomicU32::new(0));
/// let counter = Arc::clone(&finished);
/// let value = bobbin::run(move || {
///     for _ in 0..10 {
///         let counter = Arc::clone(&counter);
///         drop(bobbin::spawn(move || {
///             bobbin::yield_now();
///             counter.fetch_add(1, Ordering::Relaxed);
///         }));
///     }
///     "main done"
/// });
/// assert_eq!(value, "main done");
/// assert_eq!(finished.load(Ordering::Relaxed), 10);
/// ```
///
/// A deadlock is reported instead of hanging:
/// ```should_panic
/// bobbin::run(|| {
///     let (_tx, rx) = bobbin::sync::channel::<()>();
///     rx.recv().unwrap(); // nobody else can ever send
/// });
/// ```
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let slot: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
    let out = Rc::clone(&slot);
    run::run_scheduler(Box::new(move || {
        let value = f();
        *out.borrow_mut() = Some(value);
    }));
    let value = slot.borrow_mut().take();
    value.expect("the main green thread finished without a value")
}

/// Spawns a green thread on the current scheduler.
///
/// The green thread starts when the scheduler next picks it (the caller keeps running
/// until it yields or parks). The scheduler starts spawned green threads at the pace the
/// running ones leave room for (see the module docs), and each runs once per round of the
/// ready queue from then on. Dropping the handle detaches the green thread. If no stack
/// can be allocated when it is due to start, its [`JoinHandle::join`] returns a
/// [`JoinError`] saying so.
///
/// # Panics
/// Outside [`run`].
///
/// # Examples
/// ```
/// let order = bobbin::run(|| {
///     let (tx, rx) = bobbin::sync::channel();
///     let tx2 = tx.clone();
///     let child = bobbin::spawn(move || {
///         tx2.send("child").unwrap();
///         6 * 7
///     });
///     // The child has not run yet: the spawner keeps going until it parks.
///     tx.send("spawner").unwrap();
///     assert_eq!(child.join().unwrap(), 42);
///     drop(tx);
///     rx.iter().collect::<Vec<_>>()
/// });
/// assert_eq!(order, ["spawner", "child"]);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let (body, abort, handle) = task_parts(f);
    scheduler::spawn_local(Box::new(body), abort);
    handle
}

/// A panic payload.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// The body of a green thread that any worker may start.
pub(crate) type SendBody = Box<dyn FnOnce() + Send>;

/// Reports a failure to the joiner of a green thread whose body never finished (its stack
/// overflowed, or its scheduler shut down before it started). It is the green thread's own
/// join state, so holding one costs a reference count, not an allocation.
pub(crate) trait Abort {
    /// Completes the join with `error`.
    fn abort(&self, error: JoinError);
}

impl<T> Abort for JoinState<T> {
    fn abort(&self, error: JoinError) {
        self.complete(Err(error));
    }
}

/// The abort hook of a green thread that only its own scheduler handles.
pub(crate) type AbortHook = Arc<dyn Abort>;

/// The abort hook of a green thread that any worker may start.
pub(crate) type SendAbort = Arc<dyn Abort + Send + Sync>;

/// A green thread's parts: the body a scheduler runs, and the handle that waits for it.
/// The body is `Send` exactly when `F` and `T` are.
fn task_parts<F, T>(f: F) -> (impl FnOnce(), Arc<JoinState<T>>, JoinHandle<T>)
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let state: Arc<JoinState<T>> = Arc::new(JoinState::new());
    let done = Arc::clone(&state);
    let aborted = Arc::clone(&state);
    (move || done.finish(panic::catch_unwind(AssertUnwindSafe(f))), aborted, JoinHandle { state })
}

/// [`task_parts`] type-erased as `Send` parts, for the multi-threaded runtime.
pub(crate) fn send_task<F, T>(f: F) -> (SendBody, SendAbort, JoinHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (body, abort, handle) = task_parts(f);
    (Box::new(body), abort, handle)
}

/// Puts the current green thread at the back of its scheduler's run queue. Outside a
/// green thread, yields the OS thread.
///
/// Called on the stack of a coroutine or generator that a green thread runs, it yields
/// that green thread; the coroutine continues when it does.
///
/// # Examples
/// Two green threads that yield after each step take turns:
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let log = bobbin::run(|| {
///     let log = Rc::new(RefCell::new(Vec::new()));
///     let handles: Vec<_> = ["a", "b"]
///         .into_iter()
///         .map(|name| {
///             let log = Rc::clone(&log);
///             bobbin::spawn(move || {
///                 for step in 0..3 {
///                     log.borrow_mut().push(format!("{name}{step}"));
///                     bobbin::yield_now();
///                 }
///             })
///         })
///         .collect();
///     handles.into_iter().for_each(|h| h.join().unwrap());
///     Rc::try_unwrap(log).unwrap().into_inner()
/// });
/// assert_eq!(log, ["a0", "b0", "a1", "b1", "a2", "b2"]);
/// ```
pub fn yield_now() {
    scheduler::yield_now();
}

/// Parks the current green thread for at least `d`. Outside a scheduler, sleeps the OS
/// thread.
///
/// Called on the stack of a coroutine or generator that a green thread runs, it parks
/// that green thread; the coroutine continues when it wakes.
///
/// # Examples
/// Sleeping parks only the green thread: the others of its scheduler go on, and sleepers
/// wake in the order of their deadlines.
/// ```
/// use std::time::Duration;
///
/// let woke = bobbin::run(|| {
///     let (tx, rx) = bobbin::sync::channel();
///     for ms in [30u64, 1, 10] {
///         let tx = tx.clone();
///         bobbin::spawn(move || {
///             bobbin::sleep(Duration::from_millis(ms));
///             tx.send(ms).unwrap();
///         });
///     }
///     drop(tx);
///     rx.iter().collect::<Vec<_>>()
/// });
/// assert_eq!(woke, [1, 10, 30]);
/// ```
pub fn sleep(d: Duration) {
    if !scheduler::on_green_thread() {
        std::thread::sleep(d);
        return;
    }
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        park::park_until("sleeping", deadline, drop);
    }
}

/// A green thread's final state.
struct JoinInner<T> {
    /// Set when the green thread ends; taken only by `join`, which consumes the handle,
    /// so while a handle exists `result.is_some()` means finished.
    result: Option<Result<T, JoinError>>,
    waiter: Option<Unparker>,
}

pub(crate) struct JoinState<T> {
    inner: Lock<JoinInner<T>>,
}

impl<T> JoinState<T> {
    pub(crate) fn new() -> Self {
        JoinState { inner: Lock::new(JoinInner { result: None, waiter: None }) }
    }

    fn lock(&self) -> LockGuard<'_, JoinInner<T>> {
        self.inner.lock()
    }

    /// Records how a green thread's body ended. An unwinding started by dropping the
    /// parked green thread (its scheduler or runtime stopped) is reported to the joiner
    /// with the reason the scheduler stopped, and then continues, so the green thread's
    /// stack unwinds.
    fn finish(&self, result: std::thread::Result<T>) {
        match result {
            Ok(value) => self.complete(Ok(value)),
            Err(payload) if crate::engine::is_forced_unwind(payload.as_ref()) => {
                self.complete(Err(JoinError::stopped(scheduler::stop_reason())));
                panic::resume_unwind(payload);
            }
            Err(payload) => self.complete(Err(JoinError::panicked(payload))),
        }
    }

    pub(crate) fn complete(&self, result: Result<T, JoinError>) {
        let waiter = {
            let mut inner = self.lock();
            inner.result = Some(result);
            inner.waiter.take()
        };
        if let Some(w) = waiter {
            w.unpark();
        }
    }
}

/// An owned permission to join a green thread (wait for it to finish and take its value).
///
/// Works from any green thread of any scheduler and from plain OS threads (there it blocks
/// the thread). Dropping it detaches the green thread.
///
/// # Examples
/// A handle is `Send` when the value is: here a plain OS thread joins a green thread of a
/// runtime.
/// ```
/// let rt = bobbin::Runtime::builder().workers(1).build().unwrap();
/// let handle = rt.spawn(|| (1..=10u32).product::<u32>());
/// let waiter = std::thread::spawn(move || handle.join().unwrap());
/// assert_eq!(waiter.join().unwrap(), 3_628_800);
/// ```
pub struct JoinHandle<T> {
    state: Arc<JoinState<T>>,
}

impl<T> JoinHandle<T> {
    /// Waits for the green thread to finish; returns its value, or a [`JoinError`] saying
    /// why there is none. Spends one unit of the cooperative budget.
    ///
    /// # Examples
    /// ```
    /// let (ok, failed) = bobbin::run(|| {
    ///     let ok = bobbin::spawn(|| "value");
    ///     let failed = bobbin::spawn(|| -> &str { panic!("no value") });
    ///     (ok.join(), failed.join())
    /// });
    /// assert_eq!(ok.unwrap(), "value");
    /// assert_eq!(failed.unwrap_err().message(), Some("no value"));
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        budget::spend();
        loop {
            let mut inner = self.state.lock();
            if let Some(result) = inner.result.take() {
                return result;
            }
            park::park("joining another green thread", move |u| {
                inner.waiter = Some(u);
                drop(inner);
            });
        }
    }

    /// Whether the green thread has finished (returned, panicked or overflowed its stack).
    ///
    /// Spends one unit of the cooperative budget, so a loop that polls it still lets the
    /// green thread it waits for run.
    ///
    /// # Examples
    /// A loop that polls without yielding still lets the green thread it waits for finish:
    /// ```
    /// let polls = bobbin::run(|| {
    ///     let h = bobbin::spawn(|| ());
    ///     let mut polls = 1u64;
    ///     while !h.is_finished() {
    ///         polls += 1;
    ///     }
    ///     h.join().unwrap();
    ///     polls
    /// });
    /// assert!(polls > 1); // not finished at the first poll: it had not run yet
    /// ```
    pub fn is_finished(&self) -> bool {
        budget::spend();
        self.state.lock().result.is_some()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("finished", &self.state.lock().result.is_some()).finish()
    }
}

/// Why [`JoinHandle::join`] has no value.
///
/// The green thread panicked (the payload is its own), overflowed its stack, or never
/// finished: its scheduler or runtime stopped first, or could not give it a stack. The
/// message says which; [`is_panic`](JoinError::is_panic) tells a panic of the green thread's
/// own code from the rest.
///
/// # Examples
/// ```
/// let err = bobbin::run(|| bobbin::spawn(|| panic!("boom")).join().unwrap_err());
/// assert!(err.is_panic());
/// assert_eq!(err.message(), Some("boom"));
/// assert_eq!(err.to_string(), "green thread panicked: boom");
/// ```
pub struct JoinError {
    payload: Payload,
    kind: JoinErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JoinErrorKind {
    /// The green thread's code panicked; the payload is its own.
    Panicked,
    /// Its stack overflowed; the payload is a message saying so.
    StackOverflow,
    /// It never finished or never started; the payload is a message saying why.
    Stopped,
}

impl JoinError {
    pub(crate) fn panicked(payload: Payload) -> JoinError {
        JoinError { payload, kind: JoinErrorKind::Panicked }
    }

    pub(crate) fn overflowed(message: String) -> JoinError {
        JoinError { payload: Box::new(message), kind: JoinErrorKind::StackOverflow }
    }

    pub(crate) fn stopped(message: String) -> JoinError {
        JoinError { payload: Box::new(message), kind: JoinErrorKind::Stopped }
    }

    /// Whether the green thread's own code panicked (rather than overflowing its stack or
    /// being stopped before it finished).
    ///
    /// # Examples
    /// ```
    /// let err = bobbin::run(|| bobbin::spawn(|| panic!("boom")).join().unwrap_err());
    /// assert!(err.is_panic());
    /// assert!(!err.is_stack_overflow());
    /// ```
    pub fn is_panic(&self) -> bool {
        self.kind == JoinErrorKind::Panicked
    }

    /// Whether the green thread overflowed its stack.
    ///
    /// # Examples
    /// ```
    /// #[allow(unconditional_recursion)] // until the guard page stops it
    /// fn deep(n: u64) -> u64 {
    ///     let frame = std::hint::black_box([n; 128]);
    ///     deep(n + 1) + frame[0]
    /// }
    /// let err = bobbin::run(|| bobbin::spawn(|| deep(0)).join().unwrap_err());
    /// assert!(err.is_stack_overflow());
    /// assert!(!err.is_panic());
    /// ```
    pub fn is_stack_overflow(&self) -> bool {
        self.kind == JoinErrorKind::StackOverflow
    }

    /// The panic payload, as `std::thread::JoinHandle::join` would return it (for a green
    /// thread that did not panic, a `String` saying what happened).
    ///
    /// # Examples
    /// Any payload comes back as it was, to be downcast or passed on with
    /// [`std::panic::resume_unwind`]:
    /// ```
    /// let err = bobbin::run(|| bobbin::spawn(|| std::panic::panic_any(404u16)).join().unwrap_err());
    /// assert_eq!(err.message(), None); // not a string
    /// assert_eq!(err.into_panic().downcast_ref::<u16>(), Some(&404));
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.payload
    }

    /// The panic message, if the payload is a string.
    ///
    /// # Examples
    /// ```
    /// let err = bobbin::run(|| bobbin::spawn(|| panic!("code {}", 7)).join().unwrap_err());
    /// assert_eq!(err.message(), Some("code 7"));
    /// ```
    pub fn message(&self) -> Option<&str> {
        let m = crate::error::panic_message(self.payload.as_ref());
        (m != "<non-string panic payload>").then_some(m)
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinError").field("kind", &self.kind).field("message", &self.message()).finish()
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = crate::error::panic_message(self.payload.as_ref());
        match self.kind {
            JoinErrorKind::Panicked => write!(f, "green thread panicked: {message}"),
            JoinErrorKind::StackOverflow | JoinErrorKind::Stopped => f.write_str(message),
        }
    }
}

impl std::error::Error for JoinError {}
