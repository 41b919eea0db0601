//! The deadlock report: a program whose green threads wait on each other with nothing else
//! able to wake them panics with a description instead of hanging.
//!
//! Without the test harness, so the scenario runs in a process with a single thread (the
//! scheduler cannot know what another thread might do, so it only reports a deadlock when
//! no other thread exists or no unparker of a parked green thread is alive).

use std::process::Command;

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

fn main() {
    if std::env::var(CHILD_VAR).is_ok() {
        waits_on_itself();
        println!("the deadlocked program finished?");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_VAR, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the deadlocking child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ok = !out.status.success()
        && stderr.contains("deadlock")
        && stderr.contains("all 3 green threads are parked")
        && stderr.contains("2 receiving from an empty channel")
        && stderr.contains("1 joining another green thread");
    if ok {
        println!("test a_program_waiting_on_itself_is_reported ... ok");
        println!("1 passed, 0 failed");
    } else {
        println!("test a_program_waiting_on_itself_is_reported ... FAILED");
        println!("status: {:?}\nstderr:\n{stderr}", out.status);
        println!("0 passed, 1 failed");
        std::process::exit(1);
    }
}
