/* `spm inspect`: shows what an enclave image is (identity, attributes,
 * layout) and whether it would pass EINIT, for authors checking a build and
 * for operators deciding what to pin. It reports rather than refuses: an
 * image that fails verification is still described, then exit status 1. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "host/common/fileio.h"
#include "host/crypto/hash.h"
#include "host/image/image.h"
#include "host/image/image_internal.h"

#include <elf.h>

struct report {
    const char *path;
    const struct spm_elf_image *img;
    const struct spm_image_meta *meta;
    bool layout_ok;
    struct spm_layout layout;
    char mrenclave[65]; /* SIGSTRUCT.ENCLAVEHASH */
    char measured[65];  /* recomputed, when the layout is valid */
    char mrsigner[65];  /* SHA-256 of SIGSTRUCT.MODULUS */
    bool signature_ok, measurement_ok, verified;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: spm inspect ENCLAVE.signed [--json]\n\n"
                 "Prints an enclave image's identity (MRENCLAVE, MRSIGNER, ISV fields,\n"
                 "attributes), its ELRANGE layout, and whether its SIGSTRUCT and measurement\n"
                 "verify. Exit status 0 if the image would pass EINIT, 1 if not.\n");
}

static void perms(uint32_t flags, char out[4])
{
    out[0] = (flags & PF_R) ? 'r' : '-';
    out[1] = (flags & PF_W) ? 'w' : '-';
    out[2] = (flags & PF_X) ? 'x' : '-';
    out[3] = 0;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

struct thread_range {
    uint64_t guard, stack, data, tcs, ssa, ssa_size;
};

static struct thread_range thread_range(const struct spm_layout_info *info, uint32_t i)
{
    struct thread_range t;
    t.guard = info->thread_region_offset + (uint64_t)i * info->thread_region_stride;
    t.stack = t.guard + SPM_TR_STACK_OFFSET;
    t.data = t.stack + info->stack_size;
    t.tcs = t.data + SGX_PAGE_SIZE;
    t.ssa = t.tcs + SGX_PAGE_SIZE;
    t.ssa_size = (uint64_t)info->ssa_frame_pages * info->ssa_frame_count * SGX_PAGE_SIZE;
    return t;
}

static void print_text(const struct report *r)
{
    const struct spm_enclave_config *c = &r->meta->config;
    const struct sgx_sigstruct *sig = &r->meta->sigstruct;
    bool debug = c->attributes_flags & SGX_FLAGS_DEBUG;
    uint32_t date = sig->header.date;

    printf("image        %s\n", r->path);
    printf("MRENCLAVE    %s\n", r->mrenclave);
    printf("MRSIGNER     %s\n", r->mrsigner);
    printf("ISVPRODID    %u\n", sig->body.isv_prod_id);
    printf("ISVSVN       %u\n", sig->body.isv_svn);
    printf("attributes   flags %#" PRIx64 " xfrm %#" PRIx64 " (debug: %s)\n", c->attributes_flags,
           c->attributes_xfrm, debug ? "yes" : "no");
    printf("miscselect   0x%x (mask 0x%x)\n", sig->body.misc_select, sig->body.misc_mask);
    printf("signed on    %04x-%02x-%02x\n", date >> 16, (date >> 8) & 0xff, date & 0xff);
    printf("TCS count    %u\n", c->tcs_count);
    printf("heap         %" PRIu64 " bytes\n", c->heap_size);
    printf("stack        %" PRIu64 " bytes per TCS\n", c->stack_size);
    printf("SSA          %u frames of %u page(s) per TCS\n", c->ssa_frame_count,
           c->ssa_frame_pages);
    printf("ELRANGE      %#" PRIx64 " bytes\n", c->elrange_size);
    printf("entry        %#" PRIx64 "\n", r->img->entry);

    printf("segments\n");
    for (uint32_t i = 0; i < r->img->segment_count; i++) {
        const struct spm_elf_segment *s = &r->img->segments[i];
        char p[4];
        perms(s->flags, p);
        printf("  [%#10" PRIx64 ", %#10" PRIx64 ") %s  file %#" PRIx64 " bytes\n", s->vaddr,
               s->vaddr + s->memsz, p, s->filesz);
    }
    if (r->layout_ok) {
        const struct spm_layout_info *l = &r->layout.info;
        printf("layout\n");
        printf("  image        [%#10" PRIx64 ", %#10" PRIx64 ")  measured\n", (uint64_t)0,
               l->image_size);
        printf("  info         [%#10" PRIx64 ", %#10" PRIx64 ")  r--, measured\n", l->info_offset,
               l->info_offset + SGX_PAGE_SIZE);
        printf("  incarnation  [%#10" PRIx64 ", %#10" PRIx64 ")  rw-\n", l->incarnation_offset,
               l->incarnation_offset + l->incarnation_size);
        printf("  heap         [%#10" PRIx64 ", %#10" PRIx64 ")  rw-\n", l->heap_offset,
               l->heap_offset + l->heap_size);
        for (uint32_t i = 0; i < l->tcs_count; i++) {
            struct thread_range t = thread_range(l, i);
            printf("  thread %-5u guard %#" PRIx64 ", stack [%#" PRIx64 ", %#" PRIx64
                   "), data %#" PRIx64 ", TCS %#" PRIx64 ", SSA [%#" PRIx64 ", %#" PRIx64 ")\n",
                   i, t.guard, t.stack, t.data, t.data, t.tcs, t.ssa, t.ssa + t.ssa_size);
        }
        printf("  end          %#" PRIx64 "\n", r->layout.end);
    } else {
        printf("layout       INVALID (see the reason above)\n");
    }
    printf("signature    %s\n", r->signature_ok ? "ok" : "FAILED");
    if (r->measurement_ok)
        printf("measurement  ok\n");
    else if (r->layout_ok)
        printf("measurement  FAILED: the image measures %s\n", r->measured);
    else
        printf("measurement  FAILED: no valid layout to measure\n");
    printf("verified     %s\n", r->verified ? "yes: would pass EINIT" : "NO");
}

static void print_json(const struct report *r)
{
    const struct spm_enclave_config *c = &r->meta->config;
    const struct sgx_sigstruct *sig = &r->meta->sigstruct;
    printf("{\n  \"image\": ");
    json_string(r->path);
    printf(",\n  \"mrenclave\": \"%s\",\n  \"mrsigner\": \"%s\",\n", r->mrenclave, r->mrsigner);
    printf("  \"isvprodid\": %u,\n  \"isvsvn\": %u,\n", sig->body.isv_prod_id, sig->body.isv_svn);
    printf("  \"attributes\": {\"flags\": %" PRIu64 ", \"xfrm\": %" PRIu64 ", \"debug\": %s},\n",
           c->attributes_flags, c->attributes_xfrm,
           (c->attributes_flags & SGX_FLAGS_DEBUG) ? "true" : "false");
    printf("  \"misc_select\": %u,\n  \"date\": \"%08x\",\n", sig->body.misc_select,
           sig->header.date);
    printf("  \"tcs_count\": %u,\n  \"heap_size\": %" PRIu64 ",\n  \"stack_size\": %" PRIu64 ",\n",
           c->tcs_count, c->heap_size, c->stack_size);
    printf("  \"ssa_frame_count\": %u,\n  \"ssa_frame_pages\": %u,\n", c->ssa_frame_count,
           c->ssa_frame_pages);
    printf("  \"elrange_size\": %" PRIu64 ",\n  \"entry\": %" PRIu64 ",\n", c->elrange_size,
           r->img->entry);
    printf("  \"segments\": [");
    for (uint32_t i = 0; i < r->img->segment_count; i++) {
        const struct spm_elf_segment *s = &r->img->segments[i];
        char p[4];
        perms(s->flags, p);
        printf("%s\n    {\"offset\": %" PRIu64 ", \"size\": %" PRIu64 ", \"file_size\": %" PRIu64
               ", \"perms\": \"%s\"}",
               i ? "," : "", s->vaddr, s->memsz, s->filesz, p);
    }
    printf("\n  ],\n");
    if (r->layout_ok) {
        const struct spm_layout_info *l = &r->layout.info;
        printf("  \"layout\": {\n    \"image_size\": %" PRIu64 ",\n    \"info_offset\": %" PRIu64
               ",\n",
               l->image_size, l->info_offset);
        printf("    \"incarnation_offset\": %" PRIu64 ",\n    \"incarnation_size\": %" PRIu64 ",\n",
               l->incarnation_offset, l->incarnation_size);
        printf("    \"heap_offset\": %" PRIu64 ",\n    \"heap_size\": %" PRIu64 ",\n",
               l->heap_offset, l->heap_size);
        printf("    \"thread_region_offset\": %" PRIu64 ",\n    \"thread_region_stride\": %" PRIu64
               ",\n",
               l->thread_region_offset, l->thread_region_stride);
        printf("    \"end\": %" PRIu64 ",\n    \"threads\": [", r->layout.end);
        for (uint32_t i = 0; i < l->tcs_count; i++) {
            struct thread_range t = thread_range(l, i);
            printf("%s\n      {\"guard\": %" PRIu64 ", \"stack\": %" PRIu64
                   ", \"thread_data\": %" PRIu64 ", \"tcs\": %" PRIu64 ", \"ssa\": %" PRIu64
                   ", \"ssa_size\": %" PRIu64 "}",
                   i ? "," : "", t.guard, t.stack, t.data, t.tcs, t.ssa, t.ssa_size);
        }
        printf("\n    ]\n  },\n");
    } else {
        printf("  \"layout\": null,\n");
    }
    printf("  \"measured_mrenclave\": ");
    if (r->layout_ok)
        printf("\"%s\",\n", r->measured);
    else
        printf("null,\n");
    printf("  \"signature_ok\": %s,\n  \"measurement_ok\": %s,\n  \"verified\": %s\n}\n",
           r->signature_ok ? "true" : "false", r->measurement_ok ? "true" : "false",
           r->verified ? "true" : "false");
}

/* Exit codes: 0 verified, 1 not verified or unreadable, 2 usage. */
int spm_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (spm_cli_is_help(argv[i], false)) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "spm inspect: unknown option '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "spm inspect: one image at a time ('%s' and '%s' given)\n", path,
                    argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    struct spm_elf_image img;
    int ret = spm_elf_load(path, &img);
    if (ret < 0) {
        fprintf(stderr, "spm inspect: cannot read %s as an enclave image: %s\n", path,
                ret == -EINVAL ? "refused (see the reason above)" : strerror(-ret));
        return 1;
    }
    if (img.meta.magic != SPM_META_MAGIC) {
        fprintf(stderr, "spm inspect: %s is an enclave ELF but is not signed (run 'spm sign')\n",
                path);
        spm_elf_free(&img);
        return 1;
    }

    struct report r = {.path = path, .img = &img, .meta = &img.meta};
    uint8_t mrenclave[32], mrsigner[32];
    r.verified = spm_image_verify(&img, path, &r.layout, mrenclave, mrsigner) == 0;
    if (r.verified) {
        r.layout_ok = r.signature_ok = r.measurement_ok = true;
    } else {
        /* Find out which part failed, to report it. */
        r.layout_ok = spm_layout_compute(&img, &img.meta.config, &r.layout) == 0;
        r.signature_ok = spm_sigstruct_verify(&img.meta.sigstruct, mrsigner) == 0;
        if (r.layout_ok && spm_image_measure(&img, &r.layout, mrenclave) == 0)
            r.measurement_ok =
                spm_ct_memcmp(mrenclave, img.meta.sigstruct.body.mr_enclave, 32) == 0;
        else
            r.layout_ok = false;
    }
    spm_hex(img.meta.sigstruct.body.mr_enclave, 32, r.mrenclave);
    if (r.layout_ok)
        spm_hex(mrenclave, 32, r.measured);
    /* Shown even when the signature is bad: it names the claimed signer. */
    spm_sha256(img.meta.sigstruct.modulus, SGX_MODULUS_SIZE, mrsigner);
    spm_hex(mrsigner, 32, r.mrsigner);

    if (json)
        print_json(&r);
    else
        print_text(&r);
    spm_elf_free(&img);
    return r.verified ? 0 : 1;
}
