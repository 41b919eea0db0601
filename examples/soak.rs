//! Soak test: random mixes of coroutines, generators, green threads, channels, sleeps,
//! panics, stack overflows and drops on the multi-threaded runtime, for a given time,
//! checking invariants as it goes.
//!
//! ```sh
//! cargo run --release --example soak -- --seconds 60 [--seed N] [--workers N]
//! ```
//!
//! Invariants, checked after every round (a round is one runtime's life):
//! - every message sent on a channel is received exactly once (counts and sums match);
//! - every tracked value is dropped exactly once (values on the stacks of coroutines and
//!   green threads that were dropped half-way or unwound at runtime shutdown included);
//! - every panic and every stack overflow is reported where it should be;
//! - every byte sent over a loopback connection comes back once, in order (exact byte
//!   counts and checksums), and green threads left parked on sockets at shutdown are
//!   unwound with their sockets closed;
//!
//! and at the end: resident memory, the number of kernel mappings and the number of open
//! descriptors stay flat (compared
//! between the end of the warm-up and the end of the run). Prints a line of counters every
//! few seconds; exits with status 1 on the first broken invariant.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bobbin::coroutine::Builder;
use bobbin::net::{Shutdown, TcpListener, TcpStream};
use bobbin::sync::{bounded, channel};
use bobbin::{Coroutine, CoroutineResult, Error, Generator, Runtime};

/// Counters shared by every task of the run.
#[derive(Default)]
struct Counters {
    tracked_made: AtomicU64,
    tracked_dropped: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    sent_sum: AtomicU64,
    received_sum: AtomicU64,
    coroutines: AtomicU64,
    generator_items: AtomicU64,
    green_threads: AtomicU64,
    panics_expected: AtomicU64,
    panics_seen: AtomicU64,
    overflows_expected: AtomicU64,
    overflows_seen: AtomicU64,
    sleeps: AtomicU64,
    unwound_at_shutdown: AtomicU64,
    connections: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_echoed: AtomicU64,
    sum_sent: AtomicU64,
    sum_echoed: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

/// A value whose construction and destruction are counted.
struct Tracked(Arc<Counters>);

impl Tracked {
    fn new(c: &Arc<Counters>) -> Tracked {
        Counters::add(&c.tracked_made, 1);
        Tracked(Arc::clone(c))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        Counters::add(&self.0.tracked_dropped, 1);
    }
}

/// xorshift64*: small, seedable, good enough to pick a mix.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fail(what: String) -> ! {
    eprintln!("soak: INVARIANT BROKEN: {what}");
    std::process::exit(1);
}

/// A coroutine resumed a random number of times, sometimes dropped before it finishes.
fn coroutine_job(c: &Arc<Counters>, rng: &mut Rng) {
    let steps = 1 + rng.below(20);
    let stop_after = rng.below(steps + 1);
    let cc = Arc::clone(c);
    let mut co: Coroutine<u64, u64, u64> = Coroutine::new(move |y, mut x| {
        let _t = Tracked::new(&cc);
        for _ in 0..steps {
            let _inner = Tracked::new(&cc);
            x = y.suspend(x + 1);
        }
        x
    });
    let mut x = 0;
    for _ in 0..stop_after {
        match co.resume(x) {
            CoroutineResult::Yield(v) => x = v,
            CoroutineResult::Return(_) => break,
        }
    }
    Counters::add(&c.coroutines, 1);
    drop(co); // unwinds it if suspended
}

/// A generator partly or wholly consumed.
fn generator_job(c: &Arc<Counters>, rng: &mut Rng) {
    let n = 1 + rng.below(100);
    let take = rng.below(n + 1) as usize;
    let cc = Arc::clone(c);
    let g = Generator::new(move |y| {
        let _t = Tracked::new(&cc);
        for i in 0..n {
            y.suspend(i);
        }
    });
    let got: u64 = g.take(take).map(|_| 1).sum();
    if got != take as u64 {
        fail(format!("generator gave {got} items, expected {take}"));
    }
    Counters::add(&c.generator_items, got);
}

fn deep(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 32]);
    if n == 0 {
        pad[3]
    } else {
        deep(n - 1) + pad[5]
    }
}

