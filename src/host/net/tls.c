/* TLS 1.3 between spmd instances over OpenSSL 3, and the one parser of the
 * SPMW frames that travel inside it (tls.h states the format).
 *
 * Why it looks the way it does:
 *  - sockets are non-blocking and every wait is a poll(2) against one
 *    deadline per call, so a peer that stalls mid-handshake or mid-frame
 *    costs the caller -ETIMEDOUT, never a hang;
 *  - OpenSSL talks to the socket through a small BIO of our own that sends
 *    with MSG_NOSIGNAL, so a peer that vanishes never raises SIGPIPE in a
 *    process that did not ignore it;
 *  - a frame's header is checked before any of its body is read, and bodies
 *    move between OpenSSL's record buffers and the caller's buffer directly;
 *    only the header and the first record's worth of body are staged, so
 *    every TLS record is full.
 * This is the host's TLS adapter: like src/host/crypto/ for the other
 * OpenSSL uses, it is the only file that includes <openssl/ssl.h>. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "host/common/log.h"

#define STAGE_SIZE        16384u /* one full TLS record of plaintext */
#define CLOSE_TIMEOUT_MS  100
#define MAX_PEER_NAME     64 /* RFC 5280 ub-common-name */
#define MAX_PEER_ADDRESS  (INET6_ADDRSTRLEN + 8)
#define READ_BUFFER_SIZE  (64u * 1024u)
#define LISTEN_BACKLOG    16
#define DRAIN_LIMIT_BYTES (64 * 1024)

struct spm_tls_config {
    SSL_CTX *ctx;
};

struct spm_tls_conn {
    SSL *ssl;
    int fd;
    /* A fatal error happened: no close_notify, no further I/O. */
    bool broken;
    char peer_name[MAX_PEER_NAME + 1];
    char peer_address[MAX_PEER_ADDRESS];
    uint8_t stage[STAGE_SIZE];
};

/* ---- clock ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Waits for `events` on fd until the deadline (-1: forever). 0 when ready,
 * -ETIMEDOUT, or poll's -errno. POLLERR/POLLHUP count as ready: the next
 * I/O call reports what happened. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            wait = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, wait);
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* ---- a socket BIO that never raises SIGPIPE ----
 * OpenSSL's socket BIO writes with write(2); ours sends with MSG_NOSIGNAL.
 * The fd is the BIO's data; the connection owns and closes it. */

static int bio_fd(BIO *bio)
{
    return (int)(intptr_t)BIO_get_data(bio);
}

static int nosig_write(BIO *bio, const char *data, int size)
{
    BIO_clear_retry_flags(bio);
    ssize_t n;
    do
        n = send(bio_fd(bio), data, (size_t)size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(bio);
    return (int)n;
}

static int nosig_read(BIO *bio, char *data, int size)
{
    BIO_clear_retry_flags(bio);
    ssize_t n;
    do
        n = recv(bio_fd(bio), data, (size_t)size, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(bio);
    return (int)n;
}

static long nosig_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)num;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* nothing is buffered here */
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = bio_fd(bio);
        return bio_fd(bio);
    default:
        return 0;
    }
}

static BIO_METHOD *g_nosig_method;

static void nosig_method_init(void)
{
    BIO_METHOD *method =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                     "spm socket (MSG_NOSIGNAL)");
    if (!method)
        return;
    if (!BIO_meth_set_write(method, nosig_write) || !BIO_meth_set_read(method, nosig_read) ||
        !BIO_meth_set_ctrl(method, nosig_ctrl)) {
        BIO_meth_free(method);
        return;
    }
    g_nosig_method = method;
}

static BIO *nosig_bio_new(int fd)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, nosig_method_init);
    if (!g_nosig_method)
        return NULL;
    BIO *bio = BIO_new(g_nosig_method);
    if (!bio)
        return NULL;
    BIO_set_data(bio, (void *)(intptr_t)fd);
    BIO_set_init(bio, 1);
    return bio;
}

/* ---- errors ---- */

