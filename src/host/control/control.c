/* The client half of the control channel (control.h) and the one parser of
 * its lines. It is compiled into libspm (the server uses the parser), the
 * spm CLI and the CRIU plugin, so it depends on libc only: no logging
 * module, no OpenSSL. Callers decide what to print. */
#include "control.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

const char *spm_control_run_dir(void)
{
    const char *env = getenv(SPM_CONTROL_RUN_DIR_ENV);
    if (env && env[0] == '/')
        return env;
    return SPM_CONTROL_RUN_DIR_DEFAULT;
}

int spm_control_own_path(char *path, size_t path_size)
{
    int n = snprintf(path, path_size, "%s/%d.ctl", spm_control_run_dir(), (int)getpid());
    return n < 0 || (size_t)n >= path_size ? -ENAMETOOLONG : 0;
}

int spm_control_ns_pid(pid_t pid, pid_t *ns_pid)
{
    char status_path[64];
    snprintf(status_path, sizeof(status_path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(status_path, "re");
    if (!f)
        return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
    char line[512];
    long last = pid;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "NSpid:", 6) != 0)
            continue;
        /* One pid per nested namespace, outermost first. */
        char *p = line + 6, *end;
        for (;;) {
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno)
                break;
            last = v;
            p = end;
        }
        break;
    }
    fclose(f);
    if (last <= 0 || last > INT_MAX)
        return -EPROTO;
    *ns_pid = (pid_t)last;
    return 0;
}

int spm_control_path_for_pid(pid_t pid, char *path, size_t path_size)
{
    pid_t ns_pid;
    int ret = spm_control_ns_pid(pid, &ns_pid);
    if (ret < 0)
        return ret;
    int n = snprintf(path, path_size, "/proc/%d/root%s/%d.ctl", (int)pid, spm_control_run_dir(),
                     (int)ns_pid);
    return n < 0 || (size_t)n >= path_size ? -ENAMETOOLONG : 0;
}

int spm_control_sockaddr(const char *path, struct sockaddr_un *addr, int *dir_fd)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    *dir_fd = -1;
    size_t len = strlen(path);
    if (len == 0)
        return -EINVAL;
    if (len < sizeof(addr->sun_path)) {
        memcpy(addr->sun_path, path, len + 1);
        return 0;
    }
    /* sun_path holds 108 bytes; deep run directories (tests, containers seen
     * through /proc/PID/root) need the directory reached through a
     * descriptor instead. */
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path || strlen(slash + 1) == 0)
        return -ENAMETOOLONG;
    size_t dir_len = (size_t)(slash - path);
    if (dir_len >= PATH_MAX)
        return -ENAMETOOLONG;
    char dir[PATH_MAX];
    memcpy(dir, path, dir_len);
    dir[dir_len] = '\0';
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int n = snprintf(addr->sun_path, sizeof(addr->sun_path), "/proc/self/fd/%d/%s", fd, slash + 1);
    if (n < 0 || (size_t)n >= sizeof(addr->sun_path)) {
        close(fd);
        return -ENAMETOOLONG;
    }
    *dir_fd = fd;
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_all(int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

int spm_control_request(const char *path, const char *request, char *reply, size_t reply_size,
                        unsigned timeout_ms)
{
    if (reply && reply_size)
        reply[0] = '\0';
    size_t request_len = strlen(request);
    if (request_len == 0 || request_len + 1 > SPM_CONTROL_MAX_LINE || strchr(request, '\n'))
        return -EINVAL;
    if (timeout_ms && (!reply || reply_size == 0))
        return -EINVAL;
    struct sockaddr_un addr;
    int dir_fd;
    int ret = spm_control_sockaddr(path, &addr, &dir_fd);
    if (ret < 0)
        return ret;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ret = -errno;
        goto out_dir;
    }
    /* connect() to a listening unix socket completes from its backlog even
     * while the owner is frozen; it blocks only when the backlog is full,
     * which SO_SNDTIMEO bounds (it also bounds the send). */
    unsigned send_ms = timeout_ms ? timeout_ms : 2000;
    struct timeval tv = {.tv_sec = send_ms / 1000, .tv_usec = (send_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        ret = errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : -errno;
        goto out_fd;
    }
    char line[SPM_CONTROL_MAX_LINE + 1];
    memcpy(line, request, request_len);
    line[request_len] = '\n';
    if ((ret = send_all(fd, line, request_len + 1)) < 0)
        goto out_fd;
    if (timeout_ms == 0)
        goto out_fd;
    long long deadline = now_ms() + timeout_ms;
    size_t got = 0;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            ret = -ETIMEDOUT;
            goto out_fd;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int p = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (p < 0 && errno == EINTR)
            continue;
        if (p < 0) {
            ret = -errno;
            goto out_fd;
        }
        if (p == 0)
            continue;
        ssize_t n = recv(fd, line + got, sizeof(line) - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = -errno;
            goto out_fd;
        }
        if (n == 0) { /* hung up before a whole line: the peer died or refused */
            ret = -EPROTO;
            goto out_fd;
        }
        got += (size_t)n;
        char *nl = memchr(line, '\n', got);
        if (nl) {
            *nl = '\0';
            if ((size_t)(nl - line) + 1 > reply_size) {
                ret = -ENOSPC;
                goto out_fd;
            }
            memcpy(reply, line, (size_t)(nl - line) + 1);
            ret = 0;
            goto out_fd;
        }
        if (got == sizeof(line) - 1) {
            ret = -EPROTO;
            goto out_fd;
        }
    }
out_fd:
    close(fd);
out_dir:
    if (dir_fd >= 0)
        close(dir_fd);
    return ret;
}

