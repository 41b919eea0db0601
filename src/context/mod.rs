//! The low-level layer: saved machine contexts, and switching between them.
//!
//! A [`Context`] holds what the System V ABI says must survive a call (rbx, rsp, rbp,
//! r12-r15 and the floating-point control words) plus what a fresh context needs for its
//! first entry (argument registers). [`Context::init`] prepares a context to run an
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
//! serialising `ldmxcsr` once two contexts' flags differ.
//!
//! # AddressSanitizer
//! Built with `-Zsanitizer=address`, [`Context::swap`] and [`Context::set`] announce every
//! switch to ASan, as do a fresh context's first entry and the backstop, so that ASan checks
//! each stack as the stack it is. A context learns the bounds of its stack from
//! [`Context::init`]; one saved by `swap` on some other stack (the thread's own) learns them
//! when a context it started arrives for the first time. A switch to a context whose stack
//! was never learnt is announced as one to a stack of unknown bounds, on which ASan finds
//! fewer errors.

mod val;

#[cfg(bobbin_asan)]
pub(crate) mod asan;
pub(crate) mod stackful;

use val::m128_from_bits;
pub use val::{UntypedRetVal, Val};

use core::arch::x86_64::__m128;
use core::ffi::c_void;
use core::fmt;
use core::ops::{Deref, DerefMut};

use nix::libc;

use crate::arch;
use crate::Error;

/// Callee-saved general registers, plus rdi and rsi (loaded on entry, so that two values
/// can be handed to a context).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct GpRegs {
    rbx: u64,
    rsp: u64,
    rbp: u64,
    rdi: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rsi: u64,
}

/// The saved state of one thread of execution.
///
/// A `Context` must not move once initialised: the assembly, the initial stack frame and
/// other contexts refer to it by address. Keep it in a [`ContextHandle`] (a heap
/// allocation) or in another structure that never moves.
#[repr(C, align(64))]
pub struct Context {
    gpr: GpRegs,
    mxcsr: u32,
    fpcw: u16,
    _pad: u16,
    fpr: [__m128; 8],
    retvals_gp: [u64; 2],
    retval_fp: __m128,
    parent_ctx: *mut Context,
    backstop_callback: Option<unsafe extern "C" fn(*mut c_void)>,
    backstop_data: *mut c_void,
    sigset: libc::sigset_t,
    /// Under AddressSanitizer: the stack this context runs on, as ASan is told when a
    /// switch goes there (after every field the assembly reads).
    #[cfg(bobbin_asan)]
    asan: asan::ContextStack,
}

// Offsets the assembly relies on. The .S file defines the same numbers; a test compares
// them with the `.set` lines there.
pub(crate) const CTX_RBX: usize = 0;
pub(crate) const CTX_RSP: usize = 8;
pub(crate) const CTX_RBP: usize = 16;
pub(crate) const CTX_RDI: usize = 24;
pub(crate) const CTX_R12: usize = 32;
pub(crate) const CTX_R13: usize = 40;
pub(crate) const CTX_R14: usize = 48;
pub(crate) const CTX_R15: usize = 56;
pub(crate) const CTX_RSI: usize = 64;
pub(crate) const CTX_MXCSR: usize = 72;
pub(crate) const CTX_FPCW: usize = 76;
pub(crate) const CTX_XMM0: usize = 80;
pub(crate) const CTX_RETVAL_GP: usize = 208;
pub(crate) const CTX_RETVAL_FP: usize = 224;
pub(crate) const CTX_PARENT: usize = 240;
pub(crate) const CTX_CALLBACK: usize = 248;
pub(crate) const CTX_CALLBACK_DATA: usize = 256;

