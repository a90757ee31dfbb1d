/* Signing and opening whole images: a signed fixture opens and reports the
 * MRENCLAVE/MRSIGNER it was signed with; signing touches only .spm_meta;
 * and flipping a byte anywhere in what is measured (sampled across every
 * PT_LOAD's file bytes), anywhere in the SIGSTRUCT (every byte) or in the
 * metadata header and config (every byte) makes spm_image_open_signed fail.
 * argv[1] is the valid enclave fixture, argv[2] a hosted shared library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/image/image.h"
#include "host/image/image_internal.h"
#include "test_util.h"

static const char *g_enclave_path, *g_hosted_lib_path;

struct ctx {
    char *dir;
    char key[4096], other_key[4096], signed_path[4096];
    uint8_t mrenclave[32], mrsigner[32];
};

static struct spm_enclave_config small_config(void)
{
    return (struct spm_enclave_config){
        .heap_size = 64 << 10,
        .stack_size = 16 << 10,
        .tcs_count = 2,
        .ssa_frame_pages = 1,
        .ssa_frame_count = 2,
        .attributes_flags = SGX_FLAGS_MODE64BIT,
        .attributes_xfrm = SGX_XFRM_LEGACY,
        .isv_prod_id = 42,
        .isv_svn = 3,
    };
}

static int setup(void **state)
{
    static struct ctx c;
    c.dir = tu_mkdtemp();
    snprintf(c.key, sizeof(c.key), "%s/author.pem", c.dir);
    snprintf(c.other_key, sizeof(c.other_key), "%s/other.pem", c.dir);
    snprintf(c.signed_path, sizeof(c.signed_path), "%s/enclave.signed", c.dir);
    struct spm_enclave_config config = small_config();
    if (spm_keygen(c.key) || spm_keygen(c.other_key) ||
        spm_image_sign(g_enclave_path, c.key, &config, c.signed_path))
        return -1;
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    tu_rmdir(c->dir);
    free(c->dir);
    return 0;
}

static void test_sign_then_open(void **state)
{
    struct ctx *c = *state;
    struct spm_elf_image img;
    struct spm_layout layout;
    assert_int_equal(
        spm_image_open_signed(c->signed_path, &img, &layout, c->mrenclave, c->mrsigner), 0);
    const struct spm_image_meta *meta = &img.meta;
    assert_int_equal(meta->magic, SPM_META_MAGIC);
    assert_int_equal(meta->version, SPM_META_VERSION);
    assert_int_equal(meta->size, sizeof(*meta));
    assert_int_equal(meta->config.elrange_size, layout.info.elrange_size);
    assert_true(meta->config.elrange_size >= layout.end);
    assert_int_equal(meta->config.heap_size, 64 << 10);
    assert_int_equal(meta->config.isv_prod_id, 42);

    const struct sgx_sigstruct *sig = &meta->sigstruct;
    assert_memory_equal(sig->body.mr_enclave, c->mrenclave, 32);
    assert_int_equal(sig->body.isv_prod_id, 42);
    assert_int_equal(sig->body.isv_svn, 3);
    assert_int_equal(sig->body.attributes.flags, SGX_FLAGS_MODE64BIT);
    assert_int_equal(sig->body.attributes.xfrm, SGX_XFRM_LEGACY);
    assert_int_equal(sig->body.attribute_mask.flags, 0xFFFFFFFFFFFFFFFBull);
    assert_int_equal(sig->body.attribute_mask.xfrm, 0);
    assert_int_equal(sig->body.misc_mask, 0xFFFFFFFFu);

    uint8_t measured[32], key_mrsigner[32];
    assert_int_equal(spm_image_measure(&img, &layout, measured), 0);
    assert_memory_equal(measured, c->mrenclave, 32);
    assert_int_equal(spm_key_mrsigner(c->key, key_mrsigner), 0);
    assert_memory_equal(key_mrsigner, c->mrsigner, 32);

    /* The signed file is the input with only .spm_meta changed. */
    size_t in_size, out_size;
    uint8_t *in = tu_read(g_enclave_path, &in_size);
    uint8_t *out = tu_read(c->signed_path, &out_size);
    assert_int_equal(in_size, out_size);
    assert_memory_equal(in, out, img.meta_offset);
    size_t after = img.meta_offset + SPM_META_SECTION_SIZE;
    assert_memory_equal(in + after, out + after, in_size - after);
    free(in);
    free(out);
    spm_elf_free(&img);
}

