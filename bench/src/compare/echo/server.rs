//! The echo servers, one per library: the child process `compare --echo-server LIBRARY
//! WORKERS` binds a listener on 127.0.0.1 (an ephemeral port), prints `PORT <port>` on
//! stdout and serves until it is killed.
//!
//! Every server is the plain echo a user of the library would write: an accept loop that
//! starts one task (green thread, future, coroutine or OS thread) per connection, with
//! `TCP_NODELAY` set, and per connection a loop that reads into a 4 KiB buffer (zeroed, on
//! the task's stack or in its future) and writes back what it read, until end of stream or
//! an error. The accept loop runs on the library's workers too where the library allows it.

use std::io::{Read, Write};
use std::sync::Arc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// Bytes each connection reads at a time: the largest message of the workload.
pub const BUF: usize = 4096;

/// Thread stack of the std server's per-connection threads: enough for the 4 KiB buffer,
/// small enough that 10,000 of them map only 640 MiB of address space.
const STD_STACK: usize = 64 * 1024;

/// The server child: serves with `library` on `workers` workers until killed.
pub fn server_main(library: &str, workers: usize) -> ! {
    super::super::child::exit_on_panic();
    super::raise_nofile_limit();
    match library {
        "bobbin" => bobbin(workers),
        "tokio" => tokio(workers),
        "may" => may(workers),
        "smol" => smol(workers),
        "std" => std_threads(),
        other => fail(&format!("unknown library {other:?}")),
    }
    fail("the accept loop returned")
}

fn fail(msg: &str) -> ! {
    eprintln!("echo server: {msg}");
    std::process::exit(1)
}

/// Tells the parent where to connect: the one line it waits for.
fn announce(port: u16) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "PORT {port}");
    let _ = out.flush();
}

/// The echo loop of the blocking-style servers (bobbin, may, std).
fn echo(mut s: impl Read + Write) {
    let mut buf = [0u8; BUF];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// `bobbin::run` (one worker: the scheduler on this thread, connections `bobbin::spawn`ed on
/// it) or a `Runtime` of `workers` workers, whose `block_on` runs the accept loop as a green
/// thread on a worker and hands each connection to `bobbin::runtime::spawn`, so that the
/// other workers can take it.
fn bobbin(workers: usize) {
    fn serve(spawn: fn(Box<dyn FnOnce() + Send>)) {
        let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
        announce(l.local_addr().unwrap_or_else(|e| fail(&format!("local_addr: {e}"))).port());
        for s in l.incoming() {
            let s = s.unwrap_or_else(|e| fail(&format!("accept: {e}")));
            s.set_nodelay(true).unwrap_or_else(|e| fail(&format!("set_nodelay: {e}")));
            spawn(Box::new(move || echo(s)));
        }
    }
    if workers == 1 {
        bobbin::run(|| {
            serve(|f| {
                bobbin::spawn(f);
            })
        });
    } else {
        let rt = bobbin::Runtime::builder()
            .workers(workers)
            .build()
            .unwrap_or_else(|e| fail(&format!("bobbin runtime: {e}")));
        rt.block_on(|| {
            serve(|f| {
                bobbin::runtime::spawn(f);
            })
        });
    }
}

/// tokio's current_thread runtime (one worker) or its multi_thread runtime with
/// `workers` worker threads; the accept loop is a spawned task.
fn tokio(workers: usize) {
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread().enable_io().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_io().build()
    }
    .unwrap_or_else(|e| fail(&format!("tokio runtime: {e}")));
    let accept = async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| fail(&format!("bind: {e}")));
        announce(l.local_addr().unwrap_or_else(|e| fail(&format!("local_addr: {e}"))).port());
        loop {
            let (mut s, _) = l.accept().await.unwrap_or_else(|e| fail(&format!("accept: {e}")));
            s.set_nodelay(true).unwrap_or_else(|e| fail(&format!("set_nodelay: {e}")));
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; BUF];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    };
    let _ = rt.block_on(async { tokio::spawn(accept).await });
}

/// may with `workers` workers (`may::config().set_workers`), `may::net`, the accept loop
/// in a coroutine.
fn may(workers: usize) {
    may::config().set_workers(workers);
    // may::go! wraps may's `unsafe fn spawn`, whose contract is that the coroutine neither
    // relies on thread-locals staying put nor blocks its OS thread: the echo loop and the
    // accept loop only do may::net I/O (announce's stdout write happens once, before any
    // connection exists).
    let accept = may::go!(|| {
        let l = may::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
        announce(l.local_addr().unwrap_or_else(|e| fail(&format!("local_addr: {e}"))).port());
        for s in l.incoming() {
            let s = s.unwrap_or_else(|e| fail(&format!("accept: {e}")));
            s.set_nodelay(true).unwrap_or_else(|e| fail(&format!("set_nodelay: {e}")));
            may::go!(move || echo(s));
        }
    });
    let _ = accept.join();
}

/// smol's stack: one `async_executor::Executor` run by `workers` threads (this one and
/// `workers - 1` more), each through `async_io::block_on`, so that the thread that would
/// sleep drives async-io's reactor; `async_net` sockets; the accept loop a task on it.
fn smol(workers: usize) {
    let ex = Arc::new(async_executor::Executor::new());
    let accept = {
        let ex = Arc::clone(&ex);
        ex.clone().spawn(async move {
            let l = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| fail(&format!("bind: {e}")));
            announce(l.local_addr().unwrap_or_else(|e| fail(&format!("local_addr: {e}"))).port());
            loop {
                let (mut s, _) = l.accept().await.unwrap_or_else(|e| fail(&format!("accept: {e}")));
                s.set_nodelay(true).unwrap_or_else(|e| fail(&format!("set_nodelay: {e}")));
                ex.spawn(async move {
                    let mut buf = [0u8; BUF];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                })
                .detach();
            }
        })
    };
    for _ in 1..workers {
        let ex = Arc::clone(&ex);
        std::thread::spawn(move || async_io::block_on(ex.run(std::future::pending::<()>())));
    }
    async_io::block_on(ex.run(accept));
}

/// One OS thread per connection (64 KiB stacks), std::net blocking I/O; the accept loop
/// on the main thread.
fn std_threads() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
    announce(l.local_addr().unwrap_or_else(|e| fail(&format!("local_addr: {e}"))).port());
    for s in l.incoming() {
        let s = s.unwrap_or_else(|e| fail(&format!("accept: {e}")));
        s.set_nodelay(true).unwrap_or_else(|e| fail(&format!("set_nodelay: {e}")));
        std::thread::Builder::new()
            .stack_size(STD_STACK)
            .spawn(move || echo(s))
            .unwrap_or_else(|e| fail(&format!("thread spawn: {e}")));
    }
}
