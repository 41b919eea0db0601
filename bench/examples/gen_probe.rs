//! Quick interleaved generator timing: the cost per item of a generator summing `1..=K`,
//! bobbin's `Generator` against a corosensei coroutine resumed until it returns, `N` items
//! in all (`N [K]`; K defaults to N, one generator per round). `N bobbin|coro [K]` runs one
//! library only, for instruction counting under callgrind.
use std::hint::black_box;

use bobbin_bench::workloads::{generator_sum_bobbin, generator_sum_corosensei};
use corosensei::stack::DefaultStack;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map_or(10_000_000, |s| s.parse().unwrap());
    let which = args.get(2).filter(|w| *w == "bobbin" || *w == "coro");
    let per: u64 = args.get(if which.is_some() { 3 } else { 2 }).map_or(n, |s| s.parse().unwrap());
    let mut stack = Some(DefaultStack::default());
    let mut coro = |n: u64| {
        for _ in 0..n / per {
            let (sum, s) = generator_sum_corosensei(black_box(per), stack.take().unwrap());
            black_box(sum);
            stack = Some(s);
        }
    };
    let bobbin = |n: u64| {
        for _ in 0..n / per {
            black_box(generator_sum_bobbin(black_box(per)));
        }
    };
    match which.map(String::as_str) {
        Some("bobbin") => bobbin(n),
        Some("coro") => coro(n),
        _ => bobbin_bench::interleaved_rounds(n, bobbin, coro),
    }
}
