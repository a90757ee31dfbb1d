/* Private to the trusted runtime: its globals, the ENCLU gate, and the
 * per-incarnation state that a checkpoint must never carry over. The
 * engine-phase constants and field offsets at the top are shared with
 * entry.S, which refuses entries before it touches anything a checkpoint
 * may be rewriting. */
#ifndef SPM_TRUSTED_INTERNAL_H
#define SPM_TRUSTED_INTERNAL_H

/* Phases of this enclave instance (struct trts_incarnation.phase). */
#define TRTS_PHASE_FRESH        0 /* never entered */
#define TRTS_PHASE_INITIALISING 1 /* first entry running */
#define TRTS_PHASE_LIVE         2 /* runs application ecalls */
#define TRTS_PHASE_EXPORTING    3 /* CKPT_BEGIN done: workers encrypt */
#define TRTS_PHASE_EXPORT_BUSY  4 /* CKPT_END or CKPT_ABORT running: no workers */
#define TRTS_PHASE_EXPORTED     5 /* final: state escrowed, pages wiped */
#define TRTS_PHASE_RESTORING    6 /* import into a never-initialised enclave */
#define TRTS_PHASE_DEAD         7 /* final: failed first entry or abandoned import */

/* Offsets entry.S uses (asserted in trts.c). */
#define TRTS_INC_PHASE_OFFSET       0x08
#define TRTS_INC_LOCKED_ANY_OFFSET  0x10
#define TRTS_INC_LOCKED_OFFSET      0x18
#define TRTS_LAYOUT_TCS_COUNT       0x0c
#define TRTS_LAYOUT_INCARNATION_OFF 0x28
#define TRTS_LAYOUT_THREADS_OFF     0x48
#define TRTS_LAYOUT_THREADS_STRIDE  0x50
#define TRTS_LAYOUT_STACK_SIZE      0x58
#define TRTS_MAX_TCS                256

#ifndef __ASSEMBLER__
#include <errno.h>
#include <stdint.h>

#include "spm/abi/checkpoint_abi.h"
#include "spm/abi/enclave_abi.h"
#include "spm/trts.h"

#define TRTS_HIDDEN __attribute__((visibility("hidden")))

/* Where this enclave instance lives; set once at first entry. It is in
 * .bss, so a checkpoint carries it (same base, same values). Code that may
 * run while .bss holds ciphertext (the import) uses trts_base() and
 * trts_layout() instead, which read only the image and the measured info
 * page. */
struct trts_globals {
    uint64_t base;
    uint64_t size;
    const struct spm_layout_info *layout;
};
extern struct trts_globals g_trts TRTS_HIDDEN;

extern const uint8_t __ehdr_start[] TRTS_HIDDEN;
extern const uint8_t _end[] TRTS_HIDDEN;

/* The enclave's base: the ELF header is its first byte (RIP-relative, valid
 * before relocation and whatever the data pages hold). */
static inline uint64_t trts_base(void)
{
    return (uint64_t)__ehdr_start;
}

/* The measured layout page, which follows the image. */
static inline const struct spm_layout_info *trts_layout(void)
{
    return (const struct spm_layout_info *)(((uint64_t)_end + SGX_PAGE_SIZE - 1) &
                                            ~(uint64_t)(SGX_PAGE_SIZE - 1));
}

/* This thread's data (TCS.OGSBASGX). Only for a thread that is inside: its
 * thread data page is then its own and intact. */
static inline struct spm_thread_data *trts_thread_data(void)
{
    uint64_t self_offset;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(self_offset));
    return (struct spm_thread_data *)(trts_base() + self_offset);
}

/* Executes ENCLU leaf `leaf` (EREPORT, EGETKEY) with RBX/RCX/RDX, through
 * the simulated CPU when this thread entered from the sim backend. Returns RAX. */
uint64_t trts_enclu(uint64_t leaf, uint64_t rbx, uint64_t rcx, uint64_t rdx) TRTS_HIDDEN;

int64_t spm_trts_ocall_switch(uint64_t id, void *frame, uint64_t host_rsp) TRTS_HIDDEN;

