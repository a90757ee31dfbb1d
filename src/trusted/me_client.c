/* The client side of the Migration Enclave protocol (me_abi.h): local
 * attestation of the ME of this host, an ECDH channel bound into both
 * reports, and ESCROW / RELEASE / COMMIT / CANCEL over it. The checkpoint
 * engine calls this while the heap is being captured or restored, so nothing
 * here allocates: every message lives on the stack, and every secret (ECDH
 * private key, shared point, master secret, plaintexts) is wiped before the
 * function returns. The host relays the bytes (SPM_RT_OCALL_ME) and can
 * only make a call fail: every reply that matters is authenticated.
 *
 * The channel's construction (report data, key derivation, SEALED framing)
 * is also used by the ME itself, so both ends share this one copy. */
#include "me_client.h"

#include <string.h>

#include "crypto/crypto.h"

#define LABEL_APP_REPORT "SPM-LA-1 app"
#define LABEL_ME_REPORT  "SPM-LA-1 me"
#define LABEL_K_APP      "SPM-LA-1 app->me"
#define LABEL_K_ME       "SPM-LA-1 me->app"

#define HEADER_SIZE sizeof(struct spm_me_message_header)
#define SEALED_SIZE sizeof(struct spm_me_sealed)
/* The largest reply the client expects: HELLO_REPLY. */
#define REPLY_CAPACITY (HEADER_SIZE + sizeof(struct spm_me_hello_reply))

_Static_assert(HEADER_SIZE + SEALED_SIZE + TRTS_ME_MAX_SEALED_PLAINTEXT <= SPM_ME_MAX_MESSAGE,
               "sealed messages fit the socket's bound");

static void put_le64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- The channel's construction ---- */

void trts_me_app_report_data(const uint8_t pub_app[SPM_ME_PUBLIC_KEY_SIZE], uint8_t report_data[64])
{
    uint8_t input[sizeof(LABEL_APP_REPORT) - 1 + SPM_ME_PUBLIC_KEY_SIZE];
    memcpy(input, LABEL_APP_REPORT, sizeof(LABEL_APP_REPORT) - 1);
    memcpy(input + sizeof(LABEL_APP_REPORT) - 1, pub_app, SPM_ME_PUBLIC_KEY_SIZE);
    memset(report_data, 0, 64);
    tc_sha256(input, sizeof(input), report_data);
}

void trts_me_me_report_data(const uint8_t pub_app[SPM_ME_PUBLIC_KEY_SIZE],
                            const uint8_t pub_me[SPM_ME_PUBLIC_KEY_SIZE], uint64_t session,
                            uint8_t report_data[64])
{
    uint8_t input[sizeof(LABEL_ME_REPORT) - 1 + 2 * SPM_ME_PUBLIC_KEY_SIZE + 8];
    uint8_t *p = input;
    memcpy(p, LABEL_ME_REPORT, sizeof(LABEL_ME_REPORT) - 1);
    p += sizeof(LABEL_ME_REPORT) - 1;
    memcpy(p, pub_app, SPM_ME_PUBLIC_KEY_SIZE);
    p += SPM_ME_PUBLIC_KEY_SIZE;
    memcpy(p, pub_me, SPM_ME_PUBLIC_KEY_SIZE);
    p += SPM_ME_PUBLIC_KEY_SIZE;
    put_le64(p, session);
    memset(report_data, 0, 64);
    tc_sha256(input, sizeof(input), report_data);
}

