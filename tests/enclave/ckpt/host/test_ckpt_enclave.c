/* Drives the trusted checkpoint engine of a test enclave through the
 * runtime ecalls of checkpoint_abi.h, on a simulated platform.
 *
 * Without a Migration Enclave (spmd not running): what CKPT_BEGIN captures
 * (writable image pages, heap to its high-water mark, parked threads),
 * that the enclave refuses application ecalls while exporting and an ORET
 * into a frozen thread, that encryption by one or two threads yields every
 * chunk once and no 16-byte window of any secret, that CKPT_ABORT brings
 * the enclave back with its state, and that hostile buffers are refused.
 * With spmd: the whole round trip through libspm's export and import, a
 * parked thread returning into the restored enclave, and tampered or
 * malformed images refused while the original still restores. Through a
 * hostile relay in front of spmd: a lost ESCROW reply makes CKPT_ABORT
 * cancel before the enclave runs on, and that checkpoint then never
 * restores; a lost CANCEL keeps the enclave frozen until a retry gets one
 * through. Imports driven by hand, one runtime ecall at a time: two copies
 * of one image both past RELEASE (the one whose COMMIT comes second dies
 * and wipes what it decrypted), a restoring process killed before COMMIT
 * (the image then restores once), and a chunk spliced in from an earlier
 * checkpoint (refused; the image still restores).
 * argv: spmd me-image small-image big-image */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ckpt_test_abi.h"
#include "image/image.h"
#include "platform/sim/sim.h"
#include "spm/abi/checkpoint_abi.h"
#include "spm/abi/me_abi.h"
#include "spm/urts.h"
#include "spmd_child.h"
#include "urts/checkpoint.h"
#include "urts/urts_internal.h"

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(address, size) ((void)(address), (void)(size))
#endif

#define PAGE 4096u

static const char *g_spmd_exe, *g_me_image, *g_small, *g_big;
static char g_dir[256], g_ca[300], g_plat[300], g_state[300], g_sock[300], g_spmd_log[300];
static struct spm_test_spmd g_spmd;

/* ---- Threads parked in CKPT_TEST_OCALL_PARK ---- */

static pthread_mutex_t g_park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_park_cond = PTHREAD_COND_INITIALIZER;
static int g_parked, g_park_released;

/* ocall_ctx of an enclave whose parked threads must never return. */
static int g_park_forever;

static int host_park(void *ctx, const uint8_t *in, size_t in_size, uint8_t *out,
                     size_t out_capacity, size_t *out_size)
{
    (void)in;
    (void)in_size;
    (void)out;
    (void)out_capacity;
    *out_size = 0;
    pthread_mutex_lock(&g_park_lock);
    g_parked++;
    pthread_cond_broadcast(&g_park_cond);
    while (!g_park_released || ctx == &g_park_forever)
        pthread_cond_wait(&g_park_cond, &g_park_lock);
    g_parked--;
    pthread_mutex_unlock(&g_park_lock);
    return 0;
}

static const spm_ocall_fn g_ocalls[] = {[CKPT_TEST_OCALL_PARK] = host_park};

struct parker {
    struct spm_enclave *e;
    pthread_t thread;
    int ret;
};

static void *park_main(void *arg)
{
    struct parker *p = arg;
    size_t n;
    p->ret = spm_enclave_ecall(p->e, CKPT_TEST_PARK, NULL, 0, NULL, 0, &n, 0);
    return NULL;
}

static void park_one(struct parker *p, struct spm_enclave *e)
{
    pthread_mutex_lock(&g_park_lock);
    g_park_released = 0;
    int before = g_parked;
    pthread_mutex_unlock(&g_park_lock);
    p->e = e;
    p->ret = 1;
    assert_int_equal(pthread_create(&p->thread, NULL, park_main, p), 0);
    pthread_mutex_lock(&g_park_lock);
    while (g_parked == before)
        pthread_cond_wait(&g_park_cond, &g_park_lock);
    pthread_mutex_unlock(&g_park_lock);
}

static int unpark(struct parker *p)
{
    pthread_mutex_lock(&g_park_lock);
    g_park_released = 1;
    pthread_cond_broadcast(&g_park_cond);
    pthread_mutex_unlock(&g_park_lock);
    pthread_join(p->thread, NULL);
    return p->ret;
}

/* ---- Calls ---- */

static struct spm_enclave *load_with(const char *image, void *ocall_ctx)
{
    struct spm_enclave_options o = {
        .platform_dir = g_plat, .ocalls = g_ocalls, .ocall_count = 1, .ocall_ctx = ocall_ctx};
    struct spm_enclave *e = NULL;
    assert_int_equal(spm_enclave_load(image, &o, &e), 0);
    return e;
}

static struct spm_enclave *load(const char *image)
{
    return load_with(image, NULL);
}

static int call(struct spm_enclave *e, uint32_t id, const void *in, size_t in_size, void *out,
                size_t cap, size_t *out_size)
{
    size_t ignored;
    return spm_enclave_ecall(e, id, in, in_size, out, cap, out_size ? out_size : &ignored,
                             SPM_ECALL_NOWAIT);
}

static void fill(struct spm_enclave *e, uint64_t seed, uint64_t heap_size)
{
    struct ckpt_test_fill f = {seed, heap_size};
    struct ckpt_test_where w;
    assert_int_equal(call(e, CKPT_TEST_FILL, &f, sizeof(f), &w, sizeof(w), NULL), 0);
}

static void check_state(struct spm_enclave *e, uint64_t heap_size)
{
    struct ckpt_test_check c;
    assert_int_equal(call(e, CKPT_TEST_CHECK, NULL, 0, &c, sizeof(c), NULL), 0);
    assert_int_equal(c.heap_bytes, heap_size);
    assert_int_equal(c.globals_bytes, CKPT_TEST_GLOBALS_SIZE);
}

static uint64_t count(struct spm_enclave *e)
{
    uint64_t v = 0;
    assert_int_equal(call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL), 0);
    return v;
}

static int begin(struct spm_enclave *e, uint64_t chunk_size, struct spm_ckpt_begin_out *out)
{
    struct spm_ckpt_begin_in in = {chunk_size};
    size_t n = 0;
    int ret = call(e, SPM_RT_ECALL_CKPT_BEGIN, &in, sizeof(in), out, sizeof(*out), &n);
    if (ret == 0)
        assert_int_equal(n, sizeof(*out));
    return ret;
}

static int rt_simple(struct spm_enclave *e, uint32_t id)
{
    return call(e, id, NULL, 0, NULL, 0, NULL);
}

struct encryptor {
    struct spm_enclave *e;
    struct spm_ckpt_buffer buffer;
    pthread_t thread;
    int ret;
    uint32_t chunks;
};

static void *encrypt_main(void *arg)
{
    struct encryptor *w = arg;
    struct spm_ckpt_work_out out = {0};
    size_t n = 0;
    w->ret = spm_enclave_ecall(w->e, SPM_RT_ECALL_CKPT_ENCRYPT, &w->buffer, sizeof(w->buffer), &out,
                               sizeof(out), &n, 0);
    if (w->ret == 0 && n != sizeof(out))
        w->ret = -EPROTO;
    w->chunks = out.chunks_done;
    return NULL;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Runs CKPT_ENCRYPT on `threads` threads at once; returns the chunks done
 * in total and the wall time. */
static uint32_t encrypt_with(struct spm_enclave *e, uint8_t *image, uint64_t size, int threads,
                             uint64_t *ns)
{
    struct encryptor w[4];
    assert_true(threads <= 4);
    uint64_t start = now_ns();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct encryptor){.e = e, .buffer = {(uint64_t)image, size}};
        assert_int_equal(pthread_create(&w[i].thread, NULL, encrypt_main, &w[i]), 0);
    }
    uint32_t total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].thread, NULL);
        assert_int_equal(w[i].ret, 0);
        total += w[i].chunks;
    }
    if (ns)
        *ns = now_ns() - start;
    return total;
}

/* ---- What the engine should capture, from the image and its layout ---- */

struct expected {
    uint64_t image_rw; /* writable image pages, bytes */
    uint64_t heap_offset, stack_size, elrange_size, threads_offset, threads_stride;
    uint32_t tcs_count;
};

