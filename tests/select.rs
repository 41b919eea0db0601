//! Select and `select!`: exactly one operation takes effect, unselected sends keep their
//! message, disconnection makes an operation ready, timeouts (checked by ordering, never
//! by the clock), rendezvous pairs made through selects, fairness, and a stress over
//! runtime workers and OS threads.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bobbin::sync::{bounded, channel, Receiver, RecvError, Select, SendError, Sender, TryRecvError};
use bobbin::{run, select, spawn, yield_now, Runtime};

/// Counts the messages made and dropped.
#[derive(Default)]
struct Census {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

struct Tracked(Arc<Census>);

impl Tracked {
    fn new(c: &Arc<Census>) -> Tracked {
        c.made.fetch_add(1, Ordering::SeqCst);
        Tracked(Arc::clone(c))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_select_takes_the_ready_receive_and_only_that() {
    let (tx1, rx1) = channel::<u32>();
    let (tx2, rx2) = channel::<&str>();
    tx2.send("two").unwrap();
    let mut sel = Select::new();
    let i1 = sel.add_recv(&rx1);
    let i2 = sel.add_recv(&rx2);
    let oper = sel.select();
    assert_eq!(oper.index(), i2);
    assert_eq!(oper.recv(&rx2), Ok("two"));
    assert_ne!(i1, i2);
    // Both ready: exactly one message is taken per select.
    for round in 0..50 {
        tx1.send(round).unwrap();
        tx2.send("again").unwrap();
        let taken = select! {
            recv(rx1) -> m => { assert_eq!(m, Ok(round)); 1 }
            recv(rx2) -> m => { assert_eq!(m, Ok("again")); 2 }
        };
        assert_eq!(rx1.len() + rx2.len(), 1, "round {round}: exactly one message left");
        // Empty both for the next round.
        if taken == 1 {
            rx2.recv().unwrap();
        } else {
            rx1.recv().unwrap();
        }
    }
}

#[test]
fn an_unselected_send_keeps_its_message() {
    let census = Arc::new(Census::default());
    let (full_tx, full_rx) = bounded::<Tracked>(1);
    full_tx.send(Tracked::new(&census)).unwrap();
    let (zero_tx, zero_rx) = bounded::<Tracked>(0);
    let (tx, rx) = channel::<u8>();
    for _ in 0..20 {
        tx.send(1).unwrap();
        let got = select! {
            send(full_tx, Tracked::new(&census)) -> _ => panic!("a full channel's send was picked"),
            send(zero_tx, Tracked::new(&census)) -> _ => panic!("a rendezvous send with no receiver was picked"),
            recv(rx) -> m => m.unwrap(),
        };
        assert_eq!(got, 1);
    }
    // Only the message queued before was ever made; none was made and lost.
    assert_eq!(census.made.load(Ordering::SeqCst), 1);
    assert_eq!(census.dropped.load(Ordering::SeqCst), 0);
    // A picked send delivers its message exactly once.
    drop(full_rx.recv().unwrap());
    // The receiver stays alive until both selects are done: were it dropped after its one
    // receive, a disconnected send would be ready too, and the second select could pick it.
    let r = std::thread::spawn(move || (zero_rx.recv().map(drop), zero_rx));
    for _ in 0..2 {
        select! {
            send(full_tx, Tracked::new(&census)) -> res => res.unwrap(),
            send(zero_tx, Tracked::new(&census)) -> res => res.unwrap(),
        }
    }
    let (received, _zero_rx) = r.join().unwrap();
    received.unwrap();
    drop((full_tx, full_rx)); // the queued message goes with the channel
    assert_eq!(census.made.load(Ordering::SeqCst), 3);
    assert_eq!(census.dropped.load(Ordering::SeqCst), 3);
}

#[test]
fn disconnection_makes_an_operation_ready() {
    let (tx, rx) = channel::<u8>();
    let (_keep, idle) = channel::<u8>();
    drop(tx);
    let got = select! {
        recv(idle) -> _ => panic!("nothing was sent"),
        recv(rx) -> m => m,
        default => panic!("a disconnected receive is ready: default must not run"),
    };
    assert_eq!(got, Err(RecvError));
    let (tx, rx) = bounded::<String>(0);
    drop(rx);
    let got = select! {
        send(tx, String::from("back")) -> res => res,
        default(Duration::from_secs(60)) => panic!("a disconnected send is ready"),
    };
    assert_eq!(got, Err(SendError(String::from("back"))));
}

#[test]
fn default_runs_only_when_nothing_is_ready() {
    let (tx, rx) = channel();
    assert!(select! { recv(rx) -> _ => false, default => true });
    tx.send(()).unwrap();
    assert!(select! { recv(rx) -> _ => true, default => false });
    // Only a default arm: it runs.
    assert_eq!(select! { default => 5 }, 5);
    // Ends given by reference, bodies that leave the enclosing loop.
    let (tx, rx) = (&tx, &rx);
    let mut rounds = 0;
    loop {
        tx.send(()).unwrap();
        select! {
            recv(rx) -> _ => {
                rounds += 1;
                if rounds == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(rounds, 3);
}

#[test]
fn a_select_times_out_when_nothing_is_sent_before_the_timeout() {
    let (tx, rx) = channel::<u32>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    // The sender sends only once the select below has timed out.
    let sender = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        tx.send(9).unwrap();
    });
    let first = select! {
        recv(rx) -> m => Some(m),
        default(Duration::from_millis(20)) => None,
    };
    assert_eq!(first, None);
    go_tx.send(()).unwrap();
    let second = select! {
        recv(rx) -> m => Some(m),
        default(Duration::from_secs(60)) => None,
    };
    assert_eq!(second, Some(Ok(9)));
    sender.join().unwrap();
    // The same through Select, with a rendezvous send nobody takes.
    let (ztx, _zrx) = bounded::<u8>(0);
    let mut sel = Select::new();
    sel.add_send(&ztx);
    assert!(sel.select_timeout(Duration::from_millis(5)).is_err());
}

#[test]
fn select_parks_a_green_thread_until_another_sends() {
    let got = run(|| {
        let (tx1, rx1) = channel::<u32>();
        let (tx2, rx2) = bounded::<u32>(0);
        let selector = spawn(move || {
            let mut got = Vec::new();
            for _ in 0..2 {
                select! {
                    recv(rx1) -> m => got.push(m.unwrap()),
                    recv(rx2) -> m => got.push(m.unwrap() * 100),
                }
            }
            got
        });
        yield_now(); // the selector parks
        tx2.send(2).unwrap(); // a rendezvous with the parked select
        yield_now();
        tx1.send(1).unwrap();
        selector.join().unwrap()
    });
    assert_eq!(got, [200, 1]);
}

#[test]
fn select_sends_meet_plain_receivers_on_a_rendezvous() {
    run(|| {
        let (tx, rx) = bounded::<u32>(0);
        let (_keep, idle) = channel::<u32>();
        let receiver = spawn(move || rx.recv());
        yield_now(); // the receiver parks: the send below is ready
        select! {
            send(tx, 5) -> res => res.unwrap(),
            recv(idle) -> _ => unreachable!(),
        }
        assert_eq!(receiver.join().unwrap(), Ok(5));
    });
    run(|| {
        let (tx, rx) = bounded::<u32>(0);
        // A select send parks first, then a plain receive claims it.
        let selector = spawn(move || {
            select! {
                send(tx, 6) -> res => res.unwrap(),
            }
        });
        yield_now();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "try_recv does not wait for a select");
        assert_eq!(rx.recv(), Ok(6));
        selector.join().unwrap();
    });
}

#[test]
fn a_select_does_not_pair_with_itself() {
    let (tx, rx) = bounded::<u8>(0);
    let mut sel = Select::new();
    sel.add_recv(&rx);
    sel.add_send(&tx);
    assert!(sel.select_timeout(Duration::from_millis(10)).is_err());
}

/// Every thread selects between receiving and sending on one rendezvous channel: they
/// must pair up, none receiving its own message.
fn matching(threads: usize, extra_send: bool) {
    let (tx, rx) = bounded::<usize>(0);
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (tx, rx) = (tx.clone(), rx.clone());
            std::thread::spawn(move || {
                select! {
                    recv(rx) -> m => assert_ne!(m, Ok(i)),
                    send(tx, i) -> res => res.unwrap(),
                }
            })
        })
        .collect();
    if extra_send {
        tx.send(usize::MAX).unwrap();
    }
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn selects_pair_up_on_a_rendezvous() {
    matching(20, false);
    matching(21, true);
}

#[test]
fn ready_reports_without_taking() {
    let (tx, rx) = channel::<u8>();
    let mut sel = Select::new();
    let i = sel.add_recv(&rx);
    assert!(sel.try_ready().is_err());
    assert!(sel.ready_timeout(Duration::from_millis(5)).is_err());
    let t = std::thread::spawn(move || tx.send(3).unwrap());
    assert_eq!(sel.ready(), i);
    assert_eq!(rx.try_recv(), Ok(3));
    t.join().unwrap();
}

#[test]
fn a_dropped_selection_gives_its_reservation_back() {
    let (tx, rx) = channel::<u8>();
    tx.send(1).unwrap();
    let outcome = std::panic::catch_unwind(|| {
        let mut sel = Select::new();
        sel.add_recv(&rx);
        let _ = sel.select(); // dropped without `recv`
    });
    assert!(outcome.is_err(), "dropping a selected operation panics");
    assert_eq!(rx.try_recv(), Ok(1), "the reserved message is free again");
}

#[test]
fn a_select_picks_among_ready_operations_at_random() {
    let (tx1, rx1) = channel::<()>();
    let (tx2, rx2) = channel::<()>();
    let mut hits = [0u32; 2];
    for _ in 0..2_000 {
        tx1.send(()).unwrap();
        tx2.send(()).unwrap();
        select! {
            recv(rx1) -> _ => { hits[0] += 1; rx2.recv().unwrap(); }
            recv(rx2) -> _ => { hits[1] += 1; rx1.recv().unwrap(); }
        }
    }
    // Always taking the first would give 2000 and 0.
    assert!(hits.iter().all(|&h| h > 500), "picks {hits:?}");
}

/// Producers select sends over three channels (bounded, rendezvous, unbounded) and
/// consumers select receives over them, on runtime workers and OS threads: every message
/// arrives exactly once.
#[test]
fn stress_selects_over_workers_and_threads_count_every_message_once() {
    const PRODUCERS: u64 = 6;
    const PER: u64 = 3_000;
    let watchdog = common::Watchdog::start(120, "stress_selects_over_workers_and_threads_count_every_message_once");

    let rt = Runtime::builder().workers(2).build().unwrap();
    let (a_tx, a_rx) = bounded::<u64>(1);
    let (b_tx, b_rx) = bounded::<u64>(0);
    let (c_tx, c_rx) = channel::<u64>();
    let count = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));

