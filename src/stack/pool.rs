//! `StackPool` and the per-thread pools (with a few spare stacks in front of them) that let
//! creating a coroutine cost no system call in the steady state.

use super::*;

/// A source of stacks of one size that recycles them.
///
/// New stacks are carved from slabs of up to 256 (one kernel mapping per slab); returned
/// stacks are kept (up to [`StackPool::max_cached`]) and handed out again without a system
/// call. A kept stack retains the pages its last user touched until [`StackPool::trim`].
///
/// # How many stacks a pool keeps
/// By default a pool keeps as many returned stacks as it has made itself, and at least
/// [`DEFAULT_MAX_CACHED`]. A program that once had a million green threads at the same
/// time is likely to have them again (a server's next burst of load); kept stacks let the
/// second million start without a mapping, a guard installation or a page fault each,
/// which is nearly all of what a fresh stack costs. What they keep is what the first
/// million needed at their peak: the pages their last users touched (one or two for a
/// parked green thread) and address space, which costs nothing until touched. The bound
/// by the pool's own making, not by a fixed count, is for threads that receive more stacks
/// than they take (a green thread that moves to another runtime worker and finishes there
/// returns its stack to that worker's pool): such a pool keeps [`DEFAULT_MAX_CACHED`] of
/// them, releases the rest, and all the pools together keep no more than their making
/// needed. Memory goes back when the program asks, with [`StackPool::trim`], or when the
/// pool's thread ends; [`StackPool::set_max_cached`] sets a fixed bound instead.
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
    /// A fixed bound on `free` set by [`StackPool::set_max_cached`]; `None` for the
    /// automatic one (see "How many stacks a pool keeps").
    max_cached: Option<usize>,
    /// Stacks this pool has made (carved or mapped) so far.
    made: usize,
    /// The automatic bound's least value: [`DEFAULT_MAX_CACHED`] (tests lower it).
    min_kept: usize,
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
            max_cached: None,
            made: 0,
            min_kept: DEFAULT_MAX_CACHED,
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

    /// How many returned stacks the pool keeps before it releases further ones: the bound
    /// set with [`StackPool::set_max_cached`], else the number of stacks it has made and at
    /// least [`DEFAULT_MAX_CACHED`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::stack::{StackPool, DEFAULT_MAX_CACHED};
    ///
    /// let mut pool = StackPool::new(16 * 1024).unwrap();
    /// assert_eq!(pool.max_cached(), DEFAULT_MAX_CACHED); // until it has made more
    /// pool.set_max_cached(1);
    /// assert_eq!(pool.max_cached(), 1);
    /// ```
    pub fn max_cached(&self) -> usize {
        self.max_cached.unwrap_or(self.made.max(self.min_kept))
    }

    /// Lowers the automatic bound's least value, so that tests can see it at work without
    /// making tens of thousands of stacks.
    #[cfg(test)]
    pub(super) fn set_min_kept(&mut self, n: usize) {
        self.min_kept = n;
    }

    /// Sets [`StackPool::max_cached`] to a fixed bound. Stacks already kept beyond it stay
    /// until [`StackPool::trim`].
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
        self.max_cached = Some(n);
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
            let stack = Stack::with_guard_mode(self.size, GuardMode::Mprotect)?;
            self.made += 1;
            return Ok(stack);
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
        self.made += 1;
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
        if stack.size() != self.size {
            return;
        }
        stack.set_tag(0);
        if self.free.len() < self.max_cached() {
            self.free.push(stack);
            return;
        }
        self.releasing.push(stack);
        if self.releasing.len() >= 256 {
            self.flush_releasing();
        }
    }

    /// Drops the stacks waiting in `releasing`, giving back the pages of those whose slab
    /// stays mapped in as few system calls as possible. A slab whose every holder is in the
    /// batch is unmapped when the batch is dropped, and unmapping gives its pages back
    /// anyway: its stacks make no `madvise` at all (dropping a pool of a million stacks
    /// made one per stack, 65,000 of them, before the limit rose).
    fn flush_releasing(&mut self) {
        self.releasing.sort_unstable_by_key(Stack::slab_id);
        let mut ranges = Vec::new();
        for group in self.releasing.chunk_by(|a, b| a.slab_id() == b.slab_id()) {
            // Another thread may drop a stack of the same slab meanwhile. That only lowers
            // the count, so the test can err towards a release that was not needed (the
            // slab goes anyway), never skip one for a slab that stays: nobody can add a
            // holder, since the one pool that carves a slab holds it.
            if group[0].slab_holders() > group.len() {
                ranges.extend(group.iter().map(|s| s.range_below(0)));
            }
        }
        let _ = madvise_many(&ranges, libc::MADV_DONTNEED);
        for mut stack in self.releasing.drain(..) {
            stack.mark_pages_released();
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
        // The slab being carved goes with its stacks if they are all here: the pool holds
        // it no longer.
        self.slab = None;
        self.releasing.append(&mut self.free);
        self.flush_releasing();
    }
}

impl fmt::Debug for StackPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackPool")
            .field("stack_size", &self.size)
            .field("mode", &self.mode)
            .field("cached", &self.free.len())
            .field("max_cached", &self.max_cached())
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

/// How many finished coroutines' stacks a thread keeps in front of its pools. A scheduler
/// that starts several green threads before the first of them finishes finds one for
/// each; beyond that, stacks go back to the pool.
pub(super) const MAX_SPARES: usize = 8;

