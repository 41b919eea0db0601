//! Channels that park green threads instead of blocking their OS thread: the ends, their
//! operations and iterators. The queue behind them is in `queue.rs`, their errors in
//! `error.rs`.

mod error;
mod queue;

use std::fmt;
use std::mem::size_of;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};
use queue::{Chan, Side, State, LARGE};

use crate::park::LockGuard;
use crate::sched::{budget, park};

/// Makes an unbounded channel: `send` never waits, `recv` parks while it is empty.
///
/// # Examples
/// ```
/// let (tx, rx) = bobbin::sync::channel();
/// for i in 0..1000 {
///     tx.send(i).unwrap(); // no receiver is running: an unbounded channel never waits
/// }
/// drop(tx);
/// assert_eq!(rx.iter().sum::<i32>(), 499_500);
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    make(None)
}

/// Makes a channel that holds at most `cap` messages; `send` parks while it is full.
///
/// # Panics
/// If `cap` is zero: rendezvous channels are not supported.
///
/// # Examples
/// A producer that runs ahead of its consumer by at most two messages:
/// ```
/// use bobbin::sync::{bounded, TrySendError};
///
/// let (tx, rx) = bounded(2);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
///
/// let got = bobbin::run(move || {
///     // Parks while the channel is full, until the receiver below makes room.
///     let producer = bobbin::spawn(move || tx.send(3).unwrap());
///     let got: Vec<i32> = rx.iter().collect();
///     producer.join().unwrap();
///     got
/// });
/// assert_eq!(got, [1, 2, 3]);
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    assert!(cap > 0, "bobbin::sync::bounded(0): rendezvous channels are not supported; use a capacity of 1 or more");
    make(Some(cap))
}

fn make<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (Sender { chan: Arc::clone(&chan) }, Receiver { chan })
}

/// The sending end of a channel. Clone it for more senders.
///
/// The channel is disconnected for the receivers once every sender is dropped.
///
/// # Examples
/// ```
/// let total = bobbin::run(|| {
///     let (tx, rx) = bobbin::sync::channel();
///     for worker in 0..3u64 {
///         let tx = tx.clone();
///         bobbin::spawn(move || tx.send(worker * 10).unwrap());
///     }
///     drop(tx); // else `iter` below would wait for this sender forever
///     rx.iter().sum::<u64>()
/// });
/// assert_eq!(total, 30);
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving end of a channel. Clone it for more receivers; each message goes to
/// exactly one of them.
///
/// # Examples
/// Two receivers sharing the work of one queue:
/// ```
/// let counts = bobbin::run(|| {
///     let (tx, rx) = bobbin::sync::bounded(4);
///     let consumers: Vec<_> = (0..2)
///         .map(|_| {
///             let rx = rx.clone();
///             bobbin::spawn(move || rx.iter().count())
///         })
///         .collect();
///     drop(rx);
///     for i in 0..100 {
///         tx.send(i).unwrap();
///     }
///     drop(tx);
///     consumers.into_iter().map(|c| c.join().unwrap()).collect::<Vec<_>>()
/// });
/// // Every message went to exactly one of the two.
/// assert_eq!(counts.len(), 2);
/// assert_eq!(counts.iter().sum::<usize>(), 100);
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `msg`, parking while a bounded channel is full.
    ///
    /// A send that does not park spends one unit of the green thread's cooperative budget,
    /// and yields once the budget is spent: a loop of sends that never park still lets the
    /// other green threads of its scheduler run.
    ///
    /// # Errors
    /// [`SendError`] with the message if every receiver is gone.
    ///
    /// # Examples
    /// ```
    /// use bobbin::sync::{channel, SendError};
    ///
    /// let (tx, rx) = channel();
    /// assert_eq!(tx.send("first"), Ok(()));
    /// assert_eq!(rx.recv(), Ok("first"));
    /// drop(rx);
    /// // With no receiver left, the message comes back.
    /// assert_eq!(tx.send("second"), Err(SendError("second")));
    /// ```
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        let mut st = self.chan.lock();
        let mut parked = false;
        loop {
            if st.receivers == 0 {
                drop(st);
                budget::spend();
                return Err(SendError(msg));
            }
            if st.cap.is_none_or(|c| st.queue.len() < c) {
                self.chan.push(st, msg);
                // A send that parked has given the other green threads their turn.
                if !parked {
                    budget::spend();
                }
                return Ok(());
            }
            park::park("sending to a full channel", move |u| {
                st.send_waiters.push_back(u);
                drop(st);
            });
            parked = true;
            st = self.chan.lock();
        }
    }

    /// Sends `msg` if that needs no waiting. Spends one unit of the cooperative budget, as
    /// [`send`](Sender::send) does.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the bounded channel is full, [`TrySendError::Disconnected`]
    /// if every receiver is gone; both hold the message.
    ///
    /// # Examples
    /// ```
    /// use bobbin::sync::{bounded, TrySendError};
    ///
    /// let (tx, rx) = bounded(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    /// ```
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        budget::spend();
        let st = self.chan.lock();
        if st.receivers == 0 {
            return Err(TrySendError::Disconnected(msg));
        }
        if st.cap.is_some_and(|c| st.queue.len() >= c) {
            return Err(TrySendError::Full(msg));
        }
        self.chan.push(st, msg);
        Ok(())
    }
}

