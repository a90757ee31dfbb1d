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
 *   export [timeout_ms=N] [threads=N] [lazy=1]
 *                     lazy=1: CRIU dumps this process with --lazy-pages
 *                     (post-copy), so the sealed image goes in shared
 *                     memory, which CRIU copies with the images, rather
 *                     than in private memory that lazy-pages would send
 *                     only when the import touches it, over the link
 *       -> ok enclaves=N bytes=N chunks=N threads=N export_us=N
 *       -> error errno=N msg=TEXT         (the enclave is running again)
 *       [refs=REF[,REF...]]  one REF per enclave exported, in registry
 *                     order: LINEAGE:GENERATION:CHECKPOINT_ID:HEADER_DIGEST,
 *                     lowercase hex (32, decimal, 32, 64 digits), the
 *                     public reference the ME escrowed the key under
 *                     (struct spm_me_checkpoint_ref; spm_control_parse_refs)
 *   resume [platform=DIR] [spmd=PATH]
 *                     rebuild and import any exported enclave; a no-op for
 *                     a live one. Sent by the plugin with nobody waiting for
 *                     the reply (tasks may still be frozen): it runs when
 *                     the process runs. platform= and spmd= name the SGX
 *                     platform directory and spmd socket of the host the
 *                     process now runs on (after a migration its own
 *                     environment names the source host's); the process
 *                     adopts them for this import and every later one and
 *                     for every later ME relay. Absent: keep what the
 *                     process had. Values are absolute paths,
 *                     percent-encoded (spm_control_encode_value).
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spm/abi/me_abi.h"

#define SPM_CONTROL_RUN_DIR_DEFAULT "/run/spm"
#define SPM_CONTROL_RUN_DIR_ENV     "SPM_RUN_DIR"
#define SPM_CONTROL_MAX_LINE        4096u
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
    bool lazy;           /* export: the dump is lazy (post-copy) */
    unsigned wait_ms;    /* status: wait while an export/import runs */
    /* resume: decoded absolute paths, "" when absent. */
    char platform[SPM_CONTROL_MAX_LINE];
    char spmd[SPM_CONTROL_MAX_LINE];
};

/* What the CRIU plugin and the action script read from their environment
 * (set by `spm checkpoint`, inherited through criu): the export's bound on
 * waiting for threads and its worker threads. */
#define SPM_CONTROL_TIMEOUT_ENV "SPM_CHECKPOINT_TIMEOUT_MS"
#define SPM_CONTROL_THREADS_ENV "SPM_CHECKPOINT_THREADS"
/* "1" when the dump is lazy (post-copy; set by spmd): export lazy=1. */
#define SPM_CONTROL_LAZY_ENV "SPM_CHECKPOINT_LAZY"

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

/* What the plugin and the action script read from CRIU's environment at
 * restore: the platform directory and spmd socket of the host the process
 * is restored on (the same names the runtime and spmd read: sim.h,
 * me_abi.h), and whether the import is deferred: set by an orchestrator
 * that restores with --leave-stopped and checks "status" itself after
 * SIGCONT, so exit(RESTORE) must not wait for an import that cannot run
 * while the tasks are stopped. */
#define SPM_CONTROL_PLATFORM_ENV "SPM_PLATFORM"
#define SPM_CONTROL_SPMD_ENV     SPM_SPMD_SOCKET_ENV
#define SPM_CONTROL_DEFERRED_ENV "SPM_IMPORT_DEFERRED"

/* Percent-encodes `value` for a request word: bytes outside
 * [A-Za-z0-9/._~:,@+-] become %XX. -EINVAL for a control character
 * (newline, tab, DEL ...), which no path SPM accepts carries; -ENOSPC when
 * `out` is too small. */
int spm_control_encode_value(const char *value, char *out, size_t out_size)
    __attribute__((warn_unused_result));

/* The inverse for `len` bytes at `in`: %XX (either case) and the bytes
 * encode leaves alone; -EINVAL for anything else (a raw space, '=', '%'
 * without two hex digits, a decoded control character or NUL), -ENOSPC. */
int spm_control_decode_value(const char *in, size_t len, char *out, size_t out_size)
    __attribute__((warn_unused_result));

/* The "resume" request the plugin and the action script send at restore:
 * "resume" plus platform= / spmd= from SPM_CONTROL_PLATFORM_ENV /
 * SPM_CONTROL_SPMD_ENV when set and not empty. A set value that is not an
 * absolute path or holds a control character makes it fail with -EINVAL
 * and its variable's name in *bad (the caller must not fall back to the
 * process's own values silently: they may name another host). -ENOSPC. */
int spm_control_resume_request(char *request, size_t request_size, const char **bad)
    __attribute__((warn_unused_result));

/* True when SPM_CONTROL_DEFERRED_ENV is "1". */
int spm_control_import_deferred(void);

/* One checkpoint reference as the export reply carries it (no NUL
 * counted): 32 + 1 + up to 20 + 1 + 32 + 1 + 64 characters. */
#define SPM_CONTROL_REF_MAX_TEXT 151u

/* Formats `ref` as LINEAGE:GENERATION:CHECKPOINT_ID:DIGEST. -ENOSPC. */
int spm_control_format_ref(const struct spm_me_checkpoint_ref *ref, char *out, size_t out_size)
    __attribute__((warn_unused_result));

/* Parses the refs= value of an export reply line (or of an export record's
 * line) into refs[0..capacity). -ENOENT without refs=, -EINVAL for a
 * malformed list (wrong digit counts, non-hex, a generation that is not a
 * decimal number in range, empty or extra elements, stray separators),
 * -ENOSPC for more than `capacity` refs. *count is set on success only. */
int spm_control_parse_refs(const char *reply, struct spm_me_checkpoint_ref *refs, size_t capacity,
                           size_t *count) __attribute__((warn_unused_result));

/* The request line among the `size` bytes a server received into buf
 * (which has room for size + 1): cut at its first newline and
 * NUL-terminated there. -EPROTO when no newline comes before the end or
 * before a NUL byte. */
int spm_control_request_line(char *buf, size_t size) __attribute__((warn_unused_result));

/* Parses one request line (no newline). -EINVAL for an unknown verb, an
 * unknown or repeated option, a value that is not a decimal number in
 * range (a path that does not decode to an absolute path, for resume), or
 * an option the verb does not take. */
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
