//! The per-thread scheduler: its task table, run queue and timers, one step of it, and the
//! thread-local through which the green threads it runs reach it.
//!
//! Kept in one file (about 640 lines): every function here reads or writes the task table
//! and the ready queue, whose invariants (a task is in the table while alive; in the ready
//! queue, or in the `next` slot, at most once; its header's park word is DONE once it
//! leaves) are easiest to check in one place. What needs only a narrow part of it lives
//! beside it: starting green threads (`scheduler/start.rs`), the part other
//! threads reach (`scheduler/shared.rs`), the deadlock check (`scheduler/deadlock.rs`),
//! the start policy (`policy.rs`), the timer heap (`timer.rs`), running and stopping a
//! scheduler (`run.rs`), its driver (`driver.rs`) and its work source (`work.rs`).
//!
//! A green thread may run another from its own stack: `join` on a child that has not
//! started starts it there (`start_joined`, in `scheduler/start.rs`), so `run_task` can be
//! entered while another green thread is running; it holds no borrow of the tables while
//! a green thread runs, and `start_joined` sets the joiner's running state back after.
//!
//! The one thread-local "current scheduler" pointer of the crate is [`CURRENT`], below:
//! `spawn`, `yield_now`, parking and same-thread wake-ups find the scheduler through it.
//! Wake-ups from other threads go through the scheduler's [`Shared`] part instead: a
//! locked queue of task ids and the waker of the scheduler's driver (see
//! [`super::driver`]), which is also where an idle scheduler sleeps.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::driver::{Driver, ThreadDriver};
use super::policy::{Start, StartPolicy};
use super::reactor::Reactor;
use super::timer::Timers;

mod deadlock;
mod parking;
mod shared;
mod start;
mod tasks;

use super::work::WorkSource;
use super::{AbortHook, JoinError};
use crate::coroutine::{Coroutine, CoroutineResult};
use crate::sched::local::LocalMap;
use crate::sched::record::{self, Seen};
pub(crate) use parking::{parking_task, suspend_parked, yield_if_on_green_thread, yield_now};
pub(crate) use shared::{Shared, TaskHeader, Unparker};
pub(crate) use start::start_joined;
pub(in crate::sched) use start::Body;
pub(crate) use tasks::{
    current_locals, current_thread_in_hook, panicking, take_current_locals, wake_for_cancel, with_current_record,
};

/// What a green thread tells the scheduler when it gives control back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Signal {
    /// Put me at the back of the run queue.
    Yield,
    /// I registered an unparker; wait for it.
    Park(&'static str),
}

/// A green thread's coroutine.
type TaskCoroutine = Box<Coroutine<(), Signal, ()>>;

struct TaskSlot {
    /// Boxed so that taking it out of the table to run it moves a pointer.
    co: Option<TaskCoroutine>,
    header: Arc<TaskHeader>,
    /// A second reference to `header`, kept from the wake-up that made the task ready, to
    /// be handed to its next unparker: references travel from unparker to unparker instead
    /// of being counted up at every park and down at every wake-up.
    spare_ref: Option<Arc<TaskHeader>>,
    /// The reference to `header` lent to the green thread's record while it sits in the
    /// table, back here once [`Local::remove`] took the slot out.
    lent: Option<Arc<TaskHeader>>,
    parked: Option<&'static str>,
    /// The green thread's join state: reports a failure, and holds its record.
    hook: AbortHook,
    /// The main green thread of `run`: its failure goes back to `run`, not to the hook.
    main: bool,
    /// Its green-thread locals, once it used one.
    locals: Option<Rc<LocalMap>>,
    /// What this scheduler has heard of its cancellation (the park path reads it).
    cancel: Seen,
    /// Started from a `Send` job on a runtime that allows migration: may continue on
    /// another worker when it is ready.
    migratable: bool,
    /// It last gave control back while this thread was panicking: it may be in the middle
    /// of its own unwinding, and std counts a thread's panics per OS thread, so it goes on
    /// here until it gives control back otherwise (a bystander of another green thread's
    /// unwinding stays too, which costs it nothing but the move). Kept while it runs
    /// again: [`tasks::panicking`] reads it.
    unwinding: bool,
    /// When it entered this table, for unwinding the youngest first.
    entered: u64,
}

