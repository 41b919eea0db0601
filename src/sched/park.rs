//! Parking a green thread: the one wait every blocking call is built on.
//!
//! [`park`] suspends the current green thread (or blocks the current OS thread, outside a
//! scheduler) after handing a single-use [`Unparker`] to a `register` callback, which
//! stores it wherever the wake-up will come from (a channel's wait list, a join state, the
//! timer heap). [`Unparker::unpark`] makes the parked thread ready again, from any thread.
//! The protocol that keeps wake-ups from being lost is described in [`crate::park`].
//!
//! A park names what it waits for in words (`reason`), which the deadlock report prints:
//! a new kind of wait needs no change here.

use std::sync::Arc;
use std::time::Instant;

use super::scheduler;
use super::scheduler::Unparker;
use crate::park as primitive;

/// Parks the current green thread, or blocks the current OS thread outside a scheduler,
/// until the unparker handed to `register` is used. `register` runs before the park and
/// must store the unparker where the wake-up will find it; it may also be used at once.
///
/// Callers re-check their condition after `park` returns: it may return because of a
/// wake-up meant for a condition that has since been consumed by another waiter.
pub(crate) fn park(reason: &'static str, register: impl FnOnce(Unparker)) {
    park_inner(reason, None, register);
}

/// Like [`park`], but also ends the park at `deadline`. Callers tell the two apart by
/// re-checking their condition and the clock.
pub(crate) fn park_until(reason: &'static str, deadline: Instant, register: impl FnOnce(Unparker)) {
    park_inner(reason, Some(deadline), register);
}

/// The instant `timeout` from now; a timeout too long to add is as good as none, and a
/// century stands for it.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 86_400))
}

/// Aborts the process if dropped, which [`park_inner`] lets happen only by unwinding.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("bobbin: registering a green thread's wake-up failed while it was parking; aborting");
        std::process::abort();
    }
}

fn park_inner(reason: &'static str, deadline: Option<Instant>, register: impl FnOnce(Unparker)) {
    // A cancelled green thread unwinds here, before anything is registered.
    super::record::cancel_point();
    if let Some((task, suspender)) = scheduler::parking_task() {
        let epoch = task.park.begin_park();
        if let Some(at) = deadline {
            // Two unparkers of the same epoch: whichever fires first ends the park, the
            // other finds a newer epoch and does nothing.
            scheduler::add_timer(at, Unparker::for_task(Arc::clone(&task), epoch));
        }
        // The word says parked now: a registration that unwound would leave the green
        // thread running with a published unparker able to queue it. Registrations only
        // push onto a list, so that takes a failed allocation; stop there.
        let bomb = AbortOnUnwind;
        register(Unparker::for_task(task, epoch));
        std::mem::forget(bomb);
        scheduler::suspend_parked(suspender, reason);
        // A cancellation that ended the park unwinds here.
        super::record::cancel_wake_point();
        return;
    }
    primitive::park_thread(deadline, register);
}