void trts_heap_init(void *start, size_t size) TRTS_HIDDEN;
/* End of the heap ever handed out (the allocator's bump pointer), rounded
 * up to a page: above it the heap was never written. */
uint64_t trts_heap_high_water(void) TRTS_HIDDEN;
int trts_drbg_init(void) TRTS_HIDDEN;

/* The first entry's work that an import needs as well: self-relocation and
 * g_trts. -EINVAL if the layout page is not what the image expects. */
int trts_relocate_once(void) TRTS_HIDDEN __attribute__((warn_unused_result));

/* The checkpoint engine's state: the capture in progress (export) or the
 * image being read (import). Keys live here and nowhere else. */
struct trts_ckpt_state {
    struct spm_ckpt_header header; /* built by CKPT_BEGIN / copied in by RESTORE_BEGIN */
    uint8_t digest[32];            /* SHA-256(header || runs): every chunk's AAD */
    uint8_t key[SPM_CKPT_KEY_SIZE];
    uint8_t lease[16];
    _Alignas(8) uint8_t me_session[128]; /* struct trts_me_session, kept across calls */
    int control_busy;                    /* one BEGIN/END/ABORT at a time */
    int key_ready;                       /* key holds K */
    int escrow_maybe_sent;               /* an ESCROW may have reached the ME */
    int lease_drawn;                     /* a COMMIT used `lease`: retry with the same */
    uint32_t next_chunk;                 /* work claimed by ENCRYPT/VERIFY/DECRYPT */
    uint32_t chunks_done;                /* ...and finished */
    uint32_t next_decrypt;               /* DECRYPT's own claim counter */
    uint32_t decrypted;
    uint32_t active_workers; /* worker ecalls between entry and exit */
    uint32_t step;           /* import: which calls are allowed (ckpt.c) */
    int failed;              /* a worker saw a bad tag: no more work */
};

/* Per-incarnation state: lives in the incarnation pages, which are never
 * captured by a checkpoint, so a restored enclave never reuses them. The
 * first fields are read by entry.S. */
struct trts_incarnation {
    uint64_t magic;
    uint32_t phase; /* TRTS_PHASE_* */
    uint32_t reserved;
    uint64_t locked_any; /* nonzero while some TCS is locked by an import */
    /* TCSs whose thread region an import is rewriting: entry.S refuses
     * them before reading their thread data. */
    uint64_t locked[TRTS_MAX_TCS / 64];
    struct spm_spinlock drbg_lock;
    int drbg_ready;
    uint8_t drbg[512]; /* br_hmac_drbg_context, owned by crypto/ */
    struct trts_ckpt_state ckpt;
};

/* Page 1 of the incarnation: the run list of the checkpoint being written
 * or read. */
struct trts_ckpt_runs {
    struct spm_ckpt_run runs[SPM_CKPT_MAX_RUNS];
};

/* The incarnation pages, found through the measured layout page so that
 * entry.S and the import can reach them without .bss. */
static inline struct trts_incarnation *trts_incarnation(void)
{
    return (struct trts_incarnation *)(trts_base() + trts_layout()->incarnation_offset);
}
static inline struct trts_ckpt_runs *trts_ckpt_runs(void)
{
    return (struct trts_ckpt_runs *)(trts_base() + trts_layout()->incarnation_offset +
                                     SGX_PAGE_SIZE);
}

/* The runtime ecalls CKPT_* and RESTORE_* (ckpt.c). `args_address` is the
 * host's struct spm_ecall_args, unchecked. */
int64_t trts_ckpt_ecall(uint64_t id, uint64_t args_address) TRTS_HIDDEN;

_Noreturn void trts_abort(void) TRTS_HIDDEN;

_Static_assert(sizeof(struct trts_incarnation) <= SGX_PAGE_SIZE, "engine state fits page 0");
_Static_assert(sizeof(struct trts_ckpt_runs) <= SGX_PAGE_SIZE, "run list fits page 1");
_Static_assert(SPM_INCARNATION_PAGES >= 2, "two incarnation pages");

#endif /* __ASSEMBLER__ */
#endif
