//! The multi-threaded runtime (`bobbin::Runtime`) against tokio's multi-thread runtime and
//! may, each with the same number of workers (1 and 2; one group per workload and worker
//! count, so every ratio comes from one run). One criterion iteration is one whole
//! workload, started from the bench thread, which then waits for it:
//! - `rt_spawn_yield_{1,2}w`: one task spawns N tasks that yield 10 times each, then joins
//!   them all (reported per task). N = 100,000 without may, whose guard-paged stacks cannot
//!   all be mapped at once here (`vm.max_map_count`); `rt_spawn_yield_30k_{1,2}w` repeats
//!   it with N = 30,000 and may included;
//! - `rt_fib_{1,2}w`: fib(25) with a task per call, `a = spawn(fib(n - 1)); b = fib(n - 2);
//!   join(a) + b`: 121,392 spawns and joins, with a deep tree of tasks waiting on each
//!   other (reported per spawned task);
//! - `rt_fanout_{1,2}w`: a producer task sends 0..100,000 through one bounded MPMC channel
//!   of capacity 128 to 4 consumer tasks, which sum what they receive and send their sums
//!   back through one channel to the task that started them, which totals them (reported
//!   per message sent by the producer).
//!
//! Every result is checked once before it is measured.
//!
//! Peers and how each is used:
//! - bobbin: `Runtime::builder().workers(n)`, the workload's root is `Runtime::block_on`
//!   (a green thread on a worker), its children `bobbin::runtime::spawn` (the worker's
//!   stealable deque), `bobbin::yield_now`, `bobbin::sync::{bounded, channel}`.
//! - tokio: `Builder::new_multi_thread().worker_threads(n)`; the root future is spawned on
//!   the runtime and the bench thread `block_on`s its handle, so that, as with bobbin, all
//!   the work runs on the workers and `tokio::spawn` uses a worker's local queue (a plain
//!   `block_on` would run the root on the bench thread, a third thread, and spawn through
//!   the global queue). Recursive fib boxes its futures. The fan-out channel is
//!   `async_channel::bounded(128)` (MPMC, as bobbin's: tokio's own mpsc has a single
//!   consumer, and one channel per consumer with round-robin would be an easier, different
//!   workload); fan-in is `tokio::sync::mpsc`.
//! - may: `may::go!`, join, `may::coroutine::yield_now`. may has no bounded channel: the
//!   fan-out is `may::sync::mpmc::channel` bounded to 128 in flight by a `may::sync::Semphore`
//!   (the producer takes a permit per message, a consumer returns it), fan-in
//!   `may::sync::mpsc`. may's runtime is global and reads its worker count once per
//!   process, so its benchmarks run in a child process (this bench binary started again
//!   with `BOBBIN_BENCH_MAY_CHILD` set, through criterion's `iter_custom`): the child sets
//!   the worker count, runs the workload once untimed (starts may's workers, fills its
//!   coroutine pool), then times the requested iterations and prints the elapsed
//!   nanoseconds. Process start-up is outside the time. `rt_fanout` on may with 2 workers
//!   deadlocks now and then here (about once per thousand iterations, every coroutine
//!   parked, may's workers idle in `epoll_wait`; also with the semaphore replaced by a
//!   channel of permits): a child that has not finished after [`MAY_CHILD_DEADLINE`] is
//!   killed, reported on stderr and run again.
//!
//! Runtimes are built once per benchmark, outside the timed loop, and dropped before the
//! next one is built, so no idle workers of another runtime are around. Default stacks:
//! bobbin 128 KiB, may 32 KiB (tokio tasks have none). The runtime builders and the bodies
//! of `rt_spawn_yield` are those of `bobbin_bench::workloads`, which the `compare` binary's
//! `scale` workload runs too.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bobbin_bench::workloads::{
    bobbin_runtime, fanout_bobbin, fib_bobbin, fib_plain, fib_tokio, may_run, rt_spawn_yield_bobbin,
    rt_spawn_yield_tokio, spawn_yield_may, tokio_multi_thread, tokio_run,
};
use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, Criterion, SamplingMode, Throughput};

/// Worker counts measured (the bench machine has 2 cores).
const WORKERS: [usize; 2] = [1, 2];
/// Yields per task in `rt_spawn_yield`.
const YIELDS: usize = 10;
/// Tasks per `rt_spawn_yield` iteration.
const SPAWN_N: usize = 100_000;
/// Tasks per `rt_spawn_yield_30k` iteration (the largest count may can hold here).
const SPAWN_N_MAY: usize = 30_000;
/// `rt_fib` computes fib(FIB_N) = 75,025 (checked against [`fib_plain`]).
const FIB_N: u64 = 25;
/// `rt_fib_may` computes fib(FIB_N_MAY), the largest n may can hold here.
const FIB_N_MAY: u64 = 23;
use bobbin_bench::workloads::{CONSUMERS, FANOUT_CAP, FANOUT_N};
/// The total the fan-in must add up to: the sum of 0..FANOUT_N.
const FANOUT_TOTAL: u64 = FANOUT_N * (FANOUT_N - 1) / 2;
/// Set in the environment of a child process that measures may (see the module docs).
const MAY_CHILD_ENV: &str = "BOBBIN_BENCH_MAY_CHILD";

