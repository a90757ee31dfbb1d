/* The kvs enclave's batch ecall, driven directly as a hostile host would:
 * every way of lying about counts and sizes must be refused whole (and run
 * nothing), an output buffer that is too small must stop cleanly before the
 * command that does not fit and say how much it needs, and concurrent
 * batches on every TCS must not lose updates.
 * argv: SPM KVS_ENCLAVE.signed (spm creates a throwaway CA and platform). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvs_abi.h"
#include "spm/urts.h"

static const char *g_spm, *g_image;
static char g_dir[64], g_platform[128];
static struct spm_enclave *g_enclave;

/* ---- Building batches ---- */

struct batch {
    uint8_t *data;
    size_t size, capacity;
    uint32_t count;
};

static void put_bytes(struct batch *b, const void *p, size_t size)
{
    if (b->size + size > b->capacity) {
        b->capacity = (b->size + size) * 2;
        b->data = realloc(b->data, b->capacity);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->size, p, size);
    b->size += size;
}

static void put_u32(struct batch *b, uint32_t v)
{
    put_bytes(b, &v, 4);
}

static void batch_start(struct batch *b)
{
    *b = (struct batch){0};
    struct kvs_batch_header header = {KVS_BATCH_MAGIC, 0};
    put_bytes(b, &header, sizeof(header));
}

/* Adds a command given as NULL-terminated strings. */
static void add(struct batch *b, ...)
{
    va_list ap;
    uint32_t argc = 0;
    va_start(ap, b);
    while (va_arg(ap, const char *))
        argc++;
    va_end(ap);
    put_u32(b, argc);
    va_start(ap, b);
    for (const char *arg; (arg = va_arg(ap, const char *));) {
        put_u32(b, (uint32_t)strlen(arg));
        put_bytes(b, arg, strlen(arg));
    }
    va_end(ap);
    b->count++;
    memcpy(b->data + 4, &b->count, 4);
}

struct result {
    int ret;
    struct kvs_batch_reply reply;
    char text[4096];
    size_t text_size;
};

static struct result run_raw(const void *in, size_t in_size, size_t out_capacity)
{
    struct result r = {0};
    uint8_t *out = malloc(out_capacity + 1);
    size_t out_size = 0;
    r.ret = spm_enclave_ecall(g_enclave, KVS_ECALL_BATCH, in, in_size, out, out_capacity, &out_size,
                              SPM_ECALL_WAIT);
    if (r.ret == 0) {
        assert_true(out_size >= sizeof(r.reply) && out_size <= out_capacity);
        memcpy(&r.reply, out, sizeof(r.reply));
        r.text_size = out_size - sizeof(r.reply);
        size_t copy = r.text_size < sizeof(r.text) - 1 ? r.text_size : sizeof(r.text) - 1;
        memcpy(r.text, out + sizeof(r.reply), copy);
    }
    free(out);
    return r;
}

static struct result run(struct batch *b, size_t out_capacity)
{
    struct result r = run_raw(b->data, b->size, out_capacity);
    free(b->data);
    b->data = NULL;
    return r;
}

/* Runs one command alone and returns its reply text. */
static struct result one(const char *a0, const char *a1, const char *a2)
{
    struct batch b;
    batch_start(&b);
    add(&b, a0, a1, a2, (char *)NULL);
    struct result r = run(&b, 4096);
    assert_int_equal(r.ret, 0);
    assert_int_equal(r.reply.status, 0);
    assert_int_equal(r.reply.commands_done, 1);
    return r;
}

/* ---- Tests ---- */

