//! Borrowing coroutines and generators: `ScopedGenerator`, `ScopedCoroutine`.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bobbin::coroutine::ScopedCoroutine;
use bobbin::sync::channel;
use bobbin::{run, spawn, yield_now, CoroutineResult, Generator, ScopedGenerator, Yielder};

struct Inventory {
    items: Vec<String>,
}

impl Inventory {
    /// The items in order, then again in reverse: an iterator written as a loop.
    fn there_and_back(&self) -> impl Iterator<Item = &str> + '_ {
        ScopedGenerator::new(move |y| {
            for item in &self.items {
                y.suspend(item.as_str());
            }
            for item in self.items.iter().rev() {
                y.suspend(item.as_str());
            }
        })
    }
}

#[test]
fn a_method_returns_a_generator_that_borrows_self() {
    let inv = Inventory { items: vec!["a".into(), "b".into(), "c".into()] };
    let seen: Vec<&str> = inv.there_and_back().collect();
    assert_eq!(seen, ["a", "b", "c", "c", "b", "a"]);
}

#[test]
fn a_scoped_coroutine_mutates_what_it_borrows() {
    let mut total = 0u64;
    {
        let mut adder = ScopedCoroutine::new(|y: &Yielder<u64, u64>, mut x: u64| loop {
            total += x;
            x = y.suspend(total);
        });
        assert_eq!(adder.resume(2), CoroutineResult::Yield(2));
        assert_eq!(adder.resume(5), CoroutineResult::Yield(7));
    }
    // The coroutine was dropped (unwound) at the end of the block, ending the borrow.
    assert_eq!(total, 7);
}

/// Sets a flag when dropped, after reading the data it borrows (a read of freed memory if
/// it ran after that data was dropped, which valgrind or ASan would report).
struct ReadsOnDrop<'a> {
    data: &'a [u64],
    dropped: &'a AtomicBool,
}

impl Drop for ReadsOnDrop<'_> {
    fn drop(&mut self) {
        black_box(self.data.iter().sum::<u64>());
        self.dropped.store(true, Ordering::SeqCst);
    }
}

#[test]
fn dropping_a_suspended_scoped_generator_unwinds_it_before_the_borrow_ends() {
    let dropped = AtomicBool::new(false);
    let data = vec![1u64, 2, 3];
    let mut g = ScopedGenerator::new(|y| {
        let _guard = ReadsOnDrop { data: &data, dropped: &dropped };
        for v in &data {
            y.suspend(*v);
        }
    });
    assert_eq!(g.next(), Some(1));
    assert!(!dropped.load(Ordering::SeqCst));
    drop(g);
    assert!(dropped.load(Ordering::SeqCst), "the guard on the generator's stack was dropped");
    drop(data);
}

/// The address of a local of a generator's closure while it is suspended: where on which
/// stack it runs.
fn local_address(g: &mut impl Iterator<Item = usize>) -> usize {
    g.next().expect("the generator yields its local's address")
}

/// `mem::forget` on a suspended borrowing generator ends the borrow without unwinding it.
/// Its frames must never run again (the guard's destructor reads the freed vector) and its
/// stack must not serve another coroutine while those frames still point at the vector:
/// the stack is leaked, on this thread and after the thread (and its stack pool) is gone.
///
/// The generator is forgotten in a box whose address a static keeps, so that the leak
/// checkers (valgrind's in `.ci/valgrind`, LeakSanitizer in `.ci/asan`) see the memory it
/// leaks on purpose as still reachable rather than lost.
#[test]
fn a_forgotten_scoped_generator_never_runs_again_and_its_stack_is_not_reused() {
    static FORGOTTEN: AtomicUsize = AtomicUsize::new(0);
    let dropped = Arc::new(AtomicBool::new(false));
    let forgotten_at = {
        let dropped = Arc::clone(&dropped);
        std::thread::spawn(move || {
            let data: Vec<u64> = (0..1000).collect();
            let mut g = ScopedGenerator::new(|y| {
                let guard = ReadsOnDrop { data: &data, dropped: &dropped };
                let local = Cell::new(0u8);
                y.suspend(&local as *const _ as usize);
                black_box((&guard, &local));
                y.suspend(0);
            });
            let forgotten_at = local_address(&mut g);
            let g = Box::new(g);
            FORGOTTEN.store(&*g as *const _ as usize, Ordering::SeqCst);
            std::mem::forget(g);
            drop(data);
            // Pooled stacks are handed out last in, first out: a recycled one would come
            // back at once. Many generators later, none runs where the forgotten one does.
            for _ in 0..200 {
                let mut h = Generator::new(|y| {
                    let local = Cell::new(0u8);
                    y.suspend(&local as *const _ as usize);
                });
                let at = local_address(&mut h);
                assert!(at.abs_diff(forgotten_at) > 16 * 1024, "a new generator runs on the forgotten one's stack");
            }
            forgotten_at
        })
        .join()
        .unwrap()
    };
    assert_ne!(forgotten_at, 0);
    // The thread, and its stack pool, are gone; nothing unwound the forgotten frames.
    assert!(!dropped.load(Ordering::SeqCst), "the forgotten generator's frames ran again");
    for _ in 0..200 {
        let mut h = Generator::new(|y| {
            let local = Cell::new(0u8);
            y.suspend(&local as *const _ as usize);
        });
        assert!(local_address(&mut h).abs_diff(forgotten_at) > 16 * 1024);
    }
    assert!(!dropped.load(Ordering::SeqCst));
}

