//! The state behind both ends of a channel: a locked queue with an optional capacity
//! (zero for a rendezvous channel), its wait lists, and what selects have reserved in it.
//!
//! A buffered channel's queue holds the messages sent and not yet received. A
//! rendezvous channel's queue holds only messages already handed to a receiver that
//! committed to taking one (see `zero.rs`): nobody else may take them.

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::Arc;

use super::waiter::Waiter;
use crate::park::{Lock, LockGuard};
use crate::sched::scheduler::{self, Unparker};

/// One waiting operation in a wait list.
pub(super) enum Entry<T> {
    /// A plain blocking send or receive on a buffered channel: any wake-up will do, it
    /// tries again.
    Park(Unparker),
    /// Operation `oper` of a [`Waiter`] (a select, or a rendezvous send or receive). A
    /// rendezvous send that has its message in hand keeps it in `packet`, where the
    /// receiver that claims the waiter takes it.
    Select { waiter: Arc<Waiter>, oper: usize, packet: Option<Arc<Lock<Option<T>>>> },
}

impl<T> Entry<T> {
    fn is_of(&self, waiter: &Arc<Waiter>) -> bool {
        matches!(self, Entry::Select { waiter: w, .. } if Arc::ptr_eq(w, waiter))
    }
}

/// A watcher of `Select::ready`: woken when the operation may have become ready.
pub(super) type Watcher = (Arc<Waiter>, usize);

pub(super) struct State<T> {
    pub(super) queue: VecDeque<T>,
    pub(super) cap: Option<usize>,
    pub(super) senders: usize,
    pub(super) receivers: usize,
    pub(super) recv_waiters: VecDeque<Entry<T>>,
    pub(super) send_waiters: VecDeque<Entry<T>>,
    pub(super) recv_watchers: Vec<Watcher>,
    pub(super) send_watchers: Vec<Watcher>,
    /// Queued messages that selects have claimed and will take: only the rest are free
    /// for other receivers.
    pub(super) reserved_msgs: usize,
    /// Places in a bounded queue that selects have claimed and will fill.
    pub(super) reserved_room: usize,
    /// Rendezvous: receivers committed to a message that their partner has not queued
    /// yet, parked until it is.
    pub(super) handoff_waiters: VecDeque<Unparker>,
    /// Rendezvous: partners that were selected to send and dropped the selection instead;
    /// each releases one committed receiver.
    pub(super) cancelled: usize,
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

pub(super) struct Chan<T> {
    pub(super) state: Lock<State<T>>,
}

impl<T> Chan<T> {
    #[inline]
    pub(super) fn lock(&self) -> LockGuard<'_, State<T>> {
        self.state.lock()
    }
}

#[derive(Clone, Copy)]
pub(super) enum Side {
    Receivers,
    Senders,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Receivers => Side::Senders,
            Side::Senders => Side::Receivers,
        }
    }
}

/// A waiter taken off a wait list, to wake once the lock is released.
pub(super) enum Wake {
    /// Wake it; if its park already ended, the wake-up belongs to the next waiter.
    Park(Unparker),
    /// Claimed: it will act on the claim whenever it runs.
    Claimed(Arc<Waiter>),
}

/// Watchers taken off a watch list, to wake once the lock is released.
pub(super) struct Watchers(Vec<Watcher>);

impl Watchers {
    pub(super) fn wake(self) {
        for (w, oper) in self.0 {
            if w.try_claim(oper, false) {
                w.wake();
            }
        }
    }
}

impl<T> State<T> {
    /// Whether this is a rendezvous channel.
    #[inline]
    pub(super) fn is_zero(&self) -> bool {
        self.cap == Some(0)
    }

    #[inline]
    pub(super) fn waiters(&mut self, side: Side) -> &mut VecDeque<Entry<T>> {
        match side {
            Side::Receivers => &mut self.recv_waiters,
            Side::Senders => &mut self.send_waiters,
        }
    }

