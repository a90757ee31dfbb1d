/* Quote verification (host side, OpenSSL): what a relying party runs on a
 * quote before trusting the report body inside it. */
#ifndef SPM_HOST_PLATFORM_QUOTE_H
#define SPM_HOST_PLATFORM_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include "spm/arch/sgx_arch.h"

/* SPM's vendor id in quote headers (distinct from Intel's QE id): the first
 * 16 bytes of SHA-256("SPM-SIM-QE"). */
extern const uint8_t spm_quote_vendor_id[16];

/* The simulated Quoting Enclave's identity, which spm_quote_verify requires
 * in a quote's QE report: MRENCLAVE = SHA-256("SPM simulated quoting
 * enclave"), MRSIGNER = SHA-256("SPM simulated quoting enclave signer"),
 * ISVPRODID 1, ISVSVN = the quote header's QE SVN. */
#define SPM_QUOTE_SIM_QE_PROD_ID 1u
#define SPM_QUOTE_SIM_QE_SVN     1u
#define SPM_QUOTE_SIM_PCE_SVN    1u
void spm_quote_sim_qe_identity(uint8_t mr_enclave[32], uint8_t mr_signer[32]);

/* Verifies a quote: layout and lengths, version/key type/vendor id, the
 * certificate chain in the type-5 cert data up to `trusted_root_pem` (a PEM
 * CA certificate file), the leaf's key == attest_pub_key, the QE report
 * signature, QE REPORTDATA == SHA-256(attest_pub_key || auth_data), and the
 * quote signature over bytes [0, 432). On success copies the app's report
 * body to *body for the caller's policy checks. -EBADMSG (malformed),
 * -EKEYREJECTED (signature or chain), -ENOENT (root file). Logged. */
int spm_quote_verify(const uint8_t *quote, size_t quote_size, const char *trusted_root_pem,
                     struct sgx_report_body *body) __attribute__((warn_unused_result));

#endif
