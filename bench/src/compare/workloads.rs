//! The timed workloads of DESIGN.md section 8, for bobbin and each peer. Every function
//! here returns a [`Timed`] workload whose entries keep what they need (a coroutine, a
//! runtime) between batches; [`super::run_timed`] measures it.
//!
//! The workloads are written as in `benches/coroutine.rs` and `benches/sched.rs`, so the
//! criterion benchmarks and this report measure the same code:
//! - `switch`: one resume + one suspend of a coroutine that suspends forever.
//! - `create`: create a coroutine, run it to completion, drop it.
//! - `generator`: a generator of `1..=N` created and summed in a `for` loop, per item.
//! - `spawn`, `spawn-30k`: N green threads that yield 10 times each on one thread, then
//!   joined. One iteration is the whole run; a fresh `bobbin::run` is entered inside it
//!   (its set-up is part of bobbin's time), peers' runtimes are built once per workload.
//! - `pingpong`: two green threads hand a counter back and forth through two unbounded
//!   channels; per message (2 per round trip).
//! - `scale`: the spawn workload on `bobbin::Runtime` and tokio's multi-thread runtime
//!   with 1 and 2 workers. Runtimes are built before and dropped after every batch, outside
//!   the time, so that no idle worker of another runtime is around.
//!
//! may's runtime is global; [`may_init`] gives it one worker before its first use, so that
//! it is single-threaded like the other schedulers.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Once;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use bobbin::{Coroutine, Generator};
use corosensei::stack::DefaultStack;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::StreamExt;
use generator::Gn;

use super::{Entry, Scale, Sizes, Timed};

/// Nanosecond values, per iteration.
const NS: Scale = Scale { per_iter: 1.0, ns_per_unit: 1.0 };
/// Millisecond values, per iteration.
const MS: Scale = Scale { per_iter: 1.0, ns_per_unit: 1e6 };

/// Gives may's global runtime one worker; must run before may is first used.
pub fn may_init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        may::config().set_workers(1);
    });
}

/// Times `iters` calls of `f`.
fn time(iters: u64, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed()
}

fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio current_thread runtime")
}

// ---------------------------------------------------------------------------------------
// switch

/// `switch`: resume + suspend round trip.
pub fn switch(sizes: &Sizes) -> Timed<'static> {
    let mut bobbin_co = Coroutine::<(), (), ()>::new(|y, ()| loop {
        y.suspend(());
    });
    let mut corosensei_co = corosensei::Coroutine::<(), (), ()>::new(|y, ()| loop {
        y.suspend(());
    });
    let mut gen = Gn::<()>::new_scoped(|mut s| loop {
        s.yield_(());
    });
    Timed {
        key: "switch",
        title: "Coroutine switch: one resume + one suspend round trip".into(),
        description: "A coroutine that suspends forever, `()` in and out: bobbin `Coroutine`, corosensei \
                      `Coroutine` (its `DefaultStack`), the generator crate's `Gn::new_scoped` driven by \
                      `resume()`. may has no coroutine that can be resumed directly; its scheduler's yield is \
                      part of `spawn`."
            .into(),
        unit: "ns",
        scale: NS,
        rounds: sizes.rounds,
        entries: vec![
            Entry::new("bobbin Coroutine", move |n| {
                time(n, || {
                    black_box(bobbin_co.resume(()));
                })
            }),
            Entry::new("corosensei", move |n| {
                time(n, || {
                    black_box(corosensei_co.resume(()));
                })
            }),
            Entry::new("generator crate", move |n| {
                time(n, || {
                    black_box(gen.resume());
                })
            }),
        ],
    }
}

// ---------------------------------------------------------------------------------------
// create

