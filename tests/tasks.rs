//! A green thread's record and handle: cancellation, joining with a timeout, names and
//! stack sizes through `Builder`, `current()`, the panic hook that names green threads, and
//! green-thread locals. Timeouts are tested by ordering, never by the clock.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bobbin::sync::{channel, Mutex};
use bobbin::{run, spawn, yield_now, Builder, Runtime};
use common::{in_child, in_child_ok};

/// Counts its drops, so a test can tell that an unwinding ran destructors.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Arc<AtomicUsize>, impl Fn() -> DropCount) {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&drops);
    (drops, move || DropCount(Arc::clone(&d)))
}

#[test]
fn cancelling_a_parked_green_thread_unwinds_it_and_its_joiner_learns_it() {
    let (drops, guard) = counter();
    let err = run(move || {
        let (_keep, rx) = channel::<()>();
        let (parked_tx, parked_rx) = channel::<()>();
        let g = guard();
        let h = spawn(move || {
            let _g = g;
            parked_tx.send(()).unwrap();
            rx.recv().unwrap(); // nobody sends: only the cancellation ends this
            unreachable!("the receive returned")
        });
        // The child sent and then parked before this green thread ran again.
        parked_rx.recv().unwrap();
        assert!(!h.is_finished());
        h.cancel();
        h.join().unwrap_err()
    });
    assert!(err.is_cancelled());
    assert!(!err.is_panic() && !err.is_stack_overflow());
    assert!(err.to_string().contains("was cancelled"), "{err}");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the parked green thread's destructors ran");
}

