//! The multi-threaded runtime: every task runs once, stealing happens, no lost wake-ups,
//! thread affinity of started green threads, panics, shutdown.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bobbin::runtime;
use bobbin::sync::{bounded, channel};
use bobbin::{Error, Runtime};

/// The index of the worker running the caller, from its thread name.
fn worker_index() -> usize {
    let thread = std::thread::current();
    let name = thread.name().expect("worker threads are named");
    name.strip_prefix("bobbin-worker-").expect("a worker thread").parse().expect("an index")
}

/// Polls `done` every 2 ms; panics if it is still false after `polls` polls (a hang guard,
/// not a timing check).
fn wait_until(what: &str, polls: u32, mut done: impl FnMut() -> bool) {
    for _ in 0..polls {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(done(), "gave up waiting for {what}");
}

#[test]
fn a_million_tasks_from_several_threads_run_exactly_once() {
    // Under AddressSanitizer every green thread maps and unmaps a fake stack of its own,
    // which costs forty seconds for a million: a tenth of them makes the same point.
    const PER_THREAD: u64 = if cfg!(bobbin_asan) { 25_000 } else { 250_000 };
    const THREADS: u64 = 4;
    let rt = Runtime::builder().workers(4).build().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (rt, count, sum) = (&rt, &count, &sum);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let v = t * PER_THREAD + i;
                    let (count, sum) = (Arc::clone(count), Arc::clone(sum));
                    drop(rt.spawn(move || {
                        sum.fetch_add(v, Ordering::Relaxed);
                        count.fetch_add(1, Ordering::Relaxed);
                    }));
                }
            });
        }
    });
    let n = THREADS * PER_THREAD;
    wait_until("a million tasks", 150_000, || count.load(Ordering::Relaxed) >= n);
    drop(rt);
    assert_eq!(count.load(Ordering::Relaxed), n, "a task ran twice");
    assert_eq!(sum.load(Ordering::Relaxed), n * (n - 1) / 2);
}

