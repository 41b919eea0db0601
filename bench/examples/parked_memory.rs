//! Resident memory per parked green thread at fixed counts: bobbin against tokio tasks and
//! may coroutines, with 30,000 to 1,000,000 parked (the `compare` binary's `memory`
//! workload measures every peer at one smaller count).
//!
//! Each phase parks N tasks on one wait queue and prints the growth of `VmRSS` and `VmPTE`
//! (`/proc/self/status`) over a baseline taken just before the tasks were spawned, per
//! parked task, and the line count of `/proc/self/maps` before and after; then it releases
//! them and checks that every one of them finished. The parking, the readings and the child
//! process each phase runs in are those of the `compare` binary's memory workload
//! (`bobbin_bench::compare::memory`, which says what "parked" means per library): this
//! binary re-executed with `--park LIBRARY N`, so that no phase inherits another's heap or
//! stack pool and one library's failure does not end the others.
//!
//! ```text
//! cargo run --release -p bobbin-bench --example parked_memory            # every phase
//! cargo run --release -p bobbin-bench --example parked_memory -- bobbin 1000000
//! ```

use std::time::Duration;

use bobbin_bench::compare::memory::{child_main, park_child, LIBRARIES};

/// The phases the driver runs, in order: (library, parked tasks).
const PHASES: &[(&str, usize)] = &[
    ("bobbin", 100_000),
    ("tokio", 100_000),
    ("may", 100_000),
    ("bobbin", 30_000),
    ("tokio", 30_000),
    ("may", 30_000),
    ("bobbin", 1_000_000),
    ("tokio", 1_000_000),
];

/// A phase still running after this long is killed and reported as hung.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one phase in a child process and prints its result, or why it has none.
fn run_phase(lib: &str, n: usize) {
    match park_child(lib, n, PHASE_TIMEOUT) {
        Ok(p) => println!(
            "{lib:<7} {n:>9} parked: {:>7.0} bytes each (VmRSS + VmPTE); VmRSS {:>7.0} + VmPTE {:>5.0} bytes each; \
             VmRSS +{:.1} MiB, VmPTE +{:.1} MiB, maps {} -> {}",
            (p.rss_bytes + p.pte_bytes) / n as f64,
            p.rss_bytes / n as f64,
            p.pte_bytes / n as f64,
            p.rss_bytes / 1048576.0,
            p.pte_bytes / 1048576.0,
            p.maps_before,
            p.maps_after,
        ),
        Err(why) => println!("{lib:<7} {n:>9} parked: FAILED: {why}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let libraries: Vec<&str> = LIBRARIES.iter().map(|(lib, _)| *lib).collect();
    match args.as_slice() {
        [] => {
            for &(lib, n) in PHASES {
                run_phase(lib, n);
            }
        }
        [flag, lib, n] if flag == "--park" => child_main(lib, n.parse().expect("N must be a number")),
        [lib, n] if libraries.contains(&lib.as_str()) => run_phase(lib, n.parse().expect("N must be a number")),
        _ => panic!("usage: parked_memory [LIBRARY N], LIBRARY one of {}", libraries.join(", ")),
    }
}
