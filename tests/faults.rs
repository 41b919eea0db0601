//! Fault injection: memory exhaustion, thread spawn failure, panicking destructors during
//! forced unwinding, signals during switches, fork with suspended coroutines, and that no
//! message already sent is lost when things fail. Each fault runs in a child process.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bobbin::coroutine::Builder;
use bobbin::sync::channel;
use bobbin::{Coroutine, CoroutineResult, Error, Generator, Runtime};
use common::{in_child, in_child_ok};

/// Virtual memory of this process, in bytes.
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// Sets the soft address-space limit (the hard one stays, so it can be raised again).
fn limit_address_space(bytes: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on valid rlimit structs.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut lim), 0);
        lim.rlim_cur = bytes;
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &lim), 0);
    }
}

fn unlimit_address_space() {
    limit_address_space(libc::RLIM_INFINITY);
}

/// Waits until this process's thread named `name` is asleep (state S in its stat file).
fn wait_for_idle_thread(name: &str) {
    for _ in 0..6_000 {
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == name && common::thread_state(&task.path()) == Some('S') {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("thread {name} never went idle");
}

/// Waits until this process has at most `n` threads; panics, naming them, if that takes
/// longer than a minute (a hang guard, not a timing check: a thread that has been joined
/// leaves the list within microseconds).
fn wait_for_threads(n: usize) {
    let tasks = || std::fs::read_dir("/proc/self/task").unwrap().flatten().collect::<Vec<_>>();
    for _ in 0..12_000 {
        if tasks().len() <= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let names: Vec<String> = tasks()
        .iter()
        .map(|t| std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().trim().to_string())
        .collect();
    panic!("{} threads still alive after a minute, expected at most {n}: {names:?}", names.len());
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn out_of_memory_for_stacks_is_an_error_at_every_layer() {
    if common::emulated() {
        common::note_emulated(
            "out_of_memory_for_stacks_is_an_error_at_every_layer",
            "not run: qemu-user ignores RLIMIT_AS",
        );
        return;
    }
    in_child_ok("out_of_memory_for_stacks_is_an_error_at_every_layer", || {
        // A runtime started while memory was plentiful; its worker has no stacks yet. Wait
        // until the worker thread is up and idle: starting a thread maps memory too.
        let rt = Runtime::builder().workers(1).build().unwrap();
        wait_for_idle_thread("bobbin-worker-0");
        limit_address_space(vm_size() + 4 * 1024 * 1024);

        let err = Builder::new().spawn(|_, ()| ()).map(|_: Coroutine<(), (), ()>| ()).unwrap_err();
        assert!(matches!(err, Error::StackAllocation { .. }), "{err:?}");
        assert!(err.to_string().contains("could not allocate a stack"), "{err}");

        let panicked = std::panic::catch_unwind(|| Coroutine::<(), (), ()>::new(|_, ()| ())).unwrap_err();
        assert!(message(panicked.as_ref()).contains("could not allocate a stack"), "{}", message(panicked.as_ref()));
        let panicked = std::panic::catch_unwind(|| Generator::<u8>::new(|_| ()).count()).unwrap_err();
        assert!(message(panicked.as_ref()).contains("could not allocate a stack"));
        let panicked = std::panic::catch_unwind(|| bobbin::run(|| 1)).unwrap_err();
        assert!(message(panicked.as_ref()).contains("could not"), "{}", message(panicked.as_ref()));

        // A runtime task that cannot get a stack fails its joiner, not its worker.
        let err = rt.spawn(|| 1).join().unwrap_err();
        assert!(err.message().unwrap().contains("could not start the green thread"), "{err}");

        unlimit_address_space();
        assert_eq!(rt.spawn(|| 5).join().unwrap(), 5, "the worker survived");
        let mut co: Coroutine<(), (), u8> = Coroutine::new(|_, ()| 3);
        assert_eq!(co.resume(()), CoroutineResult::Return(3));
    });
}

#[test]
#[cfg_attr(
    bobbin_asan,
    ignore = "AddressSanitizer maps an 11 MiB fake stack for every new thread and dies when the address-space limit refuses it, before the spawn can fail"
)]
fn thread_spawn_failure_in_the_runtime_builder_is_an_error() {
    if common::emulated() {
        common::note_emulated(
            "thread_spawn_failure_in_the_runtime_builder_is_an_error",
            "not run: qemu-user ignores RLIMIT_AS",
        );
        return;
    }
    in_child_ok("thread_spawn_failure_in_the_runtime_builder_is_an_error", || {
        // Room for a few thread stacks (2 MiB each) but not for 64.
        limit_address_space(vm_size() + 12 * 1024 * 1024);
        let err = Runtime::builder().workers(64).build().unwrap_err();
        unlimit_address_space();
        assert!(matches!(err, Error::ThreadSpawn(_)), "{err:?}");
        assert!(err.to_string().contains("could not start a worker thread"), "{err}");
        // The workers that did start were stopped and joined: only this thread is left
        // (the test harness runs the test on a thread of its own, plus the main thread).
        // A joined thread can still be listed for a moment (the join returns when the
        // kernel clears its thread id, before the thread is reaped), so this waits until
        // the list is down to those two; workers left running would keep it longer.
        wait_for_threads(2);
        assert_eq!(Runtime::builder().workers(2).build().unwrap().block_on(|| 9), 9);
    });
}

/// In the parent (`out` is the child's output): the child died of SIGABRT, said `message` on
/// stderr, and did not get past the point that should abort it.
fn assert_aborted_with(out: Option<std::process::Output>, message: &str) {
    if let Some(out) = out {
        use std::os::unix::process::ExitStatusExt;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}\n{stderr}", out.status);
        assert!(stderr.contains(message), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("NOT REACHED"));
    }
}

struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("destructor failed during unwinding");
    }
}

