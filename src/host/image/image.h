/* Enclave images on the host side: validating the static-PIE ELF, laying it
 * out in ELRANGE, measuring it as ECREATE/EADD/EEXTEND would, and signing /
 * verifying its SIGSTRUCT. The signer (`spm sign`), the loader (simulated
 * EINIT) and `spm inspect` all go through here, so they cannot disagree. */
#ifndef SPM_HOST_IMAGE_H
#define SPM_HOST_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spm/abi/enclave_abi.h"

#define SPM_ELF_MAX_SEGMENTS  16u
#define SPM_ELF_MAX_FILE_SIZE (256u << 20)

struct spm_elf_segment {
    uint64_t vaddr; /* offset from the enclave base */
    uint64_t memsz;
    uint64_t filesz;
    uint64_t offset; /* in the file */
    uint32_t flags;  /* PF_R | PF_W | PF_X */
};

/* A validated enclave ELF. Owns `file`. */
struct spm_elf_image {
    uint8_t *file;
    size_t file_size;
    uint64_t entry;      /* e_entry: offset of the enclave entry point */
    uint64_t image_size; /* page-aligned end of the highest PT_LOAD */
    struct spm_elf_segment segments[SPM_ELF_MAX_SEGMENTS];
    uint32_t segment_count;
    size_t meta_offset;         /* file offset of the .spm_meta section */
    struct spm_image_meta meta; /* copy of .spm_meta (zero before signing) */
};

/* Reads and validates `path`: x86-64 ET_DYN, no PT_INTERP, no DT_NEEDED, only
 * R_X86_64_RELATIVE relocations and none into a non-writable segment, no
 * TEXTREL, page-aligned PT_LOADs starting at vaddr 0, and a .spm_meta
 * section of SPM_META_SECTION_SIZE bytes. Every refusal is logged with the
 * reason. -ENOENT, -EINVAL (not an acceptable enclave), -ENOMEM, -EFBIG. */
int spm_elf_load(const char *path, struct spm_elf_image *img) __attribute__((warn_unused_result));
/* Same checks on a buffer (copied). Used by the loader and fuzzers. */
int spm_elf_parse(const uint8_t *data, size_t size, struct spm_elf_image *img)
    __attribute__((warn_unused_result));
void spm_elf_free(struct spm_elf_image *img);

/* The ELRANGE layout derived from an image and a config. */
struct spm_layout {
    struct spm_layout_info info; /* the content of the measured info page */
    uint64_t end;                /* first byte after the last added page */
};

/* Validates `config` (sizes page multiples and non-zero where required,
 * 1 <= tcs_count <= 256, elrange_size a power of two >= what is needed, or 0
 * for the smallest that fits) and computes the layout. -EINVAL, logged. */
int spm_layout_compute(const struct spm_elf_image *img, const struct spm_enclave_config *config,
                       struct spm_layout *layout) __attribute__((warn_unused_result));

/* Where TCS `index`'s pieces lie (offsets from the enclave base). */
struct spm_thread_offsets {
    uint64_t guard, stack, thread_data, tcs, ssa;
};
struct spm_thread_offsets spm_layout_thread(const struct spm_layout_info *info, uint32_t index);

/* Visits every page the loader adds, in measurement order, exactly as
 * EADD(+EEXTEND) would see it: `content` is the page's 4096 bytes (never
 * NULL; a zero page for unmeasured pages), `measured` says whether it is
 * EEXTENDed. Stops at and returns the first non-zero return of `fn`. */
typedef int (*spm_page_fn)(void *ctx, uint64_t offset, uint64_t secinfo_flags, bool measured,
                           const uint8_t *content);
int spm_layout_for_each_page(const struct spm_elf_image *img, const struct spm_layout *layout,
                             spm_page_fn fn, void *ctx);

/* MRENCLAVE as the CPU computes it (SGX-FORMATS.md section 1). */
struct spm_measurement {
    uint64_t opaque[16]; /* struct spm_sha256 */
};
void spm_measure_ecreate(struct spm_measurement *m, uint32_t ssa_frame_pages, uint64_t size);
void spm_measure_eadd(struct spm_measurement *m, uint64_t offset, uint64_t secinfo_flags);
void spm_measure_eextend(struct spm_measurement *m, uint64_t offset, const uint8_t chunk[256]);
/* EADD, then 16 EEXTENDs when `measured`. */
void spm_measure_page(struct spm_measurement *m, uint64_t offset, uint64_t secinfo_flags,
                      bool measured, const uint8_t page[4096]);
