//! Mutex and Condvar: exclusion and wake-ups between green threads of `run`, of a
//! runtime's workers and plain OS threads; poisoning as std; timeouts by ordering.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, TryLockError};
use std::time::Duration;

use bobbin::sync::{Condvar, Mutex};
use bobbin::Runtime;

mod common;
use common::Watchdog;

#[test]
fn a_mutex_excludes_across_green_threads_workers_and_os_threads() {
    let watchdog = Watchdog::start(120, "a_mutex_excludes_across_green_threads_workers_and_os_threads");
    let counter = Arc::new(Mutex::new(0u64));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let green: Vec<_> = (0..8)
        .map(|_| {
            let counter = Arc::clone(&counter);
            rt.spawn(move || {
                for _ in 0..500 {
                    let mut n = counter.lock().unwrap();
                    let seen = *n;
                    bobbin::yield_now(); // holds the lock across a switch
                    *n = seen + 1;
                }
            })
        })
        .collect();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || {
                for _ in 0..500 {
                    let mut n = counter.lock().unwrap();
                    let seen = *n;
                    std::thread::yield_now();
                    *n = seen + 1;
                }
            })
        })
        .collect();
    green.into_iter().for_each(|h| h.join().unwrap());
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(*counter.lock().unwrap(), 5_000);
    watchdog.stop();
}

#[test]
fn waiting_for_a_mutex_parks_only_the_green_thread() {
    bobbin::run(|| {
        let m = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut held = m.lock().unwrap();
        let waiter = {
            let (m, log) = (Arc::clone(&m), Arc::clone(&log));
            bobbin::spawn(move || {
                m.lock().unwrap().push("waiter");
                log.lock().unwrap().push("waiter got the lock");
            })
        };
        let other = {
            let log = Arc::clone(&log);
            bobbin::spawn(move || log.lock().unwrap().push("another green thread ran"))
        };
        other.join().unwrap(); // runs while the waiter is parked on the mutex
        held.push("holder");
        drop(held);
        waiter.join().unwrap();
        assert_eq!(*log.lock().unwrap(), ["another green thread ran", "waiter got the lock"]);
        assert_eq!(*m.lock().unwrap(), ["holder", "waiter"]);
    });
}

#[test]
fn a_panicking_holder_poisons_the_mutex_as_std() {
    bobbin::run(|| {
        let m = Arc::new(Mutex::new(1));
        let m2 = Arc::clone(&m);
        let h = bobbin::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poisoning on purpose");
        });
        assert!(h.join().is_err());
        assert!(m.is_poisoned());
        let e = m.lock().unwrap_err();
        assert_eq!(**e.get_ref(), 1);
        drop(e);
        assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
        m.clear_poison();
        assert_eq!(*m.lock().unwrap(), 1);
        let g = m.lock().unwrap();
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
        drop(g);
    });
}

/// A queue with the number of producers that have finished, and its condition variable.
type Shared = Arc<(Mutex<(VecDeque<usize>, usize)>, Condvar)>;

#[test]
fn a_condvar_queue_delivers_every_item_once_between_workers_and_threads() {
    let watchdog = Watchdog::start(120, "a_condvar_queue_delivers_every_item_once_between_workers_and_threads");
    const PER_PRODUCER: usize = 2_000;
    let state: Shared = Arc::new((Mutex::new((VecDeque::new(), 0usize)), Condvar::new()));
    let consumed = Arc::new(AtomicUsize::new(0));
    let sum = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (state, consumed, sum) = (Arc::clone(&state), Arc::clone(&consumed), Arc::clone(&sum));
            rt.spawn(move || loop {
                let (lock, cv) = &*state;
                let mut g = cv.wait_while(lock.lock().unwrap(), |(q, done)| q.is_empty() && *done < 3).unwrap();
                match g.0.pop_front() {
                    Some(v) => {
                        consumed.fetch_add(1, Ordering::SeqCst);
                        sum.fetch_add(v, Ordering::SeqCst);
                    }
                    None => return, // every producer is done and the queue is empty
                }
            })
        })
        .collect();
    let producer = |state: Shared| {
        move || {
            let (lock, cv) = &*state;
            for i in 0..PER_PRODUCER {
                lock.lock().unwrap().0.push_back(i);
                cv.notify_one();
            }
            lock.lock().unwrap().1 += 1;
            cv.notify_all();
        }
    };
    let green = [rt.spawn(producer(Arc::clone(&state))), rt.spawn(producer(Arc::clone(&state)))];
    let thread = std::thread::spawn(producer(Arc::clone(&state)));
    green.into_iter().for_each(|h| h.join().unwrap());
    thread.join().unwrap();
    consumers.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(consumed.load(Ordering::SeqCst), 3 * PER_PRODUCER);
    assert_eq!(sum.load(Ordering::SeqCst), 3 * (0..PER_PRODUCER).sum::<usize>());
    watchdog.stop();
}

