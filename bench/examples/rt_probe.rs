//! Parallel fib with a green thread per call, for instruction counting under callgrind:
//! `rt_probe N WORKERS RUNS`.
fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = bobbin::runtime::spawn(move || fib(n - 1));
    let b = fib(n - 2);
    a.join().unwrap() + b
}

/// The fan-out/fan-in workload of `benches/runtime.rs`: 100,000 messages through a bounded
/// channel of 128 to 4 consumers.
fn fanout(rt: &bobbin::Runtime) -> u64 {
    rt.block_on(|| {
        let (tx, rx) = bobbin::sync::bounded::<u64>(128);
        let (sum_tx, sum_rx) = bobbin::sync::channel::<u64>();
        for _ in 0..4 {
            let rx = rx.clone();
            let sum_tx = sum_tx.clone();
            bobbin::runtime::spawn(move || sum_tx.send(rx.iter().sum()).unwrap());
        }
        drop((rx, sum_tx));
        let producer = bobbin::runtime::spawn(move || {
            for i in 0..100_000 {
                tx.send(i).unwrap();
            }
        });
        let total = sum_rx.iter().sum();
        producer.join().unwrap();
        total
    })
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("fanout") {
        let workers: usize = std::env::args().nth(2).map_or(2, |s| s.parse().unwrap());
        let rt = bobbin::Runtime::builder().workers(workers).build().unwrap();
        let runs: usize = std::env::args().nth(3).map_or(5, |s| s.parse().unwrap());
        for _ in 0..runs {
            let t = std::time::Instant::now();
            let total = fanout(&rt);
            println!("fanout on {workers} worker(s): {total} in {:?}", t.elapsed());
        }
        return;
    }
    let mut args = std::env::args().skip(1).map(|s| s.parse::<u64>().unwrap());
    let n = args.next().unwrap_or(20);
    let workers = args.next().unwrap_or(1) as usize;
    let runs = args.next().unwrap_or(1);
    let rt = bobbin::Runtime::builder().workers(workers).build().unwrap();
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let r = rt.block_on(move || fib(n));
        println!("fib({n}) = {r} on {workers} worker(s): {:?}", t.elapsed());
    }
}
