//! Parks 1,000,000 green threads at once, each blocked on a channel, then wakes them all;
//! prints the resident memory each parked green thread costs and how many kernel
//! mappings the process uses.
//!
//! Run with `cargo run --release --example million [-- COUNT]`.

use std::time::Instant;

use bobbin::sync::channel;
use bobbin::{run, spawn, yield_now};

mod common;
use common::footprint as memory;

fn main() {
    let n: usize = std::env::args().nth(1).map(|s| s.parse().expect("a count")).unwrap_or(1_000_000);
    let max_map: usize =
        std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    let (released, elapsed) = run(move || {
        let (base_bytes, base_maps) = memory();
        let start = Instant::now();
        let (go_tx, go_rx) = channel::<u32>();
        let (done_tx, done_rx) = channel::<u32>();
        for _ in 0..n {
            let rx = go_rx.clone();
            let done = done_tx.clone();
            // Detached: each green thread reports back through `done` instead of a join.
            drop(spawn(move || {
                let v = rx.recv().expect("a wake-up message");
                done.send(v).expect("the main green thread is listening");
            }));
        }
        drop(done_tx);
        // Let every green thread run up to its `recv` and park there.
        yield_now();
        let spawned = start.elapsed();
        let (bytes, maps) = memory();
        let per = (bytes.saturating_sub(base_bytes)) as f64 / n as f64;
        println!("parked {n} green threads in {:.2} s", spawned.as_secs_f64());
        println!("resident memory (VmRSS + VmPTE) per parked green thread: {per:.0} bytes ({:.2} KiB)", per / 1024.0);
        println!("kernel mappings: {maps} (was {base_maps}; vm.max_map_count = {max_map}) for {n} guard-paged stacks");
        let wake = Instant::now();
        for i in 0..n {
            go_tx.send(i as u32 % 7).expect("receivers are parked");
        }
        let mut count = 0usize;
        let mut sum = 0u64;
        for v in done_rx.iter() {
            count += 1;
            sum += u64::from(v);
        }
        (count == n && sum == (0..n as u64).map(|i| i % 7).sum::<u64>(), wake.elapsed())
    });
    println!(
        "woke all {n} and collected their replies in {:.2} s: {}",
        elapsed.as_secs_f64(),
        if released { "every reply arrived exactly once" } else { "MISMATCH" }
    );
    assert!(released, "some green thread was lost or woke twice");
}