#[test]
fn work_spawned_by_one_worker_is_stolen_by_every_worker() {
    const WORKERS: usize = 4;
    let rt = Runtime::builder().workers(WORKERS).build().unwrap();
    let per_worker: Arc<Vec<AtomicUsize>> = Arc::new((0..WORKERS).map(|_| AtomicUsize::new(0)).collect());
    let counters = Arc::clone(&per_worker);
    let spawner = rt.block_on(move || {
        let spawner = worker_index();
        let handles: Vec<_> = (0..20_000)
            .map(|_| {
                let counters = Arc::clone(&counters);
                runtime::spawn(move || {
                    counters[worker_index()].fetch_add(1, Ordering::SeqCst);
                    // Stay alive (yielding) until every worker has run a task: with
                    // stealing that happens quickly; without it, only the bound ends it.
                    for _ in 0..1_000_000 {
                        if counters.iter().all(|c| c.load(Ordering::SeqCst) > 0) {
                            break;
                        }
                        bobbin::yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        spawner
    });
    let counts: Vec<usize> = per_worker.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    assert_eq!(counts.iter().sum::<usize>(), 20_000);
    for (w, &c) in counts.iter().enumerate() {
        assert!(c > 0, "worker {w} ran nothing (spawner was {spawner}): {counts:?}");
    }
}

#[test]
fn ping_pong_across_workers_loses_no_wake_up() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    for _ in 0..50 {
        const ROUNDS: u64 = 2_000;
        let (wa, wb, total, seen) = rt.block_on(|| {
            let (to_b, from_a) = channel::<u64>();
            let (to_a, from_b) = bounded::<u64>(1);
            let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let b_started = Arc::clone(&started);
            let b = runtime::spawn(move || {
                b_started.store(true, Ordering::SeqCst);
                let me = worker_index();
                let mut seen = 0;
                while let Ok(v) = from_a.recv() {
                    to_a.send(v * 2).unwrap();
                    seen += 1;
                }
                (me, seen)
            });
            // Keep this worker busy until B starts: only the other worker can take it.
            while !started.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            let me = worker_index();
            let mut total = 0;
            for i in 0..ROUNDS {
                to_b.send(i).unwrap();
                total += from_b.recv().unwrap();
            }
            drop(to_b);
            let (wb, seen) = b.join().unwrap();
            (me, wb, total, seen)
        });
        assert_ne!(wa, wb, "B was not stolen");
        assert_eq!(seen, ROUNDS);
        assert_eq!(total, ROUNDS * (ROUNDS - 1));
    }
}

#[test]
fn many_to_many_channel_delivers_every_message_once() {
    let rt = Runtime::builder().workers(4).build().unwrap();
    for round in 0..20 {
        const PRODUCERS: u64 = 4;
        const CONSUMERS: usize = 4;
        const EACH: u64 = 5_000;
        let (tx, rx) = if round % 2 == 0 { bounded::<u64>(8) } else { channel::<u64>() };
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let tx = tx.clone();
                rt.spawn(move || {
                    for i in 0..EACH {
                        tx.send(p * EACH + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let rx = rx.clone();
                rt.spawn(move || rx.iter().collect::<Vec<u64>>())
            })
            .collect();
        drop(rx);
        for p in producers {
            p.join().unwrap();
        }
        let mut all: Vec<u64> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
        all.sort_unstable();
        let expected: Vec<u64> = (0..PRODUCERS * EACH).collect();
        assert!(all == expected, "round {round}: {} messages, expected {}", all.len(), expected.len());
    }
}

#[test]
fn channels_and_joins_work_between_workers_and_plain_threads() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = channel::<u32>();
    let (back_tx, back_rx) = channel::<u32>();
    let task = rt.spawn(move || {
        let mut n = 0;
        for v in rx.iter() {
            back_tx.send(v + 1).unwrap();
            n += 1;
        }
        n
    });
    let plain = std::thread::spawn(move || {
        for i in 0..1000 {
            tx.send(i).unwrap();
            assert_eq!(back_rx.recv().unwrap(), i + 1);
        }
    });
    plain.join().unwrap();
    assert_eq!(task.join().unwrap(), 1000);
}

/// Runs `tasks` green threads that yield, sleep and wait on channels, recording whether each
/// resumed on another OS thread than it started on; returns how many did.
fn count_thread_changes(rt: &Runtime, tasks: usize) -> usize {
    let moved = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let moved = Arc::clone(&moved);
            rt.spawn(move || {
                let start = std::thread::current().id();
                let mut changed = false;
                for k in 0..50 {
                    match k % 10 {
                        0 => bobbin::sleep(Duration::from_micros(50)),
                        5 => {
                            let (tx, rx) = channel();
                            let h = runtime::spawn(move || tx.send(i).unwrap());
                            assert_eq!(rx.recv().unwrap(), i);
                            h.join().unwrap();
                        }
                        _ => bobbin::yield_now(),
                    }
                    changed |= std::thread::current().id() != start;
                }
                if changed {
                    moved.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    moved.load(Ordering::Relaxed)
}

#[test]
fn started_green_threads_stay_on_their_worker() {
    let rt = Runtime::builder().workers(4).build().unwrap();
    assert_eq!(count_thread_changes(&rt, 400), 0, "a started green thread changed OS thread");
}

#[test]
fn with_migration_allowed_green_threads_move_and_still_finish() {
    // SAFETY: the green threads of count_thread_changes touch no thread-locals of their own
    // across suspension points; bobbin's own thread-local accesses are not cached across
    // a suspension.
    let rt = unsafe { Runtime::builder().workers(4).allow_migration() }.build().unwrap();
    let mut moved = 0;
    for _ in 0..20 {
        moved += count_thread_changes(&rt, 400);
        if moved > 0 {
            break;
        }
    }
    assert!(moved > 0, "no green thread ever migrated");
}

#[test]
fn a_panicking_task_reports_a_join_error_and_its_worker_survives() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let worker = rt.block_on(worker_index);
    for i in 0..100 {
        let err = rt.spawn(move || -> u32 { panic!("task {i} failed") }).join().unwrap_err();
        assert_eq!(err.message(), Some(format!("task {i} failed").as_str()));
    }
    assert_eq!(rt.spawn(worker_index).join().unwrap(), worker);
    assert_eq!(rt.block_on(|| 7), 7);
}

#[test]
fn block_on_propagates_a_panic() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(|| panic!("inner boom"))));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"inner boom"));
}

struct CountDrop(Arc<AtomicUsize>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_the_runtime_unwinds_parked_green_threads() {
    const PARKED: usize = 300;
    let dropped = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = channel::<()>();
    let (sleep_tx, _sleep_rx) = channel::<()>();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..PARKED)
        .map(|i| {
            let guard = CountDrop(Arc::clone(&dropped));
            let started = Arc::clone(&started);
            let rx = rx.clone();
            let sleep_tx = sleep_tx.clone();
            rt.spawn(move || {
                let _guard = guard;
                started.fetch_add(1, Ordering::SeqCst);
                match i % 3 {
                    0 => drop(rx.recv()),
                    1 => bobbin::sleep(Duration::from_secs(3600)),
                    _ => loop {
                        bobbin::yield_now();
                        let _ = &sleep_tx;
                    },
                }
            })
        })
        .collect();
    wait_until("every task to start", 30_000, || started.load(Ordering::SeqCst) == PARKED);
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    drop(rt);
    assert_eq!(dropped.load(Ordering::SeqCst), PARKED, "every destructor runs exactly once");
    for h in handles {
        let err = h.join().unwrap_err();
        assert!(err.message().is_some_and(|m| m.contains("shut down")), "{err}");
    }
    drop(tx);
}

#[test]
fn tasks_not_started_at_shutdown_report_it_to_their_joiners() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (gate_tx, gate_rx) = bounded::<()>(1);
    let (entered_tx, entered_rx) = channel::<()>();
    // Keep the only worker busy in a yield loop so the next tasks stay queued.
    let blocker = rt.spawn(move || {
        entered_tx.send(()).unwrap();
        while gate_rx.try_recv().is_err() {
            bobbin::yield_now();
        }
    });
    entered_rx.recv().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..10)
        .map(|_| {
            let guard = CountDrop(Arc::clone(&dropped));
            rt.spawn(move || drop(guard))
        })
        .collect();
    drop(rt);
    drop(gate_tx);
    assert_eq!(dropped.load(Ordering::SeqCst), 10);
    assert!(blocker.join().is_err());
    for h in queued {
        // Either it ran before the worker saw the shutdown, or its joiner is told why not.
        if let Err(e) = h.join() {
            assert!(e.message().is_some_and(|m| m.contains("shut down")), "{e}");
        }
    }
}

