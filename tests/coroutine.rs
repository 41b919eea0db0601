//! The safe coroutine layer: values both ways, panics, forced unwinding, overflow,
//! misuse, backtraces, floating-point state.

mod common;

use std::cell::{Cell, RefCell};
use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use bobbin::coroutine::Builder;
use bobbin::{Coroutine, CoroutineResult, Error, Generator, Yielder};

#[test]
fn values_flow_both_ways_over_many_round_trips() {
    let mut c = Coroutine::new(|y: &Yielder<u64, u64>, first: u64| {
        let mut acc = first;
        loop {
            let next = y.suspend(acc * 2);
            if next == u64::MAX {
                return format!("sum {acc}");
            }
            acc += next;
        }
    });
    assert!(!c.started());
    let mut expected = 1;
    assert_eq!(c.resume(1), CoroutineResult::Yield(2));
    assert!(c.started() && !c.done());
    for i in 0..10_000u64 {
        expected += i;
        assert_eq!(c.resume(i), CoroutineResult::Yield(expected * 2));
    }
    assert_eq!(c.resume(u64::MAX), CoroutineResult::Return(format!("sum {expected}")));
    assert!(c.done());
}

/// A value that knows whether it was moved across intact, and counts its drops.
struct Parcel {
    payload: [u64; 40],
    _drop: Counted,
}

impl Parcel {
    fn new(seed: u64, drops: &Rc<Cell<u32>>) -> Parcel {
        Parcel {
            payload: std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u64)),
            _drop: Counted(Rc::clone(drops)),
        }
    }

    fn seed(&self) -> u64 {
        for (i, &word) in self.payload.iter().enumerate() {
            assert_eq!(word, self.payload[0].wrapping_add(i as u64), "a value was torn crossing the switch");
        }
        self.payload[0] / 31
    }
}

#[test]
fn values_of_every_kind_cross_intact_and_are_dropped_once() {
    let drops = Rc::new(Cell::new(0));
    let d = Rc::clone(&drops);
    // Inputs, yields and the return value are all large and counted; the inputs come in
    // as (odd-sized, byte-aligned) tuples too, so their addresses are not word aligned.
    let mut c = Coroutine::new(move |y: &Yielder<(u8, Parcel), Parcel>, (tag, first): (u8, Parcel)| {
        let mut seen = vec![(tag, first.seed())];
        drop(first);
        for round in 0..100u64 {
            let (tag, next) = y.suspend(Parcel::new(1000 + round, &d));
            seen.push((tag, next.seed()));
        }
        (seen, Parcel::new(7, &d))
    });
    let sent = |i: u64| ((i % 251) as u8, Parcel::new(i, &drops));
    for i in 0..=100u64 {
        match c.resume(sent(i)) {
            CoroutineResult::Yield(p) => assert_eq!(p.seed(), 1000 + i),
            CoroutineResult::Return((seen, last)) => {
                assert_eq!(i, 100);
                assert_eq!(last.seed(), 7);
                let expected: Vec<(u8, u64)> = (0..=100).map(|i| ((i % 251) as u8, i)).collect();
                assert_eq!(seen, expected);
            }
        }
    }
    assert!(c.done());
    drop(c);
    // 101 inputs, 100 yields and the return value, each dropped once.
    assert_eq!(drops.get(), 101 + 100 + 1);
}

/// Yields each of `values` in turn from a coroutine that also echoes its inputs, and checks
/// that every one comes out as it went in (by `same`, so that floats compare by bits).
fn yields_intact<T: Clone + std::fmt::Debug + 'static>(values: &[T], same: impl Fn(&T, &T) -> bool) {
    let sent = values.to_vec();
    let mut c = Coroutine::new(move |y: &Yielder<u64, T>, mut input: u64| {
        for v in sent {
            let next = y.suspend(v);
            assert_eq!(next, input + 1, "an input next to a yielded value crossed intact");
            input = next;
        }
        input
    });
    for (i, v) in values.iter().enumerate() {
        match c.resume(i as u64) {
            CoroutineResult::Yield(got) => assert!(same(&got, v), "yielded {v:?}, received {got:?}"),
            CoroutineResult::Return(_) => panic!("returned before yielding {v:?}"),
        }
    }
    assert!(matches!(c.resume(values.len() as u64), CoroutineResult::Return(n) if n == values.len() as u64));
}

