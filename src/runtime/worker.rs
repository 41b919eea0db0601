//! What the workers of one runtime share: the injector, the stealers of every worker's
//! deque, the set of idle workers, and the shutdown flag; and the job a deque holds.
//!
//! Idle protocol (no lost wake-up, no thundering herd): a worker about to sleep adds
//! itself to `idle`, issues a SeqCst fence and looks at every queue once more; a producer
//! pushes its job, issues a SeqCst fence and then reads `idle_count`. Of the two fences one
//! comes first, so either the worker sees the job or the producer sees the worker, and the
//! producer then wakes exactly one sleeper. `Thread::unpark` keeps a token, so an unpark
//! that lands between the re-check and the park is not lost either.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};

use crate::engine::{MigrationPermit, Movable};
use crate::park::{Lock, Waker};
use crate::sched::driver::Driver;
use crate::sched::scheduler::MigrantTask;
use crate::sched::work::{Job, StartJob, WorkSource};

/// What a worker deque or the injector holds.
pub(crate) enum RtJob {
    /// A green thread to start.
    Start(StartJob),
    /// A suspended green thread that is ready to continue on any worker (only with
    /// migration allowed).
    Resume(Movable<MigrantTask>),
}

impl RtJob {
    /// Drops a job at shutdown: a green thread that had not started is told `reason`; one
    /// that had is unwound (its joiner learns the reason from the scheduler dropping it).
    fn abandon(self, reason: String) {
        match self {
            RtJob::Start(start) => start.abandon(reason),
            RtJob::Resume(m) => drop(m),
        }
    }

    /// The job as the scheduler takes it.
    fn into_job(self) -> Job {
        match self {
            RtJob::Start(start) => Job::Start(start),
            RtJob::Resume(m) => Job::Resume(m.into_inner()),
        }
    }
}

/// Once every this many jobs a worker takes the oldest work first: the injector before its
/// own queues, and its deque before its newest spawn, so neither tasks spawned from outside
/// nor old local ones are starved by a worker that keeps feeding itself.
const FAIRNESS_INTERVAL: u32 = 61;

/// The state all workers of a runtime share.
pub(crate) struct RtShared {
    injector: Injector<RtJob>,
    stealers: Vec<WorkerStealers>,
    /// Sleeping workers and their threads.
    idle: Lock<Vec<usize>>,
    /// Each started worker's waker, by index: what a shutdown wakes.
    wakers: Lock<Vec<Option<Waker>>>,
    idle_count: AtomicUsize,
    shutdown: AtomicBool,
    /// Set when a worker died of an internal error: what every joiner is then told.
    failure: OnceLock<String>,
    pub(crate) migration: Option<MigrationPermit>,
    pub(crate) stack_size: usize,
}

impl RtShared {
    /// The shared part and one deque per worker.
    pub(crate) fn new(
        workers: usize,
        stack_size: usize,
        migration: Option<MigrationPermit>,
    ) -> (Arc<RtShared>, Vec<WorkerDeques>) {
        let deques: Vec<WorkerDeques> =
            (0..workers).map(|_| WorkerDeques { starts: Worker::new_lifo(), migrants: Worker::new_fifo() }).collect();
        let shared = Arc::new(RtShared {
            injector: Injector::new(),
            stealers: deques
                .iter()
                .map(|d| WorkerStealers { starts: d.starts.stealer(), migrants: d.migrants.stealer() })
                .collect(),
            idle: Lock::new(Vec::with_capacity(workers)),
            wakers: Lock::new(vec![None; workers]),
            idle_count: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            failure: OnceLock::new(),
            migration,
            stack_size,
        });
        (shared, deques)
    }

    /// Queues a job from outside the workers. On a runtime that has shut down (a worker
    /// failed; a dropped runtime cannot be reached), no worker would take it: it is dropped
    /// at once, and its joiner told why.
    pub(crate) fn inject(&self, job: RtJob) {
        self.injector.push(job);
        // SeqCst, with the one in `begin_shutdown`: either the shutdown is seen here, or
        // the job was in the injector before the workers' final drain looked at it.
        fence(Ordering::SeqCst);
        if self.shutdown.load(Ordering::Relaxed) {
            self.drain_injector();
            return;
        }
        self.notify_one();
    }

