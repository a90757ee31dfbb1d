/* The control channel's one parser and its client (control.h): requests the
 * server must refuse, reply values (msg= runs to the end and hides what
 * looks like keys inside it), socket paths longer than sun_path, and the
 * client's behaviour against a peer that answers, hangs up, or says
 * nothing. A server that misparses would export or resume on garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "host/control/control.h"

static void test_parse_valid(void **state)
{
    (void)state;
    struct spm_control_request r;
    assert_int_equal(spm_control_parse_request("export", &r), 0);
    assert_int_equal(r.op, SPM_CONTROL_OP_EXPORT);
    assert_int_equal(r.timeout_ms, 0);
    assert_int_equal(r.threads, 0);
    assert_int_equal(spm_control_parse_request("export timeout_ms=250 threads=3", &r), 0);
    assert_int_equal(r.timeout_ms, 250);
    assert_int_equal(r.threads, 3);
    assert_false(r.lazy);
    assert_int_equal(spm_control_parse_request("export threads=1 timeout_ms=3600000", &r), 0);
    assert_int_equal(r.timeout_ms, 3600000);
    assert_int_equal(spm_control_parse_request("export timeout_ms=9 lazy=1 threads=2", &r), 0);
    assert_true(r.lazy);
    assert_int_equal(r.threads, 2);
    assert_int_equal(spm_control_parse_request("resume", &r), 0);
    assert_int_equal(r.op, SPM_CONTROL_OP_RESUME);
    assert_int_equal(spm_control_parse_request("status", &r), 0);
    assert_int_equal(r.op, SPM_CONTROL_OP_STATUS);
    assert_int_equal(r.wait_ms, 0);
    assert_int_equal(spm_control_parse_request("status wait_ms=0", &r), 0);
    assert_int_equal(spm_control_parse_request("status wait_ms=5000", &r), 0);
    assert_int_equal(r.wait_ms, 5000);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "Export",
        "exports",
        "export ",                                   /* trailing space */
        " export",                                   /* leading space */
        "export  threads=2",                         /* two spaces */
        "export threads",                            /* no value */
        "export threads=",                           /* empty value */
        "export threads=0",                          /* zero threads */
        "export threads=1025",                       /* over the cap */
        "export threads=-1",                         /* sign */
        "export threads=+1",                         /* sign */
        "export threads=1x",                         /* trailing junk */
        "export threads=2 threads=3",                /* repeated */
        "export lazy=0",                             /* only lazy=1 exists */
        "export lazy=yes",                           /* only lazy=1 exists */
        "export lazy=1 lazy=1",                      /* repeated */
        "resume lazy=1",                             /* export's option */
        "export timeout_ms=0",                       /* zero bound */
        "export timeout_ms=3600001",                 /* over the cap */
        "export timeout_ms=99999999999999999999999", /* overflow */
        "export wait_ms=1",                          /* status's option */
        "export colour=red",                         /* unknown */
        "resume threads=2",                          /* resume takes none */
        "status timeout_ms=1",                       /* export's option */
        "status wait_ms=1 wait_ms=2",                /* repeated */
        "status wait_ms=3600001",                    /* over the cap */
        "export\ttimeout_ms=1",                      /* not a space */
        "export timeout_ms=1\n",                     /* newline is not part of the line */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct spm_control_request r;
        if (spm_control_parse_request(bad[i], &r) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
    }
    char long_line[SPM_CONTROL_MAX_LINE + 16];
    memset(long_line, 'x', sizeof(long_line) - 1);
    long_line[sizeof(long_line) - 1] = '\0';
    memcpy(long_line, "status ", 7);
    struct spm_control_request r;
    assert_int_equal(spm_control_parse_request(long_line, &r), -EINVAL);
}