/// Word values a switch or its resumer could mistake for a signal: the states a stack
/// pointer word takes (0, 1, 2), the top bit a relay sets in it, all ones (once the
/// relay's marker), and their neighbours.
const MARKER_LIKE: [u64; 10] = [0, 1, 2, 3, 8, u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) | 1, (1 << 63) - 1];

#[test]
fn word_sized_values_equal_to_any_marker_cross_intact() {
    yields_intact(&MARKER_LIKE, |a, b| a == b);
    let words: Vec<usize> = MARKER_LIKE.iter().map(|&v| v as usize).collect();
    yields_intact(&words, |a, b| a == b);
    let signed: Vec<i64> = MARKER_LIKE.iter().map(|&v| v as i64).chain([i64::MIN, -1]).collect();
    yields_intact(&signed, |a, b| a == b);
    let floats = [0.0, -0.0, f64::NAN, -f64::NAN, f64::from_bits(u64::MAX), f64::INFINITY, f64::MIN_POSITIVE, 1.5];
    yields_intact(&floats, |a: &f64, b| a.to_bits() == b.to_bits());
    yields_intact(&[f32::NAN, -0.0f32, f32::from_bits(u32::MAX)], |a: &f32, b| a.to_bits() == b.to_bits());
}

#[test]
fn values_smaller_than_a_word_cross_intact() {
    yields_intact(&[0u8, 1, 2, 0x80, u8::MAX], |a, b| a == b);
    yields_intact(&[-1i8, i8::MIN, 0], |a, b| a == b);
    yields_intact(&[0u16, u16::MAX, 0x8000], |a, b| a == b);
    yields_intact(&[0u32, 1, u32::MAX, 1 << 31], |a, b| a == b);
    yields_intact(&[i32::MIN, -1, i32::MAX], |a, b| a == b);
    yields_intact(&[true, false, true], |a, b| a == b);
    yields_intact(&['\0', 'a', char::MAX, '\u{FFFF}'], |a, b| a == b);
}

#[test]
fn values_that_go_by_address_cross_intact() {
    // Padded: 8 bytes with 3 of padding, 4 with 1; wider than a word; owning a heap block.
    yields_intact(&[(0u8, 0u32), (u8::MAX, u32::MAX), (1, 1 << 31)], |a, b| a == b);
    yields_intact(&[(0xA5u8, 0u16), (0, u16::MAX)], |a, b| a == b);
    yields_intact(&[0u128, u128::MAX, 1 << 127, u64::MAX as u128 + 1], |a, b| a == b);
    yields_intact(&[String::new(), "a".repeat(100), "marker".into()], |a, b| a == b);
    yields_intact(&[std::num::NonZeroU64::MIN, std::num::NonZeroU64::MAX], |a, b| a == b);
    static CELLS: [u32; 2] = [7, 7];
    let refs = [Some(&CELLS[0]), None, Some(&CELLS[1]), None];
    // By address: the very cells, not just equal values.
    yields_intact(&refs, |a, b| match (a, b) {
        (Some(a), Some(b)) => std::ptr::eq(*a, *b),
        (None, None) => true,
        _ => false,
    });
}

thread_local! {
    static TOKEN_DROPS: Cell<u32> = const { Cell::new(0) };
}

/// A zero-sized value that counts its drops.
#[derive(Debug)]
struct Token;

impl Drop for Token {
    fn drop(&mut self) {
        TOKEN_DROPS.set(TOKEN_DROPS.get() + 1);
    }
}

#[test]
fn zero_sized_values_cross_and_are_dropped_once() {
    yields_intact(&[(), (), ()], |a, b| a == b);
    let mut g = Generator::new(|y| {
        for _ in 0..10 {
            y.suspend(Token);
        }
        y.suspend(Token);
    });
    for _ in 0..10 {
        assert!(g.next().is_some());
    }
    assert_eq!(TOKEN_DROPS.get(), 10, "each yielded token is dropped by its receiver, once");
    drop(g);
    assert_eq!(TOKEN_DROPS.get(), 10, "a token not yet yielded is not dropped by the unwinding");
}

