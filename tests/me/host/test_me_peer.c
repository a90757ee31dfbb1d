/* Two Migration Enclaves on two simulated platforms, each in a real spmd,
 * with this test as the untrusted relay between their local sockets (what
 * the two daemons do over TLS). It runs the remote attestation and the
 * two-phase key hand-over of me_abi.h and every way the relay, a crash or
 * a wrong peer can disturb them: a lost TRANSFER or TRANSFER_ACK settled by
 * RESOLVE, a third ME trying to resolve, spmd killed on either side at the
 * worst moment, peer MEs of another signer, debug MEs, a platform from
 * another provisioning CA, and altered, truncated or replayed sealed
 * messages. After each refusal the escrow state is checked unchanged
 * through what the MEs answer (PEER_LIST, RELEASE by the owner enclave).
 * argv: spmd me fake-me-other-signer fake-me-debug y pinned-ca-dir
 * fake-me-old-svn fake-me-other-product */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "me_test_abi.h"
#include "platform/sim/sim.h"
#include "spm/urts.h"
#include "spmd_child.h"

static const char *g_spmd_exe, *g_me, *g_fake_other, *g_fake_debug, *g_y, *g_pinned_ca,
    *g_fake_old_svn, *g_fake_other_product;
static char g_dir[256];

/* One host: a platform, an spmd and its ME. */
struct host {
    const char *name;
    char platform[320], state[320], socket[320], log[320];
    const char *image;
    const char *extra; /* one extra spmd argument, or NULL */
    struct spm_test_spmd spmd;
};

/* S and D are the migration's ends, T a third host, X a platform whose
 * attestation key comes from another provisioning CA. */
static struct host g_s = {.name = "s"}, g_d = {.name = "d"}, g_t = {.name = "t"},
                   g_x = {.name = "x"}, g_f = {.name = "f"};

static void host_paths(struct host *h, const char *platform_name, const char *state_name)
{
    snprintf(h->platform, sizeof(h->platform), "%s/platform-%s", g_dir, platform_name);
    snprintf(h->state, sizeof(h->state), "%s/state-%s", g_dir, state_name);
    snprintf(h->socket, sizeof(h->socket), "%s/run-%s/spmd.sock", g_dir, state_name);
    snprintf(h->log, sizeof(h->log), "%s/spmd-%s.log", g_dir, state_name);
}

static void host_start(struct host *h)
{
    int ret = spm_test_spmd_start(g_spmd_exe, h->platform, h->state, h->socket,
                                  h->image ? h->image : g_me, h->extra, h->log, &h->spmd);
    if (ret != 0)
        fail_msg("spmd %s did not start (%d); see %s", h->name, ret, h->log);
}

static int host_stop(struct host *h, int sig)
{
    if (h->spmd.pid <= 0)
        return -1;
    return spm_test_spmd_stop(&h->spmd, sig);
}

/* ---- Talking to an ME as its daemon does: one message, one reply ---- */

struct msg {
    uint8_t data[70000];
    size_t size;
};

static int read_n(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t got = read(fd, p, n);
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Sends `in` to h's spmd and reads the reply into *out. */
static void exchange(struct host *h, const struct msg *in, struct msg *out)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    assert_true(strlen(h->socket) < sizeof(addr.sun_path));
    strcpy(addr.sun_path, h->socket);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(write(fd, in->data, in->size), (ssize_t)in->size);
    struct spm_me_message_header rh;
    assert_int_equal(read_n(fd, (uint8_t *)&rh, sizeof(rh)), 0);
    assert_true(sizeof(rh) + rh.size <= sizeof(out->data));
    memcpy(out->data, &rh, sizeof(rh));
    assert_int_equal(read_n(fd, out->data + sizeof(rh), rh.size), 0);
    out->size = sizeof(rh) + rh.size;
    close(fd);
}

static void build(struct msg *m, uint16_t type, const void *body, size_t size)
{
    struct spm_me_message_header h = {
        .magic = SPM_ME_MAGIC, .version = SPM_ME_VERSION, .type = type, .size = (uint32_t)size};
    memcpy(m->data, &h, sizeof(h));
    if (size)
        memcpy(m->data + sizeof(h), body, size);
    m->size = sizeof(h) + size;
}

static uint16_t type_of(const struct msg *m)
{
    return ((const struct spm_me_message_header *)m->data)->type;
}

static const uint8_t *body_of(const struct msg *m)
{
    return m->data + sizeof(struct spm_me_message_header);
}

/* The status of an ERROR reply, or 0 for any other message. */
static int error_of(const struct msg *m)
{
    if (type_of(m) != SPM_ME_MSG_ERROR)
        return 0;
    struct spm_me_error e;
    memcpy(&e, body_of(m), sizeof(e));
    return e.status;
}

