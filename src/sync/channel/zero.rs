//! The rendezvous flavour (`bounded(0)`): a send completes only by handing its message to
//! a receiver.
//!
//! Every waiting operation of a rendezvous channel is a [`Waiter`] entry, and the party
//! that arrives second claims the one that waits. A receiver that claims a waiting plain
//! sender takes the message out of the sender's packet at once. A sender that claims a
//! waiting receiver, or a receiver that claims a select's send operation (which has no
//! message until the select has picked it), leaves the receiver committed: the message
//! reaches it through the channel's queue, which only committed receivers read. Each
//! commitment is matched by exactly one message queued later (or one cancellation, if the
//! select drops its selected send), so a committed receiver always gets one.

use std::sync::Arc;
use std::time::Instant;

use super::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use super::queue::{Chan, Entry, Side, State};
use super::waiter::Waiter;
use crate::park::{Lock, LockGuard};
use crate::sched::{budget, park};

impl<T> State<T> {
    /// Claims the longest-waiting receiver, committing it to a message this caller will
    /// queue. Entries of waiters already claimed elsewhere are dropped on the way.
    pub(super) fn claim_receiver(&mut self) -> Option<Arc<Waiter>> {
        while let Some(e) = self.recv_selects.pop_front() {
            if e.waiter.try_claim(e.oper, true) {
                return Some(e.waiter);
            }
        }
        None
    }

    /// Claims the longest-waiting sender: its message if it had one in hand, or `None`
    /// for a select's send operation, which will queue it once it runs. Without `may_wait`
    /// only senders with a message in hand are claimed.
    pub(super) fn claim_sender(&mut self, may_wait: bool) -> Option<(Arc<Waiter>, Option<T>)> {
        let mut i = 0;
        while i < self.send_selects.len() {
            let e = &self.send_selects[i];
            if e.waiter.is_waiting() && e.packet.is_none() && !may_wait {
                i += 1;
                continue;
            }
            let won = e.waiter.try_claim(e.oper, true);
            let e = self.send_selects.remove(i).expect("an entry just looked at");
            if won {
                return Some((e.waiter, e.packet.and_then(|p| p.lock().take())));
            }
        }
        None
    }

    /// Whether a receive could complete now (or report the disconnection); on a
    /// rendezvous, whether a sender other than `me` waits.
    pub(super) fn recv_ready(&mut self, me: Option<&Arc<Waiter>>) -> bool {
        self.senders == 0 || if self.is_zero() { self.has_partner(Side::Senders, me) } else { self.free_msgs() > 0 }
    }

    /// Whether a send could complete now (or report the disconnection); on a rendezvous,
    /// whether a receiver other than `me` waits.
    pub(super) fn send_ready(&mut self, me: Option<&Arc<Waiter>>) -> bool {
        self.receivers == 0 || if self.is_zero() { self.has_partner(Side::Receivers, me) } else { self.has_room() }
    }

    /// Whether a waiter other than `me` waits on `side` and could be claimed.
    fn has_partner(&mut self, side: Side, me: Option<&Arc<Waiter>>) -> bool {
        self.selects(side).iter().any(|e| me.is_none_or(|me| !Arc::ptr_eq(me, &e.waiter)) && e.waiter.is_waiting())
    }
}

impl<T> Chan<T> {
    /// Queues `msg` for a committed receiver, unlocks, and wakes one that waits for it.
    pub(super) fn hand_over(&self, mut st: LockGuard<'_, State<T>>, msg: T) {
        st.queue.push_back(msg);
        self.wake_handoff(st);
    }

    /// Unlocks and wakes one committed receiver parked for its message, if any.
    pub(super) fn wake_handoff(&self, mut st: LockGuard<'_, State<T>>) {
        let mut next = st.handoff_waiters.pop_front();
        drop(st);
        while let Some(u) = next {
            if u.unpark() {
                return;
            }
            next = self.lock().handoff_waiters.pop_front();
        }
    }

