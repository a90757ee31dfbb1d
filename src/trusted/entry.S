/* Enclave entry and exit. Every EENTER lands in spm_enclave_entry on the
 * untrusted stack; this code records where the host is, switches to the
 * TCS's trusted stack (ECALL) or back into a parked ocall (ORET), and leaves
 * through one exit path that scrubs every register the host can see.
 *
 * On hardware the CPU sets RBX = TCS and RCX = the address after EENTER, and
 * EEXIT is ENCLU[4]. The simulated platform passes its ENCLU entry in R8 and
 * "leaves" by jumping to RCX; the thread data records which applies, and C
 * code (trts.c) refuses a simulated ENCLU that points into ELRANGE, so a
 * hostile host on hardware can at worst make the enclave fault.
 *
 * Entry also enforces the checkpoint engine's rules before any enclave
 * memory that a checkpoint captures is touched: nothing enters an exported
 * or dead instance, nothing enters a TCS whose thread region an import is
 * rewriting, and no thread returns from an ocall while a checkpoint froze
 * it (trts_internal.h, ckpt.c). */
#include "spm/abi/enclave_abi.h"
#include "trts_internal.h"

#define EBUSY     16
#define EINVAL    22
#define ESHUTDOWN 108
#define PAGE      4096

    .section .text.spm_entry, "ax", @progbits

/* r11 <- this thread's struct spm_thread_data, from GS (TCS.OGSBASGX), for
 * a thread that is already inside (its thread data is then intact). */
.macro LOAD_TD
    lea __ehdr_start(%rip), %r10
    mov %gs:SPM_TD_SELF_OFFSET, %r11
    add %r10, %r11
.endm

/* r10 <- enclave base, r13 <- the measured layout page (after the image),
 * r9 <- the incarnation state. Reads nothing a checkpoint captures. */
.macro LOAD_INC
    lea __ehdr_start(%rip), %r10
    lea (_end + PAGE - 1)(%rip), %r13
    and $-PAGE, %r13
    mov TRTS_LAYOUT_INCARNATION_OFF(%r13), %r9
    add %r10, %r9
.endm

/* Jumps to \locked when an import is rewriting the thread region of the
 * TCS in RBX (or RBX is not a TCS of the layout). Needs LOAD_INC; keeps
 * rdx; clobbers rax, r12, r14. Run it after this thread's state was
 * claimed with a locked instruction: RESTORE_BEGIN sets the lock and then
 * checks that state, so one of the two sees the other. */
.macro CHECK_LOCKED locked
    cmpq $0, TRTS_INC_LOCKED_ANY_OFFSET(%r9)
    je 1f
    mov %rdx, %r14
    mov %rbx, %rax
    sub %r10, %rax
    sub TRTS_LAYOUT_THREADS_OFF(%r13), %rax
    sub TRTS_LAYOUT_STACK_SIZE(%r13), %rax
    sub $(2 * PAGE), %rax /* guard page and thread data page before the TCS */
    xor %edx, %edx
    divq TRTS_LAYOUT_THREADS_STRIDE(%r13)
    mov %rdx, %r12
    mov %r14, %rdx
    test %r12, %r12
    jnz \locked
    mov TRTS_LAYOUT_TCS_COUNT(%r13), %r12d
    cmp %r12, %rax
    jae \locked
    bt %rax, TRTS_INC_LOCKED_OFFSET(%r9)
    jc \locked
1:
.endm

    .globl spm_enclave_entry
    .type spm_enclave_entry, @function
spm_enclave_entry:
    LOAD_INC
    /* Exported or dead: the pages a thread would use may be wiped. */
    mov TRTS_INC_PHASE_OFFSET(%r9), %eax
    cmp $TRTS_PHASE_EXPORTED, %eax
    je .Lrefuse_shutdown
    cmp $TRTS_PHASE_DEAD, %eax
    je .Lrefuse_shutdown
    /* This TCS's thread data is the page before it: found from RBX, which
     * the CPU checked, never from the self offset inside that page, which
     * an import may be rewriting with ciphertext. */
    lea -PAGE(%rbx), %r11
    cmp $SPM_ENTER_ORET, %rdi
    je .Loret
    cmp $SPM_ENTER_ECALL, %rdi
    jne .Lrefuse_invalid
    /* A TCS runs one ecall at a time; a second one (or one arriving while
     * this TCS is parked in an ocall, or frozen by a checkpoint) is refused
     * without touching state. The claim is atomic: CKPT_BEGIN may be
     * freezing threads at the same time. */
    mov $SPM_TD_STATE_IDLE, %eax
    mov $SPM_TD_STATE_ECALL, %r12d
    lock cmpxchg %r12, SPM_TD_STATE(%r11)
    jne .Lrefuse_busy
    CHECK_LOCKED .Lecall_locked
    mov %rsp, SPM_TD_UNTRUSTED_RSP(%r11)
    mov %rbp, SPM_TD_UNTRUSTED_RBP(%r11)
    mov %rcx, SPM_TD_EXIT_ADDRESS(%r11)
    mov SPM_TD_STACK_TOP_OFFSET(%r11), %rsp
    add %r10, %rsp
    xor %ebp, %ebp
    cld
    /* spm_trts_ecall(id, args, td, sim_enclu) */
    mov %rsi, %rdi
    mov %rdx, %rsi
    mov %r11, %rdx
    mov %r8, %rcx
    call spm_trts_ecall
    lea -PAGE(%rbx), %r11 /* rbx survived the call */
    movq $SPM_TD_STATE_IDLE, SPM_TD_STATE(%r11)
    mov %rax, %rsi
    mov $SPM_EXIT_RETURN, %edi
    xor %edx, %edx
    mov SPM_TD_UNTRUSTED_RSP(%r11), %rsp
    mov SPM_TD_UNTRUSTED_RSP(%r11), %rcx
    mov SPM_TD_UNTRUSTED_RBP(%r11), %rbp
    mov SPM_TD_EXIT_ADDRESS(%r11), %rbx
    mov SPM_TD_SIM_ENCLU(%r11), %rax
    jmp .Lexit

