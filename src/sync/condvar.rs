//! [`Condvar`]: waiting for a condition under a [`Mutex`](super::Mutex), parking the green thread.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::LockResult;
use std::time::{Duration, Instant};

use super::mutex::MutexGuard;
use crate::park::Lock;
use crate::sched::park;
use crate::sched::scheduler::Unparker;

/// A condition variable like [`std::sync::Condvar`], for [`Mutex`](super::Mutex): `wait` releases the
/// mutex and parks the green thread (or blocks the OS thread, outside a scheduler) until
/// notified, then locks the mutex again.
///
/// A notification reaches only green threads already waiting, and a wait may end without
/// one (its own timeout, say): wait in a loop on the condition, or use
/// [`Condvar::wait_while`].
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use bobbin::sync::{Condvar, Mutex};
///
/// bobbin::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let pair2 = Arc::clone(&pair);
///     bobbin::spawn(move || {
///         let (ready, cv) = &*pair2;
///         *ready.lock().unwrap() = true;
///         cv.notify_one();
///     });
///     let (ready, cv) = &*pair;
///     let guard = cv.wait_while(ready.lock().unwrap(), |ready| !*ready).unwrap();
///     assert!(*guard);
/// });
/// ```
#[derive(Default)]
pub struct Condvar {
    /// Each waiter with the number of its wait, so that a wait that ends without a
    /// notification can find and remove its own entry.
    waiters: Lock<VecDeque<(u64, Unparker)>>,
    next_wait: AtomicU64,
    /// The address of the mutex the waits use (0 before the first): one condition
    /// variable serves one mutex, as std requires.
    mutex: AtomicUsize,
}

