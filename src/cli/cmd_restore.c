/* `spm restore`: restores a checkpoint written by `spm checkpoint` (or by
 * any CRIU caller with the spm plugin) and reports whether each enclave
 * came back. CRIU restores the processes detached; the plugin queues each
 * import before the processes run. Because CRIU ignores that hook's result,
 * this command asks every restored SPM process afterwards, and tells a
 * refusal (the process exited with SPM_CONTROL_EXIT_REFUSED) from a
 * transient failure. It makes itself the restored processes' subreaper so
 * that it can see such an exit status. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "criu_util.h"
#include "host/control/control.h"

#define STATUS_WAIT_MS 60000u

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spm restore -D DIR [-- CRIU-ARGS...]\n\n"
            "Restores the processes checkpointed in DIR with CRIU (detached), then waits\n"
            "until every SPM process among them has rebuilt its enclave: the enclave is\n"
            "created again at the same address, proves its identity to the local\n"
            "Migration Enclave (spmd), receives the checkpoint's key once, verifies and\n"
            "decrypts its state. A checkpoint resumes exactly once: restoring the same\n"
            "images a second time is refused and that process exits with status %d.\n"
            "Runs: criu restore -d -D DIR -o restore.log --tcp-established\n"
            "--network-lock nftables (plus --shell-job if the checkpoint needed it).\n\n"
            "options:\n"
            "  -D, --dir DIR   image directory written by 'spm checkpoint'\n"
            "  -- CRIU-ARGS    passed to criu restore as they are\n"
            "  --help          show this text\n\n"
            "environment: %s (criu binary), %s (directory holding %s; default %s)\n"
            "backend: sim (software SGX platform; protects nothing against local root)\n",
            SPM_CONTROL_EXIT_REFUSED, SPM_CLI_CRIU_ENV, SPM_CLI_PLUGIN_DIR_ENV, SPM_CLI_PLUGIN_NAME,
            SPM_CLI_PLUGIN_DEFAULT);
}

/* The checkpoint's recorded options (absent for other CRIU callers). */
static bool recorded_shell_job(const char *dir)
{
    char path[PATH_MAX], line[128];
    snprintf(path, sizeof(path), "%s/%s", dir, SPM_CLI_CHECKPOINT_FILE);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool shell_job = false;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "shell_job=1", 11) == 0)
            shell_job = true;
    fclose(f);
    return shell_job;
}

/* Whether `pid` (our child since CRIU exited: we are its subreaper) has
 * exited, and with what status. */
static bool exited(pid_t pid, int *status, unsigned wait_ms)
{
    for (unsigned waited = 0;; waited += 10) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return true;
        }
        if (r < 0 || waited >= wait_ms)
            return false;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Asks one restored process how its import went; prints, returns 0 when
 * its enclaves run. */
static int check_process(const struct spm_cli_export *x, uint64_t *bytes, uint64_t *import_us)
{
    char path[PATH_MAX], reply[SPM_CONTROL_MAX_LINE];
    char request[48];
    snprintf(request, sizeof(request), "status wait_ms=%u", STATUS_WAIT_MS);
    int ret = spm_control_path_for_pid(x->pid, path, sizeof(path));
    if (ret == 0)
        ret = spm_control_request(path, request, reply, sizeof(reply), STATUS_WAIT_MS + 5000);
    if (ret == 0 && strncmp(reply, "ok state=live", 13) == 0) {
        *bytes += spm_cli_reply_u64(reply, "bytes");
        *import_us += spm_cli_reply_u64(reply, "import_us");
        return 0;
    }
    int status;
    if (exited(x->pid, &status, ret == 0 ? 0 : 1000)) {
        if (status == SPM_CONTROL_EXIT_REFUSED)
            fprintf(stderr,
                    "spm restore: pid %d exited with status %d: its enclave refused this "
                    "checkpoint for good (already resumed, superseded by a newer checkpoint, "
                    "altered, or another enclave's); the images are untouched, see its stderr "
                    "for the reason\n",
                    (int)x->pid, status);
        else
            fprintf(stderr, "spm restore: pid %d exited with status %d before its enclave ran\n",
                    (int)x->pid, status);
        return -1;
    }
    if (ret < 0 && kill(x->pid, 0) < 0 && errno == ESRCH) {
        /* Gone before criu exited (criu reaped it): the status is lost. */
        fprintf(stderr,
                "spm restore: pid %d exited while it was being restored; if with status %d, its "
                "enclave refused this checkpoint for good (see its stderr and %s)\n",
                (int)x->pid, SPM_CONTROL_EXIT_REFUSED, "restore.log");
        return -1;
    }
    if (ret < 0) {
        fprintf(stderr, "spm restore: pid %d does not answer on %s (%s)\n", (int)x->pid, path,
                strerror(-ret));
        return -1;
    }
    char msg[SPM_CONTROL_MAX_LINE];
    if (spm_control_reply_value(reply, "msg", msg, sizeof(msg)) < 0)
        snprintf(msg, sizeof(msg), "%s", reply);
    fprintf(stderr,
            "spm restore: pid %d runs but its enclave did not come back: %s (fix the cause, "
            "e.g. start spmd, then send 'resume' to %s)\n",
            (int)x->pid, msg, path);
    return -1;
}

