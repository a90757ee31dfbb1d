/* Shared fixtures for the platform unit tests: a scratch directory that is
 * removed afterwards, CAs and platforms inside it, SECS builders, and a way
 * to capture what the library logs so tests can check the message names
 * the file it is about. */
#ifndef SPM_TESTS_UNIT_PLATFORM_TEST_UTIL_H
#define SPM_TESTS_UNIT_PLATFORM_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "host/platform/sim/sim.h"

/* Creates a fresh directory under $TMPDIR (or /tmp); aborts on failure.
 * Returns a malloc'd path. */
char *test_make_scratch(void);
/* Removes `path` recursively and frees it. */
void test_remove_scratch(char *path);

/* Returns malloc'd "dir/name". */
char *test_path(const char *dir, const char *name);

/* Creates a CA in scratch/name and returns its malloc'd directory. */
char *test_make_ca(const char *scratch, const char *name);
/* Creates a platform in scratch/name from ca_dir and returns its directory. */
char *test_make_platform(const char *scratch, const char *name, const char *ca_dir);
/* Opens a platform; fails the test on error. */
struct spm_sim_platform *test_open(const char *dir);

/* A SECS of an initialised 64-bit enclave with the given identity. */
void test_secs(struct sgx_secs *secs, uint8_t mr_enclave_byte, uint8_t mr_signer_byte,
               uint16_t isv_svn);
/* The TARGETINFO of the enclave whose SECS is `secs`. */
void test_target_of(const struct sgx_secs *secs, struct sgx_target_info *target);

/* Redirects stderr into a temporary file until test_capture_end, which
 * restores it and returns what was written (malloc'd, NUL-terminated). */
struct test_capture {
    int saved_fd;
    char path[64];
};
void test_capture_begin(struct test_capture *c);
char *test_capture_end(struct test_capture *c);

#endif
