//! 10,000 concurrent loopback connections, each echoing a checksum-verified stream, served
//! with one green thread per connection on `run` and on a 2-worker runtime.
//!
//! Its own process (no test harness): the server side is this process, the clients are
//! this binary started again with `BOBBIN_NET_SCALE_CLIENT`, so each side needs just over
//! 10,000 descriptors of its own. The soft descriptor limit is raised to the hard one; if
//! the hard limit is too low, the test says so and is skipped.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bobbin::net::{Shutdown, TcpListener, TcpStream};

const CONNECTIONS: usize = 10_000;
const BYTES: usize = 16 * 1024;
const CLIENT_VAR: &str = "BOBBIN_NET_SCALE_CLIENT";

fn pattern(conn: usize) -> Vec<u8> {
    (0..BYTES).map(|i| (i.wrapping_mul(131) ^ conn.wrapping_mul(2654435761) ^ (conn >> 8)) as u8).collect()
}

/// FNV-1a: what each side compares, on top of the length.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

/// Raises the soft descriptor limit to the hard one; false if that is below `need`.
fn raise_nofile(need: u64) -> Result<(), String> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_max < need {
        return Err(format!("the hard limit on descriptors is {}, below the {need} needed", lim.rlim_max));
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit reads the struct it is given.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    Ok(())
}

/// The client process: opens every connection first (so all are open at once), then
/// echoes a stream on each from its own green thread and checks it.
fn client(addr: SocketAddr) {
    raise_nofile(CONNECTIONS as u64 + 64).expect("the parent checked the limit");
    bobbin::run(move || {
        let streams: Vec<TcpStream> = (0..CONNECTIONS).map(|_| TcpStream::connect(addr).expect("connect")).collect();
        let handles: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(conn, mut s)| {
                bobbin::spawn(move || {
                    let data = pattern(conn);
                    s.write_all(&data).expect("write");
                    s.shutdown(Shutdown::Write).expect("half-close");
                    let mut back = Vec::with_capacity(BYTES);
                    s.read_to_end(&mut back).expect("read the echo");
                    assert_eq!(back.len(), BYTES, "connection {conn}");
                    assert_eq!(checksum(&back), checksum(&data), "connection {conn}");
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a client connection failed");
        }
    });
    println!("client: {CONNECTIONS} connections echoed and verified");
}

/// Serves `CONNECTIONS` connections on green threads spawned by `spawn`, counting how
/// many are open at once; returns the peak. A connection whose stream has ended stays open
/// until the green threads of all of them have started, so all are open together however
/// fast the client is and however late a runtime starts a green thread (under valgrind
/// the server is the slow side): the server must hold every connection at once.
fn serve(listener: TcpListener, spawn: impl Fn(Box<dyn FnOnce() + Send>) -> Box<dyn FnOnce()>) -> usize {
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (opener, gate) = bobbin::sync::channel::<()>();
    let mut joins = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (mut s, _) = listener.accept().expect("accept");
        let (open, peak, gate, opener) = (Arc::clone(&open), Arc::clone(&peak), gate.clone(), opener.clone());
        joins.push(spawn(Box::new(move || {
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            if now == CONNECTIONS {
                // The last to start lets every connection go.
                for _ in 0..CONNECTIONS {
                    opener.send(()).unwrap();
                }
            }
            let mut buf = [0u8; 4096];
            let mut total = 0;
            loop {
                match s.read(&mut buf).expect("server read") {
                    0 => break,
                    n => {
                        s.write_all(&buf[..n]).expect("server write");
                        total += n;
                    }
                }
            }
            assert_eq!(total, BYTES);
            gate.recv().expect("the last connection to start lets every connection go");
            open.fetch_sub(1, Ordering::SeqCst);
        })));
    }
    drop(opener);
    for j in joins {
        j();
    }
    peak.load(Ordering::SeqCst)
}

fn scenario(name: &str, run: impl FnOnce(TcpListener) -> usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = common::rerun_command()
        .env(CLIENT_VAR, addr.to_string())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the client process");
    let peak = run(listener);
    let status = child.wait().unwrap();
    assert!(status.success(), "{name}: the client process failed: {status}");
    assert_eq!(peak, CONNECTIONS, "{name}: every connection was open at once");
    println!("{name}: {CONNECTIONS} concurrent connections echoed, peak {peak} open at once");
}

fn main() {
    if let Ok(addr) = std::env::var(CLIENT_VAR) {
        client(addr.parse().expect("client address"));
        return;
    }
    if let Err(why) = raise_nofile(CONNECTIONS as u64 + 64) {
        println!("net_scale: skipped: {why}");
        return;
    }
    scenario("run", |listener| {
        bobbin::run(move || {
            serve(listener, |f| {
                let h = bobbin::spawn(f);
                Box::new(move || h.join().expect("a server connection failed"))
            })
        })
    });
    scenario("runtime with 2 workers", |listener| {
        let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
        rt.block_on(move || {
            serve(listener, |f| {
                let h = bobbin::runtime::spawn(f);
                Box::new(move || h.join().expect("a server connection failed"))
            })
        })
    });
}