const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(Context, gpr) + offset_of!(GpRegs, rbx) == CTX_RBX);
    assert!(offset_of!(Context, gpr) + offset_of!(GpRegs, rsp) == CTX_RSP);
    assert!(offset_of!(Context, gpr) + offset_of!(GpRegs, rbp) == CTX_RBP);
    assert!(offset_of!(Context, gpr) + offset_of!(GpRegs, rdi) == CTX_RDI);
    assert!(offset_of!(Context, gpr) + offset_of!(GpRegs, r12) == CTX_R12);
    assert!(offset_of!(Context, gpr) + offset_of!(GpRegs, r13) == CTX_R13);
    assert!(offset_of!(Context, gpr) + offset_of!(GpRegs, r14) == CTX_R14);
    assert!(offset_of!(Context, gpr) + offset_of!(GpRegs, r15) == CTX_R15);
    assert!(offset_of!(Context, gpr) + offset_of!(GpRegs, rsi) == CTX_RSI);
    assert!(offset_of!(Context, mxcsr) == CTX_MXCSR);
    assert!(offset_of!(Context, fpcw) == CTX_FPCW);
    assert!(offset_of!(Context, fpr) == CTX_XMM0);
    assert!(offset_of!(Context, retvals_gp) == CTX_RETVAL_GP);
    assert!(offset_of!(Context, retval_fp) == CTX_RETVAL_FP);
    assert!(offset_of!(Context, parent_ctx) == CTX_PARENT);
    assert!(offset_of!(Context, backstop_callback) == CTX_CALLBACK);
    assert!(offset_of!(Context, backstop_data) == CTX_CALLBACK_DATA);
};

/// General argument registers, in order.
const GP_ARG_REGS: usize = 6;
/// Floating argument registers (xmm0-xmm7).
const FP_ARG_REGS: usize = 8;
/// Words below the spilled arguments: backstop, fptr, six argument values, bootstrap,
/// and under AddressSanitizer the entry that announces the first arrival.
const CHAIN_WORDS: usize = 2 + GP_ARG_REGS + 1 + ASAN_ENTRY_WORDS;
#[cfg(not(bobbin_asan))]
const ASAN_ENTRY_WORDS: usize = 0;
#[cfg(bobbin_asan)]
const ASAN_ENTRY_WORDS: usize = 1;

impl Context {
    /// A context with every field zero: a place for [`Context::swap`] to save into, not
    /// yet something to switch to.
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
    /// floats xmm0-xmm7, in order of appearance within each class; the rest go on the
    /// stack where the System V ABI puts stack arguments. The first [`Context::swap`] into
    /// `child` starts the function. When it returns, its rax, rdx and xmm0 are stored in
    /// `child` and control switches to the context that last swapped into it.
    ///
    /// The child's floating-point control words start as the calling thread's.
    ///
    /// The stack must be guard-paged: the memory right below `stack` must be inaccessible,
    /// so that running off its end faults instead of overwriting whatever lies below. A
    /// [`Stack`](crate::stack::Stack) gives such memory through
    /// [`words_mut`](crate::stack::Stack::words_mut); [`Context::init_unguarded`] takes
    /// any memory, at the caller's risk.
    ///
    /// A [`Stack`](crate::stack::Stack) announces itself to valgrind, so that a switch to
    /// it is seen as a switch of stacks. Other memory is not announced: valgrind takes a
    /// switch into it for a frame pushed on the current stack, and when the two lie within
    /// its `--max-stackframe` (2 MB by default) it marks everything between them as
    /// undefined. Register such memory yourself (`VALGRIND_STACK_REGISTER`) before
    /// running it under valgrind.
    ///
    /// # Errors
    /// [`Error::UnalignedStack`] if the end of `stack` is not 16-byte aligned;
    /// [`Error::StackTooSmall`] if the initial frame does not fit;
    /// [`Error::UnguardedStack`] if the memory below `stack` is readable.
    ///
    /// # Examples
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
    /// Context::init(stack.words_mut(), &mut child, add as usize, &[Val::U64(2), Val::U64(40)]).unwrap();
    /// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
    /// unsafe { Context::swap(&mut parent, &mut child) };
    /// assert_eq!(child.get_retval_gp(0), 42);
    ///
    /// // Heap memory has no guard page below it (the top is aligned to 16 bytes first).
    /// let mut heap = vec![0u64; 1026];
    /// let skip = (heap.as_ptr() as usize / 8) % 2;
    /// let refused = Context::init(&mut heap[skip..skip + 1024], &mut child, add as usize, &[]).unwrap_err();
    /// assert!(matches!(refused, bobbin::Error::UnguardedStack { .. }));
    /// ```
    pub fn init(stack: &mut [u64], child: &mut Context, fptr: usize, args: &[Val]) -> Result<(), Error> {
        Self::init_inner(stack, child, None, core::ptr::null_mut(), fptr, args)?;
        check_guarded(stack, child)
    }

