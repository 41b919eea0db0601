//! The per-thread scheduler and channels.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    let order = run(|| {
        let order = Rc::new(RefCell::new(Vec::new()));
        let hs: Vec<_> = [50u64, 10, 40, 20, 30]
            .into_iter()
            .map(|ms| {
                let order = Rc::clone(&order);
                spawn(move || {
                    sleep(Duration::from_millis(ms));
                    order.borrow_mut().push(ms);
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, [10, 20, 30, 40, 50]);
}

#[test]
fn an_idle_scheduler_does_not_spin() {
    // While its only green thread sleeps, the scheduler's OS thread must be asleep in the
    // kernel, not running a polling loop: a watcher samples its state.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watcher = std::thread::spawn(move || {
        let tid: i32 = tid_rx.recv().unwrap();
        let mut states = Vec::new();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(5));
            states.push(common::thread_state(std::path::Path::new(&format!("/proc/self/task/{tid}"))));
        }
        done_tx.send(()).unwrap();
        states
    });
    run(move || {
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        // Sleep (as green threads) until the watcher is done sampling.
        while done_rx.try_recv().is_err() {
            spawn(|| sleep(Duration::from_millis(50))).join().unwrap();
        }
    });
    let states = watcher.join().unwrap();
    let asleep = states.iter().filter(|s| **s == Some('S')).count();
    // A busy loop would be running (R) in nearly every sample.
    assert!(asleep >= 15, "the idle scheduler was not asleep: {states:?}");
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
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(3));
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
    common::in_child_ok("two_hundred_thousand_parked_green_threads", || {
        // Under AddressSanitizer each parked green thread also holds a fake stack (some
        // 30 KB resident): a tenth of them makes the same point.
        const N: usize = if cfg!(bobbin_asan) { 20_000 } else { 200_000 };
        let woken = run(|| {
            let (go_tx, go_rx) = channel::<()>();
            let parked = Arc::new(AtomicUsize::new(0));
            let woken = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..N)
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
            assert_eq!(parked.load(Ordering::Relaxed), N);
            assert_eq!(woken.load(Ordering::Relaxed), 0);
            for _ in 0..N {
                go_tx.send(()).unwrap();
            }
            hs.into_iter().for_each(|h| h.join().unwrap());
            woken.load(Ordering::Relaxed)
        });
        assert_eq!(woken, N);
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
    // A plain thread parks in recv first (it has waited longer); a green thread parks
    // behind it. A send from the green thread's scheduler wakes the green thread: any
    // receiver may take the message, and the local one takes it without a wake-up crossing
    // threads. The plain thread stays parked until the second send.
    let (tx, rx) = channel::<u32>();
    let remote = {
        let rx = rx.clone();
        std::thread::spawn(move || rx.recv().unwrap())
    };
    std::thread::sleep(Duration::from_millis(100)); // let it park first
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
        assert!(msg.contains("overflowed its stack"), "{msg}");
        assert_eq!(after, 10);
    });
}