/// A header of a finished green thread, with every reference to it, for the next one.
struct SpareHeader {
    header: Arc<TaskHeader>,
    /// The reference the next green thread's record borrows.
    lent: Arc<TaskHeader>,
    /// The reference the next green thread's first park gives its unparker, if kept.
    spare_ref: Option<Arc<TaskHeader>>,
}

/// What one [`Local::step`] did.
pub(super) enum Step {
    /// Started or ran a green thread; the failure of one that had no abort hook to report
    /// it to (the main green thread of `run`).
    Ran(Option<JoinError>),
    /// Nothing to run; the next timer deadline, if any.
    Idle(Option<Instant>),
}

/// A green thread spawned on this scheduler that has not started.
struct Pending {
    body: Box<dyn FnOnce()>,
    abort: AbortHook,
}

/// A suspended, ready green thread travelling to whichever worker takes it.
pub(crate) struct MigrantTask {
    co: TaskCoroutine,
    hook: AbortHook,
    locals: Option<Rc<LocalMap>>,
}

/// A scheduler running on this thread.
pub(crate) struct Local {
    pub(super) shared: Arc<Shared>,
    pub(super) ready: RefCell<VecDeque<usize>>,
    /// The first green thread that the one running now woke while none was ready: it runs
    /// next, before anything starts (see [`Local::take_next`]).
    pub(super) next: Cell<Option<usize>>,
    /// Green threads run in a row from `next`.
    next_streak: Cell<u32>,
    tasks: RefCell<Vec<Option<TaskSlot>>>,
    /// Green threads of the table whose [`TaskSlot::unwinding`] is set (the running one
    /// included).
    unwinding: Cell<usize>,
    free_ids: RefCell<Vec<usize>>,
    pub(super) live: Cell<usize>,
    /// Tasks entered in the table so far (their `entered` stamps).
    entered: Cell<u64>,
    pub(super) timers: RefCell<Timers>,
    /// Task id of the green thread running now, if any.
    current: Cell<Option<usize>>,
    stack_size: usize,
    /// Green threads spawned here that have not started, oldest first.
    pending: RefCell<VecDeque<Pending>>,
    policy: StartPolicy,
    /// Set on the workers of a multi-threaded runtime.
    worker: Option<Rc<dyn WorkSource>>,
    /// Ready green threads started from jobs may go to other workers (fixed when the
    /// scheduler starts: read on every requeue).
    migration: bool,
    /// Headers of finished green threads that nothing else references, and the boxes of
    /// finished coroutines, for the next green threads to reuse instead of allocating.
    spare_headers: RefCell<Vec<SpareHeader>>,
    spare_coroutines: RefCell<Vec<TaskCoroutine>>,
    /// The buffer `drain_remote` swaps with `shared.remote`: the two take turns, so waking
    /// from another thread allocates nothing once both have grown.
    drained: RefCell<Vec<Arc<TaskHeader>>>,
    /// Why the green threads still alive are being unwound, for their joiners (set before
    /// [`Local::unwind_all`]).
    stop_reason: RefCell<Option<String>>,
    /// What the stall watchdog reads.
    pub(super) stall: Arc<super::stall::Probe>,
    /// How the scheduler sleeps when idle, and what it polls between green threads.
    pub(super) driver: Box<dyn Driver>,
    /// Why the driver is not an I/O reactor, if it is not.
    reactor_error: Option<std::io::Error>,
    /// Tests set it to make the next step fail as a scheduler bug would.
    #[cfg(test)]
    fault: Cell<bool>,
}

/// How long an idle scheduler of `run` sleeps before it checks again whether it can still
/// be woken.
const DEADLOCK_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Switches of a busy scheduler between two polls of its driver.
const POLL_INTERVAL: u64 = 64;

/// How many green threads in a row may run from [`Local::next`] before the ready queue and
/// the unstarted ones get their turn: a pair that keep waking each other holds the others
/// back by at most this many switches.
const NEXT_STREAK: u32 = 64;

/// How many spare headers and coroutine boxes a scheduler keeps.
const SPARES: usize = 256;

thread_local! {
    /// The scheduler running on this thread, if any: the crate's one "current scheduler"
    /// pointer. Set by [`run_scheduler`] for its duration.
    static CURRENT: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
}

/// Runs `f` on the scheduler of this thread, if there is one; lends it rather than
/// cloning the `Rc`, so the hot paths (every park and wake-up) pay no reference count.
/// `f` must not switch away from the running green thread: it holds a borrow of the
/// thread-local.
///
/// Never inlined: a green thread that migrated must not reuse a thread-local address
/// computed on the thread it ran on before it suspended.
#[inline(never)]
fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    CURRENT.try_with(|c| c.borrow().as_deref().map(f)).ok().flatten()
}

