/* ECDSA P-256 for the simulated platform's attestation key and the provisioning
 * CA, in the raw forms SGX quotes carry (r||s and x||y, 32 bytes each,
 * big-endian). Keys are opaque handles so that only src/host/crypto/ sees
 * OpenSSL; private keys travel as PKCS#8 PEM, which the caller wipes. */
#ifndef SPM_HOST_CRYPTO_ECDSA_H
#define SPM_HOST_CRYPTO_ECDSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPM_EC_PUBLIC_SIZE    64u /* x || y, big-endian, no 0x04 prefix */
#define SPM_EC_SIGNATURE_SIZE 64u /* r || s, big-endian */

/* A P-256 key pair, or a public key only. */
struct spm_ec_key;

/* Generates a fresh P-256 key pair into *out (owned by the caller, release
 * with spm_ec_key_free). -ENOMEM, -EIO (OpenSSL failure). */
int spm_ec_key_generate(struct spm_ec_key **out) __attribute__((warn_unused_result));

/* Parses an unencrypted PEM private key (PKCS#8 or SEC1) that must be on
 * P-256. `pem` is borrowed and need not be NUL-terminated. *out is owned by
 * the caller. -EBADMSG (not a PEM P-256 private key), -ENOMEM. */
int spm_ec_key_from_pem(const char *pem, size_t pem_size, struct spm_ec_key **out)
    __attribute__((warn_unused_result));

/* Builds a public-only key from x||y; the point must be on the curve.
 * *out is owned by the caller. -EBADMSG (not a valid P-256 point), -ENOMEM. */
int spm_ec_key_from_public(const uint8_t xy[SPM_EC_PUBLIC_SIZE], struct spm_ec_key **out)
    __attribute__((warn_unused_result));

/* Serialises the private key as unencrypted PKCS#8 PEM into a malloc'd,
 * NUL-terminated buffer (*pem, owned by the caller, who must spm_wipe it
 * before free; *pem_size excludes the NUL). -EINVAL (public-only key),
 * -ENOMEM, -EIO. */
int spm_ec_key_to_pem(const struct spm_ec_key *key, char **pem, size_t *pem_size)
    __attribute__((warn_unused_result));

/* Writes the public key as x||y. -EIO if OpenSSL cannot export it. */
int spm_ec_key_public(const struct spm_ec_key *key, uint8_t xy[SPM_EC_PUBLIC_SIZE])
    __attribute__((warn_unused_result));

/* ECDSA-P256 with SHA-256 over `data`; writes r||s. -EINVAL (public-only
 * key), -ENOMEM, -EIO. */
int spm_ec_sign(const struct spm_ec_key *key, const void *data, size_t size,
                uint8_t signature[SPM_EC_SIGNATURE_SIZE]) __attribute__((warn_unused_result));

/* True iff `signature` (r||s) is a valid ECDSA-P256/SHA-256 signature of
 * `data` by the public key x||y. Any malformed input is simply false. */
bool spm_ec_verify(const uint8_t public_xy[SPM_EC_PUBLIC_SIZE], const void *data, size_t size,
                   const uint8_t signature[SPM_EC_SIGNATURE_SIZE])
    __attribute__((warn_unused_result));

/* Frees a key; OpenSSL clears private key material. NULL is a no-op. */
void spm_ec_key_free(struct spm_ec_key *key);

/* Crypto-module internal (x509.c only): the OpenSSL EVP_PKEY behind a
 * handle, borrowed. Declared by tag so this header needs no OpenSSL. */
struct evp_pkey_st;
struct evp_pkey_st *spm_ec_key_evp(const struct spm_ec_key *key);

#endif