#[test]
fn builder_errors_are_errors() {
    assert!(matches!(Runtime::builder().workers(0).build(), Err(Error::NoWorkers)));
    assert!(matches!(Runtime::builder().workers(1).stack_size(0).build(), Err(Error::InvalidStackSize { .. })));
    assert!(matches!(
        Runtime::builder().workers(1).stack_size(usize::MAX - 10).build(),
        Err(Error::InvalidStackSize { .. })
    ));
}

#[test]
fn sleepers_and_timeouts_wake_in_deadline_order_on_a_worker() {
    // On one worker, sleepers spawned in scrambled order wake in deadline order, and a
    // receive with a timeout ends between the sleeps just shorter and just longer than it.
    // Their deadlines are in the order of their lengths only if all five started within
    // one unit of time; on a loaded machine they may not have (the worker's thread can be
    // stopped between two of them), so the start-up is measured and, when it took a unit
    // or more, the run is repeated with a unit twice as long.
    let rt = Runtime::builder().workers(1).build().unwrap();
    for unit in (0..8).map(|k| Duration::from_millis(10 << k)) {
        let (order, spread) = rt.block_on(move || {
            let (tx, rx) = channel::<u32>();
            let (_keep, never) = channel::<u8>();
            let started = Arc::new(AtomicUsize::new(0));
            let first = Instant::now();
            let mut hs: Vec<_> = [5u32, 1, 4, 2]
                .into_iter()
                .map(|k| {
                    let (tx, started) = (tx.clone(), Arc::clone(&started));
                    runtime::spawn(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        bobbin::sleep(unit * k);
                        tx.send(k).unwrap();
                    })
                })
                .collect();
            let s = Arc::clone(&started);
            hs.push(runtime::spawn(move || {
                s.fetch_add(1, Ordering::SeqCst);
                assert!(never.recv_timeout(unit * 3).is_err());
                tx.send(3).unwrap();
            }));
            // One worker: each green thread runs from its count to its park without a
            // switch, so once all five have counted, all five deadlines are set.
            while started.load(Ordering::SeqCst) < 5 {
                bobbin::yield_now();
            }
            let spread = first.elapsed();
            hs.into_iter().for_each(|h| h.join().unwrap());
            (rx.try_iter().collect::<Vec<u32>>(), spread)
        });
        if spread < unit {
            assert_eq!(order, [1, 2, 3, 4, 5], "unit {unit:?}, started within {spread:?}");
            return;
        }
    }
    panic!("five green threads never started within 1.28 s of each other");
}

