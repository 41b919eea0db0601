//! How a fresh context's first frame is laid out: `Context::init`'s placement of the
//! arguments in registers and spilled stack slots, and the fake call chain through
//! `bootstrap` into the entry function and back into `backstop`.

use core::ffi::c_void;

use super::fp_from_bits;
use crate::context::{Context, Val};
#[cfg(bobbin_asan)]
use crate::stack::asan;
use crate::{arch, Error};

/// General argument registers, in order.
const GP_ARG_REGS: usize = 6;
/// Floating argument registers (xmm0-xmm7).
const FP_ARG_REGS: usize = 8;
/// Words below the spilled arguments: backstop, fptr, six argument values, bootstrap,
/// and under AddressSanitizer the entry that announces the first arrival.
pub(in crate::context) const CHAIN_WORDS: usize = 2 + GP_ARG_REGS + 1 + ASAN_ENTRY_WORDS;
#[cfg(not(bobbin_asan))]
const ASAN_ENTRY_WORDS: usize = 0;
#[cfg(bobbin_asan)]
const ASAN_ENTRY_WORDS: usize = 1;

impl Context {
    pub(in crate::context) fn init_inner(
        stack: &mut [u64],
        child: &mut Context,
        callback: Option<unsafe extern "C" fn(*mut c_void)>,
        data: *mut c_void,
        fptr: usize,
        args: &[Val],
    ) -> Result<(), Error> {
        let mut gp = [0u64; GP_ARG_REGS];
        let mut fp = [0u64; FP_ARG_REGS];
        let (mut ngp, mut nfp, mut nspill) = (0, 0, 0);
        for v in args {
            if v.is_float() {
                if nfp < FP_ARG_REGS {
                    fp[nfp] = v.to_slot();
                    nfp += 1;
                } else {
                    nspill += 1;
                }
            } else if ngp < GP_ARG_REGS {
                gp[ngp] = v.to_slot();
                ngp += 1;
            } else {
                nspill += 1;
            }
        }

        // Words from the spill area to the top: the spilled arguments, rounded up to an
        // even count so the first one sits at a 16-byte boundary (the top is one).
        let spill_words = nspill + (nspill & 1);
        let needed = spill_words + CHAIN_WORDS;
        if needed > stack.len() {
            return Err(Error::StackTooSmall { needed: needed * 8, available: stack.len() * 8 });
        }
        // Checked after the size: an empty slice's address is a placeholder, not memory.
        let top = stack.as_ptr_range().end as usize;
        if !top.is_multiple_of(16) {
            return Err(Error::UnalignedStack { top });
        }
        // Frames abandoned on this memory by an earlier user may have left poisoned
        // redzones behind.
        #[cfg(bobbin_asan)]
        asan::unpoison(asan::Bounds::of_slice(stack));
        let spill = stack.len() - spill_words;

        let (mut seen_gp, mut seen_fp, mut slot) = (0, 0, spill);
        for v in args {
            let in_register = if v.is_float() {
                seen_fp += 1;
                seen_fp <= FP_ARG_REGS
            } else {
                seen_gp += 1;
                seen_gp <= GP_ARG_REGS
            };
            if !in_register {
                stack[slot] = v.to_slot();
                slot += 1;
            }
        }

        stack[spill - 1] = arch::bobbin_context_backstop as *const () as usize as u64;
        stack[spill - 2] = fptr as u64;
        // bootstrap pops rdi first, so the first argument sits lowest.
        for (i, v) in gp.iter().enumerate() {
            stack[spill - 2 - GP_ARG_REGS + i] = *v;
        }
        let sp_index = spill - CHAIN_WORDS;
        stack[sp_index + ASAN_ENTRY_WORDS] = arch::bobbin_context_bootstrap as *const () as usize as u64;
        #[cfg(bobbin_asan)]
        {
            stack[sp_index] = arch::bobbin_asan_context_start as *const () as usize as u64;
        }

        let (mxcsr, fpcw) = arch::fp_control();
        // Drops the old state, and with it any valgrind announcement of its stack.
        *child = Context::new();
        // Up to the top itself, not its last byte: when `fptr` returns, rsp is the top of an
        // exactly sized stack, and valgrind must still see it inside this one.
        child.valgrind_stack = arch::valgrind_stack_register(stack.as_ptr() as usize, top);
        child.regs.gpr.rsp = &stack[sp_index] as *const u64 as u64;
        child.regs.gpr.rbp = child as *mut Context as u64;
        child.regs.mxcsr = mxcsr;
        child.regs.fpcw = fpcw;
        for (reg, bits) in child.regs.fpr.iter_mut().zip(fp) {
            *reg = fp_from_bits(u128::from(bits));
        }
        child.backstop_callback = callback;
        child.backstop_data = data;
        #[cfg(bobbin_asan)]
        {
            child.asan = asan::ContextStack::on(stack);
        }
        Ok(())
    }
}
