/* A test enclave that exposes each trusted runtime API as an ecall, so the
 * host-side tests can drive the runtime and the simulated CPU from outside,
 * as an attacker or a caller would. It returns keys to the host only
 * because it is a test enclave. */
#include <errno.h>
#include <string.h>

#include "spm/trts.h"
#include "basic_abi.h"

static int e_echo(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    if (in_size > out_capacity)
        return -ENOSPC;
    memcpy(out, in, in_size);
    *out_size = in_size;
    return 0;
}

static struct spm_spinlock g_lock;
static uint64_t g_counter;
static volatile int g_inside, g_max_inside;

/* Records the most threads seen inside the enclave at once. */
static void enter(void)
{
    int now = __atomic_add_fetch(&g_inside, 1, __ATOMIC_SEQ_CST);
    int seen = g_max_inside;
    while (now > seen && !__atomic_compare_exchange_n(&g_max_inside, &seen, now, false,
                                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
}

static void leave(void)
{
    __atomic_sub_fetch(&g_inside, 1, __ATOMIC_SEQ_CST);
}

/* Counts calls; holds the thread inside for a while so concurrent callers
 * overlap. */
static int e_count(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    uint64_t spins = 0;
    if (in_size == sizeof(spins))
        memcpy(&spins, in, sizeof(spins));
    enter();
    for (volatile uint64_t i = 0; i < spins; i++)
        ;
    spm_spin_lock(&g_lock);
    uint64_t value = ++g_counter;
    spm_spin_unlock(&g_lock);
    leave();
    struct basic_count_result r = {value, (uint64_t)g_max_inside};
    if (out_capacity < sizeof(r))
        return -ENOSPC;
    memcpy(out, &r, sizeof(r));
    *out_size = sizeof(r);
    return 0;
}

static int e_report(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                    size_t *out_size)
{
    struct basic_report_request req;
    if (in_size != sizeof(req) || out_capacity < sizeof(struct sgx_report))
        return -EINVAL;
    memcpy(&req, in, sizeof(req));
    int ret = spm_create_report(&req.target, req.report_data, (struct sgx_report *)out);
    if (ret == 0)
        *out_size = sizeof(struct sgx_report);
    return ret;
}

static int e_verify_report(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                           size_t *out_size)
{
    (void)out;
    (void)out_capacity;
    (void)out_size;
    struct sgx_report report;
    if (in_size != sizeof(report))
        return -EINVAL;
    memcpy(&report, in, sizeof(report));
    return spm_verify_report(&report);
}

static int e_target_info(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                         size_t *out_size)
{
    (void)in;
    (void)in_size;
    if (out_capacity < sizeof(struct sgx_target_info))
        return -ENOSPC;
    int ret = spm_self_target_info((struct sgx_target_info *)out);
    if (ret == 0)
        *out_size = sizeof(struct sgx_target_info);
    return ret;
}

static int e_seal(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    uint16_t policy;
    if (in_size < sizeof(policy))
        return -EINVAL;
    memcpy(&policy, in, sizeof(policy));
    static const char aad[] = "basic-aad";
    size_t need = spm_sealed_size(in_size - 2, sizeof(aad));
    if (need == 0 || need > out_capacity)
        return -ENOSPC;
    int ret = spm_seal(policy, aad, sizeof(aad), in + 2, in_size - 2, out, need);
    if (ret == 0)
        *out_size = need;
    return ret;
}

static int e_unseal(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                    size_t *out_size)
{
    const uint8_t *aad;
    size_t aad_size;
    return spm_unseal(in, in_size, out, out_capacity, out_size, &aad, &aad_size);
}

static int e_get_key(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                     size_t *out_size)
{
    struct sgx_key_request request;
    if (in_size != sizeof(request) || out_capacity < 16)
        return -EINVAL;
    memcpy(&request, in, sizeof(request));
    int ret = spm_get_key(&request, out);
    if (ret == 0)
        *out_size = 16;
    return ret;
}

static int e_quote(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    if (in_size != 64)
        return -EINVAL;
    uint8_t *quote;
    size_t quote_size;
    int ret = spm_get_quote(in, &quote, &quote_size);
    if (ret < 0)
        return ret;
    if (quote_size > out_capacity) {
        free(quote);
        return -ENOSPC;
    }
    memcpy(out, quote, quote_size);
    *out_size = quote_size;
    free(quote);
    return 0;
}

/* Asks host ocall 0 for up to `capacity` bytes and returns what came back:
 * the host may lie about the size, which the runtime must refuse. */
static int e_ocall_echo(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                        size_t *out_size)
{
    uint64_t capacity;
    if (in_size < sizeof(capacity))
        return -EINVAL;
    memcpy(&capacity, in, sizeof(capacity));
    if (capacity > out_capacity)
        return -ENOSPC;
    return spm_ocall(BASIC_OCALL_ECHO, in + 8, in_size - 8, out, capacity, out_size);
}

/* Allocates, fills, checks and frees blocks of many sizes; returns the heap
 * in use afterwards (it must return to where it started). */
static int e_heap(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    (void)in;
    (void)in_size;
    enum { N = 256 };
    static uint8_t *blocks[N];
    size_t before, after, total;
    spm_heap_stats(&before, &total);
    uint32_t x = 12345;
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < N; i++) {
            x = x * 1103515245u + 12345u;
            size_t size = 2 + (x >> 8) % (i % 4 == 0 ? 12000 : 900);
            blocks[i] = malloc(size);
            if (!blocks[i])
                return -ENOMEM;
            memset(blocks[i], (uint8_t)i, size);
            blocks[i][size - 1] = (uint8_t)(i ^ 0x5a);
            blocks[i] = realloc(blocks[i], size); /* same size: must keep contents */
            if (blocks[i][0] != (uint8_t)i || blocks[i][size - 1] != (uint8_t)(i ^ 0x5a))
                return -EBADMSG;
        }
        for (int i = round % 2; i < N; i += 2)
            free(blocks[i]);
        for (int i = 1 - round % 2; i < N; i += 2)
            free(blocks[i]);
    }
    spm_heap_stats(&after, &total);
    if (out_capacity < 16)
        return -ENOSPC;
    uint64_t r[2] = {before, after};
    memcpy(out, r, sizeof(r));
    *out_size = sizeof(r);
    return 0;
}

