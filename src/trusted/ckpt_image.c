/* The checkpoint image format, apart from the engine that drives exports
 * and imports (ckpt.c), so that what an import parses can be fuzzed hosted:
 * see ckpt_image.h. */
#include "ckpt_image.h"

#include <errno.h>
#include <string.h>

#include "spm/trts.h"

#define PAGE SGX_PAGE_SIZE

/* ELF program headers, to find the writable image pages (no <elf.h>). */
#define PT_LOAD 1u
#define PF_W    2u
struct elf_ehdr {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct elf_phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

static uint64_t page_down(uint64_t v)
{
    return v & ~(uint64_t)(PAGE - 1);
}

static uint64_t page_up(uint64_t v)
{
    return (v + PAGE - 1) & ~(uint64_t)(PAGE - 1);
}

static bool all_zero(const uint8_t *p, size_t size)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < size; i++)
        acc |= p[i];
    return acc == 0;
}

uint64_t ckpt_thread_stack_offset(const struct spm_layout_info *l, uint32_t index)
{
    return l->thread_region_offset + (uint64_t)index * l->thread_region_stride +
           SPM_TR_STACK_OFFSET;
}

uint32_t ckpt_capturable_regions(const struct spm_layout_info *l, const uint8_t *ehdr,
                                 struct ckpt_region *out, uint32_t capacity)
{
    const struct elf_ehdr *eh = (const struct elf_ehdr *)ehdr;
    uint32_t n = 0;
    for (uint16_t i = 0; i < eh->phnum && n < capacity; i++) {
        const struct elf_phdr *ph =
            (const struct elf_phdr *)(ehdr + eh->phoff + (uint64_t)i * eh->phentsize);
        if (ph->type != PT_LOAD || !(ph->flags & PF_W) || ph->memsz == 0)
            continue;
        uint64_t start = page_down(ph->vaddr), end = page_up(ph->vaddr + ph->memsz);
        if (end > l->image_size)
            end = l->image_size;
        if (end > start)
            out[n++] = (struct ckpt_region){start, end - start, UINT32_MAX};
    }
    if (n < capacity)
        out[n++] = (struct ckpt_region){l->heap_offset, l->heap_size, UINT32_MAX};
    for (uint32_t t = 0; t < l->tcs_count && n < capacity; t++)
        out[n++] = (struct ckpt_region){ckpt_thread_stack_offset(l, t), l->stack_size + PAGE, t};
    return n;
}

int ckpt_compute_sizes(struct spm_ckpt_header *h, const struct spm_ckpt_run *runs)
{
    uint64_t payload = 0;
    for (uint32_t i = 0; i < h->run_count; i++) {
        if (payload + runs[i].size < payload)
            return -EINVAL;
        payload += runs[i].size;
    }
    uint64_t chunks = payload / h->chunk_size + (payload % h->chunk_size != 0);
    if (chunks > UINT32_MAX)
        return -EINVAL;
    uint64_t header_size =
        sizeof(struct spm_ckpt_header) + (uint64_t)h->run_count * sizeof(struct spm_ckpt_run);
    uint64_t image = header_size + chunks * SPM_CKPT_TAG_SIZE; /* both small */
    if (image + payload < image)
        return -EINVAL;
    h->payload_size = payload;
    h->chunk_count = (uint32_t)chunks;
    h->header_size = (uint32_t)header_size;
    h->image_size = image + payload;
    return 0;
}

int ckpt_read_header(const uint8_t *image, uint64_t buffer_size, struct spm_ckpt_header *h,
                     struct spm_ckpt_run *runs)
{
    if (buffer_size < sizeof(*h))
        return -EINVAL;
    memcpy(h, image, sizeof(*h));
    if (h->run_count > SPM_CKPT_MAX_RUNS ||
        h->header_size != sizeof(*h) + (uint64_t)h->run_count * sizeof(struct spm_ckpt_run) ||
        buffer_size < h->header_size)
        return -EINVAL;
    memcpy(runs, image + sizeof(*h), h->run_count * sizeof(runs[0]));
    return 0;
}

/* End of the capturable ranges that contain `offset`, walking across
 * adjacent ones; `offset` itself if none contains it. */