static void openssl_reason(char *out, size_t out_size)
{
    unsigned long code = ERR_peek_last_error();
    if (code == 0) {
        snprintf(out, out_size, "no OpenSSL reason");
        return;
    }
    const char *reason = ERR_reason_error_string(code);
    if (reason)
        snprintf(out, out_size, "%s", reason);
    else
        snprintf(out, out_size, "OpenSSL error %lx", code);
}

/* Alerts a peer sends when it refuses our certificate or identity. */
static bool is_certificate_alert(int alert)
{
    switch (alert) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

/* SSL_get_error's SSL_ERROR_SYSCALL is explained by errno and the error
 * queue only if neither holds something older. */
static void before_ssl_call(void)
{
    ERR_clear_error();
    errno = 0;
}

/* Turns a failed SSL call into -errno, logs why (naming the peer and what
 * we were doing) and marks the connection broken. */
static int ssl_failure(struct spm_tls_conn *conn, int ssl_ret, const char *doing)
{
    int saved_errno = errno;
    int kind = SSL_get_error(conn->ssl, ssl_ret);
    int ret = -EPROTO;
    char reason[256];
    openssl_reason(reason, sizeof(reason));
    conn->broken = true;

    if (kind == SSL_ERROR_ZERO_RETURN) {
        /* An orderly close: whether it came too early is the caller's call. */
        spm_info("TLS peer %s (%s): closed the connection (while %s)", conn->peer_name,
                 conn->peer_address, doing);
        ERR_clear_error();
        return -ECONNRESET;
    } else if (kind == SSL_ERROR_SYSCALL) {
        /* OpenSSL 3 reports a bare EOF as SSL_ERROR_SSL; what lands here is
         * a socket error, or an EOF from an older library. */
        ret = saved_errno == EPIPE ? -EPIPE : -ECONNRESET;
        snprintf(reason, sizeof(reason), "%s",
                 saved_errno ? strerror(saved_errno) : "the peer closed the connection");
    } else if (kind == SSL_ERROR_SSL) {
        int code = ERR_GET_REASON(ERR_peek_last_error());
        if (code == SSL_R_CERTIFICATE_VERIFY_FAILED) {
            long verify = SSL_get_verify_result(conn->ssl);
            snprintf(reason, sizeof(reason), "certificate verify failed: %s",
                     X509_verify_cert_error_string(verify));
            ret = -EKEYREJECTED;
        } else if (code == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
            ret = -EKEYREJECTED;
        } else if (code > SSL_AD_REASON_OFFSET && code < SSL_AD_REASON_OFFSET + 256 &&
                   is_certificate_alert(code - SSL_AD_REASON_OFFSET)) {
            ret = -EKEYREJECTED;
            snprintf(reason, sizeof(reason), "the peer refused this host's certificate (alert: %s)",
                     SSL_alert_desc_string_long(code - SSL_AD_REASON_OFFSET));
        } else if (code == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ret = -ECONNRESET;
        }
    }
    spm_error("TLS peer %s (%s): %s failed: %s", conn->peer_name, conn->peer_address, doing,
              reason);
    ERR_clear_error();
    return ret;
}

/* ---- config ---- */

/* OpenSSL accepts a certificate without extendedKeyUsage for any purpose;
 * a peer must instead show the usage explicitly (clientAuth from a client,
 * serverAuth from a server), which host certificates have and the
 * platform attestation certificates a shared CA may also issue do not. */
static int verify_peer(int preverify_ok, X509_STORE_CTX *store)
{
    if (!preverify_ok || X509_STORE_CTX_get_error_depth(store) != 0)
        return preverify_ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    X509 *leaf = X509_STORE_CTX_get_current_cert(store);
    if (!ssl || !leaf)
        return 0;
    uint32_t wanted = SSL_is_server(ssl) ? XKU_SSL_CLIENT : XKU_SSL_SERVER;
    if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) ||
        !(X509_get_extended_key_usage(leaf) & wanted)) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_INVALID_PURPOSE);
        return 0;
    }
    return 1;
}

/* open(2) a file to turn a missing or unreadable one into its errno before
 * OpenSSL's file functions blur it into a parse error. */