    /// Like [`Context::init`], without checking that the stack is guard-paged.
    ///
    /// # Errors
    /// [`Error::UnalignedStack`] and [`Error::StackTooSmall`] as [`Context::init`].
    ///
    /// # Safety
    /// Whoever later switches into `child` must make sure the code it runs never uses more
    /// than `stack` holds: with no guard below it, an overflow silently overwrites the
    /// memory there.
    pub unsafe fn init_unguarded(
        stack: &mut [u64],
        child: &mut Context,
        fptr: usize,
        args: &[Val],
    ) -> Result<(), Error> {
        Self::init_inner(stack, child, None, core::ptr::null_mut(), fptr, args)
    }

    /// Like [`Context::init`], and when `fptr` returns, `callback(data)` runs on the child
    /// stack (after the return values are stored, before the parent resumes). The stack
    /// must be guard-paged, as for [`Context::init`].
    ///
    /// # Errors
    /// As [`Context::init`].
    pub fn init_with_callback(
        stack: &mut [u64],
        child: &mut Context,
        callback: unsafe extern "C" fn(*mut c_void),
        data: *mut c_void,
        fptr: usize,
        args: &[Val],
    ) -> Result<(), Error> {
        Self::init_inner(stack, child, Some(callback), data, fptr, args)?;
        check_guarded(stack, child)
    }

    fn init_inner(
        stack: &mut [u64],
        child: &mut Context,
        callback: Option<unsafe extern "C" fn(*mut c_void)>,
        data: *mut c_void,
        fptr: usize,
        args: &[Val],
    ) -> Result<(), Error> {
        let top = stack.as_ptr_range().end as usize;
        if !top.is_multiple_of(16) {
            return Err(Error::UnalignedStack { top });
        }

        let mut gp = [0u64; GP_ARG_REGS];
        let mut fp = [0u64; FP_ARG_REGS];
        let (mut ngp, mut nfp, mut nspill) = (0, 0, 0);
        for v in args {
            if v.is_float() {
                if nfp < FP_ARG_REGS {
                    fp[nfp] = v.to_slot();
                    nfp += 1;
                } else {
                    nspill += 1;
                }
            } else if ngp < GP_ARG_REGS {
                gp[ngp] = v.to_slot();
                ngp += 1;
            } else {
                nspill += 1;
            }
        }

        // Words from the spill area to the top: the spilled arguments, rounded up to an
        // even count so the first one sits at a 16-byte boundary (the top is one).
        let spill_words = nspill + (nspill & 1);
        let needed = spill_words + CHAIN_WORDS;
        if needed > stack.len() {
            return Err(Error::StackTooSmall { needed: needed * 8, available: stack.len() * 8 });
        }
        // Frames abandoned on this memory by an earlier user may have left poisoned
        // redzones behind.
        #[cfg(bobbin_asan)]
        asan::unpoison(asan::Bounds::of_slice(stack));
        let spill = stack.len() - spill_words;

        let (mut seen_gp, mut seen_fp, mut slot) = (0, 0, spill);
        for v in args {
            let in_register = if v.is_float() {
                seen_fp += 1;
                seen_fp <= FP_ARG_REGS
            } else {
                seen_gp += 1;
                seen_gp <= GP_ARG_REGS
            };
            if !in_register {
                stack[slot] = v.to_slot();
                slot += 1;
            }
        }

        stack[spill - 1] = arch::bobbin_context_backstop as *const () as usize as u64;
        stack[spill - 2] = fptr as u64;
        // bootstrap pops rdi first, so the first argument sits lowest.
        for (i, v) in gp.iter().enumerate() {
            stack[spill - 2 - GP_ARG_REGS + i] = *v;
        }
        let sp_index = spill - CHAIN_WORDS;
        stack[sp_index + ASAN_ENTRY_WORDS] = arch::bobbin_context_bootstrap as *const () as usize as u64;
        #[cfg(bobbin_asan)]
        {
            stack[sp_index] = arch::bobbin_asan_context_start as *const () as usize as u64;
        }

        let (mxcsr, fpcw) = arch::fp_control();
        *child = Context::new();
        child.gpr.rsp = &stack[sp_index] as *const u64 as u64;
        child.gpr.rbp = child as *mut Context as u64;
        child.mxcsr = mxcsr;
        child.fpcw = fpcw;
        for (reg, bits) in child.fpr.iter_mut().zip(fp) {
            *reg = m128_from_bits(u128::from(bits));
        }
        child.backstop_callback = callback;
        child.backstop_data = data;
        #[cfg(bobbin_asan)]
        {
            child.asan = asan::ContextStack::on(stack);
        }
        Ok(())
    }

