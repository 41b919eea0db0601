//! Unit tests of the context layer that need crate internals.
use super::init::CHAIN_WORDS;
use super::*;
use crate::arch;
use crate::context::{Context, ContextHandle};

#[test]
fn offsets_match_the_assembly() {
    let asm = include_str!("../../../asm/x86_64_sysv.S");
    let expected = [
        ("BOBBIN_CTX_RBX", CTX_RBX),
        ("BOBBIN_CTX_RSP", CTX_RSP),
        ("BOBBIN_CTX_RBP", CTX_RBP),
        ("BOBBIN_CTX_RDI", CTX_RDI),
        ("BOBBIN_CTX_R12", CTX_R12),
        ("BOBBIN_CTX_R13", CTX_R13),
        ("BOBBIN_CTX_R14", CTX_R14),
        ("BOBBIN_CTX_R15", CTX_R15),
        ("BOBBIN_CTX_RSI", CTX_RSI),
        ("BOBBIN_CTX_MXCSR", CTX_MXCSR),
        ("BOBBIN_CTX_FPCW", CTX_FPCW),
        ("BOBBIN_CTX_XMM0", CTX_XMM0),
        ("BOBBIN_CTX_RETVAL_GP", CTX_RETVAL_GP),
        ("BOBBIN_CTX_RETVAL_FP", CTX_RETVAL_FP),
        ("BOBBIN_CTX_PARENT", CTX_PARENT),
        ("BOBBIN_CTX_CALLBACK", CTX_CALLBACK),
        ("BOBBIN_CTX_CALLBACK_DATA", CTX_CALLBACK_DATA),
    ];
    for (name, value) in expected {
        let line = asm
            .lines()
            .find(|l| l.trim_start().starts_with(&format!(".set {name},")))
            .unwrap_or_else(|| panic!("{name} is not defined in the assembly"));
        let asm_value: usize = line.split(',').nth(1).unwrap().trim().parse().unwrap();
        assert_eq!(asm_value, value, "{name}: assembly says {asm_value}, Rust says {value}");
    }
    // The parent offset is also baked into the CFI escapes as SLEB128 0xf0 0x01.
    assert_eq!(CTX_PARENT, 0x70 | (1 << 7));
    assert_eq!(core::mem::align_of::<Context>(), 64);
}

struct Pair {
    parent: ContextHandle,
    child: ContextHandle,
}

thread_local! {
    static PAIR: core::cell::Cell<*mut Pair> = const { core::cell::Cell::new(core::ptr::null_mut()) };
}

const RC_MASK: u32 = 0x6000;
const RC_DOWN: u32 = 0x2000;

/// Sets both rounding modes (MXCSR and x87), switches back to the parent, and when entered
/// again returns what the two modes are then: MXCSR's in the low half, x87's in the high.
extern "C" fn changes_rounding() -> u32 {
    let pair = PAIR.with(|p| p.get());
    let (mxcsr, _) = arch::fp_control();
    set_fpcw_bits(FPCW_CHOP);
    // SAFETY: changes only the rounding-control bits; the pair outlives both contexts and
    // only one of them runs at a time.
    unsafe {
        arch::set_mxcsr((mxcsr & !RC_MASK) | RC_DOWN);
        // Raise the inexact flag too: status flags are shared, not restored.
        core::hint::black_box(core::hint::black_box(1.0f64) / 3.0);
        Context::swap(&mut (*pair).child, &mut (*pair).parent);
    }
    let (mxcsr, cw) = arch::fp_control();
    (mxcsr & RC_MASK) | (u32::from(cw & FPCW_RC) << 16)
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
    assert_eq!(arch::fp_control().0 & RC_MASK, before.0 & RC_MASK, "the child's rounding mode leaked");
    assert_eq!(arch::fp_control().1, before.1, "the child's x87 control word leaked");
    // SAFETY: as above; this time the child returns through the backstop.
    unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
    let modes = pair.child.get_retval_gp(0) as u32;
    assert_eq!(modes & 0xFFFF, RC_DOWN, "the child lost its rounding mode");
    assert_eq!(modes >> 16, u32::from(FPCW_CHOP), "the child lost its x87 control word");
    assert_eq!(arch::fp_control().0 & RC_MASK, before.0 & RC_MASK);
    assert_eq!(arch::fp_control().1, before.1);
}

/// x87 rounding control (bits 10-11) of the control word. (Precision control is left
/// alone: valgrind, which CI runs every test under, does not emulate it.)
const FPCW_RC: u16 = 0x0C00;
/// Round toward zero.
const FPCW_CHOP: u16 = 0x0C00;
/// Round up.
const FPCW_UP: u16 = 0x0800;

fn set_fpcw_bits(bits: u16) {
    let (_, cw) = arch::fp_control();
    // SAFETY: changes only rounding control; no exception is unmasked.
    unsafe { arch::set_fpcw((cw & !FPCW_RC) | bits) };
}

