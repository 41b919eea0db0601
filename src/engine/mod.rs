//! The machinery under the safe coroutine layer: the initial frame of a coroutine stack,
//! typed transfer of values across the switch, forced unwinding on drop and recovery from
//! stack overflow. `crate::coroutine` builds the public API on [`RawCoroutine`] and
//! [`Yielder`] without any unsafe code of its own.
//!
//! Values cross the switch in the one register each switch carries besides the stack
//! pointer: the resumer passes the address of the input (kept in its frame), the coroutine
//! the address of what it returns and of what it yields (kept in its own frame, which stays
//! in place while it is suspended, and after it finished until the resumer gave its stack
//! back), except a yielded value of a type that fits the register and has no byte that may
//! be uninitialised (`yielder::in_register`: the primitive scalars and zero-sized types),
//! which is the word itself. The receiving side moves the value out; the sending side never
//! touches it again. No side records the other's addresses, so nothing is written per
//! switch beyond the values themselves.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

mod discover;
mod migration;
mod relay;
mod scoped;
mod start;
mod yielder;

pub(crate) use discover::{current_suspender, suspend_current, Suspender};
use discover::{Discover, CURRENT};
pub(crate) use migration::{MigrationPermit, Movable};
use relay::RELAYED;
pub(crate) use relay::{nested_relay, Relay};
pub(crate) use scoped::{erase_local_body, erase_send_body, on_thread_stack, StackLoan};
pub(crate) use yielder::is_forced_unwind;
pub use yielder::Yielder;
use yielder::{set_dropped_while_panicking, switch_out, take_yielded};

use crate::arch;
use crate::stack::{self, Stack};
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

/// How a resume that did not end in a yield ended.
enum Ended<R> {
    Return(R),
    Panicked(Box<dyn Any + Send + 'static>),
    Overflowed,
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

/// The input address the resumer passes to ask a suspended coroutine to unwind instead of
/// continuing (it is being dropped). A real input's address is never null.
const UNWIND: usize = 0;

/// The payload of the unwinding that dropping a suspended coroutine starts in it.
struct ForcedUnwind;

/// Marker making a type `!Send` and `!Sync` while naming its value types.
type NotSendMarker<T> = PhantomData<(*mut u8, T)>;

/// `RawCoroutine::sp` while the coroutine runs. Its resume holds it mutably borrowed, so
/// only code that broke aliasing rules could see this; it is refused rather than entered.
const SP_RUNNING: usize = 2;
const _: () = assert!(SP_RUNNING > arch::SWITCH_FINISHED && SP_RUNNING > arch::SWITCH_OVERFLOWED);

/// Whether `sp`, a saved stack pointer word or what a switch back reported, is the stack
/// pointer of a coroutine that can be switched into: not one of the states below
/// [`SP_RUNNING`], nor a relaying coroutine's tagged one ([`arch::SWITCH_RELAYED`], which
/// makes the word negative). For a switch back, that is a yield. One signed comparison; the
/// resume that follows a yield starts with the same one, so a loop of resumes makes it once
/// per round.
#[inline(always)]
fn switchable(sp: usize) -> bool {
    sp as isize > SP_RUNNING as isize
}

/// The word a resume hands the coroutine for `input`: its address, or for a zero-sized
/// input a dangling one (its alignment), which the coroutine may read as well. A constant
/// spares a loop of resumes the register that would hold the input's address across the
/// switch. Never [`UNWIND`] (null) nor [`relay::RELAYED`] (no alignment is `usize::MAX`).
#[inline(always)]
fn input_address<I>(input: &mut MaybeUninit<I>) -> usize {
    if std::mem::size_of::<I>() == 0 {
        std::mem::align_of::<I>()
    } else {
        input.as_mut_ptr() as usize
    }
}

/// The stack pointer of a coroutine whose switch back reported `ret`, if it relayed.
#[inline(always)]
fn relaying(ret: usize) -> Option<usize> {
    (ret & arch::SWITCH_RELAYED != 0).then_some(ret & !arch::SWITCH_RELAYED)
}

/// Where the initial frame of a coroutine whose stack base is `base` leaves its stack
/// pointer.
fn initial_sp(base: usize) -> usize {
    base - arch::INITIAL_SP_OFFSET
}

/// A coroutine: a closure on its own stack, switched to with [`RawCoroutine::resume`].
///
/// The closure may borrow for `'a`, which the coroutine then cannot outlive. Forgetting it
/// ends the borrow without running the closure's frames to their end; that is sound
/// because the coroutine owns its stack: a forgotten coroutine leaks it, so no frame of
/// the closure is ever run again and its memory is never unmapped nor handed to another
/// coroutine (the pool gets a stack back only from `finish`, and a slab is unmapped only
/// when its last `Stack` is dropped). ARCHITECTURE.md has the whole argument.
pub(crate) struct RawCoroutine<'a, I, Y, R> {
    /// Taken when the coroutine ends ([`RawCoroutine::finish`], `overflowed`), which every
    /// way of dropping a live one goes through; one whose drop panics before that (a
    /// closure's destructor panicking) leaks it, which is sound. Not dropped as a field,
    /// which would cost a call per coroutine to find it empty.
    stack: ManuallyDrop<Option<Stack>>,
    /// Saved stack pointer of the coroutine while it is suspended (its initial one while
    /// it is fresh); otherwise [`arch::SWITCH_FINISHED`], [`arch::SWITCH_OVERFLOWED`] or
    /// [`SP_RUNNING`]. The one word of state the hot path reads and writes.
    sp: usize,
    stack_size: usize,
    /// Stack base: the closure lies above it until the coroutine starts, the link slot and
    /// initial frame below.
    base: usize,
    /// For a coroutine that code on its stack may suspend without its `Yielder` (a green
    /// thread): what [`suspend_current`] needs, at the top of its stack; otherwise null.
    discover: *const Discover,
    /// Drops the closure stored at the base of a coroutine that never started.
    drop_fresh: unsafe fn(usize),
    /// Raw pointers make the coroutine !Send and !Sync: its stack may hold addresses of
    /// this thread's thread-locals.
    _marker: NotSendMarker<fn(I) -> (Y, R)>,
    /// The closure's borrows last `'a`.
    _borrow: PhantomData<&'a ()>,
}

impl<'a, I, Y, R> RawCoroutine<'a, I, Y, R> {
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
        self.resume_as::<false, true>(input)
    }

