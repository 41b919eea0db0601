//! Making a coroutine: its stack (one of the thread's spares, or one from its pool), the closure
//! and first frame placed at the top of that stack, and the first Rust code that runs
//! there ([`entry`]).

use std::any::TypeId;
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use super::discover::{Discover, CURRENT};
use super::{initial_sp, RawCoroutine, Yielder, UNWIND};
use crate::arch;
use crate::stack::{self, Stack};
use crate::trap;
use crate::Error;

impl<'a, I, Y, R> RawCoroutine<'a, I, Y, R> {
    /// Places `f` on a stack of `stack_size` bytes (rounded up to pages) and prepares the
    /// first entry. With `preserve_fp`, the coroutine keeps floating-point control words
    /// of its own (see `coroutine::Builder::preserve_fp_control`); otherwise it shares the
    /// thread's.
    #[inline]
    pub(crate) fn new<F>(stack_size: usize, f: F, preserve_fp: bool) -> Result<Self, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'a,
    {
        Ok(Self::new_with::<F, false>(coroutine_stack(stack_size)?, f, None, preserve_fp))
    }

    /// Like [`RawCoroutine::new`], and code running on the coroutine's stack can suspend
    /// it with [`suspend_current`] without holding its [`Yielder`].
    #[inline]
    pub(crate) fn new_discoverable<F>(stack_size: usize, f: F, preserve_fp: bool) -> Result<Self, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'a,
        I: 'static,
        Y: 'static,
    {
        let stack = coroutine_stack(stack_size)?;
        Ok(Self::new_with::<F, true>(stack, f, Some(TypeId::of::<Yielder<I, Y>>()), preserve_fp))
    }

    #[inline]
    fn new_with<F, const DISCOVERABLE: bool>(
        stack: Stack,
        f: F,
        discoverable: Option<TypeId>,
        preserve_fp: bool,
    ) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'a,
    {
        // A large closure goes to the heap so it cannot crowd out the stack.
        if size_of::<F>() > stack.size() / 8 {
            let boxed = Box::new(f);
            let unboxed = move |y: &Yielder<I, Y>, i| boxed(y, i);
            return Self::new_inner::<_, DISCOVERABLE>(stack, unboxed, discoverable, preserve_fp);
        }
        Self::new_inner::<F, DISCOVERABLE>(stack, f, discoverable, preserve_fp)
    }

    fn new_inner<F, const DISCOVERABLE: bool>(
        stack: Stack,
        f: F,
        discoverable: Option<TypeId>,
        preserve_fp: bool,
    ) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'a,
    {
        let top = stack.top() as usize;
        // A discoverable coroutine's record goes at the top of its stack, where it stays in
        // place for as long as the coroutine can run, and the closure below it.
        let above = if discoverable.is_some() { size_of::<Discover>().next_multiple_of(16) } else { 0 };
        let align = align_of::<F>().max(16);
        let base = (top - above - size_of::<F>()) & !(align - 1);
        let frame = arch::initial_frame(entry::<I, Y, R, F, DISCOVERABLE> as *const () as usize, preserve_fp);
        // The closure takes at most an eighth of the stack, the record a few words and the
        // area below the closure five (the frame written here three), so everything written
        // here lies inside the stack.
        // SAFETY: [base, base + size_of F) and the words of the frame below base are inside
        // the stack's usable range, which this coroutine owns exclusively; base is aligned
        // for F and for words.
        unsafe {
            ptr::write(base as *mut F, f);
            ptr::write(initial_sp(base) as *mut _, frame);
        }
        stack.set_tag(arch::tagged_base(base, preserve_fp));
        let discover = match discoverable {
            None => ptr::null(),
            Some(type_id) => {
                let at = (top - above) as *mut Discover;
                let record = Discover { type_id, yielder: Cell::new(0), stack: stack.bottom() as usize..top };
                // SAFETY: [top - above, top) lies in the stack, above the closure, is aligned
                // to 16 (the stack's top is page-aligned) and is owned by this coroutine;
                // nothing else writes there until the stack is given back.
                unsafe { ptr::write(at, record) };
                at.cast_const()
            }
        };
        RawCoroutine {
            sp: initial_sp(base),
            stack_size: stack.size(),
            base,
            discover,
            drop_fresh: drop_start::<F>,
            stack: ManuallyDrop::new(Some(stack)),
            _marker: PhantomData,
            _borrow: PhantomData,
        }
    }
}

