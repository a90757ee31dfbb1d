/* Post-copy's page-server tunnel (tunnel.h, wire.h). */
#include "tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "wire.h"

#define PUMP_CHUNK         (256u * 1024u)
#define FRAME_TIMEOUT_MS   30000
#define CONNECT_TIMEOUT_MS 30000
#define ACCEPT_TIMEOUT_MS  120000
#define MAX_SLOTS          16

/* ---- Loopback sockets ---- */

static int loopback_socket(uint16_t port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

/* A connected socket to 127.0.0.1:port, or -errno. */
static int loopback_connect(uint16_t port)
{
    struct sockaddr_in sa;
    int fd = loopback_socket(port, &sa);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    int err = errno;
    close(fd);
    return -err;
}

int spmd_tunnel_free_port(uint16_t *port)
{
    struct sockaddr_in sa;
    int fd = loopback_socket(0, &sa);
    if (fd < 0)
        return fd;
    socklen_t len = sizeof(sa);
    int ret = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        ret = -errno;
    close(fd);
    if (ret == 0)
        *port = ntohs(sa.sin_port);
    return ret;
}

/* Closes with a reset instead of an orderly end (also when this process
 * dies with the socket open: set right after connecting). */
static void set_reset_on_close(int fd, bool on)
{
    struct linger l = {.l_onoff = on ? 1 : 0, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Readable within timeout_ms, or abort_fd readable first (-ECANCELED). */
static int wait_readable(int fd, int abort_fd, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = abort_fd, .events = POLLIN}};
    for (;;) {
        int n = poll(p, abort_fd >= 0 ? 2 : 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ETIMEDOUT;
        if (abort_fd >= 0 && p[1].revents)
            return -ECANCELED;
        return 0;
    }
}

static int write_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* ---- The pump ---- */

enum pump_end {
    PUMP_LOCAL_EOF, /* the local end closed its side in order */
    PUMP_PEER_END,  /* the peer sent TUNNEL_END (status in *peer_status) */
    PUMP_BROKEN,    /* an error on either side */
    PUMP_ABORTED,   /* abort_fd became readable */
};

struct pump_stats {
    uint64_t to_peer, from_peer;
    int32_t peer_status;
    char why[160];
};

static enum pump_end pump(struct spm_tls_conn *c, int local_fd, int abort_fd, uint8_t *buf,
                          struct pump_stats *st)
{
    int tls_fd = spm_tls_fd(c);
    for (;;) {
        struct pollfd p[3] = {{.fd = local_fd, .events = POLLIN},
                              {.fd = tls_fd, .events = POLLIN},
                              {.fd = abort_fd, .events = POLLIN}};
        if (!spm_tls_pending(c)) {
            int n = poll(p, abort_fd >= 0 ? 3 : 2, -1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                snprintf(st->why, sizeof(st->why), "poll: %s", strerror(errno));
                return PUMP_BROKEN;
            }
            if (abort_fd >= 0 && p[2].revents)
                return PUMP_ABORTED;
        } else {
            p[1].revents = POLLIN;
        }
        if (p[1].revents) {
            uint16_t type;
            size_t size;
            int ret = spm_tls_recv(c, &type, buf, PUMP_CHUNK, &size, FRAME_TIMEOUT_MS);
            if (ret < 0) {
                snprintf(st->why, sizeof(st->why), "the peer's stream: %s", strerror(-ret));
                return PUMP_BROKEN;
            }
            int32_t status;
            if (type == SPMD_WIRE_TUNNEL_END &&
                spmd_wire_tunnel_end_decode(buf, size, &status) == 0) {
                st->peer_status = status;
                return PUMP_PEER_END;
            }
            if (type != SPMD_WIRE_TUNNEL_DATA || spmd_wire_tunnel_data_decode(size) < 0) {
                snprintf(st->why, sizeof(st->why), "unexpected frame type %u (%zu bytes)", type,
                         size);
                return PUMP_BROKEN;
            }
            if ((ret = write_all(local_fd, buf, size)) < 0) {
                snprintf(st->why, sizeof(st->why), "writing to CRIU: %s", strerror(-ret));
                return PUMP_BROKEN;
            }
            st->from_peer += size;
            continue;
        }
        if (p[0].revents) {
            ssize_t n = recv(local_fd, buf, PUMP_CHUNK, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                snprintf(st->why, sizeof(st->why), "reading from CRIU: %s", strerror(errno));
                return PUMP_BROKEN;
            }
            if (n == 0)
                return PUMP_LOCAL_EOF;
            int ret = spm_tls_send(c, SPMD_WIRE_TUNNEL_DATA, buf, (size_t)n, FRAME_TIMEOUT_MS);
            if (ret < 0) {
                snprintf(st->why, sizeof(st->why), "sending to the peer: %s", strerror(-ret));
                return PUMP_BROKEN;
            }
            st->to_peer += (uint64_t)n;
        }
    }
}

static int send_end(struct spm_tls_conn *c, int32_t status)
{
    struct spmd_wire_tunnel_end end = {.status = status};
    return spm_tls_send(c, SPMD_WIRE_TUNNEL_END, &end, sizeof(end), FRAME_TIMEOUT_MS);
}

/* ---- Source side ---- */

static void reset_with_bogus_request(int fd)
{
    uint8_t bogus[24];
    memset(bogus, 0xff, sizeof(bogus));
    (void)!write(fd, bogus, sizeof(bogus));
    set_reset_on_close(fd, true);
    close(fd);
}

struct spmd_tunnel_source {
    pthread_t thread;
    struct spm_tls_conn *c;
    uint16_t page_port;
    int abort_pipe[2];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool pump_done, decided, commit, broken, clean;
    int local_fd;
    struct pump_stats st;
};

static void *source_main(void *arg)
{
    struct spmd_tunnel_source *t = arg;
    uint8_t *buf = malloc(PUMP_CHUNK);
    enum pump_end end = PUMP_BROKEN;
    int fd = -1;
    int64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
    while (buf) {
        fd = loopback_connect(t->page_port);
        if (fd >= 0)
            break;
        int err = -fd;
        fd = -1;
        if (now_ms() > deadline || wait_readable(t->abort_pipe[0], -1, 20) != -ETIMEDOUT) {
            snprintf(t->st.why, sizeof(t->st.why), "no page server on 127.0.0.1:%u: %s",
                     t->page_port, strerror(err));
            break;
        }
    }
    if (fd >= 0) {
        set_reset_on_close(fd, true);
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        end = pump(t->c, fd, t->abort_pipe[0], buf, &t->st);
        if (end == PUMP_LOCAL_EOF)
            /* The page server ended the session itself (it does so only
             * after an error of its own): tell the destination. */
            (void)send_end(t->c, -EPIPE);
    }
    free(buf);
    pthread_mutex_lock(&t->lock);
    t->local_fd = fd;
    t->pump_done = true;
    t->broken = !(end == PUMP_PEER_END && t->st.peer_status == 0);
    pthread_cond_broadcast(&t->cond);
    while (!t->decided)
        pthread_cond_wait(&t->cond, &t->lock);
    t->clean = t->commit && !t->broken;
    pthread_mutex_unlock(&t->lock);
    if (fd >= 0) {
        if (t->clean) {
            /* Every page moved and the process runs at the destination: the
             * orderly end lets the dump complete (CRIU then ends the frozen
             * source tree). */
            set_reset_on_close(fd, false);
            shutdown(fd, SHUT_WR);
            close(fd);
        } else if (t->st.to_peer == 0 && t->st.from_peer == 0) {
            /* The page server has had no request yet: give it one it
             * rejects, so it fails the dump even if it reads before it
             * sees the reset. */
            reset_with_bogus_request(fd);
        } else {
            close(fd);
        }
    }
    return NULL;
}

void spmd_tunnel_reset_page_server(uint16_t page_port)
{
    int fd = loopback_connect(page_port);
    if (fd >= 0)
        reset_with_bogus_request(fd);
}

int spmd_tunnel_source_start(struct spm_tls_conn *c, uint16_t page_port,
                             struct spmd_tunnel_source **out)
{
    struct spmd_tunnel_source *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->c = c;
    t->page_port = page_port;
    t->local_fd = -1;
    if (pipe2(t->abort_pipe, O_CLOEXEC) < 0) {
        int err = errno;
        free(t);
        return -err;
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    int ret = pthread_create(&t->thread, NULL, source_main, t);
    if (ret != 0) {
        close(t->abort_pipe[0]);
        close(t->abort_pipe[1]);
        free(t);
        return -ret;
    }
    *out = t;
    return 0;
}

bool spmd_tunnel_source_ok(struct spmd_tunnel_source *t)
{
    pthread_mutex_lock(&t->lock);
    bool ok = !t->pump_done || !t->broken;
    pthread_mutex_unlock(&t->lock);
    return ok;
}

int spmd_tunnel_source_finish(struct spmd_tunnel_source *t, bool commit, uint64_t *bytes, char *why,
                              size_t why_size)
{
    pthread_mutex_lock(&t->lock);
    t->commit = commit;
    t->decided = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    if (!commit)
        (void)!write(t->abort_pipe[1], "x", 1);
    pthread_join(t->thread, NULL);
    int ret = 0;
    if (!t->clean) {
        ret = commit ? -EPIPE : -ECANCELED;
        if (commit)
            snprintf(why, why_size, "the post-copy stream ended before every page moved: %s",
                     t->st.why[0]             ? t->st.why
                     : t->st.peer_status != 0 ? "the destination's lazy-pages daemon failed"
                                              : "ended early");
    }
    if (bytes)
        *bytes = t->st.to_peer;
    spm_tls_close(t->c);
    close(t->abort_pipe[0]);
    close(t->abort_pipe[1]);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t);
    return ret;
}

/* ---- Destination side ---- */

struct slot {
    bool used, attached, go, broken, finished;
    uint8_t id[16];
    char peer[128];
    uint16_t port;
    pid_t daemon;
    int abort_pipe[2];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct slot slots[MAX_SLOTS];
} g_tun = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static struct slot *find_locked(const uint8_t id[16])
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (g_tun.slots[i].used && memcmp(g_tun.slots[i].id, id, 16) == 0)
            return &g_tun.slots[i];
    return NULL;
}

int spmd_tunnel_expect(const uint8_t id[16], const char *peer_name)
{
    pthread_mutex_lock(&g_tun.lock);
    int ret = -ENOSPC;
    if (find_locked(id)) {
        ret = -EEXIST;
    } else {
        for (int i = 0; i < MAX_SLOTS; i++) {
            struct slot *s = &g_tun.slots[i];
            if (s->used)
                continue;
            memset(s, 0, sizeof(*s));
            s->used = true;
            memcpy(s->id, id, 16);
            snprintf(s->peer, sizeof(s->peer), "%s", peer_name);
            s->abort_pipe[0] = s->abort_pipe[1] = -1;
            ret = pipe2(s->abort_pipe, O_CLOEXEC) < 0 ? -errno : 0;
            if (ret < 0)
                s->used = false;
            break;
        }
    }
    pthread_mutex_unlock(&g_tun.lock);
    return ret;
}

int spmd_tunnel_attach(const uint8_t id[16], const char *peer_name)
{
    pthread_mutex_lock(&g_tun.lock);
    struct slot *s = find_locked(id);
    int ret = !s ? -ENOENT : strcmp(s->peer, peer_name) != 0 ? -EPERM : s->attached ? -EALREADY : 0;
    if (ret == 0)
        s->attached = true;
    pthread_mutex_unlock(&g_tun.lock);
    return ret;
}

static void release_locked(struct slot *s)
{
    if (s->abort_pipe[0] >= 0)
        close(s->abort_pipe[0]);
    if (s->abort_pipe[1] >= 0)
        close(s->abort_pipe[1]);
    memset(s, 0, sizeof(*s));
}

void spmd_tunnel_serve(struct spm_tls_conn *c, const uint8_t id[16], spmd_tunnel_lost_fn lost)
{
    uint8_t *buf = malloc(PUMP_CHUNK);
    int listen_fd = -1, fd = -1, abort_fd = -1;
    struct pump_stats st = {0};
    enum pump_end end = PUMP_BROKEN;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (!buf || (listen_fd = loopback_socket(0, &sa)) < 0 ||
        bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(listen_fd, 1) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&sa, &len) < 0) {
        snprintf(st.why, sizeof(st.why), "no loopback listener for the lazy-pages daemon");
        goto done;
    }
    pthread_mutex_lock(&g_tun.lock);
    struct slot *s = find_locked(id);
    if (s) {
        s->port = ntohs(sa.sin_port);
        abort_fd = s->abort_pipe[0];
        pthread_cond_broadcast(&g_tun.cond);
    }
    pthread_mutex_unlock(&g_tun.lock);
    if (!s)
        goto done;
    int ret = wait_readable(listen_fd, abort_fd, ACCEPT_TIMEOUT_MS);
    if (ret == 0)
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        snprintf(st.why, sizeof(st.why), "the lazy-pages daemon did not connect: %s",
                 strerror(ret < 0 ? -ret : errno));
        goto done;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    end = pump(c, fd, abort_fd, buf, &st);

done:;
    /* Whatever ended the stream, the daemon's exit status says whether
     * every page arrived; a daemon cut off from its pages is stopped. */
    pid_t daemon = 0;
    pthread_mutex_lock(&g_tun.lock);
    s = find_locked(id);
    if (s)
        daemon = s->daemon;
    pthread_mutex_unlock(&g_tun.lock);
    if (daemon > 0 && end != PUMP_LOCAL_EOF)
        kill(daemon, SIGKILL);
    if (fd >= 0)
        close(fd);
    int status = -EPIPE;
    if (daemon > 0) {
        int wst;
        while (waitpid(daemon, &wst, 0) < 0 && errno == EINTR)
            ;
        status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
    }
    bool clean = end == PUMP_LOCAL_EOF && status == 0;
    if (end != PUMP_PEER_END && end != PUMP_BROKEN)
        (void)send_end(c, clean ? 0 : status ? status : -EPIPE);
    bool run_lost = false;
    pthread_mutex_lock(&g_tun.lock);
    s = find_locked(id);
    if (s) {
        s->finished = true;
        s->broken = !clean;
        run_lost = !clean && s->go;
        if (s->go || !clean)
            release_locked(s);
    }
    pthread_mutex_unlock(&g_tun.lock);
    if (!clean)
        spm_error("spmd: post-copy tunnel ended before every page arrived: %s (daemon status "
                  "%d)",
                  st.why[0] ? st.why : "stream closed", status);
    else
        spm_info("spmd: post-copy complete: %llu bytes of pages arrived",
                 (unsigned long long)st.from_peer);
    if (run_lost && lost)
        lost(id, st.why[0] ? st.why : "the post-copy stream broke");
    if (listen_fd >= 0)
        close(listen_fd);
    free(buf);
    spm_tls_close(c);
}