#[test]
fn a_timed_wait_times_out_before_a_longer_one_and_a_notified_one_does_not() {
    bobbin::run(|| {
        let state = Arc::new((Mutex::new(0), Condvar::new()));
        // A wait of 10 s that the test ends with a notification...
        let long = {
            let state = Arc::clone(&state);
            bobbin::spawn(move || {
                let (m, cv) = &*state;
                let (g, r) = cv.wait_timeout_while(m.lock().unwrap(), Duration::from_secs(10), |n| *n == 0).unwrap();
                (*g, r.timed_out())
            })
        };
        // ...and one of 20 ms nobody notifies, which must end first.
        let (m, cv) = &*state;
        let (g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(20)).unwrap();
        assert!(r.timed_out());
        assert!(!long.is_finished(), "the 10 s wait ended before the 20 ms one");
        drop(g);
        *m.lock().unwrap() = 5;
        cv.notify_all();
        assert_eq!(long.join().unwrap(), (5, false));
    });
}

#[test]
fn notify_all_wakes_every_waiter() {
    bobbin::run(|| {
        let state = Arc::new((Mutex::new(false), Condvar::new()));
        let waiting = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..50)
            .map(|_| {
                let (state, waiting) = (Arc::clone(&state), Arc::clone(&waiting));
                bobbin::spawn(move || {
                    let (m, cv) = &*state;
                    let mut g = m.lock().unwrap();
                    waiting.fetch_add(1, Ordering::SeqCst);
                    while !*g {
                        g = cv.wait(g).unwrap();
                    }
                })
            })
            .collect();
        while waiting.load(Ordering::SeqCst) < 50 {
            bobbin::yield_now();
        }
        *state.0.lock().unwrap() = true;
        state.1.notify_all();
        waiters.into_iter().for_each(|h| h.join().unwrap());
    });
}

#[test]
fn a_barrier_lets_no_one_through_before_all_arrive_round_after_round() {
    let watchdog = Watchdog::start(120, "a_barrier_lets_no_one_through_before_all_arrive_round_after_round");
    use bobbin::sync::Barrier;
    const N: usize = 8;
    const ROUNDS: usize = 20;
    let barrier = Arc::new(Barrier::new(N));
    let arrived = Arc::new(AtomicUsize::new(0));
    let leaders = Arc::new(AtomicUsize::new(0));
    let body = |barrier: Arc<Barrier>, arrived: Arc<AtomicUsize>, leaders: Arc<AtomicUsize>| {
        move || {
            for round in 0..ROUNDS {
                arrived.fetch_add(1, Ordering::SeqCst);
                if barrier.wait().is_leader() {
                    leaders.fetch_add(1, Ordering::SeqCst);
                }
                // Everyone of this round has arrived before anyone leaves it.
                assert!(arrived.load(Ordering::SeqCst) >= N * (round + 1));
            }
        }
    };
    let rt = Runtime::builder().workers(2).build().unwrap();
    let green: Vec<_> =
        (0..N - 2).map(|_| rt.spawn(body(Arc::clone(&barrier), Arc::clone(&arrived), Arc::clone(&leaders)))).collect();
    let threads: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(body(Arc::clone(&barrier), Arc::clone(&arrived), Arc::clone(&leaders))))
        .collect();
    green.into_iter().for_each(|h| h.join().unwrap());
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(leaders.load(Ordering::SeqCst), ROUNDS, "one leader per round");
    watchdog.stop();
}

