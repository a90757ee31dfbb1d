/* Speed of the trusted crypto adapter's chunk AES-GCM (gcm_chunk.c: AES-NI
 * and PCLMULQDQ, the code every enclave carries) on 1..N threads, in the
 * shapes the checkpoint engine uses, next to memcpy over the same buffers
 * in the same run. The engine itself runs inside the enclave
 * (bench/parts/1-crypto.sh times it through a real export); this program
 * compiles the same adapter for the host so that each piece of the cost
 * can be seen on its own:
 *   gcm_cache     CTR then GHASH (two passes) in place over a 16 KiB buffer
 *                 that stays in cache: the cipher alone, what `openssl speed
 *                 -bytes 16384` measures
 *   encrypt_cache the same in one pass (tc_gcm_chunk_encrypt, stitched),
 *                 from one 16 KiB buffer to another
 *   ctr_cache     the CTR pass alone
 *   ghash_cache   the GHASH pass alone
 *   ckpt_encrypt  the export's shape: 1 MiB chunks encrypted in one pass
 *                 straight from the state to the image
 *   ckpt_encrypt_staged  the export's earlier shape: each piece copied onto
 *                 a 16 KiB stage, CTR, GHASH, copied out to the image
 *   ckpt_decrypt  the import's shape: GHASH while copying in, then CTR in
 *                 place
 *   memcpy        the same bytes copied from state to image, 1 MiB at a time
 *   ckpt_encrypt_fresh  ckpt_encrypt into an image buffer mapped afresh for
 *                 each pass and unmapped after it (faulted in page by page
 *                 as it is written), as an export's buffer is
 * Each thread works on its own share of a --size buffer (default 256 MiB),
 * --passes times; the figure is all bytes over the wall time from the first
 * thread's start to the last thread's end, in GB/s (10^9 bytes per second).
 * usage: trusted_gcm_speed [--threads N] [--size SIZE] [--passes P] [--csv] */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "crypto/crypto.h"

#define CHUNK       (1u << 20)
#define STAGE_SIZE  (16u << 10)
#define MAX_THREADS 256u

enum test {
    GCM_CACHE,
    ENCRYPT_CACHE,
    CTR_CACHE,
    GHASH_CACHE,
    CKPT_ENCRYPT,
    CKPT_ENCRYPT_STAGED,
    CKPT_DECRYPT,
    MEMCPY,
    CKPT_ENCRYPT_FRESH,
    TEST_COUNT
};
static const char *const g_names[TEST_COUNT] = {
    "gcm_cache",           "encrypt_cache", "ctr_cache", "ghash_cache",        "ckpt_encrypt",
    "ckpt_encrypt_staged", "ckpt_decrypt",  "memcpy",    "ckpt_encrypt_fresh",
};

static struct {
    unsigned threads;
    size_t share;    /* bytes per thread */
    unsigned passes; /* over each share */
    uint8_t *state, *image;
    struct tc_gcm_key key;
    pthread_barrier_t start;
    enum test test;
} g;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nonce_for(uint64_t index, uint8_t nonce[12])
{
    memset(nonce, 0, 12);
    memcpy(nonce + 4, &index, sizeof(index));
}

static void run_cache(unsigned id)
{
    _Alignas(64) static __thread uint8_t buffer[STAGE_SIZE], output[STAGE_SIZE];
    uint8_t nonce[12], tag[16];
    memset(buffer, (int)id, sizeof(buffer));
    for (size_t done = 0, i = 0; done < g.share * g.passes; done += STAGE_SIZE, i++) {
        struct tc_gcm_chunk chunk;
        nonce_for(i, nonce);
        tc_gcm_chunk_start(&g.key, &chunk, nonce, NULL, 0);
        if (g.test == ENCRYPT_CACHE)
            tc_gcm_chunk_encrypt(&g.key, &chunk, buffer, output, STAGE_SIZE);
        if (g.test == GCM_CACHE || g.test == CTR_CACHE)
            tc_gcm_chunk_ctr(&g.key, &chunk, buffer, STAGE_SIZE);
        if (g.test == GCM_CACHE || g.test == GHASH_CACHE)
            tc_gcm_chunk_ghash(&g.key, &chunk, buffer, STAGE_SIZE);
        tc_gcm_chunk_tag(&g.key, &chunk, tag);
    }
    __asm__ volatile("" : : "r"(buffer), "r"(output), "r"(tag) : "memory");
}

