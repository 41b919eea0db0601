//! [`RwLock`]: many readers or one writer, parking the green threads that wait.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{self as ssync, LockResult, PoisonError, TryLockError, TryLockResult};

use super::{Condvar, Mutex};

/// A reader-writer lock like [`std::sync::RwLock`], whose `read` and `write` park the
/// calling green thread (or block the OS thread, outside a scheduler) while they wait.
/// Poisoned, as std's is, when a writer panics. The poisoning is std's own, which asks
/// [`std::thread::panicking`], kept per OS thread: while a green thread is parked in the
/// middle of its unwinding (a destructor that waits), a write guard dropped by another
/// green thread of the same OS thread poisons the lock. [`Mutex`] tells the two apart.
///
/// Writers go first: once a writer waits, new readers wait behind it, so a stream of
/// readers cannot starve writers.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use bobbin::sync::RwLock;
///
/// bobbin::run(|| {
///     let config = Arc::new(RwLock::new(vec![1, 2, 3]));
///     let readers: Vec<_> = (0..4)
///         .map(|_| {
///             let config = Arc::clone(&config);
///             bobbin::spawn(move || config.read().unwrap().iter().sum::<i32>())
///         })
///         .collect();
///     config.write().unwrap().push(4);
///     for r in readers {
///         let sum = r.join().unwrap();
///         assert!(sum == 6 || sum == 10);
///     }
///     assert_eq!(config.read().unwrap().len(), 4);
/// });
/// ```
pub struct RwLock<T> {
    /// The value; every access through it is granted by `state` first, so its own
    /// `try_read`/`try_write` never find it taken (it keeps std's poisoning).
    data: ssync::RwLock<T>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
    writers_waiting: usize,
}

/// Shared access to an [`RwLock`]'s value; released when dropped.
///
/// # Examples
/// ```
/// let lock = bobbin::sync::RwLock::new(5);
/// let (a, b) = (lock.read().unwrap(), lock.read().unwrap()); // readers share it
/// assert_eq!(*a + *b, 10);
/// assert!(lock.try_write().is_err());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    data: Option<ssync::RwLockReadGuard<'a, T>>,
}

/// Exclusive access to an [`RwLock`]'s value; released when dropped.
///
/// # Examples
/// ```
/// let lock = bobbin::sync::RwLock::new(String::from("a"));
/// {
///     let mut w = lock.write().unwrap();
///     w.push('b');
///     assert!(lock.try_read().is_err()); // nobody reads while it writes
/// }
/// assert_eq!(*lock.read().unwrap(), "ab");
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    data: Option<ssync::RwLockWriteGuard<'a, T>>,
}