    /// Saves the current state into `from`, records `from` as `to`'s parent, and
    /// continues in `to`. Returns when something switches back to `from`.
    ///
    /// Only the state the ABI makes callee-saved is saved: rbx, rsp, rbp, r12-r15 and the
    /// floating-point control words.
    ///
    /// # Safety
    /// `to` must have been initialised with [`Context::init`] (and not have finished) or
    /// saved by an earlier `swap`, its stack must still be valid, and neither context may
    /// move while the other can still switch to it. Everything alive on `from`'s stack
    /// stays borrowed until control comes back.
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
    /// As for the `to` of [`Context::swap`]. Nothing on the current stack is dropped.
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
    /// As for [`Context::set`]; in addition the signal must be one that may be left
    /// without returning from the handler (a synchronous fault is; a signal that
    /// interrupted code holding a lock is not).
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
    pub fn clear_retvals(&mut self) {
        self.retvals_gp = [0; 2];
        self.retval_fp = m128_from_bits(0);
    }

    /// A general return register of the finished entry function: 0 for rax, 1 for rdx.
    ///
    /// # Panics
    /// If `idx` is not 0 or 1.
    pub fn get_retval_gp(&self, idx: usize) -> u64 {
        assert!(idx < 2, "get_retval_gp: index {idx} out of range (0 is rax, 1 is rdx)");
        self.retvals_gp[idx]
    }

    /// xmm0 of the finished entry function.
    pub fn get_retval_fp(&self) -> __m128 {
        self.retval_fp
    }

    /// rax and xmm0 of the finished entry function, to be read as its return type.
    pub fn get_untyped_retval(&self) -> UntypedRetVal {
        UntypedRetVal::new(self.retvals_gp[0], self.retval_fp)
    }

    /// The context that last swapped into this one (null if none has).
    pub fn parent(&self) -> *const Context {
        self.parent_ctx
    }

    /// Sets the values rdi and rsi receive when this context is next entered.
    pub fn set_entry_registers(&mut self, rdi: u64, rsi: u64) {
        self.gpr.rdi = rdi;
        self.gpr.rsi = rsi;
    }

    /// Sets the signal mask [`Context::set_from_signal`] restores.
    pub(crate) fn set_sigmask(&mut self, set: &libc::sigset_t) {
        self.sigset = *set;
    }

    /// Makes this a context that, when entered, continues at the return address stored at
    /// `sp` with `rsp = sp + 8`, as if a function called from there returned, with the
    /// given MXCSR control bits and x87 control word.
    ///
    /// The one use is the fault handler's way back to the resumer of this thread's
    /// innermost running coroutine, whose link `sp` is: under AddressSanitizer the context
    /// is recorded as running on that resumer's stack, so that the switch is announced as
    /// one to it.
    pub(crate) fn set_return_point(&mut self, sp: usize, mxcsr: u32, fpcw: u16) {
        self.gpr.rsp = sp as u64;
        self.mxcsr = mxcsr;
        self.fpcw = fpcw;
        #[cfg(bobbin_asan)]
        {
            self.asan = asan::ContextStack::of_resumer();
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("rsp", &format_args!("{:#x}", self.gpr.rsp))
            .field("rbp", &format_args!("{:#x}", self.gpr.rbp))
            .field("mxcsr", &format_args!("{:#x}", self.mxcsr))
            .field("fpcw", &format_args!("{:#x}", self.fpcw))
            .field("retvals_gp", &self.retvals_gp)
            .field("parent", &self.parent_ctx)
            .finish_non_exhaustive()
    }
}

/// A [`Context`] in its own heap allocation, so it never moves.
///
/// # Examples
/// ```
/// use bobbin::context::{Context, ContextHandle, Val};
///
/// extern "C" fn mix(a: i32, x: f64, b: u8) -> f64 {
///     a as f64 * x + b as f64
/// }
/// let mut stack = bobbin::stack::Stack::new(16 * 1024).unwrap();
/// let mut parent = ContextHandle::new();
/// let args = [Val::I32(-3), Val::F64(0.5), Val::U8(7)];
/// let mut child = ContextHandle::create_and_init(stack.words_mut(), mix as usize, &args).unwrap();
/// // SAFETY: `stack` outlives the child, which returns to `parent` through the backstop.
/// unsafe { Context::swap(&mut parent, &mut child) };
/// assert_eq!(child.get_untyped_retval().as_f64(), 5.5);
/// ```
pub struct ContextHandle {
    ctx: Box<Context>,
}

impl ContextHandle {
    /// A zeroed context on the heap.
    pub fn new() -> ContextHandle {
        ContextHandle { ctx: Box::new(Context::new()) }
    }

