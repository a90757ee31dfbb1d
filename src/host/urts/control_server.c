/* The control thread of an SPM process: the server end of control.h's
 * socket, through which the CRIU plugin (or the action script, or spm)
 * exports every enclave of this process before a dump and imports them
 * after a restore. It also holds the process-wide registry of loaded
 * enclaves those requests act on.
 *
 * One detached thread, started by the first spm_enclave_load, serves one
 * request per connection, in order. Being sequential is what makes the
 * restore protocol simple: the plugin queues "resume" in the backlog of the
 * restored socket before the process runs, and a later "status" is answered
 * only after that import finished. The thread blocks every signal (the
 * application's handlers never run on it) and never keeps the process
 * alive; the socket file is removed at exit. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "control/control.h"
#include "urts_internal.h"

/* A client that connects must send its line promptly. */
#define REQUEST_READ_TIMEOUT_MS 5000

static struct {
    pthread_mutex_t op;   /* exports, imports and registry changes, in turn */
    pthread_mutex_t lock; /* the list for readers, and `changed` */
    pthread_cond_t changed;
    struct spm_enclave *head;
    pthread_once_t once;
    int listen_fd;
    pid_t pid;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} g_control = {
    .op = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .changed = PTHREAD_COND_INITIALIZER,
    .once = PTHREAD_ONCE_INIT,
    .listen_fd = -1,
};

void spm_urts_op_lock(void)
{
    pthread_mutex_lock(&g_control.op);
}

void spm_urts_op_unlock(void)
{
    pthread_mutex_unlock(&g_control.op);
}

void spm_urts_state_changed(void)
{
    pthread_mutex_lock(&g_control.lock);
    pthread_cond_broadcast(&g_control.changed);
    pthread_mutex_unlock(&g_control.lock);
}

/* ---- Requests ---- */

static int format_error(char *reply, size_t size, int err, const char *msg)
{
    return snprintf(reply, size, "error errno=%d msg=%s", -err,
                    msg && msg[0] ? msg : strerror(-err));
}

static uint64_t elapsed_us(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - start->tv_sec) * 1000000u +
           (uint64_t)((now.tv_nsec - start->tv_nsec) / 1000);
}

static void handle_export(const struct spm_control_request *req, char *reply, size_t size)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct spm_ckpt_options o = {
        .timeout_ms = req->timeout_ms, .threads = req->threads, .lazy = req->lazy};
    unsigned count = 0, max_threads = 0;
    uint64_t bytes = 0, chunks = 0;
    int ret = 0;
    spm_urts_op_lock();
    /* Every enclave's reference must fit the reply line: refuse before
     * anything is exported rather than report a partial list. */
    unsigned registered = 0;
    for (struct spm_enclave *r = g_control.head; r; r = r->next_registered)
        registered++;
    if ((size_t)registered * (SPM_CONTROL_REF_MAX_TEXT + 1) + 160 > size) {
        spm_urts_op_unlock();
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "this process has %u enclaves; the export reply can name at most %u", registered,
                 (unsigned)((size - 160) / (SPM_CONTROL_REF_MAX_TEXT + 1)));
        format_error(reply, size, -E2BIG, msg);
        return;
    }
    struct spm_enclave *e, *undo_end = NULL;
    for (e = g_control.head; e; e = e->next_registered) {
        struct spm_ckpt_stats s;
        ret = spm_urts_export(e, &o, &s);
        if (ret == -EALREADY) { /* exported by an earlier request: still valid */
            pthread_mutex_lock(&e->lock);
            s = e->last_export;
            pthread_mutex_unlock(&e->lock);
            ret = 0;
        }
        if (ret < 0) {
            undo_end = e; /* e itself runs on (or stays frozen): not undone */
            break;
        }
        pthread_mutex_lock(&e->lock);
        bool named = e->has_ref;
        if (!named)
            snprintf(e->last_error, sizeof(e->last_error),
                     "checkpoint of the enclave at %#llx: its image header is malformed, so the "
                     "checkpoint cannot be named; the enclave is rebuilt in place",
                     (unsigned long long)e->base);
        if (!named)
            e->last_errno = -EPROTO;
        pthread_mutex_unlock(&e->lock);
        if (!named) {
            ret = -EPROTO;
            undo_end = e->next_registered; /* exported: rebuilt with the others */
            break;
        }
        count++;
        bytes += s.bytes;
        chunks += s.chunks;
        if (s.threads > max_threads)
            max_threads = s.threads;
    }
    if (ret < 0) {
        char msg[SPM_URTS_ERROR_SIZE];
        pthread_mutex_lock(&e->lock);
        snprintf(msg, sizeof(msg), "%s", e->last_error);
        pthread_mutex_unlock(&e->lock);
        /* All or nothing: the enclaves already exported are rebuilt in
         * place, which consumes their checkpoints (the process runs on). */
        for (struct spm_enclave *done = g_control.head; done != undo_end;
             done = done->next_registered) {
            struct spm_ckpt_stats s;
            bool permanent;
            int undo = spm_urts_import(done, NULL, &s, &permanent);
            if (undo < 0)
                spm_error("could not rebuild the enclave at %#llx after an export failed: %s",
                          (unsigned long long)done->base, strerror(-undo));
        }
        spm_urts_op_unlock();
        format_error(reply, size, ret, msg);
        return;
    }
    int n = snprintf(reply, size, "ok enclaves=%u bytes=%llu chunks=%llu threads=%u export_us=%llu",
                     count, (unsigned long long)bytes, (unsigned long long)chunks, max_threads,
                     (unsigned long long)elapsed_us(&start));
    /* The checkpoints the ME escrowed keys for, in registry order. Room
     * was checked above. */
    size_t used = n > 0 && (size_t)n < size ? (size_t)n : size;
    for (e = g_control.head; e && used < size; e = e->next_registered) {
        char text[SPM_CONTROL_REF_MAX_TEXT + 1];
        pthread_mutex_lock(&e->lock);
        struct spm_me_checkpoint_ref ref = e->last_ref;
        pthread_mutex_unlock(&e->lock);
        if (spm_control_format_ref(&ref, text, sizeof(text)) < 0)
            continue; /* cannot happen: the buffer holds the longest */
        n = snprintf(reply + used, size - used, "%s%s", e == g_control.head ? " refs=" : ",", text);
        used = n > 0 && (size_t)n < size - used ? used + (size_t)n : size;
    }
    spm_urts_op_unlock();
}

