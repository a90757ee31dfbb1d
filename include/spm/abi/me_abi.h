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
 *            copy runs, and the asking enclave must never run again.
 * While a checkpoint is being handed to another host's ME (LEAVING, below)
 * RELEASE, COMMIT and CANCEL answer -EBUSY (a frozen enclave stays frozen
 * and asks again once the hand-over is settled); once it LEFT they answer
 * -EALREADY (another copy may run: the caller must die). On the destination
 * a received key is released and committed exactly like a local escrow. */
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

    /* ME to ME (below): "local" = from the ME's own spmd, "peer" = made
     * by the other ME and relayed untouched by both daemons. */
    SPM_ME_MSG_PEER_OPEN = 16,     /* local -> S: spm_me_peer_open -> PEER_OFFER */
    SPM_ME_MSG_PEER_OFFER = 17,    /* peer -> D: spm_me_peer_offer -> PEER_ACCEPT */
    SPM_ME_MSG_PEER_ACCEPT = 18,   /* peer -> S: spm_me_peer_accept + quote -> PEER_CONFIRM */
    SPM_ME_MSG_PEER_CONFIRM = 19,  /* peer -> D: spm_me_peer_confirm + quote -> PEER_SEALED */
    SPM_ME_MSG_PEER_SEALED = 20,   /* peer, both ways: spm_me_peer_sealed + ciphertext */
    SPM_ME_MSG_PEER_STATUS = 21,   /* ME -> its own spmd: spm_me_peer_status */
    SPM_ME_MSG_PEER_HANDOVER = 22, /* local -> S: spm_me_peer_checkpoint -> PEER_SEALED */
    SPM_ME_MSG_PEER_RESOLVE = 23,  /* local -> S: spm_me_peer_checkpoint -> PEER_SEALED
                                    * or PEER_STATUS */
    SPM_ME_MSG_PEER_LIST = 24,     /* local -> any: empty -> PEER_LIST: spm_me_peer_list */
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
_Static_assert(sizeof(struct spm_me_error) == 8, "me error");

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
_Static_assert(sizeof(struct spm_me_release_reply) == 32, "me release reply");

struct spm_me_commit {
    struct spm_me_checkpoint_ref ref;
    uint8_t lease[16];
} __attribute__((packed));

/* CANCEL request: struct spm_me_checkpoint_ref; ESCROW, COMMIT and CANCEL
 * replies carry no body. */