/// `create`: create, run to completion and drop a coroutine.
pub fn create(sizes: &Sizes) -> Timed<'static> {
    let mut stack = Some(DefaultStack::default());
    Timed {
        key: "create",
        title: "Create + run to completion + drop a coroutine".into(),
        description: "A coroutine that returns at once. bobbin takes its stack from the thread's pool (the \
                      default); corosensei either maps a fresh `DefaultStack` each time (what \
                      `Coroutine::new` does) or is handed back the same stack by hand (`with_stack` / \
                      `into_stack`); the generator crate maps a fresh stack each time."
            .into(),
        unit: "ns",
        scale: NS,
        rounds: sizes.rounds,
        entries: vec![
            Entry::new("bobbin (thread's stack pool)", |n| {
                time(n, || {
                    let mut co = Coroutine::<(), (), i32>::new(|_, ()| black_box(1));
                    black_box(co.resume(()));
                })
            }),
            Entry::new("corosensei (fresh DefaultStack)", |n| {
                time(n, || {
                    let mut co = corosensei::Coroutine::<(), (), i32>::new(|_, ()| black_box(1));
                    black_box(co.resume(()));
                })
            }),
            Entry::new("corosensei (stack reused by hand)", move |n| {
                time(n, || {
                    let s = stack.take().expect("the stack is handed back every iteration");
                    let mut co = corosensei::Coroutine::<(), (), i32, _>::with_stack(s, |_, ()| black_box(1));
                    black_box(co.resume(()));
                    stack = Some(co.into_stack());
                })
            }),
            Entry::new("generator crate (fresh stack)", |n| {
                time(n, || {
                    let mut gen = Gn::<()>::new_scoped(|_| black_box(1));
                    black_box(gen.resume());
                })
            }),
        ],
    }
}

// ---------------------------------------------------------------------------------------
// generator

fn gen_plain(n: u64) -> u64 {
    let mut sum = 0u64;
    for v in 1..=black_box(n) {
        sum += black_box(v);
    }
    sum
}

fn gen_bobbin(n: u64) -> u64 {
    let mut sum = 0u64;
    for v in Generator::new(move |y| {
        for i in 1..=n {
            y.suspend(i);
        }
    }) {
        sum += v;
    }
    sum
}

fn gen_corosensei(n: u64, stack: DefaultStack) -> (u64, DefaultStack) {
    let mut co = corosensei::Coroutine::<(), u64, (), _>::with_stack(stack, move |y, ()| {
        for i in 1..=n {
            y.suspend(i);
        }
    });
    let mut sum = 0u64;
    while let corosensei::CoroutineResult::Yield(v) = co.resume(()) {
        sum += v;
    }
    (sum, co.into_stack())
}

fn gen_generator_crate(n: u64) -> u64 {
    // The closure's return value is the generator's last item, so the loop stops at n-1
    // (finishing with `done!()` instead would unwind a panic every run).
    let mut sum = 0u64;
    for v in Gn::<()>::new_scoped(move |mut s| {
        for i in 1..n {
            s.yield_(i);
        }
        n
    }) {
        sum += v;
    }
    sum
}

/// `generator`: ns per item of a generator of `1..=N` created and summed in a loop.
pub fn generator(sizes: &Sizes) -> Timed<'static> {
    let n = sizes.gen_items;
    let expected = n * (n + 1) / 2;
    // Every variant must produce the same sum; checked once, outside the timing.
    assert_eq!(gen_plain(n), expected);
    assert_eq!(gen_bobbin(n), expected);
    assert_eq!(gen_corosensei(n, DefaultStack::default()).0, expected);
    assert_eq!(gen_generator_crate(n), expected);
    let mut stack = Some(DefaultStack::default());
    Timed {
        key: "generator",
        title: format!("Generator: a generator of 1..={n} created and summed in a loop, per item"),
        description: format!(
            "Per item, creation included (one generator per {n} items): bobbin `Generator` (an `Iterator`, \
             pooled stack), corosensei `Coroutine` resumed until it returns (stack reused by hand), the \
             generator crate's `Gn` (an `Iterator`, fresh stack every run), and a plain `for` loop over the \
             range with each item through `black_box` as the floor."
        ),
        unit: "ns",
        scale: Scale { per_iter: n as f64, ns_per_unit: 1.0 },
        rounds: sizes.rounds,
        entries: vec![
            Entry::new("bobbin Generator", move |k| {
                time(k, || {
                    black_box(gen_bobbin(n));
                })
            }),
            Entry::new("corosensei (stack reused by hand)", move |k| {
                time(k, || {
                    let (sum, s) = gen_corosensei(n, stack.take().expect("the stack is handed back every run"));
                    stack = Some(s);
                    black_box(sum);
                })
            }),
            Entry::new("generator crate (fresh stack)", move |k| {
                time(k, || {
                    black_box(gen_generator_crate(n));
                })
            }),
            Entry::new("plain iterator", move |k| {
                time(k, || {
                    black_box(gen_plain(n));
                })
            }),
        ],
    }
}