#[test]
fn cancelling_a_green_thread_that_only_yields_stops_it_at_its_next_yield() {
    let (drops, guard) = counter();
    let (err, spins_at_cancel, spins_after) = run(move || {
        let spins = Rc::new(Cell::new(0u64));
        let s = Rc::clone(&spins);
        let g = guard();
        let h = spawn(move || {
            let _g = g;
            loop {
                s.set(s.get() + 1);
                yield_now();
            }
        });
        for _ in 0..10 {
            yield_now();
        }
        let at_cancel = spins.get();
        h.cancel();
        let err = h.join().unwrap_err();
        (err, at_cancel, spins.get())
    });
    assert!(err.is_cancelled());
    assert!(spins_at_cancel >= 5, "it ran before the cancellation: {spins_at_cancel}");
    // Cancelled while ready: it ran once more, up to its next yield.
    assert!(spins_after <= spins_at_cancel + 1, "{spins_at_cancel} -> {spins_after}");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_green_thread_cancelled_while_ready_runs_on_to_its_next_wait_and_unwinds_there() {
    let (drops, guard) = counter();
    let (err, reached) = run(move || {
        let reached = Rc::new(Cell::new(false));
        let r = Rc::clone(&reached);
        let (_keep, rx) = channel::<()>();
        let g = guard();
        let h = spawn(move || {
            let _g = g;
            yield_now(); // ready, not parked, when the cancellation comes
            r.set(true);
            rx.recv().unwrap(); // nobody sends: the wait itself must unwind
            unreachable!("the receive returned")
        });
        yield_now(); // the child runs up to its yield
        h.cancel();
        (h.join().unwrap_err(), Rc::clone(&reached))
    });
    assert!(err.is_cancelled());
    assert!(reached.get(), "code between two park points runs on");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_green_thread_that_cancels_itself_unwinds_at_its_next_wait() {
    let (drops, guard) = counter();
    let d = Arc::clone(&drops);
    let (ran_on, yields) = run(move || {
        let (handle_tx, handle_rx) = channel::<bobbin::JoinHandle<()>>();
        let ran_on = Rc::new(Cell::new(false));
        let r = Rc::clone(&ran_on);
        let (keep, never) = channel::<()>();
        let g = guard();
        let h = spawn(move || {
            let _g = g;
            let me = handle_rx.recv().unwrap();
            me.cancel();
            r.set(true); // cancelling is not a park point: it runs on
            never.recv().unwrap(); // this wait unwinds
            unreachable!("the receive returned")
        });
        handle_tx.send(h).unwrap();
        // Nobody but the green thread holds its handle: watch its destructors instead.
        // The sender stays alive, so only the cancellation can end the receive.
        let mut yields = 0;
        while d.load(Ordering::SeqCst) == 0 && yields < 1000 {
            yield_now();
            yields += 1;
        }
        drop(keep);
        (Rc::clone(&ran_on), yields)
    });
    assert!(ran_on.get());
    assert!(yields < 1000, "the green thread never unwound");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_green_thread_cancelled_before_it_starts_never_runs() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let err = run(move || {
        let h = spawn(move || r.fetch_add(1, Ordering::SeqCst));
        h.cancel(); // the spawner has not let it start
        h.join().unwrap_err()
    });
    assert!(err.is_cancelled());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn cancelling_a_finished_green_thread_changes_nothing() {
    let value = run(|| {
        let h = spawn(|| 42);
        while !h.is_finished() {
            yield_now();
        }
        h.cancel();
        h.cancel(); // twice: still nothing
        h.join()
    });
    assert_eq!(value.unwrap(), 42);
}

/// A finished green thread's scheduler keeps its bookkeeping for the next green thread; a
/// cancel through the old handle must not reach the new one.
#[test]
fn cancelling_a_finished_green_thread_does_not_reach_the_one_that_took_its_place() {
    let got = run(|| {
        let old = spawn(|| ());
        while !old.is_finished() {
            yield_now();
        }
        let (tx, rx) = channel::<u32>();
        let new = spawn(move || rx.recv().unwrap());
        yield_now(); // let it start and park
        old.cancel();
        yield_now();
        tx.send(7).unwrap();
        (old.join(), new.join())
    });
    assert!(got.0.is_ok());
    assert_eq!(got.1.unwrap(), 7);
}

#[test]
fn a_plain_thread_cancels_a_green_thread_parked_on_a_runtime_worker() {
    let (drops, guard) = counter();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (parked_tx, parked_rx) = std::sync::mpsc::channel::<()>();
    let (keep, rx) = channel::<()>();
    let g = guard();
    let h = rt.spawn(move || {
        let _g = g;
        parked_tx.send(()).unwrap();
        rx.recv().unwrap();
        unreachable!("the receive returned")
    });
    parked_rx.recv().unwrap(); // it is parked, or about to park
                               // The handle crosses to another OS thread, which cancels and joins.
    let err = std::thread::spawn(move || {
        h.cancel();
        h.join().unwrap_err()
    })
    .join()
    .unwrap();
    assert!(err.is_cancelled());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(keep);
}

#[test]
fn a_sleeping_green_thread_of_a_runtime_is_cancelled_by_a_sibling() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (drops, guard) = counter();
    let g = guard();
    let err = rt.block_on(move || {
        let (started_tx, started_rx) = channel::<()>();
        let sleeper = bobbin::runtime::spawn(move || {
            let _g = g;
            started_tx.send(()).unwrap();
            bobbin::sleep(Duration::from_secs(3600));
        });
        started_rx.recv().unwrap();
        sleeper.cancel();
        sleeper.join().unwrap_err()
    });
    assert!(err.is_cancelled());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn cancelling_a_green_thread_that_holds_a_mutex_poisons_the_mutex() {
    let poisoned = run(|| {
        let m = Arc::new(Mutex::new(0u32));
        let (_keep, rx) = channel::<()>();
        let (locked_tx, locked_rx) = channel::<()>();
        let m2 = Arc::clone(&m);
        let h = spawn(move || {
            let mut guard = m2.lock().unwrap();
            *guard += 1;
            locked_tx.send(()).unwrap();
            rx.recv().unwrap(); // parked with the lock held
        });
        locked_rx.recv().unwrap();
        h.cancel();
        assert!(h.join().unwrap_err().is_cancelled());
        let poisoned = m.is_poisoned();
        // The value is still there behind the poison.
        assert_eq!(*m.lock().unwrap_err().into_inner(), 1);
        poisoned
    });
    assert!(poisoned);
}

#[test]
fn a_waiter_on_a_mutex_cancelled_while_parked_unwinds_and_the_lock_still_works() {
    let (order, err) = run(|| {
        let m = Arc::new(Mutex::new(Vec::new()));
        let guard = m.lock().unwrap();
        let m2 = Arc::clone(&m);
        let cancelled = spawn(move || m2.lock().unwrap().push("cancelled"));
        let m3 = Arc::clone(&m);
        let other = spawn(move || m3.lock().unwrap().push("other"));
        yield_now(); // both park on the lock
        cancelled.cancel();
        drop(guard);
        other.join().unwrap();
        let err = cancelled.join().unwrap_err();
        let order = m.lock().unwrap().clone();
        (order, err)
    });
    assert!(err.is_cancelled());
    assert_eq!(order, ["other"]);
}

#[test]
fn catching_the_cancellation_does_not_make_it_a_success() {
    let (caught, err_after_wait, err_after_return) = run(|| {
        let caught = Rc::new(Cell::new(0));
        let c = Rc::clone(&caught);
        let (_keep, rx) = channel::<()>();
        // Catches the unwinding, then waits again: the wait unwinds again.
        let waits_again = spawn(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(|| rx.recv()));
            assert!(r.is_err());
            c.set(c.get() + 1);
            yield_now();
            unreachable!("the yield returned")
        });
        let c = Rc::clone(&caught);
        let (_keep2, rx2) = channel::<()>();
        // Catches it and returns a value: the joiner still hears of the cancellation.
        let returns = spawn(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(|| rx2.recv()));
            c.set(c.get() + 1);
            r.is_err()
        });
        yield_now();
        waits_again.cancel();
        returns.cancel();
        (Rc::clone(&caught), waits_again.join().unwrap_err(), returns.join().unwrap_err())
    });
    assert_eq!(caught.get(), 2);
    assert!(err_after_wait.is_cancelled());
    assert!(err_after_return.is_cancelled());
}

