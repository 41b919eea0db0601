//! Green-thread locals: [`green_local!`](crate::green_local) declares a static whose value
//! is per green thread, as `thread_local!` declares one per OS thread.
//!
//! Why not `thread_local!`: many green threads share one OS thread, so they share its
//! thread-locals, and a green thread of a runtime that allows migration can continue on
//! another worker and see that worker's values. A green-thread local belongs to the green
//! thread: each one starts with the initial value on first use, keeps it across every park
//! and yield (and across workers, when it migrates), and drops it when it ends, on its own
//! stack, before its joiner learns how it ended (also when it panicked or was cancelled).
//! Outside a green thread (a plain OS thread, or a scheduler's own code) the same static
//! has one value per OS thread, dropped when that thread exits.
//!
//! Values need not be `Send`. A green thread of a runtime built with the `unsafe`
//! `allow_migration` carries its locals with it; that method's promise (no thread-affine
//! state kept across a suspension point) covers them as it covers the stack.
//!
//! Cost: a green thread that uses no local carries one empty `Option` in its table slot;
//! spawning and parking do nothing more. The first use in a green thread allocates its
//! table (a vector indexed by a key each static takes once, process-wide) and the value.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::scheduler;

/// One green thread's locals (or one OS thread's), indexed by their statics' keys.
#[derive(Default)]
pub(crate) struct LocalMap {
    values: RefCell<Vec<Option<Rc<dyn Any>>>>,
}

impl LocalMap {
    fn get(&self, key: usize) -> Option<Rc<dyn Any>> {
        self.values.borrow().get(key).cloned().flatten()
    }

    fn insert(&self, key: usize, value: Rc<dyn Any>) -> Rc<dyn Any> {
        let mut values = self.values.borrow_mut();
        if values.len() <= key {
            values.resize(key + 1, None);
        }
        // A value an initialiser of the same static stored first (through recursion) wins.
        Rc::clone(values[key].get_or_insert(value))
    }

    /// Takes every value out, to drop them with nothing borrowed.
    fn take_all(&self) -> Vec<Option<Rc<dyn Any>>> {
        std::mem::take(&mut *self.values.borrow_mut())
    }
}

impl fmt::Debug for LocalMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalMap").field("slots", &self.values.borrow().len()).finish()
    }
}

thread_local! {
    /// The values of code that runs outside any green thread.
    static OS_THREAD_LOCALS: Rc<LocalMap> = Rc::new(LocalMap::default());
}

/// The next key a [`GreenLocal`] takes; 0 means "none yet".
static NEXT_KEY: AtomicUsize = AtomicUsize::new(1);

/// A static whose value is per green thread; declare it with
/// [`green_local!`](crate::green_local). See the [module docs](self) for when values are
/// created and dropped, and what happens outside a green thread.
///
/// # Examples
/// ```
/// use std::cell::Cell;
///
/// bobbin::green_local! {
///     static COUNT: Cell<u32> = Cell::new(0);
/// }
///
/// let counts = bobbin::run(|| {
///     let handles: Vec<_> = (1..=3u32)
///         .map(|n| {
///             bobbin::spawn(move || {
///                 for _ in 0..n {
///                     COUNT.with(|c| c.set(c.get() + 1));
///                     bobbin::yield_now(); // the others run and count their own
///                 }
///                 COUNT.get()
///             })
///         })
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
/// });
/// assert_eq!(counts, [1, 2, 3]);
/// ```
pub struct GreenLocal<T: 'static> {
    init: fn() -> T,
    key: AtomicUsize,
}

impl<T: 'static> GreenLocal<T> {
    /// A local whose value starts as `init()` in each green thread. Used by
    /// [`green_local!`](crate::green_local); not meant to be called directly.
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> GreenLocal<T> {
        GreenLocal { init, key: AtomicUsize::new(0) }
    }

    /// This static's key, taken on first use.
    fn key(&self) -> usize {
        let key = self.key.load(Ordering::Relaxed);
        if key != 0 {
            return key;
        }
        let fresh = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        match self.key.compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => fresh,
            // Another thread took one first: use theirs (ours is simply never used).
            Err(theirs) => theirs,
        }
    }

    /// Calls `f` with the calling green thread's value (created by the initialiser on
    /// first use); outside a green thread, with the calling OS thread's.
    ///
    /// `f` may park, spawn and use other locals (and this one) freely: the value is kept
    /// alive while `f` runs, not borrowed from a table.
    ///
    /// # Panics
    /// If called from the destructor of an OS thread's local, after that thread's locals
    /// were dropped.
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    ///
    /// bobbin::green_local! {
    ///     static LOG: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
    /// }
    /// bobbin::run(|| {
    ///     LOG.with(|l| l.borrow_mut().push("main"));
    ///     let child = bobbin::spawn(|| LOG.with(|l| l.borrow().len())).join().unwrap();
    ///     assert_eq!(child, 0); // the child has its own, empty log
    ///     assert_eq!(LOG.with(|l| l.borrow().clone()), ["main"]);
    /// });
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self.key();
        let map = scheduler::current_locals().unwrap_or_else(|| OS_THREAD_LOCALS.with(Rc::clone));
        let value = match map.get(key) {
            Some(value) => value,
            None => {
                // Nothing is borrowed while the initialiser runs: it may use locals too.
                let fresh: Rc<dyn Any> = Rc::new((self.init)());
                map.insert(key, fresh)
            }
        };
        drop(map);
        let value: &T = value.downcast_ref().expect("a green-thread local's key is its own");
        f(value)
    }
}