static struct spm_me_peer_status status_of(const struct msg *m)
{
    struct spm_me_peer_status st;
    assert_int_equal(error_of(m), 0);
    assert_int_equal(type_of(m), SPM_ME_MSG_PEER_STATUS);
    assert_int_equal(m->size, sizeof(struct spm_me_message_header) + sizeof(st));
    memcpy(&st, body_of(m), sizeof(st));
    return st;
}

static struct msg g_a, g_b, g_c, g_saved; /* large: kept off the stack */

/* Runs OPEN/OFFER/ACCEPT/CONFIRM/READY between s and d; 0 and *session
 * (S's id) when both attested each other, else the refusal's errno. */
static int handshake(struct host *s, struct host *d, uint64_t *session)
{
    struct spm_me_peer_open open = {0};
    build(&g_a, SPM_ME_MSG_PEER_OPEN, &open, sizeof(open));
    exchange(s, &g_a, &g_b); /* OFFER */
    if (error_of(&g_b))
        return error_of(&g_b);
    assert_int_equal(type_of(&g_b), SPM_ME_MSG_PEER_OFFER);
    exchange(d, &g_b, &g_a); /* ACCEPT */
    if (error_of(&g_a))
        return error_of(&g_a);
    assert_int_equal(type_of(&g_a), SPM_ME_MSG_PEER_ACCEPT);
    exchange(s, &g_a, &g_b); /* CONFIRM */
    if (error_of(&g_b))
        return error_of(&g_b);
    assert_int_equal(type_of(&g_b), SPM_ME_MSG_PEER_CONFIRM);
    exchange(d, &g_b, &g_a); /* READY */
    if (error_of(&g_a))
        return error_of(&g_a);
    assert_int_equal(type_of(&g_a), SPM_ME_MSG_PEER_SEALED);
    exchange(s, &g_a, &g_b); /* STATUS */
    if (error_of(&g_b))
        return error_of(&g_b);
    struct spm_me_peer_status st = status_of(&g_b);
    assert_int_equal(st.status, 0);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_NONE);
    assert_true(st.session != 0);
    *session = st.session;
    return 0;
}

static uint64_t session_between(struct host *s, struct host *d)
{
    uint64_t session = 0;
    assert_int_equal(handshake(s, d, &session), 0);
    return session;
}

/* Local HANDOVER or RESOLVE to S; the reply in *out. */
static void ask(struct host *s, uint16_t type, uint64_t session,
                const struct spm_me_checkpoint_ref *ref, struct msg *out)
{
    struct spm_me_peer_checkpoint req = {.session = session, .ref = *ref};
    build(&g_c, type, &req, sizeof(req));
    exchange(s, &g_c, out);
}

/* The LEAVING entries S reports. */
static uint32_t leaving_count(struct host *h, struct spm_me_peer_leaving *first)
{
    build(&g_c, SPM_ME_MSG_PEER_LIST, NULL, 0);
    struct msg *reply = malloc(sizeof(*reply));
    assert_non_null(reply);
    exchange(h, &g_c, reply);
    assert_int_equal(type_of(reply), SPM_ME_MSG_PEER_LIST);
    struct spm_me_peer_list list;
    memcpy(&list, body_of(reply), sizeof(list));
    assert_int_equal(reply->size, sizeof(struct spm_me_message_header) + sizeof(list) +
                                      (size_t)list.count * sizeof(struct spm_me_peer_leaving));
    if (first && list.count)
        memcpy(first, body_of(reply) + sizeof(list), sizeof(*first));
    free(reply);
    return list.count;
}

/* ---- The owner enclave (test enclave y) on a host ---- */

static int owner_call(struct host *h, uint32_t id, const void *in, size_t in_size, void *out,
                      size_t capacity)
{
    setenv(SPM_SPMD_SOCKET_ENV, h->socket, 1);
    struct spm_enclave_options o = {.platform_dir = h->platform};
    struct spm_enclave *e = NULL;
    assert_int_equal(spm_enclave_load(g_y, &o, &e), 0);
    uint64_t session = 0;
    size_t ignored = 0;
    int ret =
        spm_enclave_ecall(e, ME_TEST_ECALL_OPEN, NULL, 0, &session, sizeof(session), &ignored, 0);
    if (ret == 0)
        ret = spm_enclave_ecall(e, id, in, in_size, out, capacity, &ignored, 0);
    spm_enclave_destroy(e);
    return ret;
}

static struct spm_me_checkpoint_ref ref_of(uint8_t lineage, uint64_t generation)
{
    struct spm_me_checkpoint_ref ref;
    memset(&ref, 0, sizeof(ref));
    memset(ref.lineage_id, lineage, sizeof(ref.lineage_id));
    memset(ref.checkpoint_id, (int)(lineage ^ generation), sizeof(ref.checkpoint_id));
    ref.generation = generation;
    for (size_t i = 0; i < sizeof(ref.header_digest); i++)
        ref.header_digest[i] = (uint8_t)(lineage * 13 + generation + i);
    return ref;
}