/// Whether a timed wait of a [`Condvar`] ended by its timeout, as std's type of that
/// name.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use bobbin::sync::{Condvar, Mutex};
/// let (m, cv) = (Mutex::new(false), Condvar::new());
/// let (g, r) = cv.wait_timeout_while(m.lock().unwrap(), Duration::from_millis(1), |ready| !*ready).unwrap();
/// assert!(r.timed_out() && !*g);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because its time ran out.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use bobbin::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
    /// assert!(r.timed_out()); // nobody notifies
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable with no waiters.
    ///
    /// # Examples
    /// ```
    /// static READY: bobbin::sync::Condvar = bobbin::sync::Condvar::new();
    /// READY.notify_all(); // nobody waits: nothing happens
    /// let m = bobbin::sync::Mutex::new(1);
    /// let (g, r) = READY.wait_timeout(m.lock().unwrap(), std::time::Duration::ZERO).unwrap();
    /// assert!(r.timed_out() && *g == 1);
    /// ```
    pub const fn new() -> Condvar {
        Condvar { waiters: Lock::new(VecDeque::new()), next_wait: AtomicU64::new(0), mutex: AtomicUsize::new(0) }
    }

    /// Releases `guard`'s mutex, parks until notified, and locks the mutex again.
    ///
    /// # Errors
    /// If the mutex is poisoned when it is locked again; the error holds the guard.
    ///
    /// # Panics
    /// If the condition variable was waited on with another mutex before, as std's.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use bobbin::sync::{Condvar, Mutex};
    /// bobbin::run(|| {
    ///     let state = Arc::new((Mutex::new(0), Condvar::new()));
    ///     let s = Arc::clone(&state);
    ///     bobbin::spawn(move || {
    ///         *s.0.lock().unwrap() = 7;
    ///         s.1.notify_all();
    ///     });
    ///     let mut n = state.0.lock().unwrap();
    ///     while *n == 0 {
    ///         n = state.1.wait(n).unwrap();
    ///     }
    ///     assert_eq!(*n, 7);
    /// });
    /// ```
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let mutex = guard.mutex();
        self.park_releasing(guard, None);
        mutex.lock()
    }

    /// [`Condvar::wait`] until `condition` is false, as [`std::sync::Condvar::wait_while`].
    ///
    /// # Errors
    /// If the mutex is poisoned; the error holds the guard.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use bobbin::sync::{Condvar, Mutex};
    /// let got = bobbin::run(|| {
    ///     let queue = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    ///     let q = Arc::clone(&queue);
    ///     bobbin::spawn(move || {
    ///         for i in 1..=3 {
    ///             q.0.lock().unwrap().push(i);
    ///             q.1.notify_one();
    ///             bobbin::yield_now();
    ///         }
    ///     });
    ///     // Parks until three items are in, however the notifications fall.
    ///     let items = queue.1.wait_while(queue.0.lock().unwrap(), |v| v.len() < 3).unwrap();
    ///     items.clone()
    /// });
    /// assert_eq!(got, [1, 2, 3]);
    /// ```
    pub fn wait_while<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'a, T>> {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`Condvar::wait`] for at most `timeout`.
    ///
    /// # Errors
    /// If the mutex is poisoned; the error holds the guard and the timeout result.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use bobbin::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, result) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
    /// assert!(result.timed_out());
    /// ```
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let deadline = Instant::now().checked_add(timeout);
        let mutex = guard.mutex();
        let notified = self.park_releasing(guard, deadline);
        let result = WaitTimeoutResult(!notified);
        match mutex.lock() {
            Ok(g) => Ok((g, result)),
            Err(e) => Err(std::sync::PoisonError::new((e.into_inner(), result))),
        }
    }

    /// [`Condvar::wait_while`] for at most `timeout` in all.
    ///
    /// # Errors
    /// If the mutex is poisoned; the error holds the guard and the timeout result.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use bobbin::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(0), Condvar::new());
    /// let (g, result) = cv.wait_timeout_while(m.lock().unwrap(), Duration::from_millis(1), |n| *n == 0).unwrap();
    /// assert!(result.timed_out() && *g == 0);
    /// ```
    pub fn wait_timeout_while<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            let left = match deadline {
                Some(at) => at.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            guard = match self.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(e) => {
                    let (g, _) = e.into_inner();
                    return Err(std::sync::PoisonError::new((g, WaitTimeoutResult(false))));
                }
            };
        }
    }

    /// Wakes one waiting green thread (or OS thread), if any waits.
    ///
    /// # Examples
    /// Two waiters, one notification: exactly one of them wakes.
    /// ```
    /// use std::sync::Arc;
    /// use bobbin::sync::{Condvar, Mutex};
    /// let woken = bobbin::run(|| {
    ///     let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    ///     for _ in 0..2 {
    ///         let s = Arc::clone(&state);
    ///         bobbin::spawn(move || {
    ///             let g = s.0.lock().unwrap();
    ///             let mut g = s.1.wait(g).unwrap();
    ///             *g += 1;
    ///         });
    ///     }
    ///     bobbin::yield_now(); // both wait now
    ///     state.1.notify_one();
    ///     bobbin::yield_now();
    ///     bobbin::yield_now();
    ///     let n = *state.0.lock().unwrap();
    ///     state.1.notify_one(); // lets the other one finish too
    ///     n
    /// });
    /// assert_eq!(woken, 1);
    /// ```
    pub fn notify_one(&self) {
        let mut waiters = self.waiters.lock();
        // Stale unparkers (waits that timed out or were unwound) wake no one.
        while let Some((_, u)) = waiters.pop_front() {
            if u.unpark() {
                return;
            }
        }
    }

    /// Wakes every waiting green thread and OS thread.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use bobbin::sync::{Condvar, Mutex};
    /// let woken = bobbin::run(|| {
    ///     let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    ///     let waiters: Vec<_> = (0..3)
    ///         .map(|_| {
    ///             let s = Arc::clone(&state);
    ///             bobbin::spawn(move || *s.1.wait(s.0.lock().unwrap()).unwrap() += 1)
    ///         })
    ///         .collect();
    ///     bobbin::yield_now(); // all three wait now
    ///     state.1.notify_all();
    ///     waiters.into_iter().for_each(|w| w.join().unwrap());
    ///     let n = *state.0.lock().unwrap();
    ///     n
    /// });
    /// assert_eq!(woken, 3);
    /// ```
    pub fn notify_all(&self) {
        let woken: Vec<(u64, Unparker)> = self.waiters.lock().drain(..).collect();
        for (_, u) in woken {
            u.unpark();
        }
    }

    /// Parks after putting this waiter in the list and releasing the mutex, in that order
    /// (a notification after the release finds the waiter); returns whether a notification
    /// (rather than the deadline) ended the park.
    fn park_releasing<T>(&self, guard: MutexGuard<'_, T>, deadline: Option<Instant>) -> bool {
        let mutex = guard.mutex() as *const _ as usize;
        match self.mutex.compare_exchange(0, mutex, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {}
            Err(first) if first == mutex => {}
            Err(_) => panic!(
                "bobbin: a Condvar was waited on with two different mutexes (one condition variable serves one mutex)"
            ),
        }
        let wait = self.next_wait.fetch_add(1, Ordering::Relaxed);
        let mut guard = Some(guard);
        let register = |u: Unparker| {
            self.waiters.lock().push_back((wait, u));
            // Unlocking may wake a waiter of the mutex: that only queues it.
            drop(guard.take());
        };
        match deadline {
            Some(at) => park::park_until("waiting on a condition variable", at, register),
            None => park::park("waiting on a condition variable", register),
        }
        // A notification took this wait's entry; one still listed ended otherwise.
        let mut waiters = self.waiters.lock();
        match waiters.iter().position(|(w, _)| *w == wait) {
            Some(i) => {
                waiters.remove(i);
                false
            }
            None => true,
        }
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