// ---------------------------------------------------------------------------------------
// rt_spawn_yield

/// Settings of the groups whose one iteration takes tens of milliseconds or more.
fn slow_group(g: &mut BenchmarkGroup<'_, WallTime>, elements: u64) {
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(elements));
}

fn spawn_yield_group(c: &mut Criterion, name: &str, n: usize, with_may: bool) {
    for workers in WORKERS {
        let mut g = c.benchmark_group(format!("{name}_{workers}w"));
        slow_group(&mut g, n as u64);
        let rt = bobbin_runtime(workers);
        g.bench_function("bobbin", |b| b.iter(|| rt_spawn_yield_bobbin(&rt, n, YIELDS)));
        drop(rt);
        let rt = tokio_multi_thread(workers);
        g.bench_function("tokio multi_thread", |b| b.iter(|| rt_spawn_yield_tokio(&rt, n, YIELDS)));
        drop(rt);
        if with_may {
            g.bench_function("may", |b| b.iter_custom(|iters| may_measure(MayWorkload::SpawnYield, workers, iters)));
        }
        g.finish();
    }
}

fn spawn_yield(c: &mut Criterion) {
    spawn_yield_group(c, "rt_spawn_yield", SPAWN_N, false);
    spawn_yield_group(c, "rt_spawn_yield_30k", SPAWN_N_MAY, true);
}

// ---------------------------------------------------------------------------------------
// rt_fib

/// Tasks spawned while computing fib(n) with a task per call: one per call with n >= 2,
/// fib(n + 1) - 1 of them.
fn fib_spawns(n: u64) -> u64 {
    fib_plain(n + 1) - 1
}

fn fib_may(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    // may::go!: no thread-locals, no OS-thread blocking (see `bobbin_bench::workloads`).
    let a = may::go!(move || fib_may(n - 1));
    let b = fib_may(n - 2);
    a.join().unwrap() + b
}

fn fib_group(c: &mut Criterion, name: &str, n: u64, with_may: bool) {
    let expected = fib_plain(n);
    for workers in WORKERS {
        let mut g = c.benchmark_group(format!("{name}_{workers}w"));
        slow_group(&mut g, fib_spawns(n));
        let rt = bobbin_runtime(workers);
        assert_eq!(rt.block_on(move || fib_bobbin(n)), expected);
        g.bench_function("bobbin", |b| b.iter(|| black_box(rt.block_on(move || fib_bobbin(n)))));
        drop(rt);
        let rt = tokio_multi_thread(workers);
        assert_eq!(tokio_run(&rt, fib_tokio(n)), expected);
        g.bench_function("tokio multi_thread", |b| b.iter(|| black_box(tokio_run(&rt, fib_tokio(n)))));
        drop(rt);
        if with_may {
            g.bench_function("may", |b| b.iter_custom(|iters| may_measure(MayWorkload::Fib, workers, iters)));
        }
        g.finish();
    }
}

fn fib(c: &mut Criterion) {
    assert_eq!(fib_plain(FIB_N), 75_025);
    fib_group(c, "rt_fib", FIB_N, false);
    fib_group(c, &format!("rt_fib{FIB_N_MAY}"), FIB_N_MAY, true);
}

// ---------------------------------------------------------------------------------------
// rt_fanout

