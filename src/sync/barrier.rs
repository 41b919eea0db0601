//! [`Barrier`] and [`Semaphore`]: built on [`Mutex`](super::Mutex) and
//! [`Condvar`](super::Condvar), so their waits park the green thread.

use std::fmt;

use super::{Condvar, Mutex};

/// Lets `n` green threads (or OS threads) wait until all of them have arrived, like
/// [`std::sync::Barrier`]; reusable, round after round.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use bobbin::sync::Barrier;
///
/// let leaders = bobbin::run(|| {
///     let barrier = Arc::new(Barrier::new(5));
///     let handles: Vec<_> = (0..5)
///         .map(|_| {
///             let barrier = Arc::clone(&barrier);
///             bobbin::spawn(move || barrier.wait().is_leader())
///         })
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).filter(|&leader| leader).count()
/// });
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    /// Arrivals in this round, and the number of rounds completed.
    state: Mutex<(usize, u64)>,
    all_arrived: Condvar,
    n: usize,
}

/// What [`Barrier::wait`] tells each waiter: one of them is the round's leader.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// let leaders = bobbin::run(|| {
///     let barrier = Arc::new(bobbin::sync::Barrier::new(3));
///     let waiters: Vec<_> = (0..3)
///         .map(|_| {
///             let barrier = Arc::clone(&barrier);
///             bobbin::spawn(move || barrier.wait().is_leader())
///         })
///         .collect();
///     waiters.into_iter().map(|w| w.join().unwrap()).filter(|&leader| leader).count()
/// });
/// assert_eq!(leaders, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one waiter of each round (the last to arrive).
    ///
    /// # Examples
    /// ```
    /// assert!(bobbin::sync::Barrier::new(1).wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` waiters; 0 and 1 let every `wait` through at once.
    ///
    /// # Examples
    /// ```
    /// let alone = bobbin::sync::Barrier::new(1);
    /// assert!(alone.wait().is_leader()); // nobody else to wait for
    /// assert!(alone.wait().is_leader()); // and again: a barrier is reusable
    /// ```
    pub const fn new(n: usize) -> Barrier {
        Barrier { state: Mutex::new((0, 0)), all_arrived: Condvar::new(), n }
    }

    /// Parks until `n` waiters have called `wait` in this round.
    ///
    /// # Examples
    /// Nobody passes the barrier before both have arrived:
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// let seen = bobbin::run(|| {
    ///     let barrier = Arc::new(bobbin::sync::Barrier::new(2));
    ///     let arrived = Arc::new(AtomicU32::new(0));
    ///     let (b, a) = (Arc::clone(&barrier), Arc::clone(&arrived));
    ///     let other = bobbin::spawn(move || {
    ///         a.fetch_add(1, Ordering::SeqCst);
    ///         b.wait();
    ///     });
    ///     arrived.fetch_add(1, Ordering::SeqCst);
    ///     barrier.wait(); // parks until the other green thread arrives
    ///     other.join().unwrap();
    ///     arrived.load(Ordering::SeqCst)
    /// });
    /// assert_eq!(seen, 2);
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        // A panic cannot leave the counters half-updated: poisoning is ignored.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let round = state.1;
        state.0 += 1;
        if state.0 >= self.n {
            state.0 = 0;
            state.1 = state.1.wrapping_add(1);
            self.all_arrived.notify_all();
            return BarrierWaitResult(true);
        }
        let _state = self.all_arrived.wait_while(state, |s| s.1 == round).unwrap_or_else(|e| e.into_inner());
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").field("n", &self.n).finish_non_exhaustive()
    }
}

/// A counting semaphore: [`Semaphore::acquire`] takes a permit, parking while there is
/// none, and the [`SemaphorePermit`] gives it back when dropped. Bounds how many green
/// threads do something at once (open connections, say).
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use bobbin::sync::Semaphore;
///
/// let most = bobbin::run(|| {
///     let sem = Arc::new(Semaphore::new(3));
///     let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
///     let handles: Vec<_> = (0..10)
///         .map(|_| {
///             let (sem, now, most) = (Arc::clone(&sem), Arc::clone(&now), Arc::clone(&most));
///             bobbin::spawn(move || {
///                 let _permit = sem.acquire();
///                 most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
///                 bobbin::yield_now();
///                 now.fetch_sub(1, Ordering::SeqCst);
///             })
///         })
///         .collect();
///     handles.into_iter().for_each(|h| h.join().unwrap());
///     most.load(Ordering::SeqCst)
/// });
/// assert_eq!(most, 3);
/// ```
pub struct Semaphore {
    permits: Mutex<usize>,
    released: Condvar,
}

/// A permit of a [`Semaphore`], given back when dropped.
///
/// # Examples
/// ```
/// let sem = bobbin::sync::Semaphore::new(1);
/// {
///     let _permit = sem.acquire();
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 1); // given back by the drop
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(bobbin::sync::Semaphore::new(2).available_permits(), 2);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore { permits: Mutex::new(permits), released: Condvar::new() }
    }

    /// Takes a permit, parking until one is free.
    ///
    /// # Examples
    /// A green thread parks for a permit until another gives one back:
    /// ```
    /// use std::sync::Arc;
    /// let order = bobbin::run(|| {
    ///     let sem = Arc::new(bobbin::sync::Semaphore::new(1));
    ///     let (tx, rx) = bobbin::sync::channel();
    ///     let held = sem.acquire();
    ///     let waiter = {
    ///         let (sem, tx) = (Arc::clone(&sem), tx.clone());
    ///         bobbin::spawn(move || {
    ///             let _p = sem.acquire();
    ///             tx.send("waiter got it").unwrap();
    ///         })
    ///     };
    ///     bobbin::yield_now(); // the waiter parks
    ///     tx.send("holder gives it back").unwrap();
    ///     drop(held);
    ///     waiter.join().unwrap();
    ///     drop(tx);
    ///     rx.iter().collect::<Vec<_>>()
    /// });
    /// assert_eq!(order, ["holder gives it back", "waiter got it"]);
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        let permits = self.permits.lock().unwrap_or_else(|e| e.into_inner());
        let mut permits = self.released.wait_while(permits, |p| *p == 0).unwrap_or_else(|e| e.into_inner());
        *permits -= 1;
        SemaphorePermit { semaphore: self }
    }

    /// Takes a permit if one is free.
    ///
    /// # Examples
    /// ```
    /// let sem = bobbin::sync::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(p);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut permits = self.permits.lock().unwrap_or_else(|e| e.into_inner());
        if *permits == 0 {
            return None;
        }
        *permits -= 1;
        Some(SemaphorePermit { semaphore: self })
    }

    /// Adds `n` permits, waking waiters to take them.
    ///
    /// # Examples
    /// ```
    /// let sem = bobbin::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let mut permits = self.permits.lock().unwrap_or_else(|e| e.into_inner());
        *permits = permits.saturating_add(n);
        drop(permits);
        // Waiters re-check the count: one permit wakes one, more wake every waiter.
        match n {
            0 => {}
            1 => self.released.notify_one(),
            _ => self.released.notify_all(),
        }
    }

    /// The permits free now.
    ///
    /// # Examples
    /// ```
    /// let sem = bobbin::sync::Semaphore::new(3);
    /// let _a = sem.acquire();
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn available_permits(&self) -> usize {
        *self.permits.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good: the semaphore has one fewer.
    ///
    /// # Examples
    /// ```
    /// let sem = bobbin::sync::Semaphore::new(1);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore.add_permits(1);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").field("available_permits", &self.available_permits()).finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
