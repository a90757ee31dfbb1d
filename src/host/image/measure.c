/* MRENCLAVE exactly as the CPU accumulates it (SGX-FORMATS.md section 1):
 * SHA-256 over 64-byte ECREATE / EADD / EEXTEND records, the latter followed
 * by 256 bytes of page content. Records are built byte by byte in little-
 * endian order so the result does not depend on the host. */
#include "image.h"
#include "image_internal.h"
#include "host/crypto/hash.h"

#include <errno.h>
#include <string.h>

_Static_assert(sizeof(struct spm_measurement) >= sizeof(struct spm_sha256),
               "a measurement holds a SHA-256 context");
_Static_assert(_Alignof(struct spm_measurement) >= _Alignof(struct spm_sha256),
               "a measurement is aligned like a SHA-256 context");

static struct spm_sha256 *sha(struct spm_measurement *m)
{
    return (struct spm_sha256 *)m->opaque;
}

static void put_le(uint8_t *p, uint64_t value, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

void spm_measure_ecreate(struct spm_measurement *m, uint32_t ssa_frame_pages, uint64_t size)
{
    uint8_t block[SGX_MEASURE_BLOCK_SIZE] = {0};
    put_le(block, SGX_MEASURE_TAG_ECREATE, 8);
    put_le(block + 8, ssa_frame_pages, 4);
    put_le(block + 12, size, 8);
    spm_sha256_init(sha(m));
    spm_sha256_update(sha(m), block, sizeof(block));
}

void spm_measure_eadd(struct spm_measurement *m, uint64_t offset, uint64_t secinfo_flags)
{
    uint8_t block[SGX_MEASURE_BLOCK_SIZE] = {0};
    put_le(block, SGX_MEASURE_TAG_EADD, 8);
    put_le(block + 8, offset, 8);
    put_le(block + 16, secinfo_flags, 8);
    spm_sha256_update(sha(m), block, sizeof(block));
}

void spm_measure_eextend(struct spm_measurement *m, uint64_t offset, const uint8_t chunk[256])
{
    uint8_t block[SGX_MEASURE_BLOCK_SIZE] = {0};
    put_le(block, SGX_MEASURE_TAG_EEXTEND, 8);
    put_le(block + 8, offset, 8);
    spm_sha256_update(sha(m), block, sizeof(block));
    spm_sha256_update(sha(m), chunk, SGX_EEXTEND_CHUNK_SIZE);
}

void spm_measure_page(struct spm_measurement *m, uint64_t offset, uint64_t secinfo_flags,
                      bool measured, const uint8_t page[4096])
{
    spm_measure_eadd(m, offset, secinfo_flags);
    if (!measured)
        return;
    for (uint64_t c = 0; c < SGX_PAGE_SIZE; c += SGX_EEXTEND_CHUNK_SIZE)
        spm_measure_eextend(m, offset + c, page + c);
}

void spm_measure_final(struct spm_measurement *m, uint8_t mrenclave[32])
{
    spm_sha256_final(sha(m), mrenclave);
}

static int measure_one(void *ctx, uint64_t offset, uint64_t secinfo_flags, bool measured,
                       const uint8_t *content)
{
    spm_measure_page(ctx, offset, secinfo_flags, measured, content);
    return 0;
}

int spm_image_measure(const struct spm_elf_image *img, const struct spm_layout *layout,
                      uint8_t mrenclave[32])
{
    struct spm_measurement m;
    spm_measure_ecreate(&m, layout->info.ssa_frame_pages, layout->info.elrange_size);
    int ret = spm_layout_for_each_page(img, layout, measure_one, &m);
    spm_measure_final(&m, mrenclave);
    if (ret) {
        memset(mrenclave, 0, 32);
        return ret < 0 ? ret : -EINVAL;
    }
    return 0;
}
