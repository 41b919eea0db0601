//! Stacks: guard regions fault, slabs go past the mprotect mapping limit, the fallback
//! reports the limit clearly.

mod common;

use std::os::unix::process::ExitStatusExt;

use bobbin::stack::{GuardMode, Stack, StackPool};
use bobbin::Error;

#[test]
fn sizes_are_page_rounded_and_bad_sizes_refused() {
    let s = Stack::new(1).unwrap();
    assert_eq!(s.size(), 4096);
    assert_eq!(s.top() as usize % 4096, 0);
    assert!(matches!(Stack::new(0), Err(Error::InvalidStackSize { size: 0, .. })));
    assert!(matches!(Stack::new(usize::MAX), Err(Error::InvalidStackSize { .. })));
    assert!(matches!(StackPool::new(0), Err(Error::InvalidStackSize { .. })));
    let err = Stack::new(1 << 40).unwrap_err();
    assert!(err.to_string().contains("1 GiB"), "{err}");
}

#[test]
fn stack_memory_is_usable_and_guard_is_not() {
    for mode in [GuardMode::Auto, GuardMode::Mprotect] {
        let s = Stack::with_guard_mode(64 * 1024, mode).unwrap();
        assert!(common::readable(s.bottom() as usize));
        assert!(common::readable(s.top() as usize - 1));
        let guard = s.guard_range();
        assert!(!common::readable(guard.start), "{mode:?}: guard start readable");
        assert!(!common::readable(guard.end - 1), "{mode:?}: guard end readable");
    }
}

#[test]
fn writing_into_the_guard_kills_with_sigsegv() {
    let out = common::in_child("writing_into_the_guard_kills_with_sigsegv", || {
        let s = Stack::new(64 * 1024).unwrap();
        let p = (s.guard_range().end - 8) as *mut u64;
        // SAFETY: deliberately not safe: this write must fault and kill the process.
        unsafe { p.write_volatile(1) };
        println!("survived the guard write");
    });
    if let Some(out) = out {
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{:?}", out);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));
    }
}

#[test]
#[cfg_attr(
    bobbin_asan,
    ignore = "AddressSanitizer maps and unmaps a fake stack for every thread and coroutine, so the mapping count moves with whatever else the test binary runs"
)]
fn pool_recycles_without_new_mappings() {
    // In a child process: the mapping count is the whole process's, and the other tests of
    // this binary (and the harness's threads, each with a stack of its own) map and unmap
    // memory at the same time.
    common::in_child_ok("pool_recycles_without_new_mappings", || {
        let mut pool = StackPool::new(64 * 1024).unwrap();
        let first = pool.get().unwrap();
        let top = first.top();
        pool.put(first);
        let before = common::mapping_count();
        for _ in 0..10_000 {
            let s = pool.get().unwrap();
            assert_eq!(s.top(), top);
            pool.put(s);
        }
        assert_eq!(common::mapping_count(), before);
        // Stacks of another size are not taken in.
        pool.put(Stack::new(8192).unwrap());
        assert_eq!(pool.cached(), 1);
    });
}

#[test]
fn hundred_thousand_guarded_stacks_at_once() {
    if common::emulated() {
        common::note_emulated(
            "hundred_thousand_guarded_stacks_at_once",
            "MADV_GUARD_INSTALL does not pass through qemu-user, stacks use the mprotect fallback: 20,000 stacks, mapping count not bounded",
        );
    }
    common::in_child_ok("hundred_thousand_guarded_stacks_at_once", || {
        // Under emulation MADV_GUARD_INSTALL does not reach the kernel, so stacks take the
        // mprotect fallback: two mappings each, and 100,000 would pass vm.max_map_count.
        let emulated = common::emulated();
        let count = if emulated { 20_000 } else { 100_000 };
        let before = common::mapping_count();
        let mut pool = StackPool::new(16 * 1024).unwrap();
        let stacks: Vec<Stack> = (0..count).map(|_| pool.get().unwrap()).collect();
        let added = common::mapping_count() - before;
        // Slabs of 256 stacks: a few hundred mappings, not 200,000.
        assert!(emulated || added < 1_000, "100,000 stacks took {added} mappings");
        for s in &stacks {
            assert!(!common::readable(s.guard_range().start), "guard of {s:?} is readable");
            assert!(common::readable(s.top() as usize - 8));
        }
        // Each stack is distinct and usable.
        for (i, s) in stacks.iter().enumerate().step_by(997) {
            // SAFETY: the top word of a stack we own is writable memory.
            unsafe { (s.top() as *mut u64).sub(1).write(i as u64) };
        }
        for (i, s) in stacks.iter().enumerate().step_by(997) {
            // SAFETY: as above.
            assert_eq!(unsafe { (s.top() as *const u64).sub(1).read() }, i as u64);
        }
        drop(stacks);
        drop(pool);
        assert!(common::mapping_count() < before + 10, "slabs were not unmapped");
    });
}

