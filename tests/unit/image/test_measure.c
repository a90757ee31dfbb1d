/* MRENCLAVE and the ELRANGE layout: the SGX-FORMATS.md test vector, an
 * independent re-measurement of a whole layout from the raw record format,
 * the documented layout of a known config page by page, config refusals, and
 * the speed of measuring a 256 MiB heap (unmeasured pages hash 64 bytes).
 * argv[1] is the valid enclave fixture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "host/image/image.h"
#include "test_util.h"

static const char *g_enclave_path;

static void hex_to_bytes(const char *hex, uint8_t *out, size_t size)
{
    for (size_t i = 0; i < size; i++)
        sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

static void test_mrenclave_vector(void **state)
{
    (void)state;
    static uint8_t zero[4096], pattern[4096];
    for (unsigned i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i & 0xff);
    uint8_t expected[32], got[32];
    hex_to_bytes("4b777ba8de2ad776794366a13c73b00aba240bde06961d6ca47325bc4093d49b", expected, 32);

    struct spm_measurement m;
    spm_measure_ecreate(&m, 1, 0x2000);
    spm_measure_page(&m, 0, 0x100, true, zero);
    spm_measure_page(&m, 0x1000, 0x203, true, pattern);
    spm_measure_final(&m, got);
    assert_memory_equal(got, expected, 32);

    /* The same through the record-level calls. */
    spm_measure_ecreate(&m, 1, 0x2000);
    spm_measure_eadd(&m, 0, 0x100);
    for (unsigned c = 0; c < 4096; c += 256)
        spm_measure_eextend(&m, c, zero + c);
    spm_measure_eadd(&m, 0x1000, 0x203);
    for (unsigned c = 0; c < 4096; c += 256)
        spm_measure_eextend(&m, 0x1000 + c, pattern + c);
    spm_measure_final(&m, got);
    assert_memory_equal(got, expected, 32);

    /* An unmeasured page contributes its EADD only: differs from measured. */
    spm_measure_ecreate(&m, 1, 0x2000);
    spm_measure_page(&m, 0, 0x100, true, zero);
    spm_measure_page(&m, 0x1000, 0x203, false, pattern);
    spm_measure_final(&m, got);
    assert_memory_not_equal(got, expected, 32);
}

/* Independent MRENCLAVE: raw records built here, hashed with OpenSSL. */
struct raw_measure {
    EVP_MD_CTX *sha;
    uint64_t pages, measured_pages;
};

static int raw_page(void *ctx, uint64_t offset, uint64_t flags, bool measured,
                    const uint8_t *content)
{
    struct raw_measure *r = ctx;
    uint8_t block[64] = {'E', 'A', 'D', 'D'};
    memcpy(block + 8, &offset, 8);
    memcpy(block + 16, &flags, 8);
    EVP_DigestUpdate(r->sha, block, 64);
    r->pages++;
    if (!measured)
        return 0;
    r->measured_pages++;
    for (uint64_t c = 0; c < 4096; c += 256) {
        uint8_t ext[64] = {'E', 'E', 'X', 'T', 'E', 'N', 'D'};
        uint64_t at = offset + c;
        memcpy(ext + 8, &at, 8);
        EVP_DigestUpdate(r->sha, ext, 64);
        EVP_DigestUpdate(r->sha, content + c, 256);
    }
    return 0;
}

static void raw_mrenclave(const struct spm_elf_image *img, const struct spm_layout *layout,
                          uint8_t out[32], struct raw_measure *r)
{
    uint8_t block[64] = {'E', 'C', 'R', 'E', 'A', 'T', 'E'};
    uint32_t ssa = layout->info.ssa_frame_pages;
    uint64_t size = layout->info.elrange_size;
    memcpy(block + 8, &ssa, 4);
    memcpy(block + 12, &size, 8);
    memset(r, 0, sizeof(*r));
    r->sha = EVP_MD_CTX_new();
    assert_non_null(r->sha);
    assert_int_equal(EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL), 1);
    EVP_DigestUpdate(r->sha, block, 64);
    assert_int_equal(spm_layout_for_each_page(img, layout, raw_page, r), 0);
    assert_int_equal(EVP_DigestFinal_ex(r->sha, out, NULL), 1);
    EVP_MD_CTX_free(r->sha);
    r->sha = NULL;
}

