/* RSA-3072 with public exponent 3: the enclave author's signing key, as SGX
 * requires for SIGSTRUCT. This header keeps OpenSSL out of its callers: keys
 * are an opaque handle, numbers travel as fixed-size big-endian byte strings
 * (the order RSA standards use; SIGSTRUCT's little-endian storage is the
 * caller's business). Only rsa.c includes OpenSSL.
 *
 * Contract: every function returns 0 or a negative errno and never keeps a
 * pointer to its inputs; private keys are freed with their memory cleared. */
#ifndef SPM_HOST_CRYPTO_RSA_H
#define SPM_HOST_CRYPTO_RSA_H

#include <stddef.h>
#include <stdint.h>

#define SPM_RSA3072_SIZE 384u /* modulus, signature, Q1, Q2: bytes */
#define SPM_RSA_EXPONENT 3u

/* An RSA-3072, e = 3 private key (owns OpenSSL state). */
struct spm_rsa_key;

/* Generates a fresh key. *key is owned by the caller (spm_rsa_free).
 * -ENOMEM, -EIO (OpenSSL failure). */
int spm_rsa_generate(struct spm_rsa_key **key) __attribute__((warn_unused_result));

/* Serialises `key` as an unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY").
 * *pem is malloc'd and owned by the caller, who must spm_wipe() it before
 * free(). -ENOMEM, -EIO. */
int spm_rsa_private_pem(const struct spm_rsa_key *key, char **pem, size_t *pem_size)
    __attribute__((warn_unused_result));

/* Parses a PEM private key (PKCS#8 or traditional RSA). Refuses anything but
 * RSA with a 3072-bit modulus and e = 3 (-EINVAL, logged with `name`).
 * `pem` is not retained; *key is owned by the caller. -EINVAL, -ENOMEM. */
int spm_rsa_read_private_pem(const void *pem, size_t pem_size, const char *name,
                             struct spm_rsa_key **key) __attribute__((warn_unused_result));

/* Frees and clears a key; NULL is allowed. */
void spm_rsa_free(struct spm_rsa_key *key);

/* The modulus, big-endian, left-padded to 384 bytes. -EIO. */
int spm_rsa_modulus(const struct spm_rsa_key *key, uint8_t modulus_be[SPM_RSA3072_SIZE])
    __attribute__((warn_unused_result));

/* RSASSA-PKCS1-v1_5 with SHA-256 over msg[0..size). -EIO. */
int spm_rsa_sign_sha256(const struct spm_rsa_key *key, const void *msg, size_t size,
                        uint8_t signature_be[SPM_RSA3072_SIZE]) __attribute__((warn_unused_result));

/* Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature with the public key
 * (modulus_be, exponent). 0 if valid, -EKEYREJECTED if not (including a
 * signature >= modulus), -EINVAL for an unusable key, -ENOMEM/-EIO. */
int spm_rsa_verify_sha256(const uint8_t modulus_be[SPM_RSA3072_SIZE], uint32_t exponent,
                          const void *msg, size_t size,
                          const uint8_t signature_be[SPM_RSA3072_SIZE])
    __attribute__((warn_unused_result));

/* SGX's EINIT helpers: q1 = floor(s^2 / m), q2 = floor(s * (s^2 mod m) / m),
 * all big-endian 384 bytes. -EINVAL if s >= m or m is zero, -ENOMEM. */
int spm_rsa_sgx_q1q2(const uint8_t signature_be[SPM_RSA3072_SIZE],
                     const uint8_t modulus_be[SPM_RSA3072_SIZE], uint8_t q1_be[SPM_RSA3072_SIZE],
                     uint8_t q2_be[SPM_RSA3072_SIZE]) __attribute__((warn_unused_result));

#endif
