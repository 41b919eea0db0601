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

/// A waiting operation of a [`Waiter`] (a select, or a rendezvous send or receive) in a
/// wait list. A rendezvous send that has its message in hand keeps it in `packet`, where
/// the receiver that claims the waiter takes it.
pub(super) struct Entry<T> {
    pub(super) waiter: Arc<Waiter>,
    pub(super) oper: usize,
    pub(super) packet: Option<Arc<Lock<Option<T>>>>,
}

/// A watcher of `Select::ready`: woken when the operation may have become ready.
pub(super) type Watcher = (Arc<Waiter>, usize);

pub(super) struct State<T> {
    pub(super) queue: VecDeque<T>,
    pub(super) cap: Option<usize>,
    pub(super) senders: usize,
    pub(super) receivers: usize,
    /// Plain blocking receives and sends of a buffered channel: any wake-up will do, they
    /// try again.
    pub(super) recv_waiters: VecDeque<Unparker>,
    pub(super) send_waiters: VecDeque<Unparker>,
    /// Waiters (selects; every wait of a rendezvous channel), claimed before they act.
    pub(super) recv_selects: VecDeque<Entry<T>>,
    pub(super) send_selects: VecDeque<Entry<T>>,
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
    pub(super) fn waiters(&mut self, side: Side) -> &mut VecDeque<Unparker> {
        match side {
            Side::Receivers => &mut self.recv_waiters,
            Side::Senders => &mut self.send_waiters,
        }
    }

    #[inline]
    pub(super) fn selects(&mut self, side: Side) -> &mut VecDeque<Entry<T>> {
        match side {
            Side::Receivers => &mut self.recv_selects,
            Side::Senders => &mut self.send_selects,
        }
    }

    #[inline]
    fn watchers(&mut self, side: Side) -> &mut Vec<Watcher> {
        match side {
            Side::Receivers => &mut self.recv_watchers,
            Side::Senders => &mut self.send_watchers,
        }
    }

    /// The watchers of `side`, taken off their list (an event that may make `side`'s
    /// operation ready happened).
    #[inline]
    pub(super) fn take_watchers(&mut self, side: Side) -> Option<Watchers> {
        let list = self.watchers(side);
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
    /// receivers) or room (for senders) became free: a select, which this call claims and
    /// reserves the message or room for, or else a plain waiter. (Selects come first: they
    /// are few, and a plain waiter that finds its wake-up taken waits for the next.)
    ///
    /// Plain waiters: called on a scheduler's thread, the longest-waiting one whose green
    /// thread lives on that scheduler, if one is among the first few; otherwise the
    /// longest-waiting one. (Which receiver gets which message is not promised; the
    /// messages themselves stay in order.) Any waiter can take the message (or the room),
    /// and a local one takes it without a wake-up crossing to another worker: on a
    /// runtime, a channel between a producer and consumers spread over two workers
    /// otherwise moves every message between the cores. Waiters further back are not
    /// looked at, so a wake-up costs the same however many wait.
    #[inline(always)]
    pub(super) fn take_waiter(&mut self, side: Side) -> Option<Wake> {
        if !self.selects(side).is_empty() {
            if let Some(w) = self.claim_select(side) {
                return Some(Wake::Claimed(w));
            }
        }
        let list = self.waiters(side);
        if list.len() > 1 {
            if let Some(here) = scheduler::current_home() {
                if let Some(i) = list.iter().take(LOCAL_SCAN).position(|w| w.home() == Some(here)) {
                    return list.remove(i).map(Wake::Park);
                }
            }
        }
        list.pop_front().map(Wake::Park)
    }

    /// Buffered channels: claims the longest-waiting select of `side` that still waits,
    /// reserving a free message or free room for it; entries of selects already claimed
    /// elsewhere are dropped on the way.
    #[inline(never)]
    fn claim_select(&mut self, side: Side) -> Option<Arc<Waiter>> {
        loop {
            let free = match side {
                Side::Receivers => self.free_msgs() > 0,
                Side::Senders => self.has_room(),
            };
            if !free {
                return None;
            }
            let e = self.selects(side).pop_front()?;
            if e.waiter.try_claim(e.oper, true) {
                match side {
                    Side::Receivers => self.reserved_msgs += 1,
                    Side::Senders => self.reserved_room += usize::from(self.cap.is_some()),
                }
                return Some(e.waiter);
            }
        }
    }

    /// Removes every entry and watcher of `waiter` from `side`'s lists.
    pub(super) fn unregister(&mut self, side: Side, waiter: &Arc<Waiter>) {
        self.selects(side).retain(|e| !Arc::ptr_eq(&e.waiter, waiter));
        self.watchers(side).retain(|(w, _)| !Arc::ptr_eq(w, waiter));
    }
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
    #[inline(always)]
    pub(super) fn notify(&self, mut st: LockGuard<'_, State<T>>, side: Side) {
        if st.waiters(side).is_empty() && st.selects(side).is_empty() && st.watchers(side).is_empty() {
            return; // nobody to tell: the common case of a busy channel
        }
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
        let (plain, selects, watchers) = {
            let mut st = self.lock();
            let plain: Vec<Unparker> = st.waiters(side).drain(..).collect();
            let selects: Vec<Entry<T>> = st.selects(side).drain(..).collect();
            (plain, selects, st.take_watchers(side))
        };
        for u in plain {
            u.unpark();
        }
        for e in selects {
            if e.waiter.try_claim(e.oper, false) {
                e.waiter.wake();
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
                recv_selects: VecDeque::new(),
                send_selects: VecDeque::new(),
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
