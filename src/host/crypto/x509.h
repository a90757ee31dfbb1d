/* X.509 for the simulated provisioning PKI: the CA that stands in for Intel's
 * PCK chain, the attestation-key certificates it issues to platforms, and
 * the strict chain check a quote verifier runs on the certificates a quote
 * carries. Certificates travel as PEM text; OpenSSL stays inside x509.c. */
#ifndef SPM_HOST_CRYPTO_X509_H
#define SPM_HOST_CRYPTO_X509_H

#include <stddef.h>
#include <stdint.h>

#include "ecdsa.h"

/* Creates a self-signed CA certificate for `key` (which must hold a private
 * key): subject CN=common_name, O=SPM; basicConstraints critical CA:TRUE;
 * keyUsage critical keyCertSign, cRLSign; subjectKeyIdentifier; valid from
 * one day ago (clock skew between hosts) for `days` days. *pem is a malloc'd
 * NUL-terminated PEM (owned by the caller; *pem_size excludes the NUL).
 * -EINVAL (bad name or days), -ENOMEM, -EIO (OpenSSL failure). */
int spm_x509_create_ca(const struct spm_ec_key *key, const char *common_name, unsigned days,
                       char **pem, size_t *pem_size) __attribute__((warn_unused_result));

/* Issues an end-entity certificate for the public half of `subject_key`,
 * signed by `ca_key` as the CA whose PEM certificate is `ca_pem` (borrowed;
 * need not be NUL-terminated). basicConstraints critical CA:FALSE, keyUsage
 * critical digitalSignature, subject/authority key identifiers. *pem as for
 * spm_x509_create_ca. -EBADMSG (ca_pem is not one certificate),
 * -EKEYREJECTED (ca_key does not match the CA certificate, or it is not a CA),
 * -EINVAL, -ENOMEM, -EIO. */
int spm_x509_issue(const struct spm_ec_key *ca_key, const char *ca_pem, size_t ca_pem_size,
                   const struct spm_ec_key *subject_key, const char *common_name, unsigned days,
                   char **pem, size_t *pem_size) __attribute__((warn_unused_result));

/* At most this many subject alternative names in a host certificate. */
#define SPM_X509_MAX_HOST_NAMES 32u

/* Issues a TLS host certificate for spmd, as spm_x509_issue does, with in
 * addition extendedKeyUsage serverAuth+clientAuth (every spmd is both a
 * migration source and a destination) and a subjectAltName holding the IP
 * addresses `ips` (IPv4 or IPv6 text) and the DNS names `dns_names` (LDH
 * labels, no wildcard), in that order; the arrays and strings are borrowed.
 * At least one and at most SPM_X509_MAX_HOST_NAMES names in all: a TLS
 * client matches the host it dialled against these, never against the CN.
 * -EINVAL (no name, too many, a malformed IP or DNS name; logged), and the
 * errors of spm_x509_issue. */
int spm_x509_issue_host(const struct spm_ec_key *ca_key, const char *ca_pem, size_t ca_pem_size,
                        const struct spm_ec_key *subject_key, const char *common_name,
                        const char *const *ips, size_t ip_count, const char *const *dns_names,
                        size_t dns_count, unsigned days, char **pem, size_t *pem_size)
    __attribute__((warn_unused_result));

/* Checks that `pem` is exactly one PEM certificate of a CA (basicConstraints
 * CA:TRUE, keyCertSign when keyUsage is present) whose key is `key` (NULL:
 * don't check the key). -EBADMSG (not one PEM certificate), -EKEYREJECTED
 * (not a CA, or another key). */
int spm_x509_check_ca(const char *pem, size_t pem_size, const struct spm_ec_key *key)
    __attribute__((warn_unused_result));

/* Writes the subject and issuer of the first certificate in `pem` as RFC 2253
 * strings ("CN=...,O=..."), truncated to the buffers (each at least 1 byte).
 * -EBADMSG (no certificate), -ENOMEM. */
int spm_x509_names(const char *pem, size_t pem_size, char *subject, size_t subject_size,
                   char *issuer, size_t issuer_size) __attribute__((warn_unused_result));

/* Verifies a certificate chain given as untrusted bytes, strictly enough that
 * no byte of it can change without failing:
 *  - chain_pem is leaf first, then any intermediates, then a copy of the root,
 *    each in the canonical PEM form OpenSSL writes (64-column base64, "\n"
 *    line ends), with nothing before, between or after (chain_pem_size
 *    counts no NUL);
 *  - OpenSSL's path validation (signatures, validity dates, CA constraints)
 *    succeeds with the certificates in root_pem (a trusted PEM bundle,
 *    borrowed) as the only trust anchors;
 *  - the validated path uses every certificate of chain_pem, in order, and
 *    its anchor is byte-identical to the root copy at the end of chain_pem;
 *  - the leaf's key is P-256; its x||y is written to leaf_public.
 * -EBADMSG (malformed or non-canonical encoding, root_pem without a
 * certificate), -EKEYREJECTED (path validation or any identity check fails),
 * -ENOMEM. Every refusal is logged with OpenSSL's reason. */
int spm_x509_verify_chain(const char *chain_pem, size_t chain_pem_size, const char *root_pem,
                          size_t root_pem_size, uint8_t leaf_public[SPM_EC_PUBLIC_SIZE])
    __attribute__((warn_unused_result));

#endif
