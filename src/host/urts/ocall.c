/* Serving ocalls: the runtime's own (log, time, quoting) and the app's
 * table. The frame lives on this thread's stack, below where the simulated
 * EENTER parked; sizes in it were set by the enclave. An application thread
 * leaves the checkpoint gate's "inside" count while its handler runs, and
 * on the way back waits until the gate is open again: a checkpoint may have
 * exported (and a restore rebuilt) the enclave meanwhile. */
#include <errno.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "urts_internal.h"

static int rt_ocall(struct spm_enclave *e, uint64_t id, const uint8_t *in, size_t in_size,
                    uint8_t *out, size_t out_capacity, size_t *out_size)
{
    switch (id) {
    case SPM_RT_OCALL_LOG:
        fprintf(stderr, "enclave: %.*s\n", (int)in_size, (const char *)in);
        return 0;
    case SPM_RT_OCALL_TIME: {
        uint64_t now = (uint64_t)time(NULL);
        if (out_capacity < sizeof(now))
            return -ENOSPC;
        memcpy(out, &now, sizeof(now));
        *out_size = sizeof(now);
        return 0;
    }
    case SPM_RT_OCALL_QE_TARGET_INFO:
        if (out_capacity < sizeof(struct sgx_target_info))
            return -ENOSPC;
        *out_size = sizeof(struct sgx_target_info);
        return e->ops->qe_target_info(e->platform, (struct sgx_target_info *)out);
    case SPM_RT_OCALL_QUOTE: {
        if (in_size != sizeof(struct sgx_report))
            return -EINVAL;
        struct sgx_report report;
        memcpy(&report, in, sizeof(report));
        uint8_t *quote = NULL;
        size_t quote_size = 0;
        int ret = e->ops->quote(e->platform, &report, &quote, &quote_size);
        if (ret < 0)
            return ret;
        if (quote_size > out_capacity) {
            free(quote);
            return -ENOSPC;
        }
        memcpy(out, quote, quote_size);
        *out_size = quote_size;
        free(quote);
        return 0;
    }
    case SPM_RT_OCALL_YIELD:
        sched_yield();
        return 0;
    case SPM_RT_OCALL_ME: {
        int ret = spm_urts_me_relay(in, in_size, out, out_capacity, out_size);
        if (ret < 0) /* the relay fails only in transport; the ME's answers are payload */
            __atomic_add_fetch(&e->me_unreachable, 1, __ATOMIC_RELAXED);
        return ret;
    }
    default:
        return -ENOSYS;
    }
}

/* Leaving the enclave for a handler: no longer inside. */
static void gate_leave(struct spm_enclave *e)
{
    pthread_mutex_lock(&e->lock);
    if (--e->inside == 0 && e->gate_closed)
        pthread_cond_signal(&e->drained);
    pthread_mutex_unlock(&e->lock);
}

/* Coming back: only through an open gate, which also means the enclave is
 * live (rebuilt, if it was exported). */
static void gate_return(struct spm_enclave *e)
{
    pthread_mutex_lock(&e->lock);
    while (e->gate_closed)
        pthread_cond_wait(&e->gate_opened, &e->lock);
    e->inside++;
    pthread_mutex_unlock(&e->lock);
}

int64_t spm_urts_ocall_dispatch(void *ctx, uint64_t id, void *frame_address)
{
    struct spm_urts_call *call = ctx;
    struct spm_enclave *e = call->enclave;
    struct spm_ocall_frame *frame = frame_address;
    uint64_t in_size = frame->in_size, out_capacity = frame->out_capacity;
    if (in_size > SPM_OCALL_MAX_SIZE || out_capacity > SPM_OCALL_MAX_SIZE)
        return -E2BIG;
    const uint8_t *in = frame->data;
    uint8_t *out = frame->data + in_size;
    size_t out_size = 0;
    int ret;
    /* Only application handlers leave the gate: they may block for as long
     * as they like. The runtime's own are short and some use the platform,
     * which an export closes, so they count as inside. */
    bool leaves = !call->internal && id < SPM_RT_CALL_BASE;
    if (leaves)
        gate_leave(e);
    if (id >= SPM_RT_CALL_BASE)
        ret = rt_ocall(e, id, in, in_size, out, out_capacity, &out_size);
    else if (id < e->ocall_count && e->ocalls[id])
        ret = e->ocalls[id](e->ocall_ctx, in, in_size, out, out_capacity, &out_size);
    else
        ret = -ENOSYS;
    frame->out_size = ret == 0 ? out_size : 0;
    if (leaves)
        gate_return(e);
    return ret;
}
