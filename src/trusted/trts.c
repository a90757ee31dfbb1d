/* The trusted runtime's core: first-entry initialisation (self-relocation of
 * the static-PIE image, heap, DRBG), the ecall dispatcher that copies
 * arguments across the boundary after checking them, and ocalls. No pointer
 * into untrusted memory outlives the call that was handed it. Whether this
 * instance may run application code at all is the incarnation's phase
 * (trts_internal.h), not a .bss flag: an import rewrites .bss, and an
 * export wipes it. */
#include "trts_internal.h"

#include <string.h>

struct trts_globals g_trts;

/* ELF bits needed for self-relocation (no <elf.h> in freestanding code). */
#define DT_NULL           0
#define DT_RELA           7
#define DT_RELASZ         8
#define DT_RELAENT        9
#define R_X86_64_RELATIVE 8

struct elf_dyn {
    int64_t tag;
    uint64_t val;
};
struct elf_rela {
    uint64_t offset;
    uint64_t info;
    int64_t addend;
};

extern const struct elf_dyn _DYNAMIC[] TRTS_HIDDEN;
/* Applies R_X86_64_RELATIVE relocations. Runs before any relocated pointer
 * is used; everything here is RIP-relative. The signer refused any other
 * relocation type, so anything else is a bug worth stopping for. */
static void relocate(uint64_t base)
{
    uint64_t rela = 0, rela_size = 0, rela_ent = sizeof(struct elf_rela);
    for (const struct elf_dyn *d = _DYNAMIC; d->tag != DT_NULL; d++) {
        if (d->tag == DT_RELA)
            rela = d->val;
        else if (d->tag == DT_RELASZ)
            rela_size = d->val;
        else if (d->tag == DT_RELAENT)
            rela_ent = d->val;
    }
    if (rela_ent != sizeof(struct elf_rela))
        trts_abort();
    for (uint64_t off = 0; off < rela_size; off += rela_ent) {
        const struct elf_rela *r = (const struct elf_rela *)(base + rela + off);
        if ((uint32_t)r->info != R_X86_64_RELATIVE)
            trts_abort();
        *(uint64_t *)(base + r->offset) = base + (uint64_t)r->addend;
    }
}

int trts_relocate_once(void)
{
    uint64_t base = trts_base();
    const struct spm_layout_info *info = trts_layout();
    if (info->magic != SPM_LAYOUT_MAGIC || info->version != SPM_LAYOUT_VERSION ||
        info->info_offset != (uint64_t)info - base)
        return -EINVAL;
    relocate(base);
    g_trts.base = base;
    g_trts.size = info->elrange_size;
    g_trts.layout = info;
    return 0;
}

/* The first entry of an enclave that is not being imported: relocation,
 * then a fresh heap (an import brings its heap along instead). Whoever
 * moves the phase from FRESH does it; others wait for the outcome. */
