//! The per-thread green-thread scheduler against single-threaded async executors and may,
//! in the same run. One criterion iteration is one whole workload:
//! - `spawn_yield`: spawn N tasks that yield 10 times each, then wait for all of them
//!   (reported per task). N = 100,000 without may, whose guard-paged stacks cannot all be
//!   mapped at once here (`vm.max_map_count`); `spawn_yield_30k` repeats it with
//!   N = 30,000 and may included;
//! - `pingpong`: two tasks pass a counter back and forth through two unbounded channels,
//!   10,000 round trips (reported per message, 2 per round trip);
//! - `spawn_join`: spawn one short task and wait for it, inside one runtime (per task).
//!
//! Peers: tokio's current_thread runtime (`tokio::spawn`, `tokio::task::yield_now`,
//! `tokio::sync::mpsc`), async-executor's `LocalExecutor` and futures' `LocalPool` (both
//! with `futures_lite::future::yield_now`, which returns `Pending` once after waking its
//! own task, and `futures::channel::mpsc`), and may with one worker (`may::go!`,
//! `may::coroutine::yield_now`, `may::sync::mpsc`). Runtimes and executors are built once,
//! outside the timed loop; bobbin enters `bobbin::run` inside every iteration of
//! `spawn_yield` and `pingpong` (its scheduler's set-up is part of its time there). The
//! bodies of `spawn_yield` and `pingpong` are those of `bobbin_bench::workloads`, which the
//! `compare` binary runs too.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use bobbin_bench::workloads::{
    may_init, pingpong_async_executor, pingpong_bobbin, pingpong_local_pool, pingpong_may, pingpong_tokio,
    spawn_yield_async_executor, spawn_yield_bobbin, spawn_yield_local_pool, spawn_yield_may, spawn_yield_tokio,
    tokio_current_thread,
};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

/// Yields per task in `spawn_yield`.
const YIELDS: usize = 10;
/// Tasks per `spawn_yield` iteration.
const SPAWN_N: usize = 100_000;
/// Tasks per `spawn_yield_30k` iteration (the largest count may can hold here).
const SPAWN_N_MAY: usize = 30_000;
/// Round trips per `pingpong` iteration.
const ROUNDS: u64 = 10_000;

// ---------------------------------------------------------------------------------------
// spawn_yield

fn spawn_yield_group(g: &mut BenchmarkGroup<'_, WallTime>, n: usize, with_may: bool) {
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(n as u64));

    g.bench_function("bobbin", |b| b.iter(|| spawn_yield_bobbin(n, YIELDS)));
    g.bench_function("tokio current_thread", |b| {
        let rt = tokio_current_thread();
        b.iter(|| spawn_yield_tokio(&rt, n, YIELDS));
    });
    g.bench_function("async-executor LocalExecutor", |b| {
        let ex = LocalExecutor::new();
        b.iter(|| spawn_yield_async_executor(&ex, n, YIELDS));
    });
    g.bench_function("futures LocalPool", |b| {
        let mut pool = LocalPool::new();
        b.iter(|| spawn_yield_local_pool(&mut pool, n, YIELDS));
    });
    if with_may {
        may_init();
        g.bench_function("may (1 worker)", |b| b.iter(|| spawn_yield_may(n, YIELDS)));
    }
}

fn spawn_yield(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_yield");
    spawn_yield_group(&mut g, SPAWN_N, false);
    g.finish();

    let mut g = c.benchmark_group("spawn_yield_30k");
    spawn_yield_group(&mut g, SPAWN_N_MAY, true);
    g.finish();
}

// ---------------------------------------------------------------------------------------
// pingpong

fn pingpong(c: &mut Criterion) {
    // Every implementation must hand the counter back ROUNDS times.
    assert_eq!(pingpong_bobbin(ROUNDS), ROUNDS);
    assert_eq!(pingpong_tokio(&tokio_current_thread(), ROUNDS), ROUNDS);
    assert_eq!(pingpong_async_executor(&LocalExecutor::new(), ROUNDS), ROUNDS);
    assert_eq!(pingpong_local_pool(&mut LocalPool::new(), ROUNDS), ROUNDS);
    may_init();
    assert_eq!(pingpong_may(ROUNDS), ROUNDS);

    let mut g = c.benchmark_group("pingpong");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(2 * ROUNDS));
    g.bench_function("bobbin", |b| b.iter(|| black_box(pingpong_bobbin(ROUNDS))));
    g.bench_function("tokio current_thread", |b| {
        let rt = tokio_current_thread();
        b.iter(|| black_box(pingpong_tokio(&rt, ROUNDS)));
    });
    g.bench_function("async-executor LocalExecutor", |b| {
        let ex = LocalExecutor::new();
        b.iter(|| black_box(pingpong_async_executor(&ex, ROUNDS)));
    });
    g.bench_function("futures LocalPool", |b| {
        let mut pool = LocalPool::new();
        b.iter(|| black_box(pingpong_local_pool(&mut pool, ROUNDS)));
    });
    g.bench_function("may (1 worker)", |b| b.iter(|| black_box(pingpong_may(ROUNDS))));
    g.finish();
}

// ---------------------------------------------------------------------------------------
// spawn_join

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    g.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).throughput(Throughput::Elements(1));

    g.bench_function("bobbin", |b| {
        b.iter_custom(|iters| {
            bobbin::run(move || {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(bobbin::spawn(|| black_box(1u64)).join().unwrap());
                }
                t.elapsed()
            })
        });
    });
    g.bench_function("tokio current_thread", |b| {
        let rt = tokio_current_thread();
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(tokio::spawn(async { black_box(1u64) }).await.unwrap());
                }
                t.elapsed()
            })
        });
    });
    g.bench_function("async-executor LocalExecutor", |b| {
        let ex = LocalExecutor::new();
        b.iter_custom(|iters| {
            futures_lite::future::block_on(ex.run(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(ex.spawn(async { black_box(1u64) }).await);
                }
                t.elapsed()
            }))
        });
    });
    g.bench_function("futures LocalPool", |b| {
        let mut pool = LocalPool::new();
        b.iter_custom(|iters| {
            let spawner = pool.spawner();
            pool.run_until(async move {
                let t = Instant::now();
                for _ in 0..iters {
                    let h = spawner.spawn_local_with_handle(async { black_box(1u64) }).unwrap();
                    black_box(h.await);
                }
                t.elapsed()
            })
        });
    });
    may_init();
    g.bench_function("may (1 worker)", |b| {
        b.iter_custom(|iters| {
            // may::go! wraps may's `unsafe fn spawn`, whose contract is that the coroutine neither
            // relies on thread-locals staying put (it may move between workers) nor blocks its
            // OS thread; these closures do neither.
            may::go!(move || {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(may::go!(|| black_box(1u64)).join().unwrap());
                }
                t.elapsed()
            })
            .join()
            .unwrap()
        });
    });
    g.finish();
}

criterion_group!(benches, spawn_yield, pingpong, spawn_join);
criterion_main!(benches);
