//! What a select needs of each channel end: [`Operand`], implemented by a receiver (its
//! receive) and a sender (its send), and how a picked operation completes with what was
//! reserved for it.

use std::sync::Arc;

use super::error::{RecvError, SendError};
use super::queue::{Entry, Side};
use super::waiter::Waiter;
use super::{Receiver, Sender};

/// One end of a channel as a select sees it: a receiver's receive or a sender's send.
pub(super) trait Operand {
    /// Performs the operation's claim if it is ready now: reserves its message, room or
    /// partner. `Some(reserved)`; `Some(false)` if it is ready because the channel is
    /// disconnected. Without `may_wait` it claims only what completes at once.
    fn try_select(&self, may_wait: bool) -> Option<bool>;
    /// Lists `waiter` for operation `oper` (as a watcher if the waiter is one), and says
    /// whether the operation could complete now, not counting `waiter`'s own entries:
    /// looked at under the same lock, so an event after it finds the entry.
    fn register(&self, waiter: &Arc<Waiter>, oper: usize) -> bool;
    /// Removes what [`register`](Operand::register) listed, if still there.
    fn unregister(&self, waiter: &Arc<Waiter>);
    /// Whether the operation could complete now.
    fn is_ready(&self) -> bool;
    /// Gives back what a selected operation reserved and will not use.
    fn release(&self, reserved: bool);
}

impl<T> Operand for Receiver<T> {
    fn try_select(&self, may_wait: bool) -> Option<bool> {
        let mut st = self.chan.lock();
        if st.is_zero() {
            if let Some((sender, msg)) = st.claim_sender(may_wait) {
                if let Some(msg) = msg {
                    // Queued for this receiver, which is now committed to one message.
                    st.queue.push_back(msg);
                }
                drop(st);
                sender.wake();
                return Some(true);
            }
        } else if st.free_msgs() > 0 {
            st.reserved_msgs += 1;
            return Some(true);
        }
        (st.senders == 0).then_some(false)
    }

    fn register(&self, waiter: &Arc<Waiter>, oper: usize) -> bool {
        let mut st = self.chan.lock();
        let ready = st.recv_ready(Some(waiter));
        if waiter.watch {
            st.recv_watchers.push((Arc::clone(waiter), oper));
            return ready;
        }
        st.recv_selects.push_back(Entry { waiter: Arc::clone(waiter), oper, packet: None });
        let watchers = if st.is_zero() { st.take_watchers(Side::Senders) } else { None };
        drop(st);
        if let Some(w) = watchers {
            w.wake();
        }
        ready
    }

    fn unregister(&self, waiter: &Arc<Waiter>) {
        self.chan.lock().unregister(Side::Receivers, waiter);
    }

    fn is_ready(&self) -> bool {
        self.chan.lock().recv_ready(None)
    }

    fn release(&self, reserved: bool) {
        if !reserved {
            return;
        }
        let mut st = self.chan.lock();
        if !st.is_zero() {
            st.reserved_msgs -= 1;
            self.chan.notify(st, Side::Receivers);
        }
        // A committed rendezvous receiver that gives up leaves its message queued, to be
        // dropped with the channel: its sender has already been told it was taken.
    }
}

impl<T> Operand for Sender<T> {
    fn try_select(&self, may_wait: bool) -> Option<bool> {
        let _ = may_wait; // a send claims only receivers that are waiting: never waits
        let mut st = self.chan.lock();
        if st.receivers == 0 {
            return Some(false);
        }
        if st.is_zero() {
            let receiver = st.claim_receiver()?;
            drop(st);
            receiver.wake();
            return Some(true);
        }
        if !st.has_room() {
            return None;
        }
        if st.cap.is_some() {
            st.reserved_room += 1;
        }
        Some(true)
    }

    fn register(&self, waiter: &Arc<Waiter>, oper: usize) -> bool {
        let mut st = self.chan.lock();
        let ready = st.send_ready(Some(waiter));
        if waiter.watch {
            st.send_watchers.push((Arc::clone(waiter), oper));
            return ready;
        }
        st.send_selects.push_back(Entry { waiter: Arc::clone(waiter), oper, packet: None });
        let watchers = if st.is_zero() { st.take_watchers(Side::Receivers) } else { None };
        drop(st);
        if let Some(w) = watchers {
            w.wake();
        }
        ready
    }

    fn unregister(&self, waiter: &Arc<Waiter>) {
        self.chan.lock().unregister(Side::Senders, waiter);
    }

    fn is_ready(&self) -> bool {
        self.chan.lock().send_ready(None)
    }

    fn release(&self, reserved: bool) {
        if !reserved {
            return;
        }
        let mut st = self.chan.lock();
        if st.is_zero() {
            // The committed receiver learns that no message will come.
            st.cancelled += 1;
            self.chan.wake_handoff(st);
        } else if st.cap.is_some() {
            st.reserved_room -= 1;
            self.chan.notify(st, Side::Senders);
        }
    }
}

impl<T> Receiver<T> {
    /// Completes a receive that a select picked, with what was reserved for it.
    pub(super) fn complete_recv(&self, reserved: bool) -> Result<T, RecvError> {
        let mut st = self.chan.lock();
        if !reserved {
            // Picked because the channel is disconnected: a plain receive reports it (or
            // takes a message queued before the last sender left).
            drop(st);
            return self.recv();
        }
        if st.is_zero() {
            drop(st);
            return match self.chan.take_handed() {
                Some(msg) => Ok(msg),
                None => self.recv(),
            };
        }
        st.reserved_msgs -= 1;
        let msg = st.queue.pop_front().expect("a reserved message was not queued");
        self.chan.notify(st, Side::Senders);
        Ok(msg)
    }
}

impl<T> Sender<T> {
    /// Completes a send that a select picked, with what was reserved for it.
    pub(super) fn complete_send(&self, msg: T, reserved: bool) -> Result<(), SendError<T>> {
        let mut st = self.chan.lock();
        if !reserved {
            drop(st);
            return self.send(msg);
        }
        if st.is_zero() {
            self.chan.hand_over(st, msg);
            return Ok(());
        }
        if st.cap.is_some() {
            st.reserved_room -= 1;
        }
        self.chan.push(st, msg);
        Ok(())
    }
}