static int init_once(struct trts_incarnation *inc)
{
    uint32_t phase = TRTS_PHASE_FRESH;
    if (__atomic_compare_exchange_n(&inc->phase, &phase, TRTS_PHASE_INITIALISING, false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        int ret = trts_relocate_once();
        if (ret < 0) {
            __atomic_store_n(&inc->phase, TRTS_PHASE_DEAD, __ATOMIC_SEQ_CST);
            return ret;
        }
        const struct spm_layout_info *info = trts_layout();
        trts_heap_init((void *)(trts_base() + info->heap_offset), info->heap_size);
        __atomic_store_n(&inc->phase, TRTS_PHASE_LIVE, __ATOMIC_SEQ_CST);
        return 0;
    }
    while ((phase = __atomic_load_n(&inc->phase, __ATOMIC_ACQUIRE)) == TRTS_PHASE_INITIALISING)
        __builtin_ia32_pause();
    if (phase == TRTS_PHASE_LIVE)
        return 0;
    return phase == TRTS_PHASE_DEAD || phase == TRTS_PHASE_EXPORTED ? -ESHUTDOWN : -EBUSY;
}

/* Both read only the image and the measured layout page: they guard the
 * import while .bss holds ciphertext. */
bool spm_is_within_enclave(const void *p, size_t size)
{
    uint64_t start = (uint64_t)p, end = start + size, base = trts_base();
    if (end < start)
        return false;
    return start >= base && end <= base + trts_layout()->elrange_size;
}

bool spm_is_outside_enclave(const void *p, size_t size)
{
    uint64_t start = (uint64_t)p, end = start + size, base = trts_base();
    if (end < start || start == 0)
        return false;
    return end <= base || start >= base + trts_layout()->elrange_size;
}

/* Small calls use stack buffers: no heap lock on the common path. */
#define ECALL_STACK_BUFFER_SIZE 2048u

static int64_t dispatch_app_ecall(uint64_t id, uint64_t args_address)
{
    struct spm_ecall_args *host_args = (struct spm_ecall_args *)args_address;
    if (!spm_is_outside_enclave(host_args, sizeof(*host_args)))
        return -EFAULT;
    struct spm_ecall_args args;
    memcpy(&args, host_args, sizeof(args)); /* read once: the host may change it */
    if (args.in_size > SPM_ECALL_MAX_IN_SIZE || args.out_capacity > SPM_ECALL_MAX_OUT_SIZE)
        return -E2BIG;
    if ((args.in_size && !spm_is_outside_enclave((void *)args.in_ptr, args.in_size)) ||
        (args.out_capacity && !spm_is_outside_enclave((void *)args.out_ptr, args.out_capacity)))
        return -EFAULT;
    if (id >= spm_app_ecall_count || !spm_app_ecalls[id].fn)
        return -ENOSYS;

    uint8_t in_stack[ECALL_STACK_BUFFER_SIZE], out_stack[ECALL_STACK_BUFFER_SIZE];
    uint8_t *in = in_stack, *out = out_stack;
    if (args.in_size > sizeof(in_stack) && !(in = malloc(args.in_size)))
        return -ENOMEM;
    if (args.out_capacity > sizeof(out_stack) && !(out = malloc(args.out_capacity))) {
        if (in != in_stack)
            free(in);
        return -ENOMEM;
    }
    memcpy(in, (const void *)args.in_ptr, args.in_size);
    size_t out_size = 0;
    int64_t ret = spm_app_ecalls[id].fn(in, args.in_size, out, args.out_capacity, &out_size);
    if (ret == 0 && out_size > args.out_capacity)
        ret = -EOVERFLOW;
    if (ret == 0) {
        memcpy((void *)args.out_ptr, out, out_size);
        host_args->out_size = out_size;
    }
    if (in != in_stack)
        free(in);
    if (out != out_stack)
        free(out);
    return ret;
}

/* Called from entry.S on the trusted stack for every ECALL that entry.S
 * admitted (the phase was not final and this TCS is not being imported). */
int64_t spm_trts_ecall(uint64_t id, uint64_t args_address, struct spm_thread_data *td,
                       uint64_t sim_enclu) TRTS_HIDDEN;
int64_t spm_trts_ecall(uint64_t id, uint64_t args_address, struct spm_thread_data *td,
                       uint64_t sim_enclu)
{
    struct trts_incarnation *inc = trts_incarnation();
    /* A simulated ENCLU inside ELRANGE would let the host pick enclave code
     * to run; outside it, on hardware, it can only fault. */
    if (sim_enclu && !spm_is_outside_enclave((void *)sim_enclu, 1)) {
        td->sim_enclu = 0;
        return -EINVAL;
    }
    td->sim_enclu = sim_enclu;
    if (id >= SPM_RT_ECALL_CKPT_BEGIN && id <= SPM_RT_ECALL_RESTORE_ABORT)
        return trts_ckpt_ecall(id, args_address);
    /* entry.S published this thread's ECALL state with a locked cmpxchg;
     * CKPT_BEGIN publishes EXPORTING and then scans every thread's state.
     * With a full fence on both sides, either BEGIN sees this thread inside
     * and refuses, or this thread sees EXPORTING and refuses. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint32_t phase = __atomic_load_n(&inc->phase, __ATOMIC_SEQ_CST);
    if (phase == TRTS_PHASE_FRESH || phase == TRTS_PHASE_INITIALISING) {
        int ret = init_once(inc);
        if (ret < 0)
            return ret;
    } else if (phase != TRTS_PHASE_LIVE) {
        return phase == TRTS_PHASE_EXPORTED || phase == TRTS_PHASE_DEAD ? -ESHUTDOWN : -EBUSY;
    }
    if (id == SPM_RT_ECALL_INIT)
        return 0;
    return dispatch_app_ecall(id, args_address);
}

/* Host statuses an ocall may return; anything else becomes -EIO. */
static int whitelist_status(int64_t status)
{
    static const int8_t allowed[] = {
        0,       -EPERM,   -ENOENT,  -EINTR,  -EIO,    -E2BIG,      -EBADF,  -EAGAIN,    -ENOMEM,
        -EACCES, -EBUSY,   -EEXIST,  -EINVAL, -ENOSPC, -EPIPE,      -ERANGE, -ENOSYS,    -ENODATA,
        -EPROTO, -EBADMSG, -ENOTSUP, -ETIME,  -EFBIG,  -ECONNRESET, -EFAULT, -ETIMEDOUT, -ECANCELED,
    };
    for (size_t i = 0; i < sizeof(allowed); i++)
        if (status == allowed[i])
            return (int)status;
    if (status == -EKEYREJECTED)
        return -EKEYREJECTED;
    return -EIO;
}

int spm_ocall(uint32_t id, const void *in, size_t in_size, void *out, size_t out_capacity,
              size_t *out_size)
{
    struct spm_thread_data *td = trts_thread_data();
    if (td->state != SPM_TD_STATE_ECALL)
        return -EPERM;
    if (in_size > SPM_OCALL_MAX_SIZE || out_capacity > SPM_OCALL_MAX_SIZE)
        return -E2BIG;
    uint64_t total = sizeof(struct spm_ocall_frame) + in_size + out_capacity;
    uint64_t host_rsp = td->untrusted_rsp;
    if (host_rsp < total + SPM_OCALL_RED_ZONE + SPM_OCALL_FRAME_ALIGN)
        return -EFAULT;
    uint64_t frame_address = (host_rsp - SPM_OCALL_RED_ZONE - total) & ~(uint64_t)63;
    struct spm_ocall_frame *frame = (struct spm_ocall_frame *)frame_address;
    if (!spm_is_outside_enclave(frame, host_rsp - frame_address))
        return -EFAULT;
    frame->in_size = in_size;
    frame->out_capacity = out_capacity;
    frame->out_size = 0;
    frame->reserved = 0;
    if (in_size)
        memcpy(frame->data, in, in_size);

    int64_t status = spm_trts_ocall_switch(id, frame, frame_address);

    int ret = whitelist_status(status);
    /* One read of host memory: the host may change it at any moment. */
    uint64_t host_out_size = ((volatile struct spm_ocall_frame *)frame)->out_size;
    if (ret == 0 && host_out_size > out_capacity)
        ret = -EPROTO;
    if (ret == 0 && host_out_size)
        memcpy(out, frame->data + in_size, host_out_size);
    if (out_size)
        *out_size = ret == 0 ? host_out_size : 0;
    return ret;
}

void spm_print(const char *msg)
{
    size_t ignored;
    if (spm_ocall(SPM_RT_OCALL_LOG, msg, strlen(msg), NULL, 0, &ignored) < 0)
        return; /* nowhere to report that printing failed */
}

uint64_t spm_untrusted_time(void)
{
    uint64_t now = 0;
    size_t size = 0;
    if (spm_ocall(SPM_RT_OCALL_TIME, NULL, 0, &now, sizeof(now), &size) != 0 || size != sizeof(now))
        return 0;
    return now;
}

_Noreturn void trts_abort(void)
{
    for (;;)
        __builtin_trap();
}

uint64_t trts_enclu(uint64_t leaf, uint64_t rbx, uint64_t rcx, uint64_t rdx)
{
    struct spm_thread_data *td = trts_thread_data();
    if (td->sim_enclu) {
        uint64_t (*sim)(uint64_t, uint64_t, uint64_t, uint64_t) = (void *)td->sim_enclu;
        return sim(leaf, rbx, rcx, rdx);
    }
    uint64_t rax = leaf;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd7" /* ENCLU */
                     : "+a"(rax)
                     : "b"(rbx), "c"(rcx), "d"(rdx)
                     : "memory", "cc");
    return rax;
}

_Static_assert(offsetof(struct trts_incarnation, phase) == TRTS_INC_PHASE_OFFSET, "entry.S");
_Static_assert(offsetof(struct trts_incarnation, locked_any) == TRTS_INC_LOCKED_ANY_OFFSET,
               "entry.S");
_Static_assert(offsetof(struct trts_incarnation, locked) == TRTS_INC_LOCKED_OFFSET, "entry.S");
_Static_assert(offsetof(struct spm_layout_info, tcs_count) == TRTS_LAYOUT_TCS_COUNT, "entry.S");
_Static_assert(offsetof(struct spm_layout_info, incarnation_offset) == TRTS_LAYOUT_INCARNATION_OFF,
               "entry.S");
_Static_assert(offsetof(struct spm_layout_info, thread_region_offset) == TRTS_LAYOUT_THREADS_OFF,
               "entry.S");
_Static_assert(offsetof(struct spm_layout_info, thread_region_stride) == TRTS_LAYOUT_THREADS_STRIDE,
               "entry.S");
_Static_assert(offsetof(struct spm_layout_info, stack_size) == TRTS_LAYOUT_STACK_SIZE, "entry.S");