/// [`Spares::top`] before the thread's [`SpareGuard`] is registered.
const UNGUARDED: usize = MAX_SPARES + 1;
/// [`Spares::top`] once the thread's [`SpareGuard`] ran.
const GONE: usize = MAX_SPARES + 2;

/// The stacks the coroutine layer gave back last on a thread, kept in front of its pools:
/// a program that creates and finishes coroutines one after another (a generator per
/// call, say) reuses them without looking its pool up, and so does a scheduler whose
/// green threads start a few at a time and finish later.
///
/// Raw pointers and a count in a thread-local without a destructor, rather than a
/// collection of `Stack`s: such a thread-local is a plain load and store, where one with a
/// destructor is a call that checks whether it was registered. [`SpareGuard`] drops the
/// spares when the thread exits.
///
/// A spare keeps the tag of the coroutine that used it: nothing runs on it, so the fault
/// handler can never find it, and the next coroutine tags it before it runs. Anything else
/// that takes it (its pool, or dropping it) clears the tag.
struct Spares {
    /// Stacks given up with [`Stack::into_raw`], oldest first: those below `top`.
    stacks: [Cell<*mut Carved>; MAX_SPARES],
    /// How many `stacks` holds, from 0 to [`MAX_SPARES`] while [`SpareGuard`] is
    /// registered; [`UNGUARDED`] before, [`GONE`] after it ran. Either of those reads as
    /// full to [`recycle_stack`] and as empty to [`take_spare`], so the fast paths make
    /// one comparison.
    top: Cell<usize>,
}

thread_local! {
    static SPARES: Spares = const {
        Spares { stacks: [const { Cell::new(std::ptr::null_mut()) }; MAX_SPARES], top: Cell::new(UNGUARDED) }
    };
    static SPARE_GUARD: SpareGuard = const { SpareGuard };
}

/// Drops this thread's spares when the thread exits, and keeps later ones from being set.
struct SpareGuard;

impl Drop for SpareGuard {
    fn drop(&mut self) {
        while let Some(spare) = take_spare_any() {
            return_to_pool(spare);
        }
        SPARES.with(|s| s.top.set(GONE));
    }
}

impl Spares {
    /// The newest spare, if there is one and it has exactly `size` bytes (any size for
    /// `None`).
    #[inline(always)]
    fn take_newest(&self, size: Option<usize>) -> Option<Stack> {
        let index = self.top.get().wrapping_sub(1);
        if index >= MAX_SPARES {
            return None;
        }
        let raw = self.stacks[index].get();
        // SAFETY: every slot below `top` holds a live stack given up with
        // `Stack::into_raw` (`recycle_stack`); reading its size does not take it.
        if size.is_some_and(|size| unsafe { &*raw }.size != size) {
            return None;
        }
        self.top.set(index);
        // SAFETY: lowering `top` past the slot took the only live copy of the pointer, and
        // it is not null (it was set from a `Stack`).
        Some(unsafe { Stack::from_raw(NonNull::new_unchecked(raw)) })
    }
}

/// Takes the newest of this thread's spares, if it has one.
#[inline(always)]
fn take_spare_any() -> Option<Stack> {
    SPARES.with(|s| s.take_newest(None))
}

/// The newest of this thread's spares, if it has exactly `size` bytes (one of another
/// size stays).
#[inline]
pub(crate) fn take_spare(size: usize) -> Option<Stack> {
    SPARES.with(|s| s.take_newest(Some(size)))
}

/// A stack of `size` bytes (rounded up to pages) for a coroutine, when [`take_spare`] found
/// no spare of exactly that size: the newest spare if `size` rounds to its size, otherwise
/// one from this thread's pool (that spare, if any, goes back to its own).
#[cold]
pub(crate) fn pooled_stack(size: usize) -> Result<Stack, Error> {
    if let Some(spare) = take_spare_any() {
        if checked_stack_size(size).is_ok_and(|rounded| rounded == spare.size()) {
            return Ok(spare);
        }
        return_to_pool(spare);
    }
    with_thread_pool(size, |p| p.get())?
}

/// Hands back the stack of a coroutine that finished: it becomes this thread's newest
/// spare, or, when the thread has [`MAX_SPARES`], goes back to its pool (it is dropped if
/// the pool is unavailable, as during thread exit).
#[inline]
pub(crate) fn recycle_stack(stack: Stack) {
    SPARES.with(|s| {
        let top = s.top.get();
        if top >= MAX_SPARES {
            return recycle_slow(stack);
        }
        s.stacks[top].set(stack.into_raw().as_ptr());
        s.top.set(top + 1);
    })
}

/// [`recycle_stack`] with every spare slot taken, before this thread's [`SpareGuard`] is
/// registered, or after it ran.
#[cold]
#[inline(never)]
fn recycle_slow(stack: Stack) {
    let first = SPARES.with(|s| s.top.get() == UNGUARDED);
    if first && SPARE_GUARD.try_with(|_| ()).is_ok() {
        SPARES.with(|s| s.top.set(0));
        return recycle_stack(stack);
    }
    return_to_pool(stack);
}

/// Puts a stack back into this thread's pool for its size.
#[cold]
#[inline(never)]
fn return_to_pool(stack: Stack) {
    // If the pool is unavailable, the closure, and the stack in it, is dropped.
    let _ = with_pool_of_rounded_size(stack.size(), |p| p.put(stack));
}
