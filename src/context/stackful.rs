//! The machinery under the safe coroutine layer: the initial frame of a coroutine stack,
//! typed transfer of values across the switch, forced unwinding on drop and recovery from
//! stack overflow. `crate::coroutine` builds the public API on [`RawCoroutine`] and
//! [`Yielder`] without any unsafe code of its own.
//!
//! Values cross the switch through a [`Transfer`] that lives in the resumer's frame for
//! the duration of one `resume`. The resumer passes its address with every entry into the
//! coroutine; the coroutine writes what it yields (or returns) into it before switching
//! back. Both sides only touch it while the other is suspended.

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use crate::arch;
use crate::stack::{self, Stack};
use crate::trap;
use crate::Error;

/// What one resume produced.
pub(crate) enum Resumed<Y, R> {
    /// The coroutine suspended with a value.
    Yield(Y),
    /// The coroutine returned.
    Return(R),
    /// The coroutine panicked; the payload is what it panicked with.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The coroutine could not be resumed, or overflowed its stack during this resume.
    Refused(Refusal),
}

/// Why a resume produced no value.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal {
    /// It is running (resumed from inside itself).
    Running,
    /// It had already finished.
    Finished,
    /// It overflowed its stack during this resume.
    Overflowed { stack_size: usize },
}

impl Refusal {
    /// The matching public error.
    #[cold]
    pub(crate) fn into_error(self) -> Error {
        match self {
            Refusal::Running => Error::ResumedFromInside,
            Refusal::Finished => Error::Finished,
            Refusal::Overflowed { stack_size } => Error::StackOverflow { stack_size },
        }
    }
}

/// Where a coroutine is in its life, as read off its saved stack pointer
/// ([`RawCoroutine::state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    Suspended,
    Running,
    Finished,
    Overflowed,
}

/// The part of a [`Transfer`] that does not depend on the return type, so a [`Yielder`]
/// (which knows only `I` and `Y`) can use it.
///
/// No field carries a flag of its own: which one holds a value follows from the switch.
/// `input` is written by the resumer before every entry except the one that asks the
/// coroutine to unwind (the transfer address is then tagged with [`UNWIND`]); `yielded` is
/// written by the coroutine when it suspends (the switch back reports a stack pointer).
#[repr(C)]
struct Head<I, Y> {
    input: MaybeUninit<I>,
    yielded: MaybeUninit<Y>,
}

#[repr(C)]
struct Transfer<I, Y, R> {
    head: Head<I, Y>,
    /// Written by the entry function when the closure has returned or unwound (the switch
    /// back reports [`arch::SWITCH_FINISHED`]).
    done: MaybeUninit<std::thread::Result<R>>,
}

impl<I, Y, R> Transfer<I, Y, R> {
    fn new() -> Self {
        // A transfer holds a `Box`, so its address is even and the low bit is free for
        // the tag.
        const { assert!(align_of::<Self>() > UNWIND) };
        Transfer {
            head: Head { input: MaybeUninit::uninit(), yielded: MaybeUninit::uninit() },
            done: MaybeUninit::uninit(),
        }
    }
}

/// Set in the transfer address the resumer passes to ask a suspended coroutine to unwind
/// instead of continuing (it is being dropped).
const UNWIND: usize = 1;

/// The payload of the unwinding that dropping a suspended coroutine starts in it.
struct ForcedUnwind;

/// Marker making a type `!Send` and `!Sync` while naming its value types.
type NotSendMarker<T> = PhantomData<(*mut u8, T)>;

/// `RawCoroutine::sp` while the coroutine runs. Its resume holds it mutably borrowed, so
/// only code that broke aliasing rules could see this; it is refused rather than entered.
const SP_RUNNING: usize = 2;
const _: () = assert!(SP_RUNNING > arch::SWITCH_FINISHED && SP_RUNNING > arch::SWITCH_OVERFLOWED);

/// Where the initial frame of a coroutine whose stack base is `base` leaves its stack
/// pointer: three words below the base.
fn initial_sp(base: usize) -> usize {
    base - 3 * size_of::<usize>()
}

