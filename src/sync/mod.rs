//! Channels that park green threads instead of blocking their OS thread.
//!
//! [`channel`] makes an unbounded channel and [`bounded`] one that holds at most `cap`
//! messages; both are multi-producer, multi-consumer and FIFO, and both ends can be cloned
//! and sent to other threads. The names and error types follow `std::sync::mpsc` and
//! crossbeam-channel. Outside a scheduler, waiting calls block the OS thread.
//!
//! ```
//! use bobbin::sync::channel;
//!
//! let sum = bobbin::run(|| {
//!     let (tx, rx) = channel();
//!     for i in 0..4u32 {
//!         let tx = tx.clone();
//!         bobbin::spawn(move || tx.send(i).unwrap());
//!     }
//!     drop(tx);
//!     rx.iter().sum::<u32>()
//! });
//! assert_eq!(sum, 6);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::mem::size_of;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::park::{Lock, LockGuard};
use crate::sched::budget;
use crate::sched::scheduler::Unparker;
use crate::sched::{self, park};

struct State<T> {
    queue: VecDeque<T>,
    cap: Option<usize>,
    senders: usize,
    receivers: usize,
    recv_waiters: VecDeque<Unparker>,
    send_waiters: VecDeque<Unparker>,
}

impl<T> Drop for State<T> {
    /// Drops the messages left in order. If one's destructor panics, the rest are leaked:
    /// dropping another while that panic unwinds could panic again, which aborts.
    fn drop(&mut self) {
        struct LeakRest<'a, T>(&'a mut VecDeque<T>);
        impl<T> Drop for LeakRest<'_, T> {
            fn drop(&mut self) {
                std::mem::forget(std::mem::take(self.0));
            }
        }
        let rest = LeakRest(&mut self.queue);
        while let Some(msg) = rest.0.pop_front() {
            drop(msg);
        }
        std::mem::forget(rest);
    }
}

struct Chan<T> {
    state: Lock<State<T>>,
}

impl<T> Chan<T> {
    fn lock(&self) -> LockGuard<'_, State<T>> {
        self.state.lock()
    }
}

#[derive(Clone, Copy)]
enum Side {
    Receivers,
    Senders,
}

impl<T> State<T> {
    fn waiters(&mut self, side: Side) -> &mut VecDeque<Unparker> {
        match side {
            Side::Receivers => &mut self.recv_waiters,
            Side::Senders => &mut self.send_waiters,
        }
    }

    /// Takes the waiter of `side` to wake: called on a scheduler's thread, the
    /// longest-waiting one whose green thread lives on that scheduler, if one is among the
    /// first few; otherwise the longest-waiting one. (Which receiver gets which message
    /// is not promised; the messages themselves stay in order.)
    ///
    /// Any waiter can take the message (or the room), and a local one takes it without a
    /// wake-up crossing to another worker: on a runtime, a channel between a producer and
    /// consumers spread over two workers otherwise moves every message between the cores.
    /// Waiters further back are not looked at, so a wake-up costs the same however many
    /// wait.
    fn take_waiter(&mut self, side: Side) -> Option<Unparker> {
        let list = self.waiters(side);
        if list.len() > 1 {
            if let Some(here) = sched::scheduler::current_home() {
                if let Some(i) = list.iter().take(LOCAL_SCAN).position(|w| w.home() == Some(here)) {
                    return list.remove(i);
                }
            }
        }
        list.pop_front()
    }
}

/// Messages larger than this many bytes are received through a path that keeps one copy
/// of them on the stack; smaller ones through a tighter loop that may keep two.
const LARGE: usize = 256;

/// How many waiters [`State::take_waiter`] looks through for a local one.
const LOCAL_SCAN: usize = 8;

impl<T> Chan<T> {
    /// Wakes `first`, a waiter of `side` just taken off its list under the lock, or, if its
    /// park already ended (it timed out), the next waiter whose park is still pending, so
    /// the wake-up is never spent on nobody. Called without the lock held.
    fn wake_one(&self, side: Side, first: Unparker) {
        let mut next = Some(first);
        while let Some(w) = next {
            if w.unpark() {
                return;
            }
            next = self.lock().take_waiter(side);
        }
    }

