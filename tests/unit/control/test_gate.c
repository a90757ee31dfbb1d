/* The host side of a checkpoint with the basic test enclave: the ecall gate
 * (closed while an export waits, NOWAIT callers refused, the wait bounded),
 * the refusal paths that must leave the enclave running (threads still
 * inside, every TCS parked in ocalls, the enclave or the ME refusing), and
 * the control socket every enclave process serves. The full round trip
 * (export, import, parked threads returning into the rebuilt enclave) runs
 * when spmd is reachable ($SPM_SPMD_SOCKET) and the enclave implements the
 * checkpoint ecalls; otherwise that test is reported as skipped.
 * argv: basic_enclave_y.signed */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic_abi.h"
#include "host/control/control.h"
#include "host/platform/sim/sim.h"
#include "host/urts/checkpoint.h"
#include "spm/urts.h"

static const char *g_image;
static char g_dir[128], g_platform[200], g_ca[200], g_run[200], g_socket[300];

/* Threads parked in BASIC_OCALL_PARK wait here until released. */
static pthread_mutex_t g_park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_park_cond = PTHREAD_COND_INITIALIZER;
static int g_parked, g_park_released;

static int host_echo(void *ctx, const uint8_t *in, size_t in_size, uint8_t *out,
                     size_t out_capacity, size_t *out_size)
{
    (void)ctx;
    size_t n = in_size < out_capacity ? in_size : out_capacity;
    memcpy(out, in, n);
    *out_size = n;
    return 0;
}

static int host_park(void *ctx, const uint8_t *in, size_t in_size, uint8_t *out,
                     size_t out_capacity, size_t *out_size)
{
    (void)ctx, (void)in, (void)in_size, (void)out, (void)out_capacity;
    *out_size = 0;
    pthread_mutex_lock(&g_park_lock);
    g_parked++;
    pthread_cond_broadcast(&g_park_cond);
    while (!g_park_released)
        pthread_cond_wait(&g_park_cond, &g_park_lock);
    g_parked--;
    pthread_mutex_unlock(&g_park_lock);
    return 0;
}

static const spm_ocall_fn g_ocalls[] = {
    [BASIC_OCALL_ECHO] = host_echo,
    [BASIC_OCALL_PARK] = host_park,
};

static struct spm_enclave *load_on(const char *platform)
{
    struct spm_enclave_options o = {.platform_dir = platform, .ocalls = g_ocalls, .ocall_count = 2};
    struct spm_enclave *e = NULL;
    assert_int_equal(spm_enclave_load(g_image, &o, &e), 0);
    return e;
}

static struct spm_enclave *load(void)
{
    return load_on(g_platform);
}

static int echo(struct spm_enclave *e, unsigned flags)
{
    char out[8];
    size_t n;
    int ret = spm_enclave_ecall(e, BASIC_ECALL_ECHO, "ping", 4, out, sizeof(out), &n, flags);
    if (ret == 0 && (n != 4 || memcmp(out, "ping", 4) != 0))
        return -EPROTO;
    return ret;
}

static void request(const char *line, char *reply, size_t size)
{
    assert_int_equal(spm_control_request(g_socket, line, reply, size, 30000), 0);
}

/* ---- Helper threads ---- */

struct job {
    struct spm_enclave *e;
    uint32_t ecall;
    uint64_t spins;
    int ret;
    struct spm_ckpt_options options;
    pthread_t thread;
};

static void *ecall_main(void *arg)
{
    struct job *j = arg;
    struct basic_count_result r;
    size_t n;
    j->ret = spm_enclave_ecall(j->e, j->ecall, j->ecall == BASIC_ECALL_COUNT ? &j->spins : NULL,
                               j->ecall == BASIC_ECALL_COUNT ? sizeof(j->spins) : 0, &r, sizeof(r),
                               &n, 0);
    return NULL;
}

