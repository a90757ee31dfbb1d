/* Inside the Migration Enclave: the seam between the escrow table
 * (me_enclave.c, which owns the entries and their persistence) and the
 * ME-to-ME protocol (me_peer.c, which owns peer sessions, remote
 * attestation and the sealed channel). The protocol never touches an entry
 * itself: it asks the table for each step of the hand-over, so every state
 * change goes through the table's one persist path. Everything here runs
 * under the ME's lock (e_handle). */
#ifndef SPM_ENCLAVES_ME_PEER_H
#define SPM_ENCLAVES_ME_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "spm/abi/me_abi.h"

/* ---- me_peer.c ---- */

/* Handles one PEER_* message (`in`, in_size bytes, header already checked
 * and copied to *h) and writes the reply message into `out`. Returns 0 with
 * a reply (an SPM_ME_MSG_ERROR for refusals), or -ENOSPC when out_capacity
 * cannot hold even that. */
int me_peer_handle(const struct spm_me_message_header *h, const uint8_t *in, size_t in_size,
                   uint8_t *out, size_t out_capacity, size_t *out_size)
    __attribute__((warn_unused_result));

/* ---- me_enclave.c ---- */

/* Writes an SPM_ME_MSG_ERROR reply; -ENOSPC if it does not fit. */
int me_reply_error(int32_t status, uint8_t *out, size_t out_capacity, size_t *out_size)
    __attribute__((warn_unused_result));
/* spmd's SPM_ME_POLICY_* flags. */
uint32_t me_policy(void);
/* Prints "ME: <msg>" through the host (never anything secret). */
void me_log(const char *msg);

/* At S, PEER_HANDOVER: marks the ESCROWED entry of `ref` (any owner)
 * LEAVING towards `peer_platform` with a fresh handover id, persists, and
 * fills *transfer (with K: the caller wipes it). An entry already LEAVING
 * to the same platform is sent again unchanged. -ENOENT no such entry,
 * -EEXIST two owners share the ref, -ESTALE other generation, -EBADMSG other
 * header digest, -EBUSY leaving to another platform, -EALREADY left,
 * consumed or cancelled, or persist's error. */
int me_handover_begin(const struct spm_me_checkpoint_ref *ref, const uint8_t peer_platform[32],
                      const uint8_t self_platform[32], struct spm_me_peer_transfer *transfer)
    __attribute__((warn_unused_result));
/* At D, TRANSFER from `source_platform`: the status to acknowledge with (0:
 * stored durably, or already held under that handover id). */
int me_transfer_receive(const struct spm_me_peer_transfer *transfer,
                        const uint8_t source_platform[32]) __attribute__((warn_unused_result));
/* At S, TRANSFER_ACK with D's `status`, from `peer_platform`: LEFT on 0
 * (persisted). Fills *st for spmd. -ENOENT unknown handover, -EACCES from
 * another platform than the one recorded, -EPROTO contradicts the entry. */
int me_handover_acked(const struct spm_me_peer_transfer_ack *ack, int32_t status,
                      const uint8_t peer_platform[32], struct spm_me_peer_status *st)
    __attribute__((warn_unused_result));
/* At S, PEER_RESOLVE: 1 with *resolve filled when the entry is LEAVING and
 * `peer_platform` (NULL: no session) is the one recorded; 0 with *st filled
 * when the outcome is already known; -EACCES another platform, -ECONNRESET
 * LEAVING but no session, or the lookup errors of me_handover_begin. */
int me_resolve_begin(const struct spm_me_checkpoint_ref *ref, const uint8_t *peer_platform,
                     struct spm_me_peer_resolve *resolve, struct spm_me_peer_status *st)
    __attribute__((warn_unused_result));
/* At D, RESOLVE from `source_platform`: *verdict (an ABORTED marker is
 * persisted first when needed). -EBUSY when D's own entry of that lineage
 * is LEAVING (settle that first), -ENOSPC, or persist's error. */
int me_resolve_answer(const struct spm_me_peer_resolve *resolve, const uint8_t source_platform[32],
                      uint32_t *verdict) __attribute__((warn_unused_result));
/* At S, RESOLVED from `peer_platform`: LEFT or back to ESCROWED
 * (persisted); fills *st. Errors as me_handover_acked. */
int me_resolved(const struct spm_me_peer_resolved *resolved, const uint8_t peer_platform[32],
                struct spm_me_peer_status *st) __attribute__((warn_unused_result));
/* PEER_LIST: writes struct spm_me_peer_list and the LEAVING entries into
 * `out`; -ENOSPC if they do not fit. */
int me_list_leaving(uint8_t *out, size_t out_capacity, size_t *out_size)
    __attribute__((warn_unused_result));

#endif
