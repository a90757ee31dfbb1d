/* The checkpoint image format (checkpoint_abi.h) as the checkpoint engine
 * (ckpt.c) writes and reads it: which ranges of ELRANGE a checkpoint may
 * hold, the sizes a header must state, the validation of a header and run
 * list an import copied in, and each chunk's AES-256-GCM over the pieces
 * of the runs it covers. Nothing here touches a global, the incarnation or
 * the enclave's own addresses: the engine passes its layout, its ELF header
 * and its base, so the same code runs hosted under the fuzzer
 * (fuzz/image/fuzz_ckpt.c). Like the engine, it allocates nothing and reads
 * no writable global data (an import runs it while .data holds
 * ciphertext). */
#ifndef SPM_TRUSTED_CKPT_IMAGE_H
#define SPM_TRUSTED_CKPT_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "spm/abi/checkpoint_abi.h"
#include "spm/abi/enclave_abi.h"

#define CKPT_HIDDEN __attribute__((visibility("hidden")))

/* A range of ELRANGE a checkpoint may capture: a writable image segment's
 * pages, the heap, or TCS `tcs`'s stack and thread data page (UINT32_MAX
 * for the others). Offsets from the base. */
struct ckpt_region {
    uint64_t offset, size;
    uint32_t tcs;
};

/* Offset of TCS `index`'s stack in the layout `l` (enclave_abi.h: guard
 * page, stack, thread data, TCS, SSA). */
uint64_t ckpt_thread_stack_offset(const struct spm_layout_info *l, uint32_t index) CKPT_HIDDEN;

/* Fills out[0..capacity) with the capturable regions of the enclave laid out
 * by `l` whose measured ELF header (and program headers after it) is at
 * `ehdr`: its writable PT_LOADs (page-rounded, cut at l->image_size), the
 * heap, then each TCS's stack and thread data. Returns how many. */
uint32_t ckpt_capturable_regions(const struct spm_layout_info *l, const uint8_t *ehdr,
                                 struct ckpt_region *out, uint32_t capacity) CKPT_HIDDEN;

/* Fills payload_size, chunk_count, header_size and image_size of `h` from
 * its run_count and chunk_size (non-zero) and runs[0..run_count).
 * -EINVAL when they do not fit the format. */
int ckpt_compute_sizes(struct spm_ckpt_header *h, const struct spm_ckpt_run *runs) CKPT_HIDDEN
    __attribute__((warn_unused_result));

/* Copies the header and then its run list out of `image`, buffer_size
 * bytes of untrusted memory, into h and runs[0..SPM_CKPT_MAX_RUNS); reads
 * each byte once. -EINVAL when the buffer is shorter than the header, or
 * run_count or header_size are not what the format allows; only what was
 * checked is then copied. */
int ckpt_read_header(const uint8_t *image, uint64_t buffer_size, struct spm_ckpt_header *h,
                     struct spm_ckpt_run *runs) CKPT_HIDDEN __attribute__((warn_unused_result));

/* What an importing enclave checks a header against (besides its
 * identity, which only EREPORT knows: the engine checks it afterwards). */
struct ckpt_target {
    uint64_t elrange_base; /* the base the header must name */
    const struct spm_layout_info *layout;
    const struct ckpt_region *regions; /* ckpt_capturable_regions' */
    uint32_t region_count;
};

/* Everything about a header and run list (from ckpt_read_header) that
 * needs neither the ME nor EREPORT: magic, version, zero reserved fields,
 * chunk size, base, ELRANGE size and TCS count of `target`, runs sorted,
 * page-aligned, inside capturable regions only, each thread region whole or
 * absent, and the sizes ckpt_compute_sizes derives, with the image inside
 * buffer_size bytes. -EINVAL. */
int ckpt_validate(const struct spm_ckpt_header *h, const struct spm_ckpt_run *runs,
                  uint64_t buffer_size, const struct ckpt_target *target) CKPT_HIDDEN
    __attribute__((warn_unused_result));

/* One checkpoint's chunks: a validated (or just built) header and its runs,
 * the AAD every chunk carries (SHA-256(header || runs)), the expanded key,
 * and where the runs' pages are (the enclave base). */
struct ckpt_chunks {
    const struct spm_ckpt_header *header;
    const struct spm_ckpt_run *runs;
    const uint8_t *digest; /* 32 bytes */
    const struct tc_gcm_key *key;
    uint8_t *elrange;
};

/* Encrypts chunk `index` (< chunk_count) from its pages straight into
 * `image` (header_size + 16 * chunk_count + payload_size bytes), and its
 * tag, never reading the image back. */
void ckpt_encrypt_chunk(const struct ckpt_chunks *c, uint32_t index, uint8_t *image) CKPT_HIDDEN;

/* Copies chunk `index`'s ciphertext from `image` into its pages and checks
 * its tag over that copy (what was written, not what the image holds by
 * then). True when the tag matches. */
bool ckpt_verify_chunk(const struct ckpt_chunks *c, uint32_t index,
                       const uint8_t *image) CKPT_HIDDEN __attribute__((warn_unused_result));

/* Decrypts chunk `index` in its pages (after every tag verified). */
void ckpt_decrypt_chunk(const struct ckpt_chunks *c, uint32_t index) CKPT_HIDDEN;

#endif
