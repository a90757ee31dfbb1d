/* The test platform's attestation identity for the harnesses that run
 * trusted code hosted (me_quote, me_peer, escrow): the attestation key and
 * certificate chain of fuzz/attest/testpki/platform, whose CA
 * (testpki/ca/ca.crt) those harnesses pin as the provisioning root, and a
 * quote builder over them with the trusted crypto adapter. It makes quotes
 * byte for byte as the simulated QE does (src/host/platform/sim/quote.c),
 * so the verifiers see real quotes over any report body a harness wants. */
#ifndef SPM_FUZZ_ATTEST_TRUSTED_PKI_H
#define SPM_FUZZ_ATTEST_TRUSTED_PKI_H

#include <stddef.h>
#include <stdint.h>

#include "spm/arch/sgx_arch.h"

/* Loads the key and chain; aborts if the test PKI is unreadable. */
void fuzz_pki_init(void);

/* The attestation public key, x || y. */
const uint8_t *fuzz_pki_attest_public(void);

/* A quote over `body` (malloc'd, the caller frees it). */
void fuzz_pki_quote(const struct sgx_report_body *body, uint8_t **quote, size_t *quote_size);

/* Re-signs a (fuzzed) quote in place with the attestation key: the QE
 * report signature and the quote signature; with `set_key` also writes the
 * attestation key into attest_pub_key, with `bind_qe` recomputes the QE
 * REPORTDATA over attest_pub_key and the auth data where the quote's own
 * lengths put them. A quote too short for its signature data is left as
 * it is. */
void fuzz_pki_resign(uint8_t *quote, size_t quote_size, int set_key, int bind_qe);

#endif
