//! The only file with assembly: the out-of-line context primitives of
//! `asm/x86_64_sysv.S`, and the inline resume/suspend pair of the coroutine layer.
//!
//! The coroutine switch is asymmetric on purpose. [`resume`] enters the child with a `call`
//! through the child's saved resume address; [`suspend`] leaves with a `ret` that pops
//! exactly the address that `call` pushed, so the return-address predictor is always right
//! on the way back. Both are `#[inline(always)]` with the ABI's clobber list, so the
//! compiler saves only the registers that are live across the switch; rbx and rbp cannot
//! be declared clobbered and are pushed by hand.
//!
//! Floating-point control words come in two modes, fixed per coroutine: shared with the
//! resumer (the default: nothing is read or written) or kept per side. Only the
//! coroutine's side does anything about them, so [`resume`] is the same in both modes: a
//! coroutine that keeps its own words stores the resumer's in its stack's FP slot
//! (`base - 16`) each time it is entered and switches between the two sets itself. The
//! mode travels as the low bit of the base the coroutine's side passes ([`tagged_base`]),
//! and is tested inside the asm, so the compiler sees one shape of switch either way.
//!
//! Frame left on the resumer's stack while the child runs (`link` is the resumer's stack
//! pointer, stored at `base - 8` of the child stack; the CFI of `bobbin_coroutine_start`
//! and the fault handler rely on this exact layout):
//!
//! ```text
//! link + 16  saved rbp
//! link + 8   saved rbx
//! link       return address pushed by `call`
//! ```
//!
//! The child's suspended frame has the same shape on the child stack, with the resume
//! address in place of the return address (and, when it keeps its own control words, a
//! 16-byte block of them between that address and rbx); the child's saved stack pointer
//! points at it.
//!
//! Registers across a switch: the resumer enters with rdi = one word for the child (the
//! coroutine layer passes the address of the input), rsi = the child's saved stack pointer,
//! rdx = its stack base. Whatever comes back (a [`suspend`], the [`finish`] of the entry
//! function, the fault handler after an overflow) brings rsi = the new saved stack pointer
//! or [`SWITCH_FINISHED`] / [`SWITCH_OVERFLOWED`], and rdi = one word for the resumer (the
//! address of the value yielded or returned).

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("bobbin supports x86-64 Linux only (an aarch64 port is planned)");

use core::ffi::c_void;

core::arch::global_asm!(include_str!("../asm/x86_64_sysv.S"));

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
    /// First code run by a fresh coroutine that keeps its own. Never called directly.
    pub(crate) fn bobbin_coroutine_start_fp();
}

/// Switches the floating-point control words from the ones in the 8-byte block at
/// `$current` (MXCSR at +0, x87 control word at +4) to the ones at `$target`, if their control
/// bits differ; `$scratch` is 4 bytes of free memory. Loads only control bits: the current
/// MXCSR status flags are kept, because reloading differing sticky flags is a serialising
/// `ldmxcsr` on every switch. `$cold` and `$back` are distinct label numbers (local ones, so
/// several uses in one asm block can share them).
///
/// Each word is compared with a load of its own width: an 8-byte load of the pair would
/// span the two separate stores that `stmxcsr` and `fnstcw` just made, which the CPU cannot
/// forward, and stalls the switch (measured: 8 ns to 21 ns a round trip). The rare reload
/// lives in a cold section, so the common case runs straight through.
macro_rules! switch_fp_control {
    ($current:literal, $target:literal, $scratch:literal, $cold:literal, $back:literal) => {
        concat!(
            "mov ecx, [",
            $current,
            "]\n",
            "xor ecx, [",
            $target,
            "]\n",
            "test ecx, 0xFFC0\n",
            "jnz ",
            $cold,
            "f\n",
            "mov cx, [",
            $current,
            " + 4]\n",
            "cmp cx, [",
            $target,
            " + 4]\n",
            "jne ",
            $cold,
            "f\n",
            $back,
            ":\n",
            ".pushsection .text.unlikely.bobbin_fp_control,\"ax\",@progbits\n",
            $cold,
            ":\n",
            "mov ecx, [",
            $target,
            "]\n",
            "and ecx, 0xFFC0\n",
            "mov r8d, [",
            $current,
            "]\n",
            "and r8d, 0x3F\n",
            "or ecx, r8d\n",
            "mov [",
            $scratch,
            "], ecx\n",
            "ldmxcsr [",
            $scratch,
            "]\n",
            "fldcw [",
            $target,
            " + 4]\n",
            "jmp ",
            $back,
            "b\n",
            ".popsection\n",
        )
    };
}

/// The cold start of a switch back to the resumer by a coroutine that keeps its own
/// floating-point control words: untags the base in rdx, records this side's words in a
/// 16-byte block pushed on the coroutine's stack (its last 8 bytes scratch), and loads the
/// resumer's from the FP slot (`base - 16`). Uses labels 2 and 3.
macro_rules! leave_own_fp_control {
    () => {
        concat!(
            "and rdx, -2\n",
            "sub rsp, 16\n",
            "stmxcsr [rsp]\n",
            "fnstcw [rsp + 4]\n",
            switch_fp_control!("rsp", "rdx - 16", "rsp + 8", "3", "2"),
        )
    };
}

/// What a coroutine's switch back to its resumer reports in place of a stack pointer when
/// it finished.
pub(crate) const SWITCH_FINISHED: usize = 0;
/// ... and when the fault handler abandoned it after a guard-page hit.
pub(crate) const SWITCH_OVERFLOWED: usize = 1;