static void expected_for(const char *image, struct expected *x)
{
    struct spm_elf_image img;
    assert_int_equal(spm_elf_load(image, &img), 0);
    struct spm_layout layout;
    assert_int_equal(spm_layout_compute(&img, &img.meta.config, &layout), 0);
    uint64_t last_end = 0;
    x->image_rw = 0;
    for (uint32_t i = 0; i < img.segment_count; i++) {
        const struct spm_elf_segment *s = &img.segments[i];
        if (!(s->flags & 2 /* PF_W */) || s->memsz == 0)
            continue;
        uint64_t lo = s->vaddr / PAGE * PAGE, hi = (s->vaddr + s->memsz + PAGE - 1) / PAGE * PAGE;
        if (lo < last_end)
            lo = last_end;
        if (hi > lo)
            x->image_rw += hi - lo;
        last_end = hi;
    }
    x->heap_offset = layout.info.heap_offset;
    x->stack_size = layout.info.stack_size;
    x->elrange_size = layout.info.elrange_size;
    x->tcs_count = layout.info.tcs_count;
    x->threads_offset = layout.info.thread_region_offset;
    x->threads_stride = layout.info.thread_region_stride;
    spm_elf_free(&img);
}

/* ---- Looking for secrets: every 16-byte window of what the enclave holds ---- */

struct window {
    uint64_t prefix;
    const uint8_t *at;
};

struct secrets {
    uint8_t *bytes[3];
    uint64_t sizes[3];
    struct window *windows;
    size_t count;
};

static int window_order(const void *a, const void *b)
{
    uint64_t x = ((const struct window *)a)->prefix, y = ((const struct window *)b)->prefix;
    return x < y ? -1 : x > y;
}

static void secrets_init(struct secrets *s, uint64_t seed, uint64_t heap_size)
{
    const uint64_t sizes[3] = {heap_size, CKPT_TEST_GLOBALS_SIZE, CKPT_TEST_STACK_SECRET};
    s->count = 0;
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        s->sizes[i] = sizes[i];
        s->bytes[i] = calloc(1, sizes[i] + 8); /* the tail: windows read 8 bytes ahead */
        uint64_t x = ckpt_test_stream_start(seed, (uint64_t)i + 1);
        for (uint64_t o = 0; o < sizes[i]; o += 8) {
            uint64_t v = ckpt_test_stream_next(&x);
            memcpy(s->bytes[i] + o, &v, 8);
        }
        total += sizes[i];
    }
    s->windows = malloc(total * sizeof(*s->windows));
    for (int i = 0; i < 3; i++)
        for (uint64_t o = 0; o + 16 <= s->sizes[i]; o++) {
            memcpy(&s->windows[s->count].prefix, s->bytes[i] + o, 8);
            s->windows[s->count++].at = s->bytes[i] + o;
        }
    qsort(s->windows, s->count, sizeof(*s->windows), window_order);
}

static void secrets_free(struct secrets *s)
{
    for (int i = 0; i < 3; i++)
        free(s->bytes[i]);
    free(s->windows);
}

/* Offsets of `data` where a 16-byte window of a secret starts. */
static size_t secrets_found(const struct secrets *s, const uint8_t *data, size_t size)
{
    /* Under memcheck: the image encrypts captured enclave stacks, whose bytes
     * below each stack pointer memcheck calls uninitialised; every byte of
     * the image is what the enclave wrote, and the scan reads them all. */
    VALGRIND_MAKE_MEM_DEFINED(data, size);
    size_t hits = 0;
    for (size_t o = 0; o + 16 <= size; o++) {
        uint64_t prefix;
        memcpy(&prefix, data + o, 8);
        size_t lo = 0, hi = s->count;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (s->windows[mid].prefix < prefix)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < s->count && s->windows[lo].prefix == prefix; lo++)
            if (memcmp(s->windows[lo].at, data + o, 16) == 0) {
                hits++;
                break;
            }
    }
    return hits;
}

/* ---- Tests without a Migration Enclave ---- */

static void test_begin_captures_image_heap_and_parked_threads(void **state)
{
    (void)state;
    struct expected x;
    expected_for(g_small, &x);
    struct spm_enclave *e = load(g_small);
    fill(e, 11, 300 << 10);
    uint64_t before = count(e);
    uint64_t high = 0;
    assert_int_equal(call(e, CKPT_TEST_HIGH_WATER, NULL, 0, &high, sizeof(high), NULL), 0);
    uint64_t heap_start = spm_enclave_base(e) + x.heap_offset;
    assert_true(high >= heap_start + (300 << 10) && high % PAGE == 0);
    struct parker p;
    park_one(&p, e);

    const uint64_t chunk = 64 << 10;
    struct spm_ckpt_begin_out out;
    assert_int_equal(begin(e, chunk, &out), 0);
    /* writable image pages, the heap up to its high-water mark, and the
     * parked thread's stack and thread data page: three runs. */
    uint64_t payload = x.image_rw + (high - heap_start) + x.stack_size + PAGE;
    assert_int_equal(out.run_count, 3);
    assert_int_equal(out.payload_size, payload);
    assert_int_equal(out.chunk_count, (payload + chunk - 1) / chunk);
    assert_int_equal(out.image_size, 256 + 16 * 3 + 16 * out.chunk_count + payload);

    /* While exporting: application ecalls, INIT and a second BEGIN are
     * refused, and END wants every chunk encrypted first. */
    uint64_t v;
    assert_int_equal(call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL), -EBUSY);
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_INIT), -EBUSY);
    struct spm_ckpt_begin_out again;
    assert_int_equal(begin(e, chunk, &again), -EBUSY);
    uint8_t *image = calloc(1, out.image_size);
    struct spm_ckpt_buffer buffer = {(uint64_t)image, out.image_size};
    assert_int_equal(call(e, SPM_RT_ECALL_CKPT_END, &buffer, sizeof(buffer), NULL, 0, NULL),
                     -EBUSY);
    assert_int_equal(encrypt_with(e, image, out.image_size, 1, NULL), out.chunk_count);
    /* No ME here: END cannot escrow, and the enclave stays frozen. */
    int end = call(e, SPM_RT_ECALL_CKPT_END, &buffer, sizeof(buffer), NULL, 0, NULL);
    assert_true(end < 0);
    assert_int_equal(call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL), -EBUSY);
    /* END never wrote the header: no escrow, no image. */
    static const uint8_t zero[256];
    assert_memory_equal(image, zero, sizeof(zero));

    /* ABORT: the enclave runs on with everything it had. */
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT), 0);
    assert_int_equal(count(e), before + 1);
    check_state(e, 300 << 10);
    /* The parked thread returns into it, its stack intact. */
    assert_int_equal(unpark(&p), 0);
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT), 0); /* nothing to abort */
    free(image);
    spm_enclave_destroy(e);
}

static void test_encrypt_one_or_two_threads_every_chunk_once(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_small);
    fill(e, 12, 2 << 20);
    for (int threads = 1; threads <= 2; threads++) {
        struct spm_ckpt_begin_out out;
        assert_int_equal(begin(e, 16 << 10, &out), 0);
        assert_true(out.chunk_count > 100);
        uint8_t *image = calloc(1, out.image_size);
        assert_int_equal(encrypt_with(e, image, out.image_size, threads, NULL), out.chunk_count);
        /* Nothing left: a late worker does nothing. */
        assert_int_equal(encrypt_with(e, image, out.image_size, 1, NULL), 0);
        /* Every tag written (a zero tag is 2^-128). */
        uint64_t tags = 256 + 16 * (uint64_t)out.run_count;
        static const uint8_t zero[16];
        for (uint32_t i = 0; i < out.chunk_count; i++)
            assert_memory_not_equal(image + tags + 16 * i, zero, 16);
        assert_int_equal(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT), 0);
        free(image);
    }
    check_state(e, 2 << 20);
    spm_enclave_destroy(e);
}

static void test_ciphertext_holds_no_secret(void **state)
{
    (void)state;
    const uint64_t seed = 0x5eed, heap = 1 << 20;
    struct secrets s;
    secrets_init(&s, seed, heap);
    struct spm_enclave *e = load(g_small);
    fill(e, seed, heap);
    struct parker p;
    park_one(&p, e);
    struct spm_ckpt_begin_out out;
    assert_int_equal(begin(e, 0, &out), 0);
    uint8_t *image = calloc(1, out.image_size);
    assert_int_equal(encrypt_with(e, image, out.image_size, 2, NULL), out.chunk_count);
    assert_int_equal(secrets_found(&s, image, out.image_size), 0);
    /* The scan can fail: a window of the parked stack's secret planted in
     * a copy is found (twice when a ciphertext byte beside it happens to
     * equal the secret's next byte: 1 in 128). */
    uint8_t *copy = malloc(out.image_size);
    memcpy(copy, image, out.image_size);
    memcpy(copy + out.image_size / 2, s.bytes[2] + 100, 16);
    size_t found = secrets_found(&s, copy, out.image_size);
    assert_in_range(found, 1, 3);
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT), 0);
    assert_int_equal(unpark(&p), 0);
    check_state(e, heap);
    free(copy);
    free(image);
    secrets_free(&s);
    spm_enclave_destroy(e);
}

