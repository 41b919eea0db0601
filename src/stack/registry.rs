//! The fault handler's map of stacks: every slab, with the address range it covers and its
//! stacks' tags, while it is mapped.
//!
//! The handler runs in a signal handler, on any thread, while other threads may be creating
//! and dropping slabs. It therefore reads only atomics, in memory that is never freed:
//! entries live in chunks that are allocated on demand and kept for the life of the
//! process, and an entry's `lo` is written last when it is entered and cleared first when it
//! is removed. The one entry the handler acts on is the slab of the stack the faulting
//! thread is running on, which cannot be dropped while that thread runs on it.

use std::ops::Range;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

const CHUNK: usize = 1024;
const CHUNKS: usize = 1024;

#[derive(Default)]
struct Entry {
    /// First address of the slab (its lowest guard), or 0 for a free entry.
    lo: AtomicUsize,
    len: AtomicUsize,
    stride: AtomicUsize,
    tags: AtomicPtr<AtomicUsize>,
}

static TABLE: [AtomicPtr<Entry>; CHUNKS] = [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS];
/// Entries handed out so far (free or not): readers look at no more.
static USED: AtomicUsize = AtomicUsize::new(0);
/// Removed entries, for reuse.
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn entry(i: usize) -> Option<&'static Entry> {
    let chunk = TABLE[i / CHUNK].load(Ordering::Acquire);
    // SAFETY: a published chunk is an array of CHUNK entries that is never freed.
    (!chunk.is_null()).then(|| unsafe { &*chunk.add(i % CHUNK) })
}

/// Enters a slab of `len` bytes at `lo` whose stacks are `stride` bytes apart, with one
/// tag per stack at `tags`. Returns the entry, or `None` when the table is full (about
/// a million slabs: more than the kernel's mapping limit allows by default); the stacks
/// of such a slab still work, but an overflow in them is an ordinary crash.
pub(super) fn enter(lo: usize, len: usize, stride: usize, tags: *const AtomicUsize) -> Option<usize> {
    let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
    let i = match free.pop() {
        Some(i) => i,
        None => {
            let i = USED.load(Ordering::Relaxed);
            if i == CHUNK * CHUNKS {
                return None;
            }
            if i.is_multiple_of(CHUNK) {
                let chunk: Box<[Entry]> = (0..CHUNK).map(|_| Entry::default()).collect();
                TABLE[i / CHUNK].store(Box::leak(chunk).as_mut_ptr(), Ordering::Release);
            }
            USED.store(i + 1, Ordering::Release);
            i
        }
    };
    let e = entry(i).expect("the chunk of a handed-out entry is published");
    e.len.store(len, Ordering::Relaxed);
    e.stride.store(stride, Ordering::Relaxed);
    e.tags.store(tags.cast_mut(), Ordering::Relaxed);
    e.lo.store(lo, Ordering::Release);
    Some(i)
}

/// Entries handed out so far.
#[cfg(test)]
pub(super) fn used() -> usize {
    USED.load(Ordering::Relaxed)
}

/// Removes an entry made by [`enter`].
pub(super) fn remove(i: usize) {
    if let Some(e) = entry(i) {
        e.lo.store(0, Ordering::Release);
    }
    FREE.lock().unwrap_or_else(|e| e.into_inner()).push(i);
}

thread_local! {
    /// The entry [`tag_of`] last found a stack in on this thread: a thread that looks up
    /// the stacks it runs on usually finds them in the same slab, and the slow path of a
    /// park from a nested coroutine should not look through a table of thousands of slabs
    /// each time. Only a hint: the entry is checked like any other.
    static LAST_HIT: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// The tag of the stack whose usable range holds `sp`, if that is a stack of a slab and its
/// tag is set, with that usable range. `sp` must lie on a stack the calling thread runs on
/// or is running a coroutine from, as for [`guard_hit`]: then the slab cannot go away
/// meanwhile. Not for a signal handler (it uses a thread-local).
pub(super) fn tag_of(sp: usize, guard: usize) -> Option<(usize, Range<usize>)> {
    let last = LAST_HIT.get();
    if last != usize::MAX {
        if let Some(found) = look_in(last, sp, guard) {
            return found;
        }
    }
    for i in 0..USED.load(Ordering::Acquire) {
        if let Some(found) = look_in(i, sp, guard) {
            LAST_HIT.set(i);
            return found;
        }
    }
    None
}

/// `Some` if entry `i` is a slab that holds `sp`: then the tag and usable range of the
/// stack there, if it is in a stack's usable range and tagged.
fn look_in(i: usize, sp: usize, guard: usize) -> Option<Option<(usize, Range<usize>)>> {
    let e = entry(i)?;
    let lo = e.lo.load(Ordering::Acquire);
    let len = e.len.load(Ordering::Relaxed);
    if lo == 0 || sp < lo || sp - lo >= len {
        return None;
    }
    let stride = e.stride.load(Ordering::Relaxed);
    let index = (sp - lo) / stride;
    let stack_lo = lo + index * stride;
    if sp - stack_lo < guard {
        return Some(None);
    }
    // SAFETY: as in guard_hit: `sp` lies in this slab, which stays mapped (and its tags
    // allocated) while the caller runs on it; `index` is below the slab's stack count.
    let tag = unsafe { (*e.tags.load(Ordering::Relaxed).add(index)).load(Ordering::Relaxed) };
    Some((tag != 0).then_some((tag, stack_lo + guard..stack_lo + stride)))
}

/// The tag of the stack that `sp` lies in (its guard region included), if `addr` lies in
/// that stack's guard region of `guard` bytes and the tag is set. Async-signal-safe.
pub(super) fn guard_hit(addr: usize, sp: usize, guard: usize) -> Option<(usize, usize)> {
    for i in 0..USED.load(Ordering::Acquire) {
        let Some(e) = entry(i) else { continue };
        let lo = e.lo.load(Ordering::Acquire);
        let len = e.len.load(Ordering::Relaxed);
        if lo == 0 || sp < lo || sp - lo >= len {
            continue;
        }
        let stride = e.stride.load(Ordering::Relaxed);
        let index = (sp - lo) / stride;
        let stack_lo = lo + index * stride;
        if !(stack_lo..stack_lo + guard).contains(&addr) {
            return None;
        }
        // SAFETY: `sp` lies in this slab, so it is the slab of the stack the caller runs
        // on, which stays mapped (and its tags allocated) while it does; `index` is
        // below the slab's stack count because `sp - lo < len`.
        let tag = unsafe { (*e.tags.load(Ordering::Relaxed).add(index)).load(Ordering::Relaxed) };
        return (tag != 0).then_some((tag, stack_lo + guard));
    }
    None
}
