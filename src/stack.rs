//! Machine stacks for coroutines: mmap'd, guard-paged, lazily committed, pooled.
//!
//! A [`Stack`] is a read-write region with a guard region directly below it (stacks grow
//! down); any access to the guard faults. Memory is committed by the kernel on first
//! touch, so a coroutine that used one page costs one page.
//!
//! Guard pages usually split a mapping in two, so a process that protects each stack with
//! `mprotect` runs out of kernel mappings (`vm.max_map_count`, 65,530 by default) near
//! 32,000 stacks. Since Linux 6.13, `madvise(MADV_GUARD_INSTALL)` installs guard pages
//! without splitting the mapping. A [`StackPool`] therefore carves stacks out of large
//! slabs (one `MAP_NORESERVE` mapping holding many stacks) and guards them that way,
//! falling back to one mapping plus `mprotect` per stack where the kernel refuses
//! ([`GuardMode::Mprotect`] forces the fallback).
//!
//! Each thread has a default pool ([`with_thread_pool`]) that recycles stacks, so creating
//! a coroutine costs no system call in the steady state. A recycled stack keeps the pages
//! its last user touched; [`StackPool::trim`] gives them back.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use memmap2::{MmapMut, MmapOptions};
use nix::libc;

use crate::Error;

/// The usable size of a stack when none is chosen: 128 KiB.
///
/// Small enough that 1,000,000 parked coroutines fit in memory with page tables counted
/// (stacks 132 KiB apart share page-table pages sixteen to a page), large enough for
/// ordinary Rust code, formatting and panics with backtraces.
///
/// # Examples
/// ```
/// use bobbin::stack::DEFAULT_STACK_SIZE;
///
/// let co = bobbin::Coroutine::<(), (), ()>::new(|_, ()| ());
/// assert_eq!(co.stack_size(), DEFAULT_STACK_SIZE);
/// ```
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

/// Largest stack size accepted: 1 GiB.
///
/// # Examples
/// ```
/// use bobbin::stack::{StackPool, MAX_STACK_SIZE};
///
/// assert!(StackPool::new(MAX_STACK_SIZE).is_ok()); // maps nothing until asked for a stack
/// assert!(matches!(StackPool::new(MAX_STACK_SIZE + 1), Err(bobbin::Error::InvalidStackSize { .. })));
/// ```
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// Size of the guard region below each stack.
const GUARD_SIZE_PAGES: usize = 1;

/// Stacks kept by default in a [`StackPool`] before further returns are released.
///
/// # Examples
/// ```
/// use bobbin::stack::{StackPool, DEFAULT_MAX_CACHED};
///
/// assert_eq!(StackPool::new(64 * 1024).unwrap().max_cached(), DEFAULT_MAX_CACHED);
/// ```
pub const DEFAULT_MAX_CACHED: usize = 1 << 16;

/// Bytes at the top of a cached stack that [`StackPool::trim`] leaves committed.
const TRIM_KEEP_BYTES: usize = 8 * 1024;

/// Virtual size a slab aims for; it holds at least one stack and at most 256.
const SLAB_TARGET_BYTES: usize = 64 << 20;
const SLAB_MAX_STACKS: usize = 256;

/// `MADV_GUARD_INSTALL` (Linux 6.13), not yet in every libc.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Most ranges one `process_madvise` call takes (`UIO_MAXIOV`).
const IOV_MAX: usize = 1024;

const MAP_LIMIT_HINT: &str = "the kernel refused the mapping; the process may have reached \
     vm.max_map_count (see /proc/sys/vm/max_map_count) or its address-space limit";
const GUARD_HINT: &str = "the kernel refused to protect the guard region; the process may have \
     reached vm.max_map_count (see /proc/sys/vm/max_map_count)";