#[test]
fn a_semaphore_bounds_how_many_hold_a_permit_at_once() {
    let watchdog = Watchdog::start(120, "a_semaphore_bounds_how_many_hold_a_permit_at_once");
    use bobbin::sync::Semaphore;
    let sem = Arc::new(Semaphore::new(3));
    let (now, most, done) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..40)
        .map(|_| {
            let (sem, now, most, done) = (Arc::clone(&sem), Arc::clone(&now), Arc::clone(&most), Arc::clone(&done));
            rt.spawn(move || {
                for _ in 0..20 {
                    let _permit = sem.acquire();
                    most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    bobbin::yield_now();
                    now.fetch_sub(1, Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(done.load(Ordering::SeqCst), 40);
    assert!(most.load(Ordering::SeqCst) <= 3, "at most 3 at once, saw {}", most.load(Ordering::SeqCst));
    assert_eq!(sem.available_permits(), 3);
    watchdog.stop();
}

#[test]
fn a_condvar_used_with_two_mutexes_panics_as_std() {
    let (a, b, cv) = (Mutex::new(()), Mutex::new(()), Condvar::new());
    let (_g, r) = cv.wait_timeout(a.lock().unwrap(), Duration::from_millis(1)).unwrap();
    assert!(r.timed_out());
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = cv.wait_timeout(b.lock().unwrap(), Duration::from_millis(1));
    }))
    .unwrap_err();
    let msg = e.downcast_ref::<&str>().copied().map(str::to_owned).or_else(|| e.downcast_ref::<String>().cloned());
    assert!(msg.unwrap_or_default().contains("two different mutexes"));
    // The mutex it was given is not left locked (poisoned, as the panic dropped its guard).
    assert!(!matches!(b.try_lock(), Err(TryLockError::WouldBlock)));
}

#[test]
fn readers_share_a_rwlock_and_a_writer_excludes_them_across_workers_and_threads() {
    let watchdog = Watchdog::start(120, "readers_share_a_rwlock_and_a_writer_excludes_them_across_workers_and_threads");
    use bobbin::sync::RwLock;
    let lock = Arc::new(RwLock::new((0u64, 0u64)));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let lock = Arc::clone(&lock);
            rt.spawn(move || {
                for _ in 0..300 {
                    let mut g = lock.write().unwrap();
                    g.0 += 1;
                    bobbin::yield_now(); // a reader would see the two halves differ
                    g.1 += 1;
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let lock = Arc::clone(&lock);
            rt.spawn(move || {
                for _ in 0..300 {
                    let g = lock.read().unwrap();
                    assert_eq!(g.0, g.1, "a reader saw a write half done");
                    bobbin::yield_now();
                }
            })
        })
        .collect();
    let thread = {
        let lock = Arc::clone(&lock);
        std::thread::spawn(move || {
            for _ in 0..300 {
                let mut g = lock.write().unwrap();
                g.0 += 1;
                std::thread::yield_now();
                g.1 += 1;
            }
        })
    };
    writers.into_iter().chain(readers).for_each(|h| h.join().unwrap());
    thread.join().unwrap();
    assert_eq!(*lock.read().unwrap(), (1_500, 1_500));
    watchdog.stop();
}

#[test]
fn two_readers_hold_a_rwlock_at_once_and_a_stream_of_readers_cannot_starve_a_writer() {
    let watchdog =
        Watchdog::start(120, "two_readers_hold_a_rwlock_at_once_and_a_stream_of_readers_cannot_starve_a_writer");
    use bobbin::sync::RwLock;
    bobbin::run(|| {
        let lock = Arc::new(RwLock::new(false));
        let first = lock.read().unwrap();
        // A second reader gets in while the first holds the lock.
        let second = {
            let lock = Arc::clone(&lock);
            bobbin::spawn(move || *lock.read().unwrap())
        };
        assert!(!second.join().unwrap());
        drop(first);
        // Readers that keep taking the lock until a writer has set the flag: with readers
        // first, the writer would wait for ever.
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let lock = Arc::clone(&lock);
                bobbin::spawn(move || {
                    let mut turns = 0u64;
                    loop {
                        // Held across the yield: some reader always holds the lock.
                        let g = lock.read().unwrap();
                        bobbin::yield_now();
                        turns += 1;
                        if *g {
                            return turns;
                        }
                    }
                })
            })
            .collect();
        bobbin::yield_now();
        *lock.write().unwrap() = true;
        assert!(readers.into_iter().all(|r| r.join().unwrap() > 0));
    });
    watchdog.stop();
}

#[test]
fn a_panicking_writer_poisons_the_rwlock_as_std() {
    use bobbin::sync::RwLock;
    bobbin::run(|| {
        let lock = Arc::new(RwLock::new(7));
        let l2 = Arc::clone(&lock);
        assert!(bobbin::spawn(move || {
            let _g = l2.write().unwrap();
            panic!("poisoning on purpose");
        })
        .join()
        .is_err());
        assert!(lock.is_poisoned());
        assert_eq!(*lock.read().unwrap_err().into_inner(), 7);
        assert!(lock.write().is_err());
    });
}

#[test]
fn a_once_lock_runs_one_initialiser_while_green_threads_and_threads_park() {
    let watchdog = Watchdog::start(120, "a_once_lock_runs_one_initialiser_while_green_threads_and_threads_park");
    use bobbin::sync::OnceLock;
    let cell = Arc::new(OnceLock::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (go_tx, go_rx) = bobbin::sync::channel::<()>();
    let (arrived_tx, arrived_rx) = bobbin::sync::channel::<()>();
    // The initialiser parks until told to go, so every other caller arrives while it runs.
    let first = {
        let (cell, runs) = (Arc::clone(&cell), Arc::clone(&runs));
        rt.spawn(move || {
            *cell.get_or_init(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                go_rx.recv().unwrap();
                7u64
            })
        })
    };
    while runs.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let mut green = Vec::new();
    for _ in 0..6 {
        let (cell, runs, arrived) = (Arc::clone(&cell), Arc::clone(&runs), arrived_tx.clone());
        green.push(rt.spawn(move || {
            arrived.send(()).unwrap();
            *cell.get_or_init(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                0
            })
        }));
    }
    let thread = {
        let (cell, runs, arrived) = (Arc::clone(&cell), Arc::clone(&runs), arrived_tx.clone());
        std::thread::spawn(move || {
            arrived.send(()).unwrap();
            *cell.get_or_init(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                0
            })
        })
    };
    for _ in 0..7 {
        arrived_rx.recv().unwrap();
    }
    assert_eq!(cell.get(), None);
    go_tx.send(()).unwrap();
    assert_eq!(first.join().unwrap(), 7);
    for g in green {
        assert_eq!(g.join().unwrap(), 7);
    }
    assert_eq!(thread.join().unwrap(), 7);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cell.set(8), Err(8));
    watchdog.stop();
}