/// Offset below a coroutine's stack base of the slot holding its resumer's stack pointer.
pub(crate) const LINK_OFFSET: usize = 8;
/// Offset below a coroutine's stack base of the resumer's floating-point control words
/// (MXCSR, then the x87 control word), kept there by a coroutine that keeps its own.
pub(crate) const FP_SLOT_OFFSET: usize = 16;

/// Enters a coroutine and returns when it suspends, finishes or overflows.
///
/// Returns the child's new saved stack pointer, or [`SWITCH_FINISHED`] or
/// [`SWITCH_OVERFLOWED`], and the word the child handed back with it (see [`suspend`] and
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

/// The low bit of a coroutine's tagged base ([`tagged_base`]): set when the coroutine keeps
/// floating-point control words of its own.
pub(crate) const KEEPS_FP: usize = 1;

/// A coroutine's stack base with its floating-point mode in the low bit, as [`suspend`]
/// takes it and the fault handler finds it in the stack's tag. A base is 16-byte aligned,
/// so the bit is free.
pub(crate) fn tagged_base(base: usize, keeps_fp: bool) -> usize {
    debug_assert!(base.is_multiple_of(16) && base != 0);
    base | if keeps_fp { KEEPS_FP } else { 0 }
}

/// Suspends the running coroutine, handing `transfer` to its resumer (which learns of the
/// suspension through the returned stack pointer), and returns the word the resumer passes
/// at the next [`resume`].
///
/// `tagged` is the coroutine's [`tagged_base`]. The floating-point mode is decided inside
/// the asm: a coroutine that shares the resumer's control words runs straight through a
/// test of the bit, and one that keeps its own takes a branch to a cold section that
/// switches to the resumer's words (kept at `base - 16`) on the way out, records them again
/// on the way back in, and switches back to this side's own. Deciding it here rather than
/// with a branch around two asm blocks leaves the compiler one shape of code to allocate
/// registers for, which is what keeps a generator's loop tight.
///
/// # Safety
/// Must be called on the stack of a running coroutine whose stack base is `tagged` without
/// its low bit and whose link slot (`base - 8`) holds the resumer's stack pointer; with
/// [`KEEPS_FP`] set, the coroutine must have been started by `bobbin_coroutine_start_fp`,
/// which fills the FP slot.
#[inline(always)]
pub(crate) unsafe fn suspend(tagged: usize, transfer: usize) -> usize {
    let received: usize;
    // The resumer's `call` pushed the return address the `ret` pops; when it enters again
    // (at label 7, or 9 in the other mode, whichever this suspend pushed), rsi holds the
    // stack pointer saved here and rdx the untagged base.
    // SAFETY: the caller guarantees we run on the coroutine stack with this base and a
    // live link; the frame protocol is the one `resume` follows, as above.
    unsafe {
        core::arch::asm!(
            "push rbp",
            "push rbx",
            "test dl, 1",
            "jnz 8f",
            "lea rax, [rip + 7f]",
            "5:",
            "push rax",
            "mov rsi, rsp",
            "mov rsp, [rdx - 8]",
            "ret",
            "7:",
            "mov [rdx - 8], rsp",
            "lea rsp, [rsi + 8]",
            "6:",
            "pop rbx",
            "pop rbp",
            ".pushsection .text.unlikely.bobbin_suspend_fp,\"ax\",@progbits",
            "8:",
            leave_own_fp_control!(),
            "lea rax, [rip + 9f]",
            "jmp 5b",
            "9:",
            "mov [rdx - 8], rsp",
            "stmxcsr [rdx - 16]",
            "fnstcw [rdx - 12]",
            "lea rsp, [rsi + 8]",
            switch_fp_control!("rdx - 16", "rsp", "rsp + 8", "3", "2"),
            "add rsp, 16",
            "jmp 6b",
            ".popsection",
            inout("rdi") transfer => received,
            inout("rdx") tagged => _,
            out("rsi") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("sysv64"),
        )
    }
    received
}

/// Leaves a coroutine that has finished for the last time, handing `transfer` to its
/// resumer, which sees [`SWITCH_FINISHED`]. A coroutine that keeps its own floating-point
/// control words switches back to the resumer's first (control bits only, as
/// [`suspend`] does).
///
/// The coroutine's frames stay where they are, so `transfer` may point into them: nothing
/// runs on the coroutine's stack again, and its resumer reads what it needs before it
/// gives the stack back.
///
/// # Safety
/// As for [`suspend`]; the coroutine must never be resumed again.
#[inline(always)]
pub(crate) unsafe fn finish(tagged: usize, transfer: usize) -> ! {
    // SAFETY: the caller guarantees we run on the coroutine stack with this base and a
    // live link, which points at the return address of the resumer's `call`.
    unsafe {
        core::arch::asm!(
            "test dl, 1",
            "jnz 8f",
            "7:",
            "mov rsp, [rdx - 8]",
            "xor esi, esi",
            "ret",
            ".pushsection .text.unlikely.bobbin_finish_fp,\"ax\",@progbits",
            "8:",
            leave_own_fp_control!(),
            "jmp 7b",
            ".popsection",
            in("rdi") transfer,
            in("rdx") tagged,
            options(noreturn),
        )
    }
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

/// Valgrind's client-request codes used here (valgrind.h).
const VG_RUNNING_ON_VALGRIND: usize = 0x1001;
const VG_STACK_REGISTER: usize = 0x1501;
const VG_STACK_DEREGISTER: usize = 0x1502;

/// Issues a valgrind client request: a sequence of rotations of rdi that add up to a full
/// turn (so the register is unchanged) followed by `xchg rbx, rbx`, which valgrind's
/// translator recognises and natively runs as a no-op. Returns valgrind's answer, or
/// `default` when not running under valgrind.
#[inline]
fn valgrind_request(default: usize, request: usize, a1: usize, a2: usize) -> usize {
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
