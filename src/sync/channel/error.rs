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
