/* The trusted runtime's side of the Migration Enclave protocol (me_abi.h):
 * local attestation with the ME of this host and the four requests. Used
 * by the checkpoint engine on paths where the heap is being captured or
 * restored, so nothing here allocates: sessions and messages live on the
 * caller's stack or in the incarnation page. Every function returns 0 or a
 * negative errno; a status the ME sent back is returned as is (see
 * me_abi.h), -EPROTO for a malformed or unauthenticated reply,
 * -EKEYREJECTED when the peer is not the pinned ME. A request that got no
 * authenticated reply never returns one of the ME's verdicts: it fails
 * with -ECONNRESET (the ME no longer knows the session, e.g. spmd was
 * restarted: open a new session and retry), -ETIMEDOUT, -EIO (spmd not
 * reachable or the ME failed) or -EPROTO. A sequence number is spent even
 * when its request fails, so retrying on the same session is safe. */
#ifndef SPM_TRUSTED_ME_CLIENT_H
#define SPM_TRUSTED_ME_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "spm/abi/me_abi.h"
#include "trts_internal.h"

/* The ME's verdicts (me_abi.h) use errnos the trusted errno.h does not
 * define yet; Linux x86_64 values. */
#ifndef ENOTCONN
#define ENOTCONN 107
#endif
#ifndef EALREADY
#define EALREADY 114
#endif
#ifndef ESTALE
#define ESTALE 116
#endif
#ifndef ENOTRECOVERABLE
#define ENOTRECOVERABLE 131
#endif

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
int trts_me_cancel(struct trts_me_session *s, const struct spm_me_checkpoint_ref *ref) TRTS_HIDDEN
    __attribute__((warn_unused_result));
/* Wipes the keys. */
void trts_me_close(struct trts_me_session *s) TRTS_HIDDEN;

/* Lowest ISVSVN of a Migration Enclave the client accepts. */
#define TRTS_ME_MIN_ISV_SVN 1u

/* ---- The channel's construction, shared with the ME (src/enclaves/me)
 * so that both ends compute it with one implementation (me_abi.h). ---- */

/* Largest plaintext inside a SEALED message either side sends. */
#define TRTS_ME_MAX_SEALED_PLAINTEXT 256u

/* REPORT_A's REPORTDATA: SHA-256("SPM-LA-1 app" || pub_app) || 0^32. */
void trts_me_app_report_data(const uint8_t pub_app[SPM_ME_PUBLIC_KEY_SIZE],
                             uint8_t report_data[64]) TRTS_HIDDEN;
/* REPORT_M's REPORTDATA:
 * SHA-256("SPM-LA-1 me" || pub_app || pub_me || le64(session)) || 0^32. */
void trts_me_me_report_data(const uint8_t pub_app[SPM_ME_PUBLIC_KEY_SIZE],
                            const uint8_t pub_me[SPM_ME_PUBLIC_KEY_SIZE], uint64_t session,
                            uint8_t report_data[64]) TRTS_HIDDEN;
/* ECDH with `private_key` and `peer_public` (checked to be on the curve:
 * -EINVAL otherwise), then master = SHA-256(x || pub_app || pub_me) and the
 * two direction keys. Every intermediate is wiped. */
int trts_me_derive_keys(const uint8_t private_key[32], const uint8_t peer_public[65],
                        const uint8_t pub_app[SPM_ME_PUBLIC_KEY_SIZE],
                        const uint8_t pub_me[SPM_ME_PUBLIC_KEY_SIZE], uint8_t k_app[32],
                        uint8_t k_me[32]) TRTS_HIDDEN __attribute__((warn_unused_result));
/* Writes a whole SEALED message (header, struct spm_me_sealed, ciphertext
 * of `plain`) into `out`. -ENOSPC if it does not fit, -EINVAL if plain is
 * larger than TRTS_ME_MAX_SEALED_PLAINTEXT. */
int trts_me_seal_message(const uint8_t key[32], uint64_t session, uint64_t sequence,
                         const void *plain, size_t plain_size, uint8_t *out, size_t out_capacity,
                         size_t *out_size) TRTS_HIDDEN __attribute__((warn_unused_result));
/* Reads session and sequence of a SEALED message without authenticating
 * them (to find the key): -EPROTO if it is not a well-formed SEALED message. */
int trts_me_peek_sealed(const uint8_t *msg, size_t msg_size, uint64_t *session,
                        uint64_t *sequence) TRTS_HIDDEN __attribute__((warn_unused_result));
/* Authenticates and decrypts a SEALED message under `key` into `plain`;
 * session and sequence are authenticated by the tag. -EPROTO if malformed
 * or the tag does not verify (plain is then wiped), -ENOSPC if the
 * plaintext is larger than plain_capacity. */
int trts_me_open_sealed(const uint8_t key[32], const uint8_t *msg, size_t msg_size, void *plain,
                        size_t plain_capacity, size_t *plain_size) TRTS_HIDDEN
    __attribute__((warn_unused_result));
/* Writes a message header for `type` and `size` body bytes. */
void trts_me_header(struct spm_me_message_header *h, uint16_t type, uint32_t size) TRTS_HIDDEN;
/* Checks the header of a received message of msg_size bytes (magic,
 * version, size == msg_size - header, reserved zero): -EPROTO otherwise. */
int trts_me_check_header(const uint8_t *msg, size_t msg_size,
                         struct spm_me_message_header *h) TRTS_HIDDEN
    __attribute__((warn_unused_result));

#endif
