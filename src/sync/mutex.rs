//! [`Mutex`]: mutual exclusion that parks the waiting green thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

use crate::park::{Lock, LockGuard};
use crate::sched::scheduler::{self, Unparker};
use crate::sched::{budget, park};

/// A mutual-exclusion lock like [`std::sync::Mutex`], whose `lock` parks the calling green
/// thread (or blocks the OS thread, outside a scheduler) instead of holding its scheduler.
/// Poisoned, as std's is, when a holder panics.
///
/// A holder's panic is told per green thread: a green thread parked in the middle of its
/// unwinding (a destructor that waits) does not make the other green threads of its OS
/// thread look as if they panicked, although [`std::thread::panicking`], which std keeps per
/// OS thread, says so to them. One case is not told apart: a green thread that starts to
/// unwind while another one is parked mid-unwind, and drops its guard before it parks
/// itself, does not poison the mutex.
///
/// Fairness: an unlocking holder wakes the waiter at the front of a FIFO queue. A thread
/// that arrives meanwhile may take the lock first (barging keeps an uncontended or lightly
/// contended mutex fast), and the woken waiter keeps its place at the front. A waiter that
/// has lost the lock this way twice turns barging off: then only it may
/// take the lock, and newcomers queue behind it. So no waiter starves, however busy the
/// holders are.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use bobbin::sync::Mutex;
///
/// let total = bobbin::run(|| {
///     let counter = Arc::new(Mutex::new(0u64));
///     let handles: Vec<_> = (0..10)
///         .map(|_| {
///             let counter = Arc::clone(&counter);
///             bobbin::spawn(move || {
///                 for _ in 0..100 {
///                     let mut n = counter.lock().unwrap();
///                     let seen = *n;
///                     bobbin::yield_now(); // other green threads run, and wait for the lock
///                     *n = seen + 1;
///                 }
///             })
///         })
///         .collect();
///     handles.into_iter().for_each(|h| h.join().unwrap());
///     let n = *counter.lock().unwrap();
///     n
/// });
/// assert_eq!(total, 1000);
/// ```
pub struct Mutex<T> {
    /// The value behind the parking layer's short lock: holding the mutex is holding that
    /// lock, which is only ever tried, never spun on (a waiter parks instead).
    data: Lock<T>,
    poisoned: AtomicBool,
    /// Unparkers of the green threads (or OS threads) waiting for the lock, in the order
    /// they are to be woken.
    waiters: Lock<VecDeque<(usize, Unparker)>>,
    /// The waiter that has lost the lock too often and may now take it alone (its
    /// `Ticket`'s id), or 0 while anyone may.
    starving: AtomicUsize,
}

/// How many times a woken waiter may find the lock taken by a newcomer before it turns
/// barging off.
const STARVE_AFTER: u32 = 2;

/// Holds a [`Mutex`] locked; unlocks it (and wakes a waiter) when dropped.
///
/// # Examples
/// ```
/// let m = bobbin::sync::Mutex::new(vec![1]);
/// {
///     let mut guard = m.lock().unwrap();
///     guard.push(2); // the value, through the guard
///     assert!(m.try_lock().is_err()); // held while the guard lives
/// }
/// assert_eq!(*m.lock().unwrap(), [1, 2]);
/// ```
#[must_use = "the mutex is unlocked as soon as the guard is dropped"]
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    /// `None` only while the guard is dropped.
    data: Option<LockGuard<'a, T>>,
    /// Whether the thread was panicking when it locked: only a new panic poisons.
    panicking: bool,
}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    ///
    /// # Examples
    /// ```
    /// let m = bobbin::sync::Mutex::new(5);
    /// assert_eq!(*m.lock().unwrap(), 5);
    /// ```
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            data: Lock::new(value),
            poisoned: AtomicBool::new(false),
            waiters: Lock::new(VecDeque::new()),
            starving: AtomicUsize::new(0),
        }
    }

    /// The value, out of the mutex.
    ///
    /// # Errors
    /// If the mutex is poisoned; the error holds the value.
    ///
    /// # Examples
    /// ```
    /// let m = bobbin::sync::Mutex::new(String::from("x"));
    /// assert_eq!(m.into_inner().unwrap(), "x");
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poisoned.load(Ordering::Relaxed);
        let value = self.data.into_inner();
        if poisoned {
            Err(PoisonError::new(value))
        } else {
            Ok(value)
        }
    }
}