static void encrypt_chunk(const uint8_t *in, uint8_t *out, uint64_t index)
{
    uint8_t nonce[12], tag[16];
    struct tc_gcm_chunk chunk;
    nonce_for(index, nonce);
    tc_gcm_chunk_start(&g.key, &chunk, nonce, NULL, 0);
    tc_gcm_chunk_encrypt(&g.key, &chunk, in, out, CHUNK);
    tc_gcm_chunk_tag(&g.key, &chunk, tag);
    __asm__ volatile("" : : "r"(tag) : "memory");
}

static void encrypt_chunk_staged(const uint8_t *in, uint8_t *out, uint64_t index)
{
    _Alignas(64) uint8_t stage[STAGE_SIZE];
    uint8_t nonce[12], tag[16];
    struct tc_gcm_chunk chunk;
    nonce_for(index, nonce);
    tc_gcm_chunk_start(&g.key, &chunk, nonce, NULL, 0);
    for (size_t done = 0; done < CHUNK; done += STAGE_SIZE) {
        memcpy(stage, in + done, STAGE_SIZE);
        tc_gcm_chunk_ctr(&g.key, &chunk, stage, STAGE_SIZE);
        tc_gcm_chunk_ghash(&g.key, &chunk, stage, STAGE_SIZE);
        memcpy(out + done, stage, STAGE_SIZE);
    }
    tc_gcm_chunk_tag(&g.key, &chunk, tag);
    __asm__ volatile("" : : "r"(tag) : "memory");
}

static void decrypt_chunk(const uint8_t *in, uint8_t *out, uint64_t index)
{
    uint8_t nonce[12], tag[16];
    struct tc_gcm_chunk chunk;
    nonce_for(index, nonce);
    tc_gcm_chunk_start(&g.key, &chunk, nonce, NULL, 0);
    tc_gcm_chunk_ghash_copy(&g.key, &chunk, in, out, CHUNK);
    tc_gcm_chunk_tag(&g.key, &chunk, tag);
    tc_gcm_chunk_start(&g.key, &chunk, nonce, NULL, 0);
    tc_gcm_chunk_ctr(&g.key, &chunk, out, CHUNK);
    __asm__ volatile("" : : "r"(tag) : "memory");
}

/* Start and end of each thread's work: the main thread may not even run
 * while the workers do (more threads than cores), so it cannot time them. */
static double g_started[MAX_THREADS], g_ended[MAX_THREADS];

