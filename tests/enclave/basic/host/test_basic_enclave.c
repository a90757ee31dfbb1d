/* Drives the basic test enclave through libspm on two simulated platforms:
 * the loader's EINIT checks, the boundary checks of the trusted runtime
 * (lying hosts, pointers into ELRANGE), concurrency over all TCS, local
 * attestation, key derivation, sealing and quotes.
 * argv: y z old debug other unsigned-elf */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic_abi.h"
#include "common/fileio.h"
#include "image/image.h"
#include "platform/quote.h"
#include "platform/sim/sim.h"
#include "spm/urts.h"

static const char *g_y, *g_z, *g_old, *g_debug, *g_other, *g_unsigned;
static char g_dir[256], g_plat_a[300], g_plat_b[300], g_ca_a[300], g_ca_b[300];

/* What the host's ocall handler does: honest, or lying about sizes/status. */
static enum { HOST_HONEST, HOST_LIES_SIZE, HOST_BAD_STATUS } g_host_mode;

static int host_echo(void *ctx, const uint8_t *in, size_t in_size, uint8_t *out,
                     size_t out_capacity, size_t *out_size)
{
    (void)ctx;
    size_t n = in_size < out_capacity ? in_size : out_capacity;
    memcpy(out, in, n);
    *out_size = n;
    if (g_host_mode == HOST_LIES_SIZE)
        *out_size = out_capacity + 48;
    if (g_host_mode == HOST_BAD_STATUS)
        return 12345;
    return 0;
}

/* Threads parked in BASIC_OCALL_PARK wait here until released. */
static pthread_mutex_t g_park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_park_cond = PTHREAD_COND_INITIALIZER;
static int g_parked, g_park_released;

static int host_park(void *ctx, const uint8_t *in, size_t in_size, uint8_t *out,
                     size_t out_capacity, size_t *out_size)
{
    (void)ctx;
    (void)in;
    (void)in_size;
    (void)out;
    (void)out_capacity;
    *out_size = 0;
    pthread_mutex_lock(&g_park_lock);
    g_parked++;
    pthread_cond_broadcast(&g_park_cond);
    while (!g_park_released)
        pthread_cond_wait(&g_park_cond, &g_park_lock);
    g_parked--;
    pthread_mutex_unlock(&g_park_lock);
    return 0;
}

static const spm_ocall_fn g_ocalls[] = {
    [BASIC_OCALL_ECHO] = host_echo,
    [BASIC_OCALL_PARK] = host_park,
};

static struct spm_enclave *load(const char *image, const char *platform)
{
    struct spm_enclave_options o = {.platform_dir = platform, .ocalls = g_ocalls, .ocall_count = 2};
    struct spm_enclave *e = NULL;
    int ret = spm_enclave_load(image, &o, &e);
    assert_int_equal(ret, 0);
    return e;
}

static int call(struct spm_enclave *e, uint32_t id, const void *in, size_t in_size, void *out,
                size_t cap, size_t *out_size)
{
    size_t ignored;
    return spm_enclave_ecall(e, id, in, in_size, out, cap, out_size ? out_size : &ignored, 0);
}