async fn fanout_tokio() -> u64 {
    let (tx, rx) = async_channel::bounded::<u64>(FANOUT_CAP);
    let (sum_tx, mut sum_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    for _ in 0..CONSUMERS {
        let rx = rx.clone();
        let sum_tx = sum_tx.clone();
        tokio::spawn(async move {
            let mut sum = 0;
            while let Ok(v) = rx.recv().await {
                sum += v;
            }
            sum_tx.send(sum).unwrap();
        });
    }
    drop((rx, sum_tx));
    let producer = tokio::spawn(async move {
        for i in 0..FANOUT_N {
            tx.send(i).await.unwrap();
        }
    });
    let mut total = 0;
    while let Some(s) = sum_rx.recv().await {
        total += s;
    }
    producer.await.unwrap();
    total
}

fn fanout_may() -> u64 {
    may_run(|| {
        let (tx, rx) = may::sync::mpmc::channel::<u64>();
        let (sum_tx, sum_rx) = may::sync::mpsc::channel::<u64>();
        let permits = std::sync::Arc::new(may::sync::Semphore::new(FANOUT_CAP));
        for _ in 0..CONSUMERS {
            let rx = rx.clone();
            let sum_tx = sum_tx.clone();
            let permits = permits.clone();
            // may::go!: no thread-locals, no OS-thread blocking (see `bobbin_bench::workloads`).
            may::go!(move || {
                let mut sum = 0;
                for v in rx.iter() {
                    permits.post();
                    sum += v;
                }
                sum_tx.send(sum).unwrap();
            });
        }
        drop((rx, sum_tx));
        // may::go!: no thread-locals, no OS-thread blocking (see `bobbin_bench::workloads`).
        let producer = may::go!(move || {
            for i in 0..FANOUT_N {
                permits.wait();
                tx.send(i).unwrap();
            }
        });
        let total = sum_rx.iter().sum();
        producer.join().unwrap();
        total
    })
}

fn fanout(c: &mut Criterion) {
    for workers in WORKERS {
        let mut g = c.benchmark_group(format!("rt_fanout_{workers}w"));
        slow_group(&mut g, FANOUT_N);
        let rt = bobbin_runtime(workers);
        assert_eq!(fanout_bobbin(&rt), FANOUT_TOTAL);
        g.bench_function("bobbin", |b| b.iter(|| black_box(fanout_bobbin(&rt))));
        drop(rt);
        let rt = tokio_multi_thread(workers);
        assert_eq!(tokio_run(&rt, fanout_tokio()), FANOUT_TOTAL);
        g.bench_function("tokio multi_thread", |b| b.iter(|| black_box(tokio_run(&rt, fanout_tokio()))));
        drop(rt);
        g.bench_function("may", |b| b.iter_custom(|iters| may_measure(MayWorkload::Fanout, workers, iters)));
        g.finish();
    }
}

// ---------------------------------------------------------------------------------------
// may in a child process

/// The workloads measured with may.
#[derive(Clone, Copy, Debug)]
enum MayWorkload {
    SpawnYield,
    Fib,
    Fanout,
}

impl MayWorkload {
    fn name(self) -> &'static str {
        match self {
            MayWorkload::SpawnYield => "spawn_yield",
            MayWorkload::Fib => "fib",
            MayWorkload::Fanout => "fanout",
        }
    }

    fn from_name(name: &str) -> MayWorkload {
        [MayWorkload::SpawnYield, MayWorkload::Fib, MayWorkload::Fanout]
            .into_iter()
            .find(|w| w.name() == name)
            .unwrap_or_else(|| panic!("unknown may workload {name:?}"))
    }

    /// One iteration; checks the result when `check` is set.
    fn run(self, check: bool) {
        match self {
            MayWorkload::SpawnYield => spawn_yield_may(SPAWN_N_MAY, YIELDS),
            MayWorkload::Fib => {
                let r = black_box(may_run(|| fib_may(FIB_N_MAY)));
                assert!(!check || r == fib_plain(FIB_N_MAY), "may fib({FIB_N_MAY}) = {r}");
            }
            MayWorkload::Fanout => {
                let r = black_box(fanout_may());
                assert!(!check || r == FANOUT_TOTAL, "may fanout total = {r}");
            }
        }
    }
}

/// How long a may child may take before it is taken for hung (its normal run is seconds).
const MAY_CHILD_DEADLINE: Duration = Duration::from_secs(60);
/// Attempts per measurement before a hanging may child fails the benchmark.
const MAY_CHILD_ATTEMPTS: usize = 3;

/// Times `iters` iterations of `workload` on may with `workers` workers, in a child
/// process (see the module docs).
fn may_measure(workload: MayWorkload, workers: usize, iters: u64) -> Duration {
    for attempt in 1..=MAY_CHILD_ATTEMPTS {
        if let Some(d) = may_child_run(workload, workers, iters) {
            return d;
        }
        eprintln!(
            "may child ({workload:?}, {workers} workers, {iters} iterations) hung for {MAY_CHILD_DEADLINE:?} \
             and was killed (attempt {attempt} of {MAY_CHILD_ATTEMPTS})"
        );
    }
    panic!("may child ({workload:?}, {workers} workers) hung {MAY_CHILD_ATTEMPTS} times");
}

/// One child run: its time, or `None` if it hung and was killed.
fn may_child_run(workload: MayWorkload, workers: usize, iters: u64) -> Option<Duration> {
    let exe = std::env::current_exe().expect("path of the bench binary");
    let mut child = Command::new(exe)
        .env(MAY_CHILD_ENV, format!("{} {workers} {iters}", workload.name()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the may child process");
    let start = Instant::now();
    while child.try_wait().expect("wait for the may child").is_none() {
        if start.elapsed() > MAY_CHILD_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("read the may child's output");
    assert!(out.status.success(), "may child ({workload:?}, {workers} workers) failed: {}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let nanos: u64 = stdout.trim().parse().unwrap_or_else(|e| panic!("may child printed {stdout:?}: {e}"));
    Some(Duration::from_nanos(nanos))
}

/// The child side of [`may_measure`]: `spec` is "workload workers iters".
fn may_child(spec: &str) {
    let mut parts = spec.split_whitespace();
    let workload = MayWorkload::from_name(parts.next().expect("workload"));
    let workers: usize = parts.next().and_then(|s| s.parse().ok()).expect("worker count");
    let iters: u64 = parts.next().and_then(|s| s.parse().ok()).expect("iteration count");
    may::config().set_workers(workers);
    workload.run(true);
    let t = Instant::now();
    for _ in 0..iters {
        workload.run(false);
    }
    println!("{}", t.elapsed().as_nanos());
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = spawn_yield, fib, fanout
}

// criterion_main!, plus the may child mode.
fn main() {
    if let Ok(spec) = std::env::var(MAY_CHILD_ENV) {
        may_child(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
