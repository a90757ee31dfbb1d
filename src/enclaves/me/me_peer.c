/* Remote attestation between Migration Enclaves and the channel that
 * carries the key hand-over (me_abi.h, "ME to ME"). The two daemons relay
 * every byte and are trusted with none: each ME proves itself with a quote
 * whose REPORTDATA binds the ephemeral ECDH keys, nonces and session ids of
 * the transcript so far, checks the other's quote against the provisioning
 * root pinned in its own code (me_quote.c) and its identity against the ME
 * policy, and only then derives direction keys from ECDH and the whole
 * transcript. What flows through the channel changes the escrow table only
 * through me_enclave.c's hand-over functions, which persist every step.
 *
 * A peer session lives in enclave memory only: spmd restarting ends it,
 * and the hand-over state that matters survives in the sealed table. The
 * table of sessions is bounded and the least recently used is evicted (an
 * attacker who floods OFFERs only costs liveness, which is out of scope). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "crypto/crypto.h"
#include "me_client.h"
#include "me_peer.h"
#include "me_quote.h"
#include "spm/abi/me_abi.h"
#include "spm/trts.h"

#define LABEL_RESPONDER "SPM-RA-1 responder"
#define LABEL_INITIATOR "SPM-RA-1 initiator"
#define LABEL_K_SD      "SPM-RA-1 initiator->responder"
#define LABEL_K_DS      "SPM-RA-1 responder->initiator"

#define ME_MAX_PEER_SESSIONS 16u

#define HEADER_SIZE        sizeof(struct spm_me_message_header)
#define OFFER_MESSAGE_SIZE (HEADER_SIZE + sizeof(struct spm_me_peer_offer))
#define SEALED_FIXED_SIZE  sizeof(struct spm_me_peer_sealed)
#define INNER_SIZE         sizeof(struct spm_me_peer_request)

_Static_assert(HEADER_SIZE + sizeof(struct spm_me_peer_accept) + SPM_ME_PEER_MAX_QUOTE <=
                   SPM_ME_MAX_MESSAGE,
               "an ACCEPT with the largest quote fits the socket's bound");
_Static_assert(INNER_SIZE + sizeof(struct spm_me_peer_transfer) <= SPM_ME_PEER_MAX_PLAINTEXT,
               "a TRANSFER fits a sealed message");
_Static_assert(INNER_SIZE + sizeof(struct spm_me_peer_resolve) <= SPM_ME_PEER_MAX_PLAINTEXT,
               "a RESOLVE fits a sealed message");

enum peer_phase {
    PHASE_FREE = 0,
    PHASE_OFFERED,   /* S: OFFER sent, waiting for ACCEPT */
    PHASE_ACCEPTED,  /* D: ACCEPT sent (keys derived), waiting for CONFIRM */
    PHASE_CONFIRMED, /* S: CONFIRM sent (keys derived), waiting for READY */
    PHASE_READY,     /* both attested: the channel carries hand-overs */
};

struct peer_session {
    uint64_t id;      /* ours: initiator_session at S, responder_session at D */
    uint64_t peer_id; /* the other ME's: what our sealed messages are addressed to */
    uint32_t phase;   /* enum peer_phase; PHASE_FREE: slot free */
    bool initiator;
    uint64_t last_used;
    uint64_t sent;                     /* sequence of the last sealed message sent */
    uint64_t received;                 /* sequence of the last sealed message accepted */
    uint8_t private_key[32];           /* S between OPEN and ACCEPT */
    uint8_t offer[OFFER_MESSAGE_SIZE]; /* S: the OFFER it sent, for T1 */
    uint8_t transcript[32];            /* D: T2, which quote_S must bind */
    uint8_t k_send[32];
    uint8_t k_receive[32];
    uint8_t peer_platform_id[32]; /* from the peer's verified quote */
};

static struct {
    struct peer_session sessions[ME_MAX_PEER_SESSIONS];
    uint64_t tick;
    /* This platform's id (SHA-256 of its attestation key), learnt from our
     * own first quote: the TRANSFER names it and D checks it. */
    bool self_known;
    uint8_t self_platform_id[32];
} g_peer;

