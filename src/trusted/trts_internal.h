/* Private to the trusted runtime: its globals, the ENCLU gate, and the
 * per-incarnation state that a checkpoint must never carry over. */
#ifndef SPM_TRUSTED_INTERNAL_H
#define SPM_TRUSTED_INTERNAL_H

#include <errno.h>
#include <stdint.h>

#include "spm/abi/enclave_abi.h"
#include "spm/trts.h"

#define TRTS_HIDDEN __attribute__((visibility("hidden")))

/* Where this enclave instance lives; set once at first entry. */
struct trts_globals {
    uint64_t base;
    uint64_t size;
    const struct spm_layout_info *layout;
};
extern struct trts_globals g_trts TRTS_HIDDEN;

/* This thread's data (TCS.OGSBASGX). */
static inline struct spm_thread_data *trts_thread_data(void)
{
    uint64_t self_offset;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(self_offset));
    return (struct spm_thread_data *)(g_trts.base + self_offset);
}

/* Executes ENCLU leaf `leaf` (EREPORT, EGETKEY) with RBX/RCX/RDX, through
 * the simulated CPU when this thread entered from the sim backend. Returns RAX. */
uint64_t trts_enclu(uint64_t leaf, uint64_t rbx, uint64_t rcx, uint64_t rdx) TRTS_HIDDEN;

int64_t spm_trts_ocall_switch(uint64_t id, void *frame, uint64_t host_rsp) TRTS_HIDDEN;

void trts_heap_init(void *start, size_t size) TRTS_HIDDEN;
int trts_drbg_init(void) TRTS_HIDDEN;

/* Per-incarnation state: lives in the incarnation page(s), which are never
 * captured by a checkpoint, so a restored enclave never reuses them. */
struct trts_incarnation {
    uint64_t magic;
    struct spm_spinlock drbg_lock;
    int drbg_ready;
    uint8_t drbg[512]; /* br_hmac_drbg_context, owned by crypto/ */
};
struct trts_incarnation *trts_incarnation(void) TRTS_HIDDEN;

_Noreturn void trts_abort(void) TRTS_HIDDEN;

#endif