/// A coroutine on a small stack that recurses until it overflows.
fn overflow_job(c: &Arc<Counters>) {
    Counters::add(&c.overflows_expected, 1);
    let mut co: Coroutine<(), (), u64> =
        Builder::new().stack_size(16 * 1024).spawn(|_, ()| deep(1 << 20)).expect("a small coroutine");
    match co.try_resume(()) {
        Err(Error::StackOverflow { .. }) => Counters::add(&c.overflows_seen, 1),
        other => fail(format!("expected a stack overflow, got {other:?}")),
    }
}

/// Producers and consumers on a channel, with exact counts.
fn channel_job(c: &Arc<Counters>, rng: &mut Rng) {
    let producers = 1 + rng.below(4);
    let consumers = 1 + rng.below(4);
    let each = 1 + rng.below(500);
    let (tx, rx) = if rng.below(2) == 0 { bounded::<u64>(1 + rng.below(16) as usize) } else { channel::<u64>() };
    let mut hs = Vec::new();
    for p in 0..producers {
        let tx = tx.clone();
        let c = Arc::clone(c);
        hs.push(bobbin::runtime::spawn(move || {
            for i in 0..each {
                let v = p * 1_000_000 + i;
                tx.send(v).unwrap_or_else(|_| fail("a receiver vanished".into()));
                Counters::add(&c.sent, 1);
                Counters::add(&c.sent_sum, v);
            }
        }));
    }
    drop(tx);
    let mut cs = Vec::new();
    for _ in 0..consumers {
        let rx = rx.clone();
        let c = Arc::clone(c);
        cs.push(bobbin::runtime::spawn(move || {
            for v in rx.iter() {
                Counters::add(&c.received, 1);
                Counters::add(&c.received_sum, v);
            }
        }));
    }
    drop(rx);
    for h in hs.into_iter().chain(cs) {
        h.join().unwrap_or_else(|e| fail(format!("channel task failed: {e}")));
    }
    Counters::add(&c.green_threads, producers + consumers);
}

/// An echo server and clients over loopback: every byte sent comes back, counted and
/// summed on both sides.
fn socket_job(c: &Arc<Counters>, rng: &mut Rng) {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(format!("bind: {e}")));
    let addr = listener.local_addr().unwrap();
    let conns = 1 + rng.below(6);
    let server = bobbin::runtime::spawn(move || {
        let echoers: Vec<_> = (0..conns)
            .map(|_| {
                let (mut s, _) = listener.accept().unwrap_or_else(|e| fail(format!("accept: {e}")));
                bobbin::runtime::spawn(move || {
                    let mut buf = [0u8; 2048];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => s.write_all(&buf[..n]).unwrap_or_else(|e| fail(format!("echo write: {e}"))),
                            Err(e) => fail(format!("echo read: {e}")),
                        }
                    }
                })
            })
            .collect();
        for e in echoers {
            e.join().unwrap_or_else(|e| fail(format!("an echoer failed: {e}")));
        }
    });
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let (c, len, seed) = (Arc::clone(c), rng.below(300_000) as usize, rng.next());
            bobbin::runtime::spawn(move || {
                let s = Arc::new(TcpStream::connect(addr).unwrap_or_else(|e| fail(format!("connect: {e}"))));
                let data: Vec<u8> = (0..len).map(|i| (seed >> (i % 57)) as u8 ^ i as u8).collect();
                let reader = {
                    let s = Arc::clone(&s);
                    bobbin::runtime::spawn(move || {
                        let mut back = Vec::new();
                        (&*s).read_to_end(&mut back).unwrap_or_else(|e| fail(format!("read the echo: {e}")));
                        back
                    })
                };
                (&*s).write_all(&data).unwrap_or_else(|e| fail(format!("send: {e}")));
                s.shutdown(Shutdown::Write).unwrap_or_else(|e| fail(format!("half-close: {e}")));
                let back = reader.join().unwrap_or_else(|e| fail(format!("a reader failed: {e}")));
                let sum = |b: &[u8]| {
                    b.iter().enumerate().fold(0u64, |h, (i, &x)| h.wrapping_add((i as u64 + 1) * u64::from(x)))
                };
                Counters::add(&c.connections, 1);
                Counters::add(&c.bytes_sent, len as u64);
                Counters::add(&c.bytes_echoed, back.len() as u64);
                Counters::add(&c.sum_sent, sum(&data));
                Counters::add(&c.sum_echoed, sum(&back));
            })
        })
        .collect();
    for h in clients {
        h.join().unwrap_or_else(|e| fail(format!("a client failed: {e}")));
    }
    server.join().unwrap_or_else(|e| fail(format!("the server failed: {e}")));
    Counters::add(&c.green_threads, 2 + 3 * conns);
}

