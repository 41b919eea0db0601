//! A scheduler's sleeping green threads: a heap of deadlines, each with the unparker that
//! ends a park when its time comes.

use std::collections::BinaryHeap;
use std::time::Instant;

use super::scheduler::Unparker;

struct Timer {
    at: Instant,
    /// Order of insertion, so equal deadlines fire in the order they were set.
    seq: u64,
    unparker: Unparker,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    // Reversed: BinaryHeap is a max-heap and the earliest deadline must come first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The timers of one scheduler.
#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Timer>,
    seq: u64,
}

impl Timers {
    /// Fires `unparker` at `at`.
    pub(super) fn add(&mut self, at: Instant, unparker: Unparker) {
        self.heap.push(Timer { at, seq: self.seq, unparker });
        self.seq += 1;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.heap.clear();
    }

    /// Takes the earliest timer if it is due at `now`, dropping on the way timers whose
    /// park has already ended; otherwise the next deadline, if any.
    pub(super) fn take_due(&mut self, now: Instant) -> Result<Unparker, Option<Instant>> {
        loop {
            match self.heap.peek() {
                Some(t) if t.at <= now => return Ok(self.heap.pop().expect("peeked").unparker),
                Some(t) if !t.unparker.is_live() => {
                    self.heap.pop();
                }
                Some(t) => return Err(Some(t.at)),
                None => return Err(None),
            }
        }
    }
}
