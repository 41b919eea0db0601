//! Coroutines and generators that a green thread runs, parking or yielding that green
//! thread from their own stacks (the relay of `engine/relay.rs`).

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bobbin::coroutine::Builder;
use bobbin::sync::{bounded, channel, Mutex};
use bobbin::{run, sleep, spawn, yield_now, Coroutine, CoroutineResult, Generator, Runtime};

/// A generator that yields what it receives until the channel closes.
fn forwarding(rx: bobbin::sync::Receiver<u32>) -> Generator<u32> {
    Generator::new(move |y| {
        while let Ok(v) = rx.recv() {
            y.suspend(v);
        }
    })
}

#[test]
fn a_generator_receives_from_a_channel_fed_by_another_green_thread() {
    let got = run(|| {
        let (tx, rx) = channel::<u32>();
        let feeder = spawn(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
                // The generator's receive finds the channel empty and parks most times.
                yield_now();
            }
        });
        let got: Vec<u32> = forwarding(rx).collect();
        feeder.join().unwrap();
        got
    });
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn a_generator_receives_on_a_two_worker_runtime() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let sums = rt.block_on(|| {
        let handles: Vec<_> = (0..8u32)
            .map(|t| {
                let (tx, rx) = channel::<u32>();
                let feeder = spawn(move || {
                    for i in 0..200 {
                        tx.send(t * 1000 + i).unwrap();
                        if i % 3 == 0 {
                            sleep(Duration::from_micros(50));
                        }
                    }
                });
                let consumer = spawn(move || forwarding(rx).map(u64::from).sum::<u64>());
                (feeder, consumer)
            })
            .collect();
        handles
            .into_iter()
            .map(|(f, c)| {
                f.join().unwrap();
                c.join().unwrap()
            })
            .collect::<Vec<u64>>()
    });
    let expect: Vec<u64> = (0..8u64).map(|t| (0..200u64).map(|i| t * 1000 + i).sum()).collect();
    assert_eq!(sums, expect);
}