    /// Wakes one sleeping worker, if any, after a job was queued.
    pub(crate) fn notify_one(&self) {
        fence(Ordering::SeqCst);
        if self.idle_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let woken = {
            let mut idle = self.idle.lock();
            let w = idle.pop();
            self.idle_count.store(idle.len(), Ordering::Relaxed);
            w
        };
        if let Some(index) = woken {
            self.wake_worker(index);
        }
    }

    /// Wakes worker `index`'s driver (a worker sleeps only after its scheduler started
    /// and registered its waker).
    fn wake_worker(&self, index: usize) {
        let waker = self.wakers.lock()[index].clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Asks every worker to stop and wakes them; the caller then joins them.
    pub(crate) fn begin_shutdown(&self) {
        // SeqCst, with the worker's store of its waker and its later look at the flag:
        // either a worker's waker is seen here, or that worker sees the flag.
        self.shutdown.store(true, Ordering::SeqCst);
        for waker in self.wakers.lock().iter().flatten() {
            waker.wake();
        }
    }

    /// A worker failed with an internal error: records `reason` for every joiner, and
    /// stops the runtime (waking every sleeping worker, so each unwinds what it holds).
    /// The jobs left in the injector are dropped now: the runtime may not be dropped for a
    /// long time (a `Runtime::scope` borrowing it waits for them).
    pub(crate) fn fail(&self, reason: String) {
        let _ = self.failure.set(reason);
        self.begin_shutdown();
        self.drain_injector();
    }

    /// What the joiner of a green thread that a shutdown unwinds or drops is told.
    pub(crate) fn stop_reason(&self) -> String {
        match self.failure.get() {
            Some(reason) => reason.clone(),
            None => "bobbin: the runtime shut down (it was dropped) before this green thread finished; \
                     it was unwound"
                .into(),
        }
    }

    /// Drops every job still in the injector (their joiners learn why).
    pub(crate) fn drain_injector(&self) {
        loop {
            match self.injector.steal() {
                Steal::Success(job) => job.abandon(self.stop_reason()),
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
    }

    fn has_visible_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.starts.is_empty() || !s.migrants.is_empty())
    }
}

/// The deques of one worker, as the worker owns them.
pub(crate) struct WorkerDeques {
    starts: Worker<RtJob>,
    migrants: Worker<RtJob>,
}

/// The deques of one worker, as the others steal from them.
struct WorkerStealers {
    starts: Stealer<RtJob>,
    migrants: Stealer<RtJob>,
}

/// Runs `steal` until it succeeds or finds nothing (it retries while contended).
fn retry_steal(mut steal: impl FnMut() -> Steal<RtJob>) -> Option<RtJob> {
    loop {
        match steal() {
            Steal::Success(job) => return Some(job),
            Steal::Empty => return None,
            Steal::Retry => {}
        }
    }
}

/// A worker's own part: its deques and where to look when it runs dry.
///
/// Green threads spawned on a worker wait on a LIFO deque: the worker starts the newest
/// first, thieves take the oldest. A green thread that spawns and then joins so runs the
/// child next, depth first, while the older (larger) subtrees are what other workers take;
/// with a FIFO, a recursive spawn-and-join computation runs breadth first on a busy worker
/// and holds a parked stack for most of its tree at once. Once every
/// [`FAIRNESS_INTERVAL`] jobs the worker takes its oldest spawn instead, so a chain of
/// spawns cannot hold older ones back forever. Ready green threads that may migrate wait
/// on a FIFO deque of their own, which keeps them round-robin.
pub(crate) struct WorkerPart {
    pub(crate) index: usize,
    /// Green threads spawned here that have not started (LIFO).
    starts: Worker<RtJob>,
    /// On the only worker of its runtime, what it spawns waits here instead of on `starts`,
    /// the same way round: no worker can steal, so the deque's fence on every pop would buy
    /// nothing. (`starts` still takes the injector's batches.)
    alone: Option<RefCell<VecDeque<RtJob>>>,
    /// Suspended green threads ready to continue anywhere (FIFO; with migration only).
    migrants: Worker<RtJob>,
    pub(crate) rt: Arc<RtShared>,
    rng: Cell<u64>,
    ticks: Cell<u32>,
}

impl WorkerPart {
    pub(crate) fn new(index: usize, deques: WorkerDeques, rt: Arc<RtShared>) -> WorkerPart {
        // Any odd seed works for xorshift; spread them so workers pick different victims.
        let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(index as u64 + 1) | 1;
        let WorkerDeques { starts, migrants } = deques;
        let alone = (rt.stealers.len() == 1).then(|| RefCell::new(VecDeque::new()));
        WorkerPart { index, starts, alone, migrants, rt, rng: Cell::new(seed), ticks: Cell::new(0) }
    }

