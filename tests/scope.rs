//! Scoped green threads: `bobbin::scope` on `run` and on runtime workers, `Runtime::scope`
//! from outside and inside, panics, leaked handles, and schedulers that stop while a scope
//! waits. Whether a scope waited is checked by what its green threads wrote, never by time.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bobbin::sync::{channel, Mutex};
use bobbin::{Generator, Runtime};
use common::{in_child, in_child_ok};

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn a_hundred_scoped_threads_push_to_a_borrowed_vec_through_a_mutex() {
    bobbin::run(|| {
        let mut pushed = Vec::new();
        {
            let shared = Mutex::new(&mut pushed);
            bobbin::scope(|s| {
                for i in 0..100u32 {
                    let shared = &shared;
                    s.spawn(move || {
                        bobbin::yield_now();
                        let mut v = shared.lock().unwrap();
                        bobbin::yield_now(); // hold the lock across a switch
                        v.push(i);
                    });
                }
            });
        }
        // The borrow ended with the scope: the vector is ours again.
        pushed.push(100);
        pushed.sort_unstable();
        assert_eq!(pushed, (0..=100).collect::<Vec<_>>());
    });
}

#[test]
fn scoped_threads_share_a_refcell_without_send() {
    bobbin::run(|| {
        let log = RefCell::new(Vec::new());
        let rc = std::rc::Rc::new(7); // not Send: scoped threads of `run` never move
        bobbin::scope(|s| {
            for i in 0..3 {
                let (log, rc) = (&log, &rc);
                s.spawn(move || {
                    for step in 0..2 {
                        log.borrow_mut().push((i, step, **rc));
                        bobbin::yield_now();
                    }
                });
            }
        });
        let log = log.into_inner();
        assert_eq!(log.len(), 6);
        // Round robin: every thread's first step comes before any thread's second.
        assert!(log[..3].iter().all(|&(_, step, _)| step == 0), "{log:?}");
        assert!(log.iter().all(|&(_, _, seven)| seven == 7));
    });
}

#[test]
fn nested_scopes_borrow_from_each_level() {
    let total = bobbin::run(|| {
        let outer = vec![1u64, 2, 3];
        let sum = Cell::new(0);
        bobbin::scope(|s| {
            for &x in &outer {
                let sum = &sum;
                let outer = &outer;
                s.spawn(move || {
                    let inner: Vec<u64> = (0..x).collect();
                    bobbin::scope(|s2| {
                        for y in &inner {
                            s2.spawn(move || {
                                bobbin::yield_now();
                                sum.set(sum.get() + y * 10 + outer.len() as u64);
                            });
                        }
                    });
                    // The inner scope waited: every one of its threads has added.
                    assert!(sum.get() >= inner.iter().map(|y| y * 10 + 3).sum::<u64>());
                });
            }
        });
        sum.get()
    });
    // x=1: y=0; x=2: y=0,1; x=3: y=0,1,2 -> y*10 sums to 0+10+30 = 40, plus 3 per thread (6).
    assert_eq!(total, 40 + 6 * 3);
}

#[test]
fn scope_returns_the_closure_value_and_handles_return_theirs() {
    bobbin::run(|| {
        let text = String::from("scoped");
        let (a, b) = bobbin::scope(|s| {
            let h = s.spawn(|| text.len());
            let g = s.spawn(|| text.to_uppercase());
            (h.join().unwrap(), g.join().unwrap())
        });
        assert_eq!((a, b.as_str()), (6, "SCOPED"));
    });
}

#[test]
fn a_panicking_scoped_thread_makes_the_scope_panic_after_the_others_finish() {
    bobbin::run(|| {
        let finished = Cell::new(0);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            bobbin::scope(|s| {
                for i in 0..10 {
                    let finished = &finished;
                    s.spawn(move || {
                        bobbin::yield_now();
                        if i == 3 {
                            panic!("scoped thread 3 fails");
                        }
                        // Still running well after thread 3 panicked.
                        for _ in 0..5 {
                            bobbin::yield_now();
                        }
                        finished.set(finished.get() + 1);
                    });
                }
            })
        }));
        let payload = outcome.expect_err("the scope panics");
        assert_eq!(panic_message(payload.as_ref()), "a scoped green thread panicked");
        assert_eq!(finished.get(), 9);
    });
}

#[test]
fn a_joined_panic_does_not_make_the_scope_panic() {
    bobbin::run(|| {
        let err = bobbin::scope(|s| s.spawn(|| -> u8 { panic!("taken by join") }).join().unwrap_err());
        assert!(err.is_panic());
        assert_eq!(err.message(), Some("taken by join"));
    });
}

