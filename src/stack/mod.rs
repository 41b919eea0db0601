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

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::io;
use std::mem::{ManuallyDrop, MaybeUninit};
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

/// Stacks a [`StackPool`] keeps by default even if it made fewer itself; one that made
/// more keeps as many as it made (see [`StackPool`], "How many stacks a pool keeps").
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
            // Probe on a scratch mapping; EINVAL means the kernel predates guard regions. A
            // call that succeeds must also have made the page unreadable: user-mode
            // emulators (qemu-user) accept advice they do not pass on to the kernel.
            let ok = MmapOptions::new()
                .len(2 * page_size())
                .no_reserve_swap()
                .map_anon()
                .map(|mut m| {
                    madvise(m.as_mut_ptr(), page_size(), MADV_GUARD_INSTALL).is_ok() && !plainly_readable(m.as_ptr())
                })
                .unwrap_or(false);
            GUARD_INSTALL.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// Whether the kernel can read the byte at `addr`: a write of it into a pipe fails with
/// EFAULT instead of raising a signal when it cannot. False if the pipe cannot be made.
fn plainly_readable(addr: *const u8) -> bool {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two descriptors it creates into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return false;
    }
    // SAFETY: write only reads `addr` through the kernel, which reports a fault as EFAULT;
    // both descriptors are ours and closed here.
    unsafe {
        let written = libc::write(fds[1], addr.cast(), 1);
        libc::close(fds[0]);
        libc::close(fds[1]);
        written == 1
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
    /// One record per stack, written when the stack is carved: a [`Stack`] is a pointer
    /// to its record. A slot is carved at most once (a pool carves a slab's stacks in
    /// order, and a stack of its own is its slab's only one), and only its `Stack` uses it.
    carved: Box<[UnsafeCell<MaybeUninit<Carved>>]>,
    /// This slab's entry in the registry, if it got one.
    entry: Option<usize>,
}

// SAFETY: the slab is plain memory; each stack carved from it, and that stack's record, is
// owned by exactly one `Stack`, and the mapping itself is only unmapped when the last `Arc`
// goes.
unsafe impl Send for Slab {}
// SAFETY: as above; a shared `Slab` is only read (its addresses), written through atomics
// (its tags), or written in a record slot by the one `Stack` that owns the slot.
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
        let carved = (0..count).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
        let entry = registry::enter(start as usize, len, stride, tags.as_ptr());
        Ok(Slab { _map: map, start, stride, tags, carved, entry })
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        if let Some(entry) = self.entry {
            registry::remove(entry);
        }
    }
}

#[cfg(bobbin_asan)]
pub(crate) mod asan;
mod registry;

/// If the running thread's stack pointer `sp` lies in a [`Stack`] and the fault address
/// `addr` in that stack's guard region, the tag set on it with [`Stack::set_tag`] (if
/// any) and the stack's bottom (the lowest usable address). Async-signal-safe: reads only
/// atomics.
pub(crate) fn guard_hit(addr: usize, sp: usize) -> Option<(usize, usize)> {
    registry::guard_hit(addr, sp, guard_size())
}