/// How a stack's guard region is made to fault.
///
/// # Examples
/// Either way the guard region lies directly below the usable bytes:
/// ```
/// use bobbin::stack::{GuardMode, Stack};
///
/// for mode in [GuardMode::Auto, GuardMode::Mprotect] {
///     let stack = Stack::with_guard_mode(64 * 1024, mode).unwrap();
///     let guard = stack.guard_range();
///     assert_eq!(guard.end, stack.bottom() as usize);
///     assert!(!guard.is_empty());
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuardMode {
    /// `MADV_GUARD_INSTALL` where the kernel has it (no extra mapping per stack), else
    /// `mprotect`.
    Auto,
    /// One mapping per stack with an `mprotect(PROT_NONE)` guard: two kernel mappings per
    /// stack. The fallback, selectable for testing.
    Mprotect,
}

/// The system page size.
///
/// # Examples
/// ```
/// use bobbin::stack::{page_size, Stack};
///
/// assert!(page_size().is_power_of_two());
/// assert_eq!(Stack::new(1).unwrap().size(), page_size()); // sizes round up to pages
/// ```
pub fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 {
            p as usize
        } else {
            4096
        }
    })
}

/// Rounds `size` up to whole pages, refusing zero and sizes above [`MAX_STACK_SIZE`].
pub(crate) fn checked_stack_size(size: usize) -> Result<usize, Error> {
    if size == 0 {
        return Err(Error::InvalidStackSize { size, reason: "a stack needs at least one page" });
    }
    if size > MAX_STACK_SIZE {
        return Err(Error::InvalidStackSize { size, reason: "larger than the 1 GiB maximum" });
    }
    let page = page_size();
    Ok(size.div_ceil(page) * page)
}

fn guard_size() -> usize {
    GUARD_SIZE_PAGES * page_size()
}

/// Whether the kernel accepts `MADV_GUARD_INSTALL`: 0 unknown, 1 yes, 2 no.
static GUARD_INSTALL: AtomicU8 = AtomicU8::new(0);

