//! Runs the round-robin scheduler of `examples/backstop_scheduler.rs` (the file itself, so
//! the example cannot drift from what is tested).

#[path = "../examples/backstop_scheduler.rs"]
#[allow(dead_code)] // the example's main and printing
mod backstop_scheduler;

use backstop_scheduler::{run, Returns};

#[test]
fn every_child_ends_through_the_backstop_with_its_direct_result() {
    let outcomes = run().unwrap();
    assert!(outcomes.len() >= 3, "a scheduler needs several children");
    for o in &outcomes {
        assert_eq!(
            o.scheduled,
            o.direct,
            "{}: read {} from the context, a direct call gives {}",
            o.name,
            o.show(o.scheduled),
            o.show(o.direct)
        );
        assert_eq!(o.finishes, 1, "{}: the backstop callback ran {} times", o.name, o.finishes);
        // One turn per yield the function makes, and the last turn runs it to its return.
        assert_eq!(o.turns, o.yields + 1, "{}: {} turns for {} yields", o.name, o.turns, o.yields);
    }
    assert!(outcomes.iter().any(|o| o.yields > 0), "no child yields mid-way");
    assert!(outcomes.iter().any(|o| o.returns == Returns::F64), "no result comes back in xmm0");
    assert!(outcomes.iter().any(|o| o.returns != Returns::F64), "no result comes back in rax");
}

#[test]
fn children_finish_in_round_robin_order() {
    let outcomes = run().unwrap();
    // In a round robin, a child that needs fewer turns finishes first; of two that need as
    // many, the one earlier in the queue does.
    for (i, a) in outcomes.iter().enumerate() {
        for b in &outcomes[i + 1..] {
            let a_first = a.turns <= b.turns;
            assert_eq!(
                a.finished_as < b.finished_as,
                a_first,
                "{} ({} turns) finished {}, {} ({} turns) finished {}",
                a.name,
                a.turns,
                a.finished_as,
                b.name,
                b.turns,
                b.finished_as
            );
        }
    }
}

#[test]
fn the_scheduler_runs_again_after_a_run() {
    // Every run starts from fresh contexts and stacks and a cleared record.
    let first = run().unwrap();
    let second = run().unwrap();
    assert_eq!(first, second);
}
