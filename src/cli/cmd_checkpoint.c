/* `spm checkpoint`: dumps an SPM process with CRIU and reports what its
 * enclave cost. CRIU does the work; the spm plugin exports the enclave
 * before CRIU freezes the process (the export's bound and threads reach it
 * through the environment). This command only builds the criu command
 * line, records what `spm restore` must repeat, and reads back the
 * plugin's export records for the report. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "criu_util.h"
#include "host/common/fileio.h"
#include "host/control/control.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spm checkpoint PID -D DIR [--leave-running] [--threads N] [--timeout MS]\n"
            "                      [-- CRIU-ARGS...]\n\n"
            "Checkpoints process PID (and its children) into DIR with CRIU. Before CRIU\n"
            "freezes it, the spm CRIU plugin has each enclave of an SPM process export\n"
            "itself: new ecalls wait, the state is encrypted in the enclave, its key goes\n"
            "into escrow with the local Migration Enclave (spmd), ELRANGE is unmapped.\n"
            "Nothing in DIR is readable without that key, released once, to the same\n"
            "enclave. Runs: criu dump -t PID -D DIR -o dump.log --tcp-established\n"
            "--network-lock nftables (plus --shell-job when PID is not a session leader\n"
            "or has a terminal).\n\n"
            "options:\n"
            "  -D, --dir DIR     image directory (created if missing)\n"
            "  --leave-running   the process keeps running after the dump: its enclave is\n"
            "                    rebuilt in place, which consumes the checkpoint, so the\n"
            "                    images written are spent and cannot be restored (a\n"
            "                    checkpoint resumes exactly once)\n"
            "  --threads N       threads encrypting the enclave (default: online CPUs,\n"
            "                    capped by the enclave's idle TCSs)\n"
            "  --timeout MS      how long to wait for threads to leave the enclave before\n"
            "                    giving up, the process running on (default %u)\n"
            "  -- CRIU-ARGS      passed to criu dump as they are\n"
            "  --help            show this text\n\n"
            "The report names each enclave's checkpoint as the Migration Enclave escrowed\n"
            "its key: 'checkpoint ref: pid P enclave I LINEAGE:GENERATION:ID:HEADER_DIGEST'.\n\n"
            "environment: %s (criu binary), %s (directory holding %s; default %s)\n"
            "backend: sim (software SGX platform; protects nothing against local root)\n",
            SPM_CONTROL_DEFAULT_TIMEOUT_MS, SPM_CLI_CRIU_ENV, SPM_CLI_PLUGIN_DIR_ENV,
            SPM_CLI_PLUGIN_NAME, SPM_CLI_PLUGIN_DEFAULT);
}

static int parse_unsigned(const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || s[0] == '-' || v == 0 || v > max)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* CRIU wants --shell-job for a task whose session or terminal lies
 * outside the dumped tree. */
static bool needs_shell_job(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* comm may hold spaces */
    char state;
    int ppid, pgrp, session, tty;
    if (!p || sscanf(p + 1, " %c %d %d %d %d", &state, &ppid, &pgrp, &session, &tty) != 5)
        return false;
    return session != pid || tty != 0;
}

static void report_failure(const char *dir, int status, pid_t pid, bool exported)
{
    fprintf(stderr, "spm checkpoint: criu dump failed (exit status %d); see %s/dump.log\n", status,
            dir);
    char log[PATH_MAX];
    snprintf(log, sizeof(log), "%s/dump.log", dir);
    spm_cli_print_log_errors(log, 12);
    if (!exported)
        return;
    /* The plugin queued "resume" at exit(DUMP); ask the process how that
     * went (this also sends one more "resume" in case the plugin's was
     * lost: a no-op for a live enclave). */
    char path[PATH_MAX], reply[SPM_CONTROL_MAX_LINE];
    if (spm_control_path_for_pid(pid, path, sizeof(path)) < 0)
        return;
    if (spm_control_request(path, "resume", reply, sizeof(reply), 60000) == 0 &&
        spm_control_request(path, "status wait_ms=60000", reply, sizeof(reply), 65000) == 0)
        fprintf(stderr, "spm checkpoint: pid %d after the failed dump: %s\n", (int)pid, reply);
    else
        fprintf(stderr, "spm checkpoint: pid %d does not answer on %s\n", (int)pid, path);
}