static void test_identity_depends_on_the_right_inputs(void **state)
{
    struct ctx *c = *state;
    struct spm_enclave_config config = small_config();
    struct spm_elf_image img;
    struct spm_layout layout;
    uint8_t mre[32], mrs[32];
    const char *out = tu_path(c->dir, "variant.signed");

    /* Another author: same MRENCLAVE, different MRSIGNER. */
    assert_int_equal(spm_image_sign(g_enclave_path, c->other_key, &config, out), 0);
    assert_int_equal(spm_image_open_signed(out, &img, &layout, mre, mrs), 0);
    assert_memory_equal(mre, c->mrenclave, 32);
    assert_memory_not_equal(mrs, c->mrsigner, 32);
    spm_elf_free(&img);

    /* Heap size and thread count are measured; ISVSVN is not. */
    config.heap_size = 128 << 10;
    assert_int_equal(spm_image_sign(g_enclave_path, c->key, &config, out), 0);
    assert_int_equal(spm_image_open_signed(out, &img, &layout, mre, mrs), 0);
    assert_memory_not_equal(mre, c->mrenclave, 32);
    spm_elf_free(&img);
    config = small_config();
    config.tcs_count = 3;
    assert_int_equal(spm_image_sign(g_enclave_path, c->key, &config, out), 0);
    assert_int_equal(spm_image_open_signed(out, &img, &layout, mre, mrs), 0);
    assert_memory_not_equal(mre, c->mrenclave, 32);
    spm_elf_free(&img);
    config = small_config();
    config.isv_svn = 4;
    assert_int_equal(spm_image_sign(g_enclave_path, c->key, &config, out), 0);
    assert_int_equal(spm_image_open_signed(out, &img, &layout, mre, mrs), 0);
    assert_memory_equal(mre, c->mrenclave, 32);
    assert_int_equal(img.meta.sigstruct.body.isv_svn, 4);
    spm_elf_free(&img);

    /* A debug enclave carries DEBUG in config and SIGSTRUCT alike. */
    config = small_config();
    config.attributes_flags |= SGX_FLAGS_DEBUG;
    assert_int_equal(spm_image_sign(g_enclave_path, c->key, &config, out), 0);
    assert_int_equal(spm_image_open_signed(out, &img, &layout, mre, mrs), 0);
    assert_true(img.meta.sigstruct.body.attributes.flags & SGX_FLAGS_DEBUG);
    assert_true(img.meta.config.attributes_flags & SGX_FLAGS_DEBUG);
    spm_elf_free(&img);

    /* Re-signing a signed image is allowed and gives the same identity. */
    config = small_config();
    assert_int_equal(spm_image_sign(c->signed_path, c->key, &config, out), 0);
    assert_int_equal(spm_image_open_signed(out, &img, &layout, mre, mrs), 0);
    assert_memory_equal(mre, c->mrenclave, 32);
    spm_elf_free(&img);
}

static void test_reproducible_with_source_date_epoch(void **state)
{
    struct ctx *c = *state;
    struct spm_enclave_config config = small_config();
    const char *a = tu_path(c->dir, "a.signed"), *b = tu_path(c->dir, "b.signed");
    setenv("SOURCE_DATE_EPOCH", "1752451200", 1);
    assert_int_equal(spm_image_sign(g_enclave_path, c->key, &config, a), 0);
    assert_int_equal(spm_image_sign(g_enclave_path, c->key, &config, b), 0);
    unsetenv("SOURCE_DATE_EPOCH");
    size_t sa, sb;
    uint8_t *da = tu_read(a, &sa), *db = tu_read(b, &sb);
    assert_int_equal(sa, sb);
    assert_memory_equal(da, db, sa);
    struct spm_elf_image img;
    assert_int_equal(spm_elf_parse(da, sa, &img), 0);
    assert_int_equal(img.meta.sigstruct.header.date, 0x20250714);
    spm_elf_free(&img);
    free(da);
    free(db);
}

