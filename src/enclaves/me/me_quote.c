/* Quote verification inside the Migration Enclave: the check a peer ME's
 * quote must pass before this ME derives a session key with it or hands it
 * a checkpoint key. It mirrors the host verifier (quote_verify.c) check for
 * check, but trusts nothing the host provides: the root is the one pinned
 * in this enclave's measured code, the crypto is BearSSL behind the trusted
 * adapter, and the quote is parsed with every length checked against what
 * is left (no arithmetic that can overflow), consumed exactly, and every
 * byte of it bound by a signature, the chain check or an exact-value
 * check. */
#include "me_quote.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "crypto/crypto.h"
#include "spm/trts.h"

#define MAX_CHAIN_CERTS 8u

/* The simulated QE's identity and version numbers, as the platform
 * (src/host/platform/quote.h) defines them: the trusted side cannot include
 * host headers, and a divergence fails every quote in tests/enclave/quote. */
#define SIM_QE_VENDOR_LABEL    "SPM-SIM-QE"
#define SIM_QE_MRENCLAVE_LABEL "SPM simulated quoting enclave"
#define SIM_QE_MRSIGNER_LABEL  "SPM simulated quoting enclave signer"
#define SIM_QE_PROD_ID         1u
#define SIM_QE_MIN_SVN         1u

/* A bounds-checked cursor over the quote. */
struct reader {
    const uint8_t *data;
    size_t size;
    size_t offset; /* invariant: offset <= size */
};

static const uint8_t *take(struct reader *r, size_t count)
{
    if (count > r->size - r->offset)
        return NULL;
    const uint8_t *p = r->data + r->offset;
    r->offset += count;
    return p;
}

static bool verify_p256(const uint8_t xy[64], const void *data, size_t size,
                        const uint8_t signature[64])
{
    uint8_t public_key[65], hash[32];
    public_key[0] = 0x04;
    memcpy(public_key + 1, xy, 64);
    tc_sha256(data, size, hash);
    return tc_p256_verify(public_key, hash, signature);
}

/* The pinned root as DER, decoded into `der` (at least the PEM's size). */
static int pinned_root(uint8_t *der, size_t capacity, size_t *size)
{
    struct tc_der_cert cert;
    size_t count = 0;
    int ret = tc_pem_certificates(spm_provisioning_root_pem, spm_provisioning_root_pem_size, der,
                                  capacity, &cert, 1, &count);
    if (ret < 0 || count != 1 || cert.offset != 0)
        return -EINVAL;
    *size = cert.size;
    return 0;
}

/* The chain in the certification data, up to the pinned root; returns the
 * leaf's key as 0x04 || x || y. */
static int verify_chain(const uint8_t *cert_data, size_t cert_size, uint8_t leaf_public[65])
{
    int ret = -ENOMEM;
    uint8_t *chain_der = malloc(cert_size);
    uint8_t *root_der = malloc(spm_provisioning_root_pem_size);
    if (!chain_der || !root_der)
        goto out;
    size_t root_size = 0;
    if ((ret = pinned_root(root_der, spm_provisioning_root_pem_size, &root_size)) < 0)
        goto out;
    struct tc_der_cert certs[MAX_CHAIN_CERTS];
    size_t count = 0;
    ret = tc_pem_certificates((const char *)cert_data, cert_size, chain_der, cert_size, certs,
                              MAX_CHAIN_CERTS, &count);
    if (ret < 0) {
        ret = -EBADMSG; /* not canonical PEM certificates, or too many */
        goto out;
    }
    ret = tc_x509_verify_chain(chain_der, certs, count, root_der, root_size, spm_untrusted_time(),
                               leaf_public);
out:
    free(root_der);
    free(chain_der);
    return ret;
}

static bool is_sim_qe(const struct sgx_report_body *qe)
{
    uint8_t mr_enclave[32], mr_signer[32];
    tc_sha256(SIM_QE_MRENCLAVE_LABEL, sizeof(SIM_QE_MRENCLAVE_LABEL) - 1, mr_enclave);
    tc_sha256(SIM_QE_MRSIGNER_LABEL, sizeof(SIM_QE_MRSIGNER_LABEL) - 1, mr_signer);
    return memcmp(qe->mr_enclave, mr_enclave, 32) == 0 &&
           memcmp(qe->mr_signer, mr_signer, 32) == 0 && qe->isv_prod_id == SIM_QE_PROD_ID &&
           qe->isv_svn >= SIM_QE_MIN_SVN && !(qe->attributes.flags & SGX_FLAGS_DEBUG);
}