/* The owner escrows a fresh key for ref on h. */
static void escrow_on(struct host *h, const struct spm_me_checkpoint_ref *ref, uint8_t key[32])
{
    int fd = open("/dev/urandom", O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, key, 32), 32);
    close(fd);
    struct spm_me_escrow req = {.ref = *ref};
    memcpy(req.key, key, 32);
    assert_int_equal(owner_call(h, ME_TEST_ECALL_ESCROW, &req, sizeof(req), NULL, 0), 0);
}

/* RELEASE by the owner on h: 0 with the key in got, or the ME's verdict. */
static int release_on(struct host *h, const struct spm_me_checkpoint_ref *ref, uint8_t got[32])
{
    memset(got, 0, 32);
    return owner_call(h, ME_TEST_ECALL_RELEASE, ref, sizeof(*ref), got, 32);
}

static int commit_on(struct host *h, const struct spm_me_checkpoint_ref *ref, uint8_t lease)
{
    struct spm_me_commit req = {.ref = *ref};
    memset(req.lease, lease, sizeof(req.lease));
    return owner_call(h, ME_TEST_ECALL_COMMIT, &req, sizeof(req), NULL, 0);
}

static int cancel_on(struct host *h, const struct spm_me_checkpoint_ref *ref)
{
    return owner_call(h, ME_TEST_ECALL_CANCEL, ref, sizeof(*ref), NULL, 0);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- Tests ---- */

static void test_handover_then_release_on_destination(void **state)
{
    (void)state;
    struct spm_me_checkpoint_ref ref = ref_of(0x21, 1);
    uint8_t key[32], got[32];
    escrow_on(&g_s, &ref, key);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t session = session_between(&g_s, &g_d);
    double handshake_ms = ms_since(&t0);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_a); /* TRANSFER */
    assert_int_equal(error_of(&g_a), 0);
    assert_int_equal(type_of(&g_a), SPM_ME_MSG_PEER_SEALED);
    /* Nothing of K crosses the relay in the clear. */
    assert_null(memmem(g_a.data, g_a.size, key, 32));
    /* LEAVING: the source may not release it while the hand-over runs. */
    assert_int_equal(release_on(&g_s, &ref, got), -EBUSY);
    assert_int_equal(commit_on(&g_s, &ref, 1), -EBUSY);
    assert_int_equal(cancel_on(&g_s, &ref), -EBUSY);
    struct spm_me_peer_leaving leaving;
    assert_int_equal(leaving_count(&g_s, &leaving), 1);
    assert_memory_equal(&leaving.ref, &ref, sizeof(ref));

    exchange(&g_d, &g_a, &g_b); /* TRANSFER_ACK */
    assert_int_equal(type_of(&g_b), SPM_ME_MSG_PEER_SEALED);
    exchange(&g_s, &g_b, &g_a); /* STATUS */
    double handover_ms = ms_since(&t0);
    struct spm_me_peer_status st = status_of(&g_a);
    assert_int_equal(st.status, 0);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_HANDED_OVER);
    assert_int_equal(st.session, session);
    assert_memory_equal(st.handover_id, leaving.handover_id, 16);
    assert_memory_equal(st.peer_platform_id, leaving.peer_platform_id, 32);
    assert_int_equal(leaving_count(&g_s, NULL), 0);
    print_message("ME to ME: handshake (2 quotes, 2 verifications) %.2f ms, hand-over (2 "
                  "persists) %.2f ms\n",
                  handshake_ms, handover_ms);

    /* The restored enclave on D gets K from D's ME, exactly once. */
    assert_int_equal(release_on(&g_d, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    assert_int_equal(commit_on(&g_d, &ref, 7), 0);
    assert_int_equal(release_on(&g_d, &ref, got), -EALREADY);
    /* The source handed its one copy away. */
    assert_int_equal(release_on(&g_s, &ref, got), -EALREADY);
    assert_int_equal(commit_on(&g_s, &ref, 1), -EALREADY);
    assert_int_equal(cancel_on(&g_s, &ref), -EALREADY);
    /* Asking again is answered from the table: handed over. */
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &ref, &g_a);
    st = status_of(&g_a);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_HANDED_OVER);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_a);
    assert_int_equal(error_of(&g_a), -EALREADY);
}