static int check_readable(const char *path, const char *what)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        spm_error("cannot open the %s %s: %s", what, path, strerror(err));
        return -err;
    }
    close(fd);
    return 0;
}

int spm_tls_config_load(const char *cert_path, const char *key_path, const char *ca_path,
                        struct spm_tls_config **out)
{
    if (!cert_path || !key_path || !ca_path || !out)
        return -EINVAL;
    int ret;
    if ((ret = check_readable(cert_path, "host certificate")) < 0 ||
        (ret = check_readable(key_path, "host key")) < 0 ||
        (ret = check_readable(ca_path, "cluster CA certificate")) < 0)
        return ret;

    struct spm_tls_config *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    ret = -ENOMEM;
    c->ctx = SSL_CTX_new(TLS_method());
    if (!c->ctx)
        goto fail;
    char reason[256];
    ret = -EBADMSG;
    if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(c->ctx, TLS1_3_VERSION) != 1) {
        ret = -EPROTO;
        spm_error("this OpenSSL cannot be limited to TLS 1.3");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(c->ctx, cert_path) != 1) {
        openssl_reason(reason, sizeof(reason));
        spm_error("%s is not a PEM host certificate: %s", cert_path, reason);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(c->ctx, key_path, SSL_FILETYPE_PEM) != 1) {
        openssl_reason(reason, sizeof(reason));
        spm_error("cannot use %s as the private key of %s: %s", key_path, cert_path, reason);
        goto fail;
    }
    if (SSL_CTX_check_private_key(c->ctx) != 1) {
        spm_error("the key %s does not belong to the certificate %s", key_path, cert_path);
        goto fail;
    }
    if (SSL_CTX_load_verify_file(c->ctx, ca_path) != 1) {
        openssl_reason(reason, sizeof(reason));
        spm_error("%s is not a PEM CA certificate bundle: %s", ca_path, reason);
        goto fail;
    }
    /* Mutual authentication, always: a peer without a certificate from the
     * cluster CA is refused at the handshake. */
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_peer);
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c->ctx), X509_V_FLAG_X509_STRICT);
    /* No resumption: every connection proves both certificates afresh, and
     * no ticket keys live in spmd's memory. */
    SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_TICKET);
    if (SSL_CTX_set_num_tickets(c->ctx, 0) != 1)
        goto fail;
    /* Partial writes let spm_tls_send count progress record by record; read
     * ahead fills OpenSSL's buffer with several records per recv(2). */
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_read_ahead(c->ctx, 1);
    SSL_CTX_set_default_read_buffer_len(c->ctx, READ_BUFFER_SIZE);
    ERR_clear_error();
    *out = c;
    return 0;
fail:
    ERR_clear_error();
    spm_tls_config_free(c);
    return ret;
}

void spm_tls_config_free(struct spm_tls_config *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx); /* reference-counted: live connections keep it */
    free(c);
}

/* ---- sockets ---- */

static void set_socket_options(int fd)
{
    int one = 1;
    /* Small request/acknowledge messages of the hand-over must not wait for
     * Nagle; bulk frames fill whole segments anyway. Best effort. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A dead link or peer host ends the connection in seconds rather than
     * at a send's or receive's deadline, while the process waits frozen:
     * data unacknowledged for SPM_TLS_DEAD_PEER_MS, or keepalive probes
     * (after 5 s of silence, every 2 s) unanswered for as long. The peer's
     * kernel answers probes even while its spmd is busy, e.g. restoring. */
    int idle = 5, interval = 2, count = 3, dead_ms = SPM_TLS_DEAD_PEER_MS;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &dead_ms, sizeof(dead_ms));
}

static bool set_cork(int fd, bool on)
{
    int value = on;
    return setsockopt(fd, IPPROTO_TCP, TCP_CORK, &value, sizeof(value)) == 0;
}

static void format_address(const struct sockaddr *sa, char *out, size_t out_size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(out, out_size, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, out_size, "[%s]:%u", host, port);
    } else {
        snprintf(out, out_size, "?");
    }
}

