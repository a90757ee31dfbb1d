/* kvs: the untrusted half of a Redis-protocol key-value server whose data
 * lives only in an SPM enclave. This program owns the sockets and the RESP
 * parsing; it never sees a stored value except on its way out to a client,
 * and every reply byte comes from the enclave.
 *
 * Threads: the main thread accepts and hands each connection to one worker
 * (round-robin, over a pipe per worker); each worker runs an epoll loop
 * over its connections and makes its own ecalls. All complete commands
 * found in a read go into the enclave in one ecall, so pipelining clients
 * pay for the boundary once per read. By default there are as many workers
 * as the enclave has TCS, so no worker waits for a free one. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvs_abi.h"
#include "resp.h"
#include "spm/abi/enclave_abi.h"
#include "spm/urts.h"

#define READ_CHUNK         (16u << 10)
#define MAX_READ_BUFFER    (KVS_MAX_COMMAND_SIZE + (4u << 20)) /* args plus their headers */
#define WRITE_HIGH_WATER   (1u << 20) /* stop running commands until the client reads */
#define BATCH_MAX_COMMANDS 1024u
#define BATCH_MAX_BYTES    (1u << 20)
#define DEFAULT_OUT_SIZE   (256u << 10)
#define INITIAL_ARGS       16u

struct conn {
    int fd;
    struct conn *prev, *next; /* the worker's list, for shutdown */
    uint8_t *rbuf;
    size_t rstart, rsize, rcapacity; /* unparsed input is rbuf[rstart, rsize) */
    struct resp_parser parser;
    struct resp_arg *args;
    size_t args_capacity;
    uint8_t *wbuf;
    size_t wsent, wsize, wcapacity; /* pending output is wbuf[wsent, wsize) */
    uint32_t events;                /* what epoll watches for now */
    bool closing;                   /* close once the output is flushed */
};

struct worker {
    unsigned index;
    pthread_t thread;
    int epoll_fd;
    int handoff[2]; /* main writes accepted fds to [1] */
    struct spm_enclave *enclave;
    struct conn *conns;
    /* The batch being built: a kvs_batch_header, then commands. */
    uint8_t *batch;
    size_t batch_size, batch_capacity;
    size_t *offsets; /* where each command starts in batch */
    size_t command_count;
    uint8_t *out;
    size_t out_capacity;
    uint64_t requests, connections;
};

struct options {
    const char *enclave, *platform, *bind;
    const char *port;
    unsigned threads;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kvs --enclave IMG [--platform DIR] [--bind ADDR] [--port N] [--threads N]\n\n"
            "A Redis-protocol (RESP2) key-value server whose data lives only in enclave\n"
            "memory. Speaks PING ECHO SET GET DEL EXISTS INCR INCRBY DECR DECRBY DBSIZE\n"
            "FLUSHALL, and KVS.PUBKEY / KVS.SIGN msg (ECDSA P-256, key made in the enclave).\n\n"
            "  --enclave IMG   the signed kvs enclave (kvs_enclave.signed)\n"
            "  --platform DIR  simulated SGX platform (default $SPM_PLATFORM or\n"
            "                  /var/lib/spm/platform)\n"
            "  --bind ADDR     address to listen on (default 127.0.0.1)\n"
            "  --port N        TCP port (default 6379; 0 picks a free one)\n"
            "  --threads N     worker threads (default: the enclave's TCS count)\n");
}

/* ---- Buffers ---- */

static int grow(uint8_t **buf, size_t *capacity, size_t need, size_t limit)
{
    if (need <= *capacity)
        return 0;
    if (need > limit)
        return -E2BIG;
    size_t size = *capacity ? *capacity : 4096;
    while (size < need)
        size = size > limit / 2 ? limit : size * 2;
    uint8_t *p = realloc(*buf, size);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *capacity = size;
    return 0;
}

static int write_append(struct conn *c, const void *data, size_t size)
{
    if (size == 0)
        return 0;
    if (c->wsent == c->wsize)
        c->wsent = c->wsize = 0;
    /* Replies to one batch are bounded by the enclave's output limit, and
     * no new batch runs above the high-water mark, so this stays bounded. */
    int ret = grow(&c->wbuf, &c->wcapacity, c->wsize + size, SIZE_MAX / 2);
    if (ret < 0)
        return ret;
    memcpy(c->wbuf + c->wsize, data, size);
    c->wsize += size;
    return 0;
}