/// One green thread's worth of random work.
fn task(c: Arc<Counters>, mut rng: Rng) {
    let _t = Tracked::new(&c);
    for _ in 0..1 + rng.below(8) {
        match rng.below(100) {
            0..=24 => coroutine_job(&c, &mut rng),
            25..=44 => generator_job(&c, &mut rng),
            45..=59 => channel_job(&c, &mut rng),
            60..=69 => {
                bobbin::sleep(Duration::from_micros(rng.below(2000)));
                Counters::add(&c.sleeps, 1);
            }
            70..=74 => {
                Counters::add(&c.panics_expected, 1);
                let h = bobbin::runtime::spawn(|| -> u8 { panic!("soak: deliberate panic") });
                match h.join() {
                    Err(e) if e.message() == Some("soak: deliberate panic") => Counters::add(&c.panics_seen, 1),
                    other => fail(format!("a deliberate panic came back as {other:?}")),
                }
            }
            75..=77 => overflow_job(&c),
            78..=83 => socket_job(&c, &mut rng),
            _ => bobbin::yield_now(),
        }
    }
    Counters::add(&c.green_threads, 1);
}

/// One runtime's life: a batch of random tasks, some parked forever so that dropping the
/// runtime has to unwind them.
fn round(c: &Arc<Counters>, rng: &mut Rng, workers: usize) {
    let rt = Runtime::builder().workers(workers).build().unwrap_or_else(|e| fail(format!("runtime: {e}")));
    let tasks = 50 + rng.below(200);
    let mut hs = Vec::new();
    for _ in 0..tasks {
        let (c2, r2) = (Arc::clone(c), Rng(rng.next() | 1));
        hs.push(rt.spawn(move || task(c2, r2)));
    }
    // Green threads that will still be parked at shutdown: on a channel nobody sends to,
    // or reading a connection nobody accepts (its socket must be closed by the unwinding).
    let (_keep, never) = channel::<()>();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(format!("bind: {e}")));
    let silent_addr = silent.local_addr().unwrap();
    let stuck = rng.below(20);
    let mut stuck_hs = Vec::new();
    for i in 0..stuck {
        let (c2, never) = (Arc::clone(c), never.clone());
        stuck_hs.push(rt.spawn(move || {
            let _t = Tracked::new(&c2);
            if i % 2 == 0 {
                let _ = never.recv();
            } else {
                let mut s = TcpStream::connect(silent_addr).unwrap_or_else(|e| fail(format!("connect: {e}")));
                let _ = std::io::Read::read(&mut s, &mut [0; 1]);
            }
        }));
    }
    for h in hs {
        h.join().unwrap_or_else(|e| fail(format!("a task failed: {e}")));
    }
    drop(rt);
    drop(silent);
    for h in stuck_hs {
        match h.join() {
            Err(e) if e.message().is_some_and(|m| m.contains("shut down")) => Counters::add(&c.unwound_at_shutdown, 1),
            other => fail(format!("a parked task at shutdown ended as {other:?}")),
        }
    }
}

fn check(c: &Counters) {
    let (made, dropped) = (Counters::get(&c.tracked_made), Counters::get(&c.tracked_dropped));
    if made != dropped {
        fail(format!("{made} tracked values made but {dropped} dropped"));
    }
    let (s, r) = (Counters::get(&c.sent), Counters::get(&c.received));
    let (ss, rs) = (Counters::get(&c.sent_sum), Counters::get(&c.received_sum));
    if s != r || ss != rs {
        fail(format!("sent {s} (sum {ss}) but received {r} (sum {rs})"));
    }
    let (bs, be) = (Counters::get(&c.bytes_sent), Counters::get(&c.bytes_echoed));
    let (ss, se) = (Counters::get(&c.sum_sent), Counters::get(&c.sum_echoed));
    if bs != be || ss != se {
        fail(format!("sent {bs} bytes (checksum {ss}) over loopback but {be} came back (checksum {se})"));
    }
    let (pe, ps) = (Counters::get(&c.panics_expected), Counters::get(&c.panics_seen));
    let (oe, os) = (Counters::get(&c.overflows_expected), Counters::get(&c.overflows_seen));
    if pe != ps || oe != os {
        fail(format!("panics {ps}/{pe} and overflows {os}/{oe} reported"));
    }
}

