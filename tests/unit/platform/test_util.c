/* Fixtures shared by the platform unit tests (see test_util.h). */
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *test_make_scratch(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    char *path = test_path(base, "spm-platform-test-XXXXXX");
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        abort();
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_remove_scratch(char *path)
{
    if (!path)
        return;
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

char *test_path(const char *dir, const char *name)
{
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = malloc(size);
    assert_non_null(path);
    snprintf(path, size, "%s/%s", dir, name);
    return path;
}

char *test_make_ca(const char *scratch, const char *name)
{
    char *dir = test_path(scratch, name);
    assert_int_equal(spm_sim_ca_init(dir, name), 0);
    return dir;
}

char *test_make_platform(const char *scratch, const char *name, const char *ca_dir)
{
    char *dir = test_path(scratch, name);
    assert_int_equal(spm_sim_platform_init(dir, ca_dir), 0);
    return dir;
}

struct spm_sim_platform *test_open(const char *dir)
{
    struct spm_sim_platform *p = NULL;
    assert_int_equal(spm_sim_platform_open(dir, &p), 0);
    assert_non_null(p);
    return p;
}

void test_secs(struct sgx_secs *secs, uint8_t mr_enclave_byte, uint8_t mr_signer_byte,
               uint16_t isv_svn)
{
    memset(secs, 0, sizeof(*secs));
    secs->size = 0x100000;
    secs->ssa_frame_size = 1;
    secs->attributes.flags = SGX_FLAGS_INITTED | SGX_FLAGS_MODE64BIT;
    secs->attributes.xfrm = SGX_XFRM_LEGACY;
    memset(secs->mr_enclave, mr_enclave_byte, sizeof(secs->mr_enclave));
    memset(secs->mr_signer, mr_signer_byte, sizeof(secs->mr_signer));
    secs->isv_prod_id = 7;
    secs->isv_svn = isv_svn;
}

void test_target_of(const struct sgx_secs *secs, struct sgx_target_info *target)
{
    memset(target, 0, sizeof(*target));
    memcpy(target->mr_enclave, secs->mr_enclave, sizeof(target->mr_enclave));
    target->attributes = secs->attributes;
    target->config_svn = secs->config_svn;
    target->misc_select = secs->misc_select;
    memcpy(target->config_id, secs->config_id, sizeof(target->config_id));
}

void test_capture_begin(struct test_capture *c)
{
    const char *base = getenv("TMPDIR");
    snprintf(c->path, sizeof(c->path), "%s/spm-stderr-XXXXXX", base && base[0] ? base : "/tmp");
    fflush(stderr);
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    c->saved_fd = dup(2);
    assert_true(c->saved_fd >= 0);
    assert_true(dup2(fd, 2) == 2);
    close(fd);
}

char *test_capture_end(struct test_capture *c)
{
    fflush(stderr);
    dup2(c->saved_fd, 2);
    close(c->saved_fd);
    FILE *f = fopen(c->path, "r");
    assert_non_null(f);
    char *text = calloc(1, 65536);
    assert_non_null(text);
    size_t n = fread(text, 1, 65535, f);
    text[n] = 0;
    fclose(f);
    unlink(c->path);
    return text;
}