#[test]
fn a_once_lock_whose_initialiser_parks_does_not_stop_its_scheduler() {
    use bobbin::sync::OnceLock;
    // One scheduler: the initialiser parks on a channel that only another green thread of
    // the same scheduler sends to, after a second caller is waiting. Blocking the OS
    // thread in either wait would deadlock.
    let got = bobbin::run(|| {
        let cell = Arc::new(OnceLock::new());
        let (tx, rx) = bobbin::sync::channel::<&'static str>();
        let init = {
            let cell = Arc::clone(&cell);
            bobbin::spawn(move || *cell.get_or_init(|| rx.recv().unwrap()))
        };
        let waiter = {
            let cell = Arc::clone(&cell);
            bobbin::spawn(move || *cell.get_or_init(|| "the waiter's"))
        };
        bobbin::yield_now(); // both are parked now
        tx.send("the initialiser's").unwrap();
        (init.join().unwrap(), waiter.join().unwrap())
    });
    assert_eq!(got, ("the initialiser's", "the initialiser's"));
}

#[test]
fn a_panicking_initialiser_leaves_the_once_lock_empty_for_a_waiter() {
    use bobbin::sync::OnceLock;
    let got = bobbin::run(|| {
        let cell = Arc::new(OnceLock::new());
        let (tx, rx) = bobbin::sync::channel::<()>();
        let failing = {
            let cell = Arc::clone(&cell);
            bobbin::spawn(move || {
                cell.get_or_init(|| {
                    rx.recv().unwrap();
                    panic!("initialiser fails")
                });
            })
        };
        let waiter = {
            let cell = Arc::clone(&cell);
            bobbin::spawn(move || *cell.get_or_init(|| 2))
        };
        bobbin::yield_now(); // the waiter is parked behind the failing initialiser
        tx.send(()).unwrap();
        let failed = failing.join().unwrap_err();
        (failed.message().map(str::to_owned), waiter.join().unwrap(), *cell.get().unwrap())
    });
    assert_eq!(got, (Some("initialiser fails".to_owned()), 2, 2));
}

