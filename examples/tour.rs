//! A tour of bobbin, from the low-level context layer up: each section's first line says
//! what it shows, the lines under it what came out.
//!
//! Run with `cargo run --release --example tour`.

#[path = "backstop_scheduler.rs"]
#[allow(dead_code)] // the example's own main
mod backstop_scheduler;

use bobbin::context::{Context, ContextHandle, Val};
use bobbin::coroutine::Builder;
use bobbin::stack::Stack;
use bobbin::{Coroutine, CoroutineResult, Error, Generator, Runtime, Yielder};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// An entry function with more arguments than there are registers: the last two integers
/// and the last float travel on the stack, as a C compiler would put them.
#[allow(clippy::too_many_arguments)]
extern "C" fn weigh(
    a: u8,
    b: i16,
    c: u32,
    d: i64,
    e: u64,
    f: usize,
    g: i32,
    h: u64,
    x0: f64,
    x1: f32,
    x2: f64,
    x3: f64,
    x4: f64,
    x5: f64,
    x6: f64,
    x7: f64,
    x8: f64,
) -> f64 {
    let ints = a as f64 + b as f64 + c as f64 + d as f64 + e as f64 + f as f64 + g as f64 + h as f64;
    let floats = x0 + x1 as f64 + x2 + x3 + x4 + x5 + x6 + x7 + x8;
    ints * floats
}

fn low_level() -> Result<(), Error> {
    println!(
        "== 1. contexts: an extern \"C\" function with 17 arguments (3 on the stack) runs on a stack of our choosing"
    );
    let mut stack = Stack::new(64 * 1024)?;
    let words = stack.words_mut();
    let args = [
        Val::U8(1),
        Val::I16(-2),
        Val::U32(3),
        Val::I64(-4),
        Val::U64(5),
        Val::USize(6),
        Val::I32(7),
        Val::U64(8),
        Val::F64(0.5),
        Val::F32(0.25),
        Val::F64(0.25),
        Val::F64(1.0),
        Val::F64(1.0),
        Val::F64(1.0),
        Val::F64(1.0),
        Val::F64(1.0),
        Val::F64(2.0),
    ];
    let mut parent = ContextHandle::new();
    let mut child = ContextHandle::create_and_init(words, weigh as *const () as usize, &args)?;
    // SAFETY: the child runs on `stack`, alive until the end of this function, and
    // returns through the backstop into `parent`.
    unsafe { Context::swap(&mut parent, &mut child) };
    println!("   weigh(1, -2, 3, -4, 5, 6, 7, 8; 0.5, 0.25, 0.25, 1, 1, 1, 1, 1, 2)");
    println!(
        "   = {} on a guard-paged Stack (read back from the child's saved xmm0)",
        child.get_untyped_retval().as_f64()
    );

    // Any 16-byte-aligned memory will do as a stack, at the caller's risk of overrunning it.
    let mut heap = vec![0u64; 1024].into_boxed_slice();
    let mut child = ContextHandle::create_and_init(&mut heap, weigh as *const () as usize, &args)?;
    // SAFETY: weigh needs far less than these 8 KiB, which outlive the child.
    unsafe { Context::swap(&mut parent, &mut child) };
    println!(
        "   = {} again on an 8 KiB heap stack, vec![0u64; 1024].into_boxed_slice()",
        child.get_untyped_retval().as_f64()
    );
    Ok(())
}

fn backstop_scheduler() -> Result<(), Error> {
    println!("== 2. contexts: a round-robin scheduler whose children yield to it and end through the backstop");
    let outcomes = backstop_scheduler::run()?;
    backstop_scheduler::print(&outcomes);
    let all_match = outcomes.iter().all(|o| o.scheduled == o.direct && o.finishes == 1);
    let verdict = if all_match {
        "every result equals its direct call, and each child ended once"
    } else {
        "MISMATCH: a result differs from its direct call, or a child did not end exactly once"
    };
    println!("   (examples/backstop_scheduler.rs: {verdict})");
    Ok(())
}

