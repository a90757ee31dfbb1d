/* Host of the checkpoint test enclave: a long-running process meant to be
 * started detached (setsid, stdio to files) and then checkpointed and
 * restored by CRIU while it runs. It takes commands through files, which
 * CRIU carries over without special cases: the test writes one line to
 * DIR/cmd (atomically, by rename), this process runs it and answers in
 * DIR/reply (also by rename). Commands:
 *   fill SEEDHEX HEAPSIZE  expand the secret in the enclave (cr_abi.h)
 *   check                  the enclave re-expands and compares heap+globals
 *   count                  an in-enclave counter, incremented
 *   park                   a thread enters the enclave, fills its stack
 *                          secret and parks in an ocall until `release`
 *   release                lets it return; answers what it found
 *   info                   pid, ELRANGE base and size
 *   quit                   exits 0
 * usage: cr_host --enclave IMG --platform DIR --dir DIR */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cr_abi.h"
#include "spm/urts.h"

static struct spm_enclave *g_enclave;
static const char *g_dir;

static pthread_mutex_t g_park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_park_cond = PTHREAD_COND_INITIALIZER;
static bool g_parked, g_released, g_park_done;
static int g_park_status;
static struct cr_park_out g_park_out;
static pthread_t g_park_thread;
static bool g_park_running;

/* CR_OCALL_PARK: blocks this enclave thread on the host until `release`. */
static int host_park(void *ctx, const uint8_t *in, size_t in_size, uint8_t *out,
                     size_t out_capacity, size_t *out_size)
{
    (void)ctx, (void)in, (void)in_size, (void)out, (void)out_capacity;
    *out_size = 0;
    pthread_mutex_lock(&g_park_lock);
    g_parked = true;
    pthread_cond_broadcast(&g_park_cond);
    while (!g_released)
        pthread_cond_wait(&g_park_cond, &g_park_lock);
    g_parked = false;
    pthread_mutex_unlock(&g_park_lock);
    return 0;
}

static const spm_ocall_fn g_ocalls[] = {[CR_OCALL_PARK] = host_park};

static void *park_main(void *arg)
{
    (void)arg;
    struct cr_park_out out;
    memset(&out, 0, sizeof(out));
    size_t n = 0;
    int ret = spm_enclave_ecall(g_enclave, CR_ECALL_PARK, NULL, 0, &out, sizeof(out), &n, 0);
    pthread_mutex_lock(&g_park_lock);
    g_park_status = ret;
    if (n == sizeof(out))
        g_park_out = out;
    g_park_done = true;
    pthread_cond_broadcast(&g_park_cond);
    pthread_mutex_unlock(&g_park_lock);
    return NULL;
}

static void deadline_in(struct timespec *ts, int seconds)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += seconds;
}

static int parse_seed(const char *hex, uint8_t seed[CR_SEED_SIZE])
{
    if (strlen(hex) != 2 * CR_SEED_SIZE)
        return -EINVAL;
    for (unsigned i = 0; i < CR_SEED_SIZE; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        seed[i] = (uint8_t)v;
    }
    return 0;
}

