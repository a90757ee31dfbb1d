/* The benchmark enclave: holds FILL's amount of pseudo-random state in its
 * heap and can tell, after a checkpoint and restore, whether every byte of
 * it came back (CHECK). Signed at benchmark time with a heap just large
 * enough for the state being measured (bench/parts), so that load and
 * rebuild times reflect an enclave sized for its data. */
#include <errno.h>
#include <string.h>

#include "bench_abi.h"
#include "spm/trts.h"

static uint64_t *g_state;
static uint64_t g_size, g_seed;

static int e_fill(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    struct bench_fill_in request;
    if (in_size != sizeof(request) || out_capacity < sizeof(struct bench_fill_out))
        return -EINVAL;
    memcpy(&request, in, sizeof(request));
    if (g_state || request.seed == 0 || request.size < 8 || request.size > BENCH_MAX_STATE)
        return -EINVAL;
    uint64_t words = request.size / 8;
    g_state = malloc(words * 8);
    if (!g_state)
        return -ENOMEM;
    g_size = words * 8;
    g_seed = request.seed;
    uint64_t x = g_seed;
    for (uint64_t i = 0; i < words; i++)
        g_state[i] = bench_stream_next(&x);
    struct bench_fill_out reply = {(uint64_t)(uintptr_t)g_state, g_size};
    memcpy(out, &reply, sizeof(reply));
    *out_size = sizeof(reply);
    return 0;
}

static int e_check(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    (void)in;
    if (in_size != 0 || out_capacity < sizeof(struct bench_check_out))
        return -EINVAL;
    struct bench_check_out reply = {0, g_size};
    uint64_t x = g_seed;
    uint64_t words = g_size / 8, i = 0;
    while (i < words && g_state[i] == bench_stream_next(&x))
        i++;
    reply.ok_bytes = i * 8;
    memcpy(out, &reply, sizeof(reply));
    *out_size = sizeof(reply);
    return reply.ok_bytes == g_size ? 0 : -EBADMSG;
}

const struct spm_ecall_entry spm_app_ecalls[] = {
    [BENCH_ECALL_FILL] = {e_fill},
    [BENCH_ECALL_CHECK] = {e_check},
};
const uint32_t spm_app_ecall_count = sizeof(spm_app_ecalls) / sizeof(spm_app_ecalls[0]);
