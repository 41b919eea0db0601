//! One scheduler workload of `bobbin_bench::workloads`, for instruction counting under
//! callgrind: `sched_probe pingpong ROUNDS` or `sched_probe spawn TASKS`.
fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "pingpong".into());
    let n: usize = args.next().map_or(10_000, |s| s.parse().unwrap());
    let t = std::time::Instant::now();
    match which.as_str() {
        "pingpong" => {
            std::hint::black_box(bobbin_bench::workloads::pingpong_bobbin(n as u64));
        }
        "spawn" => bobbin_bench::workloads::spawn_yield_bobbin(n, 10),
        other => panic!("unknown workload {other}"),
    }
    println!("{which} {n}: {:?}", t.elapsed());
}
