//! Joining a green thread: its [`JoinHandle`] (join, join with a timeout, cancel), the
//! [`JoinError`] that says why there is no value, and the join state the handle and the
//! green thread share, which also holds the green thread's [`TaskRecord`].

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::record::{Cancelled, TaskRecord};
use super::scheduler::{self, Unparker};
use super::thread::GreenThread;
use super::{budget, park};
use crate::park::{Lock, LockGuard};

/// A panic payload.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// The body of a green thread that any worker may start, boxed apart from its join state;
/// `None` in a [`StartJob`](super::work::StartJob) whose join state holds the body (see
/// [`send_task`]).
pub(crate) type SendBody = Box<dyn FnOnce() + Send>;

/// Reports a failure to the joiner of a green thread whose body never finished (its stack
/// overflowed, or its scheduler shut down before it started). It is the green thread's own
/// join state, so holding one costs a reference count, not an allocation.
///
/// Through it the scheduler also reaches the green thread's [`TaskRecord`], and, for a
/// green thread of [`send_task`], its body.
pub(crate) trait Abort {
    /// Completes the join with `error`; drops the body first if it is held here and has
    /// not run.
    fn abort(&self, error: JoinError);
    /// The green thread's record: its identity, stack size and cancel flag.
    fn record(&self) -> &TaskRecord;
    /// Runs the body held here, on the green thread's stack, and completes the join. Only
    /// asked of the hook of a job whose body is not boxed apart (`send_task`'s).
    fn run_body(&self) {
        unreachable!("bobbin: a green thread's body was looked for in a join state that does not hold it");
    }
}

impl<T> Abort for JoinState<T, ()> {
    fn abort(&self, error: JoinError) {
        self.complete(Err(error));
    }

    fn record(&self) -> &TaskRecord {
        &self.record
    }
}

/// The body of a green thread of [`send_task`], in its join state until it starts.
type HeldBody<F> = Lock<Option<F>>;

impl<F, T> Abort for JoinState<T, HeldBody<F>>
where
    F: FnOnce() -> T,
{
    fn abort(&self, error: JoinError) {
        // A green thread that never ran: what its closure holds goes before the joiner
        // learns why (as a boxed body is dropped before its hook is told).
        let body = self.held.lock().take();
        drop(body);
        self.complete(Err(error));
    }

    fn record(&self) -> &TaskRecord {
        &self.record
    }

    fn run_body(&self) {
        let f = self.held.lock().take();
        match f {
            Some(f) => run_body(self, f),
            None => unreachable!("bobbin: a green thread's body ran twice"),
        }
    }
}

/// What identifies a green thread's join state to [`scheduler::start_joined`]: its
/// address, the same through the handle and through the abort hook (both point at the one
/// `Arc`'s value, whatever type they see it as). Compared, never dereferenced.
pub(crate) fn join_key<S: ?Sized>(state: &Arc<S>) -> *const () {
    Arc::as_ptr(state).cast::<()>()
}

/// The abort hook of a green thread that only its own scheduler handles.
pub(crate) type AbortHook = Arc<dyn Abort>;

/// The abort hook of a green thread that any worker may start.
pub(crate) type SendAbort = Arc<dyn Abort + Send + Sync>;

/// A green thread's parts: the body a scheduler runs, and the handle that waits for it.
///
/// A green thread cancelled before its body starts never runs it. Its green-thread locals
/// are dropped on its own stack before its joiner learns how it ended.
pub(crate) fn task_parts<F, T>(f: F, record: TaskRecord) -> (impl FnOnce(), AbortHook, JoinHandle<T>)
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let state: Arc<JoinState<T, ()>> = Arc::new(JoinState::new(record));
    let done = Arc::clone(&state);
    let body = move || run_body(&done, f);
    let aborted: AbortHook = state.clone();
    (body, aborted, JoinHandle { state })
}

/// Runs a green thread's body `f` on its own stack and completes its join `state`: the
/// closure of [`task_parts`] and the held body of [`send_task`] alike.
fn run_body<F, T, B: ?Sized>(state: &JoinState<T, B>, f: F)
where
    F: FnOnce() -> T,
{
    if state.record.is_cancelled() {
        drop(f);
        return state.complete(Err(JoinError::cancelled(state.record.thread())));
    }
    let mut result = panic::catch_unwind(AssertUnwindSafe(f));
    if super::local::any_in_use() {
        if let Err(payload) = panic::catch_unwind(super::local::drop_current_locals) {
            if result.is_ok() {
                result = Err(payload);
            }
        }
    }
    state.finish(result);
}

