//! The low-level layer: saved machine contexts, and switching between them.
//!
//! A [`Context`] holds what the ABI says must survive a call (on x86-64: rbx, rsp, rbp,
//! r12-r15 and the floating-point control words; on aarch64: x19-x30, sp, d8-d15 and FPCR)
//! plus what a fresh context needs for its first entry (argument registers). The
//! register layout of each architecture is in `x86_64/` and `aarch64/` beside this file. [`Context::init`] prepares a context to run an
//! `extern "C"` function on a caller-supplied stack; [`Context::swap`] switches to it;
//! when the function returns, the backstop stores its return registers in the context and
//! switches to the parent, the context that last swapped in. Everything here that
//! switches is `unsafe`: the safe layers above are [`crate::Coroutine`] and the
//! schedulers.
//!
//! # Floating-point state
//! The MXCSR and x87 control bits (rounding mode, exception masks, flush-to-zero) are
//! per-context: a context that changes its rounding mode does not leak it to the context
//! it switches to. The MXCSR status flags (the sticky "inexact", "overflow", ... bits) are
//! shared by all contexts of a thread: restoring them would make every switch pay a
//! serialising `ldmxcsr` once two contexts' flags differ. On aarch64 the same holds for
//! FPCR (per context, written only when it differs) and FPSR (the flags, shared).
//!
//! # AddressSanitizer
//! Built with `-Zsanitizer=address`, [`Context::swap`] and [`Context::set`] announce every
//! switch to ASan, as do a fresh context's first entry and the backstop, so that ASan checks
//! each stack as the stack it is. A context learns the bounds of its stack from
//! [`Context::init`]; one saved by `swap` on some other stack (the thread's own) learns them
//! when a context it started arrives for the first time. A switch to a context whose stack
//! was never learnt is announced as one to a stack of unknown bounds, on which ASan finds
//! fewer errors.
//!
//! This file is longer than the project's 600 lines because most of it is the
//! documentation of one type: `Context` and its methods, each with a running example.
//! `ContextHandle` (handle.rs), the first frame (init.rs), argument placement (val.rs) and
//! the AddressSanitizer hooks (asan_hooks.rs) are beside it.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(bobbin_asan)]
mod asan_hooks;
mod handle;
mod val;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
use aarch64::{fp_from_bits, fp_to_bits, FpReg, Regs};
#[cfg(target_arch = "x86_64")]
use x86_64::{fp_from_bits, fp_to_bits, FpReg, Regs};

pub use handle::ContextHandle;

#[cfg(bobbin_asan)]
use crate::stack::asan;

pub use val::{UntypedRetVal, Val};

use core::ffi::c_void;

use nix::libc;

use crate::arch;
use crate::Error;

/// The saved state of one thread of execution.
///
/// A `Context` must not move once initialised: the assembly, the initial stack frame and
/// other contexts refer to it by address. Keep it in a [`ContextHandle`] (a heap
/// allocation) or in another structure that never moves.
///
/// # Examples
/// Two contexts in boxes: the caller's, saved by the switch, and one that runs a function.
/// ```
/// use bobbin::context::{Context, Val};
///
/// extern "C" fn triple(x: u32) -> u32 {
///     x * 3
/// }
/// let mut stack = vec![0u64; 1024];
/// let mut parent = Box::new(Context::new());
/// let mut child = Box::new(Context::new());
/// Context::init(&mut stack, &mut child, triple as *const () as usize, &[Val::U32(14)]).unwrap();
/// // SAFETY: `triple` needs far less than the 8 KiB of `stack`, which outlives the child;
/// // neither box moves while the child runs, and it returns to `parent` through the backstop.
/// unsafe { Context::swap(&mut parent, &mut child) };
/// assert_eq!(child.get_untyped_retval().as_u32(), 42);
/// ```
#[repr(C, align(64))]
pub struct Context {
    /// The architecture's callee-saved registers, entry registers, floating-point control
    /// and floating argument registers (the assembly's part of the layout).
    regs: Regs,
    retvals_gp: [u64; 2],
    retval_fp: FpReg,
    parent_ctx: *mut Context,
    backstop_callback: Option<unsafe extern "C" fn(*mut c_void)>,
    backstop_data: *mut c_void,
    sigset: libc::sigset_t,
    /// Valgrind's id for the stack `init` announced (0: none, or not under valgrind).
    /// Not read by the assembly.
    valgrind_stack: usize,
    /// Under AddressSanitizer: the stack this context runs on, as ASan is told when a
    /// switch goes there (after every field the assembly reads).
    #[cfg(bobbin_asan)]
    asan: asan::ContextStack,
}

