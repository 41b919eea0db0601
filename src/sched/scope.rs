//! Scoped green threads: [`scope`], [`Scope`] and [`ScopedJoinHandle`], shaped like
//! `std::thread::scope`, and the waiting both kinds of scope share (`Runtime::scope` builds
//! on it in `runtime/scope.rs`).
//!
//! Why it is sound, as for std's scoped threads: the scope function itself waits, on every
//! path out of it, until every green thread spawned in the scope has ended; handles are a
//! convenience. A scoped green thread reports its end only after its closure and its value
//! are gone (dropped, or leaked in a handle that was forgotten), so nothing it borrows is
//! touched after the scope returns. The paths out of the scope function are:
//! - the scope closure returns or panics: the scope waits (parking the green thread, or
//!   blocking a plain thread), then returns or resumes the panic;
//! - the green thread running the scope is unwound because its scheduler stops (the end of
//!   `run`, a runtime dropped): a scheduler unwinds its youngest green threads first, so the
//!   scoped ones on it are gone already; those elsewhere (a `Runtime::scope` called from
//!   another scheduler) are waited for by blocking the OS thread; if any is left that could
//!   only run here, the process aborts rather than let it outlive its borrows;
//! - the stack running the scope overflows: its frames are abandoned without unwinding, so
//!   the scope holds a [`StackLoan`] on it and such an overflow aborts the process.
//!
//! The body handed to a scheduler has its lifetime erased (the one unsafe step, in
//! `engine/scoped.rs`); everything here is safe code.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use super::join::Abort;
use super::record::TaskRecord;
use super::scheduler::{self, Unparker};
use super::thread::GreenThread;
use super::{budget, park, JoinError};
use crate::engine::{self, StackLoan};
use crate::park::Lock;

/// Runs `f` with a [`Scope`] whose green threads may borrow anything that outlives the
/// call, and returns once `f` and every green thread spawned in the scope have finished.
///
/// Mirrors [`std::thread::scope`]: a green thread spawned with [`Scope::spawn`] can borrow
/// locals of the caller (no `'static`, and no `Send`: the scoped green threads run on the
/// caller's scheduler and never leave its OS thread). Green threads left unjoined are
/// joined automatically before `scope` returns, even if a handle was leaked with
/// [`std::mem::forget`]. While it waits, `scope` parks the calling green thread, so the
/// scheduler runs the others meanwhile.
///
/// Called on a green thread of [`run`](crate::run), the scoped green threads run on its
/// scheduler; on a green thread of a [`Runtime`](crate::Runtime) worker, on that worker (not
/// on the others). Called outside any scheduler, on a thread's own stack, `scope` runs a
/// scheduler on the calling thread for the scope, as `run` does, with `f` as its first
/// green thread, and returns when the scope is done. For green threads of a runtime that may run on any worker, with
/// `Send` borrows, see [`Runtime::scope`](crate::Runtime::scope). On a runtime built with
/// the `unsafe` [`allow_migration`](crate::runtime::Builder::allow_migration), the green
/// thread calling `scope` may continue on another worker after it suspends while its scoped
/// green threads stay: what they share with it is then shared between OS threads, which
/// that method's safety contract has to cover.
///
/// # Panics
/// - If a scoped green thread that was not joined panicked (or overflowed its stack, or
///   was stopped before it finished): after every one has finished, with "a scoped green
///   thread panicked". If `f` itself panicked, its panic is resumed instead, after the
///   same wait.
/// - In a coroutine or generator: one that a green thread runs (only the green thread's own
///   stack can wait), or one outside any scheduler (no scheduler is started for it there,
///   since the scoped closures could borrow its `Yielder`, which must only be used on its
///   own stack). The panic comes before `f` runs.
///
/// # Aborts
/// If the stack of the green thread running `scope` overflows while scoped green threads
/// borrow from it: its frames cannot be unwound, so they would be gone while still borrowed
/// (a thread's stack overflow aborts in the same way).
///
/// # Examples
/// ```
/// use std::cell::RefCell;
///
/// bobbin::run(|| {
///     let mut words = vec!["a", "b"];
///     let seen = RefCell::new(Vec::new()); // not Sync: fine, all on one scheduler
///     bobbin::scope(|s| {
///         s.spawn(|| {
///             seen.borrow_mut().push(words.len());
///             bobbin::yield_now();
///         });
///         s.spawn(|| seen.borrow_mut().push(words.len() * 10));
///     });
///     // Every scoped green thread has finished: `words` can be borrowed mutably again.
///     words.push("c");
///     assert_eq!(seen.into_inner(), [2, 20]);
///     assert_eq!(words.len(), 3);
/// });
/// ```
///
/// A scoped green thread cannot borrow something that the scope closure owns, since it
/// could outlive it:
/// ```compile_fail,E0373
/// bobbin::run(|| {
///     bobbin::scope(|s| {
///         let local = 5;
///         s.spawn(|| local + 1); // `local` dies when the closure returns
///     });
/// });
/// ```
///
/// Nor can a handle leave the scope:
/// ```compile_fail
/// bobbin::run(|| {
///     let escaped = bobbin::scope(|s| s.spawn(|| 1));
///     escaped.join().unwrap();
/// });
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    if !scheduler::in_scheduler() {
        if !engine::on_thread_stack() {
            panic!(
                "bobbin::scope called in a coroutine or generator outside a scheduler: call it on a \
                 green thread (of bobbin::run or of a Runtime) or on a thread's own stack"
            );
        }
        return scope_on_its_own_scheduler(f);
    }
    if !can_park_here() {
        panic!(
            "bobbin::scope called outside a green thread's own stack (in a coroutine or generator \
             a green thread runs, or with no green thread running): the scope could not wait there"
        );
    }
    let scope = Scope { data: ScopeData::new(), _scope: PhantomData, _env: PhantomData, _not_send: PhantomData };
    run_scope(&scope.data, || f(&scope), Teardown::Abort)
}

