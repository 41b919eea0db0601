//! The wake-up handle of a sleeping OS thread, whatever it sleeps in.

use std::fmt;
use std::sync::Arc;
use std::thread::Thread;

/// What wakes one sleeping OS thread: `std::thread::Thread::unpark` for a thread parked in
/// the standard library, or a write to the eventfd of a scheduler's I/O poller.
pub(crate) trait Wake: Send + Sync {
    /// Wakes the thread if it sleeps, or makes its next sleep return at once.
    fn wake(&self);
}

impl Wake for Thread {
    fn wake(&self) {
        self.unpark();
    }
}

/// A shared [`Wake`]: the one handle type every sleep of bobbin is woken through.
#[derive(Clone)]
pub(crate) struct Waker(Arc<dyn Wake>);

impl Waker {
    /// Wakes `thread`'s `std::thread::park`.
    pub(crate) fn thread(thread: Thread) -> Waker {
        Waker(Arc::new(thread))
    }

    /// Wakes through `wake`.
    pub(crate) fn new(wake: Arc<dyn Wake>) -> Waker {
        Waker(wake)
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waker { .. }")
    }
}
