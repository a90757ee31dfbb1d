/* The host quote verifier, spm_quote_verify (src/host/platform/
 * quote_verify.c), on quotes from an attacker: what a relying party runs
 * before trusting the enclave report inside a quote. The trusted root is the
 * test provisioning CA in fuzz/attest/testpki/ca, which issued the test
 * platform's attestation key (testpki/platform) that signed the seeds.
 *
 * Input: byte 0 is the mode, the rest is the quote.
 *   mode bit 0 clear: the quote as is. Almost every mutation then fails a
 *     signature (the quote's, the QE report's) and stops there.
 *   mode bit 0 set: the harness first re-signs the fuzzed quote with the
 *     test platform's attestation key, as a platform that signs whatever it
 *     is handed would, so the checks behind the signatures (the QE identity,
 *     REPORTDATA binding, the leaf key) see fuzzed bytes too: the QE report
 *     signature and the quote signature are recomputed; bit 1 also puts
 *     the test key into attest_pub_key, bit 2 recomputes the QE REPORTDATA
 *     from attest_pub_key and the auth data wherever the fuzzed lengths
 *     place them.
 * The quote is copied into a buffer of exactly its size (ASan sees any
 * over-read). Checked: the result is 0, -EBADMSG or -EKEYREJECTED; every
 * refusal is logged; an accepted quote has the layout the verifier
 * promises (version 3, ECDSA P-256, SPM's vendor id, signature_data_len
 * consistent, type-5 certification data ending the quote) and the body it
 * returns is the quote's own; a second verification agrees. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/common/fileio.h"
#include "host/crypto/ecdsa.h"
#include "host/crypto/hash.h"
#include "host/platform/quote.h"
#include "host_log.h"

#define ROOT_PEM      FUZZ_PKI_DIR "/ca/ca.crt"
#define ATTEST_KEY    FUZZ_PKI_DIR "/platform/attest.key"
#define MODE_RESIGN   0x01u
#define MODE_SET_KEY  0x02u
#define MODE_BIND_QE  0x04u
#define SIG_DATA_SIZE sizeof(struct sgx_ecdsa_sig_data)

static struct spm_ec_key *g_attest_key;
static uint8_t g_attest_public[SPM_EC_PUBLIC_SIZE];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    uint8_t *pem = NULL;
    size_t pem_size = 0;
    int ret = spm_read_file(ATTEST_KEY, 1u << 16, &pem, &pem_size);
    assert(ret == 0);
    ret = spm_ec_key_from_pem((const char *)pem, pem_size, &g_attest_key);
    assert(ret == 0);
    ret = spm_ec_key_public(g_attest_key, g_attest_public);
    assert(ret == 0);
    free(pem);
    return 0;
}

/* Signs `quote` as the test platform would, over whatever it holds. */
static void resign(uint8_t *quote, size_t size, uint8_t mode)
{
    if (size < sizeof(struct sgx_quote) + SIG_DATA_SIZE)
        return;
    struct sgx_ecdsa_sig_data sig;
    uint8_t *sig_at = quote + sizeof(struct sgx_quote);
    memcpy(&sig, sig_at, sizeof(sig));
    if (mode & MODE_SET_KEY)
        memcpy(sig.attest_pub_key, g_attest_public, sizeof(sig.attest_pub_key));
    size_t auth_at = sizeof(struct sgx_quote) + SIG_DATA_SIZE + 2;
    if ((mode & MODE_BIND_QE) && size >= auth_at) {
        uint16_t auth_size;
        memcpy(&auth_size, quote + auth_at - 2, 2);
        if (auth_size <= size - auth_at) {
            struct spm_sha256 hash;
            memset(sig.qe_report.report_data, 0, sizeof(sig.qe_report.report_data));
            spm_sha256_init(&hash);
            spm_sha256_update(&hash, sig.attest_pub_key, sizeof(sig.attest_pub_key));
            spm_sha256_update(&hash, quote + auth_at, auth_size);
            spm_sha256_final(&hash, sig.qe_report.report_data);
        }
    }
    int ret = spm_ec_sign(g_attest_key, &sig.qe_report, sizeof(sig.qe_report), sig.qe_report_sig);
    assert(ret == 0);
    ret = spm_ec_sign(g_attest_key, quote, offsetof(struct sgx_quote, signature_data_len), sig.sig);
    assert(ret == 0);
    memcpy(sig_at, &sig, sizeof(sig));
}

/* What an accepted quote must look like. */
static void check_accepted(const uint8_t *quote, size_t size, const struct sgx_report_body *body)
{
    struct sgx_quote fixed;
    assert(size >= sizeof(fixed) + SIG_DATA_SIZE + 2 + 2 + 4 + 2);
    memcpy(&fixed, quote, sizeof(fixed));
    assert(fixed.header.version == SGX_QUOTE_VERSION);
    assert(fixed.header.att_key_type == SGX_QUOTE_ATT_KEY_ECDSA_P256);
    assert(memcmp(fixed.header.vendor_id, spm_quote_vendor_id, 16) == 0);
    assert(fixed.signature_data_len == size - sizeof(fixed));
    assert(memcmp(body, &fixed.report_body, sizeof(*body)) == 0);
    /* auth data, then the type-5 cert data reaching exactly the end */
    size_t at = sizeof(fixed) + SIG_DATA_SIZE;
    uint16_t auth_size, cert_type;
    uint32_t cert_size;
    memcpy(&auth_size, quote + at, 2);
    at += 2 + (size_t)auth_size;
    assert(at + 6 <= size);
    memcpy(&cert_type, quote + at, 2);
    memcpy(&cert_size, quote + at + 2, 4);
    assert(cert_type == SGX_QUOTE_CERT_TYPE_PCK_CHAIN);
    assert(at + 6 + (size_t)cert_size == size);
    assert(quote[size - 1] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    size_t quote_size = size - 1;
    uint8_t *quote = malloc(quote_size ? quote_size : 1);
    assert(quote);
    memcpy(quote, data + 1, quote_size);
    if (mode & MODE_RESIGN)
        resign(quote, quote_size, mode);

    struct sgx_report_body body;
    fuzz_log_reset();
    int ret = spm_quote_verify(quote, quote_size, ROOT_PEM, &body);
    assert(ret == 0 || ret == -EBADMSG || ret == -EKEYREJECTED);
    if (ret < 0) {
        assert(fuzz_log_count() > 0); /* every refusal says why */
    } else {
        check_accepted(quote, quote_size, &body);
        struct sgx_report_body again;
        assert(spm_quote_verify(quote, quote_size, ROOT_PEM, &again) == 0);
        assert(memcmp(&again, &body, sizeof(body)) == 0);
    }
    free(quote);
    return 0;
}
