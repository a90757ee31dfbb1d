/* The checkpoint boundary: the encrypted checkpoint image an enclave writes
 * into untrusted process memory (and CRIU then dumps like any page), and the
 * runtime ecalls the untrusted runtime uses to drive export and import.
 * Everything here is read by trusted code from untrusted memory, so every
 * struct is packed, sized by assertion and copied in before it is checked.
 *
 * Image layout in untrusted memory (one contiguous buffer):
 *   struct spm_ckpt_header                      fixed part, 256 bytes
 *   struct spm_ckpt_run runs[header.run_count]  what was captured, in order
 *   uint8_t tags[header.chunk_count][16]        AES-256-GCM tag per chunk
 *   ciphertext                                  header.payload_size bytes
 * The payload is the captured runs concatenated in order, cut into chunks
 * of header.chunk_size bytes (the last one may be shorter). Chunk i is
 * encrypted under the state key K with
 *   nonce = checkpoint_id[0..8] || be32(i)
 *   AAD   = SHA-256(fixed header || runs)   ("header digest")
 * so an altered, swapped, dropped, replayed or truncated chunk fails, and
 * so does any change to the header. K never leaves enclaves: it goes to the
 * local Migration Enclave in escrow (me_abi.h). */
#ifndef SPM_ABI_CHECKPOINT_ABI_H
#define SPM_ABI_CHECKPOINT_ABI_H

#include <stdint.h>

#define SPM_CKPT_MAGIC   0x0054504B434D5053ull /* "SPMCKPT\0" */
#define SPM_CKPT_VERSION 1u

#define SPM_CKPT_DEFAULT_CHUNK_SIZE (1u << 20)
#define SPM_CKPT_MIN_CHUNK_SIZE     4096u
#define SPM_CKPT_MAX_CHUNK_SIZE     (64u << 20)
#define SPM_CKPT_TAG_SIZE           16u
#define SPM_CKPT_KEY_SIZE           32u
/* Runs fit in the second incarnation page with room to spare. */
#define SPM_CKPT_MAX_RUNS 240u

struct spm_ckpt_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_size; /* fixed part + runs: where the tags start */
    /* identity of the enclave that wrote it */
    uint8_t mr_enclave[32];
    uint8_t mr_signer[32];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint32_t reserved0;
    uint64_t attributes_flags;
    /* where it lived */
    uint64_t elrange_base;
    uint64_t elrange_size;
    /* which checkpoint of which lineage */
    uint8_t checkpoint_id[16];
    uint8_t lineage_id[16];
    uint64_t generation;
    /* what was captured */
    uint32_t run_count;
    uint32_t chunk_count;
    uint64_t chunk_size;
    uint64_t payload_size; /* sum of run sizes */
    uint64_t image_size;   /* header_size + 16 * chunk_count + payload_size */
    uint32_t tcs_count;
    uint32_t reserved1;
    uint8_t reserved[64]; /* zero */
} __attribute__((packed));

/* A captured range of ELRANGE: offsets from the base, page multiples. Runs
 * are sorted, non-overlapping and never cover the incarnation pages or the
 * thread region of a TCS that was idle at capture time. */
struct spm_ckpt_run {
    uint64_t offset;
    uint64_t size;
} __attribute__((packed));

/* ---- Runtime ecalls that drive a checkpoint (ids in enclave_abi.h's
 * runtime range). The untrusted runtime closes its ecall gate and waits
 * until no thread is inside before BEGIN; no application ecall and no ocall
 * return is accepted by the enclave from BEGIN until END or ABORT.
 *
 * Export:  CKPT_BEGIN (one thread) -> CKPT_ENCRYPT (any number of threads,
 *          each on its own TCS, each returns when no chunk is left) ->
 *          CKPT_END (escrows K with the ME, writes the header, wipes the
 *          captured pages; the enclave refuses everything afterwards).
 *          CKPT_ABORT at any point before END succeeded reverts to running.
 * Import:  on a freshly created enclave at the same base, never initialised:
 *          RESTORE_BEGIN (header in, K released by the ME) ->
 *          RESTORE_VERIFY (threads: copy every chunk in, check its tag) ->
 *          RESTORE_DECRYPT (threads; only after every tag verified) ->
 *          RESTORE_END (commits with the ME; only then the enclave runs).
 *          RESTORE_ABORT wipes whatever was written; the enclave is dead. */

/* CKPT_BEGIN in: */
struct spm_ckpt_begin_in {
    uint64_t chunk_size; /* 0: SPM_CKPT_DEFAULT_CHUNK_SIZE; else a page multiple */
} __attribute__((packed));
/* CKPT_BEGIN out: */
struct spm_ckpt_begin_out {
    uint64_t image_size; /* bytes the host must provide for the image */
    uint64_t payload_size;
    uint32_t chunk_count;
    uint32_t run_count;
} __attribute__((packed));

/* CKPT_ENCRYPT, CKPT_END, RESTORE_BEGIN, RESTORE_VERIFY in: the image
 * buffer in untrusted memory. */
struct spm_ckpt_buffer {
    uint64_t address;
    uint64_t size;
} __attribute__((packed));

/* CKPT_ENCRYPT / RESTORE_VERIFY / RESTORE_DECRYPT out: */
struct spm_ckpt_work_out {
    uint32_t chunks_done; /* by this thread */
    uint32_t reserved;
} __attribute__((packed));

/* RESTORE_BEGIN out: */
struct spm_restore_begin_out {
    uint64_t payload_size;
    uint32_t chunk_count;
    uint32_t run_count;
    uint64_t generation;
} __attribute__((packed));

_Static_assert(sizeof(struct spm_ckpt_header) == 256, "checkpoint header");
_Static_assert(sizeof(struct spm_ckpt_run) == 16, "checkpoint run");
_Static_assert(sizeof(struct spm_ckpt_begin_in) == 8, "ckpt begin in");
_Static_assert(sizeof(struct spm_ckpt_begin_out) == 24, "ckpt begin out");
_Static_assert(sizeof(struct spm_ckpt_buffer) == 16, "ckpt buffer");
_Static_assert(sizeof(struct spm_ckpt_work_out) == 8, "ckpt work out");
_Static_assert(sizeof(struct spm_restore_begin_out) == 24, "restore begin out");

#endif
