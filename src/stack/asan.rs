//! AddressSanitizer's view of the stack switches, compiled only under `cfg(bobbin_asan)`
//! (build.rs sets it when the crate is built with `-Zsanitizer=address`).
//!
//! ASan keeps, per thread, the bounds of the stack it believes the thread runs on and a
//! "fake stack" on which it places the frames of instrumented functions (to find uses of a
//! frame after it returned). Nobody told, it takes code running on a coroutine's stack for
//! code running on the thread's stack: every panic calls `__asan_handle_no_return`, which
//! refuses to clear the redzones of a "stack" gigabytes long ("ignoring
//! __asan_handle_no_return"), and the stale redzones it leaves behind are reported later
//! as stack-buffer-underflow or -overflow where nothing is wrong. Coroutines would also
//! share one fake stack, whose frames are not last-in first-out across switches.
//!
//! So every switch is announced, in two halves: the side that leaves calls
//! `__sanitizer_start_switch_fiber` with the bounds of the stack it switches to and a place
//! for its fake stack (null when it never runs again, so that ASan frees it); the side that
//! arrives calls `__sanitizer_finish_switch_fiber` with the fake stack it left with (null
//! on its first arrival) and learns the bounds of the stack it came from.
//!
//! - A coroutine's bounds come from its [`Stack`]. The coroutine learns its resumer's
//!   bounds each time it arrives and keeps them in the thread-local `RESUMER`: as the
//!   innermost running coroutine of this thread, its suspend, its final switch and the
//!   fault handler after an overflow all find them there. A resume saves and restores the
//!   value around the switch, so that an outer coroutine finds its own again.
//! - A context of the seed API knows its stack from [`Context::init`], or learns it when a
//!   context it started arrives for the first time (it records the bounds of the stack it
//!   came from in its parent).
//! - Code that leaves for good while its own frames may still be on its fake stack (a
//!   fault handler, a [`Context::set`], a seed context that finished) cannot let ASan free
//!   that fake stack before it has switched: it parks it in the thread-local `ABANDONED`,
//!   and the next arrival on this thread frees it.
//!
//! [`Context::init`]: super::Context::init
//! [`Context::set`]: super::Context::set

use core::ffi::c_void;
use std::cell::Cell;
use std::mem::size_of;
use std::ptr;

use crate::stack::Stack;

extern "C" {
    fn __sanitizer_start_switch_fiber(fake_stack_save: *mut *mut c_void, bottom: *const c_void, size: usize);
    fn __sanitizer_finish_switch_fiber(
        fake_stack_save: *mut c_void,
        bottom_old: *mut *const c_void,
        size_old: *mut usize,
    );
    fn __asan_unpoison_memory_region(addr: *const c_void, size: usize);
    fn __asan_handle_no_return();
    fn __lsan_ignore_object(p: *const c_void);
    fn __asan_get_current_fake_stack() -> *mut c_void;
    fn __asan_addr_is_in_fake_stack(
        fake_stack: *mut c_void,
        addr: *mut c_void,
        beg: *mut *mut c_void,
        end: *mut *mut c_void,
    ) -> *mut c_void;
}

/// The bounds of a stack as ASan takes them: lowest address and size. All zero: unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bounds {
    bottom: usize,
    size: usize,
}

impl Bounds {
    /// The usable range of `stack`.
    pub(crate) fn of(stack: &Stack) -> Bounds {
        Bounds { bottom: stack.bottom() as usize, size: stack.size() }
    }

    /// The range of a stack given as a slice.
    pub(crate) fn of_slice(stack: &[u64]) -> Bounds {
        Bounds { bottom: stack.as_ptr() as usize, size: core::mem::size_of_val(stack) }
    }
}

thread_local! {
    /// The bounds of the stack that resumed the innermost running coroutine of this thread.
    static RESUMER: Cell<Bounds> = const { Cell::new(Bounds { bottom: 0, size: 0 }) };
    /// The fake stack of code that left for good and may not have been freed yet.
    static ABANDONED: Cell<*mut c_void> = const { Cell::new(ptr::null_mut()) };
}

/// Announces a switch to the stack `to`, keeping the current fake stack for the return.
#[inline(always)]
fn start(to: Bounds) -> *mut c_void {
    let mut fake_stack = ptr::null_mut();
    // SAFETY: ASan writes the current fake stack to the valid local and records the
    // bounds; nothing is dereferenced. The caller switches right after.
    unsafe { __sanitizer_start_switch_fiber(&mut fake_stack, to.bottom as *const c_void, to.size) };
    fake_stack
}

