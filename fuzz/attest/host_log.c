/* spm_log for the host-side attestation harnesses: the harness's own
 * definition takes the place of src/host/common/log.c (the static library's
 * object is then never linked). Messages are formatted, so a bad format
 * argument still shows under ASan, and kept rather than printed
 * (FUZZ_ATTEST_LOG=1 prints them too, to see where seeds stop). */
#include "host_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "host/common/log.h"

static char g_last[1024];
static size_t g_count;

void spm_log(enum spm_log_level level, const char *fmt, ...)
{
    char line[sizeof(g_last)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (level != SPM_LOG_ERROR)
        return;
    static int print = -1;
    if (print < 0)
        print = getenv("FUZZ_ATTEST_LOG") != NULL;
    if (print)
        fprintf(stderr, "spm: %s\n", line);
    snprintf(g_last, sizeof(g_last), "%s", line);
    g_count++;
}

void fuzz_log_reset(void)
{
    g_last[0] = 0;
    g_count = 0;
}

size_t fuzz_log_count(void)
{
    return g_count;
}

const char *fuzz_log_last(void)
{
    return g_last;
}