#[test]
fn a_panic_of_the_scope_closure_is_resumed_after_its_threads_finish() {
    bobbin::run(|| {
        let finished = Cell::new(0);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            bobbin::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        for _ in 0..3 {
                            bobbin::yield_now();
                        }
                        finished.set(finished.get() + 1);
                    });
                }
                panic!("the scope closure fails");
            })
        }));
        assert_eq!(panic_message(outcome.unwrap_err().as_ref()), "the scope closure fails");
        assert_eq!(finished.get(), 4);
    });
}

/// Forgets `handle` as `mem::forget` does, in a box whose address a static keeps, so that
/// valgrind and LeakSanitizer see the deliberate leak as still reachable, not lost.
fn forget_reachably<H>(handle: H) {
    static KEPT: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
    let leaked = Box::into_raw(Box::new(handle));
    KEPT.lock().unwrap().push(leaked as usize);
}

#[test]
fn a_forgotten_handle_is_still_waited_for() {
    bobbin::run(|| {
        let mut written = 0;
        let (tx, rx) = channel();
        bobbin::scope(|s| {
            let h = s.spawn(|| written = rx.recv().unwrap());
            forget_reachably(h);
            // Sent only after the handle is gone: the thread is parked on the channel.
            bobbin::yield_now();
            tx.send(42).unwrap();
        });
        assert_eq!(written, 42);
    });
}

#[test]
fn a_dropped_handle_does_not_detach_and_its_value_is_dropped_in_the_scope() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let d = Arc::clone(&drops);
    bobbin::run(move || {
        let seen = Cell::new(false);
        bobbin::scope(|s| {
            drop(s.spawn(|| {
                bobbin::yield_now();
                seen.set(true);
                Counted(Arc::clone(&d))
            }));
        });
        assert!(seen.get(), "the scope waited for the thread whose handle was dropped");
        assert_eq!(d.load(Ordering::SeqCst), 1, "its value was dropped before the scope returned");
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn scope_on_a_runtime_worker_keeps_its_threads_on_that_worker() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (names, here) = rt.block_on(|| {
        let names = RefCell::new(Vec::new()); // not Sync: they stay on this worker
        bobbin::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    bobbin::yield_now();
                    names.borrow_mut().push(std::thread::current().name().unwrap().to_owned());
                });
            }
        });
        (names.into_inner(), std::thread::current().name().unwrap().to_owned())
    });
    assert_eq!(names.len(), 8);
    assert!(names.iter().all(|n| *n == here), "{names:?} vs {here}");
}

#[test]
fn runtime_scope_from_outside_borrows_the_callers_locals() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let mut results = vec![0u64; 64];
    let input: Vec<u64> = (0..64).collect();
    rt.scope(|s| {
        for (slot, x) in results.iter_mut().zip(&input) {
            s.spawn(move || {
                bobbin::yield_now();
                *slot = x * x;
            });
        }
    });
    results.push(0); // the borrow has ended
    assert_eq!(results[..64], input.iter().map(|x| x * x).collect::<Vec<_>>()[..]);
}

#[test]
fn runtime_scope_from_inside_the_runtime_parks() {
    let rt = Arc::new(Runtime::builder().workers(2).build().unwrap());
    let rt2 = Arc::clone(&rt);
    let sum = rt.block_on(move || {
        let counter = AtomicUsize::new(0);
        let data: Vec<usize> = (1..=10).collect();
        rt2.scope(|s| {
            for x in &data {
                let counter = &counter;
                s.spawn(move || {
                    bobbin::yield_now();
                    counter.fetch_add(*x, Ordering::SeqCst);
                });
            }
        });
        counter.into_inner()
    });
    assert_eq!(sum, 55);
}

#[test]
fn runtime_scope_from_a_green_thread_of_run() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let rt = Arc::new(rt);
    let rt2 = Arc::clone(&rt);
    let (value, other_ran) = bobbin::run(move || {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        // A green thread of `run` that must get to run while the scope waits.
        let other = bobbin::spawn(move || r.fetch_add(1, Ordering::SeqCst));
        let base = 40;
        let value = rt2.scope(|s| s.spawn(|| base + 2).join().unwrap());
        other.join().unwrap();
        (value, ran.load(Ordering::SeqCst))
    });
    assert_eq!((value, other_ran), (42, 1));
}