    /// Queues `msg` on the locked channel, then unlocks it and wakes a receiver if one
    /// waits. The message is moved once, from the caller's argument into the queue.
    fn push(&self, mut st: LockGuard<'_, State<T>>, msg: T) {
        st.queue.push_back(msg);
        let waiting = st.take_waiter(Side::Receivers);
        drop(st);
        if let Some(w) = waiting {
            self.wake_one(Side::Receivers, w);
        }
    }

    /// Takes the oldest message off the locked channel, if any; then unlocks it and, for a
    /// bounded channel with senders waiting for room, wakes one.
    ///
    /// Inlined for small messages; out of line for large ones, where each inlined copy
    /// would add a slot of the message's size to the caller's frame.
    #[inline(always)]
    fn pop<'a>(&'a self, st: LockGuard<'a, State<T>>) -> Result<T, LockGuard<'a, State<T>>> {
        if size_of::<T>() > LARGE {
            self.pop_out_of_line(st)
        } else {
            self.pop_inline(st)
        }
    }

    #[inline(never)]
    fn pop_out_of_line<'a>(&'a self, st: LockGuard<'a, State<T>>) -> Result<T, LockGuard<'a, State<T>>> {
        self.pop_inline(st)
    }

    #[inline(always)]
    fn pop_inline<'a>(&'a self, mut st: LockGuard<'a, State<T>>) -> Result<T, LockGuard<'a, State<T>>> {
        let Some(msg) = st.queue.pop_front() else { return Err(st) };
        let room_wanted = st.take_waiter(Side::Senders);
        drop(st);
        if let Some(w) = room_wanted {
            self.wake_one(Side::Senders, w);
        }
        Ok(msg)
    }

    /// Wakes every waiter of `side` (the other side has disconnected).
    fn wake_all(&self, side: Side) {
        let all: Vec<Unparker> = self.lock().waiters(side).drain(..).collect();
        for w in all {
            w.unpark();
        }
    }
}

/// Makes an unbounded channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    make(None)
}

/// Makes a channel that holds at most `cap` messages; `send` parks while it is full.
///
/// # Panics
/// If `cap` is zero: rendezvous channels are not supported.
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    assert!(cap > 0, "bobbin::sync::bounded(0): rendezvous channels are not supported; use a capacity of 1 or more");
    make(Some(cap))
}

fn make<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Lock::new(State {
            queue: VecDeque::new(),
            cap,
            senders: 1,
            receivers: 1,
            recv_waiters: VecDeque::new(),
            send_waiters: VecDeque::new(),
        }),
    });
    (Sender { chan: Arc::clone(&chan) }, Receiver { chan })
}

/// The sending end of a channel. Clone it for more senders.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving end of a channel. Clone it for more receivers; each message goes to
/// exactly one of them.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// The message could not be sent: every receiver is gone. Holds the message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Why [`Sender::try_send`] did not send. Holds the message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The bounded channel is full.
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

/// The channel is empty and every sender is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued now.
    Empty,
    /// Nothing is queued and every sender is gone.
    Disconnected,
}

/// Why [`Receiver::recv_timeout`] returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// The time ran out first.
    Timeout,
    /// Nothing is queued and every sender is gone.
    Disconnected,
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
    /// # Panics
    /// If called on the stack of a coroutine or generator that a green thread is running
    /// and the channel is full: only the green thread's own stack can park.
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
    /// # Panics
    /// If called on the stack of a coroutine or generator that a green thread is running
    /// and the channel is empty: only the green thread's own stack can park.
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
    /// # Panics
    /// If called on the stack of a coroutine or generator that a green thread is running
    /// and the channel is empty: only the green thread's own stack can park.
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
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages queued now, without waiting.
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
        let last = {
            let mut st = self.chan.lock();
            st.senders -= 1;
            st.senders == 0
        };
        if last {
            // Receivers waiting on an empty channel must learn it is now disconnected.
            self.chan.wake_all(Side::Receivers);
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let last = {
            let mut st = self.chan.lock();
            st.receivers -= 1;
            st.receivers == 0
        };
        if last {
            self.chan.wake_all(Side::Senders);
        }
    }
}

/// Blocking iterator of [`Receiver::iter`].
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator of [`Receiver::try_iter`].
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

/// Owning blocking iterator of a [`Receiver`].
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
