/* The authenticated transport between spmd instances: TLS 1.3 only, both
 * ends presenting a host certificate from the cluster CA, and a small framed
 * message layer on top. Migration moves a checkpoint key's hand-over and
 * CRIU images over it, so the peer must be a host of our cluster (mutual
 * authentication is the only mode) and a stalled or hostile peer must cost
 * the caller an error, never a hang or a crash.
 *
 * Wire format (one module parses it: spm_tls_recv), after the TLS handshake:
 *
 *   struct spm_wire_header {          all fields little-endian
 *       uint32 magic;                 SPM_WIRE_MAGIC, "SPMW"
 *       uint16 version;               SPM_WIRE_VERSION
 *       uint16 type;                  the caller's message type, never 0
 *       uint32 size;                  body bytes, <= SPM_WIRE_MAX_BODY
 *       uint32 reserved;              0
 *   }                                 followed by `size` body bytes
 *
 * Type 0 belongs to the transport: the accepting side sends one empty type-0
 * frame once it has verified the client's certificate. TLS 1.3 completes the
 * client's handshake before the server has checked the client certificate,
 * so spm_tls_connect waits for that frame: a connect that returns 0 means
 * the server accepted us, and a refused client learns it in connect.
 *
 * Threads: a connection is used by one thread at a time; a config may be
 * shared by any number of connections and threads. SIGPIPE is never raised
 * (the socket I/O uses MSG_NOSIGNAL).
 */
#ifndef SPM_HOST_NET_TLS_H
#define SPM_HOST_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPM_WIRE_MAGIC       0x574D5053u /* "SPMW" read as a little-endian uint32 */
#define SPM_WIRE_VERSION     1u
#define SPM_WIRE_HEADER_SIZE 16u
/* One 4 MiB image chunk plus room for the caller's own header. */
#define SPM_WIRE_MAX_BODY (4u * 1024u * 1024u + 64u * 1024u)
/* The transport's own frame type; callers use 1..65535. */
#define SPM_WIRE_TYPE_ACCEPTED 0u

/* Default TCP port of spmd's peer listener. */
#define SPM_TLS_DEFAULT_PORT 7786u

/* How long a connection's data, or its keepalive probes, may go
 * unacknowledged before the connection counts as dead (a cut link, a
 * crashed peer host): every send and receive on it then fails. */
#define SPM_TLS_DEAD_PEER_MS 10000

/* A loaded host identity: certificate (chain), private key and the cluster
 * CA that every peer must chain to. */
struct spm_tls_config;
/* One authenticated connection to a peer spmd. */
struct spm_tls_conn;

/* Loads this host's certificate (PEM; a chain file may follow it with
 * intermediates), its private key (PEM) and the cluster CA bundle (PEM) that
 * peers are verified against. The key must match the certificate. Paths are
 * borrowed; *out is owned by the caller (spm_tls_config_free).
 * -EINVAL (NULL argument), -ENOENT/-EACCES (a file cannot be read),
 * -EBADMSG (a file is not what it should be, or the key is not the
 * certificate's), -ENOMEM. Each failure is logged with the file and
 * OpenSSL's reason. */
int spm_tls_config_load(const char *cert_path, const char *key_path, const char *ca_path,
                        struct spm_tls_config **out) __attribute__((warn_unused_result));

/* Frees a config; connections made from it keep what they need and may
 * outlive it. NULL is a no-op. */
void spm_tls_config_free(struct spm_tls_config *c);

/* Opens a TCP listening socket on address:port (address: an IPv4 or IPv6
 * literal or a name; NULL or "" means all IPv6 and IPv4 addresses), with
 * SO_REUSEADDR, close-on-exec and non-blocking. Port 0 picks a free port
 * (getsockname tells which). *fd_out is owned by the caller (close(2)).
 * -EINVAL, -EADDRINUSE, -EADDRNOTAVAIL, -ENOENT (name does not resolve), or
 * another socket -errno. */
int spm_tls_listen(const char *address, uint16_t port, int *fd_out)
    __attribute__((warn_unused_result));

/* Accepts one TCP connection on listen_fd and runs the server side of the
 * handshake: TLS 1.3, the client must present a certificate chaining to the
 * config's CA with clientAuth usage. Then sends the ACCEPTED frame. The
 * whole of it (waiting for a client included) is bounded by timeout_ms
 * (< 0: no bound). *out is owned by the caller (spm_tls_close).
 * -ETIMEDOUT (no client, or the handshake stalled), -EKEYREJECTED (client
 * certificate missing, unknown CA, expired, wrong usage), -EPROTO (not TLS
 * 1.3 or another handshake failure), -ECONNRESET (client went away),
 * -ENOMEM, or an accept(2) -errno. Every refusal is logged with the peer's
 * address and OpenSSL's reason. */
int spm_tls_accept(struct spm_tls_config *c, int listen_fd, int timeout_ms,
                   struct spm_tls_conn **out) __attribute__((warn_unused_result));

