/* The enclave's view of the CPU: reports (local attestation), keys, sealing
 * in the SDK's sealed-data layout, quotes through the platform's quoting
 * service, randomness, and the platform's monotonic counters. ENCLU
 * operands must be aligned as the SDM says (512 B for TARGETINFO/REPORT/
 * KEYREQUEST, 128 B for REPORTDATA, 16 B for keys), so every call goes
 * through aligned local copies. */
#include "trts_internal.h"

#include <string.h>

#include "crypto/crypto.h"

struct aligned_report_request {
    struct sgx_target_info target __attribute__((aligned(512)));
    uint8_t report_data[64] __attribute__((aligned(128)));
    struct sgx_report report __attribute__((aligned(512)));
};

int spm_create_report(const struct sgx_target_info *target, const uint8_t report_data[64],
                      struct sgx_report *report)
{
    struct aligned_report_request r;
    if (target)
        memcpy(&r.target, target, sizeof(r.target));
    else
        memset(&r.target, 0, sizeof(r.target));
    if (report_data)
        memcpy(r.report_data, report_data, 64);
    else
        memset(r.report_data, 0, 64);
    uint64_t rax = trts_enclu(SGX_ENCLU_EREPORT, (uint64_t)&r.target, (uint64_t)r.report_data,
                              (uint64_t)&r.report);
    if (rax != 0)
        return -EIO;
    memcpy(report, &r.report, sizeof(*report));
    return 0;
}

int spm_get_key(const struct sgx_key_request *request, uint8_t key[16])
{
    struct {
        struct sgx_key_request request __attribute__((aligned(512)));
        uint8_t key[16] __attribute__((aligned(16)));
    } k;
    memcpy(&k.request, request, sizeof(k.request));
    uint64_t rax = trts_enclu(SGX_ENCLU_EGETKEY, (uint64_t)&k.request, (uint64_t)k.key, 0);
    if (rax != 0) {
        spm_wipe(k.key, sizeof(k.key));
        return -EPERM;
    }
    memcpy(key, k.key, 16);
    spm_wipe(k.key, sizeof(k.key));
    return 0;
}

int spm_self_report_body(struct sgx_report_body *body)
{
    struct sgx_report report;
    int ret = spm_create_report(NULL, NULL, &report);
    if (ret == 0)
        memcpy(body, &report.body, sizeof(*body));
    return ret;
}

int spm_self_target_info(struct sgx_target_info *target)
{
    struct sgx_report_body body;
    int ret = spm_self_report_body(&body);
    if (ret < 0)
        return ret;
    memset(target, 0, sizeof(*target));
    memcpy(target->mr_enclave, body.mr_enclave, sizeof(target->mr_enclave));
    target->attributes = body.attributes;
    target->config_svn = body.config_svn;
    target->misc_select = body.misc_select;
    memcpy(target->config_id, body.config_id, sizeof(target->config_id));
    return 0;
}

int spm_verify_report(const struct sgx_report *report)
{
    struct sgx_key_request request;
    memset(&request, 0, sizeof(request));
    request.key_name = SGX_KEYSELECT_REPORT;
    memcpy(request.key_id, report->key_id, sizeof(request.key_id));
    uint8_t key[16], mac[16];
    int ret = spm_get_key(&request, key);
    if (ret < 0)
        return ret;
    tc_aes128_cmac(key, &report->body, sizeof(report->body), mac);
    spm_wipe(key, sizeof(key));
    return spm_ct_equal(mac, report->mac, sizeof(mac)) ? -EKEYREJECTED : 0;
}

/* ---- Randomness ---- */

static bool rdrand64(uint64_t *out)
{
    for (int i = 0; i < 10; i++) {
        unsigned char ok;
        __asm__ volatile("rdrand %0; setc %1" : "=r"(*out), "=qm"(ok) : : "cc");
        if (ok)
            return true;
    }
    return false;
}

/* Seeds this incarnation's DRBG from RDRAND on first use. Called with
 * drbg_lock held. */
static int drbg_ready_locked(struct trts_incarnation *inc)
{
    if (inc->drbg_ready)
        return 0;
    uint64_t seed[6];
    for (size_t i = 0; i < 6; i++) {
        if (!rdrand64(&seed[i])) {
            spm_wipe(seed, sizeof(seed));
            return -EIO;
        }
    }
    tc_drbg_init(inc->drbg, seed, sizeof(seed));
    spm_wipe(seed, sizeof(seed));
    inc->drbg_ready = 1;
    return 0;
}

int spm_random(void *out, size_t size)
{
    struct trts_incarnation *inc = trts_incarnation();
    spm_spin_lock(&inc->drbg_lock);
    int ret = drbg_ready_locked(inc);
    if (ret == 0)
        tc_drbg_generate(inc->drbg, out, size);
    spm_spin_unlock(&inc->drbg_lock);
    return ret;
}