/// [`scope`] outside any scheduler: runs it as the main green thread of a scheduler on the
/// calling thread, as [`run`](crate::run) does.
fn scope_on_its_own_scheduler<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let mut value = None;
    let main: Box<dyn FnOnce() + '_> = Box::new(|| value = Some(scope(f)));
    // `run_scheduler` returns, or unwinds, only once every green thread of the scheduler it
    // runs on this thread has finished or been unwound, and the ones that never started have
    // been dropped: the main one and those the scope spawned.
    // SAFETY: so `main` is gone before `value` and what `f` borrows, which outlive this call.
    let main = unsafe { engine::erase_local_body(main) };
    super::run::run_scheduler(main);
    value.expect("the main green thread of a scope finished without a value")
}

/// Whether the caller runs on a green thread's own stack (where a park suspends it), as
/// opposed to outside any scheduler, in a coroutine or generator that a green thread runs,
/// or in a destructor that a stopping scheduler runs while it unwinds a green thread.
pub(crate) fn can_park_here() -> bool {
    scheduler::on_green_thread() && crate::coroutine::current_suspender::<(), scheduler::Signal>().is_some()
}

/// A scope of green threads on the caller's scheduler, made by [`scope`].
///
/// `'scope` is the life of the scope: its green threads end before it does. `'env` is that
/// of what they may borrow, which outlives the scope. Not `Send` and not `Sync`: it spawns
/// on the scheduler of the thread it was made on.
///
/// # Examples
/// A scoped green thread can spawn more into the same scope:
/// ```
/// use std::cell::Cell;
///
/// bobbin::run(|| {
///     let total = Cell::new(0);
///     bobbin::scope(|s| {
///         s.spawn(|| {
///             for i in 1..=3 {
///                 let total = &total;
///                 s.spawn(move || total.set(total.get() + i));
///             }
///         });
///     });
///     assert_eq!(total.get(), 6);
/// });
/// ```
///
/// It cannot be shared with another thread (whose scheduler would run the green threads it
/// spawned, with borrows that need not be `Send`):
/// ```compile_fail,E0277
/// fn shared<T: Sync>(_: &T) {}
/// bobbin::run(|| bobbin::scope(|s| shared(s)));
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    /// Invariant in both lifetimes, as std's: neither may be shortened or lengthened.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
    _not_send: PhantomData<*const ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns a green thread in the scope, on the scheduler of the calling thread; it may
    /// borrow anything that outlives the scope.
    ///
    /// It starts as [`spawn`](crate::spawn)'s green threads do. The scope waits for it even
    /// if the handle is dropped or leaked; [`ScopedJoinHandle::join`] takes its value, or
    /// its panic (a panic taken that way does not make [`scope`] panic).
    ///
    /// # Panics
    /// Outside a scheduler's thread.
    ///
    /// # Examples
    /// ```
    /// bobbin::run(|| {
    ///     let numbers = [1, 2, 3, 4];
    ///     let (left, right) = numbers.split_at(2);
    ///     let sum = bobbin::scope(|s| {
    ///         let l = s.spawn(|| left.iter().sum::<i32>());
    ///         let r = s.spawn(|| right.iter().sum::<i32>());
    ///         l.join().unwrap() + r.join().unwrap()
    ///     });
    ///     assert_eq!(sum, 10);
    /// });
    /// ```
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        let (body, abort, handle) = scoped_parts(&self.data, f);
        let body: Box<dyn FnOnce() + 'scope> = Box::new(body);
        // `run_scope` does not return, unwind past its wait, or let its stack be given back
        // while this body's green thread has not reported its end, which the body reports
        // only after it and its value are gone (or when the scheduler drops it without
        // running it, from its `Drop`).
        // SAFETY: so the body's borrows outlive it: `'scope` ends only after `run_scope`.
        let body = unsafe { engine::erase_local_body(body) };
        scheduler::spawn_local(body, abort);
        handle
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.data.fmt(f)
    }
}

