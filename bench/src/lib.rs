//! Comparison benchmarks for bobbin: the criterion benchmarks in `benches/`, and the
//! `compare` binary (`src/bin/compare.rs`), which runs every workload of the comparison
//! for bobbin and its peers in one process and writes a report with charts. The
//! binary's parts live in [`compare`]; the workload bodies both measure live in
//! [`workloads`].
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod compare;
pub mod workloads;

/// Times `bobbin` and `corosensei` (each runs `n` iterations when called) alternately, five
/// rounds, and prints nanoseconds per iteration and their ratio each round: the probes'
/// interleaved comparison, so that the machine's drift hits both alike.
pub fn interleaved_rounds(n: u64, bobbin: impl FnMut(u64), corosensei: impl FnMut(u64)) {
    interleaved_pair(n, "corosensei", bobbin, corosensei);
}

/// [`interleaved_rounds`] against the peer called `peer_name`; the ratio printed is
/// bobbin's time over the peer's (below 1: bobbin faster).
pub fn interleaved_pair(n: u64, peer_name: &str, mut bobbin: impl FnMut(u64), mut peer: impl FnMut(u64)) {
    let per_iter = |f: &mut dyn FnMut(u64)| {
        let t = std::time::Instant::now();
        f(n);
        t.elapsed().as_nanos() as f64 / n as f64
    };
    for round in 0..5 {
        let tb = per_iter(&mut bobbin);
        let tp = per_iter(&mut peer);
        println!("round {round}: bobbin {tb:.2} ns, {peer_name} {tp:.2} ns, ratio {:.2}", tb / tp);
    }
}

/// Short batches of `n` iterations of `bobbin` and `peer`, alternately, `samples` of each,
/// and prints the fastest, the 10th percentile and the median batch of each, in ns per
/// iteration. On a machine shared with other work the low percentiles show the code's own
/// cost (preemption only ever adds time); the median shows what a user would see.
pub fn interleaved_samples(
    n: u64,
    samples: usize,
    peer_name: &str,
    mut bobbin: impl FnMut(u64),
    mut peer: impl FnMut(u64),
) {
    let mut times = [Vec::with_capacity(samples), Vec::with_capacity(samples)];
    for _ in 0..samples {
        for (side, f) in [&mut bobbin as &mut dyn FnMut(u64), &mut peer].into_iter().enumerate() {
            let t = std::time::Instant::now();
            f(n);
            times[side].push(t.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    let mut stats = [(0.0, 0.0, 0.0); 2];
    for (side, v) in times.iter_mut().enumerate() {
        v.sort_by(f64::total_cmp);
        stats[side] = (v[0], v[v.len() / 10], v[v.len() / 2]);
    }
    let [(b0, b10, b50), (p0, p10, p50)] = stats;
    println!("bobbin      min {b0:6.2}  p10 {b10:6.2}  median {b50:6.2} ns");
    println!("{peer_name:11} min {p0:6.2}  p10 {p10:6.2}  median {p50:6.2} ns");
    println!("peer / bobbin: min {:.2}, p10 {:.2}, median {:.2}", p0 / b0, p10 / b10, p50 / b50);
}
