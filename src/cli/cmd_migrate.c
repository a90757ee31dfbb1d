/* `spm migrate` and `spm recover`: the operator's side of live migration.
 * The local spmd does the work (it holds the host's TLS identity and the
 * Migration Enclave, and must finish or settle a migration even if this
 * command is interrupted); this file sends it the request on its admin
 * socket, shows the progress lines it streams back, and prints the final
 * report as text or JSON. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "spm/abi/me_abi.h"

#define ADMIN_SUFFIX ".admin"

static void migrate_usage(FILE *out)
{
    fprintf(out,
            "usage: spm migrate PID --to HOST[:PORT] [options]\n\n"
            "Moves a running SPM process (its enclave included) to the spmd at HOST.\n"
            "The local spmd attests the destination's Migration Enclave (quote chained\n"
            "to the provisioning root, ME identity, not debug) before anything is\n"
            "dumped, dumps the process with CRIU (the enclave exports itself under a\n"
            "fresh key that stays in the local ME), sends the images over TLS, has the\n"
            "destination restore the process stopped, hands the key over ME to ME, and\n"
            "lets the destination resume it. Any failure before the hand-over puts the\n"
            "process back here; an interrupted hand-over is settled by 'spm recover'.\n\n"
            "options:\n"
            "  --to HOST[:PORT]   destination spmd (port 7786 by default)\n"
            "  --mode MODE        stop (stop-and-copy, default), post (post-copy: the\n"
            "                     process runs there while its memory follows; it must\n"
            "                     be the init of its own PID namespace, and a link or\n"
            "                     source failure during the post-copy phase loses it)\n"
            "                     or pre (pre-copy; needs soft-dirty tracking)\n"
            "  --move-ip A/P      the service address A/P moves with the process: taken\n"
            "                     down here after the dump, brought up there (gratuitous\n"
            "                     ARP) before the restore\n"
            "  --keep-images DIR  keep a copy of the images (they are spent once the\n"
            "                     migration commits; for forensics and tests)\n"
            "  --json             print the final report as one JSON object on stdout\n"
            "                     (progress goes to stderr)\n"
            "  --socket PATH      the local spmd's socket (default $%s or %s)\n"
            "  --help             this text\n",
            SPM_SPMD_SOCKET_ENV, SPM_SPMD_SOCKET_DEFAULT);
}

static void recover_usage(FILE *out)
{
    fprintf(out, "usage: spm recover [--json] [--socket PATH]\n\n"
                 "Settles every migration the local spmd did not finish (spmd or a link died\n"
                 "mid-way): before the key hand-over the process is restored here; after it\n"
                 "the destination is told to resume; in between the two Migration Enclaves\n"
                 "decide who owns the key. Run it on the source host, and on a destination\n"
                 "that holds a copy still waiting. Nothing is restored while the other host\n"
                 "cannot be reached.\n");
}

static int admin_connect(const char *socket_path)
{
    const char *base = socket_path;
    if (!base || !base[0])
        base = getenv(SPM_SPMD_SOCKET_ENV);
    if (!base || !base[0])
        base = SPM_SPMD_SOCKET_DEFAULT;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s" ADMIN_SUFFIX, base);
    if (n < 0 || (size_t)n >= sizeof(addr.sun_path)) {
        fprintf(stderr, "spm: socket path %s is too long\n", base);
        return -ENAMETOOLONG;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;
        fprintf(stderr,
                "spm: cannot reach spmd's admin socket %s: %s (is spmd running on this host, "
                "and are you root?)\n",
                addr.sun_path, strerror(err));
        close(fd);
        return -err;
    }
    return fd;
}

/* Value of key=VALUE in a line (VALUE ends at a space, or for msg= at the
 * end of the line). */
static bool field(const char *line, const char *key, char *out, size_t size)
{
    size_t key_size = strlen(key);
    for (const char *p = line; (p = strstr(p, key)); p += key_size) {
        if ((p != line && p[-1] != ' ') || p[key_size] != '=')
            continue;
        const char *v = p + key_size + 1;
        size_t len = strcmp(key, "msg") == 0 ? strlen(v) : strcspn(v, " ");
        if (len >= size)
            len = size - 1;
        memcpy(out, v, len);
        out[len] = 0;
        return true;
    }
    return false;
}

static double field_double(const char *line, const char *key)
{
    char v[64];
    return field(line, key, v, sizeof(v)) ? strtod(v, NULL) : 0.0;
}

