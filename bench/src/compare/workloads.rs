//! The timed workloads of `compare`, for bobbin and each peer. Every function
//! here returns a [`Timed`] workload whose entries keep what they need (a coroutine, a
//! runtime) between batches; [`super::run_timed`] measures it.
//!
//! The libraries' bodies of `generator`, `spawn`, `spawn-30k`, `pingpong` and `scale` are
//! those of [`crate::workloads`], which the criterion benchmarks (`benches/coroutine.rs`,
//! `benches/sched.rs`, `benches/runtime.rs`) run too, so both measure the same code;
//! `switch` and `create` are written inline as in `benches/coroutine.rs`, so that no call
//! sits in their loop of a few nanoseconds:
//! - `switch`: one resume + one suspend of a coroutine that suspends forever.
//! - `context-swap`: one round trip of the symmetric low-level switch, parent -> child ->
//!   parent: bobbin's `Context::swap` against Boost.Context's `jump_fcontext` (the `context`
//!   crate's `resume`), with equal MXCSR status flags on both sides and after an inexact
//!   operation in the parent (the pairs live in [`crate::workloads`]).
//! - `create`: create a coroutine, run it to completion, drop it.
//! - `generator`: a generator of `1..=N` created and summed, per item; a plain `for` loop
//!   over the range is the floor.
//! - `spawn`, `spawn-30k`: N green threads that yield 10 times each on one thread, then
//!   joined. One iteration is the whole run; a fresh `bobbin::run` is entered inside it
//!   (its set-up is part of bobbin's time), peers' runtimes are built once per workload.
//! - `pingpong`: two green threads hand a counter back and forth through two unbounded
//!   channels; per message (2 per round trip).
//! - `select`: as pingpong, but the counter goes out on one of two channels, alternately,
//!   and the partner waits on both with a select; per round trip (one select).
//! - `fib`: fib(25) with a green thread (task) per call on bobbin's runtime and tokio's
//!   multi-thread runtime, 1 and 2 workers; the same bodies as the criterion `rt_fib`.
//! - `scale`: the spawn workload on `bobbin::Runtime` and tokio's multi-thread runtime
//!   with 1 and 2 workers. Runtimes are built before and dropped after every batch, outside
//!   the time, so that no idle worker of another runtime is around.
//!
//! may's runtime is global; [`may_init`] gives it one worker before its first use, so that
//! it is single-threaded like the other schedulers.

use std::hint::black_box;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use bobbin::Coroutine;
use corosensei::stack::DefaultStack;
use futures::executor::LocalPool;
use generator::Gn;

use crate::workloads::{
    bobbin_runtime, clear_fp_status, fib_bobbin, fib_plain, fib_tokio, generator_sum_bobbin, generator_sum_corosensei,
    generator_sum_generator_crate, may_init, pingpong_async_executor, pingpong_bobbin, pingpong_local_pool,
    pingpong_may, pingpong_tokio, raise_inexact, rt_spawn_yield_bobbin, rt_spawn_yield_tokio, select_bobbin,
    select_crossbeam, select_may, select_tokio, spawn_yield_async_executor, spawn_yield_bobbin, spawn_yield_local_pool,
    spawn_yield_may, spawn_yield_tokio, tokio_current_thread, tokio_multi_thread, tokio_run, FcontextPair, SwapPair,
};

use super::{Entry, Scale, Sizes, Timed};

/// Nanosecond values, per iteration.
pub(super) const NS: Scale = Scale { per_iter: 1.0, ns_per_unit: 1.0 };
/// Millisecond values, per iteration.
const MS: Scale = Scale { per_iter: 1.0, ns_per_unit: 1e6 };

