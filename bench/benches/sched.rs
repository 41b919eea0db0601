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
//! `spawn_yield` and `pingpong` (its scheduler's set-up is part of its time there).
#![deny(clippy::undocumented_unsafe_blocks)]

use std::hint::black_box;
use std::sync::Once;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::StreamExt;

/// Yields per task in `spawn_yield`.
const YIELDS: usize = 10;
/// Tasks per `spawn_yield` iteration.
const SPAWN_N: usize = 100_000;
/// Tasks per `spawn_yield_30k` iteration (the largest count may can hold here).
const SPAWN_N_MAY: usize = 30_000;
/// Round trips per `pingpong` iteration.
const ROUNDS: u64 = 10_000;

/// may's runtime is global and reads its configuration when first used: one worker, so
/// that it is single-threaded like the others.
fn may_init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        may::config().set_workers(1);
    });
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio current_thread runtime")
}

// ---------------------------------------------------------------------------------------
// spawn_yield

fn spawn_yield_bobbin(n: usize) {
    bobbin::run(move || {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                bobbin::spawn(|| {
                    for _ in 0..YIELDS {
                        bobbin::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}

fn spawn_yield_tokio(rt: &tokio::runtime::Runtime, n: usize) {
    rt.block_on(async move {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..YIELDS {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
}

fn spawn_yield_async_executor(ex: &LocalExecutor<'_>, n: usize) {
    futures_lite::future::block_on(ex.run(async {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                ex.spawn(async {
                    for _ in 0..YIELDS {
                        futures_lite::future::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await;
        }
    }));
}

fn spawn_yield_local_pool(pool: &mut LocalPool, n: usize) {
    let spawner = pool.spawner();
    pool.run_until(async move {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                spawner
                    .spawn_local_with_handle(async {
                        for _ in 0..YIELDS {
                            futures_lite::future::yield_now().await;
                        }
                    })
                    .unwrap()
            })
            .collect();
        for h in hs {
            h.await;
        }
    });
}

fn spawn_yield_may(n: usize) {
    // may::go! wraps may's `unsafe fn spawn`, whose contract is that the coroutine neither
    // relies on thread-locals staying put (it may move between workers) nor blocks its OS
    // thread; these closures do neither.
    may::go!(move || {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                may::go!(|| {
                    for _ in 0..YIELDS {
                        may::coroutine::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    })
    .join()
    .unwrap();
}

fn spawn_yield_group(g: &mut BenchmarkGroup<'_, WallTime>, n: usize, with_may: bool) {
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(n as u64));

    g.bench_function("bobbin", |b| b.iter(|| spawn_yield_bobbin(n)));
    g.bench_function("tokio current_thread", |b| {
        let rt = tokio_rt();
        b.iter(|| spawn_yield_tokio(&rt, n));
    });
    g.bench_function("async-executor LocalExecutor", |b| {
        let ex = LocalExecutor::new();
        b.iter(|| spawn_yield_async_executor(&ex, n));
    });
    g.bench_function("futures LocalPool", |b| {
        let mut pool = LocalPool::new();
        b.iter(|| spawn_yield_local_pool(&mut pool, n));
    });
    if with_may {
        may_init();
        g.bench_function("may (1 worker)", |b| b.iter(|| spawn_yield_may(n)));
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

fn pingpong_bobbin() -> u64 {
    bobbin::run(|| {
        let (tx1, rx1) = bobbin::sync::channel::<u64>();
        let (tx2, rx2) = bobbin::sync::channel::<u64>();
        let h = bobbin::spawn(move || {
            for v in rx1.iter() {
                tx2.send(v + 1).unwrap();
            }
        });
        let mut v = 0;
        for _ in 0..ROUNDS {
            tx1.send(v).unwrap();
            v = rx2.recv().unwrap();
        }
        drop(tx1);
        h.join().unwrap();
        v
    })
}

fn pingpong_tokio(rt: &tokio::runtime::Runtime) -> u64 {
    rt.block_on(async {
        let (tx1, mut rx1) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let (tx2, mut rx2) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let h = tokio::spawn(async move {
            while let Some(v) = rx1.recv().await {
                tx2.send(v + 1).unwrap();
            }
        });
        let mut v = 0;
        for _ in 0..ROUNDS {
            tx1.send(v).unwrap();
            v = rx2.recv().await.unwrap();
        }
        drop(tx1);
        h.await.unwrap();
        v
    })
}

/// The pingpong body for the two futures-based executors, on `futures::channel::mpsc`;
/// `spawn` starts the partner task and returns a future that waits for it.
async fn pingpong_futures<S, J>(spawn: S) -> u64
where
    S: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) -> J,
    J: std::future::Future<Output = ()>,
{
    let (tx1, mut rx1) = futures::channel::mpsc::unbounded::<u64>();
    let (tx2, mut rx2) = futures::channel::mpsc::unbounded::<u64>();
    let h = spawn(Box::pin(async move {
        while let Some(v) = rx1.next().await {
            tx2.unbounded_send(v + 1).unwrap();
        }
    }));
    let mut v = 0;
    for _ in 0..ROUNDS {
        tx1.unbounded_send(v).unwrap();
        v = rx2.next().await.unwrap();
    }
    drop(tx1);
    h.await;
    v
}

fn pingpong_async_executor(ex: &LocalExecutor<'_>) -> u64 {
    futures_lite::future::block_on(ex.run(pingpong_futures(|f| ex.spawn(f))))
}

fn pingpong_local_pool(pool: &mut LocalPool) -> u64 {
    let spawner = pool.spawner();
    pool.run_until(pingpong_futures(move |f| spawner.spawn_local_with_handle(f).unwrap()))
}

fn pingpong_may() -> u64 {
    // may::go!: see spawn_yield_may; no thread-locals, no OS-thread blocking.
    may::go!(|| {
        let (tx1, rx1) = may::sync::mpsc::channel::<u64>();
        let (tx2, rx2) = may::sync::mpsc::channel::<u64>();
        let h = may::go!(move || {
            for v in rx1.iter() {
                tx2.send(v + 1).unwrap();
            }
        });
        let mut v = 0;
        for _ in 0..ROUNDS {
            tx1.send(v).unwrap();
            v = rx2.recv().unwrap();
        }
        drop(tx1);
        h.join().unwrap();
        v
    })
    .join()
    .unwrap()
}

fn pingpong(c: &mut Criterion) {
    // Every implementation must hand the counter back ROUNDS times.
    assert_eq!(pingpong_bobbin(), ROUNDS);
    assert_eq!(pingpong_tokio(&tokio_rt()), ROUNDS);
    assert_eq!(pingpong_async_executor(&LocalExecutor::new()), ROUNDS);
    assert_eq!(pingpong_local_pool(&mut LocalPool::new()), ROUNDS);
    may_init();
    assert_eq!(pingpong_may(), ROUNDS);

    let mut g = c.benchmark_group("pingpong");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(2 * ROUNDS));
    g.bench_function("bobbin", |b| b.iter(|| black_box(pingpong_bobbin())));
    g.bench_function("tokio current_thread", |b| {
        let rt = tokio_rt();
        b.iter(|| black_box(pingpong_tokio(&rt)));
    });
    g.bench_function("async-executor LocalExecutor", |b| {
        let ex = LocalExecutor::new();
        b.iter(|| black_box(pingpong_async_executor(&ex)));
    });
    g.bench_function("futures LocalPool", |b| {
        let mut pool = LocalPool::new();
        b.iter(|| black_box(pingpong_local_pool(&mut pool)));
    });
    g.bench_function("may (1 worker)", |b| b.iter(|| black_box(pingpong_may())));
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
        let rt = tokio_rt();
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
            // may::go!: see spawn_yield_may; no thread-locals, no OS-thread blocking.
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
