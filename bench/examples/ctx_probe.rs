//! Interleaved timing of one `Context::swap` round trip (parent -> child -> parent) against
//! corosensei's resume + suspend round trip, in one process. `N ctx|coro` runs one side only,
//! for instruction counting under callgrind.
use std::cell::Cell;
use std::hint::black_box;
use std::ptr;

use bobbin::context::{Context, ContextHandle};
use bobbin::stack::Stack;

thread_local! {
    static PARENT: Cell<*mut Context> = const { Cell::new(ptr::null_mut()) };
    static CHILD: Cell<*mut Context> = const { Cell::new(ptr::null_mut()) };
}

extern "C" fn child_loop() -> ! {
    let parent = PARENT.with(Cell::get);
    let child = CHILD.with(Cell::get);
    loop {
        // SAFETY: both pointers are set by main to heap contexts that outlive every switch.
        unsafe { Context::swap(&mut *child, &mut *parent) };
    }
}

fn main() {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(10_000_000);
    let only = std::env::args().nth(2);
    let mut stack = Stack::new(64 * 1024).unwrap();
    let mut child = ContextHandle::create_and_init(stack.words_mut(), child_loop as *const () as usize, &[]).unwrap();
    let mut parent = ContextHandle::new();
    let (pp, cp): (*mut Context, *mut Context) = (&mut *parent, &mut *child);
    PARENT.with(|p| p.set(pp));
    CHILD.with(|c| c.set(cp));
    let mut co = corosensei::Coroutine::<(), (), ()>::new(|y, ()| loop {
        y.suspend(())
    });
    let ctx = |n: u64| {
        for _ in 0..n {
            // SAFETY: the child was initialised on `stack`, which outlives the loop.
            unsafe { Context::swap(&mut *pp, &mut *cp) };
        }
    };
    if let Some(which) = only {
        if which == "ctx" {
            ctx(n);
        } else {
            for _ in 0..n {
                black_box(co.resume(()));
            }
        }
        return;
    }
    bobbin_bench::interleaved_rounds(n, ctx, |n| {
        for _ in 0..n {
            black_box(co.resume(()));
        }
    });
}
