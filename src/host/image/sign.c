/* Signing an enclave image and opening a signed one. Signing lays the image
 * out, measures it and writes config + SIGSTRUCT into .spm_meta; opening
 * repeats every check simulated EINIT relies on, so a loader never runs an
 * image whose pages differ from what its author signed. Each refusal says
 * what did not match, where, and what probably happened. */
#include "image.h"
#include "image_internal.h"
#include "host/common/fileio.h"
#include "host/common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool all_zero(const void *p, size_t size)
{
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < size; i++)
        acc |= b[i];
    return acc == 0;
}

int spm_image_check_attributes(const struct spm_enclave_config *config, const char *name)
{
    uint64_t flags = config->attributes_flags;
    if (!(flags & SGX_FLAGS_MODE64BIT)) {
        spm_error("%s: attributes flags %#llx lack MODE64BIT; SPM enclaves are 64-bit", name,
                  (unsigned long long)flags);
        return -EINVAL;
    }
    if (flags & ~SPM_ALLOWED_ATTRIBUTE_FLAGS) {
        spm_error("%s: attributes flags %#llx include bits other than DEBUG, MODE64BIT, KSS and "
                  "AEX_NOTIFY (%#llx), which an enclave may not request",
                  name, (unsigned long long)flags,
                  (unsigned long long)(flags & ~SPM_ALLOWED_ATTRIBUTE_FLAGS));
        return -EINVAL;
    }
    if ((config->attributes_xfrm & SGX_XFRM_LEGACY) != SGX_XFRM_LEGACY) {
        spm_error("%s: XFRM %#llx lacks x87 and SSE (%#llx), which SGX requires", name,
                  (unsigned long long)config->attributes_xfrm, (unsigned long long)SGX_XFRM_LEGACY);
        return -EINVAL;
    }
    return 0;
}

/* SIGSTRUCT.DATE: today, or SOURCE_DATE_EPOCH for reproducible signing. */
static uint32_t signing_date(void)
{
    const char *env = getenv("SOURCE_DATE_EPOCH");
    if (env && *env) {
        char *end = NULL;
        unsigned long long t = strtoull(env, &end, 10);
        if (*end == 0)
            return img_sigstruct_date((time_t)t);
        spm_error("ignoring SOURCE_DATE_EPOCH=%s: not a number of seconds", env);
    }
    return img_sigstruct_date(time(NULL));
}

int spm_image_sign(const char *in_path, const char *key_path,
                   const struct spm_enclave_config *config, const char *out_path)
{
    struct spm_elf_image img;
    struct spm_layout layout;
    uint8_t mrenclave[32], mrsigner[32];
    int ret = spm_elf_load(in_path, &img);
    if (ret < 0)
        return ret;
    if (img.meta.magic == SPM_META_MAGIC)
        spm_info("%s: already signed; signing it again replaces the old SIGSTRUCT", in_path);

    struct spm_image_meta *meta = calloc(1, sizeof(*meta));
    if (!meta) {
        ret = -ENOMEM;
        goto out;
    }
    meta->magic = SPM_META_MAGIC;
    meta->version = SPM_META_VERSION;
    meta->size = sizeof(*meta);
    meta->config = *config;
    if ((ret = spm_image_check_attributes(config, in_path)) < 0 ||
        (ret = spm_layout_compute(&img, config, &layout)) < 0)
        goto out;
    meta->config.elrange_size = layout.info.elrange_size;
    if ((ret = spm_image_measure(&img, &layout, mrenclave)) < 0)
        goto out;

    struct sgx_sigstruct *sig = &meta->sigstruct;
    sig->header.type = 0;
    sig->header.vendor = 0;
    sig->header.date = signing_date();
    sig->body.misc_select = config->misc_select;
    sig->body.misc_mask = SPM_SIGSTRUCT_MISC_MASK;
    sig->body.attributes.flags = config->attributes_flags;
    sig->body.attributes.xfrm = config->attributes_xfrm;
    sig->body.attribute_mask.flags = SPM_SIGSTRUCT_ATTRIBUTE_MASK_FLAGS;
    sig->body.attribute_mask.xfrm = SPM_SIGSTRUCT_ATTRIBUTE_MASK_XFRM;
    memcpy(sig->body.mr_enclave, mrenclave, sizeof(mrenclave));
    sig->body.isv_prod_id = config->isv_prod_id;
    sig->body.isv_svn = config->isv_svn;
    if ((ret = spm_sigstruct_sign(sig, key_path)) < 0)
        goto out;
    /* Catch a broken key or RSA library here rather than at every load. */
    if ((ret = spm_sigstruct_verify(sig, mrsigner)) < 0) {
        spm_error("%s: the SIGSTRUCT just made with %s does not verify", in_path, key_path);
        goto out;
    }

    /* .spm_meta is outside every PT_LOAD and header (elf.c checks), so
     * this changes nothing that is measured. */
    memcpy(img.file + img.meta_offset, meta, sizeof(*meta));
    ret = spm_write_file_atomic(out_path, img.file, img.file_size, 0644);
out:
    free(meta);
    spm_elf_free(&img);
    return ret;
}

