/* The messages a Migration Enclave takes from a peer ME (and from its own
 * spmd) in the ME-to-ME protocol, src/enclaves/me/me_peer.c with the
 * escrow table of me_enclave.c behind it: OFFER, ACCEPT, CONFIRM, SEALED
 * (READY, TRANSFER, TRANSFER_ACK, RESOLVE, RESOLVED inside), and the local
 * OPEN, HANDOVER, RESOLVE, LIST. The ME runs hosted in the stand-in
 * enclave (trusted_hosted.h), pinning the test CA, from a sealed state
 * holding one escrowed checkpoint (g_ref).
 *
 * Raw bytes alone would never get past a quote or a GCM tag, so the
 * harness plays the other ME honestly and lets the input steer it: it
 * makes quotes of the test platform over the transcript the ME expects,
 * derives the channel keys as a peer would, and seals fuzzed plaintext to
 * the ME, so the parsing and state changes behind the authentication see
 * fuzzed bytes. Tweaks let the input make the peer dishonest in the ways an
 * attacker can (debug, other signer or product, older SVN, wrong binding,
 * a corrupted quote, replayed or skipped sequence numbers).
 *
 * Input: byte 0 is spmd's policy (bit 0: allow debug); then steps, each an
 * opcode byte and its operands:
 *   0 RAW     u16 size, bytes: any message, as the daemons could send
 *   1 OPEN    local PEER_OPEN: the ME becomes S and sends an OFFER
 *   2 ACCEPT  tweak: the harness as D answers the ME's OFFER
 *   3 OFFER   tweak, u64 session: the harness as S offers; the ME as D accepts
 *   4 CONFIRM tweak: the harness as S confirms the ME's ACCEPT
 *   5 SEALED  tweak, u8 size, plaintext: sealed to the ME on one session
 *             (tweak 0x20 puts the handover id of the last TRANSFER the ME
 *             sent at the start of the body, so an ACK can name it)
 *   6 HANDOVER / 7 RESOLVE  tweak: local requests for g_ref (or the
 *             ref in the next 72 bytes) on the ME's S session
 *   8 LIST    local PEER_LIST
 * Checked: every message is answered with a well-formed reply (the ME
 * never fails); while every step so far was honest, each handshake step
 * succeeds, the ME's quotes verify and bind the transcript, and its sealed
 * replies open under the keys the harness derived; a HANDOVER's TRANSFER
 * carries the escrowed key and the ME's platform; LIST's count matches its
 * size. */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "me_client.h"
#include "me_hosted.h"
#include "me_quote.h"
#include "me_state.h"
#include "spm/abi/me_abi.h"
#include "trusted_hosted.h"
#include "trusted_pki.h"

#define HEADER_SIZE   sizeof(struct spm_me_message_header)
#define OFFER_SIZE    (HEADER_SIZE + sizeof(struct spm_me_peer_offer))
#define REPLY_CAP     (SPM_ME_MAX_MESSAGE + HEADER_SIZE)
#define MAX_STEPS     32
#define ENTRY_ESCROWD 1u /* me_enclave.c: ENTRY_ESCROWED */

/* tweak bits for ACCEPT, OFFER, CONFIRM */
#define T_DEBUG     0x01u /* the peer is a debug enclave */
#define T_SIGNER    0x02u /* another MRSIGNER */
#define T_PRODUCT   0x04u /* another ISVPRODID */
#define T_OLD_SVN   0x08u /* a lower ISVSVN */
#define T_BINDING   0x10u /* REPORTDATA over another transcript */
#define T_CORRUPT   0x20u /* one byte of the quote flipped after signing */
#define T_BAD_SIZE  0x40u /* quote_size off by one */
#define T_ZERO_SESS 0x80u /* session id zero */
#define T_DISHONEST 0xffu
/* tweak bits for SEALED */
#define S_ON_D       0x01u /* on the session where the harness is D */
#define S_REPLAY     0x02u /* reuse the last sequence */
#define S_SKIP       0x04u /* skip a sequence number (allowed) */
#define S_BAD_TAG    0x08u
#define S_WRONG_SESS 0x10u
#define S_HANDOVER   0x20u /* the last TRANSFER's handover id into the body */