impl Context {
    /// A context with every field zero: a place for [`Context::swap`] to save into, not
    /// yet something to switch to.
    ///
    /// # Examples
    /// ```
    /// let ctx = bobbin::context::Context::new();
    /// assert!(ctx.parent().is_null());
    /// assert_eq!(ctx.get_retval_gp(0), 0);
    /// ```
    pub fn new() -> Context {
        // SAFETY: every field is an integer, a float vector, a raw pointer, an Option of
        // a function pointer or a sigset_t, for all of which all-zero bits are valid
        // (None, null, the empty set).
        unsafe { core::mem::zeroed() }
    }

    /// Prepares `child` to run `fptr(args...)` on `stack`.
    ///
    /// `fptr` is the address of an `extern "C"` function whose parameters match `args`
    /// (count, order and class). Integer-class values fill rdi, rsi, rdx, rcx, r8, r9 and
    /// floats xmm0-xmm7 (aarch64: x0-x7 and v0-v7), in order of appearance within each
    /// class; the rest go on the stack where the ABI puts stack arguments. The first
    /// [`Context::swap`] into `child` starts the function. When it returns, its rax, rdx
    /// and xmm0 (aarch64: x0, x1 and v0) are stored in `child` and control switches to the
    /// context that last swapped into it.
    ///
    /// The child's floating-point control words start as the calling thread's.
    ///
    /// `stack` may be any memory whose end is 16-byte aligned: a boxed slice or a `Vec` of an
    /// even number of `u64` (the default allocator on x86-64 Linux, glibc's malloc, returns
    /// 16-byte-aligned blocks; another allocator may not), or the words of a
    /// [`Stack`](crate::stack::Stack). Only a `Stack` has a guard page below it; with any
    /// other memory, keeping the child within the slice is the business of whoever switches
    /// into it (see the `# Safety` section of [`Context::swap`]). Nothing here makes a
    /// system call.
    ///
    /// Under valgrind, `stack` is announced as a stack for as long as `child` lives (until
    /// it is dropped or initialised again): otherwise valgrind would take a switch into
    /// heap memory near the current stack for a huge frame pushed on it and mark the memory
    /// between the two as undefined. Natively the announcement is a test of a flag.
    ///
    /// # Errors
    /// [`Error::StackTooSmall`] if `stack` cannot hold the initial frame (the spilled
    /// arguments and the call chain that starts the function: nine words on x86-64, eight
    /// on aarch64), an empty slice
    /// included; [`Error::UnalignedStack`] if the end of `stack` is not 16-byte aligned.
    /// `child` is left untouched then.
    ///
    /// # Examples
    /// A heap stack of 8 KiB and an entry function taking an integer and a float:
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    ///
    /// extern "C" fn entrypoint(x: u64, y: f32) -> f64 {
    ///     x as f64 * y as f64
    /// }
    /// let mut stack = vec![0u64; 1024].into_boxed_slice();
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::new();
    /// let res = Context::init(
    ///     &mut *stack,
    ///     &mut child,
    ///     entrypoint as *const () as usize,
    ///     &[Val::U64(120), Val::F32(0.5)],
    /// );
    /// assert!(res.is_ok());
    /// // SAFETY: `entrypoint` needs far less than the 8 KiB of `stack`, which outlives the
    /// // child; the child returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert_eq!(child.get_untyped_retval().as_f64(), 60.0);
    /// ```
    ///
    /// A guard-paged [`Stack`](crate::stack::Stack), and the errors for slices that cannot
    /// hold a frame:
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    /// use bobbin::stack::Stack;
    ///
    /// extern "C" fn add(a: u64, b: u64) -> u64 {
    ///     a + b
    /// }
    /// let mut stack = Stack::new(16 * 1024).unwrap();
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::new();
    /// Context::init(stack.words_mut(), &mut child, add as *const () as usize, &[Val::U64(2), Val::U64(40)]).unwrap();
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert_eq!(child.get_retval_gp(0), 42);
    ///
    /// let mut empty: [u64; 0] = [];
    /// let err = Context::init(&mut empty, &mut child, add as *const () as usize, &[]).unwrap_err();
    /// assert!(matches!(err, bobbin::Error::StackTooSmall { available: 0, .. }));
    /// // One word off the aligned end of the same heap block.
    /// let mut heap = vec![0u64; 1024];
    /// let err = Context::init(&mut heap[..1023], &mut child, add as *const () as usize, &[]).unwrap_err();
    /// assert!(matches!(err, bobbin::Error::UnalignedStack { .. }));
    /// ```
    pub fn init(stack: &mut [u64], child: &mut Context, fptr: usize, args: &[Val]) -> Result<(), Error> {
        Self::init_inner(stack, child, None, core::ptr::null_mut(), fptr, args)
    }

