/* What the two processes of the checkpoint benchmark share: the enclave
 * process (bench_host) and its control without an enclave (bench_plain)
 * both hold memory, announce themselves in DIR/ready, and then only wait
 * for signals, so that CRIU dumps and restores two processes that differ
 * in nothing but the enclave:
 *   SIGUSR1          check that the memory held came back; answer in DIR/check
 *   SIGTERM, SIGINT  exit 0
 * Files are written to a temporary name and renamed, so a reader never sees
 * half a line. */
#ifndef SPM_BENCH_HOLD_H
#define SPM_BENCH_HOLD_H

#include <stdint.h>

/* Blocks the signals hold_wait() takes; call before any thread starts so
 * that every thread inherits the mask. */
void hold_block_signals(void);

/* The process's resident set (VmRSS) in bytes, 0 if unknown. */
uint64_t hold_rss_bytes(void);

/* Its resident anonymous and shared-anonymous memory (RssAnon + RssShmem):
 * what CRIU copies into its images. File-backed pages (the programs and
 * libraries) are not dumped, so the control process matches this. */
uint64_t hold_anon_bytes(void);

/* Writes `line` and a newline to DIR/NAME atomically. 0 or -errno. */
int hold_write(const char *dir, const char *name, const char *line)
    __attribute__((warn_unused_result));

/* Waits for signals until SIGTERM/SIGINT; runs check() for each SIGUSR1
 * and writes what it formats into DIR/check. Returns the exit status. */
int hold_wait(const char *dir, void (*check)(char *line, unsigned size));

/* A size such as 64M, 1G or 4096; 0 on error. */
uint64_t hold_parse_size(const char *text);

#endif
