/* The control process of the checkpoint benchmark: an ordinary program
 * with no enclave that grows its anonymous memory to --anon bytes (the
 * enclave process's RssAnon + RssShmem, what CRIU will dump of it) with the
 * same kind of pseudo-random data, announces itself in DIR/ready ("pid=P
 * state=BYTES rss=BYTES anon=BYTES") and waits (hold.h). Plain CRIU dumps
 * and restores it; the difference to the enclave process is what SPM costs.
 * usage: bench_plain --anon SIZE --dir DIR */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_abi.h"
#include "hold.h"

static uint64_t *g_memory;
static uint64_t g_size, g_seed;

static void check(char *line, unsigned size)
{
    uint64_t x = g_seed, words = g_size / 8, i = 0;
    while (i < words && g_memory[i] == bench_stream_next(&x))
        i++;
    if (i == words)
        snprintf(line, size, "ok bytes=%llu", (unsigned long long)g_size);
    else
        snprintf(line, size, "error check: first mismatch at byte %llu of %llu",
                 (unsigned long long)(i * 8), (unsigned long long)g_size);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_plain --anon SIZE --dir DIR\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"anon", required_argument, NULL, 'a'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    uint64_t anon = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            anon = hold_parse_size(optarg);
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
    if (!dir || anon == 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    hold_block_signals();
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), have = hold_anon_bytes();
    g_size = anon > have + page ? (anon - have) / page * page : page;
    g_memory = mmap(NULL, g_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g_memory == MAP_FAILED) {
        fprintf(stderr, "bench_plain: cannot map %llu bytes: %s\n", (unsigned long long)g_size,
                strerror(errno));
        return 1;
    }
    g_seed = ((uint64_t)getpid() << 32) | 0x9e3779b9u;
    uint64_t x = g_seed;
    for (uint64_t i = 0; i < g_size / 8; i++)
        g_memory[i] = bench_stream_next(&x);
    char line[256];
    snprintf(line, sizeof(line), "pid=%d state=%llu rss=%llu anon=%llu", (int)getpid(),
             (unsigned long long)g_size, (unsigned long long)hold_rss_bytes(),
             (unsigned long long)hold_anon_bytes());
    if (hold_write(dir, "ready", line) < 0) {
        fprintf(stderr, "bench_plain: cannot write %s/ready\n", dir);
        return 1;
    }
    return hold_wait(dir, check);
}
