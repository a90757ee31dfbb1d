/* spm_criu.so: makes any CRIU caller (spm, runc, crun, podman, the kubelet)
 * enclave-aware. CRIU cannot read an enclave, and must not: before it
 * freezes a process, this plugin asks the process's control thread to
 * export its enclaves (encrypted, key escrowed with the local Migration
 * Enclave, ELRANGE unmapped), and after a restore it asks the restored
 * process to import them again (docs/checkpoint.md, control.h).
 *
 * Hooks (CRIU.md has the order):
 *   PAUSE_DEVICES(pid)        dump, still running: synchronous "export";
 *                             a refusal aborts the dump and the process runs on;
 *   exit(DUMP)                queue "resume" for every exported process: it
 *                             only takes effect if the tasks live on (failed
 *                             dump, --leave-running), else they are killed;
 *   RESUME_DEVICES_LATE(pid)  restore, before the tasks run: queue "resume"
 *                             naming this host's platform and spmd from
 *                             CRIU's own environment (SPM_PLATFORM,
 *                             SPM_SPMD_SOCKET): a process restored on
 *                             another host still carries the source's
 *                             (CRIU ignores this hook's result);
 *   exit(RESTORE)             ask each resumed process how its import went,
 *                             unless SPM_IMPORT_DEFERRED=1: then the caller
 *                             restored with --leave-stopped, the import runs
 *                             after its SIGCONT and the caller asks.
 * Processes without a control socket are not SPM processes: -ENOTSUP, so
 * other plugins still see theirs. Built without sanitizers and linked only
 * with libc: it runs inside CRIU. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criu/criu-plugin.h>

#include "control/control.h"

/* From CRIU's log.h / image.h, which do not compile on their own: the
 * criu binary exports these to its plugins. */
