//! AAPCS64 (aarch64 Linux): the out-of-line context primitives of `asm/aarch64.S`, and the
//! inline resume/suspend pair of the coroutine layer.
//!
//! The coroutine switch is asymmetric, as on x86-64. [`resume`] enters the child with a
//! `blr` through the child's saved resume address; [`suspend`] leaves with a `ret` to the
//! address that `blr` put in x30, so the return-address stack predicts the way back. The
//! child keeps that address in the resumer's frame, since x30 does not survive the child's
//! own calls. Both are `#[inline(always)]` with the ABI's clobber list, so the compiler
//! saves only the registers that are live across the switch; x19 and x29 cannot be declared
//! clobbered and are saved by hand.
//!
//! FPCR, the floating-point control register, is shared with the resumer or kept per
//! coroutine exactly as the x86-64 control words are (see `asm/aarch64.S`): a coroutine that
//! keeps its own is entered through `bobbin_coroutine_start_fp` every time.
//!
//! Frame left on the resumer's stack while the child runs (`link` is the resumer's stack
//! pointer, stored at `base - 8` of the child stack; the CFI of the entry points and the
//! fault handler rely on this exact layout):
//!
//! ```text
//! link + 24  saved x29
//! link + 16  saved x19
//! link + 8   (unused)
//! link       return address, stored by whatever `blr` entered
//! ```
//!
//! A coroutine that keeps its own FPCR has 16 more bytes below: the return address into
//! `bobbin_coroutine_start_fp`, and `link` points at it.
//!
//! The child's suspended frame has the same shape on the child stack, with the resume
//! address in place of the return address; the child's saved stack pointer points at it.
//!
//! Registers across a switch: the resumer enters with x0 = one word for the child (the
//! coroutine layer passes the address of the input), x1 = the child's saved stack pointer,
//! x2 = its stack base. Whatever comes back (a [`suspend`], the [`finish`] of the entry
//! function, the fault handler after an overflow) brings x1 = the new saved stack pointer
//! (with [`SWITCH_RELAYED`](super::SWITCH_RELAYED) set after a [`suspend_relaying`]) or
//! [`SWITCH_FINISHED`](super::SWITCH_FINISHED) /
//! [`SWITCH_OVERFLOWED`](super::SWITCH_OVERFLOWED), and x0 = one word for the resumer (the
//! value yielded, or its address, or the address of the value returned).

#[cfg(bobbin_asan)]
compile_error!("bobbin's AddressSanitizer support exists on x86-64 only");

use core::ffi::c_void;

core::arch::global_asm!(include_str!("../../asm/aarch64.S"));

#[allow(improper_ctypes)]
extern "C" {
    /// Saves the callee-saved state into `from`, records it as `to`'s parent, continues in
    /// `to`.
    pub(crate) fn bobbin_context_swap(from: *mut c_void, to: *mut c_void);
    /// Continues in `to`, abandoning the current state.
    pub(crate) fn bobbin_context_set(to: *const c_void) -> !;
    /// First code run by a fresh context. Never called: its address is the context's
    /// saved x30.
    pub(crate) fn bobbin_context_bootstrap();
    /// First code run by a fresh coroutine that shares the resumer's FPCR. Never called
    /// directly.
    pub(crate) fn bobbin_coroutine_start();
    /// Every entry and exit of a coroutine that keeps its own. Never called directly.
    pub(crate) fn bobbin_coroutine_start_fp();
    /// The first entry of the latter. Never called directly.
    pub(crate) fn bobbin_coroutine_start_inner();
}

/// How far above the link a coroutine that keeps its own FPCR has its resumer's frame: the
/// link points at the 16 bytes `bobbin_coroutine_start_fp` reserves below it.
pub(crate) const FP_ENTRY_FRAME: usize = 16;