#[test]
fn runtime_scope_panics_after_its_threads_finish() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let finished = AtomicUsize::new(0);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        rt.scope(|s| {
            for i in 0..6 {
                let finished = &finished;
                s.spawn(move || {
                    if i == 0 {
                        panic!("runtime scoped thread fails");
                    }
                    for _ in 0..3 {
                        bobbin::yield_now();
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }));
    assert_eq!(panic_message(outcome.unwrap_err().as_ref()), "a scoped green thread panicked");
    assert_eq!(finished.load(Ordering::SeqCst), 5);
}

#[test]
fn runtime_scope_waits_for_a_forgotten_handle() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let mut written = 0;
    let (tx, rx) = channel();
    rt.scope(|s| {
        forget_reachably(s.spawn(|| written = rx.recv().unwrap()));
        tx.send(7).unwrap();
    });
    assert_eq!(written, 7);
}

#[test]
fn scope_outside_a_scheduler_runs_one_for_it() {
    let mut counts = vec![0u32; 8];
    let label = String::from("plain thread");
    let seen = RefCell::new(Vec::new());
    let returned = bobbin::scope(|s| {
        for (i, c) in counts.iter_mut().enumerate() {
            let (label, seen) = (&label, &seen);
            s.spawn(move || {
                bobbin::yield_now();
                *c = i as u32 + 1;
                seen.borrow_mut().push(label.len());
            });
        }
        "done"
    });
    assert_eq!(returned, "done");
    assert_eq!(counts, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(seen.into_inner(), [12; 8]);
    // The scheduler is gone again: a second scope starts another, and a failure comes out.
    let outcome = catch_unwind(|| bobbin::scope(|s| drop(s.spawn(|| panic!("scoped thread fails")))));
    assert_eq!(panic_message(outcome.unwrap_err().as_ref()), "a scoped green thread panicked");
}

#[test]
fn scope_in_a_coroutine_outside_a_scheduler_panics_before_running_the_closure() {
    let mut co = bobbin::Coroutine::new(|y: &bobbin::Yielder<(), bool>, ()| {
        let ran = Cell::new(false);
        // Were a scheduler started here, a scoped closure could capture `y` and suspend
        // this coroutine from another stack.
        let outcome = catch_unwind(AssertUnwindSafe(|| bobbin::scope(|_| ran.set(true))));
        y.suspend(outcome.is_err());
        ran.get()
    });
    assert_eq!(co.resume(()), bobbin::CoroutineResult::Yield(true));
    assert_eq!(co.resume(()), bobbin::CoroutineResult::Return(false));
}

#[test]
fn scope_in_a_generator_of_a_green_thread_panics_before_running_the_closure() {
    bobbin::run(|| {
        let mut g = Generator::new(|y| {
            let ran = Cell::new(false);
            let outcome = catch_unwind(AssertUnwindSafe(|| bobbin::scope(|_| ran.set(true))));
            y.suspend((outcome.is_err(), ran.get()));
        });
        assert_eq!(g.next(), Some((true, false)));
    });
}

/// Set by the canaries below when a scoped thread's destructor reads what it borrowed.
static CANARY_READ: AtomicUsize = AtomicUsize::new(0);

/// Reads the borrowed vector when dropped: by the unwinding of a green thread that a
/// stopping scheduler drops. If the scope's owner had been unwound first, this would read
/// freed memory (valgrind and ASan see it; the sum would be wrong, see `Zeroed`).
struct Canary<'a>(&'a Zeroed);

impl Drop for Canary<'_> {
    fn drop(&mut self) {
        CANARY_READ.store(self.0 .0.iter().sum(), Ordering::SeqCst);
    }
}

/// What a canary borrows: zeroed before it is freed, so a read that comes too late finds
/// no sum, even where the freed memory is not reused.
struct Zeroed(Vec<usize>);

impl Zeroed {
    fn up_to(n: usize) -> Zeroed {
        Zeroed((1..=n).collect())
    }
}

impl Drop for Zeroed {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|x| *x = 0);
    }
}

/// `run` ends, because its main green thread panics, while a green thread waits in a scope
/// whose scoped thread is blocked forever: `run` unwinds them, the scoped one first. (The
/// same through the deadlock report, which needs a process with one thread, is in
/// tests/deadlock.rs.)
#[test]
fn a_scoped_thread_blocked_forever_when_run_ends_is_unwound_before_its_scope() {
    in_child_ok("a_scoped_thread_blocked_forever_when_run_ends_is_unwound_before_its_scope", || {
        let outcome = catch_unwind(|| {
            bobbin::run(|| {
                let owner = bobbin::spawn(|| {
                    let data = Zeroed::up_to(100);
                    let (_tx, rx) = channel::<()>();
                    bobbin::scope(|s| {
                        s.spawn(|| {
                            let _canary = Canary(&data);
                            rx.recv().unwrap(); // never sent
                        });
                    });
                });
                // Let the owner and its scoped thread park, then fail.
                for _ in 0..3 {
                    bobbin::yield_now();
                }
                drop(owner);
                panic!("the main green thread fails");
            })
        });
        assert_eq!(panic_message(outcome.unwrap_err().as_ref()), "the main green thread fails");
        assert_eq!(CANARY_READ.load(Ordering::SeqCst), 5050);
    });
}

