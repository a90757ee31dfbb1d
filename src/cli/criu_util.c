/* Running CRIU for spm's checkpoint/restore commands and reading what the
 * spm plugin left in the image directory. Only the CLI prints. */
#include "criu_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/control/control.h"

int spm_cli_argv_add(struct spm_cli_argv *a, const char *arg)
{
    if (a->count + 2 > a->capacity) {
        size_t capacity = a->capacity ? a->capacity * 2 : 32;
        char **grown = realloc(a->argv, capacity * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        a->argv = grown;
        a->capacity = capacity;
    }
    char *copy = strdup(arg);
    if (!copy)
        return -ENOMEM;
    a->argv[a->count++] = copy;
    a->argv[a->count] = NULL;
    return 0;
}

void spm_cli_argv_free(struct spm_cli_argv *a)
{
    for (size_t i = 0; i < a->count; i++)
        free(a->argv[i]);
    free(a->argv);
    memset(a, 0, sizeof(*a));
}

int spm_cli_argv_criu(struct spm_cli_argv *a)
{
    const char *criu = getenv(SPM_CLI_CRIU_ENV);
    return spm_cli_argv_add(a, criu && criu[0] ? criu : "criu");
}

int spm_cli_argv_plugin(struct spm_cli_argv *a, const char *command)
{
    const char *dir = getenv(SPM_CLI_PLUGIN_DIR_ENV);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : SPM_CLI_PLUGIN_DEFAULT,
             SPM_CLI_PLUGIN_NAME);
    if (access(path, R_OK) < 0) {
        fprintf(stderr,
                "%s: the spm CRIU plugin is not at %s: install it (scripts/build.sh, or meson "
                "install) or set %s to the directory holding %s\n",
                command, path, SPM_CLI_PLUGIN_DIR_ENV, SPM_CLI_PLUGIN_NAME);
        return -ENOENT;
    }
    if (!dir || !dir[0])
        return 0;
    int ret = spm_cli_argv_add(a, "--libdir");
    return ret < 0 ? ret : spm_cli_argv_add(a, dir);
}

uint64_t spm_cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int spm_cli_run(struct spm_cli_argv *a, int *status, uint64_t *usec)
{
    if (a->count == 0)
        return -EINVAL;
    uint64_t start = spm_cli_now_us();
    fflush(NULL);
    pid_t child = fork();
    if (child < 0)
        return -errno;
    if (child == 0) {
        execvp(a->argv[0], a->argv);
        fprintf(stderr, "cannot run %s: %s (set %s to the criu binary)\n", a->argv[0],
                strerror(errno), SPM_CLI_CRIU_ENV);
        _exit(127);
    }
    int st;
    while (waitpid(child, &st, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    *usec = spm_cli_now_us() - start;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

static int compare_exports(const void *a, const void *b)
{
    pid_t x = ((const struct spm_cli_export *)a)->pid, y = ((const struct spm_cli_export *)b)->pid;
    return (x > y) - (x < y);
}

int spm_cli_read_exports(const char *dir, struct spm_cli_export **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t prefix = strlen(SPM_CONTROL_EXPORT_FILE_PREFIX);
    size_t suffix = strlen(SPM_CONTROL_EXPORT_FILE_SUFFIX);
    struct spm_cli_export *list = NULL;
    size_t n = 0;
    int ret = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= prefix + suffix ||
            strncmp(de->d_name, SPM_CONTROL_EXPORT_FILE_PREFIX, prefix) != 0 ||
            strcmp(de->d_name + len - suffix, SPM_CONTROL_EXPORT_FILE_SUFFIX) != 0)
            continue;
        char digits[16];
        size_t digits_len = len - prefix - suffix;
        if (digits_len >= sizeof(digits))
            continue;
        memcpy(digits, de->d_name + prefix, digits_len);
        digits[digits_len] = '\0';
        char *end;
        long pid = strtol(digits, &end, 10);
        if (*end || pid <= 0 || pid > INT_MAX)
            continue;
        struct spm_cli_export *grown = realloc(list, (n + 1) * sizeof(*list));
        if (!grown) {
            ret = -ENOMEM;
            break;
        }
        list = grown;
        struct spm_cli_export *x = &list[n];
        memset(x, 0, sizeof(*x));
        x->pid = (pid_t)pid;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t got = read(fd, x->reply, sizeof(x->reply) - 1);
            close(fd);
            if (got > 0)
                x->reply[got] = '\0';
        }
        x->reply[strcspn(x->reply, "\n")] = '\0';
        n++;
    }
    closedir(d);
    if (ret < 0) {
        free(list);
        return ret;
    }
    if (n)
        qsort(list, n, sizeof(*list), compare_exports);
    *out = list;
    *count = n;
    return 0;
}

int spm_cli_write_export(const char *dir, pid_t pid, const char *reply)
{
    pid_t ns_pid;
    int ret = spm_control_ns_pid(pid, &ns_pid);
    if (ret < 0)
        return ret;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path),
                     "%s/" SPM_CONTROL_EXPORT_FILE_PREFIX "%d" SPM_CONTROL_EXPORT_FILE_SUFFIX, dir,
                     (int)ns_pid);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    fprintf(f, "%s\n", reply);
    return fclose(f) == 0 ? 0 : -EIO;
}

unsigned long long spm_cli_reply_u64(const char *reply, const char *key)
{
    unsigned long long v = 0;
    if (spm_control_reply_u64(reply, key, &v) < 0)
        return 0;
    return v;
}

void spm_cli_print_log_errors(const char *log, unsigned max)
{
    FILE *f = fopen(log, "re");
    if (!f)
        return;
    char line[1024];
    unsigned shown = 0;
    while (shown < max && fgets(line, sizeof(line), f)) {
        if (strstr(line, "RLIMIT_NOFILE"))
            continue; /* harmless on every run (CRIU.md) */
        if (strstr(line, "Error") || strstr(line, "spm: ")) {
            fprintf(stderr, "    %s", line);
            if (!strchr(line, '\n'))
                fputc('\n', stderr);
            shown++;
        }
    }
    fclose(f);
}
