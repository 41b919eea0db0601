//! Comparison benchmarks for bobbin: the criterion benchmarks in `benches/`, and the
//! `compare` binary (`src/bin/compare.rs`), which runs every workload of DESIGN.md
//! section 8 for bobbin and its peers in one process and writes a report with charts. The
//! binary's parts live in [`compare`]; the workload bodies both measure live in
//! [`workloads`].
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod compare;
pub mod workloads;

/// Times `bobbin` and `corosensei` (each runs `n` iterations when called) alternately, five
/// rounds, and prints nanoseconds per iteration and their ratio each round: the probes'
/// interleaved comparison, so that the machine's drift hits both alike.
pub fn interleaved_rounds(n: u64, mut bobbin: impl FnMut(u64), mut corosensei: impl FnMut(u64)) {
    let per_iter = |f: &mut dyn FnMut(u64)| {
        let t = std::time::Instant::now();
        f(n);
        t.elapsed().as_nanos() as f64 / n as f64
    };
    for round in 0..5 {
        let tb = per_iter(&mut bobbin);
        let tc = per_iter(&mut corosensei);
        println!("round {round}: bobbin {tb:.2} ns, corosensei {tc:.2} ns, ratio {:.2}", tb / tc);
    }
}