static int resolve(const char *host, uint16_t port, bool passive, struct addrinfo **out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    int rc = getaddrinfo(host, service, &hints, out);
    if (rc == 0)
        return 0;
    spm_error("cannot resolve '%s': %s", host ? host : "*", gai_strerror(rc));
    if (rc == EAI_MEMORY)
        return -ENOMEM;
    if (rc == EAI_SYSTEM)
        return errno ? -errno : -EIO;
    return -ENOENT;
}

int spm_tls_listen(const char *address, uint16_t port, int *fd_out)
{
    if (!fd_out)
        return -EINVAL;
    bool any = !address || !address[0];
    int fd = -1, ret = 0;
    if (any) {
        /* One dual-stack socket for "all addresses". */
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 && errno == EAFNOSUPPORT)
            return spm_tls_listen("0.0.0.0", port, fd_out); /* a kernel without IPv6 */
        if (fd < 0)
            return -errno;
        int one = 1, zero = 0;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0 ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
            ret = -errno;
            spm_error("cannot listen on port %u: %s", (unsigned)port, strerror(-ret));
            close(fd);
            return ret;
        }
        *fd_out = fd;
        return 0;
    }

    struct addrinfo *list = NULL;
    if ((ret = resolve(address, port, true, &list)) < 0)
        return ret;
    ret = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            ret = -errno;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0) {
            ret = 0;
            break;
        }
        ret = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    if (ret < 0) {
        spm_error("cannot listen on %s port %u: %s", address, (unsigned)port, strerror(-ret));
        return ret;
    }
    *fd_out = fd;
    return 0;
}

/* Connects a non-blocking TCP socket to the first address that answers
 * before the deadline. */
static int tcp_connect(const char *host, uint16_t port, int64_t deadline, int *fd_out,
                       char *address, size_t address_size)
{
    struct addrinfo *list = NULL;
    int ret = resolve(host, port, false, &list);
    if (ret < 0)
        return ret;
    ret = -EHOSTUNREACH;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            ret = -errno;
            continue;
        }
        format_address(ai->ai_addr, address, address_size);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            if (errno != EINPROGRESS) {
                ret = -errno;
                close(fd);
                continue;
            }
            ret = wait_fd(fd, POLLOUT, deadline);
            int err = 0;
            socklen_t err_size = sizeof(err);
            if (ret == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_size) < 0)
                err = errno;
            if (ret == 0 && err)
                ret = -err;
            if (ret < 0) {
                close(fd);
                if (ret == -ETIMEDOUT)
                    break;
                continue;
            }
        }
        set_socket_options(fd);
        *fd_out = fd;
        ret = 0;
        break;
    }
    freeaddrinfo(list);
    if (ret < 0)
        spm_error("cannot connect to %s port %u: %s", host, (unsigned)port, strerror(-ret));
    return ret;
}

/* ---- connections ---- */

