/* Ecall/ocall ids and the secret-expansion rule of the checkpoint test
 * enclave. The secret bytes are expanded inside the enclave from a seed the
 * host sends; the scanner (scan_secrets.c) expands the same bytes with
 * OpenSSL to look for them in files. Region r of the secret is the
 * concatenation of 32-byte blocks
 *     block[i] = SHA-256(seed[32] || tag_r || le64(i))      i = 0, 1, ...
 * truncated to the region's size, with tag_r one ASCII byte:
 *     'H' heap buffer, 'G' a global array, 'S' a parked thread's stack. */
#ifndef SPM_TEST_CR_ABI_H
#define SPM_TEST_CR_ABI_H

#include <stdint.h>

#define CR_SEED_SIZE         32u
#define CR_TAG_HEAP          'H'
#define CR_TAG_GLOBALS       'G'
#define CR_TAG_STACK         'S'
#define CR_GLOBALS_SIZE      (64u << 10)
#define CR_STACK_SECRET_SIZE (16u << 10)
#define CR_MAX_HEAP_SECRET   (256ull << 20)

enum cr_ecall {
    CR_ECALL_FILL,  /* in: struct cr_fill_in; out: struct cr_fill_out */
    CR_ECALL_CHECK, /* in: none; out: struct cr_check_out */
    CR_ECALL_PARK,  /* in: none; parks in CR_OCALL_PARK; out: struct cr_park_out */
    CR_ECALL_COUNT, /* in: none; out: uint64_t, an in-enclave counter after ++ */
};

enum cr_ocall {
    CR_OCALL_PARK, /* blocks on the host until the host lets it return */
};

struct cr_fill_in {
    uint8_t seed[CR_SEED_SIZE];
    uint64_t heap_size;
} __attribute__((packed));

struct cr_fill_out {
    uint64_t heap_address; /* where the heap secret lives (inside ELRANGE) */
    uint64_t globals_address;
} __attribute__((packed));

/* Byte counts that matched; mismatch_offset is the first bad byte of the
 * first region that did not match, or UINT64_MAX. */
struct cr_check_out {
    uint64_t heap_ok_bytes;
    uint64_t globals_ok_bytes;
    uint64_t mismatch_offset;
    uint64_t heap_address;
} __attribute__((packed));

struct cr_park_out {
    uint64_t stack_ok_bytes;
    uint64_t stack_address; /* where the stack secret lived */
    int64_t ocall_status;
} __attribute__((packed));

_Static_assert(sizeof(struct cr_fill_in) == 40, "fill in");
_Static_assert(sizeof(struct cr_fill_out) == 16, "fill out");
_Static_assert(sizeof(struct cr_check_out) == 32, "check out");
_Static_assert(sizeof(struct cr_park_out) == 24, "park out");

#endif
