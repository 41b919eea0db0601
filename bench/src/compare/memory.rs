//! Memory: resident bytes per parked green thread, and the largest number of them each
//! library can hold at once.
//!
//! Every measurement runs in a child process of its own ([`park_child`]): the running
//! binary (`compare`, or `examples/parked_memory.rs`) started again with the hidden
//! arguments `--park LIBRARY N`, which it hands to [`child_main`]. The child reads
//! `VmRSS` and `VmPTE` from `/proc/self/status` and counts the lines of `/proc/self/maps`,
//! parks N tasks of the library, reads them again, prints one `PARKED` line with both
//! readings, then releases every task and checks that each one finished. A fresh process
//! inherits no heap, no stack pool and no mappings from another library, and a library
//! that fails (a stack it cannot map, an abort, a crash, a hang) takes only its child down;
//! the parent reports how it ended.
//!
//! "Parked" means, per library:
//! - bobbin: `bobbin::spawn`ed green threads blocked in `recv` on clones of one
//!   `bobbin::sync::channel` receiver (released by N sends);
//! - tokio (current_thread), async-executor (`LocalExecutor`), futures (`LocalPool`):
//!   spawned tasks awaiting one `tokio::sync::Notify` (released by `notify_waiters`);
//! - may (1 worker): coroutines blocked in `recv` on clones of one `may::sync::mpmc`
//!   receiver;
//! - corosensei, generator crate: coroutines / generators created with their default stack
//!   and resumed once, so that each is suspended inside its body (released by resuming each
//!   to completion).
//!
//! The handles the parent keeps (a `Vec` of join handles or coroutines) are counted too.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_executor::LocalExecutor;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use generator::Gn;

use super::{fmt_num, Row, Sizes, WorkloadResult};

/// The most green threads any library is asked to park.
pub const CAPACITY_CAP: usize = 1_000_000;

/// The libraries measured: (name on the `--park` command line, name in the report).
/// bobbin first: it is the reference of every ratio.
pub const LIBRARIES: &[(&str, &str)] = &[
    ("bobbin", "bobbin"),
    ("tokio", "tokio current_thread"),
    ("async-executor", "async-executor LocalExecutor"),
    ("local-pool", "futures LocalPool"),
    ("may", "may (1 worker)"),
    ("corosensei", "corosensei"),
    ("generator", "generator crate"),
];

/// Memory figures of this process.
#[derive(Clone, Copy, Debug)]
struct Mem {
    rss_kb: u64,
    pte_kb: u64,
    maps: u64,
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
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps").lines().count() as u64;
    Mem { rss_kb: field("VmRSS:"), pte_kb: field("VmPTE:"), maps }
}

/// The line a child prints once all its tasks are parked.
fn print_parked(before: Mem, after: Mem) {
    println!(
        "PARKED {} {} {} {} {} {}",
        before.rss_kb, after.rss_kb, before.pte_kb, after.pte_kb, before.maps, after.maps
    );
}

fn park_bobbin(n: usize) {
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
        while waiting.get() < n {
            bobbin::yield_now();
        }
        print_parked(before, mem());
        for _ in 0..n {
            tx.send(1).unwrap();
        }
        let done: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(done, n as u64, "every green thread received one message");
    });
}

/// The body shared by the three futures executors: spawns n tasks with `spawn`, each
/// awaiting `notify`; waits with `yield_now` until all are registered; measures; wakes
/// them; awaits them all through the handles `spawn` returned.
async fn park_futures<H, S, Y>(n: usize, spawn: S, yield_now: impl Fn() -> Y)
where
    S: Fn(Arc<tokio::sync::Notify>, Arc<AtomicUsize>) -> H,
    H: std::future::Future<Output = u64>,
    Y: std::future::Future<Output = ()>,
{
    let before = mem();
    let notify = Arc::new(tokio::sync::Notify::new());
    let waiting = Arc::new(AtomicUsize::new(0));
    let hs: Vec<H> = (0..n).map(|_| spawn(Arc::clone(&notify), Arc::clone(&waiting))).collect();
    while waiting.load(Ordering::Relaxed) < n {
        yield_now().await;
    }
    // A task counts itself in the same poll that registers it with `notify`.
    print_parked(before, mem());
    notify.notify_waiters();
    let mut done = 0;
    for h in hs {
        done += h.await;
    }
    assert_eq!(done, n as u64, "every task was woken");
}

/// The parked task of the futures executors.
async fn notified_task(notify: Arc<tokio::sync::Notify>, waiting: Arc<AtomicUsize>) -> u64 {
    let notified = notify.notified();
    waiting.fetch_add(1, Ordering::Relaxed);
    notified.await;
    1
}

fn park_tokio(n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    rt.block_on(park_futures(
        n,
        |notify, waiting| {
            let h = tokio::spawn(notified_task(notify, waiting));
            async move { h.await.unwrap() }
        },
        tokio::task::yield_now,
    ));
}

fn park_async_executor(n: usize) {
    let ex = LocalExecutor::new();
    futures_lite::future::block_on(ex.run(park_futures(
        n,
        |notify, waiting| ex.spawn(notified_task(notify, waiting)),
        futures_lite::future::yield_now,
    )));
}

