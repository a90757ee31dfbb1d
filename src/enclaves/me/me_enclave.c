/* The Migration Enclave: holds checkpoint keys in escrow for the enclaves
 * of this host and releases each one only to an enclave with the identity
 * that escrowed it, until one restore commits it (me_abi.h).
 *
 * Why it can be trusted with that while spmd, which hosts it, cannot: every
 * client proves its identity with a REPORT only this platform's CPU can MAC
 * for this enclave, the channel keys come from an ECDH exchange bound into
 * both reports, and the escrow table leaves the enclave only sealed to this
 * enclave's MRENCLAVE. Its freshness comes from the platform's monotonic
 * counter: every change is sealed as version v+1, written durably by the
 * host, and only then the counter is advanced to v+1 and the client told;
 * at start an older state (version < counter) is refused as a rollback.
 *
 * A version number alone is not enough: two spmds on one platform running
 * on copies of one state share its counter, and each can write its own
 * version v+1. So the counter also holds a tag, SHA-256 of the sealed state
 * it vouches for, and each state names the digest of the state it replaces
 * (prev_digest). At start the state must be the one the counter's tag names
 * (version == counter), or the direct successor of it (version == counter
 * + 1, prev_digest == tag: written, then the counter step was lost), which
 * is then completed; any other state is refused, whatever its version. And
 * an increment that does not return v+1 means another writer moved the
 * counter: the ME stops serving.
 *
 * One entry per (lineage, identity): the newest generation escrowed, its
 * key until it is consumed, and the lease that consumed it. Keying by the
 * identity too means another enclave that learns a lineage id (it is in
 * the clear in checkpoint headers) cannot supersede or wipe someone else's
 * key. Every handler runs under one lock: the host may call on any TCS.
 *
 * Live migration adds three states (me_abi.h, ME to ME): LEAVING (K is
 * being handed to another platform's ME: this ME may no longer release it,
 * and cannot yet forget it), LEFT (the destination acknowledged that it
 * holds K durably: K is gone from here), and ABORTED (a destination's
 * record that a hand-over it never received was settled as aborted, so
 * that it can never be stored later). The protocol itself is me_peer.c. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "me_client.h"
#include "me_peer.h"
#include "me_state.h"
#include "spm/abi/me_abi.h"
#include "spm/trts.h"

#define ME_MAX_SESSIONS 64u
#define ME_MAX_ENTRIES  256u

#define HEADER_SIZE sizeof(struct spm_me_message_header)

enum me_entry_state {
    ENTRY_FREE = 0,
    ENTRY_ESCROWED = 1,
    ENTRY_CONSUMED = 2,
    ENTRY_CANCELLED = 3,
    ENTRY_LEAVING = 4, /* handed to out_platform_id, not yet acknowledged */
    ENTRY_LEFT = 5,    /* the destination holds K; kept as proof */
    ENTRY_ABORTED = 6, /* destination side: that hand-over may never be stored */
};

/* What a session's REPORT_A proved about the caller. */
struct me_identity {
    uint8_t mr_enclave[32];
    uint8_t mr_signer[32];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint32_t reserved;
    uint64_t attributes_flags;
} __attribute__((packed));

/* One escrow entry, as sealed to disk. */
struct me_entry {
    uint8_t lineage_id[16];
    uint8_t checkpoint_id[16];
    uint64_t generation;
    uint8_t header_digest[32];
    struct me_identity owner;
    uint32_t state; /* enum me_entry_state */
    uint32_t reserved;
    uint8_t key[32];
    uint8_t lease[16];
    uint64_t changed_at; /* state version of the last change: eviction order */
    /* The hand-over this entry arrived with (destination side; zero for a
     * local escrow), or the one an ABORTED marker refuses. */
    uint8_t in_handover_id[16];
    uint8_t in_platform_id[32];
    /* The hand-over this entry is leaving or left with (source side). */
    uint8_t out_handover_id[16];
    uint8_t out_platform_id[32];
} __attribute__((packed));

struct me_session {
    uint64_t id; /* 0: slot free */
    uint64_t last_sequence;
    uint64_t last_used;
    struct me_identity who;
    uint8_t k_app[32];
    uint8_t k_me[32];
};

static struct {
    struct spm_spinlock lock;
    bool initialized;
    /* A counter step failed or went elsewhere: nothing can be promised any
     * more; every request is refused and spmd must restart. */
    bool failed;
    uint32_t policy;
    uint64_t version;
    uint8_t escrow_id[16];
    /* SHA-256 of the sealed state at `version` (the counter's tag); zero
     * before the first one. */
    uint8_t state_digest[32];
    uint64_t tick;
    struct me_entry entries[ME_MAX_ENTRIES];
    struct me_session sessions[ME_MAX_SESSIONS];
} g_me;

_Static_assert(sizeof(struct me_entry) == ME_STATE_ENTRY_SIZE, "me entry");
_Static_assert(offsetof(struct me_entry, in_handover_id) == ME_STATE_ENTRY_SIZE_V2,
               "format 2 entries are a prefix of format 3 entries");
_Static_assert(sizeof(struct me_identity) == sizeof(struct spm_me_identity), "me identity");

/* ---- Logging (through the host: never anything secret) ---- */

static char *append(char *p, char *end, const char *s)
{
    while (*s && p < end - 1)
        *p++ = *s++;
    *p = 0;
    return p;
}

static char *append_u64(char *p, char *end, uint64_t v)
{
    char digits[21];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && p < end - 1)
        *p++ = digits[--n];
    *p = 0;
    return p;
}

/* Prints "ME: <a><n><b>[<m><c>]". */
static void me_log2(const char *a, uint64_t n, const char *b, uint64_t m, const char *c)
{
    char line[256], *end = line + sizeof(line), *p = line;
    p = append(p, end, "ME: ");
    p = append(p, end, a);
    if (b) {
        p = append_u64(p, end, n);
        p = append(p, end, b);
    }
    if (c) {
        p = append_u64(p, end, m);
        p = append(p, end, c);
    }
    spm_print(line);
}

void me_log(const char *msg)
{
    me_log2(msg, 0, NULL, 0, NULL);
}

/* ---- Persistence ---- */

static uint32_t used_entry_count(void)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < ME_MAX_ENTRIES; i++)
        count += g_me.entries[i].state != ENTRY_FREE;
    return count;
}

