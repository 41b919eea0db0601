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

/// Whether `addr` can be read, probed by writing the byte there into a pipe (the kernel
/// reports an unreadable source as EFAULT instead of raising a signal). A user-mode
/// emulator checks the buffer of a write against the guest's mappings too, which it does
/// not for the remote ranges of `process_vm_readv`.
pub fn readable(addr: usize) -> bool {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two descriptors it creates into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    // SAFETY: write reads at most one byte at `addr` through the kernel, which reports a
    // fault as EFAULT; both descriptors are ours and closed here.
    unsafe {
        let written = libc::write(fds[1], addr as *const libc::c_void, 1);
        libc::close(fds[0]);
        libc::close(fds[1]);
        written == 1
    }
}

/// Whether the tests run under a user-mode emulator (the aarch64 runner in `.cargo/`),
/// where some kernel features do not pass through: tests that need one say so when they
/// take another path.
pub fn emulated() -> bool {
    std::env::var("BOBBIN_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty())
}

/// Says on the real standard error (which the test harness does not capture) that `test`
/// took another path under emulation, and why.
pub fn note_emulated(test: &str, what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "note: {test} under emulation: {what}");
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

/// Ends the whole test process with a report if the test it guards runs longer than its
/// limit: a lost message or wake-up shows as a hang, which must fail CI rather than stall
/// it. (A guard against a hang, not a measure of speed: make the limit generous, valgrind
/// runs these tests too.)
pub struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    pub fn start(seconds: u64, test: &'static str) -> Watchdog {
        use std::sync::atomic::Ordering;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let done = std::sync::Arc::clone(&done);
            std::thread::spawn(move || {
                for _ in 0..seconds * 10 {
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                eprintln!("{test}: still running after {seconds} s (a lost message or wake-up?); aborting");
                std::process::exit(3);
            })
        };
        Watchdog { done, thread }
    }

    pub fn stop(self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap();
    }
}

/// Whether this process runs under valgrind (which preloads its own libraries into the
/// program): the largest stress tests then run a smaller size, since valgrind runs one
/// thread at a time and each switch between threads is slow there.
pub fn under_valgrind() -> bool {
    std::env::var("LD_PRELOAD").is_ok_and(|p| p.contains("vgpreload"))
}