/// Times `iters` calls of `f`.
pub(super) fn time(iters: u64, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed()
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
// context-swap

/// Times `n` round trips of `round_trips` in a given floating-point state: the MXCSR
/// status flags cleared (as the child's are: it never computes), then, with `inexact`, the
/// parent's inexact flag raised, so that the flags of the two sides differ.
fn time_swaps(n: u64, inexact: bool, round_trips: impl FnOnce(u64)) -> Duration {
    clear_fp_status();
    if inexact {
        raise_inexact();
    }
    let t = Instant::now();
    round_trips(n);
    t.elapsed()
}

/// `context-swap`: the symmetric switch, round trip, against Boost.Context's.
pub fn context_swap(sizes: &Sizes) -> Timed<'static> {
    // Children start with their creator's MXCSR: make them with the flags cleared.
    clear_fp_status();
    let (mut bobbin, mut fcontext) = (SwapPair::new(), FcontextPair::new());
    let (mut bobbin_inexact, mut fcontext_inexact) = (SwapPair::new(), FcontextPair::new());
    Timed {
        key: "context-swap",
        title: "Context switch: the symmetric low-level switch, parent -> child -> parent".into(),
        description: "A child that switches straight back to its parent forever, on a guard-paged stack: bobbin \
                      `Context::swap` (saves rbx, rbp, r12-r15, rsp and the MXCSR/x87 control words, reloads a \
                      control word only when it differs, records the parent) against the `context` crate's \
                      `Context::resume`, Boost.Context's `jump_fcontext` (saves the same registers and the whole \
                      MXCSR and x87 control word, and reloads both on every switch). Each batch starts with the \
                      MXCSR status flags cleared on both sides; in the \"after an inexact operation\" rows the \
                      parent then raises the inexact flag, so the two sides' flags differ: bobbin shares the status \
                      flags between contexts and reloads nothing, fcontext reloads each side's own MXCSR."
            .into(),
        unit: "ns",
        scale: NS,
        rounds: sizes.rounds,
        entries: vec![
            Entry::against("bobbin Context::swap", 0, move |n| time_swaps(n, false, |n| bobbin.round_trips(n))),
            Entry::against("context (Boost fcontext) resume", 0, move |n| {
                time_swaps(n, false, |n| fcontext.round_trips(n))
            }),
            Entry::against("bobbin Context::swap, after an inexact operation", 2, move |n| {
                time_swaps(n, true, |n| bobbin_inexact.round_trips(n))
            }),
            Entry::against("context (Boost fcontext) resume, after an inexact operation", 2, move |n| {
                time_swaps(n, true, |n| fcontext_inexact.round_trips(n))
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

/// `generator`: ns per item of a generator of `1..=N` created and summed in a loop.
pub fn generator(sizes: &Sizes) -> Timed<'static> {
    let n = sizes.gen_items;
    let expected = n * (n + 1) / 2;
    // Every variant must produce the same sum; checked once, outside the timing.
    assert_eq!(gen_plain(n), expected);
    assert_eq!(generator_sum_bobbin(n), expected);
    assert_eq!(generator_sum_corosensei(n, DefaultStack::default()).0, expected);
    assert_eq!(generator_sum_generator_crate(n), expected);
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
                    black_box(generator_sum_bobbin(n));
                })
            }),
            Entry::new("corosensei (stack reused by hand)", move |k| {
                time(k, || {
                    let (sum, s) =
                        generator_sum_corosensei(n, stack.take().expect("the stack is handed back every run"));
                    stack = Some(s);
                    black_box(sum);
                })
            }),
            Entry::new("generator crate (fresh stack)", move |k| {
                time(k, || {
                    black_box(generator_sum_generator_crate(n));
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

/// `spawn` (without may) or `spawn-30k` (with may): N green threads that yield 10 times
/// each on one thread, total ms.
pub fn spawn(sizes: &Sizes, with_may: bool) -> Timed<'static> {
    let n = if with_may { sizes.spawn_n_may } else { sizes.spawn_n };
    let y = sizes.yields;
    let rt = tokio_current_thread();
    let ex = LocalExecutor::new();
    let mut pool = LocalPool::new();
    let mut entries = vec![
        Entry::new("bobbin", move |k| time(k, || spawn_yield_bobbin(n, y))),
        Entry::new("tokio current_thread", move |k| time(k, || spawn_yield_tokio(&rt, n, y))),
        Entry::new("async-executor LocalExecutor", move |k| time(k, || spawn_yield_async_executor(&ex, n, y))),
        Entry::new("futures LocalPool", move |k| time(k, || spawn_yield_local_pool(&mut pool, n, y))),
    ];
    if with_may {
        may_init();
        entries.push(Entry::new("may (1 worker)", move |k| time(k, || spawn_yield_may(n, y))));
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
// select

/// `select`: ns per round trip through a select over two channels.
pub fn select(sizes: &Sizes) -> Timed<'static> {
    may_init();
    let rt = tokio_current_thread();
    Timed {
        key: "select",
        title: "Select over two channels: a counter sent on one of two channels, received by a select, per round trip"
            .into(),
        description: "A task sends a counter on one of two unbounded channels, alternately; its partner waits on \
                      both with a select and sends the counter back, plus one, on a third; one iteration is a round \
                      trip (one select, two messages), a batch one run with that many round trips (set-up \
                      included). bobbin `select!` on two green threads of one `run`; tokio current_thread with \
                      `tokio::select!` over `mpsc::unbounded_channel`; crossbeam-channel's `select!` between two \
                      OS threads (each round trip wakes a thread twice); may (1 worker) with `may::select!`, which \
                      spawns a coroutine per arm and cancels the losers."
            .into(),
        unit: "ns",
        scale: NS,
        rounds: sizes.rounds,
        entries: vec![
            Entry::new("bobbin", |k| time_pingpong(k, select_bobbin)),
            Entry::new("tokio current_thread", move |k| time_pingpong(k, |r| select_tokio(&rt, r))),
            Entry::new("crossbeam-channel (OS threads)", |k| time_pingpong(k, select_crossbeam)),
            Entry::new("may (1 worker)", |k| time_pingpong(k, select_may)),
        ],
    }
}

// ---------------------------------------------------------------------------------------
// scale (multi-threaded runtimes)

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
    let bobbin_rt = |w: usize| move || bobbin_runtime(w);
    let tokio_rt = |w: usize| move || tokio_multi_thread(w);
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
                time_on(k, bobbin_rt(1), |rt| rt_spawn_yield_bobbin(rt, n, y))
            }),
            Entry::against("bobbin Runtime, 2 workers", 1, move |k| {
                time_on(k, bobbin_rt(2), |rt| rt_spawn_yield_bobbin(rt, n, y))
            }),
            Entry::against("tokio multi_thread, 1 worker", 0, move |k| {
                time_on(k, tokio_rt(1), |rt| rt_spawn_yield_tokio(rt, n, y))
            }),
            Entry::against("tokio multi_thread, 2 workers", 1, move |k| {
                time_on(k, tokio_rt(2), |rt| rt_spawn_yield_tokio(rt, n, y))
            }),
        ],
    }
}

