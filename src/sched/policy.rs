//! When a scheduler starts a green thread that has not started yet, rather than run one
//! that is ready.

use std::cell::Cell;

/// Below this many ready green threads, unstarted ones start at once (see [`StartPolicy`]).
const READY_FLOOR: usize = 64;

/// When to start a green thread that has not started yet instead of running a ready one.
///
/// Starting every spawned green thread at once would give each a live stack: 100,000
/// short tasks that yield a few times then cycle through 100,000 stacks, a cache and TLB
/// miss on every switch. Starting them only as fast as the ready ones make room keeps the
/// working set small. What must stay small is the set of green threads cycling through
/// the ready queue; ones that park at once cost nothing to start. So while fewer than
/// [`READY_FLOOR`] green threads are ready, unstarted ones start right away (a `yield_now`
/// after spawning lets them all run, unless they keep yielding). Above that, a ready
/// queue of green threads that yield forever must not hold the unstarted ones back for
/// long: after each full round of the ready queue, `1 + ready/16` of them start. The
/// cycling set stays near the floor when tasks are short, and N unstarted tasks behind N
/// spinning ones all start within O(N) switches (a geometric ramp) rather than O(N^2).
#[derive(Debug, Default)]
pub(crate) struct StartPolicy {
    /// Ready green threads run since the last round of starts.
    since: Cell<usize>,
    /// Starts left in the current round of starts.
    budget: Cell<usize>,
}

/// Where [`StartPolicy`] lets a scheduler look for a green thread to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Start {
    /// Run a ready green thread instead.
    No,
    /// From this scheduler's own queues (cheap: nothing shared is touched).
    Local,
    /// From anywhere, stealing included: nothing is ready, or a full round of the ready
    /// queue has run. Stealing reads other workers' deques, so it is not done per switch.
    Anywhere,
}

impl StartPolicy {
    /// Whether and from where to start a new green thread now, given the length of the
    /// ready queue.
    pub(super) fn start_now(&self, ready: usize) -> Start {
        if ready == 0 {
            return Start::Anywhere;
        }
        if self.since.get() >= ready {
            self.since.set(0);
            self.budget.set(1 + ready / 16);
            return Start::Anywhere;
        }
        if ready < READY_FLOOR || self.budget.get() > 0 {
            Start::Local
        } else {
            Start::No
        }
    }

    pub(super) fn started(&self) {
        self.budget.set(self.budget.get().saturating_sub(1));
    }

    /// There was nothing to start: run ready ones until the next round.
    pub(super) fn nothing_to_start(&self) {
        self.budget.set(0);
    }

    pub(super) fn ran_ready(&self) {
        self.since.set(self.since.get() + 1);
    }
}