    /// [`RawCoroutine::resume`] for a loop of resumes (a generator's `next`): the end is
    /// handled out of line. Inline, the code that takes the result and gives the stack back
    /// makes the compiler keep fewer of the loop's values in registers across the switch
    /// (one generator's items 2.2 against 2.5 ns); out of line, creating, running and
    /// dropping a coroutine costs about 20 instructions more. A generator ends once per
    /// many items; a coroutine made per call ends as often as it starts.
    #[inline(always)]
    pub(crate) fn resume_in_loop(&mut self, input: I) -> Resumed<Y, R> {
        self.resume_as::<false, false>(input)
    }

    /// [`RawCoroutine::resume`] for a coroutine made by
    /// [`RawCoroutine::new_discoverable`]: code on its stack can find it while it runs.
    pub(crate) fn resume_discoverable(&mut self, input: I) -> Resumed<Y, R> {
        self.resume_as::<true, true>(input)
    }

    /// A resume, recording the coroutine as this thread's current discoverable one if
    /// `DISCOVER`.
    #[inline(always)]
    fn resume_as<const DISCOVER: bool, const END_INLINE: bool>(&mut self, input: I) -> Resumed<Y, R> {
        // A saved stack pointer is never tagged (a relay's is stored without its tag).
        if !switchable(self.sp) {
            return self.refuse();
        }
        // The coroutine moves the input out (or, if it overflows first, leaks it).
        let mut input = MaybeUninit::new(input);
        let (mut ret, mut out) = self.switch_in::<DISCOVER>(input_address(&mut input));
        // A switch never reports SP_RUNNING, so this test is also the one the next resume
        // starts with: a loop of resumes tests the state once per round, and a yield pays
        // nothing for relaying.
        if switchable(ret) {
            // SAFETY: a coroutine that yields hands over the value's word and never touches
            // the value again.
            return Resumed::Yield(unsafe { take_yielded(out) });
        }
        if let Some(sp) = relaying(ret) {
            (ret, out) = self.relayed::<DISCOVER>(sp);
            if switchable(ret) {
                // SAFETY: as above.
                return Resumed::Yield(unsafe { take_yielded(out) });
            }
        }
        if END_INLINE {
            self.ended_resumed(ret, out)
        } else {
            match self.ended(ret, out) {
                Ended::Return(r) => Resumed::Return(r),
                Ended::Panicked(payload) => Resumed::Panicked(payload),
                Ended::Overflowed => Resumed::Refused(Refusal::Overflowed { stack_size: self.stack_size }),
            }
        }
    }

