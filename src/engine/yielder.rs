//! The coroutine's side of a switch: its [`Yielder`], the suspend every yield and relay
//! goes through, and the start of the forced unwinding of a coroutine that is dropped while
//! suspended.

use std::any::TypeId;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::panic;
use std::ptr;

use super::{ForcedUnwind, NotSendMarker, UNWIND};
use crate::arch;

/// The handle a coroutine uses to suspend itself, handing a value out and receiving the
/// next input.
///
/// A `Yielder` lives on its coroutine's stack and is only ever lent to the coroutine's
/// closure (`&Yielder`), for no longer than the closure runs; it is neither `Send` nor
/// `Sync`, so it cannot leave the coroutine or its thread.
///
/// # Examples
/// A helper that suspends from deep inside the coroutine's calls takes the `Yielder` by
/// reference:
/// ```
/// use bobbin::{Coroutine, CoroutineResult, Yielder};
///
/// fn emit_twice(y: &Yielder<(), &'static str>, what: &'static str) {
///     y.suspend(what);
///     y.suspend(what);
/// }
/// let mut co = Coroutine::new(|y, ()| {
///     emit_twice(y, "tick");
///     "done"
/// });
/// assert_eq!(co.resume(()), CoroutineResult::Yield("tick"));
/// assert_eq!(co.resume(()), CoroutineResult::Yield("tick"));
/// assert_eq!(co.resume(()), CoroutineResult::Return("done"));
/// ```
///
/// It cannot be sent to another thread:
/// ```compile_fail
/// fn assert_send<T: Send>(_: &T) {}
/// let _co = bobbin::Coroutine::<(), (), ()>::new(|y, ()| assert_send(y));
/// ```
pub struct Yielder<I, Y> {
    /// The coroutine's stack base.
    pub(super) base: usize,
    pub(super) _marker: NotSendMarker<fn(Y) -> I>,
}

impl<I, Y> Yielder<I, Y> {
    /// Suspends the coroutine, handing `val` to the caller of `resume`, and returns the
    /// input of the next `resume`.
    ///
    /// If the coroutine is dropped while suspended here, this call does not return: the
    /// coroutine's stack unwinds from this point, running every destructor on it.
    ///
    /// # Panics
    /// Called while the coroutine is being unwound because it was dropped (by code that
    /// caught that unwinding), it does not suspend: the unwinding resumes from here. Called
    /// from a destructor that this unwinding runs, it aborts the process: there is nobody
    /// left to resume the coroutine, and a destructor cannot be unwound from.
    ///
    /// # Examples
    /// Values go both ways: what `suspend` hands out comes out of `resume`, and the next
    /// `resume`'s input is what `suspend` returns.
    /// ```
    /// use bobbin::{Coroutine, CoroutineResult};
    ///
    /// let mut doubler = Coroutine::new(|y, mut x: u32| loop {
    ///     x = y.suspend(x * 2);
    /// });
    /// assert_eq!(doubler.resume(1), CoroutineResult::<u32, ()>::Yield(2));
    /// assert_eq!(doubler.resume(21), CoroutineResult::Yield(42));
    /// ```
    #[inline(always)]
    pub fn suspend(&self, val: Y) -> I {
        // The resumer moves the value out of the word, or of this frame while we are
        // suspended (or, if it is dropping the coroutine and aborts, leaves it).
        let mut val = MaybeUninit::new(val);
        let word = if in_register::<Y>() {
            let mut word = 0usize;
            // SAFETY: a `Y` that crosses in the register fits in a word and has every byte
            // initialised (`in_register`), so the word is initialised throughout; `val`,
            // never dropped, gives the value up to it.
            unsafe {
                ptr::copy_nonoverlapping(val.as_ptr().cast::<u8>(), (&raw mut word).cast::<u8>(), size_of::<Y>())
            };
            word
        } else {
            val.as_mut_ptr() as usize
        };
        // A Yielder is only reachable from its own closure, so we run on the coroutine's
        // stack, or on the stack of a borrowing coroutine that the closure runs and that
        // captured this Yielder: that one is inside a `resume` called from this
        // coroutine's frames, which stay in place (and borrow it) while we are suspended,
        // so resuming us continues there and its own suspend returns into those frames.
        // SAFETY: either way the link slot holds the resumer's stack pointer, and `val`
        // stays in place until we are resumed.
        let input = unsafe { switch_out::<false>(self.base, word) };
        // SAFETY: the resumer passed the address of an input it no longer touches.
        unsafe { ptr::read(input as *const I) }
    }
}

/// Suspends the running coroutine whose stack base is `base`, handing `transfer` to its
/// resumer, and returns the word of the next resume; unwinds instead if that word says the
/// coroutine is being dropped. With `RELAYING`, the resumer learns that the coroutine
/// relays (`relay.rs`) rather than yields.
///
/// # Safety
/// As [`arch::suspend`]: we run on the stack of the running coroutine with this base.
#[inline(always)]
pub(super) unsafe fn switch_out<const RELAYING: bool>(base: usize, transfer: usize) -> usize {
    #[cfg(bobbin_asan)]
    let announced = crate::stack::asan::Suspend::start();
    // SAFETY: upheld by the caller.
    let input = unsafe {
        if RELAYING {
            arch::suspend_relaying(base, transfer)
        } else {
            arch::suspend(base, transfer)
        }
    };
    #[cfg(bobbin_asan)]
    announced.finish();
    if input == UNWIND {
        start_unwinding();
    }
    input
}