/// A coroutine: a closure on its own stack, switched to with [`RawCoroutine::resume`].
pub(crate) struct RawCoroutine<I, Y, R> {
    stack: Option<Stack>,
    /// Saved stack pointer of the coroutine while it is suspended (its initial one while
    /// it is fresh); otherwise [`arch::SWITCH_FINISHED`], [`arch::SWITCH_OVERFLOWED`] or
    /// [`SP_RUNNING`]. The one word of state the hot path reads and writes.
    sp: usize,
    stack_size: usize,
    /// Stack base: the closure's start record lies above it, the link slot and initial
    /// frame below.
    base: usize,
    /// For a coroutine that code on its stack may suspend without its `Yielder` (a green
    /// thread): what [`suspend_current`] needs.
    discover: Option<Discover>,
    /// Drops the start record stored at the base of a coroutine that never started.
    drop_fresh: unsafe fn(usize),
    /// Raw pointers make the coroutine !Send and !Sync: its stack may hold addresses of
    /// this thread's thread-locals.
    _marker: NotSendMarker<fn(I) -> (Y, R)>,
}

impl<I, Y, R> RawCoroutine<I, Y, R> {
    /// Places `f` on `stack` and prepares the first entry. With `preserve_fp`, the
    /// coroutine keeps floating-point control words of its own (see
    /// `coroutine::Builder::preserve_fp_control`); otherwise it shares the thread's.
    pub(crate) fn new<F>(stack: Stack, f: F, preserve_fp: bool) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Self::new_with(stack, f, None, preserve_fp)
    }

    /// Like [`RawCoroutine::new`], and code running on the coroutine's stack can suspend
    /// it with [`suspend_current`] without holding its [`Yielder`].
    pub(crate) fn new_discoverable<F>(stack: Stack, f: F, preserve_fp: bool) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
        I: 'static,
        Y: 'static,
    {
        Self::new_with(stack, f, Some(TypeId::of::<Yielder<I, Y>>()), preserve_fp)
    }

    fn new_with<F>(stack: Stack, f: F, discoverable: Option<TypeId>, preserve_fp: bool) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        // A large closure goes to the heap so it cannot crowd out the stack.
        if size_of::<F>() > stack.size() / 8 {
            let boxed = Box::new(f);
            return Self::new_inner(stack, move |y: &Yielder<I, Y>, i| boxed(y, i), discoverable, preserve_fp);
        }
        Self::new_inner(stack, f, discoverable, preserve_fp)
    }

    fn new_inner<F>(stack: Stack, f: F, discoverable: Option<TypeId>, preserve_fp: bool) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        trap::ensure_installed();
        let top = stack.top() as usize;
        let align = align_of::<Start<F>>().max(16);
        let base = (top - size_of::<Start<F>>()) & !(align - 1);
        let start: unsafe extern "C" fn() =
            if preserve_fp { arch::bobbin_coroutine_start_fp } else { arch::bobbin_coroutine_start };
        // The closure takes at most an eighth of the stack, and the frame below it three
        // words, so everything written here lies inside the stack.
        // SAFETY: [base, base + size_of Start<F>) and the three words below base are inside
        // the stack's usable range, which this coroutine owns exclusively; base is aligned
        // for Start<F> and for words.
        unsafe {
            ptr::write(base as *mut Start<F>, Start { f, preserve_fp, discoverable: discoverable.is_some() });
            let frame = base as *mut usize;
            frame.sub(1).write(0);
            frame.sub(2).write(entry::<I, Y, R, F> as *const () as usize);
            frame.sub(3).write(start as *const () as usize);
        }
        stack.set_tag(trap::coroutine_tag(base, preserve_fp));
        let discover = discoverable.map(|type_id| Discover {
            type_id,
            yielder: Cell::new(0),
            stack: stack.bottom() as usize..top,
        });
        RawCoroutine {
            sp: initial_sp(base),
            stack_size: stack.size(),
            base,
            discover,
            drop_fresh: drop_start::<F>,
            stack: Some(stack),
            _marker: PhantomData,
        }
    }

    fn state(&self) -> State {
        match self.sp {
            arch::SWITCH_FINISHED => State::Finished,
            arch::SWITCH_OVERFLOWED => State::Overflowed,
            SP_RUNNING => State::Running,
            sp if sp == initial_sp(self.base) => State::Fresh,
            _ => State::Suspended,
        }
    }

    /// Whether the coroutine has been resumed at least once.
    pub(crate) fn started(&self) -> bool {
        self.state() != State::Fresh
    }

    /// Whether the coroutine has returned, panicked or overflowed.
    pub(crate) fn done(&self) -> bool {
        matches!(self.state(), State::Finished | State::Overflowed)
    }

    /// Usable size of the coroutine's stack.
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// Runs the coroutine until it suspends, returns, panics or overflows its stack.
    #[inline(always)]
    pub(crate) fn resume(&mut self, input: I) -> Resumed<Y, R> {
        self.resume_as::<false>(input)
    }

    /// [`RawCoroutine::resume`] for a coroutine made by
    /// [`RawCoroutine::new_discoverable`]: code on its stack can find it while it runs.
    pub(crate) fn resume_discoverable(&mut self, input: I) -> Resumed<Y, R> {
        self.resume_as::<true>(input)
    }

    /// A resume, recording the coroutine as this thread's current discoverable one if
    /// `DISCOVER`.
    #[inline(always)]
    fn resume_as<const DISCOVER: bool>(&mut self, input: I) -> Resumed<Y, R> {
        if self.sp <= SP_RUNNING {
            return self.refuse();
        }
        let mut transfer = Transfer::<I, Y, R>::new();
        transfer.head.input.write(input);
        let ret = self.switch_in::<DISCOVER>(&mut transfer, 0);
        self.resumed(ret, &mut transfer)
    }

    /// What a resume that came back with `ret` produced.
    #[inline(always)]
    fn resumed(&mut self, ret: usize, transfer: &mut Transfer<I, Y, R>) -> Resumed<Y, R> {
        if ret > arch::SWITCH_OVERFLOWED {
            // SAFETY: a coroutine that suspended wrote what it yielded (Head's contract).
            return Resumed::Yield(unsafe { transfer.head.yielded.assume_init_read() });
        }
        self.ended(ret, transfer)
    }

    #[cold]
    fn refuse(&self) -> Resumed<Y, R> {
        Resumed::Refused(match self.state() {
            State::Running => Refusal::Running,
            _ => Refusal::Finished,
        })
    }

    /// The coroutine finished or overflowed during this resume.
    #[cold]
    #[inline(never)]
    fn ended(&mut self, ret: usize, transfer: &mut Transfer<I, Y, R>) -> Resumed<Y, R> {
        match ret {
            arch::SWITCH_FINISHED => {
                self.finish();
                // SAFETY: a coroutine that finished wrote its result (Transfer's contract).
                match unsafe { transfer.done.assume_init_read() } {
                    Ok(r) => Resumed::Return(r),
                    Err(payload) => Resumed::Panicked(payload),
                }
            }
            arch::SWITCH_OVERFLOWED => {
                // Whatever the abandoned frames had not consumed (at most the input) leaks
                // with them.
                self.overflowed();
                Resumed::Refused(Refusal::Overflowed { stack_size: self.stack_size })
            }
            _ => unreachable!("a coroutine that switches back has yielded, returned, panicked or overflowed"),
        }
    }

    /// Switches into the coroutine, which must be fresh or suspended, with `transfer` (its
    /// address tagged with `tag`: 0 or [`UNWIND`]); records and returns what the switch
    /// back reported. With `DISCOVER`, the coroutine is this thread's current discoverable
    /// one meanwhile (if it is one).
    #[inline(always)]
    fn switch_in<const DISCOVER: bool>(&mut self, transfer: &mut Transfer<I, Y, R>, tag: usize) -> usize {
        let prev = DISCOVER.then(|| CURRENT.replace(self.discover.as_ref().map_or(ptr::null(), |d| d as *const _)));
        let sp = std::mem::replace(&mut self.sp, SP_RUNNING);
        // `sp` is this coroutine's saved stack pointer (its initial frame, or what the last
        // switch back returned) and `base` its stack base; the stack is owned by self.
        // SAFETY: as above; the transfer outlives the switch, and the coroutine writes to
        // it only until it switches back.
        let ret = unsafe { arch::resume(transfer as *mut Transfer<I, Y, R> as usize | tag, sp, self.base) };
        self.sp = ret;
        if let Some(prev) = prev {
            CURRENT.set(prev);
        }
        ret
    }

    fn finish(&mut self) {
        self.sp = arch::SWITCH_FINISHED;
        if let Some(stack) = self.stack.take() {
            stack::recycle_stack(stack);
        }
    }

    fn overflowed(&mut self) {
        self.sp = arch::SWITCH_OVERFLOWED;
        // The abandoned frames are leaked, not dropped. The stack is safe to release (no
        // code runs on it any more), but its pages were all touched: drop it rather than
        // recycle it, which gives them back.
        drop(self.stack.take());
    }
}