/// A green thread whose body any worker may start: the join state holds the body, so the
/// green thread costs one allocation, and the returned abort hook runs it
/// ([`Abort::run_body`]); the body part is `None`.
pub(crate) fn send_task<F, T>(f: F) -> (Option<SendBody>, SendAbort, JoinHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    send_task_with(f, TaskRecord::new(GreenThread::new(None)))
}

/// [`send_task`] with a record made by a [`Builder`](crate::Builder).
pub(crate) fn send_task_with<F, T>(f: F, record: TaskRecord) -> (Option<SendBody>, SendAbort, JoinHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let state: Arc<JoinState<T, HeldBody<F>>> = Arc::new(JoinState::with_held(record, Lock::new(Some(f))));
    let abort: SendAbort = state.clone();
    (None, abort, JoinHandle { state })
}

/// A green thread's final state.
struct JoinInner<T> {
    /// Set when the green thread ends; taken only by `join`, which consumes the handle,
    /// so while a handle exists `result.is_some()` means finished.
    result: Option<Result<T, JoinError>>,
    waiter: Option<Unparker>,
}

/// What a green thread's joiner and the green thread share: how it ended, its record, and
/// (`held`) its body until it starts, for a green thread of [`send_task`]; `()` for the
/// others. The handle sees `held` type-erased, so `JoinHandle<T>` does not name the
/// closure's type.
pub(crate) struct JoinState<T, B: ?Sized = dyn Any + Send + Sync> {
    inner: Lock<JoinInner<T>>,
    record: TaskRecord,
    held: B,
}

impl<T> JoinState<T, ()> {
    pub(crate) fn new(record: TaskRecord) -> Self {
        JoinState::with_held(record, ())
    }
}

impl<T, B> JoinState<T, B> {
    fn with_held(record: TaskRecord, held: B) -> Self {
        JoinState { inner: Lock::new(JoinInner { result: None, waiter: None }), record, held }
    }
}

