//! Fault handling: turning a guard-page hit in a coroutine into `Error::StackOverflow`.
//!
//! Once per process, [`ensure_installed`] installs a SIGSEGV/SIGBUS handler (keeping the
//! handler the program had, to pass other faults on to) and makes sure the calling thread
//! has an alternate signal stack, since a thread whose stack just overflowed cannot run a
//! handler on it.
//!
//! The handler learns which coroutine overflowed from the fault itself, so the switch keeps
//! no record of the running coroutine: the interrupted stack pointer says which stack the
//! thread runs on ([`stack::guard_hit`] looks it up among the live stacks), and if the fault
//! address lies in that stack's guard region and the coroutine layer tagged the stack with
//! its base ([`arch::tagged_base`]), the handler leaves through [`Context::set_from_signal`] to
//! the coroutine's resumer, found through the link slot below the base. The resumer sees
//! [`arch::SWITCH_OVERFLOWED`] in place of a stack pointer. Any other fault goes to the
//! previous handler, or, if there was none, to the default action, so a real crash still
//! crashes with its signal.
//!
//! Known limit: a coroutine that overflows while holding a lock (inside `malloc`, say)
//! leaves it held; later use of that lock on this thread deadlocks. The same holds for any
//! design that recovers from overflow without unwinding.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use nix::libc;

use crate::arch;
use crate::context::Context;
use crate::stack::{self, Stack};

static PREV_SEGV: OnceLock<libc::sigaction> = OnceLock::new();
static PREV_BUS: OnceLock<libc::sigaction> = OnceLock::new();
static INSTALL: OnceLock<Result<(), i32>> = OnceLock::new();
/// The address handlers installed through the C library return to (`__restore_rt`, which
/// makes the `rt_sigreturn` call): the first word of every signal frame the kernel builds
/// for such a handler. Zero if unknown.
static RESTORER: AtomicUsize = AtomicUsize::new(0);

/// Size of the alternate signal stack bobbin installs where a thread has none.
const ALT_STACK_SIZE: usize = 64 * 1024;
/// An existing alternate stack smaller than this is replaced.
const ALT_STACK_MIN: usize = 16 * 1024;

/// An alternate signal stack owned by this thread; disabled and freed at thread exit.
struct AltStack {
    stack: Stack,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let disable = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        let mut current: libc::stack_t = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: 0, ss_size: 0 };
        // SAFETY: querying and disabling the alternate stack of the current thread; only
        // disable it if it is still ours.
        unsafe {
            libc::sigaltstack(std::ptr::null(), &mut current);
            if current.ss_sp == self.stack.bottom().cast() {
                libc::sigaltstack(&disable, std::ptr::null_mut());
            }
        }
    }
}

thread_local! {
    static ALT_STACK: RefCell<Option<AltStack>> = const { RefCell::new(None) };
    static THREAD_READY: Cell<bool> = const { Cell::new(false) };
}

/// Installs the process-wide handler (once) and this thread's alternate signal stack (once
/// per thread). After the first call on a thread, one thread-local load and test.
#[inline]
pub(crate) fn ensure_installed() {
    if !THREAD_READY.get() {
        install_for_this_thread();
    }
}

#[cold]
#[inline(never)]
fn install_for_this_thread() {
    let installed = *INSTALL.get_or_init(install_handlers);
    if installed.is_ok() {
        ensure_alt_stack();
    }
    THREAD_READY.set(true);
}