#[test]
fn a_destructor_panicking_during_forced_unwinding_aborts_with_its_message() {
    let out = in_child("a_destructor_panicking_during_forced_unwinding_aborts_with_its_message", || {
        let mut co: Coroutine<(), (), ()> = Coroutine::new(|y, ()| {
            let _bomb = PanicOnDrop;
            y.suspend(());
        });
        assert_eq!(co.resume(()), CoroutineResult::Yield(()));
        drop(co); // the forced unwinding runs PanicOnDrop::drop
        println!("NOT REACHED");
    });
    assert_aborted_with(out, "destructor failed during unwinding");
}

/// Suspends from its destructor: what a coroutine does if it tries to suspend while it is
/// unwound because it was dropped.
struct SuspendOnDrop<'a>(&'a bobbin::Yielder<(), ()>);

impl Drop for SuspendOnDrop<'_> {
    fn drop(&mut self) {
        self.0.suspend(());
    }
}

#[test]
fn a_destructor_suspending_during_forced_unwinding_aborts_with_a_message() {
    let out = in_child("a_destructor_suspending_during_forced_unwinding_aborts_with_a_message", || {
        let mut co: Coroutine<(), (), ()> = Coroutine::new(|y, ()| {
            let _guard = SuspendOnDrop(y);
            y.suspend(());
        });
        assert_eq!(co.resume(()), CoroutineResult::Yield(()));
        drop(co); // the forced unwinding runs SuspendOnDrop::drop
        println!("NOT REACHED");
    });
    assert_aborted_with(out, "destructor tried to suspend a coroutine while it was being dropped");
}