/// The scheduler running on this thread, if any, for a caller that runs green threads
/// itself ([`start_joined`]) and so may not hold the thread-local's borrow meanwhile.
/// Never inlined, as [`with_local`].
#[inline(never)]
fn current_local() -> Option<Rc<Local>> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Whether a green thread is running on this thread.
pub(crate) fn on_green_thread() -> bool {
    with_local(|local| local.current.get().is_some()).unwrap_or(false)
}

/// The scheduler running on this thread, as [`park::TaskHeader::home_id`] names it, if
/// any: for telling local wake-ups from remote ones.
pub(crate) fn current_home() -> Option<usize> {
    with_local(|local| Arc::as_ptr(&local.shared) as usize)
}

/// Why the scheduler of this thread is unwinding its green threads, for the joiner of the
/// one being unwound.
pub(crate) fn stop_reason() -> String {
    with_local(|local| local.stop_reason.borrow().clone())
        .flatten()
        .unwrap_or_else(|| "bobbin: the green thread was unwound before it finished: its scheduler stopped".into())
}

/// Makes the next step of this thread's scheduler panic, as a bug in it would.
#[cfg(test)]
pub(crate) fn inject_fault() {
    with_local(|local| local.fault.set(true)).expect("inside a scheduler");
}

/// Whether the calling code runs on a scheduler's thread (inside `run`).
pub(crate) fn in_scheduler() -> bool {
    with_local(|_| ()).is_some()
}

/// Runs `f` with the I/O reactor of the scheduler whose green thread runs on this thread.
/// `None` if no green thread runs here (the caller blocks the OS thread instead); an error
/// if that scheduler has no reactor because its poller could not be created.
pub(crate) fn with_current_reactor<R>(f: impl FnOnce(&Reactor) -> R) -> Option<std::io::Result<R>> {
    with_local(|local| {
        local.current.get()?;
        Some(match local.driver.reactor() {
            Some(reactor) => Ok(f(reactor)),
            None => Err(std::io::Error::new(
                local.reactor_error.as_ref().map_or(std::io::ErrorKind::Other, std::io::Error::kind),
                format!(
                    "bobbin: this scheduler has no I/O poller (creating it failed: {})",
                    local.reactor_error.as_ref().map_or_else(|| "unknown".to_owned(), ToString::to_string)
                ),
            )),
        })
    })
    .flatten()
}

/// Registers a timer that fires `unparker` at `at`. Must be called from a green thread.
pub(crate) fn add_timer(at: Instant, unparker: Unparker) {
    with_local(|local| {
        local.timers.borrow_mut().add(at, unparker);
    })
    .expect("timers exist only inside a scheduler");
}

/// Spawns a green thread running `body` on the current scheduler.
///
/// # Panics
/// Outside a scheduler, or if no stack can be allocated.
pub(crate) fn spawn_local(body: Box<dyn FnOnce()>, abort: AbortHook) {
    with_local(|local| local.pending.borrow_mut().push_back(Pending { body, abort }))
        .expect("bobbin::spawn called outside bobbin::run: start a scheduler first");
}

impl Local {
    pub(super) fn new(stack_size: usize, worker: Option<(Rc<dyn WorkSource>, bool)>) -> Local {
        let (worker, migration) = match worker {
            Some((source, migration)) => (Some(source), migration),
            None => (None, false),
        };
        // Without a poller (no descriptors left, say) the scheduler still runs green
        // threads; their I/O reports why it cannot wait.
        let (driver, reactor_error): (Box<dyn Driver>, _) = match Reactor::new() {
            Ok(reactor) => (Box::new(reactor), None),
            Err(e) => (Box::new(ThreadDriver::new()), Some(e)),
        };
        Local {
            reactor_error,
            shared: Arc::new(Shared::new(driver.waker())),
            driver,
            ready: RefCell::new(VecDeque::new()),
            next: Cell::new(None),
            next_streak: Cell::new(0),
            tasks: RefCell::new(Vec::new()),
            unwinding: Cell::new(0),
            free_ids: RefCell::new(Vec::new()),
            live: Cell::new(0),
            entered: Cell::new(0),
            timers: RefCell::new(Timers::default()),
            current: Cell::new(None),
            stack_size,
            pending: RefCell::new(VecDeque::new()),
            policy: StartPolicy::default(),
            migration,
            worker,
            spare_headers: RefCell::new(Vec::new()),
            spare_coroutines: RefCell::new(Vec::new()),
            drained: RefCell::new(Vec::new()),
            stop_reason: RefCell::new(None),
            stall: Arc::new(super::stall::Probe::new()),
            #[cfg(test)]
            fault: Cell::new(false),
        }
    }

