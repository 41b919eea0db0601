//! How a green thread gives control back to its scheduler from wherever its code runs: on
//! its own stack it suspends itself; on the stack of a coroutine or generator it runs (at
//! any depth) the suspension is relayed to its own stack (`engine/relay.rs`). The parking
//! entry points of [`super`] live here; `sched::park` builds every wait on them.

use std::sync::Arc;

use super::{on_green_thread, with_local, Signal, TaskHeader};
use crate::coroutine::{self, Relay, Suspender};

/// A reference to the header of the green thread running on this thread, if any, for the
/// unparker of a park that is about to begin: the spare one its last wake-up left, or a new
/// one.
///
/// The caller may run on the green thread's own stack, or on that of a coroutine or
/// generator it runs (at any depth): then the park is relayed to the green thread's stack
/// (`engine/relay.rs`), and the nested coroutine continues when the green thread does.
///
/// # Panics
/// If a green thread runs but the caller is on a stack from which no relay reaches it (a
/// seed `Context` it switched to, say). The panic comes before any state is changed, so a
/// caller that catches it finds the green thread as it was.
pub(crate) fn parking_task() -> Option<(Arc<TaskHeader>, ParkSuspender)> {
    let suspender = match coroutine::current_suspender::<(), Signal>() {
        Some(own) => ParkSuspender::Own(own),
        None => match coroutine::nested_relay::<(), Signal>() {
            Some(relay) => ParkSuspender::Nested(relay),
            None => {
                if on_green_thread() {
                    not_on_green_thread_stack();
                }
                return None;
            }
        },
    };
    // The suspender is a green thread's: its scheduler runs on this thread.
    let task = with_local(|local| {
        let id = local.current.get()?;
        let mut tasks = local.tasks.borrow_mut();
        let slot = tasks[id].as_mut()?;
        Some(slot.spare_ref.take().unwrap_or_else(|| Arc::clone(&slot.header)))
    })
    .flatten()?;
    Some((task, suspender))
}

/// What [`parking_task`] found out about suspending the green thread, for
/// [`suspend_parked`]: to be used by the park that asked, before it returns.
pub(crate) enum ParkSuspender {
    /// The park runs on the green thread's own stack.
    Own(Suspender<(), Signal>),
    /// It runs on a coroutine nested in the green thread: relay.
    Nested(Relay),
}

/// Suspends the current green thread to park; the scheduler parks it unless its unparker
/// already fired.
pub(crate) fn suspend_parked(suspender: ParkSuspender, reason: &'static str) {
    match suspender {
        ParkSuspender::Own(own) => {
            own.suspend(Signal::Park(reason));
        }
        ParkSuspender::Nested(relay) => relay.relay(&mut || suspend_relayed(Signal::Park(reason))),
    }
}

/// Gives `signal` to the scheduler from the stack a relay brought it to: the green
/// thread's own, or that of an outer nested coroutine, which relays once more. The chain
/// was checked before the park changed any state ([`parking_task`]), so it holds.
fn suspend_relayed(signal: Signal) {
    if coroutine::suspend_current::<(), Signal>(signal).is_err() {
        match coroutine::nested_relay::<(), Signal>() {
            Some(relay) => relay.relay(&mut || suspend_relayed(signal)),
            None => unreachable!("bobbin: a relayed park lost its way to the green thread"),
        }
    }
}

/// Puts the current green thread at the back of the run queue. Outside a green thread,
/// yields the OS thread.
pub(crate) fn yield_now() {
    if !yield_if_on_green_thread() {
        if on_green_thread() {
            not_on_green_thread_stack();
        }
        std::thread::yield_now();
    }
}

/// Yields if the caller runs on a green thread's stack, or on a coroutine nested in one
/// (relayed); false (and does nothing) otherwise. (Only a green thread's own coroutine
/// accepts a Signal.)
pub(crate) fn yield_if_on_green_thread() -> bool {
    if coroutine::suspend_current::<(), Signal>(Signal::Yield).is_ok() {
        return true;
    }
    match coroutine::nested_relay::<(), Signal>() {
        Some(relay) => {
            relay.relay(&mut || suspend_relayed(Signal::Yield));
            true
        }
        None => false,
    }
}

#[cold]
fn not_on_green_thread_stack() -> ! {
    panic!(
        "bobbin: a green thread can only yield or block from its own stack or from a \
         coroutine or generator it runs, not from a stack it switched to by other means"
    );
}
