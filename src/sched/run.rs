//! Running a scheduler on an OS thread: for `run` (a main green thread until everything it
//! spawned has finished) or for a runtime worker (jobs from a [`WorkSource`] until it
//! says to stop), and stopping it, with every green thread left unwound.

use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use super::record::TaskRecord;
use super::scheduler::{in_scheduler, Body, CurrentGuard, Local, Step};
use super::thread::GreenThread;
use super::work::WorkSource;
use super::{JoinError, JoinState};
use crate::stack::DEFAULT_STACK_SIZE;

/// Runs `main` as the first green thread of a new scheduler on this thread, until it and
/// every green thread spawned meanwhile have finished. A panic of `main` propagates (after
/// the remaining green threads are unwound).
pub(crate) fn run_scheduler(main: Box<dyn FnOnce()>) {
    if in_scheduler() {
        panic!("bobbin::run called inside bobbin::run: a thread runs one scheduler at a time");
    }
    super::thread::install_panic_hook();
    let local = Rc::new(Local::new(DEFAULT_STACK_SIZE, None));
    super::stall::register(&local.stall);
    let _current = CurrentGuard::set(&local);

    let co =
        local.make_coroutine(Body::Boxed(main), None).unwrap_or_else(|e| panic!("bobbin::run could not start: {e}"));
    // The main green thread reports to `run`, not to a joiner: its join state only holds
    // its record.
    let record = TaskRecord::new(GreenThread::new(None));
    let id = local.insert(co, Arc::new(JoinState::<(), ()>::new(record)), true, false);
    local.ready.borrow_mut().push_back(id);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| scheduler_loop(&local)));
    match outcome {
        Ok(None) => {}
        Ok(Some(error)) => {
            local.unwind_all(
                "bobbin: the green thread was unwound before it finished: the main green thread of \
                 bobbin::run failed",
            );
            if error.is_panic() {
                panic::resume_unwind(error.into_panic());
            }
            // An overflow has not been through the panic hook: raise it as a panic of its
            // own, so that it is printed like one.
            panic!("{error}");
        }
        Err(payload) => {
            let reason = format!(
                "bobbin: the green thread was unwound before it finished: its scheduler failed: {}",
                crate::error::panic_message(payload.as_ref())
            );
            local.unwind_all(&reason);
            panic::resume_unwind(payload);
        }
    }
}

/// The loop; returns the failure of the main green thread, if it failed.
fn scheduler_loop(local: &Local) -> Option<JoinError> {
    loop {
        let deadline = match local.step() {
            // Only the main green thread has no abort hook, so a failure is its own.
            Step::Ran(Some(error)) => return Some(error),
            Step::Ran(None) => continue,
            Step::Idle(deadline) => deadline,
        };
        if local.live.get() == 0 {
            return None;
        }
        local.idle(deadline);
    }
}

/// Runs a scheduler on this thread that takes its work from `source` (a worker of a
/// multi-threaded runtime) until the source says to stop; then unwinds every green thread
/// left on it. With `migration`, ready green threads started from jobs are offered back to
/// the source instead of staying here.
///
/// A panic of the scheduler itself (a bug: green threads' own panics are caught on their
/// stacks) must not leave joiners waiting for a worker that is gone, or tell them the
/// runtime shut down when it did not: the source is told of the failure (the runtime stops
/// every worker), and each joiner learns what happened.
pub(crate) fn run_worker(source: Rc<dyn WorkSource>, stack_size: usize, migration: bool) {
    crate::trap::ensure_installed();
    super::thread::install_panic_hook();
    let index = source.index();
    let local = Rc::new(Local::new(stack_size, Some((Rc::clone(&source), migration))));
    super::stall::register(&local.stall);
    let _current = CurrentGuard::set(&local);
    source.started(local.driver.waker());
    let reason = match panic::catch_unwind(AssertUnwindSafe(|| worker_loop(&local, &*source))) {
        Ok(()) => source.stop_reason(),
        Err(payload) => {
            let reason = format!(
                "bobbin: internal error: worker {index} of the runtime failed ({}); the runtime \
                 shut down and the green thread was unwound before it finished",
                crate::error::panic_message(payload.as_ref())
            );
            eprintln!("{reason}");
            source.fail(reason.clone());
            reason
        }
    };
    let stopped = panic::catch_unwind(AssertUnwindSafe(|| local.stop_worker(&*source, &reason)));
    if let Err(payload) = stopped {
        eprintln!(
            "bobbin: internal error: worker {index} failed while stopping ({}); the green threads \
             left on it are leaked",
            crate::error::panic_message(payload.as_ref())
        );
        // Running their destructors on a scheduler in an unknown state could do worse.
        std::mem::forget(Rc::clone(&local));
    }
}

fn worker_loop(local: &Local, source: &dyn WorkSource) {
    while !source.is_shutdown() {
        // Every task on a worker has an abort hook, so no failure comes back from a step.
        if let Step::Idle(deadline) = local.step() {
            local.idle(deadline);
        }
    }
}

impl Local {
    /// Shutdown of a worker: unwinds every green thread on it (their destructors may wake or
    /// spawn others, so repeat until none is left), drops the jobs on its deque, and stops
    /// accepting wake-ups.
    fn stop_worker(&self, w: &dyn WorkSource, reason: &str) {
        loop {
            self.drain_remote();
            self.ready.borrow_mut().clear();
            self.next.set(None);
            self.timers.borrow_mut().clear();
            self.unwind_all(reason);
            let dropped_any = w.drop_jobs();
            if !dropped_any && !self.has_tasks() {
                break;
            }
        }
        let left = self.shared.remote.lock().take();
        drop(left);
    }
}
