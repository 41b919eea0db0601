//! The one parking primitive every wait is built on.
//!
//! [`park`] suspends the current green thread (or blocks the current OS thread, outside a
//! scheduler) after handing a single-use [`Unparker`] to a `register` callback, which
//! stores it wherever the wake-up will come from (a channel's wait list, a join state, the
//! timer heap). [`Unparker::unpark`] makes the parked thread ready again, from any thread.
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::Instant;

use super::scheduler::{self, TaskHeader};

/// What a green thread is waiting for, for the deadlock report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParkKind {
    /// `JoinHandle::join` on an unfinished green thread.
    Join,
    /// `Receiver::recv` on an empty channel.
    Recv,
    /// `Sender::send` on a full bounded channel.
    Send,
    /// `sleep` or a receive with a timeout.
    Sleep,
}

impl ParkKind {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ParkKind::Join => "joining another green thread",
            ParkKind::Recv => "receiving from an empty channel",
            ParkKind::Send => "sending to a full channel",
            ParkKind::Sleep => "sleeping",
        }
    }
}

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
    pub(crate) fn load(&self) -> u64 {
        // Acquire pairs with the Release of the transitions below, so a thread that sees
        // NOTIFIED or PARKED also sees what the other side wrote before it.
        self.0.load(Ordering::Acquire)
    }

    /// The current epoch (the one an unparker created now would carry).
    pub(crate) fn epoch(&self) -> u64 {
        self.load() & !STATE_MASK
    }

    /// RUNNING -> PARKED at the start of a green thread's park, before any unparker for
    /// it exists; returns the epoch those unparkers must carry.
    ///
    /// Only a stale unparker (of an older epoch, which changes nothing) can reach the word
    /// between a wake-up and the next park of the same green thread, so a store suffices.
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

    /// Marks the owner finished: every outstanding unparker becomes a no-op.
    pub(crate) fn set_done(&self) {
        self.0.store(DONE, Ordering::Release);
    }

    /// Whether the word is in `state`.
    pub(crate) fn is_state(&self, state: u64) -> bool {
        self.load() & STATE_MASK == state
    }
}

enum WakeOutcome {
    Stale,
    Notified,
    Unparked,
}

/// An OS thread waiting outside any scheduler.
#[derive(Debug)]
pub(crate) struct ThreadParker {
    word: ParkWord,
    thread: Thread,
}

/// The single-use handle that makes one park of one green thread (or OS thread) end.
/// `Send`: a wake-up may come from any thread.
#[derive(Debug)]
pub(crate) struct Unparker {
    target: Target,
    epoch: u64,
}

#[derive(Debug)]
enum Target {
    Task(Arc<TaskHeader>),
    Thread(Arc<ThreadParker>),
}

impl Unparker {
    /// Ends the park this unparker was made for. Returns false if that park had already
    /// ended (the wake-up was not needed and should go to somebody else).
    pub(crate) fn unpark(self) -> bool {
        match self.target {
            Target::Task(task) => match task.park.wake(self.epoch) {
                WakeOutcome::Stale => false,
                WakeOutcome::Notified => true,
                WakeOutcome::Unparked => {
                    scheduler::make_ready(task);
                    true
                }
            },
            Target::Thread(t) => match t.word.wake(self.epoch) {
                WakeOutcome::Stale => false,
                WakeOutcome::Notified => true,
                WakeOutcome::Unparked => {
                    t.thread.unpark();
                    true
                }
            },
        }
    }

    /// Which scheduler the woken green thread continues on (compare with
    /// [`current_home`]); `None` for an OS thread outside any scheduler.
    pub(crate) fn home(&self) -> Option<usize> {
        match &self.target {
            Target::Task(t) => Some(scheduler::home_of(t)),
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
        Arc::new(ThreadParker { word: ParkWord::default(), thread: std::thread::current() });
}

/// Parks the current green thread, or blocks the current OS thread outside a scheduler,
/// until the unparker handed to `register` is used. `register` runs before the park and
/// must store the unparker where the wake-up will find it; it may also be used at once.
///
/// Callers re-check their condition after `park` returns: it may return because of a
/// wake-up meant for a condition that has since been consumed by another waiter.
pub(crate) fn park(kind: ParkKind, register: impl FnOnce(Unparker)) {
    park_inner(kind, None, register);
}

/// Like [`park`], but also ends the park at `deadline`. Callers tell the two apart by
/// re-checking their condition and the clock.
pub(crate) fn park_until(kind: ParkKind, deadline: Instant, register: impl FnOnce(Unparker)) {
    park_inner(kind, Some(deadline), register);
}

/// The scheduler running on the calling thread, as [`Unparker::home`] names it.
pub(crate) fn current_home() -> Option<usize> {
    scheduler::current_home()
}

/// Aborts the process if dropped, which [`park_inner`] lets happen only by unwinding.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("bobbin: registering a green thread's wake-up failed while it was parking; aborting");
        std::process::abort();
    }
}

fn park_inner(kind: ParkKind, deadline: Option<Instant>, register: impl FnOnce(Unparker)) {
    if let Some((task, suspender)) = scheduler::parking_task() {
        let epoch = task.park.begin_park();
        if let Some(at) = deadline {
            // Two unparkers of the same epoch: whichever fires first ends the park, the
            // other finds a newer epoch and does nothing.
            scheduler::add_timer(at, Unparker { target: Target::Task(Arc::clone(&task)), epoch });
        }
        // The word says parked now: a registration that unwound would leave the green
        // thread running with a published unparker able to queue it. Registrations only
        // push onto a list, so that takes a failed allocation; stop there.
        let bomb = AbortOnUnwind;
        register(Unparker { target: Target::Task(task), epoch });
        std::mem::forget(bomb);
        scheduler::suspend_parked(suspender, kind);
        return;
    }
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
