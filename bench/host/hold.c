/* The waiting half of the checkpoint benchmark's processes (hold.h). */
#include "hold.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sigset_t g_waited;

void hold_block_signals(void)
{
    sigemptyset(&g_waited);
    sigaddset(&g_waited, SIGUSR1);
    sigaddset(&g_waited, SIGTERM);
    sigaddset(&g_waited, SIGINT);
    sigprocmask(SIG_BLOCK, &g_waited, NULL);
}

/* The sum of /proc/self/status fields `a` and `b` (b may be NULL), bytes. */
static uint64_t status_kib(const char *a, const char *b)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return 0;
    char line[256];
    uint64_t sum = 0;
    size_t a_len = strlen(a), b_len = b ? strlen(b) : 0;
    while (fgets(line, sizeof(line), f)) {
        const char *value = NULL;
        if (strncmp(line, a, a_len) == 0 && line[a_len] == ':')
            value = line + a_len + 1;
        else if (b && strncmp(line, b, b_len) == 0 && line[b_len] == ':')
            value = line + b_len + 1;
        if (value)
            sum += strtoull(value, NULL, 10);
    }
    fclose(f);
    return sum * 1024;
}

uint64_t hold_rss_bytes(void)
{
    return status_kib("VmRSS", NULL);
}

uint64_t hold_anon_bytes(void)
{
    return status_kib("RssAnon", "RssShmem");
}

int hold_write(const char *dir, const char *name, const char *line)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp) ||
        snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "we");
    if (!f)
        return -errno;
    int ok = fprintf(f, "%s\n", line) > 0;
    if (fclose(f) != 0 || !ok) {
        unlink(tmp);
        return -EIO;
    }
    return rename(tmp, path) < 0 ? -errno : 0;
}

int hold_wait(const char *dir, void (*check)(char *line, unsigned size))
{
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&g_waited, &info);
        if (sig < 0) {
            if (errno == EINTR) /* e.g. when CRIU restores the task */
                continue;
            perror("sigwaitinfo");
            return 1;
        }
        if (sig != SIGUSR1)
            return 0;
        char line[256];
        check(line, sizeof(line));
        if (hold_write(dir, "check", line) < 0)
            fprintf(stderr, "cannot write %s/check\n", dir);
    }
}

uint64_t hold_parse_size(const char *text)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || text[0] == '-')
        return 0;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (*end || v > (UINT64_MAX >> shift))
        return 0;
    return (uint64_t)v << shift;
}
