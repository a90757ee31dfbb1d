/* The TLS transport between spmd instances (src/host/net/tls.c) and the
 * host certificates `spm host-cert` issues. Identities are minted with the
 * real spm binary (argv[1]) from two unrelated CAs; client and server run in
 * one process over loopback, the server in a thread. Where a test needs a
 * peer that breaks the rules (no certificate, TLS 1.2, malformed frames) it
 * plays that peer with raw OpenSSL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "host/common/fileio.h"
#include "host/crypto/ecdsa.h"
#include "host/crypto/x509.h"
#include "host/net/host_cert.h"
#include "host/net/tls.h"

#define TIMEOUT_MS 5000

static const char *g_spm;
static char g_scratch[256];

/* ---- fixtures ---- */

static void run_spm(const char *args, int expect_status)
{
    char command[2048];
    snprintf(command, sizeof(command), "%s %s >/dev/null 2>&1", g_spm, args);
    int status = system(command);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != expect_status)
        fail_msg("'spm %s' exited %d, expected %d", args, WEXITSTATUS(status), expect_status);
}

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s/%s", g_scratch, dir, name);
}

/* Loads the identity in scratch/host, trusting the CA copy in
 * scratch/trust (normally the same directory). */
static struct spm_tls_config *load_config(const char *host, const char *trust)
{
    char cert[512], key[512], ca[512];
    path_in(cert, sizeof(cert), host, SPM_HOST_CERT_FILE);
    path_in(key, sizeof(key), host, SPM_HOST_KEY_FILE);
    path_in(ca, sizeof(ca), trust, SPM_HOST_CA_FILE);
    struct spm_tls_config *c = NULL;
    assert_int_equal(spm_tls_config_load(cert, key, ca, &c), 0);
    assert_non_null(c);
    return c;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(g_scratch, sizeof(g_scratch), "%s/spm-net-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_scratch))
        return -1;
    char args[1024];
    /* Two unrelated cluster CAs. */
    snprintf(args, sizeof(args), "ca init --dir %s/ca1 --cn cluster-one", g_scratch);
    run_spm(args, 0);
    snprintf(args, sizeof(args), "ca init --dir %s/ca2 --cn cluster-two", g_scratch);
    run_spm(args, 0);
    /* alpha, beta: good hosts of cluster one; stranger: cluster two;
     * elsewhere: cluster one, but named for another address. */
    snprintf(args, sizeof(args),
             "host-cert --dir %s/ca1 --name alpha --ip 127.0.0.1 --ip ::1 --dns localhost "
             "--out %s/alpha",
             g_scratch, g_scratch);
    run_spm(args, 0);
    snprintf(args, sizeof(args), "host-cert --dir %s/ca1 --name beta --ip 127.0.0.1 --out %s/beta",
             g_scratch, g_scratch);
    run_spm(args, 0);
    snprintf(args, sizeof(args),
             "host-cert --dir %s/ca2 --name stranger --ip 127.0.0.1 --out %s/stranger", g_scratch,
             g_scratch);
    run_spm(args, 0);
    snprintf(args, sizeof(args),
             "host-cert --dir %s/ca1 --name elsewhere --ip 127.0.0.2 --dns other.example "
             "--out %s/elsewhere",
             g_scratch, g_scratch);
    run_spm(args, 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    nftw(g_scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- a server in a thread ---- */

struct server;
typedef void (*server_body)(struct server *s, struct spm_tls_conn *conn);

struct server {
    struct spm_tls_config *config;
    int listen_fd;
    uint16_t port;
    int accept_timeout_ms;
    pthread_t thread;
    server_body body;
    /* Results, read after join. */
    int accept_ret;
    char peer_name[80];
    int recv_ret;
    uint16_t recv_type;
    size_t recv_size;
    size_t capacity;
    int recv_timeout_ms;
    int frames;
    /* A pipe the test writes to when an idle server may go on. */
    int go[2];
};

static void *server_main(void *arg)
{
    struct server *s = arg;
    struct spm_tls_conn *conn = NULL;
    s->accept_ret = spm_tls_accept(s->config, s->listen_fd, s->accept_timeout_ms, &conn);
    if (s->accept_ret == 0) {
        snprintf(s->peer_name, sizeof(s->peer_name), "%s", spm_tls_peer_name(conn));
        if (s->body)
            s->body(s, conn);
        spm_tls_close(conn);
    }
    return NULL;
}

/* capacity and recv_timeout_ms are for body_recv_one (0: the defaults). */
static void server_start_with(struct server *s, struct spm_tls_config *config, server_body body,
                              size_t capacity, int recv_timeout_ms)
{
    memset(s, 0, sizeof(*s));
    s->config = config;
    s->body = body;
    s->accept_timeout_ms = TIMEOUT_MS;
    s->capacity = capacity ? capacity : SPM_WIRE_MAX_BODY;
    s->recv_timeout_ms = recv_timeout_ms ? recv_timeout_ms : TIMEOUT_MS;
    assert_int_equal(pipe(s->go), 0);
    /* "" listens dual-stack, so "localhost" reaches it as ::1 or 127.0.0.1. */
    assert_int_equal(spm_tls_listen("", 0, &s->listen_fd), 0);
    struct sockaddr_in6 sa;
    socklen_t size = sizeof(sa);
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&sa, &size), 0);
    s->port = ntohs(sa.sin6_port);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_start(struct server *s, struct spm_tls_config *config, server_body body)
{
    server_start_with(s, config, body, 0, 0);
}

static void server_release(struct server *s)
{
    assert_int_equal(write(s->go[1], "g", 1), 1);
}

static void server_join(struct server *s)
{
    assert_int_equal(pthread_join(s->thread, NULL), 0);
    close(s->listen_fd);
    close(s->go[0]);
    close(s->go[1]);
}

/* Echoes every frame back until the client closes. */
static void body_echo(struct server *s, struct spm_tls_conn *conn)
{
    uint8_t *buf = malloc(SPM_WIRE_MAX_BODY);
    assert_non_null(buf);
    for (;;) {
        uint16_t type = 0;
        size_t size = 0;
        s->recv_ret = spm_tls_recv(conn, &type, buf, SPM_WIRE_MAX_BODY, &size, TIMEOUT_MS);
        if (s->recv_ret < 0)
            break;
        s->frames++;
        if (spm_tls_send(conn, type, buf, size, TIMEOUT_MS) < 0)
            break;
    }
    free(buf);
}

/* Receives one frame into s->capacity bytes and records the outcome. */
static void body_recv_one(struct server *s, struct spm_tls_conn *conn)
{
    uint8_t *buf = malloc(s->capacity ? s->capacity : 1);
    assert_non_null(buf);
    s->recv_ret =
        spm_tls_recv(conn, &s->recv_type, buf, s->capacity, &s->recv_size, s->recv_timeout_ms);
    free(buf);
}

/* Waits for the test's go, then sends one frame and waits for the client
 * to close. */
static void body_idle_then_send(struct server *s, struct spm_tls_conn *conn)
{
    char c;
    assert_int_equal(read(s->go[0], &c, 1), 1);
    s->recv_ret = spm_tls_send(conn, 9, "late", 4, TIMEOUT_MS);
    uint8_t buf[16];
    uint16_t type;
    size_t size;
    /* Until the client closes: its close_notify ends this with an error. */
    int closed = spm_tls_recv(conn, &type, buf, sizeof(buf), &size, TIMEOUT_MS);
    assert_true(closed < 0);
}

/* Closes right after the handshake. */
static void body_close_at_once(struct server *s, struct spm_tls_conn *conn)
{
    (void)s;
    (void)conn;
}

/* ---- raw OpenSSL peers ---- */

struct raw {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
};

/* A client that does whatever the test says: `host` NULL means no client
 * certificate, max_version caps the protocol. Blocking, with socket
 * timeouts so a wrong answer cannot hang the test. Returns SSL_connect's
 * result. */
static int raw_connect(struct raw *r, uint16_t port, const char *host, int max_version)
{
    memset(r, 0, sizeof(*r));
    r->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(r->ctx);
    char path[512], key[512];
    path_in(path, sizeof(path), "alpha", SPM_HOST_CA_FILE);
    assert_int_equal(SSL_CTX_load_verify_file(r->ctx, path), 1);
    SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
    if (max_version)
        assert_int_equal(SSL_CTX_set_max_proto_version(r->ctx, max_version), 1);
    if (host) {
        path_in(path, sizeof(path), host, SPM_HOST_CERT_FILE);
        path_in(key, sizeof(key), host, SPM_HOST_KEY_FILE);
        assert_int_equal(SSL_CTX_use_certificate_file(r->ctx, path, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(r->ctx, key, SSL_FILETYPE_PEM), 1);
    }
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    struct timeval tv = {.tv_sec = TIMEOUT_MS / 1000};
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    r->ssl = SSL_new(r->ctx);
    assert_non_null(r->ssl);
    SSL_set_fd(r->ssl, r->fd);
    return SSL_connect(r->ssl);
}

static void raw_free(struct raw *r)
{
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
    close(r->fd);
    ERR_clear_error();
}

static void raw_write(struct raw *r, const void *data, size_t size)
{
    size_t written = 0;
    assert_int_equal(SSL_write_ex(r->ssl, data, size, &written), 1);
    assert_int_equal(written, size);
}

/* Reads the server's ACCEPTED frame, as spm_tls_connect would. */
static void raw_expect_accepted(struct raw *r)
{
    uint8_t header[SPM_WIRE_HEADER_SIZE];
    size_t got = 0, total = 0;
    while (total < sizeof(header)) {
        assert_int_equal(SSL_read_ex(r->ssl, header + total, sizeof(header) - total, &got), 1);
        total += got;
    }
    static const uint8_t accepted[SPM_WIRE_HEADER_SIZE] = {'S', 'P', 'M', 'W', 1, 0, 0, 0,
                                                           0,   0,   0,   0,   0, 0, 0, 0};
    assert_memory_equal(header, accepted, sizeof(header));
}

static void header(uint8_t out[SPM_WIRE_HEADER_SIZE], uint32_t magic, uint16_t version,
                   uint16_t type, uint32_t size, uint32_t reserved)
{
    uint32_t fields32[3] = {magic, size, reserved};
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(fields32[0] >> (8 * i));
        out[8 + i] = (uint8_t)(fields32[1] >> (8 * i));
        out[12 + i] = (uint8_t)(fields32[2] >> (8 * i));
    }
    out[4] = (uint8_t)version;
    out[5] = (uint8_t)(version >> 8);
    out[6] = (uint8_t)type;
    out[7] = (uint8_t)(type >> 8);
}

/* ---- (1) mutual authentication and round trips ---- */

static void round_trip(struct spm_tls_conn *conn, uint16_t type, const uint8_t *body, size_t size,
                       uint8_t *scratch)
{
    assert_int_equal(spm_tls_send(conn, type, body, size, TIMEOUT_MS), 0);
    uint16_t got_type = 0;
    size_t got_size = 1234;
    assert_int_equal(
        spm_tls_recv(conn, &got_type, scratch, SPM_WIRE_MAX_BODY, &got_size, TIMEOUT_MS), 0);
    assert_int_equal(got_type, type);
    assert_int_equal(got_size, size);
    if (size)
        assert_memory_equal(scratch, body, size);
}

static void test_mutual_auth_round_trip(void **state)
{
    (void)state;
    struct spm_tls_config *server_config = load_config("alpha", "alpha");
    struct spm_tls_config *client_config = load_config("beta", "beta");
    struct server s;
    server_start(&s, server_config, body_echo);

    struct spm_tls_conn *conn = NULL;
    assert_int_equal(spm_tls_connect(client_config, "127.0.0.1", s.port, TIMEOUT_MS, &conn), 0);
    assert_string_equal(spm_tls_peer_name(conn), "alpha");
    assert_true(spm_tls_fd(conn) >= 0);

    uint8_t *body = malloc(SPM_WIRE_MAX_BODY), *scratch = malloc(SPM_WIRE_MAX_BODY);
    assert_non_null(body);
    assert_non_null(scratch);
    for (size_t i = 0; i < SPM_WIRE_MAX_BODY; i++)
        body[i] = (uint8_t)(i * 2654435761u >> 13);
    round_trip(conn, 1, (const uint8_t *)"hello", 5, scratch);
    round_trip(conn, 65535, NULL, 0, scratch);
    round_trip(conn, 2, body, 16384 - SPM_WIRE_HEADER_SIZE, scratch); /* exactly one record */
    round_trip(conn, 3, body, 16384 - SPM_WIRE_HEADER_SIZE + 1, scratch);
    round_trip(conn, 4, body, 4u * 1024 * 1024, scratch);
    round_trip(conn, 5, body, SPM_WIRE_MAX_BODY, scratch);

    /* The sender refuses what the receiver would. */
    assert_int_equal(spm_tls_send(conn, 6, body, SPM_WIRE_MAX_BODY + 1, TIMEOUT_MS), -EINVAL);
    assert_int_equal(spm_tls_send(conn, SPM_WIRE_TYPE_ACCEPTED, body, 1, TIMEOUT_MS), -EINVAL);
    round_trip(conn, 7, (const uint8_t *)"still in step", 13, scratch);

    spm_tls_close(conn);
    server_join(&s);
    assert_int_equal(s.accept_ret, 0);
    assert_string_equal(s.peer_name, "beta");
    assert_int_equal(s.frames, 7);
    assert_int_equal(s.recv_ret, -ECONNRESET); /* our close_notify */

    /* By DNS name: "localhost" is in alpha's subjectAltName. */
    server_start(&s, server_config, body_echo);
    assert_int_equal(spm_tls_connect(client_config, "localhost", s.port, TIMEOUT_MS, &conn), 0);
    round_trip(conn, 8, (const uint8_t *)"by name", 7, scratch);
    spm_tls_close(conn);
    server_join(&s);
    assert_int_equal(s.accept_ret, 0);

    free(body);
    free(scratch);
    spm_tls_config_free(client_config);
    spm_tls_config_free(server_config);
}

/* ---- (2) a certificate from another CA ---- */

static void test_other_ca_refused(void **state)
{
    (void)state;
    struct spm_tls_config *alpha = load_config("alpha", "alpha");
    /* stranger's certificate is from CA 2 but it trusts CA 1, so only the
     * server's check can stop it. */
    struct spm_tls_config *stranger = load_config("stranger", "alpha");
    struct server s;
    server_start(&s, alpha, NULL);
    struct spm_tls_conn *conn = NULL;
    assert_int_equal(spm_tls_connect(stranger, "127.0.0.1", s.port, TIMEOUT_MS, &conn),
                     -EKEYREJECTED);
    assert_null(conn);
    server_join(&s);
    assert_int_equal(s.accept_ret, -EKEYREJECTED);

    /* The other way round: a server from CA 2 facing a client of CA 1. */
    struct spm_tls_config *stranger_server = load_config("stranger", "stranger");
    server_start(&s, stranger_server, NULL);
    assert_int_equal(spm_tls_connect(alpha, "127.0.0.1", s.port, TIMEOUT_MS, &conn), -EKEYREJECTED);
    server_join(&s);
    assert_int_equal(s.accept_ret, -EKEYREJECTED);

    spm_tls_config_free(stranger_server);
    spm_tls_config_free(stranger);
    spm_tls_config_free(alpha);
}

/* A certificate from the right CA without extendedKeyUsage (as the
 * platform attestation certificates are): OpenSSL would take it for any
 * purpose, the transport does not. */
static void test_certificate_without_usage_refused(void **state)
{
    (void)state;
    char path[512];
    uint8_t *ca_key_pem = NULL, *ca_pem = NULL;
    size_t ca_key_pem_size = 0, ca_pem_size = 0;
    snprintf(path, sizeof(path), "%s/ca1/ca.key", g_scratch);
    assert_int_equal(spm_read_file(path, 65536, &ca_key_pem, &ca_key_pem_size), 0);
    snprintf(path, sizeof(path), "%s/ca1/ca.crt", g_scratch);
    assert_int_equal(spm_read_file(path, 65536, &ca_pem, &ca_pem_size), 0);
    struct spm_ec_key *ca_key = NULL, *key = NULL;
    assert_int_equal(spm_ec_key_from_pem((const char *)ca_key_pem, ca_key_pem_size, &ca_key), 0);
    assert_int_equal(spm_ec_key_generate(&key), 0);
    char *cert_pem = NULL, *key_pem = NULL;
    size_t cert_pem_size = 0, key_pem_size = 0;
    assert_int_equal(spm_x509_issue(ca_key, (const char *)ca_pem, ca_pem_size, key, "no-usage", 10,
                                    &cert_pem, &cert_pem_size),
                     0);
    assert_int_equal(spm_ec_key_to_pem(key, &key_pem, &key_pem_size), 0);
    snprintf(path, sizeof(path), "%s/no-usage", g_scratch);
    assert_int_equal(spm_mkdir_p(path, 0700), 0);
    path_in(path, sizeof(path), "no-usage", SPM_HOST_CERT_FILE);
    assert_int_equal(spm_write_file_atomic(path, cert_pem, cert_pem_size, 0644), 0);
    path_in(path, sizeof(path), "no-usage", SPM_HOST_KEY_FILE);
    assert_int_equal(spm_write_file_atomic(path, key_pem, key_pem_size, 0600), 0);

    struct spm_tls_config *alpha = load_config("alpha", "alpha");
    struct spm_tls_config *no_usage = load_config("no-usage", "alpha");
    struct server s;
    server_start(&s, alpha, NULL);
    struct spm_tls_conn *conn = NULL;
    assert_int_equal(spm_tls_connect(no_usage, "127.0.0.1", s.port, TIMEOUT_MS, &conn),
                     -EKEYREJECTED);
    server_join(&s);
    assert_int_equal(s.accept_ret, -EKEYREJECTED);

    spm_tls_config_free(no_usage);
    spm_tls_config_free(alpha);
    spm_wipe(key_pem, key_pem_size);
    free(key_pem);
    free(cert_pem);
    spm_ec_key_free(key);
    spm_ec_key_free(ca_key);
    free(ca_pem);
    spm_wipe(ca_key_pem, ca_key_pem_size);
    free(ca_key_pem);
}

/* ---- (3) no client certificate ---- */

static void test_no_client_certificate_refused(void **state)
{
    (void)state;
    struct spm_tls_config *alpha = load_config("alpha", "alpha");
    struct server s;
    server_start(&s, alpha, body_recv_one);
    struct raw r;
    /* TLS 1.3 finishes the client's handshake before the server judges the
     * client; the refusal arrives as an alert on the first read. */
    int rc = raw_connect(&r, s.port, NULL, 0);
    if (rc == 1) {
        uint8_t byte;
        size_t got = 0;
        assert_int_equal(SSL_read_ex(r.ssl, &byte, 1, &got), 0);
        assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()),
                         SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED);
    }
    raw_free(&r);
    server_join(&s);
    assert_int_equal(s.accept_ret, -EKEYREJECTED);
    spm_tls_config_free(alpha);
}

/* ---- (4) the server is not the host we dialled ---- */

static void test_server_name_mismatch_refused(void **state)
{
    (void)state;
    struct spm_tls_config *elsewhere = load_config("elsewhere", "elsewhere");
    struct spm_tls_config *beta = load_config("beta", "beta");
    const char *dialled[] = {"127.0.0.1", "localhost"};
    for (size_t i = 0; i < 2; i++) {
        struct server s;
        server_start(&s, elsewhere, NULL);
        struct spm_tls_conn *conn = NULL;
        assert_int_equal(spm_tls_connect(beta, dialled[i], s.port, TIMEOUT_MS, &conn),
                         -EKEYREJECTED);
        assert_null(conn);
        server_join(&s);
        assert_int_equal(s.accept_ret, -EKEYREJECTED); /* alert from the client */
    }
    spm_tls_config_free(beta);
    spm_tls_config_free(elsewhere);
}

/* ---- (5) TLS 1.2 ---- */

static void test_tls12_client_refused(void **state)
{
    (void)state;
    struct spm_tls_config *alpha = load_config("alpha", "alpha");
    struct server s;
    server_start(&s, alpha, NULL);
    struct raw r;
    assert_true(raw_connect(&r, s.port, "beta", TLS1_2_VERSION) != 1);
    raw_free(&r);
    server_join(&s);
    assert_int_equal(s.accept_ret, -EPROTO);
    spm_tls_config_free(alpha);
}

/* ---- (6) malformed frames ---- */

struct bad_frame {
    const char *what;
    uint8_t header[SPM_WIRE_HEADER_SIZE];
    size_t header_size; /* bytes of the header actually sent */
    size_t body_sent;
    size_t capacity;
    int expect;
};

static void test_malformed_frames(void **state)
{
    (void)state;
    struct spm_tls_config *alpha = load_config("alpha", "alpha");
    struct bad_frame cases[] = {
        {.what = "bad magic", .header_size = 16, .capacity = 64, .expect = -EBADMSG},
        {.what = "bad version", .header_size = 16, .capacity = 64, .expect = -EBADMSG},
        {.what = "reserved", .header_size = 16, .capacity = 64, .expect = -EBADMSG},
        {.what = "oversize",
         .header_size = 16,
         .capacity = SPM_WIRE_MAX_BODY + 100,
         .expect = -EBADMSG},
        {.what = "over capacity", .header_size = 16, .capacity = 64, .expect = -EMSGSIZE},
        {.what = "type 0", .header_size = 16, .capacity = 64, .expect = -EBADMSG},
        {.what = "truncated body",
         .header_size = 16,
         .body_sent = 50,
         .capacity = 200,
         .expect = -ECONNRESET},
        {.what = "truncated header", .header_size = 9, .capacity = 64, .expect = -ECONNRESET},
    };
    header(cases[0].header, 0x574D5054, 1, 1, 4, 0);
    header(cases[1].header, SPM_WIRE_MAGIC, 2, 1, 4, 0);
    header(cases[2].header, SPM_WIRE_MAGIC, 1, 1, 4, 1u << 31);
    header(cases[3].header, SPM_WIRE_MAGIC, 1, 1, SPM_WIRE_MAX_BODY + 1, 0);
    header(cases[4].header, SPM_WIRE_MAGIC, 1, 1, 65, 0);
    header(cases[5].header, SPM_WIRE_MAGIC, 1, 0, 0, 0);
    header(cases[6].header, SPM_WIRE_MAGIC, 1, 1, 100, 0);
    header(cases[7].header, SPM_WIRE_MAGIC, 1, 1, 4, 0);
    uint8_t body[100] = {0};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct server s;
        server_start_with(&s, alpha, body_recv_one, cases[i].capacity, 0);
        struct raw r;
        assert_int_equal(raw_connect(&r, s.port, "beta", 0), 1);
        raw_expect_accepted(&r);
        raw_write(&r, cases[i].header, cases[i].header_size);
        if (cases[i].body_sent)
            raw_write(&r, body, cases[i].body_sent);
        SSL_shutdown(r.ssl); /* close_notify after the bytes */
        server_join(&s);
        raw_free(&r);
        if (s.accept_ret != 0 || s.recv_ret != cases[i].expect)
            fail_msg("%s: accept %d, recv %d, expected %d", cases[i].what, s.accept_ret, s.recv_ret,
                     cases[i].expect);
    }