static void handle_resume(const struct spm_control_request *req, char *reply, size_t size)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned count = 0, max_threads = 0;
    uint64_t bytes = 0, chunks = 0;
    int ret = 0;
    char msg[SPM_URTS_ERROR_SIZE] = "";
    spm_urts_op_lock();
    /* The restoring side names the host the process now runs on: adopted
     * under the op lock, so no import runs half on the old values. */
    ret = spm_urts_adopt_host(req->platform, req->spmd);
    if (ret < 0) {
        spm_urts_op_unlock();
        snprintf(msg, sizeof(msg),
                 "resume: cannot adopt platform=%.300s spmd=%.300s (%s; want absolute paths, "
                 "the spmd "
                 "socket shorter than a unix socket name); nothing was imported",
                 req->platform[0] ? req->platform : "(unchanged)",
                 req->spmd[0] ? req->spmd : "(unchanged)", strerror(-ret));
        format_error(reply, size, ret, msg);
        return;
    }
    for (struct spm_enclave *e = g_control.head; e; e = e->next_registered) {
        pthread_mutex_lock(&e->lock);
        bool live = e->state == SPM_ENCLAVE_LIVE;
        pthread_mutex_unlock(&e->lock);
        if (live)
            continue;
        struct spm_ckpt_stats s;
        bool permanent = false;
        int r = spm_urts_import(e, NULL, &s, &permanent);
        if (r < 0 && permanent) {
            /* Nothing may run with a state the enclave refuses for good; the
             * images stay untouched, so a correct restore is still possible. */
            fprintf(stderr,
                    "spm: this process exits with status %d: nothing may run with a "
                    "state its enclave refuses\n",
                    SPM_CONTROL_EXIT_REFUSED);
            if (g_control.path[0])
                unlink(g_control.path);
            _exit(SPM_CONTROL_EXIT_REFUSED);
        }
        if (r < 0) {
            if (ret == 0) {
                ret = r;
                pthread_mutex_lock(&e->lock);
                snprintf(msg, sizeof(msg), "%s", e->last_error);
                pthread_mutex_unlock(&e->lock);
            }
            continue;
        }
        if (s.bytes == 0)
            continue; /* an export whose abort finally went through: running again */
        count++;
        bytes += s.bytes;
        chunks += s.chunks;
        if (s.threads > max_threads)
            max_threads = s.threads;
    }
    spm_urts_op_unlock();
    if (ret < 0) {
        format_error(reply, size, ret, msg);
        return;
    }
    snprintf(reply, size, "ok enclaves=%u bytes=%llu chunks=%llu threads=%u import_us=%llu", count,
             (unsigned long long)bytes, (unsigned long long)chunks, max_threads,
             (unsigned long long)elapsed_us(&start));
}

