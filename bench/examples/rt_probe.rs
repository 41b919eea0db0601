//! The runtime workloads of `benches/runtime.rs` (bobbin only), timed run by run, for
//! profiling and for seeing how runs spread: `rt_probe N WORKERS RUNS` runs fib(N) with a
//! green thread per call, `rt_probe fanout WORKERS RUNS` the fan-out.
fn main() {
    if std::env::args().nth(1).as_deref() == Some("fanout") {
        let workers: usize = std::env::args().nth(2).map_or(2, |s| s.parse().unwrap());
        let rt = bobbin::Runtime::builder().workers(workers).build().unwrap();
        let runs: usize = std::env::args().nth(3).map_or(5, |s| s.parse().unwrap());
        for _ in 0..runs {
            let t = std::time::Instant::now();
            let total = bobbin_bench::workloads::fanout_bobbin(&rt);
            println!("fanout on {workers} worker(s): {total} in {:?}", t.elapsed());
        }
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("tokio") {
        let mut args = std::env::args().skip(2).map(|s| s.parse::<u64>().unwrap());
        let n = args.next().unwrap_or(20);
        let workers = args.next().unwrap_or(1) as usize;
        let runs = args.next().unwrap_or(1);
        let rt = bobbin_bench::workloads::tokio_multi_thread(workers);
        for _ in 0..runs {
            let t = std::time::Instant::now();
            let r = bobbin_bench::workloads::tokio_run(&rt, bobbin_bench::workloads::fib_tokio(n));
            println!("tokio fib({n}) = {r} on {workers} worker(s): {:?}", t.elapsed());
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
        let r = rt.block_on(move || bobbin_bench::workloads::fib_bobbin(n));
        println!("fib({n}) = {r} on {workers} worker(s): {:?}", t.elapsed());
    }
}
