/* Live migration in spmd (migrate.h, wire.h, docs/migration.md).
 *
 * The source spmd drives; the destination obeys. What makes a migration
 * safe is the order of the steps and the journal each side keeps:
 *
 *   source                               destination
 *   attest the MEs (TLS + quotes)
 *   criu dump (enclave exports, K escrowed in the source ME)
 *   send the images ------------------>  store, fsync
 *   RESTORE --------------------------->  criu restore --leave-stopped
 *   journal "handover"; ME: LEAVING
 *   TRANSFER (sealed, ME to ME) ------->  ME stores K durably, ACK
 *   ME: LEFT; journal "handed-over"
 *   GO ------------------------------->  SIGCONT; the process imports
 *                                        K from the local ME
 *
 * Before "handover" the key never left the source ME, so any failure ends
 * with the source restoring its images in place (the destination discards
 * its stopped copy). From "handover" on, only the MEs' RESOLVE may decide
 * who owns K; spmd never guesses: while the destination cannot be reached
 * the migration stays "in doubt" and nothing is restored anywhere. Every
 * journal write happens before the step it announces, so a crash at any
 * moment leaves a journal that names the furthest step that may have
 * happened; `spm recover` (the admin "recover" request) settles each one. */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "control/control.h"
#include "criu_ids.h"
#include "crypto/hash.h"
#include "journal.h"
#include "net/tls.h"
#include "spm/abi/me_abi.h"
#include "tunnel.h"
#include "wire.h"

extern char **environ;

#define ME_BUFFER_SIZE    (sizeof(struct spm_me_message_header) + SPM_ME_MAX_MESSAGE)
#define PEER_TIMEOUT_MS   30000
#define ADMIN_LINE_MAX    1024
#define CONNECT_TIMEOUT   5000
#define STATUS_WAIT_MS    60000
#define JOURNAL_FILE      "journal"
#define IMAGES_DIR        "images"
#define CRIU_TIMEOUT_TEXT "120"

/* Fault injection (CRIU's habit): SPMD_FAULT names one point where this
 * spmd fails on purpose, so tests reach every recovery path. */
#define FAULT_ENV "SPMD_FAULT"

