/* The signed enclave image as the loader and `spm inspect` open it: the ELF
 * (spm_elf_parse), then .spm_meta's container (sign.c,
 * spm_image_check_metadata: magic, version, size, reserved bytes,
 * attributes policy, the layout its config describes, the SIGSTRUCT, and
 * config == SIGSTRUCT), and for `spm inspect` / spm_image_open_signed the
 * measurement too (spm_image_verify). The config is not signed, so an
 * attacker holding the file may rewrite it freely; only the measurement
 * catches a changed layout.
 *
 * Input: a signed enclave file.
 *
 * Checked, when the metadata is accepted: the layout fills exactly the
 * ELRANGE the config records and the image sits at its start; MRSIGNER is
 * SHA-256 of the SIGSTRUCT's modulus; attributes, MISCSELECT and ISV fields
 * equal the SIGSTRUCT's; the loader's page walk adds each page at most
 * once, inside ELRANGE. For an ELRANGE of at most 16 MiB (a rewritten
 * config may ask for 64 GiB, which is valid but takes seconds to measure),
 * spm_image_verify agrees with spm_image_check_metadata on layout and
 * MRSIGNER, and either accepts with MRENCLAVE == SIGSTRUCT.ENCLAVEHASH or
 * refuses the measurement alone (-EINVAL). The seeds are the test fixture
 * enclave signed by `spm sign` (fuzz/image/make-seeds.sh), so mutations of
 * everything but the signed SIGSTRUCT pass the signature check. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/crypto/hash.h"
#include "image/image.h"
#include "quiet_log.h"

#define PAGE             SGX_PAGE_SIZE
#define VERIFY_MAX_RANGE (16ull << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    return 0;
}

/* One bit per page of ELRANGE: a page added twice is a loader bug. */
struct added {
    uint8_t *bitmap;
    uint64_t pages;
};

static int add_page(void *ctx, uint64_t offset, uint64_t secinfo_flags, bool measured,
                    const uint8_t *content)
{
    (void)secinfo_flags;
    (void)measured;
    struct added *a = ctx;
    assert(content && offset % PAGE == 0 && offset / PAGE < a->pages);
    uint64_t page = offset / PAGE;
    assert(!(a->bitmap[page / 8] & (1u << (page % 8))));
    a->bitmap[page / 8] |= (uint8_t)(1u << (page % 8));
    return 0;
}

static void check_accepted(const struct spm_elf_image *img, const struct spm_layout *layout,
                           const uint8_t mrsigner[32])
{
    const struct spm_enclave_config *config = &img->meta.config;
    const struct sgx_sigstruct *sig = &img->meta.sigstruct;
    const struct spm_layout_info *info = &layout->info;
    assert(info->elrange_size == config->elrange_size);
    assert(info->image_size == img->image_size && info->info_offset == img->image_size);
    assert(layout->end <= info->elrange_size && info->tcs_count == config->tcs_count);
    uint8_t expect[32];
    spm_sha256(sig->modulus, SGX_MODULUS_SIZE, expect);
    assert(memcmp(expect, mrsigner, 32) == 0);
    assert(config->attributes_flags == sig->body.attributes.flags &&
           config->attributes_xfrm == sig->body.attributes.xfrm &&
           config->misc_select == sig->body.misc_select &&
           config->isv_prod_id == sig->body.isv_prod_id && config->isv_svn == sig->body.isv_svn);
    assert(config->attributes_flags & SGX_FLAGS_MODE64BIT);

    if (info->elrange_size > VERIFY_MAX_RANGE)
        return;
    struct added a = {.pages = info->elrange_size / PAGE};
    a.bitmap = calloc(a.pages / 8 + 1, 1);
    assert(a.bitmap);
    assert(spm_layout_for_each_page(img, layout, add_page, &a) == 0);
    free(a.bitmap);

    struct spm_layout layout2;
    uint8_t mrenclave[32], mrsigner2[32];
    int ret = spm_image_verify(img, "fuzzed image", &layout2, mrenclave, mrsigner2);
    assert(ret == 0 || ret == -EINVAL);
    assert(memcmp(&layout2, layout, sizeof(*layout)) == 0);
    assert(memcmp(mrsigner2, mrsigner, 32) == 0);
    if (ret == 0)
        assert(memcmp(mrenclave, sig->body.mr_enclave, 32) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spm_elf_image img;
    if (spm_elf_parse(data, size, &img) < 0)
        return 0;
    struct spm_layout layout;
    uint8_t mrsigner[32];
    int ret = spm_image_check_metadata(&img, "fuzzed image", &layout, mrsigner);
    assert(ret == 0 || ret == -EINVAL || ret == -EBADMSG || ret == -EKEYREJECTED);
    if (ret == 0)
        check_accepted(&img, &layout, mrsigner);
    spm_elf_free(&img);
    return 0;
}