    /// The coroutine finished or overflowed during this resume: its result is taken inline,
    /// the overflow out of line. The overflow path returns only a [`Refusal`], so that a loop
    /// of resumes has no way back in through it.
    #[inline(always)]
    fn ended_resumed(&mut self, ret: usize, out: usize) -> Resumed<Y, R> {
        if ret == arch::SWITCH_FINISHED {
            // SAFETY: a coroutine that finished handed over the address of its result.
            return match unsafe { self.take_result(out) } {
                Ok(r) => Resumed::Return(r),
                Err(payload) => Resumed::Panicked(payload),
            };
        }
        Resumed::Refused(self.overflowed_resumed(ret))
    }

    #[cold]
    #[inline(never)]
    fn overflowed_resumed(&mut self, ret: usize) -> Refusal {
        debug_assert_eq!(ret, arch::SWITCH_OVERFLOWED);
        // Whatever the abandoned frames had not consumed (at most the input) leaks with them.
        self.overflowed();
        Refusal::Overflowed { stack_size: self.stack_size }
    }

    #[cold]
    fn refuse(&self) -> Resumed<Y, R> {
        Resumed::Refused(match self.state() {
            State::Running => Refusal::Running,
            _ => Refusal::Finished,
        })
    }

    /// The coroutine finished or overflowed, out of line ([`RawCoroutine::resume_in_loop`],
    /// and a drop's unwinding). The result cannot be a [`Resumed::Yield`], so a loop of
    /// resumes has no way back in through this call.
    #[inline(never)]
    fn ended(&mut self, ret: usize, out: usize) -> Ended<R> {
        match ret {
            arch::SWITCH_FINISHED => {
                // SAFETY: a coroutine that finished handed over the address of its result.
                match unsafe { self.take_result(out) } {
                    Ok(r) => Ended::Return(r),
                    Err(payload) => Ended::Panicked(payload),
                }
            }
            arch::SWITCH_OVERFLOWED => {
                // Whatever the abandoned frames had not consumed (at most the input) leaks
                // with them.
                self.overflowed();
                Ended::Overflowed
            }
            _ => unreachable!("a coroutine that switches back has yielded, returned, panicked or overflowed"),
        }
    }

    /// Moves the result out of a coroutine that has just finished, then gives its stack
    /// back.
    ///
    /// # Safety
    /// `out` must be what the switch that reported [`arch::SWITCH_FINISHED`] handed over:
    /// the address of the entry function's result, in its abandoned frame.
    unsafe fn take_result(&mut self, out: usize) -> std::thread::Result<R> {
        // SAFETY: upheld by the caller; the stack, and so the frame, is still ours.
        let result = unsafe { ptr::read(out as *const std::thread::Result<R>) };
        // The switch that reported the end stored it as the state already.
        debug_assert_eq!(self.sp, arch::SWITCH_FINISHED);
        self.give_back_stack();
        result
    }

    /// Switches into the coroutine, which must be fresh or suspended, with `input` (the
    /// address of an input, or [`UNWIND`]); records the stack pointer the switch back
    /// reported and returns it with the word that came with it. With `DISCOVER`, the
    /// coroutine is this thread's current discoverable one meanwhile (if it is one).
    #[inline(always)]
    fn switch_in<const DISCOVER: bool>(&mut self, input: usize) -> (usize, usize) {
        let sp = std::mem::replace(&mut self.sp, SP_RUNNING);
        let target = self.target::<DISCOVER>();
        // SAFETY: `sp` is this coroutine's saved stack pointer (its initial frame, or what
        // the last switch back returned), and the target describes its stack, owned by self.
        let (ret, out) = unsafe { target.switch::<DISCOVER>(sp, input) };
        self.sp = ret;
        (ret, out)
    }

    /// What a switch into this coroutine needs, apart from its stack pointer: a copy, so
    /// that the relay's slow path (`relay_switches`) can switch without a reference to
    /// self, which would keep the compiler from holding the stack pointer in a register
    /// across a loop of resumes.
    #[inline(always)]
    fn target<const DISCOVER: bool>(&self) -> Target {
        Target {
            base: self.base,
            discover: if DISCOVER { self.discover } else { ptr::null() },
            #[cfg(bobbin_asan)]
            stack: self.stack.as_ref().map_or(ptr::null(), |s| s as *const Stack),
        }
    }

