//! The load generator: the same child process for every server, one thread on a mio
//! (epoll) loop.
//!
//! `compare --echo-load PORT SERVER_PID CONNECTIONS SIZE WARMUP_MS MEASURE_MS` opens the
//! connections, then keeps one request in flight on each (a closed loop: a connection
//! sends its next message as soon as the reply to the last one is complete), warms up for
//! WARMUP_MS and measures for MEASURE_MS. It prints one line:
//!
//! ```text
//! ECHO requests=N secs=S p50_us=A p99_us=B user_s=U sys_s=Y
//! ```
//!
//! N round trips completed in the S seconds measured, the median and 99th percentile of
//! their latencies (from the first byte written to the last byte of the reply read), and
//! the CPU time the server process (all its threads) spent in user and kernel mode over
//! the same S seconds, from `/proc/SERVER_PID/stat`.
//!
//! `compare --echo-idle PORT SERVER_PID CONNECTIONS` reads the server's `VmRSS` and
//! `VmPTE`, opens the connections with one 64-byte round trip each (so that the server has
//! accepted every one and its per-connection task is waiting in a read), reads them again
//! and prints `IDLE rss_kb_before rss_kb_after pte_kb_before pte_kb_after`.
//!
//! Every reply is checked byte for byte against its request. A message is the request's
//! sequence number (8 bytes) followed by bytes drawn at random once per connection, so a
//! reply from another connection, a stale reply, a reordered, lost or altered byte fails
//! the run, with a message on stderr and exit code 1.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Connections opened before the first round trip on each of them: fewer than the
/// smallest listen backlog of the servers (std's 128), so that no SYN is dropped and
/// retried a second later.
const CONNECT_BATCH: usize = 100;

/// A run whose requests all stall this long has failed.
const STALL: Duration = Duration::from_secs(10);

/// Smallest message: the sequence number and some random bytes.
pub const MIN_SIZE: usize = 16;

/// What the load child prints: see the module docs.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Round trips completed while measuring.
    pub requests: u64,
    /// Seconds measured.
    pub secs: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// CPU seconds the server spent in user mode while measuring.
    pub user_s: f64,
    /// CPU seconds the server spent in the kernel while measuring.
    pub sys_s: f64,
}

impl Measured {
    /// Parses the `ECHO` line out of the child's output.
    pub fn parse(out: &str) -> Result<Measured, String> {
        let line = out.lines().find_map(|l| l.strip_prefix("ECHO ")).ok_or("no ECHO line in the load's output")?;
        let field = |name: &str| -> Result<f64, String> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no {name} in: {line}"))
        };
        Ok(Measured {
            requests: field("requests")? as u64,
            secs: field("secs")?,
            p50_us: field("p50_us")?,
            p99_us: field("p99_us")?,
            user_s: field("user_s")?,
            sys_s: field("sys_s")?,
        })
    }
}

/// One connection and its request in flight.
struct Conn {
    stream: TcpStream,
    /// The request: sequence number, then this connection's random bytes.
    msg: Vec<u8>,
    /// The reply read so far.
    reply: Vec<u8>,
    written: usize,
    got: usize,
    /// True while a request is outstanding.
    busy: bool,
    /// When the request's first byte was written.
    sent: Instant,
    /// Replies received and checked.
    replies: u64,
}

/// What driving a connection came to.
enum Step {
    /// It waits for readiness (or for nothing, between requests).
    Wait,
    /// The reply to the request in flight is complete and correct.
    Replied(Instant),
}