static struct spm_enclave_config known_config(void)
{
    return (struct spm_enclave_config){
        .heap_size = 64 << 10,
        .stack_size = 16 << 10,
        .tcs_count = 3,
        .ssa_frame_pages = 2,
        .ssa_frame_count = 3,
        .attributes_flags = SGX_FLAGS_MODE64BIT,
        .attributes_xfrm = SGX_XFRM_LEGACY,
    };
}

static void test_measure_matches_raw_records(void **state)
{
    (void)state;
    struct spm_elf_image img;
    assert_int_equal(spm_elf_load(g_enclave_path, &img), 0);
    struct spm_enclave_config config = known_config();
    struct spm_layout layout;
    assert_int_equal(spm_layout_compute(&img, &config, &layout), 0);
    uint8_t ours[32], theirs[32];
    struct raw_measure r;
    assert_int_equal(spm_image_measure(&img, &layout, ours), 0);
    raw_mrenclave(&img, &layout, theirs, &r);
    assert_memory_equal(ours, theirs, 32);
    spm_elf_free(&img);
}

/* Everything the layout comment in enclave_abi.h promises, page by page. */
struct page_log {
    uint64_t count;
    uint64_t offsets[4096];
    uint64_t flags[4096];
    bool measured[4096];
    uint8_t (*content)[4096];
};

static int log_page(void *ctx, uint64_t offset, uint64_t flags, bool measured,
                    const uint8_t *content)
{
    struct page_log *l = ctx;
    assert_non_null(content);
    assert_true(l->count < 4096);
    l->offsets[l->count] = offset;
    l->flags[l->count] = flags;
    l->measured[l->count] = measured;
    memcpy(l->content[l->count], content, 4096);
    l->count++;
    return 0;
}

static struct page_log *new_page_log(void)
{
    struct page_log *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->content = calloc(4096, 4096);
    assert_non_null(l->content);
    return l;
}

static void free_page_log(struct page_log *l)
{
    free(l->content);
    free(l);
}

static int64_t find_page(const struct page_log *l, uint64_t offset)
{
    for (uint64_t i = 0; i < l->count; i++)
        if (l->offsets[i] == offset)
            return (int64_t)i;
    return -1;
}

static bool all_zero(const uint8_t *p, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (p[i])
            return false;
    return true;
}

