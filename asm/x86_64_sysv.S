# bobbin: context primitives for x86-64 System V (Linux).
#
# Assembled by rustc through global_asm!(include_str!(...)) in src/arch.rs, so no C compiler
# is needed; the syntax is therefore Intel without prefixes. No curly braces may appear in
# this file (global_asm! treats them as operand placeholders).
#
# Four out-of-line primitives serve the low-level Context API:
#   bobbin_context_swap(from: *mut Context [rdi], to: *mut Context [rsi])
#   bobbin_context_set(to: *const Context [rdi]) -> !
#   bobbin_context_bootstrap   first code run by a fresh context (never called directly)
#   bobbin_context_backstop    where a fresh context's entry function returns to
# and three entry points serve the safe coroutine layer:
#   bobbin_coroutine_start        first code run by a fresh coroutine
#   bobbin_coroutine_start_fp     every entry and exit of one that keeps its own
#                                 floating-point control words
#   bobbin_coroutine_start_inner  the first entry of the latter
#
# Initial stack of a context prepared by Context::init (addresses grow upwards):
#
#        +--------------------------+  <- top of the stack (16-byte aligned)
#        | padding (0 or 8 bytes)   |
#        | spilled argument k-1     |
#        | ...                      |
#        | spilled argument 0       |  <- 16-byte aligned: the callee's rsp+8 at entry
#        | bobbin_context_backstop  |  <- the entry function's return address
#        | entry function (fptr)    |  <- bootstrap's `ret` lands here
#        | value for r9             |
#        | value for r8             |
#        | value for rcx            |
#        | value for rdx            |
#        | value for rsi            |
#        | value for rdi            |
#        | bobbin_context_bootstrap |  <- saved rsp; the first switch pops this and jumps
#        +--------------------------+
#
# Under AddressSanitizer (src/arch.rs then defines BOBBIN_ASAN before this file) one more
# word sits below bootstrap and is the saved rsp: bobbin_asan_context_start, which tells
# ASan that the switch into the fresh context has arrived before bootstrap runs, and the
# backstop announces its switches to the parent too (src/context/asan.rs says why).
#
# The saved rbp of a fresh context is the address of the Context itself. bootstrap finds
# the floating argument values through it, and because rbp is callee-saved the entry
# function hands it back unchanged to backstop, which stores the return values into the
# same Context and switches to the parent.
#
# Why pop + jmp: a switch that ends in `ret` returns somewhere the return-address predictor
# did not expect (1.6x the round trip on an AMD Zen 4, about 3x on an Intel Xeon). The
# symmetric swap therefore leaves through an indirect jump, predicted by the branch
# target buffer instead.
#
# Why the control words are read first and compared last: on AMD Zen 4, stmxcsr is a slow,
# serialising instruction (one per ~15-18 cycles) and a load of the value it stored waits
# for it, which holds up everything behind the load. Issuing stmxcsr first and reading its
# value back only after the target's registers are loaded lets the rest of the switch run
# under its shadow: 44 cycles per round trip there, against 50 with the compare in the
# middle (a round trip that stores the words and never reads them back would take 36, but
# the status flags are shared and the control bits compared, which needs the value read).

# Field offsets in Context; checked against offset_of! in src/context/mod.rs.
.set BOBBIN_CTX_RBX, 0
.set BOBBIN_CTX_RSP, 8
.set BOBBIN_CTX_RBP, 16
.set BOBBIN_CTX_RDI, 24
.set BOBBIN_CTX_R12, 32
.set BOBBIN_CTX_R13, 40
.set BOBBIN_CTX_R14, 48
.set BOBBIN_CTX_R15, 56
.set BOBBIN_CTX_RSI, 64
.set BOBBIN_CTX_MXCSR, 72
.set BOBBIN_CTX_FPCW, 76
.set BOBBIN_CTX_XMM0, 80
.set BOBBIN_CTX_RETVAL_GP, 208
.set BOBBIN_CTX_RETVAL_FP, 224
.set BOBBIN_CTX_PARENT, 240
.set BOBBIN_CTX_CALLBACK, 248
.set BOBBIN_CTX_CALLBACK_DATA, 256