fn coroutines() {
    println!("== 3. coroutines: a value goes in with each resume and comes out with each suspend");
    let mut averager = Coroutine::new(|y: &Yielder<f64, f64>, mut x: f64| {
        let (mut sum, mut n) = (0.0, 0.0);
        loop {
            sum += x;
            n += 1.0;
            x = y.suspend(sum / n);
            if x.is_nan() {
                return n as u32;
            }
        }
    });
    for x in [10.0, 20.0, 60.0] {
        if let CoroutineResult::Yield(avg) = averager.resume(x) {
            println!("   sent {x:>4}, running average {avg}");
        }
    }
    if let CoroutineResult::Return(n) = averager.resume(f64::NAN) {
        println!("   sent NaN: it returned the count of values it averaged, {n}");
    }
}

/// A recursive in-order walk that yields: the generator turns it into an iterator.
fn walk(node: usize, tree: &[Option<u32>], y: &Yielder<(), u32>) {
    if node >= tree.len() {
        return;
    }
    walk(2 * node + 1, tree, y);
    if let Some(v) = tree[node] {
        y.suspend(v);
    }
    walk(2 * node + 2, tree, y);
}

fn generators() {
    println!("== 4. generators: an endless loop and a recursive walk that yield, used as iterators");
    let primes = Generator::new(|y| {
        let mut found: Vec<u64> = Vec::new();
        for n in 2.. {
            if found.iter().take_while(|p| *p * *p <= n).all(|p| n % p != 0) {
                found.push(n);
                y.suspend(n);
            }
        }
    });
    let first: Vec<String> = primes.take(12).map(|p| p.to_string()).collect();
    println!("   the first 12 primes: {}", first.join(", "));
    let heap = vec![Some(40), Some(20), Some(60), Some(10), Some(30), None, Some(70)];
    let sorted: Vec<String> = Generator::new(move |y| walk(0, &heap, y)).map(|v| v.to_string()).collect();
    println!("   in-order walk of a binary tree stored as an array: {}", sorted.join(", "));
}

#[inline(never)]
#[allow(unconditional_recursion)] // runs until the guard page stops it
fn dig(depth: u64) -> u64 {
    let frame = [depth; 64];
    std::hint::black_box(&frame);
    dig(depth + 1) + frame[1]
}

fn overflow() -> Result<(), Error> {
    println!("== 5. stack overflow: the guard page makes it an error for the resumer, and the thread goes on");
    let mut runaway: Coroutine<(), (), u64> = Builder::new().stack_size(64 * 1024).spawn(|_, ()| dig(0))?;
    match runaway.try_resume(()) {
        Err(e) => println!("   try_resume: {e}"),
        Ok(_) => println!("   unexpected: the runaway recursion ended without overflowing"),
    }
    let mut fine: Coroutine<(), (), u64> = Coroutine::new(|_, ()| (1..=10).product());
    if let CoroutineResult::Return(v) = fine.resume(()) {
        println!("   a new coroutine on the same thread computes 10! = {v}");
    }
    Ok(())
}

fn green_threads() {
    println!("== 6. green threads: a prime sieve of channel-connected stages, and sleeps that overlap");
    let (primes, elapsed) = bobbin::run(|| {
        let start = std::time::Instant::now();
        // numbers -> sieve stage per prime -> collector, each stage a green thread.
        let (tx, mut rx) = bobbin::sync::bounded::<u64>(16);
        let source = bobbin::spawn(move || {
            for n in 2..2_000u64 {
                tx.send(n).unwrap();
            }
        });
        let mut found = Vec::new();
        let mut stages = Vec::new();
        while let Ok(p) = rx.recv() {
            found.push(p);
            let (next_tx, next_rx) = bobbin::sync::bounded::<u64>(16);
            let input = std::mem::replace(&mut rx, next_rx);
            stages.push(bobbin::spawn(move || {
                for n in input.iter() {
                    if n % p != 0 {
                        next_tx.send(n).unwrap();
                    }
                }
            }));
        }
        source.join().unwrap();
        for s in stages {
            s.join().unwrap();
        }
        (found, start.elapsed())
    });
    println!(
        "   a stage per prime found: the {} primes below 2000 (the last {}) in {:.1} ms",
        primes.len(),
        primes.last().copied().unwrap_or(0),
        elapsed.as_secs_f64() * 1e3
    );

    let (woke, elapsed) = bobbin::run(|| {
        let start = Instant::now();
        let (tx, rx) = bobbin::sync::channel();
        for ms in [30u64, 10, 20] {
            let tx = tx.clone();
            bobbin::spawn(move || {
                bobbin::sleep(std::time::Duration::from_millis(ms));
                tx.send(ms.to_string()).unwrap();
            });
        }
        drop(tx);
        (rx.iter().collect::<Vec<_>>(), start.elapsed())
    });
    println!(
        "   three green threads slept 30, 10 and 20 ms on one OS thread: woke in the order {} ms, all within {:.1} ms",
        woke.join(", "),
        elapsed.as_secs_f64() * 1e3
    );
}

