//! Interleaved timing of one `Context::swap` round trip (parent -> child -> parent) against
//! Boost.Context's `jump_fcontext` round trip (the `context` crate's `resume`), in one
//! process, with equal MXCSR status flags on both sides of each switch and after an inexact
//! operation in the parent (flags that differ between the sides).
//!
//! ```text
//! ctx_probe [N]                 400 interleaved batches of N (20,000) round trips of each,
//!                               plain and after an inexact operation
//! ctx_probe N ctx|fctx|coro [inexact]   one side only, for instruction counting under callgrind
//! ```
//! `coro` is corosensei's resume + suspend, for reference.
use std::hint::black_box;

use bobbin_bench::workloads::{clear_fp_status, raise_inexact, FcontextPair, SwapPair};

/// The floating-point state a batch runs in: status flags cleared, then (with `inexact`)
/// the parent's inexact flag raised, so that it differs from the child's.
fn fp_state(inexact: bool) {
    clear_fp_status();
    if inexact {
        raise_inexact();
    }
}

fn main() {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(20_000);
    let only = std::env::args().nth(2);
    let inexact = std::env::args().nth(3).as_deref() == Some("inexact");
    // Made with the flags cleared: a child starts with its creator's MXCSR.
    fp_state(false);
    let mut ctx = SwapPair::new();
    let mut fctx = FcontextPair::new();
    let mut co = corosensei::Coroutine::<(), (), ()>::new(|y, ()| loop {
        y.suspend(())
    });
    if let Some(which) = only {
        fp_state(inexact);
        match which.as_str() {
            "ctx" => ctx.round_trips(n),
            "fctx" => fctx.round_trips(n),
            "coro" => {
                for _ in 0..n {
                    black_box(co.resume(()));
                }
            }
            other => panic!("unknown side {other:?}: ctx, fctx or coro"),
        }
        return;
    }
    let samples = 400;
    for inexact in [false, true] {
        println!("{}", if inexact { "after an inexact operation in the parent:" } else { "equal status flags:" });
        bobbin_bench::interleaved_samples(
            n,
            samples,
            "fcontext",
            |n| {
                fp_state(inexact);
                ctx.round_trips(n)
            },
            |n| {
                fp_state(inexact);
                fctx.round_trips(n)
            },
        );
    }
}
