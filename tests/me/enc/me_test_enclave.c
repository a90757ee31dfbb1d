/* A test enclave exposing the trusted runtime's ME client one request at a
 * time (the checkpoint engine uses the same functions). Linked into the
 * same image as the runtime, it can call its hidden trts_me_* symbols. It
 * hands released keys to the host only because it is a test enclave. */
#include <errno.h>
#include <string.h>

#include "me_client.h"
#include "me_test_abi.h"
#include "spm/trts.h"

static struct trts_me_session g_session;

static int e_open(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    (void)in;
    (void)in_size;
    if (out_capacity < sizeof(uint64_t))
        return -ENOSPC;
    trts_me_close(&g_session);
    int ret = trts_me_open(&g_session);
    if (ret == 0) {
        memcpy(out, &g_session.session, sizeof(uint64_t));
        *out_size = sizeof(uint64_t);
    }
    return ret;
}

static int e_escrow(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                    size_t *out_size)
{
    (void)out;
    (void)out_capacity;
    (void)out_size;
    struct spm_me_escrow req;
    if (in_size != sizeof(req))
        return -EINVAL;
    memcpy(&req, in, sizeof(req));
    int ret = trts_me_escrow(&g_session, &req.ref, req.key);
    spm_wipe(&req, sizeof(req));
    return ret;
}

static int e_release(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                     size_t *out_size)
{
    struct spm_me_checkpoint_ref ref;
    if (in_size != sizeof(ref) || out_capacity < 32)
        return -EINVAL;
    memcpy(&ref, in, sizeof(ref));
    int ret = trts_me_release(&g_session, &ref, out);
    if (ret == 0)
        *out_size = 32;
    return ret;
}

static int e_commit(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                    size_t *out_size)
{
    (void)out;
    (void)out_capacity;
    (void)out_size;
    struct spm_me_commit req;
    if (in_size != sizeof(req))
        return -EINVAL;
    memcpy(&req, in, sizeof(req));
    return trts_me_commit(&g_session, &req.ref, req.lease);
}

static int e_cancel(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                    size_t *out_size)
{
    (void)out;
    (void)out_capacity;
    (void)out_size;
    struct spm_me_checkpoint_ref ref;
    if (in_size != sizeof(ref))
        return -EINVAL;
    memcpy(&ref, in, sizeof(ref));
    return trts_me_cancel(&g_session, &ref);
}

static int e_close(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    (void)in;
    (void)in_size;
    (void)out;
    (void)out_capacity;
    (void)out_size;
    trts_me_close(&g_session);
    return 0;
}

static int e_counter(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                     size_t *out_size)
{
    struct me_test_counter req;
    struct me_test_counter_value result;
    if (in_size != sizeof(req) || out_capacity < sizeof(result))
        return -EINVAL;
    memcpy(&req, in, sizeof(req));
    memset(&result, 0, sizeof(result));
    uint64_t value = 0;
    uint8_t tag[32] = {0};
    int ret = req.increment ? spm_counter_increment(req.id, req.tag, &value)
                            : spm_counter_read(req.id, &value, tag);
    result.value = value;
    memcpy(result.tag, tag, sizeof(tag));
    if (ret == 0) {
        memcpy(out, &result, sizeof(result));
        *out_size = sizeof(result);
    }
    return ret;
}

const struct spm_ecall_entry spm_app_ecalls[] = {
    [ME_TEST_ECALL_OPEN] = {e_open},       [ME_TEST_ECALL_ESCROW] = {e_escrow},
    [ME_TEST_ECALL_RELEASE] = {e_release}, [ME_TEST_ECALL_COMMIT] = {e_commit},
    [ME_TEST_ECALL_CANCEL] = {e_cancel},   [ME_TEST_ECALL_CLOSE] = {e_close},
    [ME_TEST_ECALL_COUNTER] = {e_counter},
};
const uint32_t spm_app_ecall_count = ME_TEST_ECALL_COUNT;
