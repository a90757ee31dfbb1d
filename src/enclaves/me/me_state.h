/* Between the Migration Enclave and spmd, beyond me_abi.h: what INIT
 * reports back and the clear (authenticated, not secret) header of the
 * sealed escrow state, so spmd can say which state it loaded. Packed and
 * sized: it crosses the enclave boundary. */
#ifndef SPM_ENCLAVES_ME_STATE_H
#define SPM_ENCLAVES_ME_STATE_H

#include <stdint.h>

/* SPM_ME_ECALL_INIT's output. */
struct me_init_out {
    uint64_t version;     /* state version == the platform counter's value */
    uint32_t entry_count; /* escrow entries (escrowed, consumed, cancelled) */
    uint32_t fresh;       /* 1: no state was given, a new escrow was created */
    uint8_t escrow_id[16];
} __attribute__((packed));

/* The sealed escrow state (spm_seal, MRENCLAVE policy): this header is the
 * AAD, the entries are the ciphertext. Format 2 chains each state to the one
 * before it (prev_digest), and the platform counter's tag holds SHA-256 of
 * the newest sealed state: two copies of the state that reach the same
 * version by different writes are told apart (me_enclave.c, INIT).
 * Format 3 grows each entry from 216 to 312 bytes for the hand-over
 * between MEs (the handover id and platform it arrived with, and the ones
 * it is leaving with) and adds the LEAVING, LEFT and ABORTED states; a
 * format 2 state is still read (its entries are extended with zeros) and
 * the next change writes format 3. */
#define ME_STATE_MAGIC         0x5752435345454d53ull /* "SMEESCRW" */
#define ME_STATE_FORMAT        3u
#define ME_STATE_FORMAT_2      2u
#define ME_STATE_ENTRY_SIZE    312u
#define ME_STATE_ENTRY_SIZE_V2 216u

struct me_state_header {
    uint64_t magic;
    uint32_t format;
    uint32_t entry_count;
    uint64_t version;
    uint8_t escrow_id[16]; /* names the platform counter that versions this state */
    /* SHA-256 of the whole sealed state this one replaces (version - 1);
     * all zero for version 1. */
    uint8_t prev_digest[32];
} __attribute__((packed));

_Static_assert(sizeof(struct me_init_out) == 32, "me init out");
_Static_assert(sizeof(struct me_state_header) == 72, "me state header");

#endif
