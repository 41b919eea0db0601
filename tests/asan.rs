//! AddressSanitizer and coroutine stacks: ASan is told of every switch, so it neither
//! reports what is right nor misses what is wrong on a coroutine's stack. Built only by the
//! ASan run (`.ci/asan`, which sets `cfg(bobbin_asan)` through `-Zsanitizer=address`);
//! every test runs in a child process, whose stderr holds ASan's reports.
#![cfg(bobbin_asan)]

mod common;

use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bobbin::context::{Context, ContextHandle, Val};
use bobbin::coroutine::Builder;
use bobbin::{Coroutine, CoroutineResult, Error, Generator};
use common::in_child;

/// Runs `body` in a child and asserts that it succeeded without a word from ASan.
fn clean_in_child(name: &str, body: impl FnOnce()) {
    if let Some(out) = in_child(name, body) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {:?}\n{stderr}", out.status);
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"), "no test matched {name}");
        // Errors say "AddressSanitizer", warnings (such as "ASan is ignoring requested
        // __asan_handle_no_return") "ASan".
        assert!(!stderr.contains("AddressSanitizer") && !stderr.contains("ASan"), "ASan spoke:\n{stderr}");
    }
}

/// Runs `body` in a child and returns its stderr, asserting that ASan stopped it.
fn reported_in_child(name: &str, body: impl FnOnce()) -> Option<String> {
    let out = in_child(name, body)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the error went unnoticed:\n{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("NOT REACHED"), "{stderr}");
    Some(stderr)
}

/// Recurses `depth` frames, each with a buffer of its own that it fills and checks around
/// a suspension at the bottom; panics at the bottom instead when `panic_at_bottom`.
#[inline(never)]
fn dig(y: &bobbin::Yielder<u32, u32>, depth: u32, panic_at_bottom: bool) -> u32 {
    let mut buf = [depth as u8; 200];
    black_box(&mut buf);
    let below = if depth == 0 {
        if panic_at_bottom {
            panic!("unwinding through {} buffered frames", buf.len());
        }
        y.suspend(7)
    } else {
        dig(y, depth - 1, panic_at_bottom)
    };
    assert!(buf.iter().all(|&b| b == depth as u8), "a frame's buffer changed across a switch");
    below + u32::from(buf[depth as usize % 200])
}

/// A closure big enough to be copied into the top of its stack with memcpy.
fn big_closure(seed: u8) -> impl FnOnce(&bobbin::Yielder<(), u8>, ()) -> u8 {
    let block = [seed; 2048];
    move |y, ()| {
        let copy = black_box(block);
        y.suspend(copy[5]);
        copy[2047]
    }
}

#[test]
fn switches_unwinding_and_reused_stacks_raise_no_false_report() {
    clean_in_child("switches_unwinding_and_reused_stacks_raise_no_false_report", || {
        for round in 0..20u32 {
            // Buffers deep down, a suspension at the bottom, resumed, then dropped while
            // suspended deep down (the forced unwinding passes every buffered frame).
            let mut c: Coroutine<u32, u32, u32> = Coroutine::new(|y, first: u32| {
                // A panic unwound inside the coroutine, with the redzones of the frames it
                // unwound to clear, then the same depth again over the same addresses.
                let caught = catch_unwind(AssertUnwindSafe(|| dig(y, 40, true)));
                assert!(caught.is_err());
                let mut total = first;
                loop {
                    total = black_box(total + dig(y, 40, false));
                }
            });
            assert_eq!(c.resume(round), CoroutineResult::Yield(7));
            assert_eq!(c.resume(1), CoroutineResult::Yield(7));
            drop(c);
            // The stack goes back to the pool: the next coroutine's closure is copied where
            // the last one's abandoned frames were.
            let mut b: Coroutine<(), u8, u8> = Coroutine::new(big_closure(round as u8));
            assert_eq!(b.resume(()), CoroutineResult::Yield(round as u8));
            assert_eq!(b.resume(()), CoroutineResult::Return(round as u8));
        }
        // Nested: a generator driven from inside a coroutine, each with buffers of its own.
        let mut outer: Coroutine<(), u64, u64> = Coroutine::new(|y, ()| {
            let gen = Generator::new(|g| {
                for i in 0..50u64 {
                    let buf = [i; 64];
                    g.suspend(black_box(buf)[63]);
                }
            });
            let mut sum = 0;
            for v in gen {
                sum += v;
                y.suspend(sum);
            }
            sum
        });
        let mut last = 0;
        while let CoroutineResult::Yield(v) = outer.resume(()) {
            last = v;
        }
        assert_eq!(last, 49 * 50 / 2);
    });
}

