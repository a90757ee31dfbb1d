/* The boundary between an SPM enclave and the host that runs it: the image
 * metadata `spm sign` writes, the measured layout page the trusted runtime
 * reads, per-thread data, and the ecall/ocall marshalling structs. Every
 * struct is packed, sized by assertion and free of implicit padding, because
 * it either crosses the boundary or is measured. Offsets used from assembly
 * are #defined next to the struct and asserted. */
#ifndef SPM_ABI_ENCLAVE_ABI_H
#define SPM_ABI_ENCLAVE_ABI_H

/* Constants shared with assembly (entry.S, the simulated EENTER). */
#define SPM_TD_SELF_OFFSET      0x00
#define SPM_TD_STACK_TOP_OFFSET 0x08
#define SPM_TD_UNTRUSTED_RSP    0x40
#define SPM_TD_UNTRUSTED_RBP    0x48
#define SPM_TD_EXIT_ADDRESS     0x50
#define SPM_TD_TRUSTED_RSP      0x58
#define SPM_TD_SIM_ENCLU        0x60
#define SPM_TD_STATE            0x68

#define SPM_TD_STATE_IDLE  0
#define SPM_TD_STATE_ECALL 1
#define SPM_TD_STATE_OCALL 2
/* Parked in an ocall while a checkpoint is taken or restored: ORET is
 * refused until the checkpoint is aborted or the restore committed. */
#define SPM_TD_STATE_FROZEN 3

#define SPM_ENTER_ECALL 0
#define SPM_ENTER_ORET  1
#define SPM_EXIT_RETURN 0
#define SPM_EXIT_OCALL  1

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

#include "spm/arch/sgx_arch.h"

/* ---- Image metadata: the non-allocated ELF section `.spm_meta` ----
 * The trusted runtime reserves it zero-filled; `spm sign` fills it. It is not
 * part of any PT_LOAD segment and therefore not measured. */
#define SPM_META_SECTION      ".spm_meta"
#define SPM_META_SECTION_SIZE 4096u
#define SPM_META_MAGIC        0x4154454D4D505300ull /* "\0SPMMETA" */
#define SPM_META_VERSION      1u

/* What the enclave author chose at signing time; the layout derives from it. */
struct spm_enclave_config {
    uint64_t heap_size;       /* bytes, page multiple */
    uint64_t stack_size;      /* bytes per TCS, page multiple */
    uint64_t elrange_size;    /* power of two; 0 at signing means "smallest that fits" */
    uint32_t tcs_count;       /* number of TCS / host threads that may be inside at once */
    uint32_t ssa_frame_pages; /* SECS.SSAFRAMESIZE */
    uint32_t ssa_frame_count; /* TCS.NSSA */
    uint32_t misc_select;
    uint64_t attributes_flags; /* SGX_FLAGS_*; DEBUG marks a debug enclave */
    uint64_t attributes_xfrm;
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint8_t reserved[20];
} __attribute__((packed));

struct spm_image_meta {
    uint64_t magic;
    uint32_t version;
    uint32_t size; /* sizeof(struct spm_image_meta) */
    struct spm_enclave_config config;
    struct sgx_sigstruct sigstruct;
    uint8_t reserved[SPM_META_SECTION_SIZE - 16 - 80 - 1808];
} __attribute__((packed));

/* ---- Layout of ELRANGE (offsets from the enclave base) ----
 *   [0, image_size)          ELF PT_LOAD pages, measured, perms from p_flags
 *   info page                struct spm_layout_info, read-only, measured
 *   incarnation pages        per-instance runtime state, RW, unmeasured
 *   heap                     RW, unmeasured (zero)
 *   for each TCS i, at thread_region_offset + i * thread_region_stride:
 *     guard page             not added
 *     stack                  RW, unmeasured
 *     thread data page       RW, measured (struct spm_thread_data initial fields)
 *     TCS page               TCS, measured
 *     SSA frames             RW, unmeasured
 * The whole is padded to elrange_size (a power of two). */
#define SPM_LAYOUT_MAGIC   0x54554F59414C5053ull /* "SPLAYOUT" */
#define SPM_LAYOUT_VERSION 1u
/* Page 0: DRBG and the checkpoint engine's state; page 1: the run list of
 * the checkpoint being written or read (checkpoint_abi.h). */
#define SPM_INCARNATION_PAGES 2u

struct spm_layout_info {
    uint64_t magic;
    uint32_t version;
    uint32_t tcs_count;
    uint64_t elrange_size;
    uint64_t image_size;
    uint64_t info_offset;
    uint64_t incarnation_offset;
    uint64_t incarnation_size;
    uint64_t heap_offset;
    uint64_t heap_size;
    uint64_t thread_region_offset;
    uint64_t thread_region_stride;
    uint64_t stack_size;
    uint32_t ssa_frame_pages;
    uint32_t ssa_frame_count;
    uint64_t reserved[3];
} __attribute__((packed));

/* Offsets inside one thread region. */
#define SPM_TR_GUARD_OFFSET 0u
#define SPM_TR_STACK_OFFSET SGX_PAGE_SIZE

/* ---- Thread data: the page TCS.OGSBASGX points at ----
 * The first 64 bytes are written at layout time and measured; they hold
 * offsets, never addresses, so the measurement does not depend on the base.
 * The rest starts zero and is the runtime's per-thread state. */