impl Conn {
    fn new(stream: TcpStream, index: usize, size: usize) -> Conn {
        // xorshift64*, seeded per connection: distinct bytes on every connection.
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (index as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1;
        let msg = (0..size)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect();
        Conn { stream, msg, reply: vec![0; size], written: 0, got: 0, busy: false, sent: Instant::now(), replies: 0 }
    }

    /// Starts the next request (its sequence number is the count of replies so far).
    fn start(&mut self, now: Instant) {
        self.msg[..8].copy_from_slice(&self.replies.to_le_bytes());
        self.written = 0;
        self.got = 0;
        self.busy = true;
        self.sent = now;
    }

    /// Writes the request and reads its reply as far as the socket allows. After the last
    /// byte of a request it waits for the readable event instead of trying a read that
    /// would almost always fail: the reply's arrival raises a new edge.
    fn advance(&mut self, index: usize) -> Result<Step, String> {
        let size = self.msg.len();
        if !self.busy {
            // Nothing asked for: only the end of the stream (or an error) may be there.
            let mut byte = [0u8; 1];
            return match self.stream.read(&mut byte) {
                Ok(0) => Err(format!("connection {index}: closed by the server")),
                Ok(_) => Err(format!("connection {index}: the server sent bytes no request asked for")),
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => Ok(Step::Wait),
                Err(e) => Err(format!("connection {index}: read: {e}")),
            };
        }
        loop {
            if self.written < size {
                match self.stream.write(&self.msg[self.written..]) {
                    Ok(n) => {
                        self.written += n;
                        if self.written == size {
                            return Ok(Step::Wait);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Step::Wait),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("connection {index}: write: {e}")),
                }
                continue;
            }
            match self.stream.read(&mut self.reply[self.got..]) {
                Ok(0) => {
                    return Err(format!(
                        "connection {index}: closed by the server after {} of {size} bytes of reply {}",
                        self.got, self.replies
                    ))
                }
                Ok(n) => {
                    self.got += n;
                    if self.got == size {
                        let now = Instant::now();
                        if let Some(k) = self.reply.iter().zip(&self.msg).position(|(a, b)| a != b) {
                            return Err(format!(
                                "connection {index}: byte {k} of reply {} is {:#04x}, sent {:#04x}",
                                self.replies, self.reply[k], self.msg[k]
                            ));
                        }
                        self.busy = false;
                        self.replies += 1;
                        return Ok(Step::Replied(now));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Step::Wait),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("connection {index}: read: {e}")),
            }
        }
    }
}

/// The load generator's state: every connection and what it counts.
struct Load {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    size: usize,
    /// Whether a connection sends its next request when a reply is complete.
    repeat: bool,
    /// Replies received (and checked) in total.
    completed: u64,
    /// Whether latencies are being recorded (the measured window).
    recording: bool,
    latencies_ns: Vec<u64>,
    /// When a reply last completed.
    progress: Instant,
}

impl Load {
    fn new(size: usize) -> Result<Load, String> {
        if size < MIN_SIZE {
            return Err(format!("messages must be at least {MIN_SIZE} bytes"));
        }
        Ok(Load {
            poll: Poll::new().map_err(|e| format!("epoll: {e}"))?,
            events: Events::with_capacity(1024),
            conns: Vec::new(),
            size,
            repeat: false,
            completed: 0,
            recording: false,
            latencies_ns: Vec::new(),
            progress: Instant::now(),
        })
    }

    /// Opens `n` more connections to `addr`, `CONNECT_BATCH` at a time, each batch
    /// finished by one round trip on each of its connections.
    fn connect(&mut self, addr: SocketAddr, n: usize) -> Result<(), String> {
        let target = self.conns.len() + n;
        while self.conns.len() < target {
            let first = self.conns.len();
            let batch = CONNECT_BATCH.min(target - first);
            for i in first..first + batch {
                let s = std::net::TcpStream::connect(addr)
                    .map_err(|e| format!("connect (connection {i} of {target}): {e}"))?;
                s.set_nodelay(true).map_err(|e| format!("set_nodelay: {e}"))?;
                s.set_nonblocking(true).map_err(|e| format!("set_nonblocking: {e}"))?;
                let mut s = TcpStream::from_std(s);
                self.poll
                    .registry()
                    .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                    .map_err(|e| format!("register: {e}"))?;
                self.conns.push(Conn::new(s, i, self.size));
            }
            let goal = self.completed + batch as u64;
            self.progress = Instant::now();
            for i in first..first + batch {
                self.start(i, Instant::now())?;
            }
            while self.completed < goal {
                self.turn(STALL)?;
            }
        }
        Ok(())
    }

    fn start(&mut self, i: usize, now: Instant) -> Result<(), String> {
        self.conns[i].start(now);
        self.on_ready(i)
    }

    /// Drives connection `i` after an event: every reply it completes is counted, and
    /// followed by the next request while `repeat` holds.
    fn on_ready(&mut self, i: usize) -> Result<(), String> {
        loop {
            match self.conns[i].advance(i)? {
                Step::Wait => return Ok(()),
                Step::Replied(now) => {
                    self.completed += 1;
                    self.progress = now;
                    if self.recording {
                        self.latencies_ns.push((now - self.conns[i].sent).as_nanos() as u64);
                    }
                    if !self.repeat {
                        return Ok(());
                    }
                    self.conns[i].start(now);
                }
            }
        }
    }

    /// Waits up to `timeout` for events and handles them. Fails if no reply has completed
    /// for [`STALL`].
    fn turn(&mut self, timeout: Duration) -> Result<(), String> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(format!("epoll_wait: {e}")),
        }
        let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
        for i in ready {
            self.on_ready(i)?;
        }
        if self.progress.elapsed() > STALL {
            let busy = self.conns.iter().filter(|c| c.busy).count();
            return Err(format!("no reply for {} s ({busy} requests outstanding)", STALL.as_secs()));
        }
        Ok(())
    }

    /// The closed loop: `warmup`, then `measure`, with the server's CPU time read at both
    /// ends of the measured window.
    fn run(&mut self, server: u32, warmup: Duration, measure: Duration) -> Result<Measured, String> {
        self.repeat = true;
        let begin = Instant::now();
        self.progress = begin;
        for i in 0..self.conns.len() {
            self.start(i, begin)?;
        }
        let warm_end = begin + warmup;
        while Instant::now() < warm_end {
            self.turn(warm_end.saturating_duration_since(Instant::now()))?;
        }
        let cpu0 = server_cpu(server)?;
        let t0 = Instant::now();
        let done0 = self.completed;
        self.recording = true;
        self.latencies_ns.reserve(1 << 20);
        let end = t0 + measure;
        while Instant::now() < end {
            self.turn(end.saturating_duration_since(Instant::now()))?;
        }
        let cpu1 = server_cpu(server)?;
        let secs = t0.elapsed().as_secs_f64();
        self.recording = false;
        let requests = self.completed - done0;
        if requests == 0 {
            return Err("no round trip completed while measuring".into());
        }
        let v = &mut self.latencies_ns;
        v.sort_unstable();
        Ok(Measured {
            requests,
            secs,
            p50_us: percentile(v, 50.0) as f64 / 1e3,
            p99_us: percentile(v, 99.0) as f64 / 1e3,
            user_s: cpu1.0 - cpu0.0,
            sys_s: cpu1.1 - cpu0.1,
        })
    }
}

