/* `spm criu-action`: the action-script fallback for CRIU callers that
 * cannot load plugins. CRIU execs a script by path without arguments, so it
 * is installed as the link spm-criu-action (main.c dispatches on the name):
 * criu --action-script /usr/local/bin/spm-criu-action. CRIU runs it at
 * fixed points with CRTOOLS_SCRIPT_ACTION, CRTOOLS_INIT_PID and
 * CRTOOLS_IMAGE_DIR set (criu/action-scripts.c):
 *   pre-dump        tree still running: export the root process's enclaves;
 *                   a non-zero exit aborts the dump, and the process runs on;
 *   post-dump       dump written, tasks frozen: queue "resume", which only
 *                   takes effect if they live on (--leave-running);
 *   network-unlock  after a failed dump (and at restore), but only for a
 *                   tree in its own network namespace: queue "resume";
 *   post-restore    tasks restored, not yet running: queue "resume" naming
 *                   this host's platform and spmd (SPM_PLATFORM,
 *                   SPM_SPMD_SOCKET from CRIU's environment, as the plugin);
 *   post-resume     tasks running: wait for the import and report it, unless
 *                   SPM_IMPORT_DEFERRED=1 (restored --leave-stopped: the
 *                   import runs after SIGCONT and the caller asks).
 * Limits, compared with the plugin: only CRTOOLS_INIT_PID (the root of the
 * tree) is handled; when a dump fails in the host's network namespace no
 * action runs afterwards, so the process stays exported until someone sends
 * "resume" (spm checkpoint does); the dump's inventory does not require
 * SPM at restore, so a restore without this script leaves the enclave
 * exported and its ecalls waiting; CRIU ignores post-resume's exit code. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "criu_util.h"
#include "host/control/control.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: criu dump|restore ... --action-script /PATH/TO/spm-criu-action\n\n"
            "CRIU action script that exports the enclaves of the dumped tree's root\n"
            "process at pre-dump and imports them again at post-restore, for CRIU callers\n"
            "that cannot load the spm plugin (%s, the preferred way); spm-criu-action\n"
            "is a link to spm (CRIU runs scripts by path, without arguments). Reads\n"
            "CRTOOLS_SCRIPT_ACTION, CRTOOLS_INIT_PID and CRTOOLS_IMAGE_DIR from CRIU.\n"
            "Honours %s and %s like the plugin.\n\n"
            "  pre-dump        export (a refusal exits 1: CRIU aborts, the process runs on)\n"
            "  post-dump       queue 'resume' (effective only with --leave-running)\n"
            "  network-unlock  queue 'resume' (a failed dump, but only in a private netns)\n"
            "  post-restore    queue 'resume platform=.. spmd=..' from SPM_PLATFORM and\n"
            "                  SPM_SPMD_SOCKET (the import runs as the process resumes)\n"
            "  post-resume     wait for the import and report it (exit code ignored);\n"
            "                  skipped with %s=1 (criu restore --leave-stopped)\n\n"
            "Limits compared with the plugin: only the tree's root process is handled;\n"
            "when a dump fails in the host's network namespace no action runs afterwards,\n"
            "so the process stays exported (its ecalls wait) until 'resume' is sent to its\n"
            "control socket (spm checkpoint does that); the dump does not record that it\n"
            "needs SPM, so a restore without this script leaves the enclave exported.\n",
            SPM_CLI_PLUGIN_NAME, SPM_CONTROL_TIMEOUT_ENV, SPM_CONTROL_THREADS_ENV,
            SPM_CONTROL_DEFERRED_ENV);
}

static bool export_recorded(const char *image_dir, pid_t pid)
{
    pid_t ns_pid;
    if (spm_control_ns_pid(pid, &ns_pid) < 0)
        return false;
    char path[PATH_MAX];
    snprintf(path, sizeof(path),
             "%s/" SPM_CONTROL_EXPORT_FILE_PREFIX "%d" SPM_CONTROL_EXPORT_FILE_SUFFIX, image_dir,
             (int)ns_pid);
    return access(path, F_OK) == 0;
}

static int pre_dump(pid_t pid, const char *socket, const char *image_dir)
{
    char request[96], reply[SPM_CONTROL_MAX_LINE];
    const char *ignored[2]; /* defaults apply; nothing to add to CRIU's log here */
    unsigned reply_ms = spm_control_export_request(request, sizeof(request), ignored);
    int ret = spm_control_request(socket, request, reply, sizeof(reply), reply_ms);
    if (ret == -ECONNREFUSED || ret == -ENOENT)
        return 0; /* a stale socket file: not an SPM process */
    if (ret < 0) {
        fprintf(stderr, "spm criu-action: pid %d: export request failed: %s; aborting the dump\n",
                (int)pid, strerror(-ret));
        (void)!spm_control_request(socket, "resume", NULL, 0, 0);
        return 1;
    }
    if (strncmp(reply, "ok", 2) != 0) {
        fprintf(stderr, "spm criu-action: pid %d refused the export: %s; aborting the dump\n",
                (int)pid, reply);
        return 1;
    }
    if ((ret = spm_cli_write_export(image_dir, pid, reply)) < 0) {
        fprintf(stderr, "spm criu-action: cannot record the export in %s: %s\n", image_dir,
                strerror(-ret));
        (void)!spm_control_request(socket, "resume", NULL, 0, 0);
        return 1;
    }
    return 0;
}

