/* RSA-3072 / e = 3 over OpenSSL 3 for SIGSTRUCT: key generation, PEM, PKCS#1
 * v1.5 SHA-256 signatures and the Q1/Q2 values EINIT uses to check them
 * without a division. It exists so that the image module never sees an
 * OpenSSL type; see rsa.h for the contract. */
#include "rsa.h"
#include "crypto_internal.h"
#include "host/common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

struct spm_rsa_key {
    EVP_PKEY *pkey;
};

static void log_openssl(const char *what)
{
    unsigned long err = ERR_get_error();
    char buf[256] = "no OpenSSL error queued";
    if (err)
        ERR_error_string_n(err, buf, sizeof(buf));
    spm_error("%s: %s", what, buf);
    ERR_clear_error();
}

int spm_rsa_generate(struct spm_rsa_key **key)
{
    int ret = -EIO;
    struct spm_rsa_key *out = calloc(1, sizeof(*out));
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *e = BN_new();
    if (!out || !ctx || !e) {
        ret = -ENOMEM;
        goto out;
    }
    if (!BN_set_word(e, SPM_RSA_EXPONENT) || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)SPM_RSA3072_SIZE * 8) <= 0 ||
        EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) <= 0 ||
        EVP_PKEY_generate(ctx, &out->pkey) <= 0) {
        log_openssl("RSA-3072 key generation failed");
        goto out;
    }
    *key = out;
    out = NULL;
    ret = 0;
out:
    BN_free(e);
    EVP_PKEY_CTX_free(ctx);
    spm_rsa_free(out);
    return ret;
}

int spm_rsa_private_pem(const struct spm_rsa_key *key, char **pem, size_t *pem_size)
{
    int ret = -EIO;
    BIO *bio = BIO_new(BIO_s_secmem());
    if (!bio)
        return -ENOMEM;
    if (!PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL)) {
        log_openssl("cannot serialise the RSA key");
        goto out;
    }
    ret = spm_crypto_bio_to_buffer(bio, pem, pem_size);
out:
    BIO_free(bio); /* secmem BIO: cleared on free */
    return ret;
}

/* 0 if pkey is RSA with a 3072-bit modulus and e == 3; logs otherwise. */
static int check_author_key(EVP_PKEY *pkey, const char *name)
{
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        spm_error("%s: not an RSA key; SGX enclave signing keys are RSA-3072 with exponent 3 "
                  "(create one with 'spm keygen')",
                  name);
        return -EINVAL;
    }
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits != (int)SPM_RSA3072_SIZE * 8) {
        spm_error("%s: RSA key has %d bits; SGX requires exactly 3072", name, bits);
        return -EINVAL;
    }
    BIGNUM *e = NULL;
    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e)) {
        log_openssl("cannot read the RSA public exponent");
        return -EIO;
    }
    int ok = BN_is_word(e, SPM_RSA_EXPONENT);
    BN_free(e);
    if (!ok) {
        spm_error("%s: RSA public exponent is not 3, which SGX requires (SIGSTRUCT.EXPONENT)",
                  name);
        return -EINVAL;
    }
    return 0;
}

int spm_rsa_read_private_pem(const void *pem, size_t pem_size, const char *name,
                             struct spm_rsa_key **key)
{
    if (pem_size > INT32_MAX)
        return -EINVAL;
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_size);
    if (!bio)
        return -ENOMEM;
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pkey) {
        ERR_clear_error();
        spm_error("%s: not a PEM private key (expected an unencrypted 'BEGIN PRIVATE KEY' "
                  "block as written by 'spm keygen')",
                  name);
        return -EINVAL;
    }
    int ret = check_author_key(pkey, name);
    if (ret < 0) {
        EVP_PKEY_free(pkey);
        return ret;
    }
    struct spm_rsa_key *out = calloc(1, sizeof(*out));
    if (!out) {
        EVP_PKEY_free(pkey);
        return -ENOMEM;
    }
    out->pkey = pkey;
    *key = out;
    return 0;
}

void spm_rsa_free(struct spm_rsa_key *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey); /* clears private components */
    free(key);
}

int spm_rsa_modulus(const struct spm_rsa_key *key, uint8_t modulus_be[SPM_RSA3072_SIZE])
{
    BIGNUM *n = NULL;
    if (!EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_RSA_N, &n)) {
        log_openssl("cannot read the RSA modulus");
        return -EIO;
    }
    int ok = BN_bn2binpad(n, modulus_be, SPM_RSA3072_SIZE) == (int)SPM_RSA3072_SIZE;
    BN_free(n);
    return ok ? 0 : -EIO;
}

