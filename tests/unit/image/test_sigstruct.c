/* SIGSTRUCT: signing then verifying works; the format is SGX's (headers,
 * exponent, little-endian modulus and signature, Q1/Q2) as checked with
 * OpenSSL directly rather than through SPM's RSA adapter; MRSIGNER is
 * SHA-256 of the LE modulus computed independently; flipping any byte of
 * the signed ranges, the signature, the modulus, Q1, Q2 or the exponent
 * makes verification fail, every one of them. Also the author key file:
 * mode 0600, never overwritten, wrong keys refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "host/image/image.h"
#include "host/image/image_internal.h"
#include "test_util.h"

struct ctx {
    char *dir;
    const char *key; /* path */
    struct sgx_sigstruct sig;
};

static char g_key_path[4096];

static int setup(void **state)
{
    static struct ctx c;
    c.dir = tu_mkdtemp();
    snprintf(g_key_path, sizeof(g_key_path), "%s/author.pem", c.dir);
    c.key = g_key_path;
    if (spm_keygen(c.key) != 0)
        return -1;
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    tu_rmdir(c->dir);
    free(c->dir);
    return 0;
}

static void fill_body(struct sgx_sigstruct *sig)
{
    memset(sig, 0, sizeof(*sig));
    sig->header.date = 0x20250714;
    sig->body.misc_select = 0;
    sig->body.misc_mask = 0xffffffff;
    sig->body.attributes.flags = SGX_FLAGS_MODE64BIT | SGX_FLAGS_DEBUG;
    sig->body.attributes.xfrm = SGX_XFRM_LEGACY;
    sig->body.attribute_mask.flags = 0xFFFFFFFFFFFFFFFBull;
    for (int i = 0; i < 32; i++)
        sig->body.mr_enclave[i] = (uint8_t)(i * 3 + 1);
    sig->body.isv_prod_id = 0x1234;
    sig->body.isv_svn = 7;
}

