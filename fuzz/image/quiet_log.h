/* The image parsers log every refusal to stderr (host/common/log.c), which
 * at thousands of inputs a second would bury libFuzzer's own report in
 * megabytes of "not an acceptable enclave image". The harnesses of this
 * group point stdio's stderr at /dev/null once, from
 * LLVMFuzzerInitialize; libFuzzer keeps its own copy of the stream and the
 * sanitizers write to file descriptor 2, so their reports still show.
 * SPM_FUZZ_LOG=1 keeps the messages, to read why an input was refused. */
#ifndef SPM_FUZZ_IMAGE_QUIET_LOG_H
#define SPM_FUZZ_IMAGE_QUIET_LOG_H

#include <stdio.h>
#include <stdlib.h>

static inline void fuzz_quiet_log(void)
{
    const char *keep = getenv("SPM_FUZZ_LOG");
    if (keep && *keep && *keep != '0')
        return;
    FILE *null = fopen("/dev/null", "w");
    if (null)
        stderr = null;
}

#endif