int spmd_tunnel_port(const uint8_t id[16], int timeout_ms, uint16_t *port)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g_tun.lock);
    int ret = 0;
    struct slot *s;
    while ((s = find_locked(id)) && !s->port && ret == 0)
        ret = pthread_cond_timedwait(&g_tun.cond, &g_tun.lock, &until);
    if (!s)
        ret = -ENOENT;
    else if (!s->port)
        ret = -ETIMEDOUT;
    else {
        *port = s->port;
        ret = 0;
    }
    pthread_mutex_unlock(&g_tun.lock);
    return ret;
}

void spmd_tunnel_set_daemon(const uint8_t id[16], pid_t daemon)
{
    pthread_mutex_lock(&g_tun.lock);
    struct slot *s = find_locked(id);
    if (s)
        s->daemon = daemon;
    pthread_mutex_unlock(&g_tun.lock);
    if (!s && daemon > 0) {
        kill(daemon, SIGKILL);
        while (waitpid(daemon, NULL, 0) < 0 && errno == EINTR)
            ;
    }
}

int spmd_tunnel_go(const uint8_t id[16])
{
    pthread_mutex_lock(&g_tun.lock);
    struct slot *s = find_locked(id);
    int ret = 0;
    if (!s || s->broken) {
        ret = -EPIPE;
    } else {
        s->go = true;
        if (s->finished)
            release_locked(s);
    }
    pthread_mutex_unlock(&g_tun.lock);
    return ret;
}

void spmd_tunnel_forget(const uint8_t id[16])
{
    pthread_mutex_lock(&g_tun.lock);
    struct slot *s = find_locked(id);
    if (s) {
        if (s->daemon > 0)
            kill(s->daemon, SIGKILL);
        if (s->abort_pipe[1] >= 0)
            (void)!write(s->abort_pipe[1], "x", 1);
        if (!s->attached || s->finished)
            release_locked(s);
    }
    pthread_mutex_unlock(&g_tun.lock);
}