#[test]
fn join_timeout_gives_the_handle_back_and_a_later_join_gets_the_value() {
    let (timed_out, value) = run(|| {
        let (tx, rx) = channel::<u32>();
        let h = spawn(move || rx.recv().unwrap() * 2);
        // It cannot finish before it receives, which only happens below.
        let h = match h.join_timeout(Duration::from_millis(5)) {
            Ok(_) => return (false, 0),
            Err(h) => h,
        };
        let h = match h.join_timeout(Duration::ZERO) {
            Ok(_) => return (false, 0),
            Err(h) => h,
        };
        tx.send(21).unwrap();
        (true, h.join().unwrap())
    });
    assert!(timed_out, "the join timed out while the green thread was waiting for its message");
    assert_eq!(value, 42);
}

#[test]
fn join_timeout_returns_the_result_of_a_green_thread_that_finishes_in_time() {
    let r = run(|| {
        let (tx, rx) = channel::<u32>();
        let h = spawn(move || rx.recv().unwrap() + 1);
        let sender = spawn(move || tx.send(1).unwrap());
        let r = h.join_timeout(Duration::from_secs(3600)).expect("finished in time");
        sender.join().unwrap();
        r
    });
    assert_eq!(r.unwrap(), 2);
    // From a plain thread, on a runtime.
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = channel::<u32>();
    let h = rt.spawn(move || rx.recv().unwrap());
    let h = h.join_timeout(Duration::from_millis(1)).expect_err("cannot finish before the send");
    tx.send(5).unwrap();
    assert_eq!(h.join_timeout(Duration::from_secs(3600)).ok().unwrap().unwrap(), 5);
}

#[test]
fn names_and_ids_through_builder_current_and_the_handle() {
    let (inside, handle_thread, ids) = run(|| {
        let h = Builder::new().name("alpha".into()).spawn(bobbin::current).unwrap();
        let handle_thread = h.thread().clone();
        let inside = h.join().unwrap();
        let ids: Vec<_> = (0..3).map(|_| spawn(|| bobbin::current().id()).join().unwrap()).collect();
        (inside, handle_thread, ids)
    });
    assert_eq!(inside.name(), Some("alpha"));
    assert_eq!(inside.id(), handle_thread.id());
    assert_eq!(handle_thread.name(), Some("alpha"));
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    assert_ne!(ids[0], inside.id());
    assert!(bobbin::try_current().is_none());
    let main = run(bobbin::current);
    assert_eq!(main.name(), None);
}

