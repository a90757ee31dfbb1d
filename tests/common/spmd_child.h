/* spmd as a child of a test: started on the test's platform, state and
 * socket, ready once it printed its readiness line. Shared by the tests
 * that talk to a real Migration Enclave. */
#ifndef SPM_TESTS_SPMD_CHILD_H
#define SPM_TESTS_SPMD_CHILD_H

#include <stdint.h>
#include <sys/types.h>

struct spm_test_spmd {
    pid_t pid;
    uint64_t elrange_base, elrange_size; /* the ME's, from the readiness line */
};

/* Starts `spmd_exe` with --platform/--state/--socket/--me and one optional
 * extra argument (NULL for none); stderr is appended to log_path. Returns 0
 * once spmd is ready, its exit status (> 0) if it stopped first, or -1 if
 * it could not be started or did not become ready within 20 s (then it is
 * killed). */
int spm_test_spmd_start(const char *spmd_exe, const char *platform, const char *state,
                        const char *socket, const char *me_image, const char *extra,
                        const char *log_path, struct spm_test_spmd *out);

/* Sends `sig` and reaps it; returns the wait status (-1 if none ran). */
int spm_test_spmd_stop(struct spm_test_spmd *spmd, int sig);

#endif
