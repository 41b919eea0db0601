//! Channels that park green threads instead of blocking their OS thread: the ends and
//! what they share. Their operations are in `send.rs` and `recv.rs`, the iterators in
//! `iter.rs`, the state behind them in `queue.rs` (the rendezvous flavour's part in
//! `zero.rs`), waiting on several at once in `select.rs`, `operand.rs` and `macros.rs`
//! over the waiter of `waiter.rs`, the errors in `error.rs`.

mod error;
mod iter;
mod macros;
mod operand;
mod queue;
mod recv;
mod select;
mod send;
mod waiter;
mod zero;

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{
    ReadyTimeoutError, RecvError, RecvTimeoutError, SelectTimeoutError, SendError, SendTimeoutError, TryReadyError,
    TryRecvError, TrySelectError, TrySendError,
};
pub use iter::{IntoIter, Iter, TryIter};
use queue::{Chan, Side};
pub use select::{Select, SelectedOperation};

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
/// With `cap` zero the channel is a rendezvous, as std's `sync_channel(0)`: it holds no
/// message, a `send` completes only by handing its message to a receiver (parking until
/// one comes), `try_send` succeeds only if a receiver is waiting right then, and `recv`
/// parks until a sender comes.
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
///
/// A rendezvous: each send waits for the receiver, so the two take turns.
/// ```
/// let log = bobbin::run(|| {
///     let (tx, rx) = bobbin::sync::bounded(0);
///     let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
///     let sender = {
///         let log = log.clone();
///         bobbin::spawn(move || {
///             tx.send(1).unwrap(); // waits here until the receiver below takes it
///             log.borrow_mut().push("sent");
///         })
///     };
///     bobbin::yield_now(); // the sender runs and parks: no receiver yet
///     log.borrow_mut().push("receiving");
///     assert_eq!(rx.recv(), Ok(1));
///     sender.join().unwrap();
///     log.take()
/// });
/// assert_eq!(log, ["receiving", "sent"]);
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(cap))
}

/// The instant `timeout` from now; a timeout too long to add is as good as none, and a
/// century stands for it.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
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

/// Generates the questions both ends answer about their channel.
macro_rules! channel_state {
    ($end:ident, $name:literal) => {
        impl<T> $end<T> {
            /// How many messages are queued. Always 0 for a rendezvous channel, which holds
            /// none.
            ///
            /// # Examples
            /// ```
            /// let (tx, rx) = bobbin::sync::bounded(3);
            /// tx.send('a').unwrap();
            /// tx.send('b').unwrap();
            #[doc = concat!("assert_eq!(", $name, ".len(), 2);")]
            /// ```
            pub fn len(&self) -> usize {
                let st = self.chan.lock();
                if st.is_zero() {
                    0
                } else {
                    st.queue.len()
                }
            }

            /// Whether no message is queued. Always true for a rendezvous channel.
            ///
            /// # Examples
            /// ```
            /// let (tx, rx) = bobbin::sync::channel();
            #[doc = concat!("assert!(", $name, ".is_empty());")]
            /// tx.send(()).unwrap();
            #[doc = concat!("assert!(!", $name, ".is_empty());")]
            /// ```
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether a bounded channel holds as many messages as it can. Always true for a
            /// rendezvous channel, never for an unbounded one.
            ///
            /// # Examples
            /// ```
            /// let (tx, rx) = bobbin::sync::bounded(1);
            #[doc = concat!("assert!(!", $name, ".is_full());")]
            /// tx.send(()).unwrap();
            #[doc = concat!("assert!(", $name, ".is_full());")]
            /// ```
            pub fn is_full(&self) -> bool {
                let st = self.chan.lock();
                st.cap.is_some_and(|c| st.queue.len() >= c)
            }

            /// How many messages the channel can hold: `None` if it is unbounded.
            ///
            /// # Examples
            /// ```
            /// let (tx, rx) = bobbin::sync::bounded::<u8>(0);
            #[doc = concat!("assert_eq!(", $name, ".capacity(), Some(0));")]
            /// let (tx, rx) = bobbin::sync::channel::<u8>();
            #[doc = concat!("assert_eq!(", $name, ".capacity(), None);")]
            /// ```
            pub fn capacity(&self) -> Option<usize> {
                self.chan.lock().cap
            }
        }
    };
}

channel_state!(Sender, "tx");
channel_state!(Receiver, "rx");

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

// A panic while a channel's lock is held cannot leave it inconsistent (every critical
// section is a queue operation), and a message is either queued or not: the ends can be
// used again after a caught panic, as std's and crossbeam's can.
impl<T> UnwindSafe for Sender<T> {}
impl<T> RefUnwindSafe for Sender<T> {}
impl<T> UnwindSafe for Receiver<T> {}
impl<T> RefUnwindSafe for Receiver<T> {}

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
