//! The lock workloads of `compare`:
//! - `mutex`: one uncontended lock + unlock, in a loop, on a green thread (bobbin, may), in
//!   an async task (tokio) and on an OS thread (std, and bobbin's outside any scheduler).
//! - `mutex-contended`: 8 green threads (tasks, OS threads for std) each incrementing one
//!   shared counter under the lock `n` times, on 1 and 2 workers; the time per increment.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::workloads::{time, NS};
use super::{Entry, Scale, Sizes, Timed};
use crate::workloads::{bobbin_runtime, may_run, tokio_current_thread, tokio_multi_thread, tokio_run};

/// Green threads (tasks, threads) of `mutex-contended`.
const CONTENDERS: usize = 8;

/// `mutex`: uncontended lock + unlock.
pub fn mutex(sizes: &Sizes) -> Timed<'static> {
    let tokio_rt = tokio_current_thread();
    Timed {
        key: "mutex",
        title: "Mutex: one uncontended lock + unlock".into(),
        description: "A loop that locks and unlocks a mutex nobody else uses. bobbin `sync::Mutex` on a green thread \
                      of `bobbin::run` (its lock also spends the cooperative budget) and on a plain OS thread; \
                      `std::sync::Mutex` on an OS thread; tokio's `sync::Mutex` (`lock().await`) in a task of a \
                      current_thread runtime; may's `sync::Mutex` in a may coroutine."
            .into(),
        unit: "ns",
        scale: NS,
        rounds: sizes.rounds,
        entries: vec![
            Entry::new("bobbin Mutex, green thread", |n| {
                bobbin::run(move || {
                    let m = bobbin::sync::Mutex::new(0u64);
                    time(n, || *black_box(&m).lock().unwrap() += 1)
                })
            }),
            Entry::against("bobbin Mutex, OS thread", 1, |n| {
                let m = bobbin::sync::Mutex::new(0u64);
                time(n, || *black_box(&m).lock().unwrap() += 1)
            }),
            Entry::against("std Mutex, OS thread", 1, |n| {
                let m = std::sync::Mutex::new(0u64);
                time(n, || *black_box(&m).lock().unwrap() += 1)
            }),
            Entry::new("tokio Mutex, current_thread task", move |n| {
                tokio_rt.block_on(async move {
                    let m = tokio::sync::Mutex::new(0u64);
                    let t = Instant::now();
                    for _ in 0..n {
                        *black_box(&m).lock().await += 1;
                    }
                    t.elapsed()
                })
            }),
            Entry::new("may Mutex, coroutine", |n| {
                may_run(move || {
                    let m = may::sync::Mutex::new(0u64);
                    time(n, || *black_box(&m).lock().unwrap() += 1)
                })
            }),
        ],
    }
}

/// Increments under bobbin's lock, `n` times.
fn bump_bobbin(m: &bobbin::sync::Mutex<u64>, n: u64) {
    for _ in 0..n {
        *m.lock().unwrap() += 1;
    }
}

/// `CONTENDERS` bobbin green threads of the current scheduler (or runtime) bumping one
/// counter `n` times each.
fn contend_bobbin(n: u64, spawn: impl Fn(Box<dyn FnOnce() + Send>) -> bobbin::JoinHandle<()>) {
    let m = Arc::new(bobbin::sync::Mutex::new(0u64));
    let hs: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let m = Arc::clone(&m);
            spawn(Box::new(move || bump_bobbin(&m, n)))
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*m.lock().unwrap(), n * CONTENDERS as u64);
}

