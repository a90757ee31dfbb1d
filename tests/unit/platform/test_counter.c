/* The platform's monotonic counter store, the ground the Migration Enclave's
 * rollback protection stands on: values persist across opens, never repeat
 * under concurrent increments (threads and processes), are private to one
 * MRSIGNER, keep the tag each increment stored with its value, and a
 * damaged or moved counter file is refused with an error naming it instead
 * of silently reading as some other value or tag. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/common/fileio.h"
#include "host/crypto/hash.h"
#include "host/platform/sim/sim_internal.h"
#include "test_util.h"

struct fixture {
    char *scratch, *ca, *dir;
    struct spm_sim_platform *p;
};

static const uint8_t g_id[16] = "escrow-counter-1";
/* Tag for increments whose tag does not matter, and where reads put one. */
static const uint8_t g_tag[32] = "a tag the tests do not look at!";
static uint8_t g_read_tag[32];

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->scratch = test_make_scratch();
    f->ca = test_make_ca(f->scratch, "ca");
    f->dir = test_make_platform(f->scratch, "platform", f->ca);
    f->p = test_open(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    spm_sim_platform_close(f->p);
    free(f->dir);
    free(f->ca);
    test_remove_scratch(f->scratch);
    free(f);
    return 0;
}

static void signer(uint8_t mrsigner[32], uint8_t byte)
{
    memset(mrsigner, byte, 32);
}

/* The one file in the counters directory (there must be exactly one). */
static char *only_counter_file(const char *platform_dir)
{
    char *dir = test_path(platform_dir, SPM_SIM_COUNTER_DIR);
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *found = NULL;
    struct dirent *entry;
    while ((entry = readdir(d))) {
        if (entry->d_name[0] == '.' || strcmp(entry->d_name, SPM_SIM_COUNTER_LOCK_FILE) == 0)
            continue;
        assert_null(found);
        found = test_path(dir, entry->d_name);
    }
    closedir(d);
    free(dir);
    assert_non_null(found);
    return found;
}

/* Where the store keeps counter (mrsigner, id), computed independently. */
static char *counter_file_of(const char *platform_dir, const uint8_t mrsigner[32],
                             const uint8_t id[16])
{
    uint8_t input[48], digest[32];
    memcpy(input, mrsigner, 32);
    memcpy(input + 32, id, 16);
    spm_sha256(input, sizeof(input), digest);
    char hex[33], name[64];
    spm_hex(digest, 16, hex);
    snprintf(name, sizeof(name), "%s/%s", SPM_SIM_COUNTER_DIR, hex);
    return test_path(platform_dir, name);
}

static void test_missing_reads_zero_and_increments_persist(void **state)
{
    struct fixture *f = *state;
    uint8_t s[32];
    signer(s, 0xa1);
    uint64_t v = 99;
    assert_int_equal(spm_sim_counter_read(f->p, s, g_id, &v, g_read_tag), 0);
    assert_int_equal(v, 0);
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(spm_sim_counter_increment(f->p, s, g_id, g_tag, &v), 0);
        assert_int_equal(v, i);
    }
    /* Durable: a platform opened again (another process) reads the same. */
    struct spm_sim_platform *again = test_open(f->dir);
    assert_int_equal(spm_sim_counter_read(again, s, g_id, &v, g_read_tag), 0);
    assert_int_equal(v, 5);
    spm_sim_platform_close(again);

    char *file = only_counter_file(f->dir);
    char *expected = counter_file_of(f->dir, s, g_id);
    assert_string_equal(file, expected);
    free(expected);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, SPM_SIM_COUNTER_FILE_SIZE);
    free(file);
}