/// What to do if the green thread running a scope is unwound by its scheduler stopping
/// while green threads of the scope are still alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Teardown {
    /// They run elsewhere (another runtime's workers): block the OS thread until they end.
    Block,
    /// They could only run on the scheduler that is stopping: nothing can end them, so
    /// abort rather than let them outlive their borrows.
    Abort,
}

/// Runs a scope function `f` on the calling stack and waits until every green thread of
/// `data` has ended, on every path out. A panic of `f` is resumed after the wait; if a
/// green thread failed and was not joined, panics once all have ended.
pub(crate) fn run_scope<T>(data: &ScopeData, f: impl FnOnce() -> T, teardown: Teardown) -> T {
    let loan = StackLoan::here();
    let guard = UnwindGuard { data, teardown };
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    if let Err(payload) = &outcome {
        if engine::is_forced_unwind(payload.as_ref()) {
            // The green thread is being unwound: it cannot park any more.
            drop(guard);
            drop(loan);
            panic::resume_unwind(outcome.err().expect("a forced unwinding"));
        }
    }
    data.wait();
    // Every green thread of the scope has ended: nothing borrows from this stack any more.
    std::mem::forget(guard);
    drop(loan);
    let failed = data.state.lock().failed;
    match outcome {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if failed > 0 => panic!("a scoped green thread panicked"),
        Ok(value) => value,
    }
}

/// Dropped only when the scope's wait is cut short by its green thread being unwound.
struct UnwindGuard<'a> {
    data: &'a ScopeData,
    teardown: Teardown,
}

