//! One workload per run, `N` iterations: a coroutine's resume + suspend round trip
//! (`switch-*`) or a generator's item (`gen-*`), for bobbin and corosensei. See count.sh.
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[2].parse().expect("N");
    match args[1].as_str() {
        "gen-bobbin" => {
            let g = bobbin::Generator::new(move |y| (0..n).for_each(|i| y.suspend(i)));
            black_box(g.map(black_box).sum::<u64>());
        }
        "gen-corosensei" => {
            let mut co = corosensei::Coroutine::<(), u64, ()>::new(move |y, ()| {
                (0..n).for_each(|i| {
                    y.suspend(i);
                })
            });
            let mut s = 0u64;
            while let corosensei::CoroutineResult::Yield(v) = co.resume(()) {
                s += black_box(v);
            }
            black_box(s);
        }
        "switch-bobbin" => {
            let mut co = bobbin::Coroutine::<(), (), ()>::new(|y, ()| loop {
                y.suspend(())
            });
            for _ in 0..n {
                black_box(co.resume(()));
            }
        }
        "switch-corosensei" => {
            let mut co = corosensei::Coroutine::<(), (), ()>::new(|y, ()| loop {
                y.suspend(())
            });
            for _ in 0..n {
                black_box(co.resume(()));
            }
        }
        w => panic!("unknown workload {w}"),
    }
}