    /// Queues a green thread spawned on this worker.
    pub(crate) fn push_spawn(&self, job: RtJob) {
        if let Some(alone) = &self.alone {
            alone.borrow_mut().push_back(job);
            return;
        }
        self.starts.push(job);
        // The only worker of its runtime is running (it pushes): nobody sleeps who could
        // take the job, so the fence and look at the idle list would be spent on nothing.
        if self.rt.stealers.len() > 1 {
            self.rt.notify_one();
        }
    }

    /// Queues a ready green thread that may continue on any worker.
    fn push_migrant_job(&self, job: RtJob) {
        self.migrants.push(job);
        self.rt.notify_one();
    }

    /// The next job of this worker's own: a ready migrant, else its newest spawn (its
    /// oldest, once every [`FAIRNESS_INTERVAL`] jobs).
    fn pop_local_job(&self) -> Option<RtJob> {
        self.pop_own(self.oldest_first())
    }

    fn pop_own(&self, oldest_first: bool) -> Option<RtJob> {
        if let Some(job) = self.migrants.pop() {
            return Some(job);
        }
        if let Some(alone) = &self.alone {
            let mut alone = alone.borrow_mut();
            let job = if oldest_first { alone.pop_front() } else { alone.pop_back() };
            if job.is_some() {
                return job;
            }
        }
        if oldest_first {
            // The old end of a LIFO deque is where thieves take from.
            if let Some(job) = retry_steal(|| self.rt.stealers[self.index].starts.steal()) {
                return Some(job);
            }
        }
        self.starts.pop()
    }

    /// Counts a job taken; true once every [`FAIRNESS_INTERVAL`] jobs.
    fn oldest_first(&self) -> bool {
        let ticks = self.ticks.get().wrapping_add(1);
        self.ticks.set(ticks);
        ticks.is_multiple_of(FAIRNESS_INTERVAL)
    }

    fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// The next job: this worker's own, then the injector (first, once in a while), then a
    /// batch stolen from a random victim.
    fn find_any_job(&self) -> Option<RtJob> {
        let oldest_first = self.oldest_first();
        if oldest_first {
            if let Some(job) = self.steal_injector() {
                return Some(job);
            }
        }
        self.pop_own(oldest_first).or_else(|| self.steal_injector()).or_else(|| self.steal_from_victims())
    }

    /// Drops every job this worker holds (at shutdown); whether there was any.
    fn drop_own_jobs(&self) -> bool {
        let mut dropped = false;
        let own = || self.alone.as_ref().and_then(|alone| alone.borrow_mut().pop_back());
        while let Some(job) = self.migrants.pop().or_else(own).or_else(|| self.starts.pop()) {
            job.abandon(self.rt.stop_reason());
            dropped = true;
        }
        dropped
    }

    fn steal_injector(&self) -> Option<RtJob> {
        retry_steal(|| self.rt.injector.steal_batch_and_pop(&self.starts))
    }