impl Drop for UnwindGuard<'_> {
    fn drop(&mut self) {
        if self.data.state.lock().running == 0 {
            return;
        }
        match self.teardown {
            Teardown::Block => self.data.wait_blocking(),
            Teardown::Abort => {
                eprintln!(
                    "bobbin: a scope was unwound by its scheduler stopping while green threads that \
                     borrow from it could no longer end; aborting"
                );
                std::process::abort();
            }
        }
    }
}

/// What the green threads of one scope and its owner share.
pub(crate) struct ScopeData {
    state: Lock<ScopeState>,
}

struct ScopeState {
    /// Green threads spawned and not yet ended.
    running: usize,
    /// Green threads that ended without a value and were not joined (yet).
    failed: usize,
    /// The scope's owner, waiting for `running` to reach zero.
    waiter: Option<Unparker>,
}

impl ScopeData {
    pub(crate) fn new() -> Arc<ScopeData> {
        Arc::new(ScopeData { state: Lock::new(ScopeState { running: 0, failed: 0, waiter: None }) })
    }

    /// Parks (or, off a green thread, blocks) until no green thread of the scope runs.
    fn wait(&self) {
        loop {
            let mut state = self.state.lock();
            if state.running == 0 {
                return;
            }
            park::park("waiting for the green threads of a scope", move |u| {
                state.waiter = Some(u);
                drop(state);
            });
        }
    }

    /// Blocks the OS thread, even on a green thread, until no green thread of the scope
    /// runs: for a green thread that is being unwound and cannot park.
    fn wait_blocking(&self) {
        loop {
            let mut state = self.state.lock();
            if state.running == 0 {
                return;
            }
            crate::park::park_thread(None, move |u: Unparker| {
                state.waiter = Some(u);
                drop(state);
            });
        }
    }

    /// One green thread ended: the last wakes the owner.
    fn ended(&self) {
        let waiter = {
            let mut state = self.state.lock();
            state.running -= 1;
            if state.running == 0 {
                state.waiter.take()
            } else {
                None
            }
        };
        if let Some(w) = waiter {
            w.unpark();
        }
    }
}

impl fmt::Debug for ScopeData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Scope").field("running", &state.running).field("failed", &state.failed).finish()
    }
}

/// The end of one scoped green thread as its handle sees it; independent of the value's
/// type, so that the scheduler may hold it as the green thread's abort hook.
pub(crate) struct Ending {
    state: Lock<EndingState>,
    /// The green thread's identity (and the cancel flag the scheduler reads, which no
    /// scoped handle sets).
    record: TaskRecord,
    scope: Arc<ScopeData>,
}

struct EndingState {
    outcome: Outcome,
    /// Whether a handle may still take the outcome.
    handle: bool,
    /// A joiner waiting for the end.
    waiter: Option<Unparker>,
    /// Whether the body has begun to run. Until it has, its `Drop` reports the end.
    started: bool,
}

enum Outcome {
    Running,
    /// The value is in the handle's slot.
    Value,
    Failed(JoinError),
    /// Taken by `join`, or dropped with the handle.
    Taken,
}

/// Where a scoped green thread leaves its value for its handle.
type Slot<T> = Lock<Option<T>>;

impl Ending {
    /// Ends with `value`: left in `slot` for the handle, or dropped at once if there is no
    /// handle any more. Either way it is out of the scope's way before the owner is told.
    fn end_with_value<T>(&self, value: T, slot: &Slot<T>) {
        let (unclaimed, waiter) = {
            let mut state = self.state.lock();
            if !matches!(state.outcome, Outcome::Running) {
                (Some(value), None)
            } else if state.handle {
                *slot.lock() = Some(value);
                state.outcome = Outcome::Value;
                (None, state.waiter.take())
            } else {
                state.outcome = Outcome::Taken;
                (Some(value), None)
            }
        };
        if panic::catch_unwind(AssertUnwindSafe(|| drop(unclaimed))).is_err() {
            self.scope.state.lock().failed += 1;
        }
        self.ended(waiter);
    }

