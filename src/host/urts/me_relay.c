/* Relays an enclave's message to the local Migration Enclave in spmd. */
#include <errno.h>

#include "urts_internal.h"

int spm_urts_me_relay(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                      size_t *out_size)
{
    (void)in, (void)in_size, (void)out, (void)out_capacity, (void)out_size;
    return -ENOSYS; /* filled in by the ME work */
}
