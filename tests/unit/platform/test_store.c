/* The platform and CA directories: what init writes (modes, format), that it
 * never overwrites, and that every missing or corrupt file is refused with an
 * error that names it, instead of yielding a platform with other keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "host/common/fileio.h"
#include "host/crypto/hash.h"
#include "test_util.h"

struct fixture {
    char *scratch, *ca, *other_ca, *dir;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->scratch = test_make_scratch();
    f->ca = test_make_ca(f->scratch, "ca");
    f->other_ca = test_make_ca(f->scratch, "other-ca");
    f->dir = test_make_platform(f->scratch, "platform", f->ca);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->dir);
    free(f->other_ca);
    free(f->ca);
    test_remove_scratch(f->scratch);
    free(f);
    return 0;
}

static uint8_t *read_all(const char *dir, const char *name, size_t *size)
{
    char *path = test_path(dir, name);
    uint8_t *data = NULL;
    assert_int_equal(spm_read_file(path, 1 << 20, &data, size), 0);
    free(path);
    return data;
}

static void write_all(const char *dir, const char *name, const void *data, size_t size)
{
    char *path = test_path(dir, name);
    assert_int_equal(spm_write_file_atomic(path, data, size, 0600), 0);
    free(path);
}

static unsigned mode_of(const char *dir, const char *name)
{
    char *path = test_path(dir, name);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    free(path);
    return st.st_mode & 07777;
}

/* Opens dir expecting `expected_error`, and checks the log names `needle`. */
static void expect_open_error(const char *dir, int expected_error, const char *needle)
{
    struct test_capture capture;
    struct spm_sim_platform *p = NULL;
    test_capture_begin(&capture);
    int ret = spm_sim_platform_open(dir, &p);
    char *log = test_capture_end(&capture);
    if (ret != expected_error || !strstr(log, needle))
        print_error("open returned %d (expected %d); log:\n%s\n(expected to mention '%s')\n", ret,
                    expected_error, log, needle);
    assert_int_equal(ret, expected_error);
    assert_non_null(strstr(log, needle));
    assert_null(p);
    free(log);
}

