/* What the image module's files share but do not publish: checked
 * arithmetic, the SIGSTRUCT policy constants, and functions proposed for
 * image.h (marked "proposed") that the CLI and tests use meanwhile. */
#ifndef SPM_HOST_IMAGE_INTERNAL_H
#define SPM_HOST_IMAGE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "image.h"

/* ELRANGE may not exceed this (and nor may anything inside it). */
#define SPM_ELRANGE_MAX_SIZE (64ull << 30)

/* SIGSTRUCT policy: the SDK's default attribute mask (everything but
 * MODE64BIT must match; XFRM unchecked) and an all-ones MISCMASK. */
#define SPM_SIGSTRUCT_ATTRIBUTE_MASK_FLAGS 0xFFFFFFFFFFFFFFFBull
#define SPM_SIGSTRUCT_ATTRIBUTE_MASK_XFRM  0x0ull
#define SPM_SIGSTRUCT_MISC_MASK            0xFFFFFFFFu

/* Attribute flags an enclave may ask for; anything else (INITTED, the
 * provisioning and launch keys) is refused, as the Linux driver does. */
#define SPM_ALLOWED_ATTRIBUTE_FLAGS                                                                \
    (SGX_FLAGS_DEBUG | SGX_FLAGS_MODE64BIT | SGX_FLAGS_KSS | SGX_FLAGS_AEX_NOTIFY)

static inline bool img_add_overflow(uint64_t a, uint64_t b, uint64_t *sum)
{
    return __builtin_add_overflow(a, b, sum);
}

static inline bool img_mul_overflow(uint64_t a, uint64_t b, uint64_t *product)
{
    return __builtin_mul_overflow(a, b, product);
}

static inline bool img_is_pow2(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* SIGSTRUCT.DATE for `t` (UTC) as BCD yyyymmdd, e.g. 0x20250714. */
uint32_t img_sigstruct_date(time_t t);

#endif