static void test_oret_into_frozen_thread_refused(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_small);
    fill(e, 13, 4096);
    struct parker p;
    park_one(&p, e);
    struct spm_ckpt_begin_out out;
    assert_int_equal(begin(e, 0, &out), 0);
    /* The host lets the parked thread return although the enclave froze it:
     * refused; its ecall comes back failed and the parked context stays. */
    assert_int_equal(unpark(&p), -EBUSY);
    /* The host gave that TCS back to its pool, but the enclave still holds
     * it frozen: ABORT goes to another one. */
    int aborted = -1;
    for (uint32_t t = 0; t < spm_enclave_tcs_count(e) && aborted != 0; t++) {
        size_t n;
        aborted = spm_urts_ecall_internal(e, t, SPM_RT_ECALL_CKPT_ABORT, NULL, 0, NULL, 0, &n);
        assert_true(aborted == 0 || aborted == -EBUSY);
    }
    assert_int_equal(aborted, 0);
    /* Thawed, that thread is parked again with nobody to return it: its
     * TCS refuses ecalls, every other one works, with the state intact. */
    int refused = 0;
    for (uint32_t t = 0; t < spm_enclave_tcs_count(e); t++) {
        struct ckpt_test_check c;
        size_t n;
        int ret = spm_urts_ecall_internal(e, t, CKPT_TEST_CHECK, NULL, 0, &c, sizeof(c), &n);
        if (ret == -EBUSY)
            refused++;
        else
            assert_int_equal(ret, 0);
    }
    assert_int_equal(refused, 1);
    spm_enclave_destroy(e);
}

static void test_hostile_arguments_refused(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_small);
    fill(e, 14, 8192);
    uint8_t *inside = (uint8_t *)spm_enclave_base(e) + 0x1000;
    struct spm_ckpt_begin_in in = {0};
    struct spm_ckpt_begin_out out;
    size_t n;
    /* Nothing to work on before BEGIN; import calls on a live enclave. */
    struct spm_ckpt_buffer none = {0, 0};
    struct spm_ckpt_work_out work;
    assert_int_equal(
        call(e, SPM_RT_ECALL_CKPT_ENCRYPT, &none, sizeof(none), &work, sizeof(work), &n), -EBUSY);
    assert_int_equal(call(e, SPM_RT_ECALL_CKPT_END, &none, sizeof(none), NULL, 0, &n), -EBUSY);
    assert_int_equal(call(e, SPM_RT_ECALL_RESTORE_BEGIN, &none, sizeof(none), &out, 24, &n),
                     -EBUSY);
    assert_int_equal(
        call(e, SPM_RT_ECALL_RESTORE_VERIFY, &none, sizeof(none), &work, sizeof(work), &n), -EBUSY);
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_RESTORE_END), -EBUSY);
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_RESTORE_ABORT), -EBUSY);
    /* BEGIN's input and output. */
    assert_int_equal(call(e, SPM_RT_ECALL_CKPT_BEGIN, &in, 4, &out, sizeof(out), &n), -EINVAL);
    assert_int_equal(call(e, SPM_RT_ECALL_CKPT_BEGIN, inside, sizeof(in), &out, sizeof(out), &n),
                     -EFAULT);
    assert_int_equal(call(e, SPM_RT_ECALL_CKPT_BEGIN, &in, sizeof(in), inside, sizeof(out), &n),
                     -EFAULT);
    assert_int_equal(call(e, SPM_RT_ECALL_CKPT_BEGIN, &in, sizeof(in), &out, 8, &n), -ENOSPC);
    const uint64_t bad_chunks[] = {1000, 4096 + 512, 2048, 128u << 20, (uint64_t)1 << 63};
    for (size_t i = 0; i < sizeof(bad_chunks) / sizeof(bad_chunks[0]); i++)
        assert_int_equal(begin(e, bad_chunks[i], &out), -EINVAL);
    assert_int_equal(count(e), 1); /* none of them started a checkpoint */

    assert_int_equal(begin(e, 0, &out), 0);
    uint8_t *image = calloc(1, out.image_size);
    uint64_t base = spm_enclave_base(e), size = spm_enclave_size(e);
    const struct spm_ckpt_buffer bad[] = {
        {(uint64_t)inside, out.image_size},                   /* inside ELRANGE */
        {base - 0x1000, out.image_size},                      /* runs into it */
        {base + size - 0x1000, out.image_size},               /* starts inside */
        {(uint64_t)image, out.image_size - 1},                /* too small */
        {0xfffffffffffff000ull, 0x2000},                      /* wraps around */
        {(uint64_t)image, UINT64_MAX - (uint64_t)image + 16}, /* wraps, large */
        {0, out.image_size},                                  /* NULL */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            call(e, SPM_RT_ECALL_CKPT_ENCRYPT, &bad[i], sizeof(bad[i]), &work, sizeof(work), &n),
            -EFAULT);
        assert_int_equal(call(e, SPM_RT_ECALL_CKPT_END, &bad[i], sizeof(bad[i]), NULL, 0, &n),
                         -EBUSY); /* chunks not encrypted yet comes first */
    }
    struct spm_ckpt_buffer good = {(uint64_t)image, out.image_size};
    assert_int_equal(
        call(e, SPM_RT_ECALL_CKPT_ENCRYPT, &good, sizeof(good), inside, sizeof(work), &n), -EFAULT);
    assert_int_equal(call(e, SPM_RT_ECALL_CKPT_ENCRYPT, &good, 8, &work, sizeof(work), &n),
                     -EINVAL);
    assert_int_equal(encrypt_with(e, image, out.image_size, 1, NULL), out.chunk_count);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(call(e, SPM_RT_ECALL_CKPT_END, &bad[i], sizeof(bad[i]), NULL, 0, &n),
                         -EFAULT);
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT), 0);
    assert_int_equal(count(e), 2);
    check_state(e, 8192);
    free(image);
    spm_enclave_destroy(e);
}

/* Encryption speed over 64 MiB of heap, one and two threads (printed, and
 * held to a floor far below what AES-NI does, to catch a broken path). */
static void test_encryption_speed_64_mib(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_big);
    fill(e, 15, 64 << 20);
    double rate[3] = {0};
    for (int threads = 1; threads <= 2; threads++) {
        uint64_t best = UINT64_MAX;
        for (int round = 0; round < 3; round++) {
            struct spm_ckpt_begin_out out;
            assert_int_equal(begin(e, 0, &out), 0);
            uint8_t *image = malloc(out.image_size);
            memset(image, 0, out.image_size); /* fault the pages in before timing */
            uint64_t ns;
            assert_int_equal(encrypt_with(e, image, out.image_size, threads, &ns), out.chunk_count);
            if (ns < best)
                best = ns;
            assert_int_equal(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT), 0);
            rate[threads] = (double)out.payload_size / (double)best;
            free(image);
        }
        printf("# CKPT_ENCRYPT, 64 MiB heap, %d thread%s: %.2f GB/s\n", threads,
               threads > 1 ? "s" : "", rate[threads]);
    }
    /* Speed is measured by bench/ against openssl in the same run, not
     * asserted here: this test also runs under memcheck. */
    check_state(e, 64 << 20);
    spm_enclave_destroy(e);
}

/* ---- With spmd: the whole round trip through libspm ---- */

static int spmd_start(void)
{
    return spm_test_spmd_start(g_spmd_exe, g_plat, g_state, g_sock, g_me_image, NULL, g_spmd_log,
                               &g_spmd) == 0
               ? 0
               : -1;
}

static int spmd_group_setup(void **state)
{
    (void)state;
    setenv(SPM_SPMD_SOCKET_ENV, g_sock, 1);
    return spmd_start();
}

static int spmd_group_teardown(void **state)
{
    (void)state;
    spm_test_spmd_stop(&g_spmd, SIGTERM);
    return 0;
}

static const struct spm_ckpt_header *image_header(struct spm_enclave *e)
{
    assert_non_null(e->image);
    return (const struct spm_ckpt_header *)e->image;
}