struct input {
    const uint8_t *data;
    size_t size, at;
};

static uint8_t get8(struct input *in)
{
    return in->at < in->size ? in->data[in->at++] : 0;
}

static void get_bytes(struct input *in, void *out, size_t size)
{
    size_t n = in->size - in->at < size ? in->size - in->at : size;
    memset(out, 0, size);
    memcpy(out, in->data + in->at, n);
    in->at += n;
}

/* The harness's end of one session with the ME. */
struct peer {
    bool keyed;           /* keys derived: sealed messages can flow */
    bool offered;         /* harness as D: the ME's OFFER is here */
    uint64_t me_session;  /* the ME's id: what sealed messages go to */
    uint64_t own_session; /* the harness's id: what the ME's go to */
    uint8_t offer[OFFER_SIZE];
    uint8_t t2[32];
    uint8_t k_send[32], k_receive[32];
    uint64_t sent, received;
};

static struct {
    struct peer as_d;        /* the ME is S */
    struct peer as_s;        /* the ME is D */
    bool honest;             /* every step so far was honest */
    uint8_t handover_id[16]; /* of the last TRANSFER the ME sent */
    uint32_t policy;
    uint8_t *reply;
    size_t reply_size;
} g;

static uint8_t g_private[32], g_public[65];
static struct spm_me_checkpoint_ref g_ref;
static struct spm_me_identity g_owner;
static const uint8_t g_key[32] = "the escrowed checkpoint key K..";
static const uint8_t g_escrow_id[16] = "fuzz escrow id.";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_trts_init();
    uint8_t drbg[TC_DRBG_SIZE];
    tc_drbg_init(drbg, "fuzz peer key", 13);
    assert(tc_p256_keygen(drbg, g_private, g_public) == 0);
    memset(g_ref.checkpoint_id, 0x43, 16);
    memset(g_ref.lineage_id, 0x4c, 16);
    g_ref.generation = 7;
    memset(g_ref.header_digest, 0x48, 32);
    memset(g_owner.mr_enclave, 0x61, 32);
    memset(g_owner.mr_signer, 0x62, 32);
    g_owner.isv_prod_id = 1;
    g_owner.isv_svn = 1;
    g_owner.attributes_flags = SGX_FLAGS_INITTED | SGX_FLAGS_MODE64BIT;
    g.reply = malloc(REPLY_CAP);
    assert(g.reply);
    return 0;
}

/* A fresh ME from a sealed state with g_ref escrowed. */
static void start_me(uint32_t policy)
{
    fuzz_trts_reset();
    fuzz_me_reset();
    fuzz_me_peer_reset();
    struct me_state_header header = {
        .magic = ME_STATE_MAGIC, .format = ME_STATE_FORMAT, .entry_count = 1, .version = 1};
    memcpy(header.escrow_id, g_escrow_id, 16);
    uint8_t entry[ME_STATE_ENTRY_SIZE];
    assert(fuzz_me_encode_entry(ENTRY_ESCROWD, &g_ref, &g_owner, g_key, entry) == sizeof(entry));
    uint8_t *sealed = NULL;
    size_t sealed_size = 0;
    fuzz_trts_seal(&header, sizeof(header), entry, sizeof(entry), &sealed, &sealed_size);
    uint8_t digest[32];
    tc_sha256(sealed, sealed_size, digest);
    fuzz_trts_counter_set(g_escrow_id, 1, digest);
    uint8_t *in = malloc(sizeof(struct spm_me_init_in) + sealed_size);
    assert(in);
    struct spm_me_init_in init = {.policy = policy, .reserved = 0};
    memcpy(in, &init, sizeof(init));
    memcpy(in + sizeof(init), sealed, sealed_size);
    struct me_init_out out;
    size_t out_size = 0;
    assert(fuzz_me_init(in, sizeof(init) + sealed_size, (uint8_t *)&out, sizeof(out), &out_size) ==
           0);
    assert(out.entry_count == 1 && out.version == 1);
    free(in);
    free(sealed);
}