/* Seals the table as version+1 (chained to the current state by its
 * digest), has the host write it durably, then moves the platform counter
 * to version+1 with the new state's digest as its tag. On -errno before the
 * write is confirmed the caller undoes its change (nothing was promised). A
 * failure after it leaves the ME failed (the disk may be ahead of the
 * counter, which INIT accepts after a restart if the counter still vouches
 * for the state this one replaces). */
static int persist(void)
{
    uint32_t count = used_entry_count();
    size_t text_size = (size_t)count * sizeof(struct me_entry);
    struct me_state_header header = {
        .magic = ME_STATE_MAGIC,
        .format = ME_STATE_FORMAT,
        .entry_count = count,
        .version = g_me.version + 1,
    };
    memcpy(header.escrow_id, g_me.escrow_id, sizeof(header.escrow_id));
    memcpy(header.prev_digest, g_me.state_digest, sizeof(header.prev_digest));
    size_t sealed_size = spm_sealed_size(text_size, sizeof(header));
    uint8_t *text = malloc(text_size ? text_size : 1);
    uint8_t *sealed = malloc(sealed_size);
    int ret = -ENOMEM;
    if (!text || !sealed)
        goto out;
    uint8_t *p = text;
    for (uint32_t i = 0; i < ME_MAX_ENTRIES; i++) {
        if (g_me.entries[i].state == ENTRY_FREE)
            continue;
        memcpy(p, &g_me.entries[i], sizeof(struct me_entry));
        p += sizeof(struct me_entry);
    }
    ret = spm_seal(SPM_SEAL_POLICY_MRENCLAVE, &header, sizeof(header), text, text_size, sealed,
                   sealed_size);
    if (ret < 0)
        goto out;
    uint8_t digest[32];
    spm_sha256(sealed, sealed_size, digest);
    size_t ignored = 0;
    ret = spm_ocall(SPM_ME_OCALL_PERSIST, sealed, sealed_size, NULL, 0, &ignored);
    if (ret < 0) {
        me_log("the host could not store the escrow state; the change is undone");
        goto out;
    }
    uint64_t value = 0;
    ret = spm_counter_increment(g_me.escrow_id, digest, &value);
    if (ret < 0) {
        me_log("cannot advance the platform's monotonic counter; refusing all requests until "
               "spmd restarts");
        g_me.failed = true;
        ret = -EIO;
        goto out;
    }
    if (value != header.version) {
        /* Another ME runs on a copy of this state: only one of us can own
         * version v+1, and it is not us. */
        me_log2("platform counter moved to ", value, " instead of ", header.version,
                ": another copy of this escrow state is in use; refusing all requests");
        g_me.failed = true;
        ret = -ESTALE;
        goto out;
    }
    g_me.version = header.version;
    memcpy(g_me.state_digest, digest, sizeof(g_me.state_digest));
    ret = 0;
out:
    if (text) {
        spm_wipe(text, text_size ? text_size : 1);
        free(text);
    }
    free(sealed);
    return ret;
}

/* ---- Escrow table ---- */

static bool is_debug(const struct me_identity *who)
{
    return (who->attributes_flags & SGX_FLAGS_DEBUG) != 0;
}

static bool debug_refused(const struct me_identity *who)
{
    return is_debug(who) && !(g_me.policy & SPM_ME_POLICY_ALLOW_DEBUG);
}

/* MRENCLAVE, MRSIGNER, ISVPRODID and ISVSVN, as the release rule says. */
static bool same_identity(const struct me_identity *a, const struct me_identity *b)
{
    return spm_ct_equal(a->mr_enclave, b->mr_enclave, 32) == 0 &&
           spm_ct_equal(a->mr_signer, b->mr_signer, 32) == 0 && a->isv_prod_id == b->isv_prod_id &&
           a->isv_svn == b->isv_svn;
}

static struct me_entry *find_lineage(const uint8_t lineage_id[16], const struct me_identity *who)
{
    for (uint32_t i = 0; i < ME_MAX_ENTRIES; i++) {
        struct me_entry *e = &g_me.entries[i];
        if (e->state != ENTRY_FREE && memcmp(e->lineage_id, lineage_id, 16) == 0 &&
            same_identity(&e->owner, who))
            return e;
    }
    return NULL;
}

/* The entry of checkpoint `ref`: the caller's own if there is one, else
 * anyone's (to refuse it as someone else's), else NULL. */
static struct me_entry *find_checkpoint(const struct spm_me_checkpoint_ref *ref,
                                        const struct me_identity *who)
{
    struct me_entry *other = NULL;
    for (uint32_t i = 0; i < ME_MAX_ENTRIES; i++) {
        struct me_entry *e = &g_me.entries[i];
        /* An ABORTED marker names a checkpoint this ME never held. */
        if (e->state == ENTRY_FREE || e->state == ENTRY_ABORTED ||
            memcmp(e->lineage_id, ref->lineage_id, 16) != 0 ||
            memcmp(e->checkpoint_id, ref->checkpoint_id, 16) != 0)
            continue;
        if (same_identity(&e->owner, who))
            return e;
        other = e;
    }
    return other;
}

/* A free slot, else the cancelled entry changed longest ago (its enclave
 * ran on; forgetting it only turns a repeated CANCEL into a 0 it already
 * got). Consumed entries are kept: they are the proof that a checkpoint was
 * resumed, which a late CANCEL from a frozen copy must be told (-EALREADY)
 * rather than "nothing to cancel". So are LEAVING (K is still here), LEFT
 * (a frozen source must learn it may never resume) and ABORTED (it refuses
 * a late hand-over). NULL when nothing may be forgotten. */
static struct me_entry *free_slot(void)
{
    struct me_entry *oldest = NULL;
    for (uint32_t i = 0; i < ME_MAX_ENTRIES; i++) {
        struct me_entry *e = &g_me.entries[i];
        if (e->state == ENTRY_FREE)
            return e;
        if (e->state == ENTRY_CANCELLED && (!oldest || e->changed_at < oldest->changed_at))
            oldest = e;
    }
    return oldest;
}

/* Applies `updated` to *slot durably, or leaves *slot as it was. */
static int commit_change(struct me_entry *slot, const struct me_entry *updated)
{
    struct me_entry old = *slot;
    *slot = *updated;
    slot->changed_at = g_me.version + 1;
    int ret = persist();
    if (ret < 0 && !g_me.failed)
        *slot = old;
    spm_wipe(&old, sizeof(old));
    return ret;
}