static void test_round_trip_parked_thread_returns(void **state)
{
    (void)state;
    const uint64_t seed = 0xc0ffee, heap = 1 << 20;
    struct secrets s;
    secrets_init(&s, seed, heap);
    struct spm_enclave *e = load(g_small);
    fill(e, seed, heap);
    uint64_t before = count(e);
    struct parker p;
    park_one(&p, e);
    uint8_t mrenclave[32];
    spm_enclave_mrenclave(e, mrenclave);

    struct spm_ckpt_options o = {.chunk_size = 64 << 10};
    struct spm_ckpt_stats stats;
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), 0);
    const struct spm_ckpt_header *h = image_header(e);
    assert_int_equal(h->magic, SPM_CKPT_MAGIC);
    assert_int_equal(h->version, SPM_CKPT_VERSION);
    assert_memory_equal(h->mr_enclave, mrenclave, 32);
    assert_int_equal(h->elrange_base, spm_enclave_base(e));
    assert_int_equal(h->run_count, 3);
    assert_int_equal(h->generation, 1);
    assert_int_equal(h->image_size, e->image_size);
    const struct spm_ckpt_run *runs = (const struct spm_ckpt_run *)(h + 1);
    for (uint32_t i = 1; i < h->run_count; i++)
        assert_true(runs[i].offset > runs[i - 1].offset + runs[i - 1].size);
    assert_int_equal(secrets_found(&s, e->image, e->image_size), 0);

    /* Import: the parked thread comes back into the rebuilt enclave. */
    bool permanent = true;
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), 0);
    assert_int_equal(unpark(&p), 0);
    check_state(e, heap);
    assert_int_equal(count(e), before + 1);

    /* A second checkpoint continues the lineage. */
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), 0);
    assert_int_equal(image_header(e)->generation, 2);
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), 0);
    check_state(e, heap);
    assert_int_equal(count(e), before + 2);
    secrets_free(&s);
    spm_enclave_destroy(e);
}

/* CKPT_END through the runtime ecalls: the header lands in the buffer, the
 * captured pages are wiped (the simulated ELRANGE is readable here), and
 * the enclave refuses everything from then on. */
static void test_end_wipes_and_shuts_down(void **state)
{
    (void)state;
    const uint64_t seed = 0xe4d, heap = 512 << 10;
    struct secrets s;
    secrets_init(&s, seed, heap);
    struct spm_enclave *e = load_with(g_small, &g_park_forever);
    struct ckpt_test_fill f = {seed, heap};
    struct ckpt_test_where where;
    assert_int_equal(call(e, CKPT_TEST_FILL, &f, sizeof(f), &where, sizeof(where), NULL), 0);
    struct parker p;
    park_one(&p, e);
    struct spm_ckpt_begin_out out;
    assert_int_equal(begin(e, 0, &out), 0);
    uint8_t *image = calloc(1, out.image_size);
    assert_int_equal(encrypt_with(e, image, out.image_size, 2, NULL), out.chunk_count);
    struct spm_ckpt_buffer buffer = {(uint64_t)image, out.image_size};
    assert_int_equal(call(e, SPM_RT_ECALL_CKPT_END, &buffer, sizeof(buffer), NULL, 0, NULL), 0);
    const struct spm_ckpt_header *h = (const struct spm_ckpt_header *)image;
    assert_int_equal(h->magic, SPM_CKPT_MAGIC);
    assert_int_equal(h->image_size, out.image_size);
    assert_int_equal(h->run_count, out.run_count);
    assert_int_equal(h->chunk_count, out.chunk_count);
    assert_int_equal(secrets_found(&s, image, out.image_size), 0);
    /* Nothing is left in what was captured (heap, .bss, the parked stack). */
    uint8_t *base = (uint8_t *)spm_enclave_base(e);
    assert_true(where.heap >= (uint64_t)base && where.globals >= (uint64_t)base);
    const struct spm_ckpt_run *runs = (const struct spm_ckpt_run *)(h + 1);
    for (uint32_t i = 0; i < h->run_count; i++)
        for (uint64_t o = 0; o < runs[i].size; o++)
            if (base[runs[i].offset + o]) {
                fprintf(stderr, "byte %#lx of run %u not wiped\n", (unsigned long)o, i);
                fail();
            }
    /* Every ecall, runtime or application, is refused. */
    uint64_t v;
    assert_int_equal(call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL), -ESHUTDOWN);
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_INIT), -ESHUTDOWN);
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT), -ESHUTDOWN);
    assert_int_equal(begin(e, 0, &out), -ESHUTDOWN);
    /* The real host holds a parked thread at its gate until the enclave
     * is rebuilt; this one stays parked for good, with its enclave. */
    pthread_detach(p.thread);
    free(image);
    secrets_free(&s);
}

/* Flips one byte of the exported image at `offset`, restores (which must
 * fail with `want`, for good), and flips it back. */
static void restore_refused(struct spm_enclave *e, size_t offset, uint8_t mask, int want)
{
    struct spm_ckpt_options o = {0};
    struct spm_ckpt_stats stats;
    bool permanent = false;
    e->image[offset] ^= mask;
    int ret = spm_enclave_restore(e, &o, &stats, &permanent);
    e->image[offset] ^= mask;
    if (ret != want)
        fprintf(stderr, "image byte %zu ^ %#x: restore returned %d, want %d\n", offset, mask, ret,
                want);
    assert_int_equal(ret, want);
    assert_true(permanent);
}

static void test_tampered_or_malformed_image_refused_original_restores(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_small);
    fill(e, 16, 256 << 10);
    struct parker p;
    park_one(&p, e);
    struct spm_ckpt_options o = {.chunk_size = 16 << 10};
    struct spm_ckpt_stats stats;
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), 0);
    struct spm_ckpt_header h = *image_header(e);
    size_t tags = h.header_size, payload = tags + 16 * (size_t)h.chunk_count;

    /* Altered ciphertext (first, middle, last chunk) and tags. */
    restore_refused(e, payload, 0x01, -EBADMSG);
    restore_refused(e, payload + (h.chunk_count / 2) * h.chunk_size + 77, 0x80, -EBADMSG);
    restore_refused(e, e->image_size - 1, 0x10, -EBADMSG);
    restore_refused(e, tags + 16 * (h.chunk_count - 1), 0x04, -EBADMSG);
    /* Two chunks swapped. */
    uint8_t *a = e->image + payload, *b = e->image + payload + h.chunk_size;
    uint8_t *tmp = malloc(h.chunk_size);
    memcpy(tmp, a, h.chunk_size);
    memcpy(a, b, h.chunk_size);
    memcpy(b, tmp, h.chunk_size);
    bool permanent = false;
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), -EBADMSG);
    memcpy(b, a, h.chunk_size);
    memcpy(a, tmp, h.chunk_size);
    free(tmp);

    /* Header fields the enclave checks itself, before asking the ME. */
    restore_refused(e, offsetof(struct spm_ckpt_header, magic), 0x01, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, version), 0x02, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, reserved) + 63, 0x01, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, reserved0), 0x01, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, elrange_base) + 3, 0x01, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, chunk_count), 0x01, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, payload_size) + 1, 0x10, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, run_count), 0x01, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, chunk_size) + 1, 0x01, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, tcs_count), 0x01, -EINVAL);
    restore_refused(e, offsetof(struct spm_ckpt_header, mr_enclave) + 5, 0x01, -EKEYREJECTED);
    restore_refused(e, offsetof(struct spm_ckpt_header, mr_signer), 0x01, -EKEYREJECTED);
    restore_refused(e, offsetof(struct spm_ckpt_header, isv_svn), 0x01, -EKEYREJECTED);
    restore_refused(e, offsetof(struct spm_ckpt_header, attributes_flags), 0x02, -EKEYREJECTED);
    /* A run moved onto code (offset 0x1000) or onto the incarnation
     * pages (just below the heap), or made to overlap its neighbour. */
    struct spm_ckpt_run *runs = (struct spm_ckpt_run *)(e->image + sizeof(h));
    struct spm_ckpt_run saved = runs[0];
    runs[0].offset = 0x1000;
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), -EINVAL);
    runs[0] = saved;
    saved = runs[1];
    runs[1].offset -= 2 * PAGE;
    runs[1].size += 2 * PAGE;
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), -EINVAL);
    runs[1] = saved;
    /* The parked thread's run moved to another thread's region: well
     * formed, but not what was escrowed (the digest differs), so the ME
     * keeps the key. On the TCS the import runs on it is refused earlier. */
    struct expected x;
    expected_for(g_small, &x);
    saved = runs[2];
    int digest_refusals = 0;
    for (uint32_t t = 0; t < x.tcs_count; t++) {
        uint64_t stack = x.threads_offset + t * x.threads_stride + PAGE;
        if (stack == saved.offset)
            continue;
        runs[2].offset = stack;
        int ret = spm_enclave_restore(e, &o, &stats, &permanent);
        assert_true(ret == -EBADMSG || ret == -EBUSY);
        digest_refusals += ret == -EBADMSG;
    }
    runs[2] = saved;
    assert_true(digest_refusals >= 1);
    /* Which checkpoint it is: only the ME can tell. */
    restore_refused(e, offsetof(struct spm_ckpt_header, lineage_id), 0x01, -ENOENT);
    restore_refused(e, offsetof(struct spm_ckpt_header, checkpoint_id), 0x01, -ENOENT);
    restore_refused(e, offsetof(struct spm_ckpt_header, generation), 0x01, -ESTALE);

    /* After all that, the untouched image restores, once. */
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), 0);
    assert_int_equal(unpark(&p), 0);
    check_state(e, 256 << 10);
    spm_enclave_destroy(e);
}