static void print_progress(FILE *out, const char *line)
{
    char phase[32] = "", detail[256] = "";
    field(line, "phase", phase, sizeof(phase));
    if (strcmp(phase, "transfer") == 0) {
        fprintf(out, "  %-10s %8.1f / %.1f MB  %7.1f MB/s\n", phase,
                field_double(line, "bytes") / 1e6, field_double(line, "total") / 1e6,
                field_double(line, "rate_mbps"));
        return;
    }
    const char *rest = line + strlen("progress ");
    const char *after = strchr(rest, ' ');
    size_t n = after ? strlen(after + 1) : 0;
    if (n >= sizeof(detail))
        n = sizeof(detail) - 1;
    memcpy(detail, after ? after + 1 : "", n);
    detail[n] = 0;
    fprintf(out, "  %-10s %s\n", phase, detail);
}

/* The report line as JSON: numbers stay numbers, the rest are strings. */
static void print_json(const char *line)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", line + strlen("report "));
    printf("{");
    bool first = true;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *value = eq + 1;
        char *end;
        strtod(value, &end);
        bool number = value[0] && !*end && strcmp(tok, "id") != 0;
        if (strcmp(tok, "ok") == 0)
            printf("%s\"ok\": %s", first ? "" : ", ", strcmp(value, "1") == 0 ? "true" : "false");
        else if (number)
            printf("%s\"%s\": %s", first ? "" : ", ", tok, value);
        else
            printf("%s\"%s\": \"%s\"", first ? "" : ", ", tok, value);
        first = false;
    }
    printf("}\n");
}

static void print_migration_report(const char *line)
{
    char v[128];
    printf("migration report\n");
    if (field(line, "id", v, sizeof(v)))
        printf("  migration id:   %s\n", v);
    char to[128], new_pid[32];
    if (field(line, "pid", v, sizeof(v))) {
        printf("  process:        pid %s -> %s", v, field(line, "to", to, sizeof(to)) ? to : "?");
        if (field(line, "new_pid", new_pid, sizeof(new_pid)) && strcmp(new_pid, v) != 0)
            printf(" (pid %s there, init of a new PID namespace)", new_pid);
        printf("\n");
    }
    if (field(line, "mode", v, sizeof(v)))
        printf("  mode:           %s\n", strcmp(v, "post") == 0 ? "post-copy" : "stop-and-copy");
    printf("  total time:     %.1f ms\n", field_double(line, "total_ms"));
    printf("  downtime:       %.1f ms (dump start until running at the destination)\n",
           field_double(line, "downtime_ms"));
    printf("  enclave bytes:  %.0f (encrypted state inside the CRIU images)\n",
           field_double(line, "enclave_bytes"));
    printf("  CRIU bytes:     %.0f sent\n", field_double(line, "criu_bytes"));
    printf("  phases:         export %.1f ms (in dump %.1f ms), transfer %.1f ms, restore "
           "%.1f ms, key hand-over %.1f ms, resume+import %.1f ms\n",
           field_double(line, "export_ms"), field_double(line, "dump_ms"),
           field_double(line, "transfer_ms"), field_double(line, "restore_ms"),
           field_double(line, "handover_ms"), field_double(line, "resume_ms"));
    if (field(line, "mode", v, sizeof(v)) && strcmp(v, "post") == 0)
        printf("  post-copy:      %.1f ms more until the last of %.0f page bytes arrived (the "
               "process ran meanwhile)\n",
               field_double(line, "postcopy_ms"), field_double(line, "postcopy_bytes"));
}

/* Sends `request`, relays progress, returns the exit code. */
static int converse(const char *socket_path, const char *request, bool json, bool migrate)
{
    int fd = admin_connect(socket_path);
    if (fd < 0)
        return 1;
    size_t len = strlen(request);
    if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len) {
        fprintf(stderr, "spm: cannot send the request to spmd: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    FILE *in = fdopen(fd, "r");
    if (!in) {
        close(fd);
        return 1;
    }
    FILE *progress = json ? stderr : stdout;
    char line[4096];
    int code = 1;
    bool finished = false;
    while (fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "progress ", 9) == 0) {
            print_progress(progress, line);
            fflush(progress);
        } else if (strncmp(line, "recovered ", 10) == 0 || strncmp(line, "pending ", 8) == 0) {
            fprintf(progress, "  %s\n", line);
        } else if (strncmp(line, "report ", 7) == 0) {
            finished = true;
            code = strstr(line, "ok=1") ? 0 : 1;
            if (json)
                print_json(line);
            else if (migrate)
                print_migration_report(line);
            else
                printf("recovery: %s\n", line + 7);
        } else if (strncmp(line, "error ", 6) == 0) {
            finished = true;
            char msg[2048] = "";
            field(line, "msg", msg, sizeof(msg));
            fprintf(stderr, "spm %s: %s\n", migrate ? "migrate" : "recover", msg);
            if (json) {
                char status[32] = "0";
                field(line, "status", status, sizeof(status));
                printf("{\"ok\": false, \"status\": %s, \"error\": \"", status);
                for (const char *p = msg; *p; p++)
                    printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
                printf("\"}\n");
            }
        }
    }
    fclose(in);
    if (!finished)
        fprintf(stderr, "spm: spmd closed the connection before the end: the migration continues "
                        "or stopped there; 'spm recover' settles anything left unfinished\n");
    return code;
}

