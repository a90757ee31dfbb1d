/* Ecall/ocall ids and argument structs of the checkpoint test enclave. */
#ifndef SPM_TEST_CKPT_ABI_H
#define SPM_TEST_CKPT_ABI_H

#include <stdint.h>

enum ckpt_test_ecall {
    CKPT_TEST_FILL,       /* in: struct ckpt_test_fill; out: struct ckpt_test_where */
    CKPT_TEST_CHECK,      /* out: struct ckpt_test_check; -EBADMSG if anything changed */
    CKPT_TEST_PARK,       /* parks in CKPT_TEST_OCALL_PARK with a secret on its stack */
    CKPT_TEST_COUNT,      /* out: u64, a counter in .bss incremented by every call */
    CKPT_TEST_HIGH_WATER, /* out: u64, the allocator's high-water mark (absolute) */
};

enum ckpt_test_ocall {
    CKPT_TEST_OCALL_PARK,
};

#define CKPT_TEST_GLOBALS_SIZE (64u << 10)
#define CKPT_TEST_STACK_SECRET (4u << 10)

/* The secrets are a xorshift64* stream from the seed, so the host can
 * compute them too and look for them in the image. */
struct ckpt_test_fill {
    uint64_t seed;
    uint64_t heap_size;
} __attribute__((packed));

struct ckpt_test_where {
    uint64_t heap;
    uint64_t globals;
} __attribute__((packed));

struct ckpt_test_check {
    uint64_t heap_bytes;
    uint64_t globals_bytes;
} __attribute__((packed));

/* Stream i of seed s: the heap is stream 1, the globals stream 2, a parked
 * thread's stack stream 3. Generated 8 bytes at a time. */
static inline uint64_t ckpt_test_stream_start(uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0x9e3779b97f4a7c15ull);
    return x ? x : 1;
}

static inline uint64_t ckpt_test_stream_next(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dull;
}

#endif