    /// Like [`Context::init`], and when `fptr` returns, `callback(data)` runs on the child
    /// stack (after the return values are stored, before the parent resumes). It runs once:
    /// entering the finished context again goes straight back to the parent.
    ///
    /// # Errors
    /// As [`Context::init`].
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    /// use std::ffi::c_void;
    ///
    /// extern "C" fn entrypoint(x: u64, y: f32) -> u64 {
    ///     x + y as u64
    /// }
    /// unsafe extern "C" fn finished(data: *mut c_void) {
    ///     // SAFETY: `data` is the address of `done` below, alive until the child ends.
    ///     unsafe { *data.cast::<bool>() = true };
    /// }
    /// let mut done = false;
    /// let mut stack = vec![0u64; 1024].into_boxed_slice();
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::new();
    /// let data = (&mut done as *mut bool).cast::<c_void>();
    /// let args = [Val::U64(120), Val::F32(3.5)];
    /// let res = Context::init_with_callback(&mut *stack, &mut child, finished, data, entrypoint as *const () as usize, &args);
    /// assert!(res.is_ok());
    /// // SAFETY: as in the example of `Context::init`.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert!(done);
    /// assert_eq!(child.get_retval_gp(0), 123);
    /// ```
    pub fn init_with_callback(
        stack: &mut [u64],
        child: &mut Context,
        callback: unsafe extern "C" fn(*mut c_void),
        data: *mut c_void,
        fptr: usize,
        args: &[Val],
    ) -> Result<(), Error> {
        Self::init_inner(stack, child, Some(callback), data, fptr, args)
    }

    /// Saves the current state into `from`, records `from` as `to`'s parent, and
    /// continues in `to`. Returns when something switches back to `from`.
    ///
    /// Only the state the ABI makes callee-saved is saved: rbx, rsp, rbp, r12-r15 and the
    /// floating-point control words (aarch64: x19-x30, sp, d8-d15 and FPCR).
    ///
    /// # Safety
    /// `to` must have been initialised with [`Context::init`] or saved by an earlier
    /// `swap`, its stack must still be valid, and neither context may move while the other
    /// can still switch to it. Everything alive on `from`'s stack stays borrowed until
    /// control comes back. (A context whose entry function has returned may be entered
    /// again: it switches straight back to its parent.)
    ///
    /// The code that runs in `to` must fit in its stack. Running off the end of a stack
    /// that has no guard page below it (a heap slice, anything but a
    /// [`bobbin::stack::Stack`](crate::stack::Stack)) silently overwrites whatever memory
    /// lies there; that is the caller's risk, which `init` does not check. A `Stack` turns
    /// the same overrun into a fault on its guard page.
    ///
    /// # Examples
    /// A child that hands out three values, switching back to whoever swapped into it
    /// after each:
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    /// use std::cell::Cell;
    /// use std::ffi::c_void;
    ///
    /// extern "C" fn produce(me: *mut c_void, out: *const c_void) -> u64 {
    ///     let (me, out) = (me.cast::<Context>(), out.cast::<Cell<u64>>());
    ///     for i in 1..=3 {
    ///         // SAFETY: `out` and both contexts outlive the child; the parent waits in
    ///         // its `swap` until the child switches back.
    ///         unsafe {
    ///             (*out).set(i * 10);
    ///             Context::swap(&mut *me, &mut *(*me).parent().cast_mut());
    ///         }
    ///     }
    ///     99
    /// }
    /// let out = Cell::new(0u64);
    /// let mut stack = vec![0u64; 2048];
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::new();
    /// let me: *mut Context = &mut *child;
    /// let args = [Val::CPtr(me.cast()), Val::CPtr((&out as *const Cell<u64>).cast())];
    /// Context::init(&mut stack, &mut child, produce as *const () as usize, &args).unwrap();
    /// let mut seen = Vec::new();
    /// for _ in 0..4 {
    ///     // SAFETY: `stack` outlives the child, which needs far less than its 16 KiB; the
    ///     // fourth switch lets it return to `parent` through the backstop.
    ///     unsafe { Context::swap(&mut parent, &mut *me) };
    ///     seen.push(out.get());
    /// }
    /// assert_eq!(seen, [10, 20, 30, 30]);
    /// assert_eq!(child.get_retval_gp(0), 99);
    /// ```
    #[inline]
    pub unsafe fn swap(from: &mut Context, to: &mut Context) {
        #[cfg(bobbin_asan)]
        let fake_stack = asan::context_swap_start(&to.asan);
        // SAFETY: upheld by the caller as documented above.
        unsafe { arch::bobbin_context_swap(from as *mut Context as *mut c_void, to as *mut Context as *mut c_void) }
        #[cfg(bobbin_asan)]
        asan::context_swapped_back(fake_stack);
    }

