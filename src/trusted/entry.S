/* Enclave entry and exit. Every EENTER lands in spm_enclave_entry on the
 * untrusted stack; this code records where the host is, switches to the
 * TCS's trusted stack (ECALL) or back into a parked ocall (ORET), and leaves
 * through one exit path that scrubs every register the host can see.
 *
 * On hardware the CPU sets RBX = TCS and RCX = the address after EENTER, and
 * EEXIT is ENCLU[4]. The simulated platform passes its ENCLU entry in R8 and
 * "leaves" by jumping to RCX; the thread data records which applies, and C
 * code (trts.c) refuses a simulated ENCLU that points into ELRANGE, so a
 * hostile host on hardware can at worst make the enclave fault. */
#include "spm/abi/enclave_abi.h"

#define EBUSY 16
#define EINVAL 22

    .section .text.spm_entry, "ax", @progbits

/* r11 <- this thread's struct spm_thread_data, from GS (TCS.OGSBASGX). */
.macro LOAD_TD
    lea __ehdr_start(%rip), %r10
    mov %gs:SPM_TD_SELF_OFFSET, %r11
    add %r10, %r11
.endm

    .globl spm_enclave_entry
    .type spm_enclave_entry, @function
spm_enclave_entry:
    LOAD_TD
    cmp $SPM_ENTER_ORET, %rdi
    je .Loret
    cmp $SPM_ENTER_ECALL, %rdi
    jne .Lrefuse_invalid
    /* A TCS runs one ecall at a time; a second one (or one arriving while
     * this TCS is parked in an ocall) is refused without touching state. */
    cmpq $SPM_TD_STATE_IDLE, SPM_TD_STATE(%r11)
    jne .Lrefuse_busy
    movq $SPM_TD_STATE_ECALL, SPM_TD_STATE(%r11)
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
    LOAD_TD
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

.Loret:
    cmpq $SPM_TD_STATE_OCALL, SPM_TD_STATE(%r11)
    jne .Lrefuse_invalid
    movq $SPM_TD_STATE_ECALL, SPM_TD_STATE(%r11)
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

/* Refusals leave at once: rsp is still the host's, nothing was saved. */
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
