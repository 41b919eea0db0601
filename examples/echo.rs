//! A TCP echo server with one green thread per connection, and a client that checks it.
//!
//! ```text
//! cargo run --release --example echo                         # both in one process: a server and 1,000 clients
//! cargo run --release --example echo -- server 127.0.0.1:7007 [WORKERS]
//! cargo run --release --example echo -- client 127.0.0.1:7007 [CONNECTIONS] [BYTES]
//! ```
//!
//! The server is written as with `std::net` and threads: `accept` in a loop, a green
//! thread per connection that reads and writes back. Every wait parks only its green
//! thread, so one OS thread (or `WORKERS` of a runtime) serves every connection, and idle
//! connections cost no CPU. The client opens its connections at once, streams a pattern
//! over each while a second green thread reads the echo back, and checks every byte.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bobbin::net::{Shutdown, TcpListener, TcpStream};

/// Echoes until the client half-closes; returns the bytes echoed.
fn echo(mut stream: TcpStream) -> io::Result<u64> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Accepts for ever (or `limit` connections), a green thread each.
fn serve(listener: TcpListener, limit: Option<usize>, spawn: fn(Box<dyn FnOnce() + Send>)) {
    let served = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming().take(limit.unwrap_or(usize::MAX)) {
        match stream {
            Ok(stream) => {
                let served = Arc::clone(&served);
                spawn(Box::new(move || match echo(stream) {
                    Ok(n) => {
                        served.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => eprintln!("echo: a connection failed: {e}"),
                }));
            }
            // Out of descriptors, say: report it and keep serving.
            Err(e) => eprintln!("echo: accept: {e}"),
        }
    }
}

fn pattern(conn: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i as u64 * 2_654_435_761) ^ conn as u64) as u8).collect()
}

/// Runs `connections` clients against `addr`, each streaming `bytes`; returns the bytes
/// checked.
fn clients(addr: SocketAddr, connections: usize, bytes: usize) -> u64 {
    let handles: Vec<_> = (0..connections)
        .map(|conn| {
            bobbin::spawn(move || {
                let stream = Arc::new(TcpStream::connect(addr).expect("connect"));
                let data = pattern(conn, bytes);
                let reader = {
                    let stream = Arc::clone(&stream);
                    bobbin::spawn(move || {
                        let mut back = Vec::with_capacity(bytes);
                        (&*stream).read_to_end(&mut back).expect("read the echo");
                        back
                    })
                };
                (&*stream).write_all(&data).expect("send");
                stream.shutdown(Shutdown::Write).expect("half-close");
                let back = reader.join().expect("reader");
                assert!(back == data, "connection {conn}: the echo differs from what was sent");
                bytes as u64
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("a client failed")).sum()
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).map(|s| s.parse().unwrap_or_else(|_| panic!("argument {i}: cannot parse {s:?}"))).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => {
            let addr: String = arg(&args, 1, "127.0.0.1:7007".to_string());
            let workers: usize = arg(&args, 2, 1);
            let listener = TcpListener::bind(addr.as_str()).expect("bind");
            println!("echo server on {}, {workers} worker(s)", listener.local_addr().unwrap());
            if workers <= 1 {
                bobbin::run(move || serve(listener, None, |f| drop(bobbin::spawn(f))));
            } else {
                let rt = bobbin::Runtime::builder().workers(workers).build().expect("runtime");
                rt.block_on(move || serve(listener, None, |f| drop(bobbin::runtime::spawn(f))));
            }
        }
        Some("client") => {
            let addr: SocketAddr = arg(&args, 1, "127.0.0.1:7007".parse().unwrap());
            let connections: usize = arg(&args, 2, 100);
            let bytes: usize = arg(&args, 3, 64 * 1024);
            let start = Instant::now();
            let checked = bobbin::run(move || clients(addr, connections, bytes));
            println!(
                "{connections} connections echoed {checked} bytes, every byte checked, in {:.0} ms",
                start.elapsed().as_secs_f64() * 1e3
            );
        }
        None => {
            const CONNECTIONS: usize = 1_000;
            const BYTES: usize = 32 * 1024;
            let start = Instant::now();
            let checked = bobbin::run(|| {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = listener.local_addr().unwrap();
                let server = bobbin::spawn(move || serve(listener, Some(CONNECTIONS), |f| drop(bobbin::spawn(f))));
                let checked = clients(addr, CONNECTIONS, BYTES);
                server.join().expect("server");
                checked
            });
            assert_eq!(checked, (CONNECTIONS * BYTES) as u64);
            println!(
                "one OS thread: a server with a green thread per connection and {CONNECTIONS} clients \
                 echoed {checked} bytes, every byte checked, in {:.0} ms",
                start.elapsed().as_secs_f64() * 1e3
            );
        }
        Some(other) => {
            eprintln!("usage: echo [server [ADDR] [WORKERS] | client [ADDR] [CONNECTIONS] [BYTES]] (got {other:?})");
            std::process::exit(2);
        }
    }
}
