//! What a suspension costs when it happens inside called functions rather than at the top
//! of the coroutine's closure: `depth_probe [N]` times N resume + suspend round trips of a
//! coroutine that suspends `d` calls deep (each call does some work after it returns, so
//! none is a tail call), against one that makes the same calls beside a suspension at the
//! top of its closure, for several `d`.
//!
//! A switch by `call` and `ret`, as bobbin's and corosensei's are, keeps the CPU's return
//! predictor right only while every suspension happens at the call depth of the resume
//! that ends it. A green thread parks deep inside `join`, a channel or a lock, and after
//! it is resumed its returns find the scheduler's entries in the predictor; that cost is
//! the difference this prints for d = 0 (one frame, `down` itself, between the closure
//! and the suspension) and the growth beyond it. corosensei, which switches the same way,
//! is measured beside it.
use std::hint::black_box;

use bobbin::{Coroutine, Yielder};

#[inline(never)]
fn down(y: &Yielder<(), ()>, d: u64) -> u64 {
    let r = if d == 0 {
        y.suspend(());
        1
    } else {
        down(y, d - 1)
    };
    r.wrapping_mul(3) ^ d
}

#[inline(never)]
fn beside(d: u64) -> u64 {
    let r = if d == 0 { black_box(1) } else { beside(d - 1) };
    r.wrapping_mul(3) ^ d
}

#[inline(never)]
fn down_coro(y: &corosensei::Yielder<(), ()>, d: u64) -> u64 {
    let r = if d == 0 {
        y.suspend(());
        1
    } else {
        down_coro(y, d - 1)
    };
    r.wrapping_mul(3) ^ d
}

/// The best of five timings of `n` calls of `resume`, per call.
fn per_round_trip(n: u64, mut resume: impl FnMut()) -> f64 {
    for _ in 0..1_000 {
        resume();
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        for _ in 0..n {
            resume();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    best
}

fn main() {
    let n: u64 = std::env::args().nth(1).map_or(1_000_000, |s| s.parse().unwrap());
    println!("| calls between the closure and the suspension | bobbin: suspended inside them | beside them | difference | corosensei: inside | beside | difference |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for d in [0u64, 1, 2, 4, 8, 16] {
        let mut inside = Coroutine::new(move |y: &Yielder<(), ()>, ()| loop {
            black_box(down(y, black_box(d)));
        });
        let mut at_top = Coroutine::new(move |y: &Yielder<(), ()>, ()| loop {
            black_box(beside(black_box(d)));
            y.suspend(());
        });
        let mut c_inside = corosensei::Coroutine::new(move |y: &corosensei::Yielder<(), ()>, ()| loop {
            black_box(down_coro(y, black_box(d)));
        });
        let mut c_at_top = corosensei::Coroutine::new(move |y: &corosensei::Yielder<(), ()>, ()| loop {
            black_box(beside(black_box(d)));
            y.suspend(());
        });
        let a = per_round_trip(n, || {
            black_box(inside.resume(()));
        });
        let b = per_round_trip(n, || {
            black_box(at_top.resume(()));
        });
        let c = per_round_trip(n, || {
            black_box(c_inside.resume(()));
        });
        let e = per_round_trip(n, || {
            black_box(c_at_top.resume(()));
        });
        println!("| {} | {a:.2} ns | {b:.2} ns | {:.2} ns | {c:.2} ns | {e:.2} ns | {:.2} ns |", d + 1, a - b, c - e);
    }
}
