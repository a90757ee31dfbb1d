/* The trusted crypto adapter: crypto.c, the only trusted file that includes
 * BearSSL, and gcm_chunk.c, the checkpoint engine's own AES-GCM.
 * Everything here uses caller-owned contexts and allocates nothing. */
#ifndef SPM_TRUSTED_CRYPTO_H
#define SPM_TRUSTED_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TC_HIDDEN __attribute__((visibility("hidden")))

/* SHA-256, of one buffer or of two concatenated. */
void tc_sha256(const void *data, size_t size, uint8_t digest[32]) TC_HIDDEN;
void tc_sha256_two(const void *a, size_t a_size, const void *b, size_t b_size,
                   uint8_t digest[32]) TC_HIDDEN;

/* AES-128-CMAC (RFC 4493). */
void tc_aes128_cmac(const uint8_t key[16], const void *data, size_t size,
                    uint8_t mac[16]) TC_HIDDEN;

/* AES-GCM with a 16- or 32-byte key, 16-byte tag, in place. Decryption
 * returns -EBADMSG when the tag does not match (and the data is then
 * garbage the caller must wipe). */
int tc_aes_gcm(const uint8_t *key, size_t key_size, const uint8_t *iv, size_t iv_size,
               const void *aad, size_t aad_size, void *data, size_t size, bool encrypt,
               uint8_t tag[16]) TC_HIDDEN;

/* AES-256-GCM over a chunk whose data arrives in pieces that need not be
 * contiguous (gcm_chunk.c: AES-NI and PCLMULQDQ, which every SGX CPU has).
 * The result is standard GCM with a 12-byte nonce and a 16-byte tag.
 *
 * A key (struct tc_gcm_key: the AES-256 schedule and powers of the GHASH
 * key H) is expanded once and may be shared read-only by any number of
 * chunks and threads. A chunk (struct tc_gcm_chunk) is one nonce: start it
 * with the AAD, then feed the data in order through one of
 *  - tc_gcm_chunk_encrypt: CTR and GHASH in one pass, from src to dst. The
 *    ciphertext is authenticated as computed, never read back from dst, so
 *    dst may be untrusted memory and the plaintext need not be staged;
 *  - tc_gcm_chunk_ctr (encrypts or decrypts in place) and/or
 *    tc_gcm_chunk_ghash (absorbs ciphertext) or tc_gcm_chunk_ghash_copy
 *    (absorbs ciphertext as it copies it in), as separate passes, so that a
 *    caller can authenticate ciphertext where it will stay before
 *    decrypting any of it.
 * Every piece but the last MUST be a multiple of 16 bytes, and a chunk MUST
 * NOT exceed 2^32 - 2 blocks. src and dst MUST be the same or not overlap.
 * Both contexts are caller-owned; the caller wipes the key
 * (tc_gcm_key_wipe) when done, tc_gcm_chunk_tag wipes the chunk. Nothing
 * here reads writable global data: the checkpoint engine runs it while the
 * enclave's data pages hold ciphertext. */
struct tc_gcm_key {
    _Alignas(16) uint8_t opaque[512];
};
struct tc_gcm_chunk {
    uint8_t y[16]; /* GHASH accumulator */
    uint8_t nonce[12];
    uint32_t counter; /* next CTR block counter */
    uint64_t aad_size;
    uint64_t data_size; /* bytes absorbed by GHASH */
};
void tc_gcm_key_init(struct tc_gcm_key *key, const uint8_t k[32]) TC_HIDDEN;
void tc_gcm_key_wipe(struct tc_gcm_key *key) TC_HIDDEN;
void tc_gcm_chunk_start(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk,
                        const uint8_t nonce[12], const void *aad, size_t aad_size) TC_HIDDEN;
void tc_gcm_chunk_encrypt(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk, const void *src,
                          void *dst, size_t size) TC_HIDDEN;
void tc_gcm_chunk_ctr(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk, void *data,
                      size_t size) TC_HIDDEN;
void tc_gcm_chunk_ghash(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk,
                        const void *ciphertext, size_t size) TC_HIDDEN;
/* Copies the ciphertext from src to dst and absorbs what it wrote to dst,
 * even if src changes meanwhile. */
void tc_gcm_chunk_ghash_copy(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk,
                             const void *src, void *dst, size_t size) TC_HIDDEN;
/* The tag over everything absorbed by tc_gcm_chunk_encrypt or the GHASH
 * functions. */
void tc_gcm_chunk_tag(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk,
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

/* ---- Certificates (for quote verification inside an enclave) ----
 *
 * A certificate chain arrives as PEM text from an attacker. It is accepted
 * only in the canonical form OpenSSL writes and SPM's CA tools produce:
 * "-----BEGIN CERTIFICATE-----\n", base64 in 64-column lines each ending
 * in "\n", "-----END CERTIFICATE-----\n", blocks back to back, no other
 * text. So no byte of it can change without changing the certificates
 * themselves (the host verifier applies the same rule). */
struct tc_der_cert {
    size_t offset; /* into the caller's DER buffer */
    size_t size;
};

/* Decodes canonical PEM CERTIFICATE blocks into `der` (back to back) and
 * records each one in certs[0..*count). der_capacity >= pem_size always
 * suffices. -EBADMSG for anything but canonical CERTIFICATE blocks (or no
 * block at all), -ENOSPC when der_capacity or max_certs is too small. */
int tc_pem_certificates(const char *pem, size_t pem_size, uint8_t *der, size_t der_capacity,
                        struct tc_der_cert *certs, size_t max_certs, size_t *count) TC_HIDDEN
    __attribute__((warn_unused_result));

/* Validates a chain certs[0] (the leaf), certs[1..count-2] (intermediates),
 * certs[count-1] (the chain's copy of the root) from `der` against one trust
 * anchor, the CA certificate root_der:
 *  - the root copy must be byte-identical to root_der;
 *  - the path leaf -> intermediates -> root must validate with BearSSL's
 *    X.509 "minimal" engine: ECDSA P-256 signatures over SHA-256 only,
 *    CA and key-usage constraints, no unknown critical extension;
 *  - every certificate must be on that path (a chain that validates with
 *    fewer intermediates carries bytes nobody checked, and is refused);
 *  - the leaf's key must be a P-256 key allowed to sign; it is returned
 *    as 0x04 || x || y in leaf_public.
 * `now` is seconds since the epoch for the validity dates. SGX has no
 * trusted time: the caller can only take it from the host
 * (spm_untrusted_time()), so the dates are advisory (a host can replay an
 * expired chain by lying about time); what binds the chain is the pinned
 * root and the signatures. Allocation-free; uses about 6 KiB of stack.
 * -EINVAL when root_der is not a usable P-256 CA certificate,
 * -EKEYREJECTED when the chain does not validate against it. */
int tc_x509_verify_chain(const uint8_t *der, const struct tc_der_cert *certs, size_t count,
                         const uint8_t *root_der, size_t root_size, uint64_t now,
                         uint8_t leaf_public[65]) TC_HIDDEN __attribute__((warn_unused_result));

#endif
