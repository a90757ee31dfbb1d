/* Loading an enclave and calling into it. Building is the simulated
 * ECREATE/EADD/EINIT sequence over the layout the signer used, so the
 * platform recomputes MRENCLAVE from what it actually mapped; loading is a
 * build plus the runtime's first entry, and a checkpoint import is a build
 * at the recorded base without it. Ecalls take a TCS from a pool: one host
 * thread per TCS, waiting or failing when all are busy, as the caller
 * chose. The checkpoint gate lives in the same mutex as the pool. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/log.h"
#include "platform/sim/sim.h"
#include "urts_internal.h"

struct load_ctx {
    struct spm_enclave *enclave;
};

static int add_page(void *ctx, uint64_t offset, uint64_t secinfo_flags, bool measured,
                    const uint8_t *content)
{
    struct spm_enclave *e = ((struct load_ctx *)ctx)->enclave;
    return e->ops->eadd(e->hw, offset, content, secinfo_flags, measured);
}

int spm_urts_open_platform(struct spm_enclave *e, char *dir, size_t dir_size)
{
    /* After a migration the process's own record names a directory of the
     * source host; the host it runs on now says which one to use. */
    spm_urts_platform_dir(e->platform_dir, dir, dir_size);
    int ret = e->ops->open(dir, &e->platform);
    if (ret < 0) {
        e->platform = NULL;
        spm_error("cannot open the SGX platform at %s: %s (create it with 'spm platform init', "
                  "or name this host's platform in SPM_PLATFORM / the 'resume platform=' request)",
                  dir, strerror(-ret));
    }
    return ret;
}

int spm_urts_build(struct spm_enclave *e, uint64_t base, bool expect_identity)
{
    struct spm_elf_image img;
    int ret = spm_elf_load(e->image_path, &img);
    if (ret < 0)
        return ret;
    const struct spm_image_meta *meta = &img.meta;
    struct spm_layout layout;
    uint8_t signer[32]; /* EINIT derives it again from the SIGSTRUCT it verifies */
    if ((ret = spm_image_check_metadata(&img, e->image_path, &layout, signer)) < 0)
        goto out;
    if (expect_identity &&
        (layout.info.elrange_size != e->size || layout.info.tcs_count != e->tcs_count)) {
        spm_error("%s: the image's layout changed since it was loaded (ELRANGE %#llx, %u TCS; "
                  "was %#llx, %u TCS); put the original signed image back",
                  e->image_path, (unsigned long long)layout.info.elrange_size,
                  layout.info.tcs_count, (unsigned long long)e->size, e->tcs_count);
        ret = -ENOEXEC;
        goto out;
    }
    struct sgx_secs secs;
    memset(&secs, 0, sizeof(secs));
    secs.size = layout.info.elrange_size;
    secs.base = base;
    secs.ssa_frame_size = meta->config.ssa_frame_pages;
    secs.misc_select = meta->config.misc_select;
    secs.attributes.flags = meta->config.attributes_flags;
    secs.attributes.xfrm = meta->config.attributes_xfrm;
    struct spm_hw_enclave *hw = NULL;
    if ((ret = e->ops->ecreate(e->platform, &secs, &hw)) < 0)
        goto out;
    e->hw = hw;
    e->layout = layout;
    struct load_ctx lc = {e};
    if ((ret = spm_layout_for_each_page(&img, &e->layout, add_page, &lc)) != 0) {
        spm_error("%s: adding enclave pages failed", e->image_path);
        ret = ret < 0 ? ret : -EIO;
        goto fail_hw;
    }
    if ((ret = e->ops->einit(e->hw, &meta->sigstruct)) < 0) {
        spm_error("%s: EINIT refused the enclave", e->image_path);
        goto fail_hw;
    }
    const struct sgx_secs *final = e->ops->secs(e->hw);
    if (expect_identity &&
        (memcmp(e->mrenclave, final->mr_enclave, 32) != 0 ||
         memcmp(e->mrsigner, final->mr_signer, 32) != 0 || final->base != e->base)) {
        spm_error("%s: the image is not the one this enclave was loaded from (MRENCLAVE, "
                  "MRSIGNER or base differ); put the original signed image back",
                  e->image_path);
        ret = -ENOEXEC;
        goto fail_hw;
    }
    memcpy(e->mrenclave, final->mr_enclave, 32);
    memcpy(e->mrsigner, final->mr_signer, 32);
    e->base = final->base;
    e->size = final->size;
    ret = 0;
    goto out;
fail_hw:
    e->ops->edestroy(e->hw);
    e->hw = NULL;
out:
    spm_elf_free(&img);
    return ret;
}