#[test]
fn mprotect_fallback_reports_the_mapping_limit() {
    common::in_child_ok("mprotect_fallback_reports_the_mapping_limit", || {
        let mut pool = StackPool::with_guard_mode(4096, GuardMode::Mprotect).unwrap();
        let mut stacks = Vec::new();
        let err = loop {
            match pool.get() {
                Ok(s) => stacks.push(s),
                Err(e) => break e,
            }
            assert!(stacks.len() < 100_000, "the mapping limit was never reached");
        };
        assert!(matches!(err, Error::StackAllocation { .. }), "{err:?}");
        assert!(err.to_string().contains("vm.max_map_count"), "{err}");
        // About two mappings per stack: the limit arrives near half of vm.max_map_count.
        let max_map: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap().trim().parse().unwrap();
        assert!(stacks.len() > max_map / 2 - 2_000 && stacks.len() <= max_map / 2, "{}", stacks.len());
        for s in stacks.iter().step_by(101) {
            assert!(!common::readable(s.guard_range().start));
        }
        println!("fallback stopped after {} stacks: {err}", stacks.len());
    });
}

#[test]
fn trim_releases_cached_stacks() {
    let mut pool = StackPool::new(64 * 1024).unwrap();
    let stacks: Vec<Stack> = (0..10).map(|_| pool.get().unwrap()).collect();
    for s in stacks {
        // SAFETY: writing into the lowest word of a stack we own.
        unsafe { (s.bottom() as *mut u64).write(7) };
        pool.put(s);
    }
    assert_eq!(pool.cached(), 10);
    pool.trim(4);
    assert_eq!(pool.cached(), 4);
    let s = pool.get().unwrap();
    // The deep page was released: it reads as zero again.
    // SAFETY: reading the lowest word of a stack we own.
    assert_eq!(unsafe { (s.bottom() as *const u64).read() }, 0);
}

/// Whether the page at `addr` is resident, or `None` if it is not mapped at all.
fn resident(addr: usize) -> Option<bool> {
    let page = bobbin::stack::page_size();
    let mut vec = 0u8;
    // SAFETY: mincore only reads the page tables of the range and writes one byte to `vec`;
    // an unmapped range is reported as ENOMEM.
    let rc = unsafe { libc::mincore((addr & !(page - 1)) as *mut libc::c_void, page, &mut vec) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::ENOMEM), "mincore: {err}");
        return None;
    }
    Some(vec & 1 == 1)
}

#[test]
fn dropping_a_pool_unmaps_the_slabs_it_holds_whole_and_releases_the_pages_of_the_others() {
    // In a child process: an unmapped slab's addresses must not be mapped again by another
    // test before they are looked at.
    common::in_child_ok("dropping_a_pool_unmaps_the_slabs_it_holds_whole_and_releases_the_pages_of_the_others", || {
        // StackPool's slabs hold 256 stacks of this size; under emulation every stack is a
        // mapping of its own (the mprotect fallback).
        const PER_SLAB: usize = 256;
        let slabs = !common::emulated();
        let mut pool = StackPool::new(16 * 1024).unwrap();
        // A whole slab and part of a second one, each stack with its top page touched.
        let mut stacks: Vec<Stack> = (0..PER_SLAB + 10).map(|_| pool.get().unwrap()).collect();
        for s in &mut stacks {
            let words = s.words_mut();
            let last = words.len() - 1;
            words[last] = 0x5eed;
        }
        let tops: Vec<usize> = stacks.iter().map(|s| s.top() as usize - 8).collect();
        assert!(tops.iter().all(|&t| resident(t) == Some(true)));
        // One stack of the first slab stays out; all the others go back, and the pool goes.
        let kept = stacks.swap_remove(3);
        stacks.into_iter().for_each(|s| pool.put(s));
        drop(pool);
        // SAFETY: the kept stack's top word lies in its usable range, which it still owns.
        assert_eq!(unsafe { (kept.top() as *const u64).sub(1).read() }, 0x5eed);
        assert_eq!(resident(tops[3]), Some(true));
        for (i, &t) in tops.iter().enumerate().filter(|&(i, _)| i != 3) {
            if slabs && i < PER_SLAB {
                // The first slab stays mapped for the kept stack: the others' pages went back.
                assert_eq!(resident(t), Some(false), "stack {i}, in the slab still in use, kept its page");
            } else {
                // The second slab (or, in the fallback, each stack's own mapping) had all
                // its holders in the pool: it is unmapped.
                assert_eq!(resident(t), None, "stack {i} is still mapped");
            }
        }
    });
}
