//! The I/O reactor: a scheduler's [`Driver`] that sleeps in a readiness poller (`mio`,
//! over epoll) and turns readiness events into unparks.
//!
//! Every scheduler owns one. A descriptor is registered with the reactor of the scheduler
//! whose green thread first has to wait on it (a [`Registration`]); a green thread whose
//! operation would block parks through [`super::park`] with its unparker stored in the
//! registration, and the event that reports the descriptor ready again unparks it. The
//! scheduler's idle wait is the poller's wait, with the next timer deadline as timeout and
//! a `mio::Waker` (an eventfd) as the wake-up from other threads, so an idle scheduler
//! uses no CPU; a busy one polls without blocking every few dozen switches.
//!
//! Readiness is edge-triggered. Each registration keeps the readiness the poller reported
//! and a tick that counts the reports; an operation takes the tick before it tries, and
//! when the system call says "would block", clears the readiness only if no report came in
//! meanwhile ([`Registration::clear`]). A report that arrives while an operation runs is so
//! never lost, and a report already consumed by an operation that succeeded costs one
//! extra attempt, never a hang.
//!
//! A registration is found by its token, which is a slot index and the slot's generation:
//! a descriptor closed and reused at once gets a new token, and events still queued for
//! the old one are dropped.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::driver::Driver;
use super::scheduler::Unparker;
use crate::park::{Lock, Wake, Waker};

/// Which way an operation waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

// Readiness bits in the low byte of a registration's word; the tick is in the rest.
const READABLE: u64 = 1;
const WRITABLE: u64 = 2;
const READ_CLOSED: u64 = 4;
const WRITE_CLOSED: u64 = 8;
const ERROR: u64 = 16;
const BITS: u64 = 0xff;
const TICK_ONE: u64 = 0x100;

impl Direction {
    /// The readiness bits that let an operation in this direction make progress.
    fn mask(self) -> u64 {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Direction::Read => "waiting for a descriptor to become readable",
            Direction::Write => "waiting for a descriptor to become writable",
        }
    }
}

/// The token of the reactor's own waker.
const WAKER: Token = Token(usize::MAX);

/// Events taken from the poller per system call.
const EVENTS: usize = 1024;

/// The readiness and waiters of one registered descriptor.
#[derive(Debug, Default)]
struct Source {
    /// `tick << 8 | readiness bits`.
    readiness: AtomicU64,
    waiters: Lock<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    read: Vec<Unparker>,
    write: Vec<Unparker>,
    /// The registration is gone (its owner dropped it): waiters are told so.
    closed: bool,
}

/// The slots of the registered descriptors.
#[derive(Debug, Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    source: Option<Arc<Source>>,
}

fn token(index: usize, generation: u32) -> Token {
    Token(index | (generation as usize) << 32)
}

impl Slab {
    /// The source a token names, unless it is stale: the registration was dropped (its
    /// slot then has a newer generation, or no source) after the event was queued.
    fn find(&self, Token(t): Token) -> Option<&Arc<Source>> {
        let (index, generation) = (t & 0xffff_ffff, (t >> 32) as u32);
        self.slots.get(index).filter(|s| s.generation == generation)?.source.as_ref()
    }
}

/// The part of a reactor that registrations hold, from any thread.
#[derive(Debug)]
struct Shared {
    registry: mio::Registry,
    waker: mio::Waker,
    slab: Mutex<Slab>,
    /// Registered descriptors: the busy poll is skipped while there are none.
    live: AtomicUsize,
}

impl Shared {
    fn slab(&self) -> MutexGuard<'_, Slab> {
        // A panic while the slab is locked leaves it consistent (every change is one
        // assignment), so a poisoned lock is still usable.
        self.slab.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Wake for Shared {
    fn wake(&self) {
        // An eventfd write fails only if its counter would overflow, and then a wake-up is
        // pending anyway.
        let _ = self.waker.wake();
    }
}

/// A scheduler's readiness poller. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    shared: Arc<Shared>,
}