int trts_me_derive_keys(const uint8_t private_key[32], const uint8_t peer_public[65],
                        const uint8_t pub_app[SPM_ME_PUBLIC_KEY_SIZE],
                        const uint8_t pub_me[SPM_ME_PUBLIC_KEY_SIZE], uint8_t k_app[32],
                        uint8_t k_me[32])
{
    uint8_t input[32 + 2 * SPM_ME_PUBLIC_KEY_SIZE], master[32];
    int ret = tc_p256_ecdh(private_key, peer_public, input);
    if (ret < 0) {
        spm_wipe(input, 32);
        return -EINVAL;
    }
    memcpy(input + 32, pub_app, SPM_ME_PUBLIC_KEY_SIZE);
    memcpy(input + 32 + SPM_ME_PUBLIC_KEY_SIZE, pub_me, SPM_ME_PUBLIC_KEY_SIZE);
    tc_sha256(input, sizeof(input), master);
    tc_hmac_sha256(master, sizeof(master), LABEL_K_APP, sizeof(LABEL_K_APP) - 1, k_app);
    tc_hmac_sha256(master, sizeof(master), LABEL_K_ME, sizeof(LABEL_K_ME) - 1, k_me);
    spm_wipe(input, sizeof(input));
    spm_wipe(master, sizeof(master));
    return 0;
}

void trts_me_header(struct spm_me_message_header *h, uint16_t type, uint32_t size)
{
    h->magic = SPM_ME_MAGIC;
    h->version = SPM_ME_VERSION;
    h->type = type;
    h->size = size;
    h->reserved = 0;
}

int trts_me_check_header(const uint8_t *msg, size_t msg_size, struct spm_me_message_header *h)
{
    if (msg_size < HEADER_SIZE || msg_size - HEADER_SIZE > SPM_ME_MAX_MESSAGE)
        return -EPROTO;
    memcpy(h, msg, HEADER_SIZE);
    if (h->magic != SPM_ME_MAGIC || h->version != SPM_ME_VERSION || h->reserved != 0 ||
        h->size != msg_size - HEADER_SIZE)
        return -EPROTO;
    return 0;
}

/* nonce = le64(sequence) || 0^4; AAD = header || le64(session) || le64(sequence). */
static void channel_nonce_aad(const struct spm_me_message_header *h, uint64_t session,
                              uint64_t sequence, uint8_t nonce[12], uint8_t aad[HEADER_SIZE + 16])
{
    memset(nonce, 0, 12);
    put_le64(nonce, sequence);
    memcpy(aad, h, HEADER_SIZE);
    put_le64(aad + HEADER_SIZE, session);
    put_le64(aad + HEADER_SIZE + 8, sequence);
}

int trts_me_seal_message(const uint8_t key[32], uint64_t session, uint64_t sequence,
                         const void *plain, size_t plain_size, uint8_t *out, size_t out_capacity,
                         size_t *out_size)
{
    if (plain_size > TRTS_ME_MAX_SEALED_PLAINTEXT)
        return -EINVAL;
    size_t total = HEADER_SIZE + SEALED_SIZE + plain_size;
    if (out_capacity < total)
        return -ENOSPC;
    struct spm_me_message_header h;
    trts_me_header(&h, SPM_ME_MSG_SEALED, (uint32_t)(SEALED_SIZE + plain_size));
    struct spm_me_sealed sealed = {.session = session, .sequence = sequence};
    uint8_t nonce[12], aad[HEADER_SIZE + 16];
    channel_nonce_aad(&h, session, sequence, nonce, aad);
    uint8_t *ciphertext = out + HEADER_SIZE + SEALED_SIZE;
    memcpy(ciphertext, plain, plain_size);
    int ret = tc_aes_gcm(key, 32, nonce, sizeof(nonce), aad, sizeof(aad), ciphertext, plain_size,
                         true, sealed.tag);
    if (ret < 0) {
        spm_wipe(ciphertext, plain_size);
        return ret;
    }
    memcpy(out, &h, HEADER_SIZE);
    memcpy(out + HEADER_SIZE, &sealed, SEALED_SIZE);
    *out_size = total;
    return 0;
}

int trts_me_peek_sealed(const uint8_t *msg, size_t msg_size, uint64_t *session, uint64_t *sequence)
{
    struct spm_me_message_header h;
    if (trts_me_check_header(msg, msg_size, &h) < 0 || h.type != SPM_ME_MSG_SEALED ||
        h.size < SEALED_SIZE || h.size - SEALED_SIZE > TRTS_ME_MAX_SEALED_PLAINTEXT)
        return -EPROTO;
    struct spm_me_sealed sealed;
    memcpy(&sealed, msg + HEADER_SIZE, SEALED_SIZE);
    *session = sealed.session;
    *sequence = sealed.sequence;
    return 0;
}