static void test_layout_known_config(void **state)
{
    (void)state;
    const uint64_t P = 4096;
    struct spm_elf_image img;
    assert_int_equal(spm_elf_load(g_enclave_path, &img), 0);
    struct spm_enclave_config config = known_config();
    struct spm_layout layout;
    assert_int_equal(spm_layout_compute(&img, &config, &layout), 0);
    const struct spm_layout_info *info = &layout.info;

    const struct spm_elf_segment *top = &img.segments[img.segment_count - 1];
    uint64_t S = (top->vaddr + top->memsz + P - 1) / P * P;
    uint64_t stride = P + (16 << 10) + P + P + 2 * 3 * P;
    /* info page, two incarnation pages (DRBG and checkpoint engine; the run
     * list), 64 KiB of heap. Written out, not derived from the header, so
     * that a change of the layout has to change this test too. */
    _Static_assert(SPM_INCARNATION_PAGES == 2, "the known answers below assume two pages");
    uint64_t threads = S + P + 2 * P + (64 << 10);
    uint64_t end = threads + 3 * stride;
    assert_int_equal(info->magic, SPM_LAYOUT_MAGIC);
    assert_int_equal(info->version, SPM_LAYOUT_VERSION);
    assert_int_equal(info->image_size, S);
    assert_int_equal(info->info_offset, S);
    assert_int_equal(info->incarnation_offset, S + P);
    assert_int_equal(info->incarnation_size, SPM_INCARNATION_PAGES * P);
    assert_int_equal(info->heap_offset, S + 3 * P);
    assert_int_equal(info->heap_size, 64 << 10);
    assert_int_equal(info->thread_region_offset, threads);
    assert_int_equal(info->thread_region_stride, stride);
    assert_int_equal(info->stack_size, 16 << 10);
    assert_int_equal(info->tcs_count, 3);
    assert_int_equal(info->ssa_frame_pages, 2);
    assert_int_equal(info->ssa_frame_count, 3);
    assert_int_equal(layout.end, end);
    uint64_t elrange = P;
    while (elrange < end)
        elrange <<= 1;
    assert_int_equal(info->elrange_size, elrange);
    assert_true(all_zero((const uint8_t *)info->reserved, sizeof(info->reserved)));

    struct page_log *l = new_page_log();
    assert_int_equal(spm_layout_for_each_page(&img, &layout, log_page, l), 0);
    for (uint64_t i = 1; i < l->count; i++)
        assert_true(l->offsets[i] > l->offsets[i - 1]); /* ascending, no duplicates */

    /* Image pages: measured, REG, permissions from the segments covering them. */
    uint64_t image_pages = 0;
    for (uint64_t off = 0; off < S; off += P) {
        uint64_t perms = 0;
        bool covered = false;
        for (uint32_t s = 0; s < img.segment_count; s++) {
            const struct spm_elf_segment *seg = &img.segments[s];
            if (seg->vaddr < off + P && off < seg->vaddr + seg->memsz) {
                covered = true;
                perms |= ((seg->flags & PF_R) ? 1 : 0) | ((seg->flags & PF_W) ? 2 : 0) |
                         ((seg->flags & PF_X) ? 4 : 0);
            }
        }
        int64_t i = find_page(l, off);
        assert_int_equal(i >= 0, covered);
        if (!covered)
            continue;
        image_pages++;
        assert_true(l->measured[i]);
        assert_int_equal(l->flags[i], SGX_SECINFO_REG | perms);
    }
    /* The entry point's bytes are the file's. */
    int64_t ei = find_page(l, img.entry / P * P);
    assert_true(ei >= 0);
    for (uint32_t s = 0; s < img.segment_count; s++) {
        const struct spm_elf_segment *seg = &img.segments[s];
        if (img.entry >= seg->vaddr && img.entry < seg->vaddr + seg->filesz)
            assert_memory_equal(&l->content[ei][img.entry % P],
                                img.file + seg->offset + (img.entry - seg->vaddr), 8);
    }

    int64_t i = find_page(l, S);
    assert_true(i >= 0 && l->measured[i]);
    assert_int_equal(l->flags[i], SGX_SECINFO_REG | SGX_SECINFO_R);
    assert_memory_equal(l->content[i], info, sizeof(*info));
    assert_true(all_zero(l->content[i] + sizeof(*info), P - sizeof(*info)));

    for (uint64_t off = S + P; off < S + 3 * P; off += P) { /* incarnation */
        i = find_page(l, off);
        assert_true(i >= 0 && !l->measured[i]);
        assert_int_equal(l->flags[i], SGX_SECINFO_REG | SGX_SECINFO_R | SGX_SECINFO_W);
        assert_true(all_zero(l->content[i], P));
    }
    for (uint64_t off = S + 3 * P; off < threads; off += P) { /* heap */
        i = find_page(l, off);
        assert_true(i >= 0 && !l->measured[i]);
        assert_int_equal(l->flags[i], SGX_SECINFO_REG | SGX_SECINFO_R | SGX_SECINFO_W);
        assert_true(all_zero(l->content[i], P));
    }

    for (uint32_t t = 0; t < 3; t++) {
        uint64_t region = threads + t * stride;
        uint64_t stack = region + P, td = stack + (16 << 10), tcs = td + P, ssa = tcs + P;
        assert_int_equal(find_page(l, region), -1); /* guard */
        for (uint64_t off = stack; off < td; off += P) {
            i = find_page(l, off);
            assert_true(i >= 0 && !l->measured[i]);
            assert_int_equal(l->flags[i], SGX_SECINFO_REG | SGX_SECINFO_R | SGX_SECINFO_W);
        }
        i = find_page(l, td);
        assert_true(i >= 0 && l->measured[i]);
        assert_int_equal(l->flags[i], SGX_SECINFO_REG | SGX_SECINFO_R | SGX_SECINFO_W);
        struct spm_thread_data data;
        memcpy(&data, l->content[i], sizeof(data));
        assert_int_equal(data.self_offset, td);
        assert_int_equal(data.stack_top_offset, td);
        assert_int_equal(data.stack_limit_offset, stack);
        assert_int_equal(data.tcs_offset, tcs);
        assert_int_equal(data.tcs_index, t);
        assert_true(all_zero(l->content[i] + 40, P - 40));

        i = find_page(l, tcs);
        assert_true(i >= 0 && l->measured[i]);
        assert_int_equal(l->flags[i], SGX_SECINFO_TCS);
        struct sgx_tcs tc;
        memcpy(&tc, l->content[i], sizeof(tc));
        assert_int_equal(tc.state, 0);
        assert_int_equal(tc.flags, 0);
        assert_int_equal(tc.ossa, ssa);
        assert_int_equal(tc.cssa, 0);
        assert_int_equal(tc.nssa, 3);
        assert_int_equal(tc.oentry, img.entry);
        assert_int_equal(tc.aep, 0);
        assert_int_equal(tc.ofs_base, td);
        assert_int_equal(tc.ogs_base, td);
        assert_int_equal(tc.fs_limit, 0xffffffffu);
        assert_int_equal(tc.gs_limit, 0xffffffffu);
        assert_true(all_zero(tc.reserved, sizeof(tc.reserved)));

        for (uint64_t off = ssa; off < ssa + 6 * P; off += P) {
            i = find_page(l, off);
            assert_true(i >= 0 && !l->measured[i]);
            assert_int_equal(l->flags[i], SGX_SECINFO_REG | SGX_SECINFO_R | SGX_SECINFO_W);
        }
        assert_true(region + stride == ssa + 6 * P);
    }
    uint64_t per_thread = (16 << 10) / P + 1 + 1 + 6;
    /* image, info page, 2 incarnation pages, 16 heap pages, the threads */
    assert_int_equal(l->count, image_pages + 1 + 2 + 16 + 3 * per_thread);
    assert_int_equal(l->offsets[l->count - 1], end - P);

    /* An explicit ELRANGE: kept if big enough, refused if not. */
    config.elrange_size = elrange * 4;
    assert_int_equal(spm_layout_compute(&img, &config, &layout), 0);
    assert_int_equal(layout.info.elrange_size, elrange * 4);
    config.elrange_size = elrange / 2;
    tu_capture_begin();
    assert_int_equal(spm_layout_compute(&img, &config, &layout), -EINVAL);
    char *log = tu_capture_end();
    assert_non_null(strstr(log, "too small"));
    free(log);
    free_page_log(l);
    spm_elf_free(&img);
}

