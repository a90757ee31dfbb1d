/* The trusted crypto adapter: the only trusted file that includes BearSSL.
 * Everything here uses caller-owned contexts and allocates nothing. */
#ifndef SPM_TRUSTED_CRYPTO_H
#define SPM_TRUSTED_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TC_HIDDEN __attribute__((visibility("hidden")))

/* SHA-256. */
void tc_sha256(const void *data, size_t size, uint8_t digest[32]) TC_HIDDEN;

/* AES-128-CMAC (RFC 4493). */
void tc_aes128_cmac(const uint8_t key[16], const void *data, size_t size,
                    uint8_t mac[16]) TC_HIDDEN;

/* AES-GCM with a 16- or 32-byte key, 16-byte tag, in place. Decryption
 * returns -EBADMSG when the tag does not match (and the data is then
 * garbage the caller must wipe). */
int tc_aes_gcm(const uint8_t *key, size_t key_size, const uint8_t *iv, size_t iv_size,
               const void *aad, size_t aad_size, void *data, size_t size, bool encrypt,
               uint8_t tag[16]) TC_HIDDEN;

/* HMAC-DRBG (SHA-256). `ctx` is opaque storage of TC_DRBG_SIZE bytes. */
#define TC_DRBG_SIZE 512u
void tc_drbg_init(void *ctx, const void *seed, size_t seed_size) TC_HIDDEN;
void tc_drbg_generate(void *ctx, void *out, size_t size) TC_HIDDEN;

/* ECDSA / ECDH over P-256; public keys are 0x04 || x || y. */
int tc_p256_keygen(void *drbg, uint8_t private_key[32], uint8_t public_key[65]) TC_HIDDEN;
int tc_p256_sign(const uint8_t private_key[32], const uint8_t hash[32], uint8_t sig[64]) TC_HIDDEN;
bool tc_p256_verify(const uint8_t public_key[65], const uint8_t hash[32],
                    const uint8_t sig[64]) TC_HIDDEN;
int tc_p256_ecdh(const uint8_t private_key[32], const uint8_t peer_public[65],
                 uint8_t shared_x[32]) TC_HIDDEN;

/* HMAC-SHA-256. */
void tc_hmac_sha256(const void *key, size_t key_size, const void *data, size_t size,
                    uint8_t mac[32]) TC_HIDDEN;

#endif
