//! The low-level context layer: argument passing, return values, the backstop, nesting.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;

use bobbin::context::{Context, ContextHandle, Val};
use bobbin::Error;
use proptest::prelude::*;

/// Where a test's stack lives. Every test here runs on both: a context must behave the
/// same on heap memory as on a guard-paged stack.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A boxed slice from the global allocator, as `vec![0u64; n].into_boxed_slice()`.
    Heap,
    /// A `bobbin::stack::Stack`, with its guard page below.
    Guarded,
}

const KINDS: [Kind; 2] = [Kind::Heap, Kind::Guarded];

/// Words above the part handed out, so a callee that reads more stack-argument slots than
/// were spilled stays inside the allocation.
const SLACK: usize = 512;

enum Memory {
    Heap(Box<[u64]>),
    Guarded(bobbin::stack::Stack),
}

/// A stack of `words` words, the lowest of its allocation, with slack above.
struct TestStack {
    memory: Memory,
    words: usize,
}

impl TestStack {
    fn new(kind: Kind, words: usize) -> TestStack {
        assert!(words.is_multiple_of(2), "the top must stay 16-byte aligned");
        let memory = match kind {
            Kind::Heap => Memory::Heap(vec![0u64; words + SLACK].into_boxed_slice()),
            Kind::Guarded => Memory::Guarded(bobbin::stack::Stack::new((words + SLACK) * 8).unwrap()),
        };
        TestStack { memory, words }
    }
    fn slice(&mut self) -> &mut [u64] {
        let words = self.words;
        match &mut self.memory {
            Memory::Heap(b) => &mut b[..words],
            Memory::Guarded(s) => &mut s.words_mut()[..words],
        }
    }
}