static int conn_new(struct spm_tls_config *c, int fd, const char *address,
                    struct spm_tls_conn **out)
{
    struct spm_tls_conn *conn = calloc(1, sizeof(*conn));
    if (!conn)
        return -ENOMEM;
    conn->fd = fd;
    snprintf(conn->peer_name, sizeof(conn->peer_name), "?");
    snprintf(conn->peer_address, sizeof(conn->peer_address), "%s", address);
    conn->ssl = SSL_new(c->ctx);
    BIO *bio = nosig_bio_new(fd);
    if (!conn->ssl || !bio) {
        BIO_free(bio);
        SSL_free(conn->ssl);
        free(conn);
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_set_bio(conn->ssl, bio, bio); /* one reference, taken by the SSL */
    *out = conn;
    return 0;
}

/* Frees without a close_notify and closes the fd. */
static void conn_free(struct spm_tls_conn *conn)
{
    SSL_free(conn->ssl);
    if (conn->fd >= 0)
        close(conn->fd);
    free(conn);
}

/* The peer certificate's CN, made safe for a log line. */
static void record_peer_name(struct spm_tls_conn *conn)
{
    X509 *cert = SSL_get0_peer_certificate(conn->ssl);
    char name[MAX_PEER_NAME + 1] = "";
    if (!cert || X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name,
                                           sizeof(name)) <= 0) {
        snprintf(conn->peer_name, sizeof(conn->peer_name), "?");
        ERR_clear_error();
        return;
    }
    for (char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    snprintf(conn->peer_name, sizeof(conn->peer_name), "%s", name);
}

/* Runs SSL_accept or SSL_connect to completion or the deadline. */
static int handshake(struct spm_tls_conn *conn, bool server, int64_t deadline)
{
    for (;;) {
        before_ssl_call();
        int rc = server ? SSL_accept(conn->ssl) : SSL_connect(conn->ssl);
        if (rc == 1)
            return 0;
        int kind = SSL_get_error(conn->ssl, rc);
        int ret;
        if (kind == SSL_ERROR_WANT_READ)
            ret = wait_fd(conn->fd, POLLIN, deadline);
        else if (kind == SSL_ERROR_WANT_WRITE)
            ret = wait_fd(conn->fd, POLLOUT, deadline);
        else
            return ssl_failure(conn, rc, "the TLS handshake");
        if (ret < 0) {
            conn->broken = true;
            spm_error("TLS peer %s: the handshake %s", conn->peer_address,
                      ret == -ETIMEDOUT ? "timed out" : "failed while waiting");
            return ret;
        }
    }
}

/* Writes all of data through TLS before the deadline. */
static int write_all(struct spm_tls_conn *conn, const void *data, size_t size, int64_t deadline)
{
    const uint8_t *p = data;
    while (size > 0) {
        before_ssl_call();
        size_t written = 0;
        int rc = SSL_write_ex(conn->ssl, p, size, &written);
        if (rc == 1) {
            p += written;
            size -= written;
            continue;
        }
        int kind = SSL_get_error(conn->ssl, rc);
        int ret;
        if (kind == SSL_ERROR_WANT_WRITE)
            ret = wait_fd(conn->fd, POLLOUT, deadline);
        else if (kind == SSL_ERROR_WANT_READ)
            ret = wait_fd(conn->fd, POLLIN, deadline);
        else
            return ssl_failure(conn, rc, "sending");
        if (ret < 0) {
            conn->broken = true;
            spm_error("TLS peer %s (%s): sending %s", conn->peer_name, conn->peer_address,
                      ret == -ETIMEDOUT ? "timed out (the peer stopped reading)" : "failed");
            return ret;
        }
    }
    return 0;
}

/* Reads exactly `size` bytes before the deadline. *consumed counts what was
 * read, so a timeout before the first byte can leave the stream in step. */
static int read_all(struct spm_tls_conn *conn, void *data, size_t size, int64_t deadline,
                    size_t *consumed)
{
    uint8_t *p = data;
    size_t done = 0;
    int ret = 0;
    while (done < size) {
        before_ssl_call();
        size_t got = 0;
        int rc = SSL_read_ex(conn->ssl, p + done, size - done, &got);
        if (rc == 1) {
            done += got;
            continue;
        }
        int kind = SSL_get_error(conn->ssl, rc);
        if (kind == SSL_ERROR_WANT_READ)
            ret = wait_fd(conn->fd, POLLIN, deadline);
        else if (kind == SSL_ERROR_WANT_WRITE)
            ret = wait_fd(conn->fd, POLLOUT, deadline);
        else {
            ret = ssl_failure(conn, rc, "receiving");
            break;
        }
        if (ret < 0)
            break;
    }
    *consumed = done;
    return ret;
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void spm_tls_frame_encode(uint8_t header[SPM_WIRE_HEADER_SIZE], uint16_t type, uint32_t size)
{
    put_le32(header, SPM_WIRE_MAGIC);
    put_le16(header + 4, SPM_WIRE_VERSION);
    put_le16(header + 6, type);
    put_le32(header + 8, size);
    put_le32(header + 12, 0);
}

int spm_tls_frame_decode(const uint8_t header[SPM_WIRE_HEADER_SIZE], bool accepted,
                         struct spm_wire_frame_header *out, const char **wrong)
{
    out->magic = get_le32(header);
    out->version = get_le16(header + 4);
    out->type = get_le16(header + 6);
    out->size = get_le32(header + 8);
    out->reserved = get_le32(header + 12);
    *wrong = NULL;
    if (out->magic != SPM_WIRE_MAGIC)
        *wrong = "bad magic (not an SPMW frame)";
    else if (out->version != SPM_WIRE_VERSION)
        *wrong = "unsupported frame version";
    else if (out->reserved != 0)
        *wrong = "nonzero reserved field";
    else if (out->size > SPM_WIRE_MAX_BODY)
        *wrong = "body size over the maximum";
    else if (accepted && (out->type != SPM_WIRE_TYPE_ACCEPTED || out->size != 0))
        *wrong = "expected the server's ACCEPTED frame";
    else if (!accepted && out->type == SPM_WIRE_TYPE_ACCEPTED)
        *wrong = "frame of the reserved type 0";
    return *wrong ? -EBADMSG : 0;
}

/* Header and body in whole records: the header travels with the first
 * STAGE_SIZE - 16 body bytes through the stage buffer, the rest straight
 * from the caller's buffer. */
static int send_frame(struct spm_tls_conn *conn, uint16_t type, const void *body, size_t size,
                      int64_t deadline)
{
    if (conn->broken)
        return -EPIPE;
    size_t head =
        size < STAGE_SIZE - SPM_WIRE_HEADER_SIZE ? size : STAGE_SIZE - SPM_WIRE_HEADER_SIZE;
    spm_tls_frame_encode(conn->stage, type, (uint32_t)size);
    if (head)
        memcpy(conn->stage + SPM_WIRE_HEADER_SIZE, body, head);
    /* A frame of many records goes out in full-sized segments (TCP_NODELAY
     * would push each 16 KiB record alone); uncorking sends the tail at
     * once. Saves CPU per byte on loopback, and packets on a real link. */
    bool cork = size > head && set_cork(conn->fd, true);
    int ret = write_all(conn, conn->stage, SPM_WIRE_HEADER_SIZE + head, deadline);
    if (ret == 0 && size > head)
        ret = write_all(conn, (const uint8_t *)body + head, size - head, deadline);
    if (cork)
        set_cork(conn->fd, false);
    return ret;
}

/* Reads and checks one frame header; see spm_tls_recv. `accepted` asks for
 * the transport's own ACCEPTED frame instead of a caller's frame. */
static int recv_frame(struct spm_tls_conn *conn, bool accepted, uint16_t *type, void *buf,
                      size_t capacity, size_t *size, int64_t deadline)
{
    if (conn->broken)
        return -ECONNRESET;
    uint8_t header[SPM_WIRE_HEADER_SIZE];
    size_t consumed = 0;
    int ret = read_all(conn, header, sizeof(header), deadline, &consumed);
    if (ret < 0) {
        /* A timeout before the frame began leaves the stream in step. */
        if (ret == -ETIMEDOUT && consumed == 0 && !conn->broken)
            return ret;
        conn->broken = true;
        if (ret == -ETIMEDOUT)
            spm_error("TLS peer %s (%s): timed out in the middle of a frame header",
                      conn->peer_name, conn->peer_address);
        return ret;
    }
    struct spm_wire_frame_header h;
    const char *wrong;
    if (spm_tls_frame_decode(header, accepted, &h, &wrong) < 0) {
        conn->broken = true;
        spm_error("TLS peer %s (%s): refusing a frame: %s (magic %08x version %u type %u size "
                  "%u reserved %08x); closing",
                  conn->peer_name, conn->peer_address, wrong, h.magic, h.version, h.type, h.size,
                  h.reserved);
        return -EBADMSG;
    }
    uint16_t frame_type = h.type;
    uint32_t body_size = h.size;
    if (body_size > capacity) {
        conn->broken = true;
        spm_error("TLS peer %s (%s): frame of type %u carries %u bytes, more than the %zu the "
                  "receiver expects; closing",
                  conn->peer_name, conn->peer_address, frame_type, body_size, capacity);
        return -EMSGSIZE;
    }
    ret = read_all(conn, buf, body_size, deadline, &consumed);
    if (ret < 0) {
        conn->broken = true;
        spm_error("TLS peer %s (%s): frame of type %u cut off after %zu of %u body bytes (%s)",
                  conn->peer_name, conn->peer_address, frame_type, consumed, body_size,
                  strerror(-ret));
        return ret;
    }
    *type = frame_type;
    *size = body_size;
    return 0;
}

/* After a refused handshake: read what the peer already sent (without
 * waiting) so that close(2) sends FIN, not RST, and the peer gets to read
 * our alert instead of "connection reset". */
static void drain_socket(int fd)
{
    uint8_t sink[4096];
    for (size_t total = 0; total < DRAIN_LIMIT_BYTES;) {
        ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

int spm_tls_accept_socket(int listen_fd, int timeout_ms, int *fd_out)
{
    if (listen_fd < 0 || !fd_out)
        return -EINVAL;
    int64_t deadline = deadline_after(timeout_ms);
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            set_socket_options(fd);
            *fd_out = fd;
            return 0;
        }
        int err = errno;
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != ECONNABORTED) {
            spm_error("cannot accept a peer connection: %s", strerror(err));
            return -err;
        }
        int ret = wait_fd(listen_fd, POLLIN, deadline);
        if (ret < 0)
            return ret;
    }
}

int spm_tls_server_handshake(struct spm_tls_config *c, int fd, int timeout_ms,
                             struct spm_tls_conn **out)
{
    if (!c || fd < 0 || !out) {
        if (fd >= 0)
            close(fd);
        return -EINVAL;
    }
    int64_t deadline = deadline_after(timeout_ms);
    struct sockaddr_storage sa;
    socklen_t sa_size = sizeof(sa);
    char address[MAX_PEER_ADDRESS] = "?";
    if (getpeername(fd, (struct sockaddr *)&sa, &sa_size) == 0)
        format_address((struct sockaddr *)&sa, address, sizeof(address));

