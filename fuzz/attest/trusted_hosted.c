/* The stand-in enclave (trusted_hosted.h). */
#include "trusted_hosted.h"

#include <asm/prctl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "spm/abi/enclave_abi.h"
#include "spm/abi/me_abi.h"
#include "spm/trts.h"
#include "trusted_pki.h"

void fuzz_trts_seed_incarnation(void *incarnation, size_t size);

#define COUNTER_LEAF_READ      0x53504d01u /* sim_internal.h */
#define COUNTER_LEAF_INCREMENT 0x53504d02u
#define MAX_COUNTERS           8u

/* "ELRANGE": sgx.c finds its incarnation through the layout page, which
 * follows the image end; both are renamed to these (meson.build). They are
 * declared const in trts_internal.h, which this file therefore does not
 * include (trusted_incarnation.c does what needs it). */
_Alignas(4096) uint8_t fuzz_enclave_base[4096];
_Alignas(4096) uint8_t fuzz_enclave_layout[4096];
_Alignas(4096) static uint8_t g_incarnation[2 * 4096];
static struct spm_thread_data g_thread;

struct sgx_report_body fuzz_trts_self;
const uint8_t fuzz_trts_seal_key[16] = "fuzz seal key 16";
const uint8_t fuzz_trts_report_key[16] = "fuzz report key!";
bool fuzz_trts_fail_persist;
bool fuzz_trts_fail_counter;

static struct {
    uint8_t id[16];
    uint64_t value;
    uint8_t tag[32];
} g_counters[MAX_COUNTERS];
static size_t g_counter_count;
static uint8_t *g_persisted;
static size_t g_persisted_size;

void fuzz_trts_init(void)
{
    struct spm_layout_info layout;
    memset(&layout, 0, sizeof(layout));
    layout.magic = SPM_LAYOUT_MAGIC;
    layout.version = SPM_LAYOUT_VERSION;
    layout.incarnation_offset = (uint64_t)(uintptr_t)g_incarnation - (uintptr_t)fuzz_enclave_base;
    layout.incarnation_size = sizeof(g_incarnation);
    memcpy(fuzz_enclave_layout, &layout, sizeof(layout));
    g_thread.self_offset = (uint64_t)(uintptr_t)&g_thread - (uintptr_t)fuzz_enclave_base;
    g_thread.sim_enclu = 1; /* the simulated CPU's counter leaves exist */
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)&g_thread) != 0) {
        perror("fuzz: arch_prctl(ARCH_SET_GS)");
        abort();
    }
    fuzz_pki_init();
    /* An ME-like identity: what its own quotes and reports carry. */
    memset(&fuzz_trts_self, 0, sizeof(fuzz_trts_self));
    memset(fuzz_trts_self.mr_enclave, 0x4d, 32);
    memset(fuzz_trts_self.mr_signer, 0x53, 32);
    fuzz_trts_self.isv_prod_id = SPM_ME_ISV_PROD_ID;
    fuzz_trts_self.isv_svn = 1;
    fuzz_trts_self.attributes.flags = SGX_FLAGS_INITTED | SGX_FLAGS_MODE64BIT;
    fuzz_trts_self.attributes.xfrm = SGX_XFRM_LEGACY;
}

void fuzz_trts_reset(void)
{
    memset(g_counters, 0, sizeof(g_counters));
    g_counter_count = 0;
    free(g_persisted);
    g_persisted = NULL;
    g_persisted_size = 0;
    fuzz_trts_fail_persist = false;
    fuzz_trts_fail_counter = false;
    /* The DRBG restarts from a fixed seed instead of RDRAND, so that an
     * input replays with the same session ids, nonces and keys. */
    fuzz_trts_seed_incarnation(g_incarnation, sizeof(g_incarnation));
}

const uint8_t *fuzz_trts_persisted(size_t *size)
{
    *size = g_persisted_size;
    return g_persisted;
}

static size_t counter_index(const uint8_t id[16], bool create)
{
    for (size_t i = 0; i < g_counter_count; i++)
        if (memcmp(g_counters[i].id, id, 16) == 0)
            return i;
    if (!create || g_counter_count == MAX_COUNTERS)
        return MAX_COUNTERS;
    memcpy(g_counters[g_counter_count].id, id, 16);
    return g_counter_count++;
}

void fuzz_trts_counter_set(const uint8_t id[16], uint64_t value, const uint8_t tag[32])
{
    size_t i = counter_index(id, true);
    if (i == MAX_COUNTERS)
        abort();
    g_counters[i].value = value;
    memcpy(g_counters[i].tag, tag, 32);
}

