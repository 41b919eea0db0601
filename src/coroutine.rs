//! Safe stackful coroutines with two-way values.
//!
//! A [`Coroutine<I, Y, R>`] runs a closure on its own guard-paged stack. Each
//! [`resume`](Coroutine::resume) passes an `I` in and runs the closure until it calls
//! [`Yielder::suspend`] (handing a `Y` out) or returns (handing an `R` out). The closure can
//! suspend from any depth of ordinary calls.
//!
//! ```
//! use bobbin::{Coroutine, CoroutineResult};
//!
//! let mut running_total = Coroutine::new(|yielder, mut x: i32| {
//!     let mut total = 0;
//!     while x != 0 {
//!         total += x;
//!         x = yielder.suspend(total);
//!     }
//!     format!("done at {total}")
//! });
//! assert_eq!(running_total.resume(5), CoroutineResult::Yield(5));
//! assert_eq!(running_total.resume(10), CoroutineResult::Yield(15));
//! assert_eq!(running_total.resume(0), CoroutineResult::Return("done at 15".to_string()));
//! assert!(running_total.done());
//! ```

use std::fmt;
use std::panic;

pub(crate) use crate::engine::Suspender;
pub use crate::engine::Yielder;
use crate::engine::{RawCoroutine, Refusal, Resumed};
use crate::stack::{self, DEFAULT_STACK_SIZE};
use crate::Error;

/// What a [`Coroutine::resume`] produced: a suspended value or the final return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoroutineResult<Y, R> {
    /// The coroutine suspended, handing out this value.
    Yield(Y),
    /// The coroutine returned this value and is finished.
    Return(R),
}

impl<Y, R> CoroutineResult<Y, R> {
    /// The yielded value, if the coroutine suspended.
    pub fn as_yield(self) -> Option<Y> {
        match self {
            CoroutineResult::Yield(y) => Some(y),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The returned value, if the coroutine finished.
    pub fn as_return(self) -> Option<R> {
        match self {
            CoroutineResult::Yield(_) => None,
            CoroutineResult::Return(r) => Some(r),
        }
    }
}

/// A closure running on its own stack that can suspend and be resumed.
///
/// - A panic inside the coroutine unwinds the coroutine's stack, is caught at its entry,
///   and comes out of [`resume`](Coroutine::resume) with its original payload (or as
///   [`Error::Panicked`] from [`try_resume`](Coroutine::try_resume)). The coroutine is then
///   done.
/// - Dropping a coroutine that is suspended unwinds its stack first: the pending
///   [`Yielder::suspend`] returns by unwinding, so every value alive on the stack is
///   dropped exactly once.
/// - Running past the end of the stack hits a guard page; the coroutine is then finished,
///   [`try_resume`](Coroutine::try_resume) returns [`Error::StackOverflow`] and
///   [`resume`](Coroutine::resume) panics saying so. Values alive on the overflowed stack
///   are leaked, not dropped.
///
/// A `Coroutine` is not `Send`: code running on its stack may have stored the address of
/// one of this thread's thread-locals, and resuming it on another thread would make it
/// touch the wrong thread's data.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(bobbin::Coroutine::<(), (), ()>::new(|_, ()| ()));
/// ```
pub struct Coroutine<Input, Yield, Return> {
    raw: RawCoroutine<Input, Yield, Return>,
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// A coroutine running `f` on a stack of [`DEFAULT_STACK_SIZE`] from this thread's
    /// pool. `f` receives the [`Yielder`] and the input of the first `resume`.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::spawn`] for the fallible form).
    pub fn new<F>(f: F) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        match Builder::new().spawn(f) {
            Ok(c) => c,
            Err(e) => panic!("bobbin: could not create a coroutine: {e}"),
        }
    }

    /// Runs the coroutine until it suspends or returns.
    ///
    /// # Panics
    /// With the coroutine's own payload if it panicked; with a message if it is already
    /// finished, is running (resumed from inside itself), or overflowed its stack now.
    #[inline(always)]
    pub fn resume(&mut self, input: I) -> CoroutineResult<Y, R> {
        match self.resume_unless_finished(input) {
            Some(result) => result,
            None => refused(Refusal::Finished),
        }
    }

    /// Like [`resume`](Coroutine::resume), except that a coroutine that was already done
    /// gives `None` (a generator's `next` after its end). One check of the coroutine's
    /// state serves both.
    #[inline(always)]
    pub(crate) fn resume_unless_finished(&mut self, input: I) -> Option<CoroutineResult<Y, R>> {
        match self.raw.resume(input) {
            Resumed::Yield(y) => Some(CoroutineResult::Yield(y)),
            Resumed::Return(r) => Some(CoroutineResult::Return(r)),
            Resumed::Panicked(payload) => panic::resume_unwind(payload),
            Resumed::Refused(Refusal::Finished) => None,
            Resumed::Refused(why) => refused(why),
        }
    }

    /// Like [`resume`](Coroutine::resume), with every failure as an error.
    ///
    /// # Errors
    /// [`Error::Panicked`] with the payload if the coroutine panicked;
    /// [`Error::StackOverflow`] if it overflowed its stack; [`Error::Finished`] if it was
    /// already done; [`Error::ResumedFromInside`] if it is running.
    #[inline(always)]
    pub fn try_resume(&mut self, input: I) -> Result<CoroutineResult<Y, R>, Error> {
        as_result(self.raw.resume(input))
    }

    /// [`try_resume`](Coroutine::try_resume) for a coroutine made by
    /// [`Builder::spawn_discoverable`], which [`suspend_current`] can then find.
    pub(crate) fn try_resume_discoverable(&mut self, input: I) -> Result<CoroutineResult<Y, R>, Error> {
        as_result(self.raw.resume_discoverable(input))
    }

    /// Whether the coroutine has been resumed at least once.
    pub fn started(&self) -> bool {
        self.raw.started()
    }

    /// Whether the coroutine has returned, panicked or overflowed its stack.
    pub fn done(&self) -> bool {
        self.raw.done()
    }

    /// Usable size of the coroutine's stack, in bytes.
    pub fn stack_size(&self) -> usize {
        self.raw.stack_size()
    }
}

/// What `try_resume` reports for one resume.
#[inline(always)]
fn as_result<Y, R>(resumed: Resumed<Y, R>) -> Result<CoroutineResult<Y, R>, Error> {
    match resumed {
        Resumed::Yield(y) => Ok(CoroutineResult::Yield(y)),
        Resumed::Return(r) => Ok(CoroutineResult::Return(r)),
        Resumed::Panicked(payload) => Err(Error::Panicked(payload)),
        Resumed::Refused(why) => Err(why.into_error()),
    }
}

#[cold]
#[inline(never)]
fn refused(why: Refusal) -> ! {
    match why.into_error() {
        e @ Error::StackOverflow { .. } => panic!("bobbin: {e}"),
        Error::Finished => panic!(
            "bobbin: cannot resume: the coroutine (or generator) is done: it has already finished \
             (returned, panicked or overflowed its stack); check done() before resuming"
        ),
        e => panic!("bobbin: cannot resume: {e}"),
    }
}

impl<I, Y, R> fmt::Debug for Coroutine<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("started", &self.started())
            .field("done", &self.done())
            .field("stack_size", &self.stack_size())
            .finish()
    }
}

