//! The errors of channel operations, with the meanings std's and crossbeam's have.

use std::fmt;

/// The message could not be sent: every receiver is gone. Holds the message.
///
/// # Examples
/// ```
/// let (tx, rx) = bobbin::sync::channel();
/// drop(rx);
/// let err = tx.send(vec![1, 2]).unwrap_err();
/// assert_eq!(err.to_string(), "sending on a channel whose receivers are all gone");
/// assert_eq!(err.0, [1, 2]); // the message, handed back
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Why [`Sender::try_send`](super::Sender::try_send) did not send. Holds the message.
///
/// # Examples
/// ```
/// use bobbin::sync::TrySendError;
///
/// let (tx, rx) = bobbin::sync::bounded(1);
/// tx.send('a').unwrap();
/// match tx.try_send('b') {
///     Err(TrySendError::Full(msg)) => assert_eq!(msg, 'b'),
///     other => panic!("expected a full channel, got {other:?}"),
/// }
/// drop(rx);
/// assert_eq!(tx.try_send('c'), Err(TrySendError::Disconnected('c')));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The bounded channel is full.
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

/// Why [`Sender::send_timeout`](super::Sender::send_timeout) or
/// [`send_deadline`](super::Sender::send_deadline) did not send. Holds the message.
///
/// # Examples
/// ```
/// use bobbin::sync::{bounded, SendTimeoutError};
/// use std::time::Duration;
///
/// let (tx, rx) = bounded(1);
/// tx.send(1).unwrap();
/// // Full, and nobody receives: the time runs out and the message comes back.
/// assert_eq!(tx.send_timeout(2, Duration::from_millis(1)), Err(SendTimeoutError::Timeout(2)));
/// drop(rx);
/// let err = tx.send_timeout(3, Duration::from_secs(60)).unwrap_err();
/// assert!(err.is_disconnected());
/// assert_eq!(err.into_inner(), 3);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The time ran out before the channel had room (or, for a rendezvous channel, before
    /// a receiver came).
    Timeout(T),
    /// Every receiver is gone.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The message that was not sent.
    ///
    /// # Examples
    /// ```
    /// let err = bobbin::sync::SendTimeoutError::Timeout("unsent");
    /// assert_eq!(err.into_inner(), "unsent");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(msg) | SendTimeoutError::Disconnected(msg) => msg,
        }
    }

    /// Whether the time ran out.
    ///
    /// # Examples
    /// ```
    /// assert!(bobbin::sync::SendTimeoutError::Timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// Whether every receiver is gone.
    ///
    /// # Examples
    /// ```
    /// assert!(bobbin::sync::SendTimeoutError::Disconnected(()).is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Disconnected(_))
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(SendError(msg): SendError<T>) -> SendTimeoutError<T> {
        SendTimeoutError::Disconnected(msg)
    }
}

/// [`Select::try_select`](super::Select::try_select) found no operation ready.
///
/// # Examples
/// ```
/// let (_tx, rx) = bobbin::sync::channel::<u8>();
/// let mut sel = bobbin::sync::Select::new();
/// sel.add_recv(&rx);
/// assert_eq!(sel.try_select().unwrap_err(), bobbin::sync::TrySelectError);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrySelectError;

/// [`Select::select_timeout`](super::Select::select_timeout) (or `select_deadline`) ran out
/// of time.
///
/// # Examples
/// ```
/// use std::time::Duration;
///
/// let (_tx, rx) = bobbin::sync::channel::<u8>();
/// let mut sel = bobbin::sync::Select::new();
/// sel.add_recv(&rx);
/// let err = sel.select_timeout(Duration::from_millis(1)).unwrap_err();
/// assert_eq!(err, bobbin::sync::SelectTimeoutError);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectTimeoutError;

/// [`Select::try_ready`](super::Select::try_ready) found no operation ready.
///
/// # Examples
/// ```
/// let (_tx, rx) = bobbin::sync::channel::<u8>();
/// let mut sel = bobbin::sync::Select::new();
/// sel.add_recv(&rx);
/// assert_eq!(sel.try_ready(), Err(bobbin::sync::TryReadyError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TryReadyError;

/// [`Select::ready_timeout`](super::Select::ready_timeout) ran out of time.
///
/// # Examples
/// ```
/// use std::time::Duration;
///
/// let (_tx, rx) = bobbin::sync::channel::<u8>();
/// let mut sel = bobbin::sync::Select::new();
/// sel.add_recv(&rx);
/// assert_eq!(sel.ready_timeout(Duration::from_millis(1)), Err(bobbin::sync::ReadyTimeoutError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyTimeoutError;

/// The channel is empty and every sender is gone.
///
/// # Examples
/// ```
/// use bobbin::sync::RecvError;
///
/// let (tx, rx) = bobbin::sync::channel::<u8>();
/// drop(tx);
/// assert_eq!(rx.recv(), Err(RecvError));
/// assert_eq!(RecvError.to_string(), "receiving on an empty channel whose senders are all gone");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

/// Why [`Receiver::try_recv`](super::Receiver::try_recv) returned nothing.
///
/// # Examples
/// ```
/// use bobbin::sync::TryRecvError;
///
/// let (tx, rx) = bobbin::sync::channel::<u8>();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued now.
    Empty,
    /// Nothing is queued and every sender is gone.
    Disconnected,
}

/// Why [`Receiver::recv_timeout`](super::Receiver::recv_timeout) returned nothing.
///
/// # Examples
/// ```
/// use bobbin::sync::RecvTimeoutError;
/// use std::time::Duration;
///
/// let (tx, rx) = bobbin::sync::channel::<u8>();
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// drop(tx);
/// assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Err(RecvTimeoutError::Disconnected));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// The time ran out first.
    Timeout,
    /// Nothing is queued and every sender is gone.
    Disconnected,
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError { .. }")
    }
}
impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a channel whose receivers are all gone")
    }
}
impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}
impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Disconnected(_) => f.write_str("sending on a channel whose receivers are all gone"),
        }
    }
}
impl<T> std::error::Error for TrySendError<T> {}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty channel whose senders are all gone")
    }
}
impl std::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => f.write_str("receiving on an empty channel whose senders are all gone"),
        }
    }
}
impl std::error::Error for TryRecvError {}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on a channel"),
            RecvTimeoutError::Disconnected => f.write_str("receiving on an empty channel whose senders are all gone"),
        }
    }
}
impl std::error::Error for RecvTimeoutError {}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}
impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting to send on a channel"),
            SendTimeoutError::Disconnected(_) => f.write_str("sending on a channel whose receivers are all gone"),
        }
    }
}
impl<T> std::error::Error for SendTimeoutError<T> {}

impl fmt::Display for TrySelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no channel operation was ready")
    }
}
impl std::error::Error for TrySelectError {}

impl fmt::Display for SelectTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for a channel operation")
    }
}
impl std::error::Error for SelectTimeoutError {}

impl fmt::Display for TryReadyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no channel operation was ready")
    }
}
impl std::error::Error for TryReadyError {}

impl fmt::Display for ReadyTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for a channel operation to become ready")
    }
}
impl std::error::Error for ReadyTimeoutError {}
