/* The simulated CPU's key logic: EGETKEY and EREPORT as Intel's SDK
 * simulation implements them (sdk/simulation/tinst/t_instructions.cpp,
 * deriv.h; SGX-FORMATS.md sections 3-4), byte for byte in the derivation
 * buffers, with one deliberate difference: the per-KEYNAME root keys and the
 * owner epoch come from the platform's random root secret instead of the
 * SDK's constants, so that keys and report MACs are bound to one platform
 * as on hardware. */
#include "sim_internal.h"

#include <errno.h>
#include <string.h>

#include "host/common/fileio.h"
#include "host/common/log.h"
#include "host/crypto/hash.h"

#define OWNER_EPOCH_SIZE 16u

/* The SDK's derivation structs are naturally aligned C structs, CMAC'd whole
 * with their padding zeroed. They are assembled here at explicit offsets
 * (SGX-FORMATS.md section 4) rather than through a C struct, so that the
 * padding is zero by construction and the layout is visible. */

/* dd_seal_key_t, 280 bytes. */
enum {
    SEAL_KEY_NAME = 0,
    SEAL_KEY_POLICY = 2,
    SEAL_TMP_ATTR = 8,
    SEAL_ATTRIBUTE_MASK = 24,
    SEAL_TMP_MISC = 40,
    SEAL_MISC_MASK = 44, /* ~KEYREQUEST.MISCMASK */
    SEAL_OWNER_EPOCH = 48,
    SEAL_CPU_SVN = 64,
    SEAL_ISV_SVN = 80,
    SEAL_ISV_PROD_ID = 82,
    SEAL_CONFIG_SVN = 84,
    SEAL_CONFIG_ID = 86,
    SEAL_ISV_FAMILY_ID = 150,
    SEAL_ISV_EXT_PROD_ID = 166,
    SEAL_MRENCLAVE = 182,
    SEAL_MRSIGNER = 214,
    SEAL_KEY_ID = 246,
    SEAL_SIZE = 280,
};

/* dd_report_key_t, 192 bytes. */
enum {
    REPORT_KEY_NAME = 0,
    REPORT_ATTRIBUTES = 8,
    REPORT_MISC_SELECT = 24,
    REPORT_OWNER_EPOCH = 28,
    REPORT_MRENCLAVE = 44,
    REPORT_CPU_SVN = 76,
    REPORT_CONFIG_SVN = 92,
    REPORT_CONFIG_ID = 94,
    REPORT_KEY_ID = 158,
    REPORT_SIZE = 192,
};

/* dd_license_key_t (EINITTOKEN), 128 bytes. */
enum {
    LICENSE_KEY_NAME = 0,
    LICENSE_TMP_ATTR = 8,
    LICENSE_TMP_MISC = 24,
    LICENSE_OWNER_EPOCH = 28,
    LICENSE_CPU_SVN = 44,
    LICENSE_ISV_SVN = 60,
    LICENSE_ISV_PROD_ID = 62,
    LICENSE_MRSIGNER = 64,
    LICENSE_KEY_ID = 96,
    LICENSE_SIZE = 128,
};

/* dd_provision_key_t, 104 bytes. */
enum {
    PROVISION_KEY_NAME = 0,
    PROVISION_TMP_ATTR = 8,
    PROVISION_ATTRIBUTE_MASK = 24,
    PROVISION_TMP_MISC = 40,
    PROVISION_MISC_MASK = 44,
    PROVISION_CPU_SVN = 48,
    PROVISION_ISV_SVN = 64,
    PROVISION_ISV_PROD_ID = 66,
    PROVISION_MRSIGNER = 68,
    PROVISION_SIZE = 104,
};