/* Checks shared by RELEASE, COMMIT and CANCEL once the entry is found. */
static int check_ref(const struct me_entry *e, const struct spm_me_checkpoint_ref *ref,
                     const struct me_identity *who)
{
    if (!same_identity(&e->owner, who))
        return -EKEYREJECTED;
    if (e->generation != ref->generation)
        return -ESTALE;
    if (spm_ct_equal(e->header_digest, ref->header_digest, 32) != 0)
        return -EBADMSG;
    return 0;
}

/* The checkpoint `ref` when not found: superseded by a newer generation of
 * the caller's lineage, or unknown. */
static int missing_status(const struct spm_me_checkpoint_ref *ref, const struct me_identity *who)
{
    const struct me_entry *e = find_lineage(ref->lineage_id, who);
    return e && e->generation > ref->generation ? -ESTALE : -ENOENT;
}

static int do_escrow(const struct me_identity *who, const uint8_t *body, size_t body_size)
{
    struct spm_me_escrow req;
    if (body_size != sizeof(req))
        return -EINVAL;
    if (debug_refused(who))
        return -EPERM;
    memcpy(&req, body, sizeof(req));
    struct me_entry updated;
    memset(&updated, 0, sizeof(updated));
    memcpy(updated.lineage_id, req.ref.lineage_id, 16);
    memcpy(updated.checkpoint_id, req.ref.checkpoint_id, 16);
    updated.generation = req.ref.generation;
    memcpy(updated.header_digest, req.ref.header_digest, 32);
    updated.owner = *who;
    updated.state = ENTRY_ESCROWED;
    memcpy(updated.key, req.key, 32);
    spm_wipe(&req, sizeof(req));

    int ret;
    struct me_entry *slot = find_lineage(updated.lineage_id, who);
    if (slot) {
        if (slot->state == ENTRY_LEAVING)
            ret = -EBUSY; /* its hand-over must be settled first */
        else if (slot->state == ENTRY_ESCROWED && slot->generation == updated.generation &&
                 memcmp(slot->checkpoint_id, updated.checkpoint_id, 16) == 0 &&
                 spm_ct_equal(slot->header_digest, updated.header_digest, 32) == 0 &&
                 spm_ct_equal(slot->key, updated.key, 32) == 0)
            ret = 0; /* the same escrow again: its reply was lost */
        else if (updated.generation <= slot->generation)
            ret = -ESTALE;
        else
            ret = commit_change(slot, &updated); /* the older key is overwritten */
    } else if (!(slot = free_slot())) {
        ret = -ENOSPC;
    } else {
        ret = commit_change(slot, &updated);
    }
    spm_wipe(&updated, sizeof(updated));
    return ret;
}

static int do_release(const struct me_identity *who, const uint8_t *body, size_t body_size,
                      uint8_t key_out[32])
{
    struct spm_me_checkpoint_ref ref;
    if (body_size != sizeof(ref))
        return -EINVAL;
    if (debug_refused(who))
        return -EPERM;
    memcpy(&ref, body, sizeof(ref));
    struct me_entry *e = find_checkpoint(&ref, who);
    if (!e)
        return missing_status(&ref, who);
    int ret = check_ref(e, &ref, who);
    if (ret < 0)
        return ret;
    if (e->state == ENTRY_LEAVING)
        return -EBUSY; /* being handed over: it may not run here unless that is aborted */
    if (e->state != ENTRY_ESCROWED)
        return -EALREADY; /* consumed, cancelled, or left for another platform */
    memcpy(key_out, e->key, 32);
    return 0;
}

static int do_commit(const struct me_identity *who, const uint8_t *body, size_t body_size)
{
    struct spm_me_commit req;
    if (body_size != sizeof(req))
        return -EINVAL;
    if (debug_refused(who))
        return -EPERM;
    memcpy(&req, body, sizeof(req));
    struct me_entry *e = find_checkpoint(&req.ref, who);
    if (!e)
        return missing_status(&req.ref, who);
    int ret = check_ref(e, &req.ref, who);
    if (ret < 0)
        return ret;
    if (e->state == ENTRY_CONSUMED)
        return spm_ct_equal(e->lease, req.lease, 16) == 0 ? 0 : -EALREADY;
    if (e->state == ENTRY_LEAVING)
        return -EBUSY;
    if (e->state != ENTRY_ESCROWED)
        return -EALREADY;
    struct me_entry updated = *e;
    updated.state = ENTRY_CONSUMED;
    memcpy(updated.lease, req.lease, 16);
    spm_wipe(updated.key, sizeof(updated.key));
    ret = commit_change(e, &updated);
    spm_wipe(&updated, sizeof(updated));
    return ret;
}

static int do_cancel(const struct me_identity *who, const uint8_t *body, size_t body_size)
{
    struct spm_me_checkpoint_ref ref;
    if (body_size != sizeof(ref))
        return -EINVAL;
    memcpy(&ref, body, sizeof(ref));
    /* The caller is an enclave frozen after an export whose ESCROW reply it
     * never saw; 0 lets it run on. That is safe only if no other copy can
     * hold this state: never escrowed, or cancelled. A checkpoint that was
     * resumed (-EALREADY) or superseded by a newer one of the lineage
     * (-ESTALE) means another copy runs, and the caller must die. */
    struct me_entry *e = find_checkpoint(&ref, who);
    if (!e) {
        int missing = missing_status(&ref, who);
        return missing == -ENOENT ? 0 : missing; /* 0: the escrow never arrived */
    }
    int ret = check_ref(e, &ref, who);
    if (ret < 0)
        return ret;
    if (e->state == ENTRY_CONSUMED)
        return -EALREADY;
    /* Being handed over: the destination may already hold K. The frozen
     * enclave stays frozen and asks again once the hand-over is settled. */
    if (e->state == ENTRY_LEAVING)
        return -EBUSY;
    /* Handed over: another copy may run on the destination; the caller
     * must die. */
    if (e->state == ENTRY_LEFT)
        return -EALREADY;
    if (e->state != ENTRY_ESCROWED)
        return 0; /* cancelled before: this is a retry */
    struct me_entry updated = *e;
    updated.state = ENTRY_CANCELLED;
    spm_wipe(updated.key, sizeof(updated.key));
    ret = commit_change(e, &updated);
    spm_wipe(&updated, sizeof(updated));
    return ret;
}

/* ---- Hand-over between MEs (the table's side; the protocol is me_peer.c) ---- */

uint32_t me_policy(void)
{
    return g_me.policy;
}

static bool is_zero(const uint8_t *p, size_t size)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < size; i++)
        acc |= p[i];
    return acc == 0;
}

static void identity_out(const struct me_identity *who, struct spm_me_identity *out)
{
    memcpy(out, who, sizeof(*out));
}