static void test_lost_transfer_resolved_as_aborted(void **state)
{
    (void)state;
    struct spm_me_checkpoint_ref ref = ref_of(0x22, 1);
    uint8_t key[32], got[32];
    escrow_on(&g_s, &ref, key);
    uint64_t session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_saved); /* TRANSFER, dropped */
    assert_int_equal(type_of(&g_saved), SPM_ME_MSG_PEER_SEALED);
    assert_int_equal(release_on(&g_s, &ref, got), -EBUSY);

    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &ref, &g_a); /* RESOLVE */
    assert_int_equal(type_of(&g_a), SPM_ME_MSG_PEER_SEALED);
    exchange(&g_d, &g_a, &g_b); /* RESOLVED */
    exchange(&g_s, &g_b, &g_a);
    struct spm_me_peer_status st = status_of(&g_a);
    assert_int_equal(st.status, 0);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_KEPT);
    /* Back in escrow: the source restores in place. */
    assert_int_equal(leaving_count(&g_s, NULL), 0);
    assert_int_equal(release_on(&g_s, &ref, got), 0);
    assert_memory_equal(got, key, 32);

    /* The dropped TRANSFER, delivered late on its session, is refused. */
    exchange(&g_d, &g_saved, &g_a);
    assert_int_equal(error_of(&g_a), -EPROTO);
    assert_int_equal(release_on(&g_d, &ref, got), -ENOENT);
    /* A new hand-over of the same checkpoint is refused by D's ABORTED
     * marker: the source may be running it. It stays LEAVING until
     * resolved (a refusal alone does not give K back). */
    session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b);
    exchange(&g_s, &g_b, &g_a);
    st = status_of(&g_a);
    assert_int_equal(st.status, -ESTALE);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_PENDING);
    assert_int_equal(release_on(&g_d, &ref, got), -ENOENT);
    assert_int_equal(release_on(&g_s, &ref, got), -EBUSY);
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b);
    exchange(&g_s, &g_b, &g_a);
    st = status_of(&g_a);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_KEPT);
    assert_int_equal(release_on(&g_s, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    assert_int_equal(commit_on(&g_s, &ref, 3), 0);
}

static void test_lost_ack_resolved_as_held(void **state)
{
    (void)state;
    struct spm_me_checkpoint_ref ref = ref_of(0x23, 1);
    uint8_t key[32], got[32];
    escrow_on(&g_s, &ref, key);
    uint64_t session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b); /* TRANSFER_ACK, dropped */
    assert_int_equal(type_of(&g_b), SPM_ME_MSG_PEER_SEALED);
    assert_int_equal(release_on(&g_s, &ref, got), -EBUSY);

    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b);
    exchange(&g_s, &g_b, &g_a);
    struct spm_me_peer_status st = status_of(&g_a);
    assert_int_equal(st.status, 0);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_HANDED_OVER);
    assert_int_equal(leaving_count(&g_s, NULL), 0);
    assert_int_equal(release_on(&g_s, &ref, got), -EALREADY);
    assert_int_equal(cancel_on(&g_s, &ref), -EALREADY);
    assert_int_equal(release_on(&g_d, &ref, got), 0);
    assert_memory_equal(got, key, 32);
}

static void test_resolve_through_a_third_me_refused(void **state)
{
    (void)state;
    struct spm_me_checkpoint_ref ref = ref_of(0x24, 1);
    uint8_t key[32], got[32];
    escrow_on(&g_s, &ref, key);
    uint64_t to_d = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, to_d, &ref, &g_saved); /* held back */
    /* T never saw it and would say "aborted": S must not ask it. */
    uint64_t to_t = session_between(&g_s, &g_t);
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, to_t, &ref, &g_a);
    assert_int_equal(error_of(&g_a), -EACCES);
    /* Nor hand the same checkpoint to T while it may be on its way to D. */
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, to_t, &ref, &g_a);
    assert_int_equal(error_of(&g_a), -EBUSY);
    assert_int_equal(leaving_count(&g_s, NULL), 1);
    assert_int_equal(release_on(&g_s, &ref, got), -EBUSY);

    /* D gets it late, and the hand-over completes. */
    exchange(&g_d, &g_saved, &g_b);
    exchange(&g_s, &g_b, &g_a);
    struct spm_me_peer_status st = status_of(&g_a);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_HANDED_OVER);
    assert_int_equal(release_on(&g_d, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    assert_int_equal(release_on(&g_t, &ref, got), -ENOENT);
}

static void test_source_killed_while_leaving(void **state)
{
    (void)state;
    struct spm_me_checkpoint_ref ref = ref_of(0x25, 1);
    uint8_t key[32], got[32];
    escrow_on(&g_s, &ref, key);
    uint64_t session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_saved); /* LEAVING persisted */
    assert_int_equal(type_of(&g_saved), SPM_ME_MSG_PEER_SEALED);
    assert_true(WIFSIGNALED(host_stop(&g_s, SIGKILL)));
    host_start(&g_s);
    /* The session died with spmd; the hand-over did not. */
    struct spm_me_peer_leaving leaving;
    assert_int_equal(leaving_count(&g_s, &leaving), 1);
    assert_memory_equal(&leaving.ref, &ref, sizeof(ref));
    assert_int_equal(release_on(&g_s, &ref, got), -EBUSY);
    exchange(&g_d, &g_saved, &g_a); /* the old TRANSFER's session is fine at D */
    exchange(&g_s, &g_a, &g_b);     /* but its ACK reaches a restarted S */
    assert_int_equal(error_of(&g_b), -ECONNRESET);
    /* A resolve without a session cannot settle a LEAVING entry. */
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &ref, &g_a);
    assert_int_equal(error_of(&g_a), -ECONNRESET);

    session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b);
    exchange(&g_s, &g_b, &g_a);
    struct spm_me_peer_status st = status_of(&g_a);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_HANDED_OVER);
    assert_memory_equal(st.handover_id, leaving.handover_id, 16);
    assert_int_equal(leaving_count(&g_s, NULL), 0);
    assert_int_equal(release_on(&g_d, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    assert_int_equal(release_on(&g_s, &ref, got), -EALREADY);

    /* The same crash before D got anything: RESOLVE gives K back. */
    struct spm_me_checkpoint_ref second = ref_of(0x26, 1);
    escrow_on(&g_s, &second, key);
    session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &second, &g_saved);
    assert_true(WIFSIGNALED(host_stop(&g_s, SIGKILL)));
    host_start(&g_s);
    assert_int_equal(leaving_count(&g_s, NULL), 1);
    session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &second, &g_a);
    exchange(&g_d, &g_a, &g_b);
    exchange(&g_s, &g_b, &g_a);
    st = status_of(&g_a);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_KEPT);
    assert_int_equal(release_on(&g_s, &second, got), 0);
    assert_memory_equal(got, key, 32);
    /* The TRANSFER from before the crash, delivered now on its session
     * (still open at D): D's ABORTED marker refuses it (its ACK is
     * sealed; the restarted S no longer knows that session). */
    exchange(&g_d, &g_saved, &g_a);
    assert_int_equal(type_of(&g_a), SPM_ME_MSG_PEER_SEALED);
    assert_int_equal(release_on(&g_d, &second, got), -ENOENT);
    exchange(&g_s, &g_a, &g_b);
    assert_int_equal(error_of(&g_b), -ECONNRESET);
    assert_int_equal(release_on(&g_s, &second, got), 0);
}

