//! The parking primitive every wait is built on, below the schedulers: the park word of
//! a green thread or OS thread, the single-use [`Unparker`] that ends one park, the wait of
//! an OS thread outside any scheduler, and the short spin lock of wait lists.
//!
//! This layer knows schedulers only through [`Home`]: a parked green thread's
//! [`TaskHeader`] holds the scheduler it belongs to, and an unparker that ends its park
//! asks that scheduler to make it ready. Suspending a green thread is the
//! scheduler's business (`sched::park`); what a park waits for is its caller's.
//!
//! Lost wake-ups: the unparker may fire before the parker has actually suspended (it is
//! registered first, and another OS thread can use it at once). Each unparker carries the
//! park's epoch. A green thread enters the parked state before its unparker exists (a plain
//! store: nothing else can change the word then), so an early wake-up finds it parked and
//! makes it ready; its scheduler only looks at the ready queue once the green thread has
//! switched back, so the early wake-up is never lost and needs no second read-modify-write
//! on the park path. An OS thread outside any scheduler registers first and then moves its
//! word from running to parked; a wake-up that came in between is recorded as `NOTIFIED`
//! and the park returns at once. An unparker whose park has already ended (the waiter
//! timed out, or was woken by something else) finds a newer epoch and does nothing,
//! reporting `false` so that a channel can hand the wake-up to the next waiter.

mod lock;
mod wake;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub(crate) use lock::{Lock, LockGuard};
pub(crate) use wake::{Wake, Waker};

// Park states, in the low two bits of a parker's word; the epoch is in the rest.
/// Running (or about to park).
pub(crate) const RUNNING: u64 = 0;
/// Suspended and waiting for its unparker.
pub(crate) const PARKED: u64 = 1;
/// Woken while still running: the coming park returns at once.
pub(crate) const NOTIFIED: u64 = 2;
/// Finished: unparkers do nothing.
pub(crate) const DONE: u64 = 3;
const STATE_MASK: u64 = 3;
const EPOCH_ONE: u64 = 4;

/// The park word of a green thread or OS thread: `epoch << 2 | state`.
#[derive(Debug, Default)]
pub(crate) struct ParkWord(AtomicU64);

impl ParkWord {
    #[inline]
    pub(crate) fn load(&self) -> u64 {
        // Acquire pairs with the Release of the transitions below, so a thread that sees
        // NOTIFIED or PARKED also sees what the other side wrote before it.
        self.0.load(Ordering::Acquire)
    }

    /// The current epoch (the one an unparker created now would carry).
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.load() & !STATE_MASK
    }

    /// RUNNING -> PARKED at the start of a green thread's park, before any unparker for
    /// it exists; returns the epoch those unparkers must carry.
    ///
    /// Only a stale unparker (of an older epoch, which changes nothing) can reach the word
    /// between a wake-up and the next park of the same green thread, so a store suffices.
    #[inline]
    pub(crate) fn begin_park(&self) -> u64 {
        let epoch = self.epoch();
        // Release: a waker that sees PARKED (through the unparker, published after this)
        // sees everything the green thread did before it parked.
        self.0.store(epoch | PARKED, Ordering::Release);
        epoch
    }

    /// RUNNING -> PARKED at the end of an OS thread's park. Returns false if an unparker came first
    /// (state NOTIFIED): then the state becomes RUNNING in the next epoch and the caller
    /// must not wait.
    pub(crate) fn try_park(&self) -> bool {
        let cur = self.load();
        debug_assert!(cur & STATE_MASK == RUNNING || cur & STATE_MASK == NOTIFIED);
        if self.0.compare_exchange(cur & !STATE_MASK, cur | PARKED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return true;
        }
        // NOTIFIED: consume it; unparkers of this epoch become stale.
        self.0.store((cur & !STATE_MASK) + EPOCH_ONE, Ordering::Release);
        false
    }

    /// A wake-up for `epoch`: records it for a thread still running (NOTIFIED), or makes a
    /// PARKED one ready in the next epoch (the caller must then schedule it).
    #[inline]
    fn wake(&self, epoch: u64) -> WakeOutcome {
        let mut cur = self.load();
        loop {
            if cur & !STATE_MASK != epoch {
                return WakeOutcome::Stale;
            }
            let (next, outcome) = match cur & STATE_MASK {
                RUNNING => (epoch | NOTIFIED, WakeOutcome::Notified),
                PARKED => (epoch + EPOCH_ONE, WakeOutcome::Unparked),
                _ => return WakeOutcome::Stale,
            };
            match self.0.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return outcome,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Makes the word new again (running, epoch zero), for a header that the next green
    /// thread reuses. Only its owner may call it, once no unparker of the old one exists.
    #[inline]
    pub(crate) fn reset(&self) {
        self.0.store(RUNNING, Ordering::Relaxed);
    }

    /// Marks the owner finished: every outstanding unparker becomes a no-op.
    #[inline]
    pub(crate) fn set_done(&self) {
        self.0.store(DONE, Ordering::Release);
    }

    /// Whether the word is in `state`.
    #[inline]
    pub(crate) fn is_state(&self, state: u64) -> bool {
        self.load() & STATE_MASK == state
    }
}

enum WakeOutcome {
    Stale,
    Notified,
    Unparked,
}

/// The scheduler a green thread belongs to, as the parking layer reaches it. Unparkers
/// and task headers are generic over it, so a wake-up calls the scheduler directly.
pub(crate) trait Home: Send + Sync + Sized + 'static {
    /// Makes `task`, whose park an unparker just ended, ready to run again. Called from
    /// any thread.
    fn make_ready(task: Arc<TaskHeader<Self>>);
}

