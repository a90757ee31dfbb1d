/* libspm, the untrusted runtime: load a signed enclave image into this
 * process, call into it on a pool of TCS slots, and serve its ocalls.
 * Functions return 0 or a negative errno and log the reason. */
#ifndef SPM_URTS_H
#define SPM_URTS_H

#include <stddef.h>
#include <stdint.h>

struct spm_enclave;

/* An application ocall: `in` and `out` are untrusted buffers owned by the
 * runtime for the duration of the call; write at most out_capacity bytes
 * and set *out_size. Return 0 or a negative errno (the enclave accepts only
 * a whitelisted set). */
typedef int (*spm_ocall_fn)(void *ctx, const uint8_t *in, size_t in_size, uint8_t *out,
                            size_t out_capacity, size_t *out_size);

struct spm_enclave_options {
    const char
        *platform_dir; /* NULL: --platform default ($SPM_PLATFORM or /var/lib/spm/platform) */
    uint64_t base;     /* 0: anywhere naturally aligned; else exactly here */
    const spm_ocall_fn *ocalls; /* the app's ocall table, indexed by ocall id */
    uint32_t ocall_count;
    void *ocall_ctx;
    uint32_t flags; /* SPM_LOAD_* */
};

/* This enclave is never checkpointed (the Migration Enclave itself): it
 * gets no control socket, and CRIU's plugin treats its process as a plain
 * one. Every other enclave can be checkpointed with no code of its own. */
#define SPM_LOAD_NO_CHECKPOINT 1u

/* Loads, measures and initialises `image_path` (simulated EINIT: refuses an
 * image whose measurement or SIGSTRUCT does not verify). *out is owned by
 * the caller: spm_enclave_destroy. */
int spm_enclave_load(const char *image_path, const struct spm_enclave_options *options,
                     struct spm_enclave **out) __attribute__((warn_unused_result));

#define SPM_ECALL_WAIT   0u
#define SPM_ECALL_NOWAIT 1u /* fail with -EBUSY instead of waiting for a free TCS */

/* Calls ecall `id` with a copy of `in`; up to out_capacity bytes of result
 * land in `out`, their count in *out_size. Returns the enclave's status.
 * -EBUSY (all TCS busy, with SPM_ECALL_NOWAIT), -EDEADLK (called from an
 * ocall handler of an enclave on this thread), -EPROTO (the enclave claimed
 * more output than out_capacity). Thread-safe. */
int spm_enclave_ecall(struct spm_enclave *enclave, uint32_t id, const void *in, size_t in_size,
                      void *out, size_t out_capacity, size_t *out_size, unsigned flags)
    __attribute__((warn_unused_result));

void spm_enclave_destroy(struct spm_enclave *enclave);

/* Identity and geometry of a loaded enclave. */
void spm_enclave_mrenclave(const struct spm_enclave *enclave, uint8_t mrenclave[32]);
void spm_enclave_mrsigner(const struct spm_enclave *enclave, uint8_t mrsigner[32]);
uint64_t spm_enclave_base(const struct spm_enclave *enclave);
uint64_t spm_enclave_size(const struct spm_enclave *enclave);
uint32_t spm_enclave_tcs_count(const struct spm_enclave *enclave);
/* The platform backend's name ("sim"). */
const char *spm_enclave_backend(const struct spm_enclave *enclave);

#endif