static void test_echo_small_and_large(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_y, g_plat_a);
    assert_string_equal(spm_enclave_backend(e), "sim");
    assert_int_equal(spm_enclave_base(e) & (spm_enclave_size(e) - 1), 0);
    char out[64];
    size_t n;
    assert_int_equal(call(e, BASIC_ECALL_ECHO, "hello", 5, out, sizeof(out), &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    size_t big = 300 << 10; /* beyond the stack buffers: heap path */
    uint8_t *a = malloc(big), *b = malloc(big);
    for (size_t i = 0; i < big; i++)
        a[i] = (uint8_t)(i * 7);
    assert_int_equal(call(e, BASIC_ECALL_ECHO, a, big, b, big, &n), 0);
    assert_int_equal(n, big);
    assert_memory_equal(a, b, big);
    /* Output that does not fit: the enclave says so, nothing is written. */
    assert_int_equal(call(e, BASIC_ECALL_ECHO, a, 100, b, 10, &n), -ENOSPC);
    assert_int_equal(call(e, 999, NULL, 0, NULL, 0, &n), -ENOSYS);
    free(a);
    free(b);
    spm_enclave_destroy(e);
}

static void test_identity(void **state)
{
    (void)state;
    struct spm_enclave *y = load(g_y, g_plat_a), *z = load(g_z, g_plat_a);
    struct spm_enclave *other = load(g_other, g_plat_a);
    uint8_t my[32], mz[32], sy[32], sz[32], so[32];
    spm_enclave_mrenclave(y, my);
    spm_enclave_mrenclave(z, mz);
    spm_enclave_mrsigner(y, sy);
    spm_enclave_mrsigner(z, sz);
    spm_enclave_mrsigner(other, so);
    assert_memory_not_equal(my, mz, 32);
    assert_memory_equal(sy, sz, 32);
    assert_memory_not_equal(sy, so, 32);
    struct sgx_report_body body;
    size_t n;
    assert_int_equal(call(y, BASIC_ECALL_SELF_REPORT, NULL, 0, &body, sizeof(body), &n), 0);
    assert_memory_equal(body.mr_enclave, my, 32);
    assert_memory_equal(body.mr_signer, sy, 32);
    assert_int_equal(body.isv_svn, 3);
    assert_false(body.attributes.flags & SGX_FLAGS_DEBUG);
    assert_true(body.attributes.flags & SGX_FLAGS_INITTED);
    spm_enclave_destroy(other);
    struct spm_enclave *dbg = load(g_debug, g_plat_a);
    assert_int_equal(call(dbg, BASIC_ECALL_SELF_REPORT, NULL, 0, &body, sizeof(body), &n), 0);
    assert_true(body.attributes.flags & SGX_FLAGS_DEBUG);
    spm_enclave_destroy(dbg);
    spm_enclave_destroy(y);
    spm_enclave_destroy(z);
}

struct worker {
    struct spm_enclave *e;
    int calls;
    uint64_t spins;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->calls; i++) {
        struct basic_count_result r;
        if (call(w->e, BASIC_ECALL_COUNT, &w->spins, sizeof(w->spins), &r, sizeof(r), NULL))
            w->failures++;
    }
    return NULL;
}

static void *park_main(void *arg)
{
    struct worker *w = arg;
    if (call(w->e, BASIC_ECALL_PARK, NULL, 0, NULL, 0, NULL))
        w->failures++;
    return NULL;
}

static int g_waiter_done;

static void *waiter_main(void *arg)
{
    worker_main(arg);
    __atomic_store_n(&g_waiter_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_concurrent_ecalls_on_all_tcs(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_y, g_plat_a);
    uint32_t tcs = spm_enclave_tcs_count(e);
    assert_int_equal(tcs, 4);
    enum { THREADS = 8, CALLS = 200 };
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){e, CALLS, 200000, 0};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    struct basic_count_result r;
    uint64_t zero = 0;
    assert_int_equal(call(e, BASIC_ECALL_COUNT, &zero, sizeof(zero), &r, sizeof(r), NULL), 0);
    assert_int_equal(r.value, THREADS * CALLS + 1);
    /* Never more threads inside than there are TCS. */
    assert_true(r.max_inside >= 1 && r.max_inside <= tcs);

    /* Every TCS held by a thread parked in an ocall: a NOWAIT caller is
     * refused, a waiting caller blocks until one is released. */
    pthread_mutex_lock(&g_park_lock);
    g_park_released = 0;
    pthread_mutex_unlock(&g_park_lock);
    struct worker parked[4];
    for (uint32_t i = 0; i < tcs; i++) {
        parked[i] = (struct worker){e, 1, 0, 0};
        pthread_create(&t[i], NULL, park_main, &parked[i]);
    }
    pthread_mutex_lock(&g_park_lock);
    while (g_parked < (int)tcs)
        pthread_cond_wait(&g_park_cond, &g_park_lock);
    pthread_mutex_unlock(&g_park_lock);
    size_t n;
    assert_int_equal(spm_enclave_ecall(e, BASIC_ECALL_COUNT, &zero, sizeof(zero), &r, sizeof(r), &n,
                                       SPM_ECALL_NOWAIT),
                     -EBUSY);
    struct worker waiter = {e, 1, 0, 0};
    pthread_t waiter_thread;
    g_waiter_done = 0;
    pthread_create(&waiter_thread, NULL, waiter_main, &waiter);
    usleep(20000);
    assert_int_equal(__atomic_load_n(&g_waiter_done, __ATOMIC_SEQ_CST), 0); /* still waiting */
    pthread_mutex_lock(&g_park_lock);
    g_park_released = 1;
    pthread_cond_broadcast(&g_park_cond);
    pthread_mutex_unlock(&g_park_lock);
    for (uint32_t i = 0; i < tcs; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(parked[i].failures, 0);
    }
    pthread_join(waiter_thread, NULL);
    assert_int_equal(waiter.failures, 0);
    assert_int_equal(g_waiter_done, 1);
    /* All TCS were inside at once while parked. */
    assert_int_equal(call(e, BASIC_ECALL_COUNT, &zero, sizeof(zero), &r, sizeof(r), NULL), 0);
    assert_int_equal(r.max_inside, tcs);
    spm_enclave_destroy(e);
}