async fn contend_tokio(n: u64) {
    let m = Arc::new(tokio::sync::Mutex::new(0u64));
    let hs: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let m = Arc::clone(&m);
            tokio::spawn(async move {
                for _ in 0..n {
                    *m.lock().await += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    assert_eq!(*m.lock().await, n * CONTENDERS as u64);
}

/// `mutex-contended`: 8 contenders on 1 and 2 workers.
pub fn mutex_contended(sizes: &Sizes) -> Timed<'static> {
    let n: u64 = if sizes.quick { 1_000 } else { 100_000 };
    let per = (n * CONTENDERS as u64) as f64;
    let n_text = super::fmt_num(n as f64);
    Timed {
        key: "mutex-contended",
        title: format!(
            "Mutex, contended: {CONTENDERS} green threads x {n_text} increments of one counter, per increment"
        ),
        description: format!(
            "{CONTENDERS} green threads (tasks; OS threads for std) each lock a shared mutex, increment a counter and \
             unlock, {n_text} times; the time from the first spawn to the last join, per increment. bobbin: \
             `sync::Mutex` on `bobbin::run` and on a `Runtime` of 1 and 2 workers (root green thread by \
             `block_on`); tokio: `sync::Mutex` on a current_thread runtime and on a multi_thread runtime of 1 and 2 \
             workers; may: `sync::Mutex` in may coroutines (may's runtime is configured once per process, with 1 \
             worker here); std: `sync::Mutex` and {CONTENDERS} OS threads, compared with bobbin on 2 workers. \
             Runtimes are built before and dropped after each batch, outside the time."
        ),
        unit: "ns",
        scale: Scale { per_iter: per, ns_per_unit: 1.0 },
        rounds: sizes.rounds_heavy,
        entries: vec![
            Entry::against("bobbin run", 0, move |k| {
                let t = Instant::now();
                for _ in 0..k {
                    bobbin::run(move || contend_bobbin(n, bobbin::spawn));
                }
                t.elapsed()
            }),
            Entry::against("bobbin Runtime, 1 worker", 1, move |k| on_bobbin_runtime(1, k, n)),
            Entry::against("bobbin Runtime, 2 workers", 2, move |k| on_bobbin_runtime(2, k, n)),
            Entry::against("tokio current_thread", 0, move |k| {
                let rt = tokio_current_thread();
                let t = Instant::now();
                for _ in 0..k {
                    rt.block_on(contend_tokio(n));
                }
                t.elapsed()
            }),
            Entry::against("tokio multi_thread, 1 worker", 1, move |k| on_tokio_runtime(1, k, n)),
            Entry::against("tokio multi_thread, 2 workers", 2, move |k| on_tokio_runtime(2, k, n)),
            Entry::against("may, 1 worker", 0, move |k| {
                let t = Instant::now();
                for _ in 0..k {
                    may_run(move || {
                        let m = Arc::new(may::sync::Mutex::new(0u64));
                        let hs: Vec<_> = (0..CONTENDERS)
                            .map(|_| {
                                let m = Arc::clone(&m);
                                // may::go!: see the workloads module's docs.
                                may::go!(move || {
                                    for _ in 0..n {
                                        *m.lock().unwrap() += 1;
                                    }
                                })
                            })
                            .collect();
                        hs.into_iter().for_each(|h| h.join().unwrap());
                        assert_eq!(*m.lock().unwrap(), n * CONTENDERS as u64);
                    });
                }
                t.elapsed()
            }),
            Entry::against(format!("std, {CONTENDERS} OS threads"), 2, move |k| {
                let t = Instant::now();
                for _ in 0..k {
                    let m = Arc::new(std::sync::Mutex::new(0u64));
                    let hs: Vec<_> = (0..CONTENDERS)
                        .map(|_| {
                            let m = Arc::clone(&m);
                            std::thread::spawn(move || {
                                for _ in 0..n {
                                    *m.lock().unwrap() += 1;
                                }
                            })
                        })
                        .collect();
                    hs.into_iter().for_each(|h| h.join().unwrap());
                }
                t.elapsed()
            }),
        ],
    }
}

fn on_bobbin_runtime(workers: usize, k: u64, n: u64) -> Duration {
    let mut took = Duration::ZERO;
    for _ in 0..k {
        let rt = bobbin_runtime(workers);
        let t = Instant::now();
        rt.block_on(move || contend_bobbin(n, bobbin::runtime::spawn));
        took += t.elapsed();
    }
    took
}

fn on_tokio_runtime(workers: usize, k: u64, n: u64) -> Duration {
    let mut took = Duration::ZERO;
    for _ in 0..k {
        let rt = tokio_multi_thread(workers);
        let t = Instant::now();
        tokio_run(&rt, contend_tokio(n));
        took += t.elapsed();
    }
    took
}