#[test]
fn a_once_lock_initialising_itself_on_an_os_thread_panics_instead_of_hanging() {
    use bobbin::sync::OnceLock;
    let cell: OnceLock<u32> = OnceLock::new();
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cell.get_or_init(|| *cell.get_or_init(|| 1));
    }))
    .unwrap_err();
    let msg = e.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("initialises its own cell"), "{msg}");
    assert_eq!(cell.get(), None);
    assert_eq!(*cell.get_or_init(|| 3), 3); // the cell still works
}

#[test]
fn a_lazy_lock_is_computed_once_for_green_threads_and_threads() {
    let watchdog = Watchdog::start(120, "a_lazy_lock_is_computed_once_for_green_threads_and_threads");
    use bobbin::sync::LazyLock;
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static TABLE: LazyLock<Vec<u64>> = LazyLock::new(|| {
        RUNS.fetch_add(1, Ordering::SeqCst);
        bobbin::yield_now(); // others arrive meanwhile
        (0..100).map(|i| i * i).collect()
    });
    let rt = Runtime::builder().workers(2).build().unwrap();
    let green: Vec<_> = (0..8).map(|_| rt.spawn(|| TABLE.iter().sum::<u64>())).collect();
    let thread = std::thread::spawn(|| TABLE[99]);
    let sum: u64 = (0..100).map(|i| i * i).sum();
    for g in green {
        assert_eq!(g.join().unwrap(), sum);
    }
    assert_eq!(thread.join().unwrap(), 99 * 99);
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    watchdog.stop();
}

#[test]
fn a_oneshot_delivers_once_reports_a_dropped_end_and_times_out_by_ordering() {
    let watchdog = Watchdog::start(120, "a_oneshot_delivers_once_reports_a_dropped_end_and_times_out_by_ordering");
    use bobbin::sync::oneshot::{self, RecvTimeoutError};
    let rt = Runtime::builder().workers(2).build().unwrap();
    // Green thread to OS thread and back.
    let (tx, rx) = oneshot::channel::<String>();
    let (back_tx, back_rx) = oneshot::channel::<usize>();
    let green = rt.spawn(move || {
        let s = rx.recv().unwrap();
        back_tx.send(s.len()).unwrap();
    });
    tx.send("hello".into()).unwrap();
    assert_eq!(back_rx.recv(), Ok(5));
    green.join().unwrap();

    // A parked receiver is woken by the sender's drop.
    let (tx, rx) = oneshot::channel::<u8>();
    let (parked_tx, parked_rx) = bobbin::sync::channel::<()>();
    let receiver = rt.spawn(move || {
        parked_tx.send(()).unwrap();
        rx.recv()
    });
    parked_rx.recv().unwrap();
    drop(tx);
    assert_eq!(receiver.join().unwrap(), Err(bobbin::sync::RecvError));

    // A send to a dropped receiver gives the message back.
    let (tx, rx) = oneshot::channel::<u8>();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(9), Err(9));

    // Timeouts by ordering: the sender sends only after the short wait timed out.
    let got = bobbin::run(|| {
        let (tx, mut rx) = oneshot::channel::<u8>();
        let (timed_out_tx, timed_out_rx) = bobbin::sync::channel::<()>();
        let sender = bobbin::spawn(move || {
            timed_out_rx.recv().unwrap();
            tx.send(1).unwrap();
        });
        let first = rx.recv_timeout(Duration::from_millis(1));
        timed_out_tx.send(()).unwrap();
        let second = rx.recv_timeout(Duration::from_secs(3600));
        sender.join().unwrap();
        (first, second, rx.try_recv())
    });
    assert_eq!(got, (Err(RecvTimeoutError::Timeout), Ok(1), Err(bobbin::sync::TryRecvError::Disconnected)));

    // A message never received is dropped with the channel.
    let drops = Arc::new(AtomicUsize::new(0));
    #[derive(Debug)]
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (tx, rx) = oneshot::channel();
    tx.send(Counted(Arc::clone(&drops))).unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    watchdog.stop();
}

