//! How a fresh context's first frame is laid out on aarch64: `Context::init`'s placement of
//! the arguments in registers and spilled stack slots (AAPCS64), and the registers that
//! start it in `bootstrap` with `backstop` as the entry function's return address.

use core::ffi::c_void;

use super::fp_from_bits;
use crate::context::{Context, Val};
use crate::{arch, Error};

/// General argument registers (x0-x7).
const GP_ARG_REGS: usize = 8;
/// Floating argument registers (v0-v7).
const FP_ARG_REGS: usize = 8;
/// Words below the spilled arguments: the eight general argument values bootstrap loads.
pub(in crate::context) const CHAIN_WORDS: usize = GP_ARG_REGS;

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

        // Every argument this API passes is at most 8 bytes, so each spilled one takes an
        // 8-byte slot, in order, from the callee's sp up; the area is rounded up to an
        // even count of words so that sp is 16-byte aligned at entry (the top is).
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
        // bootstrap loads x0 first, from the lowest word.
        let sp_index = spill - CHAIN_WORDS;
        stack[sp_index..spill].copy_from_slice(&gp);

        let fpcr = arch::fp_control();
        // Drops the old state, and with it any valgrind announcement of its stack.
        *child = Context::new();
        child.valgrind_stack = arch::valgrind_stack_register(stack.as_ptr() as usize, top);
        child.regs.sp = &stack[sp_index] as *const u64 as u64;
        child.regs.lr = arch::bobbin_context_bootstrap as *const () as usize as u64;
        child.regs.x19[0] = child as *mut Context as u64;
        child.regs.x19[1] = fptr as u64;
        child.regs.fpcr = fpcr;
        for (reg, bits) in child.regs.v.iter_mut().zip(fp) {
            *reg = fp_from_bits(u128::from(bits));
        }
        child.backstop_callback = callback;
        child.backstop_data = data;
        Ok(())
    }
}