#[test]
fn zero_sized_inputs_arrive_and_are_dropped_once() {
    let mut c = Coroutine::new(|y: &Yielder<Token, u32>, first: Token| {
        drop(first);
        let mut got = 1;
        for _ in 0..5 {
            drop(y.suspend(got));
            got += 1;
        }
        got
    });
    let before = TOKEN_DROPS.get();
    for expected in 1..=5 {
        assert_eq!(c.resume(Token), CoroutineResult::Yield(expected));
    }
    assert_eq!(c.resume(Token), CoroutineResult::Return(6));
    assert_eq!(TOKEN_DROPS.get() - before, 6, "each input is dropped by the coroutine, once");
}

#[test]
fn resuming_a_finished_coroutine_is_an_error() {
    let mut c: Coroutine<(), (), i32> = Coroutine::new(|_, ()| 7);
    assert_eq!(c.try_resume(()).unwrap(), CoroutineResult::Return(7));
    assert!(matches!(c.try_resume(()), Err(Error::Finished)));
    let payload = catch_unwind(AssertUnwindSafe(|| c.resume(()))).unwrap_err();
    let msg = payload.downcast_ref::<&str>().copied().or(payload.downcast_ref::<String>().map(String::as_str)).unwrap();
    assert!(msg.contains("is done: it has already finished") && msg.contains("done()"), "{msg}");
}

#[test]
fn resuming_from_inside_cannot_alias() {
    // `resume` takes `&mut self`, so a coroutine can only reach itself through shared
    // ownership with a runtime borrow check, which refuses the re-entry.
    let cell: Rc<RefCell<Option<Coroutine<(), (), ()>>>> = Rc::new(RefCell::new(None));
    let inner = Rc::clone(&cell);
    *cell.borrow_mut() = Some(Coroutine::new(move |_, ()| {
        let _ = inner.borrow_mut().as_mut().unwrap().try_resume(());
    }));
    let mut co = cell.borrow_mut();
    let err = co.as_mut().unwrap().try_resume(()).unwrap_err();
    assert!(matches!(err, Error::Panicked(_)), "{err:?}");
    assert!(err.to_string().contains("already"), "{err}");
}

#[test]
fn panic_comes_out_of_resume_with_its_payload() {
    let n = std::hint::black_box(42);
    let mut c: Coroutine<(), (), ()> = Coroutine::new(move |_, ()| panic!("the original message {n}"));
    let payload = catch_unwind(AssertUnwindSafe(|| c.resume(()))).unwrap_err();
    assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("the original message 42"));
    let mut c: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic!("a static message"));
    let payload = catch_unwind(AssertUnwindSafe(|| c.resume(()))).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"a static message"));
    assert!(c.done());
    assert!(matches!(c.try_resume(()), Err(Error::Finished)));
}

