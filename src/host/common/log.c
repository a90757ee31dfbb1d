/* Host-side diagnostics: one line per message on stderr, prefixed "spm: ". */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int log_threshold(void)
{
    static int threshold = -1;
    if (threshold < 0) {
        const char *env = getenv("SPM_LOG");
        threshold = SPM_LOG_ERROR;
        if (env && strcmp(env, "debug") == 0)
            threshold = SPM_LOG_DEBUG;
        else if (env && strcmp(env, "info") == 0)
            threshold = SPM_LOG_INFO;
    }
    return threshold;
}

void spm_log(enum spm_log_level level, const char *fmt, ...)
{
    if ((int)level > log_threshold())
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "spm: %s\n", line);
}