# MXCSR: bits 0-5 are sticky status flags, bits 6-15 are control (DAZ, exception masks,
# rounding, FZ). Only the control bits are context state.
.set BOBBIN_MXCSR_CONTROL, 0xFFC0
.set BOBBIN_MXCSR_STATUS, 0x3F

    .text

# BOBBIN_SWITCH_FP_CONTROL current, target, scratch, id
#
# Switches the floating-point control words from the block at `current` to the one at
# `target` (a block is the MXCSR at +0 and the x87 control word at +4), loading only a word
# whose control bits differ: the current MXCSR status flags are kept, because reloading
# differing sticky flags makes every switch pay a serialising ldmxcsr. The status flags are
# thus shared by all contexts of a thread. Each word is compared with a load of its own
# width (an 8-byte load of the pair would span the two stores stmxcsr and fnstcw just made,
# which the CPU cannot forward). When neither word changes, which is the common case, no
# branch is taken: the loads are in BOBBIN_SWITCH_FP_CONTROL_LOADS, which the function
# places after its own exit with the same arguments. `scratch` is 4 bytes of free memory;
# `id` names the labels. Uses ecx and r8d.
.macro BOBBIN_SWITCH_FP_CONTROL current, target, scratch, id
    mov ecx, [\current]
    xor ecx, [\target]
    test ecx, BOBBIN_MXCSR_CONTROL
    jnz .Lbobbin_load_mxcsr_\id
.Lbobbin_mxcsr_done_\id:
    mov cx, [\current + 4]
    cmp cx, [\target + 4]
    jne .Lbobbin_load_fpcw_\id
.Lbobbin_fpcw_done_\id:
.endm

.macro BOBBIN_SWITCH_FP_CONTROL_LOADS current, target, scratch, id
.Lbobbin_load_mxcsr_\id:
    # (target's control bits) | (current status flags)
    mov ecx, [\target]
    and ecx, BOBBIN_MXCSR_CONTROL
    mov r8d, [\current]
    and r8d, BOBBIN_MXCSR_STATUS
    or ecx, r8d
    mov [\scratch], ecx
    ldmxcsr [\scratch]
    jmp .Lbobbin_mxcsr_done_\id
.Lbobbin_load_fpcw_\id:
    fldcw [\target + 4]
    jmp .Lbobbin_fpcw_done_\id
.endm

# BOBBIN_LOAD_REGISTERS ctx
#
# Loads the callee-saved registers and rsp of the Context at `ctx`. The entry values of rdi
# and rsi come last, loaded by the caller of the macro.
.macro BOBBIN_LOAD_REGISTERS ctx
    mov rbx, [\ctx + BOBBIN_CTX_RBX]
    mov rbp, [\ctx + BOBBIN_CTX_RBP]
    mov r12, [\ctx + BOBBIN_CTX_R12]
    mov r13, [\ctx + BOBBIN_CTX_R13]
    mov r14, [\ctx + BOBBIN_CTX_R14]
    mov r15, [\ctx + BOBBIN_CTX_R15]
    mov rsp, [\ctx + BOBBIN_CTX_RSP]
.endm

# ---------------------------------------------------------------------------------------
# bobbin_context_swap(from [rdi], to [rsi])
#
# Saves the callee-saved state of the caller into `from`, records `from` as the parent of
# `to`, and continues in `to`. Returns (into the caller) when something later switches back
# to `from`. rdi and rsi are loaded from `to` on the way in, which lets a signal handler or
# a scheduler hand two values to the context it enters.
#
# The floating-point control words are stored first and compared with `to`'s last, after
# `to`'s registers are loaded (see the top of this file for why). A word whose control bits
# differ is loaded as BOBBIN_SWITCH_FP_CONTROL says, off the straight path. The MXCSR value
# to load is built in `to`'s own MXCSR slot: only its control bits are state (status bits
# of a saved MXCSR are never loaded), and unlike the memory below `to`'s stack pointer it
# is sure to exist (a fresh context's stack may end right there).
    .p2align 4
    .globl bobbin_context_swap
    .type bobbin_context_swap,@function
