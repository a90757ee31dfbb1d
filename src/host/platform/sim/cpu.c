/* The software SGX CPU's enclave instructions: ECREATE maps a naturally
 * aligned ELRANGE in this process, EADD copies and measures pages, EINIT
 * verifies the SIGSTRUCT and the measurement (stricter than the SDK's
 * simulation, which checks neither), EENTER switches GS to the TCS's thread
 * data and jumps in, and the ENCLU gate serves EREPORT/EGETKEY and the
 * platform's monotonic counters for the enclave running on this thread.
 * The platform's secrets and files stay in sim/ (store.c, derive.c); this
 * file only routes to them. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <asm/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "image/image.h"
#include "platform/platform.h"
#include "sim.h"
#include "sim_internal.h"

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

struct spm_hw_enclave {
    struct spm_sim_platform *platform;
    struct sgx_secs secs;
    uint8_t *base;
    uint64_t size;
    uint8_t *page_prot; /* per page: PROT_* to apply at EINIT, 0xff = not added */
    struct spm_measurement measurement;
    bool initialized;
};

/* Mirrors the offsets in enter.S. */
struct sim_enter_frame {
    uint64_t rdi_in, rsi_in, rdx_in, r8_in;
    uint64_t rdi_out, rsi_out, rdx_out;
    uint64_t tcs, oentry;
    struct spm_hw_enclave *enclave;
    struct spm_enter_io *io;
    spm_ocall_dispatch_fn dispatch;
    uint64_t gs_base;
    uint64_t host_rsp;  /* this thread's stack, where ocalls are served */
    uint64_t ocall_top; /* the RSP the enclave sees: its ocall frames go below */
};

int spm_sim_eenter(uint64_t tcs, uint64_t oentry, struct sim_enter_frame *f)
    __attribute__((visibility("hidden")));
int64_t spm_sim_ocall_entry(struct sim_enter_frame *f, uint64_t id, void *frame)
    __attribute__((visibility("hidden")));

/* The enclave this thread is executing, for the ENCLU gate. */
static __thread struct spm_hw_enclave *t_current;
static __thread uint64_t t_gs_base;

_Static_assert(offsetof(struct sim_enter_frame, r8_in) == 24, "enter.S F_R8_IN");
_Static_assert(offsetof(struct sim_enter_frame, rdx_out) == 48, "enter.S F_RDX_OUT");
_Static_assert(offsetof(struct sim_enter_frame, oentry) == 64, "enter.S F_OENTRY");
_Static_assert(offsetof(struct sim_enter_frame, host_rsp) == 104, "enter.S F_HOST_RSP");
_Static_assert(offsetof(struct sim_enter_frame, ocall_top) == 112, "enter.S F_OCALL_TOP");

/* Each thread's ocall areas (enter.S), one per nesting level: an ocall
 * handler may enter an enclave again. An area holds the largest frame the
 * trusted runtime builds (header, 1 MiB in, 1 MiB out, red zone, alignment)
 * with room to spare; it is mapped on a thread's first entry at that level
 * and unmapped when the thread exits. */
#define SIM_OCALL_AREA_SIZE   (2 * (size_t)SPM_OCALL_MAX_SIZE + (64u << 10))
#define SIM_OCALL_AREA_LEVELS 4u
static __thread uint8_t *t_ocall_area[SIM_OCALL_AREA_LEVELS];
static __thread unsigned t_ocall_level;
static pthread_key_t g_ocall_area_key;
static pthread_once_t g_ocall_area_once = PTHREAD_ONCE_INIT;

static void ocall_areas_unmap(void *unused)
{
    (void)unused;
    for (unsigned i = 0; i < SIM_OCALL_AREA_LEVELS; i++) {
        if (t_ocall_area[i])
            munmap(t_ocall_area[i], SIM_OCALL_AREA_SIZE);
        t_ocall_area[i] = NULL;
    }
}

static void ocall_area_key_create(void)
{
    if (pthread_key_create(&g_ocall_area_key, ocall_areas_unmap) != 0)
        spm_error("EENTER: cannot register the ocall areas' cleanup: they stay mapped until "
                  "the process exits");
}

