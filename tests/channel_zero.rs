//! Rendezvous channels (`bounded(0)`): a send completes only by handing its message to a
//! receiver. Orderings are forced with green threads of one scheduler (which run only when
//! the others park or yield), never with sleeps.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bobbin::sync::{bounded, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use bobbin::{run, spawn, yield_now, Runtime};

type Log = Rc<RefCell<Vec<&'static str>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn nothing_passes_without_a_partner() {
    let (tx, rx) = bounded(0);
    assert_eq!(tx.try_send(7), Err(TrySendError::Full(7)));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn len_capacity_empty_and_full_of_a_rendezvous() {
    let (tx, rx) = bounded::<u32>(0);
    for _ in 0..2 {
        assert_eq!((tx.capacity(), rx.capacity()), (Some(0), Some(0)));
        assert_eq!((tx.len(), rx.len()), (0, 0));
        assert!(tx.is_empty() && rx.is_empty());
        assert!(tx.is_full() && rx.is_full());
        // The same after a message has passed.
        let tx2 = tx.clone();
        let t = std::thread::spawn(move || tx2.send(1).unwrap());
        assert_eq!(rx.recv(), Ok(1));
        t.join().unwrap();
    }
}

#[test]
fn a_send_completes_only_when_a_receiver_takes_the_message() {
    let order = run(|| {
        let (tx, rx) = bounded(0);
        let log = log();
        let sender = {
            let log = log.clone();
            spawn(move || {
                tx.send(1).unwrap();
                log.borrow_mut().push("first send done");
                tx.send(2).unwrap();
                log.borrow_mut().push("second send done");
            })
        };
        for _ in 0..5 {
            yield_now(); // the sender has every chance to run: it must stay parked
        }
        log.borrow_mut().push("receiving");
        assert_eq!(rx.recv(), Ok(1));
        for _ in 0..5 {
            yield_now();
        }
        log.borrow_mut().push("receiving again");
        assert_eq!(rx.recv(), Ok(2));
        sender.join().unwrap();
        log.take()
    });
    assert_eq!(order, ["receiving", "first send done", "receiving again", "second send done"]);
}

#[test]
fn a_receive_waits_for_a_sender() {
    let order = run(|| {
        let (tx, rx) = bounded(0);
        let log = log();
        let receiver = {
            let log = log.clone();
            spawn(move || {
                let got = rx.recv();
                log.borrow_mut().push("received");
                assert_eq!(rx.recv(), Err(RecvError));
                got
            })
        };
        for _ in 0..5 {
            yield_now();
        }
        log.borrow_mut().push("sending");
        tx.send("hello").unwrap();
        drop(tx);
        let got = receiver.join().unwrap();
        assert_eq!(got, Ok("hello"));
        log.take()
    });
    assert_eq!(order, ["sending", "received"]);
}

#[test]
fn try_send_succeeds_only_while_a_receiver_waits() {
    run(|| {
        let (tx, rx) = bounded(0);
        assert_eq!(tx.try_send(7), Err(TrySendError::Full(7)));
        let receiver = spawn(move || rx.recv());
        yield_now(); // the receiver parks in recv
        assert_eq!(tx.try_send(8), Ok(()));
        // Nobody waits any more: the next one finds no partner.
        assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
        assert_eq!(receiver.join().unwrap(), Ok(8));
        // The receiver is gone.
        assert_eq!(tx.try_send(10), Err(TrySendError::Disconnected(10)));
    });
}

#[test]
fn try_recv_succeeds_only_while_a_sender_waits() {
    run(|| {
        let (tx, rx) = bounded(0);
        let sender = spawn(move || {
            tx.send(7).unwrap();
            tx.send(8).unwrap();
        });
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        yield_now(); // the sender parks offering 7
        assert_eq!(rx.try_recv(), Ok(7));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty)); // it has not run since
        yield_now();
        assert_eq!(rx.try_recv(), Ok(8));
        sender.join().unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

#[test]
fn recv_timeout_times_out_then_receives_then_reports_disconnection() {
    run(|| {
        let (tx, rx) = bounded(0);
        assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
        // Only after the timeout does a sender exist that runs.
        let sender = spawn(move || tx.send(7).unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(7));
        sender.join().unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Err(RecvTimeoutError::Disconnected));
    });
}