/* dd_provision_seal_key_t, 200 bytes. */
enum {
    PSEAL_KEY_NAME = 0,
    PSEAL_KEY_POLICY = 2,
    PSEAL_TMP_ATTR = 8,
    PSEAL_ATTRIBUTE_MASK = 24,
    PSEAL_TMP_MISC = 40,
    PSEAL_MISC_MASK = 44,
    PSEAL_CPU_SVN = 48,
    PSEAL_ISV_SVN = 64,
    PSEAL_ISV_PROD_ID = 66,
    PSEAL_CONFIG_SVN = 68,
    PSEAL_CONFIG_ID = 70,
    PSEAL_ISV_FAMILY_ID = 134,
    PSEAL_ISV_EXT_PROD_ID = 150,
    PSEAL_MRSIGNER = 166,
    PSEAL_SIZE = 200,
};

#define DD_MAX_SIZE SEAL_SIZE

static void put16(uint8_t *buf, size_t offset, uint16_t v)
{
    buf[offset] = (uint8_t)v;
    buf[offset + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *buf, size_t offset, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        buf[offset + i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *buf, size_t offset, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        buf[offset + i] = (uint8_t)(v >> (8 * i));
}

static void put_attributes(uint8_t *buf, size_t offset, struct sgx_attributes a)
{
    put64(buf, offset, a.flags);
    put64(buf, offset + 8, a.xfrm);
}

static void put_bytes(uint8_t *buf, size_t offset, const void *data, size_t size)
{
    memcpy(buf + offset, data, size);
}

static int is_all_zero(const void *data, size_t size)
{
    const uint8_t *bytes = data;
    uint8_t acc = 0;
    for (size_t i = 0; i < size; i++)
        acc |= bytes[i];
    return acc == 0;
}

int spm_sim_platform_secret(const struct spm_sim_platform *p, const char *label, uint16_t index,
                            uint8_t out[16])
{
    uint8_t message[64];
    size_t label_size = strlen(label);
    if (label_size + 2 > sizeof(message))
        return -EINVAL;
    memcpy(message, label, label_size);
    put16(message, label_size, index);
    uint8_t mac[32];
    bool ok = spm_hmac_sha256(p->root_secret, sizeof(p->root_secret), message, label_size + 2, mac);
    memcpy(out, mac, 16);
    spm_wipe(mac, sizeof(mac));
    if (!ok) {
        spm_error("platform key derivation failed (HMAC-SHA-256)");
        return -EIO;
    }
    return 0;
}

/* Key = AES-128-CMAC(root[KEYNAME], dd), the SDK's derive_key(). */
static int derive(const struct spm_sim_platform *p, uint16_t key_name, const uint8_t *dd,
                  size_t dd_size, uint8_t key[16])
{
    uint8_t root[16];
    int ret = spm_sim_platform_secret(p, SPM_SIM_LABEL_KEY_ROOT, key_name, root);
    if (ret == 0 && !spm_aes128_cmac(root, dd, dd_size, key)) {
        spm_error("platform key derivation failed (AES-128-CMAC)");
        ret = -EIO;
    }
    spm_wipe(root, sizeof(root));
    return ret;
}

int spm_sim_report_key(const struct spm_sim_platform *p, const struct sgx_target_info *identity,
                       const uint8_t key_id[SGX_KEYID_SIZE], uint8_t key[16])
{
    uint8_t dd[REPORT_SIZE] = {0};
    uint8_t epoch[OWNER_EPOCH_SIZE];
    int ret = spm_sim_platform_secret(p, SPM_SIM_LABEL_OWNER_EPOCH, 0, epoch);
    if (ret < 0)
        goto out;
    put16(dd, REPORT_KEY_NAME, SGX_KEYSELECT_REPORT);
    put_attributes(dd, REPORT_ATTRIBUTES, identity->attributes);
    put32(dd, REPORT_MISC_SELECT, identity->misc_select);
    put_bytes(dd, REPORT_OWNER_EPOCH, epoch, sizeof(epoch));
    put_bytes(dd, REPORT_MRENCLAVE, identity->mr_enclave, SGX_HASH_SIZE);
    put_bytes(dd, REPORT_CPU_SVN, p->cpusvn, SGX_CPUSVN_SIZE);
    put16(dd, REPORT_CONFIG_SVN, identity->config_svn);
    put_bytes(dd, REPORT_CONFIG_ID, identity->config_id, SGX_CONFIGID_SIZE);
    put_bytes(dd, REPORT_KEY_ID, key_id, SGX_KEYID_SIZE);
    ret = derive(p, SGX_KEYSELECT_REPORT, dd, sizeof(dd), key);
out:
    spm_wipe(epoch, sizeof(epoch));
    spm_wipe(dd, sizeof(dd));
    return ret;
}

/* CPUSVN as 16 component SVNs: `requested` may not exceed `current` in any. */
static int cpusvn_is_newer(const uint8_t requested[SGX_CPUSVN_SIZE],
                           const uint8_t current[SGX_CPUSVN_SIZE])
{
    for (unsigned i = 0; i < SGX_CPUSVN_SIZE; i++)
        if (requested[i] > current[i])
            return 1;
    return 0;
}

static const uint8_t *secs_isv_family_id(const struct sgx_secs *secs)
{
    return (const uint8_t *)secs + SPM_SIM_SECS_ISVFAMILYID_OFFSET;
}

static const uint8_t *secs_isv_ext_prod_id(const struct sgx_secs *secs)
{
    return (const uint8_t *)secs + SPM_SIM_SECS_ISVEXTPRODID_OFFSET;
}

/* The checks common to SEAL, EINITTOKEN, PROVISION and PROVISION_SEAL. */
static int check_svns(const struct spm_sim_platform *p, const struct sgx_secs *secs,
                      const struct sgx_key_request *kr, int check_config_svn)
{
    if (kr->isv_svn > secs->isv_svn) {
        spm_debug("EGETKEY: ISVSVN %u is above the enclave's %u", kr->isv_svn, secs->isv_svn);
        return SGX_INVALID_ISVSVN;
    }
    if (check_config_svn && kr->config_svn > secs->config_svn) {
        spm_debug("EGETKEY: CONFIGSVN %u is above the enclave's %u", kr->config_svn,
                  secs->config_svn);
        return SGX_INVALID_ISVSVN;
    }
    if (cpusvn_is_newer(kr->cpu_svn, p->cpusvn)) {
        spm_debug("EGETKEY: the requested CPUSVN is newer than the platform's");
        return SGX_INVALID_CPUSVN;
    }
    return SGX_SUCCESS;
}

int spm_sim_egetkey(const struct spm_sim_platform *p, const struct sgx_secs *secs,
                    const struct sgx_key_request *request, uint8_t key[16])
{
    /* Copy in: the request is the enclave's memory. */
    struct sgx_key_request kr;
    memcpy(&kr, request, sizeof(kr));

    /* Hardware raises #GP for these; the SDK simulation aborts. */
    if (!is_all_zero(kr.reserved1, sizeof(kr.reserved1)) ||
        !is_all_zero(kr.reserved2, sizeof(kr.reserved2))) {
        spm_debug("EGETKEY: reserved KEYREQUEST bytes are not zero");
        return SGX_INVALID_ATTRIBUTE;
    }
    if (kr.key_policy & ~SGX_KEYPOLICY_VALID_MASK) {
        spm_debug("EGETKEY: reserved KEYPOLICY bits 0x%x", kr.key_policy);
        return SGX_INVALID_ATTRIBUTE;
    }
    if (!(secs->attributes.flags & SGX_FLAGS_KSS) &&
        ((kr.key_policy & SGX_KEYPOLICY_KSS_MASK) || kr.config_svn > 0)) {
        spm_debug("EGETKEY: KSS key policy or CONFIGSVN without the KSS attribute");
        return SGX_INVALID_ATTRIBUTE;
    }

    /* INIT and DEBUG are always part of the key. */
    struct sgx_attributes tmp_attr = {
        .flags = (kr.attribute_mask.flags | SGX_FLAGS_INITTED | SGX_FLAGS_DEBUG) &
                 secs->attributes.flags,
        .xfrm = kr.attribute_mask.xfrm & secs->attributes.xfrm,
    };
    uint32_t tmp_misc = kr.misc_mask & secs->misc_select;
    /* An all-zero CPUSVN means the current one, as on hardware. */
    if (is_all_zero(kr.cpu_svn, sizeof(kr.cpu_svn)))
        memcpy(kr.cpu_svn, p->cpusvn, sizeof(kr.cpu_svn));

    uint8_t dd[DD_MAX_SIZE] = {0};
    size_t dd_size = 0;
    uint8_t epoch[OWNER_EPOCH_SIZE] = {0};
    int status = SGX_SUCCESS;
    int ret;

    switch (kr.key_name) {
    case SGX_KEYSELECT_SEAL:
        status = check_svns(p, secs, &kr, 1);
        if (status != SGX_SUCCESS)
            goto out;
        if ((ret = spm_sim_platform_secret(p, SPM_SIM_LABEL_OWNER_EPOCH, 0, epoch)) < 0) {
            status = ret;
            goto out;
        }
        dd_size = SEAL_SIZE;
        put16(dd, SEAL_KEY_NAME, kr.key_name);
        put16(dd, SEAL_KEY_POLICY, kr.key_policy);
        put_attributes(dd, SEAL_TMP_ATTR, tmp_attr);
        put_attributes(dd, SEAL_ATTRIBUTE_MASK, kr.attribute_mask);
        put32(dd, SEAL_TMP_MISC, tmp_misc);
        put32(dd, SEAL_MISC_MASK, ~kr.misc_mask);
        put_bytes(dd, SEAL_OWNER_EPOCH, epoch, sizeof(epoch));
        put_bytes(dd, SEAL_CPU_SVN, kr.cpu_svn, SGX_CPUSVN_SIZE);
        put16(dd, SEAL_ISV_SVN, kr.isv_svn);
        if (!(kr.key_policy & SGX_KEYPOLICY_NOISVPRODID))
            put16(dd, SEAL_ISV_PROD_ID, secs->isv_prod_id);
        if (kr.key_policy & SGX_KEYPOLICY_CONFIGID) {
            put16(dd, SEAL_CONFIG_SVN, kr.config_svn);
            put_bytes(dd, SEAL_CONFIG_ID, secs->config_id, SGX_CONFIGID_SIZE);
        }
        if (kr.key_policy & SGX_KEYPOLICY_ISVFAMILYID)
            put_bytes(dd, SEAL_ISV_FAMILY_ID, secs_isv_family_id(secs), SGX_ISV_FAMILY_ID_SIZE);
        if (kr.key_policy & SGX_KEYPOLICY_ISVEXTPRODID)
            put_bytes(dd, SEAL_ISV_EXT_PROD_ID, secs_isv_ext_prod_id(secs),
                      SGX_ISVEXT_PROD_ID_SIZE);
        if (kr.key_policy & SGX_KEYPOLICY_MRENCLAVE)
            put_bytes(dd, SEAL_MRENCLAVE, secs->mr_enclave, SGX_HASH_SIZE);
        if (kr.key_policy & SGX_KEYPOLICY_MRSIGNER)
            put_bytes(dd, SEAL_MRSIGNER, secs->mr_signer, SGX_HASH_SIZE);
        put_bytes(dd, SEAL_KEY_ID, kr.key_id, SGX_KEYID_SIZE);
        break;

    case SGX_KEYSELECT_REPORT: {
        /* No SVN checks: the report key is always that of the current SVNs. */
        struct sgx_target_info self = {0};
        memcpy(self.mr_enclave, secs->mr_enclave, SGX_HASH_SIZE);
        self.attributes = secs->attributes;
        self.misc_select = secs->misc_select;
        self.config_svn = secs->config_svn;
        memcpy(self.config_id, secs->config_id, SGX_CONFIGID_SIZE);
        if ((ret = spm_sim_report_key(p, &self, kr.key_id, key)) < 0)
            status = ret;
        goto out;
    }

    case SGX_KEYSELECT_EINITTOKEN:
        if (!(secs->attributes.flags & SGX_FLAGS_EINITTOKEN_KEY)) {
            spm_debug("EGETKEY: EINITTOKEN key without the EINITTOKEN_KEY attribute");
            status = SGX_INVALID_ATTRIBUTE;
            goto out;
        }
        status = check_svns(p, secs, &kr, 0);
        if (status != SGX_SUCCESS)
            goto out;
        if ((ret = spm_sim_platform_secret(p, SPM_SIM_LABEL_OWNER_EPOCH, 0, epoch)) < 0) {
            status = ret;
            goto out;
        }
        dd_size = LICENSE_SIZE;
        put16(dd, LICENSE_KEY_NAME, kr.key_name);
        put_attributes(dd, LICENSE_TMP_ATTR, tmp_attr);
        put32(dd, LICENSE_TMP_MISC, tmp_misc);
        put_bytes(dd, LICENSE_OWNER_EPOCH, epoch, sizeof(epoch));
        put_bytes(dd, LICENSE_CPU_SVN, kr.cpu_svn, SGX_CPUSVN_SIZE);
        put16(dd, LICENSE_ISV_SVN, kr.isv_svn);
        put16(dd, LICENSE_ISV_PROD_ID, secs->isv_prod_id);
        put_bytes(dd, LICENSE_MRSIGNER, secs->mr_signer, SGX_HASH_SIZE);
        put_bytes(dd, LICENSE_KEY_ID, kr.key_id, SGX_KEYID_SIZE);
        break;

    case SGX_KEYSELECT_PROVISION:
        if (!(secs->attributes.flags & SGX_FLAGS_PROVISION_KEY)) {
            spm_debug("EGETKEY: PROVISION key without the PROVISIONKEY attribute");
            status = SGX_INVALID_ATTRIBUTE;
            goto out;
        }
        status = check_svns(p, secs, &kr, 0);
        if (status != SGX_SUCCESS)
            goto out;
        /* No owner epoch and no KEYID: the provisioning key survives an
         * ownership change, as on hardware. */
        dd_size = PROVISION_SIZE;
        put16(dd, PROVISION_KEY_NAME, kr.key_name);
        put_attributes(dd, PROVISION_TMP_ATTR, tmp_attr);
        put_attributes(dd, PROVISION_ATTRIBUTE_MASK, kr.attribute_mask);
        put32(dd, PROVISION_TMP_MISC, tmp_misc);
        put32(dd, PROVISION_MISC_MASK, ~kr.misc_mask);
        put_bytes(dd, PROVISION_CPU_SVN, kr.cpu_svn, SGX_CPUSVN_SIZE);
        put16(dd, PROVISION_ISV_SVN, kr.isv_svn);
        put16(dd, PROVISION_ISV_PROD_ID, secs->isv_prod_id);
        put_bytes(dd, PROVISION_MRSIGNER, secs->mr_signer, SGX_HASH_SIZE);
        break;

    case SGX_KEYSELECT_PROVISION_SEAL:
        if (!(secs->attributes.flags & SGX_FLAGS_PROVISION_KEY)) {
            spm_debug("EGETKEY: PROVISION_SEAL key without the PROVISIONKEY attribute");
            status = SGX_INVALID_ATTRIBUTE;
            goto out;
        }
        status = check_svns(p, secs, &kr, 1);
        if (status != SGX_SUCCESS)
            goto out;
        dd_size = PSEAL_SIZE;
        put16(dd, PSEAL_KEY_NAME, kr.key_name);
        put16(dd, PSEAL_KEY_POLICY, kr.key_policy);
        put_attributes(dd, PSEAL_TMP_ATTR, tmp_attr);
        put_attributes(dd, PSEAL_ATTRIBUTE_MASK, kr.attribute_mask);
        put32(dd, PSEAL_TMP_MISC, tmp_misc);
        put32(dd, PSEAL_MISC_MASK, ~kr.misc_mask);
        put_bytes(dd, PSEAL_CPU_SVN, kr.cpu_svn, SGX_CPUSVN_SIZE);
        put16(dd, PSEAL_ISV_SVN, kr.isv_svn);
        if (!(kr.key_policy & SGX_KEYPOLICY_NOISVPRODID))
            put16(dd, PSEAL_ISV_PROD_ID, secs->isv_prod_id);
        if (kr.key_policy & SGX_KEYPOLICY_CONFIGID) {
            put16(dd, PSEAL_CONFIG_SVN, kr.config_svn);
            put_bytes(dd, PSEAL_CONFIG_ID, secs->config_id, SGX_CONFIGID_SIZE);
        }
        if (kr.key_policy & SGX_KEYPOLICY_ISVFAMILYID)
            put_bytes(dd, PSEAL_ISV_FAMILY_ID, secs_isv_family_id(secs), SGX_ISV_FAMILY_ID_SIZE);
        if (kr.key_policy & SGX_KEYPOLICY_ISVEXTPRODID)
            put_bytes(dd, PSEAL_ISV_EXT_PROD_ID, secs_isv_ext_prod_id(secs),
                      SGX_ISVEXT_PROD_ID_SIZE);
        put_bytes(dd, PSEAL_MRSIGNER, secs->mr_signer, SGX_HASH_SIZE);
        break;

    default:
        spm_debug("EGETKEY: unknown KEYNAME %u", kr.key_name);
        status = SGX_INVALID_KEYNAME;
        goto out;
    }

    if ((ret = derive(p, kr.key_name, dd, dd_size, key)) < 0)
        status = ret;
out:
    spm_wipe(epoch, sizeof(epoch));
    spm_wipe(dd, sizeof(dd));
    spm_wipe(&kr, sizeof(kr));
    return status;
}

int spm_sim_ereport(const struct spm_sim_platform *p, const struct sgx_secs *secs,
                    const struct sgx_target_info *target, const uint8_t report_data[64],
                    struct sgx_report *report)
{
    struct sgx_report out;
    memset(&out, 0, sizeof(out));
    struct sgx_report_body *body = &out.body;
    memcpy(body->cpu_svn, p->cpusvn, SGX_CPUSVN_SIZE);
    body->misc_select = secs->misc_select;
    memcpy(body->isv_ext_prod_id, secs_isv_ext_prod_id(secs), SGX_ISVEXT_PROD_ID_SIZE);
    body->attributes = secs->attributes;
    memcpy(body->mr_enclave, secs->mr_enclave, SGX_HASH_SIZE);
    memcpy(body->mr_signer, secs->mr_signer, SGX_HASH_SIZE);
    memcpy(body->config_id, secs->config_id, SGX_CONFIGID_SIZE);
    body->isv_prod_id = secs->isv_prod_id;
    body->isv_svn = secs->isv_svn;
    body->config_svn = secs->config_svn;
    memcpy(body->isv_family_id, secs_isv_family_id(secs), SGX_ISV_FAMILY_ID_SIZE);
    memcpy(body->report_data, report_data, SGX_REPORT_DATA_SIZE);

    /* KEYID: fresh per report. (The SDK simulation puts half of its report
     * root key here; hardware uses a per-boot random value.) */
    if (!spm_random(out.key_id, sizeof(out.key_id))) {
        spm_error("EREPORT: no randomness for the KEYID");
        return -EIO;
    }
    /* The MAC is keyed with the *target's* report key and covers the body
     * only, not KEYID or MAC. */
    uint8_t key[16];
    int ret = spm_sim_report_key(p, target, out.key_id, key);
    if (ret == 0 && !spm_aes128_cmac(key, body, sizeof(*body), out.mac)) {
        spm_error("EREPORT: AES-128-CMAC failed");
        ret = -EIO;
    }
    spm_wipe(key, sizeof(key));
    if (ret < 0)
        return -EIO;
    memcpy(report, &out, sizeof(out));
    return 0;
}