/* spm_tls_accept in two steps, so a listener can hand the handshake to a
 * worker thread and one slow or mute client cannot hold up the next:
 * spm_tls_accept_socket waits (bounded by timeout_ms, < 0: no bound) for a
 * TCP connection and returns its non-blocking, close-on-exec socket in
 * *fd_out (owned by the caller); -ETIMEDOUT or an accept(2) -errno.
 * spm_tls_server_handshake takes ownership of fd in every case (closed on
 * failure, owned by *out on success) and does the rest of spm_tls_accept,
 * with its errors. */
int spm_tls_accept_socket(int listen_fd, int timeout_ms, int *fd_out)
    __attribute__((warn_unused_result));
int spm_tls_server_handshake(struct spm_tls_config *c, int fd, int timeout_ms,
                             struct spm_tls_conn **out) __attribute__((warn_unused_result));

/* Connects to host:port (host: IP literal or DNS name, as it appears in the
 * server's certificate) and runs the client side: TLS 1.3 only, the server
 * must chain to the config's CA with serverAuth usage and carry `host` in
 * its subjectAltName (an IP address for an IP literal, a DNS name
 * otherwise), then waits for the server's ACCEPTED frame. Bounded by
 * timeout_ms (< 0: no bound) in all. *out is owned by the caller.
 * -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -ENOENT (name does not
 * resolve), -EKEYREJECTED (server chain or name check failed, or the server
 * refused our certificate), -EPROTO, -ECONNRESET, -ENOMEM. Logged. */
int spm_tls_connect(struct spm_tls_config *c, const char *host, uint16_t port, int timeout_ms,
                    struct spm_tls_conn **out) __attribute__((warn_unused_result));

/* The peer certificate's common name (verified, but for logs only: the
 * authorisation is the CA and, for clients, the name check). Borrowed; valid
 * until spm_tls_close. "?" if the certificate has none. */
const char *spm_tls_peer_name(const struct spm_tls_conn *conn);

/* The connection's socket, for poll(2) or for a fault injector's
 * shutdown(2). Borrowed: do not close it. */
int spm_tls_fd(const struct spm_tls_conn *conn);

/* Whether TLS has already decrypted bytes of this connection that poll(2)
 * on its socket cannot see: a caller that polls must read while this is
 * true. */
bool spm_tls_pending(const struct spm_tls_conn *conn);

/* Sends one frame: header and `size` bytes of `body` (borrowed; may be NULL
 * when size is 0), all of it or an error, within timeout_ms (< 0: no
 * bound). -EINVAL (type 0, size over SPM_WIRE_MAX_BODY, NULL body),
 * -ETIMEDOUT, -ECONNRESET/-EPIPE (peer gone), -EPROTO (TLS failure). After
 * an error other than -EINVAL the stream is unusable: close it. */
int spm_tls_send(struct spm_tls_conn *conn, uint16_t type, const void *body, size_t size,
                 int timeout_ms) __attribute__((warn_unused_result));

/* Receives one frame into buf (capacity bytes, caller-owned) within
 * timeout_ms (< 0: no bound): *type and *size on success. The header is
 * checked before any body byte is read: -EBADMSG (wrong magic, version or
 * reserved field, size over SPM_WIRE_MAX_BODY, or a type-0 frame),
 * -EMSGSIZE (valid frame larger than capacity). Also -ETIMEDOUT,
 * -ECONNRESET (peer closed, also in the middle of a frame), -EPROTO, -EINVAL.
 * Each refusal is logged naming the peer. After any error the stream is out
 * of step: close it. */
int spm_tls_recv(struct spm_tls_conn *conn, uint16_t *type, void *buf, size_t capacity,
                 size_t *size, int timeout_ms) __attribute__((warn_unused_result));

/* ---- The frame header alone (no I/O), for spm_tls_send/recv and tests ---- */

/* A frame header's fields, decoded. */
struct spm_wire_frame_header {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t size;
    uint32_t reserved;
};

/* The header of a frame of `type` carrying `size` body bytes. */
void spm_tls_frame_encode(uint8_t header[SPM_WIRE_HEADER_SIZE], uint16_t type, uint32_t size);

/* Decodes a received header into *out (every field, also when refused)
 * and checks it: 0, or -EBADMSG with what is wrong in *wrong (a static
 * string) for a wrong magic, version or reserved field, a size over
 * SPM_WIRE_MAX_BODY, or the wrong kind of frame: with `accepted`, only the
 * empty ACCEPTED frame is right; without, any type but 0. */
int spm_tls_frame_decode(const uint8_t header[SPM_WIRE_HEADER_SIZE], bool accepted,
                         struct spm_wire_frame_header *out, const char **wrong)
    __attribute__((warn_unused_result));

/* Sends close_notify if the connection is still healthy (best effort,
 * bounded to 100 ms), closes the socket and frees. NULL is a no-op. */
void spm_tls_close(struct spm_tls_conn *conn);

#endif