    struct spm_tls_conn *conn = NULL;
    int ret = conn_new(c, fd, address, &conn);
    if (ret < 0) {
        close(fd);
        return ret;
    }
    SSL_set_accept_state(conn->ssl);
    if ((ret = handshake(conn, true, deadline)) < 0) {
        drain_socket(fd);
        conn_free(conn);
        return ret;
    }
    record_peer_name(conn);
    uint8_t header[SPM_WIRE_HEADER_SIZE];
    spm_tls_frame_encode(header, SPM_WIRE_TYPE_ACCEPTED, 0);
    if ((ret = write_all(conn, header, sizeof(header), deadline)) < 0) {
        conn_free(conn);
        return ret;
    }
    spm_info("TLS peer %s (%s) connected and authenticated (%s, %s)", conn->peer_name,
             conn->peer_address, SSL_get_version(conn->ssl), SSL_get_cipher_name(conn->ssl));
    *out = conn;
    return 0;
}

int spm_tls_accept(struct spm_tls_config *c, int listen_fd, int timeout_ms,
                   struct spm_tls_conn **out)
{
    if (!c || listen_fd < 0 || !out)
        return -EINVAL;
    int64_t deadline = deadline_after(timeout_ms);
    int fd = -1;
    int ret = spm_tls_accept_socket(listen_fd, timeout_ms, &fd);
    if (ret < 0)
        return ret;
    int left = -1;
    if (deadline >= 0) {
        int64_t remaining = deadline - now_ms();
        left = remaining > 0 ? (int)remaining : 0;
    }
    return spm_tls_server_handshake(c, fd, left, out);
}

int spm_tls_connect(struct spm_tls_config *c, const char *host, uint16_t port, int timeout_ms,
                    struct spm_tls_conn **out)
{
    if (!c || !host || !host[0] || !out)
        return -EINVAL;
    int64_t deadline = deadline_after(timeout_ms);
    int fd = -1;
    char address[MAX_PEER_ADDRESS] = "?";
    int ret = tcp_connect(host, port, deadline, &fd, address, sizeof(address));
    if (ret < 0)
        return ret;
    struct spm_tls_conn *conn = NULL;
    if ((ret = conn_new(c, fd, address, &conn)) < 0) {
        close(fd);
        return ret;
    }
    SSL_set_connect_state(conn->ssl);