// ---------------------------------------------------------------------------------------
// fib

/// `fib`: fib(n) with a green thread (task) per call on 1 and 2 workers.
pub fn fib(sizes: &Sizes) -> Timed<'static> {
    let n: u64 = if sizes.quick { 15 } else { 25 };
    let expected = fib_plain(n);
    // One spawn per call with n >= 2.
    let spawns = fib_plain(n + 1) - 1;
    let bobbin_rt = |w: usize| move || bobbin_runtime(w);
    let tokio_rt = |w: usize| move || tokio_multi_thread(w);
    let spawns_text = super::fmt_num(spawns as f64);
    Timed {
        key: "fib",
        title: format!("fib({n}) with a green thread per call on 1 and 2 workers, total"),
        description: format!(
            "`a = spawn(fib(n - 1)); b = fib(n - 2); join(a) + b` down to n < 2: {spawns_text} spawns and joins \
             in a deep tree of tasks waiting on each other. bobbin: `Runtime::builder().workers(w)`, the root \
             is `Runtime::block_on`, the calls `bobbin::runtime::spawn`; tokio: \
             `Builder::new_multi_thread().worker_threads(w)`, the root task spawned on the runtime, the calls \
             `tokio::spawn` of boxed futures. The criterion benchmark `rt_fib` (benches/runtime.rs) runs the \
             same code. Runtimes are built before and dropped after each batch, outside the time; every \
             result is checked."
        ),
        unit: "ms",
        scale: MS,
        rounds: sizes.rounds_heavy,
        entries: vec![
            Entry::against("bobbin Runtime, 1 worker", 0, move |k| {
                time_on(k, bobbin_rt(1), |rt| assert_eq!(rt.block_on(move || fib_bobbin(n)), expected))
            }),
            Entry::against("bobbin Runtime, 2 workers", 1, move |k| {
                time_on(k, bobbin_rt(2), |rt| assert_eq!(rt.block_on(move || fib_bobbin(n)), expected))
            }),
            Entry::against("tokio multi_thread, 1 worker", 0, move |k| {
                time_on(k, tokio_rt(1), |rt| assert_eq!(tokio_run(rt, fib_tokio(n)), expected))
            }),
            Entry::against("tokio multi_thread, 2 workers", 1, move |k| {
                time_on(k, tokio_rt(2), |rt| assert_eq!(tokio_run(rt, fib_tokio(n)), expected))
            }),
        ],
    }
}