impl<T> Mutex<T> {
    /// Locks the mutex, parking the green thread while another holds it.
    ///
    /// # Errors
    /// If a holder panicked: the error still holds the guard.
    ///
    /// # Examples
    /// A green thread that wants the lock parks; the holder's green thread goes on:
    /// ```
    /// use std::sync::Arc;
    /// let log = bobbin::run(|| {
    ///     let m = Arc::new(bobbin::sync::Mutex::new(Vec::new()));
    ///     let held = m.lock().unwrap();
    ///     let m2 = Arc::clone(&m);
    ///     let waiter = bobbin::spawn(move || m2.lock().unwrap().push("waiter"));
    ///     bobbin::yield_now(); // the waiter parks on the lock
    ///     drop(held);
    ///     m.lock().unwrap().push("holder"); // may take it first, or not: both get in
    ///     waiter.join().unwrap();
    ///     let mut log = m.lock().unwrap().clone();
    ///     log.sort();
    ///     log
    /// });
    /// assert_eq!(log, ["holder", "waiter"]);
    /// ```
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        // Spent before taking the lock: a green thread whose budget runs out yields here,
        // never while it holds the lock.
        budget::spend();
        let data = match self.starving.load(Ordering::Relaxed) {
            0 => self.data.try_lock(),
            _ => None,
        };
        let data = match data {
            Some(data) => data,
            None => self.lock_slow(),
        };
        self.guard(data)
    }

    /// Locks the mutex if no one holds it.
    ///
    /// # Errors
    /// `TryLockError::WouldBlock` if it is held; `Poisoned` if a holder panicked.
    ///
    /// # Examples
    /// ```
    /// let m = bobbin::sync::Mutex::new(1);
    /// let g = m.lock().unwrap();
    /// assert!(m.try_lock().is_err());
    /// drop(g);
    /// assert!(m.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        budget::spend();
        match self.data.try_lock() {
            Some(data) => Ok(self.guard(data)?),
            None => Err(TryLockError::WouldBlock),
        }
    }

    /// Whether a holder panicked.
    ///
    /// # Examples
    /// ```
    /// let m = bobbin::sync::Mutex::new(0);
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Clears the poison, as [`std::sync::Mutex::clear_poison`].
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// let m = Arc::new(bobbin::sync::Mutex::new(0));
    /// let m2 = Arc::clone(&m);
    /// let _ = std::thread::spawn(move || { let _g = m2.lock().unwrap(); panic!("poison") }).join();
    /// assert!(m.is_poisoned());
    /// m.clear_poison();
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn clear_poison(&self) {
        self.poisoned.store(false, Ordering::Relaxed);
    }

    /// The value, through a unique borrow: no locking needed.
    ///
    /// # Errors
    /// If the mutex is poisoned; the error holds the reference.
    ///
    /// # Examples
    /// ```
    /// let mut m = bobbin::sync::Mutex::new(1);
    /// *m.get_mut().unwrap() += 1;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.is_poisoned();
        let value = self.data.get_mut();
        if poisoned {
            Err(PoisonError::new(value))
        } else {
            Ok(value)
        }
    }

    #[cold]
    fn lock_slow(&self) -> LockGuard<'_, T> {
        let anchor = 0u8;
        let mut ticket = Ticket::new(self, &anchor);
        let me = ticket.id;
        let mut losses = 0u32;
        let mut woken = false;
        loop {
            let acquired = RefCell::new(None);
            park::park("waiting for a mutex", |u| {
                let mut waiters = self.waiters.lock();
                // Under the waiters' lock: an unlock that came before this either left the
                // mutex free (taken here, unless another waiter has it reserved) or finds
                // this waiter in the list.
                let reserved = self.starving.load(Ordering::Relaxed);
                if reserved == 0 || reserved == me {
                    if let Some(data) = self.data.try_lock() {
                        drop(waiters);
                        *acquired.borrow_mut() = Some(data);
                        u.unpark();
                        return;
                    }
                }
                if !woken {
                    waiters.push_back((me, u));
                    return;
                }
                // Woken from the front and beaten to the lock: keep the place.
                waiters.push_front((me, u));
                if losses >= STARVE_AFTER && reserved == 0 {
                    self.starving.store(me, Ordering::Relaxed);
                }
            });
            woken = true;
            let reserved = self.starving.load(Ordering::Relaxed);
            let entitled = reserved == 0 || reserved == me;
            let data = acquired.into_inner().or_else(|| match entitled {
                true => self.data.try_lock(),
                false => None,
            });
            if let Some(data) = data {
                ticket.acquired = true;
                #[cfg(test)]
                tests::MOST_LOSSES.fetch_max(losses, Ordering::Relaxed);
                return data; // dropping `ticket` lifts a reservation it made
            }
            // Beaten by a newcomer (not by a waiter that had reserved the lock: that is
            // waiting in turn, not losing).
            if entitled {
                losses += 1;
            }
        }
    }

    fn guard<'a>(&'a self, data: LockGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let guard = MutexGuard { mutex: self, data: Some(data), panicking: scheduler::panicking() };
        if self.is_poisoned() {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// Wakes one waiter, after the lock was released: the one that reserved it, or else
    /// the first. Nobody, if the reserving waiter has been woken already and is on its
    /// way to take the lock.
    fn wake_one(&self) {
        let mut waiters = self.waiters.lock();
        let reserved = self.starving.load(Ordering::Relaxed);
        if reserved != 0 {
            match waiters.iter().position(|(id, _)| *id == reserved) {
                Some(i) => {
                    let (_, u) = waiters.remove(i).expect("position is in the list");
                    if u.unpark() {
                        return;
                    }
                    // Stale: the reserving waiter was unwound, and its ticket wakes the next one.
                }
                None => return,
            }
        }
        // A stale unparker (its waiter was unwound) wakes no one: try the next.
        while let Some((_, u)) = waiters.pop_front() {
            if u.unpark() {
                break;
            }
        }
    }
}