/* ---- Sealing ---- */

#define SEAL_ATTRIBUTE_MASK_FLAGS 0xFF0000000000000Bull
#define SEAL_MISC_MASK            0xF0000000u

size_t spm_sealed_size(size_t text_size, size_t aad_size)
{
    size_t payload = text_size + aad_size;
    if (payload < text_size || payload > UINT32_MAX ||
        payload + sizeof(struct sgx_sealed_data) < payload)
        return 0;
    return sizeof(struct sgx_sealed_data) + payload;
}

int spm_seal(uint16_t key_policy, const void *aad, size_t aad_size, const void *text,
             size_t text_size, void *sealed_out, size_t sealed_size)
{
    size_t need = spm_sealed_size(text_size, aad_size);
    if (need == 0 || sealed_size < need)
        return -EINVAL;
    if (!(key_policy & (SGX_KEYPOLICY_MRENCLAVE | SGX_KEYPOLICY_MRSIGNER)) ||
        (key_policy & ~(SGX_KEYPOLICY_MRENCLAVE | SGX_KEYPOLICY_MRSIGNER)))
        return -EINVAL;
    struct sgx_report_body self;
    int ret = spm_self_report_body(&self);
    if (ret < 0)
        return ret;
    struct sgx_sealed_data *sealed = sealed_out;
    memset(sealed, 0, sizeof(*sealed));
    struct sgx_key_request *kr = &sealed->key_request;
    kr->key_name = SGX_KEYSELECT_SEAL;
    kr->key_policy = key_policy;
    kr->isv_svn = self.isv_svn;
    kr->config_svn = self.config_svn;
    memcpy(kr->cpu_svn, self.cpu_svn, sizeof(kr->cpu_svn));
    kr->attribute_mask.flags = SEAL_ATTRIBUTE_MASK_FLAGS;
    kr->attribute_mask.xfrm = 0;
    kr->misc_mask = SEAL_MISC_MASK;
    if ((ret = spm_random(kr->key_id, sizeof(kr->key_id))) < 0)
        return ret;
    uint8_t key[16];
    if ((ret = spm_get_key(kr, key)) < 0)
        return ret;
    sealed->plain_text_offset = (uint32_t)text_size;
    sealed->payload_size = (uint32_t)(text_size + aad_size);
    memmove(sealed->payload, text, text_size);
    if (aad_size)
        memcpy(sealed->payload + text_size, aad, aad_size);
    static const uint8_t zero_iv[12];
    ret = tc_aes_gcm(key, 16, zero_iv, sizeof(zero_iv), sealed->payload + text_size, aad_size,
                     sealed->payload, text_size, true, sealed->tag);
    spm_wipe(key, sizeof(key));
    return ret;
}

int spm_unseal(const void *sealed_in, size_t sealed_size, void *text, size_t text_capacity,
               size_t *text_size, const uint8_t **aad, size_t *aad_size)
{
    const struct sgx_sealed_data *sealed = sealed_in;
    if (sealed_size < sizeof(*sealed))
        return -EBADMSG;
    uint32_t payload = sealed->payload_size, text_len = sealed->plain_text_offset;
    if (text_len > payload || sealed_size - sizeof(*sealed) != payload)
        return -EBADMSG;
    if (text_capacity < text_len)
        return -ENOSPC;
    if (sealed->key_request.key_name != SGX_KEYSELECT_SEAL)
        return -EBADMSG;
    /* Reserved header bytes are not covered by the tag: insist they are zero
     * so that no bit of a sealed blob can change unnoticed. */
    static const uint8_t zero[12];
    if (memcmp(sealed->reserved1, zero, sizeof(zero)) != 0 ||
        memcmp(sealed->reserved2, zero, sizeof(zero)) != 0)
        return -EBADMSG;
    uint8_t key[16];
    int ret = spm_get_key(&sealed->key_request, key);
    if (ret < 0)
        return -EBADMSG;
    uint8_t tag[16];
    memcpy(tag, sealed->tag, sizeof(tag));
    memmove(text, sealed->payload, text_len);
    static const uint8_t zero_iv[12];
    ret = tc_aes_gcm(key, 16, zero_iv, sizeof(zero_iv), sealed->payload + text_len,
                     payload - text_len, text, text_len, false, tag);
    spm_wipe(key, sizeof(key));
    if (ret < 0) {
        spm_wipe(text, text_len);
        return -EBADMSG;
    }
    *text_size = text_len;
    if (aad)
        *aad = sealed->payload + text_len;
    if (aad_size)
        *aad_size = payload - text_len;
    return 0;
}