    /// A committed receiver takes its message, parking until its partner has queued it.
    /// `None` if the partner cancelled instead: the receiver is no longer committed.
    pub(super) fn take_handed(&self) -> Option<T> {
        let mut st = self.lock();
        loop {
            if let Some(msg) = st.queue.pop_front() {
                return Some(msg);
            }
            if st.cancelled > 0 {
                st.cancelled -= 1;
                return None;
            }
            park::park("receiving on a rendezvous channel (the sender is handing the message over)", move |u| {
                st.handoff_waiters.push_back(u);
                drop(st);
            });
            st = self.lock();
        }
    }

    pub(super) fn send_zero(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut st = self.lock();
        if st.receivers == 0 {
            drop(st);
            budget::spend();
            return Err(SendTimeoutError::Disconnected(msg));
        }
        if let Some(receiver) = st.claim_receiver() {
            st.queue.push_back(msg);
            drop(st);
            receiver.wake();
            budget::spend();
            return Ok(());
        }
        if deadline.is_some_and(|at| Instant::now() >= at) {
            drop(st);
            budget::spend();
            return Err(SendTimeoutError::Timeout(msg));
        }
        // Registered under the same lock that found no receiver: one that comes later
        // finds this entry.
        let waiter = Waiter::reuse();
        let packet = Arc::new(Lock::new(Some(msg)));
        st.send_selects.push_back(Entry { waiter: Arc::clone(&waiter), oper: 0, packet: Some(Arc::clone(&packet)) });
        let watchers = st.take_watchers(Side::Receivers);
        drop(st);
        if let Some(w) = watchers {
            w.wake();
        }
        let taken_back = || packet.lock().take().expect("a rendezvous message was neither taken nor left");
        let outcome = match waiter.park("sending on a rendezvous channel (waiting for a receiver)", deadline) {
            Some(s) if s.reserved => Ok(()),
            Some(_) => Err(SendTimeoutError::Disconnected(taken_back())),
            None => {
                self.lock().unregister(Side::Senders, &waiter);
                Err(SendTimeoutError::Timeout(taken_back()))
            }
        };
        Waiter::keep(waiter);
        outcome
    }

    pub(super) fn try_send_zero(&self, msg: T) -> Result<(), TrySendError<T>> {
        let mut st = self.lock();
        if st.receivers == 0 {
            return Err(TrySendError::Disconnected(msg));
        }
        match st.claim_receiver() {
            Some(receiver) => {
                st.queue.push_back(msg);
                drop(st);
                receiver.wake();
                Ok(())
            }
            None => Err(TrySendError::Full(msg)),
        }
    }

    pub(super) fn recv_zero(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut parked = false;
        loop {
            let mut st = self.lock();
            if let Some((sender, msg)) = st.claim_sender(true) {
                drop(st);
                sender.wake();
                let Some(msg) = msg.or_else(|| self.take_handed()) else { continue };
                if !parked {
                    budget::spend();
                }
                return Ok(msg);
            }
            if st.senders == 0 {
                drop(st);
                budget::spend();
                return Err(RecvTimeoutError::Disconnected);
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                drop(st);
                budget::spend();
                return Err(RecvTimeoutError::Timeout);
            }
            let waiter = Waiter::reuse();
            st.recv_selects.push_back(Entry { waiter: Arc::clone(&waiter), oper: 0, packet: None });
            let watchers = st.take_watchers(Side::Senders);
            drop(st);
            if let Some(w) = watchers {
                w.wake();
            }
            parked = true;
            let picked = waiter.park("receiving on a rendezvous channel (waiting for a sender)", deadline);
            if picked.is_none() {
                self.lock().unregister(Side::Receivers, &waiter);
            }
            Waiter::keep(waiter);
            if picked.is_some_and(|s| s.reserved) {
                if let Some(msg) = self.take_handed() {
                    return Ok(msg);
                }
            }
            // Otherwise disconnected or timed out: the next round reports it.
        }
    }

    pub(super) fn try_recv_zero(&self) -> Result<T, TryRecvError> {
        let mut st = self.lock();
        if let Some((sender, msg)) = st.claim_sender(false) {
            drop(st);
            sender.wake();
            return Ok(msg.expect("a rendezvous sender claimed without waiting had no message"));
        }
        if st.senders == 0 {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }
}
