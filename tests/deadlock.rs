//! The deadlock report: a program whose green threads wait on each other with nothing else
//! able to wake them panics with a description instead of hanging.
//!
//! Without the test harness, so the scenario runs in a process with a single thread (the
//! scheduler cannot know what another thread might do, so it only reports a deadlock when
//! no other thread exists or no unparker of a parked green thread is alive).

mod common;

use bobbin::sync::channel;
use bobbin::{run, spawn};

const CHILD_VAR: &str = "BOBBIN_DEADLOCK_CHILD";

fn waits_on_itself() {
    run(|| {
        let (tx_a, rx_a) = channel::<()>();
        let (tx_b, rx_b) = channel::<()>();
        let a = spawn(move || {
            rx_a.recv().unwrap();
            tx_b.send(()).unwrap();
        });
        let b = spawn(move || {
            rx_b.recv().unwrap();
            tx_a.send(()).unwrap();
        });
        a.join().unwrap();
        b.join().unwrap();
    });
}

/// Named green threads that wait on each other: the report names each and what it waits
/// for.
fn named_threads_wait_on_each_other() {
    run(|| {
        let (tx_a, rx_a) = channel::<()>();
        let (tx_b, rx_b) = channel::<()>();
        let a = bobbin::Builder::new()
            .name("alpha".into())
            .spawn(move || {
                rx_a.recv().unwrap();
                tx_b.send(()).unwrap();
            })
            .unwrap();
        let m = std::sync::Arc::new(bobbin::sync::Mutex::new(()));
        let m2 = std::sync::Arc::clone(&m);
        let b = bobbin::Builder::new()
            .name("beta".into())
            .spawn(move || {
                let _held = m2.lock().unwrap();
                rx_b.recv().unwrap();
                tx_a.send(()).unwrap();
            })
            .unwrap();
        let c = bobbin::Builder::new().name("gamma".into()).spawn(move || drop(m.lock())).unwrap();
        a.join().unwrap();
        b.join().unwrap();
        c.join().unwrap();
    });
}

/// Parks the main green thread from a generator it pulls, on a channel whose sender it
/// keeps: the report names the wait as it would on the green thread's own stack.
fn waits_inside_a_generator() {
    run(|| {
        let (tx, rx) = channel::<u32>();
        let mut g = bobbin::Generator::new(move |y| y.suspend(rx.recv().unwrap()));
        g.next();
        drop(tx);
    });
}

/// Waits on a channel whose only sender a plain thread leaks and then exits with: while
/// that thread lives the scheduler cannot rule out a wake-up, once it is gone it can.
fn waits_on_a_thread_that_goes_away() {
    run(|| {
        let (tx, rx) = channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            std::mem::forget(tx);
            ready_tx.send(()).unwrap();
            // Still alive when the scheduler first finds nothing to run.
            std::thread::sleep(std::time::Duration::from_millis(300));
        });
        ready_rx.recv().unwrap();
        rx.recv().unwrap();
    });
}

/// A scoped green thread that waits forever, borrowing from its scope: the deadlock report
/// unwinds it before the green thread that waits in the scope, so its destructor still
/// reads what it borrowed (printing the sum).
fn scoped_thread_waits_forever() {
    struct Canary<'a>(&'a [u32]);
    impl Drop for Canary<'_> {
        fn drop(&mut self) {
            eprintln!("canary read {}", self.0.iter().sum::<u32>());
        }
    }
    /// Zeroed before it is freed, so a late read finds no sum of 5050 even if the memory
    /// is not reused.
    struct Zeroed(Vec<u32>);
    impl Drop for Zeroed {
        fn drop(&mut self) {
            self.0.iter_mut().for_each(|x| *x = 0);
        }
    }
    run(|| {
        let data = Zeroed((1..=100).collect());
        let (_tx, rx) = channel::<()>();
        bobbin::scope(|s| {
            s.spawn(|| {
                let _canary = Canary(&data.0);
                rx.recv().unwrap();
            });
        });
    });
}

/// Waits, again and again, on a channel whose sender is a plain thread that sends and
/// exits at once: no deadlock, however the exit and the scheduler's look at the threads
/// interleave (the wake-up is queued before the thread is gone).
fn woken_by_threads_that_exit() -> usize {
    run(|| {
        let mut got = 0;
        for i in 0..2_000 {
            let (tx, rx) = channel::<usize>();
            std::thread::spawn(move || tx.send(i).unwrap());
            got += usize::from(rx.recv().unwrap() == i);
        }
        got
    })
}

/// A green thread selects over two channels whose senders its joiner holds, another
/// offers a message on a rendezvous channel nobody receives from: the report names both
/// waits.
fn a_select_and_a_rendezvous_wait_forever() {
    run(|| {
        let (tx_a, rx_a) = channel::<()>();
        let (tx_b, rx_b) = bobbin::sync::bounded::<()>(0);
        let (tx_c, rx_c) = bobbin::sync::bounded::<u8>(0);
        let selector = spawn(move || {
            bobbin::select! {
                recv(rx_a) -> _ => {},
                recv(rx_b) -> _ => {},
            }
        });
        let sender = spawn(move || tx_c.send(1).unwrap());
        selector.join().unwrap();
        sender.join().unwrap();
        drop((tx_a, tx_b, rx_c));
    });
}

