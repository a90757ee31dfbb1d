/* spmd: the per-host daemon that hosts the Migration Enclave. It loads the
 * ME, hands it its sealed escrow state, persists what the ME seals, and
 * relays enclaves' messages from a local unix socket into the ME and back.
 *
 * Everything here is untrusted by design (DESIGN.md section 7): the ME
 * seals its state before spmd sees it and talks to clients over a channel
 * whose keys exist only in the enclaves, so this process only ever holds
 * ciphertext, public keys and reports. What spmd must get right is
 * liveness and honesty about failure: durable writes before the ME is told
 * they happened, bounded reads so one stuck client cannot stall the others,
 * a clear refusal to start on a rolled-back or corrupt state, and an exit
 * when the ME says it can no longer promise anything. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "enclaves/me/me_state.h"
#include "platform/sim/sim.h"
#include "spm/abi/me_abi.h"
#include "migrate.h"
#include "spm/urts.h"

#define STATE_DIR_DEFAULT "/var/lib/spm/spmd"
#define STATE_FILE        "escrow.sealed"
/* 256 entries of 216 bytes, sealed: far below this. */
#define STATE_MAX_SIZE (1u << 20)
/* A client writes its few hundred bytes at once; anything slower is stuck. */
#define CLIENT_TIMEOUT_MS 5000
#define MAX_CLIENTS       32
#define SHUTDOWN_WAIT_MS  (CLIENT_TIMEOUT_MS + 1000)

#define HEADER_SIZE sizeof(struct spm_me_message_header)

struct spmd {
    struct spm_enclave *me;
    char state_path[PATH_MAX];
    const char *socket_path;
    pthread_mutex_t ecall_lock; /* one message in the ME at a time */
    pthread_mutex_t clients_lock;
    pthread_cond_t clients_done;
    int clients;
    int wake_pipe[2]; /* signal handler / failed ME -> main loop */
    volatile sig_atomic_t stop;
    volatile int me_failed;
};

static struct spmd g_spmd = {
    .ecall_lock = PTHREAD_MUTEX_INITIALIZER,
    .clients_lock = PTHREAD_MUTEX_INITIALIZER,
    .clients_done = PTHREAD_COND_INITIALIZER,
    .wake_pipe = {-1, -1},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spmd [options]\n\n"
            "Hosts the Migration Enclave: keeps enclaves' checkpoint keys in escrow\n"
            "(sealed to the ME, versioned by the platform's monotonic counter) and\n"
            "serves them on a local unix socket.\n\n"
            "options:\n"
            "  --platform DIR   simulated SGX platform (default $%s or %s)\n"
            "  --state DIR      where the sealed escrow state lives (default %s)\n"
            "  --socket PATH    socket to serve (default $%s or %s)\n"
            "  --me IMAGE       signed Migration Enclave image (default %s)\n"
            "  --allow-debug    let DEBUG enclaves escrow and receive keys (testing only:\n"
            "                   a debug enclave's memory is readable by the host)\n"
            "  --listen ADDR[:PORT]  accept migrations from other spmds (TLS 1.3, port\n"
            "                   7786 by default); needs --tls-dir\n"
            "  --tls-dir DIR    this host's identity: host.crt, host.key and the cluster\n"
            "                   CA's ca.crt ('spm host-cert'); peers must present a host\n"
            "                   certificate from that CA\n"
            "  --name NAME      this host's name in logs (default: the hostname)\n"
            "  --help           this text\n\n"
            "The admin socket PATH.admin (root only) takes 'spm migrate' and 'spm recover'.\n",
            SPM_PLATFORM_ENV, SPM_PLATFORM_DEFAULT_DIR, STATE_DIR_DEFAULT, SPM_SPMD_SOCKET_ENV,
            SPM_SPMD_SOCKET_DEFAULT, SPMD_ME_IMAGE_INSTALLED);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spmd: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- The ME's ocall ---- */

/* SPM_ME_OCALL_PERSIST: the sealed escrow state, durable before we return
 * (temp file, fsync, rename, fsync of the directory). */
