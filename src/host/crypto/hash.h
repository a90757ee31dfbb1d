/* Host hashing, MACs and randomness. The host crypto module (src/host/crypto/)
 * is the only place that includes OpenSSL; everything else calls these. */
#ifndef SPM_HOST_CRYPTO_HASH_H
#define SPM_HOST_CRYPTO_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Incremental SHA-256 with a caller-owned context (no allocation). */
struct spm_sha256 {
    uint64_t opaque[16];
};
void spm_sha256_init(struct spm_sha256 *ctx);
void spm_sha256_update(struct spm_sha256 *ctx, const void *data, size_t size);
void spm_sha256_final(struct spm_sha256 *ctx, uint8_t digest[32]);
void spm_sha256(const void *data, size_t size, uint8_t digest[32]);

/* AES-128-CMAC (RFC 4493). Returns false only if OpenSSL fails. */
bool spm_aes128_cmac(const uint8_t key[16], const void *data, size_t size, uint8_t mac[16])
    __attribute__((warn_unused_result));

/* HMAC-SHA-256. */
bool spm_hmac_sha256(const void *key, size_t key_size, const void *data, size_t size,
                     uint8_t mac[32]) __attribute__((warn_unused_result));

/* Cryptographically secure random bytes (OpenSSL's DRBG over getrandom). */
bool spm_random(void *out, size_t size) __attribute__((warn_unused_result));

#endif