    /// Continues in `to`, abandoning the current state for good.
    ///
    /// # Safety
    /// As for the `to` of [`Context::swap`], the risk of running off an unguarded stack
    /// included. Nothing on the current stack is dropped.
    ///
    /// # Examples
    /// A child that leaves for its parent for good instead of returning:
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    /// use std::ffi::c_void;
    ///
    /// extern "C" fn leave(me: *const c_void) -> u64 {
    ///     // SAFETY: the parent that swapped in is alive, waiting in its `swap`.
    ///     unsafe { Context::set(&*(*me.cast::<Context>()).parent()) }
    /// }
    /// let mut stack = vec![0u64; 1024];
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::new();
    /// let me: *const Context = &*child;
    /// Context::init(&mut stack, &mut child, leave as *const () as usize, &[Val::CPtr(me.cast())]).unwrap();
    /// // SAFETY: `stack` outlives the child, which needs far less than its 8 KiB.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// // Back in the parent, although `leave` never returned: no return value was stored.
    /// assert_eq!(child.get_retval_gp(0), 0);
    /// ```
    pub unsafe fn set(to: &Context) -> ! {
        #[cfg(bobbin_asan)]
        asan::context_set(&to.asan);
        // SAFETY: upheld by the caller as documented above.
        unsafe { arch::bobbin_context_set(to as *const Context as *const c_void) }
    }

    /// Restores the signal mask saved in `to`, then continues in `to`: the way out of a
    /// signal handler into a context.
    ///
    /// # Errors
    /// Returns only if the signal mask cannot be restored.
    ///
    /// # Safety
    /// As for [`Context::set`] (the code run in `to` must fit in its stack unless that is a
    /// guard-paged [`Stack`](crate::stack::Stack)); in addition the signal must be one that
    /// may be left without returning from the handler (a synchronous fault is; a signal that
    /// interrupted code holding a lock is not).
    ///
    /// # Examples
    /// A child raises a signal; the handler leaves it for the parent, and the parent's mask
    /// (here: nothing blocked) is in force again, where a plain [`Context::set`] would leave
    /// the handler's (the signal blocked):
    /// ```
    /// use bobbin::context::{Context, ContextHandle};
    /// use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
    ///
    /// static ESCAPE: AtomicPtr<Context> = AtomicPtr::new(std::ptr::null_mut());
    /// static AFTER_RAISE: AtomicBool = AtomicBool::new(false);
    ///
    /// extern "C" fn on_signal(_: libc::c_int) {
    ///     // SAFETY: ESCAPE is the parent, waiting in its `swap`; the child raised the
    ///     // signal itself, holding no lock.
    ///     let _ = unsafe { Context::set_from_signal(&*ESCAPE.load(Ordering::SeqCst)) };
    /// }
    /// extern "C" fn child_fn() -> u64 {
    ///     // SAFETY: raise only signals this thread.
    ///     unsafe { libc::raise(libc::SIGUSR1) };
    ///     AFTER_RAISE.store(true, Ordering::SeqCst); // never reached
    ///     1
    /// }
    /// fn usr1_blocked() -> bool {
    ///     // SAFETY: reads this thread's mask into a local set.
    ///     unsafe {
    ///         let mut set: libc::sigset_t = std::mem::zeroed();
    ///         libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut set);
    ///         libc::sigismember(&set, libc::SIGUSR1) == 1
    ///     }
    /// }
    /// // SAFETY: an all-zero sigaction is valid; the handler is set before it is installed.
    /// unsafe {
    ///     let mut action: libc::sigaction = std::mem::zeroed();
    ///     action.sa_sigaction = on_signal as usize;
    ///     assert_eq!(libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()), 0);
    /// }
    /// let mut stack = bobbin::stack::Stack::new(64 * 1024).unwrap();
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::create_and_init(stack.words_mut(), child_fn as *const () as usize, &[]).unwrap();
    /// ESCAPE.store(&mut *parent, Ordering::SeqCst);
    /// // SAFETY: the child and the handler run on `stack`, which outlives them.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert!(!AFTER_RAISE.load(Ordering::SeqCst));
    /// assert!(!usr1_blocked());
    /// ```
    pub unsafe fn set_from_signal(to: &Context) -> Result<(), Error> {
        // SAFETY: `to.sigset` is a valid sigset_t; a null old-set pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &to.sigset, core::ptr::null_mut()) };
        if rc != 0 {
            return Err(Error::Signal(std::io::Error::from_raw_os_error(rc)));
        }
        // SAFETY: upheld by the caller as documented above.
        unsafe { Self::set(to) }
    }

