/* A test enclave around the Migration Enclave's quote verifier: it gets
 * quotes from its platform and verifies any bytes the host gives it with
 * me_quote_verify, linked with the same pinned provisioning root as the
 * ME, so the host test can play the attacker against the real code. */
#include <errno.h>
#include <string.h>

#include "me_quote.h"
#include "quote_test_abi.h"
#include "spm/trts.h"

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

static int verify_into(const uint8_t *quote, size_t quote_size, uint8_t *out, size_t out_capacity,
                       size_t *out_size)
{
    struct quote_test_result result;
    if (out_capacity < sizeof(result))
        return -ENOSPC;
    memset(&result, 0, sizeof(result));
    result.ret = me_quote_verify(quote, quote_size, &result.body, result.platform_id);
    memcpy(out, &result, sizeof(result));
    *out_size = sizeof(result);
    return 0;
}

static int e_verify(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                    size_t *out_size)
{
    return verify_into(in, in_size, out, out_capacity, out_size);
}

/* Verifies the same quote `count` times: the host times it without the
 * ecall's copying in each round. */
static int e_repeat(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                    size_t *out_size)
{
    uint32_t count;
    if (in_size < sizeof(count))
        return -EINVAL;
    memcpy(&count, in, sizeof(count));
    if (count == 0)
        return -EINVAL;
    for (uint32_t i = 1; i < count; i++) {
        struct sgx_report_body body;
        uint8_t platform_id[32];
        int ret = me_quote_verify(in + 4, in_size - 4, &body, platform_id);
        if (ret < 0)
            return ret;
    }
    return verify_into(in + 4, in_size - 4, out, out_capacity, out_size);
}

const struct spm_ecall_entry spm_app_ecalls[] = {
    [QUOTE_TEST_ECALL_QUOTE] = {e_quote},
    [QUOTE_TEST_ECALL_VERIFY] = {e_verify},
    [QUOTE_TEST_ECALL_REPEAT] = {e_repeat},
};
const uint32_t spm_app_ecall_count = sizeof(spm_app_ecalls) / sizeof(spm_app_ecalls[0]);