/* The owner identity a peer ME sent, or -EBADMSG for one no REPORT could
 * have produced (reserved bits set). */
static int identity_in(const struct spm_me_identity *in, struct me_identity *who)
{
    if (in->reserved != 0)
        return -EBADMSG;
    memcpy(who, in, sizeof(*who));
    return 0;
}

/* The entry a daemon names by the public ref, whoever owns it: spmd knows
 * the checkpoint, not the identity. ABORTED markers hold no checkpoint.
 * -ENOENT none, -EEXIST two owners escrowed the same ids (another enclave
 * may copy a public ref: refuse rather than guess), -ESTALE another
 * generation, -EBADMSG another header digest. */
static int find_by_ref(const struct spm_me_checkpoint_ref *ref, struct me_entry **out)
{
    struct me_entry *found = NULL;
    for (uint32_t i = 0; i < ME_MAX_ENTRIES; i++) {
        struct me_entry *e = &g_me.entries[i];
        if (e->state == ENTRY_FREE || e->state == ENTRY_ABORTED ||
            memcmp(e->lineage_id, ref->lineage_id, 16) != 0 ||
            memcmp(e->checkpoint_id, ref->checkpoint_id, 16) != 0)
            continue;
        if (found)
            return -EEXIST;
        found = e;
    }
    if (!found)
        return -ENOENT;
    if (found->generation != ref->generation)
        return -ESTALE;
    if (spm_ct_equal(found->header_digest, ref->header_digest, 32) != 0)
        return -EBADMSG;
    *out = found;
    return 0;
}

/* The source-side entry of hand-over `handover_id`. */
static struct me_entry *find_outgoing(const uint8_t handover_id[16])
{
    if (is_zero(handover_id, 16))
        return NULL;
    for (uint32_t i = 0; i < ME_MAX_ENTRIES; i++) {
        struct me_entry *e = &g_me.entries[i];
        if ((e->state == ENTRY_LEAVING || e->state == ENTRY_LEFT || e->state == ENTRY_ESCROWED) &&
            spm_ct_equal(e->out_handover_id, handover_id, 16) == 0)
            return e;
    }
    return NULL;
}

static void ref_of_entry(const struct me_entry *e, struct spm_me_checkpoint_ref *ref)
{
    memcpy(ref->checkpoint_id, e->checkpoint_id, 16);
    memcpy(ref->lineage_id, e->lineage_id, 16);
    ref->generation = e->generation;
    memcpy(ref->header_digest, e->header_digest, 32);
}

static void status_of_entry(const struct me_entry *e, int32_t status, uint32_t outcome,
                            struct spm_me_peer_status *st)
{
    memset(st, 0, sizeof(*st));
    st->status = status;
    st->outcome = outcome;
    memcpy(st->handover_id, e->out_handover_id, 16);
    memcpy(st->peer_platform_id, e->out_platform_id, 32);
    ref_of_entry(e, &st->ref);
}

int me_handover_begin(const struct spm_me_checkpoint_ref *ref, const uint8_t peer_platform[32],
                      const uint8_t self_platform[32], struct spm_me_peer_transfer *transfer)
{
    struct me_entry *e = NULL;
    int ret = find_by_ref(ref, &e);
    if (ret < 0)
        return ret;
    if (e->state == ENTRY_LEAVING) {
        /* The TRANSFER or its ACK was lost: the same hand-over again, to
         * the same platform only (D answers a handover id it holds with
         * ACK). Another destination would make two possible owners. */
        if (spm_ct_equal(e->out_platform_id, peer_platform, 32) != 0)
            return -EBUSY;
    } else if (e->state != ENTRY_ESCROWED) {
        return -EALREADY; /* consumed, cancelled or left: K is not here */
    } else {
        struct me_entry updated = *e;
        updated.state = ENTRY_LEAVING;
        do {
            if ((ret = spm_random(updated.out_handover_id, 16)) < 0) {
                spm_wipe(&updated, sizeof(updated));
                return ret;
            }
        } while (is_zero(updated.out_handover_id, 16));
        memcpy(updated.out_platform_id, peer_platform, 32);
        /* Persisted before K leaves: after a crash this ME still knows K
         * may be elsewhere and refuses to release it until resolved. */
        ret = commit_change(e, &updated);
        spm_wipe(&updated, sizeof(updated));
        if (ret < 0)
            return ret;
        me_log("checkpoint marked LEAVING for a hand-over to a peer ME");
    }
    memset(transfer, 0, sizeof(*transfer));
    memcpy(transfer->handover_id, e->out_handover_id, 16);
    ref_of_entry(e, &transfer->ref);
    identity_out(&e->owner, &transfer->owner);
    memcpy(transfer->key, e->key, 32);
    memcpy(transfer->source_platform_id, self_platform, 32);
    return 0;
}

int me_transfer_receive(const struct spm_me_peer_transfer *transfer,
                        const uint8_t source_platform[32])
{
    struct me_identity who;
    if (identity_in(&transfer->owner, &who) < 0 || is_zero(transfer->handover_id, 16) ||
        spm_ct_equal(transfer->source_platform_id, source_platform, 32) != 0)
        return -EBADMSG;
    if (debug_refused(&who))
        return -EPERM;
    struct me_entry *slot = find_lineage(transfer->ref.lineage_id, &who);
    if (slot) {
        /* The same hand-over again (its ACK was lost): held already. */
        if (slot->state != ENTRY_ABORTED &&
            spm_ct_equal(slot->in_handover_id, transfer->handover_id, 16) == 0)
            return 0;
        if (slot->state == ENTRY_LEAVING)
            return -EBUSY;
        /* Same or newer here, an ABORTED marker included: this checkpoint
         * was superseded, or its hand-over was settled as aborted and the
         * source may be running it. */
        if (slot->generation >= transfer->ref.generation)
            return -ESTALE;
    } else if (!(slot = free_slot())) {
        return -ENOSPC;
    }
    struct me_entry updated;
    memset(&updated, 0, sizeof(updated));
    memcpy(updated.lineage_id, transfer->ref.lineage_id, 16);
    memcpy(updated.checkpoint_id, transfer->ref.checkpoint_id, 16);
    updated.generation = transfer->ref.generation;
    memcpy(updated.header_digest, transfer->ref.header_digest, 32);
    updated.owner = who;
    updated.state = ENTRY_ESCROWED;
    memcpy(updated.key, transfer->key, 32);
    memcpy(updated.in_handover_id, transfer->handover_id, 16);
    memcpy(updated.in_platform_id, source_platform, 32);
    int ret = commit_change(slot, &updated);
    spm_wipe(&updated, sizeof(updated));
    if (ret == 0)
        me_log("received a checkpoint key from a peer ME and stored it");
    return ret;
}