/// Resident memory (VmRSS + VmPTE, KiB) and the number of kernel mappings.
fn footprint() -> (u64, usize) {
    let (bytes, maps) = common::footprint();
    (bytes / 1024, maps)
}

/// Open descriptors of the process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn arg(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    Some(args.get(i + 1)?.parse().unwrap_or_else(|_| fail(format!("{name} takes a number"))))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds").unwrap_or(10);
    let workers = arg(&args, "--workers").unwrap_or(2) as usize;
    let seed = arg(&args, "--seed").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    }) | 1;
    println!("soak: {seconds} s on {workers} workers, seed {seed}");
    // A stack overflow is reported by a fault handler; keep its default message quiet.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if msg != "soak: deliberate panic" {
            eprintln!("soak: panic: {info}");
        }
    }));

    let c = Arc::new(Counters::default());
    let mut rng = Rng(seed);
    let start = Instant::now();
    let warm_up = Duration::from_secs(seconds).mul_f64(0.25);
    let mut baseline: Option<(u64, usize)> = None;
    let mut fds_baseline: Option<usize> = None;
    let mut last_print = Instant::now();
    let mut rounds = 0u64;
    let mut peak = (0u64, 0usize);
    while start.elapsed() < Duration::from_secs(seconds) {
        round(&c, &mut rng, workers);
        rounds += 1;
        check(&c);
        let now = footprint();
        peak = (peak.0.max(now.0), peak.1.max(now.1));
        if baseline.is_none() && start.elapsed() >= warm_up {
            baseline = Some(now);
            fds_baseline = Some(open_fds());
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            println!(
                "soak: {:>4.0}s rounds {rounds} green threads {} coroutines {} generator items {} messages {} \
                 sleeps {} panics {} overflows {} unwound {} tracked {} connections {} bytes echoed {} | rss+pte {} KiB, \
                 mappings {}, descriptors {}",
                start.elapsed().as_secs_f64(),
                Counters::get(&c.green_threads),
                Counters::get(&c.coroutines),
                Counters::get(&c.generator_items),
                Counters::get(&c.received),
                Counters::get(&c.sleeps),
                Counters::get(&c.panics_seen),
                Counters::get(&c.overflows_seen),
                Counters::get(&c.unwound_at_shutdown),
                Counters::get(&c.tracked_dropped),
                Counters::get(&c.connections),
                Counters::get(&c.bytes_echoed),
                now.0,
                now.1,
                open_fds()
            );
        }
    }
    let end = footprint();
    let base = baseline.unwrap_or(end);
    println!(
        "soak: done: {rounds} rounds, {} green threads, {} coroutines, {} generator items, {} messages, {} panics, \
         {} overflows, {} unwound at shutdown, {} tracked values made and dropped, {} connections echoed \
         {} bytes",
        Counters::get(&c.green_threads),
        Counters::get(&c.coroutines),
        Counters::get(&c.generator_items),
        Counters::get(&c.received),
        Counters::get(&c.panics_seen),
        Counters::get(&c.overflows_seen),
        Counters::get(&c.unwound_at_shutdown),
        Counters::get(&c.tracked_dropped),
        Counters::get(&c.connections),
        Counters::get(&c.bytes_echoed)
    );
    println!(
        "soak: footprint after warm-up {} KiB / {} mappings, at the end {} KiB / {} mappings, peak {} KiB / {} mappings",
        base.0, base.1, end.0, end.1, peak.0, peak.1
    );
    // Flat: no more than 25% + 16 MiB of growth after warm-up, and a bounded number of
    // extra mappings (thread stacks and slabs come and go with each runtime).
    if end.0 > base.0 + base.0 / 4 + 16 * 1024 {
        fail(format!("resident memory grew from {} KiB to {} KiB", base.0, end.0));
    }
    if end.1 > base.1 + 64 {
        fail(format!("kernel mappings grew from {} to {}", base.1, end.1));
    }
    // Between rounds no runtime is alive, so every descriptor one opened is closed.
    let (fds_base, fds_end) = (fds_baseline.unwrap_or_else(open_fds), open_fds());
    if fds_end != fds_base {
        fail(format!("open descriptors went from {fds_base} after warm-up to {fds_end} at the end"));
    }
    if Counters::get(&c.connections) == 0 {
        fail("no loopback connection was made: the run was too short to cover I/O".into());
    }
    println!("soak: all invariants held");
}
