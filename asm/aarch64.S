// bobbin: context primitives for AAPCS64 (aarch64 Linux).
//
// Assembled by rustc through global_asm!(include_str!(...)) in src/arch/aarch64.rs, so no C
// compiler is needed. No curly braces may appear in this file (global_asm! treats them as
// operand placeholders).
//
// Four out-of-line primitives serve the low-level Context API:
//   bobbin_context_swap(from: *mut Context [x0], to: *mut Context [x1])
//   bobbin_context_set(to: *const Context [x0]) -> !
//   bobbin_context_bootstrap   first code run by a fresh context (never called directly)
//   bobbin_context_backstop    where a fresh context's entry function returns to
// and three entry points serve the safe coroutine layer:
//   bobbin_coroutine_start        first code run by a fresh coroutine
//   bobbin_coroutine_start_fp     every entry and exit of one that keeps its own
//                                 floating-point control register
//   bobbin_coroutine_start_inner  the first entry of the latter
//
// State a switch keeps (AAPCS64 callee-saved): x19-x28, the frame pointer x29, the link
// register x30 (the address the switch returns to), sp, the low halves d8-d15 of v8-v15,
// and FPCR, the floating-point control register. FPSR, whose bits are the sticky status
// flags, is shared by all contexts of a thread, as MXCSR's flags are on x86-64.
//
// Initial stack of a context prepared by Context::init (addresses grow upwards):
//
//        +--------------------------+  <- top of the stack (16-byte aligned)
//        | padding (0 or 8 bytes)   |
//        | spilled argument k-1     |
//        | ...                      |
//        | spilled argument 0       |  <- 16-byte aligned: the callee's sp at entry
//        | value for x7             |
//        | ...                      |
//        | value for x0             |  <- saved sp; the first switch continues in bootstrap
//        +--------------------------+
//
// A fresh context's saved x30 is bobbin_context_bootstrap, its x19 the address of the
// Context itself and its x20 the entry function. bootstrap loads the argument registers
// (the floating ones from the Context, through x19), sets the entry function's return
// address to backstop and jumps to it. x19 is callee-saved, so the entry function hands it
// back unchanged to backstop, which stores the return values into the same Context and
// switches to the parent.
//
// Every switch leaves through `br x30`, not `ret`: the address it goes to is not the one
// the return-address stack predicts (that would be the return into the caller of this
// switch), and an indirect branch is predicted by the branch target buffer instead.

// Field offsets in Context; checked against offset_of! in src/context/aarch64/mod.rs.
.set BOBBIN_CTX_X19, 0
.set BOBBIN_CTX_FP, 80
.set BOBBIN_CTX_LR, 88
.set BOBBIN_CTX_SP, 96
.set BOBBIN_CTX_X0, 104
.set BOBBIN_CTX_FPCR, 120
.set BOBBIN_CTX_D8, 128
.set BOBBIN_CTX_V0, 192
.set BOBBIN_CTX_RETVAL_GP, 320
.set BOBBIN_CTX_RETVAL_FP, 336
.set BOBBIN_CTX_PARENT, 352
.set BOBBIN_CTX_CALLBACK, 360
.set BOBBIN_CTX_CALLBACK_DATA, 368

    .text