/* ---- ME to ME: remote attestation and the key hand-over ----
 *
 * S is the source ME (initiator), D the destination ME (responder). The
 * daemons carry every message; the MEs trust none of them. All transcript
 * hashes are SHA-256, "bytes" of a message means the whole message as
 * relayed (header included), le64 is little-endian.
 *
 *   1. spmd_S -> S  PEER_OPEN {flags = 0}
 *      S -> D       PEER_OFFER {initiator_session, nonce_S, pubS}
 *   2. D -> S       PEER_ACCEPT {initiator_session, responder_session,
 *                   nonce_D, pubD, quote_D}
 *        T1 = SHA-256(OFFER bytes || pubD || nonce_D || le64(responder_session))
 *        quote_D REPORTDATA = SHA-256("SPM-RA-1 responder" || T1) || 0^32
 *   3. S checks quote_D (signature, QE, chain to the provisioning root the
 *      ME build pins), REPORTDATA, and the peer's identity: MRSIGNER equal
 *      to S's own, ISVPRODID SPM_ME_ISV_PROD_ID, ISVSVN >= S's own, not
 *      DEBUG unless spmd's policy allows debug. Refusals: -EKEYREJECTED
 *      (quote or chain), -EBADMSG (binding, malformed), -EACCES (signer,
 *      product, SVN), -EPERM (debug). Then
 *        T2 = SHA-256(T1 || ACCEPT bytes)
 *        k_sd = HMAC-SHA-256(ECDH-x, "SPM-RA-1 initiator->responder" || T2)
 *        k_ds = HMAC-SHA-256(ECDH-x, "SPM-RA-1 responder->initiator" || T2)
 *      S -> D       PEER_CONFIRM {responder_session, quote_S}
 *        quote_S REPORTDATA = SHA-256("SPM-RA-1 initiator" || T2) || 0^32
 *   4. D checks quote_S the same way and derives the same keys.
 *      D -> S       PEER_SEALED (READY)
 *      S -> spmd_S  PEER_STATUS {0, outcome NONE, session}: the session is up.
 *   Any failure drops the half-open session (a new OPEN starts over).
 *
 * PEER_SEALED: {receiver_session, sequence, tag, ciphertext} under k_sd
 * (S -> D) or k_ds (D -> S), AES-256-GCM, nonce = le64(sequence) || 0^4,
 * AAD = header || le64(receiver_session) || le64(sequence). Each direction
 * numbers its messages from 1; a receiver refuses any sequence not larger
 * than the last it accepted. Plaintext: struct spm_me_peer_request + body.
 * A message that fails to authenticate, is replayed or is malformed changes
 * nothing and closes the session (the sender's next message gets
 * -ECONNRESET: open a new session).
 *
 * The hand-over of checkpoint K (two phases, each persisted before its
 * message leaves the enclave):
 *   spmd_S -> S  PEER_HANDOVER {session, ref}: S's ESCROWED entry for ref
 *                (any owner) becomes LEAVING with a random handover_id and
 *                D's platform id (persisted); S -> D TRANSFER. Asking again
 *                while LEAVING to the same platform re-sends the same
 *                TRANSFER (a lost message); to another platform: -EBUSY.
 *   D            TRANSFER: stores K as ESCROWED for (lineage, owner) with
 *                handover_id (persisted); -ESTALE if it has that lineage at
 *                the same or a newer generation (an ABORTED marker counts),
 *                -EPERM for a DEBUG owner unless its policy allows; the same
 *                handover_id again is acknowledged again.
 *                D -> S TRANSFER_ACK {handover_id, ref}, status.
 *   S            TRANSFER_ACK 0: LEAVING -> LEFT, K wiped (persisted);
 *                S -> spmd_S PEER_STATUS {0, HANDED_OVER}. A refusal keeps
 *                LEAVING: PEER_STATUS {status, PENDING}; resolve it.
 *   spmd_S -> S  PEER_RESOLVE {session, ref}: for a LEAVING entry, only
 *                through a session with the platform recorded at HANDOVER
 *                (-EACCES otherwise); S -> D RESOLVE. LEFT answers
 *                PEER_STATUS HANDED_OVER and any other state KEPT at once.
 *   D            RESOLVE: HELD if it received that handover_id (whatever
 *                happened to the entry since); SUPERSEDED if it has the
 *                lineage at a newer generation (the checkpoint ran on
 *                somewhere: S must not resume it); ABORTED otherwise, after
 *                persisting an ABORTED marker for (lineage, owner,
 *                generation) so that the TRANSFER can never be stored
 *                later (a same-generation entry already refuses it).
 *                D -> S RESOLVED {handover_id, ref, verdict}.
 *   S            HELD or SUPERSEDED: LEFT; ABORTED: back to ESCROWED (the
 *                source may restore in place); persisted; PEER_STATUS.
 *   spmd -> ME   PEER_LIST: the LEAVING entries, for a daemon that lost
 *                its journal.
 * Local requests answer SPM_ME_MSG_ERROR on failure. */
#define SPM_ME_PEER_MAX_QUOTE     16384u
#define SPM_ME_PEER_MAX_PLAINTEXT 512u

struct spm_me_peer_open {
    uint32_t flags; /* none defined: 0 */
    uint32_t reserved;
} __attribute__((packed));

struct spm_me_peer_offer {
    uint64_t initiator_session;
    uint8_t nonce[32];
    uint8_t public_key[SPM_ME_PUBLIC_KEY_SIZE];
    uint8_t reserved[7];
} __attribute__((packed));

struct spm_me_peer_accept {
    uint64_t initiator_session;
    uint64_t responder_session;
    uint8_t nonce[32];
    uint8_t public_key[SPM_ME_PUBLIC_KEY_SIZE];
    uint8_t reserved[3];
    uint32_t quote_size; /* the quote follows; the message ends with it */
} __attribute__((packed));

struct spm_me_peer_confirm {
    uint64_t responder_session;
    uint32_t quote_size; /* the quote follows; the message ends with it */
    uint32_t reserved;
} __attribute__((packed));

struct spm_me_peer_sealed {
    uint64_t receiver_session;
    uint64_t sequence;
    uint8_t tag[16];
    /* ciphertext follows: struct spm_me_peer_request + body */
} __attribute__((packed));

enum spm_me_peer_request_type {
    SPM_ME_PEER_READY = 1,    /* D -> S, no body */
    SPM_ME_PEER_TRANSFER,     /* S -> D, spm_me_peer_transfer */
    SPM_ME_PEER_TRANSFER_ACK, /* D -> S, spm_me_peer_transfer_ack; status = D's verdict */
    SPM_ME_PEER_RESOLVE,      /* S -> D, spm_me_peer_resolve */
    SPM_ME_PEER_RESOLVED,     /* D -> S, spm_me_peer_resolved */
};