struct spm_thread_data {
    uint64_t self_offset;        /* 0x00 */
    uint64_t stack_top_offset;   /* 0x08 */
    uint64_t stack_limit_offset; /* 0x10 */
    uint64_t tcs_offset;         /* 0x18 */
    uint64_t tcs_index;          /* 0x20 */
    uint64_t measured_reserved[3];
    /* runtime state, zero at load */
    uint64_t untrusted_rsp; /* 0x40 */
    uint64_t untrusted_rbp; /* 0x48 */
    uint64_t exit_address;  /* 0x50 */
    uint64_t trusted_rsp;   /* 0x58: saved while parked in an ocall */
    uint64_t sim_enclu;     /* 0x60: simulated ENCLU entry, 0 on hardware */
    uint64_t state;         /* 0x68: SPM_TD_STATE_* */
    uint64_t ocall_count;   /* 0x70 */
    uint64_t reserved[17];
} __attribute__((packed));

/* ---- Entry and exit registers ----
 * EENTER: RBX = TCS address, RCX = exit address (the CPU sets both),
 *         RDI = SPM_ENTER_*, RSI = ecall id or ocall status,
 *         RDX = untrusted struct spm_ecall_args (ECALL only),
 *         R8  = simulated ENCLU entry (sim backend) or 0.
 * EEXIT:  RDI = SPM_EXIT_*, RSI = ecall status or ocall id,
 *         RDX = untrusted struct spm_ocall_frame (OCALL only),
 *         RCX = untrusted RSP recorded at the ECALL's entry; RSP is set
 *         to RCX on ECALL return, and below the ocall frame on OCALL. */

/* Ecall arguments, in untrusted memory; trusted code copies them in once. */
struct spm_ecall_args {
    uint64_t in_ptr;
    uint64_t in_size;
    uint64_t out_ptr;
    uint64_t out_capacity;
    uint64_t out_size; /* written by the enclave */
} __attribute__((packed));

/* Ocall frame, allocated by trusted code in untrusted memory below the
 * untrusted stack pointer: header, then in_size bytes of input, then
 * out_capacity bytes the host may fill. */
struct spm_ocall_frame {
    uint64_t in_size;
    uint64_t out_capacity;
    uint64_t out_size; /* written by the host; trusted code rejects a lie */
    uint64_t reserved;
    uint8_t data[];
} __attribute__((packed));

#define SPM_OCALL_RED_ZONE    128u
#define SPM_OCALL_FRAME_ALIGN 64u

/* Limits trusted code enforces on a single call. */
#define SPM_ECALL_MAX_IN_SIZE  (64u << 20)
#define SPM_ECALL_MAX_OUT_SIZE (64u << 20)
#define SPM_OCALL_MAX_SIZE     (1u << 20)

/* ---- Call ids ----
 * Application ecalls and ocalls are 0..N-1 in the app's tables. The runtime's
 * own calls live at SPM_RT_CALL_BASE and above. */
#define SPM_RT_CALL_BASE 0x7fff0000u
enum spm_rt_ecall {
    SPM_RT_ECALL_INIT = SPM_RT_CALL_BASE, /* first entry: self-relocation, DRBG */
    /* Checkpoint and restore, in the order checkpoint_abi.h describes. */
    SPM_RT_ECALL_CKPT_BEGIN,
    SPM_RT_ECALL_CKPT_ENCRYPT,
    SPM_RT_ECALL_CKPT_END,
    SPM_RT_ECALL_CKPT_ABORT,
    SPM_RT_ECALL_RESTORE_BEGIN,
    SPM_RT_ECALL_RESTORE_VERIFY,
    SPM_RT_ECALL_RESTORE_DECRYPT,
    SPM_RT_ECALL_RESTORE_END,
    SPM_RT_ECALL_RESTORE_ABORT,
};
enum spm_rt_ocall {
    SPM_RT_OCALL_LOG = SPM_RT_CALL_BASE, /* in: bytes to print */
    SPM_RT_OCALL_TIME,                   /* out: u64 seconds since the epoch */
    SPM_RT_OCALL_QE_TARGET_INFO,         /* out: struct sgx_target_info */
    SPM_RT_OCALL_QUOTE,                  /* in: struct sgx_report; out: quote */
    SPM_RT_OCALL_YIELD,                  /* no data: sched_yield on the host */
    SPM_RT_OCALL_ME, /* in: a message for the local Migration Enclave (me_abi.h);
                        out: its reply. The host only relays it to spmd. */
};

/* Status codes the host may return from an ocall; trusted code maps any
 * other value to -SPM_EHOST. Negative errno values as on Linux x86_64. */
#define SPM_EHOST 5 /* EIO */

_Static_assert(sizeof(struct spm_enclave_config) == 80, "enclave config");
_Static_assert(sizeof(struct spm_image_meta) == SPM_META_SECTION_SIZE, "image meta section");
_Static_assert(sizeof(struct spm_layout_info) == 128, "layout info");
_Static_assert(sizeof(struct spm_thread_data) == 256, "thread data");
_Static_assert(offsetof(struct spm_thread_data, untrusted_rsp) == SPM_TD_UNTRUSTED_RSP, "td");
_Static_assert(offsetof(struct spm_thread_data, untrusted_rbp) == SPM_TD_UNTRUSTED_RBP, "td");
_Static_assert(offsetof(struct spm_thread_data, exit_address) == SPM_TD_EXIT_ADDRESS, "td");
_Static_assert(offsetof(struct spm_thread_data, trusted_rsp) == SPM_TD_TRUSTED_RSP, "td");
_Static_assert(offsetof(struct spm_thread_data, sim_enclu) == SPM_TD_SIM_ENCLU, "td");
_Static_assert(offsetof(struct spm_thread_data, state) == SPM_TD_STATE, "td");
_Static_assert(offsetof(struct spm_thread_data, stack_top_offset) == SPM_TD_STACK_TOP_OFFSET, "td");
_Static_assert(sizeof(struct spm_ecall_args) == 40, "ecall args");
_Static_assert(sizeof(struct spm_ocall_frame) == 32, "ocall frame header");

#endif /* __ASSEMBLER__ */
#endif