int spm_cmd_restore(int argc, char **argv)
{
    const char *dir = NULL, *value;
    int extra = argc;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--") == 0) {
            extra = i + 1;
            break;
        }
        if (spm_cli_is_help(argv[i], false)) {
            usage(stdout);
            return 0;
        }
        if ((r = spm_cli_option_value(argc, argv, &i, "-D", &value)) != 0 ||
            (r = spm_cli_option_value(argc, argv, &i, "--dir", &value)) != 0 ||
            (r = spm_cli_option_value(argc, argv, &i, "--images-dir", &value)) != 0) {
            if (r < 0) {
                fprintf(stderr, "spm restore: -D wants a directory\n");
                return 2;
            }
            dir = value;
        } else {
            fprintf(stderr, "spm restore: unexpected argument '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "spm restore: -D DIR is required\n\n");
        usage(stderr);
        return 2;
    }
    struct spm_cli_export *exports = NULL;
    size_t count = 0;
    int ret = spm_cli_read_exports(dir, &exports, &count);
    if (ret < 0) {
        fprintf(stderr, "spm restore: cannot read %s: %s\n", dir, strerror(-ret));
        return 1;
    }
    struct spm_cli_argv a = {0};
    const char *fixed[] = {
        "restore",        "-d",      "-D", dir, "-o", "restore.log", "--tcp-established",
        "--network-lock", "nftables"};
    ret = spm_cli_argv_criu(&a);
    for (size_t i = 0; ret == 0 && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        ret = spm_cli_argv_add(&a, fixed[i]);
    if (ret == 0 && recorded_shell_job(dir))
        ret = spm_cli_argv_add(&a, "--shell-job");
    if (ret == 0) {
        ret = spm_cli_argv_plugin(&a, "spm restore");
        if (ret == -ENOENT) {
            spm_cli_argv_free(&a);
            free(exports);
            return 1;
        }
    }
    for (int i = extra; ret == 0 && i < argc; i++)
        ret = spm_cli_argv_add(&a, argv[i]);
    if (ret < 0) {
        fprintf(stderr, "spm restore: %s\n", strerror(-ret));
        spm_cli_argv_free(&a);
        free(exports);
        return 1;
    }
    /* Restored processes are reparented to us when criu exits, so a refusal
     * (exit status 75) can be told from a crash. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        fprintf(stderr,
                "spm restore: cannot become a subreaper (%s); exit statuses of "
                "restored processes will not be reported\n",
                strerror(errno));
    printf("backend: sim\n");
    uint64_t start = spm_cli_now_us(), criu_us = 0;
    int status = 0;
    ret = spm_cli_run(&a, &status, &criu_us);
    spm_cli_argv_free(&a);
    if (ret < 0) {
        fprintf(stderr, "spm restore: cannot run criu: %s\n", strerror(-ret));
        free(exports);
        return 1;
    }
    if (status != 0) {
        char log[PATH_MAX];
        snprintf(log, sizeof(log), "%s/restore.log", dir);
        fprintf(stderr, "spm restore: criu restore failed (exit status %d); see %s\n", status, log);
        spm_cli_print_log_errors(log, 12);
        free(exports);
        return 1;
    }
    int failures = 0;
    uint64_t bytes = 0, import_us = 0;
    for (size_t i = 0; i < count; i++)
        if (check_process(&exports[i], &bytes, &import_us) < 0)
            failures++;
    uint64_t total_us = spm_cli_now_us() - start;
    printf("restore: %s\n", dir);
    printf("  processes:          %zu with enclaves, %zu running again\n", count,
           count - (size_t)failures);
    printf("  enclave bytes:      %llu\n", (unsigned long long)bytes);
    printf("  import time:        %.3f ms\n", import_us / 1000.0);
    printf("  criu restore time:  %.3f ms (includes the import: the plugin waits for it)\n",
           criu_us / 1000.0);
    printf("  total:              %.3f ms\n", total_us / 1000.0);
    free(exports);
    if (failures) {
        fprintf(stderr, "spm restore: %d process(es) did not get their enclave back\n", failures);
        return 1;
    }
    return 0;
}
