//! A waiter that several channels' wait lists can hold at once: one blocking select (or one
//! wait on a rendezvous channel), its one "selected" word and the unparker of its one park.
//!
//! Whoever wants to act on a waiter (a sender handing it a message, a receiver taking its
//! message, a channel disconnecting, the waiter's own timeout) first claims the word with
//! a compare-and-swap from `WAITING`. Only the winner acts; every other claimant sees the
//! word taken and leaves the waiter alone, so of all the operations a select waits on, at
//! most one takes effect. The word also says whether the winner reserved something for
//! the waiter (a message, room, or a rendezvous partner): the selected operation then
//! completes without waiting for anything else.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::park::Lock;
use crate::sched::park;
use crate::sched::scheduler::Unparker;

/// Nobody has claimed the waiter yet.
const WAITING: usize = 0;
/// The waiter claimed itself: it timed out, or found an operation ready on its own.
const ABORTED: usize = 1;
/// Claimed for an operation: `FIRST + (oper << 1 | reserved)`.
const FIRST: usize = 2;

/// What a claimed waiter was selected for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Selection {
    /// The index of the operation, as the waiter registered it.
    pub(super) oper: usize,
    /// Whether the claimant reserved what the operation needs (a queued message, room in
    /// the queue, a rendezvous partner). Without a reservation, the operation was
    /// selected because its channel is disconnected (or, for a watcher, just ready).
    pub(super) reserved: bool,
}

/// One waiting select, rendezvous send or rendezvous receive.
pub(super) struct Waiter {
    selected: AtomicUsize,
    /// The unparker of the current park, taken by whoever wins the claim.
    unparker: Lock<Option<Unparker>>,
    /// A watcher (`Select::ready`) is woken when an operation may have become ready, and
    /// nothing is reserved for it.
    pub(super) watch: bool,
}

impl Waiter {
    pub(super) fn new(watch: bool) -> Arc<Waiter> {
        Arc::new(Waiter { selected: AtomicUsize::new(WAITING), unparker: Lock::new(None), watch })
    }

    /// A fresh waiter (not a watcher): the one this thread's last wait gave back, if any,
    /// else a new one. Saves an allocation per parked select.
    #[inline(never)]
    pub(super) fn reuse() -> Arc<Waiter> {
        SPARE.with(Cell::take).unwrap_or_else(|| Waiter::new(false))
    }

    /// Gives a waiter back for [`reuse`](Waiter::reuse) once its wait is over and every
    /// entry of it is unlisted. Kept only if nobody else holds it any more (a claimant
    /// may still be waking it), and reset then.
    #[inline(never)]
    pub(super) fn keep(mut waiter: Arc<Waiter>) {
        if let Some(w) = Arc::get_mut(&mut waiter) {
            if w.watch {
                return;
            }
            *w.selected.get_mut() = WAITING;
            *w.unparker.get_mut() = None;
            SPARE.with(|spare| spare.set(Some(waiter)));
        }
    }

    /// Claims the waiter for operation `oper`. True if this call won; the caller must then
    /// [`wake`](Waiter::wake) it (outside any channel lock it can avoid holding).
    #[inline]
    pub(super) fn try_claim(&self, oper: usize, reserved: bool) -> bool {
        // AcqRel: the winner's reservation, made under the channel's lock before or after
        // the claim, is published to the waiter by the claim itself or by the lock.
        self.selected
            .compare_exchange(WAITING, FIRST + (oper << 1 | usize::from(reserved)), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether nobody has claimed the waiter yet.
    #[inline]
    pub(super) fn is_waiting(&self) -> bool {
        self.selected.load(Ordering::Acquire) == WAITING
    }

    /// What the waiter was claimed for, if an operation claimed it.
    pub(super) fn selection(&self) -> Option<Selection> {
        decode(self.selected.load(Ordering::Acquire))
    }

    /// Claims the waiter for itself. `Err` with the selection if an operation won first:
    /// the waiter must then complete that operation.
    pub(super) fn try_abort(&self) -> Result<(), Selection> {
        match self.selected.compare_exchange(WAITING, ABORTED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(()),
            Err(word) => Err(decode(word).expect("a waiter aborted twice")),
        }
    }

    /// Wakes the waiter after a won claim. Its unparker may not be stored yet (it is still
    /// registering); then its park sees the claim and returns at once.
    pub(super) fn wake(&self) {
        let unparker = self.unparker.lock().take();
        if let Some(u) = unparker {
            u.unpark();
        }
    }

    /// Parks until an operation claims the waiter or `deadline` passes. `None` if the
    /// deadline passed first and the waiter claimed itself.
    pub(super) fn park(&self, reason: &'static str, deadline: Option<Instant>) -> Option<Selection> {
        loop {
            if let Some(s) = self.selection() {
                return Some(s);
            }
            if let Some(at) = deadline {
                if Instant::now() >= at {
                    return self.try_abort().err();
                }
            }
            let register = |u: Unparker| {
                // Under the slot's lock: a claimant that won before this store finds the
                // slot empty and relies on this load to see its claim; one that wins after
                // it finds the unparker.
                let mut slot = self.unparker.lock();
                if self.selected.load(Ordering::Acquire) == WAITING {
                    *slot = Some(u);
                } else {
                    drop(slot);
                    u.unpark();
                }
            };
            match deadline {
                None => park::park(reason, register),
                Some(at) => park::park_until(reason, at, register),
            }
        }
    }
}

thread_local! {
    /// A waiter a finished wait of this thread gave back. Read out of line, as every
    /// thread-local a green thread touches.
    static SPARE: Cell<Option<Arc<Waiter>>> = const { Cell::new(None) };
}

fn decode(word: usize) -> Option<Selection> {
    (word >= FIRST).then(|| Selection { oper: (word - FIRST) >> 1, reserved: (word - FIRST) & 1 == 1 })
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter").field("selected", &self.selected).field("watch", &self.watch).finish_non_exhaustive()
    }
}
