//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::process::{Command, Output};

const CHILD_VAR: &str = "BOBBIN_TEST_CHILD";

/// A command that runs this test binary again: directly, or under the emulator named by
/// `BOBBIN_TEST_RUNNER` (set by the aarch64 runner in `.cargo/`, since an emulated binary
/// cannot be executed by the host kernel).
pub fn rerun_command() -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    match std::env::var("BOBBIN_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut command = Command::new(words.next().expect("a runner command"));
            command.args(words).arg(exe);
            command
        }
        _ => Command::new(exe),
    }
}

/// Runs `body` in a child process (this test binary re-executed for the single test
/// `name`), so a crash or an exhausted resource cannot take the rest of the suite down.
/// In the parent, returns the child's output; in the child, runs `body` and returns None.
pub fn in_child(name: &str, body: impl FnOnce()) -> Option<Output> {
    if std::env::var(CHILD_VAR).as_deref() == Ok(name) {
        body();
        return None;
    }
    let out = rerun_command()
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("re-run the test binary");
    Some(out)
}

/// Like [`in_child`], but a child still running after `limit` is killed and reported as
/// hung (a guard against a hang, not a measure of speed: make `limit` generous).
pub fn in_child_within(name: &str, limit: std::time::Duration, body: impl FnOnce()) -> Option<Output> {
    if std::env::var(CHILD_VAR).as_deref() == Ok(name) {
        body();
        return None;
    }
    let mut child = rerun_command()
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, name)
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("re-run the test binary");
    // Drain the pipes while waiting, so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).ok();
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).ok();
        v
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            let status = child.wait().expect("reap the child");
            let out = Output { status, stdout: out_reader.join().unwrap(), stderr: err_reader.join().unwrap() };
            panic!(
                "child test {name} hung: still running after {limit:?}, killed\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Some(Output { status, stdout: out_reader.join().unwrap(), stderr: err_reader.join().unwrap() })
}

/// Asserts that a child of [`in_child`] or [`in_child_within`] ran its test and passed.
pub fn assert_child_passed(name: &str, out: Option<Output>) {
    if let Some(out) = out {
        assert!(
            out.status.success(),
            "child test {name} failed: {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("1 passed"), "child test {name} did not run (no test matched):\n{stdout}");
        // AddressSanitizer's warnings (the ASan run) do not change the exit status.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("WARNING: ASan"), "child test {name} made ASan warn:\n{stderr}");
    }
}

/// Like [`in_child`], asserting that the child succeeded.
pub fn in_child_ok(name: &str, body: impl FnOnce()) {
    let out = in_child(name, body);
    assert_child_passed(name, out);
}

/// Number of mappings of this process (lines of /proc/self/maps).
pub fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps").lines().count()
}

/// Whether `addr` can be read, probed with process_vm_readv (which reports EFAULT instead
/// of raising a signal).
pub fn readable(addr: usize) -> bool {
    let mut byte = 0u8;
    let local = libc::iovec { iov_base: (&mut byte as *mut u8).cast(), iov_len: 1 };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: 1 };
    // SAFETY: process_vm_readv on our own pid writes at most one byte into `byte` and
    // reports an unreadable source address as an error instead of faulting.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    n == 1
}

/// The kernel's state letter (`S` asleep, `R` running, ...) for the thread whose
/// `/proc/self/task/<tid>` directory is `task`.
pub fn thread_state(task: &std::path::Path) -> Option<char> {
    let stat = std::fs::read_to_string(task.join("stat")).ok()?;
    // The state follows the parenthesised command name.
    stat.rsplit(") ").next()?.chars().next()
}

/// Recurses until the stack's guard region stops it.
#[inline(never)]
#[allow(unconditional_recursion)] // runs until the guard page stops it
pub fn recurse_forever(depth: u64) -> u64 {
    let frame = [depth; 32];
    std::hint::black_box(&frame);
    recurse_forever(depth + 1) + frame[7]
}
