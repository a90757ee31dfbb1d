/* The platform: the CPU's SGX instructions behind one table of operations.
 * `sim` (sim/) is the software SGX CPU every test machine uses; a hardware
 * backend over /dev/sgx_enclave implements the same table. The untrusted
 * runtime never calls a backend directly. */
#ifndef SPM_HOST_PLATFORM_H
#define SPM_HOST_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spm/arch/sgx_arch.h"

struct spm_platform;   /* a backend's per-host state (secrets, keys) */
struct spm_hw_enclave; /* a backend's enclave (SECS, mapping) */

/* What one EENTER passes in and gets back (see enclave_abi.h for registers).
 * `ocall_ctx` is handed to the ocall dispatcher while the enclave is out. */
struct spm_enter_io {
    uint64_t rdi_in, rsi_in, rdx_in;
    uint64_t rdi_out, rsi_out, rdx_out;
    void *ocall_ctx;
    /* The enclave this EENTER runs, re-read after every ocall: a checkpoint
     * may tear ELRANGE down and rebuild it at the same base (a new backend
     * object) while this thread is out in an ocall. */
    struct spm_hw_enclave *const *enclave_slot;
};

/* Serves one ocall while the enclave is out; returns the status for ORET. */
typedef int64_t (*spm_ocall_dispatch_fn)(void *ocall_ctx, uint64_t id, void *frame);

struct spm_platform_ops {
    const char *name;
    int (*open)(const char *dir, struct spm_platform **out);
    void (*close)(struct spm_platform *p);
    /* ECREATE: maps ELRANGE (secs->size, at secs->base or anywhere naturally
     * aligned when 0) and records the SECS; secs->base is set on return. */
    int (*ecreate)(struct spm_platform *p, struct sgx_secs *secs, struct spm_hw_enclave **out);
    /* EADD (+ EEXTEND when measure) of one page at `offset`. */
    int (*eadd)(struct spm_hw_enclave *e, uint64_t offset, const uint8_t *page,
                uint64_t secinfo_flags, bool measure);
    /* EINIT: checks SIGSTRUCT and the measurement, finalises the identity. */
    int (*einit)(struct spm_hw_enclave *e, const struct sgx_sigstruct *sig);
    /* EENTER on the TCS at `tcs_offset`; returns when the enclave EEXITs with
     * a result, serving ocalls through `dispatch` in between. */
    int (*eenter)(struct spm_hw_enclave *e, uint64_t tcs_offset, struct spm_enter_io *io,
                  spm_ocall_dispatch_fn dispatch);
    /* Tears the enclave down and unmaps ELRANGE. */
    void (*edestroy)(struct spm_hw_enclave *e);
    const struct sgx_secs *(*secs)(const struct spm_hw_enclave *e);
    int (*qe_target_info)(struct spm_platform *p, struct sgx_target_info *target);
    int (*quote)(struct spm_platform *p, const struct sgx_report *report, uint8_t **quote,
                 size_t *quote_size);
};

extern const struct spm_platform_ops spm_sim_platform_ops;

/* The backend to use: "sim" (default) or $SPM_BACKEND. NULL if unknown. */
const struct spm_platform_ops *spm_platform_backend(const char *name);

#endif
