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

pub(crate) mod budget;
pub(crate) mod driver;
pub(crate) mod park;
mod policy;
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

use crate::park::{Lock, LockGuard};

/// Runs `f` as the first green thread of a scheduler on the calling thread and returns its
/// value once `f` and every green thread spawned from it have finished.
///
/// # Panics
/// If `f` panics, with its payload (the green threads still alive are unwound first); if
/// called inside another `run` on the same thread; with a deadlock report if every green
/// thread is parked and nothing can wake them.
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
/// # Panics
/// If called on the stack of a coroutine or generator that a green thread is running (only
/// the green thread's own stack can yield).
pub fn yield_now() {
    scheduler::yield_now();
}

/// Parks the current green thread for at least `d`. Outside a scheduler, sleeps the OS
/// thread.
///
/// # Panics
/// If called on the stack of a coroutine or generator that a green thread is running:
/// only the green thread's own stack can park.
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
pub struct JoinHandle<T> {
    state: Arc<JoinState<T>>,
}

impl<T> JoinHandle<T> {
    /// Waits for the green thread to finish; returns its value, or a [`JoinError`] saying
    /// why there is none. Spends one unit of the cooperative budget.
    ///
    /// # Panics
    /// If called on the stack of a coroutine or generator that a green thread is running:
    /// only the green thread's own stack can park.
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
    pub fn is_panic(&self) -> bool {
        self.kind == JoinErrorKind::Panicked
    }

    /// Whether the green thread overflowed its stack.
    pub fn is_stack_overflow(&self) -> bool {
        self.kind == JoinErrorKind::StackOverflow
    }

    /// The panic payload, as `std::thread::JoinHandle::join` would return it (for a green
    /// thread that did not panic, a `String` saying what happened).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.payload
    }

    /// The panic message, if the payload is a string.
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
