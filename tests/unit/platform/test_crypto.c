/* Host crypto under the simulated platform: AES-128-CMAC against RFC 4493's
 * vectors (every SGX key and report MAC is one), the raw-encoding ECDSA
 * adapter quotes rely on, and the strict X.509 chain check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/common/fileio.h"
#include "host/crypto/ecdsa.h"
#include "host/crypto/hash.h"
#include "host/crypto/x509.h"
#include "host/platform/quote.h"

static void hex_decode(const char *hex, uint8_t *out)
{
    for (size_t i = 0; hex[2 * i]; i++) {
        char byte[3] = {hex[2 * i], hex[2 * i + 1], 0};
        out[i] = (uint8_t)strtoul(byte, NULL, 16);
    }
}

/* RFC 4493 section 4, examples 1-4. */
static void test_cmac_rfc4493(void **state)
{
    (void)state;
    static const struct {
        size_t size;
        const char *mac;
    } vectors[] = {
        {0, "bb1d6929e95937287fa37d129b756746"},
        {16, "070a16b46b4d4144f79bdd9dd04a287c"},
        {40, "dfa66747de9ae63030ca32611497c827"},
        {64, "51f0bebf7e3b9d92fc49741779363cfe"},
    };
    uint8_t key[16], message[64], expected[16], mac[16];
    hex_decode("2b7e151628aed2a6abf7158809cf4f3c", key);
    hex_decode("6bc1bee22e409f96e93d7e117393172a"
               "ae2d8a571e03ac9c9eb76fac45af8e51"
               "30c81c46a35ce411e5fbc1191a0a52ef"
               "f69f2445df4f9b17ad2b417be66c3710",
               message);
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        hex_decode(vectors[i].mac, expected);
        assert_true(spm_aes128_cmac(key, message, vectors[i].size, mac));
        assert_memory_equal(mac, expected, 16);
    }
}

static void test_vendor_id_is_documented_hash(void **state)
{
    (void)state;
    uint8_t digest[32];
    spm_sha256("SPM-SIM-QE", strlen("SPM-SIM-QE"), digest);
    assert_memory_equal(spm_quote_vendor_id, digest, 16);
    static const uint8_t intel_qe[16] = {0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9,
                                         0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07};
    assert_memory_not_equal(spm_quote_vendor_id, intel_qe, 16);
}

static void test_ecdsa_sign_verify(void **state)
{
    (void)state;
    struct spm_ec_key *key = NULL, *other = NULL;
    uint8_t public_key[64], other_public[64], sig[64];
    const char message[] = "attested bytes";
    assert_int_equal(spm_ec_key_generate(&key), 0);
    assert_int_equal(spm_ec_key_generate(&other), 0);
    assert_int_equal(spm_ec_key_public(key, public_key), 0);
    assert_int_equal(spm_ec_key_public(other, other_public), 0);
    assert_int_equal(spm_ec_sign(key, message, sizeof(message), sig), 0);
    assert_true(spm_ec_verify(public_key, message, sizeof(message), sig));
    assert_false(spm_ec_verify(other_public, message, sizeof(message), sig));
    assert_false(spm_ec_verify(public_key, message, sizeof(message) - 1, sig));
    for (size_t i = 0; i < sizeof(sig); i++) {
        sig[i] ^= 0x01;
        assert_false(spm_ec_verify(public_key, message, sizeof(message), sig));
        sig[i] ^= 0x01;
    }
    /* A point off the curve is refused, not "verified". */
    uint8_t bogus[64];
    memcpy(bogus, public_key, 64);
    bogus[63] ^= 0x01;
    struct spm_ec_key *pub = NULL;
    assert_int_equal(spm_ec_key_from_public(bogus, &pub), -EBADMSG);
    assert_false(spm_ec_verify(bogus, message, sizeof(message), sig));
    /* A public-only key cannot sign or be exported as a private key. */
    assert_int_equal(spm_ec_key_from_public(public_key, &pub), 0);
    char *pem = NULL;
    size_t pem_size = 0;
    assert_int_equal(spm_ec_sign(pub, message, sizeof(message), sig), -EINVAL);
    assert_int_equal(spm_ec_key_to_pem(pub, &pem, &pem_size), -EINVAL);
    spm_ec_key_free(pub);
    spm_ec_key_free(other);
    spm_ec_key_free(key);
}

static void test_ecdsa_pem_roundtrip(void **state)
{
    (void)state;
    struct spm_ec_key *key = NULL, *back = NULL;
    char *pem = NULL;
    size_t pem_size = 0;
    uint8_t a[64], b[64], sig[64];
    assert_int_equal(spm_ec_key_generate(&key), 0);
    assert_int_equal(spm_ec_key_to_pem(key, &pem, &pem_size), 0);
    assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    assert_int_equal(spm_ec_key_from_pem(pem, pem_size, &back), 0);
    assert_int_equal(spm_ec_key_public(key, a), 0);
    assert_int_equal(spm_ec_key_public(back, b), 0);
    assert_memory_equal(a, b, 64);
    assert_int_equal(spm_ec_sign(back, "x", 1, sig), 0);
    assert_true(spm_ec_verify(a, "x", 1, sig));
    /* Truncated or foreign PEM is refused. */
    struct spm_ec_key *broken = NULL;
    assert_int_equal(spm_ec_key_from_pem(pem, pem_size / 2, &broken), -EBADMSG);
    assert_int_equal(spm_ec_key_from_pem("not a key", 9, &broken), -EBADMSG);
    spm_wipe(pem, pem_size);
    free(pem);
    spm_ec_key_free(back);
    spm_ec_key_free(key);
}

