//! The per-thread scheduler and channels.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bobbin::sync::{bounded, channel, RecvError, RecvTimeoutError, TryRecvError, TrySendError};
use bobbin::{run, sleep, spawn, yield_now};

#[test]
fn yield_now_round_robins_fairly() {
    const THREADS: usize = 50;
    const ROUNDS: usize = 20;
    let log = run(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let log = Rc::clone(&log);
                spawn(move || {
                    for _ in 0..ROUNDS {
                        log.borrow_mut().push(t);
                        yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    assert_eq!(log.len(), THREADS * ROUNDS);
    // Green threads start in spawn order.
    let mut first_runs: Vec<usize> = Vec::new();
    for &t in &log {
        if !first_runs.contains(&t) {
            first_runs.push(t);
        }
    }
    assert_eq!(first_runs, (0..THREADS).collect::<Vec<_>>());
    // Between two consecutive runs of a green thread, no other one runs twice: each ready
    // green thread runs once per round.
    for t in 0..THREADS {
        let runs: Vec<usize> = log.iter().enumerate().filter(|&(_, &x)| x == t).map(|(i, _)| i).collect();
        for pair in runs.windows(2) {
            let between = &log[pair[0] + 1..pair[1]];
            for other in 0..THREADS {
                let n = between.iter().filter(|&&x| x == other).count();
                assert!(n <= 1, "thread {other} ran {n} times between two runs of thread {t}");
            }
        }
    }
}

#[test]
fn spawned_green_threads_start_even_behind_threads_that_never_park() {
    // 2,000 green threads spin on yield_now until the last one spawned has started: it
    // must start after a number of switches proportional to the count, not its square.
    const SPINNERS: usize = 2_000;
    let switches = run(|| {
        let started = Rc::new(Cell::new(false));
        let switches = Rc::new(Cell::new(0u64));
        let spinners: Vec<_> = (0..SPINNERS)
            .map(|_| {
                let (started, switches) = (Rc::clone(&started), Rc::clone(&switches));
                spawn(move || {
                    while !started.get() {
                        switches.set(switches.get() + 1);
                        yield_now();
                    }
                })
            })
            .collect();
        let s = Rc::clone(&started);
        let last = spawn(move || s.set(true));
        last.join().unwrap();
        for h in spinners {
            h.join().unwrap();
        }
        switches.get()
    });
    // Quadratic would be about SPINNERS^2 / 2 = 2,000,000.
    assert!(switches < 40 * SPINNERS as u64, "{switches} yields before the last green thread started");
}

/// A green thread woken by the one running (here by a send) runs as soon as that one gives
/// control back: before a green thread that has not started yet.
#[test]
fn a_green_thread_woken_by_the_running_one_runs_next() {
    let log = run(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let (tx, rx) = channel::<()>();
        let woken_log = Rc::clone(&log);
        let waiter = spawn(move || {
            rx.recv().unwrap();
            woken_log.borrow_mut().push("woken");
        });
        yield_now(); // the waiter starts and parks
        let started_log = Rc::clone(&log);
        let unstarted = spawn(move || started_log.borrow_mut().push("started"));
        tx.send(()).unwrap();
        waiter.join().unwrap();
        unstarted.join().unwrap();
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    assert_eq!(log, ["woken", "started"]);
}

/// Two green threads that keep waking each other run out of turn only so many times in a
/// row: a green thread spawned meanwhile still starts while they go on.
#[test]
fn green_threads_that_keep_waking_each_other_do_not_hold_back_the_unstarted_ones() {
    const ROUNDS: u32 = 10_000;
    let (started_at, rounds) = run(|| {
        let round = Rc::new(Cell::new(0u32));
        let (to_b, from_a) = channel::<()>();
        let (to_a, from_b) = channel::<()>();
        let (started_tx, started_rx) = channel::<u32>();
        let a_round = Rc::clone(&round);
        let a = spawn(move || {
            for i in 0..ROUNDS {
                if i == 1 {
                    // Spawned while the exchange goes on; it only has to start.
                    let seen = Rc::clone(&a_round);
                    let started_tx = started_tx.clone();
                    drop(spawn(move || started_tx.send(seen.get()).unwrap()));
                }
                to_b.send(()).unwrap();
                from_b.recv().unwrap();
                a_round.set(a_round.get() + 1);
            }
        });
        let b = spawn(move || {
            while from_a.recv().is_ok() {
                let _ = to_a.send(());
            }
        });
        a.join().unwrap();
        b.join().unwrap();
        (started_rx.recv().unwrap(), round.get())
    });
    assert_eq!(rounds, ROUNDS);
    assert!(started_at < ROUNDS, "the spawned green thread waited for the whole exchange");
}

#[test]
fn run_returns_the_value_and_waits_for_detached_threads() {
    let done = Rc::new(RefCell::new(0));
    let d = Rc::clone(&done);
    let v = run(move || {
        for _ in 0..10 {
            let d = Rc::clone(&d);
            drop(spawn(move || {
                yield_now();
                *d.borrow_mut() += 1;
            }));
        }
        "main done"
    });
    assert_eq!(v, "main done");
    assert_eq!(*done.borrow(), 10);
}

#[test]
fn join_returns_values_and_panics() {
    run(|| {
        let ok = spawn(|| 6 * 7);
        let bad = spawn(|| -> u32 { panic!("green thread failure") });
        assert_eq!(ok.join().unwrap(), 42);
        let err = bad.join().unwrap_err();
        assert_eq!(err.message(), Some("green thread failure"));
        assert!(err.to_string().contains("green thread failure"));
    });
}

#[test]
fn panic_in_main_propagates_out_of_run() {
    let r = std::panic::catch_unwind(|| run(|| -> () { panic!("main failed") }));
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"main failed"));
}

#[test]
fn joining_from_a_plain_thread_blocks_it() {
    let (tx, rx) = std::sync::mpsc::channel();
    let joiner = std::thread::spawn(move || {
        let h: bobbin::JoinHandle<u64> = rx.recv().unwrap();
        h.join().unwrap()
    });
    run(move || {
        let h = spawn(|| {
            sleep(Duration::from_millis(30));
            99u64
        });
        tx.send(h).unwrap();
    });
    assert_eq!(joiner.join().unwrap(), 99);
}

#[test]
fn sleepers_wake_in_deadline_order() {
    // Sleeps of 5, 1, 4, 2 and 3 units, started one after the other, have their deadlines
    // in the order of their lengths only if all five started within one unit: a loaded
    // machine can stop the scheduler's thread for longer than that between two of them. So
    // the main green thread measures how long starting them took (from before the first
    // to after the last had parked) and the order is checked only when that was under a
    // unit; otherwise the run is repeated with a unit twice as long.
    for unit in (0..8).map(|k| Duration::from_millis(10 << k)) {
        let (order, spread) = run(move || {
            let order = Rc::new(RefCell::new(Vec::new()));
            let started = Rc::new(Cell::new(0));
            let first = Instant::now();
            let hs: Vec<_> = [5u32, 1, 4, 2, 3]
                .into_iter()
                .map(|k| {
                    let (order, started) = (Rc::clone(&order), Rc::clone(&started));
                    spawn(move || {
                        started.set(started.get() + 1);
                        sleep(unit * k);
                        order.borrow_mut().push(k);
                    })
                })
                .collect();
            // Each sleeper runs from its count to its park without a switch, so once all
            // five have counted, all five deadlines are set.
            while started.get() < 5 {
                yield_now();
            }
            let spread = first.elapsed();
            hs.into_iter().for_each(|h| h.join().unwrap());
            (Rc::try_unwrap(order).unwrap().into_inner(), spread)
        });
        if spread < unit {
            assert_eq!(order, [1, 2, 3, 4, 5], "unit {unit:?}, started within {spread:?}");
            return;
        }
    }
    panic!("five green threads never started within 1.28 s of each other");
}

/// CPU time used so far by the calling OS thread.
fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `t` is.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) }, 0);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[test]
fn an_idle_scheduler_does_not_spin() {
    // While its only green thread sleeps, the scheduler's OS thread must be asleep in the
    // kernel, not running a polling loop: over ten sleeps of 20 ms it uses a small part of
    // that time on a CPU (a fraction of a millisecond; about 5 ms under valgrind), where a
    // loop uses whatever share of a core it gets (all of one on an idle machine, a quarter
    // with the cores shared by four busy threads). Its state letter in /proc would not
    // tell: a thread woken on a busy machine stays runnable (R) until a core is free, for
    // tens of milliseconds at times.
    const SLEEPS: u32 = 10;
    const EACH: Duration = Duration::from_millis(20);
    let (used, wall) = run(|| {
        // The first sleep is left out: it pays start-up costs (first allocations and,
        // under valgrind, the translation of this path's code), not idling.
        spawn(|| sleep(Duration::from_millis(1))).join().unwrap();
        let (before, start) = (thread_cpu_time(), Instant::now());
        for _ in 0..SLEEPS {
            spawn(|| sleep(EACH)).join().unwrap();
        }
        (thread_cpu_time() - before, start.elapsed())
    });
    assert!(used < wall / 10, "the idle scheduler used {used:?} of CPU time in {wall:?} of sleeps");
}