bobbin_context_swap:
    .cfi_startproc
    stmxcsr [rdi + BOBBIN_CTX_MXCSR]
    fnstcw [rdi + BOBBIN_CTX_FPCW]
    mov [rdi + BOBBIN_CTX_RBX], rbx
    mov [rdi + BOBBIN_CTX_RSP], rsp
    mov [rdi + BOBBIN_CTX_RBP], rbp
    mov [rdi + BOBBIN_CTX_R12], r12
    mov [rdi + BOBBIN_CTX_R13], r13
    mov [rdi + BOBBIN_CTX_R14], r14
    mov [rdi + BOBBIN_CTX_R15], r15
    mov [rsi + BOBBIN_CTX_PARENT], rdi
    BOBBIN_LOAD_REGISTERS rsi
    # rsp is `to`'s from here on; its return address goes to r11 before the compares (which
    # keeps them, and the reads of stmxcsr's value in them, last). The x87 word goes first:
    # its store is cheap to read back.
    pop r11
    .cfi_def_cfa_offset 0
    .cfi_register 16, 11
    mov cx, [rdi + BOBBIN_CTX_FPCW]
    cmp cx, [rsi + BOBBIN_CTX_FPCW]
    jne .Lbobbin_swap_load_fpcw
.Lbobbin_swap_fpcw_done:
    mov ecx, [rdi + BOBBIN_CTX_MXCSR]
    xor ecx, [rsi + BOBBIN_CTX_MXCSR]
    test ecx, BOBBIN_MXCSR_CONTROL
    jnz .Lbobbin_swap_load_mxcsr
.Lbobbin_swap_mxcsr_done:
    mov rdi, [rsi + BOBBIN_CTX_RDI]
    mov rsi, [rsi + BOBBIN_CTX_RSI]
    jmp r11
.Lbobbin_swap_load_fpcw:
    fldcw [rsi + BOBBIN_CTX_FPCW]
    jmp .Lbobbin_swap_fpcw_done
.Lbobbin_swap_load_mxcsr:
    # (to's control bits) | (the current status flags, as just stored into from)
    mov ecx, [rsi + BOBBIN_CTX_MXCSR]
    and ecx, BOBBIN_MXCSR_CONTROL
    mov r8d, [rdi + BOBBIN_CTX_MXCSR]
    and r8d, BOBBIN_MXCSR_STATUS
    or ecx, r8d
    mov [rsi + BOBBIN_CTX_MXCSR], ecx
    ldmxcsr [rsi + BOBBIN_CTX_MXCSR]
    jmp .Lbobbin_swap_mxcsr_done
    .cfi_endproc
    .size bobbin_context_swap, .-bobbin_context_swap

# ---------------------------------------------------------------------------------------
# bobbin_context_set(to [rdi]) -> !
#
# Continues in `to`, abandoning the current state. The control words are switched as
# BOBBIN_SWITCH_FP_CONTROL says, while still on the current stack (its scratch lies below
# rsp there); set is not on a hot path, so the plain order is kept.
    .p2align 4
    .globl bobbin_context_set
    .type bobbin_context_set,@function
bobbin_context_set:
    .cfi_startproc
    stmxcsr [rsp - 16]
    fnstcw [rsp - 12]
    BOBBIN_SWITCH_FP_CONTROL rsp - 16, rdi + BOBBIN_CTX_MXCSR, rsp - 8, set
    BOBBIN_LOAD_REGISTERS rdi
    mov rsi, [rdi + BOBBIN_CTX_RSI]
    mov rdi, [rdi + BOBBIN_CTX_RDI]
    pop rcx
    jmp rcx
    BOBBIN_SWITCH_FP_CONTROL_LOADS rsp - 16, rdi + BOBBIN_CTX_MXCSR, rsp - 8, set
    .cfi_endproc
    .size bobbin_context_set, .-bobbin_context_set

# ---------------------------------------------------------------------------------------
# bobbin_context_bootstrap
#
# Entered by the first switch into a fresh context: rsp points at the six general argument
# values (rdi first), rbp at the Context. Loads the argument registers and "returns" into
# the entry function, whose own return address (backstop) is the next slot up.
    .p2align 4
    .globl bobbin_context_bootstrap
    .type bobbin_context_bootstrap,@function
