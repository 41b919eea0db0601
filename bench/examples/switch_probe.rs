//! Quick interleaved switch timing: bobbin vs corosensei in one process. `N bobbin|coro`
//! runs one library's switch only and `N create-bobbin|create-coro` its create + run +
//! drop (the second with a stack reused by hand), for instruction counting under callgrind.
use std::hint::black_box;

fn main() {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(10_000_000);
    let mut b: bobbin::Coroutine<(), (), ()> = bobbin::Coroutine::new(|y, ()| loop {
        y.suspend(())
    });
    let mut c: corosensei::Coroutine<(), (), ()> = corosensei::Coroutine::new(|y, ()| loop {
        y.suspend(())
    });
    if let Some(which) = std::env::args().nth(2).filter(|w| w.starts_with("create-")) {
        // Create + run + drop, one library only, for instruction counting.
        let mut stack = Some(corosensei::stack::DefaultStack::default());
        let bobbin = which == "create-bobbin";
        for _ in 0..n {
            if bobbin {
                let mut co = bobbin::Coroutine::<(), (), i32>::new(|_, ()| black_box(1));
                black_box(co.resume(()));
            } else {
                let s = stack.take().unwrap();
                let mut co = corosensei::Coroutine::<(), (), i32, _>::with_stack(s, |_, ()| black_box(1));
                black_box(co.resume(()));
                stack = Some(co.into_stack());
            }
        }
        return;
    }
    if let Some(which) = std::env::args().nth(2) {
        // One library only, for instruction counting under callgrind.
        // The choice is made once, outside the loop, so the count is the switch's alone.
        if which == "bobbin" {
            for _ in 0..n {
                black_box(b.resume(()));
            }
        } else {
            for _ in 0..n {
                black_box(c.resume(()));
            }
        }
        return;
    }
    bobbin_bench::interleaved_rounds(
        n,
        |n| {
            for _ in 0..n {
                black_box(b.resume(()));
            }
        },
        |n| {
            for _ in 0..n {
                black_box(c.resume(()));
            }
        },
    );
}
