/* Exporting an enclave out of this process before CRIU dumps it, and
 * importing it back after a restore (docs/checkpoint.md). Internal to SPM:
 * the control thread drives these for every loaded enclave when the CRIU
 * plugin asks; in-process tests call them directly. Not part of libspm.so's
 * exported set (libspm.map), so applications cannot reach them. */
#ifndef SPM_HOST_URTS_CHECKPOINT_H
#define SPM_HOST_URTS_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spm_enclave;
struct spm_me_checkpoint_ref;

struct spm_ckpt_options {
    unsigned
        timeout_ms;   /* bound on waiting for threads to leave; 0: SPM_CONTROL_DEFAULT_TIMEOUT_MS */
    unsigned threads; /* worker threads; 0: online CPUs (always capped by idle TCSs) */
    uint64_t chunk_size; /* 0: the enclave's default */
    bool lazy;           /* export for a lazy (post-copy) dump: shared image buffer */
};

struct spm_ckpt_stats {
    uint64_t bytes; /* checkpoint image size */
    uint32_t chunks;
    uint32_t threads;
    uint64_t usec; /* wall time of the whole export or import */
};

/* Exports `e`: closes the ecall gate, waits until no thread is inside,
 * encrypts its state into an anonymous mapping with CKPT_BEGIN/ENCRYPT/END,
 * destroys ELRANGE and closes the platform. Afterwards ecalls wait (NOWAIT
 * ones fail -EBUSY) until spm_enclave_restore succeeds.
 * Errors (the enclave runs on, unless noted): -ETIMEDOUT (threads still
 * inside after the bound), -EBUSY (every TCS held by threads parked in
 * ocalls), -EALREADY (already exported), the enclave's refusal, -ENOMEM.
 * If the enclave could not be thawed (CKPT_ABORT kept failing because the
 * ME could not confirm a cancel) it stays frozen behind the closed gate and
 * -ENOLINK is returned; spm_enclave_restore retries the abort. */
int spm_enclave_checkpoint(struct spm_enclave *e, const struct spm_ckpt_options *options,
                           struct spm_ckpt_stats *stats) __attribute__((warn_unused_result));

/* Imports an exported `e`: rebuilds the enclave at the same base from the
 * same signed image on the platform ($SPM_PLATFORM now, else the load-time
 * directory), RESTORE_BEGIN/VERIFY/DECRYPT/END, unmaps the image and opens
 * the gate. 0 with zeroed stats when `e` is live (nothing to do).
 * On failure the image is kept and the enclave stays exported, so a retry
 * is possible; *permanent is set when the enclave's refusal cannot change
 * (-EALREADY consumed, -ESTALE superseded, -ENOENT no key, -EKEYREJECTED
 * another enclave, -EBADMSG tampered, -EINVAL malformed). */
int spm_enclave_restore(struct spm_enclave *e, const struct spm_ckpt_options *options,
                        struct spm_ckpt_stats *stats, bool *permanent)
    __attribute__((warn_unused_result));

/* The public reference of the exported checkpoint in `image` (image_size
 * bytes), as the ME keys its escrow: lineage, generation and id from the
 * header, and the digest over header || runs, as the enclave computes it
 * (checkpoint_abi.h). Checks magic, version, run count and header size;
 * the rest is the enclave's to judge. -EPROTO for a malformed header. */
int spm_urts_checkpoint_ref(const uint8_t *image, size_t image_size,
                            struct spm_me_checkpoint_ref *ref) __attribute__((warn_unused_result));

/* The same, without taking the process-wide operation lock (the control
 * thread holds it across all enclaves). checkpoint.c. */
int spm_urts_export(struct spm_enclave *e, const struct spm_ckpt_options *options,
                    struct spm_ckpt_stats *stats) __attribute__((warn_unused_result));
int spm_urts_import(struct spm_enclave *e, const struct spm_ckpt_options *options,
                    struct spm_ckpt_stats *stats, bool *permanent)
    __attribute__((warn_unused_result));

#endif
