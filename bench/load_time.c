/* Enclave load time: spm_enclave_load of one signed image, again and
 * again, in one process. A load reads the image, re-derives its layout,
 * adds every page of ELRANGE's committed ranges to a fresh simulated
 * enclave (measuring code and data, recording heap and stack pages),
 * checks the SIGSTRUCT's RSA-3072 signature and MRENCLAVE (EINIT), and
 * enters the runtime once. bench/parts/4-load.sh signs the benchmark
 * enclave with growing heaps and ELRANGEs and runs this on each.
 * Prints one "load_ms,destroy_ms" row per load; the first load (which
 * also opens the platform's files and starts libspm's control thread for
 * the process) is a warm-up and printed as "warmup,..." rows.
 * usage: load_time ENCLAVE.signed PLATFORM_DIR RUNS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spm/urts.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long runs = argc == 4 ? strtol(argv[3], &end, 10) : 0;
    if (argc != 4 || *end || runs < 1 || runs > 10000) {
        fprintf(stderr, "usage: %s ENCLAVE.signed PLATFORM_DIR RUNS\n", argv[0]);
        return 2;
    }
    struct spm_enclave_options o = {.platform_dir = argv[2]};
    for (long i = 0; i <= runs; i++) {
        struct spm_enclave *e;
        double t0 = now_ms();
        int ret = spm_enclave_load(argv[1], &o, &e);
        double t1 = now_ms();
        if (ret < 0) {
            fprintf(stderr, "load_time: cannot load %s: %s\n", argv[1], strerror(-ret));
            return 1;
        }
        if (i == 0)
            printf("# elrange=%llu tcs=%u\n", (unsigned long long)spm_enclave_size(e),
                   spm_enclave_tcs_count(e));
        spm_enclave_destroy(e);
        double t2 = now_ms();
        printf("%s,%.4f,%.4f\n", i == 0 ? "warmup" : "run", t1 - t0, t2 - t1);
    }
    return 0;
}
