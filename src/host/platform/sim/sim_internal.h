/* Inside the software SGX platform: what a loaded platform holds and the
 * derivations its three parts (store.c loads it, derive.c is the CPU's key
 * logic, quote.c the quoting enclave) share. Nothing outside sim/ includes
 * this; the rest of SPM sees struct spm_sim_platform as opaque (sim.h). */
#ifndef SPM_HOST_PLATFORM_SIM_INTERNAL_H
#define SPM_HOST_PLATFORM_SIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "host/crypto/ecdsa.h"
#include "sim.h"

#define SPM_SIM_ROOT_SECRET_SIZE 32u

/* Files of a platform directory (all mode 0600, written atomically):
 *   platform.state  binary, layout below: root secret and CPUSVN
 *   attest.key      PKCS#8 PEM: the ECDSA P-256 attestation key
 *   attest.crt      PEM: its certificate, issued by the provisioning CA
 *   root.crt        PEM: the CA certificate, the root quotes chain up to
 * platform.state is written last, so a directory without it is an
 * interrupted `spm platform init`.
 *
 * platform.state (version 1), 96 bytes, integers little-endian:
 *   0   8  magic "SPMPLAT\0"
 *   8   4  version (1)
 *   12  4  total file size (96)
 *   16 32  root secret: the simulated fuses every key derives from
 *   48 16  CPUSVN
 *   64 32  SHA-256 of bytes [0, 64): catches truncation and bit rot (not
 *          tampering: like the SDK's simulation, the file is protected only
 *          by its mode) */
#define SPM_SIM_STATE_FILE       "platform.state"
#define SPM_SIM_ATTEST_KEY_FILE  "attest.key"
#define SPM_SIM_ATTEST_CERT_FILE "attest.crt"
#define SPM_SIM_ROOT_CERT_FILE   "root.crt"
#define SPM_SIM_STATE_MAGIC      "SPMPLAT\0"
#define SPM_SIM_STATE_VERSION    1u
#define SPM_SIM_STATE_SIZE       96u

/* The monotonic counter store (DESIGN.md section 4), for the Migration
 * Enclave's rollback protection: one file per counter under
 *   counters/<hex of SHA-256(MRSIGNER || id), first 16 bytes>
 * mode 0600, replaced atomically (temp file, fsync, rename, fsync dir), so
 * a crash leaves the old or the new value, never half of one. An increment
 * holds an flock on counters/lock across read-modify-write, so threads and
 * processes sharing a platform never lose or repeat a value. A missing file
 * reads 0. Like platform.state, the store is protected only by its mode:
 * the simulation does not defend against the local root user.
 *
 * Each counter holds a value and a 32-byte tag stored with it by the
 * increment that produced it (the Migration Enclave stores the digest of the
 * state it just wrote): a value alone cannot tell the writer's own pending
 * write from another writer's at the same number, the tag can. A missing
 * file reads value 0 and an all-zero tag.
 *
 * Counter file (version 2), 136 bytes, integers little-endian:
 *   0   8  magic "SPMCNTR\0"
 *   8   4  version (2)
 *   12  4  total file size (136)
 *   16 32  MRSIGNER of the enclaves the counter belongs to
 *   48 16  counter id
 *   64  8  value
 *   72 32  tag stored with the value
 *   104 32 SHA-256 of bytes [0, 104): truncation and bit rot, and a file
 *          moved to another counter's name, are reported as corrupt
 * Version 1 files (no tag) are refused with an error naming the version:
 * nothing was deployed with them. */
#define SPM_SIM_COUNTER_DIR       "counters"
#define SPM_SIM_COUNTER_LOCK_FILE "lock"
#define SPM_SIM_COUNTER_MAGIC     "SPMCNTR\0"
#define SPM_SIM_COUNTER_VERSION   2u
#define SPM_SIM_COUNTER_FILE_SIZE 136u
#define SPM_SIM_COUNTER_TAG_SIZE  32u