/* Export and import of 64 MiB of heap through libspm, with as many worker
 * threads as it picks (printed: the whole of each, ME round trips included). */
static void test_round_trip_speed_64_mib(void **state)
{
    (void)state;
    struct spm_enclave *e = load(g_big);
    fill(e, 17, 64 << 20);
    struct spm_ckpt_options o = {0};
    struct spm_ckpt_stats out, in;
    bool permanent;
    assert_int_equal(spm_enclave_checkpoint(e, &o, &out), 0);
    assert_int_equal(spm_enclave_restore(e, &o, &in, &permanent), 0);
    printf("# 64 MiB heap: export %.1f ms (%.2f GB/s, %u threads), import %.1f ms (%.2f GB/s, %u "
           "threads)\n",
           out.usec / 1e3, out.bytes / (out.usec * 1e3), out.threads, in.usec / 1e3,
           in.bytes / (in.usec * 1e3), in.threads);
    check_state(e, 64 << 20);
    spm_enclave_destroy(e);
}

/* ---- A hostile relay between the enclave and the ME ----
 * A thread listening on its own unix socket, which SPM_SPMD_SOCKET names
 * during a test: every message goes on to spmd's socket and its reply
 * back, except that the next `drop_replies` SEALED requests are forwarded
 * (the ME carries them out) but their replies never come back, and, while
 * `refuse_sealed` is set, later SEALED requests are neither forwarded nor
 * answered. The relay sees only headers and ciphertext; the first SEALED
 * request of CKPT_END is its ESCROW, the next ones on that session are the
 * CANCELs of CKPT_ABORT. */

struct proxy {
    pthread_mutex_t lock;
    pthread_t thread;
    int listen_fd;
    int stop;
    char path[320];
    int drop_replies;
    bool refuse_sealed;
    /* What it did. */
    unsigned sealed;           /* SEALED requests seen */
    unsigned dropped;          /* forwarded, reply withheld */
    unsigned dropped_answered; /* ... where spmd's reply was the ME's SEALED answer to it */
    unsigned refused;          /* neither forwarded nor answered */
    unsigned delivered;        /* forwarded, SEALED reply returned */
};

static struct proxy g_proxy = {.lock = PTHREAD_MUTEX_INITIALIZER, .listen_fd = -1};
static uint8_t g_proxy_request[sizeof(struct spm_me_message_header) + SPM_ME_MAX_MESSAGE];
static uint8_t g_proxy_reply[sizeof(struct spm_me_message_header) + SPM_ME_MAX_MESSAGE];

static int io_full(int fd, uint8_t *p, size_t size, bool writing)
{
    while (size) {
        struct pollfd pfd = {.fd = fd, .events = writing ? POLLOUT : POLLIN};
        if (poll(&pfd, 1, 15000) <= 0)
            return -1;
        ssize_t n = writing ? send(fd, p, size, MSG_NOSIGNAL) : recv(fd, p, size, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

/* One whole message (header + body) from fd into buf; its size, or -1. */
static ssize_t read_message(int fd, uint8_t *buf)
{
    struct spm_me_message_header h;
    if (io_full(fd, buf, sizeof(h), false) < 0)
        return -1;
    memcpy(&h, buf, sizeof(h));
    if (h.magic != SPM_ME_MAGIC || h.size > SPM_ME_MAX_MESSAGE ||
        io_full(fd, buf + sizeof(h), h.size, false) < 0)
        return -1;
    return (ssize_t)(sizeof(h) + h.size);
}

static uint16_t message_type(const uint8_t *msg)
{
    struct spm_me_message_header h;
    memcpy(&h, msg, sizeof(h));
    return h.type;
}

/* Session and sequence of a SEALED message (in clear in the protocol). */
static void sealed_ids(const uint8_t *msg, size_t size, uint64_t *session, uint64_t *sequence)
{
    struct spm_me_sealed s = {0};
    if (size >= sizeof(struct spm_me_message_header) + sizeof(s))
        memcpy(&s, msg + sizeof(struct spm_me_message_header), sizeof(s));
    *session = s.session;
    *sequence = s.sequence;
}

/* A unix socket address for `path`; -1 if it does not fit. */
static int unix_address(struct sockaddr_un *addr, const char *path)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof(addr->sun_path))
        return -1;
    memcpy(addr->sun_path, path, n + 1);
    return 0;
}

/* spmd's reply to `request`; its size, or -1. */
static ssize_t forward(const uint8_t *request, size_t size, uint8_t *reply)
{
    struct sockaddr_un addr;
    if (unix_address(&addr, g_sock) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t got = -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        io_full(fd, (uint8_t *)request, size, true) == 0 && shutdown(fd, SHUT_WR) == 0)
        got = read_message(fd, reply);
    close(fd);
    return got;
}

static void proxy_serve(int client)
{
    ssize_t size = read_message(client, g_proxy_request);
    if (size < 0)
        return;
    bool sealed = message_type(g_proxy_request) == SPM_ME_MSG_SEALED;
    bool drop = false, refuse = false;
    pthread_mutex_lock(&g_proxy.lock);
    if (sealed) {
        g_proxy.sealed++;
        if (g_proxy.drop_replies > 0) {
            g_proxy.drop_replies--;
            drop = true;
        } else if (g_proxy.refuse_sealed) {
            refuse = true;
            g_proxy.refused++;
        }
    }
    pthread_mutex_unlock(&g_proxy.lock);
    if (refuse)
        return;
    ssize_t reply_size = forward(g_proxy_request, (size_t)size, g_proxy_reply);
    if (reply_size < 0)
        return;
    /* Counted before the client can see anything (a reply or the close). */
    uint64_t session, sequence, reply_session, reply_sequence;
    sealed_ids(g_proxy_request, (size_t)size, &session, &sequence);
    sealed_ids(g_proxy_reply, (size_t)reply_size, &reply_session, &reply_sequence);
    bool answered = message_type(g_proxy_reply) == SPM_ME_MSG_SEALED && reply_session == session &&
                    reply_sequence == sequence;
    pthread_mutex_lock(&g_proxy.lock);
    if (drop) {
        g_proxy.dropped++;
        g_proxy.dropped_answered += answered;
    } else if (sealed && answered) {
        g_proxy.delivered++;
    }
    pthread_mutex_unlock(&g_proxy.lock);
    if (!drop)
        io_full(client, g_proxy_reply, (size_t)reply_size, true);
}

static void *proxy_main(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&g_proxy.stop, __ATOMIC_SEQ_CST)) {
        struct pollfd p = {.fd = g_proxy.listen_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int client = accept(g_proxy.listen_fd, NULL, NULL);
        if (client < 0)
            continue;
        proxy_serve(client);
        close(client); /* without a reply when one was withheld or refused */
    }
    return NULL;
}