static void hex32(const uint8_t bytes[32], char out[65])
{
    spm_hex(bytes, 32, out);
}

int spm_image_check_metadata(const struct spm_elf_image *img, const char *name,
                             struct spm_layout *layout, uint8_t mrsigner[32])
{
    const struct spm_image_meta *meta = &img->meta;
    const struct spm_enclave_config *config = &meta->config;
    const struct sgx_sigstruct *sig = &meta->sigstruct;
    int ret;

    if (meta->magic != SPM_META_MAGIC) {
        spm_error("%s: not signed (%s holds no SPM metadata); sign it with 'spm sign'", name,
                  SPM_META_SECTION);
        return -EINVAL;
    }
    if (meta->version != SPM_META_VERSION || meta->size != sizeof(*meta)) {
        spm_error("%s: %s is version %u / %u bytes; this SPM reads version %u / %zu bytes", name,
                  SPM_META_SECTION, meta->version, meta->size, SPM_META_VERSION, sizeof(*meta));
        return -EINVAL;
    }
    if (!all_zero(meta->reserved, sizeof(meta->reserved))) {
        spm_error("%s: reserved bytes of %s are not zero (file modified after signing?)", name,
                  SPM_META_SECTION);
        return -EINVAL;
    }
    if (config->elrange_size == 0) {
        spm_error("%s: metadata records no ELRANGE size (not written by 'spm sign'?)", name);
        return -EINVAL;
    }
    if ((ret = spm_image_check_attributes(config, name)) < 0)
        return ret;
    if ((ret = spm_layout_compute(img, config, layout)) < 0) {
        spm_error("%s: the enclave config in %s does not describe a valid layout", name,
                  SPM_META_SECTION);
        return ret;
    }

    if ((ret = spm_sigstruct_verify(sig, mrsigner)) < 0) {
        spm_error("%s: SIGSTRUCT rejected", name);
        return ret;
    }

    /* The config is not itself signed: ECREATE's inputs reach MRENCLAVE
     * through the layout, the rest must equal what the author signed. */
    if (config->attributes_flags != sig->body.attributes.flags ||
        config->attributes_xfrm != sig->body.attributes.xfrm) {
        spm_error("%s: attributes mismatch: config asks for flags %#llx xfrm %#llx but SIGSTRUCT "
                  "says flags %#llx xfrm %#llx (metadata modified after signing?)",
                  name, (unsigned long long)config->attributes_flags,
                  (unsigned long long)config->attributes_xfrm,
                  (unsigned long long)sig->body.attributes.flags,
                  (unsigned long long)sig->body.attributes.xfrm);
        return -EINVAL;
    }
    /* Exact equality is stricter than EINIT's comparison under the signed
     * masks, and leaves no unsigned choice to whoever holds the file. */
    if (config->misc_select != sig->body.misc_select) {
        spm_error("%s: MISCSELECT mismatch: config %#x, SIGSTRUCT %#x (metadata modified after "
                  "signing?)",
                  name, config->misc_select, sig->body.misc_select);
        return -EINVAL;
    }
    if (config->isv_prod_id != sig->body.isv_prod_id || config->isv_svn != sig->body.isv_svn) {
        spm_error("%s: ISV fields mismatch: config ISVPRODID %u ISVSVN %u, SIGSTRUCT ISVPRODID "
                  "%u ISVSVN %u (metadata modified after signing?)",
                  name, config->isv_prod_id, config->isv_svn, sig->body.isv_prod_id,
                  sig->body.isv_svn);
        return -EINVAL;
    }

    return 0;
}

int spm_image_verify(const struct spm_elf_image *img, const char *name, struct spm_layout *layout,
                     uint8_t mrenclave[32], uint8_t mrsigner[32])
{
    const struct sgx_sigstruct *sig = &img->meta.sigstruct;
    char a[65], b[65];
    int ret = spm_image_check_metadata(img, name, layout, mrsigner);
    if (ret < 0)
        return ret;
    if ((ret = spm_image_measure(img, layout, mrenclave)) < 0)
        return ret;
    if (spm_ct_memcmp(mrenclave, sig->body.mr_enclave, 32) != 0) {
        hex32(mrenclave, a);
        hex32(sig->body.mr_enclave, b);
        spm_error("%s: MRENCLAVE mismatch: image measures %s but SIGSTRUCT says %s (image or "
                  "its layout config modified after signing?)",
                  name, a, b);
        return -EINVAL;
    }
    return 0;
}

int spm_image_open_signed(const char *path, struct spm_elf_image *img, struct spm_layout *layout,
                          uint8_t mrenclave[32], uint8_t mrsigner[32])
{
    int ret = spm_elf_load(path, img);
    if (ret < 0)
        return ret;
    ret = spm_image_verify(img, path, layout, mrenclave, mrsigner);
    if (ret < 0)
        spm_elf_free(img);
    return ret;
}