static uint64_t counter_leaf(uint64_t leaf, const uint8_t *id, uint64_t *value, uint8_t *tag)
{
    size_t i = counter_index(id, leaf == COUNTER_LEAF_INCREMENT);
    if (leaf == COUNTER_LEAF_READ) {
        *value = i == MAX_COUNTERS ? 0 : g_counters[i].value;
        if (i == MAX_COUNTERS)
            memset(tag, 0, 32);
        else
            memcpy(tag, g_counters[i].tag, 32);
        return SGX_SUCCESS;
    }
    if (i == MAX_COUNTERS || fuzz_trts_fail_counter || g_counters[i].value == UINT64_MAX)
        return 0xffff; /* the store failed */
    g_counters[i].value++;
    memcpy(g_counters[i].tag, tag, 32);
    *value = g_counters[i].value;
    return SGX_SUCCESS;
}

uint64_t trts_enclu(uint64_t leaf, uint64_t rbx, uint64_t rcx, uint64_t rdx)
{
    if (leaf == SGX_ENCLU_EREPORT) {
        struct sgx_report *report = (struct sgx_report *)(uintptr_t)rdx;
        memset(report, 0, sizeof(*report));
        report->body = fuzz_trts_self;
        memcpy(report->body.report_data, (const void *)(uintptr_t)rcx, 64);
        tc_aes128_cmac(fuzz_trts_report_key, &report->body, sizeof(report->body), report->mac);
        return SGX_SUCCESS;
    }
    if (leaf == SGX_ENCLU_EGETKEY) {
        const struct sgx_key_request *request = (const void *)(uintptr_t)rbx;
        uint8_t *key = (uint8_t *)(uintptr_t)rcx;
        if (request->key_name == SGX_KEYSELECT_SEAL)
            memcpy(key, fuzz_trts_seal_key, 16);
        else if (request->key_name == SGX_KEYSELECT_REPORT)
            memcpy(key, fuzz_trts_report_key, 16);
        else
            return SGX_INVALID_KEYNAME;
        return SGX_SUCCESS;
    }
    if (leaf == COUNTER_LEAF_READ || leaf == COUNTER_LEAF_INCREMENT)
        return counter_leaf(leaf, (const uint8_t *)(uintptr_t)rbx, (uint64_t *)(uintptr_t)rcx,
                            (uint8_t *)(uintptr_t)rdx);
    return SGX_INVALID_ATTRIBUTE;
}

int spm_ocall(uint32_t id, const void *in, size_t in_size, void *out, size_t out_capacity,
              size_t *out_size)
{
    *out_size = 0;
    if (id == SPM_ME_OCALL_PERSIST) {
        if (fuzz_trts_fail_persist) {
            fuzz_trts_fail_persist = false;
            return -EIO;
        }
        free(g_persisted);
        g_persisted = malloc(in_size ? in_size : 1);
        if (!g_persisted)
            abort();
        memcpy(g_persisted, in, in_size);
        g_persisted_size = in_size;
        return 0;
    }
    if (id == SPM_RT_OCALL_QE_TARGET_INFO) {
        if (out_capacity < sizeof(struct sgx_target_info))
            return -EPROTO;
        memset(out, 0, sizeof(struct sgx_target_info));
        *out_size = sizeof(struct sgx_target_info);
        return 0;
    }
    if (id == SPM_RT_OCALL_QUOTE) {
        struct sgx_report report;
        if (in_size != sizeof(report))
            return -EINVAL;
        memcpy(&report, in, sizeof(report));
        uint8_t *quote = NULL;
        size_t quote_size = 0;
        fuzz_pki_quote(&report.body, &quote, &quote_size);
        if (quote_size > out_capacity) {
            free(quote);
            return -EPROTO;
        }
        memcpy(out, quote, quote_size);
        *out_size = quote_size;
        free(quote);
        return 0;
    }
    return -ENOSYS;
}

/* A line per refusal would flood the fuzzing log: printed only with
 * FUZZ_ATTEST_LOG set, to see where seeds stop. */
void spm_print(const char *msg)
{
    static int print = -1;
    if (print < 0)
        print = getenv("FUZZ_ATTEST_LOG") != NULL;
    if (print)
        fprintf(stderr, "%s\n", msg);
}

uint64_t spm_untrusted_time(void)
{
    return (uint64_t)time(NULL);
}

void spm_spin_lock(struct spm_spinlock *l)
{
    l->locked = 1;
}

void spm_spin_unlock(struct spm_spinlock *l)
{
    l->locked = 0;
}

int spm_ct_equal(const void *a, const void *b, size_t size)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < size; i++)
        diff |= x[i] ^ y[i];
    return diff != 0;
}

void spm_wipe(void *p, size_t size)
{
    volatile uint8_t *q = p;
    while (size--)
        *q++ = 0;
}

void fuzz_trts_seal(const void *aad, size_t aad_size, const void *text, size_t text_size,
                    uint8_t **sealed, size_t *sealed_size)
{
    size_t size = spm_sealed_size(text_size, aad_size);
    uint8_t *out = malloc(size ? size : 1);
    if (!size || !out ||
        spm_seal(SPM_SEAL_POLICY_MRENCLAVE, aad, aad_size, text, text_size, out, size) < 0)
        abort();
    *sealed = out;
    *sealed_size = size;
}