static int init_sync(struct spm_enclave *e)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -ENOMEM;
    /* The exporter's bounded wait must not move with the wall clock. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int ret = 0;
    if (pthread_mutex_init(&e->lock, NULL) != 0 || pthread_cond_init(&e->tcs_free, NULL) != 0 ||
        pthread_cond_init(&e->gate_opened, NULL) != 0 || pthread_cond_init(&e->drained, &attr) != 0)
        ret = -ENOMEM;
    pthread_condattr_destroy(&attr);
    return ret;
}

int spm_enclave_load(const char *image_path, const struct spm_enclave_options *options,
                     struct spm_enclave **out)
{
    static const struct spm_enclave_options defaults;
    if (!options)
        options = &defaults;
    struct spm_enclave *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    int ret = init_sync(e);
    if (ret < 0) {
        free(e);
        return ret;
    }
    e->ocalls = options->ocalls;
    e->ocall_count = options->ocall_count;
    e->ocall_ctx = options->ocall_ctx;
    /* An import rebuilds from the same file, possibly after the process
     * changed its working directory. */
    char resolved[PATH_MAX];
    e->image_path = strdup(realpath(image_path, resolved) ? resolved : image_path);
    if (options->platform_dir && options->platform_dir[0])
        e->platform_dir = strdup(options->platform_dir);
    if (!e->image_path || (options->platform_dir && options->platform_dir[0] && !e->platform_dir)) {
        ret = -ENOMEM;
        goto fail;
    }
    e->ops = spm_platform_backend(NULL);
    if (!e->ops) {
        spm_error("unknown platform backend in SPM_BACKEND (known: sim)");
        ret = -EINVAL;
        goto fail;
    }
    char platform_dir[PATH_MAX];
    spm_urts_load_platform_dir(options->platform_dir, platform_dir, sizeof(platform_dir));
    if ((ret = e->ops->open(platform_dir, &e->platform)) < 0) {
        e->platform = NULL;
        spm_error("cannot open the SGX platform at %s (create it with 'spm platform init')",
                  platform_dir);
        goto fail;
    }
    if ((ret = spm_urts_build(e, options->base, false)) < 0)
        goto fail;
    e->tcs_count = e->layout.info.tcs_count;
    e->tcs_offsets = calloc(e->tcs_count, sizeof(*e->tcs_offsets));
    e->free_tcs = calloc(e->tcs_count, sizeof(*e->free_tcs));
    if (!e->tcs_offsets || !e->free_tcs) {
        ret = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < e->tcs_count; i++) {
        e->tcs_offsets[i] = spm_layout_thread(&e->layout.info, i).tcs;
        e->free_tcs[i] = e->tcs_count - 1 - i;
    }
    e->free_count = e->tcs_count;
    e->state = SPM_ENCLAVE_LIVE;
    size_t ignored;
    if ((ret = spm_enclave_ecall(e, SPM_RT_ECALL_INIT, NULL, 0, NULL, 0, &ignored, 0)) < 0) {
        spm_error("%s: the enclave's runtime failed to initialise: %s", image_path, strerror(-ret));
        goto fail;
    }
    if (!(options->flags & SPM_LOAD_NO_CHECKPOINT))
        spm_urts_register(e);
    *out = e;
    return 0;
fail:
    spm_enclave_destroy(e);
    return ret;
}

static __thread const struct spm_enclave *t_inside;

/* Takes a TCS for an application ecall: waits while the gate is closed or
 * every TCS is busy, and counts the thread as inside. */
static int acquire_tcs(struct spm_enclave *e, unsigned flags, uint32_t *index)
{
    pthread_mutex_lock(&e->lock);
    while (e->gate_closed || e->free_count == 0) {
        if (flags & SPM_ECALL_NOWAIT) {
            bool closed = e->gate_closed;
            pthread_mutex_unlock(&e->lock);
            if (closed)
                spm_debug("ecall refused: the enclave is being checkpointed");
            else
                spm_debug("ecall refused: all %u TCS are busy", e->tcs_count);
            return -EBUSY;
        }
        pthread_cond_wait(&e->tcs_free, &e->lock);
    }
    *index = e->free_tcs[--e->free_count];
    e->inside++;
    pthread_mutex_unlock(&e->lock);
    return 0;
}

