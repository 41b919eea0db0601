//! [`Mutex`]: mutual exclusion that parks the waiting green thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

use crate::park::{Lock, LockGuard};
use crate::sched::scheduler::Unparker;
use crate::sched::{budget, park};

/// A mutual-exclusion lock like [`std::sync::Mutex`], whose `lock` parks the calling green
/// thread (or blocks the OS thread, outside a scheduler) instead of holding its scheduler.
/// Poisoned, as std's is, when a holder panics.
///
/// Waiters are not served in order: an unlocking holder wakes one waiter, and a green
/// thread that arrives meanwhile may take the lock first (the woken one then waits again).
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
    /// Unparkers of the green threads (or OS threads) waiting for the lock.
    waiters: Lock<VecDeque<Unparker>>,
}

/// Holds a [`Mutex`] locked; unlocks it (and wakes a waiter) when dropped.
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
        Mutex { data: Lock::new(value), poisoned: AtomicBool::new(false), waiters: Lock::new(VecDeque::new()) }
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
    /// # Panics
    /// Called on the stack of a coroutine or generator that a green thread drives, if
    /// it has to wait (see [`crate::sched`]).
    ///
    /// # Examples
    /// See [`Mutex`].
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        let data = match self.data.try_lock() {
            Some(data) => {
                budget::spend();
                data
            }
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
        loop {
            let acquired = RefCell::new(None);
            park::park("waiting for a mutex", |u| {
                let mut waiters = self.waiters.lock();
                // Under the waiters' lock: an unlock that came before this either left the
                // mutex free (taken here) or finds this waiter in the list.
                match self.data.try_lock() {
                    Some(data) => {
                        drop(waiters);
                        *acquired.borrow_mut() = Some(data);
                        u.unpark();
                    }
                    None => waiters.push_back(u),
                }
            });
            if let Some(data) = acquired.into_inner().or_else(|| self.data.try_lock()) {
                return data;
            }
        }
    }

    fn guard<'a>(&'a self, data: LockGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let guard = MutexGuard { mutex: self, data: Some(data), panicking: std::thread::panicking() };
        if self.is_poisoned() {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// Wakes one waiter, after the lock was released.
    fn wake_one(&self) {
        let mut waiters = self.waiters.lock();
        // A stale unparker (its waiter was unwound) wakes no one: try the next.
        while let Some(u) = waiters.pop_front() {
            if u.unpark() {
                break;
            }
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
        if !self.panicking && std::thread::panicking() {
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