static void test_pointers_into_enclave_refused(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_y, g_plat_a);
    uint8_t *inside = (uint8_t *)spm_enclave_base(e) + 0x1000;
    char buf[64];
    size_t n;
    assert_int_equal(call(e, BASIC_ECALL_ECHO, inside, 16, buf, sizeof(buf), &n), -EFAULT);
    assert_int_equal(call(e, BASIC_ECALL_ECHO, "x", 1, inside, 16, &n), -EFAULT);
    /* A range that starts below ELRANGE and ends inside it. */
    assert_int_equal(call(e, BASIC_ECALL_ECHO, inside - 0x2000, 0x1800, buf, sizeof(buf), &n),
                     -EFAULT);
    /* Wrapping around the address space. */
    assert_int_equal(
        call(e, BASIC_ECALL_ECHO, (void *)0xfffffffffffff000ull, 0x2000, buf, sizeof(buf), &n),
        -EFAULT);
    assert_int_equal(call(e, BASIC_ECALL_ECHO, buf, (size_t)1 << 40, buf, sizeof(buf), &n), -E2BIG);
    /* The enclave still works. */
    assert_int_equal(call(e, BASIC_ECALL_ECHO, "ok", 2, buf, sizeof(buf), &n), 0);
    spm_enclave_destroy(e);
}

static void test_lying_host_refused(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_y, g_plat_a);
    uint8_t in[8 + 32], out[64];
    uint64_t capacity = 16;
    memcpy(in, &capacity, 8);
    memset(in + 8, 0xab, 32);
    size_t n;
    g_host_mode = HOST_HONEST;
    assert_int_equal(call(e, BASIC_ECALL_OCALL_ECHO, in, sizeof(in), out, sizeof(out), &n), 0);
    assert_int_equal(n, 16);
    g_host_mode = HOST_LIES_SIZE;
    assert_int_equal(call(e, BASIC_ECALL_OCALL_ECHO, in, sizeof(in), out, sizeof(out), &n),
                     -EPROTO);
    g_host_mode = HOST_BAD_STATUS;
    assert_int_equal(call(e, BASIC_ECALL_OCALL_ECHO, in, sizeof(in), out, sizeof(out), &n), -EIO);
    g_host_mode = HOST_HONEST;
    spm_enclave_destroy(e);
}

static void test_heap_returns_to_start(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_y, g_plat_a);
    uint64_t r[2];
    assert_int_equal(call(e, BASIC_ECALL_HEAP, NULL, 0, r, sizeof(r), NULL), 0);
    assert_int_equal(r[0], r[1]);
    assert_int_equal(call(e, BASIC_ECALL_HEAP, NULL, 0, r, sizeof(r), NULL), 0);
    assert_int_equal(r[0], r[1]);
    spm_enclave_destroy(e);
}

static void get_target_info(struct spm_enclave *e, struct sgx_target_info *ti)
{
    size_t n;
    assert_int_equal(call(e, BASIC_ECALL_TARGET_INFO, NULL, 0, ti, sizeof(*ti), &n), 0);
    assert_int_equal(n, sizeof(*ti));
}

static void make_report(struct spm_enclave *from, const struct sgx_target_info *to,
                        struct sgx_report *report)
{
    struct basic_report_request req;
    req.target = *to;
    memset(req.report_data, 0x42, sizeof(req.report_data));
    size_t n;
    assert_int_equal(call(from, BASIC_ECALL_REPORT, &req, sizeof(req), report, sizeof(*report), &n),
                     0);
}

