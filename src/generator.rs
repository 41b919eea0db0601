//! Generators: iterators written as a loop that yields.

use std::fmt;
use std::iter::FusedIterator;

use crate::coroutine::{Builder, Coroutine, CoroutineResult, ScopedCoroutine, Yielder};
use crate::Error;

/// An [`Iterator`] whose items are the values a closure passes to
/// [`Yielder::suspend`], running on its own stack.
///
/// The closure may yield from any depth of ordinary calls, so a recursive walk becomes an
/// iterator without an explicit stack. The iterator ends when the closure returns, and
/// stays ended ([`FusedIterator`]). Dropping a generator half-way unwinds its stack, so
/// everything alive on it is dropped. A panic in the closure comes out of `next`.
/// A closure that borrows (to iterate over a value's contents) needs a [`ScopedGenerator`].
///
/// # Examples
/// ```
/// use bobbin::Generator;
///
/// enum Tree { Leaf(u32), Node(Box<Tree>, Box<Tree>) }
///
/// fn walk(t: &Tree, y: &bobbin::Yielder<(), u32>) {
///     match t {
///         Tree::Leaf(v) => y.suspend(*v),
///         Tree::Node(l, r) => { walk(l, y); walk(r, y) }
///     }
/// }
///
/// let tree = Tree::Node(Box::new(Tree::Leaf(1)), Box::new(Tree::Node(Box::new(Tree::Leaf(2)), Box::new(Tree::Leaf(3)))));
/// let leaves: Vec<u32> = Generator::new(move |y| walk(&tree, y)).collect();
/// assert_eq!(leaves, [1, 2, 3]);
/// ```
///
/// # Blocking inside a generator
/// A generator pulled by a green thread may block in bobbin's waits (a channel's `recv`,
/// [`sleep`](crate::sleep), a [`Mutex`](crate::sync::Mutex), I/O, [`yield_now`](crate::yield_now)):
/// they park that green thread, and the other green threads of its scheduler run
/// meanwhile; when it is woken the generator goes on. `next` does not return while the
/// generator is parked, so the generator cannot be dropped or pulled by anyone else then.
/// Outside a green thread the same calls block the OS thread, as everywhere.
/// ```
/// use bobbin::sync::channel;
/// use bobbin::{run, spawn, Generator};
///
/// let total = run(|| {
///     let (tx, rx) = channel::<u32>();
///     spawn(move || (1..=4).for_each(|i| tx.send(i).unwrap()));
///     // Each `recv` parks this green thread until the sender has run.
///     let squares = Generator::new(move |y| {
///         while let Ok(v) = rx.recv() {
///             y.suspend(v * v);
///         }
///     });
///     squares.sum::<u32>()
/// });
/// assert_eq!(total, 30);
/// ```
pub struct Generator<T> {
    co: Coroutine<(), T, ()>,
}

impl<T> Generator<T> {
    /// A generator running `f` on a stack of the default size.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Generator::with_builder`]).
    ///
    /// # Examples
    /// An endless generator is fine: it runs only as far as it is pulled.
    /// ```
    /// use bobbin::Generator;
    ///
    /// let fib = Generator::new(|y| {
    ///     let (mut a, mut b) = (0u64, 1u64);
    ///     loop {
    ///         y.suspend(a);
    ///         (a, b) = (b, a + b);
    ///     }
    /// });
    /// assert_eq!(fib.take(10).collect::<Vec<_>>(), [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
    /// ```
    pub fn new<F>(f: F) -> Generator<T>
    where
        F: FnOnce(&Yielder<(), T>) + 'static,
    {
        Generator { co: Coroutine::new(move |y: &Yielder<(), T>, ()| f(y)) }
    }

    /// A generator running `f` on a coroutine made by `builder` (to choose its stack size).
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::coroutine::Builder;
    /// use bobbin::Generator;
    ///
    /// // A deep recursion on a 4 MiB stack.
    /// fn count_down(n: u32, y: &bobbin::Yielder<(), u32>) {
    ///     if n > 0 {
    ///         y.suspend(n);
    ///         count_down(n - 1, y);
    ///     }
    /// }
    /// let g = Generator::with_builder(Builder::new().stack_size(4 << 20), |y| count_down(5_000, y)).unwrap();
    /// assert_eq!(g.count(), 5_000);
    /// assert!(Generator::<u32>::with_builder(Builder::new().stack_size(0), |_| ()).is_err());
    /// ```
    pub fn with_builder<F>(builder: Builder, f: F) -> Result<Generator<T>, Error>
    where
        F: FnOnce(&Yielder<(), T>) + 'static,
    {
        Ok(Generator { co: builder.spawn(move |y: &Yielder<(), T>, ()| f(y))? })
    }

    /// Whether the closure has returned (the iterator is exhausted).
    ///
    /// # Examples
    /// ```
    /// let mut g = bobbin::Generator::new(|y| y.suspend(1));
    /// assert_eq!(g.next(), Some(1));
    /// assert!(!g.done()); // suspended in its last `suspend`
    /// assert_eq!(g.next(), None);
    /// assert!(g.done());
    /// ```
    pub fn done(&self) -> bool {
        self.co.done()
    }
}

