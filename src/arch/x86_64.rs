//! x86-64 System V: the out-of-line context primitives of `asm/x86_64_sysv.S`, and the
//! inline resume/suspend pair of the coroutine layer.
//!
//! The coroutine switch is asymmetric on purpose. [`resume`] enters the child with a `call`
//! through the child's saved resume address; [`suspend`] leaves with a `ret` that pops
//! exactly the address that `call` pushed, so the return-address predictor is always right
//! on the way back. Both are `#[inline(always)]` with the ABI's clobber list, so the
//! compiler saves only the registers that are live across the switch; rbx and rbp cannot
//! be declared clobbered and are pushed by hand.
//!
//! Floating-point control words come in two modes, fixed per coroutine: shared with the
//! resumer (the default: nothing is read or written) or kept per side. The switch itself
//! is the same in both: a coroutine that keeps its own words is entered through
//! `bobbin_coroutine_start_fp` every time (its saved stack pointer points at that entry),
//! which stores the resumer's words in the stack's FP slot (`base - 16`), loads the
//! coroutine's, and calls on into the coroutine, so that the coroutine's `ret` comes back
//! to it to switch the words back. The mode thus costs the common switch nothing, not even
//! a test.
//!
//! Frame left on the resumer's stack while the child runs (`link` is the resumer's stack
//! pointer, stored at `base - 8` of the child stack; the CFI of the entry points and the
//! fault handler rely on this exact layout):
//!
//! ```text
//! link + 16  saved rbp
//! link + 8   saved rbx
//! link       return address pushed by `call`
//! ```
//!
//! A coroutine that keeps its own words has one more word below: the return address into
//! `bobbin_coroutine_start_fp`, and `link` points at it.
//!
//! The child's suspended frame has the same shape on the child stack, with the resume
//! address in place of the return address; the child's saved stack pointer points at it.
//! The words below the child's stack base are described in `asm/x86_64_sysv.S`
//! ([`initial_frame`] writes them).
//!
//! Registers across a switch: the resumer enters with rdi = one word for the child (the
//! coroutine layer passes the address of the input), rsi = the child's saved stack pointer,
//! rdx = its stack base. Whatever comes back (a [`suspend`], the [`finish`] of the entry
//! function, the fault handler after an overflow) brings rsi = the new saved stack pointer
//! (with [`SWITCH_RELAYED`](super::SWITCH_RELAYED) set after a [`suspend_relaying`]) or
//! [`SWITCH_FINISHED`](super::SWITCH_FINISHED) / [`SWITCH_OVERFLOWED`](super::SWITCH_OVERFLOWED),
//! and rdi = one word for the resumer (the value yielded, or its address, or the address of
//! the value returned).

use core::ffi::c_void;

#[cfg(not(bobbin_asan))]
core::arch::global_asm!(include_str!("../../asm/x86_64_sysv.S"));
// Under AddressSanitizer the seed's entry and backstop also call the hooks that announce
// their switches (context/asan.rs).
#[cfg(bobbin_asan)]
core::arch::global_asm!(".set BOBBIN_ASAN, 1", include_str!("../../asm/x86_64_sysv.S"));

#[allow(improper_ctypes)]
extern "C" {
    /// Saves the callee-saved state into `from`, records it as `to`'s parent, continues in
    /// `to`.
    pub(crate) fn bobbin_context_swap(from: *mut c_void, to: *mut c_void);
    /// Continues in `to`, abandoning the current state.
    pub(crate) fn bobbin_context_set(to: *const c_void) -> !;
    /// First code run by a fresh context. Never called: its address goes on the stack.
    pub(crate) fn bobbin_context_bootstrap();
    /// Return address of a fresh context's entry function. Never called directly.
    pub(crate) fn bobbin_context_backstop();
    /// First code run by a fresh coroutine that shares the resumer's floating-point
    /// control words. Never called directly.
    pub(crate) fn bobbin_coroutine_start();
    /// Every entry and exit of a coroutine that keeps its own. Never called directly.
    pub(crate) fn bobbin_coroutine_start_fp();
    /// The first entry of the latter. Never called directly.
    pub(crate) fn bobbin_coroutine_start_inner();
    /// Under AddressSanitizer, the first code run by a fresh context, before `bootstrap`.
    /// Never called: its address goes on the stack.
    #[cfg(bobbin_asan)]
    pub(crate) fn bobbin_asan_context_start();
}

/// How far above the link a coroutine that keeps its own floating-point control words has
/// its resumer's return address: the link points at the return address into
/// `bobbin_coroutine_start_fp`, which sits below it.
pub(crate) const FP_ENTRY_FRAME: usize = 8;

/// Enters a coroutine and returns when it suspends, finishes or overflows.
///
/// Returns the child's new saved stack pointer, or [`SWITCH_FINISHED`](super::SWITCH_FINISHED) or
/// [`SWITCH_OVERFLOWED`](super::SWITCH_OVERFLOWED), and the word the child handed back with it (see [`suspend`] and
/// [`finish`]; nothing after an overflow).
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
    // asm preserves rbx and rbp by hand and declares every other register the child may
    // change as clobbered; the stack pointer is balanced when control comes back.
    unsafe {
        core::arch::asm!(
            "push rbp",
            "push rbx",
            "call [rsi]",
            "pop rbx",
            "pop rbp",
            inout("rdi") transfer => out,
            inout("rsi") sp => ret,
            inout("rdx") base => _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("sysv64"),
        );
    }
    (ret, out)
}

