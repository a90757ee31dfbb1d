/* Loading an enclave and calling into it. Loading is the simulated
 * ECREATE/EADD/EINIT sequence over the layout the signer used, so the
 * platform recomputes MRENCLAVE from what it actually mapped. Ecalls take a
 * TCS from a pool: one host thread per TCS, waiting or failing when all are
 * busy, as the caller chose. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int spm_enclave_load(const char *image_path, const struct spm_enclave_options *options,
                     struct spm_enclave **out)
{
    static const struct spm_enclave_options defaults;
    if (!options)
        options = &defaults;
    struct spm_elf_image img;
    int ret = spm_elf_load(image_path, &img);
    if (ret < 0)
        return ret;
    const struct spm_image_meta *meta = &img.meta;
    struct spm_enclave *e = calloc(1, sizeof(*e));
    if (!e) {
        spm_elf_free(&img);
        return -ENOMEM;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->tcs_free, NULL);
    e->ocalls = options->ocalls;
    e->ocall_count = options->ocall_count;
    e->ocall_ctx = options->ocall_ctx;
    e->ops = spm_platform_backend(NULL);
    if (!e->ops) {
        spm_error("unknown platform backend in SPM_BACKEND (known: sim)");
        ret = -EINVAL;
        goto fail;
    }
    uint8_t signer[32]; /* EINIT derives it again from the SIGSTRUCT it verifies */
    if ((ret = spm_image_check_metadata(&img, image_path, &e->layout, signer)) < 0)
        goto fail;
    const char *platform_dir = spm_sim_platform_dir(options->platform_dir);
    if ((ret = e->ops->open(platform_dir, &e->platform)) < 0) {
        spm_error("cannot open the SGX platform at %s (create it with 'spm platform init')",
                  platform_dir);
        goto fail;
    }
    struct sgx_secs secs;
    memset(&secs, 0, sizeof(secs));
    secs.size = e->layout.info.elrange_size;
    secs.base = options->base;
    secs.ssa_frame_size = meta->config.ssa_frame_pages;
    secs.misc_select = meta->config.misc_select;
    secs.attributes.flags = meta->config.attributes_flags;
    secs.attributes.xfrm = meta->config.attributes_xfrm;
    if ((ret = e->ops->ecreate(e->platform, &secs, &e->hw)) < 0)
        goto fail;
    struct load_ctx lc = {e};
    if ((ret = spm_layout_for_each_page(&img, &e->layout, add_page, &lc)) != 0) {
        spm_error("%s: adding enclave pages failed", image_path);
        ret = ret < 0 ? ret : -EIO;
        goto fail;
    }
    if ((ret = e->ops->einit(e->hw, &meta->sigstruct)) < 0) {
        spm_error("%s: EINIT refused the enclave", image_path);
        goto fail;
    }
    const struct sgx_secs *final = e->ops->secs(e->hw);
    memcpy(e->mrenclave, final->mr_enclave, 32);
    memcpy(e->mrsigner, final->mr_signer, 32);
    e->base = final->base;
    e->size = final->size;
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
    spm_elf_free(&img);
    size_t ignored;
    if ((ret = spm_enclave_ecall(e, SPM_RT_ECALL_INIT, NULL, 0, NULL, 0, &ignored, 0)) < 0) {
        spm_error("%s: the enclave's runtime failed to initialise: %s", image_path, strerror(-ret));
        spm_enclave_destroy(e);
        return ret;
    }
    *out = e;
    return 0;
fail:
    spm_elf_free(&img);
    spm_enclave_destroy(e);
    return ret;
}

static __thread const struct spm_enclave *t_inside;

static int acquire_tcs(struct spm_enclave *e, unsigned flags, uint32_t *index)
{
    pthread_mutex_lock(&e->lock);
    while (e->free_count == 0) {
        if (flags & SPM_ECALL_NOWAIT) {
            pthread_mutex_unlock(&e->lock);
            spm_debug("ecall refused: all %u TCS are busy", e->tcs_count);
            return -EBUSY;
        }
        pthread_cond_wait(&e->tcs_free, &e->lock);
    }
    *index = e->free_tcs[--e->free_count];
    pthread_mutex_unlock(&e->lock);
    return 0;
}

static void release_tcs(struct spm_enclave *e, uint32_t index)
{
    pthread_mutex_lock(&e->lock);
    e->free_tcs[e->free_count++] = index;
    pthread_cond_signal(&e->tcs_free);
    pthread_mutex_unlock(&e->lock);
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
    struct spm_ecall_args args = {
        .in_ptr = (uint64_t)in,
        .in_size = in_size,
        .out_ptr = (uint64_t)out,
        .out_capacity = out_capacity,
        .out_size = 0,
    };
    struct spm_enter_io io = {
        .rdi_in = SPM_ENTER_ECALL,
        .rsi_in = id,
        .rdx_in = (uint64_t)&args,
        .ocall_ctx = e,
        .enclave_slot = &e->hw,
    };
    t_inside = e;
    ret = e->ops->eenter(e->hw, e->tcs_offsets[index], &io, spm_urts_ocall_dispatch);
    t_inside = NULL;
    release_tcs(e, index);
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

void spm_enclave_destroy(struct spm_enclave *e)
{
    if (!e)
        return;
    if (e->hw)
        e->ops->edestroy(e->hw);
    if (e->platform)
        e->ops->close(e->platform);
    free(e->tcs_offsets);
    free(e->free_tcs);
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
