/* Looks for the checkpoint test enclave's secret in files and in process
 * memory. The secret is re-expanded from its seed exactly as the enclave
 * expands it (cr_abi.h), here with OpenSSL; every 16-byte window of every
 * region goes into a hash set, and every byte offset of every input is
 * looked up. One window found anywhere means 16 secret bytes left the
 * enclave.
 *
 * usage: scan_secrets --seed HEX --heap N [--globals N] [--stack N]
 *                     [--expect-found] PATH|pid:PID...
 * A PATH that is a directory is walked recursively (regular files only);
 * pid:PID reads every readable mapping of that process via /proc/PID/mem.
 * Exit: 0 = as expected (no window found, or with --expect-found at least
 * one), 1 = not as expected, 2 = usage or I/O error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cr_abi.h"

enum { WINDOW = 16, PREFILTER_BITS = 27, REPORT_LIMIT = 5 };

struct region {
    char tag;
    const char *name;
    uint64_t size;
};

struct secret_set {
    uint8_t (*slots)[WINDOW]; /* all-zero: empty */
    uint32_t *where;          /* region index << 30 | offset in region */
    uint64_t mask;
    uint64_t *prefilter;
    uint64_t windows;
};

struct scan_totals {
    uint64_t files, bytes, hits, files_with_hits;
    uint64_t hits_by_region[3];
    int errors;
};

static struct secret_set g_set;
static struct region g_regions[3] = {
    {CR_TAG_HEAP, "heap", 0},
    {CR_TAG_GLOBALS, "globals", CR_GLOBALS_SIZE},
    {CR_TAG_STACK, "stack", CR_STACK_SECRET_SIZE},
};
static struct scan_totals g_totals;

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* The windows are SHA-256 output: any 8 of their bytes are already uniform,
 * a multiply only spreads the two halves together. */
static uint64_t window_hash(const uint8_t *p)
{
    return (load64(p) ^ (load64(p + 8) * 0x9E3779B97F4A7C15ull)) * 0xD6E8FEB86659FD93ull;
}

static bool prefilter_has(uint64_t h)
{
    uint64_t bit = h >> (64 - PREFILTER_BITS);
    return (g_set.prefilter[bit / 64] >> (bit % 64)) & 1;
}

static bool is_zero(const uint8_t *p)
{
    return load64(p) == 0 && load64(p + 8) == 0;
}

static void set_add(const uint8_t *window, uint32_t where)
{
    uint64_t h = window_hash(window);
    uint64_t bit = h >> (64 - PREFILTER_BITS);
    g_set.prefilter[bit / 64] |= 1ull << (bit % 64);
    for (uint64_t i = h & g_set.mask;; i = (i + 1) & g_set.mask) {
        if (is_zero(g_set.slots[i])) {
            memcpy(g_set.slots[i], window, WINDOW);
            g_set.where[i] = where;
            g_set.windows++;
            return;
        }
        if (memcmp(g_set.slots[i], window, WINDOW) == 0)
            return; /* the same 16 bytes twice: one entry is enough */
    }
}

/* Returns the slot of `window`, or -1. */
static int64_t set_find(const uint8_t *window)
{
    uint64_t h = window_hash(window);
    if (!prefilter_has(h))
        return -1;
    for (uint64_t i = h & g_set.mask;; i = (i + 1) & g_set.mask) {
        if (is_zero(g_set.slots[i]))
            return -1;
        if (memcmp(g_set.slots[i], window, WINDOW) == 0)
            return (int64_t)i;
    }
}

static void expand(const uint8_t seed[CR_SEED_SIZE], char tag, uint8_t *buf, uint64_t size)
{
    uint8_t in[CR_SEED_SIZE + 1 + 8], digest[SHA256_DIGEST_LENGTH];
    memcpy(in, seed, CR_SEED_SIZE);
    in[CR_SEED_SIZE] = (uint8_t)tag;
    for (uint64_t offset = 0, i = 0; offset < size; offset += 32, i++) {
        for (int b = 0; b < 8; b++)
            in[CR_SEED_SIZE + 1 + b] = (uint8_t)(i >> (8 * b));
        SHA256(in, sizeof(in), digest);
        memcpy(buf + offset, digest, size - offset < 32 ? size - offset : 32);
    }
}