int spm_cmd_criu_action(int argc, char **argv)
{
    if (argc > 1 && spm_cli_is_help(argv[1], true)) {
        usage(stdout);
        return 0;
    }
    const char *action = getenv("CRTOOLS_SCRIPT_ACTION");
    const char *pid_text = getenv("CRTOOLS_INIT_PID");
    const char *image_dir = getenv("CRTOOLS_IMAGE_DIR");
    if (!action) {
        fprintf(stderr, "spm criu-action: CRTOOLS_SCRIPT_ACTION is not set: run me as a CRIU "
                        "action script\n\n");
        usage(stderr);
        return 2;
    }
    if (!pid_text || !image_dir)
        return 0; /* actions that concern no task tree */
    char *end;
    long pid_value = strtol(pid_text, &end, 10);
    if (*end || pid_value <= 0 || pid_value > INT_MAX)
        return 0;
    pid_t pid = (pid_t)pid_value;
    char socket[PATH_MAX];
    struct stat st;
    if (spm_control_path_for_pid(pid, socket, sizeof(socket)) < 0 || stat(socket, &st) < 0 ||
        !S_ISSOCK(st.st_mode))
        return 0; /* not an SPM process */
    if (strcmp(action, "pre-dump") == 0)
        return pre_dump(pid, socket, image_dir);
    if (strcmp(action, "post-restore") == 0 && export_recorded(image_dir, pid)) {
        /* Restored, maybe on another host than the dump's: the request names
         * this one, and a value that cannot be sent is not silently
         * replaced by the process's own (the source host's). */
        char request[SPM_CONTROL_MAX_LINE];
        const char *bad;
        int ret = spm_control_resume_request(request, sizeof(request), &bad);
        if (ret < 0) {
            fprintf(stderr,
                    "spm criu-action: post-restore: %s cannot be sent to pid %d (%s: want an "
                    "absolute path without control characters); aborting the restore, nothing "
                    "was consumed\n",
                    bad ? bad : "a variable", (int)pid, strerror(-ret));
            return 1; /* aborts the restore: nothing was consumed */
        }
        ret = spm_control_request(socket, request, NULL, 0, 0);
        if (ret < 0)
            fprintf(stderr, "spm criu-action: post-restore: cannot queue '%s' for pid %d: %s\n",
                    request, (int)pid, strerror(-ret));
        return 0;
    }
    bool resume = strcmp(action, "post-dump") == 0 || strcmp(action, "network-unlock") == 0;
    if (resume && export_recorded(image_dir, pid)) {
        int ret = spm_control_request(socket, "resume", NULL, 0, 0);
        if (ret < 0)
            fprintf(stderr, "spm criu-action: %s: cannot queue 'resume' for pid %d: %s\n", action,
                    (int)pid, strerror(-ret));
        return 0; /* a failure here must not fail a dump that succeeded */
    }
    if (strcmp(action, "post-resume") == 0 && export_recorded(image_dir, pid) &&
        spm_control_import_deferred())
        return 0; /* stopped (--leave-stopped): the caller checks after SIGCONT */
    if (strcmp(action, "post-resume") == 0 && export_recorded(image_dir, pid)) {
        char reply[SPM_CONTROL_MAX_LINE];
        int ret = spm_control_request(socket, "status wait_ms=60000", reply, sizeof(reply), 65000);
        if (ret < 0 || strncmp(reply, "ok state=live", 13) != 0)
            fprintf(stderr, "spm criu-action: pid %d's enclave did not come back: %s\n", (int)pid,
                    ret < 0 ? strerror(-ret) : reply);
        return 0;
    }
    return 0;
}