#[test]
fn parallel_recursion_across_workers() {
    fn fib(n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        let a = runtime::spawn(move || fib(n - 1));
        let b = fib(n - 2);
        a.join().unwrap() + b
    }
    let rt = Runtime::builder().workers(2).build().unwrap();
    let workers_seen = Arc::new(Mutex::new(HashSet::new()));
    let seen = Arc::clone(&workers_seen);
    assert_eq!(
        rt.block_on(move || {
            seen.lock().unwrap().insert(worker_index());
            fib(20)
        }),
        6765
    );
    assert_eq!(workers_seen.lock().unwrap().len(), 1);
}

#[test]
fn misuse_from_a_worker_panics_clearly() {
    let rt = Arc::new(Runtime::builder().workers(1).build().unwrap());
    let inner = Arc::clone(&rt);
    let err = rt.spawn(move || inner.block_on(|| 1)).join().unwrap_err();
    assert!(err.message().unwrap().contains("block_on called from one of the runtime's own green threads"));
    let outside = std::panic::catch_unwind(|| runtime::spawn(|| 1)).unwrap_err();
    let message = outside.downcast_ref::<String>().map(String::as_str).or(outside.downcast_ref::<&str>().copied());
    assert!(message.unwrap().contains("outside a Runtime"), "{message:?}");
}

/// Live green threads of a spawn-and-join recursion, and the most there ever were.
struct LiveCount {
    now: AtomicUsize,
    max: AtomicUsize,
}

fn fib_tracking_live(n: u64, live: &'static LiveCount) -> u64 {
    if n < 2 {
        return n;
    }
    let a = runtime::spawn(move || {
        let now = live.now.fetch_add(1, Ordering::Relaxed) + 1;
        live.max.fetch_max(now, Ordering::Relaxed);
        let value = fib_tracking_live(n - 1, live);
        live.now.fetch_sub(1, Ordering::Relaxed);
        value
    });
    let b = fib_tracking_live(n - 2, live);
    a.join().unwrap() + b
}

#[test]
fn spawn_and_join_recursion_runs_depth_first_on_one_worker() {
    // fib(20) spawns 10,945 green threads. Started newest first, a worker holds about 100
    // parked ones at once (more than the depth of 20: a joiner runs before new green threads
    // start only while it is the one ready green thread; before it did so at all, about
    // 200); started oldest first (breadth first), it held 3,151.
    static LIVE: LiveCount = LiveCount { now: AtomicUsize::new(0), max: AtomicUsize::new(0) };
    let rt = Runtime::builder().workers(1).build().unwrap();
    assert_eq!(rt.block_on(|| fib_tracking_live(20, &LIVE)), 6765);
    let max = LIVE.max.load(Ordering::Relaxed);
    assert!(max <= 150, "{max} green threads were alive at once for a recursion 20 deep");
}

#[test]
fn a_chain_of_spawns_does_not_starve_an_older_spawn() {
    // Each link of the chain spawns the next and ends, so the newest spawn is always a
    // link. The older green thread must still get to run, and then it stops the chain.
    const LIMIT: usize = 1_000_000;
    fn link(stop: Arc<AtomicUsize>, links: Arc<AtomicUsize>) {
        if stop.load(Ordering::Relaxed) == 0 && links.fetch_add(1, Ordering::Relaxed) < LIMIT {
            drop(runtime::spawn(move || link(stop, links)));
        }
    }
    let rt = Runtime::builder().workers(1).build().unwrap();
    let links = rt.block_on(|| {
        let stop = Arc::new(AtomicUsize::new(0));
        let links = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&stop);
        let older = runtime::spawn(move || s.store(1, Ordering::Relaxed));
        let (s, l) = (Arc::clone(&stop), Arc::clone(&links));
        drop(runtime::spawn(move || link(s, l)));
        older.join().unwrap();
        links.load(Ordering::Relaxed)
    });
    assert!(links < 10_000, "the older green thread ran only after {links} links of the chain");
}

