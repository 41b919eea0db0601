//! How a scheduler waits when it has nothing to run, and what it polls between green
//! threads: the one interface its idle step and its between-tasks check go through.
//!
//! A driver owns the scheduler's sleep: [`Driver::park`] blocks the OS thread until the
//! driver's [`Waker`] is used or the timeout passes, and [`Driver::poll`] collects events
//! without blocking. Timers stay in the scheduler, which passes the next deadline as the
//! timeout. [`ThreadDriver`] sleeps in `std::thread::park` and has no events of its own;
//! every scheduler normally runs on the I/O reactor ([`super::reactor`]) instead, which
//! waits in its poller (with its eventfd as the wake-up handle) and turns readiness into
//! unparks. `ThreadDriver` remains for a scheduler whose poller could not be created (out
//! of descriptors), where I/O then reports that error.

use std::thread::Thread;
use std::time::Duration;

use super::reactor::Reactor;
use crate::park::Waker;

/// How a scheduler sleeps and what it polls. See the [module docs](self).
pub(crate) trait Driver {
    /// The handle that wakes [`Driver::park`] from any thread.
    fn waker(&self) -> Waker;

    /// Blocks the calling OS thread until the waker is used (or was used since the last
    /// park), `timeout` passes (`None`: no limit), or an event of the driver's arrives.
    fn park(&self, timeout: Option<Duration>);

    /// Collects the driver's events without blocking; called by a busy scheduler at a
    /// bounded interval.
    fn poll(&self);

    /// Whether something registered with the driver (an I/O source, say) could still wake
    /// a scheduler whose green threads are all parked: the deadlock check asks.
    fn has_sources(&self) -> bool;

    /// The I/O reactor, if this driver is one: where descriptors are registered.
    fn reactor(&self) -> Option<&Reactor> {
        None
    }
}

/// The driver of a scheduler without I/O: sleeps in `std::thread::park`.
#[derive(Debug)]
pub(crate) struct ThreadDriver {
    thread: Thread,
}

impl ThreadDriver {
    /// A driver for the calling OS thread.
    pub(crate) fn new() -> ThreadDriver {
        ThreadDriver { thread: std::thread::current() }
    }
}

impl Driver for ThreadDriver {
    fn waker(&self) -> Waker {
        Waker::thread(self.thread.clone())
    }

    fn park(&self, timeout: Option<Duration>) {
        // The thread's unpark token makes a wake-up that came before this park count.
        match timeout {
            Some(t) => std::thread::park_timeout(t),
            None => std::thread::park(),
        }
    }

    fn poll(&self) {}

    fn has_sources(&self) -> bool {
        false
    }
}