static void test_destination_killed_after_storing(void **state)
{
    (void)state;
    struct spm_me_checkpoint_ref ref = ref_of(0x27, 1);
    uint8_t key[32], got[32];
    escrow_on(&g_s, &ref, key);
    uint64_t session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b); /* stored durably; the ACK is lost with D */
    assert_true(WIFSIGNALED(host_stop(&g_d, SIGKILL)));
    host_start(&g_d);
    assert_int_equal(leaving_count(&g_s, NULL), 1);
    /* S's session with the dead D is useless: D no longer knows it. */
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b);
    assert_int_equal(error_of(&g_b), -ECONNRESET);
    session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b);
    exchange(&g_s, &g_b, &g_a);
    struct spm_me_peer_status st = status_of(&g_a);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_HANDED_OVER);
    assert_int_equal(release_on(&g_s, &ref, got), -EALREADY);
    assert_int_equal(release_on(&g_d, &ref, got), 0);
    assert_memory_equal(got, key, 32);
}

/* Starts spmd with `image` (NULL: the genuine ME) as host h on a fresh
 * state, runs `check` with it, then stops it. */
static void with_peer(struct host *h, const char *image, const char *extra,
                      void (*check)(struct host *))
{
    /* A fresh escrow each time: another ME build cannot (and must not)
     * open the state another one sealed. */
    char command[400];
    snprintf(command, sizeof(command), "rm -rf '%s'", h->state);
    assert_int_equal(system(command), 0);
    h->image = image;
    h->extra = extra;
    host_start(h);
    check(h);
    host_stop(h, SIGTERM);
    h->image = NULL;
    h->extra = NULL;
}

static struct spm_me_checkpoint_ref g_policy_ref;
static uint8_t g_policy_key[32];

/* S and D keep their escrow exactly as it was after a refused handshake. */
static void assert_nothing_moved(void)
{
    uint8_t got[32];
    assert_int_equal(leaving_count(&g_s, NULL), 0);
    assert_int_equal(release_on(&g_s, &g_policy_ref, got), 0);
    assert_memory_equal(got, g_policy_key, 32);
}

static void peer_as_destination(struct host *h, int expected)
{
    uint64_t session = 0;
    assert_int_equal(handshake(&g_s, h, &session), expected);
    assert_nothing_moved();
}

static void other_signer_as_destination(struct host *h)
{
    peer_as_destination(h, -EACCES);
}

static void debug_as_destination(struct host *h)
{
    peer_as_destination(h, -EPERM);
}

static void other_ca_as_destination(struct host *h)
{
    peer_as_destination(h, -EKEYREJECTED);
}

/* D's check of quote_S: a source S the destination must refuse at CONFIRM. */
static void peer_as_source(struct host *h, int expected)
{
    uint64_t session = 0;
    int ret = handshake(h, &g_d, &session);
    assert_int_equal(ret, expected);
    assert_int_equal(leaving_count(&g_d, NULL), 0);
}

static void debug_as_source(struct host *h)
{
    peer_as_source(h, -EPERM);
}

