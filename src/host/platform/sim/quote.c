/* The simulated Quoting Enclave: turns a REPORT targeted at it into a DCAP
 * ECDSA quote v3 (SGX-FORMATS.md section 6) signed by the platform's
 * attestation key, with the certificate chain up to the provisioning CA in
 * the type-5 cert data. As the real QE does, it first checks the REPORT's MAC
 * with its own report key, so only an enclave on this platform that targeted
 * the QE can obtain a quote. */
#include "sim_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/common/fileio.h"
#include "host/common/log.h"
#include "host/crypto/hash.h"
#include "host/platform/quote.h"

#define AUTH_DATA_SIZE   32u
#define CERT_HEADER_SIZE 6u /* u16 type, u32 size */

void spm_sim_qe_secs(struct sgx_secs *secs)
{
    memset(secs, 0, sizeof(*secs));
    spm_quote_sim_qe_identity(secs->mr_enclave, secs->mr_signer);
    secs->attributes.flags = SGX_FLAGS_INITTED | SGX_FLAGS_MODE64BIT | SGX_FLAGS_PROVISION_KEY;
    secs->attributes.xfrm = SGX_XFRM_LEGACY;
    secs->isv_prod_id = SPM_QUOTE_SIM_QE_PROD_ID;
    secs->isv_svn = SPM_QUOTE_SIM_QE_SVN;
}

void spm_sim_qe_target_info(const struct spm_sim_platform *p, struct sgx_target_info *target)
{
    (void)p; /* the QE's identity is the same on every platform */
    struct sgx_secs qe;
    spm_sim_qe_secs(&qe);
    memset(target, 0, sizeof(*target));
    memcpy(target->mr_enclave, qe.mr_enclave, SGX_HASH_SIZE);
    target->attributes = qe.attributes;
    target->config_svn = qe.config_svn;
    target->misc_select = qe.misc_select;
    memcpy(target->config_id, qe.config_id, SGX_CONFIGID_SIZE);
}

/* What the QE does with sgx_verify_report(): EGETKEY(REPORT, report's KEYID)
 * under its own identity, CMAC over the body, constant-time compare. */
static int check_report_targets_qe(const struct spm_sim_platform *p,
                                   const struct sgx_report *report)
{
    struct sgx_target_info qe;
    uint8_t key[16], mac[SGX_MAC_SIZE];
    spm_sim_qe_target_info(p, &qe);
    int ret = spm_sim_report_key(p, &qe, report->key_id, key);
    if (ret == 0 && !spm_aes128_cmac(key, &report->body, sizeof(report->body), mac))
        ret = -EIO;
    spm_wipe(key, sizeof(key));
    if (ret < 0)
        return ret;
    if (spm_ct_memcmp(mac, report->mac, sizeof(mac)) != 0) {
        spm_error("quote refused: the REPORT's MAC does not verify with the quoting enclave's "
                  "report key (not targeted at the QE, made on another platform, or altered)");
        return -EINVAL;
    }
    return 0;
}

int spm_sim_quote(const struct spm_sim_platform *p, const struct sgx_report *report,
                  uint8_t **quote, size_t *quote_size)
{
    /* Copy in: the report comes from an enclave. */
    struct sgx_report app;
    memcpy(&app, report, sizeof(app));
    int ret = check_report_targets_qe(p, &app);
    if (ret < 0)
        return ret;

    size_t cert_data_size = p->cert_chain_size + 1; /* with the NUL */
    size_t signature_data_size =
        sizeof(struct sgx_ecdsa_sig_data) + 2 + AUTH_DATA_SIZE + CERT_HEADER_SIZE + cert_data_size;
    if (cert_data_size > UINT32_MAX || signature_data_size > UINT32_MAX)
        return -EINVAL;
    size_t total = sizeof(struct sgx_quote) + signature_data_size;
    uint8_t *out = calloc(1, total);
    if (!out)
        return -ENOMEM;

    struct sgx_quote fixed;
    memset(&fixed, 0, sizeof(fixed));
    fixed.header.version = SGX_QUOTE_VERSION;
    fixed.header.att_key_type = SGX_QUOTE_ATT_KEY_ECDSA_P256;
    fixed.header.qe_svn = SPM_QUOTE_SIM_QE_SVN;
    fixed.header.pce_svn = SPM_QUOTE_SIM_PCE_SVN;
    memcpy(fixed.header.vendor_id, spm_quote_vendor_id, sizeof(fixed.header.vendor_id));
    /* user_data[0..15] = QE_ID: a stable, non-secret platform identifier. */
    if ((ret = spm_sim_platform_secret(p, SPM_SIM_LABEL_QE_ID, 0, fixed.header.user_data)) < 0)
        goto fail;
    fixed.report_body = app.body;
    fixed.signature_data_len = (uint32_t)signature_data_size;
    memcpy(out, &fixed, sizeof(fixed));

    struct sgx_ecdsa_sig_data sig;
    memset(&sig, 0, sizeof(sig));
    if ((ret = spm_ec_sign(p->attest_key, out, offsetof(struct sgx_quote, signature_data_len),
                           sig.sig)) < 0)
        goto fail;
    memcpy(sig.attest_pub_key, p->attest_public, sizeof(sig.attest_pub_key));

    uint8_t auth_data[AUTH_DATA_SIZE];
    for (unsigned i = 0; i < AUTH_DATA_SIZE; i++)
        auth_data[i] = (uint8_t)i;

    /* The QE's own report binds the attestation key: REPORTDATA =
     * SHA-256(attest_pub_key || auth_data) || 32 zero bytes. */
    uint8_t report_data[SGX_REPORT_DATA_SIZE] = {0};
    struct spm_sha256 hash;
    spm_sha256_init(&hash);
    spm_sha256_update(&hash, sig.attest_pub_key, sizeof(sig.attest_pub_key));
    spm_sha256_update(&hash, auth_data, sizeof(auth_data));
    spm_sha256_final(&hash, report_data);
    struct sgx_secs qe_secs;
    struct sgx_target_info qe_target;
    struct sgx_report qe_report;
    spm_sim_qe_secs(&qe_secs);
    spm_sim_qe_target_info(p, &qe_target);
    if ((ret = spm_sim_ereport(p, &qe_secs, &qe_target, report_data, &qe_report)) < 0)
        goto fail;
    sig.qe_report = qe_report.body;
    if ((ret = spm_ec_sign(p->attest_key, &sig.qe_report, sizeof(sig.qe_report),
                           sig.qe_report_sig)) < 0)
        goto fail;

    uint8_t *cursor = out + sizeof(struct sgx_quote);
    memcpy(cursor, &sig, sizeof(sig));
    cursor += sizeof(sig);
    uint16_t auth_size = AUTH_DATA_SIZE;
    memcpy(cursor, &auth_size, 2);
    memcpy(cursor + 2, auth_data, AUTH_DATA_SIZE);
    cursor += 2 + AUTH_DATA_SIZE;
    uint16_t cert_type = SGX_QUOTE_CERT_TYPE_PCK_CHAIN;
    uint32_t cert_size = (uint32_t)cert_data_size;
    memcpy(cursor, &cert_type, 2);
    memcpy(cursor + 2, &cert_size, 4);
    cursor += CERT_HEADER_SIZE;
    memcpy(cursor, p->cert_chain, cert_data_size); /* includes the NUL */

    *quote = out;
    *quote_size = total;
    return 0;
fail:
    if (ret != -ENOMEM)
        ret = -EIO;
    spm_error("cannot produce a quote");
    free(out);
    return ret;
}