static void *export_main(void *arg)
{
    struct job *j = arg;
    struct spm_ckpt_stats stats;
    j->ret = spm_enclave_checkpoint(j->e, &j->options, &stats);
    return NULL;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void park(struct spm_enclave *e, struct job *jobs, int count)
{
    pthread_mutex_lock(&g_park_lock);
    g_park_released = 0;
    pthread_mutex_unlock(&g_park_lock);
    for (int i = 0; i < count; i++) {
        jobs[i] = (struct job){.e = e, .ecall = BASIC_ECALL_PARK};
        assert_int_equal(pthread_create(&jobs[i].thread, NULL, ecall_main, &jobs[i]), 0);
    }
    pthread_mutex_lock(&g_park_lock);
    while (g_parked < count)
        pthread_cond_wait(&g_park_cond, &g_park_lock);
    pthread_mutex_unlock(&g_park_lock);
}

static void unpark(struct job *jobs, int count)
{
    pthread_mutex_lock(&g_park_lock);
    g_park_released = 1;
    pthread_cond_broadcast(&g_park_cond);
    pthread_mutex_unlock(&g_park_lock);
    for (int i = 0; i < count; i++) {
        pthread_join(jobs[i].thread, NULL);
        assert_int_equal(jobs[i].ret, 0);
    }
}

/* ---- Tests ---- */

static void test_control_socket_serves_status(void **state)
{
    (void)state;
    struct spm_enclave *a = load();
    struct stat st;
    assert_int_equal(stat(g_socket, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    char reply[SPM_CONTROL_MAX_LINE], v[32];
    request("status", reply, sizeof(reply));
    assert_int_equal(spm_control_reply_value(reply, "state", v, sizeof(v)), 0);
    assert_string_equal(v, "live");
    unsigned long long n;
    assert_int_equal(spm_control_reply_u64(reply, "enclaves", &n), 0);
    assert_int_equal(n, 1);
    struct spm_enclave *b = load();
    request("status wait_ms=100", reply, sizeof(reply));
    assert_int_equal(spm_control_reply_u64(reply, "enclaves", &n), 0);
    assert_int_equal(n, 2);
    spm_enclave_destroy(b);
    request("status", reply, sizeof(reply));
    assert_int_equal(spm_control_reply_u64(reply, "enclaves", &n), 0);
    assert_int_equal(n, 1);
    /* resume on a live enclave does nothing. */
    request("resume", reply, sizeof(reply));
    assert_int_equal(strncmp(reply, "ok enclaves=0 ", 14), 0);
    /* Garbage is refused with a reason, and the server keeps serving. */
    request("export threads=0", reply, sizeof(reply));
    assert_int_equal(strncmp(reply, "error errno=22 msg=malformed request", 36), 0);
    request("status", reply, sizeof(reply));
    assert_int_equal(strncmp(reply, "ok state=live", 13), 0);
    assert_int_equal(echo(a, 0), 0);
    spm_enclave_destroy(a);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Spins that keep a thread inside the enclave for about `ms`. */
static uint64_t calibrate_spins(struct spm_enclave *e, unsigned ms)
{
    uint64_t spins = 50000000;
    for (;;) {
        struct job j = {.e = e, .ecall = BASIC_ECALL_COUNT, .spins = spins};
        uint64_t start = now_ms();
        ecall_main(&j);
        assert_int_equal(j.ret, 0);
        uint64_t took = now_ms() - start;
        if (took >= 50)
            return spins * ms / took;
        spins *= 4;
    }
}

static void test_export_waits_for_threads_inside_then_gives_up(void **state)
{
    (void)state;
    struct spm_enclave *e = load();
    uint64_t spins = calibrate_spins(e, 2000);
    /* A thread executing enclave code for about two seconds. */
    struct job spinner = {.e = e, .ecall = BASIC_ECALL_COUNT, .spins = spins};
    assert_int_equal(pthread_create(&spinner.thread, NULL, ecall_main, &spinner), 0);
    sleep_ms(200);
    struct job exporter = {.e = e, .options = {.timeout_ms = 500}};
    assert_int_equal(pthread_create(&exporter.thread, NULL, export_main, &exporter), 0);
    sleep_ms(200);
    /* The gate is closed while the export waits: three TCS are free, yet a
     * NOWAIT caller is refused and a waiting one would wait. */
    assert_int_equal(echo(e, SPM_ECALL_NOWAIT), -EBUSY);
    char reply[SPM_CONTROL_MAX_LINE], v[32];
    pthread_join(exporter.thread, NULL);
    assert_int_equal(exporter.ret, -ETIMEDOUT);
    /* Given up: the gate is open again, and status says why. */
    assert_int_equal(echo(e, SPM_ECALL_NOWAIT), 0);
    request("status", reply, sizeof(reply));
    assert_int_equal(spm_control_reply_value(reply, "state", v, sizeof(v)), 0);
    assert_string_equal(v, "live");
    char msg[300];
    assert_int_equal(spm_control_reply_value(reply, "msg", msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "1 thread(s) still inside after 500 ms"));
    /* The same over the socket. */
    request("export timeout_ms=100", reply, sizeof(reply));
    assert_int_equal(strncmp(reply, "error errno=110 msg=", 20), 0);
    assert_non_null(strstr(reply, "still inside"));
    pthread_join(spinner.thread, NULL);
    assert_int_equal(spinner.ret, 0);
    assert_int_equal(echo(e, 0), 0);
    spm_enclave_destroy(e);
}

static void test_export_refused_when_every_tcs_is_parked(void **state)
{
    (void)state;
    struct spm_enclave *e = load();
    uint32_t tcs = spm_enclave_tcs_count(e);
    struct job jobs[16];
    assert_true(tcs <= 16);
    park(e, jobs, (int)tcs);
    struct spm_ckpt_stats stats;
    struct spm_ckpt_options o = {.timeout_ms = 1000};
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), -EBUSY);
    char reply[SPM_CONTROL_MAX_LINE];
    request("status", reply, sizeof(reply));
    assert_non_null(strstr(reply, "all 4 TCS are held by threads parked in ocalls"));
    /* The parked threads return through the reopened gate. */
    unpark(jobs, (int)tcs);
    assert_int_equal(echo(e, 0), 0);
    spm_enclave_destroy(e);
}

/* Whatever refuses the export (the runtime, or the ME being unreachable),
 * the enclave runs on and parked threads return into it. */
static void test_failed_export_leaves_the_enclave_running(void **state)
{
    (void)state;
    const char *saved = getenv("SPM_SPMD_SOCKET");
    char *saved_copy = saved ? strdup(saved) : NULL;
    setenv("SPM_SPMD_SOCKET", "/nonexistent/spmd.sock", 1);
    struct spm_enclave *e = load();
    struct job jobs[1];
    park(e, jobs, 1);
    char reply[SPM_CONTROL_MAX_LINE];
    request("export timeout_ms=2000", reply, sizeof(reply));
    assert_int_equal(strncmp(reply, "error errno=", 12), 0);
    assert_null(strstr(reply, "stays frozen"));
    request("status", reply, sizeof(reply));
    assert_int_equal(strncmp(reply, "ok state=live", 13), 0);
    assert_int_equal(echo(e, 0), 0);
    unpark(jobs, 1);
    assert_int_equal(echo(e, SPM_ECALL_NOWAIT), 0);
    spm_enclave_destroy(e);
    if (saved_copy)
        setenv("SPM_SPMD_SOCKET", saved_copy, 1);
    else
        unsetenv("SPM_SPMD_SOCKET");
    free(saved_copy);
}

/* Export and import in one process, with a thread parked in an ocall
 * across both: needs spmd ($SPM_SPMD_SOCKET) on the platform
 * $SPM_PLATFORM (local attestation with its ME). */
static void test_round_trip_in_process(void **state)
{
    (void)state;
    const char *spmd = getenv("SPM_SPMD_SOCKET");
    const char *platform = getenv("SPM_PLATFORM");
    struct stat st;
    if (!spmd || stat(spmd, &st) < 0 || !platform) {
        skip();
        return;
    }
    struct spm_enclave *e = load_on(platform);
    uint64_t base = spm_enclave_base(e);
    struct job jobs[1];
    park(e, jobs, 1);
    struct spm_ckpt_stats out, in;
    struct spm_ckpt_options o = {.timeout_ms = 2000, .threads = 2};
    int ret = spm_enclave_checkpoint(e, &o, &out);
    if (ret == -ENOSYS) {
        unpark(jobs, 1);
        spm_enclave_destroy(e);
        skip();
        return;
    }
    assert_int_equal(ret, 0);
    assert_true(out.bytes > 0 && out.chunks > 0 && out.threads >= 1);
    assert_int_equal(echo(e, SPM_ECALL_NOWAIT), -EBUSY);
    char reply[SPM_CONTROL_MAX_LINE];
    request("status", reply, sizeof(reply));
    assert_int_equal(strncmp(reply, "ok state=exported", 17), 0);
    bool permanent = true;
    assert_int_equal(spm_enclave_restore(e, &o, &in, &permanent), 0);
    assert_false(permanent);
    assert_int_equal(in.bytes, out.bytes);
    assert_int_equal(spm_enclave_base(e), base);
    assert_int_equal(echo(e, 0), 0);
    unpark(jobs, 1); /* the parked thread returns into the rebuilt enclave */
    /* The checkpoint is consumed: a second restore has nothing to do. */
    assert_int_equal(spm_enclave_restore(e, &o, &in, &permanent), 0);
    assert_int_equal(in.bytes, 0);
    spm_enclave_destroy(e);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/spm-gate-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_ca, sizeof(g_ca), "%s/ca", g_dir);
    snprintf(g_platform, sizeof(g_platform), "%s/platform", g_dir);
    snprintf(g_run, sizeof(g_run), "%s/run", g_dir);
    snprintf(g_socket, sizeof(g_socket), "%s/%d.ctl", g_run, (int)getpid());
    setenv(SPM_CONTROL_RUN_DIR_ENV, g_run, 1);
    if (spm_sim_ca_init(g_ca, "gate test CA") || spm_sim_platform_init(g_platform, g_ca))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s basic_enclave_y.signed\n", argv[0]);
        return 2;
    }
    g_image = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_socket_serves_status),
        cmocka_unit_test(test_export_waits_for_threads_inside_then_gives_up),
        cmocka_unit_test(test_export_refused_when_every_tcs_is_parked),
        cmocka_unit_test(test_failed_export_leaves_the_enclave_running),
        cmocka_unit_test(test_round_trip_in_process),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
