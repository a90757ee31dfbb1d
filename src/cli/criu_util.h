/* What `spm checkpoint`, `spm restore` and `spm criu-action` share: running
 * CRIU with SPM's plugin, reading the per-process export records the
 * plugin leaves in the image directory, and talking to a process's control
 * socket. */
#ifndef SPM_CLI_CRIU_UTIL_H
#define SPM_CLI_CRIU_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "host/control/control.h"

/* Environment: SPM_CRIU names the criu binary (default: "criu" on PATH);
 * SPM_CRIU_PLUGIN_DIR a directory holding spm_criu.so (e.g. the build
 * tree's src/criu-plugin), passed to criu as --libdir. */
#define SPM_CLI_CRIU_ENV       "SPM_CRIU"
#define SPM_CLI_PLUGIN_DIR_ENV "SPM_CRIU_PLUGIN_DIR"
#define SPM_CLI_PLUGIN_DEFAULT "/usr/lib/criu"
#define SPM_CLI_PLUGIN_NAME    "spm_criu.so"
/* Options `spm checkpoint` used that `spm restore` must repeat. */
#define SPM_CLI_CHECKPOINT_FILE "spm-checkpoint.txt"

/* A growable argv for criu. */
struct spm_cli_argv {
    char **argv;
    size_t count, capacity;
};
int spm_cli_argv_add(struct spm_cli_argv *a, const char *arg) __attribute__((warn_unused_result));
void spm_cli_argv_free(struct spm_cli_argv *a);

/* Appends the criu binary as argv[0]. */
int spm_cli_argv_criu(struct spm_cli_argv *a) __attribute__((warn_unused_result));

/* Appends --libdir when SPM_CRIU_PLUGIN_DIR is set; otherwise checks that
 * the plugin is installed where CRIU looks by default. Prints what is
 * missing and returns -ENOENT when the plugin cannot be found. */
int spm_cli_argv_plugin(struct spm_cli_argv *a, const char *command)
    __attribute__((warn_unused_result));

/* Runs argv (NULL-terminated by this call), waits, and reports its exit
 * status (128+signal when killed) and wall time. -errno if it cannot run. */
int spm_cli_run(struct spm_cli_argv *a, int *status, uint64_t *usec)
    __attribute__((warn_unused_result));

/* One spm-export-<pid>.txt: the pid and the export's reply line (as long
 * as a control line may be: it carries a checkpoint ref per enclave). */
struct spm_cli_export {
    pid_t pid;
    char reply[SPM_CONTROL_MAX_LINE];
};
/* Reads every export record in `dir` (sorted by pid). *out is malloc'd,
 * owned by the caller; *count may be 0. -errno if dir cannot be read. */
int spm_cli_read_exports(const char *dir, struct spm_cli_export **out, size_t *count)
    __attribute__((warn_unused_result));

/* Writes the export record of `pid` (its innermost pid names it) to dir. */
int spm_cli_write_export(const char *dir, pid_t pid, const char *reply)
    __attribute__((warn_unused_result));

uint64_t spm_cli_now_us(void);

/* The value of `key` in a reply line, 0 when absent. */
unsigned long long spm_cli_reply_u64(const char *reply, const char *key);

/* Prints the lines of `log` that mention SPM's plugin or CRIU errors,
 * indented, at most `max` of them. */
void spm_cli_print_log_errors(const char *log, unsigned max);

#endif