struct pki {
    struct spm_ec_key *ca_key, *leaf_key;
    char *ca, *leaf, *chain;
    size_t ca_size, leaf_size, chain_size;
};

static void make_pki(struct pki *pki, const char *name)
{
    memset(pki, 0, sizeof(*pki));
    assert_int_equal(spm_ec_key_generate(&pki->ca_key), 0);
    assert_int_equal(spm_ec_key_generate(&pki->leaf_key), 0);
    assert_int_equal(spm_x509_create_ca(pki->ca_key, name, 30, &pki->ca, &pki->ca_size), 0);
    assert_int_equal(spm_x509_issue(pki->ca_key, pki->ca, pki->ca_size, pki->leaf_key, "leaf", 30,
                                    &pki->leaf, &pki->leaf_size),
                     0);
    pki->chain_size = pki->leaf_size + pki->ca_size;
    pki->chain = malloc(pki->chain_size + 1);
    assert_non_null(pki->chain);
    memcpy(pki->chain, pki->leaf, pki->leaf_size);
    memcpy(pki->chain + pki->leaf_size, pki->ca, pki->ca_size + 1);
}

static void free_pki(struct pki *pki)
{
    free(pki->chain);
    free(pki->leaf);
    free(pki->ca);
    spm_ec_key_free(pki->leaf_key);
    spm_ec_key_free(pki->ca_key);
}

static void test_x509_chain(void **state)
{
    (void)state;
    struct pki a, b;
    make_pki(&a, "CA A");
    make_pki(&b, "CA B");
    uint8_t leaf_public[64], expected[64];
    assert_int_equal(spm_ec_key_public(a.leaf_key, expected), 0);

    assert_int_equal(spm_x509_check_ca(a.ca, a.ca_size, a.ca_key), 0);
    assert_int_equal(spm_x509_check_ca(a.ca, a.ca_size, b.ca_key), -EKEYREJECTED);
    assert_int_equal(spm_x509_check_ca(a.leaf, a.leaf_size, NULL), -EKEYREJECTED);
    assert_int_equal(spm_x509_check_ca("junk", 4, NULL), -EBADMSG);

    assert_int_equal(spm_x509_verify_chain(a.chain, a.chain_size, a.ca, a.ca_size, leaf_public), 0);
    assert_memory_equal(leaf_public, expected, 64);
    /* Another CA is not trusted for it. */
    assert_int_equal(spm_x509_verify_chain(a.chain, a.chain_size, b.ca, b.ca_size, leaf_public),
                     -EKEYREJECTED);
    /* The leaf alone, or the root alone, is not a chain. */
    assert_int_equal(spm_x509_verify_chain(a.leaf, a.leaf_size, a.ca, a.ca_size, leaf_public),
                     -EBADMSG);
    /* A non-canonical encoding of the same certificates (CRLF) is refused. */
    char *crlf = malloc(2 * a.chain_size);
    size_t n = 0;
    for (size_t i = 0; i < a.chain_size; i++) {
        if (a.chain[i] == '\n')
            crlf[n++] = '\r';
        crlf[n++] = a.chain[i];
    }
    assert_int_equal(spm_x509_verify_chain(crlf, n, a.ca, a.ca_size, leaf_public), -EBADMSG);
    free(crlf);
    /* The leaf of A followed by B's root: the copy must be the trusted root. */
    char *mixed = malloc(a.leaf_size + b.ca_size);
    memcpy(mixed, a.leaf, a.leaf_size);
    memcpy(mixed + a.leaf_size, b.ca, b.ca_size);
    assert_int_equal(
        spm_x509_verify_chain(mixed, a.leaf_size + b.ca_size, a.ca, a.ca_size, leaf_public),
        -EKEYREJECTED);
    free(mixed);
    /* Issuing with a key that is not the CA's is refused. */
    char *pem = NULL;
    size_t pem_size = 0;
    assert_int_equal(
        spm_x509_issue(b.ca_key, a.ca, a.ca_size, a.leaf_key, "x", 30, &pem, &pem_size),
        -EKEYREJECTED);

    char subject[256], issuer[256];
    assert_int_equal(
        spm_x509_names(a.leaf, a.leaf_size, subject, sizeof(subject), issuer, sizeof(issuer)), 0);
    assert_string_equal(subject, "CN=leaf,O=SPM");
    assert_string_equal(issuer, "CN=CA A,O=SPM");
    free_pki(&b);
    free_pki(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmac_rfc4493),
        cmocka_unit_test(test_vendor_id_is_documented_hash),
        cmocka_unit_test(test_ecdsa_sign_verify),
        cmocka_unit_test(test_ecdsa_pem_roundtrip),
        cmocka_unit_test(test_x509_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