/// Completes a switch on the arriving side, reinstating `fake_stack` (what [`start`]
/// returned when this side left, or null on its first arrival); returns the bounds of the
/// stack control came from. Frees the fake stack of code that left for good, if any.
#[inline(always)]
fn finish(fake_stack: *mut c_void) -> Bounds {
    let mut bottom: *const c_void = ptr::null();
    let mut size = 0;
    // SAFETY: ASan writes the previous bounds to the valid locals; `fake_stack` is null or
    // the fake stack this side left with, which nobody used meanwhile.
    unsafe { __sanitizer_finish_switch_fiber(fake_stack, &mut bottom, &mut size) };
    let abandoned = ABANDONED.replace(ptr::null_mut());
    if !abandoned.is_null() {
        free_fake_stack(abandoned);
    }
    Bounds { bottom: bottom as usize, size }
}

/// Frees the fake stack of code that will never run again. ASan frees a fake stack only
/// when a switch away from it passes a null save slot, so this one is made current for a
/// moment on this very stack: switch to (no stack) taking it, switch back for good.
#[cold]
#[inline(never)]
fn free_fake_stack(dead: *mut c_void) {
    let mut own = ptr::null_mut();
    let mut bottom: *const c_void = ptr::null();
    let mut size = 0;
    // Four ASan calls on this stack, in the order ASan expects (start, finish, start,
    // finish), with no instrumented code between them. `dead` is a fake stack no code uses
    // any more; the second start frees it, and the last finish reinstates this side's.
    // SAFETY: as just said; every pointer passed is a valid local or null.
    unsafe {
        __sanitizer_start_switch_fiber(&mut own, ptr::null(), 0);
        __sanitizer_finish_switch_fiber(dead, &mut bottom, &mut size);
        __sanitizer_start_switch_fiber(ptr::null_mut(), bottom, size);
        __sanitizer_finish_switch_fiber(own, ptr::null_mut(), ptr::null_mut());
    }
}

/// The resumer's half of a switch into a coroutine: [`Resume::start`] right before,
/// [`Resume::finish`] right after.
#[derive(Debug)]
pub(crate) struct Resume {
    fake_stack: *mut c_void,
    /// `RESUMER` as it was: the value of the coroutine that is resuming, if one is.
    outer: Bounds,
}

impl Resume {
    /// Announces the switch into the coroutine running on `stack`.
    #[inline(always)]
    pub(crate) fn start(stack: &Stack) -> Resume {
        let outer = RESUMER.get();
        Resume { fake_stack: start(Bounds::of(stack)), outer }
    }

    /// Control came back (a suspend, the coroutine's end, or the fault handler after an
    /// overflow, whose abandoned fake stack is freed here).
    #[inline(always)]
    pub(crate) fn finish(self) {
        finish(self.fake_stack);
        RESUMER.set(self.outer);
    }
}

/// The coroutine's half of its first arrival, first thing in its entry function.
///
/// The entry function's own frame was set up before this call, while ASan hands out no
/// fake frames (a switch is in progress): it lies on the coroutine's real stack, which
/// outlives the coroutine's fake stack. That is where the result must be when
/// [`leave_for_good`] frees the fake stack ([`assert_off_fake_stack`] checks it).
#[inline(always)]
pub(crate) fn first_arrival() {
    RESUMER.set(finish(ptr::null_mut()));
}

/// The coroutine's half of a suspend: [`Suspend::start`] right before the switch to the
/// resumer, [`Suspend::finish`] when it is resumed.
#[derive(Debug)]
pub(crate) struct Suspend {
    fake_stack: *mut c_void,
}

impl Suspend {
    /// Announces the switch back to the resumer.
    #[inline(always)]
    pub(crate) fn start() -> Suspend {
        Suspend { fake_stack: start(RESUMER.get()) }
    }

    /// Resumed, perhaps by another resumer (or on another thread): learns its bounds.
    #[inline(always)]
    pub(crate) fn finish(self) {
        RESUMER.set(finish(self.fake_stack));
    }
}

/// Announces the coroutine's last switch, to its resumer: ASan frees its fake stack now.
/// Only frames on the real stack may be used after this (see [`first_arrival`]).
///
/// The frames still on the stack (the entry function's) are abandoned, as by a call that
/// does not return: their redzones are cleared first, as ASan does before such a call, so
/// that the next coroutine on this stack does not meet them. (Every deeper frame returned,
/// or was unwound, which clears its redzones too.)
#[inline(always)]
pub(crate) fn leave_for_good() {
    let to = RESUMER.get();
    // The first call clears the shadow of this stack from just below the current frame to
    // its top, which only this coroutine uses and nothing reads after the switch but the
    // result; the second asks ASan to free the current fake stack (a null save slot).
    // SAFETY: as just said; the caller switches right after, using no fake frame.
    unsafe {
        __asan_handle_no_return();
        __sanitizer_start_switch_fiber(ptr::null_mut(), to.bottom as *const c_void, to.size);
    }
}

