//! Measures bobbin against every peer on every workload listed in `WORKLOADS`, in one
//! run, and writes `bench-results/summary.md` plus one SVG chart per workload (per result:
//! echo writes four). A run of some workloads only (`--only`) names its report after them
//! (`echo.md`, `switch+create.md`), so that it never replaces the full run's summary.
//!
//! ```text
//! cargo run --release -p bobbin-bench --bin compare                 # full run, a few minutes
//! cargo run --release -p bobbin-bench --bin compare -- --quick      # smoke test, seconds, into target/compare-quick
//! cargo run --release -p bobbin-bench --bin compare -- --out DIR --only switch,pingpong
//! cargo run --release -p bobbin-bench --bin compare -- --only echo  # bench-results/echo.md, ~5 min
//! ```
//!
//! Workloads, in the order run: switch, context-swap, create, generator, spawn, spawn-30k,
//! pingpong, select, scale, fib, mutex, mutex-contended, memory, capacity, echo. How each is measured is in `bobbin_bench::compare`
//! and its modules, and in the report itself. Progress goes to stderr.
//!
//! `--park LIBRARY N` is internal: the child process of the memory and capacity
//! workloads (see `bobbin_bench::compare::memory`); so are `--echo-server`, `--echo-load`
//! and `--echo-idle`, the child processes of the echo workload (see
//! `bobbin_bench::compare::echo`).
#![deny(clippy::undocumented_unsafe_blocks)]

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use bobbin_bench::compare::{chart, echo, locks, memory, report, run_timed, workloads, Sizes, WorkloadResult};

/// Every workload, in the order they run.
const WORKLOADS: &[&str] = &[
    "switch",
    "context-swap",
    "create",
    "generator",
    "spawn",
    "spawn-30k",
    "pingpong",
    "select",
    "scale",
    "fib",
    "mutex",
    "mutex-contended",
    "memory",
    "capacity",
    "echo",
];

const USAGE: &str = "usage: compare [--quick] [--out DIR] [--only WORKLOAD[,WORKLOAD...]]

  --quick   one sample per library with tiny sizes (checks that everything runs)
  --out     where the report and the charts go (default: bench-results/ at the workspace
            root; with --quick, compare-quick/ in the target directory, so that a smoke
            test never overwrites the committed results)
  --only    run only these workloads: switch, context-swap, create, generator, spawn,
            spawn-30k, pingpong, select, scale, fib, mutex, mutex-contended, memory, capacity, echo; the report is then named
            after them (--only echo writes echo.md) instead of summary.md";

struct Args {
    quick: bool,
    out: Option<PathBuf>,
    only: Vec<String>,
}

fn fail(msg: &str) -> ! {
    eprintln!("compare: {msg}\n\n{USAGE}");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args { quick: false, out: None, only: WORKLOADS.iter().map(|s| s.to_string()).collect() };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--out" => args.out = Some(PathBuf::from(it.next().unwrap_or_else(|| fail("--out needs a directory")))),
            "--only" => {
                let list = it.next().unwrap_or_else(|| fail("--only needs a list of workloads"));
                args.only = list.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = args.only.iter().find(|w| !WORKLOADS.contains(&w.as_str())) {
                    fail(&format!("unknown workload {bad:?}"));
                }
            }
            "--park" => {
                let lib = it.next().unwrap_or_else(|| fail("--park needs LIBRARY N"));
                let n = it.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| fail("--park needs LIBRARY N"));
                memory::child_main(&lib, n);
            }
            "--echo-server" | "--echo-load" | "--echo-idle" => {
                let rest: Vec<String> = it.collect();
                echo::child_main(&a, &rest);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    args
}

/// Where the report goes without `--out`. A full run replaces the committed
/// `bench-results/`; a quick run's figures measure nothing, so it goes to `compare-quick/`
/// in the target directory the binary was built in (`target/compare-quick` by default).
fn default_out(quick: bool) -> PathBuf {
    if !quick {
        return PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench-results"));
    }
    // The binary is <target>/<profile>/compare.
    let target = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()));
    target.unwrap_or_else(std::env::temp_dir).join("compare-quick")
}

