/* A minimal SPM process for the plugin tests: loads the basic test enclave,
 * writes its pid to argv[2] once the enclave runs, then makes an ecall
 * every 20 ms and rewrites argv[3] with how many succeeded, so the test can
 * see that the enclave keeps working after a refused dump.
 * argv: enclave.signed pid-file count-file */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basic_abi.h"
#include "spm/urts.h"

static int write_text(const char *path, unsigned long long value)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%llu\n", value);
    if (fclose(f) != 0)
        return -EIO;
    return rename(tmp, path) == 0 ? 0 : -errno;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s enclave.signed pid-file count-file\n", argv[0]);
        return 2;
    }
    struct spm_enclave *e = NULL;
    int ret = spm_enclave_load(argv[1], NULL, &e);
    if (ret < 0) {
        fprintf(stderr, "spm_sleeper: cannot load %s: %s\n", argv[1], strerror(-ret));
        return 1;
    }
    unsigned long long count = 0;
    if (write_text(argv[3], 0) < 0 || write_text(argv[2], (unsigned long long)getpid()) < 0) {
        fprintf(stderr, "spm_sleeper: cannot write %s / %s\n", argv[2], argv[3]);
        return 1;
    }
    for (;;) {
        char out[8];
        size_t n;
        ret = spm_enclave_ecall(e, BASIC_ECALL_ECHO, "ping", 4, out, sizeof(out), &n, 0);
        if (ret < 0 || n != 4 || memcmp(out, "ping", 4) != 0) {
            fprintf(stderr, "spm_sleeper: ecall failed: %s\n", strerror(ret < 0 ? -ret : EPROTO));
            return 1;
        }
        if (write_text(argv[3], ++count) < 0)
            return 1;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}
