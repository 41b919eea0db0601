use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use super::*;

#[test]
fn a_token_of_a_dropped_registration_finds_nothing_even_when_its_slot_and_number_are_reused() {
    let reactor = Reactor::new().unwrap();
    let (r1, _w1) = std::io::pipe().unwrap();
    let token_of = |reg: &Registration| token(reg.index, reactor.shared.slab().slots[reg.index].generation);
    let first = reactor.register(r1.as_raw_fd()).unwrap();
    let (old_token, old_index) = (token_of(&first), first.index);
    drop(first);
    drop(r1);
    let (r2, _w2) = std::io::pipe().unwrap();
    let second = reactor.register(r2.as_raw_fd()).unwrap();
    assert_eq!(second.index, old_index, "the slot is reused");
    let new_token = token_of(&second);
    assert_ne!(new_token, old_token);
    let slab = reactor.shared.slab();
    assert!(slab.find(old_token).is_none(), "the old token is stale");
    assert!(Arc::ptr_eq(slab.find(new_token).unwrap(), &second.source));
}

#[test]
fn readiness_reported_while_an_attempt_ran_is_not_cleared_by_it() {
    let reactor = Reactor::new().unwrap();
    let (r, _w) = std::io::pipe().unwrap();
    let reg = reactor.register(r.as_raw_fd()).unwrap();
    reg.source.report(READABLE);
    let before = reg.snapshot();
    // An event arrives while the attempt runs; the attempt then says "would block".
    reg.source.report(READABLE);
    reg.clear(Direction::Read, before);
    assert_ne!(reg.source.readiness.load(Ordering::Acquire) & READABLE, 0, "the newer event survives");
    // Without a newer event, the readiness the attempt saw is forgotten.
    reg.clear(Direction::Read, reg.snapshot());
    assert_eq!(reg.source.readiness.load(Ordering::Acquire) & READABLE, 0);
}

#[test]
fn a_waiter_learns_that_its_registration_was_closed() {
    crate::sched::run(|| {
        let (r, _w) = std::io::pipe().unwrap();
        let reg = Rc::new(
            super::super::scheduler::with_current_reactor(|reactor| reactor.register(r.as_raw_fd()))
                .expect("on a green thread")
                .unwrap()
                .unwrap(),
        );
        let outcome = Rc::new(Cell::new(None));
        let waiter = {
            let (reg, outcome) = (Rc::clone(&reg), Rc::clone(&outcome));
            crate::sched::spawn(move || outcome.set(Some(reg.wait(Direction::Read, None))))
        };
        crate::sched::yield_now(); // the waiter parks: nothing is written
        assert_eq!(outcome.take(), None);
        reg.close();
        waiter.join().unwrap();
        assert_eq!(outcome.take(), Some(Err(WaitError::Closed)));
    });
}

#[test]
fn a_closed_half_stays_reported_after_a_read_drained_the_data() {
    let reactor = Reactor::new().unwrap();
    let (r, _w) = std::io::pipe().unwrap();
    let reg = reactor.register(r.as_raw_fd()).unwrap();
    // The data and the end of the stream in one event; a short read then drains the data.
    reg.source.report(READABLE | READ_CLOSED);
    reg.clear(Direction::Read, reg.snapshot());
    assert!(reg.snapshot().is_ready(Direction::Read), "the next read must try, and see the end");
}