fn install_handlers() -> Result<(), i32> {
    for (sig, prev) in [(libc::SIGSEGV, &PREV_SEGV), (libc::SIGBUS, &PREV_BUS)] {
        // SAFETY: a zeroed sigaction is a valid value to fill in; the handler is an
        // `extern "C"` function with the SA_SIGINFO signature, and `old` receives the
        // handler the program had, which we keep to chain to.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handle_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, &action, &mut old) != 0 {
                return Err(*libc::__errno_location());
            }
            let _ = prev.set(old);
            // The C library filled in its restorer; every handler it installs shares it.
            let mut ours: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut ours) == 0 {
                RESTORER.store(ours.sa_restorer.map_or(0, |f| f as usize), Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

fn ensure_alt_stack() {
    let mut current = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: 0, ss_size: 0 };
    // SAFETY: querying the current thread's alternate stack into a valid stack_t.
    let rc = unsafe { libc::sigaltstack(std::ptr::null(), &mut current) };
    if rc == 0 && current.ss_flags & libc::SS_DISABLE == 0 && current.ss_size >= ALT_STACK_MIN {
        return; // The thread has a usable one (Rust's runtime installs one per thread).
    }
    let Ok(stack) = Stack::new(ALT_STACK_SIZE) else { return };
    let new = libc::stack_t { ss_sp: stack.bottom().cast(), ss_flags: 0, ss_size: stack.size() };
    // SAFETY: the region is a live mapping owned by the AltStack stored below, which
    // disables the alternate stack before it is unmapped.
    if unsafe { libc::sigaltstack(&new, std::ptr::null_mut()) } == 0 {
        let _ = ALT_STACK.try_with(|a| *a.borrow_mut() = Some(AltStack { stack }));
    }
}

/// The SIGSEGV/SIGBUS handler.
extern "C" fn handle_fault(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo_t and ucontext_t to SA_SIGINFO handlers.
    let (addr, sp) = unsafe { ((*info).si_addr() as usize, interrupted_sp(uctx as *const libc::ucontext_t)) };
    if let Some((tag, bottom)) = stack::guard_hit(addr, sp) {
        let base = tag & !arch::KEEPS_FP;
        // The interrupted code runs on the stack of a coroutine of this thread and touched
        // its guard. `base - 8` is the coroutine's link slot: the resumer's stack pointer,
        // pointing at the return address of its `call`, with its rbx and rbp above.
        // Entering a context whose rsp is that address returns into the resumer as a
        // suspend would, with rsi saying what happened. The context loads the resumer's
        // control words from the coroutine's FP slot if it keeps its own, or else the ones
        // the faulting code ran with, which are the resumer's too.
        // SAFETY: as above: the stack is live while the thread runs on it, and its tag says
        // a coroutine of the safe layer keeps its link (and FP slot) below `base`; uctx is
        // the ucontext_t the kernel passed to this handler.
        unsafe {
            let link = *((base - arch::LINK_OFFSET) as *const usize);
            let (link, fp_control) = if tag & arch::KEEPS_FP != 0 {
                // Return past bobbin_coroutine_start_fp, which would switch the words
                // back, and load the resumer's words here instead.
                (link + arch::FP_ENTRY_FRAME, saved_fp_control(base - arch::FP_SLOT_OFFSET))
            } else {
                (link, interrupted_fp_control(uctx as *const libc::ucontext_t))
            };
            let mut ctx = Context::new();
            set_return_point(&mut ctx, link, fp_control);
            ctx.set_entry_registers(0, arch::SWITCH_OVERFLOWED as u64);
            // The stack pointer may already lie in the guard (the store that faulted was
            // the first below it): only the usable part of the stack is read.
            let live = sp.max(bottom);
            ctx.set_sigmask(&resumed_sigmask(uctx as *const libc::ucontext_t, live, base - arch::LINK_OFFSET));
            let _ = Context::set_from_signal(&ctx);
        }
    }
    chain(sig, info, uctx);
}

/// The signal mask to leave the overflowed coroutine with: the one its code ran with
/// before any signal handler that is running on its stack was entered.
///
/// The fault's own context holds the mask in force where the fault happened. If that was
/// inside a signal handler running on the coroutine's stack (a handler that overflowed
/// it), that mask has the handler's signal blocked, and since the recovery skips the
/// handler's return (its `rt_sigreturn`), the signal would stay blocked for good. The
/// kernel saved the mask from before the handler in the signal frame it pushed on the
/// coroutine's stack, between the fault and the coroutine's base; the outermost such
/// frame has the mask the coroutine's own code ran with, which is its resumer's unless
/// the coroutine changed it.
///
/// A frame is recognised by its first word, the C library's signal restorer, and accepted
/// only if the stack pointer it saved lies above it and within the coroutine's stack.
///
/// # Safety
/// `uctx` must be the ucontext_t the kernel passed to a signal handler, and `[sp, top)` the
/// live part of the stack the fault happened on.
unsafe fn resumed_sigmask(uctx: *const libc::ucontext_t, sp: usize, top: usize) -> libc::sigset_t {
    // SAFETY: upheld by the caller.
    let mut mask = unsafe { (*uctx).uc_sigmask };
    // Under valgrind the signal frames are valgrind's own, and the scan would read words
    // memcheck rightly calls undefined: keep the fault's mask there.
    if !frames_recognisable() || arch::on_valgrind() {
        return mask;
    }
    let mut at = (sp + 7) & !7;
    // The frame must fit below the top.
    while at + SIGNAL_FRAME_SPAN <= top {
        // SAFETY: [at, at + SIGNAL_FRAME_SPAN) lies in the live part of the stack, and
        // `at` is word-aligned.
        if let Some(saved) = unsafe { signal_frame_at(at) } {
            // Reads of the stack go through arch::read_word: under AddressSanitizer the
            // scan crosses redzones that instrumented frames poisoned.
            // SAFETY: the ucontext lies below `top`, inside the stack (checked above), and
            // its fields are word-aligned like the frame.
            let saved_sp = unsafe { arch::read_word(saved_sp_field(saved)) };
            if saved_sp > at && saved_sp <= top {
                // The kernel's mask is the first 64 bits of the C library's larger set;
                // the rest of the copy is whatever follows it in the frame.
                // SAFETY: as above; sigemptyset initialises the whole set.
                unsafe {
                    libc::sigemptyset(&mut mask);
                    let kernel_mask = arch::read_word(std::ptr::addr_of!((*saved).uc_sigmask) as usize);
                    *(std::ptr::addr_of_mut!(mask) as *mut u64) = kernel_mask as u64;
                }
                // Keep looking: an outer handler's frame lies further up.
            }
        }
        at += 8;
    }
    mask
}

/// Bytes a signal frame spans from where [`signal_frame_at`] recognises it: on x86-64 the
/// restorer's word, then the ucontext.
#[cfg(target_arch = "x86_64")]
const SIGNAL_FRAME_SPAN: usize = 8 + std::mem::size_of::<libc::ucontext_t>();

/// Whether signal frames can be recognised: on x86-64 by the C library's restorer, which
/// must be known.
#[cfg(target_arch = "x86_64")]
fn frames_recognisable() -> bool {
    RESTORER.load(Ordering::Relaxed) != 0
}

/// The ucontext of the signal frame the kernel built at `at`, if there is one: on x86-64
/// a frame starts with the restorer's address, the return address of the handler.
///
/// # Safety
/// `at` must be readable and word-aligned.
#[cfg(target_arch = "x86_64")]
unsafe fn signal_frame_at(at: usize) -> Option<*const libc::ucontext_t> {
    // SAFETY: upheld by the caller.
    let word = unsafe { arch::read_word(at) };
    (word == RESTORER.load(Ordering::Relaxed)).then_some((at + 8) as *const libc::ucontext_t)
}

/// The address of the stack pointer saved in `uctx`.
#[cfg(target_arch = "x86_64")]
fn saved_sp_field(uctx: *const libc::ucontext_t) -> usize {
    // SAFETY: only computes the address of a field, reading nothing.
    unsafe { std::ptr::addr_of!((*uctx).uc_mcontext.gregs[libc::REG_RSP as usize]) as usize }
}

/// Bytes a signal frame spans from where [`signal_frame_at`] recognises it: on aarch64
/// its ucontext (the siginfo lies below).
#[cfg(target_arch = "aarch64")]
const SIGNAL_FRAME_SPAN: usize = std::mem::size_of::<libc::ucontext_t>();

/// Whether signal frames can be recognised: on aarch64 always, by their FP/SIMD record.
#[cfg(target_arch = "aarch64")]
fn frames_recognisable() -> bool {
    true
}

/// The magic number and size of the kernel's `fpsimd_context` record, as the first word
/// of the record reads.
#[cfg(target_arch = "aarch64")]
const FPSIMD_HEADER: usize = 0x4650_8001 | (528 << 32);

/// Offset in a ucontext of the reserved area that holds the kernel's records: after
/// pstate, at the next 16-byte boundary (the libc crate keeps the field private).
#[cfg(target_arch = "aarch64")]
const RESERVED_OFFSET: usize =
    (std::mem::offset_of!(libc::ucontext_t, uc_mcontext) + std::mem::offset_of!(libc::mcontext_t, pstate) + 8 + 15)
        & !15;

/// The signal frame whose ucontext starts at `at`, if there is one: on aarch64 the kernel
/// saves no return address in the frame (the handler gets it in x30), so a frame is
/// recognised by the FP/SIMD record it always writes first in the reserved area.
///
/// # Safety
/// `[at, at + SIGNAL_FRAME_SPAN)` must be readable, and `at` word-aligned.
#[cfg(target_arch = "aarch64")]
unsafe fn signal_frame_at(at: usize) -> Option<*const libc::ucontext_t> {
    // SAFETY: upheld by the caller; the record's header lies inside the span.
    let header = unsafe { arch::read_word(at + RESERVED_OFFSET) };
    (header == FPSIMD_HEADER).then_some(at as *const libc::ucontext_t)
}

/// The address of the stack pointer saved in `uctx`.
#[cfg(target_arch = "aarch64")]
fn saved_sp_field(uctx: *const libc::ucontext_t) -> usize {
    // SAFETY: only computes the address of a field, reading nothing.
    unsafe { std::ptr::addr_of!((*uctx).uc_mcontext.sp) as usize }
}

/// Passes a fault that is not ours to the handler the program had, or to the default
/// action.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut c_void) {
    let prev = if sig == libc::SIGBUS { PREV_BUS.get() } else { PREV_SEGV.get() };
    let handler = prev.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs again and
        // the process dies of the signal, as it would have without bobbin.
        // SAFETY: a zeroed sigaction with SIG_DFL is valid.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
        return;
    }
    let flags = prev.map_or(0, |p| p.sa_flags);
    // SAFETY: `handler` is the address of the handler the program installed, with the
    // signature its flags declare.
    unsafe {
        if flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) = std::mem::transmute(handler);
            f(sig, info, uctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

/// The stack pointer of the interrupted code.
///
/// # Safety
/// `uctx` must be the ucontext_t the kernel passed to a signal handler.
#[cfg(target_arch = "x86_64")]
unsafe fn interrupted_sp(uctx: *const libc::ucontext_t) -> usize {
    // SAFETY: upheld by the caller.
    unsafe { (*uctx).uc_mcontext.gregs[libc::REG_RSP as usize] as usize }
}

/// The stack pointer of the interrupted code.
///
/// # Safety
/// `uctx` must be the ucontext_t the kernel passed to a signal handler.
#[cfg(target_arch = "aarch64")]
unsafe fn interrupted_sp(uctx: *const libc::ucontext_t) -> usize {
    // SAFETY: upheld by the caller.
    unsafe { (*uctx).uc_mcontext.sp as usize }
}

/// The floating-point control words of x86-64: MXCSR and the x87 control word.
#[cfg(target_arch = "x86_64")]
type FpControl = (u32, u16);
/// The floating-point control register of aarch64, FPCR.
#[cfg(target_arch = "aarch64")]
type FpControl = u64;

/// The resumer's control words, which a coroutine that keeps its own stored at `slot`.
///
/// # Safety
/// `slot` must be the FP slot of a live coroutine stack.
#[cfg(target_arch = "x86_64")]
unsafe fn saved_fp_control(slot: usize) -> FpControl {
    // SAFETY: upheld by the caller: MXCSR at +0, the x87 control word at +4.
    unsafe { (*(slot as *const u32), *((slot + 4) as *const u16)) }
}

/// The resumer's FPCR, which a coroutine that keeps its own stored at `slot`.
///
/// # Safety
/// `slot` must be the FP slot of a live coroutine stack.
#[cfg(target_arch = "aarch64")]
unsafe fn saved_fp_control(slot: usize) -> FpControl {
    // SAFETY: upheld by the caller.
    unsafe { *(slot as *const u64) }
}

/// Makes `ctx` continue in the resumer whose link is `link`, as a suspend would.
///
/// # Safety
/// `link` must be the link of a coroutine of this thread that is running.
#[cfg(target_arch = "x86_64")]
unsafe fn set_return_point(ctx: &mut Context, link: usize, (mxcsr, fpcw): FpControl) {
    ctx.set_return_point(link, mxcsr, fpcw);
}

/// Makes `ctx` continue in the resumer whose link is `link`, as a suspend would.
///
/// # Safety
/// `link` must be the link of a coroutine of this thread that is running.
#[cfg(target_arch = "aarch64")]
unsafe fn set_return_point(ctx: &mut Context, link: usize, fpcr: FpControl) {
    // SAFETY: upheld by the caller: the link points at the resumer's return address.
    unsafe { ctx.set_return_point(link, fpcr) };
}

#[cfg(target_arch = "x86_64")]
/// The floating-point control words the interrupted code ran with (the kernel gives the
/// handler default ones of its own), or the defaults if the kernel saved none.
///
/// # Safety
/// `uctx` must be the ucontext_t the kernel passed to a signal handler.
unsafe fn interrupted_fp_control(uctx: *const libc::ucontext_t) -> (u32, u16) {
    // SAFETY: upheld by the caller; `fpregs` points into the signal frame or is null.
    unsafe {
        let fpregs = (*uctx).uc_mcontext.fpregs;
        if fpregs.is_null() {
            (0x1F80, 0x037F)
        } else {
            ((*fpregs).mxcsr, (*fpregs).cwd)
        }
    }
}

/// The FPCR the interrupted code ran with (the kernel gives the handler the default), from
/// the FP/SIMD record the kernel saves first in the signal frame's reserved area, or the
/// default if there is none.
///
/// # Safety
/// `uctx` must be the ucontext_t the kernel passed to a signal handler.
#[cfg(target_arch = "aarch64")]
unsafe fn interrupted_fp_control(uctx: *const libc::ucontext_t) -> FpControl {
    // SAFETY: upheld by the caller: the reserved area holds the FP/SIMD record first, its
    // header followed by FPSR and FPCR (32 bits each).
    unsafe {
        let record = uctx as usize + RESERVED_OFFSET;
        if arch::read_word(record) == FPSIMD_HEADER {
            u64::from(*((record + 12) as *const u32))
        } else {
            0
        }
    }
}