impl<T, B: ?Sized> JoinState<T, B> {
    fn lock(&self) -> LockGuard<'_, JoinInner<T>> {
        self.inner.lock()
    }

    /// Records how a green thread's body ended. An unwinding started by dropping the
    /// parked green thread (its scheduler or runtime stopped) is reported to the joiner
    /// with the reason the scheduler stopped, and then continues, so the green thread's
    /// stack unwinds.
    ///
    /// A cancelled green thread's joiner learns that it was cancelled, also when its code
    /// caught the unwinding and returned a value anyway (the value is dropped).
    fn finish(&self, result: std::thread::Result<T>) {
        let thread = self.record.thread();
        match result {
            Ok(_) if self.record.unwinding() => self.complete(Err(JoinError::cancelled(thread))),
            Ok(value) => self.complete(Ok(value)),
            Err(payload) if crate::engine::is_forced_unwind(payload.as_ref()) => {
                self.complete(Err(JoinError::stopped(scheduler::stop_reason())));
                panic::resume_unwind(payload);
            }
            Err(payload) if payload.is::<Cancelled>() => self.complete(Err(JoinError::cancelled(thread))),
            Err(payload) => self.complete(Err(JoinError::panicked(payload, Some(thread.clone())))),
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
    /// A green thread that has not started and is the newest one waiting to start on the
    /// caller's scheduler (one just spawned there, as a rule) is started at once: it runs
    /// on its own stack as its own green thread, as if the scheduler had started it next,
    /// and the caller waits as usual if it has not finished when it parks or yields.
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
        // A child that has not started and is next to start here starts now, from this
        // stack, and is likely to have finished when it comes back. (Not after a first
        // look at the result: that is a second lock per join, and fib on two workers ran
        // about 1% slower for it.)
        scheduler::start_joined(join_key(&self.state));
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

    /// Waits at most `timeout` for the green thread to finish. On time, returns what
    /// [`join`](JoinHandle::join) would; otherwise hands the handle back, to wait again,
    /// cancel or detach. (`std::thread::JoinHandle` has no such method; the handle comes
    /// back in `Err` because a timeout is not the green thread's failure.)
    ///
    /// Like `join`, it parks a green thread and blocks an OS thread outside a scheduler. A
    /// zero timeout only looks.
    ///
    /// # Panics
    /// As [`join`](JoinHandle::join).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    ///
    /// bobbin::run(|| {
    ///     let (tx, rx) = bobbin::sync::channel::<u32>();
    ///     let h = bobbin::spawn(move || rx.recv().unwrap() + 1);
    ///     // The green thread cannot finish before it gets a message.
    ///     let h = h.join_timeout(Duration::from_millis(1)).unwrap_err();
    ///     tx.send(41).unwrap();
    ///     assert_eq!(h.join_timeout(Duration::from_secs(600)).ok().unwrap().unwrap(), 42);
    /// });
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        budget::spend();
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let mut inner = self.state.lock();
            if let Some(result) = inner.result.take() {
                return Ok(result);
            }
            let Some(at) = deadline.filter(|&at| Instant::now() < at) else {
                if deadline.is_some() {
                    // The unparker left behind is stale once this park has ended.
                    inner.waiter = None;
                    drop(inner);
                    return Err(self);
                }
                // A timeout beyond what an Instant can hold: wait for good.
                park::park("joining another green thread", move |u| {
                    inner.waiter = Some(u);
                    drop(inner);
                });
                continue;
            };
            park::park_until("joining another green thread", at, move |u| {
                inner.waiter = Some(u);
                drop(inner);
            });
        }
    }

    /// Cancels the green thread: at its next park point (any wait: a receive, send, lock,
    /// sleep, join or I/O wait, and [`yield_now`](crate::yield_now)), or at once if it is
    /// parked now, its stack unwinds (destructors run) and its joiner gets a [`JoinError`]
    /// whose [`is_cancelled`](JoinError::is_cancelled) is true. The handle stays usable:
    /// join it to wait for the unwinding to finish.
    ///
    /// - A green thread that has not started never runs; its joiner learns it was cancelled.
    /// - One that has finished is not affected: the join returns its result.
    /// - Code that computes without waiting is not interrupted: it unwinds at its next
    ///   park point.
    /// - Callable from any thread (the handle is `Send` when `T` is), for green threads of
    ///   [`run`](crate::run) and of a [`Runtime`](crate::Runtime) alike. On a
    ///   [`spawn_blocking`](crate::spawn_blocking) job, which has no park points, it only
    ///   keeps a job that has not started from running.
    ///
    /// The unwinding is a panic with a payload private to bobbin, raised with
    /// [`std::panic::resume_unwind`], so no panic message is printed. A `catch_unwind` in
    /// the green thread's code may catch it; the cancellation stands anyway: the next park
    /// point unwinds again, and if the green thread returns a value after catching it, the
    /// joiner still gets the cancelled error (the value is dropped). A waiting destructor
    /// that runs during the unwinding waits as usual. Because it is an unwinding, a
    /// [`Mutex`](crate::sync::Mutex) held by the green thread when it unwinds is poisoned,
    /// as with any panic.
    ///
    /// # Examples
    /// ```
    /// let err = bobbin::run(|| {
    ///     let (_tx, rx) = bobbin::sync::channel::<()>();
    ///     let h = bobbin::spawn(move || rx.recv().unwrap()); // waits forever
    ///     bobbin::yield_now(); // let it park
    ///     h.cancel();
    ///     h.join().unwrap_err()
    /// });
    /// assert!(err.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.state.record.cancel();
    }

    /// The green thread's identity (id and name), as [`std::thread::JoinHandle::thread`].
    ///
    /// # Examples
    /// ```
    /// bobbin::run(|| {
    ///     let h = bobbin::Builder::new().name("worker".into()).spawn(|| bobbin::current().id()).unwrap();
    ///     let id = h.thread().id();
    ///     assert_eq!(h.thread().name(), Some("worker"));
    ///     assert_eq!(h.join().unwrap(), id);
    /// });
    /// ```
    pub fn thread(&self) -> &GreenThread {
        self.state.record.thread()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", self.thread())
            .field("finished", &self.state.lock().result.is_some())
            .finish()
    }
}

/// Why [`JoinHandle::join`] has no value.
///
/// The green thread panicked (the payload is its own), overflowed its stack, was
/// cancelled, or never finished: its scheduler or runtime stopped first, or could not give
/// it a stack. The message says which; [`is_panic`](JoinError::is_panic) tells a panic of
/// the green thread's own code from the rest, [`is_cancelled`](JoinError::is_cancelled) a
/// cancellation.
///
/// # Examples
/// ```
/// let err = bobbin::run(|| bobbin::spawn(|| panic!("boom")).join().unwrap_err());
/// assert!(err.is_panic());
/// assert_eq!(err.message(), Some("boom"));
/// let id = err.thread().unwrap().id();
/// assert_eq!(err.to_string(), format!("green thread (id {id}) panicked: boom"));
/// ```
pub struct JoinError {
    payload: Payload,
    kind: JoinErrorKind,
    /// The green thread, where known (panics and cancellations). Boxed: the error sits in
    /// every join state, which stays small enough for the allocator's fast bins.
    thread: Option<Box<GreenThread>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JoinErrorKind {
    /// The green thread's code panicked; the payload is its own.
    Panicked,
    /// Its stack overflowed; the payload is a message saying so.
    StackOverflow,
    /// It never finished or never started; the payload is a message saying why.
    Stopped,
    /// It was cancelled through its handle; the payload is a message saying so.
    Cancelled,
}

impl JoinError {
    pub(crate) fn panicked(payload: Payload, thread: Option<GreenThread>) -> JoinError {
        JoinError { payload, kind: JoinErrorKind::Panicked, thread: thread.map(Box::new) }
    }

