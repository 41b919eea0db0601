//! The safe layer against its peers, in the same run:
//! - `coroutine_switch`: one resume + one suspend round trip;
//! - `coroutine_create_run_drop`: create a coroutine, run it to completion, drop it;
//! - `generator_sum`: the sum of 1..=N through a generator, reported per item (the
//!   generators' bodies are those of `bobbin_bench::workloads`, which the `compare` binary
//!   runs too).
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::hint::black_box;

use bobbin::{Coroutine, Generator};
use bobbin_bench::workloads::{generator_sum_bobbin, generator_sum_corosensei, generator_sum_generator_crate};
use corosensei::stack::DefaultStack;
use criterion::{criterion_group, criterion_main, Bencher, Criterion, Throughput};
use generator::Gn;

/// Items per generator run.
const N: u64 = 1000;
/// The sum every generator must produce.
const SUM: u64 = N * (N + 1) / 2;

/// Times round trips that carry a usize each way: `resume` hands the coroutine a counter
/// and returns what it gets back.
fn usize_round_trip<R>(b: &mut Bencher<'_>, mut resume: impl FnMut(usize) -> R) {
    let mut i = 0usize;
    b.iter(|| {
        i = i.wrapping_add(1);
        black_box(resume(black_box(i)))
    });
}

fn switch(c: &mut Criterion) {
    let mut g = c.benchmark_group("coroutine_switch");

    g.bench_function("bobbin", |b| {
        let mut co = Coroutine::<(), (), ()>::new(|y, ()| loop {
            y.suspend(());
        });
        b.iter(|| black_box(co.resume(())));
    });
    g.bench_function("corosensei", |b| {
        let mut co = corosensei::Coroutine::<(), (), ()>::new(|y, ()| loop {
            y.suspend(());
        });
        b.iter(|| black_box(co.resume(())));
    });
    g.bench_function("generator", |b| {
        let mut gen = Gn::<()>::new_scoped(|mut s| loop {
            s.yield_(());
        });
        b.iter(|| black_box(gen.resume()));
    });
    g.finish();

    // The same round trip carrying a usize each way.
    let mut g = c.benchmark_group("coroutine_switch_usize");
    g.bench_function("bobbin", |b| {
        let mut co = Coroutine::<usize, usize, ()>::new(|y, mut x| loop {
            x = y.suspend(x.wrapping_add(1));
        });
        usize_round_trip(b, |i| co.resume(i));
    });
    g.bench_function("corosensei", |b| {
        let mut co = corosensei::Coroutine::<usize, usize, ()>::new(|y, mut x| loop {
            x = y.suspend(x.wrapping_add(1));
        });
        usize_round_trip(b, |i| co.resume(i));
    });
    g.bench_function("generator", |b| {
        let mut gen = Gn::<usize>::new_scoped(|mut s| {
            let mut x = 0usize;
            loop {
                x = s.yield_(x.wrapping_add(1)).unwrap_or(0);
            }
        });
        gen.resume(); // run to the first yield so that `send` hands the value to `yield_`
        usize_round_trip(b, |i| gen.send(i));
    });
    g.finish();
}

fn create(c: &mut Criterion) {
    let mut g = c.benchmark_group("coroutine_create_run_drop");

    g.bench_function("bobbin (thread's stack pool)", |b| {
        b.iter(|| {
            let mut co = Coroutine::<(), (), i32>::new(|_, ()| black_box(1));
            let r = co.resume(());
            black_box(r);
        });
    });
    g.bench_function("corosensei (fresh DefaultStack)", |b| {
        b.iter(|| {
            let mut co = corosensei::Coroutine::<(), (), i32>::new(|_, ()| black_box(1));
            let r = co.resume(());
            black_box(r);
        });
    });
    g.bench_function("corosensei (stack reused by hand)", |b| {
        let mut stack = Some(DefaultStack::default());
        b.iter(|| {
            let s = stack.take().expect("the stack is handed back every iteration");
            let mut co = corosensei::Coroutine::<(), (), i32, _>::with_stack(s, |_, ()| black_box(1));
            let r = co.resume(());
            black_box(r);
            stack = Some(co.into_stack());
        });
    });
    g.bench_function("generator (fresh stack)", |b| {
        b.iter(|| {
            let mut gen = Gn::<()>::new_scoped(|_| black_box(1));
            let r = gen.resume();
            black_box(r);
        });
    });
    g.finish();
}

fn generators(c: &mut Criterion) {
    // Check every variant once, outside the timing.
    assert_eq!(generator_sum_bobbin(N), SUM);
    assert_eq!(generator_sum_corosensei(N, DefaultStack::default()).0, SUM);
    assert_eq!(generator_sum_generator_crate(N), SUM);

    let mut g = c.benchmark_group("generator_sum");
    g.throughput(Throughput::Elements(N));
    g.bench_function("plain iterator", |b| b.iter(|| (1..=black_box(N)).map(black_box).sum::<u64>()));
    g.bench_function("bobbin Generator", |b| b.iter(|| black_box(generator_sum_bobbin(N))));
    g.bench_function("corosensei (stack reused by hand)", |b| {
        let mut stack = Some(DefaultStack::default());
        b.iter(|| {
            let (sum, s) = generator_sum_corosensei(N, stack.take().expect("the stack is handed back every iteration"));
            stack = Some(s);
            black_box(sum)
        });
    });
    g.bench_function("generator (fresh stack)", |b| b.iter(|| black_box(generator_sum_generator_crate(N))));
    g.finish();

    // Steady state: N items from a generator that never ends, without creating one.
    let mut g = c.benchmark_group("generator_sum_no_create");
    g.throughput(Throughput::Elements(N));
    g.bench_function("bobbin Generator", |b| {
        let mut gen = Generator::new(|y| {
            let mut i = 0u64;
            loop {
                i += 1;
                y.suspend(i);
            }
        });
        b.iter(|| black_box((&mut gen).take(N as usize).sum::<u64>()));
    });
    g.bench_function("corosensei", |b| {
        let mut co = corosensei::Coroutine::<(), u64, ()>::new(|y, ()| {
            let mut i = 0u64;
            loop {
                i += 1;
                y.suspend(i);
            }
        });
        b.iter(|| {
            let mut sum = 0u64;
            for _ in 0..N {
                if let corosensei::CoroutineResult::Yield(v) = co.resume(()) {
                    sum = sum.wrapping_add(v);
                }
            }
            black_box(sum)
        });
    });
    g.bench_function("generator", |b| {
        let mut gen = Gn::<()>::new_scoped(|mut s| {
            let mut i = 0u64;
            loop {
                i += 1;
                s.yield_(i);
            }
        });
        b.iter(|| black_box((&mut gen).take(N as usize).fold(0u64, u64::wrapping_add)));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = switch, create, generators
}
criterion_main!(benches);