static void test_reply_values(void **state)
{
    (void)state;
    const char *ok = "ok enclaves=1 bytes=1052672 chunks=2 threads=2 export_us=3021";
    char v[64];
    assert_int_equal(spm_control_reply_value(ok, "bytes", v, sizeof(v)), 0);
    assert_string_equal(v, "1052672");
    assert_int_equal(spm_control_reply_value(ok, "export_us", v, sizeof(v)), 0);
    assert_string_equal(v, "3021");
    assert_int_equal(spm_control_reply_value(ok, "byte", v, sizeof(v)), -ENOENT);
    assert_int_equal(spm_control_reply_value(ok, "import_us", v, sizeof(v)), -ENOENT);
    assert_int_equal(spm_control_reply_value(ok, "bytes", v, 7), -ENOSPC);
    unsigned long long n;
    assert_int_equal(spm_control_reply_u64(ok, "chunks", &n), 0);
    assert_int_equal(n, 2);

    /* msg= runs to the end; key=value text inside it is not a key. */
    const char *err = "error errno=110 msg=2 thread(s) still inside; bytes=7 is not a key";
    assert_int_equal(spm_control_reply_u64(err, "errno", &n), 0);
    assert_int_equal(n, 110);
    assert_int_equal(spm_control_reply_value(err, "msg", v, sizeof(v)), 0);
    assert_string_equal(v, "2 thread(s) still inside; bytes=7 is not a key");
    assert_int_equal(spm_control_reply_value(err, "bytes", v, sizeof(v)), -ENOENT);

    const char *status = "ok state=exported enclaves=1 bytes=x errno=5 msg=m";
    assert_int_equal(spm_control_reply_value(status, "state", v, sizeof(v)), 0);
    assert_string_equal(v, "exported");
    assert_int_equal(spm_control_reply_u64(status, "bytes", &n), -EINVAL);
    assert_int_equal(spm_control_reply_value(status, "state=", v, sizeof(v)), -ENOENT);
    assert_int_equal(spm_control_reply_value("", "state", v, sizeof(v)), -ENOENT);
}

/* What the server makes of the bytes it received: the first line only. */
static void test_request_line(void **state)
{
    (void)state;
    char buf[64];
    strcpy(buf, "status wait_ms=5\nexport\n");
    assert_int_equal(spm_control_request_line(buf, strlen(buf)), 0);
    assert_string_equal(buf, "status wait_ms=5");
    memcpy(buf, "status", 6);
    assert_int_equal(spm_control_request_line(buf, 6), -EPROTO); /* no newline yet */
    memcpy(buf, "stat\0us\n", 8);
    assert_int_equal(spm_control_request_line(buf, 8), -EPROTO); /* a NUL before it */
    assert_int_equal(spm_control_request_line(buf, 0), -EPROTO);
}

static void test_paths(void **state)
{
    (void)state;
    char path[512], expected[512];
    setenv(SPM_CONTROL_RUN_DIR_ENV, "/tmp/spm-test-run", 1);
    assert_string_equal(spm_control_run_dir(), "/tmp/spm-test-run");
    assert_int_equal(spm_control_own_path(path, sizeof(path)), 0);
    snprintf(expected, sizeof(expected), "/tmp/spm-test-run/%d.ctl", (int)getpid());
    assert_string_equal(path, expected);
    /* From outside, through /proc/PID/root, named by the innermost pid. */
    assert_int_equal(spm_control_path_for_pid(getpid(), path, sizeof(path)), 0);
    pid_t ns_pid;
    assert_int_equal(spm_control_ns_pid(getpid(), &ns_pid), 0);
    snprintf(expected, sizeof(expected), "/proc/%d/root/tmp/spm-test-run/%d.ctl", (int)getpid(),
             (int)ns_pid);
    assert_string_equal(path, expected);
    assert_int_equal(spm_control_path_for_pid(getpid(), path, 10), -ENAMETOOLONG);
    /* Relative run directories are ignored: the socket must be findable. */
    setenv(SPM_CONTROL_RUN_DIR_ENV, "relative/dir", 1);
    assert_string_equal(spm_control_run_dir(), SPM_CONTROL_RUN_DIR_DEFAULT);
    unsetenv(SPM_CONTROL_RUN_DIR_ENV);
    assert_string_equal(spm_control_run_dir(), SPM_CONTROL_RUN_DIR_DEFAULT);
    /* A pid that does not exist. */
    assert_int_equal(spm_control_path_for_pid(0x7ffffff0, path, sizeof(path)), -ENOENT);
}

