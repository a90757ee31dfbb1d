/* The ELRANGE layout (see the comment in spm/abi/enclave_abi.h): from a
 * validated image and the author's config, where every page goes, with what
 * SECINFO and what initial content. The signer measures exactly the pages
 * the loader adds, because both walk them with spm_layout_for_each_page. */
#include "image.h"
#include "image_internal.h"
#include "host/common/log.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PAGE SGX_PAGE_SIZE

#define SPM_MAX_TCS_COUNT       256u
#define SPM_MAX_SSA_FRAME_PAGES 16u
#define SPM_MAX_SSA_FRAME_COUNT 8u

static const uint8_t zero_page[SGX_PAGE_SIZE];

static int bad_config(const char *fmt, unsigned long long value, const char *hint)
    __attribute__((format(printf, 1, 0)));

static int bad_config(const char *fmt, unsigned long long value, const char *hint)
{
    char what[160];
    snprintf(what, sizeof(what), fmt, value);
    spm_error("enclave config: %s%s", what, hint);
    return -EINVAL;
}

static int check_config(const struct spm_enclave_config *c)
{
    if (c->heap_size == 0 || c->heap_size % PAGE)
        return bad_config("heap_size %#llx", c->heap_size,
                          " must be a non-zero multiple of 4096 bytes");
    if (c->stack_size < 2 * PAGE || c->stack_size % PAGE)
        return bad_config("stack_size %#llx", c->stack_size,
                          " must be a multiple of 4096 bytes and at least 2 pages");
    if (c->tcs_count < 1 || c->tcs_count > SPM_MAX_TCS_COUNT)
        return bad_config("tcs_count %llu", c->tcs_count, " must be between 1 and 256");
    if (c->ssa_frame_pages < 1 || c->ssa_frame_pages > SPM_MAX_SSA_FRAME_PAGES)
        return bad_config("ssa_frame_pages %llu", c->ssa_frame_pages, " must be between 1 and 16");
    if (c->ssa_frame_count < 1 || c->ssa_frame_count > SPM_MAX_SSA_FRAME_COUNT)
        return bad_config("ssa_frame_count %llu", c->ssa_frame_count, " must be between 1 and 8");
    if (c->elrange_size != 0 &&
        (!img_is_pow2(c->elrange_size) || c->elrange_size > SPM_ELRANGE_MAX_SIZE))
        return bad_config("elrange_size %#llx", c->elrange_size,
                          " must be 0 (automatic) or a power of two of at most 64 GiB");
    for (size_t i = 0; i < sizeof(c->reserved); i++)
        if (c->reserved[i])
            return bad_config("reserved byte %llu is not zero", i, "");
    return 0;
}

int spm_layout_compute(const struct spm_elf_image *img, const struct spm_enclave_config *config,
                       struct spm_layout *layout)
{
    memset(layout, 0, sizeof(*layout));
    int ret = check_config(config);
    if (ret < 0)
        return ret;
    if (img->image_size == 0 || img->image_size % PAGE || img->image_size > SPM_ELRANGE_MAX_SIZE)
        return bad_config("image size %#llx", img->image_size, " is not a valid enclave image");

    struct spm_layout_info *info = &layout->info;
    info->magic = SPM_LAYOUT_MAGIC;
    info->version = SPM_LAYOUT_VERSION;
    info->tcs_count = config->tcs_count;
    info->image_size = img->image_size;
    info->info_offset = img->image_size;
    info->incarnation_offset = info->info_offset + PAGE;
    info->incarnation_size = SPM_INCARNATION_PAGES * PAGE;
    info->heap_offset = info->incarnation_offset + info->incarnation_size;
    info->heap_size = config->heap_size;
    info->stack_size = config->stack_size;
    info->ssa_frame_pages = config->ssa_frame_pages;
    info->ssa_frame_count = config->ssa_frame_count;

    /* guard + stack + thread data + TCS + SSA frames; all operands are small
     * except heap_size and stack_size, hence the checked arithmetic. */
    uint64_t ssa_size = (uint64_t)config->ssa_frame_pages * config->ssa_frame_count * PAGE;
    uint64_t threads_offset, stride, threads, end;
    if (img_add_overflow(info->heap_offset, config->heap_size, &threads_offset) ||
        img_add_overflow(config->stack_size, 3 * PAGE + ssa_size, &stride) ||
        img_mul_overflow(stride, config->tcs_count, &threads) ||
        img_add_overflow(threads_offset, threads, &end) || end > SPM_ELRANGE_MAX_SIZE)
        return bad_config("layout end (heap %#llx", config->heap_size,
                          ", stacks and thread regions) exceeds the 64 GiB ELRANGE limit");
    info->thread_region_offset = threads_offset;
    info->thread_region_stride = stride;
    layout->end = end;

    uint64_t size = config->elrange_size;
    if (size == 0) {
        size = PAGE;
        while (size < end)
            size <<= 1; /* end <= 64 GiB: cannot overflow */
    } else if (size < end) {
        spm_error("enclave config: elrange_size %#llx is too small; the layout needs %#llx bytes "
                  "(use %#llx or 0 for automatic)",
                  (unsigned long long)size, (unsigned long long)end,
                  (unsigned long long)(1ull << (64 - __builtin_clzll(end - 1))));
        return -EINVAL;
    }
    info->elrange_size = size;
    return 0;
}