static void test_local_attestation(void **state)
{
    (void)state;
    struct spm_enclave *y = load(g_y, g_plat_a), *z = load(g_z, g_plat_a);
    struct spm_enclave *y_on_b = load(g_y, g_plat_b);
    struct sgx_target_info ty;
    get_target_info(y, &ty);
    struct sgx_report report;
    make_report(z, &ty, &report);
    uint8_t mz[32];
    spm_enclave_mrenclave(z, mz);
    assert_memory_equal(report.body.mr_enclave, mz, 32);
    /* Targeted at Y: verifies inside Y, not inside Z, not on another platform. */
    assert_int_equal(call(y, BASIC_ECALL_VERIFY_REPORT, &report, sizeof(report), NULL, 0, NULL), 0);
    assert_int_equal(call(z, BASIC_ECALL_VERIFY_REPORT, &report, sizeof(report), NULL, 0, NULL),
                     -EKEYREJECTED);
    assert_int_equal(
        call(y_on_b, BASIC_ECALL_VERIFY_REPORT, &report, sizeof(report), NULL, 0, NULL),
        -EKEYREJECTED);
    /* Any altered body byte breaks the MAC. */
    for (size_t i = 0; i < sizeof(report.body); i += 7) {
        struct sgx_report bad = report;
        ((uint8_t *)&bad.body)[i] ^= 0x01;
        assert_int_equal(call(y, BASIC_ECALL_VERIFY_REPORT, &bad, sizeof(bad), NULL, 0, NULL),
                         -EKEYREJECTED);
    }
    spm_enclave_destroy(y_on_b);
    spm_enclave_destroy(y);
    spm_enclave_destroy(z);
}

static size_t seal(struct spm_enclave *e, uint16_t policy, const char *text, uint8_t *sealed,
                   size_t cap)
{
    uint8_t in[256];
    memcpy(in, &policy, 2);
    size_t len = strlen(text);
    memcpy(in + 2, text, len);
    size_t n = 0;
    assert_int_equal(call(e, BASIC_ECALL_SEAL, in, 2 + len, sealed, cap, &n), 0);
    return n;
}

static void test_seal_unseal(void **state)
{
    (void)state;
    static const char secret[] = "the enclave's secret";
    struct spm_enclave *y = load(g_y, g_plat_a), *z = load(g_z, g_plat_a);
    struct spm_enclave *y_on_b = load(g_y, g_plat_b), *other = load(g_other, g_plat_a);
    uint8_t sealed[1024], text[256];
    size_t n;
    size_t size = seal(y, SGX_KEYPOLICY_MRENCLAVE, secret, sealed, sizeof(sealed));
    assert_int_equal(size, 560 + strlen(secret) + sizeof("basic-aad"));
    assert_null(memmem(sealed, size, secret, strlen(secret)));
    assert_int_equal(call(y, BASIC_ECALL_UNSEAL, sealed, size, text, sizeof(text), &n), 0);
    assert_int_equal(n, strlen(secret));
    assert_memory_equal(text, secret, n);
    assert_int_equal(call(y_on_b, BASIC_ECALL_UNSEAL, sealed, size, text, sizeof(text), &n),
                     -EBADMSG);
    assert_int_equal(call(z, BASIC_ECALL_UNSEAL, sealed, size, text, sizeof(text), &n), -EBADMSG);
    for (size_t i = 512; i < size; i += 5) {
        uint8_t bad[1024];
        memcpy(bad, sealed, size);
        bad[i] ^= 0x80;
        assert_int_not_equal(call(y, BASIC_ECALL_UNSEAL, bad, size, text, sizeof(text), &n), 0);
    }
    /* MRSIGNER policy: shared by enclaves of one signer on one platform only. */
    size = seal(y, SGX_KEYPOLICY_MRSIGNER, secret, sealed, sizeof(sealed));
    assert_int_equal(call(z, BASIC_ECALL_UNSEAL, sealed, size, text, sizeof(text), &n), 0);
    assert_memory_equal(text, secret, n);
    assert_int_equal(call(other, BASIC_ECALL_UNSEAL, sealed, size, text, sizeof(text), &n),
                     -EBADMSG);
    assert_int_equal(call(y_on_b, BASIC_ECALL_UNSEAL, sealed, size, text, sizeof(text), &n),
                     -EBADMSG);
    spm_enclave_destroy(other);
    spm_enclave_destroy(y_on_b);
    spm_enclave_destroy(y);
    spm_enclave_destroy(z);
}

