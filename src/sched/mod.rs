//! The per-thread green-thread scheduler: [`run`], [`spawn`], [`yield_now`], [`sleep`] and
//! [`JoinHandle`], shaped like their `std::thread` namesakes.
//!
//! [`run`] turns the calling OS thread into a scheduler until the closure it is given and
//! every green thread spawned meanwhile have finished. Green threads are coroutines on
//! pooled, guard-paged stacks; they give control back by yielding, by parking (joining an
//! unfinished green thread, receiving from an empty channel, sleeping) or by returning.
//!
//! Scheduling is fair: a green thread that yields runs again only after every other ready
//! green thread has run once. A green thread woken by the running one (a joiner whose
//! green thread finished, a receiver it sent to) while no other is ready runs as soon as
//! that one gives control back, before unstarted ones start (at most 64 times in a row).
//! Spawned green threads wait in a queue of their own and start as the ready ones make
//! room: at once while fewer than 64 green threads are ready, and
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
//! # Panic messages
//!
//! std's panic hook names the OS thread, which many green threads share. So when the first
//! scheduler starts (or the first named green thread is spawned), bobbin wraps the panic
//! hook in force then, once: a panic on a green thread first prints a line such as
//! `green thread 'parser' (id 7) panicked (the report below names the OS thread it ran
//! on):`, then the previous hook (std's, or the program's own) reports the panic as usual.
//! A hook the program sets later replaces this one; it can call [`try_current`] to name
//! the green thread itself. Cancellation unwinds without a panic message (see
//! [`JoinHandle::cancel`]). A [`JoinError`]'s message names the green thread too.
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
mod builder;
pub(crate) mod driver;
mod join;
pub mod local;
pub(crate) mod park;
mod policy;
pub(crate) mod reactor;
pub(crate) mod record;
mod run;
pub(crate) use park::deadline_after;
pub(crate) use run::run_worker;
pub(crate) mod scheduler;
pub(crate) mod scope;
pub use scope::{scope, Scope, ScopedJoinHandle};
pub(crate) mod stall;
mod thread;
mod timer;
pub(crate) mod work;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub use blocking::{spawn_blocking, IDLE_TIMEOUT, MAX_THREADS};
pub use builder::Builder;
pub(crate) use join::{send_task, send_task_with, AbortHook, JoinState, SendAbort, SendBody};
pub use join::{JoinError, JoinHandle};
pub use local::GreenLocal;
pub use thread::{current, try_current, GreenThread, GreenThreadId};

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
        local::drop_current_locals();
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
    let record = record::TaskRecord::new(GreenThread::new(None));
    let (body, abort, handle) = join::task_parts(f, record);
    scheduler::spawn_local(Box::new(body), abort);
    handle
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
    record::cancel_point();
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