/* ---- Connections ---- */

static void conn_close(struct worker *w, struct conn *c)
{
    epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->rbuf);
    free(c->wbuf);
    free(c->args);
    free(c);
}

static int conn_add(struct worker *w, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    resp_parser_init(&c->parser, NULL);
    c->args = calloc(INITIAL_ARGS, sizeof(*c->args));
    c->args_capacity = INITIAL_ARGS;
    c->events = EPOLLIN;
    struct epoll_event ev = {.events = c->events, .data.ptr = c};
    if (!c->args || epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int ret = c->args ? -errno : -ENOMEM;
        free(c->args);
        free(c);
        return ret;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->connections++;
    return 0;
}

static void conn_watch(struct worker *w, struct conn *c)
{
    size_t pending = c->wsize - c->wsent;
    uint32_t events = 0;
    if (!c->closing && pending < WRITE_HIGH_WATER)
        events |= EPOLLIN;
    if (pending)
        events |= EPOLLOUT;
    if (events == c->events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = events;
}

/* Sends what it can. Returns 0, or -errno when the connection is dead. */
static int conn_flush(struct conn *c)
{
    while (c->wsent < c->wsize) {
        ssize_t n = send(c->fd, c->wbuf + c->wsent, c->wsize - c->wsent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        }
        c->wsent += (size_t)n;
    }
    return 0;
}

/* ---- Batches ---- */

static void batch_reset(struct worker *w)
{
    w->batch_size = sizeof(struct kvs_batch_header);
    w->command_count = 0;
}

/* Appends a parsed command in the ABI's encoding: u32 argc, then per
 * argument u32 size and its bytes. */
static int batch_add(struct worker *w, const uint8_t *command, const struct resp_arg *args,
                     uint32_t argc)
{
    size_t size = 4;
    for (uint32_t i = 0; i < argc; i++)
        size += 4 + args[i].size; /* bounded by the parser's limits */
    int ret = grow(&w->batch, &w->batch_capacity, w->batch_size + size, SPM_ECALL_MAX_IN_SIZE);
    if (ret < 0)
        return ret;
    if (w->command_count == BATCH_MAX_COMMANDS)
        return -E2BIG;
    w->offsets[w->command_count++] = w->batch_size;
    uint8_t *p = w->batch + w->batch_size;
    memcpy(p, &argc, 4);
    p += 4;
    for (uint32_t i = 0; i < argc; i++) {
        uint32_t arg_size = (uint32_t)args[i].size;
        memcpy(p, &arg_size, 4);
        resp_arg_copy(command, &args[i], p + 4);
        p += 4 + arg_size;
    }
    w->batch_size += size;
    return 0;
}

/* Runs the batch in the enclave and queues the replies on c. When the
 * enclave stops early for lack of output room, the rest is resent with a
 * bigger buffer: the header for the remainder is written over the tail of
 * the last command already run. */
static int batch_run(struct worker *w, struct conn *c)
{
    size_t first = 0;
    while (first < w->command_count) {
        size_t offset = first == 0 ? 0 : w->offsets[first] - sizeof(struct kvs_batch_header);
        struct kvs_batch_header header = {KVS_BATCH_MAGIC, (uint32_t)(w->command_count - first)};
        memcpy(w->batch + offset, &header, sizeof(header));
        size_t out_size = 0;
        int ret = spm_enclave_ecall(w->enclave, KVS_ECALL_BATCH, w->batch + offset,
                                    w->batch_size - offset, w->out, w->out_capacity, &out_size,
                                    SPM_ECALL_WAIT);
        if (ret < 0) {
            fprintf(stderr, "kvs: worker %u: batch ecall failed: %s\n", w->index, strerror(-ret));
            return ret;
        }
        struct kvs_batch_reply reply;
        if (out_size < sizeof(reply) || out_size > w->out_capacity)
            return -EPROTO;
        memcpy(&reply, w->out, sizeof(reply));
        if (reply.commands_done > header.command_count ||
            (reply.status != 0 && reply.status != -ENOSPC) ||
            (reply.status == 0 && reply.commands_done != header.command_count))
            return -EPROTO;
        ret = write_append(c, w->out + sizeof(reply), out_size - sizeof(reply));
        if (ret < 0)
            return ret;
        first += reply.commands_done;
        w->requests += reply.commands_done;
        if (reply.status == -ENOSPC) {
            if (reply.needed_size > SPM_ECALL_MAX_OUT_SIZE - sizeof(reply))
                return -E2BIG;
            size_t need = sizeof(reply) + (size_t)reply.needed_size;
            if (need <= w->out_capacity && reply.commands_done == 0)
                return -EPROTO; /* it had the room it asks for: would loop */
            ret = grow(&w->out, &w->out_capacity, need, SPM_ECALL_MAX_OUT_SIZE);
            if (ret < 0)
                return ret;
        }
    }
    /* One huge reply should not pin a huge buffer (which the enclave would
     * also allocate on every call). */
    if (w->out_capacity > DEFAULT_OUT_SIZE) {
        uint8_t *smaller = realloc(w->out, DEFAULT_OUT_SIZE);
        if (smaller) {
            w->out = smaller;
            w->out_capacity = DEFAULT_OUT_SIZE;
        }
    }
    return 0;
}

static bool is_quit(const uint8_t *command, const struct resp_arg *args, uint32_t argc)
{
    return argc >= 1 && args[0].size == 4 && !args[0].quoted &&
           strncasecmp((const char *)command + args[0].offset, "quit", 4) == 0;
}

/* Runs every complete command in the input, batch by batch, until the
 * input holds only a partial command or the client has too much unread
 * output. Returns 0, or -errno when the connection must be dropped. */
static int conn_process(struct worker *w, struct conn *c)
{
    int ret = 0;
    while (!c->closing && c->wsize - c->wsent < WRITE_HIGH_WATER) {
        batch_reset(w);
        const char *protocol_error = NULL;
        bool quit = false;
        while (w->command_count < BATCH_MAX_COMMANDS && w->batch_size < BATCH_MAX_BYTES) {
            const uint8_t *command = c->rbuf + c->rstart;
            uint32_t argc;
            size_t consumed;
            ret = resp_parse(&c->parser, command, c->rsize - c->rstart, c->args, c->args_capacity,
                             &argc, &consumed);
            if (ret == -ENOBUFS) {
                struct resp_arg *more = realloc(c->args, sizeof(*more) * c->parser.argc);
                if (!more)
                    return -ENOMEM;
                c->args = more;
                c->args_capacity = c->parser.argc;
                continue;
            }
            if (ret == -EAGAIN)
                break;
            if (ret < 0) {
                protocol_error = c->parser.error;
                break;
            }
            if (argc > 0) {
                ret = batch_add(w, command, c->args, argc);
                if (ret < 0)
                    return ret;
                quit = is_quit(command, c->args, argc);
            }
            c->rstart += consumed;
            if (quit)
                break;
        }
        if (w->command_count == 0 && !protocol_error)
            break;
        ret = batch_run(w, c);
        if (ret < 0)
            return ret;
        if (protocol_error) {
            /* As Redis does: say what was wrong, then hang up, since the
             * stream cannot be resynchronised. */
            if (write_append(c, "-ERR ", 5) < 0 ||
                write_append(c, protocol_error, strlen(protocol_error)) < 0 ||
                write_append(c, "\r\n", 2) < 0)
                return -ENOMEM;
            c->closing = true;
        }
        if (quit)
            c->closing = true;
    }
    /* Keep the partial command at the start of the buffer. */
    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rsize - c->rstart);
        c->rsize -= c->rstart;
        c->rstart = 0;
    }
    return 0;
}