int me_handover_acked(const struct spm_me_peer_transfer_ack *ack, int32_t status,
                      const uint8_t peer_platform[32], struct spm_me_peer_status *st)
{
    struct me_entry *e = find_outgoing(ack->handover_id);
    if (!e)
        return -ENOENT;
    if (spm_ct_equal(e->out_platform_id, peer_platform, 32) != 0)
        return -EACCES;
    if (e->state == ENTRY_LEFT) {
        /* D acknowledged it before (a re-sent TRANSFER): it holds K. */
        status_of_entry(e, 0, SPM_ME_PEER_OUTCOME_HANDED_OVER, st);
        return 0;
    }
    if (e->state != ENTRY_LEAVING) {
        /* Back to ESCROWED: D answered ABORTED for this handover id, so a
         * late refusal agrees, and a late "stored" is D contradicting
         * itself. */
        if (status != 0) {
            status_of_entry(e, status, SPM_ME_PEER_OUTCOME_KEPT, st);
            return 0;
        }
        me_log("a peer ME acknowledged a hand-over it had declared aborted; ignored");
        return -EPROTO;
    }
    if (status != 0) {
        /* D refused: it does not hold K now, but a TRANSFER still in
         * flight (another session) might reach it later. Only RESOLVE,
         * which makes D refuse that for good, may give K back. */
        status_of_entry(e, status, SPM_ME_PEER_OUTCOME_PENDING, st);
        return 0;
    }
    struct me_entry updated = *e;
    updated.state = ENTRY_LEFT;
    spm_wipe(updated.key, sizeof(updated.key));
    int ret = commit_change(e, &updated);
    spm_wipe(&updated, sizeof(updated));
    if (ret < 0)
        return ret;
    me_log("checkpoint handed over: the destination ME holds its key; LEFT");
    status_of_entry(e, 0, SPM_ME_PEER_OUTCOME_HANDED_OVER, st);
    return 0;
}

int me_resolve_begin(const struct spm_me_checkpoint_ref *ref, const uint8_t *peer_platform,
                     struct spm_me_peer_resolve *resolve, struct spm_me_peer_status *st)
{
    struct me_entry *e = NULL;
    int ret = find_by_ref(ref, &e);
    if (ret < 0)
        return ret;
    if (e->state == ENTRY_LEFT) {
        status_of_entry(e, 0, SPM_ME_PEER_OUTCOME_HANDED_OVER, st);
        return 0;
    }
    if (e->state != ENTRY_LEAVING) {
        status_of_entry(e, 0, SPM_ME_PEER_OUTCOME_KEPT, st);
        return 0;
    }
    if (!peer_platform)
        return -ECONNRESET;
    /* Only the ME it was handed to can say it never arrived: a third ME's
     * "aborted" proves nothing about the destination. */
    if (spm_ct_equal(e->out_platform_id, peer_platform, 32) != 0)
        return -EACCES;
    memset(resolve, 0, sizeof(*resolve));
    memcpy(resolve->handover_id, e->out_handover_id, 16);
    ref_of_entry(e, &resolve->ref);
    identity_out(&e->owner, &resolve->owner);
    return 1;
}

int me_resolve_answer(const struct spm_me_peer_resolve *resolve, const uint8_t source_platform[32],
                      uint32_t *verdict)
{
    struct me_identity who;
    if (identity_in(&resolve->owner, &who) < 0 || is_zero(resolve->handover_id, 16))
        return -EBADMSG;
    struct me_entry *slot = find_lineage(resolve->ref.lineage_id, &who);
    if (slot) {
        /* Received (whatever became of it since): the source must not
         * resume it. */
        if (slot->state != ENTRY_ABORTED &&
            spm_ct_equal(slot->in_handover_id, resolve->handover_id, 16) == 0) {
            *verdict = SPM_ME_PEER_HELD;
            return 0;
        }
        /* A newer generation exists only if this checkpoint (or a later
         * one) ran: most likely it did arrive here, was restored and
         * checkpointed again. Never let the source resume it. */
        if (slot->generation > resolve->ref.generation) {
            *verdict = SPM_ME_PEER_SUPERSEDED;
            return 0;
        }
        /* The same generation under another handover id (or an ABORTED
         * marker): a TRANSFER of this generation is refused already. */
        if (slot->generation == resolve->ref.generation) {
            *verdict = SPM_ME_PEER_ABORTED;
            return 0;
        }
        if (slot->state == ENTRY_LEAVING)
            return -EBUSY; /* our own hand-over of this lineage comes first */
    } else if (!(slot = free_slot())) {
        return -ENOSPC;
    }
    /* Never received: remember that durably before saying so, so a late
     * TRANSFER of this generation is refused (-ESTALE). */
    struct me_entry updated;
    memset(&updated, 0, sizeof(updated));
    memcpy(updated.lineage_id, resolve->ref.lineage_id, 16);
    memcpy(updated.checkpoint_id, resolve->ref.checkpoint_id, 16);
    updated.generation = resolve->ref.generation;
    memcpy(updated.header_digest, resolve->ref.header_digest, 32);
    updated.owner = who;
    updated.state = ENTRY_ABORTED;
    memcpy(updated.in_handover_id, resolve->handover_id, 16);
    memcpy(updated.in_platform_id, source_platform, 32);
    int ret = commit_change(slot, &updated);
    spm_wipe(&updated, sizeof(updated));
    if (ret < 0)
        return ret;
    me_log("a hand-over that never arrived was settled as ABORTED");
    *verdict = SPM_ME_PEER_ABORTED;
    return 0;
}

