/* The checkpoint test enclave: it holds secret bytes in the three places a
 * checkpoint must carry — a heap buffer, a global array and the stack of a
 * thread parked in an ocall — expanded inside the enclave from a seed (see
 * cr_abi.h), so the host never holds them and a scanner can recompute them.
 * After a restore, CHECK re-expands and compares heap and globals, and a
 * parked thread, once it returns from its ocall, compares its own stack. */
#include <errno.h>
#include <string.h>

#include "cr_abi.h"
#include "spm/trts.h"

static uint8_t g_seed[CR_SEED_SIZE];
static int g_filled;
static uint8_t *g_heap;
static uint64_t g_heap_size;
static uint8_t g_globals[CR_GLOBALS_SIZE];
static uint64_t g_counter;

static void block(uint8_t tag, uint64_t index, uint8_t digest[32])
{
    uint8_t in[CR_SEED_SIZE + 1 + 8];
    memcpy(in, g_seed, CR_SEED_SIZE);
    in[CR_SEED_SIZE] = tag;
    for (int i = 0; i < 8; i++)
        in[CR_SEED_SIZE + 1 + i] = (uint8_t)(index >> (8 * i));
    spm_sha256(in, sizeof(in), digest);
    spm_wipe(in, sizeof(in));
}

/* Writes region `tag` of the secret into buf. noinline plus the barrier keep
 * the compiler from dropping stores to a stack buffer it thinks is dead. */
static __attribute__((noinline)) void expand(uint8_t tag, uint8_t *buf, uint64_t size)
{
    uint8_t digest[32];
    for (uint64_t offset = 0, i = 0; offset < size; offset += 32, i++) {
        block(tag, i, digest);
        uint64_t n = size - offset < 32 ? size - offset : 32;
        memcpy(buf + offset, digest, n);
    }
    spm_wipe(digest, sizeof(digest));
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* Bytes of buf that match region `tag` before the first mismatch. */
static __attribute__((noinline)) uint64_t compare(uint8_t tag, const uint8_t *buf, uint64_t size)
{
    uint8_t digest[32];
    __asm__ volatile("" : : "r"(buf) : "memory");
    uint64_t offset = 0;
    for (uint64_t i = 0; offset < size; i++) {
        block(tag, i, digest);
        uint64_t n = size - offset < 32 ? size - offset : 32;
        for (uint64_t j = 0; j < n; j++, offset++)
            if (buf[offset] != digest[j])
                goto out;
    }
out:
    spm_wipe(digest, sizeof(digest));
    return offset;
}

static int e_fill(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    struct cr_fill_in request;
    if (in_size != sizeof(request) || out_capacity < sizeof(struct cr_fill_out))
        return -EINVAL;
    memcpy(&request, in, sizeof(request));
    if (request.heap_size == 0 || request.heap_size > CR_MAX_HEAP_SECRET)
        return -EINVAL;
    if (g_filled)
        return -EEXIST;
    g_heap = malloc(request.heap_size);
    if (!g_heap)
        return -ENOMEM;
    memcpy(g_seed, request.seed, CR_SEED_SIZE);
    g_heap_size = request.heap_size;
    expand(CR_TAG_HEAP, g_heap, g_heap_size);
    expand(CR_TAG_GLOBALS, g_globals, sizeof(g_globals));
    g_filled = 1;
    struct cr_fill_out reply = {(uint64_t)(uintptr_t)g_heap, (uint64_t)(uintptr_t)g_globals};
    memcpy(out, &reply, sizeof(reply));
    *out_size = sizeof(reply);
    return 0;
}

static int e_check(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    (void)in;
    if (in_size != 0 || out_capacity < sizeof(struct cr_check_out))
        return -EINVAL;
    if (!g_filled)
        return -ENODATA;
    struct cr_check_out reply = {0, 0, UINT64_MAX, (uint64_t)(uintptr_t)g_heap};
    reply.heap_ok_bytes = compare(CR_TAG_HEAP, g_heap, g_heap_size);
    reply.globals_ok_bytes = compare(CR_TAG_GLOBALS, g_globals, sizeof(g_globals));
    if (reply.heap_ok_bytes != g_heap_size)
        reply.mismatch_offset = reply.heap_ok_bytes;
    else if (reply.globals_ok_bytes != sizeof(g_globals))
        reply.mismatch_offset = reply.globals_ok_bytes;
    memcpy(out, &reply, sizeof(reply));
    *out_size = sizeof(reply);
    return reply.mismatch_offset == UINT64_MAX ? 0 : -EBADMSG;
}

/* Fills a stack array with region 'S', parks in the host, and on return
 * checks the array: it must have come back intact, at the same address,
 * in whatever enclave this thread returned into. */
static int e_park(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    (void)in;
    if (in_size != 0 || out_capacity < sizeof(struct cr_park_out))
        return -EINVAL;
    if (!g_filled)
        return -ENODATA;
    uint8_t stack_secret[CR_STACK_SECRET_SIZE];
    expand(CR_TAG_STACK, stack_secret, sizeof(stack_secret));
    size_t n = 0;
    int status = spm_ocall(CR_OCALL_PARK, NULL, 0, NULL, 0, &n);
    struct cr_park_out reply = {0, (uint64_t)(uintptr_t)stack_secret, status};
    reply.stack_ok_bytes = compare(CR_TAG_STACK, stack_secret, sizeof(stack_secret));
    spm_wipe(stack_secret, sizeof(stack_secret));
    memcpy(out, &reply, sizeof(reply));
    *out_size = sizeof(reply);
    if (status != 0)
        return status;
    return reply.stack_ok_bytes == sizeof(stack_secret) ? 0 : -EBADMSG;
}

static int e_count(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    (void)in;
    (void)in_size;
    if (out_capacity < sizeof(uint64_t))
        return -EINVAL;
    uint64_t value = __atomic_add_fetch(&g_counter, 1, __ATOMIC_SEQ_CST);
    memcpy(out, &value, sizeof(value));
    *out_size = sizeof(value);
    return 0;
}

const struct spm_ecall_entry spm_app_ecalls[] = {
    [CR_ECALL_FILL] = {e_fill},
    [CR_ECALL_CHECK] = {e_check},
    [CR_ECALL_PARK] = {e_park},
    [CR_ECALL_COUNT] = {e_count},
};
const uint32_t spm_app_ecall_count = sizeof(spm_app_ecalls) / sizeof(spm_app_ecalls[0]);
