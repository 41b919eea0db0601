//! The workload bodies shared by the criterion benchmarks (`benches/coroutine.rs`,
//! `benches/sched.rs`, `benches/runtime.rs`) and the `compare` binary
//! ([`crate::compare::workloads`]), so that both measure the same code. Each function runs
//! one whole workload once (one criterion iteration, one iteration of a `compare` batch);
//! runtimes and executors are built by the caller and passed in, except bobbin's per-thread
//! scheduler, which `spawn_yield_bobbin` and `pingpong_bobbin` enter themselves (its set-up
//! is part of their time).
//!
//! - generator sum (`generator_sum_*`): the sum of `1..=n` through a generator created for
//!   the purpose.
//! - spawn_yield: spawn `n` tasks that yield `yields` times each, then join them all; on one
//!   thread (`spawn_yield_*`) or on a multi-threaded runtime (`rt_spawn_yield_*`).
//! - pingpong (`pingpong_*`): two tasks on one thread pass a counter back and forth through
//!   two unbounded channels, `rounds` round trips; returns the counter, which must come back
//!   as `rounds`.
//! - select (`select_*`): a task sends a counter on one of two channels, alternately; its
//!   partner waits on both with its library's select and sends the counter back, plus
//!   one, through a third channel: `rounds` round trips, one select each; returns the
//!   counter.
//! - context swap (`SwapPair`, `FcontextPair`): a child that switches back to its parent
//!   forever, driven by `round_trips(n)`; bobbin's `Context::swap` and Boost.Context's
//!   `jump_fcontext` (the `context` crate's `resume`), shared by the `compare` binary and
//!   `examples/ctx_probe.rs`. [`clear_fp_status`] and [`raise_inexact`] set up the two
//!   floating-point states they are measured in.
//! - fib and fan-out on bobbin's runtime (`fib_bobbin`, `fanout_bobbin`), shared by
//!   `benches/runtime.rs` and `examples/rt_probe.rs`; their peers' versions live in the
//!   benchmark.
//!
//! may's runtime is global: [`may_init`] gives it one worker before its first use, so that
//! it is single-threaded like the other schedulers. `may::go!` wraps may's `unsafe fn
//! spawn`, whose contract is that the coroutine neither relies on thread-locals staying
//! put (it may move between workers) nor blocks its OS thread; no closure here does either.

use std::future::Future;
use std::pin::Pin;
use std::sync::Once;

use async_executor::LocalExecutor;
use bobbin::context::{Context, ContextHandle, Val};
use bobbin::stack::Stack;
use bobbin::Generator;
use corosensei::stack::DefaultStack;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::StreamExt;
use generator::Gn;

// ---------------------------------------------------------------------------------------
// runtimes

/// Gives may's global runtime one worker; must run before may is first used (may reads its
/// configuration once).
pub fn may_init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        may::config().set_workers(1);
    });
}

/// Runs `f` as a may coroutine and waits for it on the calling thread.
pub fn may_run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // may::go!: see the module docs.
    may::go!(f).join().expect("may root coroutine")
}

/// tokio's single-threaded runtime.
pub fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio current_thread runtime")
}

/// tokio's multi-thread runtime with `workers` workers.
pub fn tokio_multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).build().expect("tokio multi_thread runtime")
}

/// bobbin's multi-threaded runtime with `workers` workers.
pub fn bobbin_runtime(workers: usize) -> bobbin::Runtime {
    bobbin::Runtime::builder().workers(workers).build().expect("bobbin runtime")
}

/// Runs `fut` as a task on the runtime's workers and waits for it on the calling thread,
/// as `bobbin::Runtime::block_on` runs its closure as a green thread on a worker (a plain
/// `block_on` would run the root future on the calling thread and spawn through the global
/// queue).
pub fn tokio_run<F>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(rt.spawn(fut)).expect("tokio root task")
}

// ---------------------------------------------------------------------------------------
// generator sum

/// bobbin `Generator` (an `Iterator`, stack from the thread's pool).
pub fn generator_sum_bobbin(n: u64) -> u64 {
    Generator::new(move |y| {
        for i in 1..=n {
            y.suspend(i);
        }
    })
    .sum()
}

