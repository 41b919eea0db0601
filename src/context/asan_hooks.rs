//! Under AddressSanitizer: what the assembly of the seed's contexts calls to announce its
//! switches (compiled only under `cfg(bobbin_asan)`).

use super::Context;
use crate::stack::asan;

/// Under AddressSanitizer, called by `bobbin_asan_context_start`: a fresh context has
/// arrived for the first time.
///
/// # Safety
/// `ctx` is the context being entered; its parent is null or the context that swapped
/// into it, both alive.
#[cfg(bobbin_asan)]
#[no_mangle]
unsafe extern "C" fn bobbin_asan_context_started(ctx: *mut Context) {
    // SAFETY: upheld by the caller (the assembly passes the rbp of a fresh context, which
    // is its Context).
    unsafe {
        let parent = (*ctx).parent_ctx;
        asan::context_started(if parent.is_null() { core::ptr::null_mut() } else { &mut (*parent).asan });
    }
}

/// Under AddressSanitizer, called by the backstop before it switches to the parent of a
/// context whose function returned.
///
/// # Safety
/// `ctx` is that context, and its parent null or alive.
#[cfg(bobbin_asan)]
#[no_mangle]
unsafe extern "C" fn bobbin_asan_context_finished(ctx: *const Context) {
    // SAFETY: upheld by the caller (the backstop passes its rbp, the Context).
    unsafe {
        let parent = (*ctx).parent_ctx;
        let to = if parent.is_null() { asan::ContextStack::default() } else { (*parent).asan };
        asan::context_finished(&to);
    }
}

/// Under AddressSanitizer, called by the backstop when its finished context is entered
/// again.
#[cfg(bobbin_asan)]
#[no_mangle]
extern "C" fn bobbin_asan_context_entered_again() {
    asan::context_entered_again();
}