    /// Enters a green thread in the task table with a fresh header; returns its id.
    /// `main` marks the main green thread of `run`.
    pub(super) fn insert(&self, co: TaskCoroutine, hook: AbortHook, main: bool, migratable: bool) -> usize {
        let id = self.free_ids.borrow_mut().pop().unwrap_or_else(|| {
            let mut tasks = self.tasks.borrow_mut();
            tasks.push(None);
            tasks.len() - 1
        });
        let spare = self.spare_headers.borrow_mut().pop();
        let SpareHeader { header, lent, spare_ref } = match spare {
            Some(spare) => {
                spare.header.reuse(id);
                spare
            }
            None => {
                let header = Arc::new(TaskHeader::new(id, Arc::clone(&self.shared)));
                SpareHeader { lent: Arc::clone(&header), header, spare_ref: None }
            }
        };
        let entered = self.entered.get();
        self.entered.set(entered + 1);
        // A cancellation that came first is seen by the green thread's next park point.
        let cancel = if hook.record().entered(lent) { Seen::Cancelled } else { Seen::No };
        self.tasks.borrow_mut()[id] = Some(TaskSlot {
            cancel,
            co: Some(co),
            header,
            spare_ref,
            lent: None,
            parked: None,
            hook,
            main,
            locals: None,
            migratable,
            unwinding: false,
            entered,
        });
        self.live.set(self.live.get() + 1);
        id
    }

    /// Puts a ready task in the run queue, or, if it may migrate, on this worker's deque
    /// where any worker can take it.
    fn requeue(&self, id: usize) {
        if self.migration {
            if let (Some(w), Some(m)) = (&self.worker, self.take_migrant(id)) {
                w.push_migrant(m);
                return;
            }
        }
        self.ready.borrow_mut().push_back(id);
    }

    /// Requeues a task that an unparker holding `task` (a reference to its header) just
    /// made ready, and keeps that reference for the task's next unparker. Does nothing if
    /// the task is no longer in its slot (it finished, or migrated, since the wake-up).
    fn requeue_woken(&self, task: Arc<TaskHeader>) {
        let id = task.id();
        {
            let mut tasks = self.tasks.borrow_mut();
            let Some(slot) = tasks.get_mut(id).and_then(Option::as_mut).filter(|s| Arc::ptr_eq(&s.header, &task))
            else {
                return;
            };
            if slot.spare_ref.is_none() {
                slot.spare_ref = Some(task);
            }
        }
        // Woken by the green thread running here (a joined one that finished, the other
        // end of a channel) while nothing else is ready: its data is in the cache now, so
        // it runs next, before anything starts (the start policy would start every
        // unstarted green thread first). Behind ready ones it queues as usual: it would
        // only run sooner and more often, as would whatever wakes it (a joiner of many
        // green threads, woken at each one's end, then parks again for the next).
        if !self.migration
            && self.current.get().is_some()
            && self.next.get().is_none()
            && self.ready.borrow().is_empty()
        {
            self.next.set(Some(id));
            return;
        }
        self.requeue(id);
    }

    /// The green thread to run next out of turn, if one was woken by the last one that ran
    /// and fewer than [`NEXT_STREAK`] ran so in a row; past that it joins the back of the
    /// ready queue.
    fn take_next(&self) -> Option<usize> {
        let id = self.next.take()?;
        let streak = self.next_streak.get();
        if streak < NEXT_STREAK {
            self.next_streak.set(streak + 1);
            return Some(id);
        }
        self.ready.borrow_mut().push_back(id);
        None
    }

    /// Takes a ready, migratable task out of the table, to travel to any worker.
    fn take_migrant(&self, id: usize) -> Option<MigrantTask> {
        let movable = self.tasks.borrow()[id].as_ref().is_some_and(|s| s.migratable && !s.unwinding && s.co.is_some());
        if !movable {
            return None;
        }
        // Its outstanding unparkers are all stale (it is ready, so its last park ended);
        // the DONE state `remove` leaves on the old header keeps them so.
        let slot = self.remove(id)?;
        Some(MigrantTask { co: slot.co?, hook: slot.hook, locals: slot.locals })
    }

