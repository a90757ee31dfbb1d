/* The Migration Enclave's boundary: the messages an application enclave
 * exchanges with the local ME (relayed byte for byte by libspm and spmd,
 * which can read none of the secrets in them), the framing on spmd's local
 * socket, and the ME's own ecalls and ocalls inside spmd.
 *
 * Local attestation and the channel (DESIGN.md sections 5 and 7):
 *   1. app -> ME  TARGET_INFO            ME's TARGETINFO (untrusted relay;
 *                                         a lie only makes step 2 fail)
 *   2. app -> ME  HELLO {REPORT_A, pubA}  REPORT_A targeted at the ME,
 *        REPORTDATA = SHA-256("SPM-LA-1 app" || pubA) || 0^32
 *      ME -> app  HELLO_REPLY {session, REPORT_M, pubM}, REPORT_M targeted at
 *        the app (from REPORT_A's body), REPORTDATA =
 *        SHA-256("SPM-LA-1 me" || pubA || pubM || le64(session)) || 0^32
 *      The ME checks REPORT_A's MAC (so the app is an enclave on this
 *      platform) and keeps the app's identity for the session; the app
 *      checks REPORT_M's MAC and the ME identity its runtime pins
 *      (MRSIGNER, ISVPRODID, minimum ISVSVN, not debug).
 *      master = SHA-256(ECDH-x || pubA || pubM)
 *      k_app  = HMAC-SHA-256(master, "SPM-LA-1 app->me")
 *      k_me   = HMAC-SHA-256(master, "SPM-LA-1 me->app")
 *   3. SEALED messages: AES-256-GCM under k_app (requests) / k_me
 *      (replies), nonce = le64(sequence) || 0^4, AAD = the 16-byte message
 *      header || le64(session) || le64(sequence). The app numbers its
 *      requests from 1; each reply carries the request's sequence; the ME
 *      refuses a sequence that is not larger than the last one it accepted.
 *
 * Requests inside the channel (struct spm_me_request + body) and what the
 * ME promises:
 *   ESCROW   keep K for (lineage, generation, checkpoint id, header digest),
 *            bound to the caller's identity; refused unless generation is
 *            newer than anything escrowed for the lineage. Reply comes only
 *            after the sealed escrow state is on disk and the platform's
 *            monotonic counter advanced.
 *   RELEASE  give K to a caller whose MRENCLAVE, MRSIGNER, ISVPRODID and
 *            ISVSVN equal the escrowed ones (and not debug unless spmd's
 *            policy allows), for the newest generation, not yet consumed.
 *            Nothing is persisted: K may be released again until COMMIT.
 *   COMMIT   consume the checkpoint with a lease the caller chose; only the
 *            first lease wins, the same lease again is answered OK (a lost
 *            reply can be retried). Persisted before the reply.
 *   CANCEL   an aborted export: consume the checkpoint without a restore,
 *            so the enclave that keeps running is the only copy. Answers 0
 *            only when no other copy can hold the state (cancelled now or
 *            before, or never escrowed); -EALREADY when the checkpoint was
 *            resumed and -ESTALE when the lineage has a newer one: another
 *            copy runs, and the asking enclave must never run again. */
#ifndef SPM_ABI_ME_ABI_H
#define SPM_ABI_ME_ABI_H

#include <stdint.h>

#include "spm/arch/sgx_arch.h"

#define SPM_ME_MAGIC           0x454D5053u /* "SPME" */
#define SPM_ME_VERSION         1u
#define SPM_ME_MAX_MESSAGE     65536u
#define SPM_ME_PUBLIC_KEY_SIZE 65u

/* ISVPRODID every Migration Enclave is signed with; the runtime pins it
 * together with the ME signer's MRSIGNER (generated at build time). */
#define SPM_ME_ISV_PROD_ID 0x4d45u /* "ME" */

enum spm_me_message_type {
    SPM_ME_MSG_TARGET_INFO = 1, /* empty -> struct sgx_target_info */
    SPM_ME_MSG_HELLO,           /* struct spm_me_hello -> struct spm_me_hello_reply */
    SPM_ME_MSG_SEALED,          /* struct spm_me_sealed + ciphertext, both ways */
    SPM_ME_MSG_ERROR,           /* ME -> app, plaintext: struct spm_me_error */
};

/* Every message, on the socket and through the ocall. */
struct spm_me_message_header {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t size; /* bytes after this header */
    uint32_t reserved;
} __attribute__((packed));