static struct {
    struct spmd_migrate_config cfg;
    char state_dir[PATH_MAX];
    char platform_dir[PATH_MAX];
    char spmd_socket[PATH_MAX];
    char migrations_dir[PATH_MAX];
    char admin_path[PATH_MAX];
    char listen_text[64];
    char name[64];
    char fault[64];
    struct spm_tls_config *tls;
    int admin_fd, peer_fd;
    volatile int stopping;
    pthread_mutex_t journal_lock;
    pthread_mutex_t active_lock;
    uint8_t active[16][16]; /* migrations this spmd is running now (source) */
    bool active_used[16];
} g_mig = {
    .admin_fd = -1,
    .peer_fd = -1,
    .journal_lock = PTHREAD_MUTEX_INITIALIZER,
    .active_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* snprintf for messages and paths that may be cut short: truncation is
 * detected where it matters (paths) by the return value, as snprintf's. */
static int fmt_text(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fmt_text(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    return n;
}

static bool fault(const char *name)
{
    return g_mig.fault[0] && strcmp(g_mig.fault, name) == 0;
}

static void fault_crash(const char *name)
{
    if (fault(name)) {
        spm_error("spmd: injected fault %s: exiting now", name);
        _exit(70);
    }
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- Journal: one directory per migration, <migrations>/<id>/ ----
 * A small key=value file written atomically (write, fsync, rename, fsync
 * dir) before the step its phase names. */

static void id_hex(const uint8_t id[16], char out[33])
{
    spm_hex(id, 16, out);
}

static int migration_dir(const uint8_t id[16], const char *leaf, char *out, size_t size)
{
    char hex[33];
    id_hex(id, hex);
    int n = fmt_text(out, size, "%s/%s%s%s", g_mig.migrations_dir, hex, leaf ? "/" : "",
                     leaf ? leaf : "");
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int journal_write(const struct spmd_journal *j)
{
    char path[PATH_MAX], text[2048];
    int n = spmd_journal_format(j, text, sizeof(text));
    if (n < 0)
        return n;
    int ret = migration_dir(j->id, JOURNAL_FILE, path, sizeof(path));
    if (ret < 0)
        return ret;
    pthread_mutex_lock(&g_mig.journal_lock);
    ret = spm_write_file_atomic(path, text, (size_t)n, 0600);
    pthread_mutex_unlock(&g_mig.journal_lock);
    if (ret < 0)
        spm_error("spmd: cannot write the migration journal %s: %s", path, strerror(-ret));
    return ret;
}

static int journal_phase(struct spmd_journal *j, const char *phase)
{
    fmt_text(j->phase, sizeof(j->phase), "%s", phase);
    return journal_write(j);
}

static int journal_read(const char *hex, struct spmd_journal *j)
{
    char path[PATH_MAX];
    fmt_text(path, sizeof(path), "%s/%s/%s", g_mig.migrations_dir, hex, JOURNAL_FILE);
    uint8_t *data = NULL;
    size_t size = 0;
    int ret = spm_read_file(path, SPMD_JOURNAL_MAX_SIZE, &data, &size);
    if (ret < 0)
        return ret;
    /* spm_read_file NUL-terminates: the text ends at the first NUL. */
    ret = spmd_journal_parse((const char *)data, j);
    free(data);
    if (ret < 0) {
        spm_error("spmd: migration journal %s is damaged", path);
        return -EBADMSG;
    }
    return 0;
}

static bool journal_final(const struct spmd_journal *j)
{
    static const char *final[] = {"done", "kept", "failed", "discarded", "running"};
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
        if (strcmp(j->phase, final[i]) == 0)
            return true;
    return false;
}

static void active_set(const uint8_t id[16], bool on)
{
    pthread_mutex_lock(&g_mig.active_lock);
    for (int i = 0; i < 16; i++) {
        if (on && !g_mig.active_used[i]) {
            memcpy(g_mig.active[i], id, 16);
            g_mig.active_used[i] = true;
            break;
        }
        if (!on && g_mig.active_used[i] && memcmp(g_mig.active[i], id, 16) == 0) {
            g_mig.active_used[i] = false;
            break;
        }
    }
    pthread_mutex_unlock(&g_mig.active_lock);
}

static bool active_has(const uint8_t id[16])
{
    bool found = false;
    pthread_mutex_lock(&g_mig.active_lock);
    for (int i = 0; i < 16; i++)
        found |= g_mig.active_used[i] && memcmp(g_mig.active[i], id, 16) == 0;
    pthread_mutex_unlock(&g_mig.active_lock);
    return found;
}

/* ---- Running helpers (criu, ip) ---- */

/* Runs argv with `extra` NAME=VALUE entries added to (or replacing) the
 * environment; stdout+stderr go to `log_path` (or /dev/null). The child's
 * environment is built before fork: this process has threads. */
static int spawn(char *const argv[], char *const extra[], const char *log_path, pid_t *pid)
{
    size_t env_count = 0, extra_count = 0;
    while (environ[env_count])
        env_count++;
    while (extra && extra[extra_count])
        extra_count++;
    char **envp = calloc(env_count + extra_count + 1, sizeof(*envp));
    if (!envp)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < env_count; i++) {
        bool replaced = false;
        for (size_t k = 0; k < extra_count; k++) {
            size_t name = strcspn(extra[k], "=");
            replaced |= strncmp(environ[i], extra[k], name + 1) == 0;
        }
        if (!replaced)
            envp[n++] = environ[i];
    }
    for (size_t k = 0; k < extra_count; k++)
        envp[n++] = extra[k];
    envp[n] = NULL;
    int out =
        open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    pid_t child = fork();
    if (child < 0) {
        int err = errno;
        free(envp);
        if (out >= 0)
            close(out);
        return -err;
    }
    if (child == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        setsid();
        execvpe(argv[0], argv, envp);
        _exit(127);
    }
    free(envp);
    if (out >= 0)
        close(out);
    *pid = child;
    return 0;
}

/* The decimal number a small file (a pid file, a sysctl) holds. */
static int read_number(const char *path, unsigned long long *value)
{
    uint8_t *data = NULL;
    size_t size = 0;
    int ret = spm_read_file(path, 64, &data, &size);
    if (ret < 0)
        return ret;
    char text[65];
    fmt_text(text, sizeof(text), "%.*s", (int)size, (const char *)data);
    free(data);
    char *end;
    errno = 0;
    *value = strtoull(text, &end, 10);
    return end == text || errno ? -EBADMSG : 0;
}

static int exit_code(int wait_status)
{
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

/* Waits for a child of spawn: its exit status, or 128 + signal. */
static int reap(pid_t child, int *status)
{
    int st;
    while (waitpid(child, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    *status = exit_code(st);
    return 0;
}

/* Whether a child of spawn has ended, waiting up to timeout_ms for it
 * (0: only looks); then *status is as reap's. */
static bool reaped_within(pid_t child, int timeout_ms, int *status)
{
    for (int waited = 0;; waited += 5) {
        int st;
        if (waitpid(child, &st, WNOHANG) == child) {
            *status = exit_code(st);
            return true;
        }
        if (waited >= timeout_ms)
            return false;
        usleep(5000);
    }
}

/* spawn, then reap: the status and how long it took. */
static int run(char *const argv[], char *const extra[], const char *log_path, int *status,
               uint64_t *usec)
{
    uint64_t start = now_us();
    pid_t child;
    int ret = spawn(argv, extra, log_path, &child);
    if (ret == 0)
        ret = reap(child, status);
    if (ret == 0 && usec)
        *usec = now_us() - start;
    return ret;
}

/* Runs argv and captures up to size-1 bytes of its stdout. */
static int run_capture(char *const argv[], char *out, size_t size)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    pid_t child = fork();
    if (child < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -errno;
    }
    if (child == 0) {
        dup2(pipefd[1], 1);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t used = 0;
    for (;;) {
        ssize_t got = read(pipefd[0], out + used, size - 1 - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        used += (size_t)got;
        if (used == size - 1)
            break;
    }
    out[used] = 0;
    close(pipefd[0]);
    int st;
    while (waitpid(child, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static const char *criu_binary(void)
{
    const char *criu = getenv("SPM_CRIU");
    return criu && criu[0] ? criu : "criu";
}

static const char *plugin_dir(void)
{
    const char *dir = getenv("SPM_CRIU_PLUGIN_DIR");
    return dir && dir[0] ? dir : NULL;
}

/* The interface that holds this host's address (the default route's). */
static int default_device(char *dev, size_t size)
{
    char out[512];
    char *argv[] = {"ip", "-o", "-4", "route", "show", "default", NULL};
    int ret = run_capture(argv, out, sizeof(out));
    const char *p = ret == 0 ? strstr(out, " dev ") : NULL;
    if (!p)
        return -ENODEV;
    p += 5;
    size_t len = strcspn(p, " \n");
    if (!len || len >= size)
        return -ENODEV;
    memcpy(dev, p, len);
    dev[len] = 0;
    return 0;
}

static void address_only(const char *ip, char *out, size_t size)
{
    fmt_text(out, size, "%s", ip);
    out[strcspn(out, "/")] = 0;
}

/* Brings the service address up here and announces it (gratuitous ARP),
 * so clients' next packets come to this host. */
static int service_ip_add(const char *ip)
{
    char dev[64], addr[64];
    int ret = default_device(dev, sizeof(dev));
    if (ret < 0) {
        spm_error("spmd: no default route: cannot tell where to add the service address %s", ip);
        return ret;
    }
    char *add[] = {"ip", "addr", "replace", (char *)ip, "dev", dev, NULL};
    int status = 0;
    ret = run(add, NULL, NULL, &status, NULL);
    if (ret < 0 || status != 0) {
        spm_error("spmd: cannot add the service address %s on %s", ip, dev);
        return ret < 0 ? ret : -EIO;
    }
    address_only(ip, addr, sizeof(addr));
    /* arping waits a second for replies that never come to an unsolicited
     * ARP: run it detached (a grandchild re-parented away from us). */
    pid_t child = fork();
    if (child == 0) {
        if (fork() == 0) {
            int null = open("/dev/null", O_RDWR);
            if (null >= 0) {
                dup2(null, 0);
                dup2(null, 1);
                dup2(null, 2);
            }
            execlp("arping", "arping", "-U", "-c", "1", "-I", dev, addr, (char *)NULL);
            _exit(127);
        }
        _exit(0);
    }
    if (child > 0)
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            ;
    return 0;
}

/* While the service address is up here but the process not yet restored,
 * a client's retransmission would be answered with a reset and its
 * connection lost: drop TCP to the address until the restore is done.
 * Setting it fails (-EIO) when nft refuses the rule; the rule is built in
 * full or not at all, as a cut one (no verdict) would match and drop
 * nothing. */
static int guard_set(const char *ip, bool on)
{
    char addr[64], rule[256];
    address_only(ip, addr, sizeof(addr));
    int status = 0, ret;
    if (on) {
        int n = fmt_text(rule, sizeof(rule),
                         "add table inet spm_migrate_guard; add chain inet spm_migrate_guard in "
                         "{ type filter hook input priority -300; }; add rule inet "
                         "spm_migrate_guard in ip daddr %s meta l4proto tcp drop",
                         addr);
        if (n < 0 || (size_t)n >= sizeof(rule))
            return -ENAMETOOLONG;
        char *argv[] = {"nft", rule, NULL};
        ret = run(argv, NULL, NULL, &status, NULL);
    } else {
        char *argv[] = {"nft", "delete table inet spm_migrate_guard", NULL};
        ret = run(argv, NULL, NULL, &status, NULL);
    }
    if (ret == 0 && status != 0)
        ret = -EIO;
    if (ret < 0)
        spm_error("spmd: cannot %s the guard that drops TCP to %s while it is restored here "
                  "(nft: %s)",
                  on ? "set" : "remove", addr, ret == -EIO ? "rule refused" : strerror(-ret));
    return ret;
}

/* The run id of the criu that dumped into `dir`, from its inventory.img
 * (criu_ids.h). CRIU names its network lock's nft table after it. */
static int criu_run_id_inventory(const char *dir, char *id, size_t size)
{
    char path[PATH_MAX];
    uint8_t buf[SPMD_CRIU_INVENTORY_READ];
    id[0] = 0;
    if (fmt_text(path, sizeof(path), "%s/inventory.img", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t got = read(fd, buf, sizeof(buf));
    close(fd);
    if (got < 0)
        return -EBADMSG;
    return spmd_criu_run_id_inventory(buf, (size_t)got, id, size);
}

/* The same from the first line of dir/dump.log, which exists from criu's
 * start: a dump that died before it wrote its inventory still names its
 * lock table there. */
static int criu_run_id_log(const char *dir, char *id, size_t size)
{
    char path[PATH_MAX], text[SPMD_CRIU_LOG_LINE_READ];
    id[0] = 0;
    if (fmt_text(path, sizeof(path), "%s/dump.log", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t got = read(fd, text, sizeof(text));
    close(fd);
    if (got <= 0)
        return -ENOENT;
    return spmd_criu_run_id_log(text, (size_t)got, id, size);
}

static int criu_run_id(const char *dir, char *id, size_t size)
{
    return criu_run_id_inventory(dir, id, size) == 0 ? 0 : criu_run_id_log(dir, id, size);
}

/* Drops the lock table CRIU's dump `run_id` left in this namespace: the
 * dumped connections live on elsewhere and the address is gone from here.
 * CRIU names it "CRIU-" and the run id, cut to fit its name buffer; any
 * other dump's table (another migration under way) is left alone. */
static void criu_lock_drop(const char *run_id)
{
    if (!run_id[0])
        return;
    char want[80];
    fmt_text(want, sizeof(want), "CRIU-%s", run_id);
    size_t size = 1u << 16;
    char *list = malloc(size);
    char *argv[] = {"nft", "list", "tables", NULL};
    if (!list || run_capture(argv, list, size) < 0) {
        spm_error("spmd: cannot list nft tables to drop the network lock of criu run %s", run_id);
        free(list);
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char family[16], name[64];
        if (sscanf(line, "table %15s %63s", family, name) != 2)
            continue;
        size_t len = strlen(name);
        if (len < strlen("CRIU-") + 8 || strncmp(want, name, len) != 0)
            continue;
        char cmd[128];
        fmt_text(cmd, sizeof(cmd), "delete table %s %s", family, name);
        char *del[] = {"nft", cmd, NULL};
        int status = 0;
        if (run(del, NULL, NULL, &status, NULL) < 0 || status != 0)
            spm_error("spmd: cannot drop the network lock table %s %s", family, name);
    }
    free(list);
}

/* Takes the service address down here (it moves with the process), and
 * drops what CRIU's network lock left for the dumped connections. */
static int service_ip_del(const char *ip)
{
    char dev[64];
    int ret = default_device(dev, sizeof(dev));
    if (ret < 0)
        return ret;
    /* By address alone: whoever added it may have used another prefix. */
    char addr[64];
    address_only(ip, addr, sizeof(addr));
    char *del[] = {"ip", "addr", "del", addr, "dev", dev, NULL};
    int status = 0;
    ret = run(del, NULL, NULL, &status, NULL);
    return ret < 0 ? ret : status == 0 ? 0 : -ENOENT;
}

static char process_state(int pid);

/* A zombie is not alive: it only waits for its parent to reap it. */
static bool process_alive(int pid)
{
    if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
        return false;
    char state = process_state(pid);
    return state != 'Z' && state != 'X' && state != 0;
}

/* The state letter of /proc/PID/stat ('T' stopped), or 0. */
static char process_state(int pid)
{
    char path[64], buf[512];
    fmt_text(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : 0;
}

static void wait_gone(int pid, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms && process_alive(pid); waited += 10)
        usleep(10000);
}

/* The process's control socket "status", waiting for an import. */
static int process_status(int pid, char *reply, size_t size, int wait_ms)
{
    char path[PATH_MAX], request[64];
    int ret = spm_control_path_for_pid(pid, path, sizeof(path));
    if (ret < 0)
        return ret;
    fmt_text(request, sizeof(request), "status wait_ms=%d", wait_ms);
    return spm_control_request(path, request, reply, size, (unsigned)wait_ms + 5000);
}

static bool reply_live(const char *reply)
{
    return strncmp(reply, "ok state=live", 13) == 0;
}

/* criu restore of `images` on this host. deferred: --leave-stopped, the
 * process imports when it is continued (SPM_IMPORT_DEFERRED tells the
 * plugin not to wait for that). */
static int criu_restore(const char *images, bool deferred, bool lazy, uint64_t *usec)
{
    char log_path[PATH_MAX], platform_env[PATH_MAX + 16], socket_env[PATH_MAX + 24],
        pidfile[PATH_MAX];
    fmt_text(log_path, sizeof(log_path), "%s/restore.out", images);
    fmt_text(platform_env, sizeof(platform_env), "SPM_PLATFORM=%s", g_mig.platform_dir);
    fmt_text(socket_env, sizeof(socket_env), "%s=%s", SPM_SPMD_SOCKET_ENV, g_mig.spmd_socket);
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)criu_binary();
    argv[n++] = "restore";
    argv[n++] = "-D";
    argv[n++] = (char *)images;
    argv[n++] = "-o";
    argv[n++] = "restore.log";
    argv[n++] = "-d";
    argv[n++] = "--tcp-established";
    argv[n++] = "--network-lock";
    argv[n++] = "nftables";
    if (deferred)
        argv[n++] = "--leave-stopped";
    /* The init of its own PID namespace is restored into a new one, under
     * a new host pid: the pid file names it. */
    fmt_text(pidfile, sizeof(pidfile), "%s/restored.pid", images);
    argv[n++] = "--pidfile";
    argv[n++] = pidfile;
    if (lazy)
        argv[n++] = "--lazy-pages"; /* pages from the lazy-pages daemon */
    if (plugin_dir()) {
        argv[n++] = "--libdir";
        argv[n++] = (char *)plugin_dir();
    }
    if (fault("dest-restore-fail") && deferred) {
        /* A pre-restore action script that fails: CRIU itself aborts. */
        argv[n++] = "--action-script";
        argv[n++] = "/bin/false";
    }
    argv[n] = NULL;
    char *extra[] = {platform_env, socket_env,
                     deferred ? "SPM_IMPORT_DEFERRED=1" : "SPM_IMPORT_DEFERRED=0", NULL};
    int status = 0;
    int ret = run(argv, extra, log_path, &status, usec);
    if (ret < 0)
        return ret;
    if (status != 0) {
        spm_error("spmd: criu restore of %s failed (exit %d); see %s/restore.log", images, status,
                  images);
        return -ECANCELED;
    }
    return 0;
}

/* ---- Peer connection helpers ---- */

static int send_error(struct spm_tls_conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int send_error(struct spm_tls_conn *c, int status, const char *fmt, ...)
{
    char text[SPMD_WIRE_TEXT_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        text[0] = 0;
    uint8_t buf[sizeof(struct spmd_wire_error) + SPMD_WIRE_TEXT_MAX];
    size_t size = spmd_wire_error_encode(status, text, buf);
    spm_error("spmd: telling %s: %s (%s)", spm_tls_peer_name(c), text, strerror(-status));
    return spm_tls_send(c, SPMD_WIRE_ERROR, buf, size, PEER_TIMEOUT_MS);
}

/* A reply whose body is one fixed struct (or none), through its type's
 * decoder (wire.h) into body. */
static int decode_reply(uint16_t type, const uint8_t *buf, size_t size, void *body)
{
    switch (type) {
    case SPMD_WIRE_OK:
        return spmd_wire_empty_decode(size);
    case SPMD_WIRE_RESTORED:
        return spmd_wire_restored_decode(buf, size, body);
    case SPMD_WIRE_RUNNING:
        return spmd_wire_running_decode(buf, size, body);
    case SPMD_WIRE_STATE:
        return spmd_wire_state_decode(buf, size, body);
    default:
        return -EPROTO;
    }
}

/* Receives one message of type `want`: with got == NULL, an OK, RESTORED,
 * RUNNING or STATE reply decoded into body; else any body up to capacity
 * bytes, its size in *got. A peer ERROR comes back as its status with its
 * text in `why`. */
static int recv_expect(struct spm_tls_conn *c, uint16_t want, void *body, size_t capacity,
                       size_t *got, int timeout_ms, char *why, size_t why_size)
{
    uint8_t small[sizeof(struct spmd_wire_error) + SPMD_WIRE_TEXT_MAX];
    uint16_t type = 0;
    size_t size = 0;
    bool direct = got && capacity >= sizeof(small);
    void *buf = direct ? body : small;
    size_t cap = direct ? capacity : sizeof(small);
    int ret = spm_tls_recv(c, &type, buf, cap, &size, timeout_ms);
    if (ret < 0) {
        fmt_text(why, why_size, "connection to %s lost: %s", spm_tls_peer_name(c), strerror(-ret));
        return ret;
    }
    if (type == SPMD_WIRE_ERROR) {
        ret = spmd_wire_error_decode(buf, size, why, why_size);
        return ret == -EBADMSG ? -EPROTO : ret;
    }
    if (type != want || size > capacity ||
        (got == NULL && decode_reply(want, buf, size, body) < 0)) {
        fmt_text(why, why_size, "%s sent message type %u (%zu bytes) where %u was expected",
                 spm_tls_peer_name(c), type, size, want);
        return -EPROTO;
    }
    if (got) {
        if (buf != body && size)
            memcpy(body, buf, size);
        *got = size;
    }
    return 0;
}

/* ---- The local ME ---- */

struct me_buf {
    uint8_t *data;
    size_t size;
};

static int me_alloc(struct me_buf *b)
{
    b->data = malloc(ME_BUFFER_SIZE);
    b->size = 0;
    return b->data ? 0 : -ENOMEM;
}

static uint16_t me_type(const struct me_buf *b)
{
    struct spm_me_message_header h;
    if (b->size < sizeof(h))
        return 0;
    memcpy(&h, b->data, sizeof(h));
    return h.type;
}

/* The status of an SPM_ME_MSG_ERROR message, or 0 for any other type. */
static int me_error_status(const struct me_buf *b)
{
    struct spm_me_error e;
    if (me_type(b) != SPM_ME_MSG_ERROR)
        return 0;
    if (b->size != sizeof(struct spm_me_message_header) + sizeof(e))
        return -EBADMSG;
    memcpy(&e, b->data + sizeof(struct spm_me_message_header), sizeof(e));
    return e.status < 0 ? e.status : -EPROTO;
}

/* Sends a raw message (header included) into the ME. */
static int me_raw(const uint8_t *in, size_t in_size, struct me_buf *out)
{
    return g_mig.cfg.me_call(in, in_size, out->data, ME_BUFFER_SIZE, &out->size);
}

/* Builds a message of `type` with `body` and sends it into the ME. */
static int me_send(uint16_t type, const void *body, size_t size, struct me_buf *out)
{
    uint8_t msg[sizeof(struct spm_me_message_header) + 256];
    struct spm_me_message_header h = {
        .magic = SPM_ME_MAGIC, .version = SPM_ME_VERSION, .type = type, .size = (uint32_t)size};
    if (size > sizeof(msg) - sizeof(h))
        return -E2BIG;
    memcpy(msg, &h, sizeof(h));
    if (size)
        memcpy(msg + sizeof(h), body, size);
    return me_raw(msg, sizeof(h) + size, out);
}

/* The PEER_STATUS body of a reply; -EPROTO for another type. */
static int me_peer_status(const struct me_buf *b, struct spm_me_peer_status *status)
{
    int err = me_error_status(b);
    if (err < 0)
        return err;
    if (me_type(b) != SPM_ME_MSG_PEER_STATUS ||
        b->size < sizeof(struct spm_me_message_header) + sizeof(*status))
        return -EPROTO;
    memcpy(status, b->data + sizeof(struct spm_me_message_header), sizeof(*status));
    return status->status;
}

/* Relays the ME message in `out` to the peer and returns the peer ME's
 * answer in `in`. */
static int peer_round_trip(struct spm_tls_conn *c, const struct me_buf *out, struct me_buf *in,
                           char *why, size_t why_size)
{
    int ret = spm_tls_send(c, SPMD_WIRE_ME, out->data, out->size, PEER_TIMEOUT_MS);
    if (ret < 0) {
        fmt_text(why, why_size, "cannot send to %s: %s", spm_tls_peer_name(c), strerror(-ret));
        return ret;
    }
    return recv_expect(c, SPMD_WIRE_ME, in->data, ME_BUFFER_SIZE, &in->size, PEER_TIMEOUT_MS, why,
                       why_size);
}

static const char *me_refusal(int status)
{
    switch (status) {
    case -EKEYREJECTED:
        return "its quote does not verify or does not chain to the trusted provisioning root";
    case -EACCES:
        return "its Migration Enclave identity is not allowed by policy (signer, product id "
               "or SVN)";
    case -EPERM:
        return "it is a DEBUG Migration Enclave and policy forbids debug enclaves";
    case -EBADMSG:
        return "its attestation message is malformed or not bound to this session";
    default:
        return strerror(-status);
    }
}

/* One attestation step: relays `out` to the peer ME and checks that the
 * answer in `in` is not a refusal and is of type `want`. */
static int attest_step(struct spm_tls_conn *c, const struct me_buf *out, struct me_buf *in,
                       uint16_t want, const char *step, char *why, size_t why_size)
{
    int ret = peer_round_trip(c, out, in, why, why_size);
    if (ret < 0)
        return ret;
    if ((ret = me_error_status(in)) < 0) {
        fmt_text(why, why_size, "the destination's Migration Enclave refused us: %s",
                 me_refusal(ret));
        return ret;
    }
    if (me_type(in) != want) {
        fmt_text(why, why_size, "the destination answered the %s with ME message type %u", step,
                 me_type(in));
        return -EPROTO;
    }
    return 0;
}

/* Mutual attestation of the local ME (initiator) and the peer's ME over
 * `c`; *session is the local ME's peer session. */
static int attest(struct spm_tls_conn *c, uint64_t *session, uint8_t peer_platform[32], char *why,
                  size_t why_size)
{
    struct me_buf a = {0}, b = {0};
    int ret = me_alloc(&a);
    if (ret == 0)
        ret = me_alloc(&b);
    if (ret < 0)
        goto out;
    struct spm_me_peer_open open = {0};
    if ((ret = me_send(SPM_ME_MSG_PEER_OPEN, &open, sizeof(open), &a)) < 0 ||
        (ret = me_error_status(&a)) < 0) {
        fmt_text(why, why_size, "the local Migration Enclave cannot open a peer session: %s",
                 strerror(-ret));
        goto out;
    }
    /* OFFER -> ACCEPT (the destination ME's quote) */
    if ((ret = attest_step(c, &a, &b, SPM_ME_MSG_PEER_ACCEPT, "offer", why, why_size)) < 0)
        goto out;
    if ((ret = me_raw(b.data, b.size, &a)) < 0 || (ret = me_error_status(&a)) < 0) {
        fmt_text(why, why_size, "destination refused before any key left: %s", me_refusal(ret));
        goto out;
    }
    /* CONFIRM (our quote) -> READY */
    if ((ret = attest_step(c, &a, &b, SPM_ME_MSG_PEER_SEALED, "confirmation", why, why_size)) < 0)
        goto out;
    struct spm_me_peer_status st;
    if ((ret = me_raw(b.data, b.size, &a)) < 0 || (ret = me_peer_status(&a, &st)) < 0) {
        fmt_text(why, why_size, "the session with the destination's ME failed: %s", strerror(-ret));
        goto out;
    }
    *session = st.session;
    memcpy(peer_platform, st.peer_platform_id, 32);
    ret = 0;
out:
    free(a.data);
    free(b.data);
    return ret;
}

/* The hand-over of one checkpoint through an attested session. The journal
 * says "handover" before this runs. *outcome: SPM_ME_PEER_OUTCOME_*. */
static int handover(struct spm_tls_conn *c, uint64_t session,
                    const struct spm_me_checkpoint_ref *ref, bool resolve, uint32_t *outcome,
                    char *why, size_t why_size)
{
    struct me_buf a = {0}, b = {0};
    int ret = me_alloc(&a);
    if (ret == 0)
        ret = me_alloc(&b);
    if (ret < 0)
        goto out;
    struct spm_me_peer_checkpoint req = {.session = session, .ref = *ref};
    ret = me_send(resolve ? SPM_ME_MSG_PEER_RESOLVE : SPM_ME_MSG_PEER_HANDOVER, &req, sizeof(req),
                  &a);
    if (ret == 0)
        ret = me_error_status(&a);
    if (ret < 0) {
        fmt_text(why, why_size, "the local Migration Enclave refused the %s: %s",
                 resolve ? "resolution" : "hand-over", strerror(-ret));
        goto out;
    }
    struct spm_me_peer_status st;
    if (me_type(&a) == SPM_ME_MSG_PEER_STATUS) { /* settled without asking the peer */
        ret = me_peer_status(&a, &st);
        *outcome = st.outcome;
        goto out;
    }
    if (!resolve)
        fault_crash("src-crash-after-leaving");
    if (fault("link-cut-handover") && !resolve) {
        (void)!spm_tls_send(c, SPMD_WIRE_ME, a.data, a.size, PEER_TIMEOUT_MS);
        shutdown(spm_tls_fd(c), SHUT_RDWR);
        ret = -ECONNRESET;
        fmt_text(why, why_size, "injected fault: link cut after the key was sent");
        goto out;
    }
    if ((ret = peer_round_trip(c, &a, &b, why, why_size)) < 0)
        goto out;
    if (!resolve)
        fault_crash("src-crash-after-transfer");
    if ((ret = me_error_status(&b)) < 0) {
        fmt_text(why, why_size, "the destination's Migration Enclave refused the %s: %s",
                 resolve ? "resolution" : "key", strerror(-ret));
        goto out;
    }
    if ((ret = me_raw(b.data, b.size, &a)) < 0 || (ret = me_peer_status(&a, &st)) < 0) {
        fmt_text(why, why_size, "the hand-over did not complete: %s", strerror(-ret));
        goto out;
    }
    *outcome = st.outcome;
    ret = 0;
out:
    free(a.data);
    free(b.data);
    return ret;
}

/* ---- Admin output ---- */

struct admin {
    int fd; /* -1: nobody listens (recovery at start) */
};

static void emit(struct admin *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct admin *a, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (a->fd < 0)
        return;
    /* The operator's client may have gone: the migration goes on. */
    if (send(a->fd, line, (size_t)n, MSG_NOSIGNAL) < 0)
        a->fd = -1;
}

/* ---- Connecting to a peer ---- */

static int parse_host_port(const char *text, char *host, size_t host_size, uint16_t *port)
{
    const char *colon = strrchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    if (!len || len >= host_size)
        return -EINVAL;
    memcpy(host, text, len);
    host[len] = 0;
    *port = SPMD_WIRE_PORT;
    if (colon) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (*end || v <= 0 || v > 65535)
            return -EINVAL;
        *port = (uint16_t)v;
    }
    return 0;
}

static int peer_connect(const char *peer, uint32_t flags, const struct spmd_journal *j,
                        struct spm_tls_conn **out, char *why, size_t why_size)
{
    char host[64];
    uint16_t port;
    if (parse_host_port(peer, host, sizeof(host), &port) < 0) {
        fmt_text(why, why_size, "'%s' is not HOST[:PORT]", peer);
        return -EINVAL;
    }
    struct spm_tls_conn *c = NULL;
    int ret = spm_tls_connect(g_mig.tls, host, port, CONNECT_TIMEOUT, &c);
    if (ret < 0) {
        fmt_text(why, why_size, "cannot reach spmd at %s:%u: %s%s", host, port, strerror(-ret),
                 ret == -EKEYREJECTED ? " (its host certificate is not from our cluster CA or "
                                        "not for that address)"
                                      : "");
        return ret;
    }
    struct spmd_wire_hello hello = {.version = SPMD_WIRE_VERSION,
                                    .flags = flags,
                                    .pid = (uint32_t)j->pid,
                                    .mode = (uint32_t)j->mode};
    memcpy(hello.migration_id, j->id, 16);
    fmt_text(hello.source, sizeof(hello.source), "%s", g_mig.listen_text);
    fmt_text(hello.name, sizeof(hello.name), "%s", g_mig.name);
    ret = spm_tls_send(c, SPMD_WIRE_HELLO, &hello, sizeof(hello), PEER_TIMEOUT_MS);
    uint8_t body[sizeof(hello)];
    size_t size = 0;
    if (ret == 0)
        ret = recv_expect(c, SPMD_WIRE_HELLO, body, sizeof(body), &size, PEER_TIMEOUT_MS, why,
                          why_size);
    else
        fmt_text(why, why_size, "cannot send to %s: %s", peer, strerror(-ret));
    struct spmd_wire_hello reply;
    int bad = ret == 0 ? spmd_wire_hello_decode(body, size, &reply, NULL, 0) : 0;
    if (bad == -EPROTO) {
        fmt_text(why, why_size, "%s sent message type %u (%zu bytes) where %u was expected",
                 spm_tls_peer_name(c), SPMD_WIRE_HELLO, size, SPMD_WIRE_HELLO);
        ret = -EPROTO;
    } else if (bad < 0 && reply.version != SPMD_WIRE_VERSION) {
        fmt_text(why, why_size, "%s speaks wire version %u, we speak %u", peer, reply.version,
                 SPMD_WIRE_VERSION);
        ret = -EPROTO;
    } else if (bad < 0) {
        fmt_text(why, why_size, "%s answered HELLO with flags %u mode %u", peer, reply.flags,
                 reply.mode);
        ret = -EPROTO;
    }
    if (ret < 0) {
        spm_tls_close(c);
        return ret;
    }
    *out = c;
    return 0;
}

/* ---- Source: sending the images ---- */

struct transfer {
    uint64_t bytes, total;
    uint64_t start_us, last_report_us;
    unsigned files;
};

static int send_file(struct spm_tls_conn *c, const char *dir, const char *name, struct transfer *t,
                     struct admin *a, uint8_t *chunk)
{
    char path[PATH_MAX];
    fmt_text(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -errno;
    }
    uint8_t begin[sizeof(struct spmd_wire_file) + SPMD_WIRE_NAME_MAX];
    size_t begin_size = 0;
    int ret = spmd_wire_file_begin_encode((uint64_t)st.st_size, (uint32_t)(st.st_mode & 0777), name,
                                          begin, &begin_size);
    if (ret == 0)
        ret = spm_tls_send(c, SPMD_WIRE_FILE_BEGIN, begin, begin_size, PEER_TIMEOUT_MS);
    struct spm_sha256 hash;
    spm_sha256_init(&hash);
    uint64_t left = (uint64_t)st.st_size;
    while (ret == 0 && left) {
        size_t want = left < SPMD_WIRE_DATA_CHUNK ? (size_t)left : SPMD_WIRE_DATA_CHUNK;
        ssize_t got = read(fd, chunk, want);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            ret = got < 0 ? -errno : -EIO;
            break;
        }
        spm_sha256_update(&hash, chunk, (size_t)got);
        ret = spm_tls_send(c, SPMD_WIRE_FILE_DATA, chunk, (size_t)got, PEER_TIMEOUT_MS);
        left -= (uint64_t)got;
        t->bytes += (uint64_t)got;
        if (fault("link-cut-transfer") && t->bytes * 2 >= t->total && t->total) {
            shutdown(spm_tls_fd(c), SHUT_RDWR);
            ret = -ECONNRESET;
        }
        uint64_t now = now_us();
        if (now - t->last_report_us > 100000) {
            t->last_report_us = now;
            double secs = (double)(now - t->start_us) / 1e6;
            emit(a, "progress phase=transfer bytes=%" PRIu64 " total=%" PRIu64 " rate_mbps=%.1f",
                 t->bytes, t->total, secs > 0 ? (double)t->bytes / 1e6 / secs : 0.0);
        }
    }
    close(fd);
    if (ret == 0) {
        struct spmd_wire_file_end end;
        spm_sha256_final(&hash, end.sha256);
        ret = spm_tls_send(c, SPMD_WIRE_FILE_END, &end, sizeof(end), PEER_TIMEOUT_MS);
    }
    t->files++;
    return ret;
}

/* CRIU's own logs stay with the host that wrote them (a post-copy dump is
 * still writing its log while the images go). */
static bool image_to_send(const char *name)
{
    size_t len = strlen(name);
    bool log = (len > 4 && strcmp(name + len - 4, ".log") == 0) ||
               (len > 4 && strcmp(name + len - 4, ".out") == 0);
    return spmd_wire_image_name_ok(name) && !log;
}

static int send_images(struct spm_tls_conn *c, const char *dir, struct transfer *t, struct admin *a,
                       char *why, size_t why_size)
{
    DIR *d = opendir(dir);
    if (!d) {
        fmt_text(why, why_size, "cannot read the images in %s: %s", dir, strerror(errno));
        return -errno;
    }
    struct dirent *e;
    t->total = 0;
    while ((e = readdir(d))) {
        struct stat st;
        char path[PATH_MAX];
        fmt_text(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (image_to_send(e->d_name) && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            t->total += (uint64_t)st.st_size;
    }
    rewinddir(d);
    uint8_t *chunk = malloc(SPMD_WIRE_DATA_CHUNK);
    int ret = chunk ? 0 : -ENOMEM;
    t->start_us = t->last_report_us = now_us();
    while (ret == 0 && (e = readdir(d))) {
        struct stat st;
        char path[PATH_MAX];
        fmt_text(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (!image_to_send(e->d_name) || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        ret = send_file(c, dir, e->d_name, t, a, chunk);
        if (ret < 0)
            fmt_text(why, why_size, "sending %s to %s failed: %s", e->d_name, spm_tls_peer_name(c),
                     strerror(-ret));
    }
    closedir(d);
    free(chunk);
    if (ret < 0)
        return ret;
    struct spmd_wire_images_done done = {.files = t->files, .bytes = t->bytes};
    ret = spm_tls_send(c, SPMD_WIRE_IMAGES_DONE, &done, sizeof(done), PEER_TIMEOUT_MS);
    if (ret == 0)
        ret = recv_expect(c, SPMD_WIRE_OK, NULL, 0, NULL, PEER_TIMEOUT_MS * 4, why, why_size);
    else
        fmt_text(why, why_size, "cannot send to %s: %s", spm_tls_peer_name(c), strerror(-ret));
    return ret;
}

/* ---- Source: the dump ---- */

/* Whether something listens on 127.0.0.1:port in this network namespace
 * (a lazy dump's page server, up once every other image is written). Read
 * from /proc/net/tcp: connecting to find out would take the server's one
 * accept. */
static bool loopback_listening(uint16_t port)
{
    FILE *f = fopen("/proc/net/tcp", "re");
    if (!f)
        return false;
    char line[256], want[32];
    fmt_text(want, sizeof(want), "0100007F:%04X", port);
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        char local[64], remote[64];
        unsigned state;
        if (sscanf(line, " %*d: %63s %63s %x", local, remote, &state) == 3)
            found = strcmp(local, want) == 0 && state == 0x0A;
    }
    fclose(f);
    return found;
}

/* criu dump of the journal's process into `images`. lazy_port (post-copy):
 * `--lazy-pages` with the page server on 127.0.0.1:lazy_port; returns once
 * every image but the memory is written, the dump still running (its
 * child in *lazy_child) and serving the memory until the pages have moved. */
static int criu_dump(const struct spmd_journal *j, const char *images, uint64_t *usec,
                     uint16_t lazy_port, pid_t *lazy_child, char *why, size_t why_size)
{
    char pid_text[16], port_text[8], log_path[PATH_MAX];
    fmt_text(pid_text, sizeof(pid_text), "%d", j->pid);
    fmt_text(log_path, sizeof(log_path), "%s/dump.out", images);
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)criu_binary();
    argv[n++] = "dump";
    argv[n++] = "-t";
    argv[n++] = pid_text;
    argv[n++] = "-D";
    argv[n++] = (char *)images;
    argv[n++] = "-o";
    argv[n++] = "dump.log";
    argv[n++] = "-v3"; /* info: the log's first line names the run (its lock table) */
    argv[n++] = "--tcp-established";
    argv[n++] = "--network-lock";
    argv[n++] = "nftables";
    /* A connection still in the listen backlog cannot be restored; its
     * client retries (SYN) at the destination. */
    argv[n++] = "--skip-in-flight";
    argv[n++] = "--timeout";
    argv[n++] = CRIU_TIMEOUT_TEXT;
    if (plugin_dir()) {
        argv[n++] = "--libdir";
        argv[n++] = (char *)plugin_dir();
    }
    if (lazy_port) {
        fmt_text(port_text, sizeof(port_text), "%u", lazy_port);
        argv[n++] = "--lazy-pages";
        argv[n++] = "--address";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--port";
        argv[n++] = port_text;
    }
    argv[n] = NULL;
    int status = 0, ret;
    if (lazy_port) {
        uint64_t start = now_us();
        pid_t child;
        /* The plugin asks the process for a shared image buffer. */
        char *lazy_env[] = {SPM_CONTROL_LAZY_ENV "=1", NULL};
        ret = spawn(argv, lazy_env, log_path, &child);
        while (ret == 0) {
            if (loopback_listening(lazy_port)) {
                *lazy_child = child;
                *usec = now_us() - start;
                return 0;
            }
            if (reaped_within(child, 0, &status))
                break;
            if (now_us() - start > 150000000ull) {
                /* Stuck: ending CRIU lets the tree go (ptrace detach). */
                kill(child, SIGKILL);
                (void)reap(child, &status);
                break;
            }
            usleep(2000);
        }
    } else {
        ret = run(argv, NULL, log_path, &status, usec);
    }
    if (ret < 0) {
        fmt_text(why, why_size, "cannot run %s: %s", criu_binary(), strerror(-ret));
        return ret;
    }
    if (status != 0 || lazy_port) {
        fmt_text(why, why_size,
                 "criu dump of pid %d failed (exit %d; see %s/dump.log); the process runs on "
                 "here",
                 j->pid, status, images);
        return -ECANCELED;
    }
    return 0;
}

/* The export records the plugin left: refs and enclave bytes. */
static int read_export(const char *images, int pid, char *refs, size_t refs_size,
                       uint64_t *enclave_bytes, uint64_t *export_us)
{
    char path[PATH_MAX];
    fmt_text(path, sizeof(path),
             "%s/" SPM_CONTROL_EXPORT_FILE_PREFIX "%d" SPM_CONTROL_EXPORT_FILE_SUFFIX, images, pid);
    if (access(path, F_OK) < 0) {
        /* Named by the pid the process has in its own PID namespace (1 for
         * a post-copy migration's init): the one record there is. */
        DIR *d = opendir(images);
        struct dirent *e;
        int found = 0;
        size_t pre = strlen(SPM_CONTROL_EXPORT_FILE_PREFIX);
        while (d && (e = readdir(d)))
            if (strncmp(e->d_name, SPM_CONTROL_EXPORT_FILE_PREFIX, pre) == 0 && found++ == 0)
                fmt_text(path, sizeof(path), "%s/%s", images, e->d_name);
        if (d)
            closedir(d);
        if (found != 1)
            return -ENOENT;
    }
    uint8_t *data = NULL;
    size_t size = 0;
    int ret = spm_read_file(path, SPM_CONTROL_MAX_LINE * 2, &data, &size);
    if (ret < 0)
        return ret;
    char *text = calloc(1, size + 1);
    if (!text) {
        free(data);
        return -ENOMEM;
    }
    memcpy(text, data, size);
    free(data);
    char *line = strstr(text, "ok ");
    if (!line) {
        free(text);
        return -EBADMSG;
    }
    line[strcspn(line, "\n")] = 0;
    unsigned long long v = 0;
    *enclave_bytes = spm_control_reply_u64(line, "bytes", &v) == 0 ? v : 0;
    *export_us = spm_control_reply_u64(line, "export_us", &v) == 0 ? v : 0;
    ret = spm_control_reply_value(line, "refs", refs, refs_size);
    free(text);
    return ret;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        fmt_text(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* A migration's images are spent (committed elsewhere or rolled back). */
static void drop_images(const struct spmd_journal *j)
{
    char images[PATH_MAX];
    if (migration_dir(j->id, IMAGES_DIR, images, sizeof(images)) == 0)
        remove_tree(images);
}

static int copy_tree(const char *from, const char *to)
{
    int ret = spm_mkdir_p(to, 0700);
    if (ret < 0)
        return ret;
    char *argv[] = {"cp", "-a", "--", (char *)from, (char *)to, NULL};
    int status = 0;
    ret = run(argv, NULL, NULL, &status, NULL);
    return ret < 0 ? ret : status ? -EIO : 0;
}

/* ---- Source: a post-copy dump still serving its pages ----
 * Until the pages have moved, the frozen tree and CRIU's page server hold
 * the only full copy of the process's memory, so they outlive a failed
 * attempt (an in-doubt hand-over is settled by 'spm recover' while this
 * spmd runs). */

struct lazy_dump {
    bool used;
    uint8_t id[16];
    pid_t child; /* criu dump --lazy-pages */
    uint16_t port;
    struct spmd_tunnel_source *tunnel;
    char run_id[64]; /* the dump's criu run id: its network lock table */
};

static struct {
    pthread_mutex_t lock;
    struct lazy_dump slots[16];
} g_lazy = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct lazy_dump *lazy_take(const uint8_t id[16])
{
    pthread_mutex_lock(&g_lazy.lock);
    struct lazy_dump *found = NULL;
    for (size_t i = 0; i < sizeof(g_lazy.slots) / sizeof(g_lazy.slots[0]) && !found; i++)
        if (g_lazy.slots[i].used && memcmp(g_lazy.slots[i].id, id, 16) == 0)
            found = &g_lazy.slots[i];
    pthread_mutex_unlock(&g_lazy.lock);
    return found;
}

static struct lazy_dump *lazy_add(const uint8_t id[16], pid_t child, uint16_t port,
                                  const char *run_id)
{
    pthread_mutex_lock(&g_lazy.lock);
    struct lazy_dump *l = NULL;
    for (size_t i = 0; i < sizeof(g_lazy.slots) / sizeof(g_lazy.slots[0]) && !l; i++)
        if (!g_lazy.slots[i].used)
            l = &g_lazy.slots[i];
    if (l) {
        memset(l, 0, sizeof(*l));
        l->used = true;
        memcpy(l->id, id, 16);
        l->child = child;
        l->port = port;
        fmt_text(l->run_id, sizeof(l->run_id), "%s", run_id);
    }
    pthread_mutex_unlock(&g_lazy.lock);
    return l;
}

/* A failed lazy dump, or a criu killed mid-dump, lets the tree run on but
 * (CRIU 4.2) unlocks nothing: its established TCP sockets stay in repair
 * mode, where they neither send nor acknowledge. Takes each of the
 * process's TCP sockets out of repair mode through a duplicate of its
 * descriptor (pidfd_getfd), as CRIU's own unlock would; a socket not in
 * repair mode is left as it is. */
static void tcp_repair_off_all(int pid)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return;
    char dir[64];
    fmt_text(dir, sizeof(dir), "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned count = 0;
    while (d && (e = readdir(d))) {
        char *end;
        long target = strtol(e->d_name, &end, 10);
        if (*end || target < 0)
            continue;
        int fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)target, 0);
        if (fd < 0)
            continue;
        int proto = 0, type = 0, off = 0;
        socklen_t len = sizeof(proto);
        if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 && proto == IPPROTO_TCP &&
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &(socklen_t){sizeof(type)}) == 0 &&
            type == SOCK_STREAM && setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) == 0)
            count++;
        close(fd);
    }
    if (d)
        closedir(d);
    close(pidfd);
    spm_info("spmd: pid %d runs on after a failed dump: %u TCP sockets out of repair mode", pid,
             count);
}

/* Ends a post-copy dump. commit (the process runs at the destination):
 * waits for the last page to move and the dump to complete. Otherwise the
 * page server's connection is reset, the dump fails and CRIU lets the
 * source tree run on (the plugin then resumes its enclave here). */
static int lazy_end(struct lazy_dump *l, bool commit, uint64_t *page_bytes, char *why,
                    size_t why_size)
{
    int ret = 0;
    if (l->tunnel)
        ret = spmd_tunnel_source_finish(l->tunnel, commit, page_bytes, why, why_size);
    else if (commit)
        ret = -EPIPE;
    else
        spmd_tunnel_reset_page_server(l->port);
    l->tunnel = NULL;
    int status = -1;
    if (!reaped_within(l->child, 30000, &status)) {
        spm_error("spmd: criu dump --lazy-pages (pid %d) did not end: killing it", l->child);
        kill(l->child, SIGKILL);
        (void)reap(l->child, &status);
    }
    if (commit && ret == 0 && status != 0) {
        ret = -EIO;
        fmt_text(why, why_size, "criu dump --lazy-pages ended with status %d after the pages moved",
                 status);
    }
    criu_lock_drop(l->run_id);
    pthread_mutex_lock(&g_lazy.lock);
    l->used = false;
    pthread_mutex_unlock(&g_lazy.lock);
    return ret;
}

/* ---- Source: putting the process back here ---- */

/* The migration is off and the key never left: the process runs here
 * again, from its images or (when it is still alive, e.g. the dump itself
 * failed or was interrupted) by re-importing in place. */
static int restored_pid(const char *images);

static int restore_in_place(struct spmd_journal *j, struct admin *a, char *why, size_t why_size)
{
    char images[PATH_MAX], reply[SPM_CONTROL_MAX_LINE];
    int ret = migration_dir(j->id, IMAGES_DIR, images, sizeof(images));
    if (ret < 0)
        return ret;
    if (process_alive(j->pid) && process_state(j->pid) != 'T') {
        char path[PATH_MAX];
        if (spm_control_path_for_pid(j->pid, path, sizeof(path)) == 0 &&
            spm_control_request(path, "resume", reply, sizeof(reply), STATUS_WAIT_MS) == 0 &&
            process_status(j->pid, reply, sizeof(reply), STATUS_WAIT_MS) == 0 &&
            reply_live(reply)) {
            emit(a, "progress phase=rollback detail=resumed-in-place");
            return 0;
        }
        fmt_text(why, why_size, "pid %d is alive here but does not run its enclave: %s", j->pid,
                 reply);
        return -EIO;
    }
    if (j->ip[0]) {
        /* The process comes back even unguarded: a client may see a reset,
         * but nothing of the enclave is lost. */
        (void)guard_set(j->ip, true);
        (void)service_ip_add(j->ip);
    }
    uint64_t us = 0;
    emit(a, "progress phase=rollback detail=restoring-here");
    ret = criu_restore(images, false, false, &us);
    if (j->ip[0])
        (void)guard_set(j->ip, false);
    if (ret < 0) {
        fmt_text(why, why_size, "restoring pid %d here from %s failed (see restore.log there)",
                 j->pid, images);
        return ret;
    }
    int new_pid = restored_pid(images);
    if (new_pid > 0)
        j->pid = new_pid;
    if (process_status(j->pid, reply, sizeof(reply), STATUS_WAIT_MS) < 0 || !reply_live(reply)) {
        fmt_text(why, why_size, "pid %d was restored here but its enclave did not import: %s",
                 j->pid, reply);
        return -EIO;
    }
    return 0;
}

static void send_discard(struct spmd_journal *j)
{
    struct spm_tls_conn *c = NULL;
    char why[256];
    if (peer_connect(j->peer, SPMD_HELLO_RESUME, j, &c, why, sizeof(why)) < 0) {
        spm_info("spmd: cannot tell %s to discard migration: %s", j->peer, why);
        return;
    }
    if (spm_tls_send(c, SPMD_WIRE_DISCARD, NULL, 0, PEER_TIMEOUT_MS) == 0)
        (void)recv_expect(c, SPMD_WIRE_OK, NULL, 0, NULL, PEER_TIMEOUT_MS, why, sizeof(why));
    spm_tls_close(c);
}

/* Rolls back a migration whose key never left: the destination drops its
 * copy first (on a shared machine its stopped copy holds the pid), then the
 * process runs here again. */
static int roll_back(struct spmd_journal *j, struct admin *a, char *why, size_t why_size)
{
    send_discard(j);
    struct lazy_dump *l = lazy_take(j->id);
    if (l) {
        /* Post-copy: the tree is still frozen in its dump; failing the dump
         * lets it run on here. */
        char ignored[256];
        emit(a, "progress phase=rollback detail=ending-lazy-dump");
        (void)lazy_end(l, false, NULL, ignored, sizeof(ignored));
        tcp_repair_off_all(j->pid);
        if (j->ip[0])
            (void)service_ip_add(j->ip);
    }
    if (process_alive(j->pid) && process_state(j->pid) == 'T') {
        /* The destination's stopped copy is still there (unreachable peer
         * on a shared machine): restoring would collide with it. */
        fmt_text(why, why_size,
                 "the destination's stopped copy of pid %d still exists and %s cannot be told "
                 "to discard it; run 'spm recover' again when it is reachable",
                 j->pid, j->peer);
        return -EAGAIN;
    }
    int ret = restore_in_place(j, a, why, why_size);
    if (ret == 0) {
        (void)journal_phase(j, "kept");
        drop_images(j);
    }
    return ret;
}

/* ---- Source: GO and settling ---- */

static int send_go(struct spm_tls_conn *c, struct spmd_wire_running *running, char *why,
                   size_t why_size)
{
    int ret = spm_tls_send(c, SPMD_WIRE_GO, NULL, 0, PEER_TIMEOUT_MS);
    if (ret < 0) {
        fmt_text(why, why_size, "cannot send GO: %s", strerror(-ret));
        return ret;
    }
    return recv_expect(c, SPMD_WIRE_RUNNING, running, sizeof(*running), NULL,
                       STATUS_WAIT_MS + PEER_TIMEOUT_MS, why, why_size);
}

static int parse_refs(const char *text, struct spm_me_checkpoint_ref *refs, size_t capacity,
                      size_t *count)
{
    /* The journal keeps the value of the export's refs= field. */
    char line[sizeof(((struct spmd_journal *)0)->refs) + 8];
    if (fmt_text(line, sizeof(line), "refs=%s", text) >= (int)sizeof(line))
        return -E2BIG;
    return spm_control_parse_refs(line, refs, capacity, count);
}

/* Settles a migration interrupted at or after "handover": the MEs decide
 * (RESOLVE), then the destination runs (GO) or the source rolls back. */
static int settle(struct spmd_journal *j, struct admin *a, char *why, size_t why_size)
{
    struct spm_me_checkpoint_ref refs[4];
    size_t count = 0;
    int ret = parse_refs(j->refs, refs, 4, &count);
    if (ret < 0 || count != 1) {
        fmt_text(why, why_size, "the journal's checkpoint reference is unusable");
        return ret < 0 ? ret : -EBADMSG;
    }
    struct spm_tls_conn *c = NULL;
    if ((ret = peer_connect(j->peer, SPMD_HELLO_RESUME, j, &c, why, why_size)) < 0)
        return ret;
    uint32_t outcome = 0;
    if (strcmp(j->phase, "handover") == 0) {
        uint64_t session = 0;
        uint8_t platform[32];
        emit(a, "progress phase=resolve");
        ret = attest(c, &session, platform, why, why_size);
        if (ret == 0)
            ret = handover(c, session, &refs[0], true, &outcome, why, why_size);
        if (ret < 0)
            goto out;
        if (outcome == SPM_ME_PEER_OUTCOME_KEPT) {
            emit(a, "progress phase=resolve outcome=kept");
            spm_tls_close(c);
            c = NULL;
            return roll_back(j, a, why, why_size);
        }
        if (outcome != SPM_ME_PEER_OUTCOME_HANDED_OVER) {
            ret = -EPROTO;
            fmt_text(why, why_size, "the resolution ended with outcome %u", outcome);
            goto out;
        }
        emit(a, "progress phase=resolve outcome=handed-over");
        if ((ret = journal_phase(j, "handed-over")) < 0)
            goto out;
    }
    struct spmd_wire_running running;
    emit(a, "progress phase=resume");
    if ((ret = send_go(c, &running, why, why_size)) < 0)
        goto out;
    struct lazy_dump *l = lazy_take(j->id);
    if (l && (ret = lazy_end(l, true, NULL, why, why_size)) < 0)
        goto out;
    (void)journal_phase(j, "done");
    drop_images(j);
out:
    if (c)
        spm_tls_close(c);
    return ret;
}

/* ---- Source: one migration, start to end ---- */

struct migrate_request {
    int pid;
    int mode;
    char to[64];
    char ip[64];
    char keep[PATH_MAX];
};

/* Post-copy restores into a new PID namespace (the frozen source keeps its
 * PIDs until every page has moved), so the process must be the init of its
 * own one, which CRIU dumps and restores as a whole. */
static int post_copy_check(int pid, char *why, size_t why_size)
{
    char path[64], line[256];
    fmt_text(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    if (!f) {
        fmt_text(why, why_size, "no process %d on this host", pid);
        return -ESRCH;
    }
    int depth = 0;
    long last = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "NSpid:", 6) != 0)
            continue;
        char *save = NULL;
        for (char *tok = strtok_r(line + 6, " \t\n", &save); tok;
             tok = strtok_r(NULL, " \t\n", &save)) {
            last = strtol(tok, NULL, 10);
            depth++;
        }
        break;
    }
    fclose(f);
    if (depth < 2 || last != 1) {
        fmt_text(why, why_size,
                 "post-copy needs pid %d to be the init of its own PID namespace (start it with "
                 "'unshare --pid --fork'): its source copy stays frozen, holding its PIDs, until "
                 "every page has moved, so the destination restores it into a new PID namespace; "
                 "use --mode stop for this process",
                 pid);
        return -EOPNOTSUPP;
    }
    /* userfaultfd hands pages over through pipes of up to 4 MiB. */
    unsigned long long cur = 0;
    if (read_number("/proc/sys/fs/pipe-max-size", &cur) == 0) {
        if (cur < 4194304ull) {
            FILE *w = fopen("/proc/sys/fs/pipe-max-size", "we");
            if (!w || fputs("4194304", w) < 0 || fclose(w) != 0) {
                fmt_text(why, why_size,
                         "post-copy needs fs.pipe-max-size >= 4194304 and it cannot be raised");
                return -EPERM;
            }
        }
    }
    return 0;
}

static int mode_check(int mode, char *why, size_t why_size)
{
    if (mode == SPMD_MODE_PRE) {
        char *argv[] = {(char *)criu_binary(), "check", "--feature", "mem_dirty_track", NULL};
        int status = 0;
        int ret = run(argv, NULL, NULL, &status, NULL);
        if (ret < 0 || status != 0) {
            fmt_text(why, why_size,
                     "pre-copy is unavailable on this host: the kernel has no soft-dirty memory "
                     "tracking (CONFIG_MEM_SOFT_DIRTY), so 'criu check --feature "
                     "mem_dirty_track' fails and CRIU cannot pre-dump; use --mode stop "
                     "(default) or --mode post");
            return -EOPNOTSUPP;
        }
        fmt_text(why, why_size,
                 "pre-copy of enclave processes is not supported yet: on the simulated "
                 "platform ELRANGE is ordinary memory a pre-dump would copy in the clear; use "
                 "--mode stop (default) or --mode post");
        return -EOPNOTSUPP;
    }
    return 0;
}

static void run_migration(struct admin *a, const struct migrate_request *req)
{
    char why[512] = "";
    struct spmd_journal j = {.role = SPMD_ROLE_SOURCE, .pid = req->pid, .mode = req->mode};
    fmt_text(j.peer, sizeof(j.peer), "%s", req->to);
    fmt_text(j.ip, sizeof(j.ip), "%s", req->ip);
    char dir[PATH_MAX], images[PATH_MAX];
    struct spm_tls_conn *c = NULL;
    uint64_t t0 = now_us(), t_freeze = 0, dump_us = 0, transfer_us = 0, restore_us = 0,
             handover_us = 0, resume_us = 0, enclave_bytes = 0, export_us = 0, criu_bytes = 0,
             t_running = 0, postcopy_us = 0, page_bytes = 0;
    int ret, new_pid = req->pid;
    struct lazy_dump *lazy = NULL;

    if ((ret = mode_check(req->mode, why, sizeof(why))) < 0)
        goto fail_early;
    if (!process_alive(req->pid)) {
        ret = -ESRCH;
        fmt_text(why, sizeof(why), "no process %d on this host", req->pid);
        goto fail_early;
    }
    if (req->mode == SPMD_MODE_POST && (ret = post_copy_check(req->pid, why, sizeof(why))) < 0)
        goto fail_early;
    if (!spm_random(j.id, sizeof(j.id))) {
        ret = -EIO;
        fmt_text(why, sizeof(why), "no randomness for a migration id");
        goto fail_early;
    }
    if ((ret = migration_dir(j.id, NULL, dir, sizeof(dir))) < 0 ||
        (ret = migration_dir(j.id, IMAGES_DIR, images, sizeof(images))) < 0 ||
        (ret = spm_mkdir_p(images, 0700)) < 0) {
        fmt_text(why, sizeof(why), "cannot create a migration directory under %s",
                 g_mig.migrations_dir);
        goto fail_early;
    }
    active_set(j.id, true);
    char hex[33];
    id_hex(j.id, hex);
    emit(a, "progress phase=connect id=%s to=%s", hex, req->to);
    if ((ret = peer_connect(req->to, SPMD_HELLO_MIGRATE, &j, &c, why, sizeof(why))) < 0)
        goto fail_clean;
    emit(a, "progress phase=attest peer=%s", spm_tls_peer_name(c));
    uint64_t session = 0;
    uint8_t peer_platform[32];
    if ((ret = attest(c, &session, peer_platform, why, sizeof(why))) < 0)
        goto fail_clean;
    char platform_hex[65];
    spm_hex(peer_platform, 32, platform_hex);
    emit(a, "progress phase=attested peer_platform=%.16s", platform_hex);
    if ((ret = journal_phase(&j, "dumping")) < 0) {
        fmt_text(why, sizeof(why), "cannot write the migration journal");
        goto fail_clean;
    }

    /* Downtime starts here: the export closes the enclave's gate. */
    emit(a, "progress phase=dump");
    uint16_t lazy_port = 0;
    pid_t lazy_child = 0;
    if (req->mode == SPMD_MODE_POST && (ret = spmd_tunnel_free_port(&lazy_port)) < 0) {
        fmt_text(why, sizeof(why), "no loopback port for CRIU's page server: %s", strerror(-ret));
        goto fail_discard;
    }
    t_freeze = now_us();
    if ((ret = criu_dump(&j, images, &dump_us, lazy_port, &lazy_child, why, sizeof(why))) < 0) {
        /* A criu that died mid-dump (killed, out of memory) unlocked
         * nothing: its lock table would go on dropping the connections of
         * the process, which runs on here, and their sockets may be left
         * in repair mode. A criu that failed by itself has undone both. */
        char dead_run[64];
        if (criu_run_id(images, dead_run, sizeof(dead_run)) == 0)
            criu_lock_drop(dead_run);
        if (process_alive(j.pid))
            tcp_repair_off_all(j.pid);
        goto fail_discard;
    }
    /* The dump's network lock is its own nft table; other dumps' stay. */
    char run_id[64];
    if (criu_run_id(images, run_id, sizeof(run_id)) < 0)
        spm_error("spmd: %s/inventory.img names no criu run id: its network lock table will stay",
                  images);
    if (lazy_port && !(lazy = lazy_add(j.id, lazy_child, lazy_port, run_id))) {
        spmd_tunnel_reset_page_server(lazy_port);
        int ignored;
        (void)reap(lazy_child, &ignored);
        ret = -ENOSPC;
        fmt_text(why, sizeof(why), "too many post-copy migrations at once; pid %d runs on here",
                 j.pid);
        goto fail_discard;
    }
    if ((ret = read_export(images, j.pid, j.refs, sizeof(j.refs), &enclave_bytes, &export_us)) <
        0) {
        fmt_text(why, sizeof(why),
                 "pid %d was dumped but left no enclave export record: it is not an SPM "
                 "process (use plain CRIU for it); restoring it here",
                 j.pid);
        goto fail_rollback;
    }
    struct spm_me_checkpoint_ref refs[4];
    size_t ref_count = 0;
    if (parse_refs(j.refs, refs, 4, &ref_count) < 0 || ref_count != 1) {
        ret = -EOPNOTSUPP;
        fmt_text(why, sizeof(why),
                 "pid %d exported %zu enclave checkpoints; migrating exactly one is "
                 "supported; restoring it here",
                 j.pid, ref_count);
        goto fail_rollback;
    }
    if ((ret = journal_phase(&j, "dumped")) < 0)
        goto fail_rollback;
    if (j.ip[0])
        (void)service_ip_del(j.ip);
    /* A post-copy dump keeps its lock until it ends (lazy_end drops it). */
    if (!lazy)
        criu_lock_drop(run_id);
    emit(a, "progress phase=dumped enclave_bytes=%" PRIu64 " dump_ms=%.1f", enclave_bytes,
         dump_us / 1000.0);
    if (req->keep[0])
        (void)copy_tree(images, req->keep);

    if (lazy) {
        /* The page server's stream gets its own connection, opened now so
         * that the server (waiting for its one client) is taken by us. */
        struct spm_tls_conn *tc = NULL;
        if ((ret = peer_connect(req->to, SPMD_HELLO_TUNNEL, &j, &tc, why, sizeof(why))) < 0)
            goto fail_rollback;
        if ((ret = spmd_tunnel_source_start(tc, lazy_port, &lazy->tunnel)) < 0) {
            spm_tls_close(tc);
            fmt_text(why, sizeof(why), "cannot start the post-copy tunnel: %s", strerror(-ret));
            goto fail_rollback;
        }
    }
    struct transfer t = {0};
    uint64_t ts = now_us();
    if ((ret = send_images(c, images, &t, a, why, sizeof(why))) < 0)
        goto fail_rollback;
    transfer_us = now_us() - ts;
    criu_bytes = t.bytes;
    emit(a, "progress phase=transfer bytes=%" PRIu64 " total=%" PRIu64 " rate_mbps=%.1f", t.bytes,
         t.total, transfer_us ? (double)t.bytes / (double)transfer_us : 0.0);
    if ((ret = journal_phase(&j, "sent")) < 0)
        goto fail_rollback;

    emit(a, "progress phase=restore");
    struct spmd_wire_restore rs = {.flags = lazy ? SPMD_RESTORE_LAZY : 0};
    fmt_text(rs.service_ip, sizeof(rs.service_ip), "%s", j.ip);
    struct spmd_wire_restored restored;
    ret = spm_tls_send(c, SPMD_WIRE_RESTORE, &rs, sizeof(rs), PEER_TIMEOUT_MS);
    if (ret == 0)
        ret = recv_expect(c, SPMD_WIRE_RESTORED, &restored, sizeof(restored), NULL,
                          PEER_TIMEOUT_MS * 4, why, sizeof(why));
    else
        fmt_text(why, sizeof(why), "cannot send to %s: %s", req->to, strerror(-ret));
    if (ret < 0)
        goto fail_rollback;
    restore_us = restored.restore_us;
    new_pid = (int)restored.pid;
    if (lazy && !spmd_tunnel_source_ok(lazy->tunnel)) {
        ret = -EPIPE;
        fmt_text(why, sizeof(why), "the post-copy page stream broke before the hand-over");
        goto fail_rollback;
    }
    if ((ret = journal_phase(&j, "handover")) < 0)
        goto fail_rollback;

    emit(a, "progress phase=handover");
    uint32_t outcome = 0;
    uint64_t th = now_us();
    ret = handover(c, session, &refs[0], false, &outcome, why, sizeof(why));
    handover_us = now_us() - th;
    if (ret < 0 || outcome != SPM_ME_PEER_OUTCOME_HANDED_OVER) {
        char first[512];
        fmt_text(first, sizeof(first), "%s", why[0] ? why : "hand-over incomplete");
        spm_tls_close(c);
        c = NULL;
        emit(a, "progress phase=resolve reason=\"%s\"", first);
        ret = settle(&j, a, why, sizeof(why));
        if (ret == 0 && strcmp(j.phase, "kept") == 0) {
            ret = -ECANCELED;
            fmt_text(why, sizeof(why), "%s; the key stayed here and pid %d runs here again", first,
                     j.pid);
        } else if (ret < 0) {
            char second[512];
            fmt_text(second, sizeof(second), "%s", why);
            fmt_text(why, sizeof(why),
                     "%s; then: %s. The hand-over is in doubt: nothing runs until 'spm "
                     "recover' settles it",
                     first, second);
        }
        if (ret < 0)
            goto fail_noclean;
        goto report;
    }
    if ((ret = journal_phase(&j, "handed-over")) < 0)
        goto fail_noclean;
    emit(a, "progress phase=resume");
    fault_crash("src-crash-before-go");
    struct spmd_wire_running running = {0};
    uint64_t tr = now_us();
    ret = send_go(c, &running, why, sizeof(why));
    t_running = now_us();
    resume_us = t_running - tr;
    if (ret < 0) {
        fmt_text(why + strlen(why), sizeof(why) - strlen(why),
                 "; the key is at the destination: 'spm recover' resumes it there");
        goto fail_noclean;
    }
    if (lazy) {
        /* The process runs there; the rest of its memory follows. */
        emit(a, "progress phase=post-copy pid=%d", new_pid);
        ret = lazy_end(lazy, true, &page_bytes, why, sizeof(why));
        lazy = NULL;
        postcopy_us = now_us() - t_running;
        if (ret < 0) {
            fmt_text(why + strlen(why), sizeof(why) - strlen(why),
                     "; the destination stops its copy rather than run it with pages missing");
            goto fail_noclean;
        }
    }
    (void)journal_phase(&j, "done");
    remove_tree(images);

report:;
    uint64_t t_end = now_us();
    if (!t_running)
        t_running = t_end;
    emit(a,
         "report ok=1 id=%s pid=%d new_pid=%d to=%s mode=%s total_ms=%.1f downtime_ms=%.1f "
         "enclave_bytes=%" PRIu64 " criu_bytes=%" PRIu64 " export_ms=%.1f dump_ms=%.1f "
         "transfer_ms=%.1f restore_ms=%.1f handover_ms=%.1f resume_ms=%.1f "
         "postcopy_ms=%.1f postcopy_bytes=%" PRIu64,
         hex, j.pid, new_pid, req->to, req->mode == SPMD_MODE_POST ? "post" : "stop",
         (t_end - t0) / 1000.0, (t_running - t_freeze) / 1000.0, enclave_bytes,
         criu_bytes + page_bytes, export_us / 1000.0, dump_us / 1000.0, transfer_us / 1000.0,
         restore_us / 1000.0, handover_us / 1000.0, resume_us / 1000.0, postcopy_us / 1000.0,
         page_bytes);
    if (c)
        spm_tls_close(c);
    active_set(j.id, false);
    return;

fail_rollback : {
    char first[512];
    fmt_text(first, sizeof(first), "%s", why);
    if (c) {
        spm_tls_close(c);
        c = NULL;
    }
    char second[512] = "";
    int r = roll_back(&j, a, second, sizeof(second));
    if (r == 0)
        fmt_text(why, sizeof(why), "%s; the migration was rolled back and pid %d runs here again",
                 first, j.pid);
    else
        fmt_text(why, sizeof(why), "%s; rolling back failed too: %s", first, second);
    goto fail_noclean;
}
fail_discard:
    (void)journal_phase(&j, "failed");
    if (c && spm_tls_send(c, SPMD_WIRE_DISCARD, NULL, 0, PEER_TIMEOUT_MS) == 0) {
        char ignored[64];
        (void)recv_expect(c, SPMD_WIRE_OK, NULL, 0, NULL, PEER_TIMEOUT_MS, ignored,
                          sizeof(ignored));
    }
    /* The process may be frozen and exported if CRIU died mid-dump. */
    if (process_alive(j.pid)) {
        char ignored[256];
        (void)restore_in_place(&j, a, ignored, sizeof(ignored));
    }
    goto fail_noclean;
fail_clean:
    remove_tree(dir);
fail_noclean:
    if (c)
        spm_tls_close(c);
    active_set(j.id, false);
fail_early:
    emit(a, "error status=%d msg=%s", ret, why[0] ? why : strerror(-ret));
}

/* ---- Recovery ---- */

static int recover_source(struct spmd_journal *j, struct admin *a, char *why, size_t why_size)
{
    if (strcmp(j->phase, "handover") == 0 || strcmp(j->phase, "handed-over") == 0)
        return settle(j, a, why, why_size);
    /* The key never left: put the process back here. */
    if (strcmp(j->phase, "dumping") == 0 && process_alive(j->pid)) {
        int ret = restore_in_place(j, a, why, why_size);
        if (ret == 0)
            (void)journal_phase(j, "kept");
        return ret;
    }
    return roll_back(j, a, why, why_size);
}

static int dest_resume(struct spmd_journal *j, struct spmd_wire_running *running, char *why,
                       size_t why_size);
static void dest_discard(struct spmd_journal *j);

static int recover_dest(struct spmd_journal *j, struct admin *a, char *why, size_t why_size)
{
    struct spm_tls_conn *c = NULL;
    int ret = peer_connect(j->peer, SPMD_HELLO_RESUME, j, &c, why, why_size);
    if (ret < 0)
        return ret;
    struct spmd_wire_state q = {0};
    memcpy(q.migration_id, j->id, 16);
    struct spmd_wire_state st;
    ret = spm_tls_send(c, SPMD_WIRE_QUERY, &q, sizeof(q), PEER_TIMEOUT_MS);
    if (ret == 0)
        ret =
            recv_expect(c, SPMD_WIRE_STATE, &st, sizeof(st), NULL, PEER_TIMEOUT_MS, why, why_size);
    spm_tls_close(c);
    if (ret < 0)
        return ret;
    if (st.outcome == SPMD_OUTCOME_HANDED_OVER) {
        struct spmd_wire_running running;
        emit(a, "progress phase=resume");
        return dest_resume(j, &running, why, why_size);
    }
    if (st.outcome == SPMD_OUTCOME_KEPT) {
        dest_discard(j);
        return 0;
    }
    fmt_text(why, why_size,
             "the source has not settled this migration yet; run 'spm recover' "
             "on the source host");
    return -EAGAIN;
}

static void run_recover(struct admin *a)
{
    DIR *d = opendir(g_mig.migrations_dir);
    unsigned settled = 0, pending = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            struct spmd_journal j;
            if (e->d_name[0] == '.' || journal_read(e->d_name, &j) < 0 || journal_final(&j))
                continue;
            if (active_has(j.id))
                continue;
            char why[512] = "";
            emit(a, "progress phase=recover id=%s role=%s journal=%s pid=%d peer=%s", e->d_name,
                 j.role == SPMD_ROLE_SOURCE ? "source" : "destination", j.phase, j.pid, j.peer);
            int ret = j.role == SPMD_ROLE_SOURCE ? recover_source(&j, a, why, sizeof(why))
                                                 : recover_dest(&j, a, why, sizeof(why));
            if (ret == 0) {
                settled++;
                emit(a, "recovered id=%s outcome=%s pid=%d", e->d_name, j.phase, j.pid);
            } else {
                pending++;
                emit(a, "pending id=%s status=%d msg=%s", e->d_name, ret, why);
            }
        }
        closedir(d);
    }
    emit(a, "report ok=%d settled=%u pending=%u", pending == 0, settled, pending);
}

/* ---- Destination ---- */

struct incoming {
    struct spmd_journal j;
    char images[PATH_MAX];
    int fd; /* the file being received */
    uint64_t size, got;
    struct spm_sha256 hash;
    unsigned files;
    uint64_t bytes;
    unsigned sealed_seen;
};

static void dest_discard(struct spmd_journal *j)
{
    /* Only a copy this host restored is ours to kill: before that the pid
     * is the source's (one machine, one pid space, in the tests). */
    bool restored_here = strcmp(j->phase, "restoring") == 0 || strcmp(j->phase, "restored") == 0;
    spmd_tunnel_forget(j->id);
    if (restored_here && process_alive(j->pid) && process_state(j->pid) == 'T') {
        kill(j->pid, SIGKILL);
        wait_gone(j->pid, 5000);
    }
    if (j->ip[0])
        (void)service_ip_del(j->ip);
    /* CRIU's logs outlive the discarded images: they say what went wrong. */
    char from[PATH_MAX], to[PATH_MAX];
    static const char *const logs[] = {"restore.log", "lazy.log"};
    for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++)
        if (migration_dir(j->id, IMAGES_DIR, from, sizeof(from)) == 0 &&
            migration_dir(j->id, logs[i], to, sizeof(to)) == 0 &&
            strlen(from) + strlen(logs[i]) + 2 < sizeof(from)) {
            strcat(from, "/");
            strcat(from, logs[i]);
            (void)rename(from, to);
        }
    drop_images(j);
    (void)journal_phase(j, "discarded");
}

/* The key is here now: let the stopped process import it, or restore it
 * again from the images when it is gone (e.g. this host restarted). */
static int dest_resume(struct spmd_journal *j, struct spmd_wire_running *running, char *why,
                       size_t why_size)
{
    char reply[SPM_CONTROL_MAX_LINE] = "";
    uint64_t start = now_us();
    memset(running, 0, sizeof(*running));
    running->pid = (uint32_t)j->pid;
    if (!process_alive(j->pid) && j->mode == SPMD_MODE_POST) {
        fmt_text(why, why_size,
                 "pid %d is gone here and a post-copy migration's images hold no memory to "
                 "restore it from",
                 j->pid);
        return -ESRCH;
    }
    if (!process_alive(j->pid)) {
        char images[PATH_MAX];
        int ret = migration_dir(j->id, IMAGES_DIR, images, sizeof(images));
        if (ret == 0 && j->ip[0])
            (void)service_ip_add(j->ip);
        if (ret == 0)
            ret = criu_restore(images, true, false, NULL);
        if (ret < 0) {
            fmt_text(why, why_size, "pid %d is gone here and restoring it again failed", j->pid);
            return ret;
        }
        int new_pid = restored_pid(images);
        if (new_pid > 0)
            j->pid = new_pid;
    }
    kill(j->pid, SIGCONT);
    int ret = process_status(j->pid, reply, sizeof(reply), STATUS_WAIT_MS);
    if (ret < 0 || !reply_live(reply)) {
        fmt_text(why, why_size, "pid %d did not import its enclave here: %s", j->pid,
                 ret < 0 ? strerror(-ret) : reply);
        return ret < 0 ? ret : -EIO;
    }
    unsigned long long import_us = 0;
    if (spm_control_reply_u64(reply, "import_us", &import_us) < 0)
        import_us = 0;
    running->import_us = import_us;
    running->resume_us = now_us() - start;
    (void)journal_phase(j, "running");
    drop_images(j);
    return 0;
}

/* Post-copy: the tunnel broke while the copy here may run; its missing
 * pages will not come, so it must not go on with zero-filled memory. */
static void dest_lost(const uint8_t id[16], const char *why)
{
    char hex[33];
    struct spmd_journal j;
    id_hex(id, hex);
    if (journal_read(hex, &j) < 0)
        return;
    spm_error("spmd: migration %s: pid %d lost pages still at the source (%s); stopping it "
              "(SIGKILL) rather than let it run on memory that is not its own",
              hex, j.pid, why);
    if (process_alive(j.pid)) {
        kill(j.pid, SIGKILL);
        wait_gone(j.pid, 5000);
    }
    (void)journal_phase(&j, "lost");
}

/* Post-copy: CRIU's lazy-pages daemon, dialling the tunnel's loopback end,
 * serving the restore's page faults over images/lazy-pages.socket. */
static int dest_lazy_daemon(struct incoming *in, char *why, size_t why_size)
{
    uint16_t port = 0;
    int ret = spmd_tunnel_port(in->j.id, 10000, &port);
    if (ret < 0) {
        fmt_text(why, why_size, "the post-copy tunnel from the source never arrived");
        return ret;
    }
    char port_text[8], log_path[PATH_MAX], sock[PATH_MAX];
    fmt_text(port_text, sizeof(port_text), "%u", port);
    fmt_text(log_path, sizeof(log_path), "%s/lazy.out", in->images);
    fmt_text(sock, sizeof(sock), "%s/lazy-pages.socket", in->images);
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)criu_binary();
    argv[n++] = "lazy-pages";
    argv[n++] = "--page-server";
    argv[n++] = "--address";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--port";
    argv[n++] = port_text;
    argv[n++] = "-D";
    argv[n++] = in->images;
    argv[n++] = "-o";
    argv[n++] = "lazy.log";
    argv[n++] = "-v4";
    if (plugin_dir()) {
        argv[n++] = "--libdir";
        argv[n++] = (char *)plugin_dir();
    }
    argv[n] = NULL;
    pid_t child;
    if ((ret = spawn(argv, NULL, log_path, &child)) < 0) {
        fmt_text(why, why_size, "cannot run criu lazy-pages: %s", strerror(-ret));
        return ret;
    }
    spmd_tunnel_set_daemon(in->j.id, child);
    for (int waited = 0; waited < 10000; waited += 2) {
        struct stat st;
        if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
            return 0;
        if (kill(child, 0) < 0)
            break;
        usleep(2000);
    }
    fmt_text(why, why_size, "criu lazy-pages did not start here (see %s/lazy.log)", in->images);
    return -EIO;
}

/* The restored copy's pid as CRIU wrote it: the same as the dumped one,
 * or a new host pid for the init of its own PID namespace. */
static int restored_pid(const char *images)
{
    char path[PATH_MAX];
    fmt_text(path, sizeof(path), "%s/restored.pid", images);
    unsigned long long pid = 0;
    return read_number(path, &pid) == 0 && pid > 0 && pid < INT_MAX ? (int)pid : -1;
}

static int dest_file_begin(struct incoming *in, const uint8_t *body, size_t size, char *why,
                           size_t why_size)
{
    struct spmd_wire_file f;
    char name[SPMD_WIRE_NAME_MAX + 1];
    if (in->fd >= 0) {
        fmt_text(why, why_size, "FILE_BEGIN out of order or short");
        return -EBADMSG;
    }
    int ret = spmd_wire_file_begin_decode(body, size, &f, name, why, why_size);
    if (ret < 0)
        return ret;
    if (in->bytes + f.size > SPMD_WIRE_MAX_IMAGE_BYTES || in->files >= SPMD_WIRE_MAX_FILES) {
        fmt_text(why, why_size, "FILE_BEGIN malformed or over the limits");
        return -EBADMSG;
    }
    char path[PATH_MAX];
    fmt_text(path, sizeof(path), "%s/%s", in->images, name);
    in->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (in->fd < 0) {
        fmt_text(why, why_size, "cannot create %s: %s", path, strerror(errno));
        return -errno;
    }
    in->size = f.size;
    in->got = 0;
    spm_sha256_init(&in->hash);
    return 0;
}

static int dest_file_data(struct incoming *in, const uint8_t *body, size_t size, char *why,
                          size_t why_size)
{
    if (in->fd < 0) {
        fmt_text(why, why_size, "FILE_DATA out of order or beyond the file's size");
        return -EBADMSG;
    }
    int ret = spmd_wire_file_data_decode(size, in->size, in->got, why, why_size);
    if (ret < 0)
        return ret;
    spm_sha256_update(&in->hash, body, size);
    while (size) {
        ssize_t put = write(in->fd, body, size);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0) {
            fmt_text(why, why_size, "cannot write an image file: %s", strerror(errno));
            return -errno;
        }
        body += put;
        size -= (size_t)put;
        in->got += (uint64_t)put;
    }
    return 0;
}

static int dest_file_end(struct incoming *in, const uint8_t *body, size_t size, char *why,
                         size_t why_size)
{
    struct spmd_wire_file_end end;
    uint8_t digest[32];
    if (in->fd < 0 || spmd_wire_file_end_decode(body, size, &end) < 0 || in->got != in->size) {
        fmt_text(why, why_size, "FILE_END out of order or the file is short");
        return -EBADMSG;
    }
    spm_sha256_final(&in->hash, digest);
    /* Made durable all at once at IMAGES_DONE (syncfs). */
    close(in->fd);
    in->fd = -1;
    if (memcmp(digest, end.sha256, 32) != 0) {
        fmt_text(why, why_size, "an image file arrived damaged (digest mismatch)");
        return -EBADMSG;
    }
    in->files++;
    in->bytes += in->size;
    return 0;
}

/* Every image file and the directory on stable storage: one syncfs for
 * the lot is far cheaper than an fsync per file. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int ret = syncfs(fd) < 0 || fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return ret;
}

/* One peer connection, served until it closes. */
static void serve_peer(struct spm_tls_conn *c)
{
    uint8_t *body = malloc(SPMD_WIRE_DATA_CHUNK + ME_BUFFER_SIZE);
    struct me_buf out = {0};
    struct incoming in = {.fd = -1};
    bool have_journal = false, fresh = false;
    char why[512];
    if (!body || me_alloc(&out) < 0)
        goto out;
    uint16_t type;
    size_t size;
    struct spmd_wire_hello hello;
    int ret =
        spm_tls_recv(c, &type, body, SPMD_WIRE_DATA_CHUNK + ME_BUFFER_SIZE, &size, PEER_TIMEOUT_MS);
    if (ret < 0)
        goto out;
    if (type != SPMD_WIRE_HELLO) {
        (void)send_error(c, -EPROTO, "expected HELLO");
        goto out;
    }
    if ((ret = spmd_wire_hello_decode(body, size, &hello, why, sizeof(why))) < 0) {
        (void)send_error(c, ret, "%s", why);
        goto out;
    }
    char hex[33];
    id_hex(hello.migration_id, hex);
    if (hello.flags == SPMD_HELLO_TUNNEL) {
        ret = spmd_tunnel_attach(hello.migration_id, spm_tls_peer_name(c));
        if (ret < 0) {
            (void)send_error(c, ret, "no post-copy migration %s from %s expects a tunnel", hex,
                             spm_tls_peer_name(c));
            goto out;
        }
        struct spmd_wire_hello mine = {.version = SPMD_WIRE_VERSION, .flags = hello.flags};
        memcpy(mine.migration_id, hello.migration_id, 16);
        fmt_text(mine.name, sizeof(mine.name), "%s", g_mig.name);
        if (spm_tls_send(c, SPMD_WIRE_HELLO, &mine, sizeof(mine), PEER_TIMEOUT_MS) < 0) {
            spmd_tunnel_forget(hello.migration_id);
            goto out;
        }
        spmd_tunnel_serve(c, hello.migration_id, dest_lost);
        c = NULL;
        goto out;
    }
    if (hello.flags == SPMD_HELLO_RESUME) {
        have_journal = journal_read(hex, &in.j) == 0;
    } else {
        struct spmd_journal probe;
        if (journal_read(hex, &probe) == 0) {
            (void)send_error(c, -EEXIST, "migration %s is already known here", hex);
            goto out;
        }
        memset(&in.j, 0, sizeof(in.j));
        memcpy(in.j.id, hello.migration_id, 16);
        in.j.role = SPMD_ROLE_DEST;
        in.j.pid = (int)hello.pid;
        in.j.mode = (int)hello.mode;
        fmt_text(in.j.peer, sizeof(in.j.peer), "%s", hello.source);
        if (in.j.pid <= 0 || migration_dir(in.j.id, IMAGES_DIR, in.images, sizeof(in.images)) < 0 ||
            spm_mkdir_p(in.images, 0700) < 0 || journal_phase(&in.j, "receiving") < 0) {
            (void)send_error(c, -EIO, "cannot prepare to receive migration %s", hex);
            goto out;
        }
        if (in.j.mode == SPMD_MODE_POST && spmd_tunnel_expect(in.j.id, spm_tls_peer_name(c)) < 0) {
            (void)send_error(c, -ENOSPC, "cannot take another post-copy migration now");
            in.j.phase[0] = 0;
            dest_discard(&in.j);
            goto out;
        }
        have_journal = fresh = true;
    }
    if (have_journal)
        (void)migration_dir(in.j.id, IMAGES_DIR, in.images, sizeof(in.images));
    struct spmd_wire_hello mine = {.version = SPMD_WIRE_VERSION, .flags = hello.flags};
    memcpy(mine.migration_id, hello.migration_id, 16);
    fmt_text(mine.source, sizeof(mine.source), "%s", g_mig.listen_text);
    fmt_text(mine.name, sizeof(mine.name), "%s", g_mig.name);
    if (spm_tls_send(c, SPMD_WIRE_HELLO, &mine, sizeof(mine), PEER_TIMEOUT_MS) < 0)
        goto out;
    spm_info("spmd: %s from %s (%s) for migration %s of pid %u",
             hello.flags == SPMD_HELLO_MIGRATE ? "migration" : "recovery", hello.name,
             spm_tls_peer_name(c), hex, hello.pid);

    for (;;) {
        ret = spm_tls_recv(c, &type, body, SPMD_WIRE_DATA_CHUNK + ME_BUFFER_SIZE, &size,
                           PEER_TIMEOUT_MS * 4);
        if (ret < 0)
            break;
        why[0] = 0;
        switch (type) {
        case SPMD_WIRE_ME: {
            uint16_t me_type;
            if (spmd_wire_me_from_peer(body, size, &me_type) < 0) {
                ret = send_error(c, -EPROTO, "ME message type not accepted from a peer");
                goto out;
            }
            if ((ret = me_raw(body, size, &out)) < 0) {
                (void)send_error(c, ret, "the Migration Enclave here cannot be called");
                goto out;
            }
            if (me_type == SPM_ME_MSG_PEER_SEALED && hello.flags == SPMD_HELLO_MIGRATE &&
                ++in.sealed_seen == 1)
                fault_crash("dest-crash-after-store");
            ret = spm_tls_send(c, SPMD_WIRE_ME, out.data, out.size, PEER_TIMEOUT_MS);
            break;
        }
        case SPMD_WIRE_FILE_BEGIN:
            ret = !have_journal || strcmp(in.j.phase, "receiving") != 0
                      ? -EPROTO
                      : dest_file_begin(&in, body, size, why, sizeof(why));
            break;
        case SPMD_WIRE_FILE_DATA:
            ret = dest_file_data(&in, body, size, why, sizeof(why));
            break;
        case SPMD_WIRE_FILE_END:
            ret = dest_file_end(&in, body, size, why, sizeof(why));
            break;
        case SPMD_WIRE_IMAGES_DONE: {
            struct spmd_wire_images_done done;
            if (spmd_wire_images_done_decode(body, size, &done) < 0 || in.fd >= 0 ||
                !have_journal) {
                ret = -EBADMSG;
                fmt_text(why, sizeof(why), "IMAGES_DONE malformed or out of order");
                break;
            }
            if (done.files != in.files || done.bytes != in.bytes) {
                ret = -EBADMSG;
                fmt_text(why, sizeof(why),
                         "IMAGES_DONE says %u files/%" PRIu64 " bytes, %u/%" PRIu64 " arrived",
                         done.files, done.bytes, in.files, in.bytes);
                break;
            }
            ret = fsync_dir(in.images);
            if (ret == 0)
                ret = journal_phase(&in.j, "received");
            if (ret == 0)
                ret = spm_tls_send(c, SPMD_WIRE_OK, NULL, 0, PEER_TIMEOUT_MS);
            break;
        }
        case SPMD_WIRE_RESTORE: {
            struct spmd_wire_restore rs;
            if (!have_journal || strcmp(in.j.phase, "received") != 0) {
                ret = -EBADMSG;
                fmt_text(why, sizeof(why), "RESTORE malformed or before the images arrived");
                break;
            }
            if ((ret = spmd_wire_restore_decode(body, size, (uint32_t)in.j.mode, &rs, why,
                                                sizeof(why))) < 0)
                break;
            fmt_text(in.j.ip, sizeof(in.j.ip), "%s", rs.service_ip);
            if ((ret = journal_phase(&in.j, "restoring")) < 0)
                break;
            /* Unguarded, the clients' connections could be reset here:
             * refused, and the process runs on at the source. */
            if (in.j.ip[0] && (ret = guard_set(in.j.ip, true)) < 0) {
                fmt_text(why, sizeof(why),
                         "cannot drop TCP to the service address %s here while restoring (nft "
                         "refused the rule); nothing was restored",
                         in.j.ip);
                dest_discard(&in.j);
                break;
            }
            if (in.j.ip[0] && (ret = service_ip_add(in.j.ip)) < 0) {
                (void)guard_set(in.j.ip, false);
                fmt_text(why, sizeof(why), "cannot bring up the service address %s here", in.j.ip);
                dest_discard(&in.j);
                break;
            }
            uint64_t us = 0;
            char lazy_why[256] = "";
            ret =
                in.j.mode == SPMD_MODE_POST ? dest_lazy_daemon(&in, lazy_why, sizeof(lazy_why)) : 0;
            if (ret == 0)
                ret = criu_restore(in.images, true, in.j.mode == SPMD_MODE_POST, &us);
            if (in.j.ip[0])
                (void)guard_set(in.j.ip, false);
            int new_pid = ret == 0 ? restored_pid(in.images) : -1;
            if (new_pid > 0 && new_pid != in.j.pid) {
                /* The journal names the copy this host restored. */
                in.j.pid = new_pid;
                (void)journal_phase(&in.j, "restoring");
            }
            if (ret < 0 || new_pid <= 0 || process_state(in.j.pid) != 'T') {
                if (lazy_why[0])
                    spm_error("spmd: %s", lazy_why);
                if (ret == 0)
                    ret = -ESRCH;
                fmt_text(why, sizeof(why),
                         "criu restore of pid %d failed here (see %s/restore.log); nothing of "
                         "it runs here",
                         in.j.pid, in.images);
                char keep[PATH_MAX];
                fmt_text(keep, sizeof(keep), "%s.failed", in.images);
                remove_tree(keep);
                if (rename(in.images, keep) == 0)
                    (void)!spm_mkdir_p(in.images, 0700);
                dest_discard(&in.j);
                break;
            }
            if ((ret = journal_phase(&in.j, "restored")) < 0)
                break;
            struct spmd_wire_restored r = {.pid = (uint32_t)in.j.pid, .restore_us = us};
            ret = spm_tls_send(c, SPMD_WIRE_RESTORED, &r, sizeof(r), PEER_TIMEOUT_MS);
            break;
        }
        case SPMD_WIRE_GO: {
            fault_crash("dest-crash-on-go");
            struct spmd_wire_running running;
            if (spmd_wire_empty_decode(size) < 0 || !have_journal) {
                ret = -EBADMSG;
                fmt_text(why, sizeof(why), "GO malformed or for an unknown migration");
                break;
            }
            if (strcmp(in.j.phase, "running") == 0) {
                running = (struct spmd_wire_running){.pid = (uint32_t)in.j.pid};
                ret = 0;
            } else if (in.j.mode == SPMD_MODE_POST && spmd_tunnel_go(in.j.id) < 0) {
                /* The key is here but the copy's memory is not, and will
                 * not come: it never runs. */
                ret = -EPIPE;
                fmt_text(why, sizeof(why),
                         "the post-copy page stream from the source broke: pid %d here is "
                         "missing memory and is not resumed",
                         in.j.pid);
                dest_lost(in.j.id, "page stream broken before GO");
            } else {
                ret = dest_resume(&in.j, &running, why, sizeof(why));
            }
            if (ret == 0)
                ret =
                    spm_tls_send(c, SPMD_WIRE_RUNNING, &running, sizeof(running), PEER_TIMEOUT_MS);
            break;
        }
        case SPMD_WIRE_DISCARD:
            if (spmd_wire_empty_decode(size) < 0 || !have_journal) {
                ret = -EBADMSG;
                fmt_text(why, sizeof(why), "DISCARD malformed or for an unknown migration");
                break;
            }
            if (strcmp(in.j.phase, "running") == 0) {
                ret = -EBUSY;
                fmt_text(why, sizeof(why), "migration %s already runs here", hex);
                break;
            }
            dest_discard(&in.j);
            ret = spm_tls_send(c, SPMD_WIRE_OK, NULL, 0, PEER_TIMEOUT_MS);
            break;
        case SPMD_WIRE_QUERY: {
            struct spmd_wire_state q, st = {0};
            if (spmd_wire_state_decode(body, size, &q) < 0) {
                ret = -EBADMSG;
                fmt_text(why, sizeof(why), "QUERY malformed");
                break;
            }
            memcpy(st.migration_id, q.migration_id, 16);
            char qhex[33];
            struct spmd_journal qj;
            id_hex(q.migration_id, qhex);
            if (journal_read(qhex, &qj) < 0 || qj.role != SPMD_ROLE_SOURCE)
                st.outcome = SPMD_OUTCOME_UNKNOWN;
            else if (strcmp(qj.phase, "handed-over") == 0 || strcmp(qj.phase, "done") == 0)
                st.outcome = SPMD_OUTCOME_HANDED_OVER;
            else if (strcmp(qj.phase, "kept") == 0 || strcmp(qj.phase, "failed") == 0)
                st.outcome = SPMD_OUTCOME_KEPT;
            else
                st.outcome = SPMD_OUTCOME_PENDING;
            ret = spm_tls_send(c, SPMD_WIRE_STATE, &st, sizeof(st), PEER_TIMEOUT_MS);
            break;
        }
        default:
            ret = -EPROTO;
            fmt_text(why, sizeof(why), "unexpected message type %u", type);
        }
        if (ret < 0) {
            (void)send_error(c, ret, "%s", why[0] ? why : strerror(-ret));
            break;
        }
    }
out:
    if (in.fd >= 0)
        close(in.fd);
    /* The source went away before its images were complete (attestation
     * refused, link lost, source rolled back): nothing was restored here
     * and the key never moved, so nothing here is worth settling later. */
    if (fresh && strcmp(in.j.phase, "receiving") == 0)
        dest_discard(&in.j);
    free(out.data);
    free(body);
    spm_tls_close(c);
}

/* ---- Threads: the admin socket and the peer listener ---- */

static int parse_migrate(char *line, struct migrate_request *req, char *why, size_t why_size)
{
    memset(req, 0, sizeof(*req));
    req->mode = SPMD_MODE_STOP;
    char *save = NULL;
    for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *key = tok, *value = eq + 1;
        if (strcmp(key, "pid") == 0) {
            char *end;
            long v = strtol(value, &end, 10);
            if (*end || v <= 0 || v > INT32_MAX) {
                fmt_text(why, why_size, "pid=%s is not a process id", value);
                return -EINVAL;
            }
            req->pid = (int)v;
        } else if (strcmp(key, "to") == 0) {
            fmt_text(req->to, sizeof(req->to), "%s", value);
        } else if (strcmp(key, "ip") == 0) {
            if (strspn(value, "0123456789./") != strlen(value) || !strchr(value, '/')) {
                fmt_text(why, why_size, "ip=%s is not ADDRESS/PREFIX", value);
                return -EINVAL;
            }
            fmt_text(req->ip, sizeof(req->ip), "%s", value);
        } else if (strcmp(key, "keep") == 0) {
            fmt_text(req->keep, sizeof(req->keep), "%s", value);
        } else if (strcmp(key, "mode") == 0) {
            if (strcmp(value, "stop") == 0)
                req->mode = SPMD_MODE_STOP;
            else if (strcmp(value, "post") == 0)
                req->mode = SPMD_MODE_POST;
            else if (strcmp(value, "pre") == 0)
                req->mode = SPMD_MODE_PRE;
            else {
                fmt_text(why, why_size, "mode=%s: use stop, post or pre", value);
                return -EINVAL;
            }
        }
    }
    if (!req->pid || !req->to[0]) {
        fmt_text(why, why_size, "migrate needs pid= and to=");
        return -EINVAL;
    }
    return 0;
}

static void *admin_client(void *arg)
{
    struct admin a = {.fd = (int)(intptr_t)arg};
    char line[ADMIN_LINE_MAX];
    size_t used = 0;
    while (used < sizeof(line) - 1) {
        struct pollfd p = {.fd = a.fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t got = recv(a.fd, line + used, sizeof(line) - 1 - used, 0);
        if (got <= 0)
            break;
        used += (size_t)got;
        if (memchr(line, '\n', used))
            break;
    }
    line[used] = 0;
    line[strcspn(line, "\r\n")] = 0;
    int fd = a.fd;
    if (strncmp(line, "migrate ", 8) == 0) {
        struct migrate_request req;
        char why[256];
        if (parse_migrate(line + 8, &req, why, sizeof(why)) < 0)
            emit(&a, "error status=%d msg=%s", -EINVAL, why);
        else if (!g_mig.tls)
            emit(&a,
                 "error status=%d msg=this spmd has no TLS configuration (--tls-dir): it "
                 "cannot reach other hosts",
                 -ENOTCONN);
        else
            run_migration(&a, &req);
    } else if (strcmp(line, "recover") == 0) {
        if (!g_mig.tls)
            emit(&a, "error status=%d msg=this spmd has no TLS configuration (--tls-dir)",
                 -ENOTCONN);
        else
            run_recover(&a);
    } else {
        emit(&a, "error status=%d msg=unknown request (migrate, recover)", -EINVAL);
    }
    close(fd);
    return NULL;
}

/* Serves an accepted connection on a thread of its own, detached; closes
 * it when no thread can be started. */
static void serve_detached(void *(*serve)(void *), int fd)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0)
        close(fd);
    pthread_attr_destroy(&attr);
}

static void *admin_main(void *arg)
{
    (void)arg;
    while (!g_mig.stopping) {
        int fd = accept4(g_mig.admin_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        serve_detached(admin_client, fd);
    }
    return NULL;
}

static void *peer_client(void *arg)
{
    /* The handshake runs here, not in the accept loop: a peer that
     * connects and stays mute holds up only its own thread. */
    struct spm_tls_conn *c = NULL;
    if (spm_tls_server_handshake(g_mig.tls, (int)(intptr_t)arg, PEER_TIMEOUT_MS, &c) == 0)
        serve_peer(c);
    return NULL;
}

static void *peer_main(void *arg)
{
    (void)arg;
    while (!g_mig.stopping) {
        int fd = -1;
        int ret = spm_tls_accept_socket(g_mig.peer_fd, 10000, &fd);
        if (ret < 0) {
            if (g_mig.stopping)
                break;
            if (ret != -ETIMEDOUT)
                usleep(50000); /* e.g. out of descriptors: do not spin */
            continue;
        }
        serve_detached(peer_client, fd);
    }
    return NULL;
}

static int admin_listen(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path))
        return -ENAMETOOLONG;
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    unlink(path);
    /* Migrating a process is an operator's act: root only. */
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0600) < 0 ||
        listen(fd, 16) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int spmd_migrate_start(const struct spmd_migrate_config *config)
{
    g_mig.cfg = *config;
    fmt_text(g_mig.state_dir, sizeof(g_mig.state_dir), "%s", config->state_dir);
    fmt_text(g_mig.platform_dir, sizeof(g_mig.platform_dir), "%s",
             config->platform_dir ? config->platform_dir : "");
    fmt_text(g_mig.spmd_socket, sizeof(g_mig.spmd_socket), "%s", config->spmd_socket);
    fmt_text(g_mig.name, sizeof(g_mig.name), "%s", config->name ? config->name : "spmd");
    const char *f = getenv(FAULT_ENV);
    fmt_text(g_mig.fault, sizeof(g_mig.fault), "%s", f ? f : "");
    if (g_mig.fault[0])
        spm_error("spmd: FAULT INJECTION ACTIVE: %s", g_mig.fault);
    int n = fmt_text(g_mig.migrations_dir, sizeof(g_mig.migrations_dir), "%s/migrations",
                     config->state_dir);
    if (n < 0 || (size_t)n >= sizeof(g_mig.migrations_dir))
        return -ENAMETOOLONG;
    int ret = spm_mkdir_p(g_mig.migrations_dir, 0700);
    if (ret < 0)
        return ret;
    if (config->tls_dir) {
        char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
        fmt_text(cert, sizeof(cert), "%s/host.crt", config->tls_dir);
        fmt_text(key, sizeof(key), "%s/host.key", config->tls_dir);
        fmt_text(ca, sizeof(ca), "%s/ca.crt", config->tls_dir);
        if ((ret = spm_tls_config_load(cert, key, ca, &g_mig.tls)) < 0) {
            spm_error("spmd: cannot load the TLS host identity from %s (host.crt, host.key, "
                      "ca.crt; see 'spm host-cert'): %s",
                      config->tls_dir, strerror(-ret));
            return ret;
        }
    }
    if (config->listen) {
        char host[64];
        uint16_t port;
        if (!g_mig.tls) {
            spm_error("spmd: --listen needs --tls-dir: peers are authenticated by host "
                      "certificates");
            return -EINVAL;
        }
        if (parse_host_port(config->listen, host, sizeof(host), &port) < 0) {
            spm_error("spmd: --listen %s is not ADDR[:PORT]", config->listen);
            return -EINVAL;
        }
        if ((ret = spm_tls_listen(host, port, &g_mig.peer_fd)) < 0) {
            spm_error("spmd: cannot listen on %s:%u: %s", host, port, strerror(-ret));
            return ret;
        }
        fmt_text(g_mig.listen_text, sizeof(g_mig.listen_text), "%s:%u", host, port);
    }
    n = fmt_text(g_mig.admin_path, sizeof(g_mig.admin_path), "%s" SPMD_ADMIN_SUFFIX,
                 config->spmd_socket);
    if (n < 0 || (size_t)n >= sizeof(g_mig.admin_path))
        return -ENAMETOOLONG;
    if ((g_mig.admin_fd = admin_listen(g_mig.admin_path)) < 0) {
        ret = g_mig.admin_fd;
        spm_error("spmd: cannot listen on %s: %s", g_mig.admin_path, strerror(-ret));
        return ret;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, admin_main, NULL) != 0)
        return -EAGAIN;
    pthread_detach(t);
    if (g_mig.peer_fd >= 0) {
        if (pthread_create(&t, NULL, peer_main, NULL) != 0)
            return -EAGAIN;
        pthread_detach(t);
    }
    return 0;
}

void spmd_migrate_stop(void)
{
    g_mig.stopping = 1;
    if (g_mig.admin_fd >= 0) {
        shutdown(g_mig.admin_fd, SHUT_RDWR);
        unlink(g_mig.admin_path);
    }
    if (g_mig.peer_fd >= 0)
        shutdown(g_mig.peer_fd, SHUT_RDWR);
}