static void test_egetkey_checks(void **state)
{
    (void)state;
    struct spm_enclave *y = load(g_y, g_plat_a), *old = load(g_old, g_plat_a);
    struct sgx_key_request kr;
    memset(&kr, 0, sizeof(kr));
    kr.key_name = SGX_KEYSELECT_SEAL;
    kr.key_policy = SGX_KEYPOLICY_MRSIGNER;
    kr.isv_svn = 3;
    kr.attribute_mask.flags = 0xFF0000000000000Bull;
    uint8_t k_y[16], k_old[16];
    size_t n;
    assert_int_equal(call(y, BASIC_ECALL_GET_KEY, &kr, sizeof(kr), k_y, 16, &n), 0);
    /* ISVSVN above the enclave's own: refused. */
    assert_int_equal(call(old, BASIC_ECALL_GET_KEY, &kr, sizeof(kr), k_old, 16, &n), -EPERM);
    kr.isv_svn = 4;
    assert_int_equal(call(y, BASIC_ECALL_GET_KEY, &kr, sizeof(kr), k_old, 16, &n), -EPERM);
    /* A newer enclave can derive its predecessor's key (same request). */
    kr.isv_svn = 2;
    assert_int_equal(call(old, BASIC_ECALL_GET_KEY, &kr, sizeof(kr), k_old, 16, &n), 0);
    assert_int_equal(call(y, BASIC_ECALL_GET_KEY, &kr, sizeof(kr), k_y, 16, &n), 0);
    assert_memory_equal(k_y, k_old, 16);
    spm_enclave_destroy(old);
    spm_enclave_destroy(y);
}

static void test_quote_verifies_against_its_ca(void **state)
{
    (void)state;
    struct spm_enclave *y = load(g_y, g_plat_a);
    uint8_t report_data[64], quote[16384];
    memset(report_data, 0x5c, sizeof(report_data));
    size_t n;
    assert_int_equal(
        call(y, BASIC_ECALL_QUOTE, report_data, sizeof(report_data), quote, sizeof(quote), &n), 0);
    char root_a[400], root_b[400];
    snprintf(root_a, sizeof(root_a), "%s/ca.crt", g_ca_a);
    snprintf(root_b, sizeof(root_b), "%s/ca.crt", g_ca_b);
    struct sgx_report_body body;
    assert_int_equal(spm_quote_verify(quote, n, root_a, &body), 0);
    uint8_t my[32];
    spm_enclave_mrenclave(y, my);
    assert_memory_equal(body.mr_enclave, my, 32);
    assert_memory_equal(body.report_data, report_data, 64);
    assert_int_not_equal(spm_quote_verify(quote, n, root_b, &body), 0);
    quote[100] ^= 1;
    assert_int_not_equal(spm_quote_verify(quote, n, root_a, &body), 0);
    spm_enclave_destroy(y);
}

static void test_ecdsa_and_random(void **state)
{
    (void)state;
    struct spm_enclave *y = load(g_y, g_plat_a);
    uint8_t a[129], b[129], r1[64], r2[64];
    size_t n;
    assert_int_equal(call(y, BASIC_ECALL_ECDSA, "m1", 2, a, sizeof(a), &n), 0);
    assert_int_equal(call(y, BASIC_ECALL_ECDSA, "m2", 2, b, sizeof(b), &n), 0);
    assert_int_equal(a[0], 4);
    assert_memory_equal(a, b, 65);               /* one key */
    assert_memory_not_equal(a + 65, b + 65, 64); /* different messages, signatures */
    assert_int_equal(call(y, BASIC_ECALL_RANDOM, NULL, 0, r1, sizeof(r1), &n), 0);
    assert_int_equal(call(y, BASIC_ECALL_RANDOM, NULL, 0, r2, sizeof(r2), &n), 0);
    assert_memory_not_equal(r1, r2, sizeof(r1));
    spm_enclave_destroy(y);
}

/* Copies `image` to a temp file with one byte flipped at `offset`. */
static void write_tampered(const char *image, long offset, char *out, size_t out_size)
{
    uint8_t *data;
    size_t size;
    assert_int_equal(spm_read_file(image, 64 << 20, &data, &size), 0);
    if (offset < 0)
        offset += (long)size;
    assert_true((size_t)offset < size);
    data[offset] ^= 0x01;
    snprintf(out, out_size, "%s/tampered.signed", g_dir);
    assert_int_equal(spm_write_file_atomic(out, data, size, 0600), 0);
    free(data);
}