static bool any_busy_locked(void)
{
    for (struct spm_enclave *e = g_control.head; e; e = e->next_registered) {
        pthread_mutex_lock(&e->lock);
        bool busy = e->state == SPM_ENCLAVE_EXPORTING || e->state == SPM_ENCLAVE_IMPORTING;
        pthread_mutex_unlock(&e->lock);
        if (busy)
            return true;
    }
    return false;
}

static void handle_status(const struct spm_control_request *req, char *reply, size_t size)
{
    pthread_mutex_lock(&g_control.lock);
    if (req->wait_ms) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += req->wait_ms / 1000;
        deadline.tv_nsec += (long)(req->wait_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        while (any_busy_locked())
            if (pthread_cond_timedwait(&g_control.changed, &g_control.lock, &deadline) == ETIMEDOUT)
                break;
    }
    bool exporting = false, importing = false, exported = false, failed = false;
    unsigned count = 0;
    uint64_t bytes = 0, chunks = 0, export_us = 0, import_us = 0;
    int err = 0;
    char msg[SPM_URTS_ERROR_SIZE] = "";
    for (struct spm_enclave *e = g_control.head; e; e = e->next_registered) {
        pthread_mutex_lock(&e->lock);
        count++;
        switch (e->state) {
        case SPM_ENCLAVE_EXPORTING:
            exporting = true;
            break;
        case SPM_ENCLAVE_IMPORTING:
            importing = true;
            break;
        case SPM_ENCLAVE_ABORT_PENDING:
            failed = true;
            break;
        case SPM_ENCLAVE_EXPORTED:
            exported = true;
            failed |= e->last_errno != 0; /* an import was tried and failed */
            break;
        case SPM_ENCLAVE_LIVE:
            break;
        }
        const struct spm_ckpt_stats *s = e->state == SPM_ENCLAVE_LIVE && e->last_import.bytes
                                             ? &e->last_import
                                             : &e->last_export;
        bytes += s->bytes;
        chunks += s->chunks;
        export_us += e->last_export.usec;
        import_us += e->last_import.usec;
        if (e->last_errno && !err) {
            err = e->last_errno;
            snprintf(msg, sizeof(msg), "%s", e->last_error);
        }
        pthread_mutex_unlock(&e->lock);
    }
    pthread_mutex_unlock(&g_control.lock);
    const char *state = exporting   ? "exporting"
                        : importing ? "importing"
                        : failed    ? "failed"
                        : exported  ? "exported"
                                    : "live";
    int n = snprintf(reply, size,
                     "ok state=%s enclaves=%u bytes=%llu chunks=%llu export_us=%llu import_us=%llu",
                     state, count, (unsigned long long)bytes, (unsigned long long)chunks,
                     (unsigned long long)export_us, (unsigned long long)import_us);
    if (err && n > 0 && (size_t)n < size)
        snprintf(reply + n, size - (size_t)n, " errno=%d msg=%s", -err, msg);
}

/* Reads one line (without its newline) from a client. */
static int read_line(int fd, char *line, size_t size)
{
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t n = recv(fd, line + got, size - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        if (n == 0)
            break;
        got += (size_t)n;
        if (memchr(line, '\n', got))
            break;
    }
    return spm_control_request_line(line, got);
}

static void serve(int fd)
{
    struct timeval tv = {.tv_sec = REQUEST_READ_TIMEOUT_MS / 1000,
                         .tv_usec = (REQUEST_READ_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char line[SPM_CONTROL_MAX_LINE + 1];
    char reply[SPM_CONTROL_MAX_LINE];
    struct spm_control_request req;
    int ret = read_line(fd, line, sizeof(line));
    if (ret < 0) {
        format_error(reply, sizeof(reply), ret, "no request line received");
    } else if ((ret = spm_control_parse_request(line, &req)) < 0) {
        format_error(reply, sizeof(reply), ret,
                     "malformed request (expected: export [timeout_ms=N] [threads=N] | resume "
                     "[platform=DIR] [spmd=PATH] | status [wait_ms=N]; paths absolute and "
                     "percent-encoded)");
    } else {
        spm_debug("control: request '%s'", line);
        switch (req.op) {
        case SPM_CONTROL_OP_EXPORT:
            handle_export(&req, reply, sizeof(reply) - 1);
            break;
        case SPM_CONTROL_OP_RESUME:
            handle_resume(&req, reply, sizeof(reply) - 1);
            break;
        case SPM_CONTROL_OP_STATUS:
            handle_status(&req, reply, sizeof(reply) - 1);
            break;
        }
    }
    /* One line: the free text never carries a newline. */
    for (char *p = reply; *p; p++)
        if (*p == '\n')
            *p = ' ';
    size_t len = strlen(reply);
    reply[len++] = '\n';
    /* The plugin may have hung up without reading (resume): no SIGPIPE. */
    if (send(fd, reply, len, MSG_NOSIGNAL) < 0)
        spm_debug("control: reply not delivered (%s); the client left", strerror(errno));
}

static void *control_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept4(g_control.listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
                continue;
            if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK) {
                spm_error("control socket %s stopped accepting (%s); checkpoints of this "
                          "process are no longer possible",
                          g_control.path, strerror(errno));
                return NULL;
            }
            struct timespec pause = {0, 100 * 1000000L}; /* EMFILE and friends */
            nanosleep(&pause, NULL);
            continue;
        }
        serve(fd);
        close(fd);
    }
    return NULL;
}