/* The top of this thread's ocall area for the next entry, or 0. */
static uint64_t ocall_area_top(void)
{
    if (t_ocall_level >= SIM_OCALL_AREA_LEVELS) {
        spm_error("EENTER: ocall handlers entered enclaves %u deep on this thread; at most %u "
                  "are supported",
                  t_ocall_level, SIM_OCALL_AREA_LEVELS);
        return 0;
    }
    uint8_t **area = &t_ocall_area[t_ocall_level];
    if (!*area) {
        void *p = mmap(NULL, SIM_OCALL_AREA_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            spm_error("EENTER: cannot map this thread's ocall area (%zu bytes): %s",
                      SIM_OCALL_AREA_SIZE, strerror(errno));
            return 0;
        }
        *area = p;
        pthread_once(&g_ocall_area_once, ocall_area_key_create);
        pthread_setspecific(g_ocall_area_key, (void *)1);
    }
    return (uint64_t)(*area + SIM_OCALL_AREA_SIZE);
}

#define PAGE_NOT_ADDED 0xff

static int sim_open(const char *dir, struct spm_platform **out)
{
    return spm_sim_platform_open(dir, (struct spm_sim_platform **)out);
}

static void sim_close(struct spm_platform *p)
{
    spm_sim_platform_close((struct spm_sim_platform *)p);
}