fn guard_install_supported() -> bool {
    match GUARD_INSTALL.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            // Probe on a scratch mapping; EINVAL means the kernel predates guard regions.
            let ok = MmapOptions::new()
                .len(2 * page_size())
                .no_reserve_swap()
                .map_anon()
                .map(|mut m| madvise(m.as_mut_ptr(), page_size(), MADV_GUARD_INSTALL).is_ok())
                .unwrap_or(false);
            GUARD_INSTALL.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

fn madvise(addr: *mut u8, len: usize, advice: libc::c_int) -> io::Result<()> {
    // SAFETY: callers pass ranges inside mappings this module owns; the advice values used
    // (guard install, DONTNEED) do not invalidate memory anything else refers to.
    let rc = unsafe { libc::madvise(addr.cast(), len, advice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Applies `advice` to many ranges with as few system calls as possible: batched
/// `process_madvise` on this process where the kernel allows it, else one `madvise` each.
fn madvise_many(ranges: &[(*mut u8, usize)], advice: libc::c_int) -> io::Result<()> {
    static PIDFD: std::sync::OnceLock<libc::c_int> = std::sync::OnceLock::new();
    let pidfd = *PIDFD.get_or_init(|| {
        // SAFETY: pidfd_open with our own pid and no flags; returns -1 on failure.
        unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) as libc::c_int }
    });
    let mut done = 0;
    if pidfd >= 0 {
        for chunk in ranges.chunks(IOV_MAX) {
            let iov: Vec<libc::iovec> =
                chunk.iter().map(|&(p, l)| libc::iovec { iov_base: p.cast(), iov_len: l }).collect();
            let want: usize = chunk.iter().map(|r| r.1).sum();
            // SAFETY: `iov` describes ranges inside mappings this module owns, and lives
            // across the call; the pidfd refers to this process.
            let rc = unsafe { libc::syscall(libc::SYS_process_madvise, pidfd, iov.as_ptr(), iov.len(), advice, 0) };
            if rc < 0 || rc as usize != want {
                break;
            }
            done += chunk.len();
        }
    }
    for &(p, l) in &ranges[done..] {
        madvise(p, l, advice)?;
    }
    Ok(())
}

/// One anonymous mapping holding `count` stacks, each `guard` bytes of guard region
/// followed by `size` usable bytes, entered in the [`registry`] while it is mapped.
struct Slab {
    /// Keeps the mapping alive; unmapped when the last stack carved from it goes.
    _map: MmapMut,
    start: *mut u8,
    stride: usize,
    /// One word per stack for the fault handler ([`Stack::set_tag`]).
    tags: Box<[AtomicUsize]>,
    /// This slab's entry in the registry, if it got one.
    entry: Option<usize>,
}

// SAFETY: the slab is plain memory; each stack carved from it is owned by exactly one
// `Stack`, and the mapping itself is only unmapped when the last `Arc` goes.
unsafe impl Send for Slab {}
// SAFETY: as above; a shared `Slab` is only read (its addresses) or written through atomics
// (its tags).
unsafe impl Sync for Slab {}

impl Slab {
    /// A slab of `count` stacks guarded with `MADV_GUARD_INSTALL`, or, with
    /// [`GuardMode::Mprotect`], a single stack guarded with `mprotect`.
    fn new(size: usize, count: usize, mode: GuardMode) -> Result<Slab, Error> {
        let stride = size + guard_size();
        let len = stride.checked_mul(count).ok_or(Error::InvalidStackSize { size, reason: "too large" })?;
        let mut map = MmapOptions::new()
            .len(len)
            .no_reserve_swap()
            .map_anon()
            .map_err(|source| Error::StackAllocation { size, source, hint: MAP_LIMIT_HINT })?;
        let start = map.as_mut_ptr();
        let guarded = if mode == GuardMode::Mprotect {
            debug_assert_eq!(count, 1);
            // SAFETY: the guard range is the first `guard_size()` bytes of the mapping just
            // created, which nothing else refers to.
            match unsafe { libc::mprotect(start.cast(), guard_size(), libc::PROT_NONE) } {
                0 => Ok(()),
                _ => Err(io::Error::last_os_error()),
            }
        } else {
            let guards: Vec<(*mut u8, usize)> =
                // SAFETY: i * stride < len, so every guard lies inside the mapping.
                (0..count).map(|i| (unsafe { start.add(i * stride) }, guard_size())).collect();
            madvise_many(&guards, MADV_GUARD_INSTALL)
        };
        guarded.map_err(|source| Error::StackAllocation { size, source, hint: GUARD_HINT })?;
        let tags: Box<[AtomicUsize]> = (0..count).map(|_| AtomicUsize::new(0)).collect();
        let entry = registry::enter(start as usize, len, stride, tags.as_ptr());
        Ok(Slab { _map: map, start, stride, tags, entry })
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        if let Some(entry) = self.entry {
            registry::remove(entry);
        }
    }
}

/// The fault handler's map of stacks: every slab, with the address range it covers and its
/// stacks' tags, while it is mapped.
///
/// The handler runs in a signal handler, on any thread, while other threads may be creating
/// and dropping slabs. It therefore reads only atomics, in memory that is never freed:
/// entries live in chunks that are allocated on demand and kept for the life of the
/// process, and an entry's `lo` is written last when it is entered and cleared first when it
/// is removed. The one entry the handler acts on is the slab of the stack the faulting
/// thread is running on, which cannot be dropped while that thread runs on it.
mod registry {
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
}

/// If the running thread's stack pointer `sp` lies in a [`Stack`] and the fault address
/// `addr` in that stack's guard region, the tag set on it with [`Stack::set_tag`] (if
/// any) and the stack's bottom (the lowest usable address). Async-signal-safe: reads only
/// atomics.
pub(crate) fn guard_hit(addr: usize, sp: usize) -> Option<(usize, usize)> {
    registry::guard_hit(addr, sp, guard_size())
}

/// One machine stack: `size` usable bytes above a guard region that faults on access.
///
/// Dropping a stack unmaps it (or, for a pooled one, releases its pages). Stacks are
/// normally obtained from a [`StackPool`] and handed back to it.
///
/// # Examples
/// ```
/// use bobbin::stack::Stack;
/// let stack = Stack::new(10_000).unwrap();
/// assert_eq!(stack.size(), 12_288); // rounded up to whole pages
/// assert_eq!(stack.top() as usize - stack.bottom() as usize, stack.size());
/// assert!(stack.guard_range().end == stack.bottom() as usize);
/// ```
pub struct Stack {
    bottom: NonNull<u8>,
    size: usize,
    /// The slab this stack was carved from (possibly its only stack), and its place there.
    slab: Arc<Slab>,
    index: u32,
    /// Set once a batched release has already given the pages back.
    pages_released: bool,
    /// Valgrind's id for this stack (0 when not running under valgrind).
    valgrind_id: usize,
}

// SAFETY: a Stack exclusively owns its memory range; moving that ownership to another
// thread is fine (whether code running on it may move is the coroutine layer's concern).
unsafe impl Send for Stack {}

impl Stack {
    /// A stack of at least `size` usable bytes (rounded up to whole pages) in a mapping of
    /// its own, guarded as [`GuardMode::Auto`] says.
    ///
    /// # Errors
    /// [`Error::InvalidStackSize`] for zero or more than [`MAX_STACK_SIZE`];
    /// [`Error::StackAllocation`] when the kernel refuses.
    ///
    /// # Examples
    /// ```
    /// use bobbin::stack::Stack;
    ///
    /// let stack = Stack::new(32 * 1024).unwrap();
    /// assert_eq!(stack.size(), 32 * 1024);
    /// assert!(matches!(Stack::new(0), Err(bobbin::Error::InvalidStackSize { size: 0, .. })));
    /// ```
    pub fn new(size: usize) -> Result<Stack, Error> {
        Self::with_guard_mode(size, GuardMode::Auto)
    }

    /// A stack in a mapping of its own with the given guard mode.
    ///
    /// # Errors
    /// As [`Stack::new`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::stack::{page_size, GuardMode, Stack};
    ///
    /// let stack = Stack::with_guard_mode(16 * 1024, GuardMode::Mprotect).unwrap();
    /// assert_eq!(stack.size(), 16 * 1024);
    /// assert_eq!(stack.guard_range().len() % page_size(), 0);
    /// ```
    pub fn with_guard_mode(size: usize, mode: GuardMode) -> Result<Stack, Error> {
        let size = checked_stack_size(size)?;
        let mode = if mode == GuardMode::Auto && guard_install_supported() { mode } else { GuardMode::Mprotect };
        let slab = Arc::new(Slab::new(size, 1, mode)?);
        Ok(Stack::carve(&slab, 0, size))
    }

    fn carve(slab: &Arc<Slab>, index: usize, size: usize) -> Stack {
        debug_assert_eq!(slab.stride, size + guard_size());
        // SAFETY: the slab was made with room for this index: its bottom lies inside it.
        let bottom = unsafe { NonNull::new_unchecked(slab.start.add(index * slab.stride + guard_size())) };
        let low = bottom.as_ptr() as usize;
        // Valgrind takes the highest byte of the range, not one past it.
        let valgrind_id = crate::arch::valgrind_stack_register(low, low + size - 1);
        let index = u32::try_from(index).expect("a slab holds at most SLAB_MAX_STACKS stacks");
        Stack { bottom, size, slab: Arc::clone(slab), index, pages_released: false, valgrind_id }
    }

    /// This stack's word in its slab's tags.
    fn tag_slot(&self) -> &AtomicUsize {
        &self.slab.tags[self.index as usize]
    }

    /// Records a non-zero word for the fault handler, which [`guard_hit`] returns for a
    /// fault in this stack's guard region taken while running on it; 0 clears it. Cleared
    /// when the stack goes back to a pool or is dropped.
    pub(crate) fn set_tag(&self, tag: usize) {
        self.tag_slot().store(tag, Ordering::Relaxed);
    }

    /// One past the highest usable byte: where the stack starts (it grows down). Aligned
    /// to a page.
    ///
    /// # Examples
    /// ```
    /// use bobbin::stack::{page_size, Stack};
    ///
    /// let stack = Stack::new(10_000).unwrap();
    /// assert_eq!(stack.top() as usize % page_size(), 0);
    /// assert_eq!(stack.top() as usize - stack.size(), stack.bottom() as usize);
    /// ```
    pub fn top(&self) -> *mut u8 {
        // SAFETY: bottom + size is the end of the usable range, inside or one past the
        // mapping.
        unsafe { self.bottom.as_ptr().add(self.size) }
    }

    /// The lowest usable byte.
    ///
    /// # Examples
    /// ```
    /// let mut stack = bobbin::stack::Stack::new(8192).unwrap();
    /// stack.words_mut()[0] = 0xfeed;
    /// // SAFETY: `bottom` is the first of the stack's usable bytes, word-aligned, and nothing
    /// // else uses the stack.
    /// assert_eq!(unsafe { *stack.bottom().cast::<u64>() }, 0xfeed);
    /// ```
    pub fn bottom(&self) -> *mut u8 {
        self.bottom.as_ptr()
    }

    /// Usable bytes: the size asked for, rounded up to whole pages.
    ///
    /// # Examples
    /// ```
    /// use bobbin::stack::{page_size, Stack};
    ///
    /// assert_eq!(Stack::new(page_size() + 1).unwrap().size(), 2 * page_size());
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// The usable memory as words, lowest first: what [`Context::init`] takes.
    ///
    /// [`Context::init`]: crate::context::Context::init
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    /// use bobbin::stack::Stack;
    ///
    /// extern "C" fn double(x: u64) -> u64 {
    ///     x * 2
    /// }
    /// let mut stack = Stack::new(16 * 1024).unwrap();
    /// assert_eq!(stack.words_mut().len() * 8, stack.size());
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::create_and_init(stack.words_mut(), double as *const () as usize, &[Val::U64(21)]).unwrap();
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert_eq!(child.get_retval_gp(0), 42);
    /// ```
    pub fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: the usable range is mapped read-write, page-aligned (so word-aligned),
        // owned by this Stack alone, and lives as long as the borrow of self.
        unsafe { std::slice::from_raw_parts_mut(self.bottom.as_ptr().cast::<u64>(), self.size / 8) }
    }

    /// Addresses of the guard region directly below the stack.
    ///
    /// # Examples
    /// ```
    /// let stack = bobbin::stack::Stack::new(64 * 1024).unwrap();
    /// let guard = stack.guard_range();
    /// assert_eq!(guard.end, stack.bottom() as usize); // an overrun lands in it first
    /// assert!(guard.len() >= bobbin::stack::page_size());
    /// ```
    pub fn guard_range(&self) -> Range<usize> {
        let b = self.bottom.as_ptr() as usize;
        b - guard_size()..b
    }

    /// The range of the stack below its top `keep_top` bytes, for a batched release.
    fn range_below(&self, keep_top: usize) -> (*mut u8, usize) {
        (self.bottom.as_ptr(), self.size.saturating_sub(keep_top))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        crate::arch::valgrind_stack_deregister(self.valgrind_id);
        self.set_tag(0);
        // The last stack of a slab unmaps it; any other gives its pages back now, unless a
        // batched release already did.
        if !self.pages_released && Arc::strong_count(&self.slab) > 1 {
            let _ = madvise(self.bottom.as_ptr(), self.size, libc::MADV_DONTNEED);
        }
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("bottom", &self.bottom)
            .field("size", &self.size)
            .field("slab_stacks", &self.slab.tags.len())
            .finish()
    }
}

/// A source of stacks of one size that recycles them.
///
/// New stacks are carved from slabs of up to 256 (one kernel mapping per slab); returned
/// stacks are kept (up to [`StackPool::max_cached`]) and handed out again without a system
/// call. A kept stack retains the pages its last user touched until [`StackPool::trim`].
///
/// # Examples
/// ```
/// use bobbin::stack::StackPool;
/// let mut pool = StackPool::new(64 * 1024).unwrap();
/// let a = pool.get().unwrap();
/// let top = a.top();
/// pool.put(a);
/// assert_eq!(pool.get().unwrap().top(), top); // the same stack, recycled
/// ```
pub struct StackPool {
    size: usize,
    mode: GuardMode,
    free: Vec<Stack>,
    max_cached: usize,
    slab: Option<Arc<Slab>>,
    slab_next: usize,
    slab_count: usize,
    /// Stacks returned beyond `max_cached`, released together.
    releasing: Vec<Stack>,
}

impl StackPool {
    /// A pool of stacks of at least `size` usable bytes (rounded up to whole pages).
    ///
    /// # Errors
    /// [`Error::InvalidStackSize`] for zero or more than [`MAX_STACK_SIZE`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::stack::StackPool;
    ///
    /// let pool = StackPool::new(100_000).unwrap();
    /// assert_eq!(pool.stack_size(), 100_000usize.next_multiple_of(bobbin::stack::page_size()));
    /// assert!(StackPool::new(0).is_err());
    /// ```
    pub fn new(size: usize) -> Result<StackPool, Error> {
        Self::with_guard_mode(size, GuardMode::Auto)
    }

    /// A pool whose stacks are guarded as `mode` says. With [`GuardMode::Mprotect`] every
    /// stack is a mapping of its own.
    ///
    /// # Errors
    /// As [`StackPool::new`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::stack::{GuardMode, StackPool};
    ///
    /// let mut pool = StackPool::with_guard_mode(64 * 1024, GuardMode::Mprotect).unwrap();
    /// let (a, b) = (pool.get().unwrap(), pool.get().unwrap());
    /// // Separate mappings, each with its guard below.
    /// assert_ne!(a.top(), b.top());
    /// assert_eq!(a.guard_range().end, a.bottom() as usize);
    /// ```
    pub fn with_guard_mode(size: usize, mode: GuardMode) -> Result<StackPool, Error> {
        let size = checked_stack_size(size)?;
        let stride = size + guard_size();
        let slab_count = (SLAB_TARGET_BYTES / stride).clamp(1, SLAB_MAX_STACKS);
        Ok(StackPool {
            size,
            mode,
            free: Vec::new(),
            max_cached: DEFAULT_MAX_CACHED,
            slab: None,
            slab_next: 0,
            slab_count,
            releasing: Vec::new(),
        })
    }

    /// Usable size of this pool's stacks.
    ///
    /// # Examples
    /// ```
    /// let mut pool = bobbin::stack::StackPool::new(64 * 1024).unwrap();
    /// assert_eq!(pool.stack_size(), 64 * 1024);
    /// assert_eq!(pool.get().unwrap().size(), pool.stack_size());
    /// ```
    pub fn stack_size(&self) -> usize {
        self.size
    }

    /// How many returned stacks the pool keeps before it releases further ones.
    ///
    /// # Examples
    /// ```
    /// let mut pool = bobbin::stack::StackPool::new(64 * 1024).unwrap();
    /// pool.set_max_cached(1);
    /// assert_eq!(pool.max_cached(), 1);
    /// ```
    pub fn max_cached(&self) -> usize {
        self.max_cached
    }

    /// Sets [`StackPool::max_cached`].
    ///
    /// # Examples
    /// ```
    /// let mut pool = bobbin::stack::StackPool::new(64 * 1024).unwrap();
    /// pool.set_max_cached(2);
    /// let stacks: Vec<_> = (0..5).map(|_| pool.get().unwrap()).collect();
    /// stacks.into_iter().for_each(|s| pool.put(s));
    /// assert_eq!(pool.cached(), 2); // the other three were released
    /// ```
    pub fn set_max_cached(&mut self, n: usize) {
        self.max_cached = n;
    }

    /// Stacks currently kept for reuse.
    ///
    /// # Examples
    /// ```
    /// let mut pool = bobbin::stack::StackPool::new(64 * 1024).unwrap();
    /// assert_eq!(pool.cached(), 0);
    /// let stack = pool.get().unwrap();
    /// pool.put(stack);
    /// assert_eq!(pool.cached(), 1);
    /// ```
    pub fn cached(&self) -> usize {
        self.free.len()
    }

    /// A stack: a recycled one if any, else a fresh one.
    ///
    /// # Errors
    /// [`Error::StackAllocation`] when the kernel refuses a new mapping or guard.
    ///
    /// # Examples
    /// ```
    /// let mut pool = bobbin::stack::StackPool::new(64 * 1024).unwrap();
    /// let first = pool.get().unwrap();
    /// let top = first.top();
    /// pool.put(first);
    /// assert_eq!(pool.get().unwrap().top(), top); // recycled, not mapped again
    /// ```
    pub fn get(&mut self) -> Result<Stack, Error> {
        if let Some(s) = self.free.pop() {
            return Ok(s);
        }
        if self.mode == GuardMode::Mprotect || !guard_install_supported() {
            return Stack::with_guard_mode(self.size, GuardMode::Mprotect);
        }
        let slab = match &self.slab {
            Some(slab) if self.slab_next < self.slab_count => slab,
            _ => {
                self.slab_next = 0;
                self.slab.insert(Arc::new(Slab::new(self.size, self.slab_count, GuardMode::Auto)?))
            }
        };
        let stack = Stack::carve(slab, self.slab_next, self.size);
        self.slab_next += 1;
        Ok(stack)
    }

    /// Returns a stack for reuse. A stack of another size is simply dropped.
    ///
    /// # Examples
    /// ```
    /// use bobbin::stack::{Stack, StackPool};
    ///
    /// let mut pool = StackPool::new(64 * 1024).unwrap();
    /// pool.put(Stack::new(64 * 1024).unwrap());
    /// pool.put(Stack::new(32 * 1024).unwrap()); // another size: dropped
    /// assert_eq!(pool.cached(), 1);
    /// ```
    pub fn put(&mut self, stack: Stack) {
        if stack.size != self.size {
            return;
        }
        stack.set_tag(0);
        if self.free.len() < self.max_cached {
            self.free.push(stack);
            return;
        }
        self.releasing.push(stack);
        if self.releasing.len() >= 256 {
            self.flush_releasing();
        }
    }

    fn flush_releasing(&mut self) {
        let ranges: Vec<_> = self.releasing.iter().map(|s| s.range_below(0)).collect();
        let _ = madvise_many(&ranges, libc::MADV_DONTNEED);
        for mut stack in self.releasing.drain(..) {
            stack.pages_released = true;
            drop(stack);
        }
    }

    /// Gives memory back: keeps at most `keep` stacks, releases the rest, and releases the
    /// pages of the kept ones below their top 8 KiB. Uses batched system calls.
    ///
    /// # Examples
    /// ```
    /// let mut pool = bobbin::stack::StackPool::new(64 * 1024).unwrap();
    /// let mut stacks: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    /// // The lowest page of the stack returned last, which the pool keeps longest.
    /// stacks[3].words_mut()[0] = 1;
    /// stacks.into_iter().for_each(|s| pool.put(s));
    /// pool.trim(1);
    /// assert_eq!(pool.cached(), 1);
    /// let mut kept = pool.get().unwrap();
    /// assert_eq!(kept.words_mut()[0], 0); // its page was given back: it reads as zero again
    /// ```
    pub fn trim(&mut self, keep: usize) {
        // The oldest returns go; the most recently used (hottest) stay.
        let excess = self.free.len().saturating_sub(keep);
        self.releasing.extend(self.free.drain(..excess));
        self.flush_releasing();
        let ranges: Vec<_> = self.free.iter().map(|s| s.range_below(TRIM_KEEP_BYTES)).collect();
        let _ = madvise_many(&ranges, libc::MADV_DONTNEED);
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        self.flush_releasing();
    }
}

impl fmt::Debug for StackPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackPool")
            .field("stack_size", &self.size)
            .field("mode", &self.mode)
            .field("cached", &self.free.len())
            .field("max_cached", &self.max_cached)
            .finish()
    }
}