struct spm_me_peer_request {
    uint16_t type;
    uint16_t reserved;
    int32_t status; /* 0 in requests; TRANSFER_ACK: 0 or D's -errno */
} __attribute__((packed));

/* An enclave's identity as the release rule uses it. */
struct spm_me_identity {
    uint8_t mr_enclave[32];
    uint8_t mr_signer[32];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint32_t reserved;
    uint64_t attributes_flags;
} __attribute__((packed));

struct spm_me_peer_transfer {
    uint8_t handover_id[16];
    struct spm_me_checkpoint_ref ref;
    struct spm_me_identity owner;
    uint8_t key[32];
    uint8_t source_platform_id[32]; /* must be the session's peer platform */
} __attribute__((packed));

struct spm_me_peer_transfer_ack {
    uint8_t handover_id[16];
    struct spm_me_checkpoint_ref ref;
} __attribute__((packed));

struct spm_me_peer_resolve {
    uint8_t handover_id[16];
    struct spm_me_checkpoint_ref ref;
    struct spm_me_identity owner;
} __attribute__((packed));

enum spm_me_peer_verdict {
    SPM_ME_PEER_HELD = 1,       /* D received this handover: S must not resume */
    SPM_ME_PEER_ABORTED = 2,    /* D does not and never will hold it */
    SPM_ME_PEER_SUPERSEDED = 3, /* D has the lineage at a newer generation */
};

struct spm_me_peer_resolved {
    uint8_t handover_id[16];
    struct spm_me_checkpoint_ref ref;
    uint32_t verdict; /* enum spm_me_peer_verdict */
    uint32_t reserved;
} __attribute__((packed));

/* PEER_HANDOVER and PEER_RESOLVE (local -> S). */
struct spm_me_peer_checkpoint {
    uint64_t session; /* S's session id (initiator_session) */
    struct spm_me_checkpoint_ref ref;
} __attribute__((packed));

enum spm_me_peer_outcome {
    SPM_ME_PEER_OUTCOME_NONE = 0,        /* READY: the session is up */
    SPM_ME_PEER_OUTCOME_HANDED_OVER = 1, /* LEFT: the destination owns K */
    SPM_ME_PEER_OUTCOME_KEPT = 2,        /* the source owns K (may restore in place) */
    SPM_ME_PEER_OUTCOME_PENDING = 3,     /* still LEAVING: resolve it */
};

/* Plaintext, to the ME's own spmd: nothing secret. */
struct spm_me_peer_status {
    int32_t status;
    uint32_t outcome; /* enum spm_me_peer_outcome */
    uint64_t session;
    uint8_t handover_id[16];
    uint8_t peer_platform_id[32];
    struct spm_me_checkpoint_ref ref;
} __attribute__((packed));

/* PEER_LIST reply: count entries follow. */
struct spm_me_peer_leaving {
    struct spm_me_checkpoint_ref ref;
    uint8_t handover_id[16];
    uint8_t peer_platform_id[32];
} __attribute__((packed));

struct spm_me_peer_list {
    uint32_t count;
    uint32_t reserved;
} __attribute__((packed));

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
_Static_assert(sizeof(struct spm_me_peer_open) == 8, "me peer open");
_Static_assert(sizeof(struct spm_me_peer_offer) == 112, "me peer offer");
_Static_assert(sizeof(struct spm_me_peer_accept) == 120, "me peer accept");
_Static_assert(sizeof(struct spm_me_peer_confirm) == 16, "me peer confirm");
_Static_assert(sizeof(struct spm_me_peer_sealed) == 32, "me peer sealed");
_Static_assert(sizeof(struct spm_me_peer_request) == 8, "me peer request");
_Static_assert(sizeof(struct spm_me_identity) == 80, "me identity");
_Static_assert(sizeof(struct spm_me_peer_transfer) == 232, "me peer transfer");
_Static_assert(sizeof(struct spm_me_peer_transfer_ack) == 88, "me peer transfer ack");
_Static_assert(sizeof(struct spm_me_peer_resolve) == 168, "me peer resolve");
_Static_assert(sizeof(struct spm_me_peer_resolved) == 96, "me peer resolved");
_Static_assert(sizeof(struct spm_me_peer_checkpoint) == 80, "me peer checkpoint");
_Static_assert(sizeof(struct spm_me_peer_status) == 136, "me peer status");
_Static_assert(sizeof(struct spm_me_peer_leaving) == 120, "me peer leaving");
_Static_assert(sizeof(struct spm_me_peer_list) == 8, "me peer list");

#endif