/// Announces a switch to `to` by code that never runs again: its fake stack is freed on
/// arrival, when nothing can use it any more.
fn leave_abandoning(to: Bounds) {
    // SAFETY: ASan writes the current fake stack into the thread-local slot, which the next
    // arrival on this thread empties (so it is empty now).
    unsafe { __sanitizer_start_switch_fiber(ABANDONED.with(|a| a.as_ptr()), to.bottom as *const c_void, to.size) };
}

/// Clears stale redzones from `len` bytes at `bottom`: frames abandoned on a stack (a
/// coroutine's last frames, an overflowed coroutine's) leave their redzones poisoned, and
/// the next user of the stack would be reported for touching them.
pub(crate) fn unpoison(bounds: Bounds) {
    // SAFETY: only ASan's shadow of the range changes; the range is memory the caller owns.
    unsafe { __asan_unpoison_memory_region(bounds.bottom as *const c_void, bounds.size) };
}

/// Tells LeakSanitizer that what the frames on `stack` own is leaked on purpose: a
/// coroutine that overflowed is abandoned with its values, which are leaked, not dropped
/// (see `Error::StackOverflow`), and would otherwise be reported at exit. Every heap object a
/// word of the stack points into is marked, and with it everything reachable from it. A
/// stale word that happens to point at a live object hides that object from the leak
/// check; that is the price of not knowing where the abandoned frames' values lie.
pub(crate) fn leak_abandoned_frames(stack: &Stack) {
    let bounds = Bounds::of(stack);
    // The abandoned frames' redzones are still poisoned, and every word is read here.
    unpoison(bounds);
    let words = bounds.bottom as *const usize;
    for i in 0..bounds.size / size_of::<usize>() {
        // SAFETY: the stack's usable range is mapped, readable and no longer in use (its
        // coroutine is abandoned); the index stays inside it.
        let word = unsafe { words.add(i).read() };
        if word != 0 {
            // SAFETY: LeakSanitizer looks the value up among its heap chunks and ignores
            // one that is not a heap address.
            unsafe { __lsan_ignore_object(word as *const c_void) };
        }
    }
}

/// Panics if `addr` lies on the current fake stack: see [`first_arrival`].
#[inline(always)]
pub(crate) fn assert_off_fake_stack(addr: usize) {
    // SAFETY: both calls only look the address up in ASan's records.
    let on_fake = unsafe {
        !__asan_addr_is_in_fake_stack(
            __asan_get_current_fake_stack(),
            addr as *mut c_void,
            ptr::null_mut(),
            ptr::null_mut(),
        )
        .is_null()
    };
    assert!(!on_fake, "a coroutine's result lies on its fake stack, which ASan frees before the resumer reads it");
}

/// A seed [`Context`](super::Context)'s record for ASan: the bounds of the stack it runs
/// on, when known.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ContextStack {
    bounds: Bounds,
}

impl ContextStack {
    /// The record of a context that will run on `stack`.
    pub(crate) fn on(stack: &[u64]) -> ContextStack {
        ContextStack { bounds: Bounds::of_slice(stack) }
    }

    /// The record of a context that returns into the resumer of this thread's innermost
    /// running coroutine: how the fault handler leaves a coroutine that overflowed. The
    /// handler's frames may lie on that coroutine's fake stack, which is why a
    /// [`context_set`] parks it instead of letting ASan free it at once.
    pub(crate) fn of_resumer() -> ContextStack {
        ContextStack { bounds: RESUMER.get() }
    }
}

/// The leaving half of a seed `Context::swap` into a context whose record is `to`; the
/// result goes to [`context_swapped_back`] when the swap returns.
#[inline(always)]
pub(crate) fn context_swap_start(to: &ContextStack) -> *mut c_void {
    start(to.bounds)
}

/// The arriving half of a seed `Context::swap`, back in the context that swapped out.
#[inline(always)]
pub(crate) fn context_swapped_back(fake_stack: *mut c_void) {
    finish(fake_stack);
}

/// A seed `Context::set` (or `set_from_signal`) to a context whose record is `to`: the
/// current code never runs again.
#[inline(always)]
pub(crate) fn context_set(to: &ContextStack) {
    leave_abandoning(to.bounds);
}

/// First arrival in a fresh seed context (called by the assembly before `bootstrap`):
/// completes the switch and records the bounds of the stack it came from in the context
/// that started this one, which will need them to be switched back to.
///
/// # Safety
/// `parent` is null or the context that swapped into this one, alive.
pub(crate) unsafe fn context_started(parent: *mut ContextStack) {
    let came_from = finish(ptr::null_mut());
    // SAFETY: upheld by the caller.
    if let Some(parent) = unsafe { parent.as_mut() } {
        parent.bounds = came_from;
    }
}

/// A seed context whose function returned leaves for its parent, whose record is `to`
/// (called by the backstop).
pub(crate) fn context_finished(to: &ContextStack) {
    leave_abandoning(to.bounds);
}

/// A finished seed context was entered again (it switches straight back to its parent).
pub(crate) fn context_entered_again() {
    finish(ptr::null_mut());
}