int me_quote_verify(const uint8_t *quote, size_t quote_size, struct sgx_report_body *body,
                    uint8_t platform_id[32])
{
    if (!quote || quote_size < sizeof(struct sgx_quote) || quote_size > ME_QUOTE_MAX_SIZE)
        return -EBADMSG;

    /* Fixed part: header, the application's report body, signature_data_len. */
    struct sgx_quote fixed;
    memcpy(&fixed, quote, sizeof(fixed));
    uint8_t vendor_id[32];
    tc_sha256(SIM_QE_VENDOR_LABEL, sizeof(SIM_QE_VENDOR_LABEL) - 1, vendor_id);
    if (fixed.header.version != SGX_QUOTE_VERSION ||
        fixed.header.att_key_type != SGX_QUOTE_ATT_KEY_ECDSA_P256 ||
        fixed.header.att_key_data_0 != 0 ||
        memcmp(fixed.header.vendor_id, vendor_id, sizeof(fixed.header.vendor_id)) != 0 ||
        fixed.signature_data_len != quote_size - sizeof(struct sgx_quote))
        return -EBADMSG;

    /* Signature data: fixed part, auth data, certification data, nothing more. */
    struct reader r = {quote, quote_size, sizeof(struct sgx_quote)};
    struct sgx_ecdsa_sig_data sig;
    const uint8_t *p = take(&r, sizeof(sig));
    if (!p)
        return -EBADMSG;
    memcpy(&sig, p, sizeof(sig));
    uint16_t auth_size, cert_type;
    uint32_t cert_size;
    if (!(p = take(&r, sizeof(auth_size))))
        return -EBADMSG;
    memcpy(&auth_size, p, sizeof(auth_size));
    const uint8_t *auth_data = take(&r, auth_size);
    if (!auth_data || !(p = take(&r, sizeof(cert_type))))
        return -EBADMSG;
    memcpy(&cert_type, p, sizeof(cert_type));
    if (cert_type != SGX_QUOTE_CERT_TYPE_PCK_CHAIN || !(p = take(&r, sizeof(cert_size))))
        return -EBADMSG;
    memcpy(&cert_size, p, sizeof(cert_size));
    const uint8_t *cert_data = take(&r, cert_size);
    if (!cert_data || r.offset != r.size)
        return -EBADMSG;
    /* Type 5: NUL-terminated PEM text, the size counting the NUL. */
    if (cert_size < 2 || cert_data[cert_size - 1] != 0)
        return -EBADMSG;
    for (size_t i = 0; i + 1 < cert_size; i++)
        if (cert_data[i] == 0)
            return -EBADMSG;

    /* The chain up to the pinned root vouches for the attestation key. */
    uint8_t leaf_public[65];
    int ret = verify_chain(cert_data, cert_size - 1, leaf_public);
    if (ret < 0)
        return ret;
    if (memcmp(leaf_public + 1, sig.attest_pub_key, sizeof(sig.attest_pub_key)) != 0)
        return -EKEYREJECTED;

    /* The QE's report, signed by the attestation key, binds that key. */
    if (!verify_p256(sig.attest_pub_key, &sig.qe_report, sizeof(sig.qe_report), sig.qe_report_sig))
        return -EKEYREJECTED;
    uint8_t expected[SGX_REPORT_DATA_SIZE] = {0};
    tc_sha256_two(sig.attest_pub_key, sizeof(sig.attest_pub_key), auth_data, auth_size, expected);
    if (memcmp(expected, sig.qe_report.report_data, sizeof(expected)) != 0 ||
        !is_sim_qe(&sig.qe_report))
        return -EKEYREJECTED;

    /* Finally the quote signature over header and application report body. */
    if (!verify_p256(sig.attest_pub_key, quote, offsetof(struct sgx_quote, signature_data_len),
                     sig.sig))
        return -EKEYREJECTED;

    memcpy(body, &fixed.report_body, sizeof(*body));
    tc_sha256(sig.attest_pub_key, sizeof(sig.attest_pub_key), platform_id);
    return 0;
}