    /// Takes a task out of the table: its unparkers become no-ops and its id is free.
    fn remove(&self, id: usize) -> Option<TaskSlot> {
        let mut slot = self.tasks.borrow_mut()[id].take()?;
        if slot.unwinding {
            self.unwinding.set(self.unwinding.get() - 1);
        }
        slot.header.park.set_done();
        slot.lent = slot.hook.record().left();
        self.free_ids.borrow_mut().push(id);
        self.live.set(self.live.get() - 1);
        Some(slot)
    }

    /// One turn of a scheduler: take in wake-ups and due timers, then start a green thread
    /// or run a ready one, as [`StartPolicy`] says.
    pub(super) fn step(&self) -> Step {
        #[cfg(test)]
        if self.fault.take() {
            panic!("injected scheduler fault");
        }
        self.drain_remote();
        let deadline = self.fire_timers();
        if let Some(id) = self.take_next() {
            self.policy.ran_ready();
            return Step::Ran(self.run_task(id));
        }
        self.next_streak.set(0);
        let start = self.policy.start_now(self.ready.borrow().len());
        if start != Start::No {
            if self.start_next(start == Start::Anywhere) {
                self.policy.started();
                return Step::Ran(None);
            }
            self.policy.nothing_to_start();
        }
        let next = self.ready.borrow_mut().pop_front();
        match next {
            Some(id) => {
                self.policy.ran_ready();
                Step::Ran(self.run_task(id))
            }
            None => Step::Idle(deadline),
        }
    }

    /// Waits in the driver for something to do: until `deadline` (the next timer), a
    /// wake-up from another thread, or, on a runtime worker, new work.
    ///
    /// # Panics
    /// With the deadlock report, on a scheduler of `run` that nothing could ever wake.
    pub(super) fn idle(&self, deadline: Option<Instant>) {
        let timeout = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        if timeout == Some(std::time::Duration::ZERO) {
            return;
        }
        self.stall.idle();
        match &self.worker {
            Some(w) => w.park_idle(&*self.driver, timeout, &|| self.shared.has_remote.load(Ordering::Relaxed)),
            None => {
                if timeout.is_none() && !self.can_be_woken_from_outside() {
                    panic!("{}", self.deadlock_report());
                }
                // What could wake the scheduler from outside may go away without a word (a
                // thread that exits with an unparker's channel leaked, or one that is still
                // listed for a moment after it was joined): look again now and then rather
                // than sleep for good on a verdict that no longer holds.
                self.driver.park(Some(timeout.map_or(DEADLOCK_RECHECK, |t| t.min(DEADLOCK_RECHECK))));
            }
        }
    }

    /// Takes in the wake-ups and cancel requests of other threads.
    #[inline]
    pub(super) fn drain_remote(&self) {
        // Acquire pairs with the Release store in push_remote. The plain load keeps the
        // common case (nothing from other threads) free of a read-modify-write, and of a
        // call: only the check is inlined into the loop.
        if self.shared.has_remote.load(Ordering::Relaxed) && self.shared.has_remote.swap(false, Ordering::Acquire) {
            self.drain_remote_queues();
        }
    }

    #[inline(never)]
    fn drain_remote_queues(&self) {
        let mut woken = self.drained.borrow_mut();
        if let Some(queue) = self.shared.remote.lock().as_mut() {
            std::mem::swap(queue, &mut *woken);
        }
        for task in woken.drain(..) {
            self.requeue_woken(task);
        }
        drop(woken);
        self.drain_cancels();
    }

    /// Fires due timers; returns the next deadline, if any.
    fn fire_timers(&self) -> Option<Instant> {
        if self.timers.borrow().is_empty() {
            return None;
        }
        let now = Instant::now();
        loop {
            // The unparker runs with the heap unborrowed: waking may add timers.
            let due = self.timers.borrow_mut().take_due(now);
            match due {
                Ok(unparker) => {
                    unparker.unpark();
                }
                Err(next) => return next,
            }
        }
    }

