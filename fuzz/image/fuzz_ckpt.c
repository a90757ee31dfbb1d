/* The checkpoint image as an importing enclave reads it
 * (src/trusted/ckpt_image.c, compiled hosted: what RESTORE_BEGIN,
 * RESTORE_VERIFY and RESTORE_DECRYPT run on the host's buffer), and the
 * host's own reading of its header (spm_urts_checkpoint_ref,
 * src/host/urts/checkpoint.c), which names the checkpoint to the ME.
 *
 * The enclave side is an enclave laid out by the host's spm_layout_compute
 * for a config the input picks, with a synthetic ELF header at offset 0 of
 * a heap buffer that stands for its ELRANGE (ckpt_capturable_regions reads
 * the program headers from there, as the engine reads __ehdr_start).
 *
 * Input:
 *   8 bytes   geometry and tampering:
 *             [0] TCS count 1..4 (bits 0-1), SSA frame pages 1..2 (bit 2)
 *             [1] heap pages 1..8 (bits 0-2), stack pages 2..5 (bits 3-4)
 *             [2] writable pages 1..4 (bits 0-1), split into two
 *                 adjacent PT_LOADs (bit 2), their start's offset in
 *                 its page (bits 4-7, in 256-byte steps)
 *             [3] what to tamper with after encryption (below)
 *             [4..7] where (little-endian, modulo the range tampered)
 *   the image's header and run list, as the host would hand them in
 *   the rest: plaintext, repeated to fill every captured page
 *
 * Chunks are AES-256-GCM tagged, so bytes the fuzzer wrote as tags or
 * ciphertext would never pass, and the decryption and everything after the
 * tag check would go unfuzzed. So the harness does what an exporting
 * enclave does: it validates the header and runs from the input (through
 * ckpt_read_header and ckpt_validate, on a buffer of exactly the size the
 * header claims, so ASan sees any read past it), fills the captured pages
 * with the plaintext, and encrypts every chunk with the engine's own
 * ckpt_encrypt_chunk under a harness key; then it imports the result with
 * ckpt_verify_chunk and ckpt_decrypt_chunk into a second ELRANGE.
 *
 * Checked, for a header the import accepts: every run page is one the
 * layout lets a checkpoint hold (writable image pages, heap, a TCS's stack
 * and thread data, each thread region whole), computed here independently;
 * the sizes add up; the host accepts the header too and names it with the
 * digest the enclave uses as AAD. Untampered, every chunk verifies and the
 * import reproduces exactly the captured pages and writes nothing else.
 * Tampering ([3] modulo 5): 1 flips a bit of one tag, 2 of one
 * ciphertext byte: exactly that chunk is refused; 3 flips a bit of the
 * header or runs: the import refuses the header, or every chunk; 4 hands
 * the import a buffer one byte short: refused. */
#include <assert.h>
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_image.h"
#include "crypto/crypto.h"
#include "image/image.h"
#include "spm/abi/me_abi.h"
#include "urts/checkpoint.h"

#define PAGE SGX_PAGE_SIZE
/* The base every header of the corpus names (any page-aligned value: the
 * harness's ELRANGE buffers are elsewhere, ckpt_chunks.elrange says where). */
#define HARNESS_BASE 0x7f0000000000ull
#define PREFIX_SIZE  8u
/* An image the harness builds is at most this big (ELRANGE is < 1 MiB). */
#define MAX_IMAGE_SIZE (4u << 20)

enum tamper { TAMPER_NONE, TAMPER_TAG, TAMPER_CIPHERTEXT, TAMPER_HEADER, TAMPER_SHORT, TAMPERS };

static const uint8_t harness_key[SPM_CKPT_KEY_SIZE] = "fuzz_ckpt harness key, not K!!!";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Provided by the trusted runtime's libc.c inside an enclave. */
int spm_ct_equal(const void *a, const void *b, size_t size)
{
    const uint8_t *x = a, *y = b;
    uint8_t acc = 0;
    for (size_t i = 0; i < size; i++)
        acc |= x[i] ^ y[i];
    return acc != 0;
}