    /* A valid frame through the same raw path is accepted, so the cases
     * above fail for the field they change and nothing else. */
    struct server s;
    server_start_with(&s, alpha, body_recv_one, 64, 0);
    struct raw r;
    assert_int_equal(raw_connect(&r, s.port, "beta", 0), 1);
    raw_expect_accepted(&r);
    uint8_t good[SPM_WIRE_HEADER_SIZE + 4];
    header(good, SPM_WIRE_MAGIC, 1, 42, 4, 0);
    memcpy(good + SPM_WIRE_HEADER_SIZE, "abcd", 4);
    raw_write(&r, good, sizeof(good));
    server_join(&s);
    raw_free(&r);
    assert_int_equal(s.recv_ret, 0);
    assert_int_equal(s.recv_type, 42);
    assert_int_equal(s.recv_size, 4);

    spm_tls_config_free(alpha);
}

/* A server that answers the handshake with something else than ACCEPTED:
 * the client's connect refuses it through the same parser. */
struct raw_server {
    SSL_CTX *ctx;
    int listen_fd;
    uint16_t port;
    pthread_t thread;
    uint8_t reply[SPM_WIRE_HEADER_SIZE];
};

static void *raw_server_main(void *arg)
{
    struct raw_server *rs = arg;
    int fd = accept(rs->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(rs->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        size_t written;
        SSL_write_ex(ssl, rs->reply, sizeof(rs->reply), &written);
        char c;
        size_t got;
        SSL_read_ex(ssl, &c, 1, &got); /* until the client hangs up */
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static void test_bad_accepted_frame(void **state)
{
    (void)state;
    struct raw_server rs;
    memset(&rs, 0, sizeof(rs));
    rs.ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(rs.ctx);
    char cert[512], key[512];
    path_in(cert, sizeof(cert), "alpha", SPM_HOST_CERT_FILE);
    path_in(key, sizeof(key), "alpha", SPM_HOST_KEY_FILE);
    assert_int_equal(SSL_CTX_use_certificate_file(rs.ctx, cert, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(rs.ctx, key, SSL_FILETYPE_PEM), 1);
    header(rs.reply, SPM_WIRE_MAGIC, 1, 5, 0, 0); /* a caller type, not ACCEPTED */
    assert_int_equal(spm_tls_listen("127.0.0.1", 0, &rs.listen_fd), 0);
    struct sockaddr_in sa;
    socklen_t size = sizeof(sa);
    assert_int_equal(getsockname(rs.listen_fd, (struct sockaddr *)&sa, &size), 0);
    rs.port = ntohs(sa.sin_port);
    /* The raw server blocks in accept: make its socket blocking. */
    int flags = fcntl(rs.listen_fd, F_GETFL);
    assert_int_equal(fcntl(rs.listen_fd, F_SETFL, flags & ~O_NONBLOCK), 0);
    assert_int_equal(pthread_create(&rs.thread, NULL, raw_server_main, &rs), 0);

    struct spm_tls_config *beta = load_config("beta", "beta");
    struct spm_tls_conn *conn = NULL;
    assert_int_equal(spm_tls_connect(beta, "127.0.0.1", rs.port, TIMEOUT_MS, &conn), -EBADMSG);
    assert_null(conn);
    assert_int_equal(pthread_join(rs.thread, NULL), 0);
    close(rs.listen_fd);
    SSL_CTX_free(rs.ctx);
    spm_tls_config_free(beta);
}

/* ---- (7) timeouts and vanished peers ---- */

static void test_timeouts(void **state)
{
    (void)state;
    struct spm_tls_config *alpha = load_config("alpha", "alpha");
    struct spm_tls_config *beta = load_config("beta", "beta");

    /* No client at all. */
    int listen_fd = -1;
    assert_int_equal(spm_tls_listen("127.0.0.1", 0, &listen_fd), 0);
    struct spm_tls_conn *conn = NULL;
    double start = seconds_now();
    assert_int_equal(spm_tls_accept(alpha, listen_fd, 200, &conn), -ETIMEDOUT);
    double elapsed = seconds_now() - start;
    assert_true(elapsed >= 0.19 && elapsed < 2.0);

    /* A client that connects over TCP and never speaks TLS. */
    struct sockaddr_in sa;
    socklen_t size = sizeof(sa);
    assert_int_equal(getsockname(listen_fd, (struct sockaddr *)&sa, &size), 0);
    int mute = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(mute, (struct sockaddr *)&sa, sizeof(sa)), 0);
    start = seconds_now();
    assert_int_equal(spm_tls_accept(alpha, listen_fd, 300, &conn), -ETIMEDOUT);
    elapsed = seconds_now() - start;
    assert_true(elapsed >= 0.29 && elapsed < 2.0);

    /* The two-step accept: the mute client's socket is taken off the
     * listener, a real client is served meanwhile, and only the mute
     * client's own handshake times out. */
    int mute_fd = -1;
    assert_int_equal(spm_tls_accept_socket(listen_fd, 200, &mute_fd), -ETIMEDOUT); /* none yet */
    int mute2 = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(mute2, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(spm_tls_accept_socket(listen_fd, TIMEOUT_MS, &mute_fd), 0);
    struct raw r;
    struct server s;
    memset(&s, 0, sizeof(s));
    s.config = alpha;
    s.listen_fd = listen_fd;
    s.accept_timeout_ms = TIMEOUT_MS;
    assert_int_equal(pthread_create(&s.thread, NULL, server_main, &s), 0);
    assert_int_equal(raw_connect(&r, ntohs(sa.sin_port), "beta", 0), 1);
    raw_expect_accepted(&r);
    assert_int_equal(pthread_join(s.thread, NULL), 0);
    assert_int_equal(s.accept_ret, 0);
    raw_free(&r);
    assert_int_equal(spm_tls_server_handshake(alpha, mute_fd, 200, &conn), -ETIMEDOUT);
    assert_null(conn);
    close(mute2);
    close(mute);
    close(listen_fd);

    /* recv times out on a quiet peer and the stream stays usable. */
    server_start(&s, alpha, body_idle_then_send);
    assert_int_equal(spm_tls_connect(beta, "127.0.0.1", s.port, TIMEOUT_MS, &conn), 0);
    uint8_t buf[16];
    uint16_t type = 0;
    size_t got = 0;
    start = seconds_now();
    assert_int_equal(spm_tls_recv(conn, &type, buf, sizeof(buf), &got, 250), -ETIMEDOUT);
    elapsed = seconds_now() - start;
    assert_true(elapsed >= 0.24 && elapsed < 2.0);
    server_release(&s);
    assert_int_equal(spm_tls_recv(conn, &type, buf, sizeof(buf), &got, TIMEOUT_MS), 0);
    assert_int_equal(type, 9);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "late", 4);
    spm_tls_close(conn);
    server_join(&s);
    assert_int_equal(s.recv_ret, 0);

    /* A peer that stops in the middle of a frame: timeout, then the
     * connection is refused further use. */
    server_start_with(&s, alpha, body_recv_one, 64, 300);
    assert_int_equal(raw_connect(&r, s.port, "beta", 0), 1);
    raw_expect_accepted(&r);
    uint8_t partial[SPM_WIRE_HEADER_SIZE + 3] = {0};
    header(partial, SPM_WIRE_MAGIC, 1, 1, 10, 0);
    raw_write(&r, partial, sizeof(partial)); /* 3 of 10 body bytes, then silence */
    server_join(&s);                         /* the server gives up after 300 ms */
    raw_free(&r);
    assert_int_equal(s.recv_ret, -ETIMEDOUT);

    spm_tls_config_free(beta);
    spm_tls_config_free(alpha);
}

static void test_peer_gone_no_sigpipe(void **state)
{
    (void)state;
    /* The default SIGPIPE action kills the process: it must never fire. */
    struct sigaction old, dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &dfl, &old);
    struct spm_tls_config *alpha = load_config("alpha", "alpha");
    struct spm_tls_config *beta = load_config("beta", "beta");
    struct server s;
    server_start(&s, alpha, body_close_at_once);
    struct spm_tls_conn *conn = NULL;
    assert_int_equal(spm_tls_connect(beta, "127.0.0.1", s.port, TIMEOUT_MS, &conn), 0);
    server_join(&s);

    uint8_t *body = calloc(1, SPM_WIRE_MAX_BODY);
    assert_non_null(body);
    int ret = 0;
    for (int i = 0; i < 64 && ret == 0; i++)
        ret = spm_tls_send(conn, 1, body, SPM_WIRE_MAX_BODY, TIMEOUT_MS);
    assert_true(ret == -EPIPE || ret == -ECONNRESET);
    /* Further use is refused without touching the socket. */
    assert_int_equal(spm_tls_send(conn, 1, body, 1, TIMEOUT_MS), -EPIPE);
    uint16_t type;
    size_t size;
    assert_int_equal(spm_tls_recv(conn, &type, body, 16, &size, TIMEOUT_MS), -ECONNRESET);
    spm_tls_close(conn);
    free(body);

    /* A receiver whose peer closed cleanly gets -ECONNRESET. */
    server_start(&s, alpha, body_close_at_once);
    assert_int_equal(spm_tls_connect(beta, "127.0.0.1", s.port, TIMEOUT_MS, &conn), 0);
    server_join(&s);
    uint8_t buf[8];
    assert_int_equal(spm_tls_recv(conn, &type, buf, sizeof(buf), &size, TIMEOUT_MS), -ECONNRESET);
    spm_tls_close(conn);

    /* Nobody listening. */
    int fd = -1;
    assert_int_equal(spm_tls_listen("127.0.0.1", 0, &fd), 0);
    struct sockaddr_in sa;
    socklen_t sa_size = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sa_size), 0);
    close(fd);
    assert_int_equal(spm_tls_connect(beta, "127.0.0.1", ntohs(sa.sin_port), TIMEOUT_MS, &conn),
                     -ECONNREFUSED);

    spm_tls_config_free(beta);
    spm_tls_config_free(alpha);
    sigaction(SIGPIPE, &old, NULL);
}