bobbin_context_bootstrap:
    .cfi_startproc
    # Nothing can unwind through bootstrap: it makes no calls. Mark the chain's end so a
    # sampling unwinder that lands here stops instead of reading argument values as
    # return addresses.
    .cfi_undefined 16
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop r8
    pop r9
    movaps xmm0, [rbp + BOBBIN_CTX_XMM0 + 0 * 16]
    movaps xmm1, [rbp + BOBBIN_CTX_XMM0 + 1 * 16]
    movaps xmm2, [rbp + BOBBIN_CTX_XMM0 + 2 * 16]
    movaps xmm3, [rbp + BOBBIN_CTX_XMM0 + 3 * 16]
    movaps xmm4, [rbp + BOBBIN_CTX_XMM0 + 4 * 16]
    movaps xmm5, [rbp + BOBBIN_CTX_XMM0 + 5 * 16]
    movaps xmm6, [rbp + BOBBIN_CTX_XMM0 + 6 * 16]
    movaps xmm7, [rbp + BOBBIN_CTX_XMM0 + 7 * 16]
    ret
    .cfi_endproc
    .size bobbin_context_bootstrap, .-bobbin_context_bootstrap

# ---------------------------------------------------------------------------------------
# bobbin_context_backstop
#
# The entry function of a fresh context returns here, with rbp (callee-saved) still the
# address of the Context. Stores rax, rdx and xmm0 into the Context, runs the backstop
# callback if one is set, and swaps to the parent. Entering the finished context again
# comes back here and swaps to the parent once more.
#
# CFI: while the entry function (or the callback) runs, an unwinder asks this frame for
# its caller. The honest answer is the parent: it is suspended inside
# bobbin_context_swap, so its saved rsp points at the return address into whoever called
# swap, and its callee-saved registers sit in the parent Context. The expressions below
# read them through rbp -> Context.parent.
    .p2align 4
    .type bobbin_context_backstop_fde,@function
bobbin_context_backstop_fde:
    .cfi_startproc
    # CFA = parent.rsp + 8:
    #   DW_CFA_def_cfa_expression, 9 bytes:
    #   DW_OP_breg6 (rbp) 240, DW_OP_deref, DW_OP_plus_uconst 8, DW_OP_deref, DW_OP_plus_uconst 8
    .cfi_escape 0x0f, 0x09, 0x76, 0xf0, 0x01, 0x06, 0x23, 0x08, 0x06, 0x23, 0x08
    # The return address is at CFA - 8, as the CIE says by default.
    # rbx, rbp, r12-r15 are at parent + offset:
    #   DW_CFA_expression reg, 6 bytes: DW_OP_breg6 240, DW_OP_deref, DW_OP_plus_uconst offset
    .cfi_escape 0x10, 0x03, 0x06, 0x76, 0xf0, 0x01, 0x06, 0x23, 0x00
    .cfi_escape 0x10, 0x06, 0x06, 0x76, 0xf0, 0x01, 0x06, 0x23, 0x10
    .cfi_escape 0x10, 0x0c, 0x06, 0x76, 0xf0, 0x01, 0x06, 0x23, 0x20
    .cfi_escape 0x10, 0x0d, 0x06, 0x76, 0xf0, 0x01, 0x06, 0x23, 0x28
    .cfi_escape 0x10, 0x0e, 0x06, 0x76, 0xf0, 0x01, 0x06, 0x23, 0x30
    .cfi_escape 0x10, 0x0f, 0x06, 0x76, 0xf0, 0x01, 0x06, 0x23, 0x38
    # Unwinders look up the FDE of (return address - 1). The entry function's return
    # address is bobbin_context_backstop itself, so one byte of this FDE must precede it.
    nop
    .globl bobbin_context_backstop
bobbin_context_backstop:
    mov [rbp + BOBBIN_CTX_RETVAL_GP], rax
    mov [rbp + BOBBIN_CTX_RETVAL_GP + 8], rdx
    movaps [rbp + BOBBIN_CTX_RETVAL_FP], xmm0
    mov rax, [rbp + BOBBIN_CTX_CALLBACK]
    test rax, rax
    jz 1f
    mov rdi, [rbp + BOBBIN_CTX_CALLBACK_DATA]
    call rax