/// A waiter in [`Mutex::lock_slow`], named by the address of a local of its frame (no two
/// waiting frames share one). Dropped, it lifts a reservation the waiter made; dropped
/// without the lock (the waiter unwound: a cancelled or stopped green thread), it also
/// passes on a wake-up it may have been given, so no other waiter is left parked beside a
/// free lock.
struct Ticket<'a, T> {
    mutex: &'a Mutex<T>,
    id: usize,
    acquired: bool,
}

impl<'a, T> Ticket<'a, T> {
    fn new(mutex: &'a Mutex<T>, anchor: &u8) -> Ticket<'a, T> {
        Ticket { mutex, id: anchor as *const u8 as usize, acquired: false }
    }
}

impl<T> Drop for Ticket<'_, T> {
    fn drop(&mut self) {
        let _ = self.mutex.starving.compare_exchange(self.id, 0, Ordering::Relaxed, Ordering::Relaxed);
        if !self.acquired {
            self.mutex.wake_one();
        }
    }
}

impl<'a, T> MutexGuard<'a, T> {
    /// The mutex this guard holds.
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        if !self.panicking && scheduler::panicking() {
            self.mutex.poisoned.store(true, Ordering::Relaxed);
        }
        // Released first, then a waiter woken: it finds the lock free.
        drop(self.data.take());
        self.mutex.wake_one();
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data.as_ref().expect("a live guard holds the lock")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_mut().expect("a live guard holds the lock")
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(e)) => d.field("data", &&**e.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned()).finish_non_exhaustive()
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::{Mutex, STARVE_AFTER};
    use crate::Runtime;

    /// The most times a waiter was beaten to the lock by a newcomer before it got it.
    pub(super) static MOST_LOSSES: AtomicU32 = AtomicU32::new(0);

    /// A holder that re-locks the instant it unlocks and holds the lock nearly all the
    /// time cannot starve the others: each waiter (green threads on two workers, an OS
    /// thread) is beaten to the lock by a newcomer at most twice, then reserves it. How
    /// many rounds the holder runs meanwhile depends on how fast a woken waiter gets a
    /// core, so the test counts losses, not rounds. With barging alone (no reservation) a
    /// woken waiter wins only if it looks in the short gap between the holder's unlock
    /// and its next lock, and loses dozens of times.
    #[test]
    fn a_holder_that_relocks_at_once_cannot_starve_the_waiters() {
        #[derive(Default)]
        struct State {
            done: bool,
            hog_rounds: u64,
            waiter_rounds: u64,
        }
        const WAITERS: u64 = 5;
        const WAITER_ROUNDS: u64 = 20;
        let m = Arc::new(Mutex::new(State::default()));
        let hog = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || loop {
                let mut g = m.lock().unwrap();
                if g.done {
                    return;
                }
                for i in 0..20_000u64 {
                    std::hint::black_box(i); // work done while holding the lock
                }
                g.hog_rounds += 1;
            })
        };
        while m.lock().unwrap().hog_rounds < 10 {
            std::thread::yield_now();
        }
        MOST_LOSSES.store(0, Ordering::Relaxed);
        let rt = Runtime::builder().workers(2).build().unwrap();
        let round = |m: &Mutex<State>| m.lock().unwrap().waiter_rounds += 1;
        let green: Vec<_> = (0..WAITERS - 1)
            .map(|_| {
                let m = Arc::clone(&m);
                rt.spawn(move || (0..WAITER_ROUNDS).for_each(|_| round(&m)))
            })
            .collect();
        let thread = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || (0..WAITER_ROUNDS).for_each(|_| round(&m)))
        };
        green.into_iter().for_each(|h| h.join().unwrap());
        thread.join().unwrap();
        {
            let mut g = m.lock().unwrap();
            g.done = true;
            assert_eq!(g.waiter_rounds, WAITERS * WAITER_ROUNDS);
        }
        hog.join().unwrap();
        // A newcomer that read "not reserved" just before the reservation (and was perhaps
        // preempted before its try) may still win once: at most once per other contender,
        // of which there are five.
        let most = MOST_LOSSES.load(Ordering::Relaxed);
        assert!(most <= STARVE_AFTER + 5, "a waiter was beaten to the lock {most} times in a row");
    }
}