static void test_batch_replies(void **state)
{
    (void)state;
    struct batch b;
    batch_start(&b);
    add(&b, "FLUSHALL", (char *)NULL);
    add(&b, "SET", "a", "1", (char *)NULL);
    add(&b, "get", "a", (char *)NULL);
    add(&b, "INCR", "a", (char *)NULL);
    add(&b, "GET", "none", (char *)NULL);
    add(&b, "DEL", "a", "none", (char *)NULL);
    add(&b, "PING", (char *)NULL);
    add(&b, "nosuch", "x\r\ny", (char *)NULL);
    add(&b, "GET", (char *)NULL);
    struct result r = run(&b, 4096);
    assert_int_equal(r.ret, 0);
    assert_int_equal(r.reply.status, 0);
    assert_int_equal(r.reply.commands_done, 9);
    const char *want = "+OK\r\n+OK\r\n$1\r\n1\r\n:2\r\n$-1\r\n:1\r\n+PONG\r\n"
                       "-ERR unknown command 'nosuch', with args beginning with: 'x  y' \r\n"
                       "-ERR wrong number of arguments for 'get' command\r\n";
    assert_int_equal(r.text_size, strlen(want));
    assert_memory_equal(r.text, want, strlen(want));

    /* An empty batch is valid and says nothing. */
    batch_start(&b);
    r = run(&b, 64);
    assert_int_equal(r.ret, 0);
    assert_int_equal(r.reply.commands_done, 0);
    assert_int_equal(r.text_size, 0);
}

/* Each malformed batch starts with a valid SET: it must not run. */
static void test_malformed_batches_run_nothing(void **state)
{
    (void)state;
    one("FLUSHALL", NULL, (char *)NULL);
    struct batch b;
    const uint32_t huge[] = {0, KVS_MAX_ARGC + 1, 0xffffffffu};
    for (int variant = 0; variant < 9; variant++) {
        batch_start(&b);
        add(&b, "SET", "victim", "1", (char *)NULL);
        switch (variant) {
        case 0: /* the count claims one more command than there is */
            b.count++;
            memcpy(b.data + 4, &b.count, 4);
            break;
        case 1: /* a trailing byte after the last command */
            put_bytes(&b, "x", 1);
            break;
        case 2: /* argc 0 */
        case 3: /* argc over the limit */
        case 4: /* argc at UINT32_MAX */
            put_u32(&b, huge[variant - 2]);
            b.count++;
            memcpy(b.data + 4, &b.count, 4);
            break;
        case 5: /* an argument longer than what is left */
            put_u32(&b, 1);
            put_u32(&b, 100);
            put_bytes(&b, "short", 5);
            b.count++;
            memcpy(b.data + 4, &b.count, 4);
            break;
        case 6: /* a size that wraps the position around */
            put_u32(&b, 1);
            put_u32(&b, 0xfffffffcu);
            put_bytes(&b, "abcd", 4);
            b.count++;
            memcpy(b.data + 4, &b.count, 4);
            break;
        case 7: /* wrong magic */
            b.data[0] ^= 1;
            break;
        case 8: /* truncated in the middle of a size */
            b.size -= 3;
            break;
        }
        struct result r = run(&b, 4096);
        if (r.ret != -EBADMSG)
            fail_msg("variant %d: got %d", variant, r.ret);
    }
    /* Shorter than a header; a command count far beyond the input. */
    assert_int_equal(run_raw("KVB", 3, 4096).ret, -EBADMSG);
    struct kvs_batch_header header = {KVS_BATCH_MAGIC, 0xffffffffu};
    assert_int_equal(run_raw(&header, sizeof(header), 4096).ret, -EBADMSG);

    struct result r = one("EXISTS", "victim", (char *)NULL);
    assert_string_equal(r.text, ":0\r\n");
}