/// Adds the speed-up from 1 to 2 workers of each runtime to the scale result.
fn note_speedups(w: &mut WorkloadResult) {
    let mut parts = Vec::new();
    for pair in w.rows.chunks(2) {
        if let [one, two] = pair {
            if let (Some(a), Some(b)) = (one.median(), two.median()) {
                let name = one.library.split(',').next().unwrap_or(&one.library);
                parts.push(format!("{name} {:.2}x", a / b));
            }
        }
    }
    if !parts.is_empty() {
        w.notes
            .push(format!("Speed-up from 1 to 2 workers (median 1 worker / median 2 workers): {}.", parts.join(", ")));
    }
}

fn main() {
    let args = parse_args();
    let out = args.out.clone().unwrap_or_else(|| default_out(args.quick));
    let sizes = if args.quick { Sizes::quick() } else { Sizes::full() };
    // may reads its configuration once, when first used.
    bobbin_bench::workloads::may_init();

    let started = SystemTime::now();
    let t0 = Instant::now();
    let mut results = Vec::new();
    let run: Vec<&str> = WORKLOADS.iter().copied().filter(|key| args.only.iter().any(|w| w == key)).collect();
    for &key in &run {
        eprintln!("== {key}");
        let result = match key {
            "switch" => run_timed(workloads::switch(&sizes), &sizes),
            "context-swap" => run_timed(workloads::context_swap(&sizes), &sizes),
            "create" => run_timed(workloads::create(&sizes), &sizes),
            "generator" => run_timed(workloads::generator(&sizes), &sizes),
            "spawn" => run_timed(workloads::spawn(&sizes, false), &sizes),
            "spawn-30k" => run_timed(workloads::spawn(&sizes, true), &sizes),
            "pingpong" => run_timed(workloads::pingpong(&sizes), &sizes),
            "select" => run_timed(workloads::select(&sizes), &sizes),
            "scale" => {
                let mut w = run_timed(workloads::scale(&sizes), &sizes);
                note_speedups(&mut w);
                w
            }
            "fib" => run_timed(workloads::fib(&sizes), &sizes),
            "mutex" => run_timed(locks::mutex(&sizes), &sizes),
            "mutex-contended" => run_timed(locks::mutex_contended(&sizes), &sizes),
            "memory" => memory::bytes_per_parked(&sizes),
            "capacity" => memory::capacity(&sizes),
            "echo" => {
                results.extend(echo::run(&sizes));
                continue;
            }
            _ => unreachable!("every workload is listed"),
        };
        results.push(result);
    }
    let took = t0.elapsed();

    if let Err(e) = std::fs::create_dir_all(&out) {
        fail(&format!("cannot create {}: {e}", out.display()));
    }
    // A run of some workloads only is named after them, never `summary.md`.
    let every = run.len() == WORKLOADS.len();
    let summary_path = out.join(if every { "summary.md".to_string() } else { format!("{}.md", run.join("+")) });
    let mut shown = Vec::new();
    if args.quick {
        shown.push("--quick".to_string());
    }
    if !every {
        shown.push(format!("--only {}", run.join(",")));
    }
    let text = report::summary(&results, &sizes, &shown.join(" "), started, took);
    if let Err(e) = std::fs::write(&summary_path, text) {
        fail(&format!("cannot write {}: {e}", summary_path.display()));
    }
    let mut ok = true;
    for w in &results {
        let rounds = match w.key {
            "spawn" | "spawn-30k" | "scale" => sizes.rounds_heavy,
            "memory" => sizes.rounds_memory,
            "capacity" => 1,
            k if k.starts_with("echo") => sizes.echo_rounds,
            _ => sizes.rounds,
        };
        if let Err(e) = chart::draw(w, rounds, &out.join(format!("{}.svg", w.key))) {
            eprintln!("compare: chart not drawn: {e}");
            ok = false;
        }
    }
    eprintln!("wrote {} and {} charts in {:.1} s", summary_path.display(), results.len(), took.as_secs_f64());
    if !ok {
        std::process::exit(1);
    }
}
