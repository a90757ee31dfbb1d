/* The Migration Enclave, spmd and the trusted ME client end to end, on a
 * temporary simulated platform: the release rule (same MRENCLAVE, MRSIGNER,
 * ISVPRODID, ISVSVN, no debug), exactly-once commit, generations, crash and
 * restart of spmd, rollback of its state file, a second spmd on a copy of
 * that state (the counter's tag), and an attacker relaying the
 * messages (tampered reports, flipped and replayed ciphertext, another
 * platform, a fake ME). Every client message passes through a relay in this
 * process that forwards to spmd and can alter what it carries.
 * argv: spmd y z old debug other me fake-me-other-signer fake-me-debug prod
 * fake-me-old-svn fake-me-other-product */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "control/control.h"
#include "me_test_abi.h"
#include "platform/sim/sim.h"
#include "spm/urts.h"
#include "spmd_child.h"

static const char *g_spmd_exe, *g_y, *g_z, *g_old, *g_debug, *g_other, *g_me, *g_fake_other,
    *g_fake_debug, *g_prod, *g_fake_old_svn, *g_fake_other_product;
static char g_dir[256], g_plat_a[320], g_plat_b[320], g_state[320], g_spmd_sock[320],
    g_relay_sock[320], g_spmd_log[320];

/* ---- spmd as a child process ---- */

static struct spm_test_spmd g_spmd;

/* Starts spmd with the test's platform, state and socket; returns 0 once it
 * is ready, or its exit status (> 0) if it stopped. */
static int spmd_start_with(const char *me_image, const char *extra)
{
    int ret = spm_test_spmd_start(g_spmd_exe, g_plat_a, g_state, g_spmd_sock, me_image, extra,
                                  g_spmd_log, &g_spmd);
    assert_true(ret >= 0);
    return ret;
}

static void spmd_start(void)
{
    assert_int_equal(spmd_start_with(g_me, NULL), 0);
}

/* Stops spmd with `sig`; returns its wait status. */
static int spmd_stop(int sig)
{
    assert_true(g_spmd.pid > 0);
    int status = spm_test_spmd_stop(&g_spmd, sig);
    assert_true(status != -1);
    return status;
}

/* ---- The relay: forwards every client message to spmd, or lies ---- */

enum relay_mode {
    RELAY_PASS,
    RELAY_FLIP_HELLO_REPORT,  /* a bit of REPORT_A's body */
    RELAY_FLIP_HELLO_KEY,     /* a bit of the app's ECDH public key */
    RELAY_FLIP_HELLO_REPLY,   /* a bit of REPORT_M's body */
    RELAY_FLIP_SEALED,        /* a bit of a SEALED request's ciphertext */
    RELAY_FLIP_SEALED_HEADER, /* the sequence number of a SEALED request */
    RELAY_FLIP_SEALED_REPLY,  /* a bit of a SEALED reply's ciphertext */
    RELAY_REPLAY_SEALED,      /* sends the previous SEALED request again instead */
    RELAY_FORGE_ERROR,        /* answers a SEALED request itself: ERROR g_forged_status */
    RELAY_REPLAY_REPLY,       /* forwards, but answers with the previous SEALED reply */
};

static volatile int g_relay_mode, g_relay_stop;
static volatile int32_t g_forged_status;
static pthread_t g_relay_thread;
static int g_relay_fd = -1;
static uint8_t g_last_sealed[4096], g_last_sealed_reply[4096];
static size_t g_last_sealed_size, g_last_sealed_reply_size;

static int read_n(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t got = read(fd, p, n);
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static int read_message(int fd, uint8_t *buf, size_t capacity, size_t *size)
{
    struct spm_me_message_header h;
    if (read_n(fd, (uint8_t *)&h, sizeof(h)) < 0 || sizeof(h) + h.size > capacity)
        return -1;
    memcpy(buf, &h, sizeof(h));
    if (read_n(fd, buf + sizeof(h), h.size) < 0)
        return -1;
    *size = sizeof(h) + h.size;
    return 0;
}

/* A unix socket address; the test's paths are short (mkdtemp under $TMPDIR). */
static struct sockaddr_un unix_address(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(addr.sun_path));
    memcpy(addr.sun_path, path, strlen(path) + 1);
    return addr;
}