/* ---- config loading ---- */

static void test_config_refusals(void **state)
{
    (void)state;
    char cert[512], key[512], ca[512], other_key[512], missing[512];
    path_in(cert, sizeof(cert), "alpha", SPM_HOST_CERT_FILE);
    path_in(key, sizeof(key), "alpha", SPM_HOST_KEY_FILE);
    path_in(ca, sizeof(ca), "alpha", SPM_HOST_CA_FILE);
    path_in(other_key, sizeof(other_key), "beta", SPM_HOST_KEY_FILE);
    path_in(missing, sizeof(missing), "alpha", "nothing-here");
    struct spm_tls_config *c = NULL;
    assert_int_equal(spm_tls_config_load(cert, other_key, ca, &c), -EBADMSG);
    assert_int_equal(spm_tls_config_load(missing, key, ca, &c), -ENOENT);
    assert_int_equal(spm_tls_config_load(cert, key, missing, &c), -ENOENT);
    assert_int_equal(spm_tls_config_load(key, key, ca, &c), -EBADMSG);   /* key as certificate */
    assert_int_equal(spm_tls_config_load(cert, key, key, &c), -EBADMSG); /* no CA in the file */
    assert_null(c);
}

/* ---- (8) host certificates ---- */

static void test_host_cert_command(void **state)
{
    (void)state;
    char args[1024], key[512], cert[512];
    snprintf(args, sizeof(args), "host-cert --dir %s/ca1 --name gamma --ip 10.1.2.3 --out %s/gamma",
             g_scratch, g_scratch);
    run_spm(args, 0);
    path_in(key, sizeof(key), "gamma", SPM_HOST_KEY_FILE);
    path_in(cert, sizeof(cert), "gamma", SPM_HOST_CERT_FILE);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    uint8_t *before = NULL, *after = NULL;
    size_t before_size = 0, after_size = 0;
    assert_int_equal(spm_read_file(key, 65536, &before, &before_size), 0);
    run_spm(args, 1); /* refuses to overwrite */
    assert_int_equal(spm_read_file(key, 65536, &after, &after_size), 0);
    assert_int_equal(after_size, before_size);
    assert_memory_equal(after, before, before_size);
    free(after);

    strncat(args, " --force", sizeof(args) - strlen(args) - 1);
    run_spm(args, 0);
    assert_int_equal(spm_read_file(key, 65536, &after, &after_size), 0);
    assert_false(after_size == before_size && memcmp(after, before, before_size) == 0);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(after);
    free(before);

    /* Issued by CA 1 with the name as CN. */
    uint8_t *pem = NULL;
    size_t pem_size = 0;
    assert_int_equal(spm_read_file(cert, 65536, &pem, &pem_size), 0);
    char subject[256], issuer[256];
    assert_int_equal(spm_x509_names((const char *)pem, pem_size, subject, sizeof(subject), issuer,
                                    sizeof(issuer)),
                     0);
    assert_non_null(strstr(subject, "CN=gamma"));
    assert_non_null(strstr(issuer, "CN=cluster-one"));
    free(pem);

    /* Usage errors: no SAN, malformed SAN, missing CA. */
    snprintf(args, sizeof(args), "host-cert --dir %s/ca1 --name delta --out %s/delta", g_scratch,
             g_scratch);
    run_spm(args, 2);
    snprintf(args, sizeof(args),
             "host-cert --dir %s/ca1 --name delta --dns '*.example' --out %s/delta", g_scratch,
             g_scratch);
    run_spm(args, 1);
    snprintf(args, sizeof(args),
             "host-cert --dir %s/ca1 --name delta --ip 300.1.1.1 --out %s/delta", g_scratch,
             g_scratch);
    run_spm(args, 1);
    snprintf(args, sizeof(args),
             "host-cert --dir %s/nothing --name delta --ip 10.0.0.1 --out %s/delta", g_scratch,
             g_scratch);
    run_spm(args, 1);
    path_in(key, sizeof(key), "delta", SPM_HOST_KEY_FILE);
    assert_int_equal(stat(key, &st), -1); /* nothing written by the refusals */
}