/* ---- A scripted peer on a real socket ---- */

enum peer_mode { PEER_REPLY, PEER_HANG_UP, PEER_SILENT, PEER_RECORD };

struct peer {
    int fd;
    enum peer_mode mode;
    char got[SPM_CONTROL_MAX_LINE + 2];
    pthread_t thread;
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    int c = accept(p->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    size_t n = 0;
    while (n < sizeof(p->got) - 1) {
        ssize_t r = read(c, p->got + n, sizeof(p->got) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(p->got, '\n', n))
            break;
    }
    p->got[n] = '\0';
    if (p->mode == PEER_REPLY) {
        const char *reply = "ok state=live enclaves=1 msg=all good\n";
        (void)!write(c, reply, strlen(reply));
    } else if (p->mode == PEER_SILENT) {
        sleep(1);
    }
    close(c);
    return NULL;
}

static void start_peer(struct peer *p, const char *path, enum peer_mode mode)
{
    memset(p, 0, sizeof(*p));
    p->mode = mode;
    struct sockaddr_un addr;
    int dir_fd;
    assert_int_equal(spm_control_sockaddr(path, &addr, &dir_fd), 0);
    p->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(p->fd >= 0);
    unlink(path);
    assert_int_equal(bind(p->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(p->fd, 4), 0);
    if (dir_fd >= 0)
        close(dir_fd);
    assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void stop_peer(struct peer *p, const char *path)
{
    pthread_join(p->thread, NULL);
    close(p->fd);
    unlink(path);
}

/* The export request the plugin and the action script send: bounds from
 * the environment, anything malformed or out of range left to defaults and
 * named. */
static void test_export_request_from_environment(void **state)
{
    (void)state;
    char request[96];
    const char *ignored[2];
    unsetenv(SPM_CONTROL_TIMEOUT_ENV);
    unsetenv(SPM_CONTROL_THREADS_ENV);
    unsetenv(SPM_CONTROL_LAZY_ENV);
    unsigned reply_ms = spm_control_export_request(request, sizeof(request), ignored);
    char want[96];
    snprintf(want, sizeof(want), "export timeout_ms=%u", SPM_CONTROL_DEFAULT_TIMEOUT_MS);
    assert_string_equal(request, want);
    assert_int_equal(reply_ms, SPM_CONTROL_DEFAULT_TIMEOUT_MS + SPM_CONTROL_EXPORT_MARGIN_MS);
    assert_null(ignored[0]);
    assert_null(ignored[1]);

    setenv(SPM_CONTROL_TIMEOUT_ENV, "2500", 1);
    setenv(SPM_CONTROL_THREADS_ENV, "3", 1);
    reply_ms = spm_control_export_request(request, sizeof(request), ignored);
    assert_string_equal(request, "export timeout_ms=2500 threads=3");
    assert_int_equal(reply_ms, 2500 + SPM_CONTROL_EXPORT_MARGIN_MS);
    setenv(SPM_CONTROL_LAZY_ENV, "1", 1);
    spm_control_export_request(request, sizeof(request), ignored);
    assert_string_equal(request, "export timeout_ms=2500 threads=3 lazy=1");
    unsetenv(SPM_CONTROL_THREADS_ENV);
    spm_control_export_request(request, sizeof(request), ignored);
    assert_string_equal(request, "export timeout_ms=2500 lazy=1");
    setenv(SPM_CONTROL_LAZY_ENV, "0", 1);
    spm_control_export_request(request, sizeof(request), ignored);
    assert_string_equal(request, "export timeout_ms=2500");
    unsetenv(SPM_CONTROL_LAZY_ENV);

    setenv(SPM_CONTROL_TIMEOUT_ENV, "0", 1);
    setenv(SPM_CONTROL_THREADS_ENV, "4x", 1);
    spm_control_export_request(request, sizeof(request), ignored);
    assert_string_equal(request, want);
    assert_string_equal(ignored[0], SPM_CONTROL_TIMEOUT_ENV);
    assert_string_equal(ignored[1], SPM_CONTROL_THREADS_ENV);
    unsetenv(SPM_CONTROL_TIMEOUT_ENV);
    unsetenv(SPM_CONTROL_THREADS_ENV);
}

/* resume's host fields: absolute paths, percent-encoded, each once. */
static void test_parse_resume_host(void **state)
{
    (void)state;
    struct spm_control_request r;
    assert_int_equal(spm_control_parse_request("resume platform=/var/lib/spm/p2", &r), 0);
    assert_int_equal(r.op, SPM_CONTROL_OP_RESUME);
    assert_string_equal(r.platform, "/var/lib/spm/p2");
    assert_string_equal(r.spmd, "");
    assert_int_equal(spm_control_parse_request(
                         "resume spmd=/run/b/spmd.sock platform=/srv/My%20Platform%25", &r),
                     0);
    assert_string_equal(r.platform, "/srv/My Platform%");
    assert_string_equal(r.spmd, "/run/b/spmd.sock");
    assert_int_equal(spm_control_parse_request("resume platform=%2fx%2Fy", &r), 0);
    assert_string_equal(r.platform, "/x/y");

    static const char *const bad[] = {
        "resume platform=",               /* empty */
        "resume platform=relative/dir",   /* not absolute */
        "resume spmd=spmd.sock",          /* not absolute */
        "resume platform=%2",             /* truncated escape */
        "resume platform=/a%zz",          /* not hex */
        "resume platform=/a%0A",          /* newline */
        "resume platform=/a%00b",         /* NUL */
        "resume platform=/a%7F",          /* DEL */
        "resume platform=/a=b",           /* '=' must be escaped */
        "resume platform=/a\"b",          /* so must quotes */
        "resume platform=/a platform=/b", /* repeated */
        "resume spmd=/a spmd=/a",         /* repeated */
        "resume platform=/a  spmd=/b",    /* two spaces */
        "export platform=/a",             /* resume's option */
        "status spmd=/a",                 /* resume's option */
        "resume host=/a",                 /* unknown */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (spm_control_parse_request(bad[i], &r) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
}

static void test_encode_values(void **state)
{
    (void)state;
    char out[64], back[64];
    assert_int_equal(spm_control_encode_value("/a b/c%d=e", out, sizeof(out)), 0);
    assert_string_equal(out, "/a%20b/c%25d%3De");
    assert_int_equal(spm_control_decode_value(out, strlen(out), back, sizeof(back)), 0);
    assert_string_equal(back, "/a b/c%d=e");
    /* Every printable byte and every high byte survives the round trip. */
    char all[256];
    size_t n = 0;
    for (int c = 0x20; c < 0x100; c++)
        if (c != 0x7f)
            all[n++] = (char)c;
    all[n] = '\0';
    char encoded[800], decoded[300];
    assert_int_equal(spm_control_encode_value(all, encoded, sizeof(encoded)), 0);
    assert_null(strchr(encoded, ' '));
    assert_null(strchr(encoded, '='));
    assert_int_equal(spm_control_decode_value(encoded, strlen(encoded), decoded, sizeof(decoded)),
                     0);
    assert_string_equal(decoded, all);
    /* Control characters are refused, not escaped. */
    assert_int_equal(spm_control_encode_value("/a\nb", out, sizeof(out)), -EINVAL);
    assert_int_equal(spm_control_encode_value("/a\tb", out, sizeof(out)), -EINVAL);
    /* Too small, exactly big enough. */
    assert_int_equal(spm_control_encode_value("/ab", out, 3), -ENOSPC);
    assert_int_equal(spm_control_encode_value("/ab", out, 4), 0);
    assert_int_equal(spm_control_encode_value(" ", out, 3), -ENOSPC);
    assert_int_equal(spm_control_encode_value(" ", out, 4), 0);
    assert_int_equal(spm_control_decode_value("/abc", 4, back, 4), -ENOSPC);
    assert_int_equal(spm_control_decode_value("/abc", 4, back, 5), 0);
}

static void test_resume_request_from_environment(void **state)
{
    (void)state;
    char request[SPM_CONTROL_MAX_LINE];
    const char *bad;
    unsetenv(SPM_CONTROL_PLATFORM_ENV);
    unsetenv(SPM_CONTROL_SPMD_ENV);
    assert_int_equal(spm_control_resume_request(request, sizeof(request), &bad), 0);
    assert_string_equal(request, "resume"); /* absent: the process keeps its own */
    assert_null(bad);

    setenv(SPM_CONTROL_PLATFORM_ENV, "/hosts/b/platform dir", 1);
    setenv(SPM_CONTROL_SPMD_ENV, "/hosts/b/spmd.sock", 1);
    assert_int_equal(spm_control_resume_request(request, sizeof(request), &bad), 0);
    assert_string_equal(request, "resume platform=/hosts/b/platform%20dir spmd=/hosts/b/spmd.sock");
    /* What the plugin sends, the server parses back to the same paths. */
    struct spm_control_request r;
    assert_int_equal(spm_control_parse_request(request, &r), 0);
    assert_string_equal(r.platform, "/hosts/b/platform dir");
    assert_string_equal(r.spmd, "/hosts/b/spmd.sock");

    setenv(SPM_CONTROL_PLATFORM_ENV, "", 1); /* empty counts as unset */
    assert_int_equal(spm_control_resume_request(request, sizeof(request), &bad), 0);
    assert_string_equal(request, "resume spmd=/hosts/b/spmd.sock");

    setenv(SPM_CONTROL_PLATFORM_ENV, "relative", 1);
    assert_int_equal(spm_control_resume_request(request, sizeof(request), &bad), -EINVAL);
    assert_string_equal(bad, SPM_CONTROL_PLATFORM_ENV);
    setenv(SPM_CONTROL_PLATFORM_ENV, "/ok", 1);
    setenv(SPM_CONTROL_SPMD_ENV, "/a\nstatus", 1); /* a second line smuggled in */
    assert_int_equal(spm_control_resume_request(request, sizeof(request), &bad), -EINVAL);
    assert_string_equal(bad, SPM_CONTROL_SPMD_ENV);
    char huge[SPM_CONTROL_MAX_LINE];
    memset(huge, 'x', sizeof(huge) - 1);
    huge[0] = '/';
    huge[sizeof(huge) - 1] = '\0';
    setenv(SPM_CONTROL_SPMD_ENV, huge, 1);
    assert_int_equal(spm_control_resume_request(request, sizeof(request), &bad), -ENOSPC);
    assert_string_equal(bad, SPM_CONTROL_SPMD_ENV);
    unsetenv(SPM_CONTROL_PLATFORM_ENV);
    unsetenv(SPM_CONTROL_SPMD_ENV);

    unsetenv(SPM_CONTROL_DEFERRED_ENV);
    assert_false(spm_control_import_deferred());
    setenv(SPM_CONTROL_DEFERRED_ENV, "0", 1);
    assert_false(spm_control_import_deferred());
    setenv(SPM_CONTROL_DEFERRED_ENV, "1", 1);
    assert_true(spm_control_import_deferred());
    unsetenv(SPM_CONTROL_DEFERRED_ENV);
}

static void fill_ref(struct spm_me_checkpoint_ref *ref, uint8_t seed, uint64_t generation)
{
    for (size_t i = 0; i < 16; i++) {
        ref->lineage_id[i] = (uint8_t)(seed + i);
        ref->checkpoint_id[i] = (uint8_t)(0xf0 ^ (seed * 7 + i));
    }
    for (size_t i = 0; i < 32; i++)
        ref->header_digest[i] = (uint8_t)(seed * 13 + i * 3);
    ref->generation = generation;
}

#define L32 "00112233445566778899aabbccddeeff"
#define D64 L32 L32

static void test_refs(void **state)
{
    (void)state;
    /* Round trip through the formatter, two refs, as the server writes them. */
    struct spm_me_checkpoint_ref in[2];
    fill_ref(&in[0], 1, 1);
    fill_ref(&in[1], 0xa0, UINT64_MAX);
    char a[SPM_CONTROL_REF_MAX_TEXT + 1], b[SPM_CONTROL_REF_MAX_TEXT + 1];
    assert_int_equal(spm_control_format_ref(&in[0], a, sizeof(a)), 0);
    assert_int_equal(spm_control_format_ref(&in[1], b, sizeof(b)), 0);
    assert_int_equal(strlen(b), SPM_CONTROL_REF_MAX_TEXT); /* the longest there is */
    assert_int_equal(spm_control_format_ref(&in[1], b, SPM_CONTROL_REF_MAX_TEXT), -ENOSPC);
    assert_int_equal(spm_control_format_ref(&in[1], b, sizeof(b)), 0);
    assert_string_equal(a, "0102030405060708090a0b0c0d0e0f10:1:f7f8f9fafbfcfdfeffe0e1e2e3e4e5e6:"
                           "0d101316191c1f2225282b2e3134373a3d404346494c4f5255585b5e6164676a");
    char line[1024];
    snprintf(line, sizeof(line), "ok enclaves=2 bytes=1 chunks=1 threads=1 export_us=5 refs=%s,%s",
             a, b);
    struct spm_me_checkpoint_ref out[3];
    size_t count = 99;
    assert_int_equal(spm_control_parse_refs(line, out, 3, &count), 0);
    assert_int_equal(count, 2);
    assert_memory_equal(&out[0], &in[0], sizeof(in[0]));
    assert_memory_equal(&out[1], &in[1], sizeof(in[1]));
    /* Capacity: exactly enough, one short. */
    assert_int_equal(spm_control_parse_refs(line, out, 2, &count), 0);
    count = 99;
    assert_int_equal(spm_control_parse_refs(line, out, 1, &count), -ENOSPC);
    assert_int_equal(count, 99);
    /* Uppercase hex is the same value. */
    assert_int_equal(spm_control_parse_refs("refs=" L32 ":7:" L32 ":" D64, out, 1, &count), 0);
    struct spm_me_checkpoint_ref upper;
    assert_int_equal(spm_control_parse_refs("refs=00112233445566778899AABBCCDDEEFF:7:" L32 ":" D64,
                                            &upper, 1, &count),
                     0);
    assert_memory_equal(&upper, &out[0], sizeof(upper));
    assert_int_equal(out[0].generation, 7);

    /* Absent, or only inside msg= (free text). */
    assert_int_equal(spm_control_parse_refs("ok enclaves=0", out, 3, &count), -ENOENT);
    assert_int_equal(
        spm_control_parse_refs("error errno=5 msg=x refs=" L32 ":1:" L32 ":" D64, out, 3, &count),
        -ENOENT);

    static const char *const bad[] = {
        "refs=",
        "refs=,",
        "refs=" L32 ":1:" L32 ":" D64 ",",                               /* trailing comma */
        "refs=," L32 ":1:" L32 ":" D64,                                  /* leading comma */
        "refs=" L32 ":1:" L32 ":" D64 ",," L32 ":1:" L32 ":" D64,        /* empty element */
        "refs=" L32 ":1:" L32,                                           /* three fields */
        "refs=" L32 ":1:" L32 ":" D64 ":00",                             /* five fields */
        "refs=" L32 "0:1:" L32 ":" D64,                                  /* lineage too long */
        "refs=0011223344556677889aabbccddeeff:1:" L32 ":" D64,           /* lineage too short */
        "refs=" L32 ":1:" L32 ":" L32,                                   /* digest too short */
        "refs=" L32 ":1:" L32 ":" D64 "0",                               /* digest too long */
        "refs=g0112233445566778899aabbccddeeff:1:" L32 ":" D64,          /* not hex */
        "refs=" L32 ":1:" L32 ":" L32 "0011223344556677889aabbccddeef-", /* not hex */
        "refs=" L32 "::" L32 ":" D64,                                    /* empty generation */
        "refs=" L32 ":-1:" L32 ":" D64,                                  /* sign */
        "refs=" L32 ":+1:" L32 ":" D64,                                  /* sign */
        "refs=" L32 ":01:" L32 ":" D64,                                  /* leading zero */
        "refs=" L32 ":0x1:" L32 ":" D64,                                 /* hex generation */
        "refs=" L32 ":18446744073709551616:" L32 ":" D64,                /* 2^64 */
        "refs=" L32 ":1:" L32 ":" D64 ";" L32 ":1:" L32 ":" D64,         /* wrong separator */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        count = 99;
        if (spm_control_parse_refs(bad[i], out, 3, &count) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(count, 99);
    }
    /* The largest generation still parses. */
    assert_int_equal(
        spm_control_parse_refs("refs=" L32 ":18446744073709551615:" L32 ":" D64, out, 1, &count),
        0);
    assert_true(out[0].generation == UINT64_MAX);
}

static void test_client_against_peer(void **state)
{
    (void)state;
    char dir[] = "/tmp/spm-control-XXXXXX";
    assert_non_null(mkdtemp(dir));
    /* Deep enough that the socket's path does not fit in sun_path. */
    char deep[400];
    snprintf(deep, sizeof(deep), "%s/%0100d/%0100d", dir, 1, 2);
    char mk[500];
    snprintf(mk, sizeof(mk), "mkdir -p '%s'", deep);
    assert_int_equal(system(mk), 0);
    char short_path[128], long_path[512];
    snprintf(short_path, sizeof(short_path), "%s/p.ctl", dir);
    snprintf(long_path, sizeof(long_path), "%s/p.ctl", deep);
    assert_true(strlen(long_path) >= sizeof(((struct sockaddr_un *)0)->sun_path));
    const char *paths[] = {short_path, long_path};

    for (int i = 0; i < 2; i++) {
        struct peer p;
        char reply[256];
        start_peer(&p, paths[i], PEER_REPLY);
        assert_int_equal(
            spm_control_request(paths[i], "status wait_ms=10", reply, sizeof(reply), 2000), 0);
        stop_peer(&p, paths[i]);
        assert_string_equal(p.got, "status wait_ms=10\n");
        assert_string_equal(reply, "ok state=live enclaves=1 msg=all good");
    }

    struct peer p;
    char reply[256];
    /* Queue without waiting: the line arrives even though nobody reads a reply. */
    start_peer(&p, short_path, PEER_RECORD);
    assert_int_equal(spm_control_request(short_path, "resume", NULL, 0, 0), 0);
    stop_peer(&p, short_path);
    assert_string_equal(p.got, "resume\n");

    /* A peer that hangs up without a line: not a reply. */
    start_peer(&p, short_path, PEER_HANG_UP);
    assert_int_equal(spm_control_request(short_path, "status", reply, sizeof(reply), 2000),
                     -EPROTO);
    stop_peer(&p, short_path);

    /* A peer that says nothing: bounded. */
    start_peer(&p, short_path, PEER_SILENT);
    assert_int_equal(spm_control_request(short_path, "status", reply, sizeof(reply), 200),
                     -ETIMEDOUT);
    stop_peer(&p, short_path);

    /* Reply larger than the caller's buffer. */
    start_peer(&p, short_path, PEER_REPLY);
    assert_int_equal(spm_control_request(short_path, "status", reply, 8, 2000), -ENOSPC);
    stop_peer(&p, short_path);

    /* Nobody there. */
    assert_int_equal(spm_control_request(short_path, "status", reply, sizeof(reply), 200), -ENOENT);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    int dir_fd;
    assert_int_equal(spm_control_sockaddr(short_path, &addr, &dir_fd), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(fd); /* a socket file nobody listens on: what a killed process leaves */
    assert_int_equal(spm_control_request(short_path, "status", reply, sizeof(reply), 200),
                     -ECONNREFUSED);
    unlink(short_path);

    /* Requests the client itself refuses to send. */
    assert_int_equal(spm_control_request(short_path, "", reply, sizeof(reply), 200), -EINVAL);
    assert_int_equal(spm_control_request(short_path, "a\nb", reply, sizeof(reply), 200), -EINVAL);
    assert_int_equal(spm_control_request(short_path, "status", NULL, 0, 200), -EINVAL);

    snprintf(mk, sizeof(mk), "rm -rf '%s'", dir);
    assert_int_equal(system(mk), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_reply_values),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_client_against_peer),
        cmocka_unit_test(test_export_request_from_environment),
        cmocka_unit_test(test_parse_resume_host),
        cmocka_unit_test(test_encode_values),
        cmocka_unit_test(test_resume_request_from_environment),
        cmocka_unit_test(test_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
