//! A channel for exactly one message: [`channel`], [`Sender`], [`Receiver`].
//!
//! The usual way to hand one result back, a reply to a request for instance, costs less
//! than a [`bounded`](crate::sync::bounded) channel of one: one allocation, no queue,
//! and the ends are not cloneable, so nothing has to count them.
//!
//! # Examples
//! ```
//! use bobbin::sync::{channel, oneshot};
//!
//! // A server green thread answering requests, each with its own reply channel.
//! let answers = bobbin::run(|| {
//!     let (requests, inbox) = channel::<(u32, oneshot::Sender<u32>)>();
//!     bobbin::spawn(move || {
//!         for (n, reply) in inbox.iter() {
//!             let _ = reply.send(n * n); // the asker may have given up: ignore
//!         }
//!     });
//!     (1..=3)
//!         .map(|n| {
//!             let (reply, answer) = oneshot::channel();
//!             requests.send((n, reply)).unwrap();
//!             answer.recv().unwrap()
//!         })
//!         .collect::<Vec<_>>()
//! });
//! assert_eq!(answers, [1, 4, 9]);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use super::channel::{RecvError, RecvTimeoutError, TryRecvError};
use crate::park::Lock;
use crate::sched::park;
use crate::sched::scheduler::Unparker;

/// Makes a one-message channel.
///
/// # Examples
/// ```
/// let (tx, rx) = bobbin::sync::oneshot::channel();
/// tx.send("done").unwrap();
/// assert_eq!(rx.recv(), Ok("done"));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Lock::new(Slot::Empty(None)));
    (Sender { shared: Arc::clone(&shared) }, Receiver { shared })
}

/// What the two ends share.
enum Slot<T> {
    /// Nothing sent yet; the receiver's unparker if it waits.
    Empty(Option<Unparker>),
    /// Sent, not yet received.
    Full(T),
    /// Received, or the sender is gone without sending, or the receiver is gone.
    Closed,
}

/// The sending end of a one-message channel; [`send`](Sender::send) consumes it.
/// Dropping it unsent makes the receiver's `recv` return [`RecvError`].
///
/// # Examples
/// ```
/// use bobbin::sync::{oneshot, RecvError};
/// let (tx, rx) = oneshot::channel::<u8>();
/// drop(tx); // never sent
/// assert_eq!(rx.recv(), Err(RecvError));
/// ```
pub struct Sender<T> {
    shared: Arc<Lock<Slot<T>>>,
}

/// The receiving end of a one-message channel. Its methods take it by `&mut` or by value,
/// so only one thread ever waits on it.
///
/// # Examples
/// The receiver travels to another thread and waits there:
/// ```
/// let (tx, rx) = bobbin::sync::oneshot::channel();
/// let waiter = std::thread::spawn(move || rx.recv());
/// tx.send(String::from("done")).unwrap();
/// assert_eq!(waiter.join().unwrap().as_deref(), Ok("done"));
/// ```
pub struct Receiver<T> {
    shared: Arc<Lock<Slot<T>>>,
}

impl<T> Sender<T> {
    /// Sends the message; never waits.
    ///
    /// # Errors
    /// The message, if the receiver is gone.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::oneshot::channel();
    /// drop(rx);
    /// assert_eq!(tx.send(5), Err(5));
    /// ```
    pub fn send(self, msg: T) -> Result<(), T> {
        let mut slot = self.shared.lock();
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Empty(waiter) => {
                *slot = Slot::Full(msg);
                drop(slot);
                if let Some(u) = waiter {
                    u.unpark();
                }
                Ok(())
            }
            Slot::Full(_) => unreachable!("a oneshot sender sends once"),
            Slot::Closed => Err(msg),
        }
    }

    /// Whether the receiver is gone (a send would fail).
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::oneshot::channel::<()>();
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(*self.shared.lock(), Slot::Closed)
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut slot = self.shared.lock();
        // Unsent: close, and wake a waiting receiver to report it. (After `send` the slot
        // is full or closed, and stays so.)
        if let Slot::Empty(waiter) = &mut *slot {
            let waiter = waiter.take();
            *slot = Slot::Closed;
            drop(slot);
            if let Some(u) = waiter {
                u.unpark();
            }
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the message, parking the green thread (or blocking the OS thread outside
    /// a scheduler).
    ///
    /// # Errors
    /// [`RecvError`] if the sender was dropped without sending, or the message was
    /// received already.
    ///
    /// # Examples
    /// ```
    /// let got = bobbin::run(|| {
    ///     let (tx, rx) = bobbin::sync::oneshot::channel();
    ///     bobbin::spawn(move || tx.send(7).unwrap());
    ///     rx.recv()
    /// });
    /// assert_eq!(got, Ok(7));
    /// ```
    pub fn recv(mut self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Waits at most `timeout` for the message.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if nothing came in time (a later call may still get
    /// it); [`RecvTimeoutError::Disconnected`] as [`recv`](Receiver::recv)'s error.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use bobbin::sync::oneshot::{self, RecvTimeoutError};
    ///
    /// let (tx, mut rx) = oneshot::channel();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Ok(1));
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(crate::sched::deadline_after(timeout)))
    }

    /// Waits until `deadline` at most for the message.
    ///
    /// # Errors
    /// As [`recv_timeout`](Receiver::recv_timeout).
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, mut rx) = bobbin::sync::oneshot::channel::<u8>();
    /// drop(tx);
    /// let at = Instant::now() + Duration::from_secs(60);
    /// assert_eq!(rx.recv_deadline(at), Err(bobbin::sync::RecvTimeoutError::Disconnected));
    /// ```
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    /// The message if it has been sent; never waits.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if it has not been sent yet; `Disconnected` as
    /// [`recv`](Receiver::recv)'s error.
    ///
    /// # Examples
    /// ```
    /// use bobbin::sync::oneshot::{self, TryRecvError};
    /// let (tx, mut rx) = oneshot::channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(2));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut slot = self.shared.lock();
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Full(msg) => Ok(msg),
            Slot::Closed => Err(TryRecvError::Disconnected),
            empty @ Slot::Empty(_) => {
                *slot = empty;
                Err(TryRecvError::Empty)
            }
        }
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        loop {
            let mut slot = self.shared.lock();
            match std::mem::replace(&mut *slot, Slot::Closed) {
                Slot::Full(msg) => return Ok(msg),
                Slot::Closed => return Err(RecvTimeoutError::Disconnected),
                Slot::Empty(_) => {}
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                *slot = Slot::Empty(None);
                return Err(RecvTimeoutError::Timeout);
            }
            // The unparker goes in under the lock the sender takes to fill the slot, so a
            // send after this look finds it.
            let register = move |u| {
                *slot = Slot::Empty(Some(u));
                drop(slot);
            };
            match deadline {
                None => park::park("receiving from a oneshot channel", register),
                Some(at) => park::park_until("receiving from a oneshot channel", at, register),
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // A message sent and never received is dropped here, outside the lock.
        let left = std::mem::replace(&mut *self.shared.lock(), Slot::Closed);
        drop(left);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}