/* Sends one message (exactly its size, so ASan sees over-reads); the reply
 * is in g.reply. Returns the reply's type. */
static uint16_t send_message(const void *msg, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    assert(copy);
    memcpy(copy, msg, size);
    g.reply_size = 0;
    int ret = fuzz_me_handle(copy, size, g.reply, REPLY_CAP, &g.reply_size);
    free(copy);
    assert(ret == 0 && !fuzz_me_failed());
    struct spm_me_message_header h;
    assert(trts_me_check_header(g.reply, g.reply_size, &h) == 0);
    if (h.type == SPM_ME_MSG_ERROR) {
        struct spm_me_error e;
        assert(h.size == sizeof(e));
        memcpy(&e, g.reply + HEADER_SIZE, sizeof(e));
        assert(e.status < 0 && e.reserved == 0);
    }
    return h.type;
}

static uint16_t send_body(uint16_t type, const void *body, size_t body_size)
{
    uint8_t *msg = malloc(HEADER_SIZE + body_size);
    assert(msg);
    struct spm_me_message_header h;
    trts_me_header(&h, type, (uint32_t)body_size);
    memcpy(msg, &h, HEADER_SIZE);
    if (body_size)
        memcpy(msg + HEADER_SIZE, body, body_size);
    uint16_t reply_type = send_message(msg, HEADER_SIZE + body_size);
    free(msg);
    return reply_type;
}

static void bound(const char *label, const uint8_t transcript[32], uint8_t report_data[64])
{
    memset(report_data, 0, 64);
    tc_sha256_two(label, strlen(label), transcript, 32, report_data);
}

/* A quote of a peer ME over report_data, made dishonest as `tweak` says. */
static void peer_quote(const uint8_t report_data[64], uint8_t tweak, struct input *in,
                       uint8_t **quote, size_t *quote_size)
{
    struct sgx_report_body body = fuzz_trts_self;
    memcpy(body.report_data, report_data, 64);
    if (tweak & T_DEBUG)
        body.attributes.flags |= SGX_FLAGS_DEBUG;
    if (tweak & T_SIGNER)
        body.mr_signer[0] ^= 1;
    if (tweak & T_PRODUCT)
        body.isv_prod_id ^= 1;
    if (tweak & T_OLD_SVN)
        body.isv_svn--;
    if (tweak & T_BINDING)
        body.report_data[get8(in) & 63] ^= 1;
    fuzz_pki_quote(&body, quote, quote_size);
    if (tweak & T_CORRUPT) {
        size_t at = ((size_t)get8(in) << 8 | get8(in)) % *quote_size;
        (*quote)[at] ^= (uint8_t)(get8(in) | 1);
    }
}

/* The ME's quote in a reply must verify (its own verifier) and bind. */
static void check_me_quote(const uint8_t *quote, size_t size, const uint8_t report_data[64])
{
    struct sgx_report_body body;
    uint8_t platform_id[32];
    assert(me_quote_verify(quote, size, &body, platform_id) == 0);
    assert(memcmp(body.report_data, report_data, 64) == 0);
}

