/* The simulated platform's files as spm_sim_platform_open and the counter
 * store read them back from disk (src/host/platform/sim/store.c):
 * platform.state, attest.key, attest.crt, root.crt, and a monotonic
 * counter file. Whoever can write the platform directory is outside the
 * simulation's threat model, but a truncated, stale or foreign file must
 * still be refused by name, never crash or yield a half-loaded platform.
 *
 * Input: byte 0 holds flags; then, for each file whose flag is set, in the
 * order above, a little-endian u16 size and that many bytes (cut short at
 * the end of the input). Flags: bits 0-4 which of the five files exist;
 * bit 5 recomputes platform.state's checksum and bit 6 the counter file's
 * (as an edit by someone who knows the format would, so the fields behind
 * the checksums are reached); bit 7 asks for a quote from an opened
 * platform. The files are written into a private temporary directory; the
 * counter is the one of a fixed MRSIGNER and id.
 *
 * Checked: open fails only with -ENOENT, -EBADMSG or -ENOMEM, and logs
 * why; an opened platform can be described (its names NUL-terminated) and
 * its counter read, or refused as corrupt; a readable counter below the
 * maximum increments by exactly one and reads back with the new tag; a
 * quote from an opened platform verifies against its own root.crt. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/common/fileio.h"
#include "host/crypto/hash.h"
#include "host/platform/quote.h"
#include "host/platform/sim/sim.h"
#include "host_log.h"

enum { FILE_STATE, FILE_KEY, FILE_CERT, FILE_ROOT, FILE_COUNTER, FILE_COUNT };
static const char *const g_names[FILE_STATE + 4] = {"platform.state", "attest.key", "attest.crt",
                                                    "root.crt"};
#define FIX_STATE_SUM   0x20u
#define FIX_COUNTER_SUM 0x40u
#define WANT_QUOTE      0x80u
#define STATE_SUMMED    64u  /* sim_internal.h: SHA-256 of [0, 64) at 64 */
#define COUNTER_SUMMED  104u /* SHA-256 of [0, 104) at 104 */

static char g_dir[64];
static char g_counter_dir[128];
static char g_counter_path[256];
static char g_lock_path[256];
static const uint8_t g_mrsigner[32] = {0x11, 0x22, 0x33};
static const uint8_t g_id[16] = {0x44, 0x55};

static void clean(void);

static void remove_dir(void)
{
    clean();
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(g_dir, sizeof(g_dir), "%s/spm-fuzz-platform-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    assert(mkdtemp(g_dir));
    atexit(remove_dir);
    snprintf(g_counter_dir, sizeof(g_counter_dir), "%s/counters", g_dir);
    uint8_t name_input[48], digest[32];
    memcpy(name_input, g_mrsigner, 32);
    memcpy(name_input + 32, g_id, 16);
    spm_sha256(name_input, sizeof(name_input), digest);
    char hex[33];
    spm_hex(digest, 16, hex);
    snprintf(g_counter_path, sizeof(g_counter_path), "%s/%s", g_counter_dir, hex);
    snprintf(g_lock_path, sizeof(g_lock_path), "%s/lock", g_counter_dir);
    return 0;
}

static void put_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert(fd >= 0);
    assert(write(fd, data, size) == (ssize_t)size);
    close(fd);
}

static void clean(void)
{
    char path[128];
    for (int i = 0; i < FILE_COUNTER; i++) {
        snprintf(path, sizeof(path), "%s/%s", g_dir, g_names[i]);
        unlink(path);
    }
    unlink(g_counter_path);
    unlink(g_lock_path);
    rmdir(g_counter_dir);
}