thread_local! {
    /// This thread's pools, one per stack size; a program uses few sizes, so a short list
    /// searched linearly beats hashing.
    static POOLS: std::cell::RefCell<Vec<StackPool>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's pool for stacks of `size` bytes (rounded up to pages),
/// creating it on first use.
///
/// # Errors
/// As [`StackPool::new`]; also fails if called from inside `f` for the same thread.
///
/// # Examples
/// ```
/// use bobbin::stack::with_thread_pool;
///
/// let size = 48 * 1024;
/// let top = with_thread_pool(size, |pool| {
///     let stack = pool.get().unwrap();
///     let top = stack.top();
///     pool.put(stack);
///     top
/// })
/// .unwrap();
/// // The same pool on the next call, and so the same stack.
/// assert_eq!(with_thread_pool(size, |pool| pool.get().unwrap().top()).unwrap(), top);
/// // Not from inside itself.
/// assert!(with_thread_pool(size, |_| with_thread_pool(size, |_| ()).is_err()).unwrap());
/// ```
pub fn with_thread_pool<R>(size: usize, f: impl FnOnce(&mut StackPool) -> R) -> Result<R, Error> {
    with_pool_of_rounded_size(checked_stack_size(size)?, f)
}

/// [`with_thread_pool`] for a size already checked and rounded to pages.
fn with_pool_of_rounded_size<R>(size: usize, f: impl FnOnce(&mut StackPool) -> R) -> Result<R, Error> {
    POOLS
        .try_with(|pools| {
            let mut pools = pools.try_borrow_mut().ok()?;
            let index = match pools.iter().position(|p| p.size == size) {
                Some(i) => i,
                None => {
                    pools.push(StackPool::new(size).unwrap_or_else(|_| unreachable!("size already checked")));
                    pools.len() - 1
                }
            };
            Some(f(&mut pools[index]))
        })
        .ok()
        .flatten()
        .ok_or_else(|| Error::InvalidStackSize { size, reason: "the thread's stack pool is not available here" })
}

thread_local! {
    /// The stack the coroutine layer gave back last on this thread, kept in front of the
    /// pools: a program that creates and finishes coroutines one after another (a
    /// generator per call, say) reuses it without looking its pool up.
    ///
    /// A spare keeps the tag of the coroutine that used it: nothing runs on it, so the
    /// fault handler can never find it, and the next coroutine tags it before it runs.
    /// Anything else that takes it (its pool, or dropping it) clears the tag.
    static SPARE: Cell<Option<Stack>> = const { Cell::new(None) };
}

/// Takes a stack of `size` bytes (rounded up to pages) for a coroutine: this thread's
/// spare if it has that size, otherwise one from this thread's pool.
///
/// The spare of the size asked for is taken inline; everything else is out of line.
#[inline]
pub(crate) fn pooled_stack(size: usize) -> Result<Stack, Error> {
    match SPARE.try_with(Cell::take) {
        Ok(Some(spare)) if spare.size == size => Ok(spare),
        Ok(spare) => pooled_stack_slow(size, spare),
        Err(_) => pooled_stack_slow(size, None),
    }
}

/// [`pooled_stack`] when the spare is missing or its size is not literally the one asked
/// for (which may still round to it).
#[cold]
#[inline(never)]
fn pooled_stack_slow(size: usize, spare: Option<Stack>) -> Result<Stack, Error> {
    if let Some(spare) = spare {
        if checked_stack_size(size).is_ok_and(|rounded| rounded == spare.size) {
            return Ok(spare);
        }
        return_to_pool(spare);
    }
    with_thread_pool(size, |p| p.get())?
}

/// Hands back the stack of a coroutine that finished: it becomes this thread's spare, and
/// the spare it replaces goes back to its pool (or is dropped if the pool is unavailable,
/// as during thread exit).
#[inline]
pub(crate) fn recycle_stack(stack: Stack) {
    // If the spare is gone (thread exit), the closure, and the stack in it, is dropped.
    if let Ok(Some(previous)) = SPARE.try_with(|spare| spare.replace(Some(stack))) {
        return_to_pool(previous);
    }
}

/// Puts a stack back into this thread's pool for its size.
#[cold]
#[inline(never)]
fn return_to_pool(stack: Stack) {
    // If the pool is unavailable, the closure, and the stack in it, is dropped.
    let _ = with_pool_of_rounded_size(stack.size, |p| p.put(stack));
}

#[cfg(test)]
mod tests {
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
}