/* Segments sharing a page: union of permissions, each segment's own file
 * bytes only, zero past p_filesz, gaps between segments not added. */
static void test_layout_shared_and_gap_pages(void **state)
{
    (void)state;
    const struct tu_segment segs[] = {
        {.vaddr = 0, .offset = 0, .filesz = 0x1000, .memsz = 0x1000, .flags = PF_R | PF_X},
        /* page 0x1000: gap */
        {.vaddr = 0x2000, .offset = 0x1000, .filesz = 0x100, .memsz = 0x900, .flags = PF_R},
        {.vaddr = 0x2a00, .offset = 0x2a00, .filesz = 0x200, .memsz = 0x1000, .flags = PF_R | PF_W},
    };
    size_t size;
    uint8_t *file = tu_build_elf(segs, 3, 0x100, &size);
    struct spm_elf_image img;
    assert_int_equal(spm_elf_parse(file, size, &img), 0);
    assert_int_equal(img.image_size, 0x4000);
    struct spm_enclave_config config = known_config();
    struct spm_layout layout;
    assert_int_equal(spm_layout_compute(&img, &config, &layout), 0);
    struct page_log *l = new_page_log();
    assert_int_equal(spm_layout_for_each_page(&img, &layout, log_page, l), 0);

    assert_int_equal(l->offsets[0], 0);
    assert_int_equal(l->flags[0], SGX_SECINFO_REG | SGX_SECINFO_R | SGX_SECINFO_X);
    assert_memory_equal(l->content[0] + 0x100, file + 0x100, 0xf00);
    assert_int_equal(find_page(l, 0x1000), -1);

    int64_t i = find_page(l, 0x2000);
    assert_true(i == 1 && l->measured[i]);
    assert_int_equal(l->flags[i], SGX_SECINFO_REG | SGX_SECINFO_R | SGX_SECINFO_W);
    uint8_t expect[4096] = {0};
    memcpy(expect, file + 0x1000, 0x100);
    memcpy(expect + 0xa00, file + 0x2a00, 0x200);
    assert_memory_equal(l->content[i], expect, 4096);

    i = find_page(l, 0x3000);
    assert_true(i == 2);
    assert_int_equal(l->flags[i], SGX_SECINFO_REG | SGX_SECINFO_R | SGX_SECINFO_W);
    assert_true(all_zero(l->content[i], 4096));
    assert_int_equal(l->offsets[3], layout.info.info_offset);
    free_page_log(l);
    spm_elf_free(&img);
    free(file);
}