int me_resolved(const struct spm_me_peer_resolved *resolved, const uint8_t peer_platform[32],
                struct spm_me_peer_status *st)
{
    uint32_t verdict = resolved->verdict;
    if (resolved->reserved != 0 || (verdict != SPM_ME_PEER_HELD && verdict != SPM_ME_PEER_ABORTED &&
                                    verdict != SPM_ME_PEER_SUPERSEDED))
        return -EBADMSG;
    struct me_entry *e = find_outgoing(resolved->handover_id);
    if (!e)
        return -ENOENT;
    if (spm_ct_equal(e->out_platform_id, peer_platform, 32) != 0)
        return -EACCES;
    bool held = verdict != SPM_ME_PEER_ABORTED;
    uint32_t outcome = held ? SPM_ME_PEER_OUTCOME_HANDED_OVER : SPM_ME_PEER_OUTCOME_KEPT;
    if (e->state != ENTRY_LEAVING) {
        /* A repeated answer agrees with the state it led to; anything else
         * is a destination contradicting itself. */
        if ((e->state == ENTRY_LEFT) != held) {
            me_log("a peer ME's RESOLVED contradicts its earlier answer; ignored");
            return -EPROTO;
        }
        status_of_entry(e, 0, outcome, st);
        return 0;
    }
    struct me_entry updated = *e;
    if (held) {
        updated.state = ENTRY_LEFT;
        spm_wipe(updated.key, sizeof(updated.key));
    } else {
        updated.state = ENTRY_ESCROWED; /* out_handover_id stays: a repeat is recognised */
    }
    int ret = commit_change(e, &updated);
    spm_wipe(&updated, sizeof(updated));
    if (ret < 0)
        return ret;
    me_log(held ? "hand-over resolved: the destination holds the key; LEFT"
                : "hand-over resolved as aborted: the key is ESCROWED here again");
    status_of_entry(e, 0, outcome, st);
    return 0;
}

int me_list_leaving(uint8_t *out, size_t out_capacity, size_t *out_size)
{
    struct spm_me_peer_list list = {.count = 0, .reserved = 0};
    size_t size = HEADER_SIZE + sizeof(list);
    if (out_capacity < size)
        return -ENOSPC;
    for (uint32_t i = 0; i < ME_MAX_ENTRIES; i++) {
        const struct me_entry *e = &g_me.entries[i];
        if (e->state != ENTRY_LEAVING)
            continue;
        if (out_capacity - size < sizeof(struct spm_me_peer_leaving))
            return -ENOSPC;
        struct spm_me_peer_leaving item;
        memset(&item, 0, sizeof(item));
        ref_of_entry(e, &item.ref);
        memcpy(item.handover_id, e->out_handover_id, 16);
        memcpy(item.peer_platform_id, e->out_platform_id, 32);
        memcpy(out + size, &item, sizeof(item));
        size += sizeof(item);
        list.count++;
    }
    struct spm_me_message_header h;
    trts_me_header(&h, SPM_ME_MSG_PEER_LIST, (uint32_t)(size - HEADER_SIZE));
    memcpy(out, &h, HEADER_SIZE);
    memcpy(out + HEADER_SIZE, &list, sizeof(list));
    *out_size = size;
    return 0;
}

/* ---- Messages ---- */

int me_reply_error(int32_t status, uint8_t *out, size_t out_capacity, size_t *out_size)
{
    struct {
        struct spm_me_message_header h;
        struct spm_me_error error;
    } __attribute__((packed)) msg;
    if (out_capacity < sizeof(msg))
        return -ENOSPC;
    trts_me_header(&msg.h, SPM_ME_MSG_ERROR, sizeof(msg.error));
    msg.error.status = status;
    msg.error.reserved = 0;
    memcpy(out, &msg, sizeof(msg));
    *out_size = sizeof(msg);
    return 0;
}

static int handle_target_info(const struct spm_me_message_header *h, uint8_t *out,
                              size_t out_capacity, size_t *out_size)
{
    if (h->size != 0)
        return me_reply_error(-EPROTO, out, out_capacity, out_size);
    struct sgx_target_info target;
    int ret = spm_self_target_info(&target);
    if (ret < 0)
        return me_reply_error(-EIO, out, out_capacity, out_size);
    if (out_capacity < HEADER_SIZE + sizeof(target))
        return -ENOSPC;
    struct spm_me_message_header reply;
    trts_me_header(&reply, SPM_ME_MSG_TARGET_INFO, sizeof(target));
    memcpy(out, &reply, HEADER_SIZE);
    memcpy(out + HEADER_SIZE, &target, sizeof(target));
    *out_size = HEADER_SIZE + sizeof(target);
    return 0;
}

/* A slot for a new session: a free one, else the least recently used. */
static struct me_session *session_slot(void)
{
    struct me_session *lru = &g_me.sessions[0];
    for (uint32_t i = 0; i < ME_MAX_SESSIONS; i++) {
        struct me_session *s = &g_me.sessions[i];
        if (!s->id)
            return s;
        if (s->last_used < lru->last_used)
            lru = s;
    }
    spm_wipe(lru, sizeof(*lru));
    return lru;
}

static struct me_session *find_session(uint64_t id)
{
    if (!id)
        return NULL;
    for (uint32_t i = 0; i < ME_MAX_SESSIONS; i++)
        if (g_me.sessions[i].id == id)
            return &g_me.sessions[i];
    return NULL;
}