int spm_cmd_checkpoint(int argc, char **argv)
{
    const char *dir = NULL, *value;
    bool leave_running = false;
    unsigned threads = 0, timeout_ms = SPM_CONTROL_DEFAULT_TIMEOUT_MS;
    long pid_arg = 0;
    int extra = argc; /* index of the first argument after "--" */
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
        if (strcmp(argv[i], "--leave-running") == 0) {
            leave_running = true;
        } else if ((r = spm_cli_option_value(argc, argv, &i, "-D", &value)) != 0 ||
                   (r = spm_cli_option_value(argc, argv, &i, "--dir", &value)) != 0 ||
                   (r = spm_cli_option_value(argc, argv, &i, "--images-dir", &value)) != 0) {
            if (r < 0) {
                fprintf(stderr, "spm checkpoint: -D wants a directory\n");
                return 2;
            }
            dir = value;
        } else if ((r = spm_cli_option_value(argc, argv, &i, "--threads", &value)) != 0) {
            if (r < 0 || parse_unsigned(value, SPM_CONTROL_MAX_THREADS, &threads) < 0) {
                fprintf(stderr, "spm checkpoint: --threads wants 1..%u\n", SPM_CONTROL_MAX_THREADS);
                return 2;
            }
        } else if ((r = spm_cli_option_value(argc, argv, &i, "--timeout", &value)) != 0) {
            if (r < 0 || parse_unsigned(value, SPM_CONTROL_MAX_MS, &timeout_ms) < 0) {
                fprintf(stderr, "spm checkpoint: --timeout wants 1..%u milliseconds\n",
                        SPM_CONTROL_MAX_MS);
                return 2;
            }
        } else if (argv[i][0] != '-' && pid_arg == 0) {
            char *end;
            pid_arg = strtol(argv[i], &end, 10);
            if (*end || pid_arg <= 0 || pid_arg > INT_MAX) {
                fprintf(stderr, "spm checkpoint: '%s' is not a process id\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "spm checkpoint: unexpected argument '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!pid_arg || !dir) {
        fprintf(stderr, "spm checkpoint: %s is required\n\n", !pid_arg ? "PID" : "-D DIR");
        usage(stderr);
        return 2;
    }
    pid_t pid = (pid_t)pid_arg;
    if (kill(pid, 0) < 0 && errno == ESRCH) {
        fprintf(stderr, "spm checkpoint: no process %d\n", (int)pid);
        return 1;
    }
    char path[PATH_MAX];
    struct stat st;
    bool spm_process = spm_control_path_for_pid(pid, path, sizeof(path)) == 0 &&
                       stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
    int ret = spm_mkdir_p(dir, 0700);
    if (ret < 0) {
        fprintf(stderr, "spm checkpoint: cannot create %s: %s\n", dir, strerror(-ret));
        return 1;
    }
    bool shell_job = needs_shell_job(pid);

    struct spm_cli_argv a = {0};
    char pid_text[16], criu_timeout[16], number[16];
    snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
    /* CRIU's own --timeout (seconds) bounds the whole freeze, the export
     * included: leave it room beyond the export's bound. */
    snprintf(criu_timeout, sizeof(criu_timeout), "%u", timeout_ms / 1000 + 60);
    const char *fixed[] = {"dump",
                           "-t",
                           pid_text,
                           "-D",
                           dir,
                           "-o",
                           "dump.log",
                           "--tcp-established",
                           "--network-lock",
                           "nftables",
                           "--timeout",
                           criu_timeout};
    ret = spm_cli_argv_criu(&a);
    for (size_t i = 0; ret == 0 && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        ret = spm_cli_argv_add(&a, fixed[i]);
    if (ret == 0 && leave_running)
        ret = spm_cli_argv_add(&a, "--leave-running");
    if (ret == 0 && shell_job)
        ret = spm_cli_argv_add(&a, "--shell-job");
    if (ret == 0) {
        ret = spm_cli_argv_plugin(&a, "spm checkpoint");
        if (ret == -ENOENT) {
            spm_cli_argv_free(&a);
            return 1;
        }
    }
    for (int i = extra; ret == 0 && i < argc; i++)
        ret = spm_cli_argv_add(&a, argv[i]);
    if (ret < 0) {
        fprintf(stderr, "spm checkpoint: %s\n", strerror(-ret));
        spm_cli_argv_free(&a);
        return 1;
    }
    snprintf(number, sizeof(number), "%u", timeout_ms);
    setenv(SPM_CONTROL_TIMEOUT_ENV, number, 1);
    if (threads) {
        snprintf(number, sizeof(number), "%u", threads);
        setenv(SPM_CONTROL_THREADS_ENV, number, 1);
    } else {
        unsetenv(SPM_CONTROL_THREADS_ENV);
    }
    /* Earlier records would be mistaken for this dump's. */
    struct spm_cli_export *old = NULL;
    size_t old_count = 0;
    if (spm_cli_read_exports(dir, &old, &old_count) == 0) {
        for (size_t i = 0; i < old_count; i++) {
            char name[PATH_MAX];
            snprintf(name, sizeof(name),
                     "%s/" SPM_CONTROL_EXPORT_FILE_PREFIX "%d" SPM_CONTROL_EXPORT_FILE_SUFFIX, dir,
                     (int)old[i].pid);
            unlink(name);
        }
        free(old);
    }
    char record[PATH_MAX];
    snprintf(record, sizeof(record), "%s/%s", dir, SPM_CLI_CHECKPOINT_FILE);
    FILE *f = fopen(record, "we");
    if (f) {
        fprintf(f, "shell_job=%d\nleave_running=%d\n", shell_job, leave_running);
        fclose(f);
    }

    printf("backend: sim\n");
    if (!spm_process)
        printf("note: pid %d has no SPM control socket (%s); it is dumped as a plain process\n",
               (int)pid, path);
    uint64_t start = spm_cli_now_us(), criu_us = 0;
    int status = 0;
    ret = spm_cli_run(&a, &status, &criu_us);
    spm_cli_argv_free(&a);
    if (ret < 0) {
        fprintf(stderr, "spm checkpoint: cannot run criu: %s\n", strerror(-ret));
        return 1;
    }
    struct spm_cli_export *exports = NULL;
    size_t count = 0;
    if (spm_cli_read_exports(dir, &exports, &count) < 0)
        count = 0;
    if (status != 0) {
        report_failure(dir, status, pid, count > 0 || spm_process);
        free(exports);
        return 1;
    }
    uint64_t total_us = spm_cli_now_us() - start;
    uint64_t bytes = 0, chunks = 0, export_us = 0, max_threads = 0, enclaves = 0;
    for (size_t i = 0; i < count; i++) {
        enclaves += spm_cli_reply_u64(exports[i].reply, "enclaves");
        bytes += spm_cli_reply_u64(exports[i].reply, "bytes");
        chunks += spm_cli_reply_u64(exports[i].reply, "chunks");
        export_us += spm_cli_reply_u64(exports[i].reply, "export_us");
        unsigned long long t = spm_cli_reply_u64(exports[i].reply, "threads");
        if (t > max_threads)
            max_threads = t;
    }
    printf("checkpoint: pid %d -> %s\n", (int)pid, dir);
    printf("  processes exported: %zu (enclaves: %llu)\n", count, (unsigned long long)enclaves);
    printf("  enclave bytes:      %llu in %llu chunks, %llu threads\n", (unsigned long long)bytes,
           (unsigned long long)chunks, (unsigned long long)max_threads);
    /* Which checkpoint each enclave's key was escrowed under: what a
     * migration names to the source ME. */
    for (size_t i = 0; i < count; i++) {
        struct spm_me_checkpoint_ref refs[SPM_CONTROL_MAX_LINE / SPM_CONTROL_REF_MAX_TEXT];
        size_t ref_count = 0;
        int r = spm_control_parse_refs(exports[i].reply, refs, sizeof(refs) / sizeof(refs[0]),
                                       &ref_count);
        if (r < 0) {
            printf("  checkpoint refs:    pid %d: none recorded (%s)\n", (int)exports[i].pid,
                   r == -ENOENT ? "exported by an older spm" : "malformed record");
            continue;
        }
        for (size_t j = 0; j < ref_count; j++) {
            char text[SPM_CONTROL_REF_MAX_TEXT + 1];
            if (spm_control_format_ref(&refs[j], text, sizeof(text)) == 0)
                printf("  checkpoint ref:     pid %d enclave %zu %s\n", (int)exports[i].pid, j,
                       text);
        }
    }
    printf("  export time:        %.3f ms\n", export_us / 1000.0);
    printf("  criu dump time:     %.3f ms (includes the export)\n", criu_us / 1000.0);
    printf("  total:              %.3f ms\n", total_us / 1000.0);
    int exit_code = 0;
    if (leave_running) {
        printf("the process keeps running: its enclave was rebuilt in place, so the images in\n"
               "%s are spent and cannot be restored\n",
               dir);
        /* The plugin queued "resume" at exit(DUMP); status is answered after it. */
        for (size_t i = 0; i < count; i++) {
            char reply[SPM_CONTROL_MAX_LINE];
            int r = spm_control_path_for_pid(exports[i].pid, path, sizeof(path));
            if (r == 0)
                r = spm_control_request(path, "status wait_ms=60000", reply, sizeof(reply), 65000);
            if (r == 0 && strncmp(reply, "ok state=live", 13) == 0) {
                printf("  pid %d: enclave running again (import %.3f ms)\n", (int)exports[i].pid,
                       spm_cli_reply_u64(reply, "import_us") / 1000.0);
            } else {
                fprintf(stderr, "spm checkpoint: pid %d did not resume: %s\n", (int)exports[i].pid,
                        r == 0 ? reply : strerror(-r));
                exit_code = 1;
            }
        }
    }
    free(exports);
    return exit_code;
}