#[test]
fn panic_comes_out_of_try_resume_as_an_error() {
    let mut c: Coroutine<(), u8, ()> = Coroutine::new(|y, ()| {
        y.suspend(1);
        std::panic::panic_any(1234u32);
    });
    assert_eq!(c.try_resume(()).unwrap(), CoroutineResult::Yield(1));
    match c.try_resume(()) {
        Err(Error::Panicked(p)) => assert_eq!(p.downcast_ref::<u32>(), Some(&1234)),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(c.done());
}

struct Counted(Rc<Cell<u32>>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_a_suspended_coroutine_unwinds_its_stack_once() {
    let drops = Rc::new(Cell::new(0));
    let d = Rc::clone(&drops);
    fn deep(depth: u32, y: &Yielder<(), u32>, d: &Rc<Cell<u32>>) {
        let _guard = Counted(Rc::clone(d));
        if depth == 0 {
            y.suspend(0);
            unreachable!("a dropped coroutine never continues");
        }
        deep(depth - 1, y, d);
    }
    let mut c = Coroutine::new(move |y: &Yielder<(), u32>, ()| deep(50, y, &d));
    assert_eq!(c.resume(()), CoroutineResult::Yield(0));
    assert_eq!(drops.get(), 0);
    drop(c);
    assert_eq!(drops.get(), 51);
}

#[test]
fn dropping_an_unstarted_coroutine_drops_its_closure() {
    let drops = Rc::new(Cell::new(0));
    let guard = Counted(Rc::clone(&drops));
    let c: Coroutine<(), (), ()> = Coroutine::new(move |_, ()| drop(guard));
    assert_eq!(drops.get(), 0);
    drop(c);
    assert_eq!(drops.get(), 1);
}

#[test]
fn large_closures_work() {
    let big = [7u8; 64 * 1024];
    let mut c: Coroutine<(), (), u64> =
        Builder::new().stack_size(64 * 1024).spawn(move |_, ()| big.iter().map(|&b| u64::from(b)).sum()).unwrap();
    assert_eq!(c.resume(()), CoroutineResult::Return(7 * 64 * 1024));
}

#[derive(Debug)]
enum Tree {
    Leaf(u32),
    Node(Box<Tree>, u32, Box<Tree>),
}

fn build(lo: u32, hi: u32) -> Tree {
    if lo == hi {
        return Tree::Leaf(lo);
    }
    let mid = (lo + hi) / 2;
    Tree::Node(Box::new(build(lo, mid)), mid * 1000, Box::new(build(mid + 1, hi)))
}

fn in_order_vec(t: &Tree, out: &mut Vec<u32>) {
    match t {
        Tree::Leaf(v) => out.push(*v),
        Tree::Node(l, v, r) => {
            in_order_vec(l, out);
            out.push(*v);
            in_order_vec(r, out);
        }
    }
}

fn in_order_yield(t: &Tree, y: &Yielder<(), u32>) {
    match t {
        Tree::Leaf(v) => y.suspend(*v),
        Tree::Node(l, v, r) => {
            in_order_yield(l, y);
            y.suspend(*v);
            in_order_yield(r, y);
        }
    }
}

#[test]
fn recursive_generator_matches_collecting_traversal() {
    let tree = Rc::new(build(0, 999));
    let mut expected = Vec::new();
    in_order_vec(&tree, &mut expected);
    let t = Rc::clone(&tree);
    let got: Vec<u32> = Generator::new(move |y| in_order_yield(&t, y)).collect();
    assert_eq!(got, expected);
}

#[test]
#[allow(clippy::infinite_iter)] // infinite generators, cut short by take()
fn generators_work_with_adapters_and_are_fused() {
    let evens = Generator::new(|y| (0u32..).for_each(|i| y.suspend(i))).filter(|x| x % 2 == 0);
    let squares = Generator::new(|y| (0u32..).for_each(|i| y.suspend(i * i)));
    let v: Vec<(u32, u32)> = evens.zip(squares).take(4).collect();
    assert_eq!(v, [(0, 0), (2, 1), (4, 4), (6, 9)]);

    let mut g = Generator::new(|y| {
        y.suspend(1);
        y.suspend(2);
    });
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.next(), Some(2));
    assert_eq!(g.next(), None);
    assert_eq!(g.next(), None);
    assert!(g.done());
}

#[test]
fn early_drop_of_a_generator_runs_destructors_at_every_depth() {
    let drops = Rc::new(Cell::new(0));
    let d = Rc::clone(&drops);
    fn nest(level: u32, y: &Yielder<(), u32>, d: &Rc<Cell<u32>>) {
        let _g = Counted(Rc::clone(d));
        if level == 0 {
            for i in 0.. {
                let _item = Counted(Rc::clone(d));
                y.suspend(i);
            }
        } else {
            nest(level - 1, y, d);
        }
    }
    let mut g = Generator::new(move |y| nest(9, y, &d));
    assert_eq!(g.nth(5), Some(5));
    // Five items' guards were dropped as the loop went on.
    assert_eq!(drops.get(), 5);
    drop(g);
    // Ten nesting levels plus the item alive at the suspension point.
    assert_eq!(drops.get(), 5 + 10 + 1);
}

#[test]
fn nested_coroutine_panic_reports_to_its_own_resumer() {
    let mut outer: Coroutine<(), String, String> = Coroutine::new(|y, ()| {
        let mut inner: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic!("inner trouble"));
        let err = inner.try_resume(()).unwrap_err();
        y.suspend(err.to_string());
        "outer finished".to_string()
    });
    match outer.resume(()) {
        CoroutineResult::Yield(msg) => assert!(msg.contains("inner trouble"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(outer.resume(()), CoroutineResult::Return("outer finished".to_string()));
}

#[test]
fn stack_overflow_is_reported_and_the_thread_goes_on() {
    common::in_child_ok("stack_overflow_is_reported_and_the_thread_goes_on", || {
        let mut c: Coroutine<(), (), u64> =
            Builder::new().stack_size(64 * 1024).spawn(|_, ()| common::recurse_forever(0)).unwrap();
        match c.try_resume(()) {
            Err(Error::StackOverflow { stack_size }) => assert_eq!(stack_size, 64 * 1024),
            other => panic!("expected an overflow, got {other:?}"),
        }
        assert!(c.done());
        assert!(matches!(c.try_resume(()), Err(Error::Finished)));
        // The thread keeps working: new coroutines run normally.
        let mut ok: Coroutine<(), u32, u32> = Coroutine::new(|y, ()| {
            y.suspend(1);
            2
        });
        assert_eq!(ok.resume(()), CoroutineResult::Yield(1));
        assert_eq!(ok.resume(()), CoroutineResult::Return(2));
        // `resume` panics, naming the overflow and the size.
        let mut c: Coroutine<(), (), u64> = Coroutine::new(|_, ()| common::recurse_forever(0));
        let msg = catch_unwind(AssertUnwindSafe(|| c.resume(()))).unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap().clone();
        assert!(msg.contains("overflowed its stack of 131072 bytes"), "{msg}");
    });
}

/// The address of a local of the calling frame: where on which stack it runs.
#[inline(never)]
fn here() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

#[test]
fn a_finished_coroutines_stack_serves_the_next_and_overflows_there_are_still_caught() {
    common::in_child_ok("a_finished_coroutines_stack_serves_the_next_and_overflows_there_are_still_caught", || {
        let size = 64 * 1024;
        let mut first: Coroutine<(), (), usize> = Builder::new().stack_size(size).spawn(|_, ()| here()).unwrap();
        let first_at = first.resume(()).as_return().unwrap();
        drop(first);
        // A closure of another size puts the next coroutine's frames at another place on
        // the same stack, so an overflow there is only caught if the stack was tagged anew.
        let ballast = [3u64; 256];
        let mut next: Coroutine<(), usize, u64> = Builder::new()
            .stack_size(size)
            .spawn(move |y, ()| {
                y.suspend(here());
                common::recurse_forever(std::hint::black_box(&ballast)[0])
            })
            .unwrap();
        let next_at = next.resume(()).as_yield().unwrap();
        assert!(first_at.abs_diff(next_at) < size, "the finished coroutine's stack was not reused");
        assert_ne!(first_at, next_at, "the two coroutines should lay out their frames differently");
        assert!(matches!(next.try_resume(()), Err(Error::StackOverflow { stack_size }) if stack_size == size));
        let mut after: Coroutine<(), (), u32> = Builder::new().stack_size(size).spawn(|_, ()| 5).unwrap();
        assert_eq!(after.resume(()), CoroutineResult::Return(5));
    });
}

#[test]
#[cfg_attr(
    bobbin_asan,
    ignore = "AddressSanitizer maps memory of its own as it goes (allocator regions), so the mapping count does not measure bobbin's; tests/asan.rs checks that overflows free their fake stacks"
)]
fn a_thousand_overflows_leak_no_mappings() {
    common::in_child_ok("a_thousand_overflows_leak_no_mappings", || {
        let overflow = || {
            let mut c: Coroutine<(), (), u64> =
                Builder::new().stack_size(32 * 1024).spawn(|_, ()| common::recurse_forever(0)).unwrap();
            assert!(matches!(c.try_resume(()), Err(Error::StackOverflow { .. })));
        };
        // Warm up (signal stack, first slab), then count.
        for _ in 0..300 {
            overflow();
        }
        let before = common::mapping_count();
        for _ in 0..1_000 {
            overflow();
        }
        let after = common::mapping_count();
        assert!(after <= before + 2, "mappings grew from {before} to {after}");
    });
}

#[test]
fn nested_overflow_reports_to_the_right_resumer() {
    common::in_child_ok("nested_overflow_reports_to_the_right_resumer", || {
        let mut outer: Coroutine<(), String, u32> = Coroutine::new(|y, ()| {
            let mut inner: Coroutine<(), (), u64> = Coroutine::new(|_, ()| common::recurse_forever(0));
            let err = inner.try_resume(()).unwrap_err();
            y.suspend(err.to_string());
            99
        });
        match outer.resume(()) {
            CoroutineResult::Yield(msg) => assert!(msg.contains("overflowed"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(outer.resume(()), CoroutineResult::Return(99));
    });
}

#[test]
fn a_real_crash_still_crashes() {
    let out = common::in_child("a_real_crash_still_crashes", || {
        let mut c: Coroutine<(), (), ()> = Coroutine::new(|_, ()| {
            let p = std::hint::black_box(16usize) as *mut u8;
            // SAFETY: deliberately not safe: the write must fault and kill the process.
            unsafe { p.write_volatile(1) };
        });
        c.resume(());
        println!("survived the bad write");
    });
    if let Some(out) = out {
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{out:?}");
    }
}

#[test]
fn touching_the_guard_of_a_suspended_coroutine_is_a_crash_not_an_overflow() {
    // Only the stack the faulting code runs on can overflow: a write into another
    // coroutine's guard region is a wild write, and must not be "recovered" by switching to
    // that coroutine's resumer.
    let out = common::in_child("touching_the_guard_of_a_suspended_coroutine_is_a_crash_not_an_overflow", || {
        const SIZE: usize = 64 * 1024;
        let mut a: Coroutine<(), usize, ()> = Builder::new()
            .stack_size(SIZE)
            .spawn(|y, ()| {
                let local = 0u8;
                y.suspend(std::hint::black_box(&local) as *const u8 as usize);
            })
            .unwrap();
        let CoroutineResult::Yield(local) = a.resume(()) else { panic!("a yields") };
        // The entry frame lies in the stack's top page, so the top is the next page boundary
        // and the guard region lies just below top - SIZE.
        let top = (local | 4095) + 1;
        let in_guard = top - SIZE - 8;
        let mut b: Coroutine<(), (), ()> = Coroutine::new(move |_, ()| {
            // SAFETY: deliberately not safe: the write must fault and kill the process.
            unsafe { (std::hint::black_box(in_guard) as *mut u64).write_volatile(1) };
        });
        let _ = b.try_resume(());
        println!("survived the write into another coroutine's guard");
    });
    if let Some(out) = out {
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{out:?}");
    }
}

#[inline(never)]
fn resumer_frame_marker(c: &mut Coroutine<(), String, ()>) -> String {
    match c.resume(()) {
        CoroutineResult::Yield(s) => s,
        CoroutineResult::Return(()) => String::new(),
    }
}

#[inline(never)]
fn second_resumer_frame_marker(c: &mut Coroutine<(), String, ()>) -> String {
    let bt = resumer_frame_marker(c);
    // Something to do after the call, so it is not made a tail call (which leaves no frame).
    std::hint::black_box(&bt);
    bt
}

/// Backtraces taken inside a coroutine, on its first entry and after a suspend (when the
/// coroutine was entered through its resume address), reach the function that resumed it.
fn check_backtraces_reach_the_resumer(builder: Builder, test: &str) {
    let mut c: Coroutine<(), String, ()> = builder
        .spawn(|y, ()| {
            y.suspend(std::backtrace::Backtrace::force_capture().to_string());
            y.suspend(std::backtrace::Backtrace::force_capture().to_string());
        })
        .unwrap();
    let first = resumer_frame_marker(&mut c);
    let second = second_resumer_frame_marker(&mut c);
    for bt in [&first, &second] {
        assert!(bt.contains("resumer_frame_marker"), "backtrace does not reach the resumer:\n{bt}");
        assert!(bt.contains("bobbin_coroutine_start"), "{bt}");
        assert!(bt.contains(test), "{bt}");
    }
    assert!(second.contains("second_resumer_frame_marker"), "{second}");
}

#[test]
fn backtrace_inside_a_coroutine_reaches_the_resumer() {
    check_backtraces_reach_the_resumer(Builder::new(), "backtrace_inside_a_coroutine_reaches_the_resumer");
}

#[test]
fn backtrace_inside_a_coroutine_with_its_own_control_words_reaches_the_resumer() {
    check_backtraces_reach_the_resumer(
        Builder::new().preserve_fp_control(true),
        "backtrace_inside_a_coroutine_with_its_own_control_words_reaches_the_resumer",
    );
}

/// The current MXCSR, read afresh on every call. (The `_mm_getcsr` intrinsic does not do:
/// the optimiser may take it for a pure function and reuse an earlier reading across a
/// switch, as it does in the AddressSanitizer build.)
#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut value = 0u32;
    // SAFETY: stmxcsr only stores MXCSR into the local.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack, preserves_flags)) };
    value
}

/// The control bits (6-15) of MXCSR.
#[cfg(target_arch = "x86_64")]
fn control() -> u32 {
    mxcsr() & 0xFFC0
}

/// The rounding-control bits (13-14) of MXCSR.
#[cfg(target_arch = "x86_64")]
fn rounding() -> u32 {
    mxcsr() & ROUNDING
}

#[cfg(target_arch = "x86_64")]
#[allow(deprecated)]
fn set_rounding(mode: u32) {
    // SAFETY: changes only the rounding-control bits (13-14) of this thread's MXCSR.
    unsafe { std::arch::x86_64::_mm_setcsr((mxcsr() & !ROUNDING) | mode) };
}

#[cfg(target_arch = "x86_64")]
const ROUNDING: u32 = 0x6000;
#[cfg(target_arch = "x86_64")]
const ROUND_DOWN: u32 = 0x2000;
#[cfg(target_arch = "x86_64")]
const ROUND_UP: u32 = 0x4000;

/// The current FPCR, read afresh on every call.
#[cfg(target_arch = "aarch64")]
fn fpcr() -> u64 {
    let value: u64;
    // SAFETY: reading FPCR has no other effect.
    unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) value, options(nostack, preserves_flags)) };
    value
}