    /// Ends without a value. Only the first end counts: the scheduler's abort hook may come
    /// after the body already reported.
    fn end_with_error(&self, error: JoinError) {
        let (unclaimed, waiter) = {
            let mut state = self.state.lock();
            if !matches!(state.outcome, Outcome::Running) {
                return;
            }
            self.scope.state.lock().failed += 1;
            if state.handle {
                state.outcome = Outcome::Failed(error);
                (None, state.waiter.take())
            } else {
                state.outcome = Outcome::Taken;
                (Some(error), None)
            }
        };
        // A payload whose drop panics is not the scope's to report.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(unclaimed)));
        self.ended(waiter);
    }

    fn ended(&self, waiter: Option<Unparker>) {
        if let Some(w) = waiter {
            w.unpark();
        }
        self.scope.ended();
    }
}

impl Abort for Ending {
    /// The scheduler's report of a green thread whose body did not finish. For a body that
    /// never ran it may come before the body is dropped (a runtime's abandoned job): the
    /// end is then reported by the body's `Drop`, once the closure is gone.
    fn abort(&self, error: JoinError) {
        if self.state.lock().started {
            self.end_with_error(error);
        }
    }

    fn record(&self) -> &TaskRecord {
        &self.record
    }
}

/// A scoped green thread's body: runs the closure and reports the end; dropped without
/// running (its scheduler stopped first), drops the closure and reports the end.
struct ScopedBody<F, T> {
    f: Option<F>,
    slot: Arc<Slot<T>>,
    ending: Arc<Ending>,
}

impl<F: FnOnce() -> T, T> ScopedBody<F, T> {
    fn run(mut self) {
        let f = self.f.take().expect("a body runs once");
        self.ending.state.lock().started = true;
        // The closure, and everything it captured, is dropped by the time this returns.
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => self.ending.end_with_value(value, &self.slot),
            Err(payload) if engine::is_forced_unwind(payload.as_ref()) => {
                self.ending.end_with_error(JoinError::stopped(scheduler::stop_reason()));
                panic::resume_unwind(payload);
            }
            Err(payload) => {
                let thread = self.ending.record.thread().clone();
                self.ending.end_with_error(JoinError::panicked(payload, Some(thread)))
            }
        }
    }
}

impl<F, T> Drop for ScopedBody<F, T> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            drop(f);
            self.ending.end_with_error(JoinError::stopped(
                "bobbin: the scoped green thread never started: its scheduler stopped first".into(),
            ));
        }
    }
}

/// A scoped green thread's parts: the body a scheduler runs (`Send` exactly when `F` and
/// `T` are), its abort hook, and its handle. Counts the green thread as running in `scope`.
pub(crate) fn scoped_parts<'scope, F, T>(
    scope: &Arc<ScopeData>,
    f: F,
) -> (impl FnOnce() + 'scope, Arc<Ending>, ScopedJoinHandle<'scope, T>)
where
    F: FnOnce() -> T + 'scope,
    T: 'scope,
{
    scope.state.lock().running += 1;
    let ending = Arc::new(Ending {
        state: Lock::new(EndingState { outcome: Outcome::Running, handle: true, waiter: None, started: false }),
        record: TaskRecord::new(GreenThread::new(None)),
        scope: Arc::clone(scope),
    });
    let slot = Arc::new(Lock::new(None));
    let body = ScopedBody { f: Some(f), slot: Arc::clone(&slot), ending: Arc::clone(&ending) };
    let handle = ScopedJoinHandle { ending: Arc::clone(&ending), slot, _scope: PhantomData };
    (move || body.run(), ending, handle)
}

