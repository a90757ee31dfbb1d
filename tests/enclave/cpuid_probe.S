/* A freestanding image that is clean by every trusted-image rule but one:
 * it executes CPUID. "image check rejects CPUID" must fail on it. */
    .text
    .globl probe
probe:
    xor %eax, %eax
    cpuid
    ret
    .section .note.GNU-stack, "", @progbits
