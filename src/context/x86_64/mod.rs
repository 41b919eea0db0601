//! The x86-64 System V part of a [`Context`]: the registers `asm/x86_64_sysv.S` saves and
//! loads, their offsets, and what reads or writes them by name.

use core::arch::x86_64::__m128;
use core::fmt;

#[cfg(bobbin_asan)]
use crate::stack::asan;

use super::Context;

mod init;
#[cfg(test)]
mod tests;

/// A floating argument or return register as the context stores it.
pub(super) type FpReg = __m128;

/// The 128 bits of an xmm register value.
pub(crate) fn fp_to_bits(v: __m128) -> u128 {
    // SAFETY: __m128 and u128 are both 16 bytes of plain data with no invalid bit patterns.
    unsafe { core::mem::transmute::<__m128, u128>(v) }
}

/// An xmm register value from its 128 bits.
pub(crate) fn fp_from_bits(bits: u128) -> __m128 {
    // SAFETY: as for `fp_to_bits`.
    unsafe { core::mem::transmute::<u128, __m128>(bits) }
}

/// Callee-saved general registers, plus rdi and rsi (loaded on entry, so that two values
/// can be handed to a context).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct GpRegs {
    rbx: u64,
    rsp: u64,
    rbp: u64,
    rdi: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rsi: u64,
}

/// The assembly's part of a [`Context`]: general registers, floating-point control words
/// and the floating argument registers of a fresh context.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Regs {
    gpr: GpRegs,
    mxcsr: u32,
    fpcw: u16,
    _pad: u16,
    fpr: [__m128; 8],
}

// Offsets the assembly relies on. The .S file defines the same numbers; a test compares
// them with the `.set` lines there.
pub(crate) const CTX_RBX: usize = 0;
pub(crate) const CTX_RSP: usize = 8;
pub(crate) const CTX_RBP: usize = 16;
pub(crate) const CTX_RDI: usize = 24;
pub(crate) const CTX_R12: usize = 32;
pub(crate) const CTX_R13: usize = 40;
pub(crate) const CTX_R14: usize = 48;
pub(crate) const CTX_R15: usize = 56;
pub(crate) const CTX_RSI: usize = 64;
pub(crate) const CTX_MXCSR: usize = 72;
pub(crate) const CTX_FPCW: usize = 76;
pub(crate) const CTX_XMM0: usize = 80;
pub(crate) const CTX_RETVAL_GP: usize = 208;
pub(crate) const CTX_RETVAL_FP: usize = 224;
pub(crate) const CTX_PARENT: usize = 240;
pub(crate) const CTX_CALLBACK: usize = 248;
pub(crate) const CTX_CALLBACK_DATA: usize = 256;

const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(Context, regs) + offset_of!(Regs, gpr) + offset_of!(GpRegs, rbx) == CTX_RBX);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, gpr) + offset_of!(GpRegs, rsp) == CTX_RSP);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, gpr) + offset_of!(GpRegs, rbp) == CTX_RBP);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, gpr) + offset_of!(GpRegs, rdi) == CTX_RDI);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, gpr) + offset_of!(GpRegs, r12) == CTX_R12);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, gpr) + offset_of!(GpRegs, r13) == CTX_R13);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, gpr) + offset_of!(GpRegs, r14) == CTX_R14);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, gpr) + offset_of!(GpRegs, r15) == CTX_R15);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, gpr) + offset_of!(GpRegs, rsi) == CTX_RSI);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, mxcsr) == CTX_MXCSR);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, fpcw) == CTX_FPCW);
    assert!(offset_of!(Context, regs) + offset_of!(Regs, fpr) == CTX_XMM0);
    assert!(offset_of!(Context, retvals_gp) == CTX_RETVAL_GP);
    assert!(offset_of!(Context, retval_fp) == CTX_RETVAL_FP);
    assert!(offset_of!(Context, parent_ctx) == CTX_PARENT);
    assert!(offset_of!(Context, backstop_callback) == CTX_CALLBACK);
    assert!(offset_of!(Context, backstop_data) == CTX_CALLBACK_DATA);
};

impl Context {
    /// xmm0 of the finished entry function.
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    /// use std::arch::x86_64::_mm_cvtss_f32;
    ///
    /// extern "C" fn half(x: f32) -> f32 {
    ///     x / 2.0
    /// }
    /// let mut stack = vec![0u64; 1024];
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::create_and_init(&mut stack, half as *const () as usize, &[Val::F32(3.0)]).unwrap();
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// // SAFETY: SSE is part of the x86-64 baseline.
    /// assert_eq!(unsafe { _mm_cvtss_f32(child.get_retval_fp()) }, 1.5);
    /// ```
    pub fn get_retval_fp(&self) -> __m128 {
        self.retval_fp
    }

    /// Sets the values rdi and rsi receive when this context is next entered.
    ///
    /// They are seen by code that reads rdi and rsi where the context continues: assembly
    /// that a signal handler or a scheduler switches into, as bobbin's overflow handler
    /// does to tell a coroutine's resumer what happened. A fresh context's arguments come
    /// from its initial frame instead, and Rust code that continues after a
    /// [`Context::swap`] cannot see them.
    ///
    /// # Examples
    /// The entry function of a fresh context gets the arguments given to `init`:
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    ///
    /// extern "C" fn sub(a: u64, b: u64) -> u64 {
    ///     a - b
    /// }
    /// let mut stack = vec![0u64; 1024];
    /// let mut parent = ContextHandle::new();
    /// let args = [Val::U64(50), Val::U64(8)];
    /// let mut child = ContextHandle::create_and_init(&mut stack, sub as *const () as usize, &args).unwrap();
    /// child.set_entry_registers(1, 1);
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert_eq!(child.get_retval_gp(0), 42);
    /// ```
    pub fn set_entry_registers(&mut self, rdi: u64, rsi: u64) {
        self.regs.gpr.rdi = rdi;
        self.regs.gpr.rsi = rsi;
    }

    /// Makes this a context that, when entered, continues at the return address stored at
    /// `sp` with `rsp = sp + 8`, as if a function called from there returned, with the
    /// given MXCSR control bits and x87 control word.
    ///
    /// The one use is the fault handler's way back to the resumer of this thread's
    /// innermost running coroutine, whose link `sp` is: under AddressSanitizer the context
    /// is recorded as running on that resumer's stack, so that the switch is announced as
    /// one to it.
    pub(crate) fn set_return_point(&mut self, sp: usize, mxcsr: u32, fpcw: u16) {
        self.regs.gpr.rsp = sp as u64;
        self.regs.mxcsr = mxcsr;
        self.regs.fpcw = fpcw;
        #[cfg(bobbin_asan)]
        {
            self.asan = asan::ContextStack::of_resumer();
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("rsp", &format_args!("{:#x}", self.regs.gpr.rsp))
            .field("rbp", &format_args!("{:#x}", self.regs.gpr.rbp))
            .field("mxcsr", &format_args!("{:#x}", self.regs.mxcsr))
            .field("fpcw", &format_args!("{:#x}", self.regs.fpcw))
            .field("retvals_gp", &self.retvals_gp)
            .field("parent", &self.parent_ctx)
            .finish_non_exhaustive()
    }
}