/* Finds `key=` at the start of a word; msg= ends the key/value words. */
static const char *find_value(const char *reply, const char *key, size_t *len)
{
    size_t key_len = strlen(key);
    if (key_len == 0 || strchr(key, '=') || strchr(key, ' '))
        return NULL;
    const char *p = reply;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *word_end = strchr(p, ' ');
        if (!word_end)
            word_end = p + strlen(p);
        int is_msg = strncmp(p, "msg=", 4) == 0;
        if (strncmp(p, key, key_len) == 0 && p[key_len] == '=') {
            const char *v = p + key_len + 1;
            *len = is_msg ? strlen(v) : (size_t)(word_end - v);
            return v;
        }
        if (is_msg)
            break; /* the rest is free text, not more keys */
        p = word_end;
    }
    return NULL;
}

int spm_control_reply_value(const char *reply, const char *key, char *value, size_t value_size)
{
    size_t len;
    const char *v = find_value(reply, key, &len);
    if (!v)
        return -ENOENT;
    if (len + 1 > value_size)
        return -ENOSPC;
    memcpy(value, v, len);
    value[len] = '\0';
    return 0;
}

static int parse_u64(const char *s, size_t len, unsigned long long max, unsigned long long *out)
{
    if (len == 0 || len > 20)
        return -EINVAL;
    unsigned long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int spm_control_reply_u64(const char *reply, const char *key, unsigned long long *value)
{
    size_t len;
    const char *v = find_value(reply, key, &len);
    if (!v)
        return -ENOENT;
    return parse_u64(v, len, ~0ull, value);
}

/* Bytes a value may carry as they are: enough for ordinary paths to stay
 * readable in logs, none that the line's syntax gives a meaning (space,
 * '=', '%') or that a shell or a log reader could misread. */
static bool plain_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("/._~:,@+-", c) != NULL;
}

static bool control_byte(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int spm_control_encode_value(const char *value, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t used = 0;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (control_byte(*p))
            return -EINVAL;
        size_t need = plain_byte(*p) ? 1 : 3;
        if (out_size - used <= need) /* keeps room for the NUL */
            return -ENOSPC;
        if (need == 1) {
            out[used++] = (char)*p;
        } else {
            out[used++] = '%';
            out[used++] = hex[*p >> 4];
            out[used++] = hex[*p & 15];
        }
    }
    if (out_size == 0)
        return -ENOSPC;
    out[used] = '\0';
    return 0;
}

int spm_control_decode_value(const char *in, size_t len, char *out, size_t out_size)
{
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (len - i < 3)
                return -EINVAL;
            int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (unsigned char)(hi << 4 | lo);
            if (c == 0 || control_byte(c))
                return -EINVAL;
            i += 2;
        } else if (!plain_byte(c)) {
            return -EINVAL;
        }
        if (used + 1 >= out_size)
            return -ENOSPC;
        out[used++] = (char)c;
    }
    if (out_size == 0)
        return -ENOSPC;
    out[used] = '\0';
    return 0;
}

/* A request's path value: decodes to a non-empty absolute path. */
static int decode_path(const char *in, size_t len, char *out, size_t out_size)
{
    int ret = spm_control_decode_value(in, len, out, out_size);
    if (ret < 0)
        return ret;
    return out[0] == '/' ? 0 : -EINVAL;
}

int spm_control_request_line(char *buf, size_t size)
{
    buf[size] = '\0';
    char *nl = strchr(buf, '\n');
    if (!nl)
        return -EPROTO;
    *nl = '\0';
    return 0;
}