static EVP_PKEY *read_key_openssl(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

static void reverse(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[n - 1 - i];
}

static void test_keygen_file(void **state)
{
    struct ctx *c = *state;
    struct stat st;
    assert_int_equal(stat(c->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    uint8_t before[64];
    size_t size;
    uint8_t *pem = tu_read(c->key, &size);
    memcpy(before, pem, sizeof(before));
    free(pem);
    assert_non_null(strstr((const char *)before, "BEGIN PRIVATE KEY"));

    tu_capture_begin();
    int ret = spm_keygen(c->key);
    char *log = tu_capture_end();
    assert_int_equal(ret, -EEXIST);
    assert_non_null(strstr(log, "already exists"));
    free(log);
    pem = tu_read(c->key, &size);
    assert_memory_equal(pem, before, sizeof(before)); /* untouched */
    free(pem);

    EVP_PKEY *k = read_key_openssl(c->key);
    assert_int_equal(EVP_PKEY_get_bits(k), 3072);
    BIGNUM *e = NULL;
    assert_true(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e));
    assert_true(BN_is_word(e, 3));
    BN_free(e);
    EVP_PKEY_free(k);
}

static void test_sign_verify_format(void **state)
{
    struct ctx *c = *state;
    struct sgx_sigstruct *sig = &c->sig;
    fill_body(sig);
    assert_int_equal(spm_sigstruct_sign(sig, c->key), 0);
    uint8_t mrsigner[32];
    assert_int_equal(spm_sigstruct_verify(sig, mrsigner), 0);

    const uint8_t *raw = (const uint8_t *)sig;
    static const uint8_t h1[] = {0x06, 0, 0, 0, 0xE1, 0, 0, 0, 0, 0, 0x01, 0};
    static const uint8_t h2[] = {1, 1, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 1, 0, 0, 0};
    assert_memory_equal(raw, h1, 12);
    assert_memory_equal(raw + 24, h2, 16);
    assert_int_equal(sig->header.vendor, 0);
    assert_int_equal(sig->header.date, 0x20250714);
    assert_int_equal(raw[512], 3);
    assert_int_equal(raw[513] | raw[514] | raw[515], 0);
    assert_int_equal(sig->body.isv_prod_id, 0x1234); /* body untouched */
    assert_int_equal(sig->body.mr_enclave[31], 31 * 3 + 1);

    /* The modulus field is the key's modulus, little-endian; MRSIGNER is
     * SHA-256 of those 384 bytes. */
    EVP_PKEY *k = read_key_openssl(c->key);
    BIGNUM *n = NULL;
    assert_true(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n));
    uint8_t n_le[384], n_be[384], digest[32];
    assert_int_equal(BN_bn2lebinpad(n, n_le, 384), 384);
    assert_int_equal(BN_bn2binpad(n, n_be, 384), 384);
    assert_memory_equal(sig->modulus, n_le, 384);
    unsigned digest_size = 0;
    assert_int_equal(EVP_Digest(n_le, 384, digest, &digest_size, EVP_sha256(), NULL), 1);
    assert_memory_equal(mrsigner, digest, 32);
    uint8_t from_key[32];
    assert_int_equal(spm_key_mrsigner(c->key, from_key), 0);
    assert_memory_equal(from_key, digest, 32);

    /* The signature, byte-reversed, is PKCS#1 v1.5 SHA-256 over
     * [0..127] || [900..1027], verified by OpenSSL directly. */
    uint8_t msg[256], s_be[384];
    memcpy(msg, raw, 128);
    memcpy(msg + 128, raw + 900, 128);
    reverse(s_be, sig->signature, 384);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestVerify(md, s_be, 384, msg, 256), 1);
    EVP_MD_CTX_free(md);

    /* Q1 = floor(s^2 / m), Q2 = floor(s * (s^2 mod m) / m), LE. */
    BN_CTX *bn = BN_CTX_new();
    BIGNUM *s = BN_lebin2bn(sig->signature, 384, NULL);
    BIGNUM *q1 = BN_lebin2bn(sig->q1, 384, NULL), *q2 = BN_lebin2bn(sig->q2, 384, NULL);
    BIGNUM *s2 = BN_new(), *lhs = BN_new(), *r = BN_new(), *t = BN_new();
    assert_true(BN_sqr(s2, s, bn));
    assert_true(BN_mul(lhs, q1, n, bn));
    assert_true(BN_sub(r, s2, lhs)); /* r = s^2 - q1*m must be in [0, m) */
    assert_false(BN_is_negative(r));
    assert_true(BN_cmp(r, n) < 0);
    assert_true(BN_mul(t, s, r, bn));
    assert_true(BN_mul(lhs, q2, n, bn));
    assert_true(BN_sub(t, t, lhs));
    assert_false(BN_is_negative(t));
    assert_true(BN_cmp(t, n) < 0);
    BN_free(t);
    BN_free(r);
    BN_free(lhs);
    BN_free(s2);
    BN_free(q2);
    BN_free(q1);
    BN_free(s);
    BN_CTX_free(bn);
    BN_free(n);
    EVP_PKEY_free(k);

    /* Deterministic: PKCS#1 v1.5 of the same bytes gives the same SIGSTRUCT. */
    struct sgx_sigstruct again;
    fill_body(&again);
    assert_int_equal(spm_sigstruct_sign(&again, c->key), 0);
    assert_memory_equal(&again, sig, sizeof(again));
}

static void test_every_tamper_rejected(void **state)
{
    struct ctx *c = *state;
    fill_body(&c->sig);
    assert_int_equal(spm_sigstruct_sign(&c->sig, c->key), 0);
    static const struct {
        size_t start, end;
    } ranges[] = {
        {0, 128},     /* header, signed */
        {128, 512},   /* modulus */
        {512, 516},   /* exponent */
        {516, 900},   /* signature */
        {900, 1028},  /* body, signed */
        {1028, 1040}, /* reserved, unsigned: must be zero */
        {1040, 1424}, /* q1 */
        {1424, 1808}, /* q2 */
    };
    size_t tried = 0, rejected = 0;
    for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
        for (size_t pos = ranges[r].start; pos < ranges[r].end; pos++) {
            for (unsigned bit = 0; bit < 8; bit += 7) { /* lowest and highest bit */
                struct sgx_sigstruct t = c->sig;
                ((uint8_t *)&t)[pos] ^= (uint8_t)(1u << bit);
                uint8_t mrsigner[32];
                tu_capture_begin();
                int ret = spm_sigstruct_verify(&t, mrsigner);
                free(tu_capture_end());
                tried++;
                if (ret == -EBADMSG || ret == -EKEYREJECTED)
                    rejected++;
                else
                    fprintf(stderr, "flip of bit %u at byte %zu: verify returned %d\n", bit, pos,
                            ret);
            }
        }
    }
    assert_int_equal(tried, 2 * 1808);
    assert_int_equal(rejected, tried);
    uint8_t mrsigner[32];
    assert_int_equal(spm_sigstruct_verify(&c->sig, mrsigner), 0);
}

