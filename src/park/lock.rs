//! The short-lived lock of channels, join states and schedulers' wake-up queues.

use std::fmt;

use spin::mutex::{SpinMutex, SpinMutexGuard};

/// Rounds of busy-waiting (each twice as long as the last, up to 64 spin hints) before a
/// waiter starts yielding its OS thread between looks at the lock.
const SPIN_ROUNDS: u32 = 12;

/// A lock whose critical sections last tens of nanoseconds: a queue push or pop.
///
/// Taking it is one compare-and-swap and releasing it a plain store. A `std::sync::Mutex`
/// releases with a swap, because it must learn whether to wake a sleeper, and on this
/// machine every atomic read-modify-write costs about 10 ns: a channel message passes
/// through three critical sections, so the swaps alone were about a tenth of a ping-pong
/// message. A waiter spins, looking at the lock without writing it, and after a while
/// yields its OS thread between looks, so a holder that was preempted gets the core back
/// (there is no sleeping in the kernel: nothing holds this lock across a wait).
///
/// No poisoning: every structure behind these locks is consistent between statements.
pub(crate) struct Lock<T>(SpinMutex<T>);

/// Holds a [`Lock`] until dropped.
pub(crate) type LockGuard<'a, T> = SpinMutexGuard<'a, T>;

impl<T: Default> Default for Lock<T> {
    fn default() -> Lock<T> {
        Lock::new(T::default())
    }
}

impl<T> Lock<T> {
    pub(crate) const fn new(value: T) -> Lock<T> {
        Lock(SpinMutex::new(value))
    }

    /// The value, out of the lock.
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }

    /// The value, through a unique borrow.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }

    /// Takes the lock if it is free.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<LockGuard<'_, T>> {
        self.0.try_lock()
    }

    /// Takes the lock, waiting for it as the type describes.
    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        match self.0.try_lock() {
            Some(guard) => guard,
            None => self.lock_contended(),
        }
    }

    #[cold]
    fn lock_contended(&self) -> LockGuard<'_, T> {
        let mut round = 0u32;
        loop {
            while self.0.is_locked() {
                if round < SPIN_ROUNDS {
                    for _ in 0..1u32 << round.min(6) {
                        std::hint::spin_loop();
                    }
                    round += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            if let Some(guard) = self.0.try_lock() {
                return guard;
            }
        }
    }
}

impl<T> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lock { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::Lock;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn holders_exclude_each_other() {
        // Each increment reads, yields the core now and then, and writes back: two holders
        // at once would lose increments.
        let lock = Arc::new(Lock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let mut g = lock.lock();
                        let v = *g;
                        if i % 1_000 == 0 {
                            std::thread::yield_now();
                        }
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 80_000);
    }

    #[test]
    fn a_waiter_outlasts_a_long_holder() {
        // The holder keeps the lock far longer than the waiter spins, so the waiter must
        // go on to yielding and still get the lock, after the holder's write.
        let lock = Arc::new(Lock::new(0u32));
        let held = lock.lock();
        let waiter = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || *lock.lock())
        };
        std::thread::sleep(Duration::from_millis(50));
        let mut held = held;
        *held = 7;
        drop(held);
        assert_eq!(waiter.join().unwrap(), 7);
    }
}