int spm_control_parse_request(const char *line, struct spm_control_request *out)
{
    memset(out, 0, sizeof(*out));
    size_t line_len = strlen(line);
    if (line_len == 0 || line_len >= SPM_CONTROL_MAX_LINE)
        return -EINVAL;
    const char *sp = strchr(line, ' ');
    size_t verb_len = sp ? (size_t)(sp - line) : line_len;
    if (verb_len == 6 && strncmp(line, "export", 6) == 0)
        out->op = SPM_CONTROL_OP_EXPORT;
    else if (verb_len == 6 && strncmp(line, "resume", 6) == 0)
        out->op = SPM_CONTROL_OP_RESUME;
    else if (verb_len == 6 && strncmp(line, "status", 6) == 0)
        out->op = SPM_CONTROL_OP_STATUS;
    else
        return -EINVAL;
    bool seen_timeout = false, seen_threads = false, seen_wait = false, seen_lazy = false;
    const char *p = line + verb_len;
    while (*p) {
        if (*p != ' ' || p[1] == ' ' || p[1] == '\0')
            return -EINVAL; /* words are separated by exactly one space */
        p++;
        const char *end = strchr(p, ' ');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq)
            return -EINVAL;
        size_t key_len = (size_t)(eq - p);
        const char *v = eq + 1;
        size_t v_len = (size_t)(end - v);
        unsigned long long value;
        if (key_len == 10 && strncmp(p, "timeout_ms", 10) == 0 &&
            out->op == SPM_CONTROL_OP_EXPORT && !seen_timeout) {
            if (parse_u64(v, v_len, SPM_CONTROL_MAX_MS, &value) < 0 || value == 0)
                return -EINVAL;
            out->timeout_ms = (unsigned)value;
            seen_timeout = true;
        } else if (key_len == 7 && strncmp(p, "threads", 7) == 0 &&
                   out->op == SPM_CONTROL_OP_EXPORT && !seen_threads) {
            if (parse_u64(v, v_len, SPM_CONTROL_MAX_THREADS, &value) < 0 || value == 0)
                return -EINVAL;
            out->threads = (unsigned)value;
            seen_threads = true;
        } else if (key_len == 4 && strncmp(p, "lazy", 4) == 0 && out->op == SPM_CONTROL_OP_EXPORT &&
                   !seen_lazy) {
            if (v_len != 1 || *v != '1')
                return -EINVAL;
            out->lazy = true;
            seen_lazy = true;
        } else if (key_len == 7 && strncmp(p, "wait_ms", 7) == 0 &&
                   out->op == SPM_CONTROL_OP_STATUS && !seen_wait) {
            if (parse_u64(v, v_len, SPM_CONTROL_MAX_MS, &value) < 0)
                return -EINVAL;
            out->wait_ms = (unsigned)value;
            seen_wait = true;
        } else if (key_len == 8 && strncmp(p, "platform", 8) == 0 &&
                   out->op == SPM_CONTROL_OP_RESUME && !out->platform[0]) {
            if (decode_path(v, v_len, out->platform, sizeof(out->platform)) < 0)
                return -EINVAL;
        } else if (key_len == 4 && strncmp(p, "spmd", 4) == 0 && out->op == SPM_CONTROL_OP_RESUME &&
                   !out->spmd[0]) {
            if (decode_path(v, v_len, out->spmd, sizeof(out->spmd)) < 0)
                return -EINVAL;
        } else {
            return -EINVAL;
        }
        p = end;
    }
    return 0;
}

/* The value of environment variable `name` if it is a number in 1..max;
 * `fallback` if unset or empty, and also (naming it in *ignored) if not. */
static unsigned env_unsigned(const char *name, unsigned fallback, unsigned max,
                             const char **ignored)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return fallback;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || n == 0 || n > max) {
        *ignored = name;
        return fallback;
    }
    return (unsigned)n;
}

unsigned spm_control_export_request(char *request, size_t request_size, const char *ignored[2])
{
    ignored[0] = ignored[1] = NULL;
    unsigned timeout_ms = env_unsigned(SPM_CONTROL_TIMEOUT_ENV, SPM_CONTROL_DEFAULT_TIMEOUT_MS,
                                       SPM_CONTROL_MAX_MS, &ignored[0]);
    unsigned threads =
        env_unsigned(SPM_CONTROL_THREADS_ENV, 0, SPM_CONTROL_MAX_THREADS, &ignored[1]);
    const char *lazy = getenv(SPM_CONTROL_LAZY_ENV);
    int n = snprintf(request, request_size, "export timeout_ms=%u", timeout_ms);
    if (threads && n >= 0 && (size_t)n < request_size)
        n += snprintf(request + n, request_size - (size_t)n, " threads=%u", threads);
    if (lazy && strcmp(lazy, "1") == 0 && n >= 0 && (size_t)n < request_size)
        snprintf(request + n, request_size - (size_t)n, " lazy=1");
    return timeout_ms + SPM_CONTROL_EXPORT_MARGIN_MS;
}

