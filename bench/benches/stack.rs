//! Stacks: a recycled stack from a `StackPool` against a freshly mapped one (bobbin's and
//! corosensei's), 128 KiB each.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::hint::black_box;

use bobbin::stack::{GuardMode, Stack, StackPool};
use corosensei::stack::DefaultStack;
use criterion::{criterion_group, criterion_main, Criterion};

const SIZE: usize = 128 * 1024;

fn stacks(c: &mut Criterion) {
    let mut g = c.benchmark_group("stack");

    g.bench_function("bobbin StackPool get+put", |b| {
        let mut pool = StackPool::new(SIZE).expect("create a pool");
        let first = pool.get().expect("first stack");
        pool.put(first);
        b.iter(|| {
            let s = pool.get().expect("recycled stack");
            pool.put(black_box(s));
        });
    });
    g.bench_function("bobbin Stack::new+drop (guard via madvise)", |b| {
        b.iter(|| black_box(Stack::new(SIZE).expect("fresh stack")));
    });
    g.bench_function("bobbin Stack mprotect guard new+drop", |b| {
        b.iter(|| black_box(Stack::with_guard_mode(SIZE, GuardMode::Mprotect).expect("fresh stack")));
    });
    g.bench_function("corosensei DefaultStack::new+drop", |b| {
        b.iter(|| black_box(DefaultStack::new(SIZE).expect("fresh stack")));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = stacks
}
criterion_main!(benches);