// ---------------------------------------------------------------------------------------
// spawn (one thread)

fn spawn_bobbin(n: usize, yields: usize) {
    bobbin::run(move || {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                bobbin::spawn(move || {
                    for _ in 0..yields {
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

fn spawn_tokio(rt: &tokio::runtime::Runtime, n: usize, yields: usize) {
    rt.block_on(async move {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..yields {
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

fn spawn_async_executor(ex: &LocalExecutor<'_>, n: usize, yields: usize) {
    futures_lite::future::block_on(ex.run(async {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                ex.spawn(async move {
                    for _ in 0..yields {
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

fn spawn_local_pool(pool: &mut LocalPool, n: usize, yields: usize) {
    let spawner = pool.spawner();
    pool.run_until(async move {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                spawner
                    .spawn_local_with_handle(async move {
                        for _ in 0..yields {
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

fn spawn_may(n: usize, yields: usize) {
    // may::go! wraps may's `unsafe fn spawn`, whose contract is that the coroutine neither
    // relies on thread-locals staying put (it may move between workers) nor blocks its OS
    // thread; these closures do neither.
    may::go!(move || {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                may::go!(move || {
                    for _ in 0..yields {
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

/// `spawn` (without may) or `spawn-30k` (with may): N green threads that yield 10 times
/// each on one thread, total ms.
pub fn spawn(sizes: &Sizes, with_may: bool) -> Timed<'static> {
    let n = if with_may { sizes.spawn_n_may } else { sizes.spawn_n };
    let y = sizes.yields;
    let rt = tokio_current_thread();
    let ex = LocalExecutor::new();
    let mut pool = LocalPool::new();
    let mut entries = vec![
        Entry::new("bobbin", move |k| time(k, || spawn_bobbin(n, y))),
        Entry::new("tokio current_thread", move |k| time(k, || spawn_tokio(&rt, n, y))),
        Entry::new("async-executor LocalExecutor", move |k| time(k, || spawn_async_executor(&ex, n, y))),
        Entry::new("futures LocalPool", move |k| time(k, || spawn_local_pool(&mut pool, n, y))),
    ];
    if with_may {
        may_init();
        entries.push(Entry::new("may (1 worker)", move |k| time(k, || spawn_may(n, y))));
    }
    let n_text = super::fmt_num(n as f64);
    Timed {
        key: if with_may { "spawn-30k" } else { "spawn" },
        title: format!("Spawn {n_text} green threads that yield {y} times each, one thread, total"),
        description: format!(
            "Spawn {n_text} tasks that each yield {y} times, then join them all, on one OS thread. bobbin: \
             `bobbin::run` entered inside the timed region (its scheduler's set-up counts), `spawn`, \
             `yield_now`, `JoinHandle::join`; tokio: a current_thread runtime, `tokio::spawn`, \
             `tokio::task::yield_now`; async-executor `LocalExecutor` and futures `LocalPool` with \
             `futures_lite::future::yield_now`{}. Peer runtimes are built once, outside the time.",
            if with_may {
                "; may with one worker, `may::go!` and `may::coroutine::yield_now`. may maps a guard-paged stack \
                 per coroutine and cannot map 100,000 of them under `vm.max_map_count`, hence this smaller run \
                 next to `spawn`"
            } else {
                ". may is in `spawn-30k`: it cannot map 100,000 stacks here"
            }
        ),
        unit: "ms",
        scale: MS,
        rounds: sizes.rounds_heavy,
        entries,
    }
}

// ---------------------------------------------------------------------------------------
// pingpong

fn pingpong_bobbin(rounds: u64) -> u64 {
    bobbin::run(move || {
        let (tx1, rx1) = bobbin::sync::channel::<u64>();
        let (tx2, rx2) = bobbin::sync::channel::<u64>();
        let h = bobbin::spawn(move || {
            for v in rx1.iter() {
                tx2.send(v + 1).unwrap();
            }
        });
        let mut v = 0;
        for _ in 0..rounds {
            tx1.send(v).unwrap();
            v = rx2.recv().unwrap();
        }
        drop(tx1);
        h.join().unwrap();
        v
    })
}

fn pingpong_tokio(rt: &tokio::runtime::Runtime, rounds: u64) -> u64 {
    rt.block_on(async move {
        let (tx1, mut rx1) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let (tx2, mut rx2) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let h = tokio::spawn(async move {
            while let Some(v) = rx1.recv().await {
                tx2.send(v + 1).unwrap();
            }
        });
        let mut v = 0;
        for _ in 0..rounds {
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
async fn pingpong_futures<S, J>(rounds: u64, spawn: S) -> u64
where
    S: FnOnce(Pin<Box<dyn Future<Output = ()>>>) -> J,
    J: Future<Output = ()>,
{
    let (tx1, mut rx1) = futures::channel::mpsc::unbounded::<u64>();
    let (tx2, mut rx2) = futures::channel::mpsc::unbounded::<u64>();
    let h = spawn(Box::pin(async move {
        while let Some(v) = rx1.next().await {
            tx2.unbounded_send(v + 1).unwrap();
        }
    }));
    let mut v = 0;
    for _ in 0..rounds {
        tx1.unbounded_send(v).unwrap();
        v = rx2.next().await.unwrap();
    }
    drop(tx1);
    h.await;
    v
}

fn pingpong_async_executor(ex: &LocalExecutor<'_>, rounds: u64) -> u64 {
    futures_lite::future::block_on(ex.run(pingpong_futures(rounds, |f| ex.spawn(f))))
}

fn pingpong_local_pool(pool: &mut LocalPool, rounds: u64) -> u64 {
    let spawner = pool.spawner();
    pool.run_until(pingpong_futures(rounds, move |f| spawner.spawn_local_with_handle(f).unwrap()))
}

fn pingpong_may(rounds: u64) -> u64 {
    // may::go!: see spawn_may; no thread-locals, no OS-thread blocking.
    may::go!(move || {
        let (tx1, rx1) = may::sync::mpsc::channel::<u64>();
        let (tx2, rx2) = may::sync::mpsc::channel::<u64>();
        let h = may::go!(move || {
            for v in rx1.iter() {
                tx2.send(v + 1).unwrap();
            }
        });
        let mut v = 0;
        for _ in 0..rounds {
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

/// Times one ping-pong run of `rounds` round trips and checks it handed the counter back
/// every time.
fn time_pingpong(rounds: u64, f: impl FnOnce(u64) -> u64) -> Duration {
    let t = Instant::now();
    let v = f(rounds);
    let took = t.elapsed();
    assert_eq!(v, rounds, "the counter came back once per round trip");
    took
}

/// `pingpong`: ns per message between two green threads.
pub fn pingpong(sizes: &Sizes) -> Timed<'static> {
    may_init();
    let rt = tokio_current_thread();
    let ex = LocalExecutor::new();
    let mut pool = LocalPool::new();
    Timed {
        key: "pingpong",
        title: "Ping-pong: a counter passed back and forth between two green threads, per message".into(),
        description: "Two tasks on one thread pass a counter back and forth through two unbounded channels; \
                      one iteration is a round trip (2 messages), a batch is one run with that many round trips \
                      (set-up included, amortised over the batch). bobbin `sync::channel`; tokio current_thread \
                      with `tokio::sync::mpsc::unbounded_channel`; async-executor `LocalExecutor` and futures \
                      `LocalPool` with `futures::channel::mpsc::unbounded`; may (1 worker) with \
                      `may::sync::mpsc`."
            .into(),
        unit: "ns",
        scale: Scale { per_iter: 2.0, ns_per_unit: 1.0 },
        rounds: sizes.rounds,
        entries: vec![
            Entry::new("bobbin", |k| time_pingpong(k, pingpong_bobbin)),
            Entry::new("tokio current_thread", move |k| time_pingpong(k, |r| pingpong_tokio(&rt, r))),
            Entry::new("async-executor LocalExecutor", move |k| time_pingpong(k, |r| pingpong_async_executor(&ex, r))),
            Entry::new("futures LocalPool", move |k| time_pingpong(k, |r| pingpong_local_pool(&mut pool, r))),
            Entry::new("may (1 worker)", |k| time_pingpong(k, pingpong_may)),
        ],
    }
}

// ---------------------------------------------------------------------------------------
// scale (multi-threaded runtimes)

fn scale_bobbin(rt: &bobbin::Runtime, n: usize, yields: usize) {
    rt.block_on(move || {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                bobbin::runtime::spawn(move || {
                    for _ in 0..yields {
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

fn scale_tokio(rt: &tokio::runtime::Runtime, n: usize, yields: usize) {
    // The root task is spawned onto the runtime and awaited from here, so that, as with
    // bobbin's `block_on`, all the work runs on the workers (a plain `block_on` would run
    // the root future on this thread and spawn through the global queue).
    let root = rt.spawn(async move {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    rt.block_on(root).expect("tokio root task");
}

/// Builds a runtime with `build`, times `k` runs of `work` on it, drops it.
fn time_on<R>(k: u64, build: impl FnOnce() -> R, work: impl Fn(&R)) -> Duration {
    let rt = build();
    let took = time(k, || work(&rt));
    drop(rt);
    took
}

/// `scale`: the spawn workload on 1 and 2 workers.
pub fn scale(sizes: &Sizes) -> Timed<'static> {
    let n = sizes.spawn_n;
    let y = sizes.yields;
    let bobbin_rt = |w: usize| move || bobbin::Runtime::builder().workers(w).build().expect("bobbin runtime");
    let tokio_rt = |w: usize| {
        move || {
            tokio::runtime::Builder::new_multi_thread().worker_threads(w).build().expect("tokio multi_thread runtime")
        }
    };
    let n_text = super::fmt_num(n as f64);
    Timed {
        key: "scale",
        title: format!("Scale: {n_text} green threads x {y} yields on 1 and 2 worker threads, total"),
        description: format!(
            "The spawn workload ({n_text} tasks, {y} yields each, all joined) on a multi-threaded runtime. bobbin: \
             `Runtime::builder().workers(w)`, the root is `Runtime::block_on` (a green thread on a worker), its \
             children `bobbin::runtime::spawn`; tokio: `Builder::new_multi_thread().worker_threads(w)`, the root \
             task spawned on the runtime and its handle awaited with `block_on`. Each tokio row is compared with \
             bobbin on the same number of workers. Runtimes are built before and dropped after each batch, \
             outside the time."
        ),
        unit: "ms",
        scale: MS,
        rounds: sizes.rounds_heavy,
        entries: vec![
            Entry::against("bobbin Runtime, 1 worker", 0, move |k| {
                time_on(k, bobbin_rt(1), |rt| scale_bobbin(rt, n, y))
            }),
            Entry::against("bobbin Runtime, 2 workers", 1, move |k| {
                time_on(k, bobbin_rt(2), |rt| scale_bobbin(rt, n, y))
            }),
            Entry::against("tokio multi_thread, 1 worker", 0, move |k| {
                time_on(k, tokio_rt(1), |rt| scale_tokio(rt, n, y))
            }),
            Entry::against("tokio multi_thread, 2 workers", 1, move |k| {
                time_on(k, tokio_rt(2), |rt| scale_tokio(rt, n, y))
            }),
        ],
    }
}