impl<T> Iterator for Generator<T> {
    type Item = T;

    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        match self.co.resume_unless_finished(()) {
            Some(CoroutineResult::Yield(v)) => Some(v),
            Some(CoroutineResult::Return(())) | None => None,
        }
    }
}

impl<T> FusedIterator for Generator<T> {}

impl<T> fmt::Debug for Generator<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator").field("done", &self.done()).finish()
    }
}

/// A [`Generator`] whose closure may borrow: it lives no longer than what it borrows
/// (`'a`). This is how a type hands out an iterator over its own contents written as a
/// loop that yields.
///
/// Everything else is as for [`Generator`], which is the `'static` case, kept as a type
/// of its own so that code naming `Generator<T>` keeps working. Forgetting a suspended
/// `ScopedGenerator` ([`std::mem::forget`]) is sound: it leaks the generator's stack, on
/// which nothing runs again and which is never unmapped nor reused (see
/// [`ScopedCoroutine`](crate::coroutine::ScopedCoroutine#forgetting-it)).
///
/// # Examples
/// An in-order walk of a tree that borrows it:
/// ```
/// use bobbin::{ScopedGenerator, Yielder};
///
/// enum Tree<T> { Leaf, Node(Box<Tree<T>>, T, Box<Tree<T>>) }
///
/// impl<T> Tree<T> {
///     fn iter(&self) -> impl Iterator<Item = &T> + '_ {
///         fn walk<'t, T>(t: &'t Tree<T>, y: &Yielder<(), &'t T>) {
///             if let Tree::Node(l, v, r) = t {
///                 walk(l, y);
///                 y.suspend(v);
///                 walk(r, y);
///             }
///         }
///         ScopedGenerator::new(move |y| walk(self, y))
///     }
/// }
///
/// let leaf = || Box::new(Tree::Leaf);
/// let t = Tree::Node(Box::new(Tree::Node(leaf(), 1, leaf())), 2, Box::new(Tree::Node(leaf(), 3, leaf())));
/// assert_eq!(t.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
/// ```
///
/// It cannot outlive what it borrows:
/// ```compile_fail
/// let mut g = {
///     let words = vec!["borrowed"];
///     bobbin::ScopedGenerator::new(|y| {
///         for w in &words {
///             y.suspend(*w);
///         }
///     })
/// };
/// g.next();
/// ```
///
/// And it cannot yield a reference to a local of its closure, which lives on the
/// generator's stack only until the closure moves on:
/// ```compile_fail
/// let mut g = bobbin::ScopedGenerator::new(|y| {
///     let local = 7u32;
///     y.suspend(&local);
/// });
/// let r: &u32 = g.next().unwrap();
/// ```
pub struct ScopedGenerator<'a, T> {
    co: ScopedCoroutine<'a, (), T, ()>,
}

impl<'a, T> ScopedGenerator<'a, T> {
    /// A generator running `f`, which may borrow for `'a`, on a stack of the default size.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`ScopedGenerator::with_builder`]).
    ///
    /// # Examples
    /// ```
    /// let text = String::from("one two three");
    /// let lengths: Vec<usize> = bobbin::ScopedGenerator::new(|y| {
    ///     for w in text.split(' ') {
    ///         y.suspend(w.len());
    ///     }
    /// })
    /// .collect();
    /// assert_eq!(lengths, [3, 3, 5]);
    /// ```
    pub fn new<F>(f: F) -> ScopedGenerator<'a, T>
    where
        F: FnOnce(&Yielder<(), T>) + 'a,
    {
        ScopedGenerator { co: ScopedCoroutine::new(move |y: &Yielder<(), T>, ()| f(y)) }
    }

    /// A generator running `f` on a coroutine made by `builder` (to choose its stack size).
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::coroutine::Builder;
    ///
    /// let v = vec![4, 5];
    /// let g = bobbin::ScopedGenerator::with_builder(Builder::new().stack_size(32 * 1024), |y| {
    ///     v.iter().for_each(|x| y.suspend(x));
    /// })
    /// .unwrap();
    /// assert_eq!(g.sum::<i32>(), 9);
    /// ```
    pub fn with_builder<F>(builder: Builder, f: F) -> Result<ScopedGenerator<'a, T>, Error>
    where
        F: FnOnce(&Yielder<(), T>) + 'a,
    {
        Ok(ScopedGenerator { co: builder.spawn_scoped(move |y: &Yielder<(), T>, ()| f(y))? })
    }

    /// Whether the closure has returned (the iterator is exhausted).
    ///
    /// # Examples
    /// ```
    /// let one = [1];
    /// let mut g = bobbin::ScopedGenerator::new(|y| y.suspend(one[0]));
    /// assert_eq!(g.next(), Some(1));
    /// assert!(!g.done());
    /// assert_eq!(g.next(), None);
    /// assert!(g.done());
    /// ```
    pub fn done(&self) -> bool {
        self.co.done()
    }
}

impl<T> Iterator for ScopedGenerator<'_, T> {
    type Item = T;

    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        match self.co.resume_unless_finished(()) {
            Some(CoroutineResult::Yield(v)) => Some(v),
            Some(CoroutineResult::Return(())) | None => None,
        }
    }
}

impl<T> FusedIterator for ScopedGenerator<'_, T> {}

impl<T> fmt::Debug for ScopedGenerator<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedGenerator").field("done", &self.done()).finish()
    }
}
