/* SIGSTRUCT verification (src/host/image/sigstruct.c, spm_sigstruct_verify):
 * the checks simulated EINIT, the loader and `spm inspect` make on the 1808
 * bytes an enclave image's .spm_meta carries, which whoever holds the file
 * may have rewritten.
 *
 * Input: two bytes (little-endian) picking a bit of the SIGSTRUCT, then the
 * SIGSTRUCT (zero-padded to 1808 bytes if shorter). The picker comes first
 * so that mutating it keeps the SIGSTRUCT intact: most inputs of a seed's
 * descendants then pass the RSA checks and test another bit.
 *
 * Checked: a verdict is the same twice; an accepted SIGSTRUCT has the
 * architectural headers, exponent 3, zero reserved bytes and a 3072-bit
 * modulus, and MRSIGNER is SHA-256 of its modulus; and every one of its
 * 14464 bits is bound by the verification: each field is either signed,
 * fixed, or (modulus, signature, Q1, Q2) determined by the signature, so
 * the same SIGSTRUCT with the chosen bit flipped must be refused. The seeds
 * are real SIGSTRUCTs made by `spm sign` (fuzz/image/make-seeds.sh), so the
 * fuzzer reaches the RSA checks with every unsigned field it mutates. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/crypto/hash.h"
#include "image/image.h"
#include "quiet_log.h"

static const uint8_t header1[12] = SGX_SIGSTRUCT_HEADER1;
static const uint8_t header2[16] = SGX_SIGSTRUCT_HEADER2;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    return 0;
}

static bool all_zero(const uint8_t *p, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (p[i])
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A heap copy of exactly one SIGSTRUCT: ASan sees any read past it. */
    if (size < 2)
        return 0;
    uint32_t flip_bit =
        ((uint32_t)data[0] | (uint32_t)data[1] << 8) % (uint32_t)(sizeof(struct sgx_sigstruct) * 8);
    data += 2;
    size -= 2;
    struct sgx_sigstruct *sig = malloc(sizeof(*sig));
    assert(sig);
    memset(sig, 0, sizeof(*sig));
    memcpy(sig, data, size < sizeof(*sig) ? size : sizeof(*sig));

    uint8_t mrsigner[32], again[32];
    int ret = spm_sigstruct_verify(sig, mrsigner);
    assert(ret == 0 || ret == -EBADMSG || ret == -EKEYREJECTED);
    assert(spm_sigstruct_verify(sig, again) == ret);
    if (ret < 0) {
        free(sig);
        return 0;
    }

    assert(memcmp(again, mrsigner, sizeof(again)) == 0);
    assert(memcmp(sig->header.header, header1, sizeof(header1)) == 0);
    assert(memcmp(sig->header.header2, header2, sizeof(header2)) == 0);
    assert((sig->header.type & ~SGX_SIGSTRUCT_TYPE_DEBUG_SIGNER) == 0);
    assert(sig->header.vendor == 0 || sig->header.vendor == SGX_SIGSTRUCT_VENDOR_INTEL);
    assert(sig->exponent == 3);
    assert(all_zero(sig->reserved4, sizeof(sig->reserved4)));
    assert(sig->modulus[SGX_MODULUS_SIZE - 1] & 0x80);
    uint8_t expect[32];
    spm_sha256(sig->modulus, SGX_MODULUS_SIZE, expect);
    assert(memcmp(expect, mrsigner, sizeof(expect)) == 0);

    ((uint8_t *)sig)[flip_bit / 8] ^= (uint8_t)(1u << (flip_bit % 8));
    ret = spm_sigstruct_verify(sig, again);
    assert(ret == -EBADMSG || ret == -EKEYREJECTED);
    free(sig);
    return 0;
}