static int proxy_setup(void **state)
{
    (void)state;
    snprintf(g_proxy.path, sizeof(g_proxy.path), "%s/proxy.sock", g_dir);
    struct sockaddr_un addr;
    if (unix_address(&addr, g_proxy.path) < 0)
        return -1;
    unlink(g_proxy.path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    g_proxy.listen_fd = fd;
    g_proxy.stop = 0;
    g_proxy.drop_replies = 0;
    g_proxy.refuse_sealed = false;
    g_proxy.sealed = g_proxy.dropped = g_proxy.dropped_answered = 0;
    g_proxy.refused = g_proxy.delivered = 0;
    if (pthread_create(&g_proxy.thread, NULL, proxy_main, NULL) != 0) {
        close(fd);
        g_proxy.listen_fd = -1;
        return -1;
    }
    setenv(SPM_SPMD_SOCKET_ENV, g_proxy.path, 1);
    return 0;
}

static int proxy_teardown(void **state)
{
    (void)state;
    setenv(SPM_SPMD_SOCKET_ENV, g_sock, 1);
    __atomic_store_n(&g_proxy.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(g_proxy.thread, NULL);
    close(g_proxy.listen_fd);
    g_proxy.listen_fd = -1;
    unlink(g_proxy.path);
    return 0;
}

static void proxy_arm(int drop_replies, bool refuse_sealed)
{
    pthread_mutex_lock(&g_proxy.lock);
    g_proxy.drop_replies = drop_replies;
    g_proxy.refuse_sealed = refuse_sealed;
    pthread_mutex_unlock(&g_proxy.lock);
}

static struct proxy proxy_counts(void)
{
    struct proxy p;
    pthread_mutex_lock(&g_proxy.lock);
    p = g_proxy;
    pthread_mutex_unlock(&g_proxy.lock);
    return p;
}

/* Checkpoint + restore through the relay (passing everything) of an
 * enclave that runs: the lineage goes on at `generation`. */
static void round_trip_at(struct spm_enclave *e, uint64_t generation, uint64_t heap)
{
    struct spm_ckpt_options o = {.chunk_size = 64 << 10};
    struct spm_ckpt_stats stats;
    bool permanent = true;
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), 0);
    assert_int_equal(image_header(e)->generation, generation);
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), 0);
    check_state(e, heap);
}

/* 1. The ESCROW reply is withheld (the ME did escrow K): the export fails,
 * CKPT_ABORT cancels on the same session, the ME confirms and the enclave
 * runs on with its state; the lineage goes on. */
static void test_lost_escrow_reply_abort_cancels_enclave_runs_on(void **state)
{
    (void)state;
    const uint64_t heap = 256 << 10;
    struct spm_enclave *e = load(g_small);
    fill(e, 0xe5c1, heap);
    uint64_t before = count(e);
    proxy_arm(1, false);
    struct spm_ckpt_options o = {.chunk_size = 64 << 10};
    struct spm_ckpt_stats stats;
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), -EPROTO);
    struct proxy p = proxy_counts();
    /* SEALED #1 (ESCROW): the ME answered it, the enclave never saw that;
     * SEALED #2 (CANCEL): answered and delivered. Nothing else. */
    assert_int_equal(p.dropped, 1);
    assert_int_equal(p.dropped_answered, 1);
    assert_int_equal(p.sealed, 2);
    assert_int_equal(p.delivered, 1);
    assert_int_equal(p.refused, 0);
    assert_int_equal(e->state, SPM_ENCLAVE_LIVE);
    assert_null(e->image);
    assert_int_equal(count(e), before + 1);
    check_state(e, heap);
    /* The next checkpoint (generation 2) escrows, restores, runs. */
    round_trip_at(e, 2, heap);
    assert_int_equal(count(e), before + 2);
    spm_enclave_destroy(e);
}

/* Drives BEGIN, ENCRYPT and END by hand with the ESCROW reply withheld, so
 * that the ciphertext stays in `*image` (an mmap). END never writes the
 * header without a confirmed escrow; the host completes the image the way
 * only a host with a simulated, readable ELRANGE can: header and run list
 * from the engine's incarnation pages. That is exactly the image a
 * successful END would have written. */
static size_t export_with_lost_escrow_reply(struct spm_enclave *e, uint8_t **image)
{
    struct spm_ckpt_begin_out out;
    assert_int_equal(begin(e, 64 << 10, &out), 0);
    uint8_t *buf =
        mmap(NULL, out.image_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(buf != MAP_FAILED);
    assert_int_equal(encrypt_with(e, buf, out.image_size, 2, NULL), out.chunk_count);
    struct proxy p0 = proxy_counts();
    proxy_arm(1, false);
    struct spm_ckpt_buffer buffer = {(uint64_t)buf, out.image_size};
    assert_int_equal(call(e, SPM_RT_ECALL_CKPT_END, &buffer, sizeof(buffer), NULL, 0, NULL),
                     -EPROTO);
    struct proxy p = proxy_counts();
    assert_int_equal(p.dropped - p0.dropped, 1);
    assert_int_equal(p.dropped_answered - p0.dropped_answered, 1);
    static const uint8_t zero[sizeof(struct spm_ckpt_header)];
    assert_memory_equal(buf, zero, sizeof(zero));

    const uint8_t *inc = (const uint8_t *)spm_enclave_base(e) + e->layout.info.incarnation_offset;
    const uint64_t magic = SPM_CKPT_MAGIC;
    int found = 0;
    struct spm_ckpt_header h = {0};
    for (size_t at = 0; at + sizeof(h) <= PAGE; at++) {
        if (memcmp(inc + at, &magic, sizeof(magic)) != 0)
            continue;
        struct spm_ckpt_header c;
        memcpy(&c, inc + at, sizeof(c));
        if (c.version == SPM_CKPT_VERSION && memcmp(c.mr_enclave, e->mrenclave, 32) == 0 &&
            c.image_size == out.image_size && c.run_count == out.run_count &&
            c.chunk_count == out.chunk_count) {
            h = c;
            found++;
        }
    }
    assert_int_equal(found, 1);
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), inc + PAGE, (size_t)h.run_count * sizeof(struct spm_ckpt_run));
    *image = buf;
    return out.image_size;
}

/* The host gives up on the running (or frozen) enclave and feeds `image`
 * to an import, as spm_urts_export does after a successful END. */
static int restore_from(struct spm_enclave *e, uint8_t *image, size_t size, bool *permanent)
{
    pthread_mutex_lock(&e->lock);
    e->ops->edestroy(e->hw);
    e->hw = NULL;
    e->ops->close(e->platform);
    e->platform = NULL;
    e->image = image;
    e->image_size = size;
    e->gate_closed = true;
    e->state = SPM_ENCLAVE_EXPORTED;
    pthread_mutex_unlock(&e->lock);
    struct spm_ckpt_options o = {0};
    struct spm_ckpt_stats stats;
    *permanent = false;
    return spm_enclave_restore(e, &o, &stats, permanent);
}

/* 2. The checkpoint whose ESCROW reply was lost and which CKPT_ABORT then
 * cancelled can never be restored: the ME refuses RELEASE (-EALREADY).
 * Control: the same attack without the CANCEL (the enclave stays frozen)
 * restores, so the image is complete and K really was in escrow. */
static void test_cancelled_escrow_never_restores(void **state)
{
    (void)state;
    const uint64_t heap = 128 << 10;
    bool permanent;
    uint8_t *image;

    /* Control: no CANCEL. The enclave is frozen; the host that kills it
     * can restore the image once, and nothing else runs. */
    struct spm_enclave *e = load(g_small);
    fill(e, 0xc0, heap);
    uint64_t before = count(e);
    size_t size = export_with_lost_escrow_reply(e, &image);
    uint64_t v;
    assert_int_equal(call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL), -EBUSY);
    assert_int_equal(restore_from(e, image, size, &permanent), 0);
    check_state(e, heap);
    assert_int_equal(count(e), before + 1);
    spm_enclave_destroy(e);

    /* The attack: CKPT_ABORT cancels (the ME answers), the enclave runs on,
     * and the host then tries to make a second copy from the image. */
    e = load(g_small);
    fill(e, 0xc1, heap);
    before = count(e);
    size = export_with_lost_escrow_reply(e, &image);
    struct proxy p0 = proxy_counts();
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT), 0);
    assert_int_equal(proxy_counts().delivered - p0.delivered, 1);
    assert_int_equal(count(e), before + 1);
    check_state(e, heap);
    assert_int_equal(restore_from(e, image, size, &permanent), -EALREADY);
    assert_true(permanent);
    assert_int_equal(e->state, SPM_ENCLAVE_EXPORTED);
    spm_enclave_destroy(e); /* unmaps the image */
}

/* 3. The CANCEL is refused too: the enclave stays frozen (the host's gate
 * and the enclave itself refuse application ecalls), a retry while the ME
 * is still cut off changes nothing, and once the relay heals the retry
 * cancels and the enclave resumes with its state. */