/* Sizes at and past the per-argument and per-command limits. */
static void test_size_limits(void **state)
{
    (void)state;
    size_t big = KVS_MAX_ARG_SIZE + 1;
    uint8_t *value = calloc(1, big);
    assert_non_null(value);
    struct batch b;
    batch_start(&b);
    put_u32(&b, 3);
    put_u32(&b, 3);
    put_bytes(&b, "SET", 3);
    put_u32(&b, 1);
    put_bytes(&b, "k", 1);
    put_u32(&b, (uint32_t)big);
    put_bytes(&b, value, big);
    b.count = 1;
    memcpy(b.data + 4, &b.count, 4);
    assert_int_equal(run(&b, 4096).ret, -EBADMSG);

    /* Two arguments each under the argument limit, over the command limit. */
    size_t half = KVS_MAX_COMMAND_SIZE / 2 + 1;
    batch_start(&b);
    put_u32(&b, 3);
    put_u32(&b, 4);
    put_bytes(&b, "ECHO", 4);
    put_u32(&b, (uint32_t)half);
    put_bytes(&b, value, half);
    put_u32(&b, (uint32_t)half);
    put_bytes(&b, value, half);
    b.count = 1;
    memcpy(b.data + 4, &b.count, 4);
    assert_int_equal(run(&b, 4096).ret, -EBADMSG);

    /* Exactly the argument limit is accepted and comes back whole. */
    batch_start(&b);
    put_u32(&b, 3);
    put_u32(&b, 3);
    put_bytes(&b, "SET", 3);
    put_u32(&b, 3);
    put_bytes(&b, "max", 3);
    put_u32(&b, KVS_MAX_ARG_SIZE);
    put_bytes(&b, value, KVS_MAX_ARG_SIZE);
    b.count = 1;
    memcpy(b.data + 4, &b.count, 4);
    struct result r = run(&b, 4096);
    assert_int_equal(r.ret, 0);
    assert_string_equal(r.text, "+OK\r\n");
    batch_start(&b);
    add(&b, "GET", "max", (char *)NULL);
    size_t capacity = sizeof(struct kvs_batch_reply) + KVS_MAX_ARG_SIZE + 64;
    uint8_t *out = malloc(capacity);
    size_t out_size;
    assert_int_equal(spm_enclave_ecall(g_enclave, KVS_ECALL_BATCH, b.data, b.size, out, capacity,
                                       &out_size, SPM_ECALL_WAIT),
                     0);
    const char *head = "$33554432\r\n";
    assert_memory_equal(out + sizeof(struct kvs_batch_reply), head, strlen(head));
    assert_int_equal(out_size,
                     sizeof(struct kvs_batch_reply) + strlen(head) + KVS_MAX_ARG_SIZE + 2);
    assert_memory_equal(out + sizeof(struct kvs_batch_reply) + strlen(head), value, 4096);
    free(out);
    free(b.data);
    one("DEL", "max", (char *)NULL);
    free(value);
}

/* Output too small: the enclave runs what fits, stops before the command
 * that does not, says how much that one needs, and has not run it. */
static void test_output_too_small(void **state)
{
    (void)state;
    char value[1000];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    one("FLUSHALL", NULL, (char *)NULL);
    one("SET", "big", value);

    assert_int_equal(run_raw("", 0, sizeof(struct kvs_batch_reply) - 1).ret, -ENOSPC);

    struct batch b;
    batch_start(&b);
    add(&b, "INCR", "n", (char *)NULL);
    add(&b, "GET", "big", (char *)NULL);
    add(&b, "INCR", "n", (char *)NULL);
    struct result r = run(&b, sizeof(struct kvs_batch_reply) + 600);
    assert_int_equal(r.ret, 0);
    assert_int_equal(r.reply.status, -ENOSPC);
    assert_int_equal(r.reply.commands_done, 1);
    assert_int_equal(r.reply.needed_size, 1 + 3 + 2 + 999 + 2); /* "$999\r\n" value "\r\n" */
    assert_string_equal(r.text, ":1\r\n");
    /* The third command did not run either. */
    r = one("GET", "n", (char *)NULL);
    assert_string_equal(r.text, "$1\r\n1\r\n");

    /* With room for nothing but the header, no command runs. */
    batch_start(&b);
    add(&b, "INCR", "n", (char *)NULL);
    r = run(&b, sizeof(struct kvs_batch_reply) + 8);
    assert_int_equal(r.ret, 0);
    assert_int_equal(r.reply.status, -ENOSPC);
    assert_int_equal(r.reply.commands_done, 0);
    assert_true(r.reply.needed_size > 8);
    r = one("GET", "n", (char *)NULL);
    assert_string_equal(r.text, "$1\r\n1\r\n");
}