static int build_set(const uint8_t seed[CR_SEED_SIZE])
{
    uint64_t total = 0;
    for (int r = 0; r < 3; r++)
        if (g_regions[r].size >= WINDOW)
            total += g_regions[r].size - WINDOW + 1;
    uint64_t capacity = 1024;
    while (capacity < 2 * total)
        capacity *= 2;
    g_set.mask = capacity - 1;
    g_set.slots = calloc(capacity, WINDOW);
    g_set.where = calloc(capacity, sizeof(uint32_t));
    g_set.prefilter = calloc((1ull << PREFILTER_BITS) / 64, sizeof(uint64_t));
    if (!g_set.slots || !g_set.where || !g_set.prefilter)
        return -ENOMEM;
    for (int r = 0; r < 3; r++) {
        uint64_t size = g_regions[r].size;
        if (size < WINDOW)
            continue;
        uint8_t *buf = malloc(size);
        if (!buf)
            return -ENOMEM;
        expand(seed, g_regions[r].tag, buf, size);
        for (uint64_t offset = 0; offset + WINDOW <= size; offset++) {
            /* An all-zero window marks an empty slot; SHA-256 output has
             * none in practice, and if it had, zeros prove nothing. */
            if (!is_zero(buf + offset))
                set_add(buf + offset, (uint32_t)r << 30 | (uint32_t)offset);
        }
        free(buf);
    }
    return 0;
}

/* Looks up every window of data[0..size); `base` is the position of data[0]
 * in its source, for the report. Returns the hits. */
static uint64_t scan_buffer(const char *source, const uint8_t *data, uint64_t size, uint64_t base,
                            uint64_t *reported)
{
    uint64_t hits = 0;
    for (uint64_t offset = 0; offset + WINDOW <= size; offset++) {
        int64_t slot = set_find(data + offset);
        if (slot < 0)
            continue;
        hits++;
        uint32_t where = g_set.where[slot];
        g_totals.hits_by_region[where >> 30]++;
        if (*reported < REPORT_LIMIT) {
            printf("  HIT %s @ 0x%" PRIx64 ": %s secret offset %u\n", source, base + offset,
                   g_regions[where >> 30].name, where & ((1u << 30) - 1));
            ++*reported;
        }
    }
    return hits;
}

static void scan_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "scan_secrets: cannot open %s: %s\n", path, strerror(errno));
        g_totals.errors++;
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        fprintf(stderr, "scan_secrets: cannot stat %s: %s\n", path, strerror(errno));
        g_totals.errors++;
        close(fd);
        return;
    }
    g_totals.files++;
    uint64_t hits = 0, reported = 0;
    if (st.st_size > 0) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            fprintf(stderr, "scan_secrets: cannot map %s: %s\n", path, strerror(errno));
            g_totals.errors++;
            close(fd);
            return;
        }
        hits = scan_buffer(path, map, (uint64_t)st.st_size, 0, &reported);
        g_totals.bytes += (uint64_t)st.st_size;
        munmap(map, (size_t)st.st_size);
    }
    close(fd);
    if (hits) {
        printf("  %s: %" PRIu64 " secret windows\n", path, hits);
        g_totals.hits += hits;
        g_totals.files_with_hits++;
    }
}

static void scan_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        fprintf(stderr, "scan_secrets: cannot stat %s: %s\n", path, strerror(errno));
        g_totals.errors++;
        return;
    }
    if (S_ISREG(st.st_mode)) {
        scan_file(path);
        return;
    }
    if (!S_ISDIR(st.st_mode))
        return; /* sockets, links: no content CRIU or spmd wrote */
    DIR *dir = opendir(path);
    if (!dir) {
        fprintf(stderr, "scan_secrets: cannot open %s: %s\n", path, strerror(errno));
        g_totals.errors++;
        return;
    }
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char child[4096];
        int n = snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
        if (n < 0 || (size_t)n >= sizeof(child)) {
            g_totals.errors++;
            continue;
        }
        scan_tree(child);
    }
    closedir(dir);
}

#define HUGE_MAPPING (64ull << 30)

/* Every readable mapping of a live process, read through /proc/PID/mem in
 * pieces that overlap by WINDOW - 1 bytes so no window is cut in two. */
