/* The software SGX platform: a platform directory's secrets and keys, and
 * the CPU's derivations (EGETKEY, EREPORT) and quoting over them, kept
 * byte-compatible with hardware (SGX-FORMATS.md sections 3-6). */
#ifndef SPM_HOST_PLATFORM_SIM_H
#define SPM_HOST_PLATFORM_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "spm/arch/sgx_arch.h"

#define SPM_PLATFORM_DEFAULT_DIR "/var/lib/spm/platform"
#define SPM_PLATFORM_ENV         "SPM_PLATFORM"

/* A loaded simulated platform: the fuses (root secret), CPUSVN, the
 * attestation key and its certificate chain. Opaque outside sim/. */
struct spm_sim_platform;

/* `spm ca init`: ECDSA P-256 key + self-signed X.509 CA certificate in dir
 * (ca.key mode 0600, ca.crt). Refuses to overwrite an existing CA (-EEXIST). */
int spm_sim_ca_init(const char *dir, const char *common_name) __attribute__((warn_unused_result));

/* `spm platform init`: random 256-bit root secret, CPUSVN, ECDSA P-256
 * attestation key with a certificate issued by the CA in ca_dir, a copy of
 * the CA certificate as the trusted root. Versioned files, atomic, 0600.
 * Refuses to overwrite an existing platform (-EEXIST). */
int spm_sim_platform_init(const char *dir, const char *ca_dir) __attribute__((warn_unused_result));

/* The platform directory to use: `explicit_dir` if non-NULL, else
 * $SPM_PLATFORM, else SPM_PLATFORM_DEFAULT_DIR. Never NULL. */
const char *spm_sim_platform_dir(const char *explicit_dir);

/* Loads a platform; a missing or corrupt file fails with an error naming it
 * (-ENOENT, -EBADMSG). Owned by the caller; spm_sim_platform_close wipes it. */
int spm_sim_platform_open(const char *dir, struct spm_sim_platform **out)
    __attribute__((warn_unused_result));
void spm_sim_platform_close(struct spm_sim_platform *p);

void spm_sim_platform_cpusvn(const struct spm_sim_platform *p, uint8_t cpusvn[16]);

/* What `spm platform show` prints about a loaded platform. */
struct spm_sim_platform_info {
    const char *dir; /* borrowed from the platform; valid until it is closed */
    uint8_t cpusvn[16];
    char attest_subject[256]; /* attestation certificate, RFC 2253 */
    char attest_issuer[256];
    char root_subject[256]; /* the trusted root quotes chain up to */
};

/* Fills *info. -EBADMSG if a certificate cannot be parsed (not after a
 * successful open), -ENOMEM. */
int spm_sim_platform_describe(const struct spm_sim_platform *p, struct spm_sim_platform_info *info)
    __attribute__((warn_unused_result));

/* EGETKEY for an enclave with control structure `secs`. Returns an SGX error
 * code (SGX_SUCCESS, SGX_INVALID_ISVSVN, SGX_INVALID_CPUSVN,
 * SGX_INVALID_KEYNAME, SGX_INVALID_ATTRIBUTE) as the instruction does;
 * reserved fields must be zero (else SGX_INVALID_ATTRIBUTE); -EIO (negative)
 * only if the host crypto library fails. */
int spm_sim_egetkey(const struct spm_sim_platform *p, const struct sgx_secs *secs,
                    const struct sgx_key_request *request, uint8_t key[16]);

/* EREPORT: body from secs + current CPUSVN + report_data, MAC keyed with the
 * target's report key. Returns 0 or -EIO. */
int spm_sim_ereport(const struct spm_sim_platform *p, const struct sgx_secs *secs,
                    const struct sgx_target_info *target, const uint8_t report_data[64],
                    struct sgx_report *report);

/* The simulated Quoting Enclave's TARGETINFO. */
void spm_sim_qe_target_info(const struct spm_sim_platform *p, struct sgx_target_info *target);

/* Quote (DCAP v3 layout, SPM vendor id) for a REPORT targeted at the QE:
 * verifies the report's MAC as the QE would, then signs. *quote is malloc'd
 * and owned by the caller. -EINVAL (bad MAC / wrong target), -ENOMEM, -EIO. */
int spm_sim_quote(const struct spm_sim_platform *p, const struct sgx_report *report,
                  uint8_t **quote, size_t *quote_size) __attribute__((warn_unused_result));

/* Platform monotonic counters (sim_internal.h describes the store): the
 * counter `id` of the enclaves whose MRSIGNER is `mrsigner`, a value and the
 * 32-byte tag the increment that produced it stored. read: a counter never
 * incremented reads 0 with an all-zero tag. increment: adds one and stores
 * `tag` with the new value under the store's lock, returns the new value,
 * durable before it returns. Errors are logged with the file's name:
 * -EBADMSG for a corrupt counter file (or one of an older format),
 * -EOVERFLOW at UINT64_MAX, other -errno from the file system. */
int spm_sim_counter_read(const struct spm_sim_platform *p, const uint8_t mrsigner[32],
                         const uint8_t id[16], uint64_t *value, uint8_t tag[32])
    __attribute__((warn_unused_result));
int spm_sim_counter_increment(const struct spm_sim_platform *p, const uint8_t mrsigner[32],
                              const uint8_t id[16], const uint8_t tag[32], uint64_t *value)
    __attribute__((warn_unused_result));

#endif