    let produce = |p: u64, a: Sender<u64>, b: Sender<u64>, c: Sender<u64>| {
        move || {
            for i in 0..PER {
                let v = p * PER + i;
                select! {
                    send(a, v) -> r => r.unwrap(),
                    send(b, v) -> r => r.unwrap(),
                    send(c, v) -> r => r.unwrap(),
                }
            }
        }
    };
    // Half the consumers wait with a timeout short enough to race the senders' claims: a
    // select that times out just as a sender reserves a message for it must take it.
    let consume = |rxs: [Receiver<u64>; 3], count: Arc<AtomicU64>, sum: Arc<AtomicU64>, timed: bool| {
        move || {
            let mut open = [true; 3];
            while open.iter().any(|&o| o) {
                let mut sel = Select::new();
                let ids: Vec<(usize, usize)> =
                    (0..3).filter(|&k| open[k]).map(|k| (sel.add_recv(&rxs[k]), k)).collect();
                let oper = if timed {
                    match sel.select_timeout(Duration::from_micros(100)) {
                        Ok(oper) => oper,
                        Err(_) => continue,
                    }
                } else {
                    sel.select()
                };
                let k = ids.iter().find(|(i, _)| *i == oper.index()).unwrap().1;
                match oper.recv(&rxs[k]) {
                    Ok(v) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        sum.fetch_add(v, Ordering::Relaxed);
                    }
                    Err(_) => open[k] = false,
                }
            }
        }
    };

    let mut green = Vec::new();
    let mut threads = Vec::new();
    for p in 0..PRODUCERS {
        let body = produce(p, a_tx.clone(), b_tx.clone(), c_tx.clone());
        if p % 2 == 0 {
            green.push(rt.spawn(body));
        } else {
            threads.push(std::thread::spawn(body));
        }
    }
    drop((a_tx, b_tx, c_tx));
    for k in 0..4 {
        let rxs = [a_rx.clone(), b_rx.clone(), c_rx.clone()];
        let body = consume(rxs, Arc::clone(&count), Arc::clone(&sum), k >= 2);
        if k % 2 == 0 {
            green.push(rt.spawn(body));
        } else {
            threads.push(std::thread::spawn(body));
        }
    }
    drop((a_rx, b_rx, c_rx));
    green.into_iter().for_each(|g| g.join().unwrap());
    threads.into_iter().for_each(|t| t.join().unwrap());
    watchdog.stop();
    let n = PRODUCERS * PER;
    assert_eq!(count.load(Ordering::SeqCst), n);
    assert_eq!(sum.load(Ordering::SeqCst), n * (n - 1) / 2);
}

