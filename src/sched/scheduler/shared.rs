//! The part of a scheduler that other threads reach: the queue their wake-ups go to and
//! the waker of its driver; and how an unparker hands it a green thread to run again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use super::with_local;
use crate::park::{self, Home, Lock, Waker};

/// The part of a scheduler that other threads reach: where their wake-ups go.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Woken tasks; `None` once the scheduler has stopped (later wake-ups are dropped).
    pub(in crate::sched) remote: Lock<Option<Vec<Arc<TaskHeader>>>>,
    /// Whether `remote` may be non-empty; lets the loop skip the lock.
    pub(in crate::sched) has_remote: AtomicBool,
    /// Green threads of this scheduler that were cancelled from other threads, to wake if
    /// they are parked. Weak: a request must not keep the scheduler's parts alive.
    pub(in crate::sched) cancels: Lock<Vec<Weak<TaskHeader>>>,
    /// Wakes the scheduler's driver.
    waker: Waker,
}

impl Shared {
    pub(super) fn new(waker: Waker) -> Shared {
        Shared {
            remote: Lock::new(Some(Vec::new())),
            has_remote: AtomicBool::new(false),
            cancels: Lock::new(Vec::new()),
            waker,
        }
    }

    pub(super) fn push_remote(&self, task: Arc<TaskHeader>) {
        match self.remote.lock().as_mut() {
            Some(queue) => queue.push(task),
            None => return,
        }
        // Release pairs with the Acquire swap in the loop: the loop that sees the flag
        // sees the pushed task. If the flag was already up, whoever raised it unparks the
        // thread (or has), and the loop has not yet taken that task: it takes this one with
        // it.
        if !self.has_remote.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}

impl Shared {
    /// Queues a cancel request for green thread `task` and makes the scheduler look at it
    /// (the same flag as wake-ups: the loop drains both).
    pub(super) fn push_cancel(&self, task: Weak<TaskHeader>) {
        self.cancels.lock().push(task);
        // As in push_remote: the Release half pairs with the loop's Acquire swap.
        if !self.has_remote.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}

/// The header of a green thread of these schedulers.
pub(crate) type TaskHeader = park::TaskHeader<Shared>;

/// The unparker of a green thread of these schedulers, or of an OS thread.
pub(crate) type Unparker = park::Unparker<Shared>;

impl Home for Shared {
    /// Queues a task that an unparker just made ready: at once if its scheduler runs on
    /// the calling thread, otherwise through that scheduler's remote queue.
    fn make_ready(task: Arc<TaskHeader>) {
        let mut task = Some(task);
        with_local(|local| {
            if let Some(task) = task.take_if(|t| Arc::ptr_eq(&local.shared, &t.home)) {
                local.requeue_woken(task);
            }
        });
        if let Some(task) = task {
            let shared = Arc::clone(&task.home);
            shared.push_remote(task);
        }
    }
}