static void remove_socket(void)
{
    /* A forked child inherits this handler, not the socket's ownership. */
    if (g_control.path[0] && getpid() == g_control.pid)
        unlink(g_control.path);
}

static int control_listen(void)
{
    const char *dir = spm_control_run_dir();
    char path[PATH_MAX];
    int ret = spm_control_own_path(path, sizeof(path));
    if (ret == 0 && strlen(path) >= sizeof(g_control.path))
        ret = -ENAMETOOLONG; /* CRIU restores a socket by the name it was bound to */
    if (ret < 0) {
        spm_error("control socket path under %s is too long for a unix socket; set %s to a "
                  "shorter directory",
                  dir, SPM_CONTROL_RUN_DIR_ENV);
        return ret;
    }
    if ((ret = spm_mkdir_p(dir, 0755)) < 0) {
        spm_error("cannot create the run directory %s: %s (set %s to a writable directory)", dir,
                  strerror(-ret), SPM_CONTROL_RUN_DIR_ENV);
        return ret;
    }
    struct sockaddr_un addr;
    int unused_dir_fd;
    if ((ret = spm_control_sockaddr(path, &addr, &unused_dir_fd)) < 0)
        return ret;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno != EADDRINUSE)
            goto fail_errno;
        /* Left behind by an earlier process with this pid (killed, or
         * dumped by CRIU): take it over unless someone still listens. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool alive = probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0;
        if (probe >= 0)
            close(probe);
        if (alive) {
            spm_error("another process listens on the control socket %s; this process cannot "
                      "be checkpointed (set %s to a private directory)",
                      path, SPM_CONTROL_RUN_DIR_ENV);
            close(fd);
            return -EADDRINUSE;
        }
        unlink(path);
        if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
            goto fail_errno;
    }
    /* Only the owner (and root, who runs CRIU) may drive it. */
    if (chmod(path, 0600) < 0 || listen(fd, 16) < 0)
        goto fail_errno;
    g_control.listen_fd = fd;
    g_control.pid = getpid();
    memcpy(g_control.path, path, strlen(path) + 1);
    return 0;
fail_errno:
    ret = -errno;
    spm_error("cannot listen on the control socket %s: %s", path, strerror(errno));
    close(fd);
    return ret;
}

static void control_start(void)
{
    if (control_listen() < 0) {
        spm_error("enclaves of this process cannot be checkpointed (no control socket)");
        return;
    }
    atexit(remove_socket);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t thread;
    int err = pthread_create(&thread, &attr, control_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err) {
        spm_error("cannot start the control thread: %s; enclaves of this process cannot be "
                  "checkpointed",
                  strerror(err));
        close(g_control.listen_fd);
        g_control.listen_fd = -1;
        unlink(g_control.path);
        g_control.path[0] = '\0';
    }
}

void spm_urts_register(struct spm_enclave *e)
{
    spm_urts_op_lock();
    pthread_mutex_lock(&g_control.lock);
    e->next_registered = g_control.head;
    g_control.head = e;
    e->registered = true;
    pthread_mutex_unlock(&g_control.lock);
    spm_urts_op_unlock();
    pthread_once(&g_control.once, control_start);
}

void spm_urts_unregister(struct spm_enclave *e)
{
    spm_urts_op_lock();
    pthread_mutex_lock(&g_control.lock);
    for (struct spm_enclave **p = &g_control.head; *p; p = &(*p)->next_registered) {
        if (*p == e) {
            *p = e->next_registered;
            break;
        }
    }
    e->registered = false;
    pthread_mutex_unlock(&g_control.lock);
    spm_urts_op_unlock();
}