static void scan_process(const char *pid)
{
    char maps_path[64], mem_path[64], source[128];
    snprintf(maps_path, sizeof(maps_path), "/proc/%s/maps", pid);
    snprintf(mem_path, sizeof(mem_path), "/proc/%s/mem", pid);
    snprintf(source, sizeof(source), "pid %s memory", pid);
    FILE *maps = fopen(maps_path, "r");
    int fd = open(mem_path, O_RDONLY | O_CLOEXEC);
    if (!maps || fd < 0) {
        fprintf(stderr, "scan_secrets: cannot read the memory of pid %s: %s\n", pid,
                strerror(errno));
        g_totals.errors++;
        if (maps)
            fclose(maps);
        if (fd >= 0)
            close(fd);
        return;
    }
    enum { PIECE = 8 << 20 };
    uint8_t *buf = malloc(PIECE + WINDOW);
    uint64_t hits = 0, reported = 0, skipped_huge = 0;
    char line[1024];
    while (buf && fgets(line, sizeof(line), maps)) {
        uint64_t start, end;
        char perms[8];
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &start, &end, perms) != 3)
            continue;
        if (perms[0] != 'r' || strstr(line, "[vvar") || strstr(line, "[vsyscall]"))
            continue;
        /* Sanitizer builds reserve terabytes of shadow memory: reading it
         * through /proc/PID/mem would fault in zero pages for hours. ELRANGE
         * and every heap or stack that could hold a copy are far smaller. */
        if (end - start > HUGE_MAPPING) {
            skipped_huge++;
            continue;
        }
        uint64_t carried = 0;
        for (uint64_t at = start; at < end;) {
            size_t want = end - at < PIECE ? (size_t)(end - at) : PIECE;
            ssize_t got = pread(fd, buf + carried, want, (off_t)at);
            if (got <= 0)
                break;
            hits += scan_buffer(source, buf, carried + (uint64_t)got, at - carried, &reported);
            g_totals.bytes += (uint64_t)got;
            at += (uint64_t)got;
            uint64_t have = carried + (uint64_t)got;
            carried = have < WINDOW - 1 ? have : WINDOW - 1;
            memmove(buf, buf + have - carried, carried);
        }
    }
    free(buf);
    fclose(maps);
    close(fd);
    if (skipped_huge)
        printf("  %s: skipped %" PRIu64 " mappings larger than %llu GiB (sanitizer shadow)\n",
               source, skipped_huge, (unsigned long long)(HUGE_MAPPING >> 30));
    g_totals.files++;
    if (hits) {
        printf("  %s: %" PRIu64 " secret windows\n", source, hits);
        g_totals.hits += hits;
        g_totals.files_with_hits++;
    }
}

static int parse_hex(const char *hex, uint8_t *out, size_t size)
{
    if (strlen(hex) != 2 * size)
        return -EINVAL;
    for (size_t i = 0; i < size; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        out[i] = (uint8_t)v;
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint8_t seed[CR_SEED_SIZE];
    bool have_seed = false, expect_found = false;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--expect-found") == 0) {
            expect_found = true;
            continue;
        }
        if (i + 1 >= argc)
            goto usage;
        const char *value = argv[++i];
        if (strcmp(opt, "--seed") == 0) {
            if (parse_hex(value, seed, sizeof(seed)) < 0)
                goto usage;
            have_seed = true;
        } else if (strcmp(opt, "--heap") == 0) {
            g_regions[0].size = strtoull(value, NULL, 0);
        } else if (strcmp(opt, "--globals") == 0) {
            g_regions[1].size = strtoull(value, NULL, 0);
        } else if (strcmp(opt, "--stack") == 0) {
            g_regions[2].size = strtoull(value, NULL, 0);
        } else {
            goto usage;
        }
    }
    if (!have_seed || g_regions[0].size == 0 || g_regions[0].size > CR_MAX_HEAP_SECRET || i >= argc)
        goto usage;
    if (build_set(seed) < 0) {
        fprintf(stderr, "scan_secrets: out of memory for the window set\n");
        return 2;
    }
    for (; i < argc; i++) {
        if (strncmp(argv[i], "pid:", 4) == 0)
            scan_process(argv[i] + 4);
        else
            scan_tree(argv[i]);
    }
    printf("scan_secrets: %" PRIu64 " distinct 16-byte windows of %" PRIu64
           " secret bytes (heap %" PRIu64 ", globals %" PRIu64 ", stack %" PRIu64
           "); scanned %" PRIu64 " inputs, %" PRIu64 " bytes; %" PRIu64 " windows found in %" PRIu64
           " inputs (heap %" PRIu64 ", globals %" PRIu64 ", stack %" PRIu64 ")\n",
           g_set.windows, g_regions[0].size + g_regions[1].size + g_regions[2].size,
           g_regions[0].size, g_regions[1].size, g_regions[2].size, g_totals.files, g_totals.bytes,
           g_totals.hits, g_totals.files_with_hits, g_totals.hits_by_region[0],
           g_totals.hits_by_region[1], g_totals.hits_by_region[2]);
    if (g_totals.errors) {
        fprintf(stderr, "scan_secrets: %d inputs could not be read\n", g_totals.errors);
        return 2;
    }
    if (g_totals.files == 0 || g_totals.bytes == 0) {
        fprintf(stderr, "scan_secrets: nothing to scan\n");
        return 2;
    }
    return (g_totals.hits > 0) == expect_found ? 0 : 1;

usage:
    fprintf(stderr, "usage: scan_secrets --seed HEX(64) --heap N [--globals N] [--stack N] "
                    "[--expect-found] PATH|pid:PID...\n");
    return 2;
}