/// Counts its drops in a shared counter.
struct Counted(std::rc::Rc<std::cell::Cell<u32>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn catching_the_forced_unwinding_and_suspending_again_resumes_the_unwinding() {
    in_child_ok("catching_the_forced_unwinding_and_suspending_again_resumes_the_unwinding", || {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        let drops = std::rc::Rc::new(std::cell::Cell::new(0));
        let (outer, inner, yielded) = (Counted(drops.clone()), Counted(drops.clone()), drops.clone());
        let mut co: Coroutine<(), Counted, ()> = Coroutine::new(move |y, ()| {
            let _outer = outer;
            let caught = catch_unwind(AssertUnwindSafe(|| {
                let _inner = inner;
                y.suspend(Counted(yielded.clone()));
            }));
            assert!(caught.is_err(), "the drop unwinds the suspended coroutine");
            // Suspend again, as generator code that swallows panics might: the value is
            // dropped and the unwinding goes on from here.
            y.suspend(Counted(yielded));
            unreachable!("a dropped coroutine is never resumed with an input");
        });
        match co.resume(()) {
            CoroutineResult::Yield(v) => drop(v),
            CoroutineResult::Return(()) => unreachable!(),
        }
        assert_eq!(drops.get(), 1);
        drop(co);
        // The first yielded value, `inner`, the second yielded value and `outer`.
        assert_eq!(drops.get(), 4);
    });
}

static CAUGHT_TOKEN_DROPS: AtomicUsize = AtomicUsize::new(0);

/// A zero-sized value (it crosses the switch as the word, not by address) that counts its
/// drops.
struct Token;

impl Drop for Token {
    fn drop(&mut self) {
        CAUGHT_TOKEN_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_zero_sized_value_yielded_during_the_forced_unwinding_is_dropped_once() {
    in_child_ok("a_zero_sized_value_yielded_during_the_forced_unwinding_is_dropped_once", || {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        let mut co: Coroutine<(), Token, ()> = Coroutine::new(move |y, ()| {
            let caught = catch_unwind(AssertUnwindSafe(|| {
                y.suspend(Token);
            }));
            assert!(caught.is_err(), "the drop unwinds the suspended coroutine");
            y.suspend(Token);
            unreachable!("a dropped coroutine is never resumed with an input");
        });
        assert!(matches!(co.resume(()), CoroutineResult::Yield(Token)));
        assert_eq!(CAUGHT_TOKEN_DROPS.load(Ordering::SeqCst), 1);
        drop(co);
        // The resumer drops the second token, which the caught unwinding yielded.
        assert_eq!(CAUGHT_TOKEN_DROPS.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_destructor_panicking_after_a_finished_body_is_reported_by_resume() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| {
        let _bomb = PanicOnDrop;
    });
    let err = co.try_resume(()).unwrap_err();
    assert!(matches!(&err, Error::Panicked(p) if message(p.as_ref()) == "destructor failed during unwinding"));
    assert!(matches!(co.try_resume(()), Err(Error::Finished)));
}

static ALARMS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_alarm(_: libc::c_int) {
    ALARMS.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn signals_arriving_while_coroutines_switch_change_nothing() {
    in_child_ok("signals_arriving_while_coroutines_switch_change_nothing", || {
        // SAFETY: installing an async-signal-safe handler (one atomic add) for SIGALRM and
        // arming a 100 µs interval timer.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_alarm as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()), 0);
            let t = libc::timeval { tv_sec: 0, tv_usec: 100 };
            let timer = libc::itimerval { it_interval: t, it_value: t };
            assert_eq!(libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()), 0);
        }
        // Switch until plenty of signals have landed (bounded, in case none ever do).
        let mut rounds = 0u64;
        while ALARMS.load(Ordering::Relaxed) < 200 && rounds < 1_000_000 {
            let n = 2_000u64;
            let sum: u64 =
                Generator::new(move |y| (0..n).for_each(|i| y.suspend(i as f64 * 0.5))).map(|x| (x * 2.0) as u64).sum();
            assert_eq!(sum, n * (n - 1) / 2);
            let total = bobbin::run(|| {
                let hs: Vec<_> = (0..20u64)
                    .map(|i| {
                        bobbin::spawn(move || {
                            bobbin::yield_now();
                            i
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            });
            assert_eq!(total, 190);
            rounds += 1;
        }
        // SAFETY: disarming the timer.
        unsafe {
            let zero = libc::itimerval {
                it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
                it_value: libc::timeval { tv_sec: 0, tv_usec: 0 },
            };
            libc::setitimer(libc::ITIMER_REAL, &zero, std::ptr::null_mut());
        }
        let alarms = ALARMS.load(Ordering::Relaxed);
        assert!(alarms > 10, "only {alarms} signals arrived in {rounds} rounds");
        println!("{alarms} SIGALRMs during {rounds} rounds");
    });
}

#[test]
fn fork_with_suspended_coroutines_leaves_a_usable_child() {
    in_child_ok("fork_with_suspended_coroutines_leaves_a_usable_child", || {
        let mut suspended: Vec<Coroutine<u64, u64, u64>> = (0..3)
            .map(|k| {
                let mut co = Coroutine::new(move |y, x: u64| y.suspend(x + k) + 100);
                assert_eq!(co.resume(1), CoroutineResult::Yield(1 + k));
                co
            })
            .collect();
        // SAFETY: fork in a process whose only other threads belong to the test harness;
        // the child uses only this thread and exits with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // New coroutines, generators and a scheduler work in the child...
                let mut co: Coroutine<u64, u64, u64> = Coroutine::new(|y, x| y.suspend(x * 2) * 3);
                assert_eq!(co.resume(5), CoroutineResult::Yield(10));
                assert_eq!(co.resume(7), CoroutineResult::Return(21));
                assert_eq!(Generator::new(|y| (0..100u32).for_each(|i| y.suspend(i))).sum::<u32>(), 4950);
                assert_eq!(bobbin::run(|| bobbin::spawn(|| 4).join().unwrap()), 4);
                // ...and so does the child's copy of a coroutine suspended before the fork.
                assert_eq!(suspended[1].resume(10), CoroutineResult::Return(110));
            }))
            .is_ok();
            // SAFETY: leaving the forked child without running the harness's exit path.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "forked child failed: {status:#x}");
        // The parent's coroutines are untouched by the child's use of its copies.
        for (k, co) in suspended.iter_mut().enumerate() {
            assert_eq!(co.resume(10), CoroutineResult::Return(110));
            assert!(co.done(), "coroutine {k}");
        }
    });
}

#[test]
fn messages_sent_before_a_failure_are_not_lost() {
    // A producer that panics after sending: everything it sent arrives, then the channel
    // reports it disconnected.
    let (tx, rx) = channel::<u32>();
    let got = bobbin::run(move || {
        let producer = bobbin::spawn(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
            panic!("producer failed");
        });
        assert!(producer.join().is_err());
        rx.iter().collect::<Vec<u32>>()
    });
    assert_eq!(got, (0..100).collect::<Vec<u32>>());

    // Messages sent by green threads of a runtime that is then dropped stay in the channel
    // for a receiver outside it; parked receivers inside it are unwound.
    let (tx, rx) = channel::<u32>();
    let (_never_tx, never_rx) = channel::<()>();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let senders: Vec<_> = (0..4u32)
        .map(|k| {
            let tx = tx.clone();
            let never_rx = never_rx.clone();
            rt.spawn(move || {
                for i in 0..250 {
                    tx.send(k * 1000 + i).unwrap();
                }
                let _ = never_rx.recv(); // parked until the runtime is dropped
            })
        })
        .collect();
    drop(tx);
    let mut got: Vec<u32> = rx.iter().take(1000).collect();
    drop(rt);
    for s in senders {
        assert!(s.join().is_err(), "the parked sender was unwound");
    }
    assert!(rx.try_recv().is_err(), "nothing beyond what was sent");
    got.sort_unstable();
    let expected: Vec<u32> = (0..4u32).flat_map(|k| (0..250).map(move |i| k * 1000 + i)).collect();
    assert_eq!(got, expected);
}

/// A SIGUSR1 handler that needs far more stack than a small coroutine has.
extern "C" fn deep_handler(_: libc::c_int) {
    let big = [1u8; 64 * 1024];
    std::hint::black_box(&big);
}

/// Whether `sig` is blocked on the calling thread now.
fn blocked(sig: libc::c_int) -> bool {
    // SAFETY: querying the calling thread's mask into a valid sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut set), 0);
        libc::sigismember(&set, sig) == 1
    }
}

#[test]
#[cfg_attr(
    bobbin_asan,
    ignore = "under AddressSanitizer the handler's 64 KiB frame is allocated by ASan's own code, and \
              an overflow there is not a recoverable guard hit (the child dies of SIGSEGV)"
)]
fn an_overflow_inside_a_signal_handler_leaves_that_signal_unblocked() {
    in_child_ok("an_overflow_inside_a_signal_handler_leaves_that_signal_unblocked", || {
        // SAFETY: installing a handler for SIGUSR1 (which the test harness does not use),
        // without SA_ONSTACK, so it runs on the coroutine's stack.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = deep_handler as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaddset(&mut action.sa_mask, libc::SIGUSR2);
            assert_eq!(libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()), 0);
        }
        assert!(!blocked(libc::SIGUSR1) && !blocked(libc::SIGUSR2));
        // Twice: the second overflow is recovered the same way as the first.
        for _ in 0..2 {
            let mut co: Coroutine<(), (), ()> = Builder::new()
                .stack_size(32 * 1024)
                // SAFETY: raising a signal whose handler is installed above.
                .spawn(|_, ()| unsafe {
                    libc::raise(libc::SIGUSR1);
                })
                .unwrap();
            assert!(matches!(co.try_resume(()), Err(Error::StackOverflow { .. })));
            assert!(!blocked(libc::SIGUSR1), "the handler's signal is unblocked again");
            assert!(!blocked(libc::SIGUSR2), "so is what the handler's sa_mask added");
        }
    });
}