static void test_namespaced_by_signer_and_id(void **state)
{
    struct fixture *f = *state;
    uint8_t a[32], b[32];
    signer(a, 0xa1);
    signer(b, 0xb2);
    uint8_t other_id[16];
    memcpy(other_id, g_id, 16);
    other_id[15] ^= 1;
    uint64_t v;
    assert_int_equal(spm_sim_counter_increment(f->p, a, g_id, g_tag, &v), 0);
    assert_int_equal(spm_sim_counter_increment(f->p, a, g_id, g_tag, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(spm_sim_counter_read(f->p, b, g_id, &v, g_read_tag), 0);
    assert_int_equal(v, 0);
    assert_int_equal(spm_sim_counter_read(f->p, a, other_id, &v, g_read_tag), 0);
    assert_int_equal(v, 0);
    assert_int_equal(spm_sim_counter_increment(f->p, b, g_id, g_tag, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(spm_sim_counter_read(f->p, a, g_id, &v, g_read_tag), 0);
    assert_int_equal(v, 2);
}

/* Reads the counter expecting `expected_error` and a log naming `needle`. */
static void expect_read_error(struct fixture *f, const uint8_t s[32], int expected_error,
                              const char *needle)
{
    struct test_capture capture;
    uint64_t v = 12345;
    test_capture_begin(&capture);
    int ret = spm_sim_counter_read(f->p, s, g_id, &v, g_read_tag);
    char *log = test_capture_end(&capture);
    if (ret != expected_error || !strstr(log, needle))
        print_error("read returned %d (expected %d); log:\n%s\n(expected to mention '%s')\n", ret,
                    expected_error, log, needle);
    assert_int_equal(ret, expected_error);
    assert_non_null(strstr(log, needle));
    assert_int_equal(v, 12345);
    /* An increment over a corrupt file must not "repair" it to 1. */
    test_capture_begin(&capture);
    ret = spm_sim_counter_increment(f->p, s, g_id, g_tag, &v);
    free(test_capture_end(&capture));
    assert_int_equal(ret, expected_error);
    free(log);
}

static void test_corrupt_files_refused_by_name(void **state)
{
    struct fixture *f = *state;
    uint8_t s[32];
    signer(s, 0xa1);
    uint64_t v;
    assert_int_equal(spm_sim_counter_increment(f->p, s, g_id, g_tag, &v), 0);
    char *file = only_counter_file(f->dir);
    uint8_t *good = NULL;
    size_t size = 0;
    assert_int_equal(spm_read_file(file, 4096, &good, &size), 0);
    assert_int_equal(size, SPM_SIM_COUNTER_FILE_SIZE);

    /* Every single flipped byte is caught (magic, version, size, identity,
     * value, checksum). */
    for (size_t i = 0; i < size; i++) {
        uint8_t bad[SPM_SIM_COUNTER_FILE_SIZE];
        memcpy(bad, good, size);
        bad[i] ^= 0x40;
        assert_int_equal(spm_write_file_atomic(file, bad, size, 0600), 0);
        expect_read_error(f, s, -EBADMSG, file);
    }
    /* Truncated and extended. */
    assert_int_equal(spm_write_file_atomic(file, good, size - 1, 0600), 0);
    expect_read_error(f, s, -EBADMSG, "truncated");
    uint8_t longer[SPM_SIM_COUNTER_FILE_SIZE + 1];
    memcpy(longer, good, size);
    longer[size] = 0;
    assert_int_equal(spm_write_file_atomic(file, longer, sizeof(longer), 0600), 0);
    expect_read_error(f, s, -EBADMSG, file);
    assert_int_equal(spm_write_file_atomic(file, good, 3, 0600), 0);
    expect_read_error(f, s, -EBADMSG, "truncated header");

    /* Restored, the good file reads again. */
    assert_int_equal(spm_write_file_atomic(file, good, size, 0600), 0);
    assert_int_equal(spm_sim_counter_read(f->p, s, g_id, &v, g_read_tag), 0);
    assert_int_equal(v, 1);

    /* Another counter's valid file moved to this counter's name (here: a
     * counter of another signer, lower than this one) is refused. */
    uint8_t other[32];
    signer(other, 0xc3);
    char *other_file = counter_file_of(f->dir, other, g_id);
    assert_int_equal(spm_write_file_atomic(other_file, good, size, 0600), 0);
    expect_read_error(f, other, -EBADMSG, "another counter");
    free(other_file);
    free(good);
    free(file);
}

/* Each value carries the tag its increment stored: returned by read, kept
 * across reopening the platform, replaced by the next increment, and a
 * flipped tag byte (or any other) is refused rather than read as another
 * tag. A file of the tagless format 1 is refused by its version. */
static void test_tag_stored_with_value(void **state)
{
    struct fixture *f = *state;
    uint8_t s[32], tag[32], t1[32], t2[32];
    static const uint8_t zero[32];
    signer(s, 0xa1);
    memset(t1, 0x11, sizeof(t1));
    memset(t2, 0x22, sizeof(t2));
    t2[31] = 0x7f;
    uint64_t v = 99;
    memset(tag, 0xee, sizeof(tag));
    assert_int_equal(spm_sim_counter_read(f->p, s, g_id, &v, tag), 0);
    assert_int_equal(v, 0);
    assert_memory_equal(tag, zero, 32);

    assert_int_equal(spm_sim_counter_increment(f->p, s, g_id, t1, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(spm_sim_counter_read(f->p, s, g_id, &v, tag), 0);
    assert_int_equal(v, 1);
    assert_memory_equal(tag, t1, 32);
    assert_int_equal(spm_sim_counter_increment(f->p, s, g_id, t2, &v), 0);
    assert_int_equal(v, 2);

    /* Durable: another open of the platform reads the value and its tag. */
    struct spm_sim_platform *again = test_open(f->dir);
    memset(tag, 0, sizeof(tag));
    assert_int_equal(spm_sim_counter_read(again, s, g_id, &v, tag), 0);
    assert_int_equal(v, 2);
    assert_memory_equal(tag, t2, 32);
    spm_sim_platform_close(again);

    /* Another signer's counter of the same id has its own tag. */
    uint8_t other[32];
    signer(other, 0xb2);
    assert_int_equal(spm_sim_counter_read(f->p, other, g_id, &v, tag), 0);
    assert_int_equal(v, 0);
    assert_memory_equal(tag, zero, 32);

    /* The tag sits at offset 72 of the file, covered by the checksum. */
    char *file = only_counter_file(f->dir);
    uint8_t *good = NULL;
    size_t size = 0;
    assert_int_equal(spm_read_file(file, 4096, &good, &size), 0);
    assert_int_equal(size, 136);
    assert_memory_equal(good + 72, t2, 32);
    for (size_t i = 72; i < 104; i++) {
        uint8_t bad[SPM_SIM_COUNTER_FILE_SIZE];
        memcpy(bad, good, size);
        bad[i] ^= 0x01;
        assert_int_equal(spm_write_file_atomic(file, bad, size, 0600), 0);
        expect_read_error(f, s, -EBADMSG, "checksum mismatch");
    }

    /* A well-formed version 1 file (no tag) for this counter, value 2. */
    uint8_t v1[104];
    memset(v1, 0, sizeof(v1));
    memcpy(v1, SPM_SIM_COUNTER_MAGIC, 8);
    v1[8] = 1;
    v1[12] = 104;
    memcpy(v1 + 16, s, 32);
    memcpy(v1 + 48, g_id, 16);
    v1[64] = 2;
    spm_sha256(v1, 72, v1 + 72);
    assert_int_equal(spm_write_file_atomic(file, v1, sizeof(v1), 0600), 0);
    expect_read_error(f, s, -EBADMSG, "has version 1");

    assert_int_equal(spm_write_file_atomic(file, good, size, 0600), 0);
    assert_int_equal(spm_sim_counter_read(f->p, s, g_id, &v, tag), 0);
    assert_int_equal(v, 2);
    assert_memory_equal(tag, t2, 32);
    free(good);
    free(file);
}

struct incrementer {
    struct spm_sim_platform *p;
    int count;
    uint64_t *seen;
    int failures;
};

static void *increment_main(void *arg)
{
    struct incrementer *w = arg;
    uint8_t s[32];
    signer(s, 0xa1);
    for (int i = 0; i < w->count; i++)
        if (spm_sim_counter_increment(w->p, s, g_id, g_tag, &w->seen[i]) != 0)
            w->failures++;
    return NULL;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Threads and a second process increment at once: every value from 1 to the
 * total is handed out exactly once. */
static void test_concurrent_increments_never_repeat(void **state)
{
    struct fixture *f = *state;
    enum { THREADS = 4, PER_THREAD = 40, CHILD = 40 };
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct spm_sim_platform *p = NULL;
        if (spm_sim_platform_open(f->dir, &p) != 0)
            _exit(2);
        uint8_t s[32];
        signer(s, 0xa1);
        uint64_t v;
        for (int i = 0; i < CHILD; i++)
            if (spm_sim_counter_increment(p, s, g_id, g_tag, &v) != 0)
                _exit(1);
        _exit(0);
    }
    pthread_t t[THREADS];
    struct incrementer w[THREADS];
    uint64_t *seen = calloc(THREADS * PER_THREAD, sizeof(*seen));
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct incrementer){f->p, PER_THREAD, seen + i * PER_THREAD, 0};
        assert_int_equal(pthread_create(&t[i], NULL, increment_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    qsort(seen, THREADS * PER_THREAD, sizeof(*seen), compare_u64);
    for (int i = 1; i < THREADS * PER_THREAD; i++)
        assert_true(seen[i] > seen[i - 1]);
    uint8_t s[32];
    signer(s, 0xa1);
    uint64_t v;
    assert_int_equal(spm_sim_counter_read(f->p, s, g_id, &v, g_read_tag), 0);
    assert_int_equal(v, THREADS * PER_THREAD + CHILD);
    free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_reads_zero_and_increments_persist, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_namespaced_by_signer_and_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_files_refused_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_stored_with_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_increments_never_repeat, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