#[test]
fn channel_is_fifo_per_sender() {
    run(|| {
        let (tx, rx) = channel();
        let senders: Vec<_> = (0..4u32)
            .map(|s| {
                let tx = tx.clone();
                spawn(move || {
                    for i in 0..1000u32 {
                        tx.send((s, i)).unwrap();
                        if i % 7 == 0 {
                            yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u32; 4];
        for (s, i) in rx.iter() {
            assert_eq!(i, next[s as usize], "sender {s} out of order");
            next[s as usize] += 1;
        }
        assert_eq!(next, [1000; 4]);
        senders.into_iter().for_each(|h| h.join().unwrap());
    });
}

#[test]
fn bounded_channel_applies_backpressure() {
    run(|| {
        let (tx, rx) = bounded(3);
        let sent = Rc::new(RefCell::new(0));
        let s = Rc::clone(&sent);
        let producer = spawn(move || {
            for i in 0..10 {
                tx.send(i).unwrap();
                *s.borrow_mut() += 1;
            }
        });
        yield_now();
        // The producer filled the channel and parked.
        assert_eq!(*sent.borrow(), 3);
        assert_eq!(rx.recv(), Ok(0));
        yield_now();
        assert_eq!(*sent.borrow(), 4);
        let rest: Vec<i32> = rx.iter().collect();
        assert_eq!(rest, (1..10).collect::<Vec<_>>());
        producer.join().unwrap();
    });
    let (tx, _rx) = bounded(1);
    tx.try_send(1).unwrap();
    assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
}

#[test]
fn close_semantics_from_both_ends() {
    let (tx, rx) = channel::<u8>();
    tx.send(1).unwrap();
    drop(tx);
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

    let (tx, rx) = channel::<String>();
    drop(rx);
    let err = tx.send("kept".to_string()).unwrap_err();
    assert_eq!(err.0, "kept");

    // A parked receiver learns of the disconnection; a parked sender too.
    run(|| {
        let (tx, rx) = channel::<u8>();
        let r = spawn(move || rx.recv());
        yield_now();
        drop(tx);
        assert_eq!(r.join().unwrap(), Err(RecvError));

        let (tx, rx) = bounded::<u8>(1);
        tx.send(0).unwrap();
        let s = spawn(move || tx.send(1).map_err(|e| e.0));
        yield_now();
        drop(rx);
        assert_eq!(s.join().unwrap(), Err(1));
    });
}

#[test]
fn recv_timeout_times_out_and_delivers() {
    run(|| {
        let (tx, rx) = channel::<u8>();
        assert_eq!(rx.recv_timeout(Duration::from_millis(20)), Err(RecvTimeoutError::Timeout));
        let h = spawn(move || {
            sleep(Duration::from_millis(10));
            tx.send(5).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(5));
        h.join().unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Disconnected));
    });
    // Outside a scheduler too.
    let (tx, rx) = channel::<u8>();
    assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
    std::thread::spawn(move || tx.send(3).unwrap());
    // A minute: long enough for a new thread to start on any machine (under valgrind, with
    // the cores busy), so only a lost message ends it.
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(3));
}

#[test]
fn many_producers_many_consumers_exactly_once() {
    const PRODUCERS: u64 = 10;
    const CONSUMERS: u64 = 10;
    const PER_PRODUCER: u64 = 100_000;
    let (count, sum) = run(|| {
        let (tx, rx) = bounded::<u64>(64);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let tx = tx.clone();
                spawn(move || {
                    for i in 0..PER_PRODUCER {
                        tx.send(p * PER_PRODUCER + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let rx = rx.clone();
                spawn(move || rx.iter().fold((0u64, 0u64), |(c, s), v| (c + 1, s + v)))
            })
            .collect();
        drop(rx);
        producers.into_iter().for_each(|h| h.join().unwrap());
        consumers.into_iter().map(|h| h.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    let n = PRODUCERS * PER_PRODUCER;
    assert_eq!(count, n);
    assert_eq!(sum, n * (n - 1) / 2);
}

#[test]
fn channels_between_plain_threads_and_green_threads() {
    let (to_green, from_plain) = channel::<u64>();
    let (to_plain, from_green) = channel::<u64>();
    let plain = std::thread::spawn(move || {
        for i in 0..10_000 {
            to_green.send(i).unwrap();
            assert_eq!(from_green.recv().unwrap(), i * 2);
        }
    });
    run(move || {
        for v in from_plain.iter() {
            to_plain.send(v * 2).unwrap();
        }
    });
    plain.join().unwrap();
}

#[test]
fn two_hundred_thousand_parked_green_threads() {
    if common::emulated() {
        common::note_emulated(
            "two_hundred_thousand_parked_green_threads",
            "20,000: stacks use the mprotect fallback (two mappings each), and 200,000 would pass vm.max_map_count",
        );
    }
    common::in_child_ok("two_hundred_thousand_parked_green_threads", || {
        // Under AddressSanitizer each parked green thread also holds a fake stack (some
        // 30 KB resident): a tenth of them makes the same point. So does emulation, where
        // MADV_GUARD_INSTALL does not pass through.
        let n: usize = if cfg!(bobbin_asan) || common::emulated() { 20_000 } else { 200_000 };
        let woken = run(move || {
            let (go_tx, go_rx) = channel::<()>();
            let parked = Arc::new(AtomicUsize::new(0));
            let woken = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..n)
                .map(|_| {
                    let rx = go_rx.clone();
                    let (p, w) = (Arc::clone(&parked), Arc::clone(&woken));
                    spawn(move || {
                        p.fetch_add(1, Ordering::Relaxed);
                        rx.recv().unwrap();
                        w.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            // Let every green thread run and park on the empty channel.
            yield_now();
            assert_eq!(parked.load(Ordering::Relaxed), n);
            assert_eq!(woken.load(Ordering::Relaxed), 0);
            for _ in 0..n {
                go_tx.send(()).unwrap();
            }
            hs.into_iter().for_each(|h| h.join().unwrap());
            woken.load(Ordering::Relaxed)
        });
        assert_eq!(woken, n);
    });
}

#[test]
fn a_wake_up_skips_a_receiver_that_timed_out() {
    // The receive that timed out leaves its stale waiter at the head of the wait list; the
    // send must pass over it to the green thread parked behind it. A wake-up spent on the
    // stale waiter would leave that green thread parked for good (the main one polls, a
    // bounded number of times, instead of joining, so that this fails instead of hanging).
    run(|| {
        let (tx, rx) = channel::<u8>();
        let rx2 = rx.clone();
        assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
        let h = spawn(move || rx2.recv().unwrap());
        yield_now(); // h starts and parks in recv
        assert!(!h.is_finished());
        tx.send(9).unwrap();
        for _ in 0..1_000 {
            if h.is_finished() {
                break;
            }
            yield_now();
        }
        assert!(h.is_finished(), "the wake-up went to the receiver that had timed out");
        assert_eq!(h.join().unwrap(), 9);
    });
}

#[test]
fn a_send_wakes_a_receiver_on_its_own_scheduler_before_a_remote_one() {
    // A green thread of another scheduler (on another OS thread) parks in recv first (it
    // has waited longer); a green thread parks behind it. A send from the second green
    // thread's scheduler wakes that one: any receiver may take the message, and the local
    // one takes it without a wake-up crossing threads. The remote one stays parked until
    // the second send. (The remote receiver is a green thread, not a plain thread, so that
    // its scheduler can tell when it has parked: a plain thread that had not reached its
    // recv yet could take the first message, as it may.)
    let (tx, rx) = channel::<u32>();
    let (parked_tx, parked_rx) = std::sync::mpsc::channel::<()>();
    let remote = {
        let rx = rx.clone();
        std::thread::spawn(move || {
            run(move || {
                let h = spawn(move || rx.recv().unwrap());
                yield_now(); // h starts and parks in recv: the channel is still empty
                assert!(!h.is_finished());
                parked_tx.send(()).unwrap();
                h.join().unwrap()
            })
        })
    };
    parked_rx.recv().unwrap();
    run(move || {
        let h = spawn(move || rx.recv().unwrap());
        yield_now(); // h starts and parks in recv
        tx.send(1).unwrap();
        for _ in 0..1_000 {
            if h.is_finished() {
                break;
            }
            yield_now();
        }
        let local_first = h.is_finished();
        tx.send(2).unwrap();
        assert!(local_first, "the wake-up went to the plain thread, not the local green thread");
        assert_eq!(h.join().unwrap(), 1);
    });
    assert_eq!(remote.join().unwrap(), 2);
}

#[test]
fn a_green_thread_that_overflows_its_stack_fails_its_join_and_the_rest_go_on() {
    common::in_child_ok("a_green_thread_that_overflows_its_stack_fails_its_join_and_the_rest_go_on", || {
        let (err, after) = run(|| {
            let steady = spawn(|| {
                let mut n = 0u32;
                for _ in 0..10 {
                    n += 1;
                    yield_now();
                }
                n
            });
            let err = spawn(|| common::recurse_forever(0)).join().unwrap_err();
            (err, steady.join().unwrap())
        });
        let msg = err.message().unwrap_or_default().to_owned();
        assert!(msg.contains("overflowed its stack") && msg.contains("stack_size"), "{msg}");
        assert!(err.is_stack_overflow() && !err.is_panic());
        assert_eq!(after, 10);
    });
}

#[test]
fn join_errors_say_what_happened() {
    let (panicked, ok) = run(|| {
        let p = spawn(|| -> u32 { panic!("own panic") });
        let ok = spawn(|| 3u32);
        (p.join().unwrap_err(), ok.join().unwrap())
    });
    assert_eq!(ok, 3);
    assert!(panicked.is_panic() && !panicked.is_stack_overflow());
    let id = panicked.thread().expect("a panic names its green thread").id();
    assert_eq!(panicked.to_string(), format!("green thread (id {id}) panicked: own panic"));
    // A green thread left parked when `run`'s main green thread fails is unwound; its
    // joiner (here a plain thread) is told that, not that it panicked.
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let r = std::panic::catch_unwind(|| {
        run(move || {
            let (_keep, rx) = channel::<()>();
            handle_tx
                .send(spawn(move || {
                    let _ = rx.recv();
                }))
                .unwrap();
            yield_now();
            panic!("main fails");
        })
    });
    assert!(r.is_err());
    let err = handle_rx.recv().unwrap().join().unwrap_err();
    assert!(!err.is_panic());
    assert!(err.to_string().contains("main green thread of bobbin::run failed"), "{err}");
}

#[test]
fn an_overflow_of_runs_main_green_thread_is_printed_like_a_panic() {
    let out = common::in_child("an_overflow_of_runs_main_green_thread_is_printed_like_a_panic", || {
        run(|| common::recurse_forever(0));
    });
    if let Some(out) = out {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("overflowed its stack of 131072 bytes") && stderr.contains("panicked"), "{stderr}");
    }
}

/// A 32 KiB message: large enough that each copy of it on the stack shows.
type Big = [u8; 32 * 1024];

/// Sends one [`Big`] message through an unbounded channel and drains it with `try_iter`.
fn pass_a_big_message_unbounded() {
    let (tx, rx) = channel::<Big>();
    tx.send([7; 32 * 1024]).unwrap();
    for m in rx.try_iter() {
        assert_eq!(std::hint::black_box(&m)[100], 7);
    }
}

/// Sends one [`Big`] message through a bounded channel and receives it.
fn pass_a_big_message_bounded() {
    let (tx, rx) = bounded::<Big>(1);
    tx.send([9; 32 * 1024]).unwrap();
    let m = rx.recv().unwrap();
    assert_eq!(std::hint::black_box(&m)[100], 9);
}

fn pass_a_big_message_unbounded_std() {
    let (tx, rx) = std::sync::mpsc::channel::<Big>();
    tx.send([7; 32 * 1024]).unwrap();
    for m in rx.try_iter() {
        assert_eq!(std::hint::black_box(&m)[100], 7);
    }
}

fn pass_a_big_message_bounded_std() {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Big>(1);
    tx.send([9; 32 * 1024]).unwrap();
    let m = rx.recv().unwrap();
    assert_eq!(std::hint::black_box(&m)[100], 9);
}

/// The smallest coroutine stack, in 8 KiB steps, on which `f` runs without overflowing.
fn stack_needed(f: fn()) -> usize {
    (1..64)
        .map(|k| k * 8 * 1024)
        .find(|&size| {
            let mut co: bobbin::Coroutine<(), (), ()> =
                bobbin::coroutine::Builder::new().stack_size(size).spawn(move |_, ()| f()).unwrap();
            !matches!(co.try_resume(()), Err(bobbin::Error::StackOverflow { .. }))
        })
        .expect("fits in 512 KiB")
}

#[test]
#[cfg_attr(
    any(debug_assertions, bobbin_asan),
    ignore = "measures stack use, which needs an optimised build without AddressSanitizer (an \
              unoptimised one keeps more copies of a large value; ASan's instrumentation changes \
              frame sizes, and an overflow inside ASan's own code is not a recoverable guard hit)"
)]
fn a_large_message_needs_less_stack_than_std_and_fits_a_default_green_thread() {
    // In a child process: under valgrind, what the overflows abandon would count as leaks.
    common::in_child_ok("a_large_message_needs_less_stack_than_std_and_fits_a_default_green_thread", || {
        for (ours, std) in [
            (pass_a_big_message_unbounded as fn(), pass_a_big_message_unbounded_std as fn()),
            (pass_a_big_message_bounded, pass_a_big_message_bounded_std),
        ] {
            let (ours, std) = (stack_needed(ours), stack_needed(std));
            assert!(ours < std, "bobbin's channel needs {ours} bytes of stack for a 32 KiB message, std's {std}");
        }
        run(|| {
            spawn(pass_a_big_message_unbounded).join().expect("no overflow on the default stack");
            spawn(pass_a_big_message_bounded).join().expect("no overflow on the default stack");
        });
    });
}

/// Waits for a reply by polling with `try_recv` and sending requests that never park: the
/// green thread that answers runs only if those operations yield now and then.
fn spin_on_channel_operations_until_answered() -> u32 {
    let (req_tx, req_rx) = channel::<()>();
    let (reply_tx, reply_rx) = channel::<u32>();
    let responder = spawn(move || {
        req_rx.recv().unwrap();
        reply_tx.send(42).unwrap();
    });
    let answer = loop {
        if let Some(v) = reply_rx.try_iter().next() {
            break v;
        }
        req_tx.send(()).unwrap();
    };
    responder.join().unwrap();
    answer
}

#[test]
fn spinning_on_channel_operations_cannot_starve_the_scheduler() {
    let name = "spinning_on_channel_operations_cannot_starve_the_scheduler";
    let out = common::in_child_within(name, Duration::from_secs(120), || {
        assert_eq!(run(spin_on_channel_operations_until_answered), 42);
        // Sending until the receiver hangs up, before it ever ran.
        let sent = run(|| {
            let (tx, rx) = channel::<u64>();
            spawn(move || {
                for _ in 0..10 {
                    rx.recv().unwrap();
                }
            });
            let mut sent = 0u64;
            while tx.send(sent).is_ok() {
                sent += 1;
            }
            sent
        });
        assert!(sent >= 10);
        // The same on one worker of a runtime, where the two share the worker.
        let rt = bobbin::Runtime::builder().workers(1).build().unwrap();
        let (req_tx, req_rx) = channel::<()>();
        let (reply_tx, reply_rx) = channel::<u32>();
        let answer = rt.block_on(move || {
            bobbin::runtime::spawn(move || {
                req_rx.recv().unwrap();
                reply_tx.send(7).unwrap();
            });
            loop {
                if let Ok(v) = reply_rx.try_recv() {
                    break v;
                }
                req_tx.send(()).unwrap();
            }
        });
        assert_eq!(answer, 7);
    });
    common::assert_child_passed(name, out);
}

/// A message whose destructor panics.
struct PanicsOnDrop(Rc<Cell<u32>>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
        panic!("message destructor");
    }
}

#[test]
#[cfg_attr(bobbin_asan, ignore = "leaks a message on purpose, which LeakSanitizer reports")]
fn a_panicking_message_destructor_reports_the_first_panic_and_leaks_the_rest() {
    // In a child process: the leak is deliberate, and valgrind would report it.
    common::in_child_ok("a_panicking_message_destructor_reports_the_first_panic_and_leaks_the_rest", || {
        // Dropping a channel that holds two such messages drops the first, whose panic comes
        // out of the drop; the second is leaked rather than dropped during that unwinding
        // (which would abort the process).
        let drops = Rc::new(Cell::new(0));
        let (tx, rx) = bounded::<PanicsOnDrop>(2);
        tx.try_send(PanicsOnDrop(drops.clone())).map_err(|_| ()).unwrap();
        tx.try_send(PanicsOnDrop(drops.clone())).map_err(|_| ()).unwrap();
        drop(tx);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(rx)));
        assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"message destructor"));
        assert_eq!(drops.get(), 1);
    });
}

#[test]
fn receivers_iterate_by_reference_and_cross_catch_unwind() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>(_: &T) {}
    let (tx, rx) = channel::<u32>();
    unwind_safe(&rx);
    unwind_safe(&tx);
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let mut got = Vec::new();
    for v in &rx {
        got.push(v);
    }
    assert_eq!(got, [0, 1, 2]);
}

#[test]
fn a_green_thread_that_does_not_yield_is_reported_as_a_stall() {
    let name = "a_green_thread_that_does_not_yield_is_reported_as_a_stall";
    let out = common::in_child_within(name, Duration::from_secs(120), || {
        let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        assert!(bobbin::watch_stalls(Duration::from_millis(20), move |s| sink.lock().unwrap().push(s.clone())));
        assert!(!bobbin::watch_stalls(Duration::from_millis(20), |_| ()), "one watchdog per process");
        let seen = Arc::clone(&reports);
        let ran_after = run(move || {
            let other = spawn(|| 5);
            // Computes without yielding until the watchdog has named it.
            while seen.lock().unwrap().is_empty() {
                std::hint::spin_loop();
            }
            other.join().unwrap()
        });
        assert_eq!(ran_after, 5);
        let reports = reports.lock().unwrap();
        assert!(!reports.is_empty());
        assert!(reports[0].running_for >= Duration::from_millis(20));
        assert!(reports[0].to_string().contains("without yielding"));
    });
    common::assert_child_passed(name, out);
}

#[test]
fn blocking_work_parks_only_its_green_thread() {
    let name = "blocking_work_parks_only_its_green_thread";
    let out = common::in_child_within(name, Duration::from_secs(120), || {
        // Eight blocking calls that each wait for a message only a green thread of the same
        // scheduler sends: if any of them held the scheduler's thread, nothing would send.
        let total = run(|| {
            let mut blocking = Vec::new();
            let mut senders = Vec::new();
            for i in 0..8u64 {
                let (tx, rx) = std::sync::mpsc::channel::<u64>();
                blocking.push(bobbin::spawn_blocking(move || rx.recv().unwrap() * 10));
                senders.push(spawn(move || {
                    yield_now();
                    tx.send(i).unwrap();
                }));
            }
            senders.into_iter().for_each(|s| s.join().unwrap());
            blocking.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(total, (0..8).sum::<u64>() * 10);
        // The same from a runtime's only worker.
        let rt = bobbin::Runtime::builder().workers(1).build().unwrap();
        let got = rt.block_on(|| {
            let (tx, rx) = std::sync::mpsc::channel::<u32>();
            let blocking = bobbin::spawn_blocking(move || rx.recv().unwrap() + 1);
            bobbin::runtime::spawn(move || tx.send(6).unwrap()).join().unwrap();
            blocking.join().unwrap()
        });
        assert_eq!(got, 7);
    });
    common::assert_child_passed(name, out);
}

#[test]
fn blocking_work_reports_panics_and_runs_outside_a_scheduler() {
    let err = bobbin::spawn_blocking(|| -> u32 { panic!("blocking failure") }).join().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.message(), Some("blocking failure"));
    // More work than the pool has threads: everything still runs, each exactly once.
    let hits = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..bobbin::sched::MAX_THREADS * 2)
        .map(|i| {
            let hits = Arc::clone(&hits);
            bobbin::spawn_blocking(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                i
            })
        })
        .collect();
    let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..bobbin::sched::MAX_THREADS * 2).sum::<usize>());
    assert_eq!(hits.load(Ordering::SeqCst), bobbin::sched::MAX_THREADS * 2);
}