static void test_tampered_or_unsigned_image_refused(void **state)
{
    (void)state;
    struct spm_enclave *e = NULL;
    struct spm_enclave_options o = {.platform_dir = g_plat_a};
    assert_int_not_equal(spm_enclave_load(g_unsigned, &o, &e), 0);
    assert_null(e);
    char path[400];
    /* A byte of code (the first PT_LOAD starts at file offset 0; 0x1100 is in .text). */
    write_tampered(g_y, 0x1100, path, sizeof(path));
    assert_int_not_equal(spm_enclave_load(path, &o, &e), 0);
    assert_null(e);
    assert_int_not_equal(spm_enclave_load("/nonexistent/enclave.signed", &o, &e), 0);
    /* A platform that does not exist: clear failure, nothing loaded. */
    o.platform_dir = "/nonexistent/platform";
    assert_int_not_equal(spm_enclave_load(g_y, &o, &e), 0);
    assert_null(e);
}

/* Every byte of the SIGSTRUCT and of the signed metadata before it, flipped
 * one at a time in the file, must make the loader refuse the image. */
static void test_every_metadata_byte_is_checked_by_the_loader(void **state)
{
    (void)state;
    struct spm_elf_image img;
    assert_int_equal(spm_elf_load(g_y, &img), 0);
    size_t meta_offset = img.meta_offset;
    spm_elf_free(&img);
    uint8_t *data;
    size_t size;
    assert_int_equal(spm_read_file(g_y, 64 << 20, &data, &size), 0);
    char path[400];
    snprintf(path, sizeof(path), "%s/flipped.signed", g_dir);
    struct spm_enclave_options o = {.platform_dir = g_plat_a};
    size_t end = offsetof(struct spm_image_meta, sigstruct) + sizeof(struct sgx_sigstruct);
    size_t accepted = 0;
    for (size_t i = 0; i < end; i++) {
        data[meta_offset + i] ^= 0x10;
        assert_int_equal(spm_write_file_atomic(path, data, size, 0600), 0);
        struct spm_enclave *e = NULL;
        if (spm_enclave_load(path, &o, &e) == 0) {
            accepted++;
            fprintf(stderr, "loader accepted a flip at .spm_meta+%zu\n", i);
            spm_enclave_destroy(e);
        }
        data[meta_offset + i] ^= 0x10;
    }
    free(data);
    assert_int_equal(accepted, 0);
}

static int setup_platforms(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/spm-test-basic-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_ca_a, sizeof(g_ca_a), "%s/ca-a", g_dir);
    snprintf(g_ca_b, sizeof(g_ca_b), "%s/ca-b", g_dir);
    snprintf(g_plat_a, sizeof(g_plat_a), "%s/platform-a", g_dir);
    snprintf(g_plat_b, sizeof(g_plat_b), "%s/platform-b", g_dir);
    if (spm_sim_ca_init(g_ca_a, "test CA A") || spm_sim_ca_init(g_ca_b, "test CA B") ||
        spm_sim_platform_init(g_plat_a, g_ca_a) || spm_sim_platform_init(g_plat_b, g_ca_b))
        return -1;
    return 0;
}

static int teardown_platforms(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s y z old debug other unsigned-elf\n", argv[0]);
        return 2;
    }
    g_y = argv[1];
    g_z = argv[2];
    g_old = argv[3];
    g_debug = argv[4];
    g_other = argv[5];
    g_unsigned = argv[6];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_small_and_large),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_concurrent_ecalls_on_all_tcs),
        cmocka_unit_test(test_pointers_into_enclave_refused),
        cmocka_unit_test(test_lying_host_refused),
        cmocka_unit_test(test_heap_returns_to_start),
        cmocka_unit_test(test_local_attestation),
        cmocka_unit_test(test_seal_unseal),
        cmocka_unit_test(test_egetkey_checks),
        cmocka_unit_test(test_quote_verifies_against_its_ca),
        cmocka_unit_test(test_ecdsa_and_random),
        cmocka_unit_test(test_tampered_or_unsigned_image_refused),
        cmocka_unit_test(test_every_metadata_byte_is_checked_by_the_loader),
    };
    return cmocka_run_group_tests(tests, setup_platforms, teardown_platforms);
}