/// Configures and creates a [`Coroutine`].
///
/// ```
/// use bobbin::coroutine::Builder;
/// use bobbin::CoroutineResult;
///
/// let mut c = Builder::new().stack_size(256 * 1024).spawn(|_, x: u64| x * 2).unwrap();
/// assert_eq!(c.stack_size(), 256 * 1024);
/// assert_eq!(c.resume(21), CoroutineResult::<(), u64>::Return(42));
/// assert!(Builder::new().stack_size(0).spawn(|_, ()| ()).map(|_: bobbin::Coroutine<(), (), ()>| ()).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    stack_size: usize,
    preserve_fp: bool,
}

impl Builder {
    /// A builder with the default stack size.
    pub fn new() -> Builder {
        Builder { stack_size: DEFAULT_STACK_SIZE, preserve_fp: false }
    }

    /// Usable stack size in bytes, rounded up to whole pages.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Whether the coroutine keeps floating-point control words of its own (default: no).
    ///
    /// The control words are the SSE `MXCSR` control bits (rounding mode, exception masks,
    /// flush-to-zero, denormals-are-zero) and the x87 control word. By default a coroutine
    /// shares them with its resumer, as a called function does: what one side sets, the
    /// other sees after the next switch. Rust code needs nothing more, because Rust
    /// requires them to keep their default values at all times (changing them is
    /// undefined behaviour, see [`core::arch::x86_64::_mm_setcsr`]), and reading them on
    /// every switch costs more than the rest of the switch on current x86-64 cores.
    ///
    /// With `true`, each side keeps its own: a mode set inside the coroutine stays inside
    /// it (also when it overflows its stack), and the resumer's stays with the resumer.
    /// This is for coroutines that run foreign code which sets its own mode and can
    /// suspend while it is in force. The sticky status flags (`MXCSR` bits 0-5) are shared
    /// either way.
    ///
    /// ```
    /// use bobbin::coroutine::Builder;
    /// use bobbin::{Coroutine, CoroutineResult};
    ///
    /// let mut c: Coroutine<(), (), ()> = Builder::new().preserve_fp_control(true).spawn(|y, ()| y.suspend(())).unwrap();
    /// assert_eq!(c.resume(()), CoroutineResult::Yield(()));
    /// ```
    pub fn preserve_fp_control(mut self, preserve: bool) -> Builder {
        self.preserve_fp = preserve;
        self
    }

    /// Creates the coroutine with a stack from this thread's pool.
    ///
    /// # Errors
    /// [`Error::InvalidStackSize`] for a zero or absurd size; [`Error::StackAllocation`]
    /// if the kernel refuses memory.
    pub fn spawn<I, Y, R, F>(self, f: F) -> Result<Coroutine<I, Y, R>, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        let stack = stack::pooled_stack(self.stack_size)?;
        Ok(Coroutine { raw: RawCoroutine::new(stack, f, self.preserve_fp) })
    }

    /// Like [`Builder::spawn`], and code running on the coroutine can suspend it through
    /// [`suspend_current`] (used for green threads, which yield from any depth).
    pub(crate) fn spawn_discoverable<I, Y, R, F>(self, f: F) -> Result<Coroutine<I, Y, R>, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
        I: 'static,
        Y: 'static,
    {
        let stack = stack::pooled_stack(self.stack_size)?;
        Ok(Coroutine { raw: RawCoroutine::new_discoverable(stack, f, self.preserve_fp) })
    }
}

/// Suspends the innermost running coroutine of this thread if it was made by
/// [`Builder::spawn_discoverable`] with these types; otherwise hands `val` back.
pub(crate) fn suspend_current<I: 'static, Y: 'static>(val: Y) -> Result<I, Y> {
    crate::engine::suspend_current(val)
}

/// A suspender for the innermost running coroutine, if [`suspend_current`] with these
/// types would suspend it now: the check once, the suspension later.
pub(crate) fn current_suspender<I: 'static, Y: 'static>() -> Option<Suspender<I, Y>> {
    crate::engine::current_suspender::<I, Y>()
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}