thread_local! {
    static RECORD: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Records raw images of every argument register and 18 stack slots.
#[allow(clippy::too_many_arguments)]
extern "C" fn probe(
    g0: u64,
    g1: u64,
    g2: u64,
    g3: u64,
    g4: u64,
    g5: u64,
    f0: f64,
    f1: f64,
    f2: f64,
    f3: f64,
    f4: f64,
    f5: f64,
    f6: f64,
    f7: f64,
    s0: u64,
    s1: u64,
    s2: u64,
    s3: u64,
    s4: u64,
    s5: u64,
    s6: u64,
    s7: u64,
    s8: u64,
    s9: u64,
    s10: u64,
    s11: u64,
    s12: u64,
    s13: u64,
    s14: u64,
    s15: u64,
    s16: u64,
    s17: u64,
) -> u64 {
    let all = [
        g0,
        g1,
        g2,
        g3,
        g4,
        g5,
        f0.to_bits(),
        f1.to_bits(),
        f2.to_bits(),
        f3.to_bits(),
        f4.to_bits(),
        f5.to_bits(),
        f6.to_bits(),
        f7.to_bits(),
        s0,
        s1,
        s2,
        s3,
        s4,
        s5,
        s6,
        s7,
        s8,
        s9,
        s10,
        s11,
        s12,
        s13,
        s14,
        s15,
        s16,
        s17,
    ];
    RECORD.with(|r| *r.borrow_mut() = all.to_vec());
    0xfeed
}

/// The value of `v` as the callee sees it in a 64-bit slot whose upper bits may be
/// undefined beyond the type's width.
fn decode_matches(v: &Val, raw: u64) -> bool {
    match *v {
        Val::CPtr(p) => raw == p as usize as u64,
        Val::USize(x) => raw == x as u64,
        Val::ISize(x) => raw as i64 == x as i64,
        Val::U8(x) => raw as u8 == x,
        Val::U16(x) => raw as u16 == x,
        Val::U32(x) => raw as u32 == x,
        Val::U64(x) => raw == x,
        Val::I8(x) => raw as i8 == x,
        Val::I16(x) => raw as i16 == x,
        Val::I32(x) => raw as i32 == x,
        Val::I64(x) => raw as i64 == x,
        Val::Bool(x) => (raw as u8 != 0) == x,
        Val::F32(x) => f32::from_bits(raw as u32).to_bits() == x.to_bits(),
        Val::F64(x) => raw == x.to_bits(),
    }
}

fn arb_val() -> impl Strategy<Value = Val> {
    prop_oneof![
        any::<usize>().prop_map(|x| Val::CPtr(x as *const c_void)),
        any::<usize>().prop_map(Val::USize),
        any::<isize>().prop_map(Val::ISize),
        any::<u8>().prop_map(Val::U8),
        any::<u16>().prop_map(Val::U16),
        any::<u32>().prop_map(Val::U32),
        any::<u64>().prop_map(Val::U64),
        any::<i8>().prop_map(Val::I8),
        any::<i16>().prop_map(Val::I16),
        any::<i32>().prop_map(Val::I32),
        any::<i64>().prop_map(Val::I64),
        any::<bool>().prop_map(Val::Bool),
        any::<f32>().prop_map(Val::F32),
        any::<f64>().prop_map(Val::F64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every value arrives where the System V ABI puts it: integer-class values in the six
    /// general registers, floats in xmm0-7, the rest in stack slots in order of appearance.
    #[test]
    fn arguments_arrive_exactly(args in proptest::collection::vec(arb_val(), 0..=24), heap in any::<bool>()) {
        let mut stack = TestStack::new(if heap { Kind::Heap } else { Kind::Guarded }, 2048);
        let mut parent = ContextHandle::new();
        let mut child = ContextHandle::create_and_init(stack.slice(), probe as *const () as usize, &args).unwrap();
        // SAFETY: the stack outlives the child, which returns through the backstop.
        unsafe { Context::swap(&mut parent, &mut child) };
        prop_assert_eq!(child.get_retval_gp(0), 0xfeed);
        let rec = RECORD.with(|r| r.borrow().clone());
        let (mut g, mut f, mut s) = (0, 0, 0);
        for v in &args {
            let raw = if v.is_float() && f < 8 {
                f += 1;
                rec[6 + f - 1]
            } else if !v.is_float() && g < 6 {
                g += 1;
                rec[g - 1]
            } else {
                s += 1;
                rec[14 + s - 1]
            };
            prop_assert!(decode_matches(v, raw), "{:?} arrived as {:#x}", v, raw);
        }
    }
}

// A typed function called both directly and through a context must see the same values:
// this checks the classification against the compiler's, not against itself.
macro_rules! direct_vs_context {
    ($name:ident, $($p:ident: $t:ty = $v:expr),* $(,)?) => {
        #[test]
        fn $name() {
            thread_local! { static SEEN: RefCell<String> = const { RefCell::new(String::new()) }; }
            #[allow(clippy::too_many_arguments)]
            extern "C" fn callee($($p: $t),*) -> u64 {
                let seen: Vec<String> = vec![$(format!("{:?}", $p)),*];
                SEEN.with(|s| *s.borrow_mut() = seen.join(","));
                7
            }
            callee($($v),*);
            let direct = SEEN.with(|s| s.borrow().clone());
            for kind in KINDS {
                SEEN.with(|s| s.borrow_mut().clear());
                let args = [$(Val::from($v as $t)),*];
                let mut stack = TestStack::new(kind, 1024);
                let mut parent = ContextHandle::new();
                let mut child = ContextHandle::create_and_init(stack.slice(), callee as *const () as usize, &args).unwrap();
                // SAFETY: the stack outlives the child, which returns through the backstop.
                unsafe { Context::swap(&mut parent, &mut child) };
                assert_eq!(child.get_retval_gp(0), 7, "{kind:?}");
                let via_context = SEEN.with(|s| s.borrow().clone());
                assert_eq!(direct, via_context, "{kind:?}");
            }
        }
    };
}

direct_vs_context!(mixed_narrow_types, a: u8 = 250, b: i8 = -3, c: f32 = 1.25, d: bool = true, e: i16 = -30000, f: u16 = 65000, g: f64 = -2.5);
direct_vs_context!(
    spilled_integers_and_floats,
    a: u64 = 1, b: i32 = -2, c: u8 = 3, d: i64 = -4, e: u16 = 5, f: usize = 6,
    g: i8 = -7, h: u32 = 8, i: bool = false, j: isize = -10,
    x0: f64 = 0.5, x1: f32 = 1.5, x2: f64 = 2.5, x3: f32 = 3.5, x4: f64 = 4.5, x5: f32 = 5.5,
    x6: f64 = 6.5, x7: f32 = 7.5, x8: f64 = 8.5, x9: f32 = -9.5, x10: f64 = 1e300,
);
direct_vs_context!(
    interleaved_spills,
    a: f64 = 1.0, b: u64 = u64::MAX, c: f32 = f32::MIN_POSITIVE, d: i8 = i8::MIN, e: f64 = -0.0,
    f: u8 = 1, g: f64 = 3.0, h: u16 = 2, i: f64 = 4.0, j: i32 = i32::MIN, k: f64 = 5.0, l: i64 = 9,
    m: f64 = 6.0, n: u32 = 3, o: f64 = 7.0, p: bool = true, q: f64 = 8.0, r: f32 = 9.0,
);
direct_vs_context!(odd_spill_count, a: u64 = 1, b: u64 = 2, c: u64 = 3, d: u64 = 4, e: u64 = 5, f: u64 = 6, g: u64 = 7);
direct_vs_context!(no_arguments,);

extern "C" fn two_words(a: u64, b: u64) -> u128 {
    (u128::from(a) << 64) | u128::from(b)
}
extern "C" fn ret_f64(x: f64) -> f64 {
    x * 3.0
}
extern "C" fn ret_f32(x: f32) -> f32 {
    x + 0.25
}
extern "C" fn ret_i32(x: i32) -> i32 {
    -x
}
extern "C" fn ret_bool(x: u32) -> bool {
    x % 2 == 1
}
extern "C" fn ret_ptr(x: *const c_void) -> *const c_void {
    x.wrapping_add(8)
}

fn run_to_end(kind: Kind, fptr: usize, args: &[Val]) -> ContextHandle {
    let mut stack = TestStack::new(kind, 1024);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::create_and_init(stack.slice(), fptr, args).unwrap();
    // SAFETY: the stack outlives the child, which returns through the backstop.
    unsafe { Context::swap(&mut parent, &mut child) };
    child
}

#[test]
fn return_values_rax_rdx_xmm0() {
    for kind in KINDS {
        return_values_on(kind);
    }
}

fn return_values_on(kind: Kind) {
    let c = run_to_end(kind, two_words as *const () as usize, &[Val::U64(0x1111), Val::U64(0x2222)]);
    // A u128 comes back in rax (low) and rdx (high).
    assert_eq!(c.get_retval_gp(0), 0x2222);
    assert_eq!(c.get_retval_gp(1), 0x1111);

    let c = run_to_end(kind, ret_f64 as *const () as usize, &[Val::F64(1.5)]);
    assert_eq!(c.get_untyped_retval().as_f64(), 4.5);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86-64 baseline.
    let low = unsafe { std::arch::x86_64::_mm_cvtsd_f64(std::arch::x86_64::_mm_castps_pd(c.get_retval_fp())) };
    // v0 comes back whole, as its 128 bits.
    #[cfg(target_arch = "aarch64")]
    let low = f64::from_bits(c.get_retval_fp() as u64);
    assert_eq!(low, 4.5);

    let c = run_to_end(kind, ret_f32 as *const () as usize, &[Val::F32(2.0)]);
    assert_eq!(c.get_untyped_retval().as_f32(), 2.25);

    let c = run_to_end(kind, ret_i32 as *const () as usize, &[Val::I32(77)]);
    assert_eq!(c.get_untyped_retval().as_i32(), -77);
    assert_eq!(c.get_untyped_retval().as_u32(), (-77i32) as u32);

    let c = run_to_end(kind, ret_bool as *const () as usize, &[Val::U32(3)]);
    assert!(c.get_untyped_retval().as_bool());
    let c = run_to_end(kind, ret_bool as *const () as usize, &[Val::U32(4)]);
    assert!(!c.get_untyped_retval().as_bool());

    let c = run_to_end(kind, ret_ptr as *const () as usize, &[Val::CPtr(0x1000 as *const c_void)]);
    assert_eq!(c.get_untyped_retval().as_ptr() as usize, 0x1008);
    assert_eq!(c.get_untyped_retval().as_u64(), 0x1008);
    assert_eq!(c.get_untyped_retval().as_i64(), 0x1008);

    let mut c = run_to_end(kind, ret_i32 as *const () as usize, &[Val::I32(5)]);
    c.clear_retvals();
    assert_eq!(c.get_retval_gp(0), 0);
    assert_eq!(c.get_untyped_retval().as_f64(), 0.0);
}

thread_local! {
    static CALLBACK_LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn backstop_callback(data: *mut c_void) {
    let tag = data as usize;
    CALLBACK_LOG.with(|l| l.borrow_mut().push(format!("callback {tag:#x}")));
}

extern "C" fn logs_and_returns(x: u64) -> u64 {
    CALLBACK_LOG.with(|l| l.borrow_mut().push(format!("body {x}")));
    x + 1
}

#[test]
fn backstop_callback_runs_once_before_the_parent() {
    for kind in KINDS {
        CALLBACK_LOG.with(|l| l.borrow_mut().clear());
        let mut stack = TestStack::new(kind, 1024);
        let mut parent = ContextHandle::new();
        let mut child = ContextHandle::new();
        Context::init_with_callback(
            stack.slice(),
            &mut child,
            backstop_callback,
            0xabcd as *mut c_void,
            logs_and_returns as *const () as usize,
            &[Val::U64(41)],
        )
        .unwrap();
        // SAFETY: the stack outlives the child, which returns through the backstop.
        unsafe { Context::swap(&mut parent, &mut child) };
        CALLBACK_LOG.with(|l| l.borrow_mut().push("parent".into()));
        assert_eq!(child.get_retval_gp(0), 42, "{kind:?}");
        // Entering the finished child again comes straight back, without the callback.
        // SAFETY: as above.
        unsafe { Context::swap(&mut parent, &mut child) };
        CALLBACK_LOG.with(|l| l.borrow_mut().push("parent again".into()));
        assert_eq!(child.get_retval_gp(0), 42, "{kind:?}");
        let log = CALLBACK_LOG.with(|l| l.borrow().clone());
        assert_eq!(log, ["body 41", "callback 0xabcd", "parent", "parent again"], "{kind:?}");
    }
}

// Nested contexts: parent -> child -> grandchild, switching many times.
struct Chain {
    parent: ContextHandle,
    child: ContextHandle,
    grandchild: ContextHandle,
    trace: Vec<u64>,
}

thread_local! {
    static CHAIN: Cell<*mut Chain> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn grandchild_fn(rounds: u64) -> u64 {
    let chain = CHAIN.with(|c| c.get());
    for i in 0..rounds {
        // SAFETY: the chain outlives every context; only one of them runs at a time.
        unsafe {
            (*chain).trace.push(2000 + i);
            Context::swap(&mut (*chain).grandchild, &mut (*chain).child);
        }
    }
    9999
}

extern "C" fn child_fn(rounds: u64, gc_stack: *mut u64, gc_words: usize) -> u64 {
    let chain = CHAIN.with(|c| c.get());
    // SAFETY: the caller passes a live, exclusive stack buffer and the chain outlives all.
    unsafe {
        let stack = std::slice::from_raw_parts_mut(gc_stack, gc_words);
        Context::init(stack, &mut (*chain).grandchild, grandchild_fn as *const () as usize, &[Val::U64(rounds)])
            .unwrap();
        for i in 0..rounds {
            (*chain).trace.push(1000 + i);
            Context::swap(&mut (*chain).child, &mut (*chain).grandchild);
            // Back from the grandchild; now hand control to the parent.
            Context::swap(&mut (*chain).child, &mut (*chain).parent);
        }
        // Let the grandchild finish. Its backstop returns here, because this context was
        // the last to swap into it.
        Context::swap(&mut (*chain).child, &mut (*chain).grandchild);
        // The grandchild's swaps made it this context's parent; let the real parent swap
        // in once more so the backstop returns to it.
        Context::swap(&mut (*chain).child, &mut (*chain).parent);
        (*chain).grandchild.get_retval_gp(0) + rounds
    }
}

#[test]
fn nested_contexts_switch_many_times() {
    for kind in KINDS {
        nested_on(kind);
    }
}

fn nested_on(kind: Kind) {
    const ROUNDS: u64 = 10_000;
    let mut chain = Box::new(Chain {
        parent: ContextHandle::new(),
        child: ContextHandle::new(),
        grandchild: ContextHandle::new(),
        trace: Vec::new(),
    });
    let mut child_stack = TestStack::new(kind, 4096);
    let mut gc_stack = TestStack::new(kind, 4096);
    let gc = gc_stack.slice();
    let args = [Val::U64(ROUNDS), Val::CPtr(gc.as_mut_ptr() as *const c_void), Val::USize(gc.len())];
    Context::init(child_stack.slice(), &mut chain.child, child_fn as *const () as usize, &args).unwrap();
    CHAIN.with(|c| c.set(&mut *chain));
    let chain_ptr: *mut Chain = &mut *chain;
    for i in 0..ROUNDS + 2 {
        // SAFETY: as in grandchild_fn.
        unsafe {
            (*chain_ptr).trace.push(i);
            Context::swap(&mut (*chain_ptr).parent, &mut (*chain_ptr).child);
        }
    }
    assert_eq!(chain.child.get_retval_gp(0), 9999 + ROUNDS);
    // Parent, child, grandchild in turn, each with its own counter.
    for i in 0..ROUNDS as usize {
        assert_eq!(&chain.trace[3 * i..3 * i + 3], &[i as u64, 1000 + i as u64, 2000 + i as u64]);
    }
    assert_eq!(chain.trace.len(), 3 * ROUNDS as usize + 2);
    // The last swap into the child was the parent's, so the child returned to it.
    assert!(std::ptr::eq(chain.child.parent(), &*chain.parent));
}

thread_local! {
    static SET_TARGET: Cell<*mut Context> = const { Cell::new(std::ptr::null_mut()) };
    static AFTER_SET: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn leaves_with_set() -> u64 {
    let target = SET_TARGET.with(|c| c.get());
    // SAFETY: the target is the parent's saved context, alive in the test frame.
    unsafe { Context::set(&*target) }
}

#[test]
fn set_leaves_for_good() {
    for kind in KINDS {
        set_on(kind);
    }
}

fn set_on(kind: Kind) {
    let mut stack = TestStack::new(kind, 1024);
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::create_and_init(stack.slice(), leaves_with_set as *const () as usize, &[]).unwrap();
    SET_TARGET.with(|c| c.set(&mut *parent));
    AFTER_SET.with(|c| c.set(0));
    // SAFETY: the child leaves through `set` back into this swap's saved state.
    unsafe { Context::swap(&mut parent, &mut child) };
    AFTER_SET.with(|c| c.set(c.get() + 1));
    assert_eq!(AFTER_SET.with(|c| c.get()), 1);
    // The child never returned, so no return value was stored.
    assert_eq!(child.get_retval_gp(0), 0);
}

#[test]
fn unaligned_stack_is_refused() {
    let mut buf = vec![0u64; 1025];
    let misaligned = if (buf.as_ptr() as usize + 1024 * 8).is_multiple_of(16) { 1 } else { 0 };
    let stack = &mut buf[misaligned..misaligned + 1024];
    let mut ctx = ContextHandle::new();
    let err = Context::init(stack, &mut ctx, ret_i32 as *const () as usize, &[Val::I32(1)]).unwrap_err();
    assert!(matches!(err, Error::UnalignedStack { .. }), "{err:?}");
    assert!(err.to_string().contains("16-byte aligned"));
}

/// The initial frame's size in words without spilled arguments, and how many integer
/// arguments spill 34 words (the general registers take the rest).
#[cfg(target_arch = "x86_64")]
const FRAME_WORDS_AND_SPILLING_ARGS: (usize, usize) = (9, 40);
#[cfg(target_arch = "aarch64")]
const FRAME_WORDS_AND_SPILLING_ARGS: (usize, usize) = (8, 42);

#[test]
fn stack_too_small_for_the_frame_is_refused() {
    // x86-64: nine words: bootstrap, six argument values, the entry function and the
    // backstop (and, in the AddressSanitizer build, the entry that announces the first
    // arrival). aarch64: the eight argument values bootstrap loads.
    let (frame, spilling) = FRAME_WORDS_AND_SPILLING_ARGS;
    let extra = if cfg!(bobbin_asan) { 8 } else { 0 };
    for kind in KINDS {
        let mut ctx = ContextHandle::new();
        // The largest even count of words below the frame's.
        let tiny_words = (frame - 1) & !1;
        let mut tiny = TestStack::new(kind, tiny_words);
        let err = Context::init(tiny.slice(), &mut ctx, ret_i32 as *const () as usize, &[]).unwrap_err();
        assert!(
            matches!(err, Error::StackTooSmall { needed, available } if needed == frame * 8 + extra && available == tiny_words * 8),
            "{kind:?}: {err:?}"
        );
        let mut empty = TestStack::new(kind, 0);
        let err = Context::init(empty.slice(), &mut ctx, ret_i32 as *const () as usize, &[]).unwrap_err();
        assert!(matches!(err, Error::StackTooSmall { available: 0, .. }), "{kind:?}: {err:?}");
        // Integer arguments that spill 34 words: too many for a 40-word stack.
        let mut small = TestStack::new(kind, 40);
        let args = vec![Val::U64(1); spilling];
        let err = Context::init(small.slice(), &mut ctx, ret_i32 as *const () as usize, &args).unwrap_err();
        assert!(
            matches!(err, Error::StackTooSmall { needed, available: 320 } if needed == (34 + frame) * 8 + extra),
            "{kind:?}: {err:?}"
        );
    }
    // An empty slice with no memory behind it (its address is a placeholder) is too
    // small, not unaligned.
    let mut ctx = ContextHandle::new();
    let err = Context::init(&mut [], &mut ctx, ret_i32 as *const () as usize, &[]).unwrap_err();
    assert!(matches!(err, Error::StackTooSmall { needed, available: 0 } if needed == frame * 8 + extra), "{err:?}");
    assert!(err.to_string().contains("holds only 0"), "{err}");
}

/// The seed's own usage: an 8 KiB boxed slice from `vec!`, an `extern "C"` entry point
/// taking an integer and a float, `init` returning Ok.
extern "C" fn entrypoint(x: u64, y: f32) -> f32 {
    x as f32 * y
}

#[test]
fn any_aligned_slice_is_accepted_wherever_it_lives() {
    let fptr = entrypoint as *const () as usize;
    let args = [Val::U64(120), Val::F32(0.25)];
    let mut parent = ContextHandle::new();

    let mut boxed = vec![0u64; 1024].into_boxed_slice();
    let mut child = ContextHandle::new();
    assert!(Context::init(&mut boxed, &mut child, fptr, &args).is_ok());
    // SAFETY: `entrypoint` needs a few words of the 8 KiB; `boxed` outlives the child.
    unsafe { Context::swap(&mut parent, &mut child) };
    assert_eq!(child.get_untyped_retval().as_f32(), entrypoint(120, 0.25));

    let mut vec = vec![0u64; 1024];
    let mut child = ContextHandle::create_and_init(&mut vec, fptr, &args).unwrap();
    // SAFETY: as above.
    unsafe { Context::swap(&mut parent, &mut child) };
    assert_eq!(child.get_untyped_retval().as_f32(), 30.0);

    // A slice of a guarded stack that does not start at its bottom (readable memory below).
    let mut stack = bobbin::stack::Stack::new(64 * 1024).unwrap();
    let mut child = ContextHandle::create_and_init(&mut stack.words_mut()[512..], fptr, &args).unwrap();
    // SAFETY: as above; the slice holds 60 KiB.
    unsafe { Context::swap(&mut parent, &mut child) };
    assert_eq!(child.get_untyped_retval().as_f32(), 30.0);
}