/// A stack of `size` bytes for a new coroutine: the newest of this thread's spares if it has exactly
/// that size, else one from the thread's pool.
///
/// Only the second way makes sure the fault handler and this thread's alternate signal
/// stack are installed: a thread has a spare only after a coroutine finished on it, and
/// every thread that runs a coroutine made it here, or is a scheduler's thread, which
/// installs them when it starts.
#[inline]
fn coroutine_stack(size: usize) -> Result<Stack, Error> {
    match stack::take_spare(size) {
        Some(stack) => Ok(stack),
        None => fresh_coroutine_stack(size),
    }
}

#[cold]
#[inline(never)]
fn fresh_coroutine_stack(size: usize) -> Result<Stack, Error> {
    trap::ensure_installed();
    stack::pooled_stack(size)
}

/// Drops a closure of type `F` stored at `base`.
///
/// # Safety
/// `base` must hold a valid `F` that is not used afterwards.
unsafe fn drop_start<F>(base: usize) {
    // SAFETY: upheld by the caller.
    unsafe { ptr::drop_in_place(base as *mut F) }
}

/// First Rust code on a coroutine stack, called by `bobbin_coroutine_start` (or
/// `bobbin_coroutine_start_inner` for a coroutine that keeps its own floating-point control
/// words). Never returns: it leaves through [`arch::finish`], handing the resumer its
/// result.
///
/// # Safety
/// `input` is the address of the first input, which the resumer no longer touches, and
/// `base` holds a valid `F` placed by `RawCoroutine::new_inner`.
unsafe extern "C" fn entry<I, Y, R, F, const DISCOVERABLE: bool>(input: usize, base: usize) -> !
where
    F: FnOnce(&Yielder<I, Y>, I) -> R,
{
    #[cfg(bobbin_asan)]
    crate::stack::asan::first_arrival();
    debug_assert!(input != UNWIND, "a coroutine is never started only to be dropped");
    // SAFETY: upheld by the caller: the closure is read out exactly once (the coroutine is
    // no longer Fresh, so it will not be dropped in place), and the input is moved out.
    let (f, input) = unsafe { (ptr::read(base as *const F), ptr::read(input as *const I)) };
    let yielder = Yielder { base, _marker: PhantomData };
    if DISCOVERABLE {
        // SAFETY: a non-null CURRENT points at the record of the discoverable coroutine
        // being resumed, which lies on its stack, owned by the RawCoroutine borrowed by that
        // resume.
        let current = unsafe { CURRENT.get().as_ref() };
        // The record is this coroutine's exactly when it covers this stack: the coroutine
        // was started through `resume_discoverable`. Otherwise its Yielder stays unknown
        // and `suspend_current` refuses.
        if let Some(current) = current.filter(|c| c.stack.contains(&(base - arch::LINK_OFFSET))) {
            current.yielder.set(&yielder as *const Yielder<I, Y> as usize);
        }
    }
    let mut result = MaybeUninit::new(panic::catch_unwind(AssertUnwindSafe(|| f(&yielder, input))));
    let (base, out) = (yielder.base, result.as_mut_ptr() as usize);
    #[cfg(bobbin_asan)]
    {
        crate::stack::asan::assert_off_fake_stack(out);
        crate::stack::asan::leave_for_good();
    }
    // SAFETY: we run on the coroutine's stack, whose link holds the resumer's stack
    // pointer; this frame, and the result in it, stay in place until the resumer has moved
    // the result out and given the stack back, and nothing runs here again.
    unsafe { arch::finish(base, out) }
}