    /* The server must be the host we dialled: its subjectAltName must hold
     * this IP address, or this DNS name (never the CN, never a wildcard). */
    X509_VERIFY_PARAM *param = SSL_get0_param(conn->ssl);
    unsigned char ip[sizeof(struct in6_addr)];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                               X509_CHECK_FLAG_NO_WILDCARDS);
    bool ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1
                    : X509_VERIFY_PARAM_set1_host(param, host, 0) == 1 &&
                          SSL_set_tlsext_host_name(conn->ssl, host) == 1;
    if (!ok) {
        ERR_clear_error();
        spm_error("cannot set '%s' as the TLS peer name to check", host);
        conn_free(conn);
        return -EINVAL;
    }

    size_t size = 0;
    uint16_t type = 0;
    ret = handshake(conn, false, deadline);
    if (ret == 0) {
        record_peer_name(conn);
        /* Our certificate is checked after our handshake ends: the ACCEPTED
         * frame, or the alert in its place, tells whether it passed. */
        ret = recv_frame(conn, true, &type, NULL, 0, &size, deadline);
    }
    if (ret < 0) {
        if (ret == -ETIMEDOUT)
            spm_error("TLS peer %s (%s): no answer from the server within %d ms", conn->peer_name,
                      address, timeout_ms);
        conn_free(conn);
        return ret;
    }
    spm_info("TLS peer %s (%s) authenticated; it accepted this host (%s, %s)", conn->peer_name,
             address, SSL_get_version(conn->ssl), SSL_get_cipher_name(conn->ssl));
    *out = conn;
    return 0;
}