/// Enters a coroutine and returns when it suspends, finishes or overflows.
///
/// Returns the child's new saved stack pointer, or
/// [`SWITCH_FINISHED`](super::SWITCH_FINISHED) or
/// [`SWITCH_OVERFLOWED`](super::SWITCH_OVERFLOWED), and the word the child handed back with
/// it (see [`suspend`] and [`finish`]; nothing after an overflow).
///
/// # Safety
/// `sp` must be the saved stack pointer of a coroutine that is not running (its initial
/// one, or the last value returned by this function for it), `base` the base of that
/// coroutine's stack, and `transfer` whatever that coroutine's code expects to receive.
#[inline(always)]
pub(crate) unsafe fn resume(transfer: usize, sp: usize, base: usize) -> (usize, usize) {
    let ret: usize;
    let out: usize;
    // SAFETY: the caller guarantees `sp` and `base` describe a suspended coroutine. The
    // asm preserves x19 and x29 by hand and declares every other register the child may
    // change as clobbered; the stack pointer is balanced when control comes back.
    unsafe {
        core::arch::asm!(
            "sub sp, sp, #32",
            "stp x19, x29, [sp, #16]",
            "ldr x3, [x1]",
            "blr x3",
            "ldp x19, x29, [sp, #16]",
            "add sp, sp, #32",
            inout("x0") transfer => out,
            inout("x1") sp => ret,
            inout("x2") base => _,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            clobber_abi("C"),
        );
    }
    (ret, out)
}

/// Suspends the running coroutine, handing `transfer` to its resumer (which learns of the
/// suspension through the returned stack pointer), and returns the word the resumer passes
/// at the next [`resume`].
///
/// The same in both floating-point modes: for a coroutine that keeps its own FPCR, the
/// `ret` returns into `bobbin_coroutine_start_fp`, which switches it on the resumer's side.
///
/// # Safety
/// Must be called on the stack of a running coroutine whose stack base is `base` and whose
/// link slot (`base - 8`) holds the resumer's stack pointer.
#[inline(always)]
pub(crate) unsafe fn suspend(base: usize, transfer: usize) -> usize {
    // SAFETY: upheld by the caller.
    unsafe { suspend_tagged::<false>(base, transfer) }
}

/// [`suspend`] for a relay: the resumer receives the stack pointer with
/// [`SWITCH_RELAYED`](super::SWITCH_RELAYED) set, and gives it back without it.
///
/// # Safety
/// As for [`suspend`].
#[inline(always)]
pub(crate) unsafe fn suspend_relaying(base: usize, transfer: usize) -> usize {
    // SAFETY: upheld by the caller.
    unsafe { suspend_tagged::<true>(base, transfer) }
}

/// The two suspends, which differ by the one instruction that tags a relay's stack pointer.
///
/// # Safety
/// As for [`suspend`].
#[inline(always)]
unsafe fn suspend_tagged<const RELAYING: bool>(base: usize, transfer: usize) -> usize {
    let received: usize;
    // The resumer's `blr` left its return address at the link; when it enters again (at
    // label 7, whose address this suspend leaves where its saved stack pointer points) x1
    // holds that stack pointer, untagged, x2 the base and x30 the resumer's new return
    // address.
    macro_rules! switch {
        ($($tag:literal)?) => {
            core::arch::asm!(
                "sub sp, sp, #32",
                "stp x19, x29, [sp, #16]",
                "adr x3, 7f",
                "str x3, [sp]",
                "mov x1, sp",
                $($tag,)?
                "ldr x3, [x2, #-8]",
                "ldr x30, [x3]",
                "mov sp, x3",
                "ret",
                "7:",
                "str x30, [sp]",
                "mov x3, sp",
                "str x3, [x2, #-8]",
                "ldp x19, x29, [x1, #16]",
                "add sp, x1, #32",
                inout("x0") transfer => received,
                inout("x2") base => _,
                out("x1") _,
                out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
                out("x25") _, out("x26") _, out("x27") _, out("x28") _,
                clobber_abi("C"),
            )
        };
    }
    // SAFETY: the caller guarantees we run on the coroutine stack with this base and a
    // live link; the frame protocol is the one `resume` follows, as above.
    unsafe {
        if RELAYING {
            switch!("orr x1, x1, #0x8000000000000000");
        } else {
            switch!();
        }
    }
    received
}

