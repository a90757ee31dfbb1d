/* The enclave process of the checkpoint benchmark: loads the benchmark
 * enclave, has it fill --state bytes of its heap, announces itself in
 * DIR/ready ("pid=P state=BYTES rss=BYTES anon=BYTES tcs=N elrange=BYTES")
 * and waits
 * (hold.h). SIGUSR1 asks the enclave whether every byte of its state is
 * still there; DIR/check gets "ok bytes=N" or "error ...". Nothing in it is
 * about checkpoints: like any SPM application, it is checkpointed without
 * code of its own.
 * usage: bench_host --enclave IMG [--platform DIR] --state SIZE --dir DIR */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_abi.h"
#include "hold.h"
#include "spm/urts.h"

static struct spm_enclave *g_enclave;

static void check(char *line, unsigned size)
{
    struct bench_check_out out = {0, 0};
    size_t n = 0;
    int ret = spm_enclave_ecall(g_enclave, BENCH_ECALL_CHECK, NULL, 0, &out, sizeof(out), &n, 0);
    if (ret == 0 && n == sizeof(out))
        snprintf(line, size, "ok bytes=%llu", (unsigned long long)out.ok_bytes);
    else
        snprintf(line, size, "error check: %s (ok_bytes=%llu of %llu)", strerror(-ret),
                 (unsigned long long)out.ok_bytes, (unsigned long long)out.size);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_host --enclave IMG [--platform DIR] --state SIZE --dir DIR\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"enclave", required_argument, NULL, 'e'}, {"platform", required_argument, NULL, 'p'},
        {"state", required_argument, NULL, 's'},   {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *enclave = NULL, *platform = NULL, *dir = NULL;
    uint64_t state = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'e':
            enclave = optarg;
            break;
        case 'p':
            platform = optarg;
            break;
        case 's':
            state = hold_parse_size(optarg);
            break;
        case 'd':
            dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!enclave || !dir || state == 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    hold_block_signals();
    struct spm_enclave_options o = {.platform_dir = platform};
    int ret = spm_enclave_load(enclave, &o, &g_enclave);
    if (ret < 0) {
        fprintf(stderr, "bench_host: cannot load %s: %s\n", enclave, strerror(-ret));
        return 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct bench_fill_in in = {state, ((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32)) | 1};
    struct bench_fill_out out;
    size_t n = 0;
    ret = spm_enclave_ecall(g_enclave, BENCH_ECALL_FILL, &in, sizeof(in), &out, sizeof(out), &n, 0);
    if (ret < 0 || n != sizeof(out)) {
        fprintf(stderr,
                "bench_host: the enclave could not hold %llu bytes: %s (sign it with a heap of "
                "at least the state plus %llu bytes)\n",
                (unsigned long long)state, strerror(ret < 0 ? -ret : EPROTO),
                (unsigned long long)BENCH_HEAP_MARGIN);
        spm_enclave_destroy(g_enclave);
        return 1;
    }
    char line[256];
    snprintf(line, sizeof(line), "pid=%d state=%llu rss=%llu anon=%llu tcs=%u elrange=%llu",
             (int)getpid(), (unsigned long long)out.size, (unsigned long long)hold_rss_bytes(),
             (unsigned long long)hold_anon_bytes(), spm_enclave_tcs_count(g_enclave),
             (unsigned long long)spm_enclave_size(g_enclave));
    if (hold_write(dir, "ready", line) < 0) {
        fprintf(stderr, "bench_host: cannot write %s/ready\n", dir);
        spm_enclave_destroy(g_enclave);
        return 1;
    }
    int status = hold_wait(dir, check);
    spm_enclave_destroy(g_enclave);
    return status;
}