static int handle_hello(const uint8_t *in, const struct spm_me_message_header *h, uint8_t *out,
                        size_t out_capacity, size_t *out_size)
{
    struct spm_me_hello hello;
    static const uint8_t zero[sizeof(hello.reserved)];
    if (h->size != sizeof(hello))
        return me_reply_error(-EPROTO, out, out_capacity, out_size);
    memcpy(&hello, in + HEADER_SIZE, sizeof(hello));
    if (memcmp(hello.reserved, zero, sizeof(zero)) != 0)
        return me_reply_error(-EPROTO, out, out_capacity, out_size);
    /* The caller is an enclave on this platform (only the CPU can MAC a
     * report for us) and REPORT_A speaks for this public key. */
    uint8_t report_data[64];
    trts_me_app_report_data(hello.public_key, report_data);
    if (spm_verify_report(&hello.report) < 0 ||
        spm_ct_equal(report_data, hello.report.body.report_data, 64) != 0 ||
        !(hello.report.body.attributes.flags & SGX_FLAGS_INITTED))
        return me_reply_error(-EKEYREJECTED, out, out_capacity, out_size);

    struct {
        struct spm_me_message_header h;
        struct spm_me_hello_reply reply;
    } __attribute__((packed)) msg;
    if (out_capacity < sizeof(msg))
        return -ENOSPC;
    memset(&msg, 0, sizeof(msg));
    trts_me_header(&msg.h, SPM_ME_MSG_HELLO, sizeof(msg.reply));

    uint8_t private_key[32];
    struct me_session fresh;
    memset(&fresh, 0, sizeof(fresh));
    int status = -EIO;
    if (spm_ecdsa_p256_keygen(private_key, msg.reply.public_key) < 0)
        goto out;
    do {
        if (spm_random(&fresh.id, sizeof(fresh.id)) < 0)
            goto out;
    } while (!fresh.id || find_session(fresh.id));
    if (trts_me_derive_keys(private_key, hello.public_key, hello.public_key, msg.reply.public_key,
                            fresh.k_app, fresh.k_me) < 0) {
        status = -EPROTO; /* REPORT_A vouched for a point not on the curve */
        goto out;
    }
    /* REPORT_M targets the enclave REPORT_A came from. */
    struct sgx_target_info target;
    memset(&target, 0, sizeof(target));
    memcpy(target.mr_enclave, hello.report.body.mr_enclave, 32);
    target.attributes = hello.report.body.attributes;
    target.config_svn = hello.report.body.config_svn;
    target.misc_select = hello.report.body.misc_select;
    memcpy(target.config_id, hello.report.body.config_id, sizeof(target.config_id));
    msg.reply.session = fresh.id;
    trts_me_me_report_data(hello.public_key, msg.reply.public_key, fresh.id, report_data);
    if (spm_create_report(&target, report_data, &msg.reply.report) < 0)
        goto out;

    memcpy(fresh.who.mr_enclave, hello.report.body.mr_enclave, 32);
    memcpy(fresh.who.mr_signer, hello.report.body.mr_signer, 32);
    fresh.who.isv_prod_id = hello.report.body.isv_prod_id;
    fresh.who.isv_svn = hello.report.body.isv_svn;
    fresh.who.attributes_flags = hello.report.body.attributes.flags;
    fresh.last_used = ++g_me.tick;
    *session_slot() = fresh;
    memcpy(out, &msg, sizeof(msg));
    *out_size = sizeof(msg);
    status = 0;
out:
    spm_wipe(private_key, sizeof(private_key));
    spm_wipe(&fresh, sizeof(fresh));
    return status == 0 ? 0 : me_reply_error(status, out, out_capacity, out_size);
}

static int handle_sealed(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                         size_t *out_size)
{
    uint64_t session_id, sequence;
    if (trts_me_peek_sealed(in, in_size, &session_id, &sequence) < 0)
        return me_reply_error(-EPROTO, out, out_capacity, out_size);
    struct me_session *s = find_session(session_id);
    if (!s)
        return me_reply_error(-ECONNRESET, out, out_capacity, out_size);
    uint8_t plain[TRTS_ME_MAX_SEALED_PLAINTEXT];
    size_t plain_size = 0;
    if (trts_me_open_sealed(s->k_app, in, in_size, plain, sizeof(plain), &plain_size) < 0)
        return me_reply_error(-EPROTO, out, out_capacity, out_size);
    if (sequence <= s->last_sequence) {
        spm_wipe(plain, sizeof(plain));
        return me_reply_error(-EPROTO, out, out_capacity, out_size); /* replayed */
    }
    s->last_sequence = sequence;
    s->last_used = ++g_me.tick;

    struct spm_me_request request;
    uint8_t answer[sizeof(struct spm_me_request) + sizeof(struct spm_me_release_reply)];
    size_t answer_size = sizeof(request);
    int status;
    if (plain_size < sizeof(request)) {
        status = -EINVAL;
        request.type = 0;
    } else {
        memcpy(&request, plain, sizeof(request));
        const uint8_t *body = plain + sizeof(request);
        size_t body_size = plain_size - sizeof(request);
        if (request.reserved != 0 || request.status != 0)
            status = -EINVAL;
        else if (g_me.failed)
            status = -EIO;
        else if (request.type == SPM_ME_REQ_ESCROW)
            status = do_escrow(&s->who, body, body_size);
        else if (request.type == SPM_ME_REQ_RELEASE) {
            status = do_release(&s->who, body, body_size, answer + sizeof(request));
            if (status == 0)
                answer_size += sizeof(struct spm_me_release_reply);
        } else if (request.type == SPM_ME_REQ_COMMIT)
            status = do_commit(&s->who, body, body_size);
        else if (request.type == SPM_ME_REQ_CANCEL)
            status = do_cancel(&s->who, body, body_size);
        else
            status = -EINVAL;
    }
    spm_wipe(plain, sizeof(plain));
    struct spm_me_request reply = {.type = request.type, .reserved = 0, .status = status};
    memcpy(answer, &reply, sizeof(reply));
    int ret = trts_me_seal_message(s->k_me, s->id, sequence, answer, answer_size, out, out_capacity,
                                   out_size);
    spm_wipe(answer, sizeof(answer));
    return ret;
}

/* ---- Ecalls ---- */