#[test]
fn green_threads_overflowing_on_any_worker_fail_their_joins() {
    common::in_child_ok("green_threads_overflowing_on_any_worker_fail_their_joins", || {
        let rt = Runtime::builder().workers(2).stack_size(64 * 1024).build().unwrap();
        let handles: Vec<_> = (0..20).map(|_| rt.spawn(|| common::recurse_forever(0))).collect();
        for h in handles {
            let err = h.join().unwrap_err();
            let msg = err.message().unwrap_or_default().to_owned();
            assert!(msg.contains("overflowed its stack of 65536 bytes"), "{msg}");
        }
        assert_eq!(rt.block_on(|| 7), 7);
    });
}

#[test]
fn a_receive_on_a_nested_stack_parks_on_a_one_worker_runtime() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let out = rt.block_on(|| {
        let (tx, rx) = channel::<u32>();
        let g = runtime::spawn(move || {
            // The generator's receive parks the green thread (relayed from its stack), so
            // the sender below gets to run on the only worker.
            let mut gen = bobbin::Generator::new(move |y| y.suspend(rx.recv().unwrap() + 6));
            gen.next().unwrap()
        });
        bobbin::yield_now();
        tx.send(1).unwrap();
        g.join().unwrap()
    });
    assert_eq!(out, 7);
    // The only worker is alive and well.
    assert_eq!(rt.block_on(|| 8), 8);
}

/// Parks its green thread when dropped, between recording the OS thread it ran on before and
/// after the park.
struct ParkOnDrop {
    /// Tells the waker that the park is about to begin.
    parking: bobbin::sync::Sender<()>,
    wake: bobbin::sync::Receiver<()>,
    threads: Arc<Mutex<(Option<std::thread::ThreadId>, Option<std::thread::ThreadId>)>>,
}

impl Drop for ParkOnDrop {
    fn drop(&mut self) {
        self.threads.lock().unwrap().0 = Some(std::thread::current().id());
        self.parking.send(()).unwrap();
        self.wake.recv().unwrap();
        self.threads.lock().unwrap().1 = Some(std::thread::current().id());
    }
}

/// std counts a thread's panics per OS thread: a green thread that parks in the middle of
/// its unwinding must go on on the same one, or it ends its unwinding on another and leaves
/// both threads' counts wrong (one still panicking, the other below zero).
#[test]
fn a_green_thread_that_parks_while_unwinding_stays_on_its_worker() {
    // SAFETY: the green threads below keep no thread-local addresses across a park.
    let rt = unsafe { Runtime::builder().workers(2).allow_migration() }.build().unwrap();
    for _ in 0..3 {
        let threads = Arc::new(Mutex::new((None, None)));
        let seen = Arc::clone(&threads);
        let a = rt.spawn(move || {
            let (parking, parked) = channel();
            let (wake, woken) = channel();
            let watched = Arc::clone(&seen);
            // A local green thread, so on this worker for good: once the unwinding parks,
            // it wakes it and then keeps this worker busy, so that only the other worker
            // could run it next, if it were allowed to take it. It stops once the woken
            // green thread has run on, or after a while (no timing is asserted).
            drop(bobbin::spawn(move || {
                parked.recv().unwrap();
                wake.send(()).unwrap();
                for _ in 0..60 {
                    if watched.lock().unwrap().1.is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }));
            let _guard = ParkOnDrop { parking, wake: woken, threads: seen };
            panic!("unwinds through a park");
        });
        let err = a.join().unwrap_err();
        assert_eq!(err.message(), Some("unwinds through a park"));
        let (before, after) = *threads.lock().unwrap();
        assert!(before.is_some());
        assert_eq!(before, after, "the unwinding green thread continued on another OS thread");
    }
}
