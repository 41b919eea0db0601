use super::*;

/// The tag [`guard_hit`] finds, checking the bottom it reports on the way.
fn hit_tag(addr: usize, sp: usize) -> Option<usize> {
    let (tag, bottom) = guard_hit(addr, sp)?;
    assert!(addr < bottom && bottom - addr <= guard_size(), "the bottom lies just above the guard hit");
    Some(tag)
}

fn check_guard_hits(stack: &Stack) {
    let guard = stack.guard_range();
    let inside = stack.bottom() as usize + 100;
    assert_eq!(hit_tag(guard.start + 8, inside), None, "an untagged stack has no owner");
    stack.set_tag(0x1230);
    assert_eq!(hit_tag(guard.start + 8, inside), Some(0x1230));
    assert_eq!(hit_tag(guard.end - 1, stack.top() as usize - 8), Some(0x1230));
    // Running in the guard itself (a stack probe moved the stack pointer there) counts.
    assert_eq!(hit_tag(guard.start, guard.start + 16), Some(0x1230));
    // A fault outside the guard, or taken while running on another stack, is not a hit.
    assert_eq!(hit_tag(guard.end, inside), None);
    assert_eq!(hit_tag(guard.start + 8, stack.top() as usize), None);
    let elsewhere = 0u64;
    assert_eq!(hit_tag(guard.start + 8, &elsewhere as *const u64 as usize), None);
    stack.set_tag(0);
    assert_eq!(hit_tag(guard.start + 8, inside), None);
}

#[test]
fn guard_hits_are_found_by_stack_pointer_in_both_guard_modes() {
    for mode in [GuardMode::Auto, GuardMode::Mprotect] {
        let mut pool = StackPool::with_guard_mode(16 * 1024, mode).unwrap();
        let stacks: Vec<Stack> = (0..3).map(|_| pool.get().unwrap()).collect();
        for s in &stacks {
            check_guard_hits(s);
        }
        // A fault in one stack's guard while running on its neighbour is not a hit.
        stacks[1].set_tag(0x40);
        let below = stacks[1].guard_range().start + 8;
        assert_eq!(hit_tag(below, stacks[0].bottom() as usize + 64), None);
        assert_eq!(hit_tag(below, stacks[2].bottom() as usize + 64), None);
        assert_eq!(hit_tag(below, stacks[1].bottom() as usize + 64), Some(0x40));
        // Going back to the pool clears the tag.
        let (lo, top) = (stacks[1].guard_range().start, stacks[1].top() as usize);
        for s in stacks {
            pool.put(s);
        }
        assert_eq!(hit_tag(lo + 8, top - 64), None);
    }
}

#[test]
fn dropped_slabs_leave_the_registry() {
    let stack = Stack::new(16 * 1024).unwrap();
    stack.set_tag(0x80);
    let (guard, sp) = (stack.guard_range().start, stack.bottom() as usize + 64);
    assert_eq!(hit_tag(guard, sp), Some(0x80));
    drop(stack);
    assert_eq!(hit_tag(guard, sp), None);
    // Entries are reused: many slabs come and go and the table does not grow with them
    // (other tests of this process may add a few meanwhile).
    let before = registry::used();
    for _ in 0..5_000 {
        let s = Stack::new(4096).unwrap();
        s.set_tag(0x10);
        assert_eq!(hit_tag(s.guard_range().start, s.bottom() as usize), Some(0x10));
    }
    assert!(registry::used() < before + 100, "{before} entries grew to {}", registry::used());
}

#[test]
fn a_threads_spare_stack_is_released_when_the_thread_exits() {
    let (guard, sp) = std::thread::spawn(|| {
        let stack = Stack::new(16 * 1024).unwrap();
        stack.set_tag(0x90);
        let (guard, sp, top) = (stack.guard_range().start, stack.bottom() as usize + 64, stack.top());
        recycle_stack(stack);
        // It is the spare: only a request for exactly its size takes it, and a spare keeps
        // its tag.
        assert!(take_spare(32 * 1024).is_none());
        let spare = take_spare(16 * 1024).expect("the recycled stack is this thread's spare");
        assert_eq!(spare.top(), top);
        assert_eq!(hit_tag(guard, sp), Some(0x90));
        recycle_stack(spare);
        (guard, sp)
    })
    .join()
    .unwrap();
    // The thread's exit dropped its spare, and with it the slab it was the only stack of.
    assert_eq!(hit_tag(guard, sp), None);
}

#[test]
fn a_thread_keeps_a_few_spares_newest_first_and_pools_the_rest() {
    std::thread::spawn(|| {
        let size = 20 * 1024;
        let stacks: Vec<Stack> = (0..MAX_SPARES + 3).map(|_| Stack::new(size).unwrap()).collect();
        let tops: Vec<usize> = stacks.iter().map(|s| s.top() as usize).collect();
        let pooled = || with_thread_pool(size, |p| p.cached()).unwrap();
        assert_eq!(pooled(), 0);
        stacks.into_iter().for_each(recycle_stack);
        // The first MAX_SPARES are the spares; the three after them went to the pool.
        assert_eq!(pooled(), 3);
        for expected in tops[..MAX_SPARES].iter().rev() {
            let spare = take_spare(size).expect("a spare of this size");
            assert_eq!(spare.top() as usize, *expected, "spares come back newest first");
            drop(spare);
        }
        assert!(take_spare(size).is_none());
        assert_eq!(pooled(), 3);
    })
    .join()
    .unwrap();
}

#[test]
fn a_pool_keeps_as_many_stacks_as_it_made_and_no_more_of_others() {
    let mut pool = StackPool::new(16 * 1024).unwrap();
    pool.set_min_kept(4);
    assert_eq!(pool.max_cached(), 4);
    let stacks: Vec<Stack> = (0..10).map(|_| pool.get().unwrap()).collect();
    assert_eq!(pool.max_cached(), 10);
    let tops: Vec<usize> = stacks.iter().map(|s| s.top() as usize).collect();
    stacks.into_iter().for_each(|s| pool.put(s));
    assert_eq!(pool.cached(), 10, "every stack it made is kept");
    // A second round as large as the first takes them all back: nothing new is made.
    let again: Vec<Stack> = (0..10).map(|_| pool.get().unwrap()).collect();
    let mut again_tops: Vec<usize> = again.iter().map(|s| s.top() as usize).collect();
    again_tops.sort_unstable();
    let mut tops = tops;
    tops.sort_unstable();
    assert_eq!(again_tops, tops);
    assert_eq!(pool.max_cached(), 10);

    // A pool that made none of them keeps only its least bound of another's stacks.
    let mut other = StackPool::new(16 * 1024).unwrap();
    other.set_min_kept(4);
    again.into_iter().for_each(|s| other.put(s));
    assert_eq!(other.cached(), 4);
    // A fixed bound overrides the automatic one.
    pool.set_max_cached(2);
    let stacks: Vec<Stack> = (0..5).map(|_| pool.get().unwrap()).collect();
    stacks.into_iter().for_each(|s| pool.put(s));
    assert_eq!(pool.cached(), 2);
}