    /// Runs one ready task until it gives control back.
    fn run_task(&self, id: usize) -> Option<JoinError> {
        let mut co = {
            let mut tasks = self.tasks.borrow_mut();
            let slot = tasks[id].as_mut().expect("a queued task exists");
            slot.parked = None;
            record::set_running(slot.cancel);
            if slot.cancel == Seen::Woken {
                // The park it ends unwinds; later ones for the flag alone.
                slot.cancel = Seen::Cancelled;
            }
            slot.co.take().expect("a queued task is not running")
        };
        self.current.set(Some(id));
        super::budget::refill();
        // A busy scheduler (one that never goes idle) lets its driver collect events once
        // every POLL_INTERVAL switches.
        if self.stall.enter(id).is_multiple_of(POLL_INTERVAL) {
            self.driver.poll();
        }
        let result = co.try_resume_discoverable(());
        self.current.set(None);
        record::set_running(Seen::No);
        match result {
            Ok(CoroutineResult::Yield(signal)) => {
                let mut tasks = self.tasks.borrow_mut();
                let slot = tasks[id].as_mut().expect("task slot");
                slot.co = Some(co);
                let unwinding = std::thread::panicking();
                if unwinding != slot.unwinding {
                    slot.unwinding = unwinding;
                    let count = self.unwinding.get();
                    self.unwinding.set(if unwinding { count + 1 } else { count - 1 });
                }
                match signal {
                    // The green thread marked itself parked before it published its
                    // unparker; one that already fired queued it (or will, through the
                    // remote queue), which is only read after this.
                    Signal::Park(kind) => slot.parked = Some(kind),
                    Signal::Yield => {
                        drop(tasks);
                        self.requeue(id);
                    }
                }
                None
            }
            Ok(CoroutineResult::Return(())) => {
                self.retire(id, co);
                None
            }
            Err(e) => {
                // A panic that escaped the body, or a stack overflow: the green thread is
                // gone. Its abort hook reports it; only the main green thread of `run` has
                // none, and its failure goes back to `run`.
                let (thread, stack_size) = {
                    let tasks = self.tasks.borrow();
                    let record = tasks[id].as_ref().expect("task slot").hook.record();
                    (record.thread().clone(), record.stack_size().unwrap_or(self.stack_size))
                };
                let error = match e {
                    crate::Error::Panicked(payload) => JoinError::panicked(payload, Some(thread)),
                    e @ crate::Error::StackOverflow { .. } => {
                        let message = format!(
                            "bobbin: green thread {thread} failed: {e}; it had a {} KiB stack \
                             (bobbin::Builder::stack_size sets one green thread's, a Runtime's \
                             builder its workers'), and large values can live on the heap instead",
                            stack_size / 1024
                        );
                        JoinError::overflowed(message)
                    }
                    e => JoinError::stopped(format!("bobbin: a green thread failed: {e}")),
                };
                match self.retire(id, co) {
                    Some(abort) => {
                        if error.is_stack_overflow() {
                            // No panic hook ran: say what happened, as a panic would.
                            eprintln!("{error}");
                        }
                        abort.abort(error);
                        None
                    }
                    None => Some(error),
                }
            }
        }
    }

    /// Removes a finished task; returns its abort hook (unused if it finished normally).
    /// Its header and coroutine box are kept for reuse where nothing else holds them.
    fn retire(&self, id: usize, co: TaskCoroutine) -> Option<AbortHook> {
        let mut spare_cos = self.spare_coroutines.borrow_mut();
        if spare_cos.len() < SPARES {
            spare_cos.push(co);
        }
        let TaskSlot { header, spare_ref, lent, hook, main, .. } = self.remove(id)?;
        let mut spare_headers = self.spare_headers.borrow_mut();
        if let (true, Some(lent)) = (spare_headers.len() < SPARES, lent) {
            // Every reference held here, and no weak one (a cancel request in flight): no
            // unparker of the finished green thread is left to wake its header's next one.
            let held = 2 + usize::from(spare_ref.is_some());
            if Arc::strong_count(&header) == held && Arc::weak_count(&header) == 0 {
                // Acquire: whatever the threads that dropped their references did with the
                // header (their last wake-up) comes before its reuse.
                fence(Ordering::Acquire);
                spare_headers.push(SpareHeader { header, lent, spare_ref });
            }
        }
        (!main).then_some(hook)
    }
}

/// Makes a scheduler this thread's current one for the guard's lifetime.
pub(super) struct CurrentGuard;

impl CurrentGuard {
    pub(super) fn set(local: &Rc<Local>) -> CurrentGuard {
        CURRENT.with(|c| *c.borrow_mut() = Some(Rc::clone(local)));
        CurrentGuard
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.borrow_mut().take());
    }
}
