//! The low-level switch: one `Context::swap` round trip (parent -> child -> parent),
//! against corosensei's resume + suspend round trip as the reference, in the same run.
//!
//! Each figure is measured twice: with a child that does nothing but switch back, and
//! with a child that performs an inexact floating-point division before switching back
//! (the case where a switch that reloads the whole MXCSR, sticky status flags included,
//! pays a serialising `ldmxcsr` on every switch).
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::cell::Cell;
use std::hint::black_box;
use std::ptr;

use bobbin::context::{Context, ContextHandle};
use bobbin::stack::Stack;
use criterion::{criterion_group, criterion_main, Bencher, Criterion};

/// Usable bytes of the child's stack.
const STACK_BYTES: usize = 64 * 1024;

thread_local! {
    /// The context the benchmark loop runs in.
    static PARENT: Cell<*mut Context> = const { Cell::new(ptr::null_mut()) };
    /// The child context that switches straight back.
    static CHILD: Cell<*mut Context> = const { Cell::new(ptr::null_mut()) };
}

/// A division whose result is not exact, so it raises the MXCSR "precision" flag.
#[inline(always)]
fn inexact_division() {
    black_box(black_box(1.0f64) / black_box(3.0f64));
}

/// The child's entry: switch back to the parent, forever.
extern "C" fn child_loop() -> ! {
    let parent = PARENT.with(Cell::get);
    let child = CHILD.with(Cell::get);
    loop {
        // SAFETY: both pointers were set by `swap_round_trip` to the heap contexts it owns
        // before the first swap into this child; they stay valid and unmoved for as long as
        // the parent can switch here, and only the running side touches them.
        unsafe { Context::swap(&mut *child, &mut *parent) };
    }
}

/// Like `child_loop`, with an inexact floating-point operation before every switch.
extern "C" fn child_loop_inexact() -> ! {
    let parent = PARENT.with(Cell::get);
    let child = CHILD.with(Cell::get);
    loop {
        inexact_division();
        // SAFETY: as in `child_loop`.
        unsafe { Context::swap(&mut *child, &mut *parent) };
    }
}

/// Measures `swap(parent, child)` where the child, started at `entry`, swaps straight back.
fn swap_round_trip(b: &mut Bencher<'_>, entry: extern "C" fn() -> !) {
    let stack = Stack::new(STACK_BYTES).expect("allocate the child stack");
    // SAFETY: `stack` owns `size()` readable and writable bytes from `bottom()`, which is
    // page-aligned; this slice is the only reference to them and it is dropped before the
    // child starts running on that memory. `stack` outlives every use of the child.
    let words = unsafe { std::slice::from_raw_parts_mut(stack.bottom().cast::<u64>(), stack.size() / 8) };
    let mut child = ContextHandle::create_and_init(words, entry as usize, &[]).expect("init the child context");
    let mut parent = ContextHandle::new();
    let parent_ptr: *mut Context = &mut *parent;
    let child_ptr: *mut Context = &mut *child;
    PARENT.with(|p| p.set(parent_ptr));
    CHILD.with(|c| c.set(child_ptr));

    b.iter(|| {
        // SAFETY: `child_ptr` was initialised by `create_and_init` (or saved by the child's
        // own swap back) on `stack`, which is alive; both contexts live in heap allocations
        // owned by this function and do not move. The child only ever swaps back here.
        unsafe { Context::swap(&mut *parent_ptr, &mut *child_ptr) };
    });

    // The child stays suspended inside its loop; nothing switches to it again.
    PARENT.with(|p| p.set(ptr::null_mut()));
    CHILD.with(|c| c.set(ptr::null_mut()));
    drop(child);
    drop(parent);
    drop(stack);
}

fn corosensei_round_trip(b: &mut Bencher<'_>, inexact: bool) {
    let mut co = corosensei::Coroutine::<(), (), ()>::new(move |y, ()| loop {
        if inexact {
            inexact_division();
        }
        y.suspend(());
    });
    b.iter(|| black_box(co.resume(())));
}

fn context_swap(c: &mut Criterion) {
    let mut g = c.benchmark_group("context_swap_round_trip");
    g.bench_function("bobbin Context::swap", |b| swap_round_trip(b, child_loop));
    g.bench_function("corosensei resume+suspend (reference)", |b| corosensei_round_trip(b, false));
    g.finish();

    let mut g = c.benchmark_group("context_swap_round_trip_inexact");
    g.bench_function("bobbin Context::swap", |b| swap_round_trip(b, child_loop_inexact));
    g.bench_function("corosensei resume+suspend (reference)", |b| corosensei_round_trip(b, true));
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = context_swap
}
criterion_main!(benches);