/* Returns 0, or -errno (or -ECONNRESET on end of input) to drop the
 * connection. */
static int conn_readable(struct worker *w, struct conn *c)
{
    if (c->rcapacity - c->rsize < READ_CHUNK / 4) {
        int ret = grow(&c->rbuf, &c->rcapacity, c->rsize + READ_CHUNK, MAX_READ_BUFFER);
        if (ret < 0 && c->rcapacity == c->rsize)
            return ret; /* a command larger than the parser's limits allow */
    }
    ssize_t n = recv(c->fd, c->rbuf + c->rsize, c->rcapacity - c->rsize, 0);
    if (n == 0)
        return -ECONNRESET;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
    c->rsize += (size_t)n;
    return conn_process(w, c);
}

static void conn_event(struct worker *w, struct conn *c, uint32_t events)
{
    int ret = 0;
    if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN))
        ret = -ECONNRESET;
    if (ret == 0 && (events & EPOLLIN) && !c->closing)
        ret = conn_readable(w, c);
    if (ret == 0)
        ret = conn_flush(c);
    /* Output drained below the mark: run commands that were held back. */
    if (ret == 0 && c->wsize - c->wsent < WRITE_HIGH_WATER && c->rsize > 0 && !c->closing) {
        ret = conn_process(w, c);
        if (ret == 0)
            ret = conn_flush(c);
    }
    if (ret < 0 || (c->closing && c->wsent == c->wsize)) {
        conn_close(w, c);
        return;
    }
    conn_watch(w, c);
}