#[test]
fn x87_control_word_stays_with_each_side_of_a_coroutine() {
    let outside = arch::fp_control().1;
    let mut c: crate::Coroutine<(), u16, u16> = crate::coroutine::Builder::new()
        .preserve_fp_control(true)
        .spawn(|y, ()| {
            set_fpcw_bits(FPCW_CHOP);
            y.suspend(arch::fp_control().1 & FPCW_RC);
            // The resumer changed its own word meanwhile; this side keeps its own.
            arch::fp_control().1 & FPCW_RC
        })
        .unwrap();
    assert_eq!(c.resume(()), crate::CoroutineResult::Yield(FPCW_CHOP));
    assert_eq!(arch::fp_control().1, outside, "the coroutine's x87 control word leaked out");
    set_fpcw_bits(FPCW_UP);
    assert_eq!(c.resume(()), crate::CoroutineResult::Return(FPCW_CHOP));
    assert_eq!(arch::fp_control().1 & FPCW_RC, FPCW_UP, "finishing lost the resumer's word");
    // SAFETY: restores the word this test found.
    unsafe { arch::set_fpcw(outside) };
}

/// MXCSR "precision" (inexact) status flag.
const MXCSR_PE: u32 = 0x20;

fn clear_status_flags() {
    // SAFETY: clears the sticky status flags only; control bits are kept.
    unsafe { arch::set_mxcsr(arch::fp_control().0 & !0x3F) };
}

/// Returns whether the inexact flag was clear on entry; raises it, swaps back, and when
/// entered again returns whether it was clear then.
extern "C" fn raises_inexact() -> u64 {
    let pair = PAIR.with(|p| p.get());
    let clear_on_entry = arch::fp_control().0 & MXCSR_PE == 0;
    core::hint::black_box(core::hint::black_box(1.0f64) / 3.0);
    // SAFETY: the pair outlives both contexts and only one of them runs at a time.
    unsafe { Context::swap(&mut (*pair).child, &mut (*pair).parent) };
    let clear_again = arch::fp_control().0 & MXCSR_PE == 0;
    u64::from(clear_on_entry) | u64::from(clear_again) << 1
}

#[test]
fn status_flags_are_shared_between_contexts() {
    // valgrind does not emulate the MXCSR status flags.
    if arch::on_valgrind() {
        return;
    }
    let mut stack = crate::stack::Stack::new(32 * 1024).unwrap();
    let mut pair = Box::new(Pair { parent: ContextHandle::new(), child: ContextHandle::new() });
    Context::init(stack.words_mut(), &mut pair.child, raises_inexact as *const () as usize, &[]).unwrap();
    PAIR.with(|p| p.set(&mut *pair));
    let p: *mut Pair = &mut *pair;
    clear_status_flags();
    // SAFETY: the stack and the pair outlive the child; the child swaps back here.
    unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
    // The flag the child raised is the parent's too: nothing reloaded the parent's own.
    assert_ne!(arch::fp_control().0 & MXCSR_PE, 0, "the child's inexact flag did not reach the parent");
    clear_status_flags();
    // SAFETY: as above; the child returns through the backstop this time.
    unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
    // Both times the child found the flags the parent left, not those it had when it left.
    assert_eq!(pair.child.get_retval_gp(0), 0b11, "the child saw stale status flags");
}

extern "C" fn seven() -> u64 {
    7
}

#[test]
#[cfg_attr(
    bobbin_asan,
    ignore = "under AddressSanitizer a fresh context's first arrival calls the announcement hook on \
              its own stack, which an exactly sized stack has no room for"
)]
fn entering_with_other_control_words_writes_nothing_outside_the_contexts_and_stack() {
    // A stack exactly as large as the initial frame, on the heap, with canary words below.
    // An even number of words in all, so that the top is 16-byte aligned.
    const PAD: usize = if CHAIN_WORDS.is_multiple_of(2) { 32 } else { 31 };
    const CANARY: u64 = 0xC0FF_EE00_DEAD_BEEF;
    let mut words = vec![CANARY; PAD + CHAIN_WORDS].into_boxed_slice();
    assert!((words.as_ptr() as usize + words.len() * 8).is_multiple_of(16), "the allocator aligns to 16");
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::new();
    Context::init(&mut words[PAD..], &mut child, seven as *const () as usize, &[]).unwrap();
    // The child starts with the words in force at init; the parent switches with others, so
    // both switches load a word.
    let before = arch::fp_control();
    // SAFETY: changes only the rounding-control bits; restored below.
    unsafe { arch::set_mxcsr((before.0 & !RC_MASK) | RC_DOWN) };
    set_fpcw_bits(FPCW_UP);
    // SAFETY: `seven` uses no stack of its own; the child returns through the backstop.
    unsafe { Context::swap(&mut parent, &mut child) };
    let after = arch::fp_control();
    // SAFETY: restores the words this test found.
    unsafe {
        arch::set_mxcsr(before.0);
        arch::set_fpcw(before.1);
    }
    assert_eq!(child.get_retval_gp(0), 7);
    assert_eq!(after.0 & RC_MASK, RC_DOWN, "the parent's rounding mode was not restored");
    assert_eq!(after.1 & FPCW_RC, FPCW_UP, "the parent's x87 word was not restored");
    // valgrind takes the 128 bytes below a stack pointer for that stack's red zone and marks
    // them undefined as the pointer moves, canaries included: only a native run reads them.
    if !arch::on_valgrind() {
        assert!(words[..PAD].iter().all(|w| *w == CANARY), "a switch wrote below the stack");
    }
}
