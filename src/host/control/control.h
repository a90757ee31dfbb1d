/* The control channel of an SPM process: a listening unix socket the
 * untrusted runtime opens in every process that loads an enclave, through
 * which the CRIU plugin, the action script and `spm` ask it to export its
 * enclave before a dump and to import it again after a restore.
 *
 * Path: <run dir>/<pid>.ctl, where <run dir> is $SPM_RUN_DIR or /run/spm
 * and <pid> is the process's pid in its own pid namespace. From outside a
 * container it is reached as /proc/<host pid>/root/<run dir>/<ns pid>.ctl
 * (spm_control_path_for_pid). A listening unix socket bound to a path is
 * restored by CRIU like any other, so the channel survives a checkpoint.
 *
 * Protocol: one request line per connection, one reply line, then close.
 * Words are separated by single spaces; values never contain spaces except
 * the final msg=, which runs to the end of the line.
 *   export [timeout_ms=N] [threads=N]
 *       -> ok enclaves=N bytes=N chunks=N threads=N export_us=N
 *       -> error errno=N msg=TEXT         (the enclave is running again)
 *   resume            rebuild and import any exported enclave; a no-op for
 *                     a live one. Sent by the plugin with nobody waiting for
 *                     the reply (tasks may still be frozen): it runs when
 *                     the process runs.
 *       -> ok enclaves=N bytes=N chunks=N threads=N import_us=N
 *       -> error errno=N msg=TEXT
 *   status [wait_ms=N] waits up to N ms while an export or import is under
 *                     way, then reports
 *       -> ok state=live|exported|importing|exporting|failed
 *             [bytes=N chunks=N export_us=N import_us=N] [errno=N msg=TEXT]
 * A process whose import is refused for good (the checkpoint was already
 * resumed, superseded, tampered with, or belongs to another enclave) logs
 * why and exits with SPM_CONTROL_EXIT_REFUSED: nothing runs with that
 * state, and the untouched images can be restored again. */
#ifndef SPM_HOST_CONTROL_CONTROL_H
#define SPM_HOST_CONTROL_CONTROL_H

#include <stddef.h>
#include <sys/types.h>

#define SPM_CONTROL_RUN_DIR_DEFAULT "/run/spm"
#define SPM_CONTROL_RUN_DIR_ENV     "SPM_RUN_DIR"
#define SPM_CONTROL_MAX_LINE        1024u
#define SPM_CONTROL_EXIT_REFUSED    75

/* Default bound on waiting for threads to leave the enclave (ms). */
#define SPM_CONTROL_DEFAULT_TIMEOUT_MS 10000u

/* <run dir>: $SPM_RUN_DIR or the default. Never NULL. */
const char *spm_control_run_dir(void);

/* The path of host process `pid`'s control socket, seen from this process
 * (through /proc/<pid>/root, using the pid from the last NSpid entry of
 * /proc/<pid>/status). -ENOENT if pid is not running, -ENAMETOOLONG. */
int spm_control_path_for_pid(pid_t pid, char *path, size_t path_size)
    __attribute__((warn_unused_result));

/* Sends `request` (one line, no newline) to the socket at `path` and reads
 * the reply line into `reply` (NUL-terminated, newline stripped), waiting at
 * most timeout_ms (0: do not wait for a reply at all). -ECONNREFUSED /
 * -ENOENT when nobody listens there, -ETIMEDOUT, -EPROTO. */
int spm_control_request(const char *path, const char *request, char *reply, size_t reply_size,
                        unsigned timeout_ms) __attribute__((warn_unused_result));

/* The value of `key` in a reply line ("key=value"), copied into value;
 * msg= runs to the end of the line. -ENOENT when absent. */
int spm_control_reply_value(const char *reply, const char *key, char *value, size_t value_size)
    __attribute__((warn_unused_result));

/* ---- Additions beyond the original contract (server side, tests, CLI) ---- */

/* A parsed request line. Unset options are 0 (the server's defaults). */
enum spm_control_op {
    SPM_CONTROL_OP_EXPORT,
    SPM_CONTROL_OP_RESUME,
    SPM_CONTROL_OP_STATUS,
};

struct spm_control_request {
    enum spm_control_op op;
    unsigned timeout_ms; /* export: bound on waiting for threads to leave */
    unsigned threads;    /* export: worker threads (0: online CPUs) */
    unsigned wait_ms;    /* status: wait while an export/import runs */
};

/* What the CRIU plugin and the action script read from their environment
 * (set by `spm checkpoint`, inherited through criu): the export's bound on
 * waiting for threads and its worker threads. */
#define SPM_CONTROL_TIMEOUT_ENV "SPM_CHECKPOINT_TIMEOUT_MS"
#define SPM_CONTROL_THREADS_ENV "SPM_CHECKPOINT_THREADS"

/* Written by the plugin (and the action script) into CRIU's image
 * directory for each exported process, named by its innermost pid
 * (spm_control_ns_pid) and holding the export's reply line. Its presence
 * tells the restore side that the process has an enclave to import. */
#define SPM_CONTROL_EXPORT_FILE_PREFIX "spm-export-"
#define SPM_CONTROL_EXPORT_FILE_SUFFIX ".txt"

/* Largest timeout_ms / wait_ms accepted (one hour) and threads. */
#define SPM_CONTROL_MAX_MS      3600000u
#define SPM_CONTROL_MAX_THREADS 1024u

/* How much longer than the export's bound on draining threads a caller
 * waits for the reply: encryption and the escrow come after the drain. */
#define SPM_CONTROL_EXPORT_MARGIN_MS 30000u

/* The "export" request line the plugin and the action script send, with
 * its bounds from SPM_CONTROL_TIMEOUT_ENV and SPM_CONTROL_THREADS_ENV. A
 * variable that is not a number in range is left out (defaults apply) and
 * its name put in ignored[0] or ignored[1] (else NULL) for the caller to
 * report. Returns how long to wait for the reply, in ms. */
unsigned spm_control_export_request(char *request, size_t request_size, const char *ignored[2]);

/* Parses one request line (no newline). -EINVAL for an unknown verb, an
 * unknown or repeated option, a value that is not a decimal number in
 * range, or an option the verb does not take. */
int spm_control_parse_request(const char *line, struct spm_control_request *out)
    __attribute__((warn_unused_result));

/* The control socket path of this process: <run dir>/<getpid()>.ctl.
 * -ENAMETOOLONG. */
int spm_control_own_path(char *path, size_t path_size) __attribute__((warn_unused_result));

/* The innermost pid of host process `pid` (last NSpid entry of
 * /proc/<pid>/status; `pid` itself on kernels without NSpid). Names the
 * per-process files the CRIU plugin writes, so that they match again after
 * a restore into a new pid namespace. -ENOENT when pid is not running. */
int spm_control_ns_pid(pid_t pid, pid_t *ns_pid) __attribute__((warn_unused_result));

/* Numeric value of `key` in a reply; -ENOENT when absent, -EINVAL when it
 * is not a decimal number. */
int spm_control_reply_u64(const char *reply, const char *key, unsigned long long *value)
    __attribute__((warn_unused_result));

/* sockaddr_un for `path`. Paths longer than sun_path are reached through
 * an O_PATH descriptor of their directory (/proc/self/fd/N/NAME), returned
 * in *dir_fd for the caller to close after bind/connect (-1 when unused).
 * -ENAMETOOLONG, or -errno from opening the directory. */
struct sockaddr_un;
int spm_control_sockaddr(const char *path, struct sockaddr_un *addr, int *dir_fd)
    __attribute__((warn_unused_result));

#endif