static void release_tcs(struct spm_enclave *e, uint32_t index)
{
    pthread_mutex_lock(&e->lock);
    e->free_tcs[e->free_count++] = index;
    if (--e->inside == 0 && e->gate_closed)
        pthread_cond_signal(&e->drained);
    pthread_cond_signal(&e->tcs_free);
    pthread_mutex_unlock(&e->lock);
}

static int enter(struct spm_enclave *e, uint32_t index, bool internal, uint32_t id, const void *in,
                 size_t in_size, void *out, size_t out_capacity, size_t *out_size)
{
    struct spm_ecall_args args = {
        .in_ptr = (uint64_t)in,
        .in_size = in_size,
        .out_ptr = (uint64_t)out,
        .out_capacity = out_capacity,
        .out_size = 0,
    };
    struct spm_urts_call call = {e, internal};
    struct spm_enter_io io = {
        .rdi_in = SPM_ENTER_ECALL,
        .rsi_in = id,
        .rdx_in = (uint64_t)&args,
        .ocall_ctx = &call,
        .enclave_slot = &e->hw,
    };
    if (out_size)
        *out_size = 0;
    if (!e->hw)
        return -ENODEV;
    t_inside = e;
    int ret = e->ops->eenter(e->hw, e->tcs_offsets[index], &io, spm_urts_ocall_dispatch);
    t_inside = NULL;
    if (ret < 0)
        return ret;
    if (io.rdi_out != SPM_EXIT_RETURN)
        return -EPROTO;
    int64_t status = (int64_t)io.rsi_out;
    if (status > 0 || status < -4095)
        return -EPROTO;
    if (status == 0 && args.out_size > out_capacity)
        return -EPROTO;
    if (out_size)
        *out_size = status == 0 ? args.out_size : 0;
    return (int)status;
}

int spm_enclave_ecall(struct spm_enclave *e, uint32_t id, const void *in, size_t in_size, void *out,
                      size_t out_capacity, size_t *out_size, unsigned flags)
{
    if (t_inside) {
        spm_error("ecall %u from inside an ocall handler: nested ecalls are not supported", id);
        return -EDEADLK;
    }
    uint32_t index;
    int ret = acquire_tcs(e, flags, &index);
    if (ret < 0)
        return ret;
    ret = enter(e, index, false, id, in, in_size, out, out_capacity, out_size);
    release_tcs(e, index);
    return ret;
}

int spm_urts_ecall_internal(struct spm_enclave *e, uint32_t tcs_index, uint32_t id, const void *in,
                            size_t in_size, void *out, size_t out_capacity, size_t *out_size)
{
    if (t_inside)
        return -EDEADLK;
    if (tcs_index >= e->tcs_count)
        return -EINVAL;
    return enter(e, tcs_index, true, id, in, in_size, out, out_capacity, out_size);
}

void spm_enclave_destroy(struct spm_enclave *e)
{
    if (!e)
        return;
    if (e->registered)
        spm_urts_unregister(e);
    if (e->hw)
        e->ops->edestroy(e->hw);
    if (e->platform)
        e->ops->close(e->platform);
    if (e->image)
        munmap(e->image, e->image_size);
    spm_urts_elrange_release(e);
    free(e->tcs_offsets);
    free(e->free_tcs);
    free(e->image_path);
    free(e->platform_dir);
    pthread_cond_destroy(&e->drained);
    pthread_cond_destroy(&e->gate_opened);
    pthread_cond_destroy(&e->tcs_free);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

void spm_enclave_mrenclave(const struct spm_enclave *e, uint8_t mrenclave[32])
{
    memcpy(mrenclave, e->mrenclave, 32);
}

void spm_enclave_mrsigner(const struct spm_enclave *e, uint8_t mrsigner[32])
{
    memcpy(mrsigner, e->mrsigner, 32);
}

uint64_t spm_enclave_base(const struct spm_enclave *e)
{
    return e->base;
}

uint64_t spm_enclave_size(const struct spm_enclave *e)
{
    return e->size;
}

uint32_t spm_enclave_tcs_count(const struct spm_enclave *e)
{
    return e->tcs_count;
}

const char *spm_enclave_backend(const struct spm_enclave *e)
{
    return e->ops->name;
}
