/* Loopback throughput of the spmd transport: 256 MiB (or argv[2] MiB) in
 * 1 MiB frames from a client to a server thread, the shape CRIU images take
 * during a migration. Prints MB/s; fails if a byte arrives wrong. Compare
 * with `openssl speed -evp aes-256-gcm` (each byte is encrypted once and
 * decrypted once, on two threads). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "host/net/host_cert.h"
#include "host/net/tls.h"

#define FRAME_SIZE (1024u * 1024u)
#define TIMEOUT_MS 30000

struct receiver {
    struct spm_tls_config *config;
    int listen_fd;
    size_t frames;
    uint64_t sum;
    int ret;
};

static uint64_t checksum(const uint8_t *p, size_t size, uint64_t sum)
{
    for (size_t i = 0; i < size; i += 4096)
        sum = sum * 31 + p[i];
    return sum;
}

static void *receiver_main(void *arg)
{
    struct receiver *r = arg;
    struct spm_tls_conn *conn = NULL;
    uint8_t *buf = malloc(SPM_WIRE_MAX_BODY);
    r->ret = buf ? spm_tls_accept(r->config, r->listen_fd, TIMEOUT_MS, &conn) : -ENOMEM;
    while (r->ret == 0) {
        uint16_t type;
        size_t size;
        r->ret = spm_tls_recv(conn, &type, buf, SPM_WIRE_MAX_BODY, &size, TIMEOUT_MS);
        if (r->ret < 0)
            break;
        if (type == 2) /* end */
            break;
        r->sum = checksum(buf, size, r->sum);
        r->frames++;
    }
    if (r->ret == 0)
        r->ret = spm_tls_send(conn, 3, NULL, 0, TIMEOUT_MS);
    spm_tls_close(conn);
    free(buf);
    return NULL;
}

static int load(const char *dir, struct spm_tls_config **c)
{
    char cert[512], key[512], ca[512];
    snprintf(cert, sizeof(cert), "%s/%s", dir, SPM_HOST_CERT_FILE);
    snprintf(key, sizeof(key), "%s/%s", dir, SPM_HOST_KEY_FILE);
    snprintf(ca, sizeof(ca), "%s/%s", dir, SPM_HOST_CA_FILE);
    return spm_tls_config_load(cert, key, ca, c);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s HOST-DIR [MiB]\n"
                "HOST-DIR holds host.crt/host.key/ca.crt with SAN IP 127.0.0.1\n",
                argv[0]);
        return 2;
    }
    size_t total_mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 256;
    struct spm_tls_config *config = NULL;
    if (load(argv[1], &config) < 0)
        return 1;
    struct receiver r = {.config = config};
    if (spm_tls_listen("127.0.0.1", 0, &r.listen_fd) < 0)
        return 1;
    struct sockaddr_in sa;
    socklen_t sa_size = sizeof(sa);
    if (getsockname(r.listen_fd, (struct sockaddr *)&sa, &sa_size) < 0)
        return 1;
    pthread_t thread;
    if (pthread_create(&thread, NULL, receiver_main, &r) != 0)
        return 1;

    uint8_t *frame = malloc(FRAME_SIZE);
    if (!frame)
        return 1;
    for (size_t i = 0; i < FRAME_SIZE; i++)
        frame[i] = (uint8_t)(i * 2654435761u >> 11);
    struct spm_tls_conn *conn = NULL;
    int ret = spm_tls_connect(config, "127.0.0.1", ntohs(sa.sin_port), TIMEOUT_MS, &conn);
    struct timespec t0, t1;
    struct rusage u0, u1;
    getrusage(RUSAGE_SELF, &u0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t sum = 0;
    for (size_t i = 0; ret == 0 && i < total_mib; i++) {
        frame[0] = (uint8_t)i; /* every frame differs */
        sum = checksum(frame, FRAME_SIZE, sum);
        ret = spm_tls_send(conn, 1, frame, FRAME_SIZE, TIMEOUT_MS);
    }
    if (ret == 0)
        ret = spm_tls_send(conn, 2, NULL, 0, TIMEOUT_MS);
    uint16_t type = 0;
    size_t size = 0;
    if (ret == 0) /* the receiver has taken every byte */
        ret = spm_tls_recv(conn, &type, NULL, 0, &size, TIMEOUT_MS);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &u1);
    spm_tls_close(conn);
    pthread_join(thread, NULL);
    close(r.listen_fd);
    spm_tls_config_free(config);
    free(frame);
    if (ret < 0 || r.ret < 0 || r.frames != total_mib || r.sum != sum) {
        fprintf(stderr, "FAIL: send %d, receive %d, %zu of %zu frames, checksum %s\n", ret, r.ret,
                r.frames, total_mib, r.sum == sum ? "equal" : "differs");
        return 1;
    }
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double mb = (double)total_mib * FRAME_SIZE / 1e6;
    /* CPU time of both ends together: steadier than wall time on a shared
     * machine, and what a migration costs the two hosts. */
    double cpu = (double)(u1.ru_utime.tv_sec - u0.ru_utime.tv_sec) +
                 (double)(u1.ru_utime.tv_usec - u0.ru_utime.tv_usec) / 1e6 +
                 (double)(u1.ru_stime.tv_sec - u0.ru_stime.tv_sec) +
                 (double)(u1.ru_stime.tv_usec - u0.ru_stime.tv_usec) / 1e6;
    printf("%zu MiB in 1 MiB frames over TLS 1.3 loopback: %.3f s, %.0f MB/s; CPU (both ends) "
           "%.3f s, %.0f MB per CPU-second\n",
           total_mib, seconds, mb / seconds, cpu, mb / cpu);
    return 0;
}