/* Appends " key=<encoded value of env var>" when the variable is set. */
static int append_env_path(char *request, size_t request_size, const char *key, const char *name,
                           const char **bad)
{
    const char *v = getenv(name);
    if (!v || !v[0])
        return 0;
    char encoded[SPM_CONTROL_MAX_LINE];
    int ret = spm_control_encode_value(v, encoded, sizeof(encoded));
    if (ret == 0 && v[0] != '/')
        ret = -EINVAL;
    if (ret < 0) {
        *bad = name;
        return ret;
    }
    size_t used = strlen(request);
    int n = snprintf(request + used, request_size - used, " %s=%s", key, encoded);
    if (n < 0 || (size_t)n >= request_size - used) {
        *bad = name;
        return -ENOSPC;
    }
    return 0;
}

int spm_control_resume_request(char *request, size_t request_size, const char **bad)
{
    *bad = NULL;
    if (request_size < sizeof("resume"))
        return -ENOSPC;
    memcpy(request, "resume", sizeof("resume"));
    int ret = append_env_path(request, request_size, "platform", SPM_CONTROL_PLATFORM_ENV, bad);
    if (ret == 0)
        ret = append_env_path(request, request_size, "spmd", SPM_CONTROL_SPMD_ENV, bad);
    /* Longer than a request line may be: the server would refuse it. */
    if (ret == 0 && strlen(request) + 1 > SPM_CONTROL_MAX_LINE)
        ret = -ENOSPC;
    return ret;
}

int spm_control_import_deferred(void)
{
    const char *v = getenv(SPM_CONTROL_DEFERRED_ENV);
    return v && strcmp(v, "1") == 0;
}

static void put_hex(char *out, const uint8_t *bytes, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
}

int spm_control_format_ref(const struct spm_me_checkpoint_ref *ref, char *out, size_t out_size)
{
    char lineage[33], id[33], digest[65];
    put_hex(lineage, ref->lineage_id, sizeof(ref->lineage_id));
    lineage[32] = '\0';
    put_hex(id, ref->checkpoint_id, sizeof(ref->checkpoint_id));
    id[32] = '\0';
    put_hex(digest, ref->header_digest, sizeof(ref->header_digest));
    digest[64] = '\0';
    int n = snprintf(out, out_size, "%s:%llu:%s:%s", lineage, (unsigned long long)ref->generation,
                     id, digest);
    return n < 0 || (size_t)n >= out_size ? -ENOSPC : 0;
}

/* Exactly 2 * size hex digits at s (length len) into bytes. */
static int get_hex(const char *s, size_t len, uint8_t *bytes, size_t size)
{
    if (len != 2 * size)
        return -EINVAL;
    for (size_t i = 0; i < size; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* One LINEAGE:GEN:ID:DIGEST of `len` bytes. */
static int parse_one_ref(const char *s, size_t len, struct spm_me_checkpoint_ref *ref)
{
    const char *field[4];
    size_t field_len[4];
    const char *p = s, *end = s + len;
    for (int i = 0; i < 4; i++) {
        const char *colon = i < 3 ? memchr(p, ':', (size_t)(end - p)) : NULL;
        if (i < 3 && !colon)
            return -EINVAL;
        field[i] = p;
        field_len[i] = (size_t)((i < 3 ? colon : end) - p);
        p = i < 3 ? colon + 1 : end;
    }
    if (memchr(field[3], ':', field_len[3]))
        return -EINVAL; /* a fifth field */
    if (field_len[1] > 1 && field[1][0] == '0')
        return -EINVAL; /* one spelling per generation */
    unsigned long long generation;
    memset(ref, 0, sizeof(*ref));
    if (get_hex(field[0], field_len[0], ref->lineage_id, sizeof(ref->lineage_id)) < 0 ||
        parse_u64(field[1], field_len[1], ~0ull, &generation) < 0 ||
        get_hex(field[2], field_len[2], ref->checkpoint_id, sizeof(ref->checkpoint_id)) < 0 ||
        get_hex(field[3], field_len[3], ref->header_digest, sizeof(ref->header_digest)) < 0)
        return -EINVAL;
    ref->generation = generation;
    return 0;
}

int spm_control_parse_refs(const char *reply, struct spm_me_checkpoint_ref *refs, size_t capacity,
                           size_t *count)
{
    size_t len;
    const char *v = find_value(reply, "refs", &len);
    if (!v)
        return -ENOENT;
    if (len == 0)
        return -EINVAL;
    size_t n = 0;
    const char *p = v, *end = v + len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        if (item_end == p)
            return -EINVAL; /* empty element: leading, trailing or double comma */
        if (n == capacity)
            return -ENOSPC;
        struct spm_me_checkpoint_ref ref;
        if (parse_one_ref(p, (size_t)(item_end - p), &ref) < 0)
            return -EINVAL;
        refs[n++] = ref;
        if (!comma)
            break;
        p = comma + 1;
    }
    *count = n;
    return 0;
}