int trts_me_open_sealed(const uint8_t key[32], const uint8_t *msg, size_t msg_size, void *plain,
                        size_t plain_capacity, size_t *plain_size)
{
    uint64_t session, sequence;
    if (trts_me_peek_sealed(msg, msg_size, &session, &sequence) < 0)
        return -EPROTO;
    size_t size = msg_size - HEADER_SIZE - SEALED_SIZE;
    if (size > plain_capacity)
        return -ENOSPC;
    struct spm_me_message_header h;
    struct spm_me_sealed sealed;
    memcpy(&h, msg, HEADER_SIZE);
    memcpy(&sealed, msg + HEADER_SIZE, SEALED_SIZE);
    uint8_t nonce[12], aad[HEADER_SIZE + 16];
    channel_nonce_aad(&h, session, sequence, nonce, aad);
    memcpy(plain, msg + HEADER_SIZE + SEALED_SIZE, size);
    if (tc_aes_gcm(key, 32, nonce, sizeof(nonce), aad, sizeof(aad), plain, size, false,
                   sealed.tag) < 0) {
        spm_wipe(plain, size);
        return -EPROTO;
    }
    *plain_size = size;
    return 0;
}

/* ---- The client ---- */

/* A status the untrusted relay handed back in plaintext: only a negative
 * errno can mean anything, and it can only make the call fail. */
static int plaintext_status(int32_t status)
{
    return status < 0 && status >= -4095 ? status : -EPROTO;
}

/* What a failed sealed request reports when no authenticated reply came
 * (the relay's status or a plaintext ERROR): never one of the ME's verdicts
 * (-EALREADY, -ESTALE, -ENOENT, -EKEYREJECTED...), which only a reply under
 * k_me may carry, so the host cannot pass off a failure as a refusal. What
 * remains: the session is gone (spmd restarted: open a new one), a timeout,
 * no spmd or a failed ME (-EIO), or anything else (-EPROTO). */
static int unauthenticated_failure(int status)
{
    switch (status) {
    case -ECONNRESET:
    case -ETIMEDOUT:
    case -EIO:
        return status;
    case -ENOENT: /* no socket: spmd is not running */
        return -EIO;
    default:
        return -EPROTO;
    }
}

/* One round trip through the host to spmd. The reply's header is checked;
 * an ERROR reply is turned into its (negative) status. */
static int exchange(const uint8_t *msg, size_t msg_size, uint8_t *reply, size_t reply_capacity,
                    size_t *reply_size, struct spm_me_message_header *h)
{
    size_t size = 0;
    int ret = spm_ocall(SPM_RT_OCALL_ME, msg, msg_size, reply, reply_capacity, &size);
    if (ret < 0)
        return ret;
    if (trts_me_check_header(reply, size, h) < 0)
        return -EPROTO;
    if (h->type == SPM_ME_MSG_ERROR) {
        struct spm_me_error error;
        if (h->size != sizeof(error))
            return -EPROTO;
        memcpy(&error, reply + HEADER_SIZE, sizeof(error));
        return plaintext_status(error.status);
    }
    *reply_size = size;
    return 0;
}

/* The pinned identity: the build's ME signer, the ME product, a minimum
 * SVN, and never a debug enclave (whose memory the host can read). */
static bool is_pinned_me(const struct sgx_report_body *body)
{
    return spm_ct_equal(body->mr_signer, spm_me_pinned_mrsigner, 32) == 0 &&
           body->isv_prod_id == SPM_ME_ISV_PROD_ID && body->isv_svn >= TRTS_ME_MIN_ISV_SVN &&
           !(body->attributes.flags & SGX_FLAGS_DEBUG) &&
           (body->attributes.flags & SGX_FLAGS_INITTED);
}

