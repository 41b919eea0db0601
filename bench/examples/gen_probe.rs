//! Quick interleaved generator timing: the cost per item of a generator summing `1..=N`,
//! bobbin's `Generator` against a corosensei coroutine resumed until it returns. `N
//! bobbin|coro` runs one library only, for instruction counting under callgrind.
use std::hint::black_box;

use bobbin_bench::workloads::{generator_sum_bobbin, generator_sum_corosensei};
use corosensei::stack::DefaultStack;

fn main() {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(10_000_000);
    let mut stack = Some(DefaultStack::default());
    let mut coro = |n: u64| {
        let (sum, s) = generator_sum_corosensei(black_box(n), stack.take().unwrap());
        black_box(sum);
        stack = Some(s);
    };
    let bobbin = |n: u64| {
        black_box(generator_sum_bobbin(black_box(n)));
    };
    match std::env::args().nth(2).as_deref() {
        Some("bobbin") => bobbin(n),
        Some("coro") => coro(n),
        _ => bobbin_bench::interleaved_rounds(n, bobbin, coro),
    }
}
