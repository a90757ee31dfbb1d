/* Ecall ids and argument structs of the benchmark enclave: an enclave
 * whose only job is to hold a given amount of state, so that checkpoint,
 * restore and load can be timed against the bytes SPM must protect. The
 * state is a pseudo-random stream expanded inside the enclave from a seed
 * (xorshift64*: cheap, so filling 256 MiB does not dominate a run, and
 * never a run of zero pages the engine or CRIU could treat specially). */
#ifndef SPM_BENCH_ABI_H
#define SPM_BENCH_ABI_H

#include <stdint.h>

/* The largest state one FILL may ask for; the enclave must be signed with
 * a heap of at least the state plus BENCH_HEAP_MARGIN. */
#define BENCH_MAX_STATE   (16ull << 30)
#define BENCH_HEAP_MARGIN (1ull << 20)

enum bench_ecall {
    BENCH_ECALL_FILL,  /* in: struct bench_fill_in; out: struct bench_fill_out */
    BENCH_ECALL_CHECK, /* in: none; out: struct bench_check_out */
};

struct bench_fill_in {
    uint64_t size; /* bytes of heap to allocate and fill; once per enclave */
    uint64_t seed; /* non-zero */
} __attribute__((packed));

struct bench_fill_out {
    uint64_t address; /* where the state lives inside ELRANGE */
    uint64_t size;
} __attribute__((packed));

/* ok_bytes: bytes that still hold the stream, before the first mismatch. */
struct bench_check_out {
    uint64_t ok_bytes;
    uint64_t size;
} __attribute__((packed));

_Static_assert(sizeof(struct bench_fill_in) == 16, "fill in");
_Static_assert(sizeof(struct bench_fill_out) == 16, "fill out");
_Static_assert(sizeof(struct bench_check_out) == 16, "check out");

/* The stream both sides agree on: word i of the state is the i-th output
 * of xorshift64* started from the seed. */
static inline uint64_t bench_stream_next(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1Dull;
}

#endif
