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

/* SPM_RT_OCALL_ME: relays one message to spmd's socket ($SPM_SPMD_SOCKET or
 * SPM_SPMD_SOCKET_DEFAULT) and copies its reply into out. Returns 0 or
 * -ECONNREFUSED/-ENOENT (no spmd), -EPROTO (malformed reply), -ENOSPC,
 * -ETIMEDOUT. me_relay.c. */
int spm_urts_me_relay(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                      size_t *out_size);

/* Serves one ocall of `ctx` (a struct spm_enclave); see platform.h. */
int64_t spm_urts_ocall_dispatch(void *ctx, uint64_t id, void *frame);

#endif
