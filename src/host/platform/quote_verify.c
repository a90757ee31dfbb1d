/* Quote verification: what a relying party runs on a DCAP-v3-layout quote
 * from SPM's simulated QE before trusting the enclave report inside it. The
 * quote is attacker input: it is parsed with every length checked against
 * what is left (no arithmetic that can overflow), must be consumed exactly,
 * and every byte of it is bound either by a signature, by the certificate
 * chain check or by an exact-value check. */
#include "quote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/common/fileio.h"
#include "host/common/log.h"
#include "host/crypto/ecdsa.h"
#include "host/crypto/hash.h"
#include "host/crypto/x509.h"

#define MAX_QUOTE_SIZE     (1u << 20)
#define MAX_ROOT_FILE_SIZE (1u << 20)
#define QE_MRENCLAVE_LABEL "SPM simulated quoting enclave"
#define QE_MRSIGNER_LABEL  "SPM simulated quoting enclave signer"

/* = SHA-256("SPM-SIM-QE")[0..15]; a unit test recomputes it. */
const uint8_t spm_quote_vendor_id[16] = {0x0c, 0xd5, 0x72, 0x1b, 0x46, 0x3e, 0xda, 0x47,
                                         0xef, 0x04, 0xbf, 0x87, 0xe3, 0xf2, 0x0b, 0x1c};

void spm_quote_sim_qe_identity(uint8_t mr_enclave[32], uint8_t mr_signer[32])
{
    spm_sha256(QE_MRENCLAVE_LABEL, strlen(QE_MRENCLAVE_LABEL), mr_enclave);
    spm_sha256(QE_MRSIGNER_LABEL, strlen(QE_MRSIGNER_LABEL), mr_signer);
}

/* A bounds-checked cursor over untrusted bytes. */
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

static int bad(const char *what)
{
    spm_error("quote rejected: %s", what);
    return -EBADMSG;
}

static int rejected(const char *what)
{
    spm_error("quote rejected: %s", what);
    return -EKEYREJECTED;
}

int spm_quote_verify(const uint8_t *quote, size_t quote_size, const char *trusted_root_pem,
                     struct sgx_report_body *body)
{
    if (!quote || quote_size < sizeof(struct sgx_quote))
        return bad("shorter than the fixed part of a quote");
    if (quote_size > MAX_QUOTE_SIZE)
        return bad("larger than any quote SPM produces");

    /* Fixed part: header, the application's report body, signature_data_len. */
    struct sgx_quote fixed;
    memcpy(&fixed, quote, sizeof(fixed));
    if (fixed.header.version != SGX_QUOTE_VERSION)
        return bad("not a version 3 quote");
    if (fixed.header.att_key_type != SGX_QUOTE_ATT_KEY_ECDSA_P256 ||
        fixed.header.att_key_data_0 != 0)
        return bad("attestation key type is not ECDSA P-256");
    if (memcmp(fixed.header.vendor_id, spm_quote_vendor_id, sizeof(spm_quote_vendor_id)) != 0)
        return bad("vendor id is not SPM's simulated quoting enclave");
    if (fixed.signature_data_len != quote_size - sizeof(struct sgx_quote))
        return bad("signature_data_len does not match the quote's size");

    /* Signature data: fixed part, auth data, certification data, nothing more. */
    struct reader r = {quote, quote_size, sizeof(struct sgx_quote)};
    struct sgx_ecdsa_sig_data sig;
    const uint8_t *p = take(&r, sizeof(sig));
    if (!p)
        return bad("signature data truncated");
    memcpy(&sig, p, sizeof(sig));

    uint16_t auth_size, cert_type;
    uint32_t cert_size;
    if (!(p = take(&r, 2)))
        return bad("auth data size truncated");
    memcpy(&auth_size, p, 2);
    const uint8_t *auth_data = take(&r, auth_size);
    if (!auth_data)
        return bad("auth data runs past the end of the quote");
    if (!(p = take(&r, 2)))
        return bad("certification data type truncated");
    memcpy(&cert_type, p, 2);
    if (cert_type != SGX_QUOTE_CERT_TYPE_PCK_CHAIN)
        return bad("certification data is not a PEM certificate chain (type 5)");
    if (!(p = take(&r, 4)))
        return bad("certification data size truncated");
    memcpy(&cert_size, p, 4);
    const uint8_t *cert_data = take(&r, cert_size);
    if (!cert_data)
        return bad("certification data runs past the end of the quote");
    if (r.offset != r.size)
        return bad("trailing bytes after the certification data");
    /* Type 5: NUL-terminated PEM text, the size counting the NUL. */
    if (cert_size < 2 || cert_data[cert_size - 1] != 0 || memchr(cert_data, 0, cert_size - 1))
        return bad("certification data is not one NUL-terminated string");

    /* The chain, up to the root the caller trusts. */
    uint8_t *root = NULL;
    size_t root_size = 0;
    int ret = spm_read_file(trusted_root_pem, MAX_ROOT_FILE_SIZE, &root, &root_size);
    if (ret < 0) {
        spm_error("quote not verified: cannot read the trusted root %s", trusted_root_pem);
        return ret;
    }
    uint8_t leaf_key[SPM_EC_PUBLIC_SIZE];
    ret = spm_x509_verify_chain((const char *)cert_data, cert_size - 1, (const char *)root,
                                root_size, leaf_key);
    free(root);
    if (ret < 0) {
        spm_error("quote rejected: its certificate chain does not verify against %s",
                  trusted_root_pem);
        return ret;
    }
    if (memcmp(leaf_key, sig.attest_pub_key, sizeof(leaf_key)) != 0)
        return rejected("the attestation key is not the key of the leaf certificate");

    /* The QE's report, signed by the attestation key, binds that key. */
    if (!spm_ec_verify(sig.attest_pub_key, &sig.qe_report, sizeof(sig.qe_report),
                       sig.qe_report_sig))
        return rejected("bad QE report signature");
    uint8_t expected[SGX_REPORT_DATA_SIZE] = {0};
    struct spm_sha256 hash;
    spm_sha256_init(&hash);
    spm_sha256_update(&hash, sig.attest_pub_key, sizeof(sig.attest_pub_key));
    spm_sha256_update(&hash, auth_data, auth_size);
    spm_sha256_final(&hash, expected);
    if (memcmp(expected, sig.qe_report.report_data, sizeof(expected)) != 0)
        return rejected("QE REPORTDATA is not SHA-256(attest_pub_key || auth_data)");
    uint8_t qe_mrenclave[32], qe_mrsigner[32];
    spm_quote_sim_qe_identity(qe_mrenclave, qe_mrsigner);
    if (memcmp(sig.qe_report.mr_enclave, qe_mrenclave, 32) != 0 ||
        memcmp(sig.qe_report.mr_signer, qe_mrsigner, 32) != 0 ||
        sig.qe_report.isv_prod_id != SPM_QUOTE_SIM_QE_PROD_ID ||
        (sig.qe_report.attributes.flags & SGX_FLAGS_DEBUG))
        return rejected("the QE report is not from SPM's simulated quoting enclave");

    /* Finally the quote signature over header and application report body. */
    if (!spm_ec_verify(sig.attest_pub_key, quote, offsetof(struct sgx_quote, signature_data_len),
                       sig.sig))
        return rejected("bad quote signature");

    memcpy(body, &fixed.report_body, sizeof(*body));
    return 0;
}