#[test]
#[should_panic(expected = "outside a green thread")]
fn current_outside_a_green_thread_panics() {
    bobbin::current();
}

#[test]
fn builder_spawn_outside_a_scheduler_and_with_a_zero_stack_is_an_error() {
    assert!(Builder::new().spawn(|| ()).is_err());
    let kind = run(|| Builder::new().stack_size(0).spawn(|| ()).unwrap_err().kind());
    assert_eq!(kind, std::io::ErrorKind::InvalidInput);
}

/// About 1 KiB of stack per level.
#[inline(never)]
fn deep(n: u32) -> u32 {
    let frame = std::hint::black_box([n as u8; 1024]);
    if n == 0 {
        0
    } else {
        deep(n - 1) + u32::from(frame[7] & 1)
    }
}

#[test]
fn a_green_thread_gets_the_stack_size_its_builder_asks_for() {
    in_child_ok("a_green_thread_gets_the_stack_size_its_builder_asks_for", || {
        let (small, large) = run(|| {
            // 512 levels need more than the default 128 KiB and less than 2 MiB.
            let small = Builder::new().name("small".into()).spawn(|| deep(512)).unwrap().join();
            let large = Builder::new().name("large".into()).stack_size(2 << 20).spawn(|| deep(512)).unwrap().join();
            (small, large)
        });
        let small = small.unwrap_err();
        assert!(small.is_stack_overflow(), "{small}");
        assert!(small.to_string().contains("'small'"), "{small}");
        assert_eq!(large.unwrap(), 256);
    });
}

#[test]
fn a_panic_of_a_named_green_thread_says_its_name() {
    let out = in_child("a_panic_of_a_named_green_thread_says_its_name", || {
        let err = run(|| Builder::new().name("parser-7".into()).spawn(|| panic!("bad token")).unwrap().join());
        let err = err.unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().starts_with("green thread 'parser-7' (id "), "{err}");
        assert!(err.to_string().ends_with("panicked: bad token"), "{err}");
        assert_eq!(err.thread().and_then(|t| t.name()), Some("parser-7"));
    });
    let Some(out) = out else { return };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stderr}\n{}", String::from_utf8_lossy(&out.stdout));
    // The hook's line names the green thread; std's report that follows has the message.
    let line = stderr.lines().position(|l| l.starts_with("green thread 'parser-7' (id ") && l.contains("panicked"));
    let message = stderr.lines().position(|l| l.contains("bad token"));
    assert!(matches!((line, message), (Some(a), Some(b)) if a < b), "stderr:\n{stderr}");
}

#[test]
fn a_cancellation_prints_nothing() {
    let out = in_child("a_cancellation_prints_nothing", || {
        let err = run(|| {
            let (_keep, rx) = channel::<()>();
            let h = Builder::new().name("quiet".into()).spawn(move || rx.recv().unwrap()).unwrap();
            yield_now();
            h.cancel();
            h.join().unwrap_err()
        });
        assert!(err.is_cancelled());
    });
    let Some(out) = out else { return };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("quiet"), "stderr:\n{stderr}");
}

bobbin::green_local! {
    static NUMBER: Cell<u32> = Cell::new(0);
    static DROPS_ON_END: RefCell<Option<DropCount>> = RefCell::new(None);
}

#[test]
fn each_green_thread_sees_its_own_local() {
    let seen = run(|| {
        NUMBER.set(100);
        let handles: Vec<_> = (1..=3u32)
            .map(|n| {
                spawn(move || {
                    assert_eq!(NUMBER.get(), 0, "a fresh green thread starts from the initial value");
                    NUMBER.set(n);
                    // The others run and set theirs in between.
                    for _ in 0..3 {
                        yield_now();
                    }
                    NUMBER.get()
                })
            })
            .collect();
        let seen: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(NUMBER.get(), 100, "the main green thread kept its own");
        seen
    });
    assert_eq!(seen, [1, 2, 3]);
    // Outside a green thread: one value per OS thread.
    NUMBER.set(9);
    let other = std::thread::spawn(|| NUMBER.get()).join().unwrap();
    assert_eq!((NUMBER.get(), other), (9, 0));
}