static uint64_t secinfo_perms(uint32_t p_flags)
{
    return ((p_flags & PF_R) ? SGX_SECINFO_R : 0) | ((p_flags & PF_W) ? SGX_SECINFO_W : 0) |
           ((p_flags & PF_X) ? SGX_SECINFO_X : 0);
}

/* Builds image page `off` into `page`; returns false for a gap page. */
static bool image_page(const struct spm_elf_image *img, uint64_t off, uint8_t page[SGX_PAGE_SIZE],
                       uint64_t *flags)
{
    bool covered = false;
    *flags = 0;
    for (uint32_t i = 0; i < img->segment_count; i++) {
        const struct spm_elf_segment *s = &img->segments[i];
        if (s->vaddr >= off + PAGE || s->vaddr + s->memsz <= off)
            continue;
        if (!covered)
            memset(page, 0, PAGE);
        covered = true;
        *flags |= secinfo_perms(s->flags);
        /* This segment's file bytes inside the page; the rest stays zero. */
        uint64_t lo = s->vaddr > off ? s->vaddr : off;
        uint64_t file_end = s->vaddr + s->filesz;
        uint64_t hi = file_end < off + PAGE ? file_end : off + PAGE;
        if (hi > lo)
            memcpy(page + (lo - off), img->file + s->offset + (lo - s->vaddr), hi - lo);
    }
    return covered;
}

/* Visits [off, off + size) as pages all alike. */
static int visit_range(uint64_t off, uint64_t size, uint64_t flags, spm_page_fn fn, void *ctx)
{
    for (uint64_t p = 0; p < size; p += PAGE) {
        int ret = fn(ctx, off + p, flags, false, zero_page);
        if (ret)
            return ret;
    }
    return 0;
}

struct spm_thread_offsets spm_layout_thread(const struct spm_layout_info *info, uint32_t index)
{
    struct spm_thread_offsets t;
    t.guard = info->thread_region_offset + (uint64_t)index * info->thread_region_stride;
    t.stack = t.guard + SPM_TR_STACK_OFFSET;
    t.thread_data = t.stack + info->stack_size;
    t.tcs = t.thread_data + PAGE;
    t.ssa = t.tcs + PAGE;
    return t;
}

int spm_layout_for_each_page(const struct spm_elf_image *img, const struct spm_layout *layout,
                             spm_page_fn fn, void *ctx)
{
    const struct spm_layout_info *info = &layout->info;
    const uint64_t reg_r = SGX_SECINFO_REG | SGX_SECINFO_R;
    const uint64_t reg_rw = SGX_SECINFO_REG | SGX_SECINFO_R | SGX_SECINFO_W;
    _Alignas(64) uint8_t page[SGX_PAGE_SIZE];
    uint64_t flags;
    int ret;

    for (uint64_t off = 0; off < info->image_size; off += PAGE) {
        if (!image_page(img, off, page, &flags))
            continue; /* a gap between segments is not added */
        if ((ret = fn(ctx, off, SGX_SECINFO_REG | flags, true, page)))
            return ret;
    }

    memset(page, 0, PAGE);
    memcpy(page, info, sizeof(*info));
    if ((ret = fn(ctx, info->info_offset, reg_r, true, page)))
        return ret;
    if ((ret = visit_range(info->incarnation_offset, info->incarnation_size, reg_rw, fn, ctx)) ||
        (ret = visit_range(info->heap_offset, info->heap_size, reg_rw, fn, ctx)))
        return ret;

    uint64_t ssa_size = (uint64_t)info->ssa_frame_pages * info->ssa_frame_count * PAGE;
    for (uint32_t i = 0; i < info->tcs_count; i++) {
        struct spm_thread_offsets t = spm_layout_thread(info, i);
        uint64_t stack = t.stack, td_off = t.thread_data, tcs_off = t.tcs, ssa = t.ssa;
        /* the guard page at t.guard is never added */
        if ((ret = visit_range(stack, info->stack_size, reg_rw, fn, ctx)))
            return ret;

        struct spm_thread_data td = {
            .self_offset = td_off,
            .stack_top_offset = td_off, /* the stack grows down from here */
            .stack_limit_offset = stack,
            .tcs_offset = tcs_off,
            .tcs_index = i,
        };
        memset(page, 0, PAGE);
        memcpy(page, &td, sizeof(td));
        if ((ret = fn(ctx, td_off, reg_rw, true, page)))
            return ret;

        struct sgx_tcs tcs = {
            .ossa = ssa,
            .nssa = info->ssa_frame_count,
            .oentry = img->entry,
            .ofs_base = td_off,
            .ogs_base = td_off,
            .fs_limit = 0xffffffffu,
            .gs_limit = 0xffffffffu,
        };
        _Static_assert(sizeof(tcs) == SGX_PAGE_SIZE, "TCS is one page");
        memcpy(page, &tcs, sizeof(tcs));
        if ((ret = fn(ctx, tcs_off, SGX_SECINFO_TCS, true, page)))
            return ret;

        if ((ret = visit_range(ssa, ssa_size, reg_rw, fn, ctx)))
            return ret;
    }
    return 0;
}
