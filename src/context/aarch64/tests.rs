//! Unit tests of the aarch64 context layer that need crate internals.
use super::*;

#[test]
fn offsets_match_the_assembly() {
    let asm = include_str!("../../../asm/aarch64.S");
    let expected = [
        ("BOBBIN_CTX_X19", CTX_X19),
        ("BOBBIN_CTX_FP", CTX_FP),
        ("BOBBIN_CTX_LR", CTX_LR),
        ("BOBBIN_CTX_SP", CTX_SP),
        ("BOBBIN_CTX_X0", CTX_X0),
        ("BOBBIN_CTX_FPCR", CTX_FPCR),
        ("BOBBIN_CTX_D8", CTX_D8),
        ("BOBBIN_CTX_V0", CTX_V0),
        ("BOBBIN_CTX_RETVAL_GP", CTX_RETVAL_GP),
        ("BOBBIN_CTX_RETVAL_FP", CTX_RETVAL_FP),
        ("BOBBIN_CTX_PARENT", CTX_PARENT),
        ("BOBBIN_CTX_CALLBACK", CTX_CALLBACK),
        ("BOBBIN_CTX_CALLBACK_DATA", CTX_CALLBACK_DATA),
    ];
    for (name, value) in expected {
        let line = asm
            .lines()
            .find(|l| l.starts_with(&format!(".set {name},")))
            .unwrap_or_else(|| panic!("{name} is not defined in the assembly"));
        let asm_value: usize = line.split(',').nth(1).unwrap().trim().parse().unwrap();
        assert_eq!(asm_value, value, "{name}: assembly says {asm_value}, Rust says {value}");
    }
    // The backstop's CFI encodes the parent's offset by hand: DW_OP_breg19 352 is
    // 0x83 0xe0 0x02.
    assert_eq!(CTX_PARENT, 0x60 | (2 << 7));
    assert!(asm.contains("0x83, 0xe0, 0x02"));
}

use crate::arch;
use crate::context::ContextHandle;

struct Pair {
    parent: ContextHandle,
    child: ContextHandle,
}

thread_local! {
    static PAIR: core::cell::Cell<*mut Pair> = const { core::cell::Cell::new(core::ptr::null_mut()) };
}

/// FPCR rounding mode (RMode, bits 22-23).
const RMODE_MASK: u64 = 0xC0_0000;
/// Round toward minus infinity.
const RMODE_DOWN: u64 = 0x80_0000;
/// Round toward plus infinity.
const RMODE_UP: u64 = 0x40_0000;

fn set_rounding(mode: u64) {
    // SAFETY: changes only the rounding-mode bits.
    unsafe { arch::set_fpcr((arch::fp_control() & !RMODE_MASK) | mode) };
}

/// Sets the rounding mode, switches back to the parent, and when entered again returns the
/// rounding mode it finds then.
extern "C" fn changes_rounding() -> u64 {
    let pair = PAIR.with(|p| p.get());
    set_rounding(RMODE_DOWN);
    // Raise the inexact flag too: status flags are shared, not restored.
    core::hint::black_box(core::hint::black_box(1.0f64) / 3.0);
    // SAFETY: the pair outlives both contexts and only one of them runs at a time.
    unsafe { Context::swap(&mut (*pair).child, &mut (*pair).parent) };
    arch::fp_control() & RMODE_MASK
}

#[test]
fn rounding_mode_does_not_leak_between_contexts() {
    let mut stack = crate::stack::Stack::new(32 * 1024).unwrap();
    let mut pair = Box::new(Pair { parent: ContextHandle::new(), child: ContextHandle::new() });
    Context::init(stack.words_mut(), &mut pair.child, changes_rounding as *const () as usize, &[]).unwrap();
    PAIR.with(|p| p.set(&mut *pair));
    let before = arch::fp_control();
    let p: *mut Pair = &mut *pair;
    // SAFETY: the stack and the pair outlive the child; the child swaps back here.
    unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
    assert_eq!(arch::fp_control(), before, "the child's rounding mode leaked");
    set_rounding(RMODE_UP);
    // SAFETY: as above; this time the child returns through the backstop.
    unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
    assert_eq!(pair.child.get_retval_gp(0), RMODE_DOWN, "the child lost its rounding mode");
    assert_eq!(arch::fp_control() & RMODE_MASK, RMODE_UP, "the parent lost its rounding mode");
    // SAFETY: restores the FPCR this test found.
    unsafe { arch::set_fpcr(before) };
}

/// FPSR inexact flag (IXC).
const FPSR_IXC: u64 = 0x10;

/// Returns whether the inexact flag was clear on entry; raises it, swaps back, and when
/// entered again returns whether it was clear then.
extern "C" fn raises_inexact() -> u64 {
    let pair = PAIR.with(|p| p.get());
    let clear_on_entry = arch::fp_status() & FPSR_IXC == 0;
    core::hint::black_box(core::hint::black_box(1.0f64) / 3.0);
    // SAFETY: the pair outlives both contexts and only one of them runs at a time.
    unsafe { Context::swap(&mut (*pair).child, &mut (*pair).parent) };
    let clear_again = arch::fp_status() & FPSR_IXC == 0;
    u64::from(clear_on_entry) | u64::from(clear_again) << 1
}

