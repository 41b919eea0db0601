//! Starting green threads: the coroutine a green thread's body runs on, and where a
//! scheduler takes the next one to start from (its own pending ones, then, on a runtime
//! worker, its deque, the injector and other workers).

use std::sync::Arc;

use super::{current_local, AbortHook, JoinError, Local, Pending, Signal, TaskCoroutine};
use crate::coroutine;
use crate::coroutine::{Builder, Yielder};
use crate::sched::join::join_key;
use crate::sched::work::Job;
use crate::sched::{budget, record};

/// What a green thread's coroutine runs: a boxed body, or the body its join state holds
/// (reached through a reference to its abort hook).
pub(in crate::sched) enum Body {
    Boxed(Box<dyn FnOnce()>),
    Held(AbortHook),
}

/// Starts the green thread whose join state is at `key` now, from the stack of the green
/// thread that is about to wait for it, if it has not started and is the newest one
/// waiting to start on this scheduler (its own spawn, as a rule).
///
/// The child runs on its own stack, as its own green thread, exactly as if the scheduler
/// had started it next; only the switch into it is made from the joiner's stack, and it
/// comes back there when the child finishes, parks or yields. The joiner then finds the
/// child's result without parking, or parks as before. Starting it so keeps the calls and
/// returns of the two stacks matched, which the CPU's return prediction needs: a joiner
/// that parked and was resumed later would return through frames whose return addresses
/// the predictor lost meanwhile (`bench-results/return-prediction.md`).
///
/// Not done for a caller on the stack of a coroutine it drives (its park would be relayed),
/// nor for a cancelled one (it parks, and unwinds there).
pub(crate) fn start_joined(key: *const ()) {
    // A cancelled joiner goes on to park, where it unwinds; the child stays unstarted.
    if coroutine::current_suspender::<(), Signal>().is_none() || record::running() != record::Seen::No {
        return;
    }
    let Some(local) = current_local() else { return };
    let Some(joiner) = local.current.get() else { return };
    let Some(start) = local.take_newest_unstarted(key) else { return };
    let left = budget::left();
    match start {
        Unstarted::Pending(Pending { body, abort }) => drop(local.start(Some(body), abort, false)),
        Unstarted::Job(job) => local.run_job(job),
    }
    // What running the child changed of the joiner's state, set back. What it knows of its
    // cancellation is in its slot: the child may have cancelled it meanwhile (through the
    // joiner's handle), which its next park point must see.
    local.current.set(Some(joiner));
    local.stall.enter(joiner);
    let seen = local.tasks.borrow()[joiner].as_ref().map_or(record::Seen::No, |slot| slot.cancel);
    record::set_running(seen);
    budget::restore(left);
}

/// A green thread taken out of its queue to start on a joiner's stack.
enum Unstarted {
    /// Spawned on this scheduler (`bobbin::spawn`).
    Pending(Pending),
    /// Spawned on this runtime worker.
    Job(Job),
}

impl Local {
    /// The newest unstarted green thread of this scheduler if its join state is at `key`.
    fn take_newest_unstarted(&self, key: *const ()) -> Option<Unstarted> {
        {
            let mut pending = self.pending.borrow_mut();
            if pending.back().is_some_and(|p| join_key(&p.abort) == key) {
                return pending.pop_back().map(Unstarted::Pending);
            }
        }
        self.worker.as_ref()?.take_newest_start(key).map(Unstarted::Job)
    }

    /// The coroutine of a green thread running `body`, on a stack from this thread's pool.
    /// `stack_size` is the green thread's own, if it asked for one.
    pub(in crate::sched) fn make_coroutine(
        &self,
        body: Body,
        stack_size: Option<usize>,
    ) -> Result<TaskCoroutine, crate::Error> {
        let co = Builder::new().stack_size(stack_size.unwrap_or(self.stack_size)).spawn_discoverable(
            move |_: &Yielder<(), Signal>, ()| match body {
                Body::Boxed(body) => body(),
                Body::Held(hook) => hook.run_body(),
            },
        )?;
        Ok(match self.spare_coroutines.borrow_mut().pop() {
            // Replacing a finished coroutine drops nothing but its state: its stack is gone.
            Some(mut spare) => {
                *spare = co;
                spare
            }
            None => Box::new(co),
        })
    }

    /// Starts a pending green thread or, on a worker, a job from its own deque or (when
    /// `steal`) from the injector and other workers. False if there was none.
    pub(super) fn start_next(&self, steal: bool) -> bool {
        if self.start_pending() {
            return true;
        }
        let Some(w) = &self.worker else { return false };
        let job = if steal { w.find_job() } else { w.pop_local() };
        match job {
            Some(job) => {
                self.run_job(job);
                true
            }
            None => false,
        }
    }

    /// Starts the oldest pending green thread of this scheduler; false if none is pending.
    pub(super) fn start_pending(&self) -> bool {
        let Some(Pending { body, abort }) = self.pending.borrow_mut().pop_front() else {
            return false;
        };
        // Pending green threads report to their hooks, so no failure comes back here.
        drop(self.start(Some(body), abort, false));
        true
    }

    /// Creates a green thread's coroutine and runs it until it first gives control back.
    /// Without a stack, the joiner learns why and the scheduler carries on.
    pub(super) fn start(
        &self,
        body: Option<Box<dyn FnOnce()>>,
        abort: AbortHook,
        migratable: bool,
    ) -> Option<JoinError> {
        let body = match body {
            Some(body) => Body::Boxed(body),
            None => Body::Held(Arc::clone(&abort)),
        };
        match self.make_coroutine(body, abort.record().stack_size()) {
            Ok(co) => {
                let id = self.insert(co, abort, false, migratable);
                self.run_task(id)
            }
            Err(e) => {
                abort.abort(JoinError::stopped(format!("bobbin: could not start the green thread: {e}")));
                None
            }
        }
    }

    /// Starts or continues the green thread of a job taken from a deque.
    pub(super) fn run_job(&self, job: Job) {
        // Every runtime task has an abort hook, so no failure is reported back here.
        match job {
            Job::Start(start) => {
                let (body, abort) = start.into_parts();
                let body = body.map(|b| -> Box<dyn FnOnce()> { b });
                drop(self.start(body, abort, self.migration));
            }
            Job::Resume(m) => {
                let id = self.insert(m.co, m.hook, false, true);
                self.tasks.borrow_mut()[id].as_mut().expect("just inserted").locals = m.locals;
                drop(self.run_task(id));
            }
        }
    }
}