impl<I, Y, R> Drop for RawCoroutine<I, Y, R> {
    fn drop(&mut self) {
        match self.state() {
            State::Fresh => {
                // SAFETY: a fresh coroutine still holds its closure at base, written by
                // new_inner with this very drop function, and never read since.
                unsafe { (self.drop_fresh)(self.base) };
                self.finish();
            }
            State::Suspended => {
                // Unwind the coroutine's stack: its pending `suspend` sees the tag and
                // starts an unwinding that the entry function catches.
                let mut transfer = Transfer::<I, Y, R>::new();
                match self.switch_in::<true>(&mut transfer, UNWIND) {
                    arch::SWITCH_FINISHED => {
                        self.finish();
                        // SAFETY: a coroutine that finished wrote its result.
                        if let Err(payload) = unsafe { transfer.done.assume_init_read() } {
                            // A destructor panicked while unwinding: report it like any
                            // panic from a drop, unless this thread already panics.
                            if !is_forced_unwind(payload.as_ref()) && !std::thread::panicking() {
                                panic::resume_unwind(payload);
                            }
                        }
                    }
                    arch::SWITCH_OVERFLOWED => self.overflowed(),
                    _ => {
                        // It suspended during its forced unwinding: nobody can ever resume
                        // it, and its frames cannot be left half-unwound.
                        eprintln!("bobbin: a coroutine tried to suspend while being dropped; aborting");
                        std::process::abort();
                    }
                }
            }
            State::Running => unreachable!("a running coroutine is borrowed by its resume"),
            State::Finished | State::Overflowed => {}
        }
    }
}