/// The nearest-rank percentile of sorted values: the smallest value that at least `p`
/// per cent of them do not exceed.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    assert!(!sorted.is_empty(), "percentile of nothing");
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// User and system CPU seconds of process `pid`, all its threads (fields 14 and 15 of
/// `/proc/PID/stat`, in clock ticks).
fn server_cpu(pid: u32) -> Result<(f64, f64), String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = stat.rsplit_once(')').map(|p| p.1).ok_or("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |k: usize| -> Result<f64, String> {
        fields.get(k - 3).and_then(|v| v.parse::<u64>().ok()).map(|v| v as f64).ok_or("malformed /proc/PID/stat".into())
    };
    let hz = super::clock_ticks_per_second();
    Ok((ticks(14)? / hz, ticks(15)? / hz))
}

/// `VmRSS` and `VmPTE` of process `pid`, in kB.
fn server_memory(pid: u32) -> Result<(u64, u64), String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmPTE:")?))
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| fail(&format!("argument {}: {what}", i + 1)))
}

fn fail(msg: &str) -> ! {
    eprintln!("echo load: {msg}");
    std::process::exit(1)
}

/// `--echo-load PORT SERVER_PID CONNECTIONS SIZE WARMUP_MS MEASURE_MS`: see the module docs.
pub fn load_main(args: &[String]) -> ! {
    super::raise_nofile_limit();
    let port: u16 = arg(args, 0, "PORT");
    let pid: u32 = arg(args, 1, "SERVER_PID");
    let n: usize = arg(args, 2, "CONNECTIONS");
    let size: usize = arg(args, 3, "SIZE");
    let warmup = Duration::from_millis(arg(args, 4, "WARMUP_MS"));
    let measure = Duration::from_millis(arg(args, 5, "MEASURE_MS"));
    let result = Load::new(size).and_then(|mut load| {
        load.connect(SocketAddr::from(([127, 0, 0, 1], port)), n)?;
        load.run(pid, warmup, measure)
    });
    match result {
        Ok(m) => {
            println!(
                "ECHO requests={} secs={:.6} p50_us={:.3} p99_us={:.3} user_s={:.3} sys_s={:.3}",
                m.requests, m.secs, m.p50_us, m.p99_us, m.user_s, m.sys_s
            );
            std::process::exit(0)
        }
        Err(e) => fail(&e),
    }
}

/// `--echo-idle PORT SERVER_PID CONNECTIONS`: see the module docs.
pub fn idle_main(args: &[String]) -> ! {
    super::raise_nofile_limit();
    let port: u16 = arg(args, 0, "PORT");
    let pid: u32 = arg(args, 1, "SERVER_PID");
    let n: usize = arg(args, 2, "CONNECTIONS");
    let result = (|| {
        let before = server_memory(pid)?;
        let mut load = Load::new(64)?;
        load.connect(SocketAddr::from(([127, 0, 0, 1], port)), n)?;
        // Let every connection's task go back to waiting in its read.
        std::thread::sleep(Duration::from_millis(100));
        let after = server_memory(pid)?;
        // Still connected, and nothing unasked for arrived in the meantime.
        for i in 0..load.conns.len() {
            load.on_ready(i)?;
        }
        Ok::<_, String>((before, after))
    })();
    match result {
        Ok((before, after)) => {
            println!("IDLE {} {} {} {}", before.0, after.0, before.1, after.1);
            std::process::exit(0)
        }
        Err(e) => fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2, 3], 50.0), 2);
    }

    #[test]
    fn parses_the_echo_line() {
        let m =
            Measured::parse("noise\nECHO requests=10 secs=0.5 p50_us=12.5 p99_us=40 user_s=0.1 sys_s=0.2\n").unwrap();
        assert_eq!(m.requests, 10);
        assert_eq!((m.secs, m.p50_us, m.p99_us, m.user_s, m.sys_s), (0.5, 12.5, 40.0, 0.1, 0.2));
        assert!(Measured::parse("ECHO requests=10 secs=0.5").is_err());
    }

    #[test]
    fn messages_differ_between_connections() {
        let pair = || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            TcpStream::from_std(std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap())
        };
        let a = Conn::new(pair(), 0, 64);
        let b = Conn::new(pair(), 1, 64);
        assert_ne!(a.msg[8..], b.msg[8..]);
    }
}