static void test_wrong_keys_refused(void **state)
{
    struct ctx *c = *state;
    struct sgx_sigstruct sig;
    fill_body(&sig);
    tu_capture_begin();
    int missing = spm_sigstruct_sign(&sig, tu_path(c->dir, "no-such-key.pem"));
    char *log = tu_capture_end();
    assert_int_equal(missing, -ENOENT);
    free(log);

    const char *garbage = tu_path(c->dir, "garbage.pem");
    tu_write(garbage, "not a key\n", 10);
    tu_capture_begin();
    int ret = spm_sigstruct_sign(&sig, garbage);
    log = tu_capture_end();
    assert_int_equal(ret, -EINVAL);
    assert_non_null(strstr(log, "not a PEM private key"));
    free(log);

    /* RSA keys SGX cannot use: 2048 bits, or e = 65537. */
    static const struct {
        int bits;
        unsigned e;
        const char *reason;
    } bad[] = {{2048, 3, "2048 bits"}, {3072, 65537, "exponent is not 3"}};
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        BIGNUM *e = BN_new();
        EVP_PKEY *k = NULL;
        assert_true(BN_set_word(e, bad[i].e));
        assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
        assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(kc, bad[i].bits) > 0);
        assert_true(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(kc, e) > 0);
        assert_int_equal(EVP_PKEY_generate(kc, &k), 1);
        const char *path = tu_path(c->dir, "bad.pem");
        FILE *f = fopen(path, "w");
        assert_true(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
        fclose(f);
        tu_capture_begin();
        ret = spm_sigstruct_sign(&sig, path);
        log = tu_capture_end();
        assert_int_equal(ret, -EINVAL);
        if (!strstr(log, bad[i].reason))
            fail_msg("expected '%s' in: %s", bad[i].reason, log);
        free(log);
        EVP_PKEY_free(k);
        BN_free(e);
        EVP_PKEY_CTX_free(kc);
    }
}

static void test_vendor_and_type(void **state)
{
    struct ctx *c = *state;
    struct sgx_sigstruct sig;
    uint8_t mrsigner[32];
    fill_body(&sig);
    sig.header.vendor = SGX_SIGSTRUCT_VENDOR_INTEL;
    sig.header.type = SGX_SIGSTRUCT_TYPE_DEBUG_SIGNER;
    assert_int_equal(spm_sigstruct_sign(&sig, c->key), 0);
    assert_int_equal(spm_sigstruct_verify(&sig, mrsigner), 0);

    fill_body(&sig);
    sig.header.vendor = 0x1234; /* the kernel refuses anything but 0 / 0x8086 */
    tu_capture_begin();
    int ret = spm_sigstruct_sign(&sig, c->key);
    free(tu_capture_end());
    assert_int_equal(ret, -EINVAL);
}

static void test_date_bcd(void **state)
{
    (void)state;
    assert_int_equal(img_sigstruct_date(1752451200), 0x20250714); /* 2025-07-14 00:00 UTC */
    assert_int_equal(img_sigstruct_date(946684799), 0x19991231);
    assert_int_equal(img_sigstruct_date(0), 0x19700101);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_file),           cmocka_unit_test(test_sign_verify_format),
        cmocka_unit_test(test_every_tamper_rejected), cmocka_unit_test(test_wrong_keys_refused),
        cmocka_unit_test(test_vendor_and_type),       cmocka_unit_test(test_date_bcd),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