/* The enclave the input describes. */
struct geometry {
    struct spm_layout layout;
    uint8_t *elrange;    /* layout.info.elrange_size bytes, ELF header at 0 */
    uint8_t *capturable; /* one byte per page: may a checkpoint hold it? */
    struct ckpt_region regions[16];
    uint32_t region_count;
};

static void add_segment(Elf64_Phdr *ph, struct spm_elf_image *img, uint32_t flags, uint64_t vaddr,
                        uint64_t memsz)
{
    *ph = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = flags, .p_vaddr = vaddr, .p_memsz = memsz};
    img->segments[img->segment_count++] =
        (struct spm_elf_segment){.vaddr = vaddr, .memsz = memsz, .flags = flags};
}

static void mark(struct geometry *g, uint64_t offset, uint64_t size)
{
    for (uint64_t p = offset / PAGE; p < (offset + size + PAGE - 1) / PAGE; p++)
        g->capturable[p] = 1;
}

/* Lays the enclave out (a read-only header page, a code page, the writable
 * pages) and writes its ELF and program headers into a zeroed ELRANGE. */
static void geometry_init(struct geometry *g, const uint8_t prefix[PREFIX_SIZE])
{
    uint32_t tcs_count = 1 + (prefix[0] & 3), ssa_pages = 1 + ((prefix[0] >> 2) & 1);
    uint64_t heap_pages = 1 + (prefix[1] & 7), stack_pages = 2 + ((prefix[1] >> 3) & 3);
    uint64_t data_pages = 1 + (prefix[2] & 3), data_start = 2 * PAGE + (prefix[2] >> 4) * 256u;
    bool split = prefix[2] & 4;

    struct spm_elf_image img = {0};
    Elf64_Phdr ph[4];
    add_segment(&ph[0], &img, PF_R, 0, PAGE);
    add_segment(&ph[1], &img, PF_R | PF_X, PAGE, PAGE);
    uint64_t data_end = 2 * PAGE + data_pages * PAGE - 8; /* .bss ends mid-page */
    if (split && data_pages > 1) {
        add_segment(&ph[2], &img, PF_R | PF_W, data_start, 3 * PAGE - data_start);
        add_segment(&ph[3], &img, PF_R | PF_W, 3 * PAGE, data_end - 3 * PAGE);
    } else {
        add_segment(&ph[2], &img, PF_R | PF_W, data_start, data_end - data_start);
    }
    img.image_size = 2 * PAGE + data_pages * PAGE;
    const struct spm_enclave_config config = {
        .heap_size = heap_pages * PAGE,
        .stack_size = stack_pages * PAGE,
        .tcs_count = tcs_count,
        .ssa_frame_pages = ssa_pages,
        .ssa_frame_count = 1,
        .attributes_flags = SGX_FLAGS_MODE64BIT,
        .attributes_xfrm = SGX_XFRM_LEGACY,
    };
    int ret = spm_layout_compute(&img, &config, &g->layout);
    assert(ret == 0);
    const struct spm_layout_info *l = &g->layout.info;

    g->elrange = calloc(1, l->elrange_size);
    g->capturable = calloc(1, l->elrange_size / PAGE);
    assert(g->elrange && g->capturable);
    Elf64_Ehdr eh = {
        .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT},
        .e_type = ET_DYN,
        .e_machine = EM_X86_64,
        .e_version = EV_CURRENT,
        .e_entry = PAGE,
        .e_phoff = sizeof(Elf64_Ehdr),
        .e_ehsize = sizeof(Elf64_Ehdr),
        .e_phentsize = sizeof(Elf64_Phdr),
        .e_phnum = (uint16_t)img.segment_count,
    };
    memcpy(g->elrange, &eh, sizeof(eh));
    memcpy(g->elrange + sizeof(eh), ph, img.segment_count * sizeof(ph[0]));
    g->region_count = ckpt_capturable_regions(l, g->elrange, g->regions, 16);

    /* What a checkpoint may hold, from the layout rather than the regions. */
    for (uint32_t i = 0; i < img.segment_count; i++)
        if (img.segments[i].flags & PF_W)
            mark(g, img.segments[i].vaddr, img.segments[i].memsz);
    mark(g, l->heap_offset, l->heap_size);
    for (uint32_t t = 0; t < tcs_count; t++) {
        struct spm_thread_offsets o = spm_layout_thread(l, t);
        mark(g, o.stack, l->stack_size + PAGE); /* stack and thread data */
    }
}