/// corosensei `Coroutine` resumed until it returns, on `stack`, which is handed back for
/// the next run.
pub fn generator_sum_corosensei(n: u64, stack: DefaultStack) -> (u64, DefaultStack) {
    let mut co = corosensei::Coroutine::<(), u64, (), _>::with_stack(stack, move |y, ()| {
        for i in 1..=n {
            y.suspend(i);
        }
    });
    let mut sum = 0;
    while let corosensei::CoroutineResult::Yield(v) = co.resume(()) {
        sum += v;
    }
    (sum, co.into_stack())
}

/// The generator crate's `Gn` (an `Iterator`, fresh stack every run).
pub fn generator_sum_generator_crate(n: u64) -> u64 {
    // The closure's return value is the generator's last item, so the loop stops at n-1
    // (finishing with `done!()` instead would unwind a panic every run).
    Gn::<()>::new_scoped(move |mut s| {
        for i in 1..n {
            s.yield_(i);
        }
        n
    })
    .sum()
}

// ---------------------------------------------------------------------------------------
// spawn_yield

/// A bobbin task of spawn_yield.
fn bobbin_yields(yields: usize) {
    for _ in 0..yields {
        bobbin::yield_now();
    }
}

/// Spawns `n` green threads with `spawn`, then joins them all.
fn bobbin_join_all(n: usize, spawn: impl Fn() -> bobbin::JoinHandle<()>) {
    let hs: Vec<_> = (0..n).map(|_| spawn()).collect();
    for h in hs {
        h.join().unwrap();
    }
}

/// bobbin's per-thread scheduler: `bobbin::run` entered here, `bobbin::spawn`.
pub fn spawn_yield_bobbin(n: usize, yields: usize) {
    bobbin::run(move || bobbin_join_all(n, || bobbin::spawn(move || bobbin_yields(yields))));
}

/// bobbin's multi-threaded runtime: the root is `Runtime::block_on` (a green thread on a
/// worker), its children `bobbin::runtime::spawn`.
pub fn rt_spawn_yield_bobbin(rt: &bobbin::Runtime, n: usize, yields: usize) {
    rt.block_on(move || bobbin_join_all(n, || bobbin::runtime::spawn(move || bobbin_yields(yields))));
}

/// The root task of spawn_yield on tokio.
async fn tokio_spawn_yield(n: usize, yields: usize) {
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
}

/// tokio's current_thread runtime: the root future `block_on`, `tokio::spawn`,
/// `tokio::task::yield_now`.
pub fn spawn_yield_tokio(rt: &tokio::runtime::Runtime, n: usize, yields: usize) {
    rt.block_on(tokio_spawn_yield(n, yields));
}

/// tokio's multi-thread runtime: the root spawned on a worker ([`tokio_run`]).
pub fn rt_spawn_yield_tokio(rt: &tokio::runtime::Runtime, n: usize, yields: usize) {
    tokio_run(rt, tokio_spawn_yield(n, yields));
}

/// A task of spawn_yield on the futures executors, which yield with
/// `futures_lite::future::yield_now` (`Pending` once after waking its own task).
async fn futures_yields(yields: usize) {
    for _ in 0..yields {
        futures_lite::future::yield_now().await;
    }
}

/// Spawns `n` tasks with `spawn`, then awaits them all through the handles it returned.
async fn futures_join_all<J: Future<Output = ()>>(n: usize, spawn: impl Fn() -> J) {
    let hs: Vec<J> = (0..n).map(|_| spawn()).collect();
    for h in hs {
        h.await;
    }
}

/// async-executor's `LocalExecutor`, driven by `futures_lite::future::block_on`.
pub fn spawn_yield_async_executor(ex: &LocalExecutor<'_>, n: usize, yields: usize) {
    futures_lite::future::block_on(ex.run(futures_join_all(n, || ex.spawn(futures_yields(yields)))));
}