#[test]
fn green_threads_raise_no_false_report() {
    clean_in_child("green_threads_raise_no_false_report", || {
        // On one thread: channels between green threads, and a panic caught on each.
        let total = bobbin::run(|| {
            let (tx, rx) = bobbin::sync::bounded::<[u8; 512]>(2);
            let workers: Vec<_> = (0..8u8)
                .map(|i| {
                    let tx = tx.clone();
                    bobbin::spawn(move || {
                        for _ in 0..20 {
                            tx.send([i; 512]).unwrap();
                            bobbin::yield_now();
                        }
                        catch_unwind(|| panic!("green thread {i} unwinds")).unwrap_err();
                    })
                })
                .collect();
            drop(tx);
            let total: u64 = rx.iter().map(|block| block.iter().map(|&b| u64::from(b)).sum::<u64>()).sum();
            for w in workers {
                w.join().unwrap();
            }
            total
        });
        assert_eq!(total, (0..8u64).sum::<u64>() * 20 * 512);
        // On two workers: green threads that panic (caught) and park, then a runtime
        // dropped under them, which unwinds every parked stack.
        let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
        let (tx, rx) = bobbin::sync::channel::<()>();
        let (started_tx, started_rx) = bobbin::sync::channel::<()>();
        for i in 0..100u32 {
            let rx = rx.clone();
            let started_tx = started_tx.clone();
            rt.spawn(move || {
                let buf = black_box([i; 100]);
                catch_unwind(|| panic!("green thread {i} unwinds")).unwrap_err();
                started_tx.send(()).unwrap();
                let _ = rx.recv();
                black_box(buf);
            });
        }
        for _ in 0..100 {
            started_rx.recv().unwrap();
        }
        drop(rt);
        drop(tx);
    });
}

#[test]
fn ended_coroutines_give_their_fake_stacks_back() {
    clean_in_child("ended_coroutines_give_their_fake_stacks_back", || {
        let vm_size = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap().to_owned();
            line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
        };
        // Each coroutine uses its fake stack (a frame with a buffer whose address is
        // taken), which ASan maps when first used: 700 KiB or more per coroutine.
        let finished = || {
            let mut c: Coroutine<u64, u64, u64> = Coroutine::new(|y, _: u64| {
                let a = black_box([3u64; 64]);
                y.suspend(a[1]) + a[2]
            });
            c.resume(0);
            assert_eq!(c.resume(3), CoroutineResult::Return(6));
        };
        let dropped_suspended = || {
            let mut c: Coroutine<(), u64, ()> = Coroutine::new(|y, ()| {
                let a = black_box([3u64; 64]);
                y.suspend(a[1]);
            });
            c.resume(());
        };
        let overflowed = || {
            let mut c: Coroutine<(), (), u64> =
                Builder::new().stack_size(32 * 1024).spawn(|_, ()| common::recurse_forever(0)).unwrap();
            assert!(matches!(c.try_resume(()), Err(Error::StackOverflow { .. })));
        };
        let cases: [(&str, &dyn Fn()); 3] =
            [("finished", &finished), ("dropped while suspended", &dropped_suspended), ("overflowed", &overflowed)];
        for (what, case) in cases {
            for _ in 0..50 {
                case();
            }
            let before = vm_size();
            for _ in 0..400 {
                case();
            }
            let grown = vm_size().saturating_sub(before);
            // Kept fake stacks would add 280 MB or more here.
            assert!(grown < 32 << 20, "{what}: virtual memory grew by {grown} bytes over 400 coroutines");
        }
    });
}

