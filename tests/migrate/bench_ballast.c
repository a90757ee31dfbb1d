/* Preloaded into a benchmark's kvs (LD_PRELOAD) to make it a big process:
 * holds $BENCH_BALLAST_MB MiB of private anonymous memory, every page
 * written with data that is not zero, so CRIU must copy all of it. Only the
 * program whose name is $BENCH_BALLAST_EXE takes it; the launchers in
 * between (setsid, nsenter, unshare) run as they are. Holds nothing if
 * either variable is unset or malformed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void *g_ballast;

__attribute__((constructor)) static void ballast_take(void)
{
    const char *mb_text = getenv("BENCH_BALLAST_MB"), *exe = getenv("BENCH_BALLAST_EXE");
    if (!mb_text || !exe)
        return;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    const char *name = strrchr(self, '/');
    if (strcmp(name ? name + 1 : self, exe) != 0)
        return;
    char *end;
    unsigned long mb = strtoul(mb_text, &end, 10);
    if (*mb_text == '\0' || *end != '\0' || mb == 0 || mb > (1ul << 20))
        return;
    size_t size = mb << 20;
    uint64_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < size / sizeof(*p); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = x;
    }
    g_ballast = p;
}