static uint64_t capturable_end(const struct ckpt_region *regions, uint32_t n, uint64_t offset)
{
    for (;;) {
        uint64_t end = offset;
        for (uint32_t i = 0; i < n; i++)
            if (offset >= regions[i].offset && offset < regions[i].offset + regions[i].size &&
                regions[i].offset + regions[i].size > end)
                end = regions[i].offset + regions[i].size;
        if (end == offset)
            return offset;
        offset = end;
    }
}

int ckpt_validate(const struct spm_ckpt_header *h, const struct spm_ckpt_run *runs,
                  uint64_t buffer_size, const struct ckpt_target *target)
{
    const struct spm_layout_info *l = target->layout;
    const struct ckpt_region *regions = target->regions;
    uint32_t n = target->region_count;
    if (h->magic != SPM_CKPT_MAGIC || h->version != SPM_CKPT_VERSION || h->reserved0 ||
        h->reserved1 || !all_zero(h->reserved, sizeof(h->reserved)))
        return -EINVAL;
    if (h->chunk_size % PAGE || h->chunk_size < SPM_CKPT_MIN_CHUNK_SIZE ||
        h->chunk_size > SPM_CKPT_MAX_CHUNK_SIZE)
        return -EINVAL;
    if (h->elrange_base != target->elrange_base || h->elrange_size != l->elrange_size ||
        h->tcs_count != l->tcs_count)
        return -EINVAL;
    uint64_t previous_end = 0;
    for (uint32_t i = 0; i < h->run_count; i++) {
        uint64_t offset = runs[i].offset, size = runs[i].size;
        if (size == 0 || offset % PAGE || size % PAGE || offset + size < offset ||
            offset + size > l->elrange_size || (i > 0 && offset < previous_end))
            return -EINVAL;
        previous_end = offset + size;
        /* Only pages a checkpoint captures: never code, the layout page,
         * the incarnation pages, TCS or SSA pages. */
        for (uint64_t at = offset; at < previous_end;) {
            uint64_t end = capturable_end(regions, n, at);
            if (end == at)
                return -EINVAL;
            at = end;
        }
    }
    /* A thread region comes whole (stack and thread data) or not at all. */
    for (uint32_t r = 0; r < n; r++) {
        if (regions[r].tcs == UINT32_MAX)
            continue;
        uint64_t lo = regions[r].offset, hi = lo + regions[r].size, covered = 0;
        for (uint32_t i = 0; i < h->run_count; i++) {
            uint64_t a = runs[i].offset > lo ? runs[i].offset : lo;
            uint64_t b = runs[i].offset + runs[i].size < hi ? runs[i].offset + runs[i].size : hi;
            if (b > a)
                covered += b - a;
        }
        if (covered != 0 && covered != regions[r].size)
            return -EINVAL;
    }
    struct spm_ckpt_header expect = *h;
    int ret = ckpt_compute_sizes(&expect, runs);
    if (ret < 0)
        return ret;
    if (expect.payload_size != h->payload_size || expect.chunk_count != h->chunk_count ||
        expect.header_size != h->header_size || expect.image_size != h->image_size ||
        h->image_size > buffer_size)
        return -EINVAL;
    return 0;
}

/* ---- Chunks ---- */

static void chunk_nonce(const struct spm_ckpt_header *h, uint32_t chunk, uint8_t nonce[12])
{
    memcpy(nonce, h->checkpoint_id, 8);
    nonce[8] = (uint8_t)(chunk >> 24);
    nonce[9] = (uint8_t)(chunk >> 16);
    nonce[10] = (uint8_t)(chunk >> 8);
    nonce[11] = (uint8_t)chunk;
}

static uint64_t chunk_tag_offset(const struct spm_ckpt_header *h, uint32_t index)
{
    return h->header_size + (uint64_t)index * SPM_CKPT_TAG_SIZE;
}

static uint64_t chunk_ciphertext_offset(const struct spm_ckpt_header *h, uint32_t index)
{
    return h->header_size + (uint64_t)h->chunk_count * SPM_CKPT_TAG_SIZE +
           (uint64_t)index * h->chunk_size;
}