/* ---- Workers ---- */

static int worker_take_connections(struct worker *w)
{
    int fds[64];
    ssize_t n = read(w->handoff[0], fds, sizeof(fds));
    if (n == 0)
        return -ESHUTDOWN; /* main closed the pipe: shut down */
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    for (size_t i = 0; i < (size_t)n / sizeof(int); i++) {
        int ret = conn_add(w, fds[i]);
        if (ret < 0) {
            fprintf(stderr, "kvs: worker %u: dropping a connection: %s\n", w->index,
                    strerror(-ret));
            close(fds[i]);
        }
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event events[128];
    for (;;) {
        int n = epoll_wait(w->epoll_fd, events, 128, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "kvs: worker %u: epoll_wait: %s\n", w->index, strerror(errno));
            break;
        }
        bool stop = false;
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL)
                stop = worker_take_connections(w) < 0 || stop;
            else
                conn_event(w, events[i].data.ptr, events[i].events);
        }
        if (stop)
            break;
    }
    while (w->conns)
        conn_close(w, w->conns);
    return NULL;
}

static int worker_init(struct worker *w, unsigned index, struct spm_enclave *enclave)
{
    *w = (struct worker){.index = index, .enclave = enclave, .handoff = {-1, -1}};
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epoll_fd < 0)
        return -errno;
    if (pipe2(w->handoff, O_CLOEXEC) < 0)
        return -errno;
    if (fcntl(w->handoff[0], F_SETFL, O_NONBLOCK) < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->handoff[0], &ev) < 0)
        return -errno;
    w->offsets = calloc(BATCH_MAX_COMMANDS, sizeof(*w->offsets));
    w->out = malloc(DEFAULT_OUT_SIZE);
    if (!w->offsets || !w->out)
        return -ENOMEM;
    w->out_capacity = DEFAULT_OUT_SIZE;
    return 0;
}

static void worker_fini(struct worker *w)
{
    if (w->handoff[0] >= 0)
        close(w->handoff[0]);
    if (w->handoff[1] >= 0)
        close(w->handoff[1]);
    if (w->epoll_fd >= 0)
        close(w->epoll_fd);
    free(w->batch);
    free(w->offsets);
    free(w->out);
}

/* ---- Main thread: options, listening, accepting, signals ---- */

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"enclave", required_argument, NULL, 'e'},
        {"platform", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"port", required_argument, NULL, 'P'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){.bind = "127.0.0.1", .port = "6379"};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        unsigned long v;
        switch (opt) {
        case 'e':
            o->enclave = optarg;
            break;
        case 'p':
            o->platform = optarg;
            break;
        case 'b':
            o->bind = optarg;
            break;
        case 'P':
            v = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v > 65535) {
                fprintf(stderr, "kvs: --port wants 0..65535, not '%s'\n", optarg);
                return -EINVAL;
            }
            o->port = optarg;
            break;
        case 't':
            v = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 1024) {
                fprintf(stderr, "kvs: --threads wants 1..1024, not '%s'\n", optarg);
                return -EINVAL;
            }
            o->threads = (unsigned)v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind != argc || !o->enclave) {
        fprintf(stderr, "kvs: %s\n\n",
                optind != argc ? "unexpected argument" : "--enclave is required");
        usage(stderr);
        return -EINVAL;
    }
    return 0;
}

/* Binds and listens; *where gets "host:port" (the real port when 0 was
 * asked for). Returns the socket or -errno. */