int spm_cmd_migrate(int argc, char **argv)
{
    const char *to = NULL, *mode = "stop", *ip = NULL, *keep = NULL, *socket_path = NULL;
    bool json = false;
    long pid = 0;
    for (int i = 1; i < argc; i++) {
        const char *value;
        int r;
        if (spm_cli_is_help(argv[i], false)) {
            migrate_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if ((r = spm_cli_option_value(argc, argv, &i, "--to", &value)) != 0) {
            if (r < 0)
                goto needs_value;
            to = value;
        } else if ((r = spm_cli_option_value(argc, argv, &i, "--mode", &value)) != 0) {
            if (r < 0)
                goto needs_value;
            mode = value;
        } else if ((r = spm_cli_option_value(argc, argv, &i, "--move-ip", &value)) != 0) {
            if (r < 0)
                goto needs_value;
            ip = value;
        } else if ((r = spm_cli_option_value(argc, argv, &i, "--keep-images", &value)) != 0) {
            if (r < 0)
                goto needs_value;
            keep = value;
        } else if ((r = spm_cli_option_value(argc, argv, &i, "--socket", &value)) != 0) {
            if (r < 0)
                goto needs_value;
            socket_path = value;
        } else if (argv[i][0] != '-' && pid == 0) {
            char *end;
            pid = strtol(argv[i], &end, 10);
            if (*end || pid <= 0 || pid > INT_MAX) {
                fprintf(stderr, "spm migrate: '%s' is not a process id\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "spm migrate: unexpected argument '%s'\n\n", argv[i]);
            migrate_usage(stderr);
            return 2;
        }
        continue;
    needs_value:
        fprintf(stderr, "spm migrate: option '%s' needs a value\n", argv[i]);
        return 2;
    }
    if (!pid || !to) {
        fprintf(stderr, "spm migrate: %s is required\n\n", !pid ? "PID" : "--to HOST[:PORT]");
        migrate_usage(stderr);
        return 2;
    }
    if (strcmp(mode, "stop") != 0 && strcmp(mode, "post") != 0 && strcmp(mode, "pre") != 0) {
        fprintf(stderr, "spm migrate: --mode is stop, post or pre, not '%s'\n", mode);
        return 2;
    }
    if (strchr(to, ' ') || (ip && (strchr(ip, ' ') || !strchr(ip, '/'))) ||
        (keep && strchr(keep, ' '))) {
        fprintf(stderr, "spm migrate: --to, --move-ip (ADDRESS/PREFIX) and --keep-images "
                        "take values without spaces\n");
        return 2;
    }
    char keep_abs[PATH_MAX] = "";
    if (keep && !realpath(keep, keep_abs) && snprintf(keep_abs, sizeof(keep_abs), "%s", keep) < 0)
        return 1;
    char request[1024];
    snprintf(request, sizeof(request), "migrate pid=%ld to=%s mode=%s%s%s%s%s\n", pid, to, mode,
             ip ? " ip=" : "", ip ? ip : "", keep ? " keep=" : "", keep ? keep_abs : "");
    return converse(socket_path, request, json, true);
}

int spm_cmd_recover(int argc, char **argv)
{
    bool json = false;
    const char *socket_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *value;
        int r;
        if (spm_cli_is_help(argv[i], false)) {
            recover_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if ((r = spm_cli_option_value(argc, argv, &i, "--socket", &value)) != 0) {
            if (r < 0) {
                fprintf(stderr, "spm recover: --socket needs a path\n");
                return 2;
            }
            socket_path = value;
        } else {
            fprintf(stderr, "spm recover: unexpected argument '%s'\n\n", argv[i]);
            recover_usage(stderr);
            return 2;
        }
    }
    return converse(socket_path, "recover\n", json, false);
}
