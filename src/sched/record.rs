//! A green thread's record: who it is (its [`GreenThread`]: id, and the name and stack
//! size it was built with), and whether it was cancelled. It lives in the green thread's
//! join state, so it costs no allocation of its own; the scheduler reaches it through the
//! task's abort hook, the [`JoinHandle`](super::JoinHandle) through its state.
//!
//! Cancellation is a flag and a request. [`JoinHandle::cancel`](super::JoinHandle::cancel)
//! sets the flag in the record and, if the green thread sits in a scheduler's task table,
//! hands that scheduler a request (directly on its own thread, otherwise through a queue
//! drained with the remote wake-ups). The scheduler handles it while the green thread is
//! suspended: it notes the cancellation in the task's slot ([`Seen`]) and, if the green
//! thread is parked, ends the park with an ordinary unparker of the park's epoch (the word
//! can only be PARKED or already woken then). At each switch into a green thread the
//! scheduler copies the slot's [`Seen`] into a thread-local, so the park path reads one
//! thread-local, not the record.
//!
//! Every park and yield of a green thread starts at [`cancel_point`], which unwinds the
//! green thread's stack if it was cancelled, before anything is registered. A park that
//! the cancel wake-up ended (its unparker won, so every other unparker of that park is
//! stale and a waker that tries one passes its wake-up on) unwinds as it returns
//! ([`cancel_wake_point`]). A park that something else ended returns normally even for a
//! cancelled green thread: that wake-up may carry something the caller must take (a lock
//! handed on, a waiter's turn), and the next park point unwinds.
//!
//! Why the flag and the table slot share a lock: the canceller sets the flag and reads
//! which scheduler holds the green thread in one critical section, and a scheduler that
//! takes the green thread into its table (at its start, or when it migrates) records itself
//! in another and reads the flag there. Either the scheduler's section comes first, and the
//! canceller finds it and sends it the request, or the canceller's does, and the scheduler
//! finds the flag set and notes it in the slot. A green thread that has not started reads
//! the flag once more at its start and never runs its body.
//!
use std::cell::Cell;
use std::panic;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::scheduler::{self, TaskHeader};
use super::thread::GreenThread;
use crate::park::Lock;

/// The cancel flag's states.
const NOT_CANCELLED: u8 = 0;
/// Cancelled; the unwinding has not started.
const CANCELLED: u8 = 1;
/// Cancelled, and a park point has started the unwinding at least once.
const UNWINDING: u8 = 2;

/// What the scheduler running a green thread knows of its cancellation, kept in the task's
/// table slot and, while it runs, in [`RUNNING`]: a plain value, so the park path reads a
/// thread-local instead of the record behind the task's hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Seen {
    /// Not cancelled (as far as the scheduler has heard).
    #[default]
    No,
    /// Cancelled.
    Cancelled,
    /// Cancelled, and the scheduler ended the park the green thread is in because of it.
    Woken,
}

thread_local! {
    /// [`Seen`] of the green thread running on this thread, set at each switch into one.
    static RUNNING: Cell<Seen> = const { Cell::new(Seen::No) };
}

/// Sets what the green thread about to run on this thread knows of its cancellation. On
/// the scheduler's own stack.
#[inline]
pub(crate) fn set_running(seen: Seen) {
    RUNNING.set(seen);
}

/// Reads [`RUNNING`]. Never inlined: the caller runs on a green thread that may have
/// changed OS thread since it last looked.
#[inline(never)]
pub(crate) fn running() -> Seen {
    RUNNING.get()
}

/// The panic payload that unwinds a cancelled green thread. Private: nothing outside bobbin
/// can name it, so a `catch_unwind` that catches it can only resume or drop it.
pub(crate) struct Cancelled;

/// What a green thread's scheduler, its handle and the green thread itself share beyond
/// its result.
pub(crate) struct TaskRecord {
    thread: GreenThread,
    cancel: AtomicU8,
    /// The header of the green thread while it sits in a scheduler's task table; the lock
    /// also orders the cancel flag against the table (see the module docs). A reference the
    /// scheduler lends and takes back, with its header, for the next green thread: no
    /// reference count moves on the way in or out.
    slot: Lock<Option<Arc<TaskHeader>>>,
}

impl TaskRecord {
    pub(crate) fn new(thread: GreenThread) -> TaskRecord {
        TaskRecord { thread, cancel: AtomicU8::new(NOT_CANCELLED), slot: Lock::new(None) }
    }

    pub(crate) fn thread(&self) -> &GreenThread {
        &self.thread
    }

    /// The stack size the green thread asked for, if not its scheduler's.
    pub(crate) fn stack_size(&self) -> Option<usize> {
        self.thread.stack_size()
    }

    /// Whether the green thread was cancelled. Relaxed: see the module docs for what
    /// orders it against the wake-up.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) != NOT_CANCELLED
    }

    /// Whether a park point started unwinding the green thread for its cancellation.
    pub(crate) fn unwinding(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) == UNWINDING
    }

    /// Records that a scheduler took the green thread into its table under `header` (a
    /// reference lent until [`left`](TaskRecord::left)). Returns whether it was cancelled,
    /// read in the same critical section.
    pub(crate) fn entered(&self, header: Arc<TaskHeader>) -> bool {
        let mut slot = self.slot.lock();
        *slot = Some(header);
        self.is_cancelled()
    }

    /// Records that the green thread left its scheduler's table (finished, or on its way
    /// to another worker); hands back the reference lent by `entered`.
    pub(crate) fn left(&self) -> Option<Arc<TaskHeader>> {
        self.slot.lock().take()
    }

    /// Cancels the green thread; if it sits in a scheduler's table, asks that scheduler to
    /// wake it should it be parked.
    pub(crate) fn cancel(&self) {
        let header = {
            let slot = self.slot.lock();
            // Relaxed inside the lock: the lock orders it (module docs).
            let _ = self.cancel.compare_exchange(NOT_CANCELLED, CANCELLED, Ordering::Relaxed, Ordering::Relaxed);
            slot.clone()
        };
        if let Some(header) = header {
            scheduler::wake_for_cancel(header);
        }
    }

    /// Notes that a park point started unwinding the green thread.
    fn unwinding_started(&self) {
        self.cancel.store(UNWINDING, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for TaskRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRecord")
            .field("thread", &self.thread)
            .field("cancel", &self.cancel.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Where a park or yield of a cancelled green thread starts its unwinding: does nothing
/// unless the caller is a green thread that was cancelled and is not unwinding already (a
/// destructor that waits while its green thread unwinds waits as usual: a second panic
/// there would abort the process).
#[inline]
pub(crate) fn cancel_point() {
    if running() != Seen::No {
        unwind_if_not_panicking();
    }
}

/// Where a park of a green thread ends: unwinds it if the park ended because it was
/// cancelled. A park ended by anything else returns, even for a cancelled green thread: the
/// wake-up may carry something its caller must take (a lock handed on, the turn of a
/// waiter), and the next park point unwinds.
#[inline]
pub(crate) fn cancel_wake_point() {
    if running() == Seen::Woken {
        woken_for_cancel();
    }
}

#[cold]
#[inline(never)]
fn woken_for_cancel() {
    // The wake-up is used up: the next park point unwinds for the flag alone.
    RUNNING.set(Seen::Cancelled);
    unwind_if_not_panicking();
}

#[cold]
#[inline(never)]
fn unwind_if_not_panicking() {
    if std::thread::panicking() {
        return;
    }
    scheduler::with_current_record(TaskRecord::unwinding_started);
    panic::resume_unwind(Box::new(Cancelled))
}