static void other_ca_as_source(struct host *h)
{
    peer_as_source(h, -EKEYREJECTED);
}

/* An ME signed by another key refuses the genuine D itself (its own
 * MRSIGNER is its policy), so D never sees its CONFIRM. */
static void other_signer_as_source(struct host *h)
{
    peer_as_source(h, -EACCES);
}

/* The ME's own signer, but an older ISVSVN or another ISVPRODID: such an
 * ME accepts the genuine D (whose SVN is not lower and whose product is
 * the one it checks for), and D refuses it at CONFIRM; as a destination,
 * S refuses its ACCEPT. */
static void same_signer_as_destination(struct host *h)
{
    peer_as_destination(h, -EACCES);
}

static void same_signer_as_source(struct host *h)
{
    peer_as_source(h, -EACCES);
}

static void allowed_debug_destination(struct host *h)
{
    uint64_t session = 0;
    assert_int_equal(handshake(&g_s, h, &session), 0);
}

static void test_wrong_peers_refused(void **state)
{
    (void)state;
    g_policy_ref = ref_of(0x28, 1);
    escrow_on(&g_s, &g_policy_ref, g_policy_key);
    with_peer(&g_f, g_fake_other, NULL, other_signer_as_destination);
    with_peer(&g_f, g_fake_other, NULL, other_signer_as_source);
    with_peer(&g_f, g_fake_debug, NULL, debug_as_destination);
    with_peer(&g_f, g_fake_debug, NULL, debug_as_source);
    with_peer(&g_f, g_fake_old_svn, NULL, same_signer_as_destination);
    with_peer(&g_f, g_fake_old_svn, NULL, same_signer_as_source);
    with_peer(&g_f, g_fake_other_product, NULL, same_signer_as_destination);
    with_peer(&g_f, g_fake_other_product, NULL, same_signer_as_source);
    with_peer(&g_x, NULL, NULL, other_ca_as_destination);
    with_peer(&g_x, NULL, NULL, other_ca_as_source);
    /* A debug ME is refused for the policy's sake: a source whose spmd
     * allows debug enclaves accepts it. */
    host_stop(&g_s, SIGTERM);
    g_s.extra = "--allow-debug";
    host_start(&g_s);
    with_peer(&g_f, g_fake_debug, NULL, allowed_debug_destination);
    host_stop(&g_s, SIGTERM);
    g_s.extra = NULL;
    host_start(&g_s);
    /* The genuine pair still works. */
    uint64_t session = session_between(&g_s, &g_d);
    assert_true(session != 0);
    assert_nothing_moved();
}

static void test_tampered_handshake_refused(void **state)
{
    (void)state;
    struct spm_me_peer_open open = {0};
    size_t h = sizeof(struct spm_me_message_header);
    uint64_t session = 0;
    /* A man in the middle's key in the OFFER: D's quote binds what it
     * saw, which is not what S sent. */
    build(&g_a, SPM_ME_MSG_PEER_OPEN, &open, sizeof(open));
    exchange(&g_s, &g_a, &g_b);
    g_b.data[h + offsetof(struct spm_me_peer_offer, nonce)] ^= 1;
    exchange(&g_d, &g_b, &g_a);
    assert_int_equal(type_of(&g_a), SPM_ME_MSG_PEER_ACCEPT);
    exchange(&g_s, &g_a, &g_b);
    assert_int_equal(error_of(&g_b), -EBADMSG);
    /* That half-open session is gone. */
    exchange(&g_s, &g_a, &g_b);
    assert_int_equal(error_of(&g_b), -ECONNRESET);
    /* D's nonce or key altered in the ACCEPT: same. */
    for (size_t at = offsetof(struct spm_me_peer_accept, nonce);
         at <= offsetof(struct spm_me_peer_accept, public_key) + 10; at += 42) {
        build(&g_a, SPM_ME_MSG_PEER_OPEN, &open, sizeof(open));
        exchange(&g_s, &g_a, &g_b);
        exchange(&g_d, &g_b, &g_a);
        g_a.data[h + at] ^= 4;
        exchange(&g_s, &g_a, &g_b);
        assert_int_equal(error_of(&g_b), -EBADMSG);
    }
    /* The quote altered: it no longer verifies. */
    build(&g_a, SPM_ME_MSG_PEER_OPEN, &open, sizeof(open));
    exchange(&g_s, &g_a, &g_b);
    exchange(&g_d, &g_b, &g_a);
    g_a.data[h + sizeof(struct spm_me_peer_accept) + 48 + 70] ^= 1; /* its MRENCLAVE */
    exchange(&g_s, &g_a, &g_b);
    assert_int_equal(error_of(&g_b), -EKEYREJECTED);
    /* A truncated ACCEPT. */
    build(&g_a, SPM_ME_MSG_PEER_OPEN, &open, sizeof(open));
    exchange(&g_s, &g_a, &g_b);
    exchange(&g_d, &g_b, &g_a);
    ((struct spm_me_message_header *)g_a.data)->size -= 9;
    g_a.size -= 9;
    exchange(&g_s, &g_a, &g_b);
    assert_int_equal(error_of(&g_b), -EBADMSG);
    /* quote_S altered in the CONFIRM: D refuses it. */
    build(&g_a, SPM_ME_MSG_PEER_OPEN, &open, sizeof(open));
    exchange(&g_s, &g_a, &g_b);
    exchange(&g_d, &g_b, &g_a);
    exchange(&g_s, &g_a, &g_b);
    assert_int_equal(type_of(&g_b), SPM_ME_MSG_PEER_CONFIRM);
    g_b.data[h + sizeof(struct spm_me_peer_confirm) + 48 + 320] ^= 1; /* its REPORTDATA */
    exchange(&g_d, &g_b, &g_a);
    assert_int_equal(error_of(&g_a), -EKEYREJECTED);
    /* Untouched, it works. */
    assert_int_equal(handshake(&g_s, &g_d, &session), 0);
}