impl<I, Y, R> fmt::Debug for RawCoroutine<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawCoroutine")
            .field("state", &self.state())
            .field("stack_size", &self.stack_size)
            .field("base", &format_args!("{:#x}", self.base))
            .finish()
    }
}

/// What a fresh coroutine finds at its stack base: its closure, and how it was made.
struct Start<F> {
    f: F,
    /// The coroutine keeps floating-point control words of its own (its `Yielder` must use
    /// the matching switch).
    preserve_fp: bool,
    /// The coroutine was made by [`RawCoroutine::new_discoverable`]: its entry records its
    /// `Yielder` where [`suspend_current`] finds it.
    discoverable: bool,
}

/// Drops a start record of a closure of type `F` stored at `base`.
///
/// # Safety
/// `base` must hold a valid `Start<F>` that is not used afterwards.
unsafe fn drop_start<F>(base: usize) {
    // SAFETY: upheld by the caller.
    unsafe { ptr::drop_in_place(base as *mut Start<F>) }
}

/// What [`suspend_current`] needs of a discoverable coroutine.
#[derive(Debug)]
struct Discover {
    /// The type of its `Yielder`.
    type_id: TypeId,
    /// Address of its `Yielder`, set when it starts.
    yielder: Cell<usize>,
    /// Its stack's usable range.
    stack: std::ops::Range<usize>,
}