    /// A heap context prepared by [`Context::init`].
    ///
    /// # Errors
    /// As [`Context::init`].
    pub fn create_and_init(stack: &mut [u64], fptr: usize, args: &[Val]) -> Result<ContextHandle, Error> {
        let mut handle = ContextHandle::new();
        Context::init(stack, &mut handle, fptr, args)?;
        Ok(handle)
    }
}

impl Default for ContextHandle {
    fn default() -> Self {
        ContextHandle::new()
    }
}

impl Deref for ContextHandle {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl DerefMut for ContextHandle {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

impl fmt::Debug for ContextHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ContextHandle").field(&*self.ctx).finish()
    }
}

#[cfg(test)]
mod tests;

/// Under AddressSanitizer, called by `bobbin_asan_context_start`: a fresh context has
/// arrived for the first time.
///
/// # Safety
/// `ctx` is the context being entered; its parent is null or the context that swapped
/// into it, both alive.
#[cfg(bobbin_asan)]
#[no_mangle]
unsafe extern "C" fn bobbin_asan_context_started(ctx: *mut Context) {
    // SAFETY: upheld by the caller (the assembly passes the rbp of a fresh context, which
    // is its Context).
    unsafe {
        let parent = (*ctx).parent_ctx;
        asan::context_started(if parent.is_null() { core::ptr::null_mut() } else { &mut (*parent).asan });
    }
}

/// Under AddressSanitizer, called by the backstop before it switches to the parent of a
/// context whose function returned.
///
/// # Safety
/// `ctx` is that context, and its parent null or alive.
#[cfg(bobbin_asan)]
#[no_mangle]
unsafe extern "C" fn bobbin_asan_context_finished(ctx: *const Context) {
    // SAFETY: upheld by the caller (the backstop passes its rbp, the Context).
    unsafe {
        let parent = (*ctx).parent_ctx;
        let to = if parent.is_null() { asan::ContextStack::default() } else { (*parent).asan };
        asan::context_finished(&to);
    }
}

/// Under AddressSanitizer, called by the backstop when its finished context is entered
/// again.
#[cfg(bobbin_asan)]
#[no_mangle]
extern "C" fn bobbin_asan_context_entered_again() {
    asan::context_entered_again();
}

/// Checks that the word below `stack` cannot be read: a guard page (or unmapped memory)
/// sits below it. Probed with `process_vm_readv` on this very process, which reports an
/// inaccessible address as EFAULT instead of faulting. Where the system call is not
/// permitted (a seccomp filter), the check cannot be made and passes. On failure `child`
/// is reset, so it cannot be entered by mistake.
fn check_guarded(stack: &[u64], child: &mut Context) -> Result<(), Error> {
    let bottom = stack.as_ptr() as usize;
    let mut byte = 0u8;
    let local = libc::iovec { iov_base: (&mut byte as *mut u8).cast(), iov_len: 1 };
    let remote = libc::iovec { iov_base: bottom.wrapping_sub(1) as *mut c_void, iov_len: 1 };
    // SAFETY: process_vm_readv writes at most one byte into `byte` and reads the remote
    // range through the kernel, which reports an inaccessible address as an error.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n == 1 {
        *child = Context::new();
        return Err(Error::UnguardedStack { bottom });
    }
    Ok(())
}