/* Random corruption of a valid batch: refused or run, never a crash, and
 * the enclave keeps answering. */
static void test_corrupted_batches(void **state)
{
    (void)state;
    uint32_t x = 88172645u;
    for (int round = 0; round < 3000; round++) {
        struct batch b;
        batch_start(&b);
        add(&b, "SET", "k", "v", (char *)NULL);
        add(&b, "GET", "k", (char *)NULL);
        add(&b, "DEL", "k", "j", (char *)NULL);
        for (int flips = 0; flips < 1 + round % 4; flips++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            size_t at = 8 + x % (b.size - 8);
            b.data[at] = (uint8_t)(x >> 24);
        }
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (x % 4 == 0)
            b.size -= x % 8;
        struct result r = run(&b, 64 + x % 512);
        assert_true(r.ret == 0 || r.ret == -EBADMSG);
    }
    assert_string_equal(one("PING", NULL, NULL).text, "+PONG\r\n");
}

struct incr_worker {
    int batches, failures;
};

static void *incr_main(void *arg)
{
    struct incr_worker *w = arg;
    for (int i = 0; i < w->batches; i++) {
        struct batch b;
        batch_start(&b);
        for (int c = 0; c < 10; c++)
            add(&b, "INCR", "shared", (char *)NULL);
        struct result r = run(&b, 1024);
        if (r.ret != 0 || r.reply.status != 0 || r.reply.commands_done != 10)
            w->failures++;
    }
    return NULL;
}

/* Every TCS busy with batches on the same key: no increment is lost. */
static void test_concurrent_batches(void **state)
{
    (void)state;
    one("DEL", "shared", (char *)NULL);
    enum { THREADS = 6, BATCHES = 500 };
    pthread_t t[THREADS];
    struct incr_worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct incr_worker){BATCHES, 0};
        assert_int_equal(pthread_create(&t[i], NULL, incr_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    char want[32];
    snprintf(want, sizeof(want), "$5\r\n%d\r\n", THREADS * BATCHES * 10);
    assert_string_equal(one("GET", "shared", NULL).text, want);
}

/* ---- Setup: a throwaway CA and platform made with the spm CLI ---- */

static int run_spm(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5,
                   const char *a6)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(g_spm, g_spm, a1, a2, a3, a4, a5, a6, (char *)NULL);
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int setup(void **state)
{
    (void)state;
    char ca[128];
    snprintf(g_dir, sizeof(g_dir), "/tmp/kvs-enclave-test.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(ca, sizeof(ca), "%s/ca", g_dir);
    snprintf(g_platform, sizeof(g_platform), "%s/platform", g_dir);
    if (run_spm("ca", "init", "--dir", ca, NULL, NULL) != 0 ||
        run_spm("platform", "init", "--platform", g_platform, "--ca", ca) != 0) {
        fprintf(stderr, "cannot create a CA and platform with %s\n", g_spm);
        return -1;
    }
    struct spm_enclave_options o = {.platform_dir = g_platform};
    int ret = spm_enclave_load(g_image, &o, &g_enclave);
    if (ret < 0) {
        fprintf(stderr, "cannot load %s: %s\n", g_image, strerror(-ret));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_enclave)
        spm_enclave_destroy(g_enclave);
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", g_dir);
    return system(command) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SPM KVS_ENCLAVE.signed\n", argv[0]);
        return 2;
    }
    g_spm = argv[1];
    g_image = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_replies),
        cmocka_unit_test(test_malformed_batches_run_nothing),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_output_too_small),
        cmocka_unit_test(test_corrupted_batches),
        cmocka_unit_test(test_concurrent_batches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