/// Runs `scenario` in a child process and checks that it panicked with a deadlock report
/// containing every string of `expect`; a child that runs for ten minutes is killed and
/// reported as hung.
/// A named green thread that locks a mutex it already holds: the report names it and the
/// wait.
fn locks_a_mutex_twice() {
    run(|| {
        let m = bobbin::sync::Mutex::new(0);
        let h = bobbin::Builder::new()
            .name("relocker".into())
            .spawn(move || {
                let _first = m.lock().unwrap();
                let _second = m.lock().unwrap();
            })
            .unwrap();
        h.join().unwrap();
    });
}

fn check(name: &str, scenario: &str, expect: &[&str]) -> bool {
    check_child(name, scenario, false, expect)
}

/// Runs `scenario` in a child process: it must fail with every string of `expect` in its
/// error output, or with `succeed`, exit cleanly with them in its output.
fn check_child(name: &str, scenario: &str, succeed: bool, expect: &[&str]) -> bool {
    let mut child = common::rerun_command()
        .env(CHILD_VAR, scenario)
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the deadlocking child");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait for the child").is_none() {
        if started.elapsed() > std::time::Duration::from_secs(600) {
            child.kill().ok();
            println!("test {name} ... FAILED (hung: still running after ten minutes)");
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("the child's output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ok = if succeed {
        out.status.success() && expect.iter().all(|e| stdout.contains(e))
    } else {
        !out.status.success() && expect.iter().all(|e| stderr.contains(e))
    };
    if ok {
        println!("test {name} ... ok");
    } else {
        println!("test {name} ... FAILED");
        println!("status: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    }
    ok
}

fn main() {
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("itself") => {
            waits_on_itself();
            println!("the deadlocked program finished?");
            return;
        }
        Ok("named") => {
            named_threads_wait_on_each_other();
            println!("the deadlocked program finished?");
            return;
        }
        Ok("thread") => {
            waits_on_a_thread_that_goes_away();
            println!("the deadlocked program finished?");
            return;
        }
        Ok("select") => {
            a_select_and_a_rendezvous_wait_forever();
            println!("the deadlocked program finished?");
            return;
        }
        Ok("scope") => {
            scoped_thread_waits_forever();
            println!("the deadlocked program finished?");
            return;
        }
        Ok("generator") => {
            waits_inside_a_generator();
            println!("the deadlocked program finished?");
            return;
        }
        Ok("relock") => {
            locks_a_mutex_twice();
            println!("the deadlocked program finished?");
            return;
        }
        Ok("exiting") => {
            println!("woken {} times", woken_by_threads_that_exit());
            return;
        }
        _ => {}
    }
    if common::emulated() {
        // The report needs to know that no other OS thread exists, from the kernel's count
        // of the process's threads, and a qemu-user process has threads of the emulator's
        // own: the deadlocked programs would hang until the ten-minute limit.
        common::note_emulated("deadlock", "not run: the emulator's own threads count as other threads of the process");
        return;
    }
    let results = [
        check(
            "a_program_waiting_on_itself_is_reported",
            "itself",
            &[
                "deadlock",
                "all 3 green threads are parked",
                "2 receiving from an empty channel",
                "1 joining another green thread",
            ],
        ),
        check(
            "the_report_names_each_green_thread_and_what_it_waits_for",
            "named",
            &[
                "all 4 green threads are parked",
                // Ids are handed out in spawn order in a fresh single-threaded process.
                "green thread (id 1) (the main green thread) joining another green thread",
                "green thread 'alpha' (id 2) receiving from an empty channel",
                "green thread 'beta' (id 3) receiving from an empty channel",
                "green thread 'gamma' (id 4) waiting for a mutex",
            ],
        ),
        check(
            "a_deadlock_is_reported_once_the_last_thread_that_could_end_it_exits",
            "thread",
            &["deadlock", "all 1 green threads are parked", "1 receiving from an empty channel"],
        ),
        check(
            "a_select_and_a_rendezvous_send_are_named_in_the_report",
            "select",
            &[
                "deadlock",
                "all 3 green threads are parked",
                "1 selecting over channel operations",
                "1 sending on a rendezvous channel",
            ],
        ),
        check(
            "a_scoped_thread_waiting_forever_is_unwound_before_its_scope",
            "scope",
            &["deadlock", "1 waiting for the green threads of a scope", "canary read 5050"],
        ),
        check(
            "a_park_inside_a_generator_that_never_ends_is_reported",
            "generator",
            &["deadlock", "all 1 green threads are parked", "1 receiving from an empty channel"],
        ),
        check(
            "a_recursive_mutex_lock_is_named_in_the_report",
            "relock",
            &["deadlock", "green thread 'relocker' (id 2) waiting for a mutex"],
        ),
        check_child(
            "no_deadlock_is_reported_when_the_waking_thread_exits_at_once",
            "exiting",
            true,
            &["woken 2000 times"],
        ),
    ];
    let passed = results.iter().filter(|&&ok| ok).count();
    println!("{passed} passed, {} failed", results.len() - passed);
    if passed != results.len() {
        std::process::exit(1);
    }
}