impl Reactor {
    /// A poller with its waker: an epoll instance and an eventfd (three descriptors, with
    /// the registry's duplicate of the epoll descriptor that registrations hold).
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(&registry, WAKER)?;
        let shared = Arc::new(Shared { registry, waker, slab: Mutex::default(), live: AtomicUsize::new(0) });
        Ok(Reactor { poll: RefCell::new(poll), events: RefCell::new(Events::with_capacity(EVENTS)), shared })
    }

    /// Names this reactor, to tell whether a registration is one of its own.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    /// Registers `fd` with this reactor. Its readiness starts empty: the poller reports
    /// what the descriptor is ready for at once.
    ///
    /// The caller must keep `fd` open until the registration is dropped.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<Registration> {
        let source = Arc::new(Source::default());
        let mut slab = self.shared.slab();
        let index = slab.free.pop().unwrap_or_else(|| {
            slab.slots.push(Slot::default());
            slab.slots.len() - 1
        });
        let slot = &mut slab.slots[index];
        let token = token(index, slot.generation);
        if let Err(e) =
            self.shared.registry.register(&mut SourceFd(&fd), token, Interest::READABLE | Interest::WRITABLE)
        {
            slab.free.push(index);
            return Err(e);
        }
        slot.source = Some(Arc::clone(&source));
        self.shared.live.fetch_add(1, Ordering::Relaxed);
        Ok(Registration { source, reactor: Arc::clone(&self.shared), fd, index })
    }

    /// Waits up to `timeout` for events (none: without limit) and unparks their waiters.
    fn wait(&self, timeout: Option<Duration>) {
        let mut poll = self.poll.borrow_mut();
        let mut events = self.events.borrow_mut();
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            // A signal: its handler has run, and the wait ends early as it may.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => panic!("bobbin: the I/O poller of a scheduler failed: {e}"),
        }
        drop(poll);
        if events.is_empty() {
            return;
        }
        // Readiness is recorded and waiters unparked with the slab locked: an unpark only
        // queues a green thread (on this scheduler, or through another's remote queue),
        // and nothing it does takes the slab, so events need no copy and no reference
        // count of their own.
        let slab = self.shared.slab();
        for event in events.iter() {
            if event.token() == WAKER {
                continue;
            }
            let Some(source) = slab.find(event.token()) else { continue };
            let mut bits = 0;
            for (yes, bit) in [
                (event.is_readable(), READABLE),
                (event.is_writable(), WRITABLE),
                (event.is_read_closed(), READ_CLOSED),
                (event.is_write_closed(), WRITE_CLOSED),
                (event.is_error(), ERROR),
            ] {
                if yes {
                    bits |= bit;
                }
            }
            source.report(bits);
        }
    }
}

impl Driver for Reactor {
    fn waker(&self) -> Waker {
        Waker::new(Arc::clone(&self.shared) as Arc<dyn Wake>)
    }

    fn park(&self, timeout: Option<Duration>) {
        self.wait(timeout);
    }

    fn poll(&self) {
        if self.shared.live.load(Ordering::Relaxed) > 0 {
            self.wait(Some(Duration::ZERO));
        }
    }

    fn has_sources(&self) -> bool {
        self.shared.live.load(Ordering::Relaxed) > 0
    }

    fn reactor(&self) -> Option<&Reactor> {
        Some(self)
    }
}

impl Source {
    /// Records a readiness event and wakes the waiters it concerns.
    fn report(&self, bits: u64) {
        let mut waiters = self.waiters.lock();
        // Under the waiters' lock: a waiter checks readiness under it before it stays.
        let mut cur = self.readiness.load(Ordering::Acquire);
        loop {
            let next = ((cur & !BITS) + TICK_ONE) | (cur & BITS) | bits;
            match self.readiness.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        // Unparked under the lock, one by one: the lists keep their buffers, and an
        // unpark takes no lock a waiter could hold while it waits for this one.
        if bits & Direction::Read.mask() != 0 {
            while let Some(unparker) = waiters.read.pop() {
                unparker.unpark();
            }
        }
        if bits & Direction::Write.mask() != 0 {
            while let Some(unparker) = waiters.write.pop() {
                unparker.unpark();
            }
        }
    }
}

/// A descriptor registered with one scheduler's reactor. Dropping it deregisters the
/// descriptor (which must still be open then) and tells any waiter it is gone.
#[derive(Debug)]
pub(crate) struct Registration {
    source: Arc<Source>,
    reactor: Arc<Shared>,
    fd: RawFd,
    index: usize,
}

/// What an operation read of a registration's readiness before it tried.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot(u64);

impl Snapshot {
    /// Whether the readiness seen lets an operation in `direction` try.
    pub(crate) fn is_ready(self, direction: Direction) -> bool {
        self.0 & direction.mask() != 0
    }
}

/// Why [`Registration::wait`] returned without readiness.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WaitError {
    /// The deadline passed.
    TimedOut,
    /// The registration was dropped while the caller waited.
    Closed,
}