    pub(crate) fn overflowed(message: String) -> JoinError {
        JoinError { payload: Box::new(message), kind: JoinErrorKind::StackOverflow, thread: None }
    }

    pub(crate) fn stopped(message: String) -> JoinError {
        JoinError { payload: Box::new(message), kind: JoinErrorKind::Stopped, thread: None }
    }

    pub(crate) fn cancelled(thread: &GreenThread) -> JoinError {
        JoinError {
            payload: Box::new(format!("green thread {thread} was cancelled")),
            kind: JoinErrorKind::Cancelled,
            thread: Some(Box::new(thread.clone())),
        }
    }

    /// Whether the green thread was cancelled through
    /// [`JoinHandle::cancel`](crate::JoinHandle::cancel) before it finished.
    ///
    /// # Examples
    /// ```
    /// let err = bobbin::run(|| {
    ///     let h = bobbin::spawn(|| 1);
    ///     h.cancel(); // not started yet: it never runs
    ///     h.join().unwrap_err()
    /// });
    /// assert!(err.is_cancelled());
    /// assert!(!err.is_panic());
    /// assert!(err.to_string().contains("was cancelled"));
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.kind == JoinErrorKind::Cancelled
    }

    /// The green thread the error is about, where known: for a panic and a cancellation.
    ///
    /// # Examples
    /// ```
    /// let err = bobbin::run(|| {
    ///     bobbin::Builder::new().name("parser".into()).spawn(|| panic!("bad input")).unwrap().join().unwrap_err()
    /// });
    /// assert_eq!(err.thread().and_then(|t| t.name()), Some("parser"));
    /// ```
    pub fn thread(&self) -> Option<&GreenThread> {
        self.thread.as_deref()
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
        f.debug_struct("JoinError")
            .field("kind", &self.kind)
            .field("thread", &self.thread)
            .field("message", &self.message())
            .finish()
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = crate::error::panic_message(self.payload.as_ref());
        match self.kind {
            JoinErrorKind::Panicked => match &self.thread {
                Some(thread) => write!(f, "green thread {thread} panicked: {message}"),
                None => write!(f, "green thread panicked: {message}"),
            },
            JoinErrorKind::StackOverflow | JoinErrorKind::Stopped | JoinErrorKind::Cancelled => f.write_str(message),
        }
    }
}

impl std::error::Error for JoinError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spawn allocates one join state. With its two reference counts it must stay
    /// within 120 bytes, glibc's largest fast-bin request: spawning many green threads got
    /// about 8% slower in instructions (malloc's slower bins) when it grew to 152.
    #[test]
    fn a_join_state_of_a_small_value_stays_small() {
        let arc = 2 * std::mem::size_of::<usize>();
        assert!(
            arc + std::mem::size_of::<JoinState<u64, ()>>() <= 120,
            "{}",
            std::mem::size_of::<JoinState<u64, ()>>()
        );
    }

    /// A green thread whose body its join state holds, dropped unstarted: the closure goes
    /// (with what it owns) before the joiner hears why, and the body can no longer run.
    #[test]
    fn an_aborted_held_body_is_dropped_before_its_joiner_is_told() {
        use std::sync::atomic::{AtomicBool, Ordering};
        struct Probe(Arc<AtomicBool>);
        impl Drop for Probe {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let probe = Probe(Arc::clone(&dropped));
        let (body, abort, handle) = send_task(move || drop(probe));
        assert!(body.is_none(), "the join state holds the body");
        assert!(!handle.is_finished());
        abort.abort(JoinError::stopped("stopped for the test".into()));
        assert!(dropped.load(Ordering::SeqCst));
        let err = handle.join().unwrap_err();
        assert_eq!(err.to_string(), "stopped for the test");
    }

    /// The body a join state holds runs once, through the abort hook, and completes the join.
    #[test]
    fn a_held_body_runs_through_its_hook_and_completes_the_join() {
        let (_, abort, handle) = send_task(|| 6 * 7);
        abort.run_body();
        assert_eq!(handle.join().unwrap(), 42);
    }
}