/// The part of a green thread that other threads (and unparkers) may hold.
pub(crate) struct TaskHeader<H> {
    /// Index of the task in its scheduler's task table. Atomic only so that the scheduler
    /// can give a header it holds every reference to to its next task without a unique
    /// borrow (which costs a read-modify-write of the reference count to prove).
    id: AtomicUsize,
    pub(crate) park: ParkWord,
    /// The scheduler it belongs to.
    pub(crate) home: Arc<H>,
}

impl<H> TaskHeader<H> {
    /// A header for task `id` of scheduler `home`.
    pub(crate) fn new(id: usize, home: Arc<H>) -> TaskHeader<H> {
        TaskHeader { id: AtomicUsize::new(id), park: ParkWord::default(), home }
    }

    /// Index of the task in its scheduler's task table.
    #[inline]
    pub(crate) fn id(&self) -> usize {
        // Relaxed: written by the scheduler's own thread before the header is handed to
        // any other (through an unparker, published with the park word's Release).
        self.id.load(Ordering::Relaxed)
    }

    /// Gives the header to the task at `id`, and a fresh park word: for a header whose
    /// every reference its scheduler holds (no unparker of its last task is left).
    #[inline]
    pub(crate) fn reuse(&self, id: usize) {
        self.id.store(id, Ordering::Relaxed);
        self.park.reset();
    }

    /// Names the scheduler the green thread belongs to: the address of its home.
    #[inline]
    pub(crate) fn home_id(&self) -> usize {
        Arc::as_ptr(&self.home) as usize
    }
}

impl<H> fmt::Debug for TaskHeader<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHeader").field("id", &self.id()).field("park", &self.park).finish_non_exhaustive()
    }
}

/// An OS thread waiting outside any scheduler.
#[derive(Debug)]
pub(crate) struct ThreadParker {
    word: ParkWord,
    waker: Waker,
}

/// The single-use handle that makes one park of one green thread (or OS thread) end.
/// `Send`: a wake-up may come from any thread.
#[derive(Debug)]
pub(crate) struct Unparker<H: Home> {
    target: Target<H>,
    epoch: u64,
}

#[derive(Debug)]
enum Target<H> {
    Task(Arc<TaskHeader<H>>),
    Thread(Arc<ThreadParker>),
}

impl<H: Home> Unparker<H> {
    /// Ends the park this unparker was made for. Returns false if that park had already
    /// ended (the wake-up was not needed and should go to somebody else).
    #[inline]
    pub(crate) fn unpark(self) -> bool {
        match self.target {
            Target::Task(task) => match task.park.wake(self.epoch) {
                WakeOutcome::Stale => false,
                WakeOutcome::Notified => true,
                WakeOutcome::Unparked => {
                    H::make_ready(task);
                    true
                }
            },
            Target::Thread(t) => match t.word.wake(self.epoch) {
                WakeOutcome::Stale => false,
                WakeOutcome::Notified => true,
                WakeOutcome::Unparked => {
                    t.waker.wake();
                    true
                }
            },
        }
    }

    /// An unparker for park `epoch` of green thread `task`.
    #[inline]
    pub(crate) fn for_task(task: Arc<TaskHeader<H>>, epoch: u64) -> Unparker<H> {
        Unparker { target: Target::Task(task), epoch }
    }

    /// Which scheduler the woken green thread continues on (as [`TaskHeader::home_id`]
    /// names it);
    /// `None` for an OS thread outside any scheduler.
    #[inline]
    pub(crate) fn home(&self) -> Option<usize> {
        match &self.target {
            Target::Task(t) => Some(t.home_id()),
            Target::Thread(_) => None,
        }
    }

    /// Whether this unparker can still end a park (it is not stale).
    pub(crate) fn is_live(&self) -> bool {
        let word = match &self.target {
            Target::Task(t) => &t.park,
            Target::Thread(t) => &t.word,
        };
        let cur = word.load();
        cur & !STATE_MASK == self.epoch && cur & STATE_MASK != DONE
    }
}

thread_local! {
    static THREAD_PARKER: Arc<ThreadParker> =
        Arc::new(ThreadParker { word: ParkWord::default(), waker: Waker::thread(std::thread::current()) });
}

/// Blocks the calling OS thread, outside any scheduler, until the unparker handed to
/// `register` is used or `deadline` passes. `register` runs first and must store the
/// unparker where the wake-up will find it; it may also be used at once.
pub(crate) fn park_thread<H: Home>(deadline: Option<Instant>, register: impl FnOnce(Unparker<H>)) {
    let parker = THREAD_PARKER.with(Arc::clone);
    let epoch = parker.word.epoch();
    register(Unparker { target: Target::Thread(Arc::clone(&parker)), epoch });
    if !parker.word.try_park() {
        return; // woken before we got here
    }
    // Wait until an unparker moves the word on to the next epoch, or time runs out.
    while parker.word.is_state(PARKED) && parker.word.epoch() == epoch {
        match deadline {
            None => std::thread::park(),
            Some(at) => {
                let now = Instant::now();
                if now >= at {
                    // Time out: move on to the next epoch, unless an unparker just did.
                    let _ = parker.word.0.compare_exchange(
                        epoch | PARKED,
                        epoch + EPOCH_ONE,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    return;
                }
                std::thread::park_timeout(at - now);
            }
        }
    }
}