/// A receiver selects with timeouts so short that senders often claim it just as its time
/// runs out: a claim that wins the race must be honoured (the message taken), one that
/// loses must leave the message for the next select. Every message arrives once.
#[test]
fn a_select_timing_out_as_a_sender_claims_it_loses_nothing() {
    // Under valgrind, which runs one thread at a time, a tenth: each message there costs
    // thread switches that take far longer than the 2 µs timeouts.
    let n: u64 = if common::under_valgrind() { 2_000 } else { 20_000 };
    let watchdog = common::Watchdog::start(120, "a_select_timing_out_as_a_sender_claims_it_loses_nothing");
    for cap in [Some(1), Some(0), None] {
        let (tx, rx) = match cap {
            Some(c) => bounded::<u64>(c),
            None => channel::<u64>(),
        };
        let (_idle_tx, idle) = channel::<u64>();
        let sender = std::thread::spawn(move || {
            for i in 0..n {
                tx.send(i).unwrap();
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let (mut count, mut sum, mut timeouts) = (0u64, 0u64, 0u64);
        loop {
            let mut sel = Select::new();
            let i_rx = sel.add_recv(&rx);
            sel.add_recv(&idle);
            match sel.select_timeout(Duration::from_micros(2)) {
                Err(_) => timeouts += 1,
                Ok(oper) => {
                    assert_eq!(oper.index(), i_rx);
                    match oper.recv(&rx) {
                        Ok(v) => {
                            count += 1;
                            sum += v;
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        sender.join().unwrap();
        assert_eq!((count, sum), (n, n * (n - 1) / 2), "capacity {cap:?}, {timeouts} timeouts");
    }
    watchdog.stop();
}

/// Two threads meet through selects on a rendezvous channel over and over, starting each
/// select at the same moment (a barrier): often neither finds the other when it first
/// looks, and both register. Each must look again under the lock that lists its entry and
/// find the other's, or both park for good (the watchdog ends the test then).
#[test]
fn two_selects_meet_on_a_rendezvous_again_and_again() {
    const N: u64 = 5_000;
    let watchdog = common::Watchdog::start(120, "two_selects_meet_on_a_rendezvous_again_and_again");
    let (tx, rx) = bounded::<u64>(0);
    let (_idle_tx, idle) = channel::<u64>();
    let idle2 = idle.clone();
    let start = Arc::new(std::sync::Barrier::new(2));
    let sender = {
        let start = Arc::clone(&start);
        std::thread::spawn(move || {
            for i in 0..N {
                start.wait();
                select! {
                    send(tx, i) -> res => res.unwrap(),
                    recv(idle2) -> _ => unreachable!(),
                }
            }
        })
    };
    let mut sum = 0;
    for _ in 0..N {
        start.wait();
        select! {
            recv(rx) -> v => sum += v.unwrap(),
            recv(idle) -> _ => unreachable!(),
        }
    }
    sender.join().unwrap();
    watchdog.stop();
    assert_eq!(sum, N * (N - 1) / 2);
}
