/* A stand-in enclave for running the trusted runtime's sgx.c and the
 * Migration Enclave hosted, under the sanitizers (trusted_hosted.c): the
 * pieces of the runtime that need a real enclave (ENCLU, the ocall gate,
 * the enclave's own memory layout) are replaced, everything above them is
 * the production code. sgx.c is compiled with __ehdr_start and _end
 * renamed to fuzz_enclave_base and fuzz_enclave_layout (meson.build), so
 * its incarnation and DRBG live in memory this file owns; GS points at a
 * thread data page as EENTER would set it.
 *
 * The "CPU" here: EREPORT gives every report this enclave's fixed body
 * (fuzz_trts_self) and MACs it with one fixed report key, EGETKEY returns
 * fixed SEAL and REPORT keys, the simulated counter leaves keep counters in
 * memory. The "host": QE_TARGET_INFO and QUOTE answer with quotes of the
 * test platform (trusted_pki.h), the ME's PERSIST ocall keeps the blob. */
#ifndef SPM_FUZZ_ATTEST_TRUSTED_HOSTED_H
#define SPM_FUZZ_ATTEST_TRUSTED_HOSTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spm/arch/sgx_arch.h"

/* Sets up the enclave memory and GS once, and loads the test PKI. */
void fuzz_trts_init(void);
/* Forgets counters, the persisted blob and ocall failures, and restarts
 * the DRBG from a fixed seed (between inputs). */
void fuzz_trts_reset(void);

/* The report body EREPORT gives this enclave (report_data aside). */
extern struct sgx_report_body fuzz_trts_self;
/* The fixed keys EGETKEY returns. */
extern const uint8_t fuzz_trts_seal_key[16];
extern const uint8_t fuzz_trts_report_key[16];

/* The last blob the ME persisted (NULL before any). */
const uint8_t *fuzz_trts_persisted(size_t *size);
/* Makes the next PERSIST ocall, or the next counter increment, fail. */
extern bool fuzz_trts_fail_persist;
extern bool fuzz_trts_fail_counter;

/* Seals `text` with `aad` as the ME does (spm_seal, MRENCLAVE policy, so
 * under fuzz_trts_seal_key); *sealed is malloc'd. */
void fuzz_trts_seal(const void *aad, size_t aad_size, const void *text, size_t text_size,
                    uint8_t **sealed, size_t *sealed_size);

/* Sets counter `id` as if incremented to `value` with `tag`. */
void fuzz_trts_counter_set(const uint8_t id[16], uint64_t value, const uint8_t tag[32]);

#endif