#[test]
fn a_use_after_free_on_a_coroutine_stack_is_reported() {
    if let Some(stderr) = reported_in_child("a_use_after_free_on_a_coroutine_stack_is_reported", || {
        let mut c: Coroutine<(), (), u8> = Coroutine::new(|y, ()| {
            let boxed = Box::new([9u8; 32]);
            let dangling: *const u8 = &boxed[4];
            y.suspend(());
            drop(boxed);
            // SAFETY: deliberately not safe: reads freed memory, which ASan must report.
            unsafe { dangling.read_volatile() }
        });
        c.resume(());
        c.resume(());
        println!("NOT REACHED");
    }) {
        assert!(stderr.contains("ERROR: AddressSanitizer: heap-use-after-free"), "{stderr}");
        // The report's stack trace walks the coroutine's frames.
        assert!(stderr.contains("a_use_after_free_on_a_coroutine_stack_is_reported"), "{stderr}");
    }
}

#[test]
fn a_stack_buffer_overflow_on_a_coroutine_stack_is_reported() {
    if let Some(stderr) = reported_in_child("a_stack_buffer_overflow_on_a_coroutine_stack_is_reported", || {
        let mut c: Coroutine<usize, (), u8> = Coroutine::new(|y, past_end: usize| {
            let buf = black_box([1u8; 24]);
            y.suspend(());
            // SAFETY: deliberately not safe: reads past the buffer, which ASan must report.
            unsafe { buf.as_ptr().add(black_box(past_end)).read_volatile() }
        });
        c.resume(24);
        c.resume(0);
        println!("NOT REACHED");
    }) {
        assert!(stderr.contains("ERROR: AddressSanitizer: stack-buffer-overflow"), "{stderr}");
    }
}

/// The two contexts of the seed-API test, where the child finds them.
struct Pair {
    parent: ContextHandle,
    child: ContextHandle,
}

/// Swaps back to the parent after each of `rounds` steps, each of which fills a buffer and
/// unwinds a caught panic on this stack; the last step leaves with `Context::set` when
/// `abandon`, so that the function never returns.
extern "C" fn seed_child(pair: *mut Pair, rounds: u64, abandon: bool) -> u64 {
    let mut sum = 0;
    for i in 0..rounds {
        let step = catch_unwind(|| {
            let buf = black_box([i as u8; 300]);
            if i % 2 == 0 {
                panic!("step {i} unwinds");
            }
            u64::from(buf[299])
        });
        sum += step.unwrap_or(1);
        // SAFETY: the parent is suspended in its swap into this context and outlives it.
        unsafe {
            if abandon && i + 1 == rounds {
                Context::set(&(*pair).parent);
            }
            Context::swap(&mut (*pair).child, &mut (*pair).parent);
        }
    }
    sum
}

#[test]
fn seed_contexts_raise_no_false_report() {
    clean_in_child("seed_contexts_raise_no_false_report", || {
        let mut stack = bobbin::stack::Stack::new(64 * 1024).unwrap();
        for abandon in [false, true, false] {
            let mut pair = Box::new(Pair { parent: ContextHandle::new(), child: ContextHandle::new() });
            let p: *mut Pair = &mut *pair;
            let args = [Val::CPtr(p as *const _), Val::U64(6), Val::Bool(abandon)];
            Context::init(stack.words_mut(), &mut pair.child, seed_child as *const () as usize, &args).unwrap();
            for _ in 0..6 {
                // SAFETY: the child runs on `stack`, which outlives it, and swaps back here.
                unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
            }
            if !abandon {
                // SAFETY: as above; this time the function returns into the backstop.
                unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
                assert_eq!(pair.child.get_retval_gp(0), 3 + (1 + 3 + 5));
                // Entering the finished context again comes straight back.
                // SAFETY: a finished context switches back to its parent at once.
                unsafe { Context::swap(&mut (*p).parent, &mut (*p).child) };
            }
        }
    });
}