static int ocall_persist(void *ctx, const uint8_t *in, size_t in_size, uint8_t *out,
                         size_t out_capacity, size_t *out_size)
{
    (void)out;
    (void)out_capacity;
    struct spmd *d = ctx;
    *out_size = 0;
    if (in_size == 0 || in_size > STATE_MAX_SIZE) {
        say("the ME asked to persist %zu bytes (bounds 1..%u); refused", in_size, STATE_MAX_SIZE);
        return -EINVAL;
    }
    int64_t start = now_us();
    int ret = spm_write_file_atomic(d->state_path, in, in_size, 0600);
    if (ret < 0) {
        say("cannot write the escrow state %s: %s", d->state_path, strerror(-ret));
        return ret;
    }
    spm_debug("spmd: persisted %zu bytes to %s in %" PRId64 " us", in_size, d->state_path,
              now_us() - start);
    return 0;
}

static const spm_ocall_fn g_me_ocalls[] = {
    [SPM_ME_OCALL_PERSIST] = ocall_persist,
};

/* ---- Starting the ME ---- */

static const char *default_me_image(void)
{
    if (access(SPMD_ME_IMAGE_INSTALLED, R_OK) == 0)
        return SPMD_ME_IMAGE_INSTALLED;
#ifdef SPMD_ME_IMAGE_BUILD
    if (access(SPMD_ME_IMAGE_BUILD, R_OK) == 0)
        return SPMD_ME_IMAGE_BUILD;
#endif
    return SPMD_ME_IMAGE_INSTALLED;
}

/* Loads the ME and gives it the stored state. Non-zero: do not serve. */
static int start_me(struct spmd *d, const char *image, const char *platform, uint32_t policy)
{
    struct spm_enclave_options options = {
        .platform_dir = platform,
        .ocalls = g_me_ocalls,
        .ocall_count = sizeof(g_me_ocalls) / sizeof(g_me_ocalls[0]),
        .ocall_ctx = d,
        .flags = SPM_LOAD_NO_CHECKPOINT, /* the ME holds the keys: it never travels */
    };
    int ret = spm_enclave_load(image, &options, &d->me);
    if (ret < 0) {
        say("cannot load the Migration Enclave %s on platform %s: %s", image,
            spm_sim_platform_dir(platform), strerror(-ret));
        return ret;
    }
    uint8_t *state = NULL;
    size_t state_size = 0;
    struct stat st;
    if (stat(d->state_path, &st) == 0) {
        if ((ret = spm_read_file(d->state_path, STATE_MAX_SIZE, &state, &state_size)) < 0) {
            say("cannot read the escrow state %s: %s", d->state_path, strerror(-ret));
            return ret;
        }
        if (state_size == 0) {
            say("the escrow state %s is empty (truncated?); refusing to start on it",
                d->state_path);
            free(state);
            return -EBADMSG;
        }
    } else if (errno != ENOENT) {
        ret = -errno;
        say("cannot read the escrow state %s: %s", d->state_path, strerror(-ret));
        return ret;
    }
    size_t in_size = sizeof(struct spm_me_init_in) + state_size;
    uint8_t *in = malloc(in_size);
    if (!in) {
        free(state);
        return -ENOMEM;
    }
    struct spm_me_init_in init = {.policy = policy};
    memcpy(in, &init, sizeof(init));
    if (state_size)
        memcpy(in + sizeof(init), state, state_size);
    free(state);
    struct me_init_out result;
    size_t result_size = 0;
    ret = spm_enclave_ecall(d->me, SPM_ME_ECALL_INIT, in, in_size, &result, sizeof(result),
                            &result_size, 0);
    free(in);
    if (ret == -ESTALE) {
        say("refusing to start: the escrow state %s is not the newest one the platform's "
            "monotonic counter vouches for (an older copy put back: ROLLBACK, or a second copy "
            "of this escrow state in use by another spmd). Restore the "
            "newest %s, or, if it is lost, move this file away: every key in it is then lost",
            d->state_path, STATE_FILE);
        return ret;
    }
    if (ret == -EBADMSG) {
        say("refusing to start: the escrow state %s does not unseal (corrupt, or sealed by "
            "another Migration Enclave build or on another platform)",
            d->state_path);
        return ret;
    }
    if (ret < 0 || result_size != sizeof(result)) {
        say("the Migration Enclave failed to start: %s", strerror(ret < 0 ? -ret : EPROTO));
        return ret < 0 ? ret : -EPROTO;
    }
    char escrow_hex[33];
    spm_hex(result.escrow_id, sizeof(result.escrow_id), escrow_hex);
    say("%s escrow %s: state version %" PRIu64 ", %u entries (%s)",
        result.fresh ? "created" : "loaded", escrow_hex, result.version, result.entry_count,
        d->state_path);
    return 0;
}