#[test]
fn a_scoped_generator_borrowing_a_receiver_parks_its_green_thread() {
    let got = run(|| {
        let (tx, rx) = channel::<u32>();
        let feeder = spawn(move || {
            for i in 0..20 {
                tx.send(i).unwrap();
                yield_now();
            }
        });
        let doubled: Vec<u32> = ScopedGenerator::new(|y| {
            while let Ok(v) = rx.recv() {
                y.suspend(v * 2);
            }
        })
        .collect();
        feeder.join().unwrap();
        // Still ours: the generator only borrowed it.
        assert!(rx.try_recv().is_err());
        doubled
    });
    assert_eq!(got, (0..20).map(|i| i * 2).collect::<Vec<_>>());
}

/// A borrowing generator can capture the `Yielder` of the coroutine that drives it and
/// suspend that coroutine from its own stack: the coroutine's frames and the generator's
/// stay where they are, resuming continues on the generator's stack, and dropping the
/// suspended coroutine unwinds both, innermost first; a panic there comes out of `resume`.
#[test]
#[cfg_attr(
    bobbin_asan,
    ignore = "the suspend switches from the generator's stack where AddressSanitizer's bookkeeping expects the \
              coroutine's own, and ASan warns (a known limit, in RELIABILITY.md)"
)]
fn a_scoped_generator_may_suspend_the_coroutine_that_drives_it() {
    use bobbin::{Coroutine, CoroutineResult, ScopedGenerator, Yielder};
    use std::cell::RefCell;

    let log = RefCell::new(Vec::new());
    struct Logged<'a>(&'a RefCell<Vec<&'static str>>, &'static str);
    impl Drop for Logged<'_> {
        fn drop(&mut self) {
            self.0.borrow_mut().push(self.1);
        }
    }
    {
        let log = &log;
        let mut outer = bobbin::coroutine::ScopedCoroutine::new(move |y: &Yielder<(), u32>, ()| {
            let _o = Logged(log, "outer dropped");
            let g = ScopedGenerator::new(|_: &Yielder<(), u32>| {
                let _i = Logged(log, "inner dropped");
                y.suspend(5);
                log.borrow_mut().push("inner resumed");
                y.suspend(6);
                log.borrow_mut().push("inner resumed again (never)");
            });
            for _ in g {}
        });
        assert_eq!(outer.resume(()), CoroutineResult::Yield(5));
        assert_eq!(outer.resume(()), CoroutineResult::Yield(6));
        drop(outer);
    }
    assert_eq!(*log.borrow(), ["inner resumed", "inner dropped", "outer dropped"]);

    let mut outer = Coroutine::<(), u32, ()>::new(|y, ()| {
        let g = ScopedGenerator::new(|_: &Yielder<(), u32>| {
            y.suspend(1);
            panic!("after the outer coroutine was resumed");
        });
        for _ in g {}
    });
    assert_eq!(outer.resume(()), CoroutineResult::Yield(1));
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| outer.resume(()))).unwrap_err();
    assert_eq!(e.downcast_ref::<&str>(), Some(&"after the outer coroutine was resumed"));
}