/// FPCR's control bits (all of them: the status flags are in FPSR).
#[cfg(target_arch = "aarch64")]
fn control() -> u32 {
    fpcr() as u32
}

/// The rounding-mode bits (22-23) of FPCR.
#[cfg(target_arch = "aarch64")]
fn rounding() -> u32 {
    (fpcr() as u32) & ROUNDING
}

#[cfg(target_arch = "aarch64")]
fn set_rounding(mode: u32) {
    let value = (fpcr() & !u64::from(ROUNDING)) | u64::from(mode);
    // SAFETY: changes only the rounding-mode bits of this thread's FPCR.
    unsafe { std::arch::asm!("msr fpcr, {}", in(reg) value, options(nostack, preserves_flags)) };
}

#[cfg(target_arch = "aarch64")]
const ROUNDING: u32 = 0xC0_0000;
#[cfg(target_arch = "aarch64")]
const ROUND_DOWN: u32 = 0x80_0000;
#[cfg(target_arch = "aarch64")]
const ROUND_UP: u32 = 0x40_0000;

#[test]
fn rounding_mode_set_inside_does_not_leak_out() {
    let outside = rounding();
    let mut c: Coroutine<(), u32, u32> = Builder::new()
        .preserve_fp_control(true)
        .spawn(|y, ()| {
            set_rounding(ROUND_DOWN);
            let third = std::hint::black_box(1.0f64) / std::hint::black_box(3.0f64);
            y.suspend(rounding());
            // The parent changed its own mode meanwhile; ours is still round-down.
            let mode = rounding();
            let again = std::hint::black_box(1.0f64) / std::hint::black_box(3.0f64);
            assert_eq!(third, again);
            mode
        })
        .unwrap();
    assert_eq!(c.resume(()), CoroutineResult::Yield(ROUND_DOWN));
    assert_eq!(rounding(), outside, "the coroutine's rounding mode leaked out");
    set_rounding(ROUND_UP);
    assert_eq!(c.resume(()), CoroutineResult::Return(ROUND_DOWN));
    assert_eq!(rounding(), ROUND_UP);
    set_rounding(outside);
}