#[test]
fn a_runtime_dropped_while_a_scope_waits_on_a_worker_unwinds_the_scoped_threads_first() {
    in_child_ok("a_runtime_dropped_while_a_scope_waits_on_a_worker_unwinds_the_scoped_threads_first", || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let owner = rt.spawn(move || {
            let data = Zeroed::up_to(10);
            let (_tx, rx) = channel::<()>();
            bobbin::scope(|s| {
                s.spawn(|| {
                    let _canary = Canary(&data);
                    started_tx.send(()).unwrap();
                    rx.recv().unwrap(); // never sent
                });
            });
        });
        started_rx.recv().unwrap();
        drop(rt);
        let err = owner.join().unwrap_err();
        assert!(!err.is_panic(), "{err}");
        assert_eq!(CANARY_READ.load(Ordering::SeqCst), 55);
    });
}

#[test]
fn an_overflow_of_the_stack_a_scope_lends_aborts() {
    let out = in_child("an_overflow_of_the_stack_a_scope_lends_aborts", || {
        bobbin::run(|| {
            let data = [1u64; 16];
            let (tx, rx) = channel::<()>();
            let _ = catch_unwind(AssertUnwindSafe(|| {
                bobbin::scope(|s| {
                    s.spawn(|| {
                        rx.recv().unwrap();
                        std::hint::black_box(&data);
                    });
                    drop(tx);
                    common::recurse_forever(0);
                })
            }));
        });
    });
    if let Some(out) = out {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("a stack overflowed while scoped green threads borrowed from it"), "{stderr}");
    }
}

#[test]
fn a_scoped_thread_that_overflows_is_reported_and_the_scope_goes_on() {
    // In a child process: an overflow abandons the green thread, leaking what its stack
    // held (its boxed body), which the leak check of the valgrind run would count.
    in_child_ok("a_scoped_thread_that_overflows_is_reported_and_the_scope_goes_on", || {
        bobbin::run(|| {
            let depth = 1u64;
            let err = bobbin::scope(|s| s.spawn(|| common::recurse_forever(depth)).join().unwrap_err());
            assert!(err.is_stack_overflow());
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                bobbin::scope(|s| {
                    s.spawn(|| common::recurse_forever(depth));
                })
            }));
            assert_eq!(panic_message(outcome.unwrap_err().as_ref()), "a scoped green thread panicked");
        });
    });
}

/// `run` ends while one of its green threads waits in a `Runtime::scope` whose scoped thread,
/// on the runtime, is still running: the unwinding of that green thread blocks its OS thread
/// until the scoped thread has finished, which then still reads what it borrowed.
#[test]
fn run_ending_while_a_runtime_scope_waits_blocks_until_its_threads_finish() {
    in_child_ok("run_ending_while_a_runtime_scope_waits_blocks_until_its_threads_finish", || {
        static MAIN_PANICKED: AtomicUsize = AtomicUsize::new(0);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            MAIN_PANICKED.store(1, Ordering::SeqCst);
            previous(info);
        }));
        let rt = Arc::new(Runtime::builder().workers(1).build().unwrap());
        let (go_tx, go_rx) = channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let runner = std::thread::Builder::new().name("scope-runner".into());
        let runner = runner
            .spawn(move || {
                catch_unwind(AssertUnwindSafe(|| {
                    bobbin::run(move || {
                        let owner = bobbin::spawn(move || {
                            let data = Zeroed::up_to(100);
                            rt.scope(|s| {
                                s.spawn(|| {
                                    let canary = Canary(&data);
                                    started_tx.send(()).unwrap();
                                    go_rx.recv().unwrap();
                                    drop(canary);
                                });
                            });
                        });
                        drop(owner);
                        bobbin::yield_now(); // the owner parks in its scope
                        panic!("the main green thread fails");
                    })
                }))
                .map_err(|p| panic_message(p.as_ref()))
            })
            .unwrap();
        started_rx.recv().unwrap();
        // The main green thread has panicked and `run` is unwinding the owner: once the
        // runner's thread sleeps, it is blocked in that unwinding, waiting for the scoped
        // thread, which has not finished (it waits for `go`).
        let runner_task = loop {
            let found = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .find(|t| std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().trim() == "scope-runner");
            if let Some(task) = found {
                break task.path();
            }
        };
        while !runner.is_finished()
            && (MAIN_PANICKED.load(Ordering::SeqCst) == 0 || common::thread_state(&runner_task) != Some('S'))
        {
            std::thread::yield_now();
        }
        assert!(!runner.is_finished(), "run returned while its scoped thread still borrowed from it");
        assert_eq!(CANARY_READ.load(Ordering::SeqCst), 0, "the scoped thread is still running");
        go_tx.send(()).unwrap();
        let outcome = runner.join().unwrap();
        assert_eq!(outcome.unwrap_err(), "the main green thread fails");
        assert_eq!(CANARY_READ.load(Ordering::SeqCst), 5050);
    });
}