static void test_lost_cancel_enclave_stays_frozen_until_retry(void **state)
{
    (void)state;
    const uint64_t heap = 256 << 10;
    struct spm_enclave *e = load(g_small);
    fill(e, 0xf20, heap);
    uint64_t before = count(e);
    proxy_arm(1, true);
    struct spm_ckpt_options o = {.chunk_size = 64 << 10};
    struct spm_ckpt_stats stats;
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), -EPROTO);
    struct proxy p = proxy_counts();
    assert_int_equal(p.dropped, 1);
    assert_int_equal(p.dropped_answered, 1);
    assert_true(p.refused >= 1); /* every CANCEL the host's retries sent */
    assert_int_equal(p.delivered, 0);
    assert_int_equal(p.sealed, 1 + p.refused);
    assert_int_equal(e->state, SPM_ENCLAVE_ABORT_PENDING);

    /* Frozen: the gate refuses, and so does the enclave on every TCS when
     * the host goes around its own gate. */
    uint64_t v;
    assert_int_equal(call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL), -EBUSY);
    for (uint32_t t = 0; t < spm_enclave_tcs_count(e); t++) {
        size_t n;
        assert_int_equal(spm_urts_ecall_internal(e, t, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), &n),
                         -EBUSY);
    }
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), -ENOLINK);

    /* Retry while the CANCEL is still refused: still frozen. */
    bool permanent = true;
    assert_true(spm_enclave_restore(e, &o, &stats, &permanent) < 0);
    assert_false(permanent);
    assert_int_equal(e->state, SPM_ENCLAVE_ABORT_PENDING);
    assert_int_equal(call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL), -EBUSY);
    assert_int_equal(proxy_counts().delivered, 0);
    assert_true(proxy_counts().refused > p.refused);

    /* Healed: the retry's CANCEL reaches the ME and the enclave resumes. */
    proxy_arm(0, false);
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), 0);
    assert_int_equal(proxy_counts().delivered, 1);
    assert_int_equal(e->state, SPM_ENCLAVE_LIVE);
    assert_int_equal(count(e), before + 1);
    check_state(e, heap);
    round_trip_at(e, 2, heap);
    spm_enclave_destroy(e);
}

/* 4. The fork the CANCEL must not open: the ESCROW reply is lost, so the
 * enclave stays frozen; meanwhile a second copy of the process (here a
 * fork) restores the image and COMMITs. The frozen original then asks the
 * ME to CANCEL: the ME answers -EALREADY, and the original must die rather
 * than thaw, or two enclaves would run the same state. */
static void test_cancel_after_another_copy_resumed_kills_this_one(void **state)
{
    (void)state;
    const uint64_t heap = 128 << 10;
    struct spm_enclave *e = load(g_small);
    fill(e, 0xf0f, heap);
    uint64_t before = count(e);
    uint8_t *image;
    size_t size = export_with_lost_escrow_reply(e, &image);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv(SPM_SPMD_SOCKET_ENV, g_sock, 1); /* straight to spmd: no relay thread here */
        bool permanent;
        int ret = restore_from(e, image, size, &permanent);
        uint64_t v = 0;
        int c = ret == 0 ? call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL) : -1;
        _exit(ret == 0 && c == 0 && v == before + 1 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* the other copy resumed the state */
    assert_int_equal(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT), -EALREADY);
    uint64_t v = 0;
    assert_true(call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL) < 0);
    assert_true(rt_simple(e, SPM_RT_ECALL_CKPT_ABORT) < 0); /* and it stays dead */
    spm_enclave_destroy(e);
}

/* ---- Two copies of one image, and a copy spliced from two ----
 * A host with a simulated, readable ELRANGE can drive an import by hand:
 * rebuild the enclave and run its runtime ecalls one at a time, stopping
 * anywhere. fork gives a second process with the same image and ELRANGE
 * base, as a copied image restored elsewhere on the host would have. */

/* Rebuilds exported `e` at its base and imports on TCS 0 up to, not
 * including, RESTORE_END: RESTORE_BEGIN (the ME releases K), then
 * RESTORE_VERIFY and RESTORE_DECRYPT, after which ELRANGE holds the state
 * in the clear and nothing is committed. No cmocka assertion: a forked
 * child calls it. 0 or the first failure. */
static int import_until_commit(struct spm_enclave *e)
{
    char dir[PATH_MAX];
    int ret = spm_urts_open_platform(e, dir, sizeof(dir));
    if (ret < 0)
        return ret;
    spm_urts_elrange_release(e);
    if ((ret = spm_urts_build(e, e->base, true)) < 0)
        return ret;
    struct spm_ckpt_buffer buffer = {(uint64_t)e->image, e->image_size};
    struct spm_restore_begin_out begun;
    size_t n = 0;
    if ((ret = spm_urts_ecall_internal(e, 0, SPM_RT_ECALL_RESTORE_BEGIN, &buffer, sizeof(buffer),
                                       &begun, sizeof(begun), &n)) < 0)
        return ret;
    const uint32_t steps[] = {SPM_RT_ECALL_RESTORE_VERIFY, SPM_RT_ECALL_RESTORE_DECRYPT};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct spm_ckpt_work_out work = {0};
        if ((ret = spm_urts_ecall_internal(e, 0, steps[i], &buffer, sizeof(buffer), &work,
                                           sizeof(work), &n)) < 0)
            return ret;
        if (work.chunks_done != begun.chunk_count)
            return -EPROTO;
    }
    return 0;
}

static int restore_end_by_hand(struct spm_enclave *e)
{
    size_t n;
    return spm_urts_ecall_internal(e, 0, SPM_RT_ECALL_RESTORE_END, NULL, 0, NULL, 0, &n);
}

/* Forks a copy of this process that restores e's image through libspm
 * straight to spmd and asks CKPT_TEST_COUNT once; true when that copy ran
 * on with count `want`. */
static bool other_copy_restores(struct spm_enclave *e, uint64_t want)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv(SPM_SPMD_SOCKET_ENV, g_sock, 1); /* no relay thread in this process */
        bool permanent;
        int ret = restore_from(e, e->image, e->image_size, &permanent);
        uint64_t v = 0;
        int c = ret == 0 ? call(e, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), NULL) : -1;
        _exit(ret == 0 && c == 0 && v == want ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* 5. Two restores of one image both past RELEASE: this one decrypted the
 * state, then its COMMIT is lost in the relay; another copy restores the
 * same image and commits. When this one's COMMIT gets through, the ME
 * answers -EALREADY and the enclave must die (ckpt.c: restore_end ->
 * restore_die): it never runs, and the state it decrypted is wiped. */
static void test_losing_restore_dies_after_decrypting(void **state)
{
    (void)state;
    const uint64_t seed = 0x105e, heap = 128 << 10;
    struct secrets s;
    secrets_init(&s, seed, heap);
    struct spm_enclave *e = load(g_small);
    struct ckpt_test_fill f = {seed, heap};
    struct ckpt_test_where where;
    assert_int_equal(call(e, CKPT_TEST_FILL, &f, sizeof(f), &where, sizeof(where), NULL), 0);
    uint64_t before = count(e);
    struct spm_ckpt_options o = {.chunk_size = 64 << 10};
    struct spm_ckpt_stats stats;
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), 0);
    const unsigned escrowed = proxy_counts().delivered;

    /* This copy: RELEASE through the relay, every chunk verified and
     * decrypted into ELRANGE. */
    assert_int_equal(import_until_commit(e), 0);
    assert_int_equal(proxy_counts().delivered - escrowed, 1);
    assert_memory_equal((const void *)where.heap, s.bytes[0], heap);
    assert_memory_equal((const void *)where.globals, s.bytes[1], CKPT_TEST_GLOBALS_SIZE);
    /* Its COMMIT never reaches the ME: retryable, the enclave waits. */
    proxy_arm(0, true);
    int end = restore_end_by_hand(e);
    assert_true(end < 0 && end != -EALREADY);
    assert_true(proxy_counts().refused >= 1);
    uint64_t v;
    size_t n;
    assert_int_equal(spm_urts_ecall_internal(e, 1, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), &n),
                     -EBUSY);

    /* The other copy restores the same image and commits first. */
    assert_true(other_copy_restores(e, before + 1));

    /* This COMMIT now arrives: refused, and this enclave is dead. */
    proxy_arm(0, false);
    assert_int_equal(restore_end_by_hand(e), -EALREADY);
    assert_int_equal(proxy_counts().delivered - escrowed, 2);
    for (uint32_t t = 0; t < spm_enclave_tcs_count(e); t++)
        assert_int_equal(spm_urts_ecall_internal(e, t, CKPT_TEST_COUNT, NULL, 0, &v, sizeof(v), &n),
                         -ESHUTDOWN);
    assert_int_equal(restore_end_by_hand(e), -ESHUTDOWN);
    const struct spm_ckpt_header *h = image_header(e);
    const struct spm_ckpt_run *runs = (const struct spm_ckpt_run *)(h + 1);
    const uint8_t *base = (const uint8_t *)spm_enclave_base(e);
    for (uint32_t i = 0; i < h->run_count; i++)
        for (uint64_t at = 0; at < runs[i].size; at++)
            if (base[runs[i].offset + at]) {
                fprintf(stderr, "byte %#lx of run %u survived the refused COMMIT\n",
                        (unsigned long)at, i);
                fail();
            }
    secrets_free(&s);
    spm_enclave_destroy(e);
}