/// The tag set with [`Stack::set_tag`] on the stack whose usable range holds `sp`, if any,
/// and that usable range. `sp` must be an address on a stack that stays mapped meanwhile:
/// the one the calling thread runs on (the address of a local), or that of a coroutine it
/// is running (a link to a resumer that is still in its resume). The engine finds the
/// coroutines it runs in this way, on its slow paths.
pub(crate) fn running_tag(sp: usize) -> Option<(usize, std::ops::Range<usize>)> {
    registry::tag_of(sp, guard_size())
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
pub struct Stack(NonNull<Carved>);

/// What a [`Stack`] knows of itself, behind one pointer: a stack changes hands on every
/// coroutine created and finished (pool, spare, coroutine), and a word moves for free
/// where these fields would be copied each time. The record lies in its slab, written
/// once when the stack is carved, and lives as long as the stack, through every reuse.
pub(crate) struct Carved {
    bottom: NonNull<u8>,
    size: usize,
    /// This stack's word in its slab's tags ([`Stack::set_tag`]).
    tag: NonNull<AtomicUsize>,
    /// The slab this stack was carved from (possibly its only stack), and the record's own
    /// home: dropped by hand, last, when the stack is ([`Stack::drop`]).
    slab: ManuallyDrop<Arc<Slab>>,
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
        let tag = NonNull::from(&slab.tags[index]);
        let record =
            Carved { bottom, size, tag, slab: ManuallyDrop::new(Arc::clone(slab)), pages_released: false, valgrind_id };
        let slot = slab.carved[index].get();
        // SAFETY: the slot lies in the slab, which the record's own `Arc` keeps alive as long
        // as the `Stack`; each slot is carved once (see `Slab::carved`), so nothing else
        // refers to it.
        unsafe { (*slot).write(record) };
        // SAFETY: a slot of a boxed slice is never null.
        Stack(unsafe { NonNull::new_unchecked(slot.cast::<Carved>()) })
    }

    #[inline(always)]
    fn carved(&self) -> &Carved {
        // SAFETY: the record was written when the stack was carved, lives as long as the
        // stack (its slab does), and only this `Stack` uses it.
        unsafe { self.0.as_ref() }
    }

    /// Gives the stack up as one pointer, for a thread-local slot that must not have a
    /// destructor (the pool's spare); [`Stack::from_raw`] takes it back.
    pub(crate) fn into_raw(self) -> NonNull<Carved> {
        ManuallyDrop::new(self).0
    }

    /// The stack that [`Stack::into_raw`] gave up.
    ///
    /// # Safety
    /// `raw` must come from [`Stack::into_raw`], and this must be the only call with it.
    pub(crate) unsafe fn from_raw(raw: NonNull<Carved>) -> Stack {
        Stack(raw)
    }

    /// Records a non-zero word for the fault handler, which [`guard_hit`] returns for a
    /// fault in this stack's guard region taken while running on it; 0 clears it. Cleared
    /// when the stack goes back to a pool or is dropped.
    #[inline]
    pub(crate) fn set_tag(&self, tag: usize) {
        // SAFETY: `tag` points into the tags of the slab this stack holds a reference to,
        // which live as long as the slab.
        unsafe { self.carved().tag.as_ref() }.store(tag, Ordering::Relaxed);
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
        unsafe { self.carved().bottom.as_ptr().add(self.carved().size) }
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
        self.carved().bottom.as_ptr()
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
        self.carved().size
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
        unsafe { std::slice::from_raw_parts_mut(self.bottom().cast::<u64>(), self.size() / 8) }
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
        let b = self.bottom() as usize;
        b - guard_size()..b
    }

    /// The range of the stack below its top `keep_top` bytes, for a batched release.
    fn range_below(&self, keep_top: usize) -> (*mut u8, usize) {
        (self.bottom(), self.size().saturating_sub(keep_top))
    }

    /// The slab this stack was carved from, as a number that tells slabs apart while they
    /// are mapped: a pool releasing stacks groups them by it.
    pub(crate) fn slab_id(&self) -> usize {
        Arc::as_ptr(&self.carved().slab) as usize
    }

    /// How many holders keep this stack's slab mapped: its live stacks (this one
    /// included) and the pool still carving it, if any. When a batch being released holds
    /// all of them, releasing the batch unmaps the slab and no page needs giving back
    /// first.
    pub(crate) fn slab_holders(&self) -> usize {
        Arc::strong_count(&self.carved().slab)
    }

    /// Records that this stack's pages were given back (or need not be: its slab goes with
    /// it), so dropping it makes no system call of its own.
    pub(crate) fn mark_pages_released(&mut self) {
        // SAFETY: as in `carved`; `&mut self` makes this the only use of the record.
        unsafe { self.0.as_mut() }.pages_released = true;
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        crate::arch::valgrind_stack_deregister(self.carved().valgrind_id);
        self.set_tag(0);
        // The last stack of a slab unmaps it; any other gives its pages back now, unless a
        // batched release already did.
        if !self.carved().pages_released && Arc::strong_count(&self.carved().slab) > 1 {
            let _ = madvise(self.bottom(), self.size(), libc::MADV_DONTNEED);
        }
        // SAFETY: as in `carved`; the `Arc` is taken once, here, and the record is not used
        // again: dropping the `Arc` may free the slab and the record with it.
        let slab = unsafe { ManuallyDrop::take(&mut self.0.as_mut().slab) };
        drop(slab);
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("bottom", &self.carved().bottom)
            .field("size", &self.carved().size)
            .field("slab_stacks", &self.carved().slab.tags.len())
            .finish()
    }
}

mod pool;
#[cfg(test)]
use pool::MAX_SPARES;
pub(crate) use pool::{pooled_stack, recycle_stack, take_spare};
pub use pool::{with_thread_pool, StackPool};

#[cfg(test)]
mod tests;