/* ---- The socket ---- */

static int listen_on(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        say("socket path %s is too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(addr.sun_path, path);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        int ret = spm_mkdir_p(dir, 0755);
        if (ret < 0)
            return ret;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            say("%s exists and is not a socket; refusing to replace it", path);
            close(fd);
            return -EEXIST;
        }
        /* A live spmd answers; a stale socket from a crash does not. */
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
            say("another spmd is already serving %s", path);
            close(fd);
            return -EADDRINUSE;
        }
        close(fd);
        unlink(path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
            return -errno;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        /* Any local user's enclave may talk to its ME: the channel is
         * authenticated and encrypted end to end, not by file modes. */
        chmod(path, 0666) < 0 || listen(fd, 64) < 0) {
        int err = errno;
        say("cannot listen on %s: %s", path, strerror(err));
        close(fd);
        return -err;
    }
    return fd;
}

/* Reads exactly size bytes before the deadline; -EPROTO on early EOF. */
static int read_full(int fd, uint8_t *p, size_t size, int64_t deadline_us)
{
    while (size) {
        int64_t left_ms = (deadline_us - now_us()) / 1000;
        if (left_ms <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)left_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ETIMEDOUT;
        ssize_t got = recv(fd, p, size, MSG_DONTWAIT);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            return -EPROTO;
        p += got;
        size -= (size_t)got;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *p, size_t size, int64_t deadline_us)
{
    while (size) {
        int64_t left_ms = (deadline_us - now_us()) / 1000;
        if (left_ms <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n = poll(&pfd, 1, (int)left_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? -ETIMEDOUT : -errno;
        ssize_t put = send(fd, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (put < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (put < 0)
            return -errno;
        p += put;
        size -= (size_t)put;
    }
    return 0;
}

static size_t error_message(int32_t status, uint8_t *out)
{
    struct spm_me_message_header h = {
        .magic = SPM_ME_MAGIC,
        .version = SPM_ME_VERSION,
        .type = SPM_ME_MSG_ERROR,
        .size = sizeof(struct spm_me_error),
    };
    struct spm_me_error error = {.status = status};
    memcpy(out, &h, sizeof(h));
    memcpy(out + sizeof(h), &error, sizeof(error));
    return sizeof(h) + sizeof(error);
}

static void wake_main(struct spmd *d)
{
    char byte = 1;
    if (write(d->wake_pipe[1], &byte, 1) < 0) {
        /* the pipe is full: the main loop is awake already */
    }
}

/* One message into the ME, one reply out; serialised. -ENOTRECOVERABLE
 * once the ME stopped serving (spmd then exits). */
static int me_call_raw(struct spmd *d, const uint8_t *in, size_t in_size, uint8_t *out,
                       size_t out_capacity, size_t *out_size)
{
    pthread_mutex_lock(&d->ecall_lock);
    int ret = d->me_failed ? -ENOTRECOVERABLE
                           : spm_enclave_ecall(d->me, SPM_ME_ECALL_HANDLE, in, in_size, out,
                                               out_capacity, out_size, 0);
    if (ret == -ENOTRECOVERABLE && !d->me_failed) {
        d->me_failed = 1;
        say("the Migration Enclave stopped serving: it could not advance the platform's "
            "monotonic counter, or another copy of its state is in use (see its message "
            "above). Exiting so that a restart checks the state against the counter.");
        wake_main(d);
    }
    pthread_mutex_unlock(&d->ecall_lock);
    return ret;
}

/* The migration code's way into the ME: the ME's refusals are replies. */
static int me_call_for_migration(const uint8_t *in, size_t in_size, uint8_t *out,
                                 size_t out_capacity, size_t *out_size)
{
    int ret = me_call_raw(&g_spmd, in, in_size, out, out_capacity, out_size);
    if (ret < 0 && ret != -ENOTRECOVERABLE) {
        *out_size = error_message(ret, out);
        ret = 0;
    }
    return ret;
}

/* One connection: one message in, one reply out. */
static void serve_client(struct spmd *d, int fd)
{
    int64_t deadline = now_us() + (int64_t)CLIENT_TIMEOUT_MS * 1000;
    uint8_t *msg = NULL, *reply = NULL;
    struct spm_me_message_header h;
    int ret = read_full(fd, (uint8_t *)&h, sizeof(h), deadline);
    if (ret < 0) {
        spm_debug("spmd: client went away before a header: %s", strerror(-ret));
        goto out;
    }
    uint8_t small[64];
    if (h.magic != SPM_ME_MAGIC || h.version != SPM_ME_VERSION || h.size > SPM_ME_MAX_MESSAGE) {
        spm_debug("spmd: malformed message header (magic %#x, version %u, %u bytes)", h.magic,
                  h.version, h.size);
        size_t n = error_message(-EPROTO, small);
        (void)write_full(fd, small, n, deadline);
        goto out;
    }
    size_t reply_capacity = HEADER_SIZE + SPM_ME_MAX_MESSAGE;
    msg = malloc(HEADER_SIZE + h.size);
    reply = malloc(reply_capacity);
    if (!msg || !reply)
        goto out;
    memcpy(msg, &h, sizeof(h));
    if ((ret = read_full(fd, msg + HEADER_SIZE, h.size, deadline)) < 0) {
        spm_debug("spmd: client sent a truncated message: %s", strerror(-ret));
        goto out;
    }
    size_t reply_size = 0;
    int64_t start = now_us();
    ret = me_call_raw(d, msg, HEADER_SIZE + h.size, reply, reply_capacity, &reply_size);
    spm_debug("spmd: message type %u (%u bytes) handled in %" PRId64 " us: %d", h.type, h.size,
              now_us() - start, ret);
    if (ret < 0)
        reply_size = error_message(ret == -ENOTRECOVERABLE ? -EIO : ret, reply);
    if ((ret = write_full(fd, reply, reply_size, deadline)) < 0)
        spm_debug("spmd: cannot send the reply: %s", strerror(-ret));
out:
    free(msg);
    free(reply);
    close(fd);
}

struct client {
    struct spmd *d;
    int fd;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct spmd *d = c->d;
    serve_client(d, c->fd);
    free(c);
    pthread_mutex_lock(&d->clients_lock);
    if (--d->clients == 0)
        pthread_cond_broadcast(&d->clients_done);
    pthread_mutex_unlock(&d->clients_lock);
    return NULL;
}

static void accept_one(struct spmd *d, int listen_fd)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    pthread_mutex_lock(&d->clients_lock);
    bool room = d->clients < MAX_CLIENTS;
    if (room)
        d->clients++;
    pthread_mutex_unlock(&d->clients_lock);
    struct client *c = room ? malloc(sizeof(*c)) : NULL;
    pthread_attr_t attr;
    pthread_t thread;
    if (c) {
        c->d = d;
        c->fd = fd;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int ret = pthread_create(&thread, &attr, client_main, c);
        pthread_attr_destroy(&attr);
        if (ret == 0)
            return;
        free(c);
    }
    if (room) {
        pthread_mutex_lock(&d->clients_lock);
        d->clients--;
        pthread_mutex_unlock(&d->clients_lock);
    }
    spm_debug("spmd: too many clients; connection dropped");
    close(fd);
}

static void on_signal(int sig)
{
    (void)sig;
    g_spmd.stop = 1;
    char byte = 0;
    if (write(g_spmd.wake_pipe[1], &byte, 1) < 0) {
        /* nothing to do in a signal handler */
    }
}

/* True when every client thread finished (the ME may be destroyed). */
static bool wait_for_clients(struct spmd *d)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SHUTDOWN_WAIT_MS / 1000 + 1;
    pthread_mutex_lock(&d->clients_lock);
    while (d->clients > 0)
        if (pthread_cond_timedwait(&d->clients_done, &d->clients_lock, &until) == ETIMEDOUT)
            break;
    int left = d->clients;
    pthread_mutex_unlock(&d->clients_lock);
    if (left)
        say("%d client(s) still being served at exit", left);
    return left == 0;
}

int main(int argc, char **argv)
{
    const char *platform = NULL, *state_dir = STATE_DIR_DEFAULT, *image = NULL;
    const char *socket_path = getenv(SPM_SPMD_SOCKET_ENV);
    uint32_t policy = 0;
    const char *listen_addr = NULL, *tls_dir = NULL, *name = NULL;
    enum {
        OPT_PLATFORM = 1,
        OPT_STATE,
        OPT_SOCKET,
        OPT_ME,
        OPT_ALLOW_DEBUG,
        OPT_LISTEN,
        OPT_TLS_DIR,
        OPT_NAME,
        OPT_HELP
    };
    static const struct option options[] = {
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"state", required_argument, NULL, OPT_STATE},
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"me", required_argument, NULL, OPT_ME},
        {"allow-debug", no_argument, NULL, OPT_ALLOW_DEBUG},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"tls-dir", required_argument, NULL, OPT_TLS_DIR},
        {"name", required_argument, NULL, OPT_NAME},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_PLATFORM:
            platform = optarg;
            break;
        case OPT_STATE:
            state_dir = optarg;
            break;
        case OPT_SOCKET:
            socket_path = optarg;
            break;
        case OPT_ME:
            image = optarg;
            break;
        case OPT_ALLOW_DEBUG:
            policy |= SPM_ME_POLICY_ALLOW_DEBUG;
            break;
        case OPT_LISTEN:
            listen_addr = optarg;
            break;
        case OPT_TLS_DIR:
            tls_dir = optarg;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!socket_path || !socket_path[0])
        socket_path = SPM_SPMD_SOCKET_DEFAULT;
    if (!image)
        image = default_me_image();

    struct spmd *d = &g_spmd;
    d->socket_path = socket_path;
    int n = snprintf(d->state_path, sizeof(d->state_path), "%s/%s", state_dir, STATE_FILE);
    if (n < 0 || (size_t)n >= sizeof(d->state_path)) {
        say("state directory path too long: %s", state_dir);
        return 1;
    }
    if (spm_mkdir_p(state_dir, 0700) < 0) {
        say("cannot create the state directory %s", state_dir);
        return 1;
    }
    if (policy & SPM_ME_POLICY_ALLOW_DEBUG)
        say("WARNING: --allow-debug: DEBUG enclaves may escrow and receive keys");

    if (pipe2(d->wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        say("cannot create a pipe: %s", strerror(errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int64_t start = now_us();
    if (start_me(d, image, platform, policy) < 0) {
        spm_enclave_destroy(d->me);
        return 1;
    }
    int64_t started = now_us();
    int listen_fd = listen_on(socket_path);
    if (listen_fd < 0) {
        spm_enclave_destroy(d->me);
        return 1;
    }
    char host_name[64] = "";
    if (!name && gethostname(host_name, sizeof(host_name) - 1) == 0)
        name = host_name;
    const char *platform_dir = platform ? platform : getenv("SPM_PLATFORM");
    struct spmd_migrate_config migrate = {
        .me_call = me_call_for_migration,
        .state_dir = state_dir,
        .platform_dir = platform_dir && platform_dir[0] ? platform_dir : "/var/lib/spm/platform",
        .spmd_socket = socket_path,
        .listen = listen_addr,
        .tls_dir = tls_dir,
        .name = name,
    };
    if (spmd_migrate_start(&migrate) < 0) {
        close(listen_fd);
        unlink(socket_path);
        spm_enclave_destroy(d->me);
        return 1;
    }
    uint8_t mrenclave[32];
    char mrenclave_hex[65];
    spm_enclave_mrenclave(d->me, mrenclave);
    spm_hex(mrenclave, sizeof(mrenclave), mrenclave_hex);
    /* ELRANGE is named so tests can check that no secret of the ME is
     * anywhere else in this process. */
    printf("spmd: ready on %s (ME MRENCLAVE %s, ELRANGE %#" PRIx64 "+%#" PRIx64
           ", started in %" PRId64 " ms)\n",
           socket_path, mrenclave_hex, spm_enclave_base(d->me), spm_enclave_size(d->me),
           (started - start) / 1000);
    if (listen_addr)
        printf("spmd: accepting peers on %s (TLS 1.3, host identity in %s)\n", listen_addr,
               tls_dir);
    fflush(stdout);

    int status = 0;
    while (!d->stop && !d->me_failed) {
        struct pollfd fds[2] = {{.fd = listen_fd, .events = POLLIN},
                                {.fd = d->wake_pipe[0], .events = POLLIN}};
        int ready = poll(fds, 2, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            say("poll failed: %s", strerror(errno));
            status = 1;
            break;
        }
        if (fds[1].revents) {
            char drain[16];
            while (read(d->wake_pipe[0], drain, sizeof(drain)) > 0)
                ;
        }
        if (fds[0].revents & POLLIN)
            accept_one(d, listen_fd);
    }
    if (d->me_failed)
        status = 1;
    spmd_migrate_stop();
    close(listen_fd);
    unlink(socket_path);
    if (wait_for_clients(d))
        spm_enclave_destroy(d->me);
    say("stopped%s", status ? " (the Migration Enclave failed)" : "");
    return status;
}