/// Whether a yielded `Y` crosses the switch as the word itself, in the register, rather than
/// by its address: a zero-sized type (nothing crosses), or one of the primitive scalars of
/// at most a word (integers, floats, `bool`, `char`). Every byte of those is initialised in
/// every value, so copying one into an integer is sound; a type with padding or a union
/// (`MaybeUninit` among them) may hold uninitialised bytes, which no integer may, and the
/// size and alignment of a type do not tell them apart, so any other type goes by address.
/// Decided per type at compile time: the comparisons fold to a constant.
#[inline(always)]
pub(super) fn in_register<Y>() -> bool {
    if size_of::<Y>() == 0 {
        return true;
    }
    if size_of::<Y>() > size_of::<usize>() {
        return false;
    }
    let id = type_id_erasing_lifetimes::<Y>();
    macro_rules! any_of {
        ($($t:ty),*) => { false $(|| id == TypeId::of::<$t>())* };
    }
    any_of!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64, bool, char)
}

/// The `TypeId` of `T` with every lifetime in it taken as `'static` (`TypeId::of` wants a
/// `'static` type, and a yielded type need not be one). Lifetimes are gone by the time code
/// is generated, so this is the id of `T` itself; compared only with the ids of types that
/// have no lifetimes, it tells exactly whether `T` is one of them.
#[inline(always)]
fn type_id_erasing_lifetimes<T>() -> TypeId {
    trait Probe {
        fn id(&self) -> TypeId
        where
            Self: 'static;
    }
    impl<T> Probe for PhantomData<T> {
        #[inline(always)]
        fn id(&self) -> TypeId
        where
            Self: 'static,
        {
            TypeId::of::<T>()
        }
    }
    let probe: &dyn Probe = &PhantomData::<T>;
    // SAFETY: only the trait object's lifetime bound changes. The object is a `PhantomData`
    // (no data, nothing borrowed) and `id` reads nothing from it; the id it returns names
    // `T` with its lifetimes erased, which the one caller compares with lifetime-free types.
    let probe = unsafe { std::mem::transmute::<&dyn Probe, &(dyn Probe + 'static)>(probe) };
    probe.id()
}

/// Moves a yielded value out of the word its coroutine suspended with: the value itself
/// for a type that crosses in the register ([`in_register`]), its address otherwise.
///
/// # Safety
/// `word` must be what the suspend of a `Yielder<_, Y>` handed over, taken once.
#[inline(always)]
pub(super) unsafe fn take_yielded<Y>(word: usize) -> Y {
    if in_register::<Y>() {
        // SAFETY: the word holds the bytes of a `Y` the coroutine gave up (see `suspend`).
        unsafe { ptr::read_unaligned((&raw const word).cast::<Y>()) }
    } else {
        // SAFETY: the address of a `Y` in the coroutine's suspended frame, which stays in
        // place while it is suspended and which the coroutine never touches again.
        unsafe { ptr::read(word as *const Y) }
    }
}

thread_local! {
    /// Whether the thread was already unwinding when the coroutine that is now being
    /// dropped began to be dropped; set right before every switch that asks it to unwind.
    static DROPPED_WHILE_PANICKING: Cell<bool> = const { Cell::new(false) };
}

#[inline(never)]
pub(super) fn set_dropped_while_panicking(panicking: bool) {
    DROPPED_WHILE_PANICKING.set(panicking);
}

/// The coroutine is being dropped: unwind its stack from the pending `suspend`.
///
/// Code that catches this unwinding and suspends again lands here once more (the dropping
/// resumer answers every suspend with [`UNWIND`]), so the unwinding resumes from that
/// suspend and every value on the stack is still dropped: `catch_unwind` cannot keep a
/// dropped coroutine alive. A destructor that suspends while the unwinding runs it cannot
/// be unwound from (that would be a panic inside a destructor during unwinding): the
/// process aborts with a message saying so.
///
/// A coroutine dropped while its thread unwinds from a panic elsewhere (by a frame of that
/// unwinding) starts its own unwinding as usual: the thread's panic count is not its own.
/// Then the destructor case cannot be told apart here, and the runtime's own abort for a
/// panic in a destructor during cleanup stops it instead.
#[cold]
#[inline(never)]
fn start_unwinding() -> ! {
    if std::thread::panicking() && !DROPPED_WHILE_PANICKING.get() {
        eprintln!("bobbin: a destructor tried to suspend a coroutine while it was being dropped; aborting");
        std::process::abort();
    }
    panic::resume_unwind(Box::new(ForcedUnwind));
}

impl<I, Y> fmt::Debug for Yielder<I, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").field("base", &format_args!("{:#x}", self.base)).finish_non_exhaustive()
    }
}

/// Whether a panic payload is the unwinding that dropping a suspended coroutine starts.
pub(crate) fn is_forced_unwind(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<ForcedUnwind>()
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;
    use std::num::NonZeroU64;

    use super::in_register;

    #[test]
    fn only_scalars_and_zero_sized_types_cross_in_the_register() {
        assert!(in_register::<u64>() && in_register::<usize>() && in_register::<i8>() && in_register::<f64>());
        assert!(in_register::<bool>() && in_register::<char>() && in_register::<u32>());
        assert!(in_register::<()>() && in_register::<[u64; 0]>());
        // Padding, possibly uninitialised bytes, more than a word, or a type not known to be
        // free of both: by address.
        assert!(!in_register::<(u8, u32)>() && !in_register::<(u8, u16)>());
        assert!(!in_register::<MaybeUninit<u64>>() && !in_register::<MaybeUninit<u8>>());
        assert!(!in_register::<u128>() && !in_register::<String>() && !in_register::<(u64, u64)>());
        assert!(!in_register::<Option<&u64>>() && !in_register::<&u64>() && !in_register::<NonZeroU64>());
        fn borrowed<'a>(_: &'a u8) -> bool {
            in_register::<&'a u8>()
        }
        assert!(!borrowed(&0));
    }
}