static void test_files_written(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(mode_of(f->ca, "ca.key"), 0600);
    assert_int_equal(mode_of(f->ca, "ca.crt"), 0644);
    static const char *const files[] = {"platform.state", "attest.key", "attest.crt", "root.crt"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(mode_of(f->dir, files[i]), 0600);

    size_t size = 0;
    uint8_t *data = read_all(f->dir, "platform.state", &size);
    assert_int_equal(size, 96);
    assert_memory_equal(data, "SPMPLAT\0", 8);
    assert_int_equal(data[8], 1);
    uint8_t digest[32];
    spm_sha256(data, 64, digest);
    assert_memory_equal(data + 64, digest, 32);
    free(data);

    /* The platform's root is a byte copy of the CA certificate. */
    size_t ca_size = 0, root_size = 0;
    uint8_t *ca = read_all(f->ca, "ca.crt", &ca_size);
    uint8_t *root = read_all(f->dir, "root.crt", &root_size);
    assert_int_equal(ca_size, root_size);
    assert_memory_equal(ca, root, ca_size);
    free(root);
    free(ca);

    struct spm_sim_platform *p = test_open(f->dir);
    struct spm_sim_platform_info info;
    assert_int_equal(spm_sim_platform_describe(p, &info), 0);
    assert_string_equal(info.dir, f->dir);
    assert_non_null(strstr(info.attest_subject, "CN=SPM simulated SGX platform "));
    assert_string_equal(info.attest_issuer, "CN=ca,O=SPM");
    assert_string_equal(info.root_subject, "CN=ca,O=SPM");
    spm_sim_platform_close(p);
}

static void test_init_refuses_to_overwrite(void **state)
{
    struct fixture *f = *state;
    size_t before_size = 0, after_size = 0;
    uint8_t *before = read_all(f->dir, "platform.state", &before_size);
    struct test_capture capture;
    test_capture_begin(&capture);
    assert_int_equal(spm_sim_platform_init(f->dir, f->ca), -EEXIST);
    assert_int_equal(spm_sim_ca_init(f->ca, "again"), -EEXIST);
    char *log = test_capture_end(&capture);
    assert_non_null(strstr(log, "refusing to overwrite"));
    free(log);
    uint8_t *after = read_all(f->dir, "platform.state", &after_size);
    assert_int_equal(before_size, after_size);
    assert_memory_equal(before, after, before_size);
    free(after);
    free(before);

    /* Even a single leftover file of an interrupted init blocks it. */
    char *partial = test_path(f->scratch, "partial");
    assert_int_equal(mkdir(partial, 0700), 0);
    write_all(partial, "attest.key", "x", 1);
    test_capture_begin(&capture);
    assert_int_equal(spm_sim_platform_init(partial, f->ca), -EEXIST);
    free(test_capture_end(&capture));
    free(partial);
}

static void test_init_with_bad_ca_fails(void **state)
{
    struct fixture *f = *state;
    struct test_capture capture;
    char *missing = test_path(f->scratch, "no-ca");
    char *target = test_path(f->scratch, "from-missing-ca");
    test_capture_begin(&capture);
    assert_int_equal(spm_sim_platform_init(target, missing), -ENOENT);
    char *log = test_capture_end(&capture);
    assert_non_null(strstr(log, "no-ca/ca.key"));
    free(log);

    /* A CA directory whose key is not its certificate's. */
    char *mixed = test_path(f->scratch, "mixed-ca");
    assert_int_equal(mkdir(mixed, 0700), 0);
    size_t size = 0;
    uint8_t *data = read_all(f->ca, "ca.key", &size);
    write_all(mixed, "ca.key", data, size);
    free(data);
    data = read_all(f->other_ca, "ca.crt", &size);
    write_all(mixed, "ca.crt", data, size);
    free(data);
    test_capture_begin(&capture);
    assert_int_equal(spm_sim_platform_init(target, mixed), -EKEYREJECTED);
    log = test_capture_end(&capture);
    assert_non_null(strstr(log, "mixed-ca/ca.crt"));
    free(log);
    /* Nothing was left behind. */
    char *state_file = test_path(target, "attest.key");
    assert_int_equal(access(state_file, F_OK), -1);
    free(state_file);
    free(mixed);
    free(target);
    free(missing);
}

/* Copies the good platform to a new directory to damage one file in it. */
static char *clone_platform(const struct fixture *f, const char *name)
{
    static const char *const files[] = {"platform.state", "attest.key", "attest.crt", "root.crt"};
    char *dir = test_path(f->scratch, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    for (size_t i = 0; i < 4; i++) {
        size_t size = 0;
        uint8_t *data = read_all(f->dir, files[i], &size);
        write_all(dir, files[i], data, size);
        free(data);
    }
    return dir;
}

static void remove_file(const char *dir, const char *name)
{
    char *path = test_path(dir, name);
    assert_int_equal(unlink(path), 0);
    free(path);
}

static void test_missing_files_are_named(void **state)
{
    struct fixture *f = *state;
    static const char *const files[] = {"platform.state", "attest.key", "attest.crt", "root.crt"};
    for (size_t i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "missing-%zu", i);
        char *dir = clone_platform(f, name);
        remove_file(dir, files[i]);
        char *path = test_path(dir, files[i]);
        expect_open_error(dir, -ENOENT, path);
        free(path);
        free(dir);
    }
    char *nowhere = test_path(f->scratch, "nowhere");
    expect_open_error(nowhere, -ENOENT, "spm platform init");
    free(nowhere);
}

static void test_corrupt_state_file_is_named(void **state)
{
    struct fixture *f = *state;
    size_t size = 0;
    uint8_t *good = read_all(f->dir, "platform.state", &size);
    uint8_t bad[200];
    struct {
        const char *name;
        size_t size;
        size_t flip; /* byte to flip, or SIZE_MAX */
        const char *why;
    } cases[] = {
        {"empty", 0, SIZE_MAX, "truncated"},      {"short-header", 10, SIZE_MAX, "truncated"},
        {"truncated", 95, SIZE_MAX, "truncated"}, {"longer", 97, SIZE_MAX, "expected 96"},
        {"magic", 96, 0, "wrong magic"},          {"version", 96, 8, "version"},
        {"secret-bit", 96, 20, "checksum"},       {"cpusvn-bit", 96, 50, "checksum"},
        {"checksum-bit", 96, 90, "checksum"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "state-%s", cases[i].name);
        char *dir = clone_platform(f, name);
        memset(bad, 0, sizeof(bad));
        memcpy(bad, good, size);
        if (cases[i].flip != SIZE_MAX)
            bad[cases[i].flip] ^= 0x01;
        write_all(dir, "platform.state", bad, cases[i].size);
        char *path = test_path(dir, "platform.state");
        expect_open_error(dir, -EBADMSG, path);
        expect_open_error(dir, -EBADMSG, cases[i].why);
        free(path);
        free(dir);
    }
    free(good);
}

static void test_corrupt_pem_files_are_named(void **state)
{
    struct fixture *f = *state;
    size_t size = 0;
    /* Garbage, a truncated PEM, and a valid file of the wrong kind. */
    uint8_t *cert = read_all(f->dir, "attest.crt", &size);
    size_t cert_size = size;
    uint8_t *key = read_all(f->dir, "attest.key", &size);
    size_t key_size = size;
    uint8_t *other_root = read_all(f->other_ca, "ca.crt", &size);
    size_t other_root_size = size;
    struct {
        const char *file;
        const void *data;
        size_t size;
    } cases[] = {
        {"attest.key", "garbage\n", 8},      {"attest.key", key, key_size / 2},
        {"attest.key", cert, cert_size},     {"attest.crt", "garbage\n", 8},
        {"attest.crt", cert, cert_size / 2}, {"attest.crt", key, key_size},
        {"root.crt", "garbage\n", 8},        {"root.crt", other_root, other_root_size},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "pem-%zu", i);
        char *dir = clone_platform(f, name);
        write_all(dir, cases[i].file, cases[i].data, cases[i].size);
        char *path = test_path(dir, cases[i].file);
        expect_open_error(dir, -EBADMSG, path);
        free(path);
        free(dir);
    }

    /* A key from another platform: the certificate no longer matches it. */
    char *p2 = test_make_platform(f->scratch, "second", f->ca);
    char *dir = clone_platform(f, "swapped-key");
    uint8_t *key2 = read_all(p2, "attest.key", &size);
    write_all(dir, "attest.key", key2, size);
    char *path = test_path(dir, "attest.crt");
    expect_open_error(dir, -EBADMSG, path);
    free(path);
    free(dir);
    free(key2);
    free(p2);
    free(other_root);
    free(key);
    free(cert);
}