/* Walks chunk `index` of the payload as pieces that are contiguous both in
 * ELRANGE and in the payload, in order. */
struct piece_walk {
    const struct spm_ckpt_run *runs;
    uint8_t *elrange;
    uint32_t run;
    uint64_t run_offset; /* into runs[run] */
    uint64_t left;       /* bytes of the chunk not yet visited */
};

static void walk_start(struct piece_walk *w, const struct ckpt_chunks *c, uint32_t index)
{
    const struct spm_ckpt_header *h = c->header;
    uint64_t start = (uint64_t)index * h->chunk_size;
    uint64_t left = h->payload_size - start;
    w->runs = c->runs;
    w->elrange = c->elrange;
    w->run = 0;
    w->left = left < h->chunk_size ? left : h->chunk_size;
    while (start >= w->runs[w->run].size) {
        start -= w->runs[w->run].size;
        w->run++;
    }
    w->run_offset = start;
}

/* Next piece: its address in ELRANGE and size; false when the chunk is done. */
static bool walk_next(struct piece_walk *w, uint8_t **address, uint64_t *size)
{
    if (w->left == 0)
        return false;
    if (w->run_offset == w->runs[w->run].size) {
        w->run++;
        w->run_offset = 0;
    }
    const struct spm_ckpt_run *r = &w->runs[w->run];
    uint64_t n = r->size - w->run_offset;
    if (n > w->left)
        n = w->left;
    *address = w->elrange + r->offset + w->run_offset;
    *size = n;
    w->run_offset += n;
    w->left -= n;
    return true;
}

void ckpt_encrypt_chunk(const struct ckpt_chunks *c, uint32_t index, uint8_t *image)
{
    const struct spm_ckpt_header *h = c->header;
    uint8_t nonce[12];
    chunk_nonce(h, index, nonce);
    struct tc_gcm_chunk gcm;
    tc_gcm_chunk_start(c->key, &gcm, nonce, c->digest, 32);
    uint8_t *out = image + chunk_ciphertext_offset(h, index);
    struct piece_walk w;
    walk_start(&w, c, index);
    uint8_t *piece;
    uint64_t size;
    while (walk_next(&w, &piece, &size)) {
        tc_gcm_chunk_encrypt(c->key, &gcm, piece, out, size);
        out += size;
    }
    uint8_t tag[16];
    tc_gcm_chunk_tag(c->key, &gcm, tag);
    memcpy(image + chunk_tag_offset(h, index), tag, sizeof(tag));
}

bool ckpt_verify_chunk(const struct ckpt_chunks *c, uint32_t index, const uint8_t *image)
{
    const struct spm_ckpt_header *h = c->header;
    uint8_t nonce[12], tag[16], want[16];
    chunk_nonce(h, index, nonce);
    memcpy(want, image + chunk_tag_offset(h, index), sizeof(want));
    struct tc_gcm_chunk gcm;
    tc_gcm_chunk_start(c->key, &gcm, nonce, c->digest, 32);
    const uint8_t *in = image + chunk_ciphertext_offset(h, index);
    struct piece_walk w;
    walk_start(&w, c, index);
    uint8_t *piece;
    uint64_t size;
    while (walk_next(&w, &piece, &size)) {
        tc_gcm_chunk_ghash_copy(c->key, &gcm, in, piece, size);
        in += size;
    }
    tc_gcm_chunk_tag(c->key, &gcm, tag);
    return spm_ct_equal(tag, want, sizeof(tag)) == 0;
}

void ckpt_decrypt_chunk(const struct ckpt_chunks *c, uint32_t index)
{
    uint8_t nonce[12];
    chunk_nonce(c->header, index, nonce);
    struct tc_gcm_chunk gcm;
    tc_gcm_chunk_start(c->key, &gcm, nonce, NULL, 0);
    struct piece_walk w;
    walk_start(&w, c, index);
    uint8_t *piece;
    uint64_t size;
    while (walk_next(&w, &piece, &size))
        tc_gcm_chunk_ctr(c->key, &gcm, piece, size);
    spm_wipe(&gcm, sizeof(gcm));
}