void spm_measure_final(struct spm_measurement *m, uint8_t mrenclave[32]);

/* MRENCLAVE of a whole image + layout. */
int spm_image_measure(const struct spm_elf_image *img, const struct spm_layout *layout,
                      uint8_t mrenclave[32]) __attribute__((warn_unused_result));

/* RSA-3072 / e=3 author keys (PEM, PKCS#8 private key). */
int spm_keygen(const char *out_path) __attribute__((warn_unused_result));

/* Fills header, body and signature of `sig` with the author key at
 * key_path: modulus, RSA PKCS#1 v1.5 SHA-256 over [0..127] || [900..1027],
 * Q1, Q2. The caller set body fields and header.type/date beforehand. */
int spm_sigstruct_sign(struct sgx_sigstruct *sig, const char *key_path)
    __attribute__((warn_unused_result));

/* EINIT's checks on a SIGSTRUCT: fixed headers, vendor 0 or 0x8086,
 * exponent 3, the RSA signature, Q1/Q2; on success writes MRSIGNER
 * (SHA-256 of the LE modulus). -EBADMSG (malformed), -EKEYREJECTED (bad
 * signature). Logged with the reason. */
int spm_sigstruct_verify(const struct sgx_sigstruct *sig, uint8_t mrsigner[32])
    __attribute__((warn_unused_result));

/* Signs `in_path` with `key_path` and `config`, writing `out_path`: the same
 * ELF with .spm_meta filled (config, SIGSTRUCT with ENCLAVEHASH = MRENCLAVE).
 * Refuses images that spm_elf_load refuses. */
int spm_image_sign(const char *in_path, const char *key_path,
                   const struct spm_enclave_config *config, const char *out_path)
    __attribute__((warn_unused_result));

/* Loads a signed image and performs every EINIT check: metadata magic and
 * version, layout, MRENCLAVE recomputed == SIGSTRUCT.ENCLAVEHASH, SIGSTRUCT
 * verifies, config attributes/ISV fields == SIGSTRUCT's. Fills mrenclave and
 * mrsigner. On failure the image is freed. -EINVAL, -EKEYREJECTED, -EBADMSG. */
int spm_image_open_signed(const char *path, struct spm_elf_image *img, struct spm_layout *layout,
                          uint8_t mrenclave[32], uint8_t mrsigner[32])
    __attribute__((warn_unused_result));

/* Checks the attribute part of `config` (the layout part is
 * spm_layout_compute's): MODE64BIT set, no flag outside
 * DEBUG, MODE64BIT, KSS, AEX_NOTIFY, XFRM includes x87|SSE (which the CPU
 * requires). Logs with `name`. -EINVAL. */
int spm_image_check_attributes(const struct spm_enclave_config *config, const char *name)
    __attribute__((warn_unused_result));

/* Every check of spm_image_verify except the measurement itself: metadata
 * magic, version and reserved bytes, attributes policy, layout, SIGSTRUCT
 * signature, and config == SIGSTRUCT for attributes, MISCSELECT and ISV
 * fields. The loader runs this and leaves MRENCLAVE to the platform's EINIT,
 * which measures the pages it actually added. Fills layout and mrsigner.
 * -EINVAL, -EBADMSG, -EKEYREJECTED; logged with `name`. */
int spm_image_check_metadata(const struct spm_elf_image *img, const char *name,
                             struct spm_layout *layout, uint8_t mrsigner[32])
    __attribute__((warn_unused_result));

/* Performs every EINIT check of
 * spm_image_open_signed on an already parsed image (e.g. one handed to
 * spm_elf_parse by a fuzzer). `img` stays owned by the caller and is not
 * freed on failure; `name` only labels log messages. Fills layout,
 * mrenclave and mrsigner. -EINVAL, -EBADMSG, -EKEYREJECTED. */
int spm_image_verify(const struct spm_elf_image *img, const char *name, struct spm_layout *layout,
                     uint8_t mrenclave[32], uint8_t mrsigner[32])
    __attribute__((warn_unused_result));

/* MRSIGNER of the author key at `key_path` (what any
 * enclave it signs will report). -ENOENT, -EINVAL, -EIO. */
int spm_key_mrsigner(const char *key_path, uint8_t mrsigner[32])
    __attribute__((warn_unused_result));

#endif