    /// The coroutine relayed (see `relay.rs`) when it last suspended, at `sp` (untagged):
    /// runs what it left for its resumer and resumes it, as often as it relays. Returns
    /// what the last switch reported, which is not a relay. A panic of the relayed action
    /// leaves the coroutine suspended in its relay, from which dropping it unwinds it.
    #[inline(always)]
    fn relayed<const DISCOVER: bool>(&mut self, sp: usize) -> (usize, usize) {
        match relay_switches::<DISCOVER>(self.target::<DISCOVER>(), sp) {
            Ok((ret, out)) => {
                self.sp = ret;
                (ret, out)
            }
            Err((sp, payload)) => {
                self.sp = sp;
                rethrow(payload)
            }
        }
    }

    fn finish(&mut self) {
        self.sp = arch::SWITCH_FINISHED;
        self.give_back_stack();
    }

    #[inline(always)]
    fn give_back_stack(&mut self) {
        if let Some(stack) = self.stack.take() {
            recycle(stack);
        }
    }

    #[cold]
    #[inline(never)]
    fn overflowed(&mut self) {
        self.sp = arch::SWITCH_OVERFLOWED;
        // The abandoned frames are leaked, not dropped. The stack is safe to release (no
        // code runs on it any more), but its pages were all touched: drop it rather than
        // recycle it, which gives them back.
        #[cfg(bobbin_asan)]
        if let Some(stack) = &*self.stack {
            crate::stack::asan::leak_abandoned_frames(stack);
        }
        if let Some(stack) = &*self.stack {
            scoped::abort_if_lent(stack.bottom() as usize..stack.top() as usize);
        }
        drop(self.stack.take());
    }
}

impl<I, Y, R> Drop for RawCoroutine<'_, I, Y, R> {
    /// A finished or overflowed coroutine has nothing left to drop (its stack went back
    /// when it ended): that test is inlined; the rest is not.
    #[inline]
    fn drop(&mut self) {
        if self.sp >= SP_RUNNING {
            self.drop_live();
        }
    }
}

impl<'a, I, Y, R> RawCoroutine<'a, I, Y, R> {
    /// Drops a coroutine that is fresh or suspended: its closure, or its whole stack by
    /// unwinding it. (A running one cannot be dropped: its resume borrows it.)
    #[inline(never)]
    fn drop_live(&mut self) {
        match self.state() {
            State::Fresh => {
                // SAFETY: a fresh coroutine still holds its closure at base, written by
                // new_inner with this very drop function, and never read since.
                unsafe { (self.drop_fresh)(self.base) };
                self.finish();
            }
            State::Suspended => {
                // Unwind the coroutine's stack: its pending `suspend` receives the null
                // input address and starts an unwinding that the entry function catches.
                // The thread may be unwinding already (the coroutine is dropped by a
                // frame that a panic unwinds): that does not make the coroutine's own
                // unwinding a panic inside a destructor, which `start_unwinding` must be
                // told.
                let was_panicking = std::thread::panicking();
                set_dropped_while_panicking(was_panicking);
                let (mut ret, mut out) = self.switch_in::<true>(UNWIND);
                let mut yielded_panic = None;
                loop {
                    if let Some(sp) = relaying(ret) {
                        // Code run by the unwinding (a destructor) parks a green thread
                        // that runs this coroutine: do it here and let the destructor go
                        // on. If that fails, the only way left is to unwind it from its
                        // relay, which `start_unwinding` refuses for a destructor.
                        self.sp = sp;
                        let word = match panic::catch_unwind(relay::run_pending) {
                            Ok(()) => RELAYED,
                            Err(payload) => {
                                yielded_panic = yielded_panic.or(Some(payload));
                                set_dropped_while_panicking(was_panicking);
                                UNWIND
                            }
                        };
                        (ret, out) = self.switch_in::<true>(word);
                        continue;
                    }
                    if !switchable(ret) {
                        break;
                    }
                    // It suspended during its forced unwinding: code that caught the
                    // unwinding suspended again. Nobody can ever resume it with an input, and
                    // its frames cannot be left half-unwound: its value is dropped and the
                    // unwinding resumed from that suspend (see `start_unwinding`).
                    // SAFETY: a coroutine that yields hands over the value's word and never
                    // touches the value again.
                    let dropped = panic::catch_unwind(AssertUnwindSafe(|| drop(unsafe { take_yielded::<Y>(out) })));
                    yielded_panic = yielded_panic.or(dropped.err());
                    set_dropped_while_panicking(was_panicking);
                    (ret, out) = self.switch_in::<true>(UNWIND);
                }
                let ended = self.ended(ret, out);
                let payload = match ended {
                    Ended::Panicked(payload) if !is_forced_unwind(payload.as_ref()) => Some(payload),
                    _ => yielded_panic,
                };
                if let Some(payload) = payload {
                    // A destructor panicked while unwinding: report it like any panic
                    // from a drop, unless this thread already panics.
                    if !std::thread::panicking() {
                        panic::resume_unwind(payload);
                    }
                }
            }
            State::Running => unreachable!("a running coroutine is borrowed by its resume"),
            State::Finished | State::Overflowed => unreachable!("an ended coroutine is not dropped here"),
        }
    }
}