int trts_me_open(struct trts_me_session *s)
{
    uint8_t reply[REPLY_CAPACITY];
    size_t reply_size = 0;
    struct spm_me_message_header h;
    memset(s, 0, sizeof(*s));

    /* 1. TARGET_INFO: untrusted; a lie only makes the ME refuse REPORT_A. */
    struct spm_me_message_header request;
    trts_me_header(&request, SPM_ME_MSG_TARGET_INFO, 0);
    int ret =
        exchange((const uint8_t *)&request, sizeof(request), reply, sizeof(reply), &reply_size, &h);
    if (ret < 0)
        return ret;
    if (h.type != SPM_ME_MSG_TARGET_INFO || h.size != sizeof(struct sgx_target_info))
        return -EPROTO;
    struct sgx_target_info me_target;
    memcpy(&me_target, reply + HEADER_SIZE, sizeof(me_target));

    /* 2. HELLO with REPORT_A binding a fresh ECDH key. */
    uint8_t private_key[32];
    struct {
        struct spm_me_message_header h;
        struct spm_me_hello hello;
    } __attribute__((packed)) msg;
    memset(&msg, 0, sizeof(msg));
    trts_me_header(&msg.h, SPM_ME_MSG_HELLO, sizeof(msg.hello));
    if ((ret = spm_ecdsa_p256_keygen(private_key, msg.hello.public_key)) < 0)
        goto out;
    uint8_t report_data[64];
    trts_me_app_report_data(msg.hello.public_key, report_data);
    if ((ret = spm_create_report(&me_target, report_data, &msg.hello.report)) < 0)
        goto out;
    if ((ret = exchange((const uint8_t *)&msg, sizeof(msg), reply, sizeof(reply), &reply_size,
                        &h)) < 0)
        goto out;
    ret = -EPROTO;
    if (h.type != SPM_ME_MSG_HELLO || h.size != sizeof(struct spm_me_hello_reply))
        goto out;
    struct spm_me_hello_reply hello_reply;
    memcpy(&hello_reply, reply + HEADER_SIZE, sizeof(hello_reply));

    /* 3. REPORT_M: made by an enclave on this platform for us (MAC), that
     *    enclave is the pinned ME, and it speaks for this exchange. */
    if ((ret = spm_verify_report(&hello_reply.report)) < 0) {
        ret = -EKEYREJECTED;
        goto out;
    }
    if (!is_pinned_me(&hello_reply.report.body)) {
        ret = -EKEYREJECTED;
        goto out;
    }
    trts_me_me_report_data(msg.hello.public_key, hello_reply.public_key, hello_reply.session,
                           report_data);
    if (spm_ct_equal(report_data, hello_reply.report.body.report_data, 64) != 0) {
        ret = -EKEYREJECTED;
        goto out;
    }
    if ((ret = trts_me_derive_keys(private_key, hello_reply.public_key, msg.hello.public_key,
                                   hello_reply.public_key, s->k_app, s->k_me)) < 0) {
        ret = -EPROTO;
        goto out;
    }
    s->session = hello_reply.session;
    s->sequence = 0;
    s->open = true;
    ret = 0;
out:
    spm_wipe(private_key, sizeof(private_key));
    if (ret < 0)
        trts_me_close(s);
    return ret;
}

/* One sealed request and its reply. `body` follows struct spm_me_request;
 * on success the reply's body must be exactly reply_body_size bytes. */