    /// The watchers of `side`, taken off their list (an event that may make `side`'s
    /// operation ready happened).
    #[inline]
    pub(super) fn take_watchers(&mut self, side: Side) -> Option<Watchers> {
        let list = match side {
            Side::Receivers => &mut self.recv_watchers,
            Side::Senders => &mut self.send_watchers,
        };
        (!list.is_empty()).then(|| Watchers(std::mem::take(list)))
    }

    /// Buffered channels: queued messages no select has reserved.
    #[inline]
    pub(super) fn free_msgs(&self) -> usize {
        self.queue.len() - self.reserved_msgs
    }

    /// Buffered channels: whether a send could queue a message now.
    #[inline]
    pub(super) fn has_room(&self) -> bool {
        self.cap.is_none_or(|c| self.queue.len() + self.reserved_room < c)
    }

    /// Takes the waiter of `side` to wake on a buffered channel, after a message (for
    /// receivers) or room (for senders) became free: a plain waiter, or a select that this
    /// call claims and reserves the message or room for.
    ///
    /// Plain waiters: called on a scheduler's thread, the longest-waiting one whose green
    /// thread lives on that scheduler, if one is among the first few; otherwise the
    /// longest-waiting one. (Which receiver gets which message is not promised; the
    /// messages themselves stay in order.) Any waiter can take the message (or the room),
    /// and a local one takes it without a wake-up crossing to another worker: on a
    /// runtime, a channel between a producer and consumers spread over two workers
    /// otherwise moves every message between the cores. Waiters further back are not
    /// looked at, so a wake-up costs the same however many wait.
    #[inline]
    pub(super) fn take_waiter(&mut self, side: Side) -> Option<Wake> {
        loop {
            let free = match side {
                Side::Receivers => self.free_msgs() > 0,
                Side::Senders => self.has_room(),
            };
            if !free {
                return None;
            }
            let list = self.waiters(side);
            let i = if list.len() > 1 { local_waiter(list) } else { 0 };
            match list.remove(i)? {
                Entry::Park(u) => return Some(Wake::Park(u)),
                Entry::Select { waiter, oper, .. } => {
                    if waiter.try_claim(oper, true) {
                        match side {
                            Side::Receivers => self.reserved_msgs += 1,
                            Side::Senders => self.reserved_room += usize::from(self.cap.is_some()),
                        }
                        return Some(Wake::Claimed(waiter));
                    }
                    // Selected elsewhere or timed out: it unregisters itself; look further.
                }
            }
        }
    }

    /// Removes every entry and watcher of `waiter` from `side`'s lists.
    pub(super) fn unregister(&mut self, side: Side, waiter: &Arc<Waiter>) {
        self.waiters(side).retain(|e| !e.is_of(waiter));
        let watchers = match side {
            Side::Receivers => &mut self.recv_watchers,
            Side::Senders => &mut self.send_watchers,
        };
        watchers.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
    }
}

/// The index of the first of the first few plain waiters whose green thread lives on this
/// scheduler, else 0.
fn local_waiter<T>(list: &VecDeque<Entry<T>>) -> usize {
    let Some(here) = scheduler::current_home() else { return 0 };
    list.iter().take(LOCAL_SCAN).position(|e| matches!(e, Entry::Park(u) if u.home() == Some(here))).unwrap_or(0)
}

/// Messages larger than this many bytes are received through a path that keeps one copy
/// of them on the stack; smaller ones through a tighter loop that may keep two.
pub(super) const LARGE: usize = 256;

/// How many waiters [`State::take_waiter`] looks through for a local one.
const LOCAL_SCAN: usize = 8;

