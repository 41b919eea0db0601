//! The iterators of [`Receiver`]: blocking, non-blocking and owning.

use std::fmt;

use super::Receiver;

/// Blocking iterator of [`Receiver::iter`]: ends once the channel is empty and every
/// sender is gone.
///
/// # Examples
/// ```
/// let (tx, rx) = bobbin::sync::channel();
/// std::thread::spawn(move || (0..5).for_each(|i| tx.send(i).unwrap()));
/// // `&Receiver` is `IntoIterator` too, through this iterator.
/// let mut got = Vec::new();
/// for i in &rx {
///     got.push(i);
/// }
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// ```
pub struct Iter<'a, T> {
    pub(super) rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator of [`Receiver::try_iter`]: ends at the first empty queue.
///
/// # Examples
/// ```
/// let (tx, rx) = bobbin::sync::channel();
/// tx.send("a").unwrap();
/// let mut queued = rx.try_iter();
/// assert_eq!(queued.next(), Some("a"));
/// assert_eq!(queued.next(), None);
/// drop(tx);
/// ```
pub struct TryIter<'a, T> {
    pub(super) rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Owning blocking iterator of a [`Receiver`], made by `for msg in receiver`.
///
/// # Examples
/// ```
/// let (tx, rx) = bobbin::sync::bounded(1);
/// let consumer = std::thread::spawn(move || rx.into_iter().map(|s: String| s.len()).sum::<usize>());
/// for word in ["green", "thread"] {
///     tx.send(word.to_string()).unwrap();
/// }
/// drop(tx);
/// assert_eq!(consumer.join().unwrap(), 11);
/// ```
pub struct IntoIter<T> {
    pub(super) rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}
impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iter { .. }")
    }
}
impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TryIter { .. }")
    }
}
impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntoIter { .. }")
    }
}