thread_local! {
    /// The discoverable coroutine this thread is running (through
    /// [`RawCoroutine::resume_discoverable`]), or null.
    static CURRENT: Cell<*const Discover> = const { Cell::new(ptr::null()) };
}

/// First Rust code on a coroutine stack, called by `bobbin_coroutine_start`.
///
/// # Safety
/// `transfer` points at a live `Transfer<I, Y, R>` holding the first input, and `base` at
/// a valid `Start<F>` placed by `RawCoroutine::new_inner`.
unsafe extern "C" fn entry<I, Y, R, F>(transfer: usize, base: usize)
where
    F: FnOnce(&Yielder<I, Y>, I) -> R,
{
    assert!(transfer & UNWIND == 0, "a coroutine is never started only to be dropped");
    // SAFETY: upheld by the caller: the closure is read out exactly once (the coroutine is
    // no longer Fresh, so it will not be dropped in place), and the transfer is live and,
    // being untagged, holds the first input.
    let (start, input) = unsafe {
        let start = ptr::read(base as *const Start<F>);
        let input = (*(transfer as *mut Head<I, Y>)).input.assume_init_read();
        (start, input)
    };
    let Start { f, preserve_fp, discoverable } = start;
    let yielder = Yielder { base, preserve_fp, transfer: Cell::new(transfer), _marker: PhantomData };
    if discoverable {
        // SAFETY: a non-null CURRENT points at the record of the discoverable coroutine
        // being resumed, which lives in the RawCoroutine borrowed by that resume.
        let current = unsafe { CURRENT.get().as_ref() };
        // It is this coroutine's record unless the coroutine was started through a plain
        // `resume`; then its Yielder stays unknown and `suspend_current` refuses.
        if let Some(current) = current.filter(|c| c.stack.contains(&(base - arch::LINK_OFFSET))) {
            current.yielder.set(&yielder as *const Yielder<I, Y> as usize);
        }
    }
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&yielder, input)));
    // SAFETY: the transfer of the latest resume (kept untagged by the Yielder) is live until
    // we switch back, and the resumer reads `done` only after this switch back.
    unsafe { (*(yielder.transfer.get() as *mut Transfer<I, Y, R>)).done.write(result) };
}

/// The handle a coroutine uses to suspend itself, handing a value out and receiving the
/// next input.
///
/// A `Yielder` lives on its coroutine's stack and is only ever lent to the coroutine's
/// closure (`&Yielder`), for no longer than the closure runs; it is neither `Send` nor
/// `Sync`, so it cannot leave the coroutine or its thread.
pub struct Yielder<I, Y> {
    base: usize,
    /// Whether the coroutine keeps floating-point control words of its own, which decides
    /// its side of the switch.
    preserve_fp: bool,
    /// Address of the transfer of the resume in progress (untagged; while the coroutine
    /// unwinds because it was dropped, the dropping resumer's).
    transfer: Cell<usize>,
    _marker: NotSendMarker<fn(Y) -> I>,
}

impl<I, Y> Yielder<I, Y> {
    /// Suspends the coroutine, handing `val` to the caller of `resume`, and returns the
    /// input of the next `resume`.
    ///
    /// If the coroutine is dropped while suspended here, this call does not return: the
    /// coroutine's stack unwinds from this point, running every destructor on it.
    ///
    /// # Panics
    /// Aborts the process if called while the coroutine is being unwound because it was
    /// dropped (a destructor, or code that caught the unwinding, tried to suspend): there
    /// is nobody left to resume it, and letting it continue would be unsound.
    #[inline(always)]
    pub fn suspend(&self, val: Y) -> I {
        let head = self.transfer.get() as *mut Head<I, Y>;
        // SAFETY: the transfer of the current resume is live while the coroutine runs, and
        // nobody else touches it until we switch back.
        unsafe { (*head).yielded.write(val) };
        // SAFETY: we run on the coroutine's stack (a Yielder is only reachable from its
        // own closure) and the link slot holds the resumer's stack pointer.
        let transfer = unsafe {
            if self.preserve_fp {
                arch::suspend::<true>(self.base)
            } else {
                arch::suspend::<false>(self.base)
            }
        };
        if transfer & UNWIND != 0 {
            self.start_unwinding(transfer);
        }
        self.transfer.set(transfer);
        // SAFETY: the resumer passed the address of its live transfer, untagged, so it
        // wrote the input (Head's contract).
        unsafe { (*(transfer as *mut Head<I, Y>)).input.assume_init_read() }
    }
}