impl Registration {
    /// Whether this registration belongs to the reactor named `id` ([`Reactor::id`]).
    pub(crate) fn is_of(&self, id: usize) -> bool {
        Arc::as_ptr(&self.reactor) as usize == id
    }

    /// The readiness as it is before an attempt, for [`Registration::clear`].
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot(self.source.readiness.load(Ordering::Acquire))
    }

    /// After an attempt in `direction` found the descriptor not ready (or drained it):
    /// forgets the readiness that attempt saw, unless a new event came in since `before`.
    pub(crate) fn clear(&self, direction: Direction, before: Snapshot) {
        // A closed half stays reported: the end of the stream (or a broken pipe) is there
        // for every later attempt, and no new event would say so again.
        let mask = direction.mask() & !(READ_CLOSED | WRITE_CLOSED);
        let cur = before.0;
        // Only if nothing was reported since: the tick would differ.
        let _ = self.source.readiness.compare_exchange(cur, cur & !mask, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Parks the current green thread, which must run on this registration's scheduler,
    /// until the descriptor is reported ready in `direction` (at once if it is already),
    /// or `deadline` passes.
    pub(crate) fn wait(&self, direction: Direction, deadline: Option<Instant>) -> Result<(), WaitError> {
        let ready = |s: &Source| s.readiness.load(Ordering::Acquire) & direction.mask() != 0;
        let mut woken = false;
        loop {
            if ready(&self.source) {
                return Ok(());
            }
            // Before the first park the registration cannot be closed (its owner lends it
            // to the caller), and the registering closure checks again under the lock.
            if woken && self.source.waiters.lock().closed {
                return Err(WaitError::Closed);
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return Err(WaitError::TimedOut);
            }
            let register = |unparker: Unparker| {
                let mut waiters = self.source.waiters.lock();
                if waiters.closed || ready(&self.source) {
                    drop(waiters);
                    unparker.unpark();
                    return;
                }
                let list = match direction {
                    Direction::Read => &mut waiters.read,
                    Direction::Write => &mut waiters.write,
                };
                // Waits that ended by their deadline left stale unparkers behind.
                if !list.is_empty() {
                    list.retain(Unparker::is_live);
                }
                list.push(unparker);
            };
            match deadline {
                Some(at) => super::park::park_until(direction.reason(), at, register),
                None => super::park::park(direction.reason(), register),
            }
            woken = true;
        }
    }
}

impl Registration {
    /// Marks the registration gone and wakes its waiters, who find it so.
    fn close(&self) {
        let woken = {
            let mut waiters = self.source.waiters.lock();
            waiters.closed = true;
            let mut woken = std::mem::take(&mut waiters.read);
            woken.append(&mut waiters.write);
            woken
        };
        for unparker in woken {
            unparker.unpark();
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.close();
        // Explicitly, not by closing: a duplicate of the descriptor (`try_clone`) would
        // keep the epoll entry alive and reporting. Fails only if the descriptor was
        // closed already, and then the kernel has dropped the entry itself.
        let _ = self.reactor.registry.deregister(&mut SourceFd(&self.fd));
        {
            let mut slab = self.reactor.slab();
            let slot = &mut slab.slots[self.index];
            slot.source = None;
            slot.generation = slot.generation.wrapping_add(1);
            slab.free.push(self.index);
        }
        self.reactor.live.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