#[test]
fn a_green_threads_locals_are_dropped_when_it_ends() {
    let (drops, guard) = counter();
    let during = run(move || {
        let (go_tx, go_rx) = channel::<()>();
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let g = guard();
                let go = go_rx.clone();
                spawn(move || {
                    DROPS_ON_END.set(Some(g));
                    go.recv().unwrap();
                })
            })
            .collect();
        yield_now(); // all three stored theirs and wait
        let during = drops.load(Ordering::SeqCst);
        for _ in 0..3 {
            go_tx.send(()).unwrap();
        }
        for h in handles {
            h.join().unwrap();
        }
        (during, drops.load(Ordering::SeqCst))
    });
    assert_eq!(during, (0, 3), "kept while the green threads lived, dropped by the time each was joined");
}

/// Records, when dropped, which green thread dropped it.
struct DroppedOn(Arc<std::sync::Mutex<Option<Option<bobbin::GreenThreadId>>>>);

impl Drop for DroppedOn {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(bobbin::try_current().map(|t| t.id()));
    }
}

bobbin::green_local! {
    static WHERE_DROPPED: RefCell<Option<DroppedOn>> = RefCell::new(None);
}

#[test]
fn locals_are_dropped_on_their_green_thread_before_its_joiner_wakes() {
    // The joiner is a plain thread: nothing orders it after the scheduler's clean-up, only
    // after the green thread's own end.
    let rt = Runtime::builder().workers(1).build().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let s = Arc::clone(&seen);
    let h = rt.spawn(move || {
        WHERE_DROPPED.set(Some(DroppedOn(s)));
        bobbin::current().id()
    });
    let id = h.join().unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(Some(id)));
}

#[test]
fn locals_of_a_cancelled_or_panicking_green_thread_are_dropped_too() {
    let (drops, guard) = counter();
    run(move || {
        let g = guard();
        let (_keep, rx) = channel::<()>();
        let cancelled = spawn(move || {
            DROPS_ON_END.set(Some(g));
            rx.recv().unwrap();
        });
        let g = guard();
        let panicking = spawn(move || {
            DROPS_ON_END.set(Some(g));
            panic!("on purpose");
        });
        yield_now();
        cancelled.cancel();
        assert!(cancelled.join().unwrap_err().is_cancelled());
        assert!(panicking.join().unwrap_err().is_panic());
    });
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn locals_work_on_runtime_workers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (1..=8u32)
        .map(|n| {
            rt.spawn(move || {
                NUMBER.set(n);
                bobbin::sleep(Duration::from_millis(1));
                NUMBER.get()
            })
        })
        .collect();
    let got: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, (1..=8).collect::<Vec<_>>());
}

#[test]
fn a_runtime_green_thread_gets_its_builders_name_and_stack_size() {
    in_child_ok("a_runtime_green_thread_gets_its_builders_name_and_stack_size", || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let h = rt
            .spawn_with(Builder::new().name("deep-rt".into()).stack_size(2 << 20), || {
                (bobbin::current().name().map(str::to_owned), deep(512))
            })
            .unwrap();
        assert_eq!(h.thread().name(), Some("deep-rt"));
        let (name, depth) = h.join().unwrap();
        assert_eq!((name.as_deref(), depth), (Some("deep-rt"), 256));
        // From a green thread of the runtime, onto any worker.
        let inner = rt.block_on(|| {
            let h = bobbin::runtime::spawn_with(Builder::new().stack_size(2 << 20), || deep(512)).unwrap();
            h.join().unwrap()
        });
        assert_eq!(inner, 256);
        assert!(bobbin::runtime::spawn_with(Builder::new(), || ()).is_err(), "outside a runtime");
        assert!(rt.spawn_with(Builder::new().stack_size(0), || ()).is_err());
    });
}
