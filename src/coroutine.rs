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

pub use crate::engine::Yielder;
use crate::engine::{RawCoroutine, Refusal, Resumed};
pub(crate) use crate::engine::{Relay, Suspender};
use crate::stack::DEFAULT_STACK_SIZE;
use crate::Error;

/// What a [`Coroutine::resume`] produced: a suspended value or the final return value.
///
/// # Examples
/// ```
/// use bobbin::{Coroutine, CoroutineResult};
///
/// let mut countdown = Coroutine::new(|y, mut n: u32| {
///     while n > 0 {
///         y.suspend(n);
///         n -= 1;
///     }
///     "liftoff"
/// });
/// let mut seen = Vec::new();
/// loop {
///     match countdown.resume(3) {
///         CoroutineResult::Yield(n) => seen.push(n),
///         CoroutineResult::Return(word) => {
///             assert_eq!(word, "liftoff");
///             break;
///         }
///     }
/// }
/// assert_eq!(seen, [3, 2, 1]); // only the first resume's input starts the count
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoroutineResult<Y, R> {
    /// The coroutine suspended, handing out this value.
    Yield(Y),
    /// The coroutine returned this value and is finished.
    Return(R),
}

impl<Y, R> CoroutineResult<Y, R> {
    /// The yielded value, if the coroutine suspended.
    ///
    /// # Examples
    /// ```
    /// use bobbin::CoroutineResult;
    ///
    /// assert_eq!(CoroutineResult::<u8, &str>::Yield(1).as_yield(), Some(1));
    /// assert_eq!(CoroutineResult::<u8, &str>::Return("end").as_yield(), None);
    /// ```
    pub fn as_yield(self) -> Option<Y> {
        match self {
            CoroutineResult::Yield(y) => Some(y),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The returned value, if the coroutine finished.
    ///
    /// # Examples
    /// ```
    /// let mut square = bobbin::Coroutine::<u64, (), u64>::new(|_, x| x * x);
    /// assert_eq!(square.resume(12).as_return(), Some(144));
    /// ```
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
/// # Examples
/// A tokenizer written as straight-line code that hands out one token per resume:
/// ```
/// use bobbin::{Coroutine, CoroutineResult};
///
/// let mut tokens = Coroutine::new(|y, text: &'static str| {
///     for word in text.split_whitespace() {
///         y.suspend(word);
///     }
///     text.split_whitespace().count()
/// });
/// assert_eq!(tokens.resume("stackful green threads"), CoroutineResult::Yield("stackful"));
/// assert_eq!(tokens.resume(""), CoroutineResult::Yield("green"));
/// assert_eq!(tokens.resume(""), CoroutineResult::Yield("threads"));
/// assert_eq!(tokens.resume(""), CoroutineResult::Return(3));
/// ```
///
/// It cannot be sent to another thread:
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(bobbin::Coroutine::<(), (), ()>::new(|_, ()| ()));
/// ```
pub struct Coroutine<Input, Yield, Return> {
    raw: RawCoroutine<'static, Input, Yield, Return>,
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// A coroutine running `f` on a stack of [`DEFAULT_STACK_SIZE`] from this thread's
    /// pool. `f` receives the [`Yielder`] and the input of the first `resume`.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::spawn`] for the fallible form).
    ///
    /// # Examples
    /// ```
    /// use bobbin::{Coroutine, CoroutineResult};
    ///
    /// let mut echo = Coroutine::new(|y, first: String| {
    ///     let second = y.suspend(first.len());
    ///     format!("{first} {second}")
    /// });
    /// assert!(!echo.started()); // nothing runs until the first resume
    /// assert_eq!(echo.resume("hello".into()), CoroutineResult::Yield(5));
    /// assert_eq!(echo.resume("world".into()), CoroutineResult::Return("hello world".into()));
    /// ```
    #[inline]
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
    ///
    /// # Examples
    /// ```
    /// use bobbin::{Coroutine, CoroutineResult};
    ///
    /// let mut acc = Coroutine::new(|y, mut x: i32| {
    ///     let mut sum = 0;
    ///     for _ in 0..2 {
    ///         sum += x;
    ///         x = y.suspend(sum);
    ///     }
    ///     sum + x
    /// });
    /// assert_eq!(acc.resume(1), CoroutineResult::Yield(1));
    /// assert_eq!(acc.resume(2), CoroutineResult::Yield(3));
    /// assert_eq!(acc.resume(3), CoroutineResult::Return(6));
    /// // Resuming a finished coroutine panics; `try_resume` reports it instead.
    /// assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| acc.resume(0))).is_err());
    /// ```
    #[inline(always)]
    pub fn resume(&mut self, input: I) -> CoroutineResult<Y, R> {
        match resume_unless_finished(self.raw.resume(input)) {
            Some(result) => result,
            None => refused(Refusal::Finished),
        }
    }

    /// Like [`resume`](Coroutine::resume), except that a coroutine that was already done
    /// gives `None` (a generator's `next` after its end). One check of the coroutine's
    /// state serves both. For a loop of resumes: its end is handled out of line.
    #[inline(always)]
    pub(crate) fn resume_unless_finished(&mut self, input: I) -> Option<CoroutineResult<Y, R>> {
        resume_unless_finished(self.raw.resume_in_loop(input))
    }

    /// Like [`resume`](Coroutine::resume), with every failure as an error.
    ///
    /// # Errors
    /// [`Error::Panicked`] with the payload if the coroutine panicked;
    /// [`Error::StackOverflow`] if it overflowed its stack; [`Error::Finished`] if it was
    /// already done; [`Error::ResumedFromInside`] if it is running.
    ///
    /// # Examples
    /// ```
    /// use bobbin::{Coroutine, CoroutineResult, Error};
    ///
    /// let mut fails = Coroutine::<(), (), ()>::new(|_, ()| panic!("bad input"));
    /// match fails.try_resume(()) {
    ///     Err(Error::Panicked(payload)) => assert_eq!(payload.downcast_ref::<&str>(), Some(&"bad input")),
    ///     other => panic!("expected the panic, got {other:?}"),
    /// }
    /// assert!(fails.done());
    /// assert!(matches!(fails.try_resume(()), Err(Error::Finished)));
    ///
    /// let mut fine = Coroutine::<(), (), u8>::new(|_, ()| 1);
    /// assert!(matches!(fine.try_resume(()), Ok(CoroutineResult::Return(1))));
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// let mut co = bobbin::Coroutine::new(|y, ()| y.suspend(()));
    /// assert!(!co.started());
    /// co.resume(());
    /// assert!(co.started() && !co.done());
    /// ```
    pub fn started(&self) -> bool {
        self.raw.started()
    }

    /// Whether the coroutine has returned, panicked or overflowed its stack.
    ///
    /// # Examples
    /// ```
    /// let mut co = bobbin::Coroutine::new(|y, ()| y.suspend(()));
    /// co.resume(()); // suspends
    /// assert!(!co.done());
    /// co.resume(()); // returns
    /// assert!(co.done());
    /// ```
    pub fn done(&self) -> bool {
        self.raw.done()
    }

    /// Usable size of the coroutine's stack, in bytes.
    ///
    /// # Examples
    /// ```
    /// use bobbin::coroutine::Builder;
    /// use bobbin::stack::DEFAULT_STACK_SIZE;
    ///
    /// assert_eq!(bobbin::Coroutine::<(), (), ()>::new(|_, ()| ()).stack_size(), DEFAULT_STACK_SIZE);
    /// let small = Builder::new().stack_size(20_000).spawn(|_, ()| ()).unwrap();
    /// let small: bobbin::Coroutine<(), (), ()> = small;
    /// assert_eq!(small.stack_size(), 20_000usize.next_multiple_of(bobbin::stack::page_size()));
    /// ```
    pub fn stack_size(&self) -> usize {
        self.raw.stack_size()
    }
}

/// What [`Coroutine::resume_unless_finished`] makes of a resume's outcome.
#[inline(always)]
fn resume_unless_finished<Y, R>(resumed: Resumed<Y, R>) -> Option<CoroutineResult<Y, R>> {
    match resumed {
        Resumed::Yield(y) => Some(CoroutineResult::Yield(y)),
        Resumed::Return(r) => Some(CoroutineResult::Return(r)),
        Resumed::Panicked(payload) => panic::resume_unwind(payload),
        Resumed::Refused(Refusal::Finished) => None,
        Resumed::Refused(why) => refused(why),
    }
}

/// A [`Coroutine`] whose closure may borrow: it lives no longer than the values it
/// borrows (`'a`), and its closure need not be `'static`.
///
/// Everything else is as for [`Coroutine`] (which is the `'static` case, kept as a type of
/// its own so that code naming `Coroutine<I, Y, R>` keeps working): panics come out of
/// `resume`, dropping it while suspended unwinds its stack, it is not `Send`.
///
/// # Forgetting it
/// [`std::mem::forget`] on a suspended `ScopedCoroutine` ends its borrows without running
/// its closure to the end or unwinding it. That is sound: the coroutine owns its stack,
/// and a forgotten coroutine leaks it. No code runs on that stack again (only the
/// coroutine's own `resume` and `drop` switch to it), its memory is not unmapped (its
/// slab stays mapped while any of its stacks is alive) and it is not given to another
/// coroutine (a stack goes back to the pool only when its coroutine ends). So the
/// references left in its frames are never used, and values pinned on it stay where they
/// are, as in a leaked `Box<dyn Future + 'a>`. (Where the stack is borrowed from the
/// caller instead, as in some other libraries, a forgotten coroutine's stack would be
/// reused under live frames; such coroutines must be confined to a scope that drops them.)
///
/// # Examples
/// A coroutine that borrows a slice and hands out running sums of a window:
/// ```
/// use bobbin::coroutine::ScopedCoroutine;
/// use bobbin::CoroutineResult;
///
/// let data = vec![1, 2, 3, 4, 5];
/// let mut windows = ScopedCoroutine::new(|y, width: usize| {
///     let mut width = width;
///     for start in 0..data.len() {
///         let end = (start + width).min(data.len());
///         width = y.suspend(data[start..end].iter().sum::<i32>());
///     }
///     data.len()
/// });
/// assert_eq!(windows.resume(2), CoroutineResult::Yield(3)); // 1 + 2
/// assert_eq!(windows.resume(3), CoroutineResult::Yield(9)); // 2 + 3 + 4
/// drop(windows); // the borrow of `data` ends here
/// assert_eq!(data.len(), 5);
/// ```
///
/// It cannot outlive what it borrows:
/// ```compile_fail
/// use bobbin::coroutine::ScopedCoroutine;
///
/// let mut co = {
///     let data = vec![1, 2, 3];
///     ScopedCoroutine::new(|y, ()| {
///         for v in &data {
///             y.suspend(*v);
///         }
///     })
/// };
/// co.resume(());
/// ```
pub struct ScopedCoroutine<'a, Input, Yield, Return> {
    raw: RawCoroutine<'a, Input, Yield, Return>,
}

impl<'a, I, Y, R> ScopedCoroutine<'a, I, Y, R> {
    /// A coroutine running `f`, which may borrow for `'a`, on a stack of
    /// [`DEFAULT_STACK_SIZE`] from this thread's pool.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::spawn_scoped`]).
    ///
    /// # Examples
    /// ```
    /// let name = String::from("bobbin");
    /// let mut greet: bobbin::coroutine::ScopedCoroutine<&str, (), String> =
    ///     bobbin::coroutine::ScopedCoroutine::new(|_, greeting| format!("{greeting}, {name}"));
    /// assert_eq!(greet.resume("hello").as_return().as_deref(), Some("hello, bobbin"));
    /// ```
    #[inline]
    pub fn new<F>(f: F) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'a,
    {
        match Builder::new().spawn_scoped(f) {
            Ok(c) => c,
            Err(e) => panic!("bobbin: could not create a coroutine: {e}"),
        }
    }

    /// Runs the coroutine until it suspends or returns, as [`Coroutine::resume`].
    ///
    /// # Panics
    /// As [`Coroutine::resume`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::CoroutineResult;
    ///
    /// let mut log = Vec::new();
    /// let mut co = bobbin::coroutine::ScopedCoroutine::new(|y, x: u8| {
    ///     log.push(x);
    ///     let x = y.suspend(());
    ///     log.push(x);
    /// });
    /// assert_eq!(co.resume(1), CoroutineResult::Yield(()));
    /// assert_eq!(co.resume(2), CoroutineResult::Return(()));
    /// drop(co);
    /// assert_eq!(log, [1, 2]);
    /// ```
    #[inline(always)]
    pub fn resume(&mut self, input: I) -> CoroutineResult<Y, R> {
        match resume_unless_finished(self.raw.resume(input)) {
            Some(result) => result,
            None => refused(Refusal::Finished),
        }
    }

    /// Like [`resume`](ScopedCoroutine::resume), with every failure as an error, as
    /// [`Coroutine::try_resume`].
    ///
    /// # Errors
    /// As [`Coroutine::try_resume`].
    ///
    /// # Examples
    /// ```
    /// let limit = 3;
    /// let mut co = bobbin::coroutine::ScopedCoroutine::<u32, (), u32>::new(|_, x| {
    ///     assert!(x <= limit, "too big");
    ///     x
    /// });
    /// assert!(matches!(co.try_resume(4), Err(bobbin::Error::Panicked(_))));
    /// ```
    #[inline(always)]
    pub fn try_resume(&mut self, input: I) -> Result<CoroutineResult<Y, R>, Error> {
        as_result(self.raw.resume(input))
    }

    /// Whether the coroutine has returned, panicked or overflowed its stack.
    ///
    /// # Examples
    /// ```
    /// let v = [1];
    /// let mut co = bobbin::coroutine::ScopedCoroutine::<(), (), i32>::new(|_, ()| v[0]);
    /// assert!(!co.done());
    /// co.resume(());
    /// assert!(co.done());
    /// ```
    pub fn done(&self) -> bool {
        self.raw.done()
    }

    /// As [`Coroutine::resume_unless_finished`].
    #[inline(always)]
    pub(crate) fn resume_unless_finished(&mut self, input: I) -> Option<CoroutineResult<Y, R>> {
        resume_unless_finished(self.raw.resume_in_loop(input))
    }
}

impl<I, Y, R> fmt::Debug for ScopedCoroutine<'_, I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedCoroutine")
            .field("started", &self.raw.started())
            .field("done", &self.done())
            .field("stack_size", &self.raw.stack_size())
            .finish()
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
/// # Examples
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
    /// A builder with the default stack size ([`DEFAULT_STACK_SIZE`]) and shared
    /// floating-point control words.
    ///
    /// # Examples
    /// ```
    /// let co: bobbin::Coroutine<(), (), ()> = bobbin::coroutine::Builder::new().spawn(|_, ()| ()).unwrap();
    /// assert_eq!(co.stack_size(), bobbin::stack::DEFAULT_STACK_SIZE);
    /// ```
    #[inline]
    pub fn new() -> Builder {
        Builder { stack_size: DEFAULT_STACK_SIZE, preserve_fp: false }
    }

    /// Usable stack size in bytes, rounded up to whole pages.
    ///
    /// # Examples
    /// ```
    /// use bobbin::coroutine::Builder;
    /// use bobbin::{Coroutine, Error};
    ///
    /// let co: Coroutine<(), (), ()> = Builder::new().stack_size(1 << 20).spawn(|_, ()| ()).unwrap();
    /// assert_eq!(co.stack_size(), 1 << 20);
    /// let zero = Builder::new().stack_size(0).spawn(|_, ()| ());
    /// assert!(matches!(zero.map(|_: Coroutine<(), (), ()>| ()), Err(Error::InvalidStackSize { size: 0, .. })));
    /// ```
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
    /// On aarch64 the same holds for FPCR, the control register; the status flags are in
    /// FPSR, shared either way.
    ///
    /// # Examples
    /// A coroutine that sets round-toward-zero for foreign code and suspends while it is
    /// in force; the resumer keeps rounding to nearest (x86-64's MXCSR):
    /// ```ignore-aarch64
    /// use bobbin::coroutine::Builder;
    /// use bobbin::{Coroutine, CoroutineResult};
    /// use std::arch::asm;
    ///
    /// fn mxcsr() -> u32 {
    ///     let mut v = 0u32;
    ///     // SAFETY: stmxcsr only stores MXCSR into `v`.
    ///     unsafe { asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
    ///     v
    /// }
    /// const ROUNDING: u32 = 0b11 << 13;
    /// let mut c: Coroutine<(), u32, ()> = Builder::new()
    ///     .preserve_fp_control(true)
    ///     .spawn(|y, ()| {
    ///         let toward_zero = mxcsr() | ROUNDING;
    ///         // SAFETY: (for the example) no Rust floating-point code runs while the mode
    ///         // is changed; it is restored before the coroutine returns.
    ///         unsafe { asm!("ldmxcsr [{}]", in(reg) &toward_zero, options(nostack)) };
    ///         y.suspend(mxcsr() & ROUNDING);
    ///         let nearest = mxcsr() & !ROUNDING;
    ///         // SAFETY: as above.
    ///         unsafe { asm!("ldmxcsr [{}]", in(reg) &nearest, options(nostack)) };
    ///     })
    ///     .unwrap();
    /// assert_eq!(c.resume(()), CoroutineResult::Yield(ROUNDING)); // inside: toward zero
    /// assert_eq!(mxcsr() & ROUNDING, 0); // the resumer's mode is its own
    /// assert_eq!(c.resume(()), CoroutineResult::Return(()));
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
    ///
    /// # Examples
    /// ```
    /// use bobbin::coroutine::Builder;
    /// use bobbin::{Coroutine, CoroutineResult, Error};
    ///
    /// let mut co: Coroutine<u32, (), u32> = Builder::new().spawn(|_, x| x + 1).unwrap();
    /// assert_eq!(co.resume(41), CoroutineResult::Return(42));
    /// let too_big = Builder::new().stack_size(usize::MAX).spawn(|_, x: u32| x);
    /// assert!(matches!(too_big.map(|_: Coroutine<u32, (), u32>| ()), Err(Error::InvalidStackSize { .. })));
    /// ```
    #[inline]
    pub fn spawn<I, Y, R, F>(self, f: F) -> Result<Coroutine<I, Y, R>, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Ok(Coroutine { raw: RawCoroutine::new(self.stack_size, f, self.preserve_fp)? })
    }