    fn steal_from_victims(&self) -> Option<RtJob> {
        let n = self.rt.stealers.len();
        if n <= 1 {
            return None;
        }
        let start = (self.next_random() % n as u64) as usize;
        loop {
            let mut retry = false;
            for k in 0..n {
                let victim = (start + k) % n;
                if victim == self.index {
                    continue;
                }
                let theirs = &self.rt.stealers[victim];
                // `or_else` tries the second deque only if the first gave nothing.
                let stolen = theirs
                    .migrants
                    .steal_batch_and_pop(&self.migrants)
                    .or_else(|| theirs.starts.steal_batch_and_pop(&self.starts));
                match stolen {
                    Steal::Success(job) => return Some(job),
                    Steal::Empty => {}
                    Steal::Retry => retry = true,
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Sleeps until woken, `timeout` passes, or the runtime shuts down, unless work shows
    /// up while registering as idle. `has_remote` reports wake-ups queued for this worker.
    fn sleep_idle(&self, driver: &dyn Driver, timeout: Option<std::time::Duration>, has_remote: &dyn Fn() -> bool) {
        {
            let mut idle = self.rt.idle.lock();
            idle.push(self.index);
            self.rt.idle_count.store(idle.len(), Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        if !(self.rt.has_visible_work() || has_remote() || self.rt.is_shutdown()) {
            driver.park(timeout);
        }
        let mut idle = self.rt.idle.lock();
        idle.retain(|&i| i != self.index);
        self.rt.idle_count.store(idle.len(), Ordering::Relaxed);
    }
}

impl WorkSource for WorkerPart {
    fn pop_local(&self) -> Option<Job> {
        self.pop_local_job().map(RtJob::into_job)
    }

    fn find_job(&self) -> Option<Job> {
        self.find_any_job().map(RtJob::into_job)
    }

    fn take_newest_start(&self, key: *const ()) -> Option<Job> {
        let newest_is_it = |job: &RtJob| matches!(job, RtJob::Start(start) if start.is_for(key));
        if let Some(alone) = &self.alone {
            let mut alone = alone.borrow_mut();
            return if alone.back().is_some_and(newest_is_it) { alone.pop_back().map(RtJob::into_job) } else { None };
        }
        // The owner's end of the deque is its newest job; one that is not it goes back on
        // top, where it was (a thief takes from the other end).
        let job = self.starts.pop()?;
        if newest_is_it(&job) {
            return Some(job.into_job());
        }
        self.starts.push(job);
        None
    }

    fn push_migrant(&self, task: MigrantTask) {
        let permit = self.rt.migration.expect("the scheduler offers migrants only with migration allowed");
        self.push_migrant_job(RtJob::Resume(Movable::new(task, permit)));
    }

    fn is_shutdown(&self) -> bool {
        self.rt.is_shutdown()
    }

    fn started(&self, waker: Waker) {
        self.rt.wakers.lock()[self.index] = Some(waker);
        fence(Ordering::SeqCst);
    }

    fn park_idle(&self, driver: &dyn Driver, timeout: Option<std::time::Duration>, has_remote: &dyn Fn() -> bool) {
        self.sleep_idle(driver, timeout, has_remote);
    }

    fn drop_jobs(&self) -> bool {
        self.drop_own_jobs()
    }

    fn stop_reason(&self) -> String {
        self.rt.stop_reason()
    }

    fn fail(&self, reason: String) {
        self.rt.fail(reason);
    }

    fn index(&self) -> usize {
        self.index
    }
}

thread_local! {
    /// The worker running on this thread, if it is a runtime worker: how `runtime::spawn`
    /// finds its runtime and its deque.
    static CURRENT_WORKER: std::cell::RefCell<Option<Rc<WorkerPart>>> = const { std::cell::RefCell::new(None) };
}

/// Runs worker `part` on this thread until its runtime shuts down.
pub(crate) fn run(part: WorkerPart) {
    let part = Rc::new(part);
    let (stack_size, migration) = (part.rt.stack_size, part.rt.migration.is_some());
    CURRENT_WORKER.with(|w| *w.borrow_mut() = Some(Rc::clone(&part)));
    crate::sched::run_worker(part, stack_size, migration);
    let _ = CURRENT_WORKER.try_with(|w| w.borrow_mut().take());
}

/// Queues a spawned `job` on the calling worker if it is a worker of `rt`; hands it back
/// otherwise.
pub(crate) fn push_worker_job(rt: &Arc<RtShared>, job: RtJob) -> Result<(), RtJob> {
    let mut job = Some(job);
    let _ = CURRENT_WORKER.try_with(|w| {
        if let Some(w) = w.borrow().as_ref().filter(|w| Arc::ptr_eq(&w.rt, rt)) {
            w.push_spawn(job.take().expect("the job is pushed once"));
        }
    });
    job.map_or(Ok(()), Err)
}

/// Queues a spawned `job` on the calling worker, whatever its runtime; hands it back if the
/// caller is not a worker. For `runtime::spawn`, which needs no reference to the runtime
/// beyond the worker's own.
pub(crate) fn push_current_worker_job(job: RtJob) -> Result<(), RtJob> {
    let mut job = Some(job);
    let _ = CURRENT_WORKER.try_with(|w| {
        if let Some(w) = w.borrow().as_ref() {
            w.push_spawn(job.take().expect("the job is pushed once"));
        }
    });
    job.map_or(Ok(()), Err)
}

/// The runtime whose worker is the calling thread, if any.
pub(crate) fn current_runtime() -> Option<Arc<RtShared>> {
    CURRENT_WORKER.try_with(|w| w.borrow().as_ref().map(|w| Arc::clone(&w.rt))).ok().flatten()
}
