//! The one flavour of channel so far: a locked queue with an optional capacity, and the
//! wait lists of parked senders and receivers.

use std::collections::VecDeque;
use std::mem::size_of;

use crate::park::{Lock, LockGuard};
use crate::sched::scheduler::{self, Unparker};

pub(super) struct State<T> {
    pub(super) queue: VecDeque<T>,
    pub(super) cap: Option<usize>,
    pub(super) senders: usize,
    pub(super) receivers: usize,
    pub(super) recv_waiters: VecDeque<Unparker>,
    pub(super) send_waiters: VecDeque<Unparker>,
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

impl<T> State<T> {
    #[inline]
    pub(super) fn waiters(&mut self, side: Side) -> &mut VecDeque<Unparker> {
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
    #[inline]
    pub(super) fn take_waiter(&mut self, side: Side) -> Option<Unparker> {
        let list = self.waiters(side);
        if list.len() > 1 {
            if let Some(here) = scheduler::current_home() {
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
pub(super) const LARGE: usize = 256;

/// How many waiters [`State::take_waiter`] looks through for a local one.
const LOCAL_SCAN: usize = 8;

impl<T> Chan<T> {
    /// Wakes `first`, a waiter of `side` just taken off its list under the lock, or, if its
    /// park already ended (it timed out), the next waiter whose park is still pending, so
    /// the wake-up is never spent on nobody. Called without the lock held.
    pub(super) fn wake_one(&self, side: Side, first: Unparker) {
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
    #[inline]
    pub(super) fn push(&self, mut st: LockGuard<'_, State<T>>, msg: T) {
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
        let Some(msg) = st.queue.pop_front() else { return Err(st) };
        let room_wanted = st.take_waiter(Side::Senders);
        drop(st);
        if let Some(w) = room_wanted {
            self.wake_one(Side::Senders, w);
        }
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
            self.wake_all(match side {
                Side::Senders => Side::Receivers,
                Side::Receivers => Side::Senders,
            });
        }
    }

    /// Wakes every waiter of `side` (the other side has disconnected).
    pub(super) fn wake_all(&self, side: Side) {
        let all: Vec<Unparker> = self.lock().waiters(side).drain(..).collect();
        for w in all {
            w.unpark();
        }
    }
}

impl<T> Chan<T> {
    /// A channel holding at most `cap` messages (`None`: no limit), with one sender and one
    /// receiver.
    pub(super) fn new(cap: Option<usize>) -> Chan<T> {
        Chan {
            state: Lock::new(State {
                queue: VecDeque::new(),
                cap,
                senders: 1,
                receivers: 1,
                recv_waiters: VecDeque::new(),
                send_waiters: VecDeque::new(),
            }),
        }
    }
}