// BOBBIN_SAVE_REGISTERS ctx, scratch
//
// Stores the callee-saved general registers, x29, x30, sp and d8-d15 into the Context at
// `ctx`.
.macro BOBBIN_SAVE_REGISTERS ctx, scratch
    stp x19, x20, [\ctx, #BOBBIN_CTX_X19]
    stp x21, x22, [\ctx, #BOBBIN_CTX_X19 + 16]
    stp x23, x24, [\ctx, #BOBBIN_CTX_X19 + 32]
    stp x25, x26, [\ctx, #BOBBIN_CTX_X19 + 48]
    stp x27, x28, [\ctx, #BOBBIN_CTX_X19 + 64]
    stp x29, x30, [\ctx, #BOBBIN_CTX_FP]
    mov \scratch, sp
    str \scratch, [\ctx, #BOBBIN_CTX_SP]
    stp d8, d9, [\ctx, #BOBBIN_CTX_D8]
    stp d10, d11, [\ctx, #BOBBIN_CTX_D8 + 16]
    stp d12, d13, [\ctx, #BOBBIN_CTX_D8 + 32]
    stp d14, d15, [\ctx, #BOBBIN_CTX_D8 + 48]
.endm

// BOBBIN_LOAD_REGISTERS ctx, scratch
//
// The reverse. The entry values of x0 and x1 come last, loaded by the caller of the macro.
.macro BOBBIN_LOAD_REGISTERS ctx, scratch
    ldp x19, x20, [\ctx, #BOBBIN_CTX_X19]
    ldp x21, x22, [\ctx, #BOBBIN_CTX_X19 + 16]
    ldp x23, x24, [\ctx, #BOBBIN_CTX_X19 + 32]
    ldp x25, x26, [\ctx, #BOBBIN_CTX_X19 + 48]
    ldp x27, x28, [\ctx, #BOBBIN_CTX_X19 + 64]
    ldp x29, x30, [\ctx, #BOBBIN_CTX_FP]
    ldr \scratch, [\ctx, #BOBBIN_CTX_SP]
    mov sp, \scratch
    ldp d8, d9, [\ctx, #BOBBIN_CTX_D8]
    ldp d10, d11, [\ctx, #BOBBIN_CTX_D8 + 16]
    ldp d12, d13, [\ctx, #BOBBIN_CTX_D8 + 32]
    ldp d14, d15, [\ctx, #BOBBIN_CTX_D8 + 48]
.endm

// ---------------------------------------------------------------------------------------
// bobbin_context_swap(from [x0], to [x1])
//
// Saves the callee-saved state of the caller into `from`, records `from` as the parent of
// `to`, and continues in `to`. Returns (into the caller) when something later switches back
// to `from`. x0 and x1 are loaded from `to` on the way in, which lets a signal handler or
// a scheduler hand two values to the context it enters.
//
// FPCR is written only when `to`'s differs from the current one: a write may serialise
// the pipeline, and nearly every switch keeps the mode. No CFI beyond the default is
// needed: from the first instruction to the last, the return address is in x30 and the
// caller's stack pointer in sp, first `from`'s and then `to`'s.
    .p2align 4
    .globl bobbin_context_swap
    .type bobbin_context_swap,@function
bobbin_context_swap:
    .cfi_startproc
    mrs x9, fpcr
    BOBBIN_SAVE_REGISTERS x0, x10
    str x9, [x0, #BOBBIN_CTX_FPCR]
    str x0, [x1, #BOBBIN_CTX_PARENT]
    BOBBIN_LOAD_REGISTERS x1, x10
    ldr x10, [x1, #BOBBIN_CTX_FPCR]
    cmp x9, x10
    b.ne .Lbobbin_swap_load_fpcr
.Lbobbin_swap_fpcr_done:
    ldp x0, x1, [x1, #BOBBIN_CTX_X0]
    br x30
.Lbobbin_swap_load_fpcr:
    msr fpcr, x10
    b .Lbobbin_swap_fpcr_done
    .cfi_endproc
    .size bobbin_context_swap, .-bobbin_context_swap

// ---------------------------------------------------------------------------------------
// bobbin_context_set(to [x0]) -> !
//
// Continues in `to`, abandoning the current state.
    .p2align 4
    .globl bobbin_context_set
    .type bobbin_context_set,@function
bobbin_context_set:
    .cfi_startproc
    mov x1, x0
    mrs x9, fpcr
    ldr x10, [x1, #BOBBIN_CTX_FPCR]
    cmp x9, x10
    b.eq 1f
    msr fpcr, x10
1:
    BOBBIN_LOAD_REGISTERS x1, x10
    ldp x0, x1, [x1, #BOBBIN_CTX_X0]
    br x30
    .cfi_endproc
    .size bobbin_context_set, .-bobbin_context_set

// ---------------------------------------------------------------------------------------
// bobbin_context_bootstrap
//
// Entered by the first switch into a fresh context: sp points at the eight general
// argument values (x0 first), x19 at the Context, x20 holds the entry function. Loads the
// argument registers and jumps to the entry function with backstop as its return address.
// Below the entry function's stack pointer nothing remains of the frame.
    .p2align 4
    .globl bobbin_context_bootstrap
    .type bobbin_context_bootstrap,@function
bobbin_context_bootstrap:
    .cfi_startproc
    // Nothing can unwind through bootstrap: it makes no calls. Mark the chain's end so a
    // sampling unwinder that lands here stops.
    .cfi_undefined 30
    ldp x0, x1, [sp], #16
    ldp x2, x3, [sp], #16
    ldp x4, x5, [sp], #16
    ldp x6, x7, [sp], #16
    ldp q0, q1, [x19, #BOBBIN_CTX_V0]
    ldp q2, q3, [x19, #BOBBIN_CTX_V0 + 32]
    ldp q4, q5, [x19, #BOBBIN_CTX_V0 + 64]
    ldp q6, q7, [x19, #BOBBIN_CTX_V0 + 96]
    adr x30, bobbin_context_backstop
    br x20
    .cfi_endproc
    .size bobbin_context_bootstrap, .-bobbin_context_bootstrap

// ---------------------------------------------------------------------------------------
// bobbin_context_backstop
//
// The entry function of a fresh context returns here, with x19 (callee-saved) still the
// address of the Context. Stores x0, x1 and q0 into the Context, runs the backstop
// callback if one is set, and swaps to the parent. Entering the finished context again
// comes back here and swaps to the parent once more.
//
// CFI: while the entry function (or the callback) runs, an unwinder asks this frame for
// its caller. The honest answer is the parent: it is suspended inside
// bobbin_context_swap, so its saved sp is its stack pointer at the call, its saved x30 the
// return address into whoever called swap, and its callee-saved registers sit in the
// parent Context. The expressions below read them through x19 -> Context.parent
// (DW_OP_breg19 352 is 0x83 0xe0 0x02).
    .p2align 4
    .type bobbin_context_backstop_fde,@function
bobbin_context_backstop_fde:
    .cfi_startproc
    // CFA = parent.sp:
    //   DW_CFA_def_cfa_expression, 7 bytes:
    //   DW_OP_breg19 352, DW_OP_deref, DW_OP_plus_uconst 96, DW_OP_deref
    .cfi_escape 0x0f, 0x07, 0x83, 0xe0, 0x02, 0x06, 0x23, 0x60, 0x06
    // x19-x30 and d8-d15 (DWARF 72-79) are at parent + offset:
    //   DW_CFA_expression reg, n bytes: DW_OP_breg19 352, DW_OP_deref, DW_OP_plus_uconst offset
    .cfi_escape 0x10, 19, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 0
    .cfi_escape 0x10, 20, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 8
    .cfi_escape 0x10, 21, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 16
    .cfi_escape 0x10, 22, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 24
    .cfi_escape 0x10, 23, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 32
    .cfi_escape 0x10, 24, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 40
    .cfi_escape 0x10, 25, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 48
    .cfi_escape 0x10, 26, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 56
    .cfi_escape 0x10, 27, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 64
    .cfi_escape 0x10, 28, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 72
    .cfi_escape 0x10, 29, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 80
    .cfi_escape 0x10, 30, 0x06, 0x83, 0xe0, 0x02, 0x06, 0x23, 88
    .cfi_escape 0x10, 72, 0x07, 0x83, 0xe0, 0x02, 0x06, 0x23, 0x80, 0x01
    .cfi_escape 0x10, 73, 0x07, 0x83, 0xe0, 0x02, 0x06, 0x23, 0x88, 0x01
    .cfi_escape 0x10, 74, 0x07, 0x83, 0xe0, 0x02, 0x06, 0x23, 0x90, 0x01
    .cfi_escape 0x10, 75, 0x07, 0x83, 0xe0, 0x02, 0x06, 0x23, 0x98, 0x01
    .cfi_escape 0x10, 76, 0x07, 0x83, 0xe0, 0x02, 0x06, 0x23, 0xa0, 0x01
    .cfi_escape 0x10, 77, 0x07, 0x83, 0xe0, 0x02, 0x06, 0x23, 0xa8, 0x01
    .cfi_escape 0x10, 78, 0x07, 0x83, 0xe0, 0x02, 0x06, 0x23, 0xb0, 0x01
    .cfi_escape 0x10, 79, 0x07, 0x83, 0xe0, 0x02, 0x06, 0x23, 0xb8, 0x01
    // Unwinders look up the FDE of (return address - 1). The entry function's return
    // address is bobbin_context_backstop itself, so one instruction of this FDE must
    // precede it.
    nop
    .globl bobbin_context_backstop
bobbin_context_backstop:
    stp x0, x1, [x19, #BOBBIN_CTX_RETVAL_GP]
    str q0, [x19, #BOBBIN_CTX_RETVAL_FP]
    ldr x9, [x19, #BOBBIN_CTX_CALLBACK]
    cbz x9, 1f
    ldr x0, [x19, #BOBBIN_CTX_CALLBACK_DATA]
    blr x9
1:
    mov x0, x19
    ldr x1, [x19, #BOBBIN_CTX_PARENT]
    bl bobbin_context_swap
    b 1b
    .cfi_endproc
    .size bobbin_context_backstop_fde, .-bobbin_context_backstop_fde

// ---------------------------------------------------------------------------------------
// The coroutine layer's entry points: bobbin_coroutine_start, bobbin_coroutine_start_fp
//
// The resumer (arch::resume) reserves 32 bytes of its stack, keeps its x19 and x29 in the
// upper 16, and enters a coroutine with `blr` through the address its saved stack pointer
// points at. Whatever is entered stores x30, the return address, in the lowest word, and
// the resumer's sp in the coroutine's link slot; the coroutine leaves with a `ret` to that
// address (arch::suspend, arch::finish), which the return-address stack predicts. The frame
// the resumer's sp (the link) points at while the coroutine runs:
//
//   link + 24  saved x29
//   link + 16  saved x19
//   link + 8   (unused)
//   link       return address
//
// These entry points handle the first entry, and, for a coroutine that keeps its own
// FPCR, every entry and exit: that mode costs the switch nothing when it is off. On entry:
//   sp  = the resumer's stack, the frame above
//   x30 = the return address into the resumer
//   x0  = the word for the coroutine (the address of the input)
//   x1  = the coroutine's saved stack pointer, pointing at the address just called
//   x2  = the coroutine's stack base
//
// Base area of a coroutine stack (the closure lies above the base until the coroutine starts):
//
//        +-------------------------------+  <- base (16-byte aligned)
//        | link: the resumer's sp        |  base - 8
//        | FP slot: the resumer's FPCR   |  base - 16   (own-FPCR mode)
//        | entry function, then the      |  base - 24
//        |   coroutine's own FPCR        |              (own-FPCR mode)
//        | bobbin_coroutine_start_inner, |  base - 32   (own-FPCR mode)
//        |   then the resume address     |
//        | start or start_fp             |  base - 40   <- initial saved stack pointer
//        +-------------------------------+
//
// The coroutine's frames start at base - 48, the first 16-byte boundary below the area.

// BOBBIN_COROUTINE_BEGIN caller_offset
//
// Completes the resumer's frame, records the link, moves to the coroutine's stack and
// calls the entry function, entry(x0, base), which never returns: when the coroutine is
// finished, the entry function switches back to the resumer itself (arch::finish), so that
// the result it hands over stays in its live frame until the resumer has read it.
//
// CFI: the caller of this frame is found through the link, at [sp + 40] once sp is base -
// 48: the return address is at link, and the caller's CFA at link + caller_offset. For a
// plain coroutine the caller is the resumer (caller_offset 32: its frame is the one drawn
// above, and link + 32 is its sp before its switch began, which its own CFI expects). In
// own-FPCR mode it is bobbin_coroutine_start_fp, whose call is made with sp = link
// (caller_offset 0).
//   DW_CFA_def_cfa_expression, 5 bytes: DW_OP_breg31 (sp) 40, DW_OP_deref,
//   DW_OP_plus_uconst caller_offset
.macro BOBBIN_COROUTINE_BEGIN caller_offset
    .cfi_undefined 30
    str x30, [sp]
    mov x9, sp
    str x9, [x2, #-8]
    sub sp, x2, #48
    .cfi_escape 0x0f, 0x05, 0x8f, 0x28, 0x06, 0x23, \caller_offset
    .cfi_offset 30, -\caller_offset
    .if \caller_offset == 32
    .cfi_offset 19, -16
    .cfi_offset 29, -8
    .endif
    mov x1, x2
    ldr x9, [x2, #-24]
    blr x9
    brk #0x1
.endm

    .p2align 4
    .globl bobbin_coroutine_start
    .type bobbin_coroutine_start,@function
bobbin_coroutine_start:
    .cfi_startproc
    BOBBIN_COROUTINE_BEGIN 32
    .cfi_endproc
    .size bobbin_coroutine_start, .-bobbin_coroutine_start

// ---------------------------------------------------------------------------------------
// bobbin_coroutine_start_fp, for a coroutine that keeps its own FPCR.
//
// Every entry of such a coroutine comes here: the first through its initial stack pointer,
// the others because each exit leaves the address of .Lbobbin_fp_enter where the coroutine's
// saved stack pointer points, and moves the resume address it replaces to base - 32. An
// entry stores the resumer's FPCR in the FP slot, loads the coroutine's, and enters the
// coroutine with a call (its own 16 bytes below the resumer's frame hold the return
// address the coroutine stores), whose return address is .Lbobbin_fp_leave: the
// coroutine's `ret` comes back here, as predicted, and this frame's `ret` returns to the
// resumer, as predicted too. The exit stores the coroutine's FPCR (the first entry starts
// the coroutine with the resumer's) and loads the resumer's. x0, x1 and x2 pass through.
//
// The fault handler, after an overflow, returns to the resumer past this frame (link + 16)
// and loads the resumer's FPCR from the FP slot itself.
    .p2align 4
    .globl bobbin_coroutine_start_fp
    .type bobbin_coroutine_start_fp,@function
bobbin_coroutine_start_fp:
    .cfi_startproc
    .cfi_def_cfa_offset 32
    .cfi_offset 19, -16
    .cfi_offset 29, -8
    str x30, [sp]
    .cfi_offset 30, -32
    mrs x9, fpcr
    str x9, [x2, #-16]
    b .Lbobbin_fp_call
.Lbobbin_fp_enter:
    str x30, [sp]
    mrs x9, fpcr
    str x9, [x2, #-16]
    ldr x10, [x2, #-24]
    cmp x9, x10
    b.ne .Lbobbin_fp_load_enter
.Lbobbin_fp_call:
    sub sp, sp, #16
    .cfi_adjust_cfa_offset 16
    ldr x9, [x2, #-32]
    blr x9
.Lbobbin_fp_leave:
    add sp, sp, #16
    .cfi_adjust_cfa_offset -16
    mrs x9, fpcr
    str x9, [x2, #-24]
    // x1 = 0: the coroutine finished and is never entered again. A relaying coroutine's
    // x1 has the top bit set (arch::SWITCH_RELAYED), which the copy in x11 drops; x1 goes
    // back to the resumer as it came.
    cbz x1, 6f
    and x11, x1, #0x7fffffffffffffff
    ldr x10, [x11]
    str x10, [x2, #-32]
    adr x10, .Lbobbin_fp_enter
    str x10, [x11]
6:
    ldr x10, [x2, #-16]
    cmp x9, x10
    b.ne .Lbobbin_fp_load_leave
.Lbobbin_fp_return:
    ldr x30, [sp]
    ret
.Lbobbin_fp_load_enter:
    msr fpcr, x10
    b .Lbobbin_fp_call
.Lbobbin_fp_load_leave:
    msr fpcr, x10
    b .Lbobbin_fp_return
    .cfi_endproc
    .size bobbin_coroutine_start_fp, .-bobbin_coroutine_start_fp

// bobbin_coroutine_start_inner: the first entry of a coroutine in own-FPCR mode, called by
// bobbin_coroutine_start_fp through base - 32.
    .p2align 4
    .globl bobbin_coroutine_start_inner
    .type bobbin_coroutine_start_inner,@function
bobbin_coroutine_start_inner:
    .cfi_startproc
    BOBBIN_COROUTINE_BEGIN 0
    .cfi_endproc
    .size bobbin_coroutine_start_inner, .-bobbin_coroutine_start_inner