/// futures' `LocalPool`.
pub fn spawn_yield_local_pool(pool: &mut LocalPool, n: usize, yields: usize) {
    let spawner = pool.spawner();
    pool.run_until(futures_join_all(n, move || spawner.spawn_local_with_handle(futures_yields(yields)).unwrap()));
}

/// may, with as many workers as its runtime has: `may::go!`, `may::coroutine::yield_now`.
pub fn spawn_yield_may(n: usize, yields: usize) {
    may_run(move || {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                // may::go!: see the module docs.
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
    });
}

// ---------------------------------------------------------------------------------------
// pingpong

/// bobbin: `bobbin::run` entered here, `bobbin::sync::channel`.
pub fn pingpong_bobbin(rounds: u64) -> u64 {
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

/// tokio current_thread: `tokio::sync::mpsc::unbounded_channel`.
pub fn pingpong_tokio(rt: &tokio::runtime::Runtime, rounds: u64) -> u64 {
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

/// async-executor `LocalExecutor`: `futures::channel::mpsc::unbounded`.
pub fn pingpong_async_executor(ex: &LocalExecutor<'_>, rounds: u64) -> u64 {
    futures_lite::future::block_on(ex.run(pingpong_futures(rounds, |f| ex.spawn(f))))
}

/// futures `LocalPool`: `futures::channel::mpsc::unbounded`.
pub fn pingpong_local_pool(pool: &mut LocalPool, rounds: u64) -> u64 {
    let spawner = pool.spawner();
    pool.run_until(pingpong_futures(rounds, move |f| spawner.spawn_local_with_handle(f).unwrap()))
}

/// may: `may::sync::mpsc`.
pub fn pingpong_may(rounds: u64) -> u64 {
    may_run(move || {
        let (tx1, rx1) = may::sync::mpsc::channel::<u64>();
        let (tx2, rx2) = may::sync::mpsc::channel::<u64>();
        // may::go!: see the module docs.
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
}

// ---------------------------------------------------------------------------------------
// runtime fib and fan-out

/// Messages sent by the producer in the fan-out.
pub const FANOUT_N: u64 = 100_000;
/// Capacity of the fan-out channel.
pub const FANOUT_CAP: usize = 128;
/// Consumer tasks in the fan-out.
pub const CONSUMERS: usize = 4;

/// fib(n) with a green thread per call: `a = spawn(fib(n - 1)); b = fib(n - 2); join(a) + b`.
/// Must run on a worker of a `bobbin::Runtime`.
pub fn fib_bobbin(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = bobbin::runtime::spawn(move || fib_bobbin(n - 1));
    let b = fib_bobbin(n - 2);
    a.join().unwrap() + b
}

/// fib(n) without tasks, to check the results of the workloads that spawn per call.
pub fn fib_plain(n: u64) -> u64 {
    (0..n).fold((0, 1), |(a, b), _| (b, a + b)).0
}

/// fib(n) with a tokio task per call, as [`fib_bobbin`]; recursive, so its futures are boxed.
pub fn fib_tokio(n: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send>> {
    Box::pin(async move {
        if n < 2 {
            return n;
        }
        let a = tokio::spawn(fib_tokio(n - 1));
        let b = fib_tokio(n - 2).await;
        a.await.unwrap() + b
    })
}

/// A producer sends `0..FANOUT_N` through one bounded MPMC channel of `FANOUT_CAP` to
/// `CONSUMERS` consumers, which send their sums back through one channel; returns the total.
pub fn fanout_bobbin(rt: &bobbin::Runtime) -> u64 {
    rt.block_on(|| {
        let (tx, rx) = bobbin::sync::bounded::<u64>(FANOUT_CAP);
        let (sum_tx, sum_rx) = bobbin::sync::channel::<u64>();
        for _ in 0..CONSUMERS {
            let rx = rx.clone();
            let sum_tx = sum_tx.clone();
            bobbin::runtime::spawn(move || sum_tx.send(rx.iter().sum()).unwrap());
        }
        drop((rx, sum_tx));
        let producer = bobbin::runtime::spawn(move || {
            for i in 0..FANOUT_N {
                tx.send(i).unwrap();
            }
        });
        let total = sum_rx.iter().sum();
        producer.join().unwrap();
        total
    })
}

// ---------------------------------------------------------------------------------------
// context swap

/// Clears the MXCSR status flags (the sticky "inexact", "overflow", ... bits) of the
/// calling thread, leaving its control bits alone.
pub fn clear_fp_status() {
    #[allow(deprecated)] // deprecated for changing control bits, which this leaves alone
    // SAFETY: only the status flags change; rounding mode and exception masks stay.
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() & !0x3F);
    }
}

/// Raises the MXCSR "inexact" flag of the calling thread with a division that rounds.
pub fn raise_inexact() {
    std::hint::black_box(std::hint::black_box(1.0f64) / std::hint::black_box(3.0f64));
}

/// A bobbin child context on a guard-paged stack that swaps back to its parent forever.
pub struct SwapPair {
    parent: ContextHandle,
    child: ContextHandle,
    // The suspended child's frames live on it.
    _stack: Stack,
}

extern "C" fn swap_child(parent: *mut Context, child: *mut Context) -> ! {
    loop {
        // SAFETY: both point into the heap contexts of the SwapPair that started this child,
        // which outlives every switch into it.
        unsafe { Context::swap(&mut *child, &mut *parent) };
    }
}

impl SwapPair {
    /// A child ready to start: its first round trip enters it.
    pub fn new() -> SwapPair {
        let mut stack = Stack::new(64 * 1024).expect("a 64 KiB stack");
        let mut parent = ContextHandle::new();
        let mut child = ContextHandle::new();
        // Heap contexts: these addresses stay valid when the handles move into the pair.
        let (pp, cp): (*mut Context, *mut Context) = (&mut *parent, &mut *child);
        let args = [Val::CPtr(pp.cast()), Val::CPtr(cp.cast())];
        Context::init(stack.words_mut(), &mut child, swap_child as *const () as usize, &args).expect("init the child");
        SwapPair { parent, child, _stack: stack }
    }

    /// `n` round trips: parent -> child -> parent, each a `Context::swap`.
    pub fn round_trips(&mut self, n: u64) {
        let (parent, child): (*mut Context, *mut Context) = (&mut *self.parent, &mut *self.child);
        for _ in 0..n {
            // SAFETY: the child was initialised on this pair's stack, which outlives it, and
            // swaps straight back.
            unsafe { Context::swap(&mut *parent, &mut *child) };
        }
    }
}

impl Default for SwapPair {
    fn default() -> Self {
        SwapPair::new()
    }
}

/// A `context` (Boost fcontext) child on its guard-paged stack that resumes its parent
/// forever.
pub struct FcontextPair {
    // The child's context, as the last switch back handed it over.
    to_child: Option<context::Context>,
    // Last: the suspended child's frames live on it.
    _stack: context::stack::ProtectedFixedSizeStack,
}

extern "C" fn fcontext_child(mut t: context::Transfer) -> ! {
    loop {
        // SAFETY: t.context is the parent, suspended in its own resume.
        t = unsafe { t.context.resume(0) };
    }
}

impl FcontextPair {
    /// A child ready to start: its first round trip enters it.
    pub fn new() -> FcontextPair {
        let stack = context::stack::ProtectedFixedSizeStack::new(64 * 1024).expect("a 64 KiB stack");
        // SAFETY: the stack lives in the pair as long as the context made on it.
        let child = unsafe { context::Context::new(&stack, fcontext_child) };
        FcontextPair { to_child: Some(child), _stack: stack }
    }

    /// `n` round trips: parent -> child -> parent, each a `resume` (`jump_fcontext`).
    pub fn round_trips(&mut self, n: u64) {
        let mut child = self.to_child.take().expect("the child is handed back after every batch");
        for _ in 0..n {
            // SAFETY: `child` is the suspended child of this pair, which resumes us straight
            // back and hands over its context again.
            child = unsafe { child.resume(0) }.context;
        }
        self.to_child = Some(child);
    }
}

impl Default for FcontextPair {
    fn default() -> Self {
        FcontextPair::new()
    }
}

/// bobbin: `bobbin::select!` over two unbounded channels, on green threads of one `run`.
pub fn select_bobbin(rounds: u64) -> u64 {
    bobbin::run(move || {
        let (tx_a, rx_a) = bobbin::sync::channel::<u64>();
        let (tx_b, rx_b) = bobbin::sync::channel::<u64>();
        let (tx_r, rx_r) = bobbin::sync::channel::<u64>();
        let h = bobbin::spawn(move || {
            for _ in 0..rounds {
                let v = bobbin::select! {
                    recv(rx_a) -> v => v.unwrap(),
                    recv(rx_b) -> v => v.unwrap(),
                };
                tx_r.send(v + 1).unwrap();
            }
        });
        let mut v = 0;
        for i in 0..rounds {
            if i % 2 == 0 {
                tx_a.send(v).unwrap()
            } else {
                tx_b.send(v).unwrap()
            }
            v = rx_r.recv().unwrap();
        }
        h.join().unwrap();
        v
    })
}

/// crossbeam-channel: its `select!` over two unbounded channels, between two OS threads.
pub fn select_crossbeam(rounds: u64) -> u64 {
    let (tx_a, rx_a) = crossbeam_channel::unbounded::<u64>();
    let (tx_b, rx_b) = crossbeam_channel::unbounded::<u64>();
    let (tx_r, rx_r) = crossbeam_channel::unbounded::<u64>();
    let h = std::thread::spawn(move || {
        for _ in 0..rounds {
            let v = crossbeam_channel::select! {
                recv(rx_a) -> v => v.unwrap(),
                recv(rx_b) -> v => v.unwrap(),
            };
            tx_r.send(v + 1).unwrap();
        }
    });
    let mut v = 0;
    for i in 0..rounds {
        if i % 2 == 0 {
            tx_a.send(v).unwrap()
        } else {
            tx_b.send(v).unwrap()
        }
        v = rx_r.recv().unwrap();
    }
    h.join().unwrap();
    v
}

/// tokio current_thread: `tokio::select!` over two `mpsc::unbounded_channel`s.
pub fn select_tokio(rt: &tokio::runtime::Runtime, rounds: u64) -> u64 {
    rt.block_on(async move {
        let (tx_a, mut rx_a) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let (tx_b, mut rx_b) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let (tx_r, mut rx_r) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let h = tokio::spawn(async move {
            for _ in 0..rounds {
                let v = tokio::select! {
                    Some(v) = rx_a.recv() => v,
                    Some(v) = rx_b.recv() => v,
                };
                tx_r.send(v + 1).unwrap();
            }
        });
        let mut v = 0;
        for i in 0..rounds {
            if i % 2 == 0 {
                tx_a.send(v).unwrap()
            } else {
                tx_b.send(v).unwrap()
            }
            v = rx_r.recv().await.unwrap();
        }
        h.await.unwrap();
        v
    })
}

/// may (1 worker): `may::select!`, which runs each arm's receive in a coroutine of its
/// own and cancels the ones that lose, over two `may::sync::mpsc` channels.
pub fn select_may(rounds: u64) -> u64 {
    may_run(move || {
        let (tx_a, rx_a) = may::sync::mpsc::channel::<u64>();
        let (tx_b, rx_b) = may::sync::mpsc::channel::<u64>();
        let (tx_r, rx_r) = may::sync::mpsc::channel::<u64>();
        // may::go!: see the module docs.
        let h = may::go!(move || {
            for _ in 0..rounds {
                let got = std::sync::atomic::AtomicU64::new(0);
                may::select!(
                    v = rx_a.recv() => got.store(v.unwrap(), std::sync::atomic::Ordering::Relaxed),
                    v = rx_b.recv() => got.store(v.unwrap(), std::sync::atomic::Ordering::Relaxed)
                );
                tx_r.send(got.into_inner() + 1).unwrap();
            }
        });
        let mut v = 0;
        for i in 0..rounds {
            if i % 2 == 0 {
                tx_a.send(v).unwrap()
            } else {
                tx_b.send(v).unwrap()
            }
            v = rx_r.recv().unwrap();
        }
        h.join().unwrap();
        v
    })
}