impl<I, Y> Yielder<I, Y> {
    /// The coroutine is being dropped: unwind its stack from the pending `suspend`.
    ///
    /// A suspend during that unwinding (a destructor, or code that caught it, tried to
    /// suspend) hands its value to the dropping resumer's transfer and switches back to it,
    /// which aborts the process (see `RawCoroutine`'s `Drop`).
    #[cold]
    #[inline(never)]
    fn start_unwinding(&self, transfer: usize) -> ! {
        self.transfer.set(transfer & !UNWIND);
        panic::resume_unwind(Box::new(ForcedUnwind));
    }
}

impl<I, Y> fmt::Debug for Yielder<I, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").field("base", &format_args!("{:#x}", self.base)).finish_non_exhaustive()
    }
}

/// Suspends the innermost running coroutine of this thread with `val`, if it was created
/// with [`RawCoroutine::new_discoverable`] with this very `Yielder` type, and returns the
/// next input. Otherwise (not in a coroutine, or the innermost one is of another kind)
/// hands `val` back.
pub(crate) fn suspend_current<I: 'static, Y: 'static>(val: Y) -> Result<I, Y> {
    let current = CURRENT.get();
    if current.is_null() {
        return Err(val);
    }
    // SAFETY: a non-null CURRENT points at the record of the discoverable coroutine this
    // thread is running, live until its resume returns (which is after we return).
    let current = unsafe { &*current };
    // The innermost coroutine may be another one that this one is running: then we are not
    // on the discoverable coroutine's own stack.
    let here = &current as *const _ as usize;
    if current.type_id != TypeId::of::<Yielder<I, Y>>() || current.yielder.get() == 0 || !current.stack.contains(&here)
    {
        return Err(val);
    }
    // SAFETY: the type id proves the Yielder stored at this address is a Yielder<I, Y>; it
    // lives in the coroutine's entry frame, below us on this very stack, for as long as the
    // coroutine runs.
    let yielder = unsafe { &*(current.yielder.get() as *const Yielder<I, Y>) };
    Ok(yielder.suspend(val))
}

/// Whether a panic payload is the unwinding that dropping a suspended coroutine starts.
pub(crate) fn is_forced_unwind(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<ForcedUnwind>()
}

/// Proof that the user allowed suspended green threads to change OS thread.
///
/// Made only by `runtime::Builder::allow_migration`, an `unsafe fn` whose caller promises
/// that no green thread of that runtime keeps the address of a thread-local (or any other
/// thread-affine state) across a point where it can be suspended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MigrationPermit(());

impl MigrationPermit {
    /// Records the promise described on the type. Call only from an `unsafe fn` whose
    /// `# Safety` section puts that promise on its caller.
    pub(crate) fn granted() -> MigrationPermit {
        MigrationPermit(())
    }
}

/// A value that may cross to another thread although its type is not `Send`: a suspended
/// green thread (its coroutine and what is on its stack) under a [`MigrationPermit`].
pub(crate) struct Movable<T>(T);

// SAFETY: what makes a suspended coroutine !Send is that its stack may hold values tied to
// the thread it ran on (thread-local addresses, !Send values created from them). A Movable
// is only made with a MigrationPermit, whose grantor promised that the green threads it
// covers hold no such state across a suspension point, and the closures those green threads
// were started from are `Send` (runtime jobs require it). Everything else a coroutine owns
// (its stack mapping, heap-pinned context, run information) is plain memory that any
// thread may use once the coroutine is suspended.
unsafe impl<T> Send for Movable<T> {}

impl<T> Movable<T> {
    pub(crate) fn new(value: T, _permit: MigrationPermit) -> Movable<T> {
        Movable(value)
    }

    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}
