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

fn main() {
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
