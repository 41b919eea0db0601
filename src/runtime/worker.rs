//! What the workers of one runtime share: the injector, the stealers of every worker's
//! deque, the set of idle workers, and the shutdown flag; and the job a deque holds.
//!
//! Idle protocol (no lost wake-up, no thundering herd): a worker about to sleep adds
//! itself to `idle`, issues a SeqCst fence and looks at every queue once more; a producer
//! pushes its job, issues a SeqCst fence and then reads `idle_count`. Of the two fences one
//! comes first, so either the worker sees the job or the producer sees the worker, and the
//! producer then wakes exactly one sleeper. `Thread::unpark` keeps a token, so an unpark
//! that lands between the re-check and the park is not lost either.

use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};

use crate::context::stackful::{MigrationPermit, Movable};
use crate::sched::scheduler::MigrantTask;
use crate::sched::{SendAbort, SendBody};

/// A green thread that has not started: `Send` closures, so any worker may start it.
/// If it is dropped unstarted (the runtime shut down first), its joiner is told so.
pub(crate) struct StartJob {
    body: Option<SendBody>,
    abort: Option<SendAbort>,
}

impl StartJob {
    pub(crate) fn new(body: SendBody, abort: SendAbort) -> StartJob {
        StartJob { body: Some(body), abort: Some(abort) }
    }

    /// The body and abort hook, for the worker that starts the green thread.
    pub(crate) fn into_parts(mut self) -> (SendBody, SendAbort) {
        match (self.body.take(), self.abort.take()) {
            (Some(body), Some(abort)) => (body, abort),
            _ => unreachable!("a start job is taken apart once"),
        }
    }
}

impl Drop for StartJob {
    fn drop(&mut self) {
        if let (Some(_), Some(abort)) = (self.body.take(), self.abort.take()) {
            abort(Box::new("bobbin: the runtime shut down before this green thread started"));
        }
    }
}

/// What a worker deque or the injector holds.
pub(crate) enum Job {
    /// A green thread to start.
    Start(StartJob),
    /// A suspended green thread that is ready to continue on any worker (only with
    /// migration allowed).
    Resume(Movable<MigrantTask>),
}

/// Check the injector before the worker's own deque once every this many jobs, so tasks
/// spawned from outside are not starved by a worker that keeps feeding itself.
const INJECTOR_INTERVAL: u32 = 61;

/// The state all workers of a runtime share.
pub(crate) struct RtShared {
    injector: Injector<Job>,
    stealers: Vec<Stealer<Job>>,
    /// Sleeping workers and their threads.
    idle: Mutex<Vec<(usize, Thread)>>,
    idle_count: AtomicUsize,
    shutdown: AtomicBool,
    pub(crate) migration: Option<MigrationPermit>,
    pub(crate) stack_size: usize,
}

impl RtShared {
    /// The shared part and one deque per worker.
    pub(crate) fn new(
        workers: usize,
        stack_size: usize,
        migration: Option<MigrationPermit>,
    ) -> (Arc<RtShared>, Vec<Worker<Job>>) {
        let deques: Vec<Worker<Job>> = (0..workers).map(|_| Worker::new_fifo()).collect();
        let shared = Arc::new(RtShared {
            injector: Injector::new(),
            stealers: deques.iter().map(Worker::stealer).collect(),
            idle: Mutex::new(Vec::with_capacity(workers)),
            idle_count: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            migration,
            stack_size,
        });
        (shared, deques)
    }

    /// Queues a job from outside the workers.
    pub(crate) fn inject(&self, job: Job) {
        self.injector.push(job);
        self.notify_one();
    }

    /// Wakes one sleeping worker, if any, after a job was queued.
    pub(crate) fn notify_one(&self) {
        fence(Ordering::SeqCst);
        if self.idle_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let woken = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let w = idle.pop();
            self.idle_count.store(idle.len(), Ordering::Relaxed);
            w
        };
        if let Some((_, thread)) = woken {
            thread.unpark();
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Asks every worker to stop; the caller then unparks and joins them.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// Drops every job still in the injector (their joiners learn the runtime shut down).
    pub(crate) fn drain_injector(&self) {
        loop {
            match self.injector.steal() {
                Steal::Success(job) => drop(job),
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
    }

    fn has_visible_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }
}

/// A worker's own part: its deque and where to look when it runs dry.
pub(crate) struct WorkerPart {
    pub(crate) index: usize,
    pub(crate) deque: Worker<Job>,
    pub(crate) rt: Arc<RtShared>,
    rng: Cell<u64>,
    ticks: Cell<u32>,
}

impl WorkerPart {
    pub(crate) fn new(index: usize, deque: Worker<Job>, rt: Arc<RtShared>) -> WorkerPart {
        // Any odd seed works for xorshift; spread them so workers pick different victims.
        let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(index as u64 + 1) | 1;
        WorkerPart { index, deque, rt, rng: Cell::new(seed), ticks: Cell::new(0) }
    }

    /// Queues a job on this worker's deque, where idle workers can steal it.
    pub(crate) fn push(&self, job: Job) {
        self.deque.push(job);
        self.rt.notify_one();
    }

    fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// The next job: own deque, then the injector (first, once in a while), then a batch
    /// stolen from a random victim.
    pub(crate) fn find_job(&self) -> Option<Job> {
        let ticks = self.ticks.get().wrapping_add(1);
        self.ticks.set(ticks);
        if ticks.is_multiple_of(INJECTOR_INTERVAL) {
            if let Some(job) = self.steal_injector() {
                return Some(job);
            }
        }
        self.deque.pop().or_else(|| self.steal_injector()).or_else(|| self.steal_from_victims())
    }

    fn steal_injector(&self) -> Option<Job> {
        loop {
            match self.rt.injector.steal_batch_and_pop(&self.deque) {
                Steal::Success(job) => return Some(job),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    fn steal_from_victims(&self) -> Option<Job> {
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
                match self.rt.stealers[victim].steal_batch_and_pop(&self.deque) {
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
    pub(crate) fn park_idle(&self, timeout: Option<std::time::Duration>, has_remote: impl Fn() -> bool) {
        let me = std::thread::current();
        {
            let mut idle = self.rt.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push((self.index, me));
            self.rt.idle_count.store(idle.len(), Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        if !(self.rt.has_visible_work() || has_remote() || self.rt.is_shutdown()) {
            match timeout {
                Some(t) => std::thread::park_timeout(t),
                None => std::thread::park(),
            }
        }
        let mut idle = self.rt.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(i, _)| *i != self.index);
        self.rt.idle_count.store(idle.len(), Ordering::Relaxed);
    }
}
