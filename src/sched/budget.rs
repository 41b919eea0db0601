//! The cooperative budget: bobbin's own operations cannot be spun on forever.
//!
//! A green thread that loops on operations that never park (`try_recv` on an empty
//! channel, `send` on an unbounded one, `join` of a finished green thread) would keep its
//! scheduler to itself: nothing preempts it, so the green thread it waits for never runs.
//! Each time the scheduler switches to a green thread it hands it [`BUDGET`] operations;
//! every operation that does not park spends one, and the operation that finds the budget
//! spent yields first. A loop of such operations so lets every other ready green thread
//! run once per [`BUDGET`] of its own operations, while a green thread that parks or yields
//! sooner never notices. Code that spins without calling bobbin at all still cannot be
//! preempted.

use std::cell::Cell;

use super::scheduler;

/// Operations a green thread may do without parking before one of them yields.
pub(crate) const BUDGET: u32 = 128;

thread_local! {
    /// What the green thread running on this thread has left. Outside a green thread it
    /// starts full and is only ever refilled.
    static LEFT: Cell<u32> = const { Cell::new(BUDGET) };
}

/// Gives the green thread about to run on this thread a full budget.
#[inline]
pub(crate) fn refill() {
    LEFT.set(BUDGET);
}

/// Spends one unit of the running green thread's budget; if none is left, yields first
/// (when the caller runs on a green thread's own stack: elsewhere there is nothing to
/// yield to, and the budget is simply refilled).
///
/// Never inlined: a green thread that yields here may continue on another OS thread (with
/// migration allowed), and its caller must not keep this thread-local's address across
/// the yield.
/// What the running green thread has left, for a scheduler that runs another green thread
/// on its stack ([`scheduler::start_joined`]) and gives it back after.
#[inline]
pub(crate) fn left() -> u32 {
    LEFT.get()
}

/// Gives back what [`left`] returned.
#[inline]
pub(crate) fn restore(left: u32) {
    LEFT.set(left);
}

#[inline(never)]
pub(crate) fn spend() {
    let left = LEFT.get();
    if left > 0 {
        LEFT.set(left - 1);
    } else {
        spent();
    }
}

/// The budget is spent: yield, and the scheduler refills it when it switches back.
#[cold]
#[inline(never)]
fn spent() {
    if !scheduler::yield_if_on_green_thread() {
        refill();
    }
}