/* 6. The restoring process is SIGKILLed between RELEASE and COMMIT, with
 * the state decrypted in its ELRANGE. RELEASE persisted nothing: the
 * untouched image restores once, and a further restore is refused. */
static void test_restore_killed_before_commit_image_restores_once(void **state)
{
    (void)state;
    const uint64_t heap = 128 << 10;
    struct spm_enclave *e = load(g_small);
    fill(e, 0x4b11, heap);
    uint64_t before = count(e);
    struct spm_ckpt_options o = {.chunk_size = 64 << 10};
    struct spm_ckpt_stats stats;
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), 0);
    size_t size = e->image_size;
    uint8_t *copy = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(copy != MAP_FAILED);
    memcpy(copy, e->image, size);

    int ready[2];
    assert_int_equal(pipe(ready), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        char reached = import_until_commit(e) == 0 ? 'y' : 'n';
        if (write(ready[1], &reached, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    char reached = 0;
    assert_int_equal(read(ready[0], &reached, 1), 1);
    close(ready[0]);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(reached, 'y'); /* it was past RELEASE and DECRYPT */
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    bool permanent = true;
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), 0);
    check_state(e, heap);
    assert_int_equal(count(e), before + 1);
    assert_int_equal(restore_from(e, copy, size, &permanent), -EALREADY);
    assert_true(permanent);
    spm_enclave_destroy(e); /* unmaps the copy */
}

/* 7. A chunk and its tag copied from an earlier checkpoint of the same
 * enclave, same chunk size, at the same index: K is per checkpoint, and
 * the nonce (checkpoint id) and AAD (header digest) name the checkpoint,
 * so the tag fails; the image it was spliced into still restores. */
static void test_chunk_spliced_from_another_checkpoint_refused(void **state)
{
    (void)state;
    const uint64_t heap = 256 << 10;
    struct spm_enclave *e = load(g_small);
    fill(e, 0x5911, heap);
    struct spm_ckpt_options o = {.chunk_size = 16 << 10};
    struct spm_ckpt_stats stats;
    bool permanent;
    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), 0);
    const struct spm_ckpt_header a = *image_header(e);
    uint8_t *image_a = malloc(e->image_size);
    assert_non_null(image_a);
    memcpy(image_a, e->image, e->image_size);
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), 0);
    /* New secrets in the same places: every chunk of heap and globals
     * holds other plaintext in B than in A. */
    fill(e, 0x5912, heap);

    assert_int_equal(spm_enclave_checkpoint(e, &o, &stats), 0);
    const struct spm_ckpt_header b = *image_header(e);
    assert_int_equal(b.generation, a.generation + 1);
    assert_int_equal(b.chunk_size, a.chunk_size);
    assert_int_equal(b.chunk_count, a.chunk_count);
    assert_int_equal(b.header_size, a.header_size);
    assert_memory_not_equal(b.checkpoint_id, a.checkpoint_id, sizeof(a.checkpoint_id));
    const size_t tags = b.header_size, payload = tags + 16 * (size_t)b.chunk_count;
    uint8_t *saved = malloc(b.chunk_size);
    assert_non_null(saved);
    const uint32_t spliced[] = {0, b.chunk_count / 2};
    for (size_t i = 0; i < sizeof(spliced) / sizeof(spliced[0]); i++) {
        size_t tag = tags + 16 * (size_t)spliced[i];
        size_t chunk = payload + (size_t)spliced[i] * b.chunk_size;
        uint8_t saved_tag[16];
        memcpy(saved_tag, e->image + tag, 16);
        memcpy(saved, e->image + chunk, b.chunk_size);
        assert_memory_not_equal(saved_tag, image_a + tag, 16);
        memcpy(e->image + tag, image_a + tag, 16);
        memcpy(e->image + chunk, image_a + chunk, b.chunk_size);
        permanent = false;
        int ret = spm_enclave_restore(e, &o, &stats, &permanent);
        if (ret != -EBADMSG)
            fprintf(stderr, "chunk %u of the earlier checkpoint: restore returned %d\n", spliced[i],
                    ret);
        assert_int_equal(ret, -EBADMSG);
        assert_true(permanent);
        memcpy(e->image + tag, saved_tag, 16);
        memcpy(e->image + chunk, saved, b.chunk_size);
    }
    assert_int_equal(spm_enclave_restore(e, &o, &stats, &permanent), 0);
    check_state(e, heap);
    free(saved);
    free(image_a);
    spm_enclave_destroy(e);
}

/* ---- Setup ---- */

static int setup_platform(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/spm-test-ckpt-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_ca, sizeof(g_ca), "%s/ca", g_dir);
    snprintf(g_plat, sizeof(g_plat), "%s/platform", g_dir);
    snprintf(g_state, sizeof(g_state), "%s/spmd-state", g_dir);
    snprintf(g_sock, sizeof(g_sock), "%s/spmd.sock", g_dir);
    snprintf(g_spmd_log, sizeof(g_spmd_log), "%s/spmd.log", g_dir);
    /* No ME unless a test group starts one. */
    char none[320];
    snprintf(none, sizeof(none), "%s/no-spmd.sock", g_dir);
    setenv(SPM_SPMD_SOCKET_ENV, none, 1);
    if (spm_sim_ca_init(g_ca, "ckpt test CA") || spm_sim_platform_init(g_plat, g_ca))
        return -1;
    return 0;
}

static int teardown_platform(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s spmd me-image small-image big-image\n", argv[0]);
        return 2;
    }
    g_spmd_exe = argv[1];
    g_me_image = argv[2];
    g_small = argv[3];
    g_big = argv[4];
    if (setup_platform(NULL) < 0) {
        fprintf(stderr, "cannot create the test platform in /tmp\n");
        return 1;
    }
    const struct CMUnitTest without_me[] = {
        cmocka_unit_test(test_begin_captures_image_heap_and_parked_threads),
        cmocka_unit_test(test_encrypt_one_or_two_threads_every_chunk_once),
        cmocka_unit_test(test_ciphertext_holds_no_secret),
        cmocka_unit_test(test_oret_into_frozen_thread_refused),
        cmocka_unit_test(test_hostile_arguments_refused),
        cmocka_unit_test(test_encryption_speed_64_mib),
    };
    const struct CMUnitTest with_me[] = {
        cmocka_unit_test(test_round_trip_parked_thread_returns),
        cmocka_unit_test(test_end_wipes_and_shuts_down),
        cmocka_unit_test(test_tampered_or_malformed_image_refused_original_restores),
        cmocka_unit_test(test_round_trip_speed_64_mib),
        cmocka_unit_test_setup_teardown(test_lost_escrow_reply_abort_cancels_enclave_runs_on,
                                        proxy_setup, proxy_teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_escrow_never_restores, proxy_setup,
                                        proxy_teardown),
        cmocka_unit_test_setup_teardown(test_lost_cancel_enclave_stays_frozen_until_retry,
                                        proxy_setup, proxy_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_after_another_copy_resumed_kills_this_one,
                                        proxy_setup, proxy_teardown),
        cmocka_unit_test_setup_teardown(test_losing_restore_dies_after_decrypting, proxy_setup,
                                        proxy_teardown),
        cmocka_unit_test(test_restore_killed_before_commit_image_restores_once),
        cmocka_unit_test(test_chunk_spliced_from_another_checkpoint_refused),
    };
    int failed = cmocka_run_group_tests_name("without a Migration Enclave", without_me, NULL, NULL);
    failed +=
        cmocka_run_group_tests_name("with spmd", with_me, spmd_group_setup, spmd_group_teardown);
    teardown_platform(NULL);
    return failed ? 1 : 0;
}
