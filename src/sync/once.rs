//! [`OnceLock`] and [`LazyLock`]: a value set once, whose concurrent initialisers park.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::park::Lock;
use crate::sched::park;
use crate::sched::scheduler::Unparker;

/// Nobody is initialising the cell (it may be empty or full: the value decides).
const IDLE: u8 = 0;
/// An initialiser is running; others wait.
const RUNNING: u8 = 1;

/// A cell written at most once, like [`std::sync::OnceLock`], whose
/// [`get_or_init`](OnceLock::get_or_init) parks the green threads that arrive while
/// another runs the initialiser, instead of blocking their OS thread (which, on a
/// scheduler, would also stop the initialiser if it runs there and parks).
///
/// Reading a value that is set costs one atomic load. An initialiser that panics leaves
/// the cell empty, and the next waiter runs its own initialiser, as std's does.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use bobbin::sync::OnceLock;
///
/// let config = Arc::new(OnceLock::new());
/// let shared = Arc::clone(&config);
/// let loads = bobbin::run(move || {
///     let readers: Vec<_> = (0..4)
///         .map(|_| {
///             let config = Arc::clone(&shared);
///             bobbin::spawn(move || {
///                 config
///                     .get_or_init(|| {
///                         bobbin::yield_now(); // the others arrive and park meanwhile
///                         String::from("loaded once")
///                     })
///                     .len()
///             })
///         })
///         .collect();
///     readers.into_iter().map(|r| r.join().unwrap()).sum::<usize>()
/// });
/// assert_eq!(loads, 4 * "loaded once".len());
/// assert_eq!(config.get().map(String::as_str), Some("loaded once"));
/// ```
pub struct OnceLock<T> {
    value: std::sync::OnceLock<T>,
    /// [`IDLE`] or [`RUNNING`]: whether an initialiser runs now.
    state: AtomicU8,
    /// Who waits for the running initialiser to finish.
    waiters: Lock<Vec<Unparker>>,
}

impl<T> OnceLock<T> {
    /// An empty cell.
    ///
    /// # Examples
    /// ```
    /// static NAME: bobbin::sync::OnceLock<String> = bobbin::sync::OnceLock::new();
    /// assert!(NAME.get().is_none());
    /// ```
    pub const fn new() -> OnceLock<T> {
        OnceLock { value: std::sync::OnceLock::new(), state: AtomicU8::new(IDLE), waiters: Lock::new(Vec::new()) }
    }

    /// The value, if it is set; never waits.
    ///
    /// # Examples
    /// ```
    /// let cell = bobbin::sync::OnceLock::new();
    /// assert_eq!(cell.get(), None);
    /// cell.set(3).unwrap();
    /// assert_eq!(cell.get(), Some(&3));
    /// ```
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// The value through a unique borrow, if it is set.
    ///
    /// # Examples
    /// ```
    /// let mut cell = bobbin::sync::OnceLock::new();
    /// cell.set(String::from("a")).unwrap();
    /// cell.get_mut().unwrap().push('b');
    /// assert_eq!(cell.get().unwrap(), "ab");
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.value.get_mut()
    }

    /// Sets the value if the cell is empty, parking while another initialiser runs.
    ///
    /// # Errors
    /// The value given, if the cell was set already.
    ///
    /// # Examples
    /// ```
    /// let cell = bobbin::sync::OnceLock::new();
    /// assert_eq!(cell.set(1), Ok(()));
    /// assert_eq!(cell.set(2), Err(2));
    /// assert_eq!(cell.get(), Some(&1));
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("the initialiser runs once"));
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// The value, set by `init` first if the cell is empty. If another initialiser is
    /// running, parks until it finishes: then returns its value, or, if it panicked, runs
    /// `init`.
    ///
    /// # Panics
    /// If `init` panics (the cell stays empty), or if `init` itself initialises the same
    /// cell (it would wait for itself forever; std's deadlocks or panics).
    ///
    /// # Examples
    /// ```
    /// let cell = bobbin::sync::OnceLock::new();
    /// assert_eq!(*cell.get_or_init(|| 1 + 1), 2);
    /// assert_eq!(*cell.get_or_init(|| unreachable!()), 2);
    /// ```
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(v) = self.value.get() {
            return v;
        }
        self.initialize(init)
    }

    #[cold]
    fn initialize(&self, init: impl FnOnce() -> T) -> &T {
        loop {
            if let Some(v) = self.value.get() {
                return v;
            }
            if self.state.compare_exchange(IDLE, RUNNING, Ordering::Acquire, Ordering::Acquire).is_ok() {
                if let Some(v) = self.value.get() {
                    // Set by an initialiser that finished between the two looks.
                    self.finish();
                    return v;
                }
                let running = Running(self);
                let value = {
                    let _reentry = ReentryCheck::enter(self);
                    init()
                };
                let set = self.value.set(value);
                debug_assert!(set.is_ok(), "only the initialiser sets the value");
                drop(running);
                return self.value.get().expect("set just now");
            }
            ReentryCheck::refuse(self);
            park::park("waiting for a OnceLock's initialiser", |u| {
                let mut waiters = self.waiters.lock();
                // Under the waiters' lock, which `finish` takes after leaving RUNNING: a
                // finish that came first is seen here.
                if self.state.load(Ordering::Acquire) == RUNNING {
                    waiters.push(u);
                } else {
                    drop(waiters);
                    u.unpark();
                }
            });
        }
    }

    /// Leaves the running state and wakes every waiter.
    fn finish(&self) {
        self.state.store(IDLE, Ordering::Release);
        let waiters = std::mem::take(&mut *self.waiters.lock());
        for u in waiters {
            u.unpark();
        }
    }

    /// The value, out of the cell.
    ///
    /// # Examples
    /// ```
    /// let cell = bobbin::sync::OnceLock::new();
    /// cell.set(vec![1]).unwrap();
    /// assert_eq!(cell.into_inner(), Some(vec![1]));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }

    /// Takes the value out, leaving the cell empty.
    ///
    /// # Examples
    /// ```
    /// let mut cell = bobbin::sync::OnceLock::new();
    /// cell.set(1).unwrap();
    /// assert_eq!(cell.take(), Some(1));
    /// assert_eq!(cell.get(), None);
    /// ```
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }
}