static int e_init(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                  size_t *out_size)
{
    struct spm_me_init_in init;
    struct me_init_out result;
    if (in_size < sizeof(init) || out_capacity < sizeof(result))
        return -EINVAL;
    memcpy(&init, in, sizeof(init));
    if (init.reserved != 0 || (init.policy & ~SPM_ME_POLICY_ALLOW_DEBUG))
        return -EINVAL;
    const uint8_t *sealed = in + sizeof(init);
    size_t sealed_size = in_size - sizeof(init);

    spm_spin_lock(&g_me.lock);
    int ret = -EALREADY;
    uint8_t *text = NULL;
    size_t text_size = 0;
    if (g_me.initialized)
        goto out;
    g_me.policy = init.policy;
    memset(&result, 0, sizeof(result));
    if (sealed_size == 0) {
        /* A new escrow: a fresh counter name, and state version 1 on disk
         * at once, so that deleting the file later looks like what it is. */
        if ((ret = spm_random(g_me.escrow_id, sizeof(g_me.escrow_id))) < 0)
            goto out;
        uint64_t counter = 0;
        uint8_t tag[32];
        if ((ret = spm_counter_read(g_me.escrow_id, &counter, tag)) < 0) {
            me_log("cannot read the platform's monotonic counter");
            goto out;
        }
        if (counter != 0) {
            ret = -EEXIST; /* 128 random bits met an existing counter */
            goto out;
        }
        g_me.version = 0;
        memset(g_me.state_digest, 0, sizeof(g_me.state_digest));
        if ((ret = persist()) < 0)
            goto out;
        result.fresh = 1;
        me_log("created a new, empty escrow");
    } else {
        text = malloc(sealed_size);
        if (!text) {
            ret = -ENOMEM;
            goto out;
        }
        const uint8_t *aad = NULL;
        size_t aad_size = 0;
        struct me_state_header header;
        ret = spm_unseal(sealed, sealed_size, text, sealed_size, &text_size, &aad, &aad_size);
        if (ret < 0 || aad_size != sizeof(header)) {
            me_log("the escrow state does not unseal: it is corrupt, or was sealed by another "
                   "Migration Enclave build or on another platform");
            ret = -EBADMSG;
            goto out;
        }
        memcpy(&header, aad, sizeof(header));
        /* Format 2 entries are format 3 entries without the hand-over
         * fields (a prefix): read them extended with zeros. */
        size_t entry_size =
            header.format == ME_STATE_FORMAT_2 ? ME_STATE_ENTRY_SIZE_V2 : sizeof(struct me_entry);
        if (header.magic != ME_STATE_MAGIC ||
            (header.format != ME_STATE_FORMAT && header.format != ME_STATE_FORMAT_2) ||
            header.entry_count > ME_MAX_ENTRIES ||
            text_size != (size_t)header.entry_count * entry_size) {
            me_log("the escrow state unseals but its layout is not this ME's");
            ret = -EBADMSG;
            goto out;
        }
        for (uint32_t i = 0; i < header.entry_count; i++) {
            memset(&g_me.entries[i], 0, sizeof(struct me_entry));
            memcpy(&g_me.entries[i], text + (size_t)i * entry_size, entry_size);
            uint32_t state = g_me.entries[i].state;
            bool known =
                state == ENTRY_ESCROWED || state == ENTRY_CONSUMED || state == ENTRY_CANCELLED;
            if (header.format == ME_STATE_FORMAT)
                known = known || state == ENTRY_LEAVING || state == ENTRY_LEFT ||
                        state == ENTRY_ABORTED;
            if (!known) {
                me_log("the escrow state holds an entry in an unknown state");
                ret = -EBADMSG;
                goto out;
            }
        }
        memcpy(g_me.escrow_id, header.escrow_id, sizeof(g_me.escrow_id));
        uint64_t counter = 0;
        uint8_t tag[32], digest[32];
        if ((ret = spm_counter_read(g_me.escrow_id, &counter, tag)) < 0) {
            me_log("cannot read the platform's monotonic counter");
            goto out;
        }
        spm_sha256(sealed, sealed_size, digest);
        if (header.version == counter) {
            /* The counter's tag names the one state it vouches for at this
             * version: another state with the same number was written by
             * another copy of this escrow (or is an older copy that reached
             * it on another branch). */
            if (spm_ct_equal(digest, tag, 32) != 0) {
                me_log2("the escrow state is version ", header.version,
                        " as the platform's monotonic counter says, but it is not the state the "
                        "counter vouches for: rollback or a second copy of this escrow state; "
                        "refusing it",
                        0, NULL);
                ret = -ESTALE;
                goto out;
            }
        } else if (header.version != 0 && header.version - 1 == counter) {
            /* Written, then the process died before the counter moved: the
             * reply was never sent, but the state is the newest -- if it
             * follows the state the counter vouches for. A second copy's
             * write at the same number does not. */
            if (spm_ct_equal(header.prev_digest, tag, 32) != 0) {
                me_log2("the escrow state is version ", header.version,
                        " but does not follow the state the platform's monotonic counter vouches "
                        "for at ",
                        counter, ": rollback or a second copy of this escrow state; refusing it");
                ret = -ESTALE;
                goto out;
            }
            uint64_t value = 0;
            if ((ret = spm_counter_increment(g_me.escrow_id, digest, &value)) < 0) {
                me_log("cannot advance the platform's monotonic counter");
                goto out;
            }
            if (value != header.version) {
                me_log("the platform counter moved while starting: another copy of this "
                       "escrow state is in use");
                ret = -ESTALE;
                goto out;
            }
            me_log2("completed the interrupted update to version ", header.version, "", 0, NULL);
        } else if (header.version < counter) {
            me_log2("ROLLBACK: the escrow state is version ", header.version,
                    " but the platform's monotonic counter is at ", counter,
                    ": this is an older copy of the state; refusing it");
            ret = -ESTALE;
            goto out;
        } else {
            me_log2("the escrow state is version ", header.version,
                    " but the platform's monotonic counter is only at ", counter,
                    " (was the platform's counter store reset or replaced?); refusing it");
            ret = -ESTALE;
            goto out;
        }
        memcpy(g_me.state_digest, digest, sizeof(g_me.state_digest));
        g_me.version = header.version;
        result.entry_count = header.entry_count;
    }
    result.version = g_me.version;
    memcpy(result.escrow_id, g_me.escrow_id, sizeof(result.escrow_id));
    memcpy(out, &result, sizeof(result));
    *out_size = sizeof(result);
    g_me.initialized = true;
    ret = 0;
out:
    if (ret < 0 && !g_me.initialized) /* a second INIT must not touch the live table */
        spm_wipe(g_me.entries, sizeof(g_me.entries));
    if (text) {
        spm_wipe(text, sealed_size);
        free(text);
    }
    spm_spin_unlock(&g_me.lock);
    return ret;
}

static int e_handle(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                    size_t *out_size)
{
    struct spm_me_message_header h;
    spm_spin_lock(&g_me.lock);
    int ret;
    /* A failed ME answers nothing: spmd sees -ENOTRECOVERABLE and exits so
     * that it is restarted and INIT checks the state against the counter. */
    if (!g_me.initialized)
        ret = -EAGAIN;
    else if (g_me.failed)
        ret = -ENOTRECOVERABLE;
    else if (trts_me_check_header(in, in_size, &h) < 0)
        ret = me_reply_error(-EPROTO, out, out_capacity, out_size);
    else if (h.type == SPM_ME_MSG_TARGET_INFO)
        ret = handle_target_info(&h, out, out_capacity, out_size);
    else if (h.type == SPM_ME_MSG_HELLO)
        ret = handle_hello(in, &h, out, out_capacity, out_size);
    else if (h.type == SPM_ME_MSG_SEALED)
        ret = handle_sealed(in, in_size, out, out_capacity, out_size);
    else if (h.type >= SPM_ME_MSG_PEER_OPEN && h.type <= SPM_ME_MSG_PEER_LIST)
        ret = me_peer_handle(&h, in, in_size, out, out_capacity, out_size);
    else
        ret = me_reply_error(-EPROTO, out, out_capacity, out_size);
    spm_spin_unlock(&g_me.lock);
    return ret;
}

const struct spm_ecall_entry spm_app_ecalls[] = {
    [SPM_ME_ECALL_INIT] = {e_init},
    [SPM_ME_ECALL_HANDLE] = {e_handle},
};
const uint32_t spm_app_ecall_count = 2;