static void derive(struct peer *p, const uint8_t peer_public[65], bool initiator)
{
    uint8_t shared[32], k_sd[32], k_ds[32], input[29 + 32];
    assert(tc_p256_ecdh(g_private, peer_public, shared) == 0);
    memcpy(input, "SPM-RA-1 initiator->responder", 29);
    memcpy(input + 29, p->t2, 32);
    tc_hmac_sha256(shared, 32, input, sizeof(input), k_sd);
    memcpy(input, "SPM-RA-1 responder->initiator", 29);
    tc_hmac_sha256(shared, 32, input, sizeof(input), k_ds);
    memcpy(p->k_send, initiator ? k_sd : k_ds, 32);
    memcpy(p->k_receive, initiator ? k_ds : k_sd, 32);
    p->keyed = true;
    p->sent = p->received = 0;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void nonce_aad(const struct spm_me_message_header *h, uint64_t session, uint64_t sequence,
                      uint8_t nonce[12], uint8_t aad[HEADER_SIZE + 16])
{
    memset(nonce, 0, 12);
    put_le64(nonce, sequence);
    memcpy(aad, h, HEADER_SIZE);
    put_le64(aad + HEADER_SIZE, session);
    put_le64(aad + HEADER_SIZE + 8, sequence);
}

/* Opens a PEER_SEALED reply addressed to `p`; returns its plaintext size
 * (the tag must verify: the ME sealed it under the keys both derived). */
static size_t open_reply(struct peer *p, uint8_t plain[SPM_ME_PEER_MAX_PLAINTEXT])
{
    struct spm_me_message_header h;
    struct spm_me_peer_sealed sealed;
    memcpy(&h, g.reply, HEADER_SIZE);
    assert(h.size >= sizeof(sealed) + sizeof(struct spm_me_peer_request) &&
           h.size - sizeof(sealed) <= SPM_ME_PEER_MAX_PLAINTEXT);
    memcpy(&sealed, g.reply + HEADER_SIZE, sizeof(sealed));
    size_t size = h.size - sizeof(sealed);
    memcpy(plain, g.reply + HEADER_SIZE + sizeof(sealed), size);
    assert(sealed.receiver_session == p->own_session && sealed.sequence > p->received);
    uint8_t nonce[12], aad[HEADER_SIZE + 16];
    nonce_aad(&h, sealed.receiver_session, sealed.sequence, nonce, aad);
    assert(tc_aes_gcm(p->k_receive, 32, nonce, 12, aad, sizeof(aad), plain, size, false,
                      sealed.tag) == 0);
    p->received = sealed.sequence;
    return size;
}

static void step_open(void)
{
    struct spm_me_peer_open open = {0, 0};
    uint16_t type = send_body(SPM_ME_MSG_PEER_OPEN, &open, sizeof(open));
    assert(type == SPM_ME_MSG_PEER_OFFER && g.reply_size == OFFER_SIZE);
    struct spm_me_peer_offer offer;
    memcpy(&offer, g.reply + HEADER_SIZE, sizeof(offer));
    memset(&g.as_d, 0, sizeof(g.as_d));
    memcpy(g.as_d.offer, g.reply, OFFER_SIZE);
    g.as_d.me_session = offer.initiator_session;
    g.as_d.offered = true;
}

static void step_accept(struct input *in)
{
    uint8_t tweak = get8(in);
    struct peer *p = &g.as_d;
    if (!p->offered)
        return;
    struct spm_me_peer_accept accept;
    memset(&accept, 0, sizeof(accept));
    accept.initiator_session = p->me_session;
    accept.responder_session = (tweak & T_ZERO_SESS) ? 0 : 0x5245535030000001ull;
    memset(accept.nonce, 0x4e, 32);
    memcpy(accept.public_key, g_public, 65);
    /* T1 = SHA-256(OFFER bytes || pubD || nonce_D || le64(responder_session)) */
    uint8_t t1_in[OFFER_SIZE + 65 + 32 + 8], t1[32], report_data[64];
    memcpy(t1_in, p->offer, OFFER_SIZE);
    memcpy(t1_in + OFFER_SIZE, accept.public_key, 65);
    memcpy(t1_in + OFFER_SIZE + 65, accept.nonce, 32);
    put_le64(t1_in + OFFER_SIZE + 97, accept.responder_session);
    tc_sha256(t1_in, sizeof(t1_in), t1);
    bound("SPM-RA-1 responder", t1, report_data);
    uint8_t *quote = NULL;
    size_t quote_size = 0;
    peer_quote(report_data, tweak, in, &quote, &quote_size);
    accept.quote_size = (uint32_t)quote_size + ((tweak & T_BAD_SIZE) ? 1 : 0);
    size_t size = HEADER_SIZE + sizeof(accept) + quote_size;
    uint8_t *msg = malloc(size);
    assert(msg);
    struct spm_me_message_header h;
    trts_me_header(&h, SPM_ME_MSG_PEER_ACCEPT, (uint32_t)(size - HEADER_SIZE));
    memcpy(msg, &h, HEADER_SIZE);
    memcpy(msg + HEADER_SIZE, &accept, sizeof(accept));
    memcpy(msg + HEADER_SIZE + sizeof(accept), quote, quote_size);
    tc_sha256_two(t1, 32, msg, size, p->t2);
    uint16_t type = send_message(msg, size);
    free(msg);
    free(quote);
    p->offered = false; /* an ACCEPT ends the half-open session either way */
    bool honest =
        !(tweak & T_DISHONEST) || ((tweak & T_DEBUG) && (tweak & T_DISHONEST) == T_DEBUG &&
                                   (g.policy & SPM_ME_POLICY_ALLOW_DEBUG));
    if (!honest) {
        g.honest = false;
        return;
    }
    if (g.honest)
        assert(type == SPM_ME_MSG_PEER_CONFIRM);
    if (type != SPM_ME_MSG_PEER_CONFIRM)
        return;
    struct spm_me_peer_confirm confirm;
    assert(g.reply_size >= HEADER_SIZE + sizeof(confirm));
    memcpy(&confirm, g.reply + HEADER_SIZE, sizeof(confirm));
    assert(confirm.responder_session == accept.responder_session && confirm.reserved == 0);
    assert(confirm.quote_size == g.reply_size - HEADER_SIZE - sizeof(confirm));
    bound("SPM-RA-1 initiator", p->t2, report_data);
    check_me_quote(g.reply + HEADER_SIZE + sizeof(confirm), confirm.quote_size, report_data);
    p->own_session = accept.responder_session;
    derive(p, g.as_d.offer + HEADER_SIZE + offsetof(struct spm_me_peer_offer, public_key), false);
}

static void step_offer(struct input *in)
{
    uint8_t tweak = get8(in);
    struct peer *p = &g.as_s;
    memset(p, 0, sizeof(*p));
    struct spm_me_peer_offer offer;
    memset(&offer, 0, sizeof(offer));
    get_bytes(in, &offer.initiator_session, 8);
    if (tweak & T_ZERO_SESS)
        offer.initiator_session = 0;
    else if (!offer.initiator_session)
        offer.initiator_session = 1;
    memset(offer.nonce, 0x6e, 32);
    memcpy(offer.public_key, g_public, 65);
    if (tweak & T_CORRUPT)
        offer.public_key[1 + get8(in) % 64] ^= 1; /* likely off the curve */
    uint8_t msg[OFFER_SIZE];
    struct spm_me_message_header h;
    trts_me_header(&h, SPM_ME_MSG_PEER_OFFER, sizeof(offer));
    memcpy(msg, &h, HEADER_SIZE);
    memcpy(msg + HEADER_SIZE, &offer, sizeof(offer));
    uint16_t type = send_message(msg, sizeof(msg));
    if (tweak & (T_ZERO_SESS | T_CORRUPT)) {
        g.honest = false;
        return;
    }
    if (g.honest)
        assert(type == SPM_ME_MSG_PEER_ACCEPT);
    if (type != SPM_ME_MSG_PEER_ACCEPT)
        return;
    struct spm_me_peer_accept accept;
    assert(g.reply_size >= HEADER_SIZE + sizeof(accept));
    memcpy(&accept, g.reply + HEADER_SIZE, sizeof(accept));
    assert(accept.initiator_session == offer.initiator_session && accept.responder_session != 0);
    assert(accept.quote_size == g.reply_size - HEADER_SIZE - sizeof(accept));
    uint8_t t1_in[OFFER_SIZE + 65 + 32 + 8], t1[32], report_data[64];
    memcpy(t1_in, msg, OFFER_SIZE);
    memcpy(t1_in + OFFER_SIZE, accept.public_key, 65);
    memcpy(t1_in + OFFER_SIZE + 65, accept.nonce, 32);
    put_le64(t1_in + OFFER_SIZE + 97, accept.responder_session);
    tc_sha256(t1_in, sizeof(t1_in), t1);
    bound("SPM-RA-1 responder", t1, report_data);
    check_me_quote(g.reply + HEADER_SIZE + sizeof(accept), accept.quote_size, report_data);
    tc_sha256_two(t1, 32, g.reply, g.reply_size, p->t2);
    p->me_session = accept.responder_session;
    p->own_session = offer.initiator_session;
    p->offered = true; /* waiting for our CONFIRM */
    derive(p, accept.public_key, true);
    p->keyed = false; /* not before the ME has our quote */
}

static void step_confirm(struct input *in)
{
    uint8_t tweak = get8(in);
    struct peer *p = &g.as_s;
    if (!p->offered)
        return;
    p->offered = false;
    uint8_t report_data[64];
    bound("SPM-RA-1 initiator", p->t2, report_data);
    uint8_t *quote = NULL;
    size_t quote_size = 0;
    peer_quote(report_data, tweak, in, &quote, &quote_size);
    struct spm_me_peer_confirm confirm = {
        .responder_session = (tweak & T_ZERO_SESS) ? 0 : p->me_session,
        .quote_size = (uint32_t)quote_size + ((tweak & T_BAD_SIZE) ? 1 : 0),
        .reserved = 0};
    size_t size = sizeof(confirm) + quote_size;
    uint8_t *body = malloc(size);
    assert(body);
    memcpy(body, &confirm, sizeof(confirm));
    memcpy(body + sizeof(confirm), quote, quote_size);
    uint16_t type = send_body(SPM_ME_MSG_PEER_CONFIRM, body, size);
    free(body);
    free(quote);
    bool honest =
        !(tweak & T_DISHONEST) || ((tweak & T_DEBUG) && (tweak & T_DISHONEST) == T_DEBUG &&
                                   (g.policy & SPM_ME_POLICY_ALLOW_DEBUG));
    if (!honest) {
        g.honest = false;
        return;
    }
    if (g.honest)
        assert(type == SPM_ME_MSG_PEER_SEALED);
    if (type != SPM_ME_MSG_PEER_SEALED)
        return;
    p->keyed = true;
    uint8_t plain[SPM_ME_PEER_MAX_PLAINTEXT];
    size_t plain_size = open_reply(p, plain);
    struct spm_me_peer_request request;
    memcpy(&request, plain, sizeof(request));
    assert(plain_size == sizeof(request) && request.type == SPM_ME_PEER_READY &&
           request.status == 0);
}

/* What the ME sealed back must open; a TRANSFER must carry K. */
static void check_sealed_reply(struct peer *p)
{
    uint8_t plain[SPM_ME_PEER_MAX_PLAINTEXT];
    size_t size = open_reply(p, plain);
    struct spm_me_peer_request request;
    memcpy(&request, plain, sizeof(request));
    assert(request.reserved == 0);
    if (request.type == SPM_ME_PEER_TRANSFER) {
        struct spm_me_peer_transfer transfer;
        assert(size == sizeof(request) + sizeof(transfer) && request.status == 0);
        memcpy(&transfer, plain + sizeof(request), sizeof(transfer));
        assert(memcmp(&transfer.ref, &g_ref, sizeof(g_ref)) == 0);
        assert(memcmp(transfer.key, g_key, 32) == 0);
        assert(memcmp(&transfer.owner, &g_owner, sizeof(g_owner)) == 0);
        memcpy(g.handover_id, transfer.handover_id, 16);
    }
}

static void step_sealed(struct input *in)
{
    uint8_t tweak = get8(in);
    size_t plain_size = get8(in);
    uint8_t plain[256];
    get_bytes(in, plain, plain_size);
    if ((tweak & S_HANDOVER) && plain_size >= sizeof(struct spm_me_peer_request) + 16)
        memcpy(plain + sizeof(struct spm_me_peer_request), g.handover_id, 16);
    struct peer *p = (tweak & S_ON_D) ? &g.as_d : &g.as_s;
    if (!p->keyed)
        return;
    uint64_t sequence = p->sent + 1;
    if ((tweak & S_REPLAY) && p->sent)
        sequence = p->sent;
    if (tweak & S_SKIP)
        sequence++;
    if (sequence > p->sent)
        p->sent = sequence;
    size_t size = HEADER_SIZE + sizeof(struct spm_me_peer_sealed) + plain_size;
    uint8_t *msg = malloc(size);
    assert(msg);
    struct spm_me_message_header h;
    trts_me_header(&h, SPM_ME_MSG_PEER_SEALED, (uint32_t)(size - HEADER_SIZE));
    struct spm_me_peer_sealed sealed = {.receiver_session = p->me_session, .sequence = sequence};
    if (tweak & S_WRONG_SESS)
        sealed.receiver_session ^= 1;
    uint8_t nonce[12], aad[HEADER_SIZE + 16];
    nonce_aad(&h, sealed.receiver_session, sealed.sequence, nonce, aad);
    assert(tc_aes_gcm(p->k_send, 32, nonce, 12, aad, sizeof(aad), plain, plain_size, true,
                      sealed.tag) == 0);
    if (tweak & S_BAD_TAG)
        sealed.tag[0] ^= 1;
    memcpy(msg, &h, HEADER_SIZE);
    memcpy(msg + HEADER_SIZE, &sealed, sizeof(sealed));
    memcpy(msg + HEADER_SIZE + sizeof(sealed), plain, plain_size);
    uint16_t type = send_message(msg, size);
    free(msg);
    /* A refusal may or may not have closed the session (a malformed one
     * is refused before the session is looked up): the harness keeps its
     * keys, and a closed session answers -ECONNRESET from then on. */
    if (type == SPM_ME_MSG_PEER_SEALED)
        check_sealed_reply(p);
    if (tweak & (S_REPLAY | S_BAD_TAG | S_WRONG_SESS))
        g.honest = false;
}

static void step_local(struct input *in, uint16_t msg_type)
{
    uint8_t tweak = get8(in);
    struct spm_me_peer_checkpoint req = {.session = g.as_d.me_session, .ref = g_ref};
    if (tweak & 1)
        get_bytes(in, &req.ref, sizeof(req.ref));
    if (tweak & 2)
        req.session = g.as_s.me_session;
    uint16_t type = send_body(msg_type, &req, sizeof(req));
    if (type == SPM_ME_MSG_PEER_SEALED) {
        struct peer *p = (tweak & 2) ? &g.as_s : &g.as_d;
        assert(p->keyed);
        check_sealed_reply(p);
    }
}

static void step_list(void)
{
    uint16_t type = send_body(SPM_ME_MSG_PEER_LIST, NULL, 0);
    if (type != SPM_ME_MSG_PEER_LIST)
        return;
    struct spm_me_peer_list list;
    assert(g.reply_size >= HEADER_SIZE + sizeof(list));
    memcpy(&list, g.reply + HEADER_SIZE, sizeof(list));
    assert(g.reply_size ==
           HEADER_SIZE + sizeof(list) + (size_t)list.count * sizeof(struct spm_me_peer_leaving));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size, 0};
    memset(&g.as_d, 0, sizeof(g.as_d));
    memset(&g.as_s, 0, sizeof(g.as_s));
    g.honest = true;
    g.policy = get8(&in) & SPM_ME_POLICY_ALLOW_DEBUG;
    start_me(g.policy);
    for (int steps = 0; steps < MAX_STEPS && in.at < in.size; steps++) {
        switch (get8(&in) % 9) {
        case 0: {
            size_t raw_size = get8(&in);
            raw_size |= (size_t)get8(&in) << 8;
            if (raw_size > in.size - in.at)
                raw_size = in.size - in.at;
            send_message(in.data + in.at, raw_size);
            in.at += raw_size;
            g.honest = false;
            break;
        }
        case 1:
            step_open();
            break;
        case 2:
            step_accept(&in);
            break;
        case 3:
            step_offer(&in);
            break;
        case 4:
            step_confirm(&in);
            break;
        case 5:
            step_sealed(&in);
            break;
        case 6:
            step_local(&in, SPM_ME_MSG_PEER_HANDOVER);
            break;
        case 7:
            step_local(&in, SPM_ME_MSG_PEER_RESOLVE);
            break;
        default:
            step_list();
            break;
        }
    }
    return 0;
}