static int sim_ecreate(struct spm_platform *p, struct sgx_secs *secs, struct spm_hw_enclave **out)
{
    uint64_t size = secs->size;
    if (size < 2 * SGX_PAGE_SIZE || (size & (size - 1)) || (secs->base & (size - 1))) {
        spm_error("ECREATE: ELRANGE size %#llx / base %#llx not a naturally aligned power of two",
                  (unsigned long long)size, (unsigned long long)secs->base);
        return -EINVAL;
    }
    struct spm_hw_enclave *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->page_prot = malloc(size / SGX_PAGE_SIZE);
    if (!e->page_prot) {
        free(e);
        return -ENOMEM;
    }
    memset(e->page_prot, PAGE_NOT_ADDED, size / SGX_PAGE_SIZE);
    uint8_t *base;
    if (secs->base) {
        base = mmap((void *)secs->base, size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED || base != (uint8_t *)secs->base) {
            int err = base == MAP_FAILED ? errno : EEXIST;
            if (base != MAP_FAILED)
                munmap(base, size);
            spm_error("ECREATE: cannot map ELRANGE at %#llx (%#llx bytes): %s",
                      (unsigned long long)secs->base, (unsigned long long)size, strerror(err));
            free(e->page_prot);
            free(e);
            return -err;
        }
    } else {
        /* Reserve twice the size, keep the naturally aligned half. */
        uint8_t *area =
            mmap(NULL, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (area == MAP_FAILED) {
            int err = errno;
            spm_error("ECREATE: cannot reserve %#llx bytes for ELRANGE: %s",
                      (unsigned long long)size, strerror(err));
            free(e->page_prot);
            free(e);
            return -err;
        }
        base = (uint8_t *)(((uintptr_t)area + size - 1) & ~(uintptr_t)(size - 1));
        if (base > area)
            munmap(area, (size_t)(base - area));
        if (base + size < area + 2 * size)
            munmap(base + size, (size_t)(area + 2 * size - (base + size)));
        if (mprotect(base, size, PROT_READ | PROT_WRITE) < 0) {
            int err = errno;
            munmap(base, size);
            free(e->page_prot);
            free(e);
            return -err;
        }
    }
    /* EADD and an import write ELRANGE's pages in long runs: let the
     * kernel back it with 2 MiB pages where it can (advice only). */
    (void)madvise(base, size, MADV_HUGEPAGE);
    secs->base = (uint64_t)base;
    e->platform = (struct spm_sim_platform *)p;
    e->secs = *secs;
    e->base = base;
    e->size = size;
    spm_measure_ecreate(&e->measurement, secs->ssa_frame_size, size);
    *out = e;
    return 0;
}

static int sim_eadd(struct spm_hw_enclave *e, uint64_t offset, const uint8_t *page,
                    uint64_t secinfo_flags, bool measure)
{
    if (e->initialized || offset % SGX_PAGE_SIZE || offset >= e->size ||
        e->page_prot[offset / SGX_PAGE_SIZE] != PAGE_NOT_ADDED) {
        spm_error("EADD: page at offset %#llx refused (after EINIT, unaligned, outside "
                  "ELRANGE or added twice)",
                  (unsigned long long)offset);
        return -EINVAL;
    }
    uint64_t type = secinfo_flags & SGX_SECINFO_PAGE_TYPE_MASK;
    uint8_t prot;
    if (type == SGX_SECINFO_TCS) {
        if (secinfo_flags & 7)
            return -EINVAL;
        prot = PROT_READ | PROT_WRITE; /* TCS pages are RW in the EPCM's eyes */
    } else if (type == SGX_SECINFO_REG) {
        if ((secinfo_flags & SGX_SECINFO_W) && !(secinfo_flags & SGX_SECINFO_R))
            return -EINVAL;
        prot = (uint8_t)(((secinfo_flags & SGX_SECINFO_R) ? PROT_READ : 0) |
                         ((secinfo_flags & SGX_SECINFO_W) ? PROT_WRITE : 0) |
                         ((secinfo_flags & SGX_SECINFO_X) ? PROT_EXEC : 0));
    } else {
        return -EINVAL;
    }
    /* Unmeasured pages of a fresh mapping are already zero: skip the copy
     * when the source is zero too (heaps and stacks are most of ELRANGE). */
    if (measure || page[0] || memcmp(page, page + 1, SGX_PAGE_SIZE - 1) != 0)
        memcpy(e->base + offset, page, SGX_PAGE_SIZE);
    e->page_prot[offset / SGX_PAGE_SIZE] = prot;
    spm_measure_page(&e->measurement, offset, secinfo_flags, measure, page);
    return 0;
}

static int apply_page_protections(struct spm_hw_enclave *e)
{
    uint64_t pages = e->size / SGX_PAGE_SIZE;
    for (uint64_t i = 0; i < pages;) {
        uint64_t j = i + 1;
        while (j < pages && e->page_prot[j] == e->page_prot[i])
            j++;
        int prot = e->page_prot[i] == PAGE_NOT_ADDED ? PROT_NONE : e->page_prot[i];
        if (mprotect(e->base + i * SGX_PAGE_SIZE, (j - i) * SGX_PAGE_SIZE, prot) < 0)
            return -errno;
        i = j;
    }
    return 0;
}

static int sim_einit(struct spm_hw_enclave *e, const struct sgx_sigstruct *sig)
{
    uint8_t mrenclave[32], mrsigner[32];
    spm_measure_final(&e->measurement, mrenclave);
    int ret = spm_sigstruct_verify(sig, mrsigner);
    if (ret < 0) {
        spm_error("EINIT: SIGSTRUCT does not verify");
        return ret;
    }
    if (spm_ct_memcmp(mrenclave, sig->body.mr_enclave, 32) != 0) {
        char have[65], want[65];
        spm_hex(mrenclave, 32, have);
        spm_hex(sig->body.mr_enclave, 32, want);
        spm_error("EINIT: MRENCLAVE mismatch: the loaded image measures %s but its SIGSTRUCT "
                  "says %s (image modified after signing?)",
                  have, want);
        return -EKEYREJECTED;
    }
    const struct sgx_attributes mask = sig->body.attribute_mask;
    if ((e->secs.attributes.flags & mask.flags) != (sig->body.attributes.flags & mask.flags) ||
        (e->secs.attributes.xfrm & mask.xfrm) != (sig->body.attributes.xfrm & mask.xfrm) ||
        (e->secs.misc_select & sig->body.misc_mask) !=
            (sig->body.misc_select & sig->body.misc_mask)) {
        spm_error("EINIT: enclave attributes do not match the SIGSTRUCT's");
        return -EKEYREJECTED;
    }
    if ((ret = apply_page_protections(e)) < 0) {
        spm_error("EINIT: cannot apply page permissions: %s", strerror(-ret));
        return ret;
    }
    memcpy(e->secs.mr_enclave, mrenclave, 32);
    memcpy(e->secs.mr_signer, mrsigner, 32);
    e->secs.isv_prod_id = sig->body.isv_prod_id;
    e->secs.isv_svn = sig->body.isv_svn;
    /* The KSS identity, where the SDK simulation keeps it (sim_internal.h). */
    memcpy((uint8_t *)&e->secs + SPM_SIM_SECS_ISVFAMILYID_OFFSET, sig->body.isv_family_id,
           SGX_ISV_FAMILY_ID_SIZE);
    memcpy((uint8_t *)&e->secs + SPM_SIM_SECS_ISVEXTPRODID_OFFSET, sig->body.isv_ext_prod_id,
           SGX_ISVEXT_PROD_ID_SIZE);
    e->secs.attributes.flags |= SGX_FLAGS_INITTED;
    e->initialized = true;
    return 0;
}

static bool range_in_enclave(const struct spm_hw_enclave *e, uint64_t p, uint64_t size,
                             uint64_t align)
{
    uint64_t base = (uint64_t)e->base;
    return p % align == 0 && p >= base && p + size >= p && p + size <= base + e->size;
}

/* What RAX holds after a leaf whose simulation failed inside the host's
 * crypto library: no SGX error code means that, so use one no instruction
 * returns; the trusted runtime treats every non-zero value as failure. */
#define SIM_ENCLU_INTERNAL_ERROR 0xffffffffull

/* The ENCLU gate the enclave calls (through TD.sim_enclu) for EREPORT,
 * EGETKEY and the SPM counter leaves (sim_internal.h). Operands must lie
 * inside the calling enclave, as on hardware. */
static uint64_t sim_enclu(uint64_t leaf, uint64_t rbx, uint64_t rcx, uint64_t rdx)
{
    struct spm_hw_enclave *e = t_current;
    if (!e)
        return SGX_INVALID_ATTRIBUTE;
    if (leaf == SGX_ENCLU_EREPORT) {
        if (!range_in_enclave(e, rbx, sizeof(struct sgx_target_info), 512) ||
            !range_in_enclave(e, rcx, 64, 128) ||
            !range_in_enclave(e, rdx, sizeof(struct sgx_report), 512))
            return SGX_INVALID_ATTRIBUTE;
        return spm_sim_ereport(e->platform, &e->secs, (const struct sgx_target_info *)rbx,
                               (const uint8_t *)rcx, (struct sgx_report *)rdx) == 0
                   ? SGX_SUCCESS
                   : SIM_ENCLU_INTERNAL_ERROR;
    }
    if (leaf == SGX_ENCLU_EGETKEY) {
        if (!range_in_enclave(e, rbx, sizeof(struct sgx_key_request), 512) ||
            !range_in_enclave(e, rcx, 16, 16))
            return SGX_INVALID_ATTRIBUTE;
        return (uint64_t)spm_sim_egetkey(e->platform, &e->secs, (const struct sgx_key_request *)rbx,
                                         (uint8_t *)rcx);
    }
    if (leaf == SPM_SIM_ENCLU_COUNTER_READ || leaf == SPM_SIM_ENCLU_COUNTER_INCREMENT) {
        if (!range_in_enclave(e, rbx, 16, 16) || !range_in_enclave(e, rcx, 8, 8) ||
            !range_in_enclave(e, rdx, SPM_SIM_COUNTER_TAG_SIZE, 16))
            return SGX_INVALID_ATTRIBUTE;
        /* Copied out of the enclave first, as the CPU latches operands. */
        uint8_t id[16], tag[SPM_SIM_COUNTER_TAG_SIZE];
        uint64_t value = 0;
        memcpy(id, (const void *)rbx, sizeof(id));
        int ret;
        if (leaf == SPM_SIM_ENCLU_COUNTER_READ) {
            ret = spm_sim_counter_read(e->platform, e->secs.mr_signer, id, &value, tag);
        } else {
            memcpy(tag, (const void *)rdx, sizeof(tag));
            ret = spm_sim_counter_increment(e->platform, e->secs.mr_signer, id, tag, &value);
        }
        if (ret < 0)
            return SIM_ENCLU_INTERNAL_ERROR;
        memcpy((void *)rcx, &value, sizeof(value));
        if (leaf == SPM_SIM_ENCLU_COUNTER_READ)
            memcpy((void *)rdx, tag, sizeof(tag));
        return SGX_SUCCESS;
    }
    return SGX_INVALID_ATTRIBUTE;
}

static void set_gs_base(uint64_t gs_base)
{
    /* Whether the kernel lets user space write GS directly; fixed for the
     * life of the process, so asked once rather than on every switch. */
    static int has_wrgsbase = -1;
    if (t_gs_base == gs_base)
        return;
    if (has_wrgsbase < 0)
        __atomic_store_n(&has_wrgsbase, (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) != 0,
                         __ATOMIC_RELAXED);
    if (__atomic_load_n(&has_wrgsbase, __ATOMIC_RELAXED))
        __asm__ volatile("wrgsbase %0" : : "r"(gs_base) : "memory");
    else
        syscall(SYS_arch_prctl, ARCH_SET_GS, gs_base);
    t_gs_base = gs_base;
}

int64_t spm_sim_ocall_entry(struct sim_enter_frame *f, uint64_t id, void *frame)
{
    t_current = NULL;
    int64_t status = f->dispatch(f->io->ocall_ctx, id, frame);
    /* A checkpoint may have rebuilt the enclave (same base, new object)
     * while this thread was out; the handler may have entered another
     * enclave on this thread, and a restored process may come back with a
     * GS base the kernel set. So both are set again, unconditionally. */
    if (f->io->enclave_slot)
        f->enclave = *f->io->enclave_slot;
    t_gs_base = 0;
    set_gs_base(f->gs_base);
    t_current = f->enclave;
    return status;
}

static int sim_eenter(struct spm_hw_enclave *e, uint64_t tcs_offset, struct spm_enter_io *io,
                      spm_ocall_dispatch_fn dispatch)
{
    if (!e->initialized || tcs_offset >= e->size || tcs_offset % SGX_PAGE_SIZE)
        return -EINVAL;
    const struct sgx_tcs *tcs = (const struct sgx_tcs *)(e->base + tcs_offset);
    if (t_current) {
        spm_error("EENTER: this thread is already inside an enclave (nested ecalls are not "
                  "supported)");
        return -EDEADLK;
    }
    struct sim_enter_frame f = {
        .rdi_in = io->rdi_in,
        .rsi_in = io->rsi_in,
        .rdx_in = io->rdx_in,
        .r8_in = (uint64_t)sim_enclu,
        .enclave = e,
        .io = io,
        .dispatch = dispatch,
        .gs_base = (uint64_t)e->base + tcs->ogs_base,
    };
    f.ocall_top = ocall_area_top();
    if (!f.ocall_top)
        return -ENOMEM;
    set_gs_base(f.gs_base);
    t_current = e;
    t_ocall_level++;
    int ret = spm_sim_eenter((uint64_t)tcs, (uint64_t)e->base + tcs->oentry, &f);
    t_ocall_level--;
    t_current = NULL;
    io->rdi_out = f.rdi_out;
    io->rsi_out = f.rsi_out;
    io->rdx_out = f.rdx_out;
    return ret;
}

static void sim_edestroy(struct spm_hw_enclave *e)
{
    if (!e)
        return;
    munmap(e->base, e->size);
    free(e->page_prot);
    spm_wipe(&e->secs, sizeof(e->secs));
    free(e);
}

static const struct sgx_secs *sim_secs(const struct spm_hw_enclave *e)
{
    return &e->secs;
}

static int sim_qe_target_info(struct spm_platform *p, struct sgx_target_info *target)
{
    spm_sim_qe_target_info((struct spm_sim_platform *)p, target);
    return 0;
}

static int sim_quote(struct spm_platform *p, const struct sgx_report *report, uint8_t **quote,
                     size_t *quote_size)
{
    return spm_sim_quote((struct spm_sim_platform *)p, report, quote, quote_size);
}

const struct spm_platform_ops spm_sim_platform_ops = {
    .name = "sim",
    .open = sim_open,
    .close = sim_close,
    .ecreate = sim_ecreate,
    .eadd = sim_eadd,
    .einit = sim_einit,
    .eenter = sim_eenter,
    .edestroy = sim_edestroy,
    .secs = sim_secs,
    .qe_target_info = sim_qe_target_info,
    .quote = sim_quote,
};