/* Runs one command line; writes the answer line into reply. */
static bool run(char *line, char *reply, size_t reply_size)
{
    char *save = NULL, *word = strtok_r(line, " \n", &save);
    if (!word) {
        snprintf(reply, reply_size, "error empty command");
        return true;
    }
    if (strcmp(word, "fill") == 0) {
        char *hex = strtok_r(NULL, " \n", &save), *size = strtok_r(NULL, " \n", &save);
        struct cr_fill_in in;
        if (!hex || !size || parse_seed(hex, in.seed) < 0) {
            snprintf(reply, reply_size, "error usage: fill SEEDHEX(64) HEAPSIZE");
            return true;
        }
        in.heap_size = strtoull(size, NULL, 0);
        struct cr_fill_out out;
        size_t n = 0;
        int ret =
            spm_enclave_ecall(g_enclave, CR_ECALL_FILL, &in, sizeof(in), &out, sizeof(out), &n, 0);
        if (ret == 0 && n == sizeof(out))
            snprintf(reply, reply_size, "ok heap=0x%" PRIx64 " globals=0x%" PRIx64,
                     out.heap_address, out.globals_address);
        else
            snprintf(reply, reply_size, "error fill: %s", strerror(-ret));
    } else if (strcmp(word, "check") == 0) {
        struct cr_check_out out;
        memset(&out, 0, sizeof(out));
        size_t n = 0;
        int ret = spm_enclave_ecall(g_enclave, CR_ECALL_CHECK, NULL, 0, &out, sizeof(out), &n, 0);
        if (ret == 0)
            snprintf(reply, reply_size,
                     "ok heap_ok=%" PRIu64 " globals_ok=%" PRIu64 " heap=0x%" PRIx64,
                     out.heap_ok_bytes, out.globals_ok_bytes, out.heap_address);
        else
            snprintf(reply, reply_size,
                     "error check: %s heap_ok=%" PRIu64 " globals_ok=%" PRIu64
                     " first_mismatch=%" PRIu64,
                     strerror(-ret), out.heap_ok_bytes, out.globals_ok_bytes, out.mismatch_offset);
    } else if (strcmp(word, "count") == 0) {
        uint64_t value = 0;
        size_t n = 0;
        int ret =
            spm_enclave_ecall(g_enclave, CR_ECALL_COUNT, NULL, 0, &value, sizeof(value), &n, 0);
        if (ret == 0)
            snprintf(reply, reply_size, "ok count=%" PRIu64, value);
        else
            snprintf(reply, reply_size, "error count: %s", strerror(-ret));
    } else if (strcmp(word, "park") == 0) {
        if (g_park_running) {
            snprintf(reply, reply_size, "error a thread is already parked");
            return true;
        }
        g_released = g_park_done = false;
        if (pthread_create(&g_park_thread, NULL, park_main, NULL) != 0) {
            snprintf(reply, reply_size, "error pthread_create failed");
            return true;
        }
        g_park_running = true;
        struct timespec deadline;
        deadline_in(&deadline, 10);
        pthread_mutex_lock(&g_park_lock);
        int wait = 0;
        while (!g_parked && !g_park_done && wait == 0)
            wait = pthread_cond_timedwait(&g_park_cond, &g_park_lock, &deadline);
        bool parked = g_parked;
        int status = g_park_status;
        pthread_mutex_unlock(&g_park_lock);
        if (parked)
            snprintf(reply, reply_size, "ok parked");
        else
            snprintf(reply, reply_size, "error the thread did not park (ecall returned %d)",
                     status);
    } else if (strcmp(word, "release") == 0) {
        if (!g_park_running) {
            snprintf(reply, reply_size, "error no thread is parked");
            return true;
        }
        struct timespec deadline;
        deadline_in(&deadline, 30);
        pthread_mutex_lock(&g_park_lock);
        g_released = true;
        pthread_cond_broadcast(&g_park_cond);
        int wait = 0;
        while (!g_park_done && wait == 0)
            wait = pthread_cond_timedwait(&g_park_cond, &g_park_lock, &deadline);
        bool done = g_park_done;
        int status = g_park_status;
        struct cr_park_out out = g_park_out;
        pthread_mutex_unlock(&g_park_lock);
        if (!done) {
            snprintf(reply, reply_size, "error the parked thread did not return within 30 s");
            return true;
        }
        pthread_join(g_park_thread, NULL);
        g_park_running = false;
        snprintf(reply, reply_size,
                 "%s status=%d stack_ok=%" PRIu64 " stack=0x%" PRIx64 " ocall_status=%" PRId64,
                 status == 0 && out.stack_ok_bytes == CR_STACK_SECRET_SIZE ? "ok" : "error", status,
                 out.stack_ok_bytes, out.stack_address, out.ocall_status);
    } else if (strcmp(word, "info") == 0) {
        snprintf(reply, reply_size, "ok pid=%d base=0x%" PRIx64 " size=0x%" PRIx64 " tcs=%u",
                 (int)getpid(), spm_enclave_base(g_enclave), spm_enclave_size(g_enclave),
                 spm_enclave_tcs_count(g_enclave));
    } else if (strcmp(word, "quit") == 0) {
        snprintf(reply, reply_size, "ok bye");
        return false;
    } else {
        snprintf(reply, reply_size, "error unknown command '%s'", word);
    }
    return true;
}

/* Writes `text` + newline to DIR/name through a temporary file and rename,
 * so the reader never sees half a line. */
static int publish(const char *name, const char *text)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", g_dir, name);
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%s\n", text);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return -errno;
    return 0;
}

int main(int argc, char **argv)
{
    const char *image = NULL, *platform = NULL;
    static const struct option options[] = {{"enclave", required_argument, NULL, 'e'},
                                            {"platform", required_argument, NULL, 'p'},
                                            {"dir", required_argument, NULL, 'd'},
                                            {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == 'e')
            image = optarg;
        else if (c == 'p')
            platform = optarg;
        else if (c == 'd')
            g_dir = optarg;
        else
            return 2;
    }
    if (!image || !g_dir) {
        fprintf(stderr, "usage: cr_host --enclave IMG [--platform DIR] --dir DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct spm_enclave_options o = {.platform_dir = platform, .ocalls = g_ocalls, .ocall_count = 1};
    int ret = spm_enclave_load(image, &o, &g_enclave);
    if (ret < 0) {
        fprintf(stderr, "cr_host: cannot load %s: %s\n", image, strerror(-ret));
        return 1;
    }
    char line[512], reply[512];
    snprintf(line, sizeof(line), "pid=%d base=0x%" PRIx64 " size=0x%" PRIx64, (int)getpid(),
             spm_enclave_base(g_enclave), spm_enclave_size(g_enclave));
    if (publish("ready", line) < 0) {
        fprintf(stderr, "cr_host: cannot write %s/ready\n", g_dir);
        return 1;
    }
    fprintf(stderr, "cr_host: ready %s\n", line);

    char cmd_path[4096];
    snprintf(cmd_path, sizeof(cmd_path), "%s/cmd", g_dir);
    bool running = true;
    while (running) {
        FILE *f = fopen(cmd_path, "r");
        if (!f) {
            struct timespec pause = {0, 20 * 1000 * 1000};
            nanosleep(&pause, NULL);
            continue;
        }
        if (!fgets(line, sizeof(line), f))
            line[0] = '\0';
        fclose(f);
        unlink(cmd_path);
        line[strcspn(line, "\n")] = '\0';
        fprintf(stderr, "cr_host: command: %s\n", line);
        running = run(line, reply, sizeof(reply));
        fprintf(stderr, "cr_host: reply: %s\n", reply);
        if (publish("reply", reply) < 0)
            fprintf(stderr, "cr_host: cannot write the reply\n");
    }
    if (g_park_running) {
        pthread_mutex_lock(&g_park_lock);
        g_released = true;
        pthread_cond_broadcast(&g_park_cond);
        pthread_mutex_unlock(&g_park_lock);
        pthread_join(g_park_thread, NULL);
    }
    spm_enclave_destroy(g_enclave);
    return 0;
}