static void put_le64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* "ME: <what>: errno <n>" (errno values are public). */
static void log_refusal(const char *what, int err)
{
    char line[160], digits[12];
    size_t n = strlen(what), d = 0;
    if (n > sizeof(line) - 32)
        n = sizeof(line) - 32;
    memcpy(line, what, n);
    memcpy(line + n, ": errno ", 8);
    n += 8;
    unsigned v = err < 0 ? (unsigned)-err : (unsigned)err;
    do {
        digits[d++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && d < sizeof(digits));
    while (d)
        line[n++] = digits[--d];
    line[n] = 0;
    me_log(line);
}

/* ---- Sessions ---- */

static struct peer_session *find_session(uint64_t id)
{
    if (!id)
        return NULL;
    for (uint32_t i = 0; i < ME_MAX_PEER_SESSIONS; i++)
        if (g_peer.sessions[i].phase != PHASE_FREE && g_peer.sessions[i].id == id)
            return &g_peer.sessions[i];
    return NULL;
}

static void drop_session(struct peer_session *s)
{
    spm_wipe(s, sizeof(*s));
}

/* A free slot, else the least recently used session (wiped). */
static struct peer_session *session_slot(void)
{
    struct peer_session *lru = &g_peer.sessions[0];
    for (uint32_t i = 0; i < ME_MAX_PEER_SESSIONS; i++) {
        struct peer_session *s = &g_peer.sessions[i];
        if (s->phase == PHASE_FREE)
            return s;
        if (s->last_used < lru->last_used)
            lru = s;
    }
    drop_session(lru);
    return lru;
}

static int new_session_id(uint64_t *id)
{
    do {
        int ret = spm_random(id, sizeof(*id));
        if (ret < 0)
            return ret;
    } while (!*id || find_session(*id));
    return 0;
}

/* ---- Transcript, quotes and keys ---- */

/* SHA-256(label || transcript) || 0^32. */
static void bound_report_data(const char *label, const uint8_t transcript[32],
                              uint8_t report_data[64])
{
    size_t label_size = strlen(label);
    memset(report_data, 0, 64);
    tc_sha256_two(label, label_size, transcript, 32, report_data);
}

/* T1 = SHA-256(OFFER bytes || pubD || nonce_D || le64(responder_session)). */
static void transcript_t1(const uint8_t offer[OFFER_MESSAGE_SIZE],
                          const struct spm_me_peer_accept *accept, uint8_t t1[32])
{
    uint8_t input[OFFER_MESSAGE_SIZE + SPM_ME_PUBLIC_KEY_SIZE + 32 + 8];
    uint8_t *p = input;
    memcpy(p, offer, OFFER_MESSAGE_SIZE);
    p += OFFER_MESSAGE_SIZE;
    memcpy(p, accept->public_key, SPM_ME_PUBLIC_KEY_SIZE);
    p += SPM_ME_PUBLIC_KEY_SIZE;
    memcpy(p, accept->nonce, 32);
    p += 32;
    put_le64(p, accept->responder_session);
    tc_sha256(input, sizeof(input), t1);
}

/* Direction keys from ECDH and T2; -EBADMSG when the peer's point is not
 * on the curve. Every intermediate is wiped. */
static int derive_keys(struct peer_session *s, const uint8_t private_key[32],
                       const uint8_t peer_public[SPM_ME_PUBLIC_KEY_SIZE], const uint8_t t2[32])
{
    uint8_t shared[32], input[sizeof(LABEL_K_SD) - 1 + 32];
    if (tc_p256_ecdh(private_key, peer_public, shared) < 0) {
        spm_wipe(shared, sizeof(shared));
        return -EBADMSG;
    }
    _Static_assert(sizeof(LABEL_K_SD) == sizeof(LABEL_K_DS), "labels of one size");
    uint8_t k_sd[32], k_ds[32];
    memcpy(input, LABEL_K_SD, sizeof(LABEL_K_SD) - 1);
    memcpy(input + sizeof(LABEL_K_SD) - 1, t2, 32);
    tc_hmac_sha256(shared, sizeof(shared), input, sizeof(input), k_sd);
    memcpy(input, LABEL_K_DS, sizeof(LABEL_K_DS) - 1);
    tc_hmac_sha256(shared, sizeof(shared), input, sizeof(input), k_ds);
    memcpy(s->k_send, s->initiator ? k_sd : k_ds, 32);
    memcpy(s->k_receive, s->initiator ? k_ds : k_sd, 32);
    spm_wipe(shared, sizeof(shared));
    spm_wipe(k_sd, sizeof(k_sd));
    spm_wipe(k_ds, sizeof(k_ds));
    return 0;
}

/* A quote of this ME over report_data (heap: free()). The first one also
 * tells us our own platform id, through the same verifier the peer runs;
 * a quote that does not verify here will not verify there either, but the
 * peer says so with its own errno. */
static int own_quote(const uint8_t report_data[64], uint8_t **quote, size_t *quote_size)
{
    int ret = spm_get_quote(report_data, quote, quote_size);
    if (ret < 0) {
        me_log("cannot obtain a quote from the platform's quoting service");
        return ret;
    }
    if (*quote_size > SPM_ME_PEER_MAX_QUOTE) {
        free(*quote);
        *quote = NULL;
        return -E2BIG;
    }
    if (!g_peer.self_known) {
        struct sgx_report_body body;
        if (me_quote_verify(*quote, *quote_size, &body, g_peer.self_platform_id) == 0)
            g_peer.self_known = true;
        else
            me_log("this platform's own quote does not verify against the pinned provisioning "
                   "root: peer MEs will refuse it (was the platform provisioned by another CA?)");
    }
    return 0;
}

/* The peer ME's quote: genuine (chain to the pinned root), bound to the
 * transcript, and an ME this one may hand keys to. */
static int check_peer_quote(const uint8_t *quote, size_t quote_size,
                            const uint8_t expected_report_data[64], uint8_t platform_id[32])
{
    struct sgx_report_body peer, self;
    if (me_quote_verify(quote, quote_size, &peer, platform_id) < 0)
        return -EKEYREJECTED;
    if (spm_ct_equal(peer.report_data, expected_report_data, 64) != 0)
        return -EBADMSG; /* a genuine quote, but for another transcript */
    if (spm_self_report_body(&self) < 0)
        return -EIO;
    /* Same signer and product, not older: a peer that could be an older,
     * vulnerable ME build must not receive keys. */
    if (spm_ct_equal(peer.mr_signer, self.mr_signer, 32) != 0 ||
        peer.isv_prod_id != SPM_ME_ISV_PROD_ID || peer.isv_svn < self.isv_svn)
        return -EACCES;
    if ((peer.attributes.flags & SGX_FLAGS_DEBUG) && !(me_policy() & SPM_ME_POLICY_ALLOW_DEBUG))
        return -EPERM; /* its memory, keys included, is readable by its host */
    return 0;
}

/* ---- Messages ---- */

static int reply(uint16_t type, const void *body, size_t body_size, uint8_t *out,
                 size_t out_capacity, size_t *out_size)
{
    if (out_capacity < HEADER_SIZE || out_capacity - HEADER_SIZE < body_size)
        return -ENOSPC;
    struct spm_me_message_header h;
    trts_me_header(&h, type, (uint32_t)body_size);
    memcpy(out, &h, HEADER_SIZE);
    memcpy(out + HEADER_SIZE, body, body_size);
    *out_size = HEADER_SIZE + body_size;
    return 0;
}

static int reply_status(const struct spm_me_peer_status *st, uint8_t *out, size_t out_capacity,
                        size_t *out_size)
{
    return reply(SPM_ME_MSG_PEER_STATUS, st, sizeof(*st), out, out_capacity, out_size);
}

/* nonce = le64(sequence) || 0^4; AAD = header || le64(session) || le64(sequence). */
static void sealed_nonce_aad(const struct spm_me_message_header *h, uint64_t session,
                             uint64_t sequence, uint8_t nonce[12], uint8_t aad[HEADER_SIZE + 16])
{
    memset(nonce, 0, 12);
    put_le64(nonce, sequence);
    memcpy(aad, h, HEADER_SIZE);
    put_le64(aad + HEADER_SIZE, session);
    put_le64(aad + HEADER_SIZE + 8, sequence);
}

/* Writes PEER_SEALED(type, status, body) to the peer into `out`. */
static int seal_to_peer(struct peer_session *s, uint16_t type, int32_t status, const void *body,
                        size_t body_size, uint8_t *out, size_t out_capacity, size_t *out_size)
{
    if (body_size > SPM_ME_PEER_MAX_PLAINTEXT - INNER_SIZE)
        return -EINVAL;
    size_t plain_size = INNER_SIZE + body_size;
    size_t total = HEADER_SIZE + SEALED_FIXED_SIZE + plain_size;
    if (out_capacity < total)
        return -ENOSPC;
    struct spm_me_message_header h;
    trts_me_header(&h, SPM_ME_MSG_PEER_SEALED, (uint32_t)(SEALED_FIXED_SIZE + plain_size));
    struct spm_me_peer_sealed sealed = {.receiver_session = s->peer_id, .sequence = s->sent + 1};
    struct spm_me_peer_request request = {.type = type, .reserved = 0, .status = status};
    uint8_t *ciphertext = out + HEADER_SIZE + SEALED_FIXED_SIZE;
    memcpy(ciphertext, &request, INNER_SIZE);
    if (body_size)
        memcpy(ciphertext + INNER_SIZE, body, body_size);
    uint8_t nonce[12], aad[HEADER_SIZE + 16];
    sealed_nonce_aad(&h, sealed.receiver_session, sealed.sequence, nonce, aad);
    int ret = tc_aes_gcm(s->k_send, 32, nonce, sizeof(nonce), aad, sizeof(aad), ciphertext,
                         plain_size, true, sealed.tag);
    if (ret < 0) {
        spm_wipe(ciphertext, plain_size);
        return ret;
    }
    s->sent = sealed.sequence; /* spent even if the message is lost */
    memcpy(out, &h, HEADER_SIZE);
    memcpy(out + HEADER_SIZE, &sealed, SEALED_FIXED_SIZE);
    *out_size = total;
    return 0;
}

/* local -> S: starts a session. */
static int handle_open(const struct spm_me_message_header *h, const uint8_t *in, uint8_t *out,
                       size_t out_capacity, size_t *out_size)
{
    struct spm_me_peer_open open;
    if (h->size != sizeof(open))
        return me_reply_error(-EINVAL, out, out_capacity, out_size);
    memcpy(&open, in + HEADER_SIZE, sizeof(open));
    if (open.flags != 0 || open.reserved != 0)
        return me_reply_error(-EINVAL, out, out_capacity, out_size);
    if (out_capacity < OFFER_MESSAGE_SIZE)
        return -ENOSPC;
    struct peer_session fresh;
    memset(&fresh, 0, sizeof(fresh));
    struct spm_me_peer_offer offer;
    memset(&offer, 0, sizeof(offer));
    int ret;
    if ((ret = new_session_id(&fresh.id)) < 0 || (ret = spm_random(offer.nonce, 32)) < 0 ||
        (ret = spm_ecdsa_p256_keygen(fresh.private_key, offer.public_key)) < 0)
        goto out;
    offer.initiator_session = fresh.id;
    struct spm_me_message_header oh;
    trts_me_header(&oh, SPM_ME_MSG_PEER_OFFER, sizeof(offer));
    memcpy(fresh.offer, &oh, HEADER_SIZE);
    memcpy(fresh.offer + HEADER_SIZE, &offer, sizeof(offer));
    fresh.phase = PHASE_OFFERED;
    fresh.initiator = true;
    fresh.last_used = ++g_peer.tick;
    *session_slot() = fresh;
    memcpy(out, fresh.offer, OFFER_MESSAGE_SIZE);
    *out_size = OFFER_MESSAGE_SIZE;
out:
    spm_wipe(&fresh, sizeof(fresh));
    return ret < 0 ? me_reply_error(ret, out, out_capacity, out_size) : 0;
}

/* peer -> D: answers with our quote over T1 and derives the keys at once
 * (T2 covers the ACCEPT we write); the session waits for quote_S. */
static int handle_offer(const struct spm_me_message_header *h, const uint8_t *in, uint8_t *out,
                        size_t out_capacity, size_t *out_size)
{
    struct spm_me_peer_offer offer;
    static const uint8_t zero[sizeof(offer.reserved)];
    if (h->size != sizeof(offer))
        return me_reply_error(-EBADMSG, out, out_capacity, out_size);
    memcpy(&offer, in + HEADER_SIZE, sizeof(offer));
    if (offer.initiator_session == 0 || memcmp(offer.reserved, zero, sizeof(zero)) != 0)
        return me_reply_error(-EBADMSG, out, out_capacity, out_size);

    struct peer_session fresh;
    memset(&fresh, 0, sizeof(fresh));
    struct spm_me_peer_accept accept;
    memset(&accept, 0, sizeof(accept));
    uint8_t private_key[32], t1[32], report_data[64];
    uint8_t *quote = NULL;
    size_t quote_size = 0;
    int ret;
    if ((ret = new_session_id(&fresh.id)) < 0 || (ret = spm_random(accept.nonce, 32)) < 0 ||
        (ret = spm_ecdsa_p256_keygen(private_key, accept.public_key)) < 0)
        goto out;
    accept.initiator_session = offer.initiator_session;
    accept.responder_session = fresh.id;
    transcript_t1(in, &accept, t1);
    bound_report_data(LABEL_RESPONDER, t1, report_data);
    if ((ret = own_quote(report_data, &quote, &quote_size)) < 0)
        goto out;
    accept.quote_size = (uint32_t)quote_size;
    size_t body_size = sizeof(accept) + quote_size;
    if (out_capacity < HEADER_SIZE + body_size) {
        ret = -ENOSPC;
        goto out;
    }
    struct spm_me_message_header ah;
    trts_me_header(&ah, SPM_ME_MSG_PEER_ACCEPT, (uint32_t)body_size);
    memcpy(out, &ah, HEADER_SIZE);
    memcpy(out + HEADER_SIZE, &accept, sizeof(accept));
    memcpy(out + HEADER_SIZE + sizeof(accept), quote, quote_size);
    /* T2 = SHA-256(T1 || ACCEPT bytes) */
    tc_sha256_two(t1, sizeof(t1), out, HEADER_SIZE + body_size, fresh.transcript);
    fresh.initiator = false;
    if ((ret = derive_keys(&fresh, private_key, offer.public_key, fresh.transcript)) < 0)
        goto out; /* S's point is not on the curve */
    fresh.peer_id = offer.initiator_session;
    fresh.phase = PHASE_ACCEPTED;
    fresh.last_used = ++g_peer.tick;
    *session_slot() = fresh;
    *out_size = HEADER_SIZE + body_size;
out:
    free(quote);
    spm_wipe(private_key, sizeof(private_key));
    spm_wipe(&fresh, sizeof(fresh));
    return ret < 0 ? me_reply_error(ret, out, out_capacity, out_size) : 0;
}

/* peer -> S: D's quote; on success our own quote over T2 goes back. */
static int handle_accept(const struct spm_me_message_header *h, const uint8_t *in, size_t in_size,
                         uint8_t *out, size_t out_capacity, size_t *out_size)
{
    struct spm_me_peer_accept accept;
    static const uint8_t zero[sizeof(accept.reserved)];
    if (h->size < sizeof(accept))
        return me_reply_error(-EBADMSG, out, out_capacity, out_size);
    memcpy(&accept, in + HEADER_SIZE, sizeof(accept));
    struct peer_session *s = find_session(accept.initiator_session);
    if (!s || !s->initiator || s->phase != PHASE_OFFERED)
        return me_reply_error(-ECONNRESET, out, out_capacity, out_size);
    /* From here on the half-open session ends with any failure: it has
     * seen a forged or wrong ACCEPT, and a new OPEN is cheap. */
    const uint8_t *quote = in + HEADER_SIZE + sizeof(accept);
    uint8_t t1[32], t2[32], report_data[64], platform_id[32];
    uint8_t *own = NULL;
    size_t own_size = 0;
    int ret = -EBADMSG;
    if (accept.quote_size > SPM_ME_PEER_MAX_QUOTE ||
        h->size - sizeof(accept) != accept.quote_size || accept.responder_session == 0 ||
        memcmp(accept.reserved, zero, sizeof(zero)) != 0)
        goto out;
    transcript_t1(s->offer, &accept, t1);
    bound_report_data(LABEL_RESPONDER, t1, report_data);
    if ((ret = check_peer_quote(quote, accept.quote_size, report_data, platform_id)) < 0)
        goto out;
    tc_sha256_two(t1, sizeof(t1), in, in_size, t2);
    if ((ret = derive_keys(s, s->private_key, accept.public_key, t2)) < 0)
        goto out;
    bound_report_data(LABEL_INITIATOR, t2, report_data);
    if ((ret = own_quote(report_data, &own, &own_size)) < 0)
        goto out;
    struct spm_me_peer_confirm confirm = {
        .responder_session = accept.responder_session,
        .quote_size = (uint32_t)own_size,
        .reserved = 0,
    };
    size_t body_size = sizeof(confirm) + own_size;
    if (out_capacity < HEADER_SIZE + body_size) {
        ret = -ENOSPC;
        goto out;
    }
    struct spm_me_message_header ch;
    trts_me_header(&ch, SPM_ME_MSG_PEER_CONFIRM, (uint32_t)body_size);
    memcpy(out, &ch, HEADER_SIZE);
    memcpy(out + HEADER_SIZE, &confirm, sizeof(confirm));
    memcpy(out + HEADER_SIZE + sizeof(confirm), own, own_size);
    *out_size = HEADER_SIZE + body_size;
    s->peer_id = accept.responder_session;
    memcpy(s->peer_platform_id, platform_id, 32);
    spm_wipe(s->private_key, sizeof(s->private_key));
    spm_wipe(s->offer, sizeof(s->offer));
    s->phase = PHASE_CONFIRMED;
    s->last_used = ++g_peer.tick;
    ret = 0;
out:
    free(own);
    if (ret < 0) {
        drop_session(s);
        log_refusal("refused a peer ME's ACCEPT", ret);
    }
    return ret < 0 ? me_reply_error(ret, out, out_capacity, out_size) : 0;
}

/* peer -> D: S's quote over T2; READY goes back sealed. */
static int handle_confirm(const struct spm_me_message_header *h, const uint8_t *in, uint8_t *out,
                          size_t out_capacity, size_t *out_size)
{
    struct spm_me_peer_confirm confirm;
    if (h->size < sizeof(confirm))
        return me_reply_error(-EBADMSG, out, out_capacity, out_size);
    memcpy(&confirm, in + HEADER_SIZE, sizeof(confirm));
    struct peer_session *s = find_session(confirm.responder_session);
    if (!s || s->initiator || s->phase != PHASE_ACCEPTED)
        return me_reply_error(-ECONNRESET, out, out_capacity, out_size);
    uint8_t report_data[64], platform_id[32];
    int ret = -EBADMSG;
    if (confirm.quote_size > SPM_ME_PEER_MAX_QUOTE || confirm.reserved != 0 ||
        h->size - sizeof(confirm) != confirm.quote_size)
        goto out;
    bound_report_data(LABEL_INITIATOR, s->transcript, report_data);
    if ((ret = check_peer_quote(in + HEADER_SIZE + sizeof(confirm), confirm.quote_size, report_data,
                                platform_id)) < 0)
        goto out;
    memcpy(s->peer_platform_id, platform_id, 32);
    spm_wipe(s->transcript, sizeof(s->transcript));
    s->phase = PHASE_READY;
    s->last_used = ++g_peer.tick;
    ret = seal_to_peer(s, SPM_ME_PEER_READY, 0, NULL, 0, out, out_capacity, out_size);
out:
    if (ret < 0) {
        drop_session(s);
        log_refusal("refused a peer ME's CONFIRM", ret);
    }
    return ret < 0 ? me_reply_error(ret, out, out_capacity, out_size) : 0;
}

/* What one authenticated inner message asks of this ME, by role. Writes
 * the reply (sealed to the peer, or a status for spmd). A negative return
 * is refused with an ERROR and closes the session. */
static int dispatch_inner(struct peer_session *s, const struct spm_me_peer_request *request,
                          const uint8_t *body, size_t body_size, uint8_t *out, size_t out_capacity,
                          size_t *out_size)
{
    struct spm_me_peer_status st;
    memset(&st, 0, sizeof(st));
    int ret;
    if (request->reserved != 0)
        return -EBADMSG;
    if (s->initiator && s->phase == PHASE_CONFIRMED) {
        if (request->type != SPM_ME_PEER_READY || request->status != 0 || body_size != 0)
            return -EPROTO;
        s->phase = PHASE_READY;
        me_log("attested a peer Migration Enclave; session ready");
        st.outcome = SPM_ME_PEER_OUTCOME_NONE;
    } else if (s->phase != PHASE_READY) {
        return -EPROTO;
    } else if (s->initiator && request->type == SPM_ME_PEER_TRANSFER_ACK) {
        struct spm_me_peer_transfer_ack ack;
        if (body_size != sizeof(ack) || request->status > 0)
            return -EBADMSG;
        memcpy(&ack, body, sizeof(ack));
        if ((ret = me_handover_acked(&ack, request->status, s->peer_platform_id, &st)) < 0)
            return ret;
    } else if (s->initiator && request->type == SPM_ME_PEER_RESOLVED) {
        struct spm_me_peer_resolved resolved;
        if (body_size != sizeof(resolved) || request->status > 0)
            return -EBADMSG;
        memcpy(&resolved, body, sizeof(resolved));
        if (request->status < 0) {
            /* D could not answer (e.g. its own hand-over of the lineage is
             * pending): nothing changes here. */
            st.status = request->status;
            st.outcome = SPM_ME_PEER_OUTCOME_PENDING;
            memcpy(st.handover_id, resolved.handover_id, 16);
            memcpy(st.peer_platform_id, s->peer_platform_id, 32);
            st.ref = resolved.ref;
        } else if ((ret = me_resolved(&resolved, s->peer_platform_id, &st)) < 0) {
            return ret;
        }
    } else if (!s->initiator && request->type == SPM_ME_PEER_TRANSFER) {
        struct spm_me_peer_transfer transfer;
        if (body_size != sizeof(transfer) || request->status != 0)
            return -EBADMSG;
        memcpy(&transfer, body, sizeof(transfer));
        int32_t verdict = me_transfer_receive(&transfer, s->peer_platform_id);
        struct spm_me_peer_transfer_ack ack;
        memcpy(ack.handover_id, transfer.handover_id, 16);
        ack.ref = transfer.ref;
        spm_wipe(&transfer, sizeof(transfer));
        return seal_to_peer(s, SPM_ME_PEER_TRANSFER_ACK, verdict, &ack, sizeof(ack), out,
                            out_capacity, out_size);
    } else if (!s->initiator && request->type == SPM_ME_PEER_RESOLVE) {
        struct spm_me_peer_resolve resolve;
        if (body_size != sizeof(resolve) || request->status != 0)
            return -EBADMSG;
        memcpy(&resolve, body, sizeof(resolve));
        struct spm_me_peer_resolved resolved;
        memset(&resolved, 0, sizeof(resolved));
        memcpy(resolved.handover_id, resolve.handover_id, 16);
        resolved.ref = resolve.ref;
        uint32_t verdict = 0;
        int32_t status = me_resolve_answer(&resolve, s->peer_platform_id, &verdict);
        resolved.verdict = status == 0 ? verdict : 0;
        return seal_to_peer(s, SPM_ME_PEER_RESOLVED, status, &resolved, sizeof(resolved), out,
                            out_capacity, out_size);
    } else {
        return -EPROTO;
    }
    st.session = s->id;
    if (st.outcome == SPM_ME_PEER_OUTCOME_NONE)
        memcpy(st.peer_platform_id, s->peer_platform_id, 32);
    return reply_status(&st, out, out_capacity, out_size);
}

/* peer, both ways. */
static int handle_sealed(const struct spm_me_message_header *h, const uint8_t *in, size_t in_size,
                         uint8_t *out, size_t out_capacity, size_t *out_size)
{
    struct spm_me_peer_sealed sealed;
    if (h->size < SEALED_FIXED_SIZE + INNER_SIZE ||
        h->size - SEALED_FIXED_SIZE > SPM_ME_PEER_MAX_PLAINTEXT)
        return me_reply_error(-EBADMSG, out, out_capacity, out_size);
    memcpy(&sealed, in + HEADER_SIZE, SEALED_FIXED_SIZE);
    struct peer_session *s = find_session(sealed.receiver_session);
    if (!s || (s->phase != PHASE_READY && !(s->initiator && s->phase == PHASE_CONFIRMED)))
        return me_reply_error(-ECONNRESET, out, out_capacity, out_size);
    uint8_t plain[SPM_ME_PEER_MAX_PLAINTEXT];
    size_t plain_size = in_size - HEADER_SIZE - SEALED_FIXED_SIZE;
    uint8_t nonce[12], aad[HEADER_SIZE + 16];
    sealed_nonce_aad(h, sealed.receiver_session, sealed.sequence, nonce, aad);
    memcpy(plain, in + HEADER_SIZE + SEALED_FIXED_SIZE, plain_size);
    int ret = -EPROTO;
    if (tc_aes_gcm(s->k_receive, 32, nonce, sizeof(nonce), aad, sizeof(aad), plain, plain_size,
                   false, sealed.tag) < 0)
        goto out; /* altered, truncated, or not from this session's peer */
    if (sealed.sequence <= s->received)
        goto out; /* replayed */
    s->received = sealed.sequence;
    s->last_used = ++g_peer.tick;
    struct spm_me_peer_request request;
    memcpy(&request, plain, INNER_SIZE);
    ret = dispatch_inner(s, &request, plain + INNER_SIZE, plain_size - INNER_SIZE, out,
                         out_capacity, out_size);
out:
    spm_wipe(plain, sizeof(plain));
    if (ret < 0) {
        drop_session(s);
        log_refusal("refused a sealed message from a peer ME and closed the session", ret);
        return me_reply_error(ret, out, out_capacity, out_size);
    }
    return 0;
}

/* local -> S: hands the checkpoint's key over this session. */
static int handle_handover(const struct spm_me_message_header *h, const uint8_t *in, uint8_t *out,
                           size_t out_capacity, size_t *out_size)
{
    struct spm_me_peer_checkpoint req;
    if (h->size != sizeof(req))
        return me_reply_error(-EINVAL, out, out_capacity, out_size);
    memcpy(&req, in + HEADER_SIZE, sizeof(req));
    struct peer_session *s = find_session(req.session);
    if (!s || !s->initiator || s->phase != PHASE_READY)
        return me_reply_error(-ECONNRESET, out, out_capacity, out_size);
    if (!g_peer.self_known)
        return me_reply_error(-EKEYREJECTED, out, out_capacity, out_size);
    struct spm_me_peer_transfer transfer;
    int ret = me_handover_begin(&req.ref, s->peer_platform_id, g_peer.self_platform_id, &transfer);
    if (ret == 0) {
        ret = seal_to_peer(s, SPM_ME_PEER_TRANSFER, 0, &transfer, sizeof(transfer), out,
                           out_capacity, out_size);
        spm_wipe(&transfer, sizeof(transfer));
        if (ret == 0)
            s->last_used = ++g_peer.tick;
    }
    return ret < 0 ? me_reply_error(ret, out, out_capacity, out_size) : 0;
}

/* local -> S: settles a hand-over, through the destination if pending. */
static int handle_resolve(const struct spm_me_message_header *h, const uint8_t *in, uint8_t *out,
                          size_t out_capacity, size_t *out_size)
{
    struct spm_me_peer_checkpoint req;
    if (h->size != sizeof(req))
        return me_reply_error(-EINVAL, out, out_capacity, out_size);
    memcpy(&req, in + HEADER_SIZE, sizeof(req));
    struct peer_session *s = find_session(req.session);
    if (s && (!s->initiator || s->phase != PHASE_READY))
        s = NULL;
    struct spm_me_peer_resolve resolve;
    struct spm_me_peer_status st;
    int ret = me_resolve_begin(&req.ref, s ? s->peer_platform_id : NULL, &resolve, &st);
    if (ret < 0)
        return me_reply_error(ret, out, out_capacity, out_size);
    if (ret == 0) {
        st.session = s ? s->id : 0;
        return reply_status(&st, out, out_capacity, out_size);
    }
    ret = seal_to_peer(s, SPM_ME_PEER_RESOLVE, 0, &resolve, sizeof(resolve), out, out_capacity,
                       out_size);
    if (ret == 0)
        s->last_used = ++g_peer.tick;
    return ret < 0 ? me_reply_error(ret, out, out_capacity, out_size) : 0;
}

int me_peer_handle(const struct spm_me_message_header *h, const uint8_t *in, size_t in_size,
                   uint8_t *out, size_t out_capacity, size_t *out_size)
{
    switch (h->type) {
    case SPM_ME_MSG_PEER_OPEN:
        return handle_open(h, in, out, out_capacity, out_size);
    case SPM_ME_MSG_PEER_OFFER:
        return handle_offer(h, in, out, out_capacity, out_size);
    case SPM_ME_MSG_PEER_ACCEPT:
        return handle_accept(h, in, in_size, out, out_capacity, out_size);
    case SPM_ME_MSG_PEER_CONFIRM:
        return handle_confirm(h, in, out, out_capacity, out_size);
    case SPM_ME_MSG_PEER_SEALED:
        return handle_sealed(h, in, in_size, out, out_capacity, out_size);
    case SPM_ME_MSG_PEER_HANDOVER:
        return handle_handover(h, in, out, out_capacity, out_size);
    case SPM_ME_MSG_PEER_RESOLVE:
        return handle_resolve(h, in, out, out_capacity, out_size);
    case SPM_ME_MSG_PEER_LIST:
        if (h->size != 0)
            return me_reply_error(-EINVAL, out, out_capacity, out_size);
        {
            int ret = me_list_leaving(out, out_capacity, out_size);
            return ret < 0 ? me_reply_error(ret, out, out_capacity, out_size) : 0;
        }
    default: /* PEER_STATUS goes to spmd, never to an ME */
        return me_reply_error(-EPROTO, out, out_capacity, out_size);
    }
}