fn park_local_pool(n: usize) {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    pool.run_until(park_futures(
        n,
        move |notify, waiting| spawner.spawn_local_with_handle(notified_task(notify, waiting)).unwrap(),
        futures_lite::future::yield_now,
    ));
}

fn park_may(n: usize) {
    crate::workloads::may_init();
    // may::go! wraps may's `unsafe fn spawn`, whose contract is that the coroutine neither
    // relies on thread-locals staying put nor blocks its OS thread; reading /proc blocks
    // the single worker for a moment, while nothing else needs to run.
    may::go!(move || {
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
        while waiting.load(Ordering::Relaxed) < n {
            may::coroutine::sleep(Duration::from_millis(1));
        }
        print_parked(before, mem());
        for _ in 0..n {
            tx.send(1).unwrap();
        }
        let done: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(done, n as u64, "every coroutine received one message");
    })
    .join()
    .expect("the measuring coroutine finished");
}

fn park_corosensei(n: usize) {
    let before = mem();
    let mut cos: Vec<_> = (0..n)
        .map(|_| {
            let mut co = corosensei::Coroutine::<(), (), u64>::new(|y, ()| {
                y.suspend(());
                1
            });
            assert!(matches!(co.resume(()), corosensei::CoroutineResult::Yield(())));
            co
        })
        .collect();
    print_parked(before, mem());
    let mut done = 0;
    for co in &mut cos {
        if let corosensei::CoroutineResult::Return(v) = co.resume(()) {
            done += v;
        }
    }
    assert_eq!(done, n as u64, "every coroutine ran to completion");
}

fn park_generator(n: usize) {
    let before = mem();
    let mut gens: Vec<_> = (0..n)
        .map(|_| {
            let mut g = Gn::<()>::new_scoped(|mut s| {
                s.yield_(0u64);
                1u64
            });
            assert_eq!(g.resume(), Some(0));
            g
        })
        .collect();
    print_parked(before, mem());
    let done: u64 = gens.iter_mut().map(|g| g.resume().expect("the generator returns its last item")).sum();
    assert!(gens.iter().all(|g| g.is_done()));
    assert_eq!(done, n as u64, "every generator ran to completion");
}

/// The child process: parks `n` tasks of `library`, prints the `PARKED` line, releases
/// them, exits. A panic anywhere (also on a may worker) ends the process at once with its
/// message on stderr, instead of unwinding through thousands of suspended coroutines.
pub fn child_main(library: &str, n: usize) -> ! {
    super::child::exit_on_panic();
    match library {
        "bobbin" => park_bobbin(n),
        "tokio" => park_tokio(n),
        "async-executor" => park_async_executor(n),
        "local-pool" => park_local_pool(n),
        "may" => park_may(n),
        "corosensei" => park_corosensei(n),
        "generator" => park_generator(n),
        other => {
            eprintln!("unknown library {other:?}");
            std::process::exit(2);
        }
    }
    std::process::exit(0)
}

/// What a child reported.
#[derive(Clone, Copy, Debug)]
pub struct Parked {
    /// Growth of VmRSS while the tasks were parked, in bytes.
    pub rss_bytes: f64,
    /// Growth of VmPTE while the tasks were parked, in bytes.
    pub pte_bytes: f64,
    /// Lines of `/proc/self/maps` before the tasks were spawned.
    pub maps_before: i64,
    /// Lines of `/proc/self/maps` while they were parked.
    pub maps_after: i64,
}

/// Runs `--park library n` in a child process: the running binary, which must hand those
/// arguments to [`child_main`]. Ok: the growth of VmRSS and VmPTE and the mappings count
/// before and while the tasks were parked; Err: how the child ended instead.
pub fn park_child(library: &str, n: usize, timeout: Duration) -> Result<Parked, String> {
    let out = super::child::run(&["--park", library, &n.to_string()], timeout)?;
    let line = out.lines().find_map(|l| l.strip_prefix("PARKED ")).ok_or("no PARKED line in the child's output")?;
    let v: Vec<i64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if v.len() != 6 {
        return Err(format!("malformed PARKED line: {line}"));
    }
    Ok(Parked {
        rss_bytes: ((v[1] - v[0]) * 1024) as f64,
        pte_bytes: ((v[3] - v[2]) * 1024) as f64,
        maps_before: v[4],
        maps_after: v[5],
    })
}