static int listen_on(const char *address, const char *port, char *where, size_t where_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *list;
    int gai = getaddrinfo(address, port, &hints, &list);
    if (gai != 0) {
        fprintf(stderr, "kvs: cannot resolve --bind %s: %s\n", address, gai_strerror(gai));
        return -EINVAL;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        /* Restarting right after a stop must not fail on TIME_WAIT sockets. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0) {
        fprintf(stderr, "kvs: cannot listen on %s port %s: %s (choose another --bind/--port)\n",
                address, port, strerror(err));
        return -err;
    }
    struct sockaddr_storage bound;
    socklen_t bound_size = sizeof(bound);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_size) == 0 &&
        getnameinfo((struct sockaddr *)&bound, bound_size, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(where, where_size, bound.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
    else
        snprintf(where, where_size, "%s:%s", address, port);
    return fd;
}

/* Accepts until SIGINT/SIGTERM, handing connections out round-robin. */
static void accept_loop(int listen_fd, int signal_fd, struct worker *workers, unsigned count)
{
    unsigned next = 0;
    struct pollfd fds[2] = {{.fd = listen_fd, .events = POLLIN},
                            {.fd = signal_fd, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "kvs: poll: %s\n", strerror(errno));
            return;
        }
        if (fds[1].revents)
            return;
        if (!(fds[0].revents & POLLIN))
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                fprintf(stderr, "kvs: accept: %s\n", strerror(errno));
                if (errno == EMFILE || errno == ENFILE)
                    poll(NULL, 0, 100); /* let connections close before retrying */
            }
            continue;
        }
        /* Replies are small and clients wait for them: do not delay. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct worker *w = &workers[next];
        next = (next + 1) % count;
        if (write(w->handoff[1], &fd, sizeof(fd)) != sizeof(fd))
            close(fd);
    }
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) < 0)
        return 2;

    /* Signals go to a signalfd in the main thread; every thread created
     * after this inherits the mask. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (signal_fd < 0) {
        fprintf(stderr, "kvs: signalfd: %s\n", strerror(errno));
        return 1;
    }

    struct spm_enclave_options eo = {.platform_dir = o.platform};
    struct spm_enclave *enclave = NULL;
    int ret = spm_enclave_load(o.enclave, &eo, &enclave);
    if (ret < 0) {
        fprintf(stderr,
                "kvs: cannot load enclave %s: %s (is it signed, and is --platform or "
                "$SPM_PLATFORM an initialised platform?)\n",
                o.enclave, strerror(-ret));
        return 1;
    }
    unsigned count = o.threads ? o.threads : spm_enclave_tcs_count(enclave);
    if (count == 0)
        count = 1;

    int status = 1;
    unsigned started = 0;
    char where[NI_MAXHOST + NI_MAXSERV + 4];
    int listen_fd = listen_on(o.bind, o.port, where, sizeof(where));
    struct worker *workers = calloc(count, sizeof(*workers));
    if (listen_fd < 0 || !workers)
        goto out;
    for (; started < count; started++) {
        ret = worker_init(&workers[started], started, enclave);
        if (ret == 0)
            ret = -pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]);
        if (ret < 0) {
            fprintf(stderr, "kvs: cannot start worker %u: %s\n", started, strerror(-ret));
            worker_fini(&workers[started]);
            goto stop_workers;
        }
    }

    uint8_t mrenclave[32];
    char hex[65];
    spm_enclave_mrenclave(enclave, mrenclave);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mrenclave[i]);
    fprintf(stderr, "kvs: serving on %s with %u threads, enclave MRENCLAVE %s, backend %s\n", where,
            count, hex, spm_enclave_backend(enclave));

    accept_loop(listen_fd, signal_fd, workers, count);
    status = 0;

stop_workers:
    /* Closing a worker's pipe tells it to close its connections and end. */
    for (unsigned i = 0; i < started; i++) {
        close(workers[i].handoff[1]);
        workers[i].handoff[1] = -1;
    }
    uint64_t requests = 0, connections = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        requests += workers[i].requests;
        connections += workers[i].connections;
        worker_fini(&workers[i]);
    }
    if (status == 0)
        fprintf(stderr, "kvs: stopped; served %llu requests on %llu connections\n",
                (unsigned long long)requests, (unsigned long long)connections);
out:
    free(workers);
    if (listen_fd >= 0)
        close(listen_fd);
    spm_enclave_destroy(enclave);
    close(signal_fd);
    return status;
}