/// Suspends the running coroutine, handing `transfer` to its resumer (which learns of the
/// suspension through the returned stack pointer), and returns the word the resumer passes
/// at the next [`resume`].
///
/// The same in both floating-point modes: for a coroutine that keeps its own control words,
/// the `ret` returns into `bobbin_coroutine_start_fp`, which switches the words on the
/// resumer's side of the switch.
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
    // The resumer's `call` pushed the return address the `ret` pops; when it enters again
    // (at label 7, which this suspend pushed), rsi holds the stack pointer saved here,
    // untagged, and rdx the base.
    macro_rules! switch {
        ($($tag:literal)?) => {
            core::arch::asm!(
                "push rbp",
                "push rbx",
                "lea rax, [rip + 7f]",
                "push rax",
                "mov rsi, rsp",
                $($tag,)?
                "mov rsp, [rdx - 8]",
                "ret",
                "7:",
                "mov [rdx - 8], rsp",
                "lea rsp, [rsi + 8]",
                "pop rbx",
                "pop rbp",
                inout("rdi") transfer => received,
                inout("rdx") base => _,
                out("rsi") _,
                out("r12") _, out("r13") _, out("r14") _, out("r15") _,
                clobber_abi("sysv64"),
            )
        };
    }
    // SAFETY: the caller guarantees we run on the coroutine stack with this base and a
    // live link; the frame protocol is the one `resume` follows, as above.
    unsafe {
        if RELAYING {
            switch!("bts rsi, 63");
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
    // live link, which points at the return address of the resumer's `call`.
    unsafe {
        core::arch::asm!(
            "mov rsp, [rdx - 8]",
            "xor esi, esi",
            "ret",
            in("rdi") transfer,
            in("rdx") base,
            options(noreturn),
        )
    }
}

/// The stack pointer of the caller: an address on the machine stack it runs on. (The
/// address of a local is not one under AddressSanitizer, which may keep locals on a heap
/// "fake stack".)
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies rsp to a register; reads and writes no memory.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// The current MXCSR and x87 control word.
#[inline]
pub(crate) fn fp_control() -> (u32, u16) {
    let mut mxcsr: u32 = 0;
    let mut fpcw: u16 = 0;
    // SAFETY: stmxcsr and fnstcw only store the control registers to the given locations,
    // which are valid, writable locals.
    unsafe {
        core::arch::asm!(
            "stmxcsr [{m}]",
            "fnstcw [{c}]",
            m = in(reg) &mut mxcsr,
            c = in(reg) &mut fpcw,
            options(nostack, preserves_flags),
        );
    }
    (mxcsr, fpcw)
}

/// Sets the MXCSR register (tests use it to change the rounding mode).
///
/// # Safety
/// Changing MXCSR changes how every following floating-point operation on this thread
/// rounds and traps; unmasking exceptions makes later operations raise SIGFPE.
#[cfg(test)]
pub(crate) unsafe fn set_mxcsr(value: u32) {
    // SAFETY: the caller accepts the effect on later floating-point operations.
    unsafe {
        core::arch::asm!("ldmxcsr [{m}]", m = in(reg) &value, options(nostack, preserves_flags));
    }
}

/// Sets the x87 control word (tests use it to change precision and rounding).
///
/// # Safety
/// Changes how every following x87 operation on this thread rounds and traps;
/// unmasking exceptions makes later operations raise SIGFPE.
#[cfg(test)]
pub(crate) unsafe fn set_fpcw(value: u16) {
    // SAFETY: the caller accepts the effect on later x87 operations.
    unsafe {
        core::arch::asm!("fldcw [{c}]", c = in(reg) &value, options(nostack, preserves_flags));
    }
}

/// Issues a valgrind client request: a sequence of rotations of rdi that add up to a full
/// turn (so the register is unchanged) followed by `xchg rbx, rbx`, which valgrind's
/// translator recognises and natively runs as a no-op. Returns valgrind's answer, or
/// `default` when not running under valgrind.
#[inline]
pub(super) fn valgrind_request(default: usize, request: usize, a1: usize, a2: usize) -> usize {
    let args: [usize; 6] = [request, a1, a2, 0, 0, 0];
    let result: usize;
    // SAFETY: natively the sequence changes only the flags (rdi turns a full 128 bits
    // back to its value, and xchg of rbx with itself changes nothing); under valgrind it
    // reads the six words at rax and writes the answer to rdx, as declared.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") default => result,
            options(nostack),
        );
    }
    result
}

/// Reads the word at `addr` with a plain load that no sanitizer instruments: for the fault
/// handler, which scans stack memory that instrumented frames may have left poisoned.
///
/// # Safety
/// `addr` must be readable and 8-byte aligned.
#[inline]
pub(crate) unsafe fn read_word(addr: usize) -> usize {
    let value: usize;
    // SAFETY: upheld by the caller; the load touches nothing else.
    unsafe {
        core::arch::asm!(
            "mov {v}, qword ptr [{a}]",
            a = in(reg) addr,
            v = out(reg) value,
            options(nostack, readonly, preserves_flags)
        );
    }
    value
}
