/* The checkpoint test enclave: holds secrets the host can compute (in the
 * heap, in .bss, on a parked thread's stack) and checks them after a
 * checkpoint was aborted or restored. It has no checkpoint code of its own:
 * the runtime's engine does everything. */
#include <errno.h>
#include <string.h>

#include "ckpt_test_abi.h"
#include "spm/trts.h"

/* The runtime's allocator high-water mark (hidden in the runtime, but this
 * enclave is linked with it): the engine captures the heap up to it. */
uint64_t trts_heap_high_water(void);

static uint8_t g_globals[CKPT_TEST_GLOBALS_SIZE];
static struct {
    uint64_t seed;
    uint8_t *heap;
    uint64_t heap_size;
    uint64_t count;
} g_state;

static void fill(uint8_t *p, uint64_t size, uint64_t seed, uint64_t stream)
{
    uint64_t x = ckpt_test_stream_start(seed, stream);
    for (uint64_t i = 0; i < size; i += 8) {
        uint64_t v = ckpt_test_stream_next(&x);
        memcpy(p + i, &v, size - i < 8 ? size - i : 8);
    }
}

/* Bytes of p that match the stream before the first difference. */
static uint64_t matching(const uint8_t *p, uint64_t size, uint64_t seed, uint64_t stream)
{
    uint64_t x = ckpt_test_stream_start(seed, stream);
    for (uint64_t i = 0; i < size; i += 8) {
        uint64_t v = ckpt_test_stream_next(&x);
        if (memcmp(p + i, &v, size - i < 8 ? size - i : 8) != 0)
            return i;
    }
    return size;
}

static int e_fill(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    struct ckpt_test_fill f;
    if (in_size != sizeof(f) || out_capacity < sizeof(struct ckpt_test_where))
        return -EINVAL;
    memcpy(&f, in, sizeof(f));
    free(g_state.heap);
    g_state.heap = f.heap_size ? malloc(f.heap_size) : NULL;
    if (f.heap_size && !g_state.heap)
        return -ENOMEM;
    g_state.seed = f.seed;
    g_state.heap_size = f.heap_size;
    fill(g_state.heap, f.heap_size, f.seed, 1);
    fill(g_globals, sizeof(g_globals), f.seed, 2);
    struct ckpt_test_where w = {(uint64_t)g_state.heap, (uint64_t)g_globals};
    memcpy(out, &w, sizeof(w));
    *out_size = sizeof(w);
    return 0;
}

static int e_check(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    (void)in;
    (void)in_size;
    if (out_capacity < sizeof(struct ckpt_test_check))
        return -EINVAL;
    struct ckpt_test_check c = {
        .heap_bytes = matching(g_state.heap, g_state.heap_size, g_state.seed, 1),
        .globals_bytes = matching(g_globals, sizeof(g_globals), g_state.seed, 2),
    };
    memcpy(out, &c, sizeof(c));
    *out_size = sizeof(c);
    return c.heap_bytes == g_state.heap_size && c.globals_bytes == sizeof(g_globals) ? 0 : -EBADMSG;
}

static int e_park(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    (void)in;
    (void)in_size;
    (void)out;
    (void)out_capacity;
    *out_size = 0;
    /* volatile: the secret must really be on this stack while parked */
    volatile uint8_t secret[CKPT_TEST_STACK_SECRET];
    fill((uint8_t *)secret, sizeof(secret), g_state.seed, 3);
    size_t n;
    int ret = spm_ocall(CKPT_TEST_OCALL_PARK, NULL, 0, NULL, 0, &n);
    if (ret < 0)
        return ret;
    return matching((const uint8_t *)secret, sizeof(secret), g_state.seed, 3) == sizeof(secret)
               ? 0
               : -EBADMSG;
}

static int e_count(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    (void)in;
    (void)in_size;
    if (out_capacity < 8)
        return -EINVAL;
    uint64_t v = __atomic_add_fetch(&g_state.count, 1, __ATOMIC_SEQ_CST);
    memcpy(out, &v, 8);
    *out_size = 8;
    return 0;
}

static int e_high_water(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                        size_t *out_size)
{
    (void)in;
    (void)in_size;
    if (out_capacity < 8)
        return -EINVAL;
    uint64_t v = trts_heap_high_water();
    memcpy(out, &v, 8);
    *out_size = 8;
    return 0;
}

const struct spm_ecall_entry spm_app_ecalls[] = {
    [CKPT_TEST_FILL] = {e_fill},
    [CKPT_TEST_CHECK] = {e_check},
    [CKPT_TEST_PARK] = {e_park},
    [CKPT_TEST_COUNT] = {e_count},
    [CKPT_TEST_HIGH_WATER] = {e_high_water},
};
const uint32_t spm_app_ecall_count = sizeof(spm_app_ecalls) / sizeof(spm_app_ecalls[0]);