1:
.ifdef BOBBIN_ASAN
    mov rdi, rbp
    call bobbin_asan_context_finished
.endif
    mov rdi, rbp
    mov rsi, [rbp + BOBBIN_CTX_PARENT]
    call bobbin_context_swap
.ifdef BOBBIN_ASAN
    call bobbin_asan_context_entered_again
.endif
    jmp 1b
    .cfi_endproc
    .size bobbin_context_backstop_fde, .-bobbin_context_backstop_fde

.ifdef BOBBIN_ASAN
# ---------------------------------------------------------------------------------------
# bobbin_asan_context_start (only under AddressSanitizer)
#
# Entered by the first switch into a fresh context, with rsp pointing at the bootstrap
# slot (8 bytes off a 16-byte boundary) and rbp at the Context. Completes the switch for
# ASan (bobbin_asan_context_started(context)), then "returns" into bootstrap, which loads
# every argument register itself.
    .p2align 4
    .globl bobbin_asan_context_start
    .type bobbin_asan_context_start,@function
bobbin_asan_context_start:
    .cfi_startproc
    .cfi_undefined 16
    sub rsp, 8
    mov rdi, rbp
    call bobbin_asan_context_started
    add rsp, 8
    ret
    .cfi_endproc
    .size bobbin_asan_context_start, .-bobbin_asan_context_start
.endif

# ---------------------------------------------------------------------------------------
# The coroutine layer's entry points: bobbin_coroutine_start, bobbin_coroutine_start_fp
#
# The resumer (arch::resume) enters a coroutine with `call [rsi]`, rsi being the
# coroutine's saved stack pointer, and the coroutine leaves with a `ret` that pops the
# address that call pushed (arch::suspend, arch::finish). These entry points handle the
# first entry, and, for a coroutine that keeps floating-point control words of its own,
# every entry and exit: that mode costs the switch nothing when it is off. On entry:
#   rsp = the resumer's stack, pointing at the return address its call pushed; above it
#         its rbx and rbp (see arch.rs)
#   rdi = the word for the coroutine (the address of the input)
#   rsi = the coroutine's saved stack pointer, pointing at the address just called
#   rdx = the coroutine's stack base
#
# Base area of a coroutine stack (the closure lies above the base until the coroutine starts):
#
#        +-------------------------------+  <- base (16-byte aligned)
#        | link: the resumer's rsp       |  base - 8
#        | FP slot: the resumer's words  |  base - 16   (own-words mode)
#        | entry function, then the      |  base - 24
#        |   coroutine's own words       |              (own-words mode)
#        | bobbin_coroutine_start_inner, |  base - 32   (own-words mode)
#        |   then the resume address     |
#        | start or start_fp             |  base - 40   <- initial stack pointer
#        +-------------------------------+
#
# A control-word block is the MXCSR at +0 and the x87 control word at +4.

# BOBBIN_COROUTINE_BEGIN caller_offset
#
# Records the link, moves to the coroutine's stack (rsp = base - 32, 16-byte aligned) and
# calls the entry function, entry(rdi, base), which never returns: when the coroutine is
# finished, the entry function switches back to the resumer itself (arch::finish), so that
# the result it hands over stays in its live frame until the resumer has read it.
#
# CFI: the caller of this frame is found through the link, at [rsp + 24] once rsp is base
# - 32: the return address is at link, and the caller's CFA at link + caller_offset. For a
# plain coroutine the caller is the resumer (caller_offset 24: its call pushed the return
# address at link with rbx and rbp above, where the CFI finds them, and link + 24 is its
# rsp before it entered its switch, which its own CFI expects). In own-words mode it is bobbin_coroutine_start_fp,
# whose call is at link (caller_offset 8).
#   DW_CFA_def_cfa_expression, 5 bytes: DW_OP_breg7 (rsp) 24, DW_OP_deref,
#   DW_OP_plus_uconst caller_offset
.macro BOBBIN_COROUTINE_BEGIN caller_offset
    .cfi_undefined 16
    mov [rdx - 8], rsp
    lea rsp, [rdx - 32]
    .cfi_escape 0x0f, 0x05, 0x77, 0x18, 0x06, 0x23, \caller_offset
    .cfi_offset 16, -\caller_offset
    .if \caller_offset == 24
    .cfi_offset 3, -16
    .cfi_offset 6, -8
    .endif
    mov rsi, rdx
    call [rdx - 24]
    ud2
