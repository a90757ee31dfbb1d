/* Ecall round-trip cost on the current backend: empty and 4 KiB echo ecalls
 * on one thread, and aggregate throughput with one thread per TCS.
 * Usage: ecall_latency ENCLAVE.signed PLATFORM_DIR  (the basic test enclave) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "spm/urts.h"

#define ECHO 0 /* BASIC_ECALL_ECHO */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct spm_enclave *g_enclave;
static const long g_per_thread = 500000;

static void *worker(void *arg)
{
    (void)arg;
    char out[16];
    size_t n;
    for (long i = 0; i < g_per_thread; i++)
        if (spm_enclave_ecall(g_enclave, ECHO, "x", 1, out, sizeof(out), &n, 0) != 0)
            abort();
    return NULL;
}

static double per_call_ns(size_t size, long count)
{
    static char in[4096], out[4096];
    size_t n;
    double start = now();
    for (long i = 0; i < count; i++)
        if (spm_enclave_ecall(g_enclave, ECHO, in, size, out, sizeof(out), &n, 0) != 0)
            abort();
    return (now() - start) / count * 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ENCLAVE.signed PLATFORM_DIR\n", argv[0]);
        return 2;
    }
    struct spm_enclave_options o = {.platform_dir = argv[2]};
    double t0 = now();
    if (spm_enclave_load(argv[1], &o, &g_enclave) != 0)
        return 1;
    printf("load (measure + EINIT + first entry): %.2f ms\n", (now() - t0) * 1e3);
    per_call_ns(0, 10000); /* warm-up */
    printf("empty ecall round trip:  %.0f ns\n", per_call_ns(0, 1000000));
    printf("4 KiB in+out ecall:      %.0f ns\n", per_call_ns(4096, 200000));
    uint32_t threads = spm_enclave_tcs_count(g_enclave);
    pthread_t t[64];
    double start = now();
    for (uint32_t i = 0; i < threads && i < 64; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (uint32_t i = 0; i < threads && i < 64; i++)
        pthread_join(t[i], NULL);
    double elapsed = now() - start;
    printf("%u threads on %u TCS:     %.2f M ecalls/s\n", threads, threads,
           threads * g_per_thread / elapsed / 1e6);
    spm_enclave_destroy(g_enclave);
    return 0;
}