static int call(struct trts_me_session *s, uint16_t type, const void *body, size_t body_size,
                void *reply_body, size_t reply_body_size)
{
    if (!s->open || s->sequence == UINT64_MAX)
        return -ENOTCONN;
    uint8_t plain[TRTS_ME_MAX_SEALED_PLAINTEXT];
    uint8_t msg[HEADER_SIZE + SEALED_SIZE + TRTS_ME_MAX_SEALED_PLAINTEXT];
    uint8_t reply[HEADER_SIZE + SEALED_SIZE + TRTS_ME_MAX_SEALED_PLAINTEXT];
    size_t msg_size = 0, reply_size = 0, plain_size = 0;
    struct spm_me_request request = {.type = type};
    if (sizeof(request) + body_size > sizeof(plain))
        return -EINVAL;
    memcpy(plain, &request, sizeof(request));
    memcpy(plain + sizeof(request), body, body_size);

    /* The sequence is spent even if the exchange fails: a retry is a new
     * request the ME has not seen. */
    uint64_t sequence = ++s->sequence;
    struct spm_me_message_header h;
    int ret = trts_me_seal_message(s->k_app, s->session, sequence, plain,
                                   sizeof(request) + body_size, msg, sizeof(msg), &msg_size);
    spm_wipe(plain, sizeof(plain));
    if (ret < 0)
        return ret;
    ret = exchange(msg, msg_size, reply, sizeof(reply), &reply_size, &h);
    if (ret < 0)
        return unauthenticated_failure(ret);
    uint64_t reply_session, reply_sequence;
    if (h.type != SPM_ME_MSG_SEALED ||
        trts_me_peek_sealed(reply, reply_size, &reply_session, &reply_sequence) < 0 ||
        reply_session != s->session || reply_sequence != sequence)
        return -EPROTO;
    ret = trts_me_open_sealed(s->k_me, reply, reply_size, plain, sizeof(plain), &plain_size);
    if (ret < 0)
        return -EPROTO;
    struct spm_me_request answer;
    ret = -EPROTO;
    if (plain_size < sizeof(answer))
        goto out;
    memcpy(&answer, plain, sizeof(answer));
    if (answer.type != type || answer.reserved != 0)
        goto out;
    if (answer.status != 0) {
        /* The ME's own verdict, authenticated: returned as is. */
        ret = answer.status < 0 && answer.status >= -4095 && plain_size == sizeof(answer)
                  ? answer.status
                  : -EPROTO;
        goto out;
    }
    if (plain_size != sizeof(answer) + reply_body_size)
        goto out;
    if (reply_body_size)
        memcpy(reply_body, plain + sizeof(answer), reply_body_size);
    ret = 0;
out:
    spm_wipe(plain, sizeof(plain));
    spm_wipe(reply, sizeof(reply));
    return ret;
}

int trts_me_escrow(struct trts_me_session *s, const struct spm_me_checkpoint_ref *ref,
                   const uint8_t key[32])
{
    struct spm_me_escrow escrow;
    escrow.ref = *ref;
    memcpy(escrow.key, key, sizeof(escrow.key));
    int ret = call(s, SPM_ME_REQ_ESCROW, &escrow, sizeof(escrow), NULL, 0);
    spm_wipe(&escrow, sizeof(escrow));
    return ret;
}

int trts_me_release(struct trts_me_session *s, const struct spm_me_checkpoint_ref *ref,
                    uint8_t key[32])
{
    struct spm_me_release_reply released;
    int ret = call(s, SPM_ME_REQ_RELEASE, ref, sizeof(*ref), &released, sizeof(released));
    if (ret == 0)
        memcpy(key, released.key, sizeof(released.key));
    spm_wipe(&released, sizeof(released));
    return ret;
}

int trts_me_commit(struct trts_me_session *s, const struct spm_me_checkpoint_ref *ref,
                   const uint8_t lease[16])
{
    struct spm_me_commit commit;
    commit.ref = *ref;
    memcpy(commit.lease, lease, sizeof(commit.lease));
    return call(s, SPM_ME_REQ_COMMIT, &commit, sizeof(commit), NULL, 0);
}

int trts_me_cancel(struct trts_me_session *s, const struct spm_me_checkpoint_ref *ref)
{
    return call(s, SPM_ME_REQ_CANCEL, ref, sizeof(*ref), NULL, 0);
}

void trts_me_close(struct trts_me_session *s)
{
    spm_wipe(s, sizeof(*s));
}