/// An owned permission to join a scoped green thread, made by [`Scope::spawn`] or
/// `bobbin::runtime::Scope::spawn`.
///
/// Like [`JoinHandle`](crate::JoinHandle), but bound to its scope: it cannot leave it, and
/// dropping it does not detach the green thread (the scope waits for it anyway).
///
/// # Examples
/// ```
/// bobbin::run(|| {
///     let name = String::from("bobbin");
///     bobbin::scope(|s| {
///         let h = s.spawn(|| name.len());
///         assert_eq!(h.join().unwrap(), 6);
///     });
/// });
/// ```
pub struct ScopedJoinHandle<'scope, T> {
    ending: Arc<Ending>,
    slot: Arc<Slot<T>>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the green thread to finish; returns its value, or a [`JoinError`] saying
    /// why there is none (a failure taken here does not make the scope panic). Parks a
    /// green thread, blocks a plain thread. Spends one unit of the cooperative budget.
    ///
    /// # Examples
    /// ```
    /// bobbin::run(|| {
    ///     let divisor = 0;
    ///     let outcome = bobbin::scope(|s| s.spawn(|| 10 / divisor).join());
    ///     assert!(outcome.unwrap_err().is_panic());
    /// });
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        budget::spend();
        loop {
            let mut state = self.ending.state.lock();
            match std::mem::replace(&mut state.outcome, Outcome::Taken) {
                Outcome::Running => {
                    state.outcome = Outcome::Running;
                    park::park("joining a scoped green thread", move |u| {
                        state.waiter = Some(u);
                        drop(state);
                    });
                }
                Outcome::Value => {
                    drop(state);
                    return Ok(self.slot.lock().take().expect("a value is left in the slot"));
                }
                Outcome::Failed(error) => {
                    drop(state);
                    self.ending.scope.state.lock().failed -= 1;
                    return Err(error);
                }
                Outcome::Taken => unreachable!("a handle's outcome is taken only by its join or drop"),
            }
        }
    }

    /// Whether the green thread has finished (returned, panicked or overflowed its stack).
    /// Spends one unit of the cooperative budget.
    ///
    /// # Examples
    /// ```
    /// bobbin::run(|| {
    ///     bobbin::scope(|s| {
    ///         let h = s.spawn(|| ());
    ///         assert!(!h.is_finished()); // it has not run yet
    ///         while !h.is_finished() {
    ///             bobbin::yield_now();
    ///         }
    ///         h.join().unwrap();
    ///     });
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        budget::spend();
        !matches!(self.ending.state.lock().outcome, Outcome::Running)
    }
}

impl<T> Drop for ScopedJoinHandle<'_, T> {
    fn drop(&mut self) {
        let value = {
            let mut state = self.ending.state.lock();
            state.handle = false;
            match state.outcome {
                Outcome::Value => {
                    state.outcome = Outcome::Taken;
                    self.slot.lock().take()
                }
                _ => None,
            }
        };
        drop(value);
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let finished = !matches!(self.ending.state.lock().outcome, Outcome::Running);
        f.debug_struct("ScopedJoinHandle").field("finished", &finished).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::{scoped_parts, ScopeData};
    use crate::sched::work::StartJob;

    /// Records, when dropped, whether its scope still counted its green thread as running.
    struct Probe {
        scope: Arc<ScopeData>,
        counted: Arc<AtomicBool>,
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.counted.store(self.scope.state.lock().running == 1, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_unstarted_body_ends_only_once_its_closure_is_dropped_whatever_the_abort_order() {
        // A start job dropped whole calls its abort hook before it drops the body.
        let scope = ScopeData::new();
        let counted = Arc::new(AtomicBool::new(false));
        let probe = Probe { scope: Arc::clone(&scope), counted: Arc::clone(&counted) };
        let (body, abort, handle) = scoped_parts(&scope, move || drop(probe));
        drop(StartJob::new(Some(Box::new(body)), abort));
        assert!(counted.load(Ordering::SeqCst), "the scope stopped counting before the closure was dropped");
        assert_eq!(scope.state.lock().running, 0);
        assert!(!handle.join().unwrap_err().is_panic());
    }
}
