/* The simulated EENTER. On hardware EENTER and EEXIT are ENCLU leaves; here
 * entering is a jump to TCS.OENTRY with RBX = TCS and RCX = the return
 * label, exactly the registers the CPU would set, and the enclave's exit
 * jumps back to that label.
 *
 * The enclave records the host RSP it was entered with and builds ocall
 * frames below it (up to 2 MiB of arguments). That RSP is not this thread's
 * stack but the top of an ocall area of its own (cpu.c): a frame can then
 * neither run off a small thread stack nor be overwritten while the host
 * serves it, since the host serves ocalls here on its real stack, then
 * re-enters with ORET from the area's top again. The frame struct is kept
 * at that top, so every exit finds it from RCX.
 *
 * int spm_sim_eenter(uint64_t tcs, uint64_t oentry, struct sim_enter_frame *f)
 */
#include "spm/abi/enclave_abi.h"

/* struct sim_enter_frame (cpu.c) */
#define F_RDI_IN 0
#define F_RSI_IN 8
#define F_RDX_IN 16
#define F_R8_IN 24
#define F_RDI_OUT 32
#define F_RSI_OUT 40
#define F_RDX_OUT 48
#define F_TCS 56
#define F_OENTRY 64
#define F_HOST_RSP 104
#define F_OCALL_TOP 112

    .text
    .globl spm_sim_eenter
    .hidden spm_sim_eenter
    .type spm_sim_eenter, @function
spm_sim_eenter:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    push %rdx
    mov %rdi, F_TCS(%rdx)
    mov %rsi, F_OENTRY(%rdx)
    mov %rsp, F_HOST_RSP(%rdx)
    mov %rdx, %r11
    mov F_OCALL_TOP(%r11), %rsp
    push %r11 /* the frame, at the rsp the enclave will hand back in rcx */
    mov %rdi, %rbx
    mov F_RDI_IN(%r11), %rdi
    mov F_RSI_IN(%r11), %rsi
    mov F_RDX_IN(%r11), %rdx
    mov F_R8_IN(%r11), %r8
    lea .Lreturn(%rip), %rcx
    jmp *F_OENTRY(%r11)

.Lreturn:
    cmp $SPM_EXIT_OCALL, %rdi
    je .Locall
    mov (%rcx), %r11
    mov F_HOST_RSP(%r11), %rsp
    pop %r11
    mov %rdi, F_RDI_OUT(%r11)
    mov %rsi, F_RSI_OUT(%r11)
    mov %rdx, F_RDX_OUT(%r11)
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    xor %eax, %eax
    ret

.Locall:
    /* rsp is below the ocall frame, in the ocall area; rcx is the area's
     * top, where our frame is. Serve the ocall on the host stack. */
    mov %rcx, %r12
    mov (%r12), %r11
    mov F_HOST_RSP(%r11), %rsp
    mov %r11, %rdi
    /* rsi = ocall id, rdx = ocall frame */
    call spm_sim_ocall_entry
    mov (%r12), %r11
    mov %rax, %rsi
    mov $SPM_ENTER_ORET, %edi
    xor %edx, %edx
    mov F_R8_IN(%r11), %r8
    mov F_TCS(%r11), %rbx
    mov %r12, %rsp
    lea .Lreturn(%rip), %rcx
    jmp *F_OENTRY(%r11)
    .size spm_sim_eenter, . - spm_sim_eenter

    .section .note.GNU-stack, "", @progbits