static void test_tampered_sealed_messages_refused(void **state)
{
    (void)state;
    struct spm_me_checkpoint_ref ref = ref_of(0x29, 1);
    uint8_t key[32], got[32];
    escrow_on(&g_s, &ref, key);
    size_t h = sizeof(struct spm_me_message_header);
    struct {
        const char *what;
        size_t at; /* byte to flip, or SIZE_MAX to truncate */
    } cases[] = {
        {"ciphertext", 0},
        {"tag", h + offsetof(struct spm_me_peer_sealed, tag)},
        {"sequence", h + offsetof(struct spm_me_peer_sealed, sequence)},
        {"truncated", SIZE_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t session = session_between(&g_s, &g_d);
        ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_a);
        assert_int_equal(type_of(&g_a), SPM_ME_MSG_PEER_SEALED);
        if (cases[i].at == SIZE_MAX) {
            ((struct spm_me_message_header *)g_a.data)->size -= 1;
            g_a.size -= 1;
        } else {
            g_a.data[cases[i].at ? cases[i].at : g_a.size - 1] ^= 0x20;
        }
        exchange(&g_d, &g_a, &g_b);
        int err = error_of(&g_b);
        if (err != -EPROTO && err != -EBADMSG && err != -ECONNRESET)
            fail_msg("TRANSFER with altered %s: D answered %d", cases[i].what, err);
        /* Nothing stored; and D closed that session: the same TRANSFER
         * sent again on it finds no session. */
        assert_int_equal(release_on(&g_d, &ref, got), -ENOENT);
        ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_a);
        exchange(&g_d, &g_a, &g_b);
        assert_int_equal(error_of(&g_b), -ECONNRESET);
        assert_int_equal(release_on(&g_d, &ref, got), -ENOENT);
    }
    assert_int_equal(leaving_count(&g_s, NULL), 1); /* still LEAVING: never acknowledged */

    /* A genuine ACK, altered on its way back: S refuses it and stays LEAVING. */
    uint64_t session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b);
    assert_int_equal(type_of(&g_b), SPM_ME_MSG_PEER_SEALED);
    memcpy(&g_saved, &g_b, sizeof(g_saved));
    g_b.data[g_b.size - 3] ^= 1;
    exchange(&g_s, &g_b, &g_a);
    assert_int_equal(error_of(&g_a), -EPROTO);
    assert_int_equal(leaving_count(&g_s, NULL), 1);
    /* S closed the session: the genuine ACK, too late, is not accepted. */
    exchange(&g_s, &g_saved, &g_a);
    assert_int_equal(error_of(&g_a), -ECONNRESET);
    assert_int_equal(release_on(&g_s, &ref, got), -EBUSY);

    /* A replayed message on a live session. */
    session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, session, &ref, &g_a);
    exchange(&g_d, &g_a, &g_b); /* RESOLVED: D holds it (the earlier ACK was genuine) */
    memcpy(&g_saved, &g_b, sizeof(g_saved));
    exchange(&g_s, &g_b, &g_a);
    struct spm_me_peer_status st = status_of(&g_a);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_HANDED_OVER);
    exchange(&g_s, &g_saved, &g_a); /* replayed RESOLVED */
    assert_int_equal(error_of(&g_a), -EPROTO);
    assert_int_equal(release_on(&g_d, &ref, got), 0);
    assert_memory_equal(got, key, 32);
    assert_int_equal(release_on(&g_s, &ref, got), -EALREADY);
}