static void expect_sign_refused(struct ctx *c, const char *in, struct spm_enclave_config config,
                                int err, const char *reason)
{
    tu_capture_begin();
    int ret = spm_image_sign(in, c->key, &config, tu_path(c->dir, "refused.signed"));
    char *log = tu_capture_end();
    if (ret != err || !strstr(log, reason))
        fail_msg("expected %d mentioning '%s', got %d: %s", err, reason, ret, log);
    free(log);
    assert_int_equal(access(tu_path(c->dir, "refused.signed"), F_OK), -1);
}

static void test_sign_refusals(void **state)
{
    struct ctx *c = *state;
    struct spm_enclave_config config = small_config();
    config.attributes_flags = 0;
    expect_sign_refused(c, g_enclave_path, config, -EINVAL, "MODE64BIT");
    config = small_config();
    config.attributes_flags |= SGX_FLAGS_PROVISION_KEY;
    expect_sign_refused(c, g_enclave_path, config, -EINVAL, "may not request");
    config = small_config();
    config.attributes_flags |= SGX_FLAGS_INITTED;
    expect_sign_refused(c, g_enclave_path, config, -EINVAL, "may not request");
    config = small_config();
    config.attributes_xfrm = 0;
    expect_sign_refused(c, g_enclave_path, config, -EINVAL, "XFRM");
    config = small_config();
    config.tcs_count = 0;
    expect_sign_refused(c, g_enclave_path, config, -EINVAL, "tcs_count");
    expect_sign_refused(c, g_hosted_lib_path, small_config(), -EINVAL, "DT_NEEDED");
    expect_sign_refused(c, "/nonexistent.elf", small_config(), -ENOENT, "/nonexistent.elf");
}

static void test_unsigned_refused(void **state)
{
    (void)state;
    struct spm_elf_image img;
    struct spm_layout layout;
    uint8_t mre[32], mrs[32];
    tu_capture_begin();
    int ret = spm_image_open_signed(g_enclave_path, &img, &layout, mre, mrs);
    char *log = tu_capture_end();
    assert_int_equal(ret, -EINVAL);
    assert_non_null(strstr(log, "not signed"));
    free(log);
    assert_null(img.file);
}

/* Flips one bit at `pos` in the signed file, tries to open it, flips back. */
static int open_flipped(struct ctx *c, int fd, size_t pos, char **log)
{
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, (off_t)pos), 1);
    byte ^= 0x10;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)pos), 1);
    struct spm_elf_image img;
    struct spm_layout layout;
    uint8_t mre[32], mrs[32];
    tu_capture_begin();
    int ret = spm_image_open_signed(c->signed_path, &img, &layout, mre, mrs);
    char *captured = tu_capture_end();
    if (ret == 0)
        spm_elf_free(&img);
    if (log)
        *log = captured;
    else
        free(captured);
    byte ^= 0x10;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)pos), 1);
    return ret;
}