static void test_issue_host_names(void **state)
{
    (void)state;
    struct spm_ec_key *ca_key = NULL, *host_key = NULL;
    assert_int_equal(spm_ec_key_generate(&ca_key), 0);
    assert_int_equal(spm_ec_key_generate(&host_key), 0);
    char *ca_pem = NULL, *pem = NULL;
    size_t ca_pem_size = 0, pem_size = 0;
    assert_int_equal(spm_x509_create_ca(ca_key, "ca", 10, &ca_pem, &ca_pem_size), 0);
    const char *good_ips[] = {"192.0.2.1", "2001:db8::1"};
    const char *good_dns[] = {"a.example", "b-1.example", "localhost"};
    assert_int_equal(spm_x509_issue_host(ca_key, ca_pem, ca_pem_size, host_key, "h", good_ips, 2,
                                         good_dns, 3, 10, &pem, &pem_size),
                     0);
    free(pem);
    const char *bad_dns[] = {"*.example", "a..b", "-a.example", "a-.example", "a b", "a,DNS:x", ""};
    for (size_t i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++) {
        pem = NULL;
        int ret = spm_x509_issue_host(ca_key, ca_pem, ca_pem_size, host_key, "h", NULL, 0,
                                      &bad_dns[i], 1, 10, &pem, &pem_size);
        if (ret != -EINVAL)
            fail_msg("DNS name '%s' gave %d", bad_dns[i], ret);
        assert_null(pem);
    }
    const char *bad_ip[] = {"1.2.3", "1.2.3.4.5", "::g", "example.com"};
    for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++)
        assert_int_equal(spm_x509_issue_host(ca_key, ca_pem, ca_pem_size, host_key, "h", &bad_ip[i],
                                             1, NULL, 0, 10, &pem, &pem_size),
                         -EINVAL);
    assert_int_equal(spm_x509_issue_host(ca_key, ca_pem, ca_pem_size, host_key, "h", NULL, 0, NULL,
                                         0, 10, &pem, &pem_size),
                     -EINVAL);
    free(ca_pem);
    spm_ec_key_free(host_key);
    spm_ec_key_free(ca_key);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-spm\n", argv[0]);
        return 2;
    }
    g_spm = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_auth_round_trip),
        cmocka_unit_test(test_other_ca_refused),
        cmocka_unit_test(test_certificate_without_usage_refused),
        cmocka_unit_test(test_no_client_certificate_refused),
        cmocka_unit_test(test_server_name_mismatch_refused),
        cmocka_unit_test(test_tls12_client_refused),
        cmocka_unit_test(test_malformed_frames),
        cmocka_unit_test(test_bad_accepted_frame),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_peer_gone_no_sigpipe),
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_host_cert_command),
        cmocka_unit_test(test_issue_host_names),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