/* attest.key with its private half altered and its public half intact
 * (PKCS#8 carries both): it still matches attest.crt, but would sign quotes
 * no verifier accepts. Found by fuzz/attest/fuzz_platform. */
static void test_key_pair_mismatch_is_named(void **state)
{
    struct fixture *f = *state;
    size_t size = 0;
    uint8_t *pem = read_all(f->dir, "attest.key", &size);
    /* "-----BEGIN PRIVATE KEY-----\n", base64 lines, "-----END ...": the
     * DER is 138 bytes, its private scalar at offset 36. */
    const char *begin = "-----BEGIN PRIVATE KEY-----\n";
    const char *end = "-----END PRIVATE KEY-----\n";
    char base64[256] = {0};
    size_t n = 0;
    for (size_t i = strlen(begin); i < size - strlen(end); i++)
        if (pem[i] != '\n')
            base64[n++] = (char)pem[i];
    uint8_t der[192];
    assert_int_equal(EVP_DecodeBlock(der, (const unsigned char *)base64, (int)n), 138);
    der[40] ^= 0x01;
    char encoded[256];
    int encoded_size = EVP_EncodeBlock((unsigned char *)encoded, der, 138);
    char altered[512];
    size_t at = (size_t)snprintf(altered, sizeof(altered), "%s", begin);
    for (int i = 0; i < encoded_size; i += 64)
        at += (size_t)snprintf(altered + at, sizeof(altered) - at, "%.64s\n", encoded + i);
    at += (size_t)snprintf(altered + at, sizeof(altered) - at, "%s", end);

    char *dir = clone_platform(f, "altered-private-key");
    write_all(dir, "attest.key", altered, at);
    char *path = test_path(dir, "attest.key");
    expect_open_error(dir, -EBADMSG, path);
    free(path);
    free(dir);
    free(pem);
}

static void test_platform_dir_resolution(void **state)
{
    (void)state;
    const char *saved = getenv("SPM_PLATFORM");
    char *copy = saved ? strdup(saved) : NULL;
    unsetenv("SPM_PLATFORM");
    assert_string_equal(spm_sim_platform_dir(NULL), "/var/lib/spm/platform");
    setenv("SPM_PLATFORM", "/from/env", 1);
    assert_string_equal(spm_sim_platform_dir(NULL), "/from/env");
    assert_string_equal(spm_sim_platform_dir("/explicit"), "/explicit");
    setenv("SPM_PLATFORM", "", 1);
    assert_string_equal(spm_sim_platform_dir(NULL), "/var/lib/spm/platform");
    if (copy)
        setenv("SPM_PLATFORM", copy, 1);
    else
        unsetenv("SPM_PLATFORM");
    free(copy);
}

static void test_reopen_gives_the_same_platform(void **state)
{
    struct fixture *f = *state;
    struct spm_sim_platform *a = test_open(f->dir), *b = test_open(f->dir);
    struct sgx_secs secs;
    struct sgx_key_request kr;
    uint8_t ka[16], kb[16];
    test_secs(&secs, 1, 2, 0);
    memset(&kr, 0, sizeof(kr));
    kr.key_name = SGX_KEYSELECT_SEAL;
    kr.key_policy = SGX_KEYPOLICY_MRSIGNER;
    assert_int_equal(spm_sim_egetkey(a, &secs, &kr, ka), SGX_SUCCESS);
    assert_int_equal(spm_sim_egetkey(b, &secs, &kr, kb), SGX_SUCCESS);
    assert_memory_equal(ka, kb, 16);
    spm_sim_platform_close(b);
    spm_sim_platform_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_written),
        cmocka_unit_test(test_init_refuses_to_overwrite),
        cmocka_unit_test(test_init_with_bad_ca_fails),
        cmocka_unit_test(test_missing_files_are_named),
        cmocka_unit_test(test_corrupt_state_file_is_named),
        cmocka_unit_test(test_corrupt_pem_files_are_named),
        cmocka_unit_test(test_key_pair_mismatch_is_named),
        cmocka_unit_test(test_platform_dir_resolution),
        cmocka_unit_test(test_reopen_gives_the_same_platform),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