static void geometry_free(struct geometry *g)
{
    free(g->elrange);
    free(g->capturable);
}

/* The header's claims against what the layout allows, independently of
 * ckpt_validate. */
static void check_accepted(const struct geometry *g, const struct spm_ckpt_header *h,
                           const struct spm_ckpt_run *runs, uint64_t buffer_size)
{
    const struct spm_layout_info *l = &g->layout.info;
    uint64_t payload = 0, end = 0;
    for (uint32_t i = 0; i < h->run_count; i++) {
        assert(runs[i].size > 0 && runs[i].offset % PAGE == 0 && runs[i].size % PAGE == 0);
        assert(runs[i].offset >= end && runs[i].offset + runs[i].size <= l->elrange_size);
        end = runs[i].offset + runs[i].size;
        payload += runs[i].size;
        for (uint64_t p = runs[i].offset / PAGE; p < end / PAGE; p++)
            assert(g->capturable[p]);
    }
    for (uint32_t t = 0; t < l->tcs_count; t++) {
        struct spm_thread_offsets o = spm_layout_thread(l, t);
        uint64_t covered = 0;
        for (uint32_t i = 0; i < h->run_count; i++)
            if (runs[i].offset < o.thread_data + PAGE && runs[i].offset + runs[i].size > o.stack)
                covered += (runs[i].offset + runs[i].size < o.thread_data + PAGE
                                ? runs[i].offset + runs[i].size
                                : o.thread_data + PAGE) -
                           (runs[i].offset > o.stack ? runs[i].offset : o.stack);
        assert(covered == 0 || covered == l->stack_size + PAGE);
    }
    assert(h->payload_size == payload);
    assert(h->chunk_size >= SPM_CKPT_MIN_CHUNK_SIZE && h->chunk_size % PAGE == 0);
    assert(h->chunk_count == (payload + h->chunk_size - 1) / h->chunk_size);
    assert(h->header_size == sizeof(*h) + h->run_count * sizeof(runs[0]));
    assert(h->image_size == h->header_size + h->chunk_count * SPM_CKPT_TAG_SIZE + payload);
    assert(h->image_size <= buffer_size);
    assert(h->elrange_base == HARNESS_BASE && h->elrange_size == l->elrange_size &&
           h->tcs_count == l->tcs_count);
}

/* Reads and validates the header at `image` as RESTORE_BEGIN does; on
 * success fills the digest every chunk carries as AAD. */
static int import_header(const struct geometry *g, const uint8_t *image, uint64_t buffer_size,
                         struct spm_ckpt_header *h, struct spm_ckpt_run *runs, uint8_t digest[32])
{
    const struct ckpt_target target = {
        .elrange_base = HARNESS_BASE,
        .layout = &g->layout.info,
        .regions = g->regions,
        .region_count = g->region_count,
    };
    int ret = ckpt_read_header(image, buffer_size, h, runs);
    if (ret == 0)
        ret = ckpt_validate(h, runs, buffer_size, &target);
    assert(ret == 0 || ret == -EINVAL);
    if (ret == 0)
        tc_sha256_two(h, sizeof(*h), runs, h->run_count * sizeof(runs[0]), digest);
    return ret;
}

