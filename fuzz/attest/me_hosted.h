/* Handles on the hosted Migration Enclave (me_enclave_hosted.c,
 * me_peer_hosted.c) for the me_peer and escrow harnesses. */
#ifndef SPM_FUZZ_ATTEST_ME_HOSTED_H
#define SPM_FUZZ_ATTEST_ME_HOSTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spm/abi/me_abi.h"

/* Back to a never-initialised ME, with no peer sessions. */
void fuzz_me_reset(void);
void fuzz_me_peer_reset(void);

/* The ME's two ecalls, SPM_ME_ECALL_INIT and SPM_ME_ECALL_HANDLE. */
int fuzz_me_init(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                 size_t *out_size);
int fuzz_me_handle(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size);

/* The ME stopped serving (a counter step failed or went elsewhere). */
bool fuzz_me_failed(void);
/* The state version the ME is at. */
uint64_t fuzz_me_version(void);

/* What a harness may check of a loaded entry. */
struct fuzz_me_entry_view {
    uint32_t state;
    uint64_t generation;
    uint8_t lineage_id[16];
    uint8_t checkpoint_id[16];
    uint8_t header_digest[32];
};
/* Fills *view with the index-th used entry (if there is one) and returns
 * how many entries are used. */
size_t fuzz_me_entry(size_t index, struct fuzz_me_entry_view *view);

/* Writes one format-3 escrow entry (me_state.h) to `out` and returns its
 * size (ME_STATE_ENTRY_SIZE). */
size_t fuzz_me_encode_entry(uint32_t state, const struct spm_me_checkpoint_ref *ref,
                            const struct spm_me_identity *owner, const uint8_t key[32],
                            uint8_t *out);

#endif
