/* The Migration Enclave's own quote verifier, me_quote_verify
 * (src/enclaves/me/me_quote.c): the trusted, freestanding code and the
 * BearSSL adapter compiled hosted, with the test provisioning CA
 * (fuzz/attest/testpki/ca) pinned as its root exactly as the build pins
 * the real one (`spm ca pin-source`).
 *
 * Input: byte 0 is the mode, the rest is the quote that a peer ME (through
 * two untrusted daemons) hands this one. Mode bit 0 set: the harness
 * re-signs the fuzzed quote with the test platform's attestation key first
 * (bit 1 also writes that key into attest_pub_key, bit 2 recomputes the QE
 * REPORTDATA), so that the checks behind the two signatures see fuzzed
 * bytes; without it nearly every mutation ends at a signature.
 *
 * Checked: the result is 0, -EBADMSG, -EKEYREJECTED or -ENOMEM (never
 * -EINVAL: the pinned root is fine); nothing is written on failure; on
 * success the body is the quote's own, platform_id is SHA-256 of the
 * attestation key in it, the layout is what the verifier promises, and a
 * second verification agrees. The quote sits in a buffer of exactly its
 * size, so ASan reports any read past it. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "me_quote.h"
#include "trusted_pki.h"

#define MODE_RESIGN   0x01u
#define MODE_SET_KEY  0x02u
#define MODE_BIND_QE  0x04u
#define SIG_DATA_SIZE sizeof(struct sgx_ecdsa_sig_data)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_pki_init();
    return 0;
}

static void check_accepted(const uint8_t *quote, size_t size, const struct sgx_report_body *body,
                           const uint8_t platform_id[32])
{
    struct sgx_quote fixed;
    struct sgx_ecdsa_sig_data sig;
    assert(size >= sizeof(fixed) + SIG_DATA_SIZE + 2 + 6 + 2);
    memcpy(&fixed, quote, sizeof(fixed));
    memcpy(&sig, quote + sizeof(fixed), sizeof(sig));
    assert(fixed.header.version == SGX_QUOTE_VERSION);
    assert(fixed.header.att_key_type == SGX_QUOTE_ATT_KEY_ECDSA_P256);
    assert(fixed.signature_data_len == size - sizeof(fixed));
    assert(memcmp(body, &fixed.report_body, sizeof(*body)) == 0);
    assert(!(sig.qe_report.attributes.flags & SGX_FLAGS_DEBUG));
    uint8_t expected_id[32];
    tc_sha256(sig.attest_pub_key, sizeof(sig.attest_pub_key), expected_id);
    assert(memcmp(platform_id, expected_id, 32) == 0);
    /* only the test platform's key chains to the test root */
    assert(memcmp(sig.attest_pub_key, fuzz_pki_attest_public(), 64) == 0);
    size_t at = sizeof(fixed) + SIG_DATA_SIZE;
    uint16_t auth_size, cert_type;
    uint32_t cert_size;
    memcpy(&auth_size, quote + at, 2);
    at += 2 + (size_t)auth_size;
    assert(at + 6 <= size);
    memcpy(&cert_type, quote + at, 2);
    memcpy(&cert_size, quote + at + 2, 4);
    assert(cert_type == SGX_QUOTE_CERT_TYPE_PCK_CHAIN);
    assert(at + 6 + (size_t)cert_size == size && quote[size - 1] == 0);
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
        fuzz_pki_resign(quote, quote_size, mode & MODE_SET_KEY, mode & MODE_BIND_QE);

    struct sgx_report_body body, untouched;
    uint8_t platform_id[32], untouched_id[32];
    memset(&body, 0xa5, sizeof(body));
    memset(platform_id, 0xa5, sizeof(platform_id));
    memcpy(&untouched, &body, sizeof(body));
    memcpy(untouched_id, platform_id, sizeof(platform_id));
    int ret = me_quote_verify(quote, quote_size, &body, platform_id);
    assert(ret == 0 || ret == -EBADMSG || ret == -EKEYREJECTED || ret == -ENOMEM);
    if (ret < 0) {
        assert(memcmp(&body, &untouched, sizeof(body)) == 0);
        assert(memcmp(platform_id, untouched_id, sizeof(platform_id)) == 0);
    } else {
        check_accepted(quote, quote_size, &body, platform_id);
        struct sgx_report_body again;
        uint8_t again_id[32];
        assert(me_quote_verify(quote, quote_size, &again, again_id) == 0);
        assert(memcmp(&again, &body, sizeof(body)) == 0 && memcmp(again_id, platform_id, 32) == 0);
    }
    free(quote);
    return 0;
}