/* Claimed a TCS an import is rewriting: give the claim back (atomically:
 * the word may be ciphertext being copied in) and refuse. */
.Lecall_locked:
    mov $SPM_TD_STATE_ECALL, %eax
    mov $SPM_TD_STATE_IDLE, %r12d
    lock cmpxchg %r12, SPM_TD_STATE(%r11)
    jmp .Lrefuse_busy

.Loret:
    /* Only a thread parked in an ocall returns, and not while a checkpoint
     * froze it (CKPT_BEGIN's compare-and-swap races with this one). */
    mov $SPM_TD_STATE_OCALL, %eax
    mov $SPM_TD_STATE_ECALL, %r12d
    lock cmpxchg %r12, SPM_TD_STATE(%r11)
    jne .Loret_refused
    CHECK_LOCKED .Loret_locked
    /* Back onto the trusted stack where spm_trts_ocall_switch parked. */
    mov SPM_TD_TRUSTED_RSP(%r11), %rsp
    mov %rsi, %rax
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    cld
    ret

.Loret_locked:
    mov $SPM_TD_STATE_ECALL, %eax
    mov $SPM_TD_STATE_OCALL, %r12d
    lock cmpxchg %r12, SPM_TD_STATE(%r11)
    jmp .Lrefuse_invalid

/* rax = the state the thread was found in. Frozen by a checkpoint: the host
 * should have held this thread back; it gets its ecall back as failed, on
 * the stack it made that ecall with (the only frame a host can resume on),
 * and the enclave keeps the parked context. Anything else is nonsense. */
.Loret_refused:
    cmp $SPM_TD_STATE_FROZEN, %rax
    jne .Lrefuse_invalid
    CHECK_LOCKED .Lrefuse_invalid /* thread data being rewritten: not to be read */
    mov $-EBUSY, %rsi
    mov $SPM_EXIT_RETURN, %edi
    xor %edx, %edx
    mov %rcx, %rbx
    mov SPM_TD_UNTRUSTED_RSP(%r11), %rcx
    mov SPM_TD_UNTRUSTED_RBP(%r11), %rbp
    mov %r8, %rax
    jmp .Lexit

/* Refusals leave at once: rsp is still the host's, nothing was saved. */
.Lrefuse_shutdown:
    mov $-ESHUTDOWN, %rsi
    jmp .Lrefuse
.Lrefuse_busy:
    mov $-EBUSY, %rsi
    jmp .Lrefuse
.Lrefuse_invalid:
    mov $-EINVAL, %rsi
.Lrefuse:
    mov $SPM_EXIT_RETURN, %edi
    xor %edx, %edx
    mov %rcx, %rbx
    mov %rsp, %rcx
    mov %r8, %rax
    jmp .Lexit
    .size spm_enclave_entry, . - spm_enclave_entry

/* int64_t spm_trts_ocall_switch(uint64_t id, void *frame, uint64_t host_rsp)
 * Parks this thread's trusted context and leaves to the host with an ocall;
 * returns the ocall status when the host re-enters with ORET. */
    .globl spm_trts_ocall_switch
    .hidden spm_trts_ocall_switch
    .type spm_trts_ocall_switch, @function
spm_trts_ocall_switch:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    LOAD_TD
    mov %rsp, SPM_TD_TRUSTED_RSP(%r11)
    movq $SPM_TD_STATE_OCALL, SPM_TD_STATE(%r11)
    mov %rdx, %rsp
    mov %rsi, %rdx
    mov %rdi, %rsi
    mov $SPM_EXIT_OCALL, %edi
    mov SPM_TD_UNTRUSTED_RSP(%r11), %rcx
    mov SPM_TD_UNTRUSTED_RBP(%r11), %rbp
    mov SPM_TD_EXIT_ADDRESS(%r11), %rbx
    mov SPM_TD_SIM_ENCLU(%r11), %rax
    /* fall through */

/* Exit: rdi/rsi/rdx = results, rcx = host rsp at ecall entry, rbx = exit
 * address, rax = simulated ENCLU (0 on hardware), rsp/rbp = host's. Nothing
 * else the enclave computed may survive into host-visible registers. */
.Lexit:
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    pxor %xmm0, %xmm0
    pxor %xmm1, %xmm1
    pxor %xmm2, %xmm2
    pxor %xmm3, %xmm3
    pxor %xmm4, %xmm4
    pxor %xmm5, %xmm5
    pxor %xmm6, %xmm6
    pxor %xmm7, %xmm7
    pxor %xmm8, %xmm8
    pxor %xmm9, %xmm9
    pxor %xmm10, %xmm10
    pxor %xmm11, %xmm11
    pxor %xmm12, %xmm12
    pxor %xmm13, %xmm13
    pxor %xmm14, %xmm14
    pxor %xmm15, %xmm15
    test %rax, %rax
    jnz .Lsim_exit
    mov $4, %eax /* EEXIT */
    .byte 0x0f, 0x01, 0xd7 /* ENCLU */
    ud2
.Lsim_exit:
    xor %eax, %eax
    jmp *%rbx
    .size spm_trts_ocall_switch, . - spm_trts_ocall_switch

    .section .note.GNU-stack, "", @progbits

/* The image metadata `spm sign` fills in: not allocated, so not loaded and
 * not measured (enclave_abi.h). */
    .section .spm_meta, "", @progbits
    .zero 4096