    /// Like [`Builder::spawn`], for a closure that borrows for `'a`.
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::coroutine::Builder;
    ///
    /// let words = ["a", "bc"];
    /// let mut lens = Builder::new().stack_size(64 * 1024).spawn_scoped(|y, ()| {
    ///     for w in &words {
    ///         y.suspend(w.len());
    ///     }
    /// }).unwrap();
    /// assert_eq!(lens.resume(()).as_yield(), Some(1));
    /// assert_eq!(lens.resume(()).as_yield(), Some(2));
    /// ```
    pub fn spawn_scoped<'a, I, Y, R, F>(self, f: F) -> Result<ScopedCoroutine<'a, I, Y, R>, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'a,
    {
        Ok(ScopedCoroutine { raw: RawCoroutine::new(self.stack_size, f, self.preserve_fp)? })
    }

    /// Like [`Builder::spawn`], and code running on the coroutine can suspend it through
    /// [`suspend_current`] (used for green threads, which yield from any depth).
    pub(crate) fn spawn_discoverable<I, Y, R, F>(self, f: F) -> Result<Coroutine<I, Y, R>, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
        I: 'static,
        Y: 'static,
    {
        Ok(Coroutine { raw: RawCoroutine::new_discoverable(self.stack_size, f, self.preserve_fp)? })
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

/// A relay from the innermost running coroutine to the discoverable coroutine (with these
/// types) that runs it, if the caller runs on a coroutine nested in one: see
/// `engine/relay.rs`.
pub(crate) fn nested_relay<I: 'static, Y: 'static>() -> Option<Relay> {
    crate::engine::nested_relay::<I, Y>()
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}