impl<I, Y, R> fmt::Debug for RawCoroutine<'_, I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawCoroutine")
            .field("state", &self.state())
            .field("stack_size", &self.stack_size)
            .field("base", &format_args!("{:#x}", self.base))
            .finish()
    }
}

/// What a switch into a coroutine needs besides its stack pointer ([`RawCoroutine::target`]).
#[derive(Clone, Copy)]
struct Target {
    base: usize,
    /// The coroutine's record, to make it this thread's current discoverable one during
    /// the switch (null: leave the current one as it is).
    discover: *const Discover,
    #[cfg(bobbin_asan)]
    stack: *const Stack,
}

impl Target {
    /// Switches into the coroutine with `input`; returns the stack pointer and word it
    /// switched back with.
    ///
    /// # Safety
    /// `sp` must be the saved stack pointer of the coroutine this target describes, fresh
    /// or suspended, whose stack (and record) outlive the switch.
    #[inline(always)]
    unsafe fn switch<const DISCOVER: bool>(&self, sp: usize, input: usize) -> (usize, usize) {
        // A coroutine that is not discoverable leaves the current one in place: code on its
        // stack (a destructor run while it is dropped, say) still parks the green thread
        // that runs it, through a relay.
        let prev = (DISCOVER && !self.discover.is_null()).then(|| CURRENT.replace(self.discover));
        #[cfg(bobbin_asan)]
        // SAFETY: the caller guarantees the stack outlives the switch.
        let announced = unsafe { self.stack.as_ref() }.map(crate::stack::asan::Resume::start);
        // SAFETY: upheld by the caller; the input (if any) outlives the switch.
        let (ret, out) = unsafe { arch::resume(input, sp, self.base) };
        #[cfg(bobbin_asan)]
        if let Some(announced) = announced {
            announced.finish();
        }
        if let Some(prev) = prev {
            CURRENT.set(prev);
        }
        (ret, out)
    }
}

/// The slow path of a relay ([`RawCoroutine::relayed`]), apart from the coroutine: runs the
/// pending action and switches back in with `RELAYED`, as often as the coroutine relays.
/// `Err` carries the coroutine's stack pointer and the panic of an action.
#[cold]
#[inline(never)]
fn relay_switches<const DISCOVER: bool>(
    target: Target,
    mut sp: usize,
) -> Result<(usize, usize), (usize, Box<dyn Any + Send + 'static>)> {
    loop {
        if let Err(payload) = panic::catch_unwind(relay::run_pending) {
            return Err((sp, payload));
        }
        // SAFETY: `sp` is where the coroutine of `target` suspended when it relayed; its
        // stack is owned by the RawCoroutine whose resume called us, borrowed meanwhile.
        let (ret, out) = unsafe { target.switch::<DISCOVER>(sp, RELAYED) };
        match relaying(ret) {
            Some(relayed_sp) => sp = relayed_sp,
            None => return Ok((ret, out)),
        }
    }
}

/// Gives a finished coroutine's stack back. Inline: the common case is two stores to a
/// thread-local (create + run + drop 95 -> 87 instructions); the full-spares case is out of
/// line in `stack::pool`, so a loop of resumes that inlines the end stays short.
#[inline(always)]
fn recycle(stack: Stack) {
    stack::recycle_stack(stack)
}

#[cold]
#[inline(never)]
fn rethrow(payload: Box<dyn Any + Send + 'static>) -> ! {
    panic::resume_unwind(payload)
}
