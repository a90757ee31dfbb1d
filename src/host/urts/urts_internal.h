/* Private to the untrusted runtime. */
#ifndef SPM_HOST_URTS_INTERNAL_H
#define SPM_HOST_URTS_INTERNAL_H

#include <pthread.h>

#include "image/image.h"
#include "platform/platform.h"
#include "spm/urts.h"

struct spm_enclave {
    const struct spm_platform_ops *ops;
    struct spm_platform *platform;
    struct spm_hw_enclave *hw;
    struct spm_layout layout;
    uint8_t mrenclave[32], mrsigner[32];
    uint64_t base, size;
    uint32_t tcs_count;
    uint64_t *tcs_offsets;
    pthread_mutex_t lock;
    pthread_cond_t tcs_free;
    uint32_t *free_tcs; /* stack of idle TCS indexes */
    uint32_t free_count;
    const spm_ocall_fn *ocalls;
    uint32_t ocall_count;
    void *ocall_ctx;
};

/* Serves one ocall of `ctx` (a struct spm_enclave); see platform.h. */
int64_t spm_urts_ocall_dispatch(void *ctx, uint64_t id, void *frame);

#endif