/// Ends the running state however the initialiser leaves (a panic included: the cell
/// stays empty and a waiter runs its own initialiser).
struct Running<'a, T>(&'a OnceLock<T>);

impl<T> Drop for Running<'_, T> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

thread_local! {
    /// The cells whose initialiser runs on this OS thread outside any green thread.
    static OS_THREAD_INITS: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Catches an initialiser that initialises its own cell, on an OS thread outside any
/// green thread, where waiting for itself would hang without a report. (On a green thread
/// the wait parks, and the deadlock report names it.)
struct ReentryCheck(usize);

impl ReentryCheck {
    fn enter<T>(cell: &OnceLock<T>) -> Option<ReentryCheck> {
        if crate::sched::scheduler::on_green_thread() {
            return None;
        }
        let id = cell as *const OnceLock<T> as usize;
        OS_THREAD_INITS.with(|v| v.borrow_mut().push(id));
        Some(ReentryCheck(id))
    }

    fn refuse<T>(cell: &OnceLock<T>) {
        if crate::sched::scheduler::on_green_thread() {
            return;
        }
        let id = cell as *const OnceLock<T> as usize;
        if OS_THREAD_INITS.with(|v| v.borrow().contains(&id)) {
            panic!(
                "bobbin::sync::OnceLock: the initialiser initialises its own cell, and would wait for itself forever"
            );
        }
    }
}

impl Drop for ReentryCheck {
    fn drop(&mut self) {
        OS_THREAD_INITS.with(|v| v.borrow_mut().retain(|&id| id != self.0));
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> OnceLock<T> {
        let cell = OnceLock::new();
        let _ = cell.set(value);
        cell
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> OnceLock<T> {
        match self.get() {
            Some(v) => OnceLock::from(v.clone()),
            None => OnceLock::new(),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

/// A value computed on first use, like [`std::sync::LazyLock`], on a [`OnceLock`]: green
/// threads that need it while another computes it park.
///
/// # Examples
/// ```
/// use bobbin::sync::LazyLock;
///
/// static PRIMES: LazyLock<Vec<u32>> = LazyLock::new(|| {
///     (2..50u32).filter(|n| (2..*n).all(|d| n % d != 0)).collect()
/// });
/// let count = bobbin::run(|| {
///     let a = bobbin::spawn(|| PRIMES.len());
///     let b = bobbin::spawn(|| PRIMES[0]);
///     (a.join().unwrap(), b.join().unwrap())
/// });
/// assert_eq!(count, (15, 2));
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    cell: OnceLock<T>,
    /// Taken by the one initialiser that runs; left empty if it panicked, so that later
    /// uses panic with a clear message instead of running a half-consumed closure.
    init: Lock<Option<F>>,
}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// A lazy value computed by `init` on first use.
    ///
    /// # Examples
    /// ```
    /// use std::cell::Cell;
    /// let calls = Cell::new(0);
    /// let lazy = bobbin::sync::LazyLock::new(|| {
    ///     calls.set(calls.get() + 1);
    ///     "computed"
    /// });
    /// assert_eq!(calls.get(), 0); // nothing runs before the first use
    /// assert_eq!(*lazy, "computed");
    /// assert_eq!(*lazy, "computed");
    /// assert_eq!(calls.get(), 1);
    /// ```
    pub const fn new(init: F) -> LazyLock<T, F> {
        LazyLock { cell: OnceLock::new(), init: Lock::new(Some(init)) }
    }

    /// The value, computed first if needed (the same as dereferencing).
    ///
    /// # Panics
    /// If the initialiser panics, now or on an earlier use.
    ///
    /// # Examples
    /// ```
    /// let lazy = bobbin::sync::LazyLock::new(|| 6 * 7);
    /// assert_eq!(*bobbin::sync::LazyLock::force(&lazy), 42);
    /// ```
    pub fn force(this: &LazyLock<T, F>) -> &T {
        this.cell.get_or_init(|| {
            let init = this.init.lock().take();
            match init {
                Some(f) => f(),
                None => panic!("bobbin::sync::LazyLock: its initialiser panicked on an earlier use"),
            }
        })
    }
}

impl<T, F: FnOnce() -> T> Deref for LazyLock<T, F> {
    type Target = T;

    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    fn default() -> LazyLock<T> {
        LazyLock::new(T::default)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("LazyLock");
        match self.cell.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}
