//! What scoped green threads (`bobbin::scope`, `Runtime::scope`) need below the scheduler:
//! handing a borrowing body to a scheduler that only takes `'static` ones, and keeping a
//! stack that such bodies borrow from from being given back when it overflows.
//!
//! The scope code (`sched/scope.rs`, `runtime/scope.rs`) is safe Rust; the lifetime erasure
//! is its one unsafe step, and its contract is stated here.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use nix::libc;

/// The body of a scoped green thread for a scheduler on this thread.
type LocalBody<'a> = Box<dyn FnOnce() + 'a>;

/// The body of a scoped green thread that any worker of a runtime may start.
type SendBody<'a> = Box<dyn FnOnce() + Send + 'a>;

/// Lets a scheduler hold `body` as if it borrowed nothing.
///
/// # Safety
/// The caller must make sure that `body` is called or dropped, and that every value it
/// returns or leaves behind is dropped or leaked for good, before anything it borrows
/// (anything of lifetime `'a`) ends, whatever happens meanwhile: a panic, a handle that is
/// leaked, the scheduler that holds it being stopped. A scope does this by waiting, in the
/// scope function itself and on every path out of it, until the body's green thread has
/// reported that it ended, which it does only after the body and its result are gone.
pub(crate) unsafe fn erase_local_body<'a>(body: LocalBody<'a>) -> LocalBody<'static> {
    // SAFETY: only the lifetime bound of the trait object changes (same layout and vtable);
    // the caller keeps the borrows alive for as long as the body can still run or be
    // dropped.
    unsafe { std::mem::transmute::<LocalBody<'a>, LocalBody<'static>>(body) }
}

/// [`erase_local_body`] for a body that may run on another thread.
///
/// # Safety
/// As [`erase_local_body`]: `body` and what it leaves behind must be gone before `'a`
/// ends, on every path, however the runtime that holds it stops.
pub(crate) unsafe fn erase_send_body<'a>(body: SendBody<'a>) -> SendBody<'static> {
    // SAFETY: as in erase_local_body; `Send` is kept, only the lifetime bound changes.
    unsafe { std::mem::transmute::<SendBody<'a>, SendBody<'static>>(body) }
}

/// Addresses on the stacks of scopes that are waiting for, or may still spawn, scoped green
/// threads. Looked at only when a coroutine's stack overflows (the cold path); changed once
/// at the start and once at the end of each scope.
static LOANS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Marks the stack of the calling frame as borrowed by scoped green threads until dropped.
///
/// A coroutine whose stack overflows is abandoned, and its stack given back, without its
/// frames being unwound: the scope waiting on it would never run again, and the green
/// threads borrowing from it would read memory that is gone. While a loan lies in that
/// stack, the overflow aborts the process instead (as a thread's stack overflow does).
#[derive(Debug)]
pub(crate) struct StackLoan {
    at: usize,
}

impl StackLoan {
    /// Lends the stack the caller runs on.
    #[inline(never)]
    pub(crate) fn here() -> StackLoan {
        let marker = 0u8;
        let at = std::hint::black_box(&marker) as *const u8 as usize;
        LOANS.lock().unwrap_or_else(PoisonError::into_inner).push(at);
        StackLoan { at }
    }
}

impl Drop for StackLoan {
    fn drop(&mut self) {
        let mut loans = LOANS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = loans.iter().rposition(|&a| a == self.at) {
            loans.swap_remove(i);
        }
    }
}

/// Called when a coroutine whose stack spans `stack` overflowed, before the stack is given
/// back: aborts the process if scoped green threads borrow from that stack.
pub(super) fn abort_if_lent(stack: Range<usize>) {
    let lent = LOANS.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|a| stack.contains(a));
    if lent {
        eprintln!(
            "bobbin: a stack overflowed while scoped green threads borrowed from it; aborting (its \
             frames cannot be unwound, and they would outlive what they borrow)"
        );
        std::process::abort();
    }
}

/// Whether the caller runs on its OS thread's own stack, not on a coroutine's: there, no
/// coroutine's `Yielder` can be reachable (one is only lent to its own closure, on its own
/// stack), so a scope may run its closure as a green thread of a scheduler of its own.
pub(crate) fn on_thread_stack() -> bool {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_getattr_np initialises `attr` for the calling thread when it
    // succeeds; on failure it is left alone and not used.
    if unsafe { libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) } != 0 {
        return false;
    }
    let (mut low, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: `attr` was initialised just above; the out-pointers are to live locals.
    let found = unsafe { libc::pthread_attr_getstack(attr.as_ptr(), &mut low, &mut size) } == 0;
    // SAFETY: `attr` was initialised by pthread_getattr_np and is destroyed once.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    found && (low as usize..low as usize + size).contains(&here)
}