int spm_rsa_sign_sha256(const struct spm_rsa_key *key, const void *msg, size_t size,
                        uint8_t signature_be[SPM_RSA3072_SIZE])
{
    int ret = -EIO;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t sig_size = SPM_RSA3072_SIZE;
    if (!md)
        return -ENOMEM;
    if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key->pkey) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0 ||
        EVP_DigestSign(md, signature_be, &sig_size, msg, size) <= 0) {
        log_openssl("RSA PKCS#1 v1.5 signing failed");
        goto out;
    }
    if (sig_size != SPM_RSA3072_SIZE) {
        spm_error("RSA signature is %zu bytes, expected %u", sig_size, SPM_RSA3072_SIZE);
        goto out;
    }
    ret = 0;
out:
    EVP_MD_CTX_free(md);
    return ret;
}

/* Builds a public key from (n, e). *pkey owned by the caller. */
static int public_key(const uint8_t modulus_be[SPM_RSA3072_SIZE], uint32_t exponent,
                      EVP_PKEY **pkey)
{
    int ret = -ENOMEM;
    BIGNUM *n = BN_bin2bn(modulus_be, SPM_RSA3072_SIZE, NULL);
    BIGNUM *e = BN_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!n || !e || !bld || !ctx || !BN_set_word(e, exponent))
        goto out;
    if (BN_is_zero(n) || !BN_is_odd(n)) {
        ret = -EINVAL;
        goto out;
    }
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)))
        goto out;
    if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        ERR_clear_error();
        ret = -EINVAL;
        goto out;
    }
    ret = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(e);
    BN_free(n);
    return ret;
}

int spm_rsa_verify_sha256(const uint8_t modulus_be[SPM_RSA3072_SIZE], uint32_t exponent,
                          const void *msg, size_t size,
                          const uint8_t signature_be[SPM_RSA3072_SIZE])
{
    EVP_PKEY *pkey = NULL;
    int ret = public_key(modulus_be, exponent, &pkey);
    if (ret < 0)
        return ret;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (!md) {
        EVP_PKEY_free(pkey);
        return -ENOMEM;
    }
    ret = -EKEYREJECTED;
    if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pkey) > 0 &&
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0 &&
        EVP_DigestVerify(md, signature_be, SPM_RSA3072_SIZE, msg, size) == 1)
        ret = 0;
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    return ret;
}

int spm_rsa_sgx_q1q2(const uint8_t signature_be[SPM_RSA3072_SIZE],
                     const uint8_t modulus_be[SPM_RSA3072_SIZE], uint8_t q1_be[SPM_RSA3072_SIZE],
                     uint8_t q2_be[SPM_RSA3072_SIZE])
{
    int ret = -ENOMEM;
    BN_CTX *bn = BN_CTX_new();
    BIGNUM *s = BN_bin2bn(signature_be, SPM_RSA3072_SIZE, NULL);
    BIGNUM *m = BN_bin2bn(modulus_be, SPM_RSA3072_SIZE, NULL);
    BIGNUM *s2 = BN_new(), *q1 = BN_new(), *r = BN_new(), *t = BN_new(), *q2 = BN_new();
    if (!bn || !s || !m || !s2 || !q1 || !r || !t || !q2)
        goto out;
    if (BN_is_zero(m) || BN_cmp(s, m) >= 0) {
        ret = -EINVAL;
        goto out;
    }
    /* s < m, so q1 < s and q2 < s: both fit in 384 bytes. */
    if (!BN_sqr(s2, s, bn) || !BN_div(q1, r, s2, m, bn) || !BN_mul(t, s, r, bn) ||
        !BN_div(q2, NULL, t, m, bn))
        goto out;
    if (BN_bn2binpad(q1, q1_be, SPM_RSA3072_SIZE) != (int)SPM_RSA3072_SIZE ||
        BN_bn2binpad(q2, q2_be, SPM_RSA3072_SIZE) != (int)SPM_RSA3072_SIZE) {
        ret = -EIO;
        goto out;
    }
    ret = 0;
out:
    BN_free(q2);
    BN_free(t);
    BN_free(r);
    BN_free(q1);
    BN_free(s2);
    BN_free(m);
    BN_free(s);
    BN_CTX_free(bn);
    return ret;
}
