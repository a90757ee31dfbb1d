/* Relays an enclave's message to the local Migration Enclave in spmd
 * (SPM_RT_OCALL_ME): one unix-socket connection per message, the reply read
 * back with its size bounded by the protocol and by what the enclave can
 * take. The bytes are opaque here (attestation and the channel are end to
 * end between the enclaves); this file only has to fail clearly and never
 * hang: every socket operation has a deadline. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "spm/abi/me_abi.h"
#include "urts_internal.h"

/* A local daemon answers in milliseconds; the slowest step is its fsync. */
#define RELAY_TIMEOUT_MS 10000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline passes. */
static int wait_ready(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int send_all(int fd, const uint8_t *p, size_t size, int64_t deadline)
{
    while (size) {
        int ret = wait_ready(fd, POLLOUT, deadline);
        if (ret < 0)
            return ret;
        ssize_t n = send(fd, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Reads exactly `size` bytes; -EPROTO if the peer closes first. */
static int recv_all(int fd, uint8_t *p, size_t size, int64_t deadline)
{
    while (size) {
        int ret = wait_ready(fd, POLLIN, deadline);
        if (ret < 0)
            return ret;
        ssize_t n = recv(fd, p, size, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EPROTO;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

static int connect_spmd(const char *path, int *out)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        spm_error("spmd socket path %s is too long for a unix socket", path);
        return -ENAMETOOLONG;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        spm_error("cannot create a socket for spmd: %s", strerror(err));
        return -err;
    }
    while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno == EINTR)
            continue;
        int err = errno;
        close(fd);
        spm_error("cannot reach the Migration Enclave: connecting to spmd at %s failed: %s (is "
                  "spmd running? set %s to its socket, or name it in 'resume spmd=')",
                  path, strerror(err), SPM_SPMD_SOCKET_ENV);
        return -err;
    }
    *out = fd;
    return 0;
}

int spm_urts_me_relay(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                      size_t *out_size)
{
    struct spm_me_message_header h;
    if (in_size < sizeof(h) || in_size > sizeof(h) + SPM_ME_MAX_MESSAGE) {
        spm_error("enclave handed the ME relay a %zu-byte message (bounds %zu..%zu)", in_size,
                  sizeof(h), sizeof(h) + (size_t)SPM_ME_MAX_MESSAGE);
        return -EINVAL;
    }
    /* Larger than sun_path, so that connect_spmd sees (and reports) a path
     * too long rather than a truncated one. */
    char path[PATH_MAX];
    spm_urts_spmd_socket(path, sizeof(path));
    int fd = -1;
    int ret = connect_spmd(path, &fd);
    if (ret < 0)
        return ret;
    int64_t deadline = now_ms() + RELAY_TIMEOUT_MS;
    if ((ret = send_all(fd, in, in_size, deadline)) < 0) {
        spm_error("cannot send a message to spmd at %s: %s", path, strerror(-ret));
        goto out;
    }
    shutdown(fd, SHUT_WR);
    if ((ret = recv_all(fd, (uint8_t *)&h, sizeof(h), deadline)) < 0) {
        spm_error("no reply from spmd at %s: %s", path,
                  ret == -EPROTO ? "it closed the connection" : strerror(-ret));
        goto out;
    }
    if (h.magic != SPM_ME_MAGIC || h.version != SPM_ME_VERSION || h.size > SPM_ME_MAX_MESSAGE) {
        spm_error("spmd at %s sent a malformed reply (magic %#x, version %u, %u bytes)", path,
                  h.magic, h.version, h.size);
        ret = -EPROTO;
        goto out;
    }
    if (sizeof(h) + (size_t)h.size > out_capacity) {
        spm_error("spmd's %u-byte reply does not fit the enclave's %zu-byte buffer", h.size,
                  out_capacity);
        ret = -ENOSPC;
        goto out;
    }
    memcpy(out, &h, sizeof(h));
    if ((ret = recv_all(fd, out + sizeof(h), h.size, deadline)) < 0) {
        spm_error("truncated reply from spmd at %s: %s", path,
                  ret == -EPROTO ? "connection closed early" : strerror(-ret));
        goto out;
    }
    *out_size = sizeof(h) + h.size;
out:
    close(fd);
    return ret;
}