static void test_local_requests_checked(void **state)
{
    (void)state;
    struct spm_me_checkpoint_ref ref = ref_of(0x2a, 1), unknown = ref_of(0x2b, 1);
    uint8_t key[32];
    escrow_on(&g_s, &ref, key);
    uint64_t session = session_between(&g_s, &g_d);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &unknown, &g_a);
    assert_int_equal(error_of(&g_a), -ENOENT);
    struct spm_me_checkpoint_ref wrong = ref;
    wrong.generation = 2;
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &wrong, &g_a);
    assert_int_equal(error_of(&g_a), -ESTALE);
    wrong = ref;
    wrong.header_digest[5] ^= 1;
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &wrong, &g_a);
    assert_int_equal(error_of(&g_a), -EBADMSG);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session + 1, &ref, &g_a);
    assert_int_equal(error_of(&g_a), -ECONNRESET);
    struct spm_me_peer_open open = {.flags = 1};
    build(&g_a, SPM_ME_MSG_PEER_OPEN, &open, sizeof(open));
    exchange(&g_s, &g_a, &g_b);
    assert_int_equal(error_of(&g_b), -EINVAL);
    /* A resolve of an entry that never left says so at once. */
    ask(&g_s, SPM_ME_MSG_PEER_RESOLVE, 0, &ref, &g_a);
    struct spm_me_peer_status st = status_of(&g_a);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_KEPT);
    /* Re-sending a hand-over to the same destination is the same one. */
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_a);
    struct spm_me_peer_leaving first;
    assert_int_equal(leaving_count(&g_s, &first), 1);
    ask(&g_s, SPM_ME_MSG_PEER_HANDOVER, session, &ref, &g_b); /* the first was lost */
    exchange(&g_d, &g_b, &g_a);
    exchange(&g_s, &g_a, &g_b);
    st = status_of(&g_b);
    assert_int_equal(st.outcome, SPM_ME_PEER_OUTCOME_HANDED_OVER);
    assert_memory_equal(st.handover_id, first.handover_id, 16);
}

/* ---- Fixture ---- */

static int init_platform(const char *dir, const char *ca)
{
    int ret = spm_sim_platform_init(dir, ca);
    if (ret < 0)
        fprintf(stderr, "cannot init platform %s with CA %s: %s\n", dir, ca, strerror(-ret));
    return ret;
}

static int group_setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/spm-me-peer-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    host_paths(&g_s, "s", "s");
    host_paths(&g_d, "d", "d");
    host_paths(&g_t, "t", "t");
    host_paths(&g_x, "x", "x");
    host_paths(&g_f, "t", "f"); /* the fake MEs: T's platform, their own state */
    char other_ca[300];
    snprintf(other_ca, sizeof(other_ca), "%s/other-ca", g_dir);
    if (init_platform(g_s.platform, g_pinned_ca) < 0 ||
        init_platform(g_d.platform, g_pinned_ca) < 0 ||
        init_platform(g_t.platform, g_pinned_ca) < 0 ||
        spm_sim_ca_init(other_ca, "Not the pinned CA") < 0 ||
        init_platform(g_x.platform, other_ca) < 0)
        return -1;
    struct host *started[] = {&g_s, &g_d, &g_t};
    for (int i = 0; i < 3; i++)
        if (spm_test_spmd_start(g_spmd_exe, started[i]->platform, started[i]->state,
                                started[i]->socket, g_me, NULL, started[i]->log,
                                &started[i]->spmd) != 0) {
            fprintf(stderr, "spmd %s did not start; see %s\n", started[i]->name, started[i]->log);
            return -1;
        }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    struct host *all[] = {&g_s, &g_d, &g_t, &g_x, &g_f};
    for (int i = 0; i < 5; i++)
        if (all[i]->spmd.pid > 0) {
            int status = host_stop(all[i], SIGTERM);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "spmd %s exited with status %#x\n", all[i]->name, status);
        }
    if (!getenv("SPM_KEEP_TEST_DIR")) {
        char command[400];
        snprintf(command, sizeof(command), "rm -rf '%s'", g_dir);
        if (system(command) != 0)
            fprintf(stderr, "cannot remove %s\n", g_dir);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr,
                "usage: %s spmd me fake-me-other fake-me-debug y pinned-ca-dir fake-me-old-svn "
                "fake-me-other-product\n",
                argv[0]);
        return 2;
    }
    g_spmd_exe = argv[1];
    g_me = argv[2];
    g_fake_other = argv[3];
    g_fake_debug = argv[4];
    g_y = argv[5];
    g_pinned_ca = argv[6];
    g_fake_old_svn = argv[7];
    g_fake_other_product = argv[8];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handover_then_release_on_destination),
        cmocka_unit_test(test_lost_transfer_resolved_as_aborted),
        cmocka_unit_test(test_lost_ack_resolved_as_held),
        cmocka_unit_test(test_resolve_through_a_third_me_refused),
        cmocka_unit_test(test_source_killed_while_leaving),
        cmocka_unit_test(test_destination_killed_after_storing),
        cmocka_unit_test(test_wrong_peers_refused),
        cmocka_unit_test(test_tampered_handshake_refused),
        cmocka_unit_test(test_tampered_sealed_messages_refused),
        cmocka_unit_test(test_local_requests_checked),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