/* SPM-specific ENCLU leaves of the simulated CPU, far from SGX's (0..8) so
 * no future SGX leaf collides. Operands lie inside the calling enclave, as
 * for EGETKEY: RBX = 16-byte counter id (16-byte aligned), RCX = u64 value
 * (8-byte aligned), RDX = 32-byte tag (16-byte aligned). READ writes the
 * value and its tag to RCX and RDX; INCREMENT reads the tag to store with
 * the new value from RDX and writes the new value to RCX. The counter is
 * namespaced by the caller's MRSIGNER (from its SECS), so enclaves of one
 * author share counters and no other author can read or move them. RAX =
 * SGX_SUCCESS, SGX_INVALID_ATTRIBUTE for bad operands, or
 * SIM_ENCLU_INTERNAL_ERROR when the store fails (the error is logged on the
 * host with the file's name). src/trusted/sgx.c repeats these numbers:
 * trusted code cannot include this header. */
#define SPM_SIM_ENCLU_COUNTER_READ      0x53504d01u /* "SPM" 1 */
#define SPM_SIM_ENCLU_COUNTER_INCREMENT 0x53504d02u /* "SPM" 2 */

/* Files of a provisioning CA directory (`spm ca init`): the key is 0600, the
 * certificate 0644 because verifiers on other hosts and accounts need it. */
#define SPM_SIM_CA_KEY_FILE  "ca.key"
#define SPM_SIM_CA_CERT_FILE "ca.crt"

/* Where the SDK simulation keeps the KSS identity in a SECS (its
 * isv_ext_id_t overlaid on SECS.reserved4, offset 262): ISVFAMILYID, then
 * ISVEXTPRODID. Simulated EINIT copies them there from the SIGSTRUCT. */
#define SPM_SIM_SECS_ISVFAMILYID_OFFSET  262u
#define SPM_SIM_SECS_ISVEXTPRODID_OFFSET 278u

struct spm_sim_platform {
    char *dir;
    uint8_t root_secret[SPM_SIM_ROOT_SECRET_SIZE];
    /* A new platform reports the SDK simulation's DEFAULT_CPUSVN (store.c).
     * CPUSVN is modelled as 16 component SVNs: a requested CPUSVN is "not
     * newer" when no byte exceeds the current one's. */
    uint8_t cpusvn[SGX_CPUSVN_SIZE];
    struct spm_ec_key *attest_key;
    uint8_t attest_public[SPM_EC_PUBLIC_SIZE];
    /* attest.crt || root.crt exactly as quotes carry it (NUL-terminated,
     * cert_chain_size excludes the NUL), verified at open. */
    char *cert_chain;
    size_t cert_chain_size;
    size_t attest_cert_size; /* the leaf's share of cert_chain */
};

/* Labels of the platform secrets derived from the root secret. */
#define SPM_SIM_LABEL_KEY_ROOT    "SPM sim key root"
#define SPM_SIM_LABEL_OWNER_EPOCH "SPM sim owner epoch"
#define SPM_SIM_LABEL_QE_ID       "SPM sim QE id"

/* HMAC-SHA-256(root secret, label || u16le index) truncated to 16 bytes: the
 * per-KEYNAME root keys (index = KEYNAME), the owner epoch and the QE id
 * (index 0). `out` is a secret for the first two; the caller wipes it.
 * -EIO if the host crypto fails. */
int spm_sim_platform_secret(const struct spm_sim_platform *p, const char *label, uint16_t index,
                            uint8_t out[16]) __attribute__((warn_unused_result));

/* The REPORT key of the enclave whose identity is `identity` (MRENCLAVE,
 * ATTRIBUTES, MISCSELECT, CONFIGSVN, CONFIGID of a TARGETINFO; for EGETKEY
 * built from the SECS) for `key_id`, at the current CPUSVN: the dd_report_key_t
 * derivation. `key` is secret; the caller wipes it. -EIO. */
int spm_sim_report_key(const struct spm_sim_platform *p, const struct sgx_target_info *identity,
                       const uint8_t key_id[SGX_KEYID_SIZE], uint8_t key[16])
    __attribute__((warn_unused_result));

/* The simulated quoting enclave's SECS: the fixed identity of quote.h's
 * spm_quote_sim_qe_identity, attributes INIT|MODE64BIT|PROVISIONKEY. */
void spm_sim_qe_secs(struct sgx_secs *secs);

#endif