#[test]
fn each_side_keeps_its_own_control_words_over_many_switches() {
    // Rounding modes only: valgrind, which runs this suite too, emulates no other MXCSR
    // control bit.
    const MODES: [u32; 4] = [0, ROUND_DOWN, ROUND_UP, ROUND_DOWN | ROUND_UP];
    let outside = rounding();
    // Before each resume the resumer sets mode i, and the coroutine, once entered, mode
    // i + 1 (never the same), then reports the round it is in.
    let mut c: Coroutine<u32, u32, ()> = Builder::new()
        .preserve_fp_control(true)
        .spawn(|y, mut i: u32| loop {
            let mine = MODES[(i as usize + 1) % 4];
            set_rounding(mine);
            let next = y.suspend(i);
            assert_eq!(rounding(), mine, "the coroutine's words changed while it was suspended");
            i = next;
        })
        .unwrap();
    for i in 0..1000u32 {
        set_rounding(MODES[i as usize % 4]);
        assert_eq!(c.resume(i), CoroutineResult::Yield(i));
        assert_eq!(rounding(), MODES[i as usize % 4], "the coroutine's words leaked out at round {i}");
    }
    // Dropping it unwinds its stack and hands the resumer its own words back.
    set_rounding(ROUND_UP);
    drop(c);
    assert_eq!(rounding(), ROUND_UP, "the dropped coroutine's words leaked out");
    set_rounding(outside);
}

