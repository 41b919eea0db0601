//! Child processes of the `compare` binary: the running executable started again with
//! hidden arguments (`--park`, `--echo-server`, `--echo-load`, `--echo-idle`), so that a
//! measurement starts from a fresh process and a library that crashes, aborts or hangs
//! takes only its child down. The parent reads what the child printed and, when it failed,
//! says how it ended.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The running binary with `args`, its standard output and error piped.
pub fn command(args: &[&str]) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    Ok(cmd)
}

/// Reads `r` to its end on a thread of its own, so that a chatty child never blocks on a
/// full pipe while the parent waits for it.
pub fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Waits for `child` to exit, polling every 20 ms; kills it after `timeout` and returns
/// `None` then.
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>, String> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            return Ok(Some(status));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How a child that did not succeed ended, with the last line it wrote to stderr (the
/// panic or error message, shortened to 200 characters).
pub fn failure(status: ExitStatus, stderr: &str) -> String {
    let why = stderr.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("").to_string();
    let why: String = if why.chars().count() > 200 { why.chars().take(200).collect::<String>() + "..." } else { why };
    let how = match (status.code(), status.signal()) {
        (_, Some(sig)) => format!("killed by signal {sig}{}", signal_name(sig)),
        (Some(code), _) => format!("exit code {code}"),
        _ => "failed".to_string(),
    };
    if why.is_empty() {
        how
    } else {
        format!("{how}: {why}")
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        _ => "",
    }
}

/// Runs the binary with `args` to its end. Ok: what it printed on stdout, if it exited
/// with success; Err: how it ended otherwise (or that it was killed after `timeout`).
pub fn run(args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut child = command(args)?.spawn().map_err(|e| format!("spawn child: {e}"))?;
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_or_kill(&mut child, timeout)?;
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    match status {
        None => Err(format!("hung: killed after {} s", timeout.as_secs())),
        Some(s) if !s.success() => Err(failure(s, &err)),
        Some(_) => Ok(out),
    }
}

/// Ends this (child) process at the first panic on any thread, with the message and,
/// for a panic in a dependency, its path shortened to `crate-version/src/...` on stderr
/// (exit code 3). A child's runtime could otherwise catch a panic on one of its worker
/// threads and run on, or unwind through thousands of suspended coroutines.
pub fn exit_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| {
                let file = l.file();
                let short =
                    file.find("/registry/src/").and_then(|i| file[i + 14..].split_once('/')).map_or(file, |p| p.1);
                format!(" (at {short}:{})", l.line())
            })
            .unwrap_or_default();
        eprintln!("panic: {}{at}", msg.replace('\n', " "));
        std::process::exit(3);
    }));
}
