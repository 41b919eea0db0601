//! The sending operations of [`Sender`].

use std::time::{Duration, Instant};

use super::error::{SendError, SendTimeoutError, TrySendError};
use super::Sender;
use crate::sched::{budget, park};

impl<T> Sender<T> {
    /// Sends `msg`, parking while a bounded channel is full; on a rendezvous channel
    /// ([`bounded(0)`](super::bounded)), parking until a receiver takes it.
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
        if st.is_zero() {
            drop(st);
            return self.send_rendezvous(msg);
        }
        let mut parked = false;
        loop {
            if st.receivers == 0 {
                drop(st);
                budget::spend();
                return Err(SendError(msg));
            }
            if st.has_room() {
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

    /// [`send`](Sender::send) on a rendezvous channel: out of line, so that a large message
    /// takes no second slot in `send`'s frame.
    #[inline(never)]
    fn send_rendezvous(&self, msg: T) -> Result<(), SendError<T>> {
        self.chan.send_zero(msg, None).map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `msg` if that needs no waiting: on a bounded channel, if it has room; on a
    /// rendezvous channel, if a receiver is waiting now. Spends one unit of the
    /// cooperative budget, as [`send`](Sender::send) does.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the bounded channel is full (or no receiver waits on a
    /// rendezvous channel), [`TrySendError::Disconnected`] if every receiver is gone; both
    /// hold the message.
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
        if st.is_zero() {
            drop(st);
            return self.chan.try_send_zero(msg);
        }
        if st.receivers == 0 {
            return Err(TrySendError::Disconnected(msg));
        }
        if !st.has_room() {
            return Err(TrySendError::Full(msg));
        }
        self.chan.push(st, msg);
        Ok(())
    }

    /// Like [`send`](Sender::send), giving up after `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`], with the message.
    ///
    /// # Panics
    /// As [`send`](Sender::send).
    ///
    /// # Examples
    /// ```
    /// use bobbin::sync::{bounded, SendTimeoutError};
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = bounded(0);
    /// // A rendezvous channel with nobody receiving: the send times out.
    /// assert_eq!(tx.send_timeout('a', Duration::from_millis(1)), Err(SendTimeoutError::Timeout('a')));
    /// let receiver = std::thread::spawn(move || rx.recv().unwrap());
    /// assert_eq!(tx.send_timeout('b', Duration::from_secs(60)), Ok(()));
    /// assert_eq!(receiver.join().unwrap(), 'b');
    /// ```
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(msg, super::deadline_after(timeout))
    }

    /// Like [`send`](Sender::send), giving up at `deadline`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`], with the message.
    ///
    /// # Panics
    /// As [`send`](Sender::send).
    ///
    /// # Examples
    /// ```
    /// use bobbin::sync::{bounded, SendTimeoutError};
    /// use std::time::{Duration, Instant};
    ///
    /// let (tx, rx) = bounded(1);
    /// let soon = Instant::now() + Duration::from_millis(1);
    /// assert_eq!(tx.send_deadline(1, soon), Ok(()));
    /// assert_eq!(tx.send_deadline(2, soon), Err(SendTimeoutError::Timeout(2))); // full
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn send_deadline(&self, msg: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        let mut st = self.chan.lock();
        if st.is_zero() {
            drop(st);
            return self.chan.send_zero(msg, Some(deadline));
        }
        budget::spend();
        loop {
            if st.receivers == 0 {
                return Err(SendTimeoutError::Disconnected(msg));
            }
            if st.has_room() {
                self.chan.push(st, msg);
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(SendTimeoutError::Timeout(msg));
            }
            park::park_until("sending to a full channel", deadline, move |u| {
                st.send_waiters.push_back(u);
                drop(st);
            });
            st = self.chan.lock();
        }
    }
}
