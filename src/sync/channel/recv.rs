//! The receiving operations of [`Receiver`].

use std::mem::size_of;
use std::time::{Duration, Instant};

use super::error::{RecvError, RecvTimeoutError, TryRecvError};
use super::iter::{Iter, TryIter};
use super::queue::{State, LARGE};
use super::Receiver;
use crate::park::LockGuard;
use crate::sched::{budget, park};

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
        if st.is_zero() {
            drop(st);
            return self.recv_rendezvous();
        }
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

    /// [`recv`](Receiver::recv) on a rendezvous channel: out of line, so that a large
    /// message takes no second slot in `recv`'s frame.
    #[inline(never)]
    fn recv_rendezvous(&self) -> Result<T, RecvError> {
        self.chan.recv_zero(None).map_err(|_| RecvError)
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
        let st = self.chan.lock();
        if st.is_zero() {
            drop(st);
            return self.chan.try_recv_zero();
        }
        match self.chan.pop(st) {
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
        self.recv_deadline(super::deadline_after(timeout))
    }

    /// Like [`recv`](Receiver::recv), giving up at `deadline`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Disconnected`].
    ///
    /// # Panics
    /// As [`recv`](Receiver::recv).
    ///
    /// # Examples
    /// ```
    /// use bobbin::sync::{bounded, RecvTimeoutError};
    /// use std::time::{Duration, Instant};
    ///
    /// let (tx, rx) = bounded(0);
    /// let soon = Instant::now() + Duration::from_millis(1);
    /// // Nobody sends on this rendezvous channel before the deadline.
    /// assert_eq!(rx.recv_deadline(soon), Err(RecvTimeoutError::Timeout));
    /// let sender = std::thread::spawn(move || tx.send(5).unwrap());
    /// let in_a_minute = Instant::now() + Duration::from_secs(60);
    /// assert_eq!(rx.recv_deadline(in_a_minute), Ok(5));
    /// sender.join().unwrap();
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        let mut st = self.chan.lock();
        if st.is_zero() {
            drop(st);
            return self.chan.recv_zero(Some(deadline));
        }
        budget::spend();
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
