/* The enclave ELF validator (src/host/image/elf.c, spm_elf_parse), which
 * the signer, the loader and `spm inspect` run on a file anyone may have
 * written, then the ELRANGE layout walk (layout.c) the signer measures and
 * the loader adds pages by.
 *
 * Input: an ELF file.
 *
 * Checked, for an accepted file: the private copy equals the input; every
 * PT_LOAD's file bytes lie inside the file, p_filesz <= p_memsz, the
 * segments start at 0, ascend without overlap, fit a 64 GiB ELRANGE and
 * are never W+X; image_size is the page-rounded end of the last one; the
 * entry point is inside an executable segment's file bytes; .spm_meta lies
 * inside the file, outside every segment's file bytes, and img.meta is a
 * copy of it. A second parse gives the same result. Then, with a small
 * fixed config and an image of at most 16 MiB (bigger images are valid
 * but walking them costs seconds): the layout fits its ELRANGE, the page
 * walk visits page-aligned offsets inside it in strictly ascending order
 * (EADD refuses a page added twice), image pages carry no permission
 * their segments lack and the measurement is deterministic. The
 * seeds are the test fixture enclave, stripped, before and after `spm
 * sign` (fuzz/image/make-seeds.sh). */
#include <assert.h>
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "quiet_log.h"

#define PAGE           SGX_PAGE_SIZE
#define WALK_MAX_IMAGE (16ull << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    return 0;
}

static void check_image(const struct spm_elf_image *img, const uint8_t *data, size_t size)
{
    assert(img->file_size == size && memcmp(img->file, data, size) == 0);
    assert(img->segment_count >= 1 && img->segment_count <= SPM_ELF_MAX_SEGMENTS);
    assert(img->segments[0].vaddr == 0);
    bool entry_ok = false;
    for (uint32_t i = 0; i < img->segment_count; i++) {
        const struct spm_elf_segment *s = &img->segments[i];
        assert(s->offset <= size && s->filesz <= size - s->offset);
        assert(s->memsz > 0 && s->filesz <= s->memsz);
        assert(s->vaddr + s->memsz > s->vaddr && s->vaddr + s->memsz <= (64ull << 30));
        assert(!((s->flags & PF_W) && (s->flags & PF_X)));
        assert((s->flags & ~(uint32_t)(PF_R | PF_W | PF_X)) == 0);
        if (i > 0)
            assert(s->vaddr >= img->segments[i - 1].vaddr + img->segments[i - 1].memsz);
        if ((s->flags & PF_X) && img->entry >= s->vaddr && img->entry - s->vaddr < s->filesz)
            entry_ok = true;
        /* The meta section is rewritten by signing: never measured bytes. */
        assert(img->meta_offset >= s->offset + s->filesz ||
               img->meta_offset + SPM_META_SECTION_SIZE <= s->offset || s->filesz == 0);
    }
    assert(entry_ok);
    const struct spm_elf_segment *top = &img->segments[img->segment_count - 1];
    assert(img->image_size % PAGE == 0 && img->image_size >= top->vaddr + top->memsz &&
           img->image_size - (top->vaddr + top->memsz) < PAGE);
    assert(img->meta_offset <= size && SPM_META_SECTION_SIZE <= size - img->meta_offset);
    assert(memcmp(&img->meta, data + img->meta_offset, sizeof(img->meta)) == 0);
}

struct walk {
    const struct spm_elf_image *img;
    const struct spm_layout *layout;
    uint64_t next; /* lowest offset the next page may have */
    uint32_t pages;
};

/* SECINFO permissions of the segments overlapping image page `off`. */
static uint64_t image_page_perms(const struct spm_elf_image *img, uint64_t off)
{
    uint64_t perms = 0;
    for (uint32_t i = 0; i < img->segment_count; i++) {
        const struct spm_elf_segment *s = &img->segments[i];
        if (s->vaddr < off + PAGE && s->vaddr + s->memsz > off)
            perms |= ((s->flags & PF_R) ? SGX_SECINFO_R : 0) |
                     ((s->flags & PF_W) ? SGX_SECINFO_W : 0) |
                     ((s->flags & PF_X) ? SGX_SECINFO_X : 0);
    }
    return perms;
}

static int visit_page(void *ctx, uint64_t offset, uint64_t secinfo_flags, bool measured,
                      const uint8_t *content)
{
    struct walk *w = ctx;
    assert(content);
    assert(offset % PAGE == 0 && offset >= w->next);
    assert(offset < w->layout->end && w->layout->end <= w->layout->info.elrange_size);
    w->next = offset + PAGE;
    w->pages++;
    if (offset < w->img->image_size) {
        assert(measured);
        uint64_t perms = secinfo_flags & (SGX_SECINFO_R | SGX_SECINFO_W | SGX_SECINFO_X);
        assert((perms & ~image_page_perms(w->img, offset)) == 0);
    }
    return 0;
}

static void walk_layout(const struct spm_elf_image *img)
{
    if (img->image_size > WALK_MAX_IMAGE)
        return;
    const struct spm_enclave_config config = {
        .heap_size = 2 * PAGE,
        .stack_size = 2 * PAGE,
        .tcs_count = 2,
        .ssa_frame_pages = 1,
        .ssa_frame_count = 1,
        .attributes_flags = SGX_FLAGS_MODE64BIT,
        .attributes_xfrm = SGX_XFRM_LEGACY,
    };
    struct spm_layout layout;
    int ret = spm_layout_compute(img, &config, &layout);
    assert(ret == 0); /* any accepted image fits a 64 GiB ELRANGE with this config */
    assert(layout.info.image_size == img->image_size);
    assert(layout.end <= layout.info.elrange_size);
    struct walk w = {.img = img, .layout = &layout};
    assert(spm_layout_for_each_page(img, &layout, visit_page, &w) == 0);
    assert(w.pages > 0);

    uint8_t mrenclave[32], again[32];
    assert(spm_image_measure(img, &layout, mrenclave) == 0);
    assert(spm_image_measure(img, &layout, again) == 0);
    assert(memcmp(mrenclave, again, sizeof(again)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spm_elf_image img, img2;
    int ret = spm_elf_parse(data, size, &img);
    assert(ret == 0 || ret == -EINVAL || ret == -EFBIG);
    if (ret < 0) {
        assert(img.file == NULL);
        return 0;
    }
    check_image(&img, data, size);

    assert(spm_elf_parse(data, size, &img2) == 0);
    assert(img2.entry == img.entry && img2.image_size == img.image_size &&
           img2.segment_count == img.segment_count && img2.meta_offset == img.meta_offset &&
           memcmp(img2.segments, img.segments, sizeof(img.segments)) == 0);
    spm_elf_free(&img2);

    walk_layout(&img);
    spm_elf_free(&img);
    return 0;
}