/* Fills the captured pages of `elrange` with the plaintext, repeated. */
static void capture(uint8_t *elrange, const struct spm_ckpt_header *h,
                    const struct spm_ckpt_run *runs, const uint8_t *plain, size_t plain_size)
{
    size_t at = 0;
    for (uint32_t i = 0; i < h->run_count; i++)
        for (uint64_t b = 0; b < runs[i].size; b++, at++)
            elrange[runs[i].offset + b] = plain_size ? plain[at % plain_size] : (uint8_t)at;
}

/* Which chunk holds payload byte `offset`. */
static uint32_t chunk_of(const struct spm_ckpt_header *h, uint64_t payload_offset)
{
    return (uint32_t)(payload_offset / h->chunk_size);
}

static void round_trip(const struct geometry *g, const struct spm_ckpt_header *h,
                       const struct spm_ckpt_run *runs, uint8_t *image, uint64_t image_size,
                       const uint8_t *plain, size_t plain_size, enum tamper tamper, uint32_t where)
{
    const uint64_t elrange_size = g->layout.info.elrange_size;
    uint8_t digest[32];
    tc_sha256_two(h, sizeof(*h), runs, h->run_count * sizeof(runs[0]), digest);

    /* The host names the checkpoint by the digest the enclave uses. */
    struct spm_me_checkpoint_ref ref;
    assert(spm_urts_checkpoint_ref(image, image_size, &ref) == 0);
    assert(memcmp(ref.header_digest, digest, 32) == 0 && ref.generation == h->generation &&
           memcmp(ref.checkpoint_id, h->checkpoint_id, 16) == 0 &&
           memcmp(ref.lineage_id, h->lineage_id, 16) == 0);

    /* Export: the captured pages, encrypted into the image. */
    uint8_t *source = malloc(elrange_size);
    assert(source);
    memcpy(source, g->elrange, elrange_size);
    capture(source, h, runs, plain, plain_size);
    struct tc_gcm_key key;
    tc_gcm_key_init(&key, harness_key);
    struct ckpt_chunks chunks = {
        .header = h, .runs = runs, .digest = digest, .key = &key, .elrange = source};
    for (uint32_t i = 0; i < h->chunk_count; i++)
        ckpt_encrypt_chunk(&chunks, i, image);
    assert(memcmp(image, h, sizeof(*h)) == 0); /* the header is the exporter's to write */

    uint32_t bad_chunk = UINT32_MAX;
    uint64_t tags = h->header_size, ciphertext = tags + (uint64_t)h->chunk_count * 16;
    if (tamper == TAMPER_TAG && h->chunk_count) {
        bad_chunk = where / 128 % h->chunk_count;
        image[tags + bad_chunk * 16 + where / 8 % 16] ^= (uint8_t)(1u << (where % 8));
    } else if (tamper == TAMPER_CIPHERTEXT && h->payload_size) {
        uint64_t at = where / 8 % h->payload_size;
        bad_chunk = chunk_of(h, at);
        image[ciphertext + at] ^= (uint8_t)(1u << (where % 8));
    } else if (tamper == TAMPER_HEADER) {
        image[where / 8 % h->header_size] ^= (uint8_t)(1u << (where % 8));
    }

    /* Import into a fresh ELRANGE: same ELF header, the rest a pattern
     * that shows any write outside the runs. */
    uint8_t *target = malloc(elrange_size);
    assert(target);
    memset(target, 0xa5, elrange_size);
    memcpy(target, g->elrange, PAGE);
    struct spm_ckpt_header h2;
    struct spm_ckpt_run *runs2 = calloc(SPM_CKPT_MAX_RUNS, sizeof(*runs2));
    assert(runs2);
    uint8_t digest2[32];
    if (import_header(g, image, image_size, &h2, runs2, digest2) < 0) {
        assert(tamper == TAMPER_HEADER);
        goto out;
    }
    chunks = (struct ckpt_chunks){
        .header = &h2, .runs = runs2, .digest = digest2, .key = &key, .elrange = target};
    bool all_good = true;
    for (uint32_t i = 0; i < h2.chunk_count; i++) {
        bool good = ckpt_verify_chunk(&chunks, i, image);
        if (tamper == TAMPER_HEADER)
            assert(!good || memcmp(digest2, digest, 32) == 0);
        else
            assert(good == (i != bad_chunk));
        all_good &= good;
    }
    if (all_good)
        for (uint32_t i = 0; i < h2.chunk_count; i++)
            ckpt_decrypt_chunk(&chunks, i);
    /* Whatever the tags said, only run pages were written; if every chunk
     * verified, they hold what was captured. */
    uint64_t previous_end = PAGE; /* the ELF header page is never a run */
    for (uint32_t i = 0; i <= h2.run_count; i++) {
        uint64_t start = i < h2.run_count ? runs2[i].offset : elrange_size;
        for (uint64_t b = previous_end; b < start; b++)
            assert(target[b] == 0xa5);
        if (i < h2.run_count) {
            previous_end = runs2[i].offset + runs2[i].size;
            assert(!all_good ||
                   memcmp(target + runs2[i].offset, source + runs2[i].offset, runs2[i].size) == 0);
        }
    }
out:
    tc_gcm_key_wipe(&key);
    free(runs2);
    free(target);
    free(source);
}

