//! Finding the running coroutine without its `Yielder`: how a green thread suspends from
//! any depth of calls (`yield_now`, a channel's park) on its own stack, and refuses to from
//! the stack of a coroutine it drives.

use std::any::TypeId;
use std::cell::Cell;
use std::ptr;

use super::Yielder;
use crate::arch;

/// What [`suspend_current`] needs of a discoverable coroutine.
#[derive(Debug)]
pub(super) struct Discover {
    /// The type of its `Yielder`.
    pub(super) type_id: TypeId,
    /// Address of its `Yielder`, set when it starts.
    pub(super) yielder: Cell<usize>,
    /// Its stack's usable range.
    pub(super) stack: std::ops::Range<usize>,
}

thread_local! {
    /// The discoverable coroutine this thread is running (through
    /// [`RawCoroutine::resume_discoverable`]), or null.
    pub(super) static CURRENT: Cell<*const Discover> = const { Cell::new(ptr::null()) };
}

/// The address of the `Yielder` of the innermost running coroutine of this thread, if it
/// was created with [`RawCoroutine::new_discoverable`] with this very `Yielder` type and
/// the caller runs on that coroutine's own stack (not on the stack of another coroutine it
/// is running).
#[inline]
fn current_yielder<I: 'static, Y: 'static>() -> Option<*const Yielder<I, Y>> {
    let current = CURRENT.get();
    if current.is_null() {
        return None;
    }
    // SAFETY: a non-null CURRENT points at the record of the discoverable coroutine this
    // thread is running, live until its resume returns (which is after we return).
    let current = unsafe { &*current };
    // The innermost coroutine may be another one that this one is running: then we are not
    // on the discoverable coroutine's own stack.
    let here = arch::stack_pointer();
    if current.type_id != TypeId::of::<Yielder<I, Y>>() || current.yielder.get() == 0 || !current.stack.contains(&here)
    {
        return None;
    }
    Some(current.yielder.get() as *const Yielder<I, Y>)
}

/// What [`suspend_current`] found, kept to suspend later without looking again: for a
/// caller that must know it can suspend before it changes any state, and then suspends.
///
/// Made only by [`current_suspender`] and used by the same function call, before it
/// returns: while that call is on the coroutine's stack the coroutine is running, so its
/// `Yielder` is alive. Not `Send`, not `Clone`.
pub(crate) struct Suspender<I, Y> {
    yielder: *const Yielder<I, Y>,
    /// The coroutine's stack, to check that it is used there.
    bottom: usize,
    top: usize,
}

/// A [`Suspender`] for the innermost running coroutine, if [`suspend_current`] with these
/// types would suspend it now.
pub(crate) fn current_suspender<I: 'static, Y: 'static>() -> Option<Suspender<I, Y>> {
    let yielder = current_yielder::<I, Y>()?;
    // SAFETY: current_yielder found CURRENT non-null and pointing at the live record of the
    // coroutine this thread runs.
    let stack = unsafe { &(*CURRENT.get()).stack };
    Some(Suspender { yielder, bottom: stack.start, top: stack.end })
}

impl<I, Y> Suspender<I, Y> {
    /// Suspends the coroutine with `val`, as [`suspend_current`] would have, and returns
    /// the next input.
    ///
    /// # Panics
    /// If not called on the coroutine's own stack.
    #[inline]
    pub(crate) fn suspend(self, val: Y) -> I {
        let here = arch::stack_pointer();
        assert!((self.bottom..self.top).contains(&here), "bobbin: a suspender used away from its coroutine's stack");
        // SAFETY: made by current_suspender on this coroutine's stack (checked again just
        // now) and used within the call that made it, so the coroutine is still running
        // and its Yielder<I, Y> lives in its entry frame.
        let yielder = unsafe { &*self.yielder };
        yielder.suspend(val)
    }
}

/// Suspends the innermost running coroutine of this thread with `val`, if it was created
/// with [`RawCoroutine::new_discoverable`] with this very `Yielder` type, and returns the
/// next input. Otherwise (not in a coroutine, or the innermost one is of another kind)
/// hands `val` back.
pub(crate) fn suspend_current<I: 'static, Y: 'static>(val: Y) -> Result<I, Y> {
    let Some(yielder) = current_yielder::<I, Y>() else { return Err(val) };
    // SAFETY: current_yielder checked the type id, so the Yielder stored at this address
    // is a Yielder<I, Y>; it lives in the coroutine's entry frame, below us on this very
    // stack, for as long as the coroutine runs.
    let yielder = unsafe { &*yielder };
    Ok(yielder.suspend(val))
}
