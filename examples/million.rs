//! Parks 1,000,000 green threads at once (or COUNT), each blocked on a channel, then wakes
//! them all; prints the resident memory each parked green thread costs and how many kernel
//! mappings the process uses.
//!
//! Run with `cargo run --release --example million [-- COUNT]`. Before it starts it says
//! how much memory the count will need, and stops if that is more than the machine has
//! available.

use std::time::Instant;

use bobbin::sync::channel;
use bobbin::{run, spawn, yield_now};

mod common;
use common::footprint as memory;

/// Resident bytes (VmRSS + VmPTE) one parked green thread costs, rounded up: its touched
/// stack page, its task record, handle and channel waiter, and its share of page tables.
/// The memory workload of `bench-results/summary.md` measured 4,777; the run below prints
/// its own figure.
const BYTES_PER_PARKED: u64 = 4_800;

const USAGE: &str = "usage: cargo run --release --example million [-- COUNT]   (COUNT defaults to 1000000)";

/// `n` with thousands separated by commas.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `MemAvailable` of `/proc/meminfo` in bytes, if the kernel reports it.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Says how much memory `n` parked green threads will take; exits if the machine does
/// not have it.
fn warn_about_memory(n: usize) {
    const GIB: f64 = (1u64 << 30) as f64;
    let needed = n as u64 * BYTES_PER_PARKED;
    let available = available_memory();
    println!(
        "parking {} green threads needs about {:.2} GiB of memory ({} bytes each){}",
        grouped(n as u64),
        needed as f64 / GIB,
        grouped(BYTES_PER_PARKED),
        available.map_or(String::new(), |a| format!("; available here: {:.1} GiB", a as f64 / GIB))
    );
    if let Some(available) = available.filter(|&a| needed > a) {
        eprintln!(
            "million: that is more than this machine has available; a count of at most {} would fit\n{USAGE}",
            grouped(available / BYTES_PER_PARKED)
        );
        std::process::exit(2);
    }
}

fn main() {
    let n: usize = match std::env::args().nth(1) {
        None => 1_000_000,
        Some(arg) => match arg.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("million: {arg:?} is not a count of green threads\n{USAGE}");
                std::process::exit(2);
            }
        },
    };
    warn_about_memory(n);
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
        println!("parked {} green threads in {:.2} s", grouped(n as u64), spawned.as_secs_f64());
        println!("resident memory (VmRSS + VmPTE) per parked green thread: {per:.0} bytes ({:.2} KiB)", per / 1024.0);
        println!(
            "kernel mappings: {maps} (was {base_maps}; vm.max_map_count = {max_map}) for {} guard-paged stacks",
            grouped(n as u64)
        );
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
        "woke all {} and collected their replies in {:.2} s: {}",
        grouped(n as u64),
        elapsed.as_secs_f64(),
        if released { "every reply arrived exactly once" } else { "MISMATCH" }
    );
    assert!(released, "some green thread was lost or woke twice");
}
