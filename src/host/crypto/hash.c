/* SHA-256, AES-CMAC, HMAC and randomness over OpenSSL 3. SHA-256 is
 * implemented on OpenSSL's low-level SHA256_CTX through a caller-owned
 * context so that measuring an enclave (millions of updates) allocates
 * nothing; the deprecation of that API in OpenSSL 3 is silenced here only. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "hash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(struct spm_sha256), "SHA256_CTX fits");

void spm_sha256_init(struct spm_sha256 *ctx)
{
    SHA256_Init((SHA256_CTX *)ctx);
}

void spm_sha256_update(struct spm_sha256 *ctx, const void *data, size_t size)
{
    SHA256_Update((SHA256_CTX *)ctx, data, size);
}

void spm_sha256_final(struct spm_sha256 *ctx, uint8_t digest[32])
{
    SHA256_Final(digest, (SHA256_CTX *)ctx);
    OPENSSL_cleanse(ctx, sizeof(*ctx));
}

void spm_sha256(const void *data, size_t size, uint8_t digest[32])
{
    SHA256(data, size, digest);
}

bool spm_aes128_cmac(const uint8_t key[16], const void *data, size_t size, uint8_t mac[16])
{
    bool ok = false;
    EVP_MAC *alg = EVP_MAC_fetch(NULL, "CMAC", NULL);
    EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, "AES-128-CBC", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t out_size = 0;
    if (ctx && EVP_MAC_init(ctx, key, 16, params) && EVP_MAC_update(ctx, data, size) &&
        EVP_MAC_final(ctx, mac, &out_size, 16) && out_size == 16)
        ok = true;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(alg);
    return ok;
}

bool spm_hmac_sha256(const void *key, size_t key_size, const void *data, size_t size,
                     uint8_t mac[32])
{
    unsigned int out_size = 0;
    return HMAC(EVP_sha256(), key, (int)key_size, data, size, mac, &out_size) && out_size == 32;
}

bool spm_random(void *out, size_t size)
{
    return RAND_bytes(out, (int)size) == 1;
}