impl<T> Receiver<T> {
    /// Takes the next message, parking while the channel is empty.
    ///
    /// A receive that does not park spends one unit of the green thread's cooperative
    /// budget, so a loop of receives that never park still lets the other green threads of
    /// its scheduler run.
    ///
    /// # Errors
    /// [`RecvError`] once the channel is empty and every sender is gone.
    ///
    /// # Examples
    /// ```
    /// use bobbin::sync::{channel, RecvError};
    ///
    /// let got = bobbin::run(|| {
    ///     let (tx, rx) = channel();
    ///     bobbin::spawn(move || tx.send(7).unwrap());
    ///     // Parks until the green thread above has sent; then the sender is gone.
    ///     [rx.recv(), rx.recv()]
    /// });
    /// assert_eq!(got, [Ok(7), Err(RecvError)]);
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        let st = self.chan.lock();
        if size_of::<T>() > LARGE {
            // One slot for the message in this frame: the waiting is out of line.
            return match self.chan.pop(st) {
                Ok(msg) => {
                    budget::spend();
                    Ok(msg)
                }
                Err(st) => self.recv_parking_out_of_line(st),
            };
        }
        self.recv_parking(st)
    }

    #[inline(never)]
    fn recv_parking_out_of_line<'a>(&'a self, st: LockGuard<'a, State<T>>) -> Result<T, RecvError> {
        self.recv_parking(st)
    }

    /// The part of [`recv`](Receiver::recv) that waits: inlined into it for small messages,
    /// out of line for large ones.
    #[inline(always)]
    fn recv_parking<'a>(&'a self, mut st: LockGuard<'a, State<T>>) -> Result<T, RecvError> {
        let mut parked = false;
        loop {
            st = match self.chan.pop(st) {
                Ok(msg) => {
                    // A receive that parked has given the other green threads their turn.
                    if !parked {
                        budget::spend();
                    }
                    return Ok(msg);
                }
                Err(st) => st,
            };
            if st.senders == 0 {
                drop(st);
                budget::spend();
                return Err(RecvError);
            }
            park::park("receiving from an empty channel", move |u| {
                st.recv_waiters.push_back(u);
                drop(st);
            });
            parked = true;
            st = self.chan.lock();
        }
    }

    /// Takes the next message if one is queued. Spends one unit of the cooperative budget
    /// whatever it finds, so a loop that polls an empty channel still lets the green thread
    /// that would fill it run.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] or, once every sender is gone, [`TryRecvError::Disconnected`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::sync::{channel, TryRecvError};
    ///
    /// let (tx, rx) = channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        budget::spend();
        match self.chan.pop(self.chan.lock()) {
            Ok(msg) => Ok(msg),
            Err(st) if st.senders == 0 => Err(TryRecvError::Disconnected),
            Err(_) => Err(TryRecvError::Empty),
        }
    }

    /// Like [`recv`](Receiver::recv), giving up after `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Disconnected`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::sync::{channel, RecvTimeoutError};
    /// use std::time::Duration;
    ///
    /// let got = bobbin::run(|| {
    ///     let (tx, rx) = channel();
    ///     let first = rx.recv_timeout(Duration::from_millis(5)); // nothing was sent
    ///     bobbin::spawn(move || tx.send('x').unwrap());
    ///     let second = rx.recv_timeout(Duration::from_secs(60)); // parks until the send
    ///     let third = rx.recv_timeout(Duration::from_secs(60)); // the sender is gone
    ///     [first, second, third]
    /// });
    /// assert_eq!(got, [Err(RecvTimeoutError::Timeout), Ok('x'), Err(RecvTimeoutError::Disconnected)]);
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        budget::spend();
        let deadline = Instant::now() + timeout;
        let mut st = self.chan.lock();
        loop {
            st = match self.chan.pop(st) {
                Ok(msg) => return Ok(msg),
                Err(st) => st,
            };
            if st.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            if Instant::now() >= deadline {
                return Err(RecvTimeoutError::Timeout);
            }
            park::park_until("receiving from an empty channel", deadline, move |u| {
                st.recv_waiters.push_back(u);
                drop(st);
            });
            st = self.chan.lock();
        }
    }

    /// An iterator that receives until every sender is gone.
    ///
    /// # Panics
    /// Its `next`, as [`recv`](Receiver::recv) does: on the stack of a coroutine or
    /// generator that a green thread is running, when it would have to park.
    ///
    /// # Examples
    /// ```
    /// let squares = bobbin::run(|| {
    ///     let (tx, rx) = bobbin::sync::channel();
    ///     bobbin::spawn(move || (1..=4).for_each(|i| tx.send(i * i).unwrap()));
    ///     rx.iter().collect::<Vec<u32>>()
    /// });
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages queued now, without waiting.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::channel();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// // Ends at the empty queue although `tx` could still send.
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.try_iter().next(), Some(3));
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        Sender { chan: Arc::clone(&self.chan) }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.lock().receivers += 1;
        Receiver { chan: Arc::clone(&self.chan) }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.release(Side::Senders);
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.release(Side::Receivers);
    }
}

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
    rx: &'a Receiver<T>,
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
    rx: &'a Receiver<T>,
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

// A panic while a channel's lock is held cannot leave it inconsistent (every critical
// section is a queue operation), and a message is either queued or not: the ends can be
// used again after a caught panic, as std's and crossbeam's can.
impl<T> UnwindSafe for Sender<T> {}
impl<T> RefUnwindSafe for Sender<T> {}
impl<T> UnwindSafe for Receiver<T> {}
impl<T> RefUnwindSafe for Receiver<T> {}

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
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}
impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
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