/* ---- Seeds: SPM_FUZZ_CKPT_SEEDS=DIR fuzz_ckpt writes them and exits
 * (fuzz/image/make-seeds.sh). Each is a valid header and run list for the
 * geometry its prefix picks, sized by the engine's ckpt_compute_sizes. */

enum seed_run { RUN_DATA, RUN_HEAP_PAGE, RUN_HEAP, RUN_THREAD0, RUN_THREAD1, RUN_END };

static void write_seed(const char *dir, const char *name, const uint8_t prefix[PREFIX_SIZE],
                       uint64_t chunk_size, const enum seed_run *which)
{
    struct geometry g;
    geometry_init(&g, prefix);
    const struct spm_layout_info *l = &g.layout.info;
    struct spm_ckpt_header h = {
        .magic = SPM_CKPT_MAGIC,
        .version = SPM_CKPT_VERSION,
        .elrange_base = HARNESS_BASE,
        .elrange_size = l->elrange_size,
        .checkpoint_id = "checkpoint id 01",
        .lineage_id = "lineage id 00001",
        .generation = 3,
        .chunk_size = chunk_size,
        .tcs_count = l->tcs_count,
    };
    struct spm_ckpt_run runs[8];
    for (; *which != RUN_END; which++) {
        struct spm_ckpt_run *r = &runs[h.run_count++];
        switch (*which) {
        case RUN_DATA: /* the writable image pages, one run even if split */
            *r = (struct spm_ckpt_run){2 * PAGE, l->image_size - 2 * PAGE};
            break;
        case RUN_HEAP_PAGE:
            *r = (struct spm_ckpt_run){l->heap_offset, PAGE};
            break;
        case RUN_HEAP:
            *r = (struct spm_ckpt_run){l->heap_offset, l->heap_size};
            break;
        default:
            *r = (struct spm_ckpt_run){spm_layout_thread(l, *which - RUN_THREAD0).stack,
                                       l->stack_size + PAGE};
            break;
        }
    }
    int ret = ckpt_compute_sizes(&h, runs);
    assert(ret == 0);
    static const char plain[] = "plaintext of the captured pages, repeated";
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(prefix, PREFIX_SIZE, 1, f) != 1 || fwrite(&h, sizeof(h), 1, f) != 1 ||
        fwrite(runs, sizeof(runs[0]), h.run_count, f) != h.run_count ||
        fwrite(plain, sizeof(plain) - 1, 1, f) != 1 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    geometry_free(&g);
}

