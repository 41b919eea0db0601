//! `JoinHandle::join` on a green thread that has not started and is the newest one waiting
//! to start on the joiner's scheduler starts it at once, from the joiner's stack. These
//! tests check that the child is still a green thread of its own, that the joiner gets
//! control back when the child parks, that the joiner's budget is kept, and that the
//! start happens (the order shows it).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bobbin::sync::channel;
use bobbin::{run, spawn, yield_now, Builder, JoinHandle, Runtime};

#[test]
fn joining_an_unstarted_green_thread_starts_it_at_once() {
    let log = run(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let (a, b) = (Rc::clone(&log), Rc::clone(&log));
        let first = spawn(move || a.borrow_mut().push("first"));
        let second = spawn(move || b.borrow_mut().push("second"));
        second.join().unwrap();
        // The scheduler starts its spawns oldest first; the join started the one it waits
        // for before the older one.
        let at_join = log.borrow().clone();
        first.join().unwrap();
        let after = log.borrow().clone();
        (at_join, after)
    });
    assert_eq!(log.0, ["second"]);
    assert_eq!(log.1, ["second", "first"]);
}

bobbin::green_local! {
    static MARK: Cell<u32> = Cell::new(0);
}

#[test]
fn a_child_started_by_its_joiner_is_a_green_thread_of_its_own() {
    let (parent, child, parent_after) = run(|| {
        MARK.set(7);
        let parent = (bobbin::current().id(), bobbin::current().name().map(str::to_owned));
        let handle = Builder::new()
            .name("child".into())
            .stack_size(64 * 1024)
            .spawn(|| (bobbin::current().id(), bobbin::current().name().map(str::to_owned), MARK.get()))
            .unwrap();
        let child = handle.join().unwrap();
        (parent, child, (bobbin::current().id(), MARK.get()))
    });
    assert_ne!(parent.0, child.0, "the child has its own id");
    assert_eq!(child.1.as_deref(), Some("child"));
    assert_eq!(child.2, 0, "the child sees its own green-thread local, not the joiner's");
    assert_eq!(parent_after, (parent.0, 7), "the joiner is itself again after the child ran");
}

/// The child parks on a channel that a green thread spawned before it feeds: the joiner
/// gets control back, parks in its turn, and both finish. `spawner` is `bobbin::spawn` or
/// `bobbin::runtime::spawn`.
fn child_that_parks(spawner: fn(Box<dyn FnOnce() -> u32 + Send>) -> JoinHandle<u32>) -> u32 {
    let (tx, rx) = channel::<u32>();
    let sender = spawner(Box::new(move || {
        yield_now();
        tx.send(41).unwrap();
        0
    }));
    let child = spawner(Box::new(move || rx.recv().unwrap() + 1));
    let value = child.join().unwrap();
    sender.join().unwrap();
    value
}

fn local_spawn(f: Box<dyn FnOnce() -> u32 + Send>) -> JoinHandle<u32> {
    spawn(f)
}

fn runtime_spawn(f: Box<dyn FnOnce() -> u32 + Send>) -> JoinHandle<u32> {
    bobbin::runtime::spawn(f)
}

#[test]
fn a_started_child_that_parks_hands_control_back_to_its_joiner() {
    assert_eq!(run(|| child_that_parks(local_spawn)), 42);
    for workers in [1, 2] {
        let rt = Runtime::builder().workers(workers).build().unwrap();
        assert_eq!(rt.block_on(|| child_that_parks(local_spawn)), 42);
        assert_eq!(rt.block_on(|| child_that_parks(runtime_spawn)), 42);
    }
}

#[test]
fn a_joiner_that_starts_children_in_a_loop_still_lets_others_run() {
    // Each child starts with a full budget of its own; the joiner must not inherit it, or
    // a loop of spawns and joins would never yield to the ticker.
    let ticks_during_loop = run(|| {
        let ticks = Rc::new(Cell::new(0u64));
        let stop = Rc::new(Cell::new(false));
        let (t, s) = (Rc::clone(&ticks), Rc::clone(&stop));
        let ticker = spawn(move || {
            while !s.get() {
                t.set(t.get() + 1);
                yield_now();
            }
        });
        for _ in 0..5_000 {
            spawn(|| ()).join().unwrap();
        }
        let during = ticks.get();
        stop.set(true);
        ticker.join().unwrap();
        during
    });
    assert!(ticks_during_loop > 0, "the ticker never ran while the joiner looped");
}

/// Sets its flag when dropped, unwinding or not.
struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_joiner_cancelled_by_the_child_it_started_unwinds_at_its_next_park_point() {
    let (result, passed) = run(|| {
        let (passed, done) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let handle: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::new(RefCell::new(None));
        let (p, d, h) = (Rc::clone(&passed), Rc::clone(&done), Rc::clone(&handle));
        let joiner = spawn(move || {
            let _done = SetOnDrop(d);
            // The child cancels its joiner through the joiner's handle.
            let child = spawn(move || h.borrow().as_ref().expect("the handle is set").cancel());
            child.join().unwrap();
            yield_now();
            p.set(true);
        });
        *handle.borrow_mut() = Some(joiner);
        while !done.get() {
            yield_now();
        }
        let joiner = handle.borrow_mut().take().unwrap();
        (joiner.join(), passed.get())
    });
    assert!(result.unwrap_err().is_cancelled());
    assert!(!passed, "the joiner ran past the park point after its cancellation");
}

#[test]
fn fib_with_a_green_thread_per_call_is_right_on_one_and_two_workers() {
    fn fib(n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        let a = bobbin::runtime::spawn(move || fib(n - 1));
        let b = fib(n - 2);
        a.join().unwrap() + b
    }
    for workers in [1, 2] {
        let rt = Runtime::builder().workers(workers).build().unwrap();
        assert_eq!(rt.block_on(|| fib(20)), 6765);
    }
}