static void work(unsigned id)
{
    uint8_t *state = g.state + (size_t)id * g.share, *image = g.image + (size_t)id * g.share;
    if (g.test <= GHASH_CACHE) { /* the in-cache tests come first */
        run_cache(id);
        return;
    }
    bool fresh = g.test == CKPT_ENCRYPT_FRESH;
    for (unsigned pass = 0; pass < g.passes; pass++) {
        if (fresh) {
            image = mmap(NULL, g.share, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (image == MAP_FAILED) {
                perror("trusted_gcm_speed: mmap");
                exit(1);
            }
        }
        for (size_t off = 0; off < g.share; off += CHUNK) {
            uint64_t index = (uint64_t)id << 32 | off / CHUNK;
            if (g.test == CKPT_DECRYPT)
                decrypt_chunk(image + off, state + off, index);
            else if (g.test == MEMCPY)
                memcpy(image + off, state + off, CHUNK);
            else if (g.test == CKPT_ENCRYPT_STAGED)
                encrypt_chunk_staged(state + off, image + off, index);
            else
                encrypt_chunk(state + off, image + off, index);
        }
        __asm__ volatile("" : : "r"(state), "r"(image) : "memory");
        if (fresh)
            munmap(image, g.share);
    }
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    pthread_barrier_wait(&g.start);
    g_started[id] = now();
    work(id);
    g_ended[id] = now();
    return NULL;
}

/* One measurement on all threads: GB/s, or a negative errno. */
static double measure(enum test test)
{
    pthread_t threads[MAX_THREADS];
    g.test = test;
    if (pthread_barrier_init(&g.start, NULL, g.threads + 1) != 0)
        return -ENOMEM;
    unsigned started = 0;
    for (; started < g.threads; started++)
        if (pthread_create(&threads[started], NULL, worker, (void *)(uintptr_t)started) != 0)
            break;
    if (started < g.threads) { /* the started ones wait at the barrier forever */
        fprintf(stderr, "trusted_gcm_speed: cannot start %u threads\n", g.threads);
        exit(1);
    }
    pthread_barrier_wait(&g.start);
    double first = 0, last = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        if (i == 0 || g_started[i] < first)
            first = g_started[i];
        if (g_ended[i] > last)
            last = g_ended[i];
    }
    double elapsed = last - first;
    pthread_barrier_destroy(&g.start);
    return (double)g.share * g.passes * g.threads / elapsed / 1e9;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: trusted_gcm_speed [--threads N] [--size SIZE_MIB] [--passes P] [--csv]\n"
                 "  --threads N   threads, 1..256 (default 1)\n"
                 "  --size MIB    state buffer in MiB, split between the threads (default 256)\n"
                 "  --passes P    passes over it per figure (default 2)\n"
                 "  --csv         print 'test,threads,GB/s' rows\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"threads", required_argument, NULL, 't'}, {"size", required_argument, NULL, 's'},
        {"passes", required_argument, NULL, 'p'},  {"csv", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    unsigned long threads = 1, size_mib = 256, passes = 2;
    int csv = 0, opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 't':
            threads = strtoul(optarg, &end, 10);
            break;
        case 's':
            size_mib = strtoul(optarg, &end, 10);
            break;
        case 'p':
            passes = strtoul(optarg, &end, 10);
            break;
        case 'c':
            csv = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (end && (*end || end == optarg)) {
            usage(stderr);
            return 2;
        }
    }
    if (threads < 1 || threads > MAX_THREADS || size_mib < threads || size_mib > (1ul << 20) ||
        passes < 1 || passes > 1000 || optind != argc) {
        usage(stderr);
        return 2;
    }
    g.threads = (unsigned)threads;
    g.passes = (unsigned)passes;
    g.share = size_mib / threads * CHUNK;
    size_t total = g.share * threads;
    g.state = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g.image = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.state == MAP_FAILED || g.image == MAP_FAILED) {
        fprintf(stderr, "trusted_gcm_speed: cannot map 2 x %zu bytes\n", total);
        return 1;
    }
    /* Touch everything first: page faults are not what is measured. */
    for (size_t i = 0; i < total; i += 4096)
        g.state[i] = (uint8_t)i, g.image[i] = 0;
    uint8_t key[32];
    for (unsigned i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 7 + 1);
    tc_gcm_key_init(&g.key, key);
    measure(GCM_CACHE); /* warm-up: frequency, caches, lazily bound code */
    if (!csv)
        printf("%u thread(s), %zu MiB, %u passes (GB/s = 10^9 bytes/s)\n", g.threads, total >> 20,
               g.passes);
    for (int t = 0; t < TEST_COUNT; t++) {
        double rate = measure((enum test)t);
        if (csv)
            printf("%s,%u,%.4f\n", g_names[t], g.threads, rate);
        else
            printf("  %-20s %8.2f GB/s\n", g_names[t], rate);
    }
    tc_gcm_key_wipe(&g.key);
    return 0;
}