/// Leaves a coroutine that has finished for the last time, handing `transfer` to its
/// resumer, which sees [`SWITCH_FINISHED`](super::SWITCH_FINISHED).
///
/// The coroutine's frames stay where they are, so `transfer` may point into them: nothing
/// runs on the coroutine's stack again, and its resumer reads what it needs before it
/// gives the stack back.
///
/// # Safety
/// As for [`suspend`]; the coroutine must never be resumed again.
#[inline(always)]
pub(crate) unsafe fn finish(base: usize, transfer: usize) -> ! {
    // SAFETY: the caller guarantees we run on the coroutine stack with this base and a
    // live link, which points at the return address the resumer's `blr` produced.
    unsafe {
        core::arch::asm!(
            "ldr x3, [x2, #-8]",
            "ldr x30, [x3]",
            "mov sp, x3",
            "mov x1, #0",
            "ret",
            in("x0") transfer,
            in("x2") base,
            options(noreturn),
        )
    }
}

/// The stack pointer of the caller: an address on the machine stack it runs on. (The
/// address of a local is not one under AddressSanitizer, which may keep locals on a heap
/// "fake stack".) The same function as on x86-64, for the layers that find the running
/// coroutine by the stack it runs on.
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies sp to a register; reads and writes no memory.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// The current FPCR.
#[inline]
pub(crate) fn fp_control() -> u64 {
    let fpcr: u64;
    // SAFETY: reading FPCR has no effect beyond the output register.
    unsafe {
        core::arch::asm!("mrs {v}, fpcr", v = out(reg) fpcr, options(nomem, nostack, preserves_flags));
    }
    fpcr
}

/// Sets FPCR (tests use it to change the rounding mode).
///
/// # Safety
/// Changing FPCR changes how every following floating-point operation on this thread
/// rounds and flushes.
#[cfg(test)]
pub(crate) unsafe fn set_fpcr(value: u64) {
    // SAFETY: the caller accepts the effect on later floating-point operations.
    unsafe {
        core::arch::asm!("msr fpcr, {v}", v = in(reg) value, options(nomem, nostack, preserves_flags));
    }
}

/// The current FPSR, whose bits are the sticky status flags (tests check they are shared).
#[cfg(test)]
pub(crate) fn fp_status() -> u64 {
    let fpsr: u64;
    // SAFETY: reading FPSR has no effect beyond the output register.
    unsafe {
        core::arch::asm!("mrs {v}, fpsr", v = out(reg) fpsr, options(nomem, nostack, preserves_flags));
    }
    fpsr
}

/// Sets FPSR (tests clear the status flags with it).
///
/// # Safety
/// Changes the sticky status flags every later reader of this thread sees.
#[cfg(test)]
pub(crate) unsafe fn set_fp_status(value: u64) {
    // SAFETY: the caller accepts the effect on later readers.
    unsafe {
        core::arch::asm!("msr fpsr, {v}", v = in(reg) value, options(nomem, nostack, preserves_flags));
    }
}

/// Issues a valgrind client request: rotations of x12 that add up to a full turn (so the
/// register is unchanged) followed by `orr x10, x10, x10`, which valgrind's translator
/// recognises. Returns valgrind's answer, or `default` when not running under valgrind.
#[inline]
pub(super) fn valgrind_request(default: usize, request: usize, a1: usize, a2: usize) -> usize {
    let args: [usize; 6] = [request, a1, a2, 0, 0, 0];
    let result: usize;
    // SAFETY: natively the sequence changes nothing (x12 turns a full 128 bits back to its
    // value, and x10 is or-ed with itself); under valgrind it reads the six words at x4 and
    // writes the answer to x3, as declared.
    unsafe {
        core::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #51",
            "ror x12, x12, #61",
            "orr x10, x10, x10",
            in("x4") args.as_ptr(),
            inout("x3") default => result,
            options(nostack),
        );
    }
    result
}

/// Reads the word at `addr` with a plain load: for the fault handler, which scans stack
/// memory for signal frames.
///
/// # Safety
/// `addr` must be readable and 8-byte aligned.
#[inline]
pub(crate) unsafe fn read_word(addr: usize) -> usize {
    let value: usize;
    // SAFETY: upheld by the caller; the load touches nothing else.
    unsafe {
        core::arch::asm!(
            "ldr {v}, [{a}]",
            a = in(reg) addr,
            v = out(reg) value,
            options(nostack, readonly, preserves_flags)
        );
    }
    value
}
