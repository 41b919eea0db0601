//! Resident memory per parked green thread: bobbin against tokio tasks and may coroutines.
//!
//! Each phase parks N tasks on one wait queue, then reads `VmRSS` and `VmPTE` from
//! `/proc/self/status` and counts the lines of `/proc/self/maps`, and prints the growth
//! over a baseline taken just before the tasks were spawned, per parked task. Then it
//! releases them and checks that every one of them finished.
//! - bobbin: `bobbin::spawn`ed green threads blocked in `recv` of a cloned
//!   `bobbin::sync::channel` receiver (released by N sends);
//! - tokio: `tokio::spawn`ed tasks on a current_thread runtime awaiting one
//!   `tokio::sync::Notify` (released by `notify_waiters`);
//! - may: coroutines on one worker blocked in `recv` of a cloned `may::sync::mpmc`
//!   receiver (released by N sends).
//!
//! Every phase runs in a child process of its own (this binary re-executed with
//! `LIBRARY N` as arguments), so that no phase inherits another's heap or stack pool and
//! one library's failure does not end the others.
//!
//! ```text
//! cargo run --release -p bobbin-bench --example parked_memory            # every phase
//! cargo run --release -p bobbin-bench --example parked_memory -- bobbin 1000000
//! ```

use std::cell::Cell;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Memory figures of this process.
#[derive(Clone, Copy)]
struct Mem {
    rss_kb: u64,
    pte_kb: u64,
    maps: usize,
}

fn mem() -> Mem {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps").lines().count();
    Mem { rss_kb: field("VmRSS:"), pte_kb: field("VmPTE:"), maps }
}

/// One line of results; `waits` is how many times the measuring task yielded (may: slept
/// for 1 ms) before every task had reached its wait.
fn report(lib: &str, n: usize, before: Mem, after: Mem, waits: usize) {
    let how = if lib == "may" { "1 ms sleeps" } else { "yields" };
    let rss = (after.rss_kb as f64 - before.rss_kb as f64) * 1024.0;
    let pte = (after.pte_kb as f64 - before.pte_kb as f64) * 1024.0;
    println!(
        "{lib:<7} {n:>9} parked: {:>7.0} bytes each (VmRSS + VmPTE); VmRSS {:>7.0} + VmPTE {:>5.0} bytes each; \
         VmRSS +{:.1} MiB, VmPTE +{:.1} MiB, maps {} -> {} ({waits} {how} until all parked)",
        (rss + pte) / n as f64,
        rss / n as f64,
        pte / n as f64,
        rss / 1048576.0,
        pte / 1048576.0,
        before.maps,
        after.maps,
    );
}

fn phase_bobbin(n: usize) {
    bobbin::run(move || {
        let before = mem();
        let (tx, rx) = bobbin::sync::channel::<u64>();
        let waiting = Rc::new(Cell::new(0usize));
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let rx = rx.clone();
                let waiting = Rc::clone(&waiting);
                bobbin::spawn(move || {
                    waiting.set(waiting.get() + 1);
                    rx.recv().unwrap()
                })
            })
            .collect();
        let mut yields = 0;
        while waiting.get() < n {
            bobbin::yield_now();
            yields += 1;
        }
        let after = mem();
        report("bobbin", n, before, after, yields);
        for _ in 0..n {
            tx.send(1).unwrap();
        }
        let done: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(done, n as u64, "every green thread received one message");
    });
}

fn phase_tokio(n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    rt.block_on(async move {
        let before = mem();
        let notify = Arc::new(tokio::sync::Notify::new());
        let waiting = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let notify = Arc::clone(&notify);
                let waiting = Arc::clone(&waiting);
                tokio::spawn(async move {
                    let notified = notify.notified();
                    waiting.fetch_add(1, Ordering::Relaxed);
                    notified.await;
                    1u64
                })
            })
            .collect();
        let mut yields = 0;
        while waiting.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
            yields += 1;
        }
        // A task counts itself in the same poll that registers it with `notify`.
        let after = mem();
        report("tokio", n, before, after, yields);
        notify.notify_waiters();
        let mut done = 0;
        for h in hs {
            done += h.await.unwrap();
        }
        assert_eq!(done, n as u64, "every task was woken");
    });
}

fn phase_may(n: usize) {
    may::config().set_workers(1);
    // may::go! wraps may's `unsafe fn spawn`, whose contract is that the coroutine neither
    // relies on thread-locals staying put nor blocks its OS thread; reading /proc blocks
    // the single worker for a moment, while nothing else needs to run.
    let outer = may::go!(move || {
        let before = mem();
        let (tx, rx) = may::sync::mpmc::channel::<u64>();
        let waiting = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let rx = rx.clone();
                let waiting = Arc::clone(&waiting);
                may::go!(move || {
                    waiting.fetch_add(1, Ordering::Relaxed);
                    rx.recv().unwrap()
                })
            })
            .collect();
        // may starts coroutines spawned from a coroutine from its global queue, which a
        // worker reads only when its local queue is empty; a yielding coroutine goes back
        // on the local queue, so a yield loop here would spin forever. Sleep instead.
        let mut sleeps = 0;
        while waiting.load(Ordering::Relaxed) < n {
            may::coroutine::sleep(Duration::from_millis(1));
            sleeps += 1;
        }
        let after = mem();
        report("may", n, before, after, sleeps);
        for _ in 0..n {
            tx.send(1).unwrap();
        }
        let done: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(done, n as u64, "every coroutine received one message");
    });
    if outer.join().is_err() {
        // A coroutine panicked (may reports stack allocation failure that way); leave at
        // once rather than wait for a runtime in that state to shut down.
        eprintln!("may {n}: the measuring coroutine panicked");
        std::process::exit(2);
    }
}

/// Runs one phase in a child process and prints its result, or why it has none.
fn run_phase(lib: &str, n: usize) {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args([lib, &n.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn phase");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for phase") {
            break Some(status);
        }
        if start.elapsed() > PHASE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("phase output");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr.lines().filter(|l| !l.trim().is_empty()).take(3).collect::<Vec<_>>().join(" | ");
    match status {
        Some(s) if s.success() => {}
        Some(s) => println!("{lib:<7} {n:>9} parked: FAILED ({s}): {why}"),
        None => println!("{lib:<7} {n:>9} parked: HUNG, killed after {PHASE_TIMEOUT:?}: {why}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            for &(lib, n) in PHASES {
                run_phase(lib, n);
            }
        }
        [lib, n] => {
            let n: usize = n.parse().expect("N must be a number");
            match lib.as_str() {
                "bobbin" => phase_bobbin(n),
                "tokio" => phase_tokio(n),
                "may" => phase_may(n),
                other => panic!("unknown library {other:?}: bobbin, tokio or may"),
            }
        }
        _ => panic!("usage: parked_memory [bobbin|tokio|may N]"),
    }
}