static void expect_bad_config(const struct spm_elf_image *img, struct spm_enclave_config config,
                              const char *reason)
{
    struct spm_layout layout;
    tu_capture_begin();
    int ret = spm_layout_compute(img, &config, &layout);
    char *log = tu_capture_end();
    if (ret != -EINVAL || !strstr(log, reason))
        fail_msg("config should be refused for '%s': got %d, log: %s", reason, ret, log);
    free(log);
}

static void test_layout_config_refusals(void **state)
{
    (void)state;
    struct spm_elf_image img;
    assert_int_equal(spm_elf_load(g_enclave_path, &img), 0);
    struct spm_enclave_config c;
#define BAD(field, value, reason)                                                                  \
    do {                                                                                           \
        c = known_config();                                                                        \
        c.field = value;                                                                           \
        expect_bad_config(&img, c, reason);                                                        \
    } while (0)
    BAD(heap_size, 0, "heap_size");
    BAD(heap_size, 4097, "heap_size");
    BAD(stack_size, 4096, "stack_size");
    BAD(stack_size, 3 * 4096 + 1, "stack_size");
    BAD(tcs_count, 0, "tcs_count");
    BAD(tcs_count, 257, "tcs_count");
    BAD(ssa_frame_pages, 0, "ssa_frame_pages");
    BAD(ssa_frame_pages, 17, "ssa_frame_pages");
    BAD(ssa_frame_count, 0, "ssa_frame_count");
    BAD(ssa_frame_count, 9, "ssa_frame_count");
    BAD(elrange_size, 3ull << 20, "elrange_size");
    BAD(elrange_size, 128ull << 30, "elrange_size");
    BAD(heap_size, 0xfffffffffffff000ull, "64 GiB");
    BAD(heap_size, 64ull << 30, "64 GiB");
    BAD(stack_size, 1ull << 40, "64 GiB");
    BAD(reserved[3], 1, "reserved");
#undef BAD
    /* The limits themselves are accepted. */
    c = known_config();
    c.tcs_count = 256;
    c.ssa_frame_pages = 16;
    c.ssa_frame_count = 8;
    c.stack_size = 2 * 4096;
    c.heap_size = 4096;
    struct spm_layout layout;
    assert_int_equal(spm_layout_compute(&img, &c, &layout), 0);
    spm_elf_free(&img);
}

static void test_measure_large_heap_is_fast(void **state)
{
    (void)state;
    struct spm_elf_image img;
    assert_int_equal(spm_elf_load(g_enclave_path, &img), 0);
    struct spm_enclave_config config = known_config();
    config.heap_size = 256ull << 20;
    config.tcs_count = 4;
    config.stack_size = 256 << 10;
    struct spm_layout layout;
    assert_int_equal(spm_layout_compute(&img, &config, &layout), 0);
    uint8_t mrenclave[32], again[32];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(spm_image_measure(&img, &layout, mrenclave), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    printf("# spm_image_measure, 256 MiB heap (%llu pages): %.2f ms\n",
           (unsigned long long)(layout.end / 4096), ms);
    assert_true(ms < 1000.0); /* a few ms in practice; generous for loaded CI */
    struct raw_measure r;
    raw_mrenclave(&img, &layout, again, &r);
    assert_memory_equal(mrenclave, again, 32);
    assert_true(r.pages > 65536);
    spm_elf_free(&img);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ENCLAVE_FIXTURE\n", argv[0]);
        return 2;
    }
    g_enclave_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mrenclave_vector),
        cmocka_unit_test(test_measure_matches_raw_records),
        cmocka_unit_test(test_layout_known_config),
        cmocka_unit_test(test_layout_shared_and_gap_pages),
        cmocka_unit_test(test_layout_config_refusals),
        cmocka_unit_test(test_measure_large_heap_is_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