struct spm_me_hello {
    struct sgx_report report;
    uint8_t public_key[SPM_ME_PUBLIC_KEY_SIZE];
    uint8_t reserved[15];
} __attribute__((packed));

struct spm_me_hello_reply {
    uint64_t session;
    struct sgx_report report;
    uint8_t public_key[SPM_ME_PUBLIC_KEY_SIZE];
    uint8_t reserved[7];
} __attribute__((packed));

struct spm_me_sealed {
    uint64_t session;
    uint64_t sequence;
    uint8_t tag[16];
    /* ciphertext follows: struct spm_me_request + body, or a reply */
} __attribute__((packed));

/* Plaintext error for messages that never reached a session (unknown
 * session, bad report); negative errno. */
struct spm_me_error {
    int32_t status;
    uint32_t reserved;
} __attribute__((packed));

enum spm_me_request_type {
    SPM_ME_REQ_ESCROW = 1,
    SPM_ME_REQ_RELEASE,
    SPM_ME_REQ_COMMIT,
    SPM_ME_REQ_CANCEL,
};

/* Inside SEALED, both ways. A reply has the request's type and a status
 * (0 or negative errno: -ESTALE older generation, -EALREADY consumed,
 * -ENOENT unknown checkpoint, -EKEYREJECTED identity mismatch, -EPERM
 * policy (debug), -EBADMSG header digest mismatch, -ENOSPC table full). */
struct spm_me_request {
    uint16_t type;
    uint16_t reserved;
    int32_t status;
} __attribute__((packed));

/* Which checkpoint: all requests start with it. */
struct spm_me_checkpoint_ref {
    uint8_t checkpoint_id[16];
    uint8_t lineage_id[16];
    uint64_t generation;
    uint8_t header_digest[32];
} __attribute__((packed));

struct spm_me_escrow {
    struct spm_me_checkpoint_ref ref;
    uint8_t key[32];
} __attribute__((packed));

/* RELEASE request: struct spm_me_checkpoint_ref; reply: */
struct spm_me_release_reply {
    uint8_t key[32];
} __attribute__((packed));

struct spm_me_commit {
    struct spm_me_checkpoint_ref ref;
    uint8_t lease[16];
} __attribute__((packed));

/* CANCEL request: struct spm_me_checkpoint_ref; ESCROW, COMMIT and CANCEL
 * replies carry no body. */

/* ---- spmd's local socket ----
 * One request per connection: the client writes one message (header +
 * size bytes), spmd answers with one message and closes. */
#define SPM_SPMD_SOCKET_DEFAULT "/run/spm/spmd.sock"
#define SPM_SPMD_SOCKET_ENV     "SPM_SPMD_SOCKET"

/* ---- The ME's own calls (inside spmd) ---- */
enum spm_me_ecall {
    /* in: struct spm_me_init_in + the sealed escrow state (may be empty);
     * fails with -ESTALE when that state is older than the platform's
     * monotonic counter says (rollback), -EBADMSG when it does not unseal. */
    SPM_ME_ECALL_INIT = 0,
    /* in: one message; out: the reply message. */
    SPM_ME_ECALL_HANDLE,
};
enum spm_me_ocall {
    /* in: the new sealed escrow state; the host writes it durably
     * (write, fsync, rename, fsync dir) before returning 0. */
    SPM_ME_OCALL_PERSIST = 0,
};

#define SPM_ME_POLICY_ALLOW_DEBUG 1u

struct spm_me_init_in {
    uint32_t policy; /* SPM_ME_POLICY_* */
    uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct spm_me_message_header) == 16, "me message header");
_Static_assert(sizeof(struct spm_me_hello) == 432 + 80, "me hello");
_Static_assert(sizeof(struct spm_me_hello_reply) == 8 + 432 + 72, "me hello reply");
_Static_assert(sizeof(struct spm_me_sealed) == 32, "me sealed");
_Static_assert(sizeof(struct spm_me_request) == 8, "me request");
_Static_assert(sizeof(struct spm_me_checkpoint_ref) == 72, "me checkpoint ref");
_Static_assert(sizeof(struct spm_me_escrow) == 104, "me escrow");
_Static_assert(sizeof(struct spm_me_commit) == 88, "me commit");
_Static_assert(sizeof(struct spm_me_init_in) == 8, "me init in");

#endif