impl<T> Chan<T> {
    /// Wakes `first`, a waiter of `side` just taken off its list under the lock, or, if its
    /// park already ended (it timed out), the next waiter whose park is still pending, so
    /// the wake-up is never spent on nobody. Called without the lock held.
    pub(super) fn wake_one(&self, side: Side, first: Wake) {
        let mut next = Some(first);
        while let Some(w) = next {
            match w {
                Wake::Claimed(waiter) => return waiter.wake(),
                Wake::Park(u) => {
                    if u.unpark() {
                        return;
                    }
                }
            }
            next = self.lock().take_waiter(side);
        }
    }

    /// After a buffered channel gained a free message (`Receivers`) or free room
    /// (`Senders`) under the lock: unlocks it and wakes a waiter of that side, and its
    /// watchers.
    #[inline]
    pub(super) fn notify(&self, mut st: LockGuard<'_, State<T>>, side: Side) {
        let waiting = st.take_waiter(side);
        let watchers = st.take_watchers(side);
        drop(st);
        if let Some(w) = waiting {
            self.wake_one(side, w);
        }
        if let Some(w) = watchers {
            w.wake();
        }
    }

    /// Queues `msg` on the locked buffered channel, then unlocks it and wakes a receiver
    /// if one waits. The message is moved once, from the caller's argument into the queue.
    #[inline]
    pub(super) fn push(&self, mut st: LockGuard<'_, State<T>>, msg: T) {
        st.queue.push_back(msg);
        self.notify(st, Side::Receivers);
    }

    /// Takes the oldest message off the locked buffered channel, if one is free; then
    /// unlocks it and, for a bounded channel with senders waiting for room, wakes one.
    ///
    /// Inlined for small messages; out of line for large ones, where each inlined copy
    /// would add a slot of the message's size to the caller's frame.
    #[inline(always)]
    pub(super) fn pop<'a>(&'a self, st: LockGuard<'a, State<T>>) -> Result<T, LockGuard<'a, State<T>>> {
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
        if st.free_msgs() == 0 {
            return Err(st);
        }
        let Some(msg) = st.queue.pop_front() else { return Err(st) };
        self.notify(st, Side::Senders);
        Ok(msg)
    }

    /// One end of `side` is dropped. When it was the last, every waiter of the other side
    /// must learn that the channel is disconnected: receivers that it will stay empty,
    /// senders that nobody will take what they send.
    pub(super) fn release(&self, side: Side) {
        let last = {
            let mut st = self.lock();
            let count = match side {
                Side::Senders => &mut st.senders,
                Side::Receivers => &mut st.receivers,
            };
            *count -= 1;
            *count == 0
        };
        if last {
            self.wake_all(side.other());
        }
    }

    /// Wakes every waiter and watcher of `side` (the other side has disconnected). Selects
    /// are claimed without a reservation: their operation reports the disconnection.
    pub(super) fn wake_all(&self, side: Side) {
        let (all, watchers) = {
            let mut st = self.lock();
            let all: Vec<Entry<T>> = st.waiters(side).drain(..).collect();
            (all, st.take_watchers(side))
        };
        for e in all {
            match e {
                Entry::Park(u) => {
                    u.unpark();
                }
                Entry::Select { waiter, oper, .. } => {
                    if waiter.try_claim(oper, false) {
                        waiter.wake();
                    }
                }
            }
        }
        if let Some(w) = watchers {
            w.wake();
        }
    }
}

impl<T> Chan<T> {
    /// A channel holding at most `cap` messages (`None`: no limit, `Some(0)`: a
    /// rendezvous), with one sender and one receiver.
    pub(super) fn new(cap: Option<usize>) -> Chan<T> {
        Chan {
            state: Lock::new(State {
                queue: VecDeque::new(),
                cap,
                senders: 1,
                receivers: 1,
                recv_waiters: VecDeque::new(),
                send_waiters: VecDeque::new(),
                recv_watchers: Vec::new(),
                send_watchers: Vec::new(),
                reserved_msgs: 0,
                reserved_room: 0,
                handoff_waiters: VecDeque::new(),
                cancelled: 0,
            }),
        }
    }
}