static void test_every_flip_rejected(void **state)
{
    struct ctx *c = *state;
    struct spm_elf_image img;
    assert_int_equal(spm_elf_load(c->signed_path, &img), 0);
    int fd = open(c->signed_path, O_RDWR);
    assert_true(fd >= 0);
    size_t tried = 0, rejected = 0;

    /* Measured bytes: ~97 samples per PT_LOAD, first and last included. */
    for (uint32_t s = 0; s < img.segment_count; s++) {
        const struct spm_elf_segment *seg = &img.segments[s];
        if (seg->filesz == 0)
            continue;
        uint64_t step = seg->filesz / 96 ? seg->filesz / 96 : 1;
        for (uint64_t at = 0; at < seg->filesz + step; at += step) {
            uint64_t pos = seg->offset + (at < seg->filesz ? at : seg->filesz - 1);
            tried++;
            if (open_flipped(c, fd, pos, NULL) < 0)
                rejected++;
            else
                fprintf(stderr, "PT_LOAD %u: flip at file offset %#llx not detected\n", s,
                        (unsigned long long)pos);
        }
    }
    size_t measured_tried = tried;

    /* The whole .spm_meta header, config and SIGSTRUCT: every byte. */
    size_t meta_bytes = 16 + sizeof(struct spm_enclave_config) + sizeof(struct sgx_sigstruct);
    for (size_t i = 0; i < meta_bytes; i++) {
        int ret = open_flipped(c, fd, img.meta_offset + i, NULL);
        tried++;
        if (ret < 0)
            rejected++;
        else
            fprintf(stderr, ".spm_meta byte %zu: flip not detected\n", i);
    }
    /* And a sample of the reserved tail. */
    for (size_t i = meta_bytes; i < SPM_META_SECTION_SIZE; i += 61) {
        tried++;
        if (open_flipped(c, fd, img.meta_offset + i, NULL) < 0)
            rejected++;
    }
    printf("# %zu flips in measured bytes, %zu in .spm_meta: %zu rejected\n", measured_tried,
           tried - measured_tried, rejected);
    assert_true(measured_tried >= img.segment_count * 50);
    assert_int_equal(rejected, tried);

    /* One measured flip gives the promised message. */
    char *log = NULL;
    assert_true(open_flipped(c, fd, img.segments[img.segment_count - 1].offset, &log) < 0);
    assert_non_null(strstr(log, "MRENCLAVE mismatch: image measures"));
    assert_non_null(strstr(log, c->signed_path));
    free(log);

    close(fd);
    spm_elf_free(&img);
    /* Everything was flipped back: still opens. */
    struct spm_layout layout;
    uint8_t mre[32], mrs[32];
    assert_int_equal(spm_image_open_signed(c->signed_path, &img, &layout, mre, mrs), 0);
    spm_elf_free(&img);
}

/* A SIGSTRUCT moved onto another image (valid signature, wrong enclave). */
static void test_transplanted_sigstruct_rejected(void **state)
{
    struct ctx *c = *state;
    struct spm_enclave_config config = small_config();
    config.heap_size = 128 << 10;
    const char *other = tu_path(c->dir, "bigger-heap.signed");
    assert_int_equal(spm_image_sign(g_enclave_path, c->key, &config, other), 0);
    size_t size_a, size_b;
    uint8_t *a = tu_read(c->signed_path, &size_a), *b = tu_read(other, &size_b);
    struct spm_elf_image img;
    assert_int_equal(spm_elf_parse(a, size_a, &img), 0);
    size_t sig_at = img.meta_offset + offsetof(struct spm_image_meta, sigstruct);
    spm_elf_free(&img);
    memcpy(b + sig_at, a + sig_at, sizeof(struct sgx_sigstruct));
    tu_write(other, b, size_b);

    struct spm_layout layout;
    uint8_t mre[32], mrs[32];
    tu_capture_begin();
    int ret = spm_image_open_signed(other, &img, &layout, mre, mrs);
    char *log = tu_capture_end();
    assert_int_equal(ret, -EINVAL);
    assert_non_null(strstr(log, "MRENCLAVE mismatch"));
    free(log);
    free(a);
    free(b);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ENCLAVE_FIXTURE HOSTED_LIB\n", argv[0]);
        return 2;
    }
    g_enclave_path = argv[1];
    g_hosted_lib_path = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_then_open),
        cmocka_unit_test(test_identity_depends_on_the_right_inputs),
        cmocka_unit_test(test_reproducible_with_source_date_epoch),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_unsigned_refused),
        cmocka_unit_test(test_every_flip_rejected),
        cmocka_unit_test(test_transplanted_sigstruct_rejected),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