#[test]
fn a_generator_with_its_own_control_words_yields_under_them_and_keeps_them_in() {
    let outside = rounding();
    let g = Generator::with_builder(Builder::new().preserve_fp_control(true), |y| {
        set_rounding(ROUND_DOWN);
        for i in 0..100 {
            y.suspend((i, rounding()));
        }
    })
    .unwrap();
    let mut count = 0;
    for (i, (n, mode)) in g.enumerate() {
        assert_eq!((n, mode), (i, ROUND_DOWN));
        assert_eq!(rounding(), outside, "the generator's rounding mode leaked out");
        count += 1;
    }
    assert_eq!(count, 100);
}

#[test]
fn an_overflow_hands_the_resumer_its_own_rounding_mode_back() {
    common::in_child_ok("an_overflow_hands_the_resumer_its_own_rounding_mode_back", || {
        set_rounding(ROUND_UP);
        let mut c: Coroutine<(), (), u64> = Builder::new()
            .stack_size(64 * 1024)
            .preserve_fp_control(true)
            .spawn(|_, ()| {
                set_rounding(ROUND_DOWN);
                common::recurse_forever(0)
            })
            .unwrap();
        assert!(matches!(c.try_resume(()), Err(Error::StackOverflow { .. })));
        assert_eq!(rounding(), ROUND_UP, "the overflowed coroutine's rounding mode leaked out");
    });
}