static void write_seeds(const char *dir)
{
    /* tamper [3]: 0 none, 1 tag, 3 header, 4 short buffer; [4..7] where */
    static const uint8_t one_tcs[PREFIX_SIZE] = {0x00, 0x01, 0x01, 0, 0x35, 0x01};
    static const uint8_t two_tcs_split[PREFIX_SIZE] = {0x05, 0x0a, 0x36, 0, 0x2b, 0x07, 0x01};
    static const enum seed_run none[] = {RUN_END};
    static const enum seed_run data_heap[] = {RUN_DATA, RUN_HEAP_PAGE, RUN_END};
    static const enum seed_run all[] = {RUN_DATA, RUN_HEAP, RUN_THREAD0, RUN_THREAD1, RUN_END};
    static const enum seed_run thread1[] = {RUN_HEAP, RUN_THREAD1, RUN_END};
    uint8_t prefix[PREFIX_SIZE];
    write_seed(dir, "empty", one_tcs, PAGE, none);
    write_seed(dir, "data-heap-page", one_tcs, PAGE, data_heap);
    write_seed(dir, "two-threads-8k-chunks", two_tcs_split, 2 * PAGE, all);
    write_seed(dir, "one-thread-of-two", two_tcs_split, 3 * PAGE, thread1);
    memcpy(prefix, one_tcs, sizeof(prefix));
    prefix[3] = TAMPER_TAG;
    write_seed(dir, "tamper-tag", prefix, PAGE, data_heap);
    prefix[3] = TAMPER_SHORT;
    write_seed(dir, "short-buffer", prefix, PAGE, data_heap);
    memcpy(prefix, two_tcs_split, sizeof(prefix));
    prefix[3] = TAMPER_CIPHERTEXT;
    write_seed(dir, "tamper-ciphertext", prefix, 2 * PAGE, all);
    prefix[3] = TAMPER_HEADER;
    write_seed(dir, "tamper-header", prefix, 2 * PAGE, all);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *seeds = getenv("SPM_FUZZ_CKPT_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < PREFIX_SIZE)
        return 0;
    const uint8_t *prefix = data;
    enum tamper tamper = (enum tamper)(prefix[3] % TAMPERS);
    uint32_t where = (uint32_t)prefix[4] | (uint32_t)prefix[5] << 8 | (uint32_t)prefix[6] << 16 |
                     (uint32_t)prefix[7] << 24;
    const uint8_t *in = data + PREFIX_SIZE;
    size_t in_size = size - PREFIX_SIZE;

    /* The buffer the host hands in: as large as the header claims (what
     * the image would be), else the input; exactly that size. */
    uint64_t buffer_size = in_size;
    struct spm_ckpt_header claimed;
    if (in_size >= sizeof(claimed)) {
        memcpy(&claimed, in, sizeof(claimed));
        if (claimed.image_size >= sizeof(claimed) && claimed.image_size <= MAX_IMAGE_SIZE)
            buffer_size = claimed.image_size;
    }
    if (tamper == TAMPER_SHORT && buffer_size > 0)
        buffer_size--;
    uint8_t *image = malloc(buffer_size ? buffer_size : 1);
    assert(image);
    memcpy(image, in, in_size < buffer_size ? in_size : buffer_size);
    if (buffer_size > in_size)
        memset(image + in_size, 0, buffer_size - in_size);

    struct geometry g;
    geometry_init(&g, prefix);
    struct spm_ckpt_header h;
    struct spm_ckpt_run *runs = calloc(SPM_CKPT_MAX_RUNS, sizeof(*runs));
    assert(runs);
    uint8_t digest[32];
    if (import_header(&g, image, buffer_size, &h, runs, digest) == 0) {
        assert(tamper != TAMPER_SHORT || buffer_size > h.image_size);
        check_accepted(&g, &h, runs, buffer_size);
        const uint8_t *plain = in + h.header_size;
        size_t plain_size = in_size > h.header_size ? in_size - h.header_size : 0;
        if (tamper != TAMPER_SHORT)
            round_trip(&g, &h, runs, image, buffer_size, plain, plain_size, tamper, where);
    }
    free(runs);
    geometry_free(&g);
    free(image);
    return 0;
}
