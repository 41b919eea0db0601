//! The AAPCS64 part of a [`Context`]: the registers `asm/aarch64.S` saves and loads, their
//! offsets, and what reads or writes them by name.

use core::fmt;

use super::Context;

mod init;
#[cfg(test)]
mod tests;

/// A floating argument or return register (a whole v register) as the context stores it.
pub(super) type FpReg = u128;

/// The 128 bits of a v register value.
pub(crate) fn fp_to_bits(v: u128) -> u128 {
    v
}

/// A v register value from its 128 bits.
pub(crate) fn fp_from_bits(bits: u128) -> u128 {
    bits
}

/// The assembly's part of a [`Context`]: the callee-saved registers, x0 and x1 (loaded on
/// entry, so that two values can be handed to a context), FPCR, and the floating argument
/// registers of a fresh context.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Regs {
    /// x19-x28.
    x19: [u64; 10],
    fp: u64,
    lr: u64,
    sp: u64,
    x0: u64,
    x1: u64,
    fpcr: u64,
    /// d8-d15, the low halves of v8-v15 (the only callee-saved part of them).
    d8: [u64; 8],
    /// v0-v7, loaded by bootstrap.
    v: [u128; 8],
}

// Offsets the assembly relies on. The .S file defines the same numbers; a test compares
// them with the `.set` lines there.
pub(crate) const CTX_X19: usize = 0;
pub(crate) const CTX_FP: usize = 80;
pub(crate) const CTX_LR: usize = 88;
pub(crate) const CTX_SP: usize = 96;
pub(crate) const CTX_X0: usize = 104;
pub(crate) const CTX_FPCR: usize = 120;
pub(crate) const CTX_D8: usize = 128;
pub(crate) const CTX_V0: usize = 192;
pub(crate) const CTX_RETVAL_GP: usize = 320;
pub(crate) const CTX_RETVAL_FP: usize = 336;
pub(crate) const CTX_PARENT: usize = 352;
pub(crate) const CTX_CALLBACK: usize = 360;
pub(crate) const CTX_CALLBACK_DATA: usize = 368;

const _: () = {
    use core::mem::offset_of;
    let regs = offset_of!(Context, regs);
    assert!(regs + offset_of!(Regs, x19) == CTX_X19);
    assert!(regs + offset_of!(Regs, fp) == CTX_FP);
    assert!(regs + offset_of!(Regs, lr) == CTX_LR);
    assert!(regs + offset_of!(Regs, sp) == CTX_SP);
    assert!(regs + offset_of!(Regs, x0) == CTX_X0);
    assert!(regs + offset_of!(Regs, x1) == CTX_X0 + 8);
    assert!(regs + offset_of!(Regs, fpcr) == CTX_FPCR);
    assert!(regs + offset_of!(Regs, d8) == CTX_D8);
    assert!(regs + offset_of!(Regs, v) == CTX_V0);
    assert!(offset_of!(Context, retvals_gp) == CTX_RETVAL_GP);
    assert!(offset_of!(Context, retval_fp) == CTX_RETVAL_FP);
    assert!(offset_of!(Context, parent_ctx) == CTX_PARENT);
    assert!(offset_of!(Context, backstop_callback) == CTX_CALLBACK);
    assert!(offset_of!(Context, backstop_data) == CTX_CALLBACK_DATA);
};

impl Context {
    /// v0 of the finished entry function, all 128 bits: an `f32` return value is in the low
    /// 32, an `f64` in the low 64.
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    ///
    /// extern "C" fn half(x: f32) -> f32 {
    ///     x / 2.0
    /// }
    /// let mut stack = vec![0u64; 1024];
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::create_and_init(&mut stack, half as *const () as usize, &[Val::F32(3.0)]).unwrap();
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert_eq!(f32::from_bits(child.get_retval_fp() as u32), 1.5);
    /// ```
    pub fn get_retval_fp(&self) -> u128 {
        self.retval_fp
    }

    /// Sets the values x0 and x1 receive when this context is next entered.
    ///
    /// They are seen by code that reads x0 and x1 where the context continues: assembly
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
    pub fn set_entry_registers(&mut self, x0: u64, x1: u64) {
        self.regs.x0 = x0;
        self.regs.x1 = x1;
    }

    /// Makes this a context that, when entered, continues at the return address stored at
    /// `sp` with sp unchanged, as the resumer of a coroutine continues after its `blr`,
    /// with the given FPCR.
    ///
    /// The one use is the fault handler's way back to the resumer of this thread's
    /// innermost running coroutine, whose link `sp` is.
    ///
    /// # Safety
    /// `sp` must be readable and 8-byte aligned.
    pub(crate) unsafe fn set_return_point(&mut self, sp: usize, fpcr: u64) {
        self.regs.sp = sp as u64;
        // SAFETY: upheld by the caller.
        self.regs.lr = unsafe { *(sp as *const u64) };
        self.regs.fpcr = fpcr;
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("sp", &format_args!("{:#x}", self.regs.sp))
            .field("fp", &format_args!("{:#x}", self.regs.fp))
            .field("lr", &format_args!("{:#x}", self.regs.lr))
            .field("fpcr", &format_args!("{:#x}", self.regs.fpcr))
            .field("retvals_gp", &self.retvals_gp)
            .field("parent", &self.parent_ctx)
            .finish_non_exhaustive()
    }
}
