/* ECDSA P-256 over OpenSSL 3's EVP interface, converting between OpenSSL's
 * DER signatures / SubjectPublicKeyInfo world and the fixed-size raw
 * encodings of the DCAP quote (r||s, x||y, big-endian). One of the three
 * files allowed to include OpenSSL (with hash.c and x509.c). */
#include "ecdsa.h"
#include "crypto_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "host/common/log.h"

#define EC_GROUP_NAME      "prime256v1"
#define EC_COORDINATE_SIZE 32

struct spm_ec_key {
    EVP_PKEY *pkey;
    bool has_private;
};

struct evp_pkey_st *spm_ec_key_evp(const struct spm_ec_key *key)
{
    return key->pkey;
}

/* True if pkey is an EC key on P-256 (the only curve quotes use). */
static bool is_p256(EVP_PKEY *pkey)
{
    char group[64];
    size_t group_size = 0;
    if (!EVP_PKEY_is_a(pkey, "EC"))
        return false;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &group_size))
        return false;
    return strcmp(group, EC_GROUP_NAME) == 0;
}

static int wrap(EVP_PKEY *pkey, bool has_private, struct spm_ec_key **out)
{
    struct spm_ec_key *key = calloc(1, sizeof(*key));
    if (!key) {
        EVP_PKEY_free(pkey);
        return -ENOMEM;
    }
    key->pkey = pkey;
    key->has_private = has_private;
    *out = key;
    return 0;
}

int spm_ec_key_generate(struct spm_ec_key **out)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!pkey) {
        spm_error("cannot generate an ECDSA P-256 key (OpenSSL failure)");
        return -EIO;
    }
    return wrap(pkey, true, out);
}

/* A PEM password callback that refuses: SPM's keys are unencrypted files
 * protected by their mode, and a library must never prompt on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

int spm_ec_key_from_pem(const char *pem, size_t pem_size, struct spm_ec_key **out)
{
    if (pem_size > INT32_MAX)
        return -EBADMSG;
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_size);
    if (!bio)
        return -ENOMEM;
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    BIO_free(bio);
    if (!pkey)
        return -EBADMSG;
    if (!is_p256(pkey)) {
        EVP_PKEY_free(pkey);
        return -EBADMSG;
    }
    return wrap(pkey, true, out);
}

int spm_ec_key_from_public(const uint8_t xy[SPM_EC_PUBLIC_SIZE], struct spm_ec_key **out)
{
    uint8_t point[1 + SPM_EC_PUBLIC_SIZE];
    point[0] = POINT_CONVERSION_UNCOMPRESSED;
    memcpy(point + 1, xy, SPM_EC_PUBLIC_SIZE);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, EC_GROUP_NAME, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx)
        return -ENOMEM;
    int ok = EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return -EBADMSG;
    /* fromdata decodes the point; the public check also rejects the point
     * at infinity and points outside the prime-order subgroup. */
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    ok = ctx && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        EVP_PKEY_free(pkey);
        return -EBADMSG;
    }
    return wrap(pkey, false, out);
}

int spm_ec_key_to_pem(const struct spm_ec_key *key, char **pem, size_t *pem_size)
{
    if (!key->has_private)
        return -EINVAL;
    /* A secure-memory BIO so the PEM copy inside OpenSSL is cleared too. */
    BIO *bio = BIO_new(BIO_s_secmem());
    if (!bio)
        return -ENOMEM;
    int ret = -EIO;
    if (!PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL))
        goto out;
    ret = spm_crypto_bio_to_buffer(bio, pem, pem_size);
out:
    BIO_free(bio);
    return ret;
}

static int get_coordinate(EVP_PKEY *pkey, const char *name, uint8_t out[EC_COORDINATE_SIZE])
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
        return -EIO;
    int ok = BN_bn2binpad(bn, out, EC_COORDINATE_SIZE) == EC_COORDINATE_SIZE;
    BN_free(bn);
    return ok ? 0 : -EIO;
}

int spm_ec_key_public(const struct spm_ec_key *key, uint8_t xy[SPM_EC_PUBLIC_SIZE])
{
    int ret = get_coordinate(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, xy);
    if (ret == 0)
        ret = get_coordinate(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, xy + EC_COORDINATE_SIZE);
    if (ret < 0)
        spm_error("cannot export an ECDSA public key (OpenSSL failure)");
    return ret;
}

int spm_ec_sign(const struct spm_ec_key *key, const void *data, size_t size,
                uint8_t signature[SPM_EC_SIGNATURE_SIZE])
{
    if (!key->has_private)
        return -EINVAL;
    int ret = -EIO;
    uint8_t der[128];
    size_t der_size = sizeof(der);
    ECDSA_SIG *sig = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return -ENOMEM;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1 ||
        EVP_DigestSign(md, der, &der_size, data, size) != 1)
        goto out;
    const unsigned char *cursor = der;
    sig = d2i_ECDSA_SIG(NULL, &cursor, (long)der_size);
    if (!sig)
        goto out;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, signature, EC_COORDINATE_SIZE) != EC_COORDINATE_SIZE ||
        BN_bn2binpad(s, signature + EC_COORDINATE_SIZE, EC_COORDINATE_SIZE) != EC_COORDINATE_SIZE)
        goto out;
    ret = 0;
out:
    if (ret < 0)
        spm_error("ECDSA signing failed (OpenSSL failure)");
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    return ret;
}

bool spm_ec_verify(const uint8_t public_xy[SPM_EC_PUBLIC_SIZE], const void *data, size_t size,
                   const uint8_t signature[SPM_EC_SIGNATURE_SIZE])
{
    bool ok = false;
    struct spm_ec_key *key = NULL;
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    EVP_MD_CTX *md = NULL;

    if (spm_ec_key_from_public(public_xy, &key) < 0)
        return false;
    sig = ECDSA_SIG_new();
    r = BN_bin2bn(signature, EC_COORDINATE_SIZE, NULL);
    s = BN_bin2bn(signature + EC_COORDINATE_SIZE, EC_COORDINATE_SIZE, NULL);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1)
        goto out;
    r = s = NULL; /* owned by sig now */
    int der_size = i2d_ECDSA_SIG(sig, &der);
    if (der_size <= 0)
        goto out;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1)
        goto out;
    ok = EVP_DigestVerify(md, der, (size_t)der_size, data, size) == 1;
out:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    BN_free(s);
    BN_free(r);
    ECDSA_SIG_free(sig);
    spm_ec_key_free(key);
    return ok;
}

void spm_ec_key_free(struct spm_ec_key *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}