/// Parks its green thread when dropped, until its channel says go (or closes).
struct ParkWhileDropped(bobbin::sync::Receiver<()>);

impl Drop for ParkWhileDropped {
    fn drop(&mut self) {
        let _ = self.0.recv();
    }
}

/// std's `panicking()` counts the panics of the whole OS thread: a green thread parked in
/// the middle of its unwinding must not make another green thread's unlock look like a
/// panic.
#[test]
fn a_green_thread_parked_mid_unwind_does_not_poison_another_ones_mutex() {
    let poisoned = bobbin::run(|| {
        let m = Arc::new(Mutex::new(0));
        let (go, wait) = bobbin::sync::channel::<()>();
        let (locked, told) = bobbin::sync::channel::<()>();
        let unwinder = bobbin::spawn(move || {
            let _parks = ParkWhileDropped(wait);
            told.recv().unwrap();
            panic!("unwinds through a park");
        });
        let m2 = Arc::clone(&m);
        let holder = bobbin::spawn(move || {
            let mut guard = m2.lock().unwrap();
            locked.send(()).unwrap();
            // The unwinder runs: it panics and parks in its destructor.
            bobbin::yield_now();
            *guard += 1;
            drop(guard);
            go.send(()).unwrap();
        });
        holder.join().unwrap();
        assert!(unwinder.join().is_err());
        assert_eq!(*m.lock().unwrap_or_else(|e| e.into_inner()), 1);
        m.is_poisoned()
    });
    assert!(!poisoned, "a bystander's unlock poisoned the mutex");
}

/// The other side: a green thread resumed in the middle of its own unwinding poisons the
/// mutex it held, also while another green thread is parked mid-unwind.
#[test]
fn a_green_thread_resumed_mid_unwind_poisons_the_mutex_it_held() {
    let poisoned = bobbin::run(|| {
        let m = Arc::new(Mutex::new(0));
        let (go_holder, wait_holder) = bobbin::sync::channel::<()>();
        let (go_other, wait_other) = bobbin::sync::channel::<()>();
        let m2 = Arc::clone(&m);
        let holder = bobbin::spawn(move || {
            let _guard = m2.lock().unwrap();
            // Dropped first while unwinding: it parks, then the guard is dropped.
            let _parks = ParkWhileDropped(wait_holder);
            panic!("the holder panics");
        });
        let other = bobbin::spawn(move || {
            let _parks = ParkWhileDropped(wait_other);
            panic!("another green thread unwinds through a park");
        });
        // Both are parked mid-unwind now; the holder goes on first, then the other.
        bobbin::yield_now();
        go_holder.send(()).unwrap();
        assert!(holder.join().is_err());
        go_other.send(()).unwrap();
        assert!(other.join().is_err());
        m.is_poisoned()
    });
    assert!(poisoned, "the holder's own unwinding did not poison the mutex");
}
