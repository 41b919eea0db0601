//! The parts of the channel API beside sending and receiving: lengths and capacities,
//! sends with timeouts and deadlines (checked by ordering), iterators, unwind safety.

use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::{Duration, Instant};

use bobbin::sync::{bounded, channel, Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use bobbin::{run, spawn, yield_now};

#[test]
fn len_empty_full_and_capacity_follow_the_queue() {
    let (tx, rx) = bounded::<u32>(2);
    assert_eq!((tx.capacity(), rx.capacity()), (Some(2), Some(2)));
    assert!(tx.is_empty() && rx.is_empty() && !tx.is_full() && !rx.is_full());
    tx.send(1).unwrap();
    assert_eq!((tx.len(), rx.len()), (1, 1));
    assert!(!rx.is_empty() && !rx.is_full());
    tx.send(2).unwrap();
    assert_eq!(rx.len(), 2);
    assert!(tx.is_full() && rx.is_full());
    rx.recv().unwrap();
    assert_eq!(tx.len(), 1);
    assert!(!tx.is_full());

    let (tx, rx) = channel::<u32>();
    assert_eq!((tx.capacity(), rx.capacity()), (None, None));
    for i in 0..100 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.len(), 100);
    assert!(!tx.is_full());
}

#[test]
fn send_timeout_times_out_on_a_full_channel_then_sends_once_there_is_room() {
    run(|| {
        let (tx, rx) = bounded(1);
        tx.send(1).unwrap();
        assert_eq!(tx.send_timeout(2, Duration::from_millis(5)), Err(SendTimeoutError::Timeout(2)));
        assert_eq!(rx.len(), 1, "the timed-out message is not queued");
        // Only after the timeout does a receiver run and make room.
        let receiver = spawn(move || [rx.recv(), rx.recv()]);
        assert_eq!(tx.send_timeout(3, Duration::from_secs(60)), Ok(()));
        let got = receiver.join().unwrap();
        assert_eq!(got, [Ok(1), Ok(3)]);
        assert_eq!(tx.send_timeout(4, Duration::from_secs(60)), Err(SendTimeoutError::Disconnected(4)));
    });
}

#[test]
fn send_deadline_and_recv_deadline_in_the_past_only_try() {
    let past = Instant::now();
    let (tx, rx) = bounded(1);
    assert_eq!(tx.send_deadline('a', past), Ok(()), "room now: no waiting needed");
    assert_eq!(tx.send_deadline('b', past), Err(SendTimeoutError::Timeout('b')));
    assert_eq!(rx.recv_deadline(past), Ok('a'));
    assert_eq!(rx.recv_deadline(past), Err(RecvTimeoutError::Timeout));
    drop(tx);
    assert_eq!(rx.recv_deadline(past), Err(RecvTimeoutError::Disconnected));
}

#[test]
fn a_sender_parked_with_a_deadline_is_woken_by_room() {
    let order = run(|| {
        let (tx, rx) = bounded(1);
        tx.send(0).unwrap();
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let sender = {
            let log = log.clone();
            spawn(move || {
                let r = tx.send_deadline(1, Instant::now() + Duration::from_secs(60));
                log.borrow_mut().push("sent");
                r
            })
        };
        yield_now(); // parks: full
        log.borrow_mut().push("making room");
        assert_eq!(rx.recv(), Ok(0));
        assert_eq!(sender.join().unwrap(), Ok(()));
        assert_eq!(rx.recv(), Ok(1));
        log.take()
    });
    assert_eq!(order, ["making room", "sent"]);
}

#[test]
fn receivers_iterate_by_reference_by_value_and_without_waiting() {
    let (tx, rx) = channel();
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
    tx.send(3).unwrap();
    let mut by_ref = Vec::new();
    for v in &rx {
        by_ref.push(v);
        if v == 3 {
            break;
        }
    }
    assert_eq!(by_ref, [3]);
    tx.send(4).unwrap();
    drop(tx);
    assert_eq!(rx.into_iter().collect::<Vec<_>>(), [4]);
}

#[test]
fn the_ends_are_unwind_safe_send_and_sync() {
    fn check<T: UnwindSafe + RefUnwindSafe + Send + Sync>() {}
    check::<Sender<std::cell::Cell<u8>>>();
    check::<Receiver<std::cell::Cell<u8>>>();
    // And usable after a caught panic.
    let (tx, rx) = channel();
    let r = std::panic::catch_unwind(|| {
        tx.send(1).unwrap();
        panic!("after a send");
    });
    assert!(r.is_err());
    assert_eq!(rx.recv(), Ok(1));
}