impl<T> RwLock<T> {
    /// A new, unlocked lock holding `value`.
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::sync::RwLock::new(5);
    /// assert_eq!(*l.read().unwrap(), 5);
    /// ```
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            data: ssync::RwLock::new(value),
            state: Mutex::new(State { readers: 0, writer: false, writers_waiting: 0 }),
            changed: Condvar::new(),
        }
    }

    fn state(&self) -> super::MutexGuard<'_, State> {
        // The state is a few counters changed in single statements: a panic elsewhere
        // cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shared access, parking while a writer holds the lock or waits for it.
    ///
    /// # Errors
    /// If a writer panicked: the error still holds the guard.
    ///
    /// # Examples
    /// A reader parks while a writer holds the lock, and sees the whole write:
    /// ```
    /// use std::sync::Arc;
    /// let seen = bobbin::run(|| {
    ///     let lock = Arc::new(bobbin::sync::RwLock::new((0, 0)));
    ///     let mut w = lock.write().unwrap();
    ///     let l2 = Arc::clone(&lock);
    ///     let reader = bobbin::spawn(move || *l2.read().unwrap());
    ///     w.0 = 1;
    ///     bobbin::yield_now(); // the reader parks
    ///     w.1 = 1;
    ///     drop(w);
    ///     reader.join().unwrap()
    /// });
    /// assert_eq!(seen, (1, 1));
    /// ```
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let state = self.state();
        let mut state = self
            .changed
            .wait_while(state, |s| s.writer || s.writers_waiting > 0)
            .unwrap_or_else(PoisonError::into_inner);
        state.readers += 1;
        drop(state);
        self.read_granted()
    }

    /// Shared access if no writer holds the lock or waits for it.
    ///
    /// # Errors
    /// `TryLockError::WouldBlock`, or `Poisoned` if a writer panicked.
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::sync::RwLock::new(1);
    /// let r = l.try_read().unwrap();
    /// assert!(l.try_read().is_ok());
    /// assert!(l.try_write().is_err());
    /// drop(r);
    /// ```
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        let mut state = self.state();
        if state.writer || state.writers_waiting > 0 {
            return Err(TryLockError::WouldBlock);
        }
        state.readers += 1;
        drop(state);
        Ok(self.read_granted()?)
    }

    /// Exclusive access, parking while anyone else holds the lock.
    ///
    /// # Errors
    /// If a writer panicked: the error still holds the guard.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// let total = bobbin::run(|| {
    ///     let lock = Arc::new(bobbin::sync::RwLock::new(0));
    ///     let writers: Vec<_> = (0..4)
    ///         .map(|_| {
    ///             let lock = Arc::clone(&lock);
    ///             bobbin::spawn(move || *lock.write().unwrap() += 1)
    ///         })
    ///         .collect();
    ///     writers.into_iter().for_each(|w| w.join().unwrap());
    ///     let n = *lock.read().unwrap();
    ///     n
    /// });
    /// assert_eq!(total, 4);
    /// ```
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let mut state = self.state();
        state.writers_waiting += 1;
        let mut state =
            self.changed.wait_while(state, |s| s.writer || s.readers > 0).unwrap_or_else(PoisonError::into_inner);
        state.writers_waiting -= 1;
        state.writer = true;
        drop(state);
        self.write_granted()
    }

    /// Exclusive access if no one holds the lock.
    ///
    /// # Errors
    /// `TryLockError::WouldBlock`, or `Poisoned` if a writer panicked.
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::sync::RwLock::new(1);
    /// *l.try_write().unwrap() = 2;
    /// assert_eq!(*l.read().unwrap(), 2);
    /// ```
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        let mut state = self.state();
        if state.writer || state.readers > 0 {
            return Err(TryLockError::WouldBlock);
        }
        state.writer = true;
        drop(state);
        Ok(self.write_granted()?)
    }

    /// Whether a writer panicked.
    ///
    /// # Examples
    /// ```
    /// assert!(!bobbin::sync::RwLock::new(0).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.data.is_poisoned()
    }

    /// The value, out of the lock.
    ///
    /// # Errors
    /// If the lock is poisoned; the error holds the value.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(bobbin::sync::RwLock::new(3).into_inner().unwrap(), 3);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        self.data.into_inner()
    }

    /// The value, through a unique borrow.
    ///
    /// # Errors
    /// If the lock is poisoned; the error holds the reference.
    ///
    /// # Examples
    /// ```
    /// let mut l = bobbin::sync::RwLock::new(1);
    /// *l.get_mut().unwrap() = 2;
    /// assert_eq!(*l.read().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.data.get_mut()
    }

    fn read_granted(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let wrap = |data| RwLockReadGuard { lock: self, data: Some(data) };
        match self.data.try_read() {
            Ok(data) => Ok(wrap(data)),
            Err(TryLockError::Poisoned(e)) => Err(PoisonError::new(wrap(e.into_inner()))),
            Err(TryLockError::WouldBlock) => unreachable!("bobbin: a granted read found the value taken"),
        }
    }

    fn write_granted(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let wrap = |data| RwLockWriteGuard { lock: self, data: Some(data) };
        match self.data.try_write() {
            Ok(data) => Ok(wrap(data)),
            Err(TryLockError::Poisoned(e)) => Err(PoisonError::new(wrap(e.into_inner()))),
            Err(TryLockError::WouldBlock) => unreachable!("bobbin: a granted write found the value taken"),
        }
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.data.take());
        let mut state = self.lock.state();
        state.readers -= 1;
        let last = state.readers == 0;
        drop(state);
        if last {
            self.lock.changed.notify_all();
        }
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        // std's guard poisons the value if this thread is panicking.
        drop(self.data.take());
        self.lock.state().writer = false;
        self.lock.changed.notify_all();
    }
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data.as_ref().expect("a live guard holds the lock")
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data.as_ref().expect("a live guard holds the lock")
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_mut().expect("a live guard holds the lock")
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(e)) => d.field("data", &&**e.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned()).finish_non_exhaustive()
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