#[test]
fn status_flags_are_shared_between_contexts() {
    let mut stack = crate::stack::Stack::new(32 * 1024).unwrap();
    let mut pair = Box::new(Pair { parent: ContextHandle::new(), child: ContextHandle::new() });
    Context::init(stack.words_mut(), &mut pair.child, raises_inexact as *const () as usize, &[]).unwrap();
    PAIR.with(|p| p.set(&mut *pair));
    let p: *mut Pair = &mut *pair;
    // SAFETY: clears the sticky flags only.
    unsafe { arch::set_fp_status(0) };
    // SAFETY: the stack and the pair outlive the child; the child swaps back here.
    unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
    // The flag the child raised is the parent's too: FPSR is not part of a context.
    assert_ne!(arch::fp_status() & FPSR_IXC, 0, "the child's inexact flag did not reach the parent");
    // SAFETY: as above.
    unsafe { arch::set_fp_status(0) };
    // SAFETY: as above; the child returns through the backstop this time.
    unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
    assert_eq!(pair.child.get_retval_gp(0), 0b11, "the child saw stale status flags");
}

/// Overwrites d8-d15 and x19-x28 with zeros, then switches back to the parent while they
/// still hold them (its own prologue and epilogue keep them for its caller, not for the
/// parent), and returns when entered again.
extern "C" fn clobbers_callee_saved() {
    let pair = PAIR.with(|p| p.get());
    // SAFETY: the pair outlives both contexts and only one of them runs at a time; the asm
    // only zeroes registers it declares changed, and calls the swap, which follows the C ABI
    // (the callee-saved registers it must keep are x20 and x21, the pointers).
    unsafe {
        core::arch::asm!(
            "movi d8, #0", "movi d9, #0", "movi d10, #0", "movi d11, #0",
            "movi d12, #0", "movi d13, #0", "movi d14, #0", "movi d15, #0",
            "mov x22, #0", "mov x23, #0", "mov x24, #0", "mov x25, #0",
            "mov x26, #0", "mov x27, #0", "mov x28, #0",
            "mov x0, x20",
            "mov x1, x21",
            "blr {swap}",
            swap = in(reg) arch::bobbin_context_swap as *const () as usize,
            in("x20") &mut *(*pair).child as *mut Context,
            in("x21") &mut *(*pair).parent as *mut Context,
            out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
            out("x22") _, out("x23") _, out("x24") _, out("x25") _,
            out("x26") _, out("x27") _, out("x28") _,
            clobber_abi("C"),
        );
    }
}

#[test]
fn callee_saved_registers_survive_a_child_that_changes_them() {
    let mut stack = crate::stack::Stack::new(32 * 1024).unwrap();
    let mut pair = Box::new(Pair { parent: ContextHandle::new(), child: ContextHandle::new() });
    Context::init(stack.words_mut(), &mut pair.child, clobbers_callee_saved as *const () as usize, &[]).unwrap();
    let pair: *mut Pair = &mut *pair;
    PAIR.with(|p| p.set(pair));
    // d8-d15, then x22-x28.
    let values: [u64; 15] = core::array::from_fn(|i| 0x0101_0101_0101_0101 * (i as u64 + 1));
    let mut seen = [0u64; 15];
    // SAFETY: `pair` points into the box above, which lives to the end of the test.
    let (parent, child): (*mut Context, *mut Context) = unsafe { (&mut *(*pair).parent, &mut *(*pair).child) };
    let args: [usize; 4] =
        [parent as usize, child as usize, arch::bobbin_context_swap as *const () as usize, seen.as_mut_ptr() as usize];
    // The parent's side in assembly too, so that the values live in the callee-saved
    // registers across the switch and nowhere else.
    // The asm declares every register it or the swap changes, and reads `values` and
    // `args` and writes `seen` through pointers held in x20 and x21 (callee-saved, so the
    // swap keeps them).
    // SAFETY: the stack and the pair outlive the child, which swaps back here.
    unsafe {
        core::arch::asm!(
            "ldp d8, d9, [x20]", "ldp d10, d11, [x20, #16]",
            "ldp d12, d13, [x20, #32]", "ldp d14, d15, [x20, #48]",
            "ldp x22, x23, [x20, #64]", "ldp x24, x25, [x20, #80]",
            "ldp x26, x27, [x20, #96]", "ldr x28, [x20, #112]",
            "ldp x0, x1, [x21]",
            "ldr x9, [x21, #16]",
            "blr x9",
            "ldr x9, [x21, #24]",
            "stp d8, d9, [x9]", "stp d10, d11, [x9, #16]",
            "stp d12, d13, [x9, #32]", "stp d14, d15, [x9, #48]",
            "stp x22, x23, [x9, #64]", "stp x24, x25, [x9, #80]",
            "stp x26, x27, [x9, #96]", "str x28, [x9, #112]",
            in("x20") values.as_ptr(),
            in("x21") args.as_ptr(),
            out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
            out("x22") _, out("x23") _, out("x24") _, out("x25") _,
            out("x26") _, out("x27") _, out("x28") _,
            clobber_abi("C"),
        );
    }
    assert_eq!(seen, values, "the parent's callee-saved registers changed across its swap");
    // SAFETY: as above; the child returns through the backstop this time.
    unsafe { Context::swap(&mut (*pair).parent, &mut (*pair).child) };
}