.endm

    .p2align 4
    .globl bobbin_coroutine_start
    .type bobbin_coroutine_start,@function
bobbin_coroutine_start:
    .cfi_startproc
    BOBBIN_COROUTINE_BEGIN 24
    .cfi_endproc
    .size bobbin_coroutine_start, .-bobbin_coroutine_start

# ---------------------------------------------------------------------------------------
# bobbin_coroutine_start_fp, for a coroutine that keeps its own control words.
#
# Every entry of such a coroutine comes here: the first through its initial stack pointer,
# the others because each exit leaves the address of .Lbobbin_fp_enter where the coroutine's
# saved stack pointer points, and moves the resume address it replaces to base - 32. An
# entry stores the resumer's words in the FP slot, loads the coroutine's, and enters the
# coroutine with a call, whose return address is .Lbobbin_fp_leave: the coroutine's `ret`
# comes back here, as predicted, and this frame's `ret` returns to the resumer, as
# predicted too. The exit stores the coroutine's words (the first entry starts the
# coroutine with the resumer's) and loads the resumer's. rdi, rsi and rdx pass through.
#
# The fault handler, after an overflow, returns to the resumer past this frame (link + 8)
# and loads the resumer's words from the FP slot itself.
#
# CFI: no instruction here moves rsp, which points at the resumer's return address with its
# rbx and rbp above, as on entry to bobbin_coroutine_start.
    .p2align 4
    .globl bobbin_coroutine_start_fp
    .type bobbin_coroutine_start_fp,@function
bobbin_coroutine_start_fp:
    .cfi_startproc
    .cfi_def_cfa_offset 24
    .cfi_offset 16, -24
    .cfi_offset 3, -16
    .cfi_offset 6, -8
    stmxcsr [rdx - 16]
    fnstcw [rdx - 12]
    jmp .Lbobbin_fp_call
.Lbobbin_fp_enter:
    stmxcsr [rdx - 16]
    fnstcw [rdx - 12]
    BOBBIN_SWITCH_FP_CONTROL rdx - 16, rdx - 24, rsp - 8, enter
.Lbobbin_fp_call:
    call [rdx - 32]
.Lbobbin_fp_leave:
    stmxcsr [rdx - 24]
    fnstcw [rdx - 20]
    # rsi = 0: the coroutine finished and is never entered again. A relaying coroutine's
    # rsi has the top bit set (arch::SWITCH_RELAYED), which the copy in rcx drops; rsi goes
    # back to the resumer as it came.
    test rsi, rsi
    jz 6f
    mov rcx, rsi
    btr rcx, 63
    mov rax, [rcx]
    mov [rdx - 32], rax
    lea rax, [rip + .Lbobbin_fp_enter]
    mov [rcx], rax
6:
    BOBBIN_SWITCH_FP_CONTROL rdx - 24, rdx - 16, rsp - 8, leave
    ret
    BOBBIN_SWITCH_FP_CONTROL_LOADS rdx - 16, rdx - 24, rsp - 8, enter
    BOBBIN_SWITCH_FP_CONTROL_LOADS rdx - 24, rdx - 16, rsp - 8, leave
    .cfi_endproc
    .size bobbin_coroutine_start_fp, .-bobbin_coroutine_start_fp

# bobbin_coroutine_start_inner: the first entry of a coroutine in own-words mode, called by
# bobbin_coroutine_start_fp through base - 32.
    .p2align 4
    .globl bobbin_coroutine_start_inner
    .type bobbin_coroutine_start_inner,@function
bobbin_coroutine_start_inner:
    .cfi_startproc
    BOBBIN_COROUTINE_BEGIN 8
    .cfi_endproc
    .size bobbin_coroutine_start_inner, .-bobbin_coroutine_start_inner