static void check_counter(const struct spm_sim_platform *p)
{
    uint64_t value = 0;
    uint8_t tag[32];
    fuzz_log_reset();
    int ret = spm_sim_counter_read(p, g_mrsigner, g_id, &value, tag);
    assert(ret == 0 || ret == -EBADMSG);
    if (ret < 0) {
        assert(fuzz_log_count() > 0);
        return;
    }
    uint8_t new_tag[32];
    memset(new_tag, 0x5a, sizeof(new_tag));
    uint64_t next = 0;
    ret = spm_sim_counter_increment(p, g_mrsigner, g_id, new_tag, &next);
    if (value == UINT64_MAX) {
        assert(ret == -EOVERFLOW);
        return;
    }
    assert(ret == 0 && next == value + 1);
    ret = spm_sim_counter_read(p, g_mrsigner, g_id, &value, tag);
    assert(ret == 0 && value == next && memcmp(tag, new_tag, 32) == 0);
}

static void check_quote(const struct spm_sim_platform *p)
{
    struct sgx_secs secs;
    memset(&secs, 0, sizeof(secs));
    memset(secs.mr_enclave, 0x61, sizeof(secs.mr_enclave));
    secs.attributes.flags = SGX_FLAGS_INITTED | SGX_FLAGS_MODE64BIT;
    secs.attributes.xfrm = SGX_XFRM_LEGACY;
    struct sgx_target_info qe;
    struct sgx_report report;
    uint8_t report_data[64] = {1, 2, 3};
    spm_sim_qe_target_info(p, &qe);
    assert(spm_sim_ereport(p, &secs, &qe, report_data, &report) == 0);
    uint8_t *quote = NULL;
    size_t quote_size = 0;
    assert(spm_sim_quote(p, &report, &quote, &quote_size) == 0);
    char root[128];
    snprintf(root, sizeof(root), "%s/root.crt", g_dir);
    struct sgx_report_body body;
    assert(spm_quote_verify(quote, quote_size, root, &body) == 0);
    assert(memcmp(&body, &report.body, sizeof(body)) == 0);
    free(quote);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    size_t at = 1;
    clean();
    for (int i = 0; i < FILE_COUNT; i++) {
        if (!(flags & (1u << i)))
            continue;
        size_t want = 0;
        if (at + 2 <= size) {
            want = (size_t)data[at] | (size_t)data[at + 1] << 8;
            at += 2;
        } else {
            at = size;
        }
        size_t file_size = want < size - at ? want : size - at;
        uint8_t *file = malloc(file_size + 32);
        assert(file);
        memcpy(file, data + at, file_size);
        at += file_size;
        if (i == FILE_STATE && (flags & FIX_STATE_SUM) && file_size >= STATE_SUMMED + 32)
            spm_sha256(file, STATE_SUMMED, file + STATE_SUMMED);
        if (i == FILE_COUNTER && (flags & FIX_COUNTER_SUM) && file_size >= COUNTER_SUMMED + 32)
            spm_sha256(file, COUNTER_SUMMED, file + COUNTER_SUMMED);
        if (i == FILE_COUNTER) {
            mkdir(g_counter_dir, 0700);
            put_file(g_counter_path, file, file_size);
        } else {
            char path[128];
            snprintf(path, sizeof(path), "%s/%s", g_dir, g_names[i]);
            put_file(path, file, file_size);
        }
        free(file);
    }

    struct spm_sim_platform *p = NULL;
    fuzz_log_reset();
    int ret = spm_sim_platform_open(g_dir, &p);
    if (ret < 0) {
        assert(ret == -ENOENT || ret == -EBADMSG || ret == -ENOMEM);
        assert(fuzz_log_count() > 0);
        return 0;
    }
    struct spm_sim_platform_info info;
    assert(spm_sim_platform_describe(p, &info) == 0);
    assert(memchr(info.attest_subject, 0, sizeof(info.attest_subject)));
    assert(memchr(info.attest_issuer, 0, sizeof(info.attest_issuer)));
    assert(memchr(info.root_subject, 0, sizeof(info.root_subject)));
    check_counter(p);
    if (flags & WANT_QUOTE)
        check_quote(p);
    spm_sim_platform_close(p);
    return 0;
}
