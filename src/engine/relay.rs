//! Relaying: how code on the stack of a coroutine that a green thread runs (a generator it
//! pulls, at any depth of nesting) parks or yields that green thread.
//!
//! The green thread can only be suspended from its own stack: its switch, the forced
//! unwinding of a dropped green thread, the fault handler and AddressSanitizer's view of
//! the stacks all take the innermost running coroutine to be the one that switches out. So
//! the nested coroutine does not switch to the scheduler. It suspends to its resumer with
//! [`arch::SWITCH_RELAYED`] set in the stack pointer the switch reports, leaving an action
//! behind; the resumer (the `resume` that runs it, on the green thread's stack or on that
//! of an outer nested coroutine) runs the action on its own stack, which parks the green
//! thread there (or relays once more, one level out), and when the action returns resumes
//! the nested coroutine, whose relay then returns. A yield pays nothing for it: the one
//! signed comparison that tells a yield from an end also sends the tagged stack pointer
//! off the yield's path, and the word that comes with a yield carries its value whatever
//! it is.
//!
//! The relaying coroutine is found from its stack pointer through the stacks' tags (the
//! fault handler's registry, starting with the slab this thread last found a stack in), on
//! this slow path only: the hot path records nothing per resume.

use std::any::TypeId;
use std::cell::Cell;
use std::marker::PhantomData;

use super::discover::CURRENT;
use super::{switch_out, Yielder};
use crate::arch;
use crate::stack;

/// What the resumer of a relaying coroutine hands it when it resumes it after the action
/// (the relay needs no input; no value lives at this address), and what the relay hands
/// over with its tagged stack pointer, unread.
pub(super) const RELAYED: usize = usize::MAX;

/// Resumers between a nested coroutine and the green thread, at most: a chain longer than
/// this is not looked through (and a loop in a corrupted one ends).
const MAX_NESTING: usize = 4096;

thread_local! {
    /// The action a coroutine relaying right now left for its resumer: the address of a
    /// `&mut dyn FnMut()` in the relaying frame, or 0. Set and taken on one thread, with no
    /// switch in between other than the relay's own.
    static PENDING: Cell<usize> = const { Cell::new(0) };
}

/// Permission to relay from the innermost running coroutine, found by [`nested_relay`]:
/// for a caller that must know it can park before it changes any state, and then parks.
/// Used by the function call that made it, on the same stack; not `Send`, not `Clone`.
#[derive(Debug)]
pub(crate) struct Relay {
    /// The innermost coroutine's tagged stack base ([`arch::tagged_base`]).
    tag: usize,
    /// Its stack's usable range.
    stack: std::ops::Range<usize>,
    _marker: PhantomData<*mut u8>,
}

/// A [`Relay`] if the caller runs on a coroutine nested, at any depth, in the running
/// discoverable coroutine (a green thread) whose `Yielder` is a `Yielder<I, Y>`: every
/// resumer between them is a coroutine of this crate, so the relay reaches it. `None` on
/// the green thread's own stack (it suspends itself), outside one, or from a stack that is
/// not a coroutine's (a seed `Context`'s, say).
pub(crate) fn nested_relay<I: 'static, Y: 'static>() -> Option<Relay> {
    let current = CURRENT.get();
    if current.is_null() {
        return None;
    }
    // SAFETY: a non-null CURRENT points at the record of the discoverable coroutine this
    // thread is running, live until its resume returns (which is after we return).
    let current = unsafe { &*current };
    if current.type_id != TypeId::of::<Yielder<I, Y>>() || current.yielder.get() == 0 {
        return None;
    }
    let here = arch::stack_pointer();
    if current.stack.contains(&here) {
        return None;
    }
    let (tag, stack) = stack::running_tag(here)?;
    let mut base = tag & !arch::KEEPS_FP;
    for _ in 0..MAX_NESTING {
        // `base` is the base of a running coroutine: first the one this code runs on, then
        // the resumer of the previous one, which is inside its `resume` (its stack holds
        // that link).
        // SAFETY: so its stack is mapped and its link slot holds its resumer's stack pointer.
        let link = unsafe { arch::read_word(base - arch::LINK_OFFSET) };
        if current.stack.contains(&link) {
            return Some(Relay { tag, stack, _marker: PhantomData });
        }
        base = stack::running_tag(link)?.0 & !arch::KEEPS_FP;
    }
    None
}

impl Relay {
    /// Suspends the innermost running coroutine to its resumer, which runs `action` on its
    /// own stack and then resumes it; returns after that. If the coroutine is dropped
    /// meanwhile (the action panicked and the resumer unwound), unwinds instead.
    ///
    /// # Panics
    /// If not called on the stack of the coroutine it was made for.
    pub(crate) fn relay(self, action: &mut dyn FnMut()) {
        let here = arch::stack_pointer();
        assert!(self.stack.contains(&here), "bobbin: a relay used away from its coroutine's stack");
        let mut action = action;
        set_pending(&mut action as *mut &mut dyn FnMut() as usize);
        // We run on the stack of the coroutine whose tagged base is `tag` (checked just
        // now: the relay was made on this stack, for the coroutine running on it, and is
        // used by the same call, so that coroutine is still the one running here). Its
        // resumer takes the action (this frame stays in place until we are resumed) and
        // resumes us with RELAYED, which needs no reading, or UNWIND.
        // SAFETY: so the coroutine's link slot holds its resumer's stack pointer.
        unsafe { switch_out::<true>(self.tag & !arch::KEEPS_FP, RELAYED) };
    }
}

#[inline(never)]
fn set_pending(action: usize) {
    PENDING.set(action);
}

/// Runs the action that the coroutine just resumed left when it relayed.
///
/// Never inlined: the caller goes on after the action, which may have moved the green
/// thread to another worker (a runtime that allows migration), and must not keep an
/// address of this thread's thread-local from before.
#[inline(never)]
pub(super) fn run_pending() {
    let action = PENDING.replace(0);
    assert!(action != 0, "bobbin: a coroutine relayed without an action");
    // SAFETY: the address is that of a `&mut dyn FnMut()` in the frame of the coroutine
    // that relayed, which stays suspended in `Relay::relay` until its resumer (the caller)
    // resumes it: the reference, and what it borrows, are alive, and nothing else uses them.
    let action = unsafe { &mut *(action as *mut &mut dyn FnMut()) };
    action();
}