impl<T: 'static> GreenLocal<Cell<T>> {
    /// Sets the calling green thread's value.
    ///
    /// # Examples
    /// ```
    /// bobbin::green_local! { static N: std::cell::Cell<u8> = std::cell::Cell::new(0); }
    /// N.set(3);
    /// assert_eq!(N.get(), 3);
    /// ```
    pub fn set(&'static self, value: T) {
        self.with(|c| c.set(value));
    }

    /// A copy of the calling green thread's value.
    ///
    /// # Examples
    /// ```
    /// bobbin::green_local! { static N: std::cell::Cell<u8> = std::cell::Cell::new(5); }
    /// assert_eq!(bobbin::run(|| N.get()), 5);
    /// ```
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Takes the calling green thread's value, leaving `T::default()`.
    ///
    /// # Examples
    /// ```
    /// bobbin::green_local! { static N: std::cell::Cell<u8> = std::cell::Cell::new(5); }
    /// assert_eq!(N.take(), 5);
    /// assert_eq!(N.get(), 0);
    /// ```
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replaces the calling green thread's value, returning the old one.
    ///
    /// # Examples
    /// ```
    /// bobbin::green_local! { static N: std::cell::Cell<u8> = std::cell::Cell::new(5); }
    /// assert_eq!(N.replace(6), 5);
    /// assert_eq!(N.get(), 6);
    /// ```
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

impl<T: 'static> GreenLocal<RefCell<T>> {
    /// Sets the calling green thread's value.
    ///
    /// # Panics
    /// If the value is borrowed.
    ///
    /// # Examples
    /// ```
    /// bobbin::green_local! { static S: std::cell::RefCell<String> = std::cell::RefCell::new(String::new()); }
    /// S.set("hi".into());
    /// assert_eq!(S.with(|s| s.borrow().clone()), "hi");
    /// ```
    pub fn set(&'static self, value: T) {
        self.with(|c| *c.borrow_mut() = value);
    }

    /// Takes the calling green thread's value, leaving `T::default()`.
    ///
    /// # Panics
    /// If the value is borrowed.
    ///
    /// # Examples
    /// ```
    /// bobbin::green_local! { static S: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![1]); }
    /// assert_eq!(S.take(), [1]);
    /// assert!(S.take().is_empty());
    /// ```
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replaces the calling green thread's value, returning the old one.
    ///
    /// # Panics
    /// If the value is borrowed.
    ///
    /// # Examples
    /// ```
    /// bobbin::green_local! { static S: std::cell::RefCell<u8> = std::cell::RefCell::new(1); }
    /// assert_eq!(S.replace(2), 1);
    /// ```
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

impl<T: 'static> fmt::Debug for GreenLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenLocal").finish_non_exhaustive()
    }
}

/// Whether any green-thread local was ever used in the process: if not, no green thread
/// has locals to drop (so the common case costs one load, not a look-up in the task
/// table). Relaxed: a green thread that stored a local took its key on its own thread,
/// before.
#[inline]
pub(crate) fn any_in_use() -> bool {
    NEXT_KEY.load(Ordering::Relaxed) != 1
}

/// Drops the locals of the green thread running the caller, at its end. A destructor that
/// uses a local again gets a fresh value, dropped in the next round; after a few rounds
/// what is left is dropped with the green thread's table slot.
pub(crate) fn drop_current_locals() {
    if !any_in_use() {
        return;
    }
    for _ in 0..4 {
        let Some(map) = scheduler::take_current_locals() else { return };
        let values = map.take_all();
        drop(map);
        drop(values);
    }
}

/// Declares statics whose values are per green thread, with [`GreenLocal`]'s methods: the
/// same shape as `thread_local!`.
///
/// # Examples
/// ```
/// use std::cell::RefCell;
///
/// bobbin::green_local! {
///     /// The request this green thread serves.
///     static REQUEST: RefCell<Option<u32>> = RefCell::new(None);
///     static DEPTH: std::cell::Cell<u8> = std::cell::Cell::new(0);
/// }
///
/// bobbin::run(|| {
///     REQUEST.set(Some(1));
///     let other = bobbin::spawn(|| REQUEST.take()).join().unwrap();
///     assert_eq!(other, None);
///     assert_eq!(REQUEST.take(), Some(1));
///     assert_eq!(DEPTH.get(), 0);
/// });
/// ```
#[macro_export]
macro_rules! green_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::sched::GreenLocal<$t> = {
            fn __init() -> $t {
                $init
            }
            $crate::sched::GreenLocal::new(__init)
        };
        $crate::green_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::green_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