/// `memory`: resident bytes (VmRSS + VmPTE growth) per parked green thread, with
/// `sizes.park_n` parked, in `sizes.rounds_memory` interleaved rounds of one child per
/// library.
pub fn bytes_per_parked(sizes: &Sizes) -> WorkloadResult {
    let n = sizes.park_n;
    let mut rows: Vec<Row> = LIBRARIES.iter().map(|(_, name)| Row::new(*name, 0)).collect();
    let mut last: Vec<Option<Parked>> = vec![None; LIBRARIES.len()];
    for round in 1..=sizes.rounds_memory {
        eprint!("[memory] round {round}/{}:", sizes.rounds_memory);
        for (i, (lib, _)) in LIBRARIES.iter().enumerate() {
            if rows[i].error.is_some() {
                continue;
            }
            eprint!(" {lib}");
            match park_child(lib, n, sizes.child_timeout) {
                Ok(p) => {
                    rows[i].samples.push((p.rss_bytes + p.pte_bytes) / n as f64);
                    last[i] = Some(p);
                }
                Err(e) => rows[i].error = Some(e),
            }
        }
        eprintln!();
    }
    for (row, p) in rows.iter_mut().zip(&last) {
        if let Some(p) = p {
            row.note = format!(
                "last run: VmRSS {} + VmPTE {} bytes each; kernel mappings +{}",
                fmt_num(p.rss_bytes / n as f64),
                fmt_num(p.pte_bytes / n as f64),
                fmt_num((p.maps_after - p.maps_before) as f64)
            );
        }
    }
    let n_text = fmt_num(n as f64);
    WorkloadResult {
        key: "memory",
        title: format!("Memory: resident bytes per parked green thread ({n_text} parked)"),
        description: format!(
            "Growth of VmRSS + VmPTE (`/proc/self/status`) while {n_text} tasks are parked, divided by {n_text}; \
             one child process per library and round, {} rounds interleaved. {}",
            sizes.rounds_memory, PARKED_MEANS
        ),
        unit: "bytes",
        lower_is_better: true,
        rows,
        notes: Vec::new(),
        chart_ratios: false,
    }
}

/// What "parked" means, for the report.
const PARKED_MEANS: &str = "Parked: bobbin green threads blocked in `recv` on one shared channel; tokio, \
                            async-executor and LocalPool tasks awaiting one `tokio::sync::Notify`; may coroutines \
                            blocked in `recv` on one `mpmc` channel; corosensei coroutines and generator-crate \
                            generators resumed once and suspended in their body, each on its default stack. The \
                            handles kept to release them count too.";

/// `capacity`: the largest number of tasks each library could park at once: the counts of
/// `sizes.capacity_ladder` are tried in order, each in a fresh child, until one fails;
/// then (full run) the gap between the last success and the first failure is bisected
/// down to about 2%.
pub fn capacity(sizes: &Sizes) -> WorkloadResult {
    let mut rows = Vec::new();
    for (lib, name) in LIBRARIES {
        let mut row = Row::new(*name, 0);
        let mut ok: Option<usize> = None;
        let mut fail: Option<(usize, String)> = None;
        let attempt = |n: usize| {
            eprint!(" {}", fmt_num(n as f64));
            let r = park_child(lib, n, sizes.child_timeout);
            eprint!("{}", if r.is_ok() { " ok" } else { " FAILED" });
            r
        };
        eprint!("[capacity] {lib}:");
        for &n in &sizes.capacity_ladder {
            match attempt(n) {
                Ok(_) => ok = Some(n),
                Err(e) => {
                    fail = Some((n, e));
                    break;
                }
            }
        }
        if sizes.capacity_bisect {
            while let (Some(lo), Some((hi, _))) = (ok, &fail) {
                let hi = *hi;
                if hi - lo <= (lo / 50).max(500) {
                    break;
                }
                let mid = (lo + (hi - lo) / 2) / 100 * 100;
                match attempt(mid) {
                    Ok(_) => ok = Some(mid),
                    Err(e) => fail = Some((mid, e)),
                }
            }
        }
        eprintln!();
        match (ok, fail) {
            (Some(lo), None) => {
                row.samples.push(lo as f64);
                row.note = if lo >= CAPACITY_CAP {
                    format!("reached the cap of {}", fmt_num(CAPACITY_CAP as f64))
                } else {
                    format!("every count tried worked (largest tried: {})", fmt_num(lo as f64))
                };
            }
            (Some(lo), Some((hi, e))) => {
                row.samples.push(lo as f64);
                row.note = format!("{} failed: {e}", fmt_num(hi as f64));
            }
            (None, Some((hi, e))) => row.error = Some(format!("{} failed: {e}", fmt_num(hi as f64))),
            (None, None) => row.error = Some("no count tried".into()),
        }
        rows.push(row);
    }
    let ladder: Vec<String> = sizes.capacity_ladder.iter().map(|&n| fmt_num(n as f64)).collect();
    WorkloadResult {
        key: "capacity",
        title: "Capacity: the most green threads parked at once".into(),
        description: format!(
            "Counts tried in order, each in a fresh child process: {}{}. The value is the largest count that \
             parked, measured and released every task; the note says where and how the next count failed. \
             Peers that map a stack per coroutine (one or two kernel mappings each) stop near \
             `vm.max_map_count` ({}). {}",
            ladder.join(", "),
            if sizes.capacity_bisect {
                "; then the gap between the last count that worked and the first that failed is halved until \
                 it is within 2% (or 500)"
            } else {
                ""
            },
            std::fs::read_to_string("/proc/sys/vm/max_map_count").map(|s| s.trim().to_string()).unwrap_or("?".into()),
            PARKED_MEANS
        ),
        unit: "tasks",
        lower_is_better: false,
        rows,
        notes: Vec::new(),
        chart_ratios: false,
    }
}