static int connect_to(const char *path)
{
    struct sockaddr_un addr = unix_address(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static uint16_t type_of(const uint8_t *msg)
{
    return ((const struct spm_me_message_header *)msg)->type;
}

static void relay_one(int client)
{
    static uint8_t msg[70000], reply[70000];
    size_t size = 0, reply_size = 0;
    if (read_message(client, msg, sizeof(msg), &size) < 0)
        return;
    int mode = g_relay_mode;
    size_t h = sizeof(struct spm_me_message_header);
    if (type_of(msg) == SPM_ME_MSG_HELLO && mode == RELAY_FLIP_HELLO_REPORT)
        msg[h + offsetof(struct sgx_report_body, isv_svn)] ^= 1;
    if (type_of(msg) == SPM_ME_MSG_HELLO && mode == RELAY_FLIP_HELLO_KEY)
        msg[h + sizeof(struct sgx_report) + 20] ^= 1;
    if (type_of(msg) == SPM_ME_MSG_SEALED) {
        if (mode == RELAY_REPLAY_SEALED && g_last_sealed_size) {
            memcpy(msg, g_last_sealed, g_last_sealed_size);
            size = g_last_sealed_size;
        } else if (size <= sizeof(g_last_sealed)) {
            memcpy(g_last_sealed, msg, size);
            g_last_sealed_size = size;
        }
        if (mode == RELAY_FLIP_SEALED)
            msg[size - 1] ^= 0x80;
        if (mode == RELAY_FLIP_SEALED_HEADER)
            msg[h + offsetof(struct spm_me_sealed, sequence)] ^= 0x40;
        if (mode == RELAY_FORGE_ERROR) {
            /* The host's own answer, in the plaintext the ME uses for
             * errors, without asking the ME at all. */
            struct {
                struct spm_me_message_header h;
                struct spm_me_error e;
            } __attribute__((packed)) forged = {
                .h = {.magic = SPM_ME_MAGIC,
                      .version = SPM_ME_VERSION,
                      .type = SPM_ME_MSG_ERROR,
                      .size = sizeof(struct spm_me_error)},
                .e = {.status = g_forged_status},
            };
            if (write(client, &forged, sizeof(forged)) != (ssize_t)sizeof(forged)) {
                /* the client gave up */
            }
            return;
        }
    }
    int upstream = connect_to(g_spmd_sock);
    if (upstream < 0)
        return;
    if (write(upstream, msg, size) != (ssize_t)size ||
        read_message(upstream, reply, sizeof(reply), &reply_size) < 0) {
        close(upstream);
        return;
    }
    close(upstream);
    if (type_of(reply) == SPM_ME_MSG_HELLO && mode == RELAY_FLIP_HELLO_REPLY)
        reply[h + 8 + offsetof(struct sgx_report_body, mr_enclave)] ^= 1;
    if (type_of(reply) == SPM_ME_MSG_SEALED && mode == RELAY_FLIP_SEALED_REPLY)
        reply[reply_size - 1] ^= 1;
    if (type_of(reply) == SPM_ME_MSG_SEALED) {
        if (mode == RELAY_REPLAY_REPLY && g_last_sealed_reply_size) {
            /* The ME's genuine answer to an earlier request of this
             * session, in place of its answer to this one. */
            memcpy(reply, g_last_sealed_reply, g_last_sealed_reply_size);
            reply_size = g_last_sealed_reply_size;
        } else if (reply_size <= sizeof(g_last_sealed_reply)) {
            memcpy(g_last_sealed_reply, reply, reply_size);
            g_last_sealed_reply_size = reply_size;
        }
    }
    if (write(client, reply, reply_size) != (ssize_t)reply_size) {
        /* the client gave up */
    }
}

static void *relay_main(void *arg)
{
    (void)arg;
    while (!g_relay_stop) {
        struct pollfd p = {.fd = g_relay_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int client = accept(g_relay_fd, NULL, NULL);
        if (client < 0)
            continue;
        relay_one(client);
        close(client);
    }
    return NULL;
}

/* ---- The test enclave ---- */

static struct spm_enclave *load_on(const char *image, const char *platform)
{
    struct spm_enclave_options o = {.platform_dir = platform};
    struct spm_enclave *e = NULL;
    assert_int_equal(spm_enclave_load(image, &o, &e), 0);
    return e;
}

static struct spm_enclave *load(const char *image)
{
    return load_on(image, g_plat_a);
}

static int call(struct spm_enclave *e, uint32_t id, const void *in, size_t in_size, void *out,
                size_t capacity)
{
    size_t ignored = 0;
    return spm_enclave_ecall(e, id, in, in_size, out, capacity, &ignored, 0);
}

static int me_open(struct spm_enclave *e)
{
    uint64_t session = 0;
    return call(e, ME_TEST_ECALL_OPEN, NULL, 0, &session, sizeof(session));
}

/* Every key the test escrowed, to look for them where they must not be. */
static uint8_t g_keys[64][32];
static int g_key_count;

static struct spm_me_checkpoint_ref ref_of(uint8_t lineage, uint64_t generation, uint8_t id)
{
    struct spm_me_checkpoint_ref ref;
    memset(&ref, 0, sizeof(ref));
    memset(ref.lineage_id, lineage, sizeof(ref.lineage_id));
    memset(ref.checkpoint_id, id, sizeof(ref.checkpoint_id));
    ref.generation = generation;
    for (size_t i = 0; i < sizeof(ref.header_digest); i++)
        ref.header_digest[i] = (uint8_t)(lineage * 31 + id * 7 + i);
    return ref;
}

static void fresh_key(uint8_t key[32])
{
    int fd = open("/dev/urandom", O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, key, 32), 32);
    close(fd);
    if (g_key_count < 64)
        memcpy(g_keys[g_key_count++], key, 32);
}

static int escrow(struct spm_enclave *e, const struct spm_me_checkpoint_ref *ref,
                  const uint8_t key[32])
{
    struct spm_me_escrow req = {.ref = *ref};
    memcpy(req.key, key, 32);
    return call(e, ME_TEST_ECALL_ESCROW, &req, sizeof(req), NULL, 0);
}

static int release(struct spm_enclave *e, const struct spm_me_checkpoint_ref *ref, uint8_t key[32])
{
    memset(key, 0, 32);
    return call(e, ME_TEST_ECALL_RELEASE, ref, sizeof(*ref), key, 32);
}

static int commit(struct spm_enclave *e, const struct spm_me_checkpoint_ref *ref, uint8_t lease)
{
    struct spm_me_commit req = {.ref = *ref};
    memset(req.lease, lease, sizeof(req.lease));
    return call(e, ME_TEST_ECALL_COMMIT, &req, sizeof(req), NULL, 0);
}

static int cancel(struct spm_enclave *e, const struct spm_me_checkpoint_ref *ref)
{
    return call(e, ME_TEST_ECALL_CANCEL, ref, sizeof(*ref), NULL, 0);
}

/* Opens a session on a freshly loaded enclave (a restored process). */
static struct spm_enclave *opened(const char *image)
{
    struct spm_enclave *e = load(image);
    assert_int_equal(me_open(e), 0);
    return e;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- Tests ---- */

static void test_escrow_then_release_to_same_identity(void **state)
{
    (void)state;
    /* The ME never travels: spmd opens no control socket for the plugin. */
    char ctl[PATH_MAX];
    snprintf(ctl, sizeof(ctl), "%s/%d.ctl", spm_control_run_dir(), (int)g_spmd.pid);
    assert_int_equal(access(ctl, F_OK), -1);
    struct spm_enclave *a = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(1, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(a, &ref, key), 0);
    spm_enclave_destroy(a);
    /* Another instance of the same enclave (what a restore loads). */
    struct spm_enclave *b = opened(g_y);
    assert_int_equal(release(b, &ref, got), 0);
    assert_memory_equal(key, got, 32);
    /* Released any number of times until COMMIT. */
    assert_int_equal(release(b, &ref, got), 0);
    assert_memory_equal(key, got, 32);
    spm_enclave_destroy(b);
}

static void test_timings(void **state)
{
    (void)state;
    enum { ROUNDS = 20 };
    struct spm_enclave *e = load(g_y);
    double open_ms = 0, escrow_ms = 0, release_ms = 0, commit_ms = 0;
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(me_open(e), 0);
        open_ms += ms_since(&t0);
        struct spm_me_checkpoint_ref ref = ref_of(2, (uint64_t)i + 1, (uint8_t)(i + 1));
        uint8_t key[32], got[32];
        fresh_key(key);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(escrow(e, &ref, key), 0);
        escrow_ms += ms_since(&t0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(release(e, &ref, got), 0);
        release_ms += ms_since(&t0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(commit(e, &ref, (uint8_t)i), 0);
        commit_ms += ms_since(&t0);
    }
    print_message("ME timings over %d rounds (mean): handshake %.2f ms, escrow %.2f ms "
                  "(incl. seal+fsync+counter), release %.2f ms, commit %.2f ms\n",
                  ROUNDS, open_ms / ROUNDS, escrow_ms / ROUNDS, release_ms / ROUNDS,
                  commit_ms / ROUNDS);
    spm_enclave_destroy(e);
}

static void test_release_refused_to_other_identities(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(3, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(y, &ref, key), 0);

    struct spm_enclave *z = opened(g_z); /* other MRENCLAVE */
    assert_int_equal(release(z, &ref, got), -EKEYREJECTED);
    assert_int_equal(commit(z, &ref, 9), -EKEYREJECTED);
    assert_int_equal(cancel(z, &ref), -EKEYREJECTED);
    spm_enclave_destroy(z);
    struct spm_enclave *other = opened(g_other); /* other MRSIGNER */
    assert_int_equal(release(other, &ref, got), -EKEYREJECTED);
    spm_enclave_destroy(other);
    struct spm_enclave *old = opened(g_old); /* lower ISVSVN */
    assert_int_equal(release(old, &ref, got), -EKEYREJECTED);
    spm_enclave_destroy(old);
    struct spm_enclave *debug = opened(g_debug); /* same identity, DEBUG */
    assert_int_equal(release(debug, &ref, got), -EPERM);
    uint8_t debug_key[32];
    fresh_key(debug_key);
    struct spm_me_checkpoint_ref debug_ref = ref_of(4, 1, 1);
    assert_int_equal(escrow(debug, &debug_ref, debug_key), -EPERM);
    spm_enclave_destroy(debug);
    assert_memory_not_equal(got, key, 32);

    /* None of that disturbed the owner. */
    assert_int_equal(release(y, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    spm_enclave_destroy(y);
}

/* Same code and signer, another ISVPRODID: MRENCLAVE and MRSIGNER are the
 * owner's, so only the product id tells them apart. */
static void test_release_refused_to_other_product(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y), *prod = opened(g_prod);
    uint8_t my[32], its[32];
    spm_enclave_mrenclave(y, my);
    spm_enclave_mrenclave(prod, its);
    assert_memory_equal(my, its, 32);
    spm_enclave_mrsigner(y, my);
    spm_enclave_mrsigner(prod, its);
    assert_memory_equal(my, its, 32);
    struct spm_me_checkpoint_ref ref = ref_of(18, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(y, &ref, key), 0);
    assert_int_equal(release(prod, &ref, got), -EKEYREJECTED);
    assert_int_equal(commit(prod, &ref, 0x18), -EKEYREJECTED);
    assert_int_equal(cancel(prod, &ref), -EKEYREJECTED);
    assert_memory_not_equal(got, key, 32);
    assert_int_equal(release(y, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    spm_enclave_destroy(prod);
    spm_enclave_destroy(y);
}

static void test_commit_once(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(5, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(y, &ref, key), 0);
    assert_int_equal(release(y, &ref, got), 0);
    assert_int_equal(commit(y, &ref, 0xA1), 0);
    assert_int_equal(commit(y, &ref, 0xA1), 0); /* the same lease: a lost reply retried */
    assert_int_equal(release(y, &ref, got), -EALREADY);
    spm_enclave_destroy(y);
    /* A second restore of the same images: another process, another lease. */
    struct spm_enclave *second = opened(g_y);
    assert_int_equal(release(second, &ref, got), -EALREADY);
    assert_int_equal(commit(second, &ref, 0xB2), -EALREADY);
    assert_int_equal(commit(second, &ref, 0xA1), 0);
    struct spm_me_checkpoint_ref bad_digest = ref;
    bad_digest.header_digest[0] ^= 1;
    assert_int_equal(commit(second, &bad_digest, 0xA1), -EBADMSG);
    spm_enclave_destroy(second);
}

static void test_generations(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref g5 = ref_of(6, 5, 5), g4 = ref_of(6, 4, 4), g6 = ref_of(6, 6, 6);
    uint8_t k5[32], k4[32], k6[32], got[32];
    fresh_key(k5);
    fresh_key(k4);
    fresh_key(k6);
    assert_int_equal(escrow(y, &g5, k5), 0);
    assert_int_equal(escrow(y, &g4, k4), -ESTALE); /* older than escrowed */
    assert_int_equal(escrow(y, &g5, k5), 0);       /* the same escrow again */
    struct spm_me_checkpoint_ref g5_other = ref_of(6, 5, 7);
    assert_int_equal(escrow(y, &g5_other, k4), -ESTALE); /* same generation, other checkpoint */
    assert_int_equal(release(y, &g4, got), -ESTALE);     /* never escrowed, and superseded */
    assert_int_equal(escrow(y, &g6, k6), 0);
    assert_int_equal(release(y, &g5, got), -ESTALE); /* superseded: its key is gone */
    assert_int_equal(release(y, &g6, got), 0);
    assert_memory_equal(got, k6, 32);
    struct spm_me_checkpoint_ref bad = g6;
    bad.header_digest[31] ^= 0x10;
    assert_int_equal(release(y, &bad, got), -EBADMSG);
    bad = g6;
    bad.generation = 7;
    assert_int_equal(release(y, &bad, got), -ESTALE);
    struct spm_me_checkpoint_ref unknown = ref_of(0x66, 1, 1);
    assert_int_equal(release(y, &unknown, got), -ENOENT);
    /* Another enclave that knows the lineage id cannot supersede it. */
    struct spm_enclave *z = opened(g_z);
    struct spm_me_checkpoint_ref g9 = ref_of(6, 9, 9);
    uint8_t k9[32];
    fresh_key(k9);
    assert_int_equal(escrow(z, &g9, k9), 0);
    assert_int_equal(release(y, &g6, got), 0);
    assert_memory_equal(got, k6, 32);
    spm_enclave_destroy(z);
    spm_enclave_destroy(y);
}

static void test_cancel(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(7, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(y, &ref, key), 0);
    assert_int_equal(cancel(y, &ref), 0);
    assert_int_equal(release(y, &ref, got), -EALREADY);
    assert_int_equal(commit(y, &ref, 1), -EALREADY);
    assert_int_equal(cancel(y, &ref), 0);
    struct spm_me_checkpoint_ref unknown = ref_of(0x77, 1, 1);
    assert_int_equal(cancel(y, &unknown), 0); /* nothing to cancel */
    /* A frozen enclave whose ESCROW reply was lost asks to cancel after
     * another copy already resumed the checkpoint: it is told so, and must
     * die rather than run on next to that copy. */
    struct spm_me_checkpoint_ref resumed = ref_of(0x78, 1, 1);
    fresh_key(key);
    assert_int_equal(escrow(y, &resumed, key), 0);
    assert_int_equal(release(y, &resumed, got), 0);
    assert_int_equal(commit(y, &resumed, 1), 0);
    assert_int_equal(cancel(y, &resumed), -EALREADY);
    /* ... or after the lineage moved on to a newer checkpoint. */
    struct spm_me_checkpoint_ref newer = ref_of(0x78, 2, 2);
    fresh_key(key);
    assert_int_equal(escrow(y, &newer, key), 0);
    assert_int_equal(cancel(y, &resumed), -ESTALE);
    spm_enclave_destroy(y);
}

static void test_spmd_killed_between_escrow_and_release(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(8, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(y, &ref, key), 0);
    int status = spmd_stop(SIGKILL);
    assert_true(WIFSIGNALED(status));
    spmd_start();
    /* The old session died with the ME: the client is told to reopen. */
    assert_int_equal(release(y, &ref, got), -ECONNRESET);
    assert_int_equal(me_open(y), 0);
    assert_int_equal(release(y, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    spm_enclave_destroy(y);
}

static void copy_file(const char *from, const char *to)
{
    uint8_t *data = NULL;
    size_t size = 0;
    assert_int_equal(spm_read_file(from, 1 << 20, &data, &size), 0);
    assert_int_equal(spm_write_file_atomic(to, data, size, 0600), 0);
    free(data);
}

static bool log_mentions(const char *needle)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (spm_read_file(g_spmd_log, 1 << 24, &data, &size) < 0)
        return false;
    bool found = strstr((const char *)data, needle) != NULL;
    free(data);
    return found;
}

static void test_rollback_of_state_refused(void **state)
{
    (void)state;
    char state_file[400], older[400], newest[400];
    snprintf(state_file, sizeof(state_file), "%s/escrow.sealed", g_state);
    snprintf(older, sizeof(older), "%s/escrow.older", g_dir);
    snprintf(newest, sizeof(newest), "%s/escrow.newest", g_dir);
    copy_file(state_file, older);
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(9, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(y, &ref, key), 0);
    assert_int_equal(commit(y, &ref, 3), 0);
    /* The attacker puts the state from before the commit back. */
    assert_int_equal(WEXITSTATUS(spmd_stop(SIGTERM)), 0);
    copy_file(state_file, newest);
    copy_file(older, state_file);
    assert_int_not_equal(spmd_start_with(g_me, NULL), 0);
    assert_true(log_mentions("ROLLBACK"));
    assert_true(log_mentions("refusing to start"));
    /* A corrupt state is refused too, naming what is wrong. */
    uint8_t *data = NULL;
    size_t size = 0;
    assert_int_equal(spm_read_file(newest, 1 << 20, &data, &size), 0);
    data[size / 2] ^= 1;
    assert_int_equal(spm_write_file_atomic(state_file, data, size, 0600), 0);
    free(data);
    assert_int_not_equal(spmd_start_with(g_me, NULL), 0);
    assert_true(log_mentions("does not unseal"));
    /* The newest state starts, and the checkpoint stays consumed. */
    copy_file(newest, state_file);
    spmd_start();
    assert_int_equal(me_open(y), 0);
    assert_int_equal(release(y, &ref, got), -EALREADY);
    spm_enclave_destroy(y);
}

/* Overwrites every counter file of platform A with `data` (saving the
 * originals into saved[], or restoring them from it when data is NULL). */
static int swap_counters(uint8_t *saved[32], size_t saved_size[32], const char *data)
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/counters", g_plat_a);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *entry;
    int count = 0;
    while ((entry = readdir(d)) && count < 32) {
        if (entry->d_name[0] == '.' || strcmp(entry->d_name, "lock") == 0)
            continue;
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        if (data) {
            assert_int_equal(spm_read_file(path, 4096, &saved[count], &saved_size[count]), 0);
            assert_int_equal(spm_write_file_atomic(path, data, strlen(data), 0600), 0);
        } else {
            /* readdir's order is stable for an unchanged directory */
            assert_int_equal(spm_write_file_atomic(path, saved[count], saved_size[count], 0600), 0);
            free(saved[count]);
        }
        count++;
    }
    closedir(d);
    return count;
}

/* The counter step fails after the state was written: the ME stops
 * promising anything and spmd exits; once the counter store is back, the
 * restarted ME finds state version == counter + 1, completes the step and
 * serves the (durable) escrow. */
static void test_counter_failure_stops_me_and_restart_recovers(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(13, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    uint8_t *saved[32];
    size_t saved_size[32];
    int count = swap_counters(saved, saved_size, "not a counter");
    assert_true(count > 0);
    assert_int_equal(escrow(y, &ref, key), -EIO);
    assert_int_equal(release(y, &ref, got), -EIO); /* the ME refuses everything now */
    int status = 0;
    assert_int_equal(waitpid(g_spmd.pid, &status, 0), g_spmd.pid);
    g_spmd.pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_int_equal(swap_counters(saved, saved_size, NULL), count);
    spmd_start();
    assert_true(log_mentions("completed the interrupted update"));
    assert_int_equal(me_open(y), 0);
    assert_int_equal(release(y, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    assert_int_equal(cancel(y, &ref), 0);
    spm_enclave_destroy(y);
}

/* The fork window: an attacker copies the state dir and runs a second spmd
 * (B) on the same platform next to A; both share one escrow id and hence
 * one platform counter. Checkpoint C is in both. Enclave 1 restores via A
 * (COMMIT, counter -> v+1). Enclave 2 restores via B: B writes its own v+1
 * (C consumed with lease 2) and its counter step fails (as in the test
 * above). With a version number alone, B's restart would find version v+1
 * == counter v+1, accept it, and answer enclave 2's retried COMMIT with the
 * same lease OK: two enclaves running one checkpoint. The counter's tag
 * names A's state, so B must refuse to start; A's commit stands. */
static void test_second_spmd_on_copied_state_refused(void **state)
{
    (void)state;
    char state_a[sizeof(g_state)], sock_a[sizeof(g_spmd_sock)], state_b[sizeof(g_state)],
        sock_b[sizeof(g_spmd_sock)], from[400], to[400];
    memcpy(state_a, g_state, sizeof(state_a));
    memcpy(sock_a, g_spmd_sock, sizeof(sock_a));
    snprintf(state_b, sizeof(state_b), "%s/state-b", g_dir);
    snprintf(sock_b, sizeof(sock_b), "%s/run-b/spmd.sock", g_dir);
    pid_t pid_a = g_spmd.pid;

    struct spm_enclave *one = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(14, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(one, &ref, key), 0);

    /* The attacker's copy, and spmd B on it (same platform). */
    assert_int_equal(mkdir(state_b, 0700), 0);
    snprintf(from, sizeof(from), "%s/escrow.sealed", state_a);
    snprintf(to, sizeof(to), "%s/escrow.sealed", state_b);
    copy_file(from, to);
    memcpy(g_state, state_b, sizeof(g_state));
    memcpy(g_spmd_sock, sock_b, sizeof(g_spmd_sock));
    assert_int_equal(spmd_start_with(g_me, NULL), 0);
    pid_t pid_b = g_spmd.pid;

    /* Enclave 1 restores via A: released and committed with lease 1. */
    memcpy(g_spmd_sock, sock_a, sizeof(g_spmd_sock));
    assert_int_equal(me_open(one), 0);
    assert_int_equal(release(one, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    assert_int_equal(commit(one, &ref, 1), 0);

    /* Enclave 2 restores via B, which still has the key; B persists its
     * own v+1 and its counter step fails. */
    memcpy(g_spmd_sock, sock_b, sizeof(g_spmd_sock));
    struct spm_enclave *two = opened(g_y);
    assert_int_equal(release(two, &ref, got), 0);
    uint8_t *saved[32];
    size_t saved_size[32];
    int count = swap_counters(saved, saved_size, "not a counter");
    assert_true(count > 0);
    assert_int_equal(commit(two, &ref, 2), -EIO);
    assert_int_equal(release(two, &ref, got), -EIO); /* B refuses everything and exits */
    int status = 0;
    assert_int_equal(waitpid(pid_b, &status, 0), pid_b);
    g_spmd.pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_int_equal(swap_counters(saved, saved_size, NULL), count);

    /* B restarts on its v+1, which the counter (at v+1, A's state) does not
     * vouch for: refused, so the retried COMMIT has nowhere to go. */
    assert_int_not_equal(spmd_start_with(g_me, NULL), 0);
    assert_true(log_mentions("a second copy of this escrow state"));
    assert_true(log_mentions("refusing to start"));
    assert_int_not_equal(me_open(two), 0);
    assert_int_not_equal(commit(two, &ref, 2), 0);

    /* A never stopped and its commit stands: lease 1 holds, lease 2 does
     * not, no key any more, and A keeps serving (its counter steps land). */
    memcpy(g_state, state_a, sizeof(g_state));
    memcpy(g_spmd_sock, sock_a, sizeof(g_spmd_sock));
    g_spmd.pid = pid_a;
    assert_int_equal(me_open(two), 0);
    assert_int_equal(commit(two, &ref, 2), -EALREADY);
    assert_int_equal(release(two, &ref, got), -EALREADY);
    assert_int_equal(commit(one, &ref, 1), 0);
    struct spm_me_checkpoint_ref next = ref_of(14, 2, 2);
    fresh_key(key);
    assert_int_equal(escrow(one, &next, key), 0);
    assert_int_equal(cancel(one, &next), 0);
    spm_enclave_destroy(two);
    spm_enclave_destroy(one);
}

static void test_report_from_another_platform_refused(void **state)
{
    (void)state;
    /* A genuine enclave, but on platform B: its REPORT_A's MAC is keyed
     * with B's secrets, which the ME on A cannot match. */
    struct spm_enclave *b = load_on(g_y, g_plat_b);
    assert_int_equal(me_open(b), -EKEYREJECTED);
    spm_enclave_destroy(b);
}

static void test_tampered_hello_refused(void **state)
{
    (void)state;
    struct spm_enclave *y = load(g_y);
    g_relay_mode = RELAY_FLIP_HELLO_REPORT; /* e.g. claiming another ISVSVN */
    assert_int_equal(me_open(y), -EKEYREJECTED);
    g_relay_mode = RELAY_FLIP_HELLO_KEY; /* a man in the middle's key */
    assert_int_equal(me_open(y), -EKEYREJECTED);
    g_relay_mode = RELAY_FLIP_HELLO_REPLY; /* the ME's report altered */
    assert_int_equal(me_open(y), -EKEYREJECTED);
    g_relay_mode = RELAY_PASS;
    assert_int_equal(me_open(y), 0);
    spm_enclave_destroy(y);
}

static void test_tampered_sealed_messages_refused(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(10, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    g_relay_mode = RELAY_FLIP_SEALED;
    assert_int_equal(escrow(y, &ref, key), -EPROTO);
    g_relay_mode = RELAY_FLIP_SEALED_HEADER;
    assert_int_equal(escrow(y, &ref, key), -EPROTO);
    g_relay_mode = RELAY_PASS;
    assert_int_equal(release(y, &ref, got), -ENOENT); /* nothing was escrowed */
    assert_int_equal(escrow(y, &ref, key), 0);        /* the session survived */
    g_relay_mode = RELAY_FLIP_SEALED_REPLY;
    assert_int_equal(release(y, &ref, got), -EPROTO);
    /* The previous request replayed in place of this one: the ME refuses
     * a sequence number it has seen and the client gets no key. */
    g_relay_mode = RELAY_REPLAY_SEALED;
    assert_int_equal(release(y, &ref, got), -EPROTO);
    g_relay_mode = RELAY_PASS;
    assert_int_equal(release(y, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    spm_enclave_destroy(y);
}

/* The relay answers a sealed request itself, in the plaintext ERROR form,
 * with each of the ME's verdicts (and with 0). Only a reply sealed under
 * the session's k_me may carry a verdict: a forged -EALREADY or -ESTALE to
 * a frozen enclave's CANCEL would make it wipe a state whose key is still
 * in escrow, a forged 0 to CANCEL or COMMIT would let it run while the key
 * can still be released to a second copy. The client reports none of them:
 * -EPROTO, or -EIO for -ENOENT (which a relay reports when spmd's socket is
 * missing); and the ME, never asked, still holds the key. */
static void test_forged_plaintext_verdicts_refused(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(15, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(y, &ref, key), 0);
    static const int32_t verdicts[] = {0,      -EALREADY, -ESTALE, -ENOENT, -EKEYREJECTED,
                                       -EPERM, -EBUSY,    -EBADMSG};
    int wrong = 0;
    g_relay_mode = RELAY_FORGE_ERROR;
    for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
        g_forged_status = verdicts[i];
        int want = verdicts[i] == -ENOENT ? -EIO : -EPROTO;
        int got_cancel = cancel(y, &ref), got_commit = commit(y, &ref, 0x15),
            got_release = release(y, &ref, got);
        if (got_cancel != want || got_commit != want || got_release != want) {
            print_error("a forged plaintext %d: CANCEL %d, COMMIT %d, RELEASE %d; want %d\n",
                        (int)verdicts[i], got_cancel, got_commit, got_release, want);
            wrong++;
        }
    }
    g_relay_mode = RELAY_PASS;
    assert_int_equal(wrong, 0);
    /* The ME saw none of it: K is still escrowed, unconsumed. */
    assert_int_equal(release(y, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    spm_enclave_destroy(y);
}

/* The relay forwards a CANCEL to the ME but hands back the ME's genuine,
 * sealed answer to an earlier CANCEL of the same session (status 0). The
 * ME's real answer is -EALREADY: the checkpoint was resumed by another
 * copy and the frozen caller must die; accepting the old 0 would thaw it
 * next to that copy. The client takes only the reply to the sequence
 * number it sent. */
static void test_replayed_sealed_reply_refused(void **state)
{
    (void)state;
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref resumed = ref_of(16, 1, 1), never = ref_of(17, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(y, &resumed, key), 0);
    assert_int_equal(release(y, &resumed, got), 0);
    assert_int_equal(commit(y, &resumed, 0x16), 0);
    /* The reply the relay keeps: a CANCEL answered 0 (never escrowed). */
    assert_int_equal(cancel(y, &never), 0);
    g_relay_mode = RELAY_REPLAY_REPLY;
    int ret = cancel(y, &resumed);
    g_relay_mode = RELAY_PASS;
    if (ret != -EPROTO)
        fail_msg("an earlier CANCEL's sealed reply answered this CANCEL: the client returned %d",
                 ret);
    /* The session goes on, and the ME's own answer is the verdict. */
    assert_int_equal(cancel(y, &resumed), -EALREADY);
    spm_enclave_destroy(y);
}

static void test_fake_me_refused(void **state)
{
    (void)state;
    struct spm_enclave *y = load(g_y);
    /* Another signer; the ME's signer but DEBUG, a lower ISVSVN, or
     * another ISVPRODID. */
    const char *fakes[] = {g_fake_other, g_fake_debug, g_fake_old_svn, g_fake_other_product};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(WEXITSTATUS(spmd_stop(SIGTERM)), 0);
        char saved[sizeof(g_state)];
        memcpy(saved, g_state, sizeof(saved));
        snprintf(g_state, sizeof(g_state), "%s/fake-state-%d", g_dir, i);
        assert_int_equal(spmd_start_with(fakes[i], NULL), 0);
        assert_int_equal(me_open(y), -EKEYREJECTED);
        spmd_stop(SIGTERM);
        memcpy(g_state, saved, sizeof(g_state));
        spmd_start();
    }
    assert_int_equal(me_open(y), 0);
    spm_enclave_destroy(y);
}

static void test_allow_debug_policy(void **state)
{
    (void)state;
    assert_int_equal(WEXITSTATUS(spmd_stop(SIGTERM)), 0);
    assert_int_equal(spmd_start_with(g_me, "--allow-debug"), 0);
    struct spm_enclave *debug = opened(g_debug);
    struct spm_me_checkpoint_ref ref = ref_of(11, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(debug, &ref, key), 0);
    assert_int_equal(release(debug, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    spm_enclave_destroy(debug);
    spmd_stop(SIGTERM);
    spmd_start();
    /* Policy is spmd's: without it the debug enclave's key stays put. */
    debug = opened(g_debug);
    assert_int_equal(release(debug, &ref, got), -EPERM);
    spm_enclave_destroy(debug);
}

static void test_platform_counters_through_the_cpu(void **state)
{
    (void)state;
    struct spm_enclave *y = load(g_y), *z = load(g_z), *other = load(g_other);
    struct me_test_counter inc = {.increment = 1}, read = {.increment = 0};
    memcpy(inc.id, "test-counter-0001", 16);
    memcpy(read.id, inc.id, 16);
    static const uint8_t zero[32];
    struct me_test_counter_value v;
    memset(&v, 0x99, sizeof(v));
    assert_int_equal(call(y, ME_TEST_ECALL_COUNTER, &read, sizeof(read), &v, sizeof(v)), 0);
    assert_int_equal(v.value, 0);
    assert_memory_equal(v.tag, zero, 32);
    memset(inc.tag, 0x5a, sizeof(inc.tag));
    assert_int_equal(call(y, ME_TEST_ECALL_COUNTER, &inc, sizeof(inc), &v, sizeof(v)), 0);
    assert_int_equal(v.value, 1);
    /* The tag goes through the CPU leaf into the store and back. */
    assert_int_equal(call(y, ME_TEST_ECALL_COUNTER, &read, sizeof(read), &v, sizeof(v)), 0);
    assert_int_equal(v.value, 1);
    assert_memory_equal(v.tag, inc.tag, 32);
    /* Shared by the signer's enclaves, private from other signers'. */
    memset(inc.tag, 0xa5, sizeof(inc.tag));
    assert_int_equal(call(z, ME_TEST_ECALL_COUNTER, &inc, sizeof(inc), &v, sizeof(v)), 0);
    assert_int_equal(v.value, 2);
    assert_int_equal(call(y, ME_TEST_ECALL_COUNTER, &read, sizeof(read), &v, sizeof(v)), 0);
    assert_memory_equal(v.tag, inc.tag, 32);
    assert_int_equal(call(other, ME_TEST_ECALL_COUNTER, &read, sizeof(read), &v, sizeof(v)), 0);
    assert_int_equal(v.value, 0);
    assert_memory_equal(v.tag, zero, 32);
    spm_enclave_destroy(other);
    spm_enclave_destroy(z);
    spm_enclave_destroy(y);
}

static bool contains(const uint8_t *data, size_t size, const uint8_t key[32])
{
    return size >= 32 && memmem(data, size, key, 32) != NULL;
}

/* Every file under dir, subdirectories included (spmd keeps its migration
 * journals in one); returns the number of files scanned. */
static int scan_tree_for_keys(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *entry;
    int files = 0;
    while ((entry = readdir(d))) {
        if (entry->d_name[0] == '.')
            continue;
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            files += scan_tree_for_keys(path);
            continue;
        }
        uint8_t *data = NULL;
        size_t size = 0;
        assert_int_equal(spm_read_file(path, 1 << 24, &data, &size), 0);
        for (int i = 0; i < g_key_count; i++)
            if (contains(data, size, g_keys[i]))
                fail_msg("escrowed key %d found in plaintext in %s", i, path);
        free(data);
        files++;
    }
    closedir(d);
    return files;
}

static void scan_dir_for_keys(const char *dir)
{
    assert_true(scan_tree_for_keys(dir) > 0);
}

/* Reads spmd's memory outside the ME's ELRANGE (needs ptrace rights). */
static int scan_spmd_memory(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)g_spmd.pid);
    FILE *maps = fopen(path, "r");
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)g_spmd.pid);
    int mem = open(path, O_RDONLY);
    if (!maps || mem < 0) {
        if (maps)
            fclose(maps);
        if (mem >= 0)
            close(mem);
        return -1;
    }
    char line[512];
    size_t scanned = 0;
    while (fgets(line, sizeof(line), maps)) {
        unsigned long start, end;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[0] != 'r')
            continue;
        if (start >= g_spmd.elrange_base && end <= g_spmd.elrange_base + g_spmd.elrange_size)
            continue;
        if (strstr(line, "[vvar]") || strstr(line, "[vsyscall]"))
            continue;
        /* Sanitizer shadow reservations span terabytes of zero pages. */
        if (end - start > (64ul << 30))
            continue;
        /* Pieces overlapping by one key less a byte, so no key is cut. */
        enum { PIECE = 8 << 20, KEY = 32 };
        uint8_t *buf = malloc(PIECE + KEY);
        assert_non_null(buf);
        size_t carried = 0;
        for (unsigned long at = start; at < end;) {
            size_t want = end - at < PIECE ? end - at : PIECE;
            ssize_t got = pread(mem, buf + carried, want, (off_t)at);
            if (got <= 0)
                break;
            size_t have = carried + (size_t)got;
            scanned += (size_t)got;
            for (int i = 0; i < g_key_count; i++)
                if (contains(buf, have, g_keys[i]))
                    fail_msg("escrowed key %d found in spmd's memory outside ELRANGE: %s", i, line);
            at += (unsigned long)got;
            carried = have < KEY - 1 ? have : KEY - 1;
            memmove(buf, buf + have - carried, carried);
        }
        free(buf);
    }
    fclose(maps);
    close(mem);
    return scanned > 0 ? 0 : -1;
}

static void test_keys_never_in_plaintext_outside_enclaves(void **state)
{
    (void)state;
    /* A key escrowed and released in this spmd's lifetime. */
    struct spm_enclave *y = opened(g_y);
    struct spm_me_checkpoint_ref ref = ref_of(12, 1, 1);
    uint8_t key[32], got[32];
    fresh_key(key);
    assert_int_equal(escrow(y, &ref, key), 0);
    assert_int_equal(release(y, &ref, got), 0);
    spm_enclave_destroy(y);
    assert_true(g_key_count > 10);
    scan_dir_for_keys(g_state);
    char counters[400];
    snprintf(counters, sizeof(counters), "%s/counters", g_plat_a);
    scan_dir_for_keys(counters);
    if (scan_spmd_memory() < 0)
        print_message("note: spmd's memory could not be read (no ptrace rights); skipped\n");
}

static void test_no_spmd_fails_cleanly(void **state)
{
    (void)state;
    struct spm_enclave *y = load(g_y);
    char saved[400];
    snprintf(saved, sizeof(saved), "%s", getenv(SPM_SPMD_SOCKET_ENV));
    char missing[400];
    snprintf(missing, sizeof(missing), "%s/no-such.sock", g_dir);
    setenv(SPM_SPMD_SOCKET_ENV, missing, 1);
    int ret = me_open(y);
    setenv(SPM_SPMD_SOCKET_ENV, saved, 1);
    assert_int_equal(ret, -ENOENT);
    spm_enclave_destroy(y);
}

/* ---- Fixture ---- */

static int group_setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/spm-me-test-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    char ca[300];
    snprintf(ca, sizeof(ca), "%s/ca", g_dir);
    snprintf(g_plat_a, sizeof(g_plat_a), "%s/platform-a", g_dir);
    snprintf(g_plat_b, sizeof(g_plat_b), "%s/platform-b", g_dir);
    snprintf(g_state, sizeof(g_state), "%s/state", g_dir);
    snprintf(g_spmd_sock, sizeof(g_spmd_sock), "%s/run/spmd.sock", g_dir);
    snprintf(g_relay_sock, sizeof(g_relay_sock), "%s/relay.sock", g_dir);
    snprintf(g_spmd_log, sizeof(g_spmd_log), "%s/spmd.log", g_dir);
    if (spm_sim_ca_init(ca, "ME test CA") < 0 || spm_sim_platform_init(g_plat_a, ca) < 0 ||
        spm_sim_platform_init(g_plat_b, ca) < 0)
        return -1;
    struct sockaddr_un addr = unix_address(g_relay_sock);
    g_relay_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g_relay_fd < 0 || bind(g_relay_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(g_relay_fd, 16) < 0)
        return -1;
    if (pthread_create(&g_relay_thread, NULL, relay_main, NULL) != 0)
        return -1;
    setenv(SPM_SPMD_SOCKET_ENV, g_relay_sock, 1);
    if (spmd_start_with(g_me, NULL) != 0) {
        fprintf(stderr, "spmd did not start; see %s\n", g_spmd_log);
        return -1;
    }
    return 0;
}

static int remove_tree(const char *dir)
{
    char command[400];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    return system(command);
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_spmd.pid > 0) {
        int status = spmd_stop(SIGTERM);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "spmd exited with status %#x\n", status);
        struct stat st;
        if (lstat(g_spmd_sock, &st) == 0)
            fprintf(stderr, "spmd left its socket %s behind\n", g_spmd_sock);
    }
    g_relay_stop = 1;
    pthread_join(g_relay_thread, NULL);
    close(g_relay_fd);
    if (!getenv("SPM_KEEP_TEST_DIR") && remove_tree(g_dir) != 0)
        fprintf(stderr, "cannot remove %s\n", g_dir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 13) {
        fprintf(stderr,
                "usage: %s spmd y z old debug other me fake-me-other fake-me-debug prod "
                "fake-me-old-svn fake-me-other-product\n",
                argv[0]);
        return 2;
    }
    g_spmd_exe = argv[1];
    g_y = argv[2];
    g_z = argv[3];
    g_old = argv[4];
    g_debug = argv[5];
    g_other = argv[6];
    g_me = argv[7];
    g_fake_other = argv[8];
    g_fake_debug = argv[9];
    g_prod = argv[10];
    g_fake_old_svn = argv[11];
    g_fake_other_product = argv[12];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escrow_then_release_to_same_identity),
        cmocka_unit_test(test_timings),
        cmocka_unit_test(test_release_refused_to_other_identities),
        cmocka_unit_test(test_release_refused_to_other_product),
        cmocka_unit_test(test_commit_once),
        cmocka_unit_test(test_generations),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_spmd_killed_between_escrow_and_release),
        cmocka_unit_test(test_rollback_of_state_refused),
        cmocka_unit_test(test_counter_failure_stops_me_and_restart_recovers),
        cmocka_unit_test(test_second_spmd_on_copied_state_refused),
        cmocka_unit_test(test_report_from_another_platform_refused),
        cmocka_unit_test(test_tampered_hello_refused),
        cmocka_unit_test(test_tampered_sealed_messages_refused),
        cmocka_unit_test(test_forged_plaintext_verdicts_refused),
        cmocka_unit_test(test_replayed_sealed_reply_refused),
        cmocka_unit_test(test_fake_me_refused),
        cmocka_unit_test(test_allow_debug_policy),
        cmocka_unit_test(test_platform_counters_through_the_cpu),
        cmocka_unit_test(test_no_spmd_fails_cleanly),
        cmocka_unit_test(test_keys_never_in_plaintext_outside_enclaves),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