static uint8_t g_private_key[32], g_public_key[65];

static int e_ecdsa(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    if (out_capacity < 65 + 64)
        return -ENOSPC;
    if (g_public_key[0] != 4 && spm_ecdsa_p256_keygen(g_private_key, g_public_key) < 0)
        return -EIO;
    memcpy(out, g_public_key, 65);
    int ret = spm_ecdsa_p256_sign(g_private_key, in, in_size, out + 65);
    if (ret == 0 && !spm_ecdsa_p256_verify(g_public_key, in, in_size, out + 65))
        ret = -EBADMSG;
    if (ret == 0)
        *out_size = 65 + 64;
    return ret;
}

/* Parks this thread in a host ocall (holding its TCS) until the host lets
 * it go: the host can then hold every TCS busy for as long as it likes. */
static int e_park(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    (void)in;
    (void)in_size;
    (void)out;
    (void)out_capacity;
    (void)out_size;
    enter();
    size_t n;
    int ret = spm_ocall(BASIC_OCALL_PARK, NULL, 0, NULL, 0, &n);
    leave();
    return ret;
}

static int e_self_report(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                         size_t *out_size)
{
    (void)in;
    (void)in_size;
    if (out_capacity < sizeof(struct sgx_report_body))
        return -ENOSPC;
    int ret = spm_self_report_body((struct sgx_report_body *)out);
    if (ret == 0)
        *out_size = sizeof(struct sgx_report_body);
    return ret;
}

static int e_random(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                    size_t *out_size)
{
    (void)in;
    (void)in_size;
    size_t n = out_capacity < 64 ? out_capacity : 64;
    int ret = spm_random(out, n);
    if (ret == 0)
        *out_size = n;
    return ret;
}

const struct spm_ecall_entry spm_app_ecalls[] = {
    [BASIC_ECALL_ECHO] = {e_echo},
    [BASIC_ECALL_COUNT] = {e_count},
    [BASIC_ECALL_REPORT] = {e_report},
    [BASIC_ECALL_VERIFY_REPORT] = {e_verify_report},
    [BASIC_ECALL_TARGET_INFO] = {e_target_info},
    [BASIC_ECALL_SEAL] = {e_seal},
    [BASIC_ECALL_UNSEAL] = {e_unseal},
    [BASIC_ECALL_GET_KEY] = {e_get_key},
    [BASIC_ECALL_QUOTE] = {e_quote},
    [BASIC_ECALL_OCALL_ECHO] = {e_ocall_echo},
    [BASIC_ECALL_HEAP] = {e_heap},
    [BASIC_ECALL_ECDSA] = {e_ecdsa},
    [BASIC_ECALL_SELF_REPORT] = {e_self_report},
    [BASIC_ECALL_RANDOM] = {e_random},
    [BASIC_ECALL_PARK] = {e_park},
};
const uint32_t spm_app_ecall_count = sizeof(spm_app_ecalls) / sizeof(spm_app_ecalls[0]);