#[test]
fn by_default_the_control_words_are_shared_with_the_resumer() {
    let outside = control();
    let mut c: Coroutine<(), (), ()> = Coroutine::new(move |y, ()| {
        set_rounding(ROUND_DOWN);
        y.suspend(());
        set_rounding(outside & ROUNDING);
    });
    c.resume(());
    assert_eq!(rounding(), ROUND_DOWN, "a shared rounding mode was not seen by the resumer");
    c.resume(());
    assert_eq!(control(), outside);
}

#[test]
fn an_overflow_leaves_the_shared_control_words_as_the_faulting_code_had_them() {
    common::in_child_ok("an_overflow_leaves_the_shared_control_words_as_the_faulting_code_had_them", || {
        let masks = control() & !ROUNDING;
        let mut c: Coroutine<(), (), u64> = Builder::new()
            .stack_size(64 * 1024)
            .spawn(|_, ()| {
                set_rounding(ROUND_DOWN);
                common::recurse_forever(0)
            })
            .unwrap();
        assert!(matches!(c.try_resume(()), Err(Error::StackOverflow { .. })));
        // Not the defaults the kernel hands a signal handler, and nothing made up.
        assert_eq!(control(), masks | ROUND_DOWN);
    });
}

#[test]
fn debug_output_describes_state() {
    let mut c: Coroutine<(), (), ()> = Coroutine::new(|_, ()| ());
    assert!(format!("{c:?}").contains("started: false"));
    c.resume(());
    assert!(format!("{c:?}").contains("done: true"));
}

/// A generator suspended in the frame of a function that a panic unwinds is dropped by that
/// unwinding: its own stack must unwind too (the thread's panic count is not its own, so
/// its forced unwinding is no panic inside a destructor), then the first panic goes on.
#[test]
fn a_suspended_generator_dropped_by_a_panic_elsewhere_is_unwound() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let result = {
        let dropped = Rc::clone(&dropped);
        catch_unwind(AssertUnwindSafe(move || {
            let mut g = Generator::new(move |y| {
                let _flag = Flag(dropped);
                y.suspend(1u8);
                y.suspend(2);
            });
            assert_eq!(g.next(), Some(1));
            panic!("outer");
        }))
    };
    assert_eq!(result.unwrap_err().downcast_ref::<&str>(), Some(&"outer"));
    assert!(dropped.get(), "the generator's stack was unwound");
}