/* ---- Quotes ---- */

#define QUOTE_MAX_SIZE (16u << 10)

int spm_get_quote(const uint8_t report_data[64], uint8_t **quote_out, size_t *quote_size)
{
    struct sgx_target_info qe;
    size_t size = 0;
    int ret = spm_ocall(SPM_RT_OCALL_QE_TARGET_INFO, NULL, 0, &qe, sizeof(qe), &size);
    if (ret < 0)
        return ret;
    if (size != sizeof(qe))
        return -EPROTO;
    struct sgx_report report;
    if ((ret = spm_create_report(&qe, report_data, &report)) < 0)
        return ret;
    uint8_t *quote = malloc(QUOTE_MAX_SIZE);
    if (!quote)
        return -ENOMEM;
    ret = spm_ocall(SPM_RT_OCALL_QUOTE, &report, sizeof(report), quote, QUOTE_MAX_SIZE, &size);
    /* The quote must carry exactly the report we made; the platform's
     * signature over it is for the relying party to check. */
    if (ret == 0 &&
        (size < sizeof(struct sgx_quote) ||
         memcmp(&((struct sgx_quote *)quote)->report_body, &report.body, sizeof(report.body)) != 0))
        ret = -EPROTO;
    if (ret < 0) {
        free(quote);
        return ret;
    }
    *quote_out = quote;
    *quote_size = size;
    return 0;
}

/* ---- Hashing and ECDSA for enclave code ---- */

void spm_sha256(const void *data, size_t size, uint8_t digest[32])
{
    tc_sha256(data, size, digest);
}

int spm_ecdsa_p256_keygen(uint8_t private_key[32], uint8_t public_key[65])
{
    struct trts_incarnation *inc = trts_incarnation();
    spm_spin_lock(&inc->drbg_lock);
    int ret = drbg_ready_locked(inc);
    if (ret == 0)
        ret = tc_p256_keygen(inc->drbg, private_key, public_key);
    spm_spin_unlock(&inc->drbg_lock);
    return ret;
}

int spm_ecdsa_p256_sign(const uint8_t private_key[32], const void *msg, size_t msg_size,
                        uint8_t signature[64])
{
    uint8_t hash[32];
    spm_sha256(msg, msg_size, hash);
    return tc_p256_sign(private_key, hash, signature);
}

bool spm_ecdsa_p256_verify(const uint8_t public_key[65], const void *msg, size_t msg_size,
                           const uint8_t signature[64])
{
    uint8_t hash[32];
    spm_sha256(msg, msg_size, hash);
    return tc_p256_verify(public_key, hash, signature);
}

/* ---- Platform monotonic counters ---- */

/* The simulated CPU's SPM leaves (src/host/platform/sim/sim_internal.h,
 * which trusted code cannot include; the ME tests prove both agree). */
#define SIM_ENCLU_COUNTER_READ      0x53504d01u
#define SIM_ENCLU_COUNTER_INCREMENT 0x53504d02u

/* READ fills *value and tag; INCREMENT stores tag and fills *value. */
static int counter_leaf(uint64_t leaf, const uint8_t id[16], uint8_t tag[32], uint64_t *value)
{
    /* On hardware there is no such leaf (ENCLU would #GP): the counter
     * service there is a different design, not yet built. */
    if (!trts_thread_data()->sim_enclu)
        return -ENOSYS;
    /* Operands inside the enclave, aligned as the leaf requires. */
    struct {
        uint8_t id[16] __attribute__((aligned(16)));
        uint8_t tag[32] __attribute__((aligned(16)));
        uint64_t value __attribute__((aligned(8)));
    } op;
    memcpy(op.id, id, sizeof(op.id));
    memcpy(op.tag, tag, sizeof(op.tag));
    op.value = 0;
    uint64_t rax = trts_enclu(leaf, (uint64_t)op.id, (uint64_t)&op.value, (uint64_t)op.tag);
    if (rax == SGX_INVALID_ATTRIBUTE)
        return -EINVAL;
    if (rax != SGX_SUCCESS)
        return -EIO;
    *value = op.value;
    memcpy(tag, op.tag, sizeof(op.tag));
    return 0;
}

int spm_counter_read(const uint8_t id[16], uint64_t *value, uint8_t tag[32])
{
    memset(tag, 0, 32);
    return counter_leaf(SIM_ENCLU_COUNTER_READ, id, tag, value);
}

int spm_counter_increment(const uint8_t id[16], const uint8_t tag[32], uint64_t *value)
{
    uint8_t copy[32];
    memcpy(copy, tag, sizeof(copy));
    return counter_leaf(SIM_ENCLU_COUNTER_INCREMENT, id, copy, value);
}