const char *spm_tls_peer_name(const struct spm_tls_conn *conn)
{
    return conn ? conn->peer_name : "?";
}

int spm_tls_fd(const struct spm_tls_conn *conn)
{
    return conn ? conn->fd : -1;
}

bool spm_tls_pending(const struct spm_tls_conn *conn)
{
    /* Processed bytes of the current record, or records OpenSSL already
     * read from the socket and has not processed yet. */
    return conn && !conn->broken && (SSL_pending(conn->ssl) > 0 || SSL_has_pending(conn->ssl));
}

int spm_tls_send(struct spm_tls_conn *conn, uint16_t type, const void *body, size_t size,
                 int timeout_ms)
{
    if (!conn || type == SPM_WIRE_TYPE_ACCEPTED || size > SPM_WIRE_MAX_BODY || (size > 0 && !body))
        return -EINVAL;
    return send_frame(conn, type, body, size, deadline_after(timeout_ms));
}

int spm_tls_recv(struct spm_tls_conn *conn, uint16_t *type, void *buf, size_t capacity,
                 size_t *size, int timeout_ms)
{
    if (!conn || !type || !size || (capacity > 0 && !buf))
        return -EINVAL;
    return recv_frame(conn, false, type, buf, capacity, size, deadline_after(timeout_ms));
}

void spm_tls_close(struct spm_tls_conn *conn)
{
    if (!conn)
        return;
    if (!conn->broken) {
        /* One close_notify, no waiting for the peer's: the caller is done
         * with this stream either way. */
        int64_t deadline = deadline_after(CLOSE_TIMEOUT_MS);
        for (;;) {
            ERR_clear_error();
            int rc = SSL_shutdown(conn->ssl);
            if (rc >= 0)
                break;
            int kind = SSL_get_error(conn->ssl, rc);
            if (kind != SSL_ERROR_WANT_WRITE || wait_fd(conn->fd, POLLOUT, deadline) < 0)
                break;
        }
        ERR_clear_error();
    }
    conn_free(conn);
}
