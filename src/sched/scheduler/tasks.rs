//! The task table's per-green-thread records, as the rest of `sched` reaches them: the
//! record of the green thread running here (identity, cancel flag), its green-thread
//! locals, the wake-up of a parked green thread that was cancelled, and unwinding every
//! green thread left when a scheduler stops.

use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Weak};

use super::{with_local, Local, Pending, TaskHeader, TaskSlot, Unparker};
use crate::park::PARKED;
use crate::sched::local::LocalMap;
use crate::sched::record::{self, Seen, TaskRecord};
use crate::sched::thread::GreenThread;
use crate::sched::JoinError;

/// Runs `f` with the record of the green thread running on this thread, if any.
pub(crate) fn with_current_record<R>(f: impl FnOnce(&TaskRecord) -> R) -> Option<R> {
    with_local(|local| {
        let id = local.current.get()?;
        let tasks = local.tasks.borrow();
        Some(f(tasks[id].as_ref()?.hook.record()))
    })
    .flatten()
}

/// Whether the caller is unwinding from a panic, as far as that can be told of a green
/// thread: [`std::thread::panicking`] counts the panics of the whole OS thread, and a green
/// thread parked in the middle of its unwinding (a destructor that waits) raises that
/// count for every green thread that runs meanwhile.
///
/// On a green thread, the OS thread's count is taken for the caller's own unless other
/// green threads of this scheduler gave control back while the thread was panicking; then
/// it is the caller's only if the caller, too, did so last time (it was resumed in the
/// middle of its unwinding). Not told apart: a green thread that starts to unwind while
/// another is parked mid-unwind is taken for a bystander until it gives control back. So
/// this is for answers that are harmless when wrong that way (whether to poison a lock);
/// code that must not panic during an unwinding (a cancel point, a destructor that
/// reports misuse) keeps asking std, which errs the safe way.
pub(crate) fn panicking() -> bool {
    if !std::thread::panicking() {
        return false;
    }
    with_local(|local| {
        let Some(id) = local.current.get() else { return true };
        // A panic raised while the table is borrowed must not panic again here.
        let Ok(tasks) = local.tasks.try_borrow() else { return true };
        let Some(own) = tasks.get(id).and_then(Option::as_ref).map(|slot| slot.unwinding) else { return true };
        // Nobody else gave control back while the thread was panicking: the count is ours.
        own || local.unwinding.get() == 0
    })
    .unwrap_or(true)
}

/// The green thread running on this thread, for the panic hook: looks without borrowing
/// anything that the panicking code may hold (a panic inside the hook would abort).
pub(crate) fn current_thread_in_hook() -> Option<GreenThread> {
    with_local(|local| {
        let id = local.current.get()?;
        let tasks = local.tasks.try_borrow().ok()?;
        Some(tasks.get(id)?.as_ref()?.hook.record().thread().clone())
    })
    .flatten()
}

/// The locals of the green thread running on this thread (created on first use); `None`
/// outside a green thread.
pub(crate) fn current_locals() -> Option<Rc<LocalMap>> {
    with_local(|local| {
        let id = local.current.get()?;
        let mut tasks = local.tasks.borrow_mut();
        let slot = tasks[id].as_mut()?;
        Some(Rc::clone(slot.locals.get_or_insert_with(Rc::default)))
    })
    .flatten()
}

/// Takes the locals of the green thread running on this thread out of its slot.
pub(crate) fn take_current_locals() -> Option<Rc<LocalMap>> {
    with_local(|local| {
        let id = local.current.get()?;
        local.tasks.borrow_mut()[id].as_mut()?.locals.take()
    })
    .flatten()
}

/// Asks the scheduler of the green thread `task` to wake it if it is parked, because it
/// was cancelled: at once if that scheduler runs on this thread, otherwise through the
/// scheduler's queue of cancel requests.
pub(crate) fn wake_for_cancel(task: Arc<TaskHeader>) {
    let mut task = Some(task);
    with_local(|local| {
        if let Some(task) = task.take_if(|t| Arc::ptr_eq(&local.shared, &t.home)) {
            local.wake_cancelled(&task);
        }
    });
    if let Some(task) = task {
        let shared = Arc::clone(&task.home);
        shared.push_cancel(Arc::downgrade(&task));
    }
}

impl Local {
    /// Handles a cancellation of `task` if it sits in this scheduler's table: notes it in
    /// its slot and wakes it if it is parked. Runs on the scheduler's thread, with the
    /// green thread suspended (parked or ready), or running it (a green thread that
    /// cancels itself through its own handle).
    fn wake_cancelled(&self, task: &Arc<TaskHeader>) {
        let parked = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(slot) = tasks.get_mut(task.id()).and_then(Option::as_mut).filter(|s| Arc::ptr_eq(&s.header, task))
            else {
                return;
            };
            slot.cancel = slot.cancel.max(Seen::Cancelled);
            if self.current.get() == Some(task.id()) {
                record::set_running(Seen::Cancelled);
            }
            slot.parked.is_some()
        };
        if !parked {
            // Ready: it runs on this thread after this, and its next park point unwinds.
            return;
        }
        // Epoch first: the word only moves on from PARKED (another thread's wake-up), never
        // to a new park, since the green thread is suspended. So the epoch read while the
        // state still says PARKED is the park's, and a wake-up that came in between makes
        // this one stale.
        let epoch = task.park.epoch();
        if task.park.is_state(PARKED) && Unparker::for_task(Arc::clone(task), epoch).unpark() {
            // This wake-up, no other, ended the park: the green thread unwinds as it returns.
            if let Some(slot) = self.tasks.borrow_mut().get_mut(task.id()).and_then(Option::as_mut) {
                slot.cancel = Seen::Woken;
            }
        }
    }

    /// Handles the cancel requests other threads queued.
    pub(super) fn drain_cancels(&self) {
        let requests: Vec<Weak<TaskHeader>> = std::mem::take(&mut *self.shared.cancels.lock());
        for task in requests.iter().filter_map(Weak::upgrade) {
            self.wake_cancelled(&task);
        }
    }

    /// Whether any green thread is left in the task table.
    pub(in crate::sched) fn has_tasks(&self) -> bool {
        self.tasks.borrow().iter().any(Option::is_some)
    }

    /// Unwinds every green thread left, telling their joiners `reason`.
    pub(in crate::sched) fn unwind_all(&self, reason: &str) {
        *self.stop_reason.borrow_mut() = Some(reason.to_owned());
        // Green threads that never started: their joiners learn why.
        let pending: Vec<Pending> = self.pending.borrow_mut().drain(..).collect();
        for p in pending {
            drop(p.body);
            p.abort.abort(JoinError::stopped(reason.to_owned()));
        }
        // Dropping a suspended coroutine unwinds its stack. The youngest go first: a scoped
        // green thread borrows from the one that spawned it, which entered before it.
        let mut ids: Vec<(u64, usize)> =
            self.tasks.borrow().iter().enumerate().filter_map(|(id, t)| Some((t.as_ref()?.entered, id))).collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let slots: Vec<TaskSlot> = ids.into_iter().filter_map(|(_, id)| self.remove(id)).collect();
        // Destructors run here, and may spawn or wake green threads: the tables are not
        // borrowed meanwhile. One whose destructor panics must not keep the others from
        // being unwound (and their joiners from learning it).
        for slot in slots {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| drop(slot))) {
                eprintln!(
                    "bobbin: a destructor panicked while a green thread was unwound: {}",
                    crate::error::panic_message(payload.as_ref())
                );
            }
        }
    }
}
