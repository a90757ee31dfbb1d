/* The stand-in enclave's incarnation page (trusted_hosted.c), set up as
 * the runtime's first entry would, except that the DRBG starts from a
 * fixed seed instead of RDRAND: an input then replays with the same
 * session ids, nonces and keys. Apart from trusted_hosted.c because it
 * needs trts_internal.h, whose declarations of the enclave's bounds are
 * const. */
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "trts_internal.h"

void fuzz_trts_seed_incarnation(void *incarnation, size_t size);

void fuzz_trts_seed_incarnation(void *incarnation, size_t size)
{
    static const uint8_t seed[48] = "spm fuzz: a fixed seed for the enclave's DRBG";
    struct trts_incarnation *inc = incarnation;
    if (size < sizeof(*inc))
        abort();
    memset(inc, 0, sizeof(*inc));
    tc_drbg_init(inc->drbg, seed, sizeof(seed));
    inc->drbg_ready = 1;
}