extern void print_on_level(unsigned int loglevel, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
extern int add_inventory_plugin(const char *name);
extern bool check_and_remove_inventory_plugin(const char *name, size_t n);
#define SPM_LOG_ERROR 1u
#define SPM_LOG_WARN  2u
#define SPM_LOG_INFO  3u

#define pr_spm(level, fmt, ...) print_on_level(level, "spm: " fmt "\n", ##__VA_ARGS__)

/* How long exit(RESTORE) waits for each import to finish. */
#define RESTORE_STATUS_WAIT_MS 60000u
#define MAX_PIDS               4096

static int g_stage = -1;
static bool g_in_inventory;
static pid_t g_exported[MAX_PIDS]; /* dump: export succeeded or may have */
static unsigned g_exported_count;
static pid_t g_resumed[MAX_PIDS]; /* restore: "resume" queued */
static unsigned g_resumed_count;

static void remember(pid_t *list, unsigned *count, pid_t pid)
{
    for (unsigned i = 0; i < *count; i++)
        if (list[i] == pid)
            return;
    if (*count < MAX_PIDS)
        list[(*count)++] = pid;
    else
        pr_spm(SPM_LOG_ERROR, "more than %d SPM processes in one dump; pid %d not tracked",
               MAX_PIDS, pid);
}

static int export_file_name(pid_t pid, char *name, size_t size)
{
    pid_t ns_pid;
    int ret = spm_control_ns_pid(pid, &ns_pid);
    if (ret < 0)
        return ret;
    int n = snprintf(name, size, SPM_CONTROL_EXPORT_FILE_PREFIX "%d" SPM_CONTROL_EXPORT_FILE_SUFFIX,
                     (int)ns_pid);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The control socket of `pid`, or -ENOTSUP when it has none. */
static int control_path(pid_t pid, char *path, size_t size)
{
    int ret = spm_control_path_for_pid(pid, path, size);
    if (ret < 0) {
        pr_spm(SPM_LOG_WARN, "pid %d: cannot name its control socket: %s", pid, strerror(-ret));
        return -ENOTSUP;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return -ENOTSUP;
    return 0;
}

static int write_export_file(pid_t pid, const char *reply)
{
    char name[64];
    int ret = export_file_name(pid, name, sizeof(name));
    if (ret < 0)
        return ret;
    int dir = criu_get_image_dir();
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(reply);
    ssize_t n = write(fd, reply, len);
    ssize_t nl = write(fd, "\n", 1);
    ret = n == (ssize_t)len && nl == 1 ? 0 : -EIO;
    if (close(fd) < 0 && ret == 0)
        ret = -errno;
    return ret;
}

static int spm_pause_devices(int pid)
{
    char path[PATH_MAX];
    if (control_path(pid, path, sizeof(path)) < 0)
        return -ENOTSUP;
    if (g_stage != CR_PLUGIN_STAGE__DUMP) {
        /* A pre-dump copies memory while the process runs on. On the
         * simulated platform ELRANGE is ordinary memory, so that copy would
         * hold the enclave's plaintext: refuse rather than leak it, once a
         * listener proves this is an SPM process and not a stale socket
         * file under a reused pid. */
        char reply[SPM_CONTROL_MAX_LINE];
        int probe = spm_control_request(path, "status", reply, sizeof(reply), 2000);
        if (probe == -ECONNREFUSED || probe == -ENOENT)
            return -ENOTSUP;
        pr_spm(SPM_LOG_ERROR,
               "pid %d is an SPM enclave process: pre-dump is not supported (it would copy "
               "enclave memory); use a full dump",
               pid);
        return -EPERM;
    }
    char request[96], reply[SPM_CONTROL_MAX_LINE];
    const char *ignored[2];
    unsigned reply_ms = spm_control_export_request(request, sizeof(request), ignored);
    for (int i = 0; i < 2; i++)
        if (ignored[i])
            pr_spm(SPM_LOG_WARN, "ignoring %s=%s (want a number in range)", ignored[i],
                   getenv(ignored[i]));
    pr_spm(SPM_LOG_INFO, "pid %d: exporting its enclaves (%s)", pid, request);
    int ret = spm_control_request(path, request, reply, sizeof(reply), reply_ms);
    if (ret == -ECONNREFUSED || ret == -ENOENT) {
        /* A socket file nobody listens on: left by a process that died. */
        pr_spm(SPM_LOG_INFO, "pid %d: %s has no listener; not an SPM process", pid, path);
        return -ENOTSUP;
    }
    if (ret < 0) {
        /* The export may still complete: exit(DUMP) sends "resume". */
        remember(g_exported, &g_exported_count, pid);
        pr_spm(SPM_LOG_ERROR, "pid %d: export request on %s failed: %s; aborting the dump", pid,
               path, strerror(-ret));
        return ret == -ENOTSUP ? -EIO : ret;
    }
    if (strncmp(reply, "ok", 2) != 0 || (reply[2] != ' ' && reply[2] != '\0')) {
        unsigned long long err = 0;
        if (spm_control_reply_u64(reply, "errno", &err) < 0 || err == 0 || err > 4095 ||
            err == ENOTSUP)
            err = EIO;
        pr_spm(SPM_LOG_ERROR,
               "pid %d: its enclaves refused the export: %s; aborting the dump (the "
               "process runs on)",
               pid, reply);
        return -(int)err;
    }
    remember(g_exported, &g_exported_count, pid);
    pr_spm(SPM_LOG_INFO, "pid %d: exported: %s", pid, reply);
    if (!g_in_inventory) {
        /* A restore without this plugin would leave the enclave exported
         * and every ecall waiting: CRIU refuses it ("Missing required
         * plugin") instead. */
        if (add_inventory_plugin(CR_PLUGIN_DESC.name)) {
            pr_spm(SPM_LOG_ERROR, "cannot record the spm plugin in the inventory");
            return -ENOMEM;
        }
        g_in_inventory = true;
    }
    if ((ret = write_export_file(pid, reply)) < 0) {
        pr_spm(SPM_LOG_ERROR, "pid %d: cannot record its export in the image directory: %s", pid,
               strerror(-ret));
        return ret;
    }
    return 0;
}

static int spm_resume_devices_late(int pid)
{
    char name[64];
    if (export_file_name(pid, name, sizeof(name)) < 0)
        return -ENOTSUP;
    if (faccessat(criu_get_image_dir(), name, F_OK, 0) < 0)
        return -ENOTSUP; /* not exported at dump time */
    char path[PATH_MAX];
    int ret = spm_control_path_for_pid(pid, path, sizeof(path));
    if (ret < 0) {
        pr_spm(SPM_LOG_ERROR, "pid %d: cannot name its control socket: %s", pid, strerror(-ret));
        return ret;
    }
    /* The host restoring the process names its platform and spmd. A value
     * that cannot be sent is not replaced by the process's own: those may
     * be another host's, where the key no longer is. */
    char request[SPM_CONTROL_MAX_LINE];
    const char *bad;
    ret = spm_control_resume_request(request, sizeof(request), &bad);
    if (ret < 0) {
        pr_spm(SPM_LOG_ERROR,
               "pid %d: %s cannot be sent to the process (%s: want an absolute path without "
               "control characters); 'resume' NOT queued, its enclave stays exported (send "
               "'resume platform=DIR spmd=PATH' to %s by hand)",
               pid, bad ? bad : "a variable", strerror(-ret), path);
        return ret;
    }
    /* The task is stopped: the request waits in the restored socket's
     * backlog and the import runs as the process runs. */
    ret = spm_control_request(path, request, NULL, 0, 0);
    if (ret < 0) {
        pr_spm(SPM_LOG_ERROR,
               "pid %d: cannot queue '%s' on %s: %s; its enclave stays "
               "exported (send 'resume' by hand)",
               pid, request, path, strerror(-ret));
        return ret;
    }
    remember(g_resumed, &g_resumed_count, pid);
    pr_spm(SPM_LOG_INFO, "pid %d: '%s' queued on %s", pid, request, path);
    return 0;
}

static int spm_init(int stage)
{
    g_stage = stage;
    g_in_inventory = false;
    g_exported_count = 0;
    g_resumed_count = 0;
    pr_spm(SPM_LOG_INFO, "plugin loaded (stage %d)", stage);
    if (stage == CR_PLUGIN_STAGE__RESTORE) {
        /* Tells CRIU that the plugin the dump required is here (it refuses
         * the restore otherwise). Without an entry, nothing in this dump was
         * exported; the hooks still look for export records. */
        bool required =
            check_and_remove_inventory_plugin(CR_PLUGIN_DESC.name, strlen(CR_PLUGIN_DESC.name));
        pr_spm(SPM_LOG_INFO, "this dump %s the spm plugin",
               required ? "requires" : "does not need");
    }
    return 0;
}

static void spm_exit(int stage, int ret)
{
    char path[PATH_MAX], reply[SPM_CONTROL_MAX_LINE];
    if (stage == CR_PLUGIN_STAGE__DUMP) {
        /* Takes effect only if the tasks live on (the dump failed, or
         * --leave-running): then the enclave is rebuilt in place, which
         * consumes the checkpoint. Killed tasks never read it. */
        for (unsigned i = 0; i < g_exported_count; i++) {
            pid_t pid = g_exported[i];
            int r = spm_control_path_for_pid(pid, path, sizeof(path));
            if (r == 0)
                r = spm_control_request(path, "resume", NULL, 0, 0);
            if (r < 0)
                pr_spm(ret ? SPM_LOG_ERROR : SPM_LOG_INFO,
                       "pid %d: could not queue 'resume' (%s)%s", pid, strerror(-r),
                       ret ? "; its enclave stays exported: send 'resume' by hand" : "");
            else
                pr_spm(SPM_LOG_INFO, "pid %d: resume queued (dump %s)", pid,
                       ret ? "failed" : "finished");
        }
    } else if (stage == CR_PLUGIN_STAGE__RESTORE && g_resumed_count &&
               spm_control_import_deferred()) {
        /* Restored with --leave-stopped: the imports run after SIGCONT, so
         * waiting here would only time out. */
        for (unsigned i = 0; i < g_resumed_count; i++)
            pr_spm(SPM_LOG_INFO,
                   "pid %d: import deferred (%s=1): it runs when the process continues; ask "
                   "'status wait_ms=N' after SIGCONT",
                   g_resumed[i], SPM_CONTROL_DEFERRED_ENV);
    } else if (stage == CR_PLUGIN_STAGE__RESTORE) {
        for (unsigned i = 0; i < g_resumed_count; i++) {
            pid_t pid = g_resumed[i];
            int r = spm_control_path_for_pid(pid, path, sizeof(path));
            char request[48];
            snprintf(request, sizeof(request), "status wait_ms=%u", RESTORE_STATUS_WAIT_MS);
            if (r == 0)
                r = spm_control_request(path, request, reply, sizeof(reply),
                                        RESTORE_STATUS_WAIT_MS + 5000);
            if (r < 0)
                pr_spm(SPM_LOG_ERROR,
                       "pid %d: no status after its import (%s): if it exited with status %d "
                       "its checkpoint was refused",
                       pid, strerror(-r), SPM_CONTROL_EXIT_REFUSED);
            else
                pr_spm(strncmp(reply, "ok state=live", 13) == 0 ? SPM_LOG_INFO : SPM_LOG_ERROR,
                       "pid %d: after import: %s", pid, reply);
        }
    }
    g_exported_count = 0;
    g_resumed_count = 0;
}

CR_PLUGIN_REGISTER("spm", spm_init, spm_exit)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__PAUSE_DEVICES, spm_pause_devices)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESUME_DEVICES_LATE, spm_resume_devices_late)
