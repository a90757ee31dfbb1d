/* The trusted runtime's side of the Migration Enclave protocol (me_abi.h):
 * local attestation with the ME of this host and the four requests. Used
 * by the checkpoint engine on paths where the heap is being captured or
 * restored, so nothing here allocates: sessions and messages live on the
 * caller's stack or in the incarnation page. Every function returns 0 or a
 * negative errno; a status the ME sent back is returned as is (see
 * me_abi.h), -EPROTO for a malformed or unauthenticated reply,
 * -EKEYREJECTED when the peer is not the pinned ME. */
#ifndef SPM_TRUSTED_ME_CLIENT_H
#define SPM_TRUSTED_ME_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "spm/abi/me_abi.h"
#include "trts_internal.h"

struct trts_me_session {
    uint64_t session;
    uint64_t sequence; /* of the last request sent */
    uint8_t k_app[32];
    uint8_t k_me[32];
    bool open;
};

/* MRSIGNER of the Migration Enclave's signer (generated at build time). */
extern const uint8_t spm_me_pinned_mrsigner[32] TRTS_HIDDEN;

/* TARGET_INFO + HELLO: attests the ME (pinned MRSIGNER, SPM_ME_ISV_PROD_ID,
 * not debug) and derives the channel keys. */
int trts_me_open(struct trts_me_session *s) TRTS_HIDDEN __attribute__((warn_unused_result));
int trts_me_escrow(struct trts_me_session *s, const struct spm_me_checkpoint_ref *ref,
                   const uint8_t key[32]) TRTS_HIDDEN __attribute__((warn_unused_result));
int trts_me_release(struct trts_me_session *s, const struct spm_me_checkpoint_ref *ref,
                    uint8_t key[32]) TRTS_HIDDEN __attribute__((warn_unused_result));
int trts_me_commit(struct trts_me_session *s, const struct spm_me_checkpoint_ref *ref,
                   const uint8_t lease[16]) TRTS_HIDDEN __attribute__((warn_unused_result));
int trts_me_cancel(struct trts_me_session *s, const struct spm_me_checkpoint_ref *ref)
    TRTS_HIDDEN __attribute__((warn_unused_result));
/* Wipes the keys. */
void trts_me_close(struct trts_me_session *s) TRTS_HIDDEN;

#endif