/// Fibonacci with a green thread per call down to `cutoff`, below which it recurses
/// plainly; counts the green threads it spawned.
fn par_fib(n: u64, cutoff: u64, spawned: &Arc<AtomicU64>) -> u64 {
    if n <= cutoff {
        return seq_fib(n);
    }
    spawned.fetch_add(1, Ordering::Relaxed);
    let s = Arc::clone(spawned);
    let left = bobbin::runtime::spawn(move || par_fib(n - 1, cutoff, &s));
    let right = par_fib(n - 2, cutoff, spawned);
    left.join().expect("fib task") + right
}

fn seq_fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        seq_fib(n - 1) + seq_fib(n - 2)
    }
}

fn parallel() -> Result<(), Error> {
    println!("== 7. runtime: fib with a green thread per call, on 1 and then 2 workers that steal work");
    const N: u64 = 32;
    const CUTOFF: u64 = 12;
    const RUNS: usize = 5;
    let mut best = Vec::new();
    for workers in [1, 2] {
        let rt = Runtime::builder().workers(workers).build()?;
        let spawned = Arc::new(AtomicU64::new(0));
        let mut times = Vec::new();
        let mut value = 0;
        for _ in 0..RUNS {
            spawned.store(0, Ordering::Relaxed);
            let s = Arc::clone(&spawned);
            let start = Instant::now();
            value = rt.block_on(move || par_fib(N, CUTOFF, &s));
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
        let slowest = times.iter().copied().fold(0.0, f64::max);
        best.push(fastest);
        println!(
            "   fib({N}) = {value} on {workers} worker(s): {} green threads, {fastest:.1} ms (best of {RUNS}; slowest {slowest:.1})",
            spawned.load(Ordering::Relaxed),
        );
    }
    println!(
        "   speed-up from 1 to 2 workers: {:.2}x, best time against best time, on {} CPUs shared with whatever else runs",
        best[0] / best[1],
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}

fn io() {
    println!("== 8. I/O that parks the green thread: an echo server, a pipe and a blocking call");
    use std::io::{Read, Write};
    let (served, piped, offloaded) = bobbin::run(|| {
        // A server written as with std::net and threads: a green thread per connection.
        let listener = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = bobbin::spawn(move || {
            let conns: Vec<_> = listener
                .incoming()
                .take(100)
                .map(|s| {
                    let mut s = s.unwrap();
                    bobbin::spawn(move || {
                        let mut buf = [0; 64];
                        let n = s.read(&mut buf).unwrap();
                        s.write_all(&buf[..n]).unwrap();
                    })
                })
                .collect();
            conns.into_iter().map(|c| c.join().unwrap()).count()
        });
        let clients: Vec<_> = (0..100u32)
            .map(|i| {
                bobbin::spawn(move || {
                    let mut s = bobbin::net::TcpStream::connect(addr).unwrap();
                    s.write_all(&i.to_le_bytes()).unwrap();
                    let mut back = [0; 4];
                    s.read_exact(&mut back).unwrap();
                    u32::from_le_bytes(back) == i
                })
            })
            .collect();
        assert!(clients.into_iter().all(|c| c.join().unwrap()));
        // Any descriptor: a pipe whose reader parks until another green thread writes.
        let (r, w) = std::io::pipe().unwrap();
        let (r, w) = (bobbin::io::Async::new(r).unwrap(), bobbin::io::Async::new(w).unwrap());
        let writer = bobbin::spawn(move || (&w).write_all(b"through a pipe").unwrap());
        let mut piped = String::new();
        (&r).read_to_string(&mut piped).unwrap();
        writer.join().unwrap();
        // A call that blocks its OS thread goes to the offload pool; only this green
        // thread waits for it.
        let offloaded =
            bobbin::spawn_blocking(|| std::fs::read_to_string("/proc/self/status").map(|s| s.lines().count()));
        (server.join().unwrap(), piped, offloaded.join().unwrap().unwrap())
    });
    println!("   one OS thread served {served} connections, each on its own green thread, every echo checked");
    println!("   read {piped:?} from a pipe; a file read on the offload pool returned {offloaded} lines");
}

fn coordination() {
    println!("== 9. Coordination: locks, select, scopes, cancellation, names, locals, nested parks");
    use bobbin::sync::{bounded, channel, oneshot, Mutex, OnceLock};
    use std::time::Duration;
    bobbin::green_local! {
        static VISITS: std::cell::Cell<u32> = std::cell::Cell::new(0);
    }
    let rt = Runtime::builder().workers(2).build().unwrap();
    // A green-aware Mutex held across a park, by green threads on two workers.
    let counter = Arc::new(Mutex::new(0u64));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let counter = Arc::clone(&counter);
            rt.spawn(move || {
                for _ in 0..1_000 {
                    let mut n = counter.lock().unwrap();
                    *n += 1;
                    if n.is_multiple_of(500) {
                        bobbin::yield_now(); // parks others that want the lock, not the worker
                    }
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    println!("   8 green threads on 2 workers counted to {} under one Mutex", *counter.lock().unwrap());

    let report = bobbin::run(|| {
        // select over two channels of different types, with a timeout arm.
        let (numbers, numbers_rx) = bounded::<u32>(0); // a rendezvous channel
        let (words, words_rx) = channel::<&str>();
        bobbin::spawn(move || numbers.send(7).unwrap());
        bobbin::spawn(move || words.send("seven").unwrap());
        let mut picked = Vec::new();
        while picked.len() < 2 {
            bobbin::select! {
                recv(numbers_rx) -> n => if let Ok(n) = n { picked.push(n.to_string()) },
                recv(words_rx) -> w => if let Ok(w) = w { picked.push(w.to_string()) },
                default(Duration::from_secs(10)) => break,
            }
        }
        picked.sort();
        // Scoped green threads borrow from the stack of the one that waits for them.
        let text = String::from("borrowed, not cloned");
        let lens = bobbin::scope(|s| {
            let a = s.spawn(|| text.split(' ').count());
            let b = s.spawn(|| text.len());
            (a.join().unwrap(), b.join().unwrap())
        });
        // Cancellation unwinds a parked green thread; its joiner is told.
        let (_keep, never) = channel::<()>();
        let stuck = bobbin::Builder::new().name("stuck".into()).spawn(move || never.recv()).unwrap();
        bobbin::yield_now();
        stuck.cancel();
        let cancelled = stuck.join().unwrap_err();
        // A green-thread local is per green thread, not per OS thread.
        let visits: Vec<u32> = (1..=3)
            .map(|k| {
                bobbin::spawn(move || {
                    (0..k).fold(0, |_, _| {
                        VISITS.with(|v| {
                            v.set(v.get() + 1);
                            v.get()
                        })
                    })
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        // A generator that parks its green thread: it receives, the green thread waits.
        let (tx, rx) = channel::<u32>();
        bobbin::spawn(move || (1..=4).for_each(|i| tx.send(i).unwrap()));
        let doubled: Vec<u32> = Generator::new(move |y| rx.iter().for_each(|i| y.suspend(i * 2))).collect();
        // A value initialised once; a one-message reply.
        static GREETING: OnceLock<String> = OnceLock::new();
        let (reply, answer) = oneshot::channel();
        bobbin::spawn(move || reply.send(GREETING.get_or_init(|| "hello".into()).len()).unwrap());
        (picked, lens, cancelled.to_string(), visits, doubled, answer.recv().unwrap())
    });
    let (picked, lens, cancelled, visits, doubled, greeting_len) = report;
    println!("   select picked {picked:?} from a rendezvous channel of u32 and a channel of &str");
    println!("   two scoped green threads read a borrowed String: {} words, {} bytes", lens.0, lens.1);
    println!("   cancelled: {cancelled}");
    println!("   three green threads counted their own visits in one green_local!: {visits:?}");
    println!("   a generator that receives from a channel (its green thread parks) doubled {doubled:?}");
    println!("   a oneshot reply carried the length of a OnceLock's value: {greeting_len}");
}

fn main() -> Result<(), Error> {
    low_level()?;
    backstop_scheduler()?;
    coroutines();
    generators();
    overflow()?;
    green_threads();
    parallel()?;
    io();
    coordination();
    Ok(())
}
