//! The only module with assembly, one file per architecture: the out-of-line context
//! primitives of `asm/`, the inline resume/suspend pair of the coroutine layer, the
//! floating-point control registers and the valgrind client requests. Everything above
//! this module and `context` deals in stack pointers and words, never in registers.
//!
//! Both architectures keep the same protocol between the engine and its coroutines (the
//! layout of the words below a coroutine's stack base, what comes back from a switch);
//! each file says how its registers carry it.

#[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), target_os = "linux")))]
compile_error!("bobbin supports x86-64 and aarch64 Linux only");

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::*;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;

/// What a coroutine's switch back to its resumer reports in place of a stack pointer when
/// it finished.
pub(crate) const SWITCH_FINISHED: usize = 0;
/// ... and when the fault handler abandoned it after a guard-page hit.
pub(crate) const SWITCH_OVERFLOWED: usize = 1;
/// The bit a coroutine's switch back sets in the stack pointer it reports when it relays
/// (see `engine/relay.rs`) rather than yields: the top one, never set in a user-space
/// address on either architecture (the kernel's half of the address space has it), so the
/// tagged word is negative as a signed integer while every other report is positive, and
/// one signed comparison tells a yield from anything else. The word that comes with the
/// stack pointer is then free to carry any value. Set by [`suspend_relaying`] only, so a
/// yield pays nothing for it.
pub(crate) const SWITCH_RELAYED: usize = 1 << (usize::BITS - 1);

/// Offset below a coroutine's stack base of the slot holding its resumer's stack pointer.
pub(crate) const LINK_OFFSET: usize = 8;
/// Offset below a coroutine's stack base of the resumer's floating-point control words,
/// kept there by a coroutine that keeps its own.
pub(crate) const FP_SLOT_OFFSET: usize = 16;
/// Offset below a coroutine's stack base of its initial stack pointer.
pub(crate) const INITIAL_SP_OFFSET: usize = 40;

/// Words of a fresh coroutine's initial frame ([`initial_frame`]).
pub(crate) const INITIAL_FRAME_WORDS: usize = 3;

/// The words a fresh coroutine's stack holds from its initial stack pointer (`base - 40`)
/// up, for an entry function at address `entry`, called as `entry(input, base)`: the start
/// routine the first resume enters, the inner one of a coroutine that keeps its own
/// floating-point control words, and the entry (layout in each architecture's assembly
/// file, `asm/`). The two words above them, the link and the FP slot, are left as they
/// are: the start routine writes each before anything reads it.
pub(crate) fn initial_frame(entry: usize, keeps_fp: bool) -> [usize; INITIAL_FRAME_WORDS] {
    let (start, inner): (unsafe extern "C" fn(), usize) = if keeps_fp {
        (bobbin_coroutine_start_fp, bobbin_coroutine_start_inner as *const () as usize)
    } else {
        (bobbin_coroutine_start, 0)
    };
    [start as *const () as usize, inner, entry]
}

const _: () = assert!(INITIAL_SP_OFFSET - INITIAL_FRAME_WORDS * 8 == FP_SLOT_OFFSET);

/// The low bit of a coroutine's tagged base ([`tagged_base`]): set when the coroutine keeps
/// floating-point control words of its own.
pub(crate) const KEEPS_FP: usize = 1;

/// A coroutine's stack base with its floating-point mode in the low bit, as the fault
/// handler finds it in the stack's tag. A base is 16-byte aligned, so the bit is free.
pub(crate) fn tagged_base(base: usize, keeps_fp: bool) -> usize {
    debug_assert!(base.is_multiple_of(16) && base != 0);
    base | if keeps_fp { KEEPS_FP } else { 0 }
}

/// Valgrind's client-request codes used here (valgrind.h).
const VG_RUNNING_ON_VALGRIND: usize = 0x1001;
const VG_STACK_REGISTER: usize = 0x1501;
const VG_STACK_DEREGISTER: usize = 0x1502;

/// Whether the process runs under valgrind (asked once).
pub(crate) fn on_valgrind() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let on = valgrind_request(0, VG_RUNNING_ON_VALGRIND, 0, 0) != 0;
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// Tells valgrind that `[lowest, highest]` is a stack, so that switching to it is seen as a
/// stack switch rather than a huge frame. Returns valgrind's id for it, or 0 when not
/// running under valgrind.
pub(crate) fn valgrind_stack_register(lowest: usize, highest: usize) -> usize {
    if !on_valgrind() {
        return 0;
    }
    valgrind_request(0, VG_STACK_REGISTER, lowest, highest)
}

/// Forgets a stack registered with [`valgrind_stack_register`] (id 0: nothing to do).
pub(crate) fn valgrind_stack_deregister(id: usize) {
    if id != 0 {
        valgrind_request(0, VG_STACK_DEREGISTER, id, 0);
    }
}
