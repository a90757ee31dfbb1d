/* The host library's log sink, replaced for the host-side attestation
 * harnesses (host_log.c): a refusal's message is kept instead of printed,
 * so a harness can check that every refusal says why without writing a
 * line per execution into the fuzzing log. */
#ifndef SPM_FUZZ_ATTEST_HOST_LOG_H
#define SPM_FUZZ_ATTEST_HOST_LOG_H

#include <stddef.h>

/* Forgets what was logged so far. */
void fuzz_log_reset(void);
/* Error messages logged since the last reset. */
size_t fuzz_log_count(void);
/* The last of them ("" if none). */
const char *fuzz_log_last(void);

#endif