#[test]
fn send_timeout_gives_the_message_back_and_leaves_nothing_behind() {
    run(|| {
        let (tx, rx) = bounded(0);
        assert_eq!(tx.send_timeout(7, Duration::from_millis(5)), Err(SendTimeoutError::Timeout(7)));
        // The timed-out message is not waiting in the channel for a later receiver.
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let receiver = spawn(move || rx.recv());
        assert_eq!(tx.send_timeout(8, Duration::from_secs(60)), Ok(()));
        assert_eq!(receiver.join().unwrap(), Ok(8));
        assert_eq!(tx.send_timeout(9, Duration::from_secs(60)), Err(SendTimeoutError::Disconnected(9)));
    });
}

#[test]
fn dropping_the_receivers_wakes_a_parked_sender_with_its_message() {
    run(|| {
        let (tx, rx) = bounded(0);
        let sender = spawn(move || tx.send(String::from("kept")));
        yield_now(); // parked offering its message
        drop(rx);
        assert_eq!(sender.join().unwrap(), Err(SendError(String::from("kept"))));
    });
}

#[test]
fn dropping_the_senders_wakes_a_parked_receiver() {
    run(|| {
        let (tx, rx) = bounded::<()>(0);
        let receiver = spawn(move || rx.recv());
        yield_now();
        drop(tx);
        assert_eq!(receiver.join().unwrap(), Err(RecvError));
    });
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>, u64);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn every_message_is_dropped_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = bounded(0);
    let n = 1_000;
    let senders: Vec<_> = (0..2)
        .map(|t| {
            let (tx, drops) = (tx.clone(), Arc::clone(&drops));
            std::thread::spawn(move || {
                for i in 0..n {
                    tx.send(Counted(Arc::clone(&drops), t * n + i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut sum = 0;
    let mut count = 0;
    for m in &rx {
        sum += m.1;
        count += 1;
    }
    senders.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(count, 2 * n);
    assert_eq!(sum, (0..2 * n).sum::<u64>());
    assert_eq!(drops.load(Ordering::SeqCst), 2 * n as usize);
    // Timed-out sends hand their message back, which is then dropped by the caller.
    let (tx, _rx) = bounded(0);
    let back = tx.send_timeout(Counted(Arc::clone(&drops), 0), Duration::from_millis(1)).unwrap_err();
    assert_eq!(drops.load(Ordering::SeqCst), 2 * n as usize);
    drop(back);
    assert_eq!(drops.load(Ordering::SeqCst), 2 * n as usize + 1);
}

#[test]
fn many_senders_and_receivers_across_workers_and_threads_pass_every_message_once() {
    const PER: u64 = 2_000;
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = bounded::<u64>(0);
    let mut producers = Vec::new();
    for p in 0..4u64 {
        let tx = tx.clone();
        let body = move || (0..PER).for_each(|i| tx.send(p * PER + i).unwrap());
        if p % 2 == 0 {
            producers.push(Err(rt.spawn(body)));
        } else {
            producers.push(Ok(std::thread::spawn(body)));
        }
    }
    drop(tx);
    let mut consumers = Vec::new();
    for c in 0..4 {
        let rx = rx.clone();
        let body = move || rx.iter().fold((0u64, 0u64), |(n, s), v| (n + 1, s + v));
        if c % 2 == 0 {
            consumers.push(Err(rt.spawn(body)));
        } else {
            consumers.push(Ok(std::thread::spawn(body)));
        }
    }
    drop(rx);
    for p in producers {
        match p {
            Ok(t) => t.join().unwrap(),
            Err(g) => g.join().unwrap(),
        }
    }
    let (mut n, mut s) = (0, 0);
    for c in consumers {
        let (cn, cs) = match c {
            Ok(t) => t.join().unwrap(),
            Err(g) => g.join().unwrap(),
        };
        n += cn;
        s += cs;
    }
    assert_eq!(n, 4 * PER);
    assert_eq!(s, (0..4 * PER).sum::<u64>());
}

#[test]
fn a_rendezvous_between_plain_threads_alternates() {
    // Each side waits for the other: the receiver's length check always sees nothing held.
    let (tx, rx) = bounded(0);
    let t = std::thread::spawn(move || {
        for i in 0..5_000 {
            tx.send(i).unwrap();
            assert_eq!(tx.len(), 0);
        }
    });
    for i in 0..5_000 {
        assert_eq!(rx.recv(), Ok(i));
        assert_eq!(rx.len(), 0);
    }
    t.join().unwrap();
}