#[test]
fn a_generator_that_sleeps_lets_other_green_threads_run_meanwhile() {
    let log = run(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let other = {
            let log = Rc::clone(&log);
            // Spawned first, but runs only once this green thread gives control back.
            spawn(move || log.borrow_mut().push("other"))
        };
        let mut g = {
            let log = Rc::clone(&log);
            Generator::new(move |y| {
                sleep(Duration::from_millis(20));
                log.borrow_mut().push("generator woke");
                y.suspend(1u8);
            })
        };
        assert_eq!(g.next(), Some(1));
        drop(g);
        other.join().unwrap();
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    // Blocking the OS thread in the sleep would have run the generator to its end first.
    assert_eq!(log, ["other", "generator woke"]);
}

#[test]
fn yield_now_inside_a_generator_takes_turns_with_other_green_threads() {
    let log = run(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let other = {
            let log = Rc::clone(&log);
            spawn(move || {
                for _ in 0..3 {
                    log.borrow_mut().push('b');
                    yield_now();
                }
            })
        };
        let g = {
            let log = Rc::clone(&log);
            Generator::new(move |y| {
                for i in 0..3 {
                    log.borrow_mut().push('a');
                    yield_now();
                    y.suspend(i);
                }
            })
        };
        assert_eq!(g.collect::<Vec<_>>(), [0, 1, 2]);
        other.join().unwrap();
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    assert_eq!(log.into_iter().collect::<String>(), "ababab");
}

#[test]
fn a_generator_driving_a_generator_that_receives_parks_through_both() {
    let got = run(|| {
        let (tx, rx) = channel::<u32>();
        let feeder = spawn(move || {
            for i in 1..=50 {
                tx.send(i).unwrap();
                yield_now();
            }
        });
        // Three stacks deep: the green thread runs `outer`, which runs `inner`, which parks.
        let outer = Generator::new(move |y| {
            for v in forwarding(rx) {
                y.suspend(v * 2);
            }
        });
        let got: Vec<u32> = outer.collect();
        feeder.join().unwrap();
        got
    });
    assert_eq!(got, (1..=50).map(|i| i * 2).collect::<Vec<_>>());
}

#[test]
fn a_coroutine_driven_by_a_green_thread_parks_it() {
    let total = run(|| {
        let (tx, rx) = channel::<u32>();
        let feeder = spawn(move || {
            for i in 0..10 {
                yield_now();
                tx.send(i).unwrap();
            }
        });
        let mut adder = Coroutine::new(move |y, mut scale: u32| {
            let mut total = 0;
            for _ in 0..10 {
                total += rx.recv().unwrap() * scale;
                scale = y.suspend(total);
            }
            total
        });
        let mut last = None;
        for scale in 1.. {
            match adder.resume(scale) {
                CoroutineResult::Yield(_) => {}
                CoroutineResult::Return(total) => {
                    last = Some(total);
                    break;
                }
            }
        }
        feeder.join().unwrap();
        last.unwrap()
    });
    // The i-th value (0-based) is scaled by the input of the resume that received it.
    assert_eq!(total, (0..10).map(|i| i * (i + 1)).sum::<u32>());
}

#[test]
fn a_generator_waits_for_a_bobbin_mutex() {
    let log = run(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let lock = Arc::new(Mutex::new(0u32));
        let guard = lock.lock().unwrap();
        let g = {
            let (lock, log) = (Arc::clone(&lock), Rc::clone(&log));
            Generator::new(move |y| {
                let mut v = lock.lock().unwrap();
                log.borrow_mut().push("generator locked");
                *v += 1;
                y.suspend(*v);
            })
        };
        let consumer = spawn(move || g.collect::<Vec<u32>>());
        // Let the consumer start and park in the generator's lock.
        yield_now();
        log.borrow_mut().push("unlocking");
        drop(guard);
        assert_eq!(consumer.join().unwrap(), [1]);
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    assert_eq!(log, ["unlocking", "generator locked"]);
}

#[test]
fn a_send_to_a_full_channel_and_a_join_inside_a_generator_park_the_green_thread() {
    let got = run(|| {
        let (tx, rx) = bounded::<u32>(1);
        let receiver = spawn(move || rx.iter().collect::<Vec<u32>>());
        let worker = spawn(|| {
            yield_now();
            7u32
        });
        let g = Generator::new(move |y| {
            for i in 0..5 {
                tx.send(i).unwrap(); // full after the first: parks until the receiver runs
            }
            drop(tx);
            y.suspend(worker.join().unwrap());
        });
        let joined: Vec<u32> = g.collect();
        (joined, receiver.join().unwrap())
    });
    assert_eq!(got, (vec![7], vec![0, 1, 2, 3, 4]));
}

#[test]
fn a_destructor_that_parks_while_a_suspended_generator_is_dropped_parks_the_green_thread() {
    struct SendOnDrop(bobbin::sync::Sender<u32>);
    impl Drop for SendOnDrop {
        fn drop(&mut self) {
            // The channel is full: this send parks, from the generator's stack, while
            // dropping the generator unwinds it.
            self.0.send(99).unwrap();
        }
    }
    let got = run(|| {
        let (tx, rx) = bounded::<u32>(1);
        tx.send(1).unwrap();
        let mut g = Generator::new(move |y| {
            let _guard = SendOnDrop(tx);
            y.suspend(0u8);
            y.suspend(1);
        });
        assert_eq!(g.next(), Some(0));
        let receiver = spawn(move || rx.iter().collect::<Vec<u32>>());
        drop(g); // returns once the receiver has made room
        receiver.join().unwrap()
    });
    assert_eq!(got, [1, 99]);
}

#[test]
fn a_generator_reading_a_socket_parks_its_green_thread() {
    use std::io::{Read, Write};
    let got = run(|| {
        let (mut a, mut b) = bobbin::net::unix::UnixStream::pair().unwrap();
        let writer = spawn(move || {
            for chunk in [b"ab", b"cd"] {
                yield_now();
                a.write_all(chunk).unwrap();
            }
        });
        // Each read finds nothing yet and waits for readiness, parked through the relay.
        let chunks = Generator::new(move |y| {
            let mut buf = [0u8; 2];
            while let Ok(n @ 1..) = b.read(&mut buf) {
                y.suspend(buf[..n].to_vec());
            }
        });
        let got: Vec<u8> = chunks.flatten().collect();
        writer.join().unwrap();
        got
    });
    assert_eq!(got, b"abcd");
}

/// Values a relay could be mistaken for if it were told by the yielded word: all ones (the
/// relay's marker word), the top bit (its tag on the stack pointer) and the states of a
/// stack pointer word.
const MARKER_LIKE: [u64; 7] = [u64::MAX, 1 << 63, (1 << 63) | 1, 0, 1, 2, u64::MAX - 1];

/// A generator that parks before every item, yielding `MARKER_LIKE` in a given mode.
fn parking_marker_yields(builder: Builder) -> Vec<u64> {
    run(move || {
        let (tx, rx) = channel::<u64>();
        let feeder = spawn(move || {
            for v in MARKER_LIKE {
                yield_now();
                tx.send(v).unwrap();
            }
        });
        let g = Generator::with_builder(builder, move |y| {
            while let Ok(v) = rx.recv() {
                y.suspend(v);
            }
        })
        .unwrap();
        let got: Vec<u64> = g.collect();
        feeder.join().unwrap();
        got
    })
}

#[test]
fn values_equal_to_the_relay_markers_are_yielded_between_relays() {
    assert_eq!(parking_marker_yields(Builder::new()), MARKER_LIKE);
    assert_eq!(parking_marker_yields(Builder::new().preserve_fp_control(true)), MARKER_LIKE);
}

#[test]
fn a_generator_that_keeps_its_own_control_words_parks_too() {
    let got = run(|| {
        let (tx, rx) = channel::<u32>();
        let feeder = spawn(move || {
            for i in 0..5 {
                yield_now();
                tx.send(i).unwrap();
            }
        });
        // Its switches go through the entry that swaps the control words, which sits on
        // the resumer's stack: the relay finds the green thread's stack all the same.
        let g = Generator::with_builder(Builder::new().preserve_fp_control(true), move |y| {
            while let Ok(v) = rx.recv() {
                y.suspend(v);
            }
        })
        .unwrap();
        let got: Vec<u32> = g.collect();
        feeder.join().unwrap();
        got
    });
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

#[test]
fn a_panic_in_a_generator_after_it_parked_comes_out_of_next() {
    let message = run(|| {
        let (tx, rx) = channel::<&'static str>();
        let mut g = Generator::new(move |y| {
            let what = rx.recv().unwrap();
            y.suspend(0u8);
            panic!("{what}");
        });
        let feeder = spawn(move || tx.send("after the park").unwrap());
        assert_eq!(g.next(), Some(0));
        let payload = catch_unwind(AssertUnwindSafe(|| g.next())).expect_err("the generator panicked");
        assert!(g.done());
        assert_eq!(g.next(), None);
        feeder.join().unwrap();
        payload.downcast_ref::<String>().cloned().unwrap_or_default()
    });
    assert_eq!(message, "after the park");
}

#[test]
fn a_generator_suspended_on_one_green_thread_parks_another_that_resumes_it() {
    let got = run(|| {
        let (tx, rx) = channel::<u32>();
        let g = Rc::new(RefCell::new(Generator::new(move |y| {
            y.suspend(1u32);
            // Pulled by the second green thread from here on.
            y.suspend(rx.recv().unwrap());
        })));
        let first = g.borrow_mut().next();
        let second = {
            let g = Rc::clone(&g);
            spawn(move || g.borrow_mut().next())
        };
        yield_now(); // the second green thread parks in the generator's receive
        tx.send(2).unwrap();
        let second = second.join().unwrap();
        let third = g.borrow_mut().next();
        (first, second, third)
    });
    assert_eq!(got, (Some(1), Some(2), None));
}

#[test]
fn a_green_thread_parked_in_a_generator_is_unwound_when_its_runtime_drops() {
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let parked = Arc::new(AtomicBool::new(false));
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = channel::<u32>();
    let handle = {
        let (dropped, parked) = (Arc::clone(&dropped), Arc::clone(&parked));
        rt.spawn(move || {
            let mut g = Generator::new(move |y| {
                let _flag = Flag(dropped);
                parked.store(true, Ordering::SeqCst);
                y.suspend(rx.recv().unwrap_or(0));
            });
            g.next()
        })
    };
    while !parked.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // The receive parks for good (the sender stays alive); dropping the runtime unwinds
    // the green thread, and with it the generator that parked it.
    drop(rt);
    assert!(dropped.load(Ordering::SeqCst), "the generator's stack was unwound");
    let err = handle.join().unwrap_err();
    assert!(!err.is_panic(), "{err}");
    drop(tx);
}

/// Outside any green thread nothing is relayed: the receive blocks the OS thread, as it
/// always did (a guard against a regression; this one passes on main too).
#[test]
fn a_generator_outside_any_green_thread_blocks_its_os_thread() {
    let (tx, rx) = channel::<u32>();
    let sender = std::thread::spawn(move || {
        for i in 0..5 {
            std::thread::sleep(Duration::from_millis(1));
            tx.send(i).unwrap();
        }
    });
    assert_eq!(forwarding(rx).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    sender.join().unwrap();
}