    /// Zeroes the stored return values.
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    ///
    /// extern "C" fn seven() -> u64 {
    ///     7
    /// }
    /// let mut stack = vec![0u64; 1024];
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::create_and_init(&mut stack, seven as *const () as usize, &[]).unwrap();
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert_eq!(child.get_retval_gp(0), 7);
    /// child.clear_retvals();
    /// assert_eq!(child.get_retval_gp(0), 0);
    /// ```
    pub fn clear_retvals(&mut self) {
        self.retvals_gp = [0; 2];
        self.retval_fp = fp_from_bits(0);
    }

    /// A general return register of the finished entry function: 0 for rax, 1 for rdx
    /// (aarch64: x0 and x1).
    ///
    /// # Panics
    /// If `idx` is not 0 or 1.
    ///
    /// # Examples
    /// A two-word structure comes back in rax and rdx:
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    ///
    /// #[repr(C)]
    /// struct Span {
    ///     start: u64,
    ///     len: u64,
    /// }
    /// extern "C" fn span(start: u64, end: u64) -> Span {
    ///     Span { start, len: end - start }
    /// }
    /// let mut stack = vec![0u64; 1024];
    /// let mut parent = ContextHandle::new();
    /// let args = [Val::U64(100), Val::U64(164)];
    /// let mut child = ContextHandle::create_and_init(&mut stack, span as *const () as usize, &args).unwrap();
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert_eq!((child.get_retval_gp(0), child.get_retval_gp(1)), (100, 64));
    /// ```
    pub fn get_retval_gp(&self, idx: usize) -> u64 {
        assert!(idx < 2, "get_retval_gp: index {idx} out of range (0 is rax, 1 is rdx)");
        self.retvals_gp[idx]
    }

    /// rax and xmm0 (aarch64: x0 and v0) of the finished entry function, to be read as its
    /// return type.
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::{Context, ContextHandle, Val};
    ///
    /// extern "C" fn sign(x: i32) -> i32 {
    ///     x.signum()
    /// }
    /// let mut stack = vec![0u64; 1024];
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::create_and_init(&mut stack, sign as *const () as usize, &[Val::I32(-12)]).unwrap();
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert_eq!(child.get_untyped_retval().as_i32(), -1);
    /// ```
    pub fn get_untyped_retval(&self) -> UntypedRetVal {
        UntypedRetVal::new(self.retvals_gp[0], self.retval_fp)
    }

    /// The context that last swapped into this one (null if none has).
    ///
    /// # Examples
    /// ```
    /// use bobbin::context::{Context, ContextHandle};
    ///
    /// extern "C" fn nothing() {}
    /// let mut stack = vec![0u64; 1024];
    /// let mut parent = ContextHandle::new();
    /// let mut child = ContextHandle::create_and_init(&mut stack, nothing as *const () as usize, &[]).unwrap();
    /// assert!(child.parent().is_null());
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert!(std::ptr::eq(child.parent(), &*parent));
    /// ```
    pub fn parent(&self) -> *const Context {
        self.parent_ctx
    }

    /// Sets the signal mask [`Context::set_from_signal`] restores.
    pub(crate) fn set_sigmask(&mut self, set: &libc::sigset_t) {
        self.sigset = *set;
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        arch::valgrind_stack_deregister(self.valgrind_stack);
    }
}
