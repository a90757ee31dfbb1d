/* Enclave load time: spm_enclave_load of signed images, again and again,
 * in one process. A load reads the image, re-derives its layout, adds
 * every page of ELRANGE's committed ranges to a fresh simulated enclave
 * (measuring code and data, recording heap and stack pages), checks the
 * SIGSTRUCT's RSA-3072 signature and MRENCLAVE (EINIT), and enters the
 * runtime once. bench/parts/4-load.sh signs the benchmark enclave with
 * growing heaps and ELRANGEs and gives them all to one run of this
 * program, which loads them in turn, so that every run holds one load of
 * each image, measured under the same conditions, and ratios between them
 * are ratios within a run.
 * Prints "# image=I elrange=BYTES tcs=N" per image, then one row
 * "RUN,I,load_ms,destroy_ms" per load; run 0 is the warm-up (it also opens
 * the platform's files and starts libspm's control thread).
 * usage: load_time PLATFORM_DIR RUNS ENCLAVE.signed... */
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
    long runs = argc >= 4 ? strtol(argv[2], &end, 10) : 0;
    if (argc < 4 || *end || runs < 1 || runs > 10000) {
        fprintf(stderr, "usage: %s PLATFORM_DIR RUNS ENCLAVE.signed...\n", argv[0]);
        return 2;
    }
    struct spm_enclave_options o = {.platform_dir = argv[1]};
    for (long run = 0; run <= runs; run++) {
        for (int i = 3; i < argc; i++) {
            struct spm_enclave *e;
            double t0 = now_ms();
            int ret = spm_enclave_load(argv[i], &o, &e);
            double t1 = now_ms();
            if (ret < 0) {
                fprintf(stderr, "load_time: cannot load %s: %s\n", argv[i], strerror(-ret));
                return 1;
            }
            if (run == 0)
                printf("# image=%d elrange=%llu tcs=%u\n", i - 3,
                       (unsigned long long)spm_enclave_size(e), spm_enclave_tcs_count(e));
            spm_enclave_destroy(e);
            double t2 = now_ms();
            printf("%ld,%d,%.4f,%.4f\n", run, i - 3, t1 - t0, t2 - t1);
        }
    }
    return 0;
}
