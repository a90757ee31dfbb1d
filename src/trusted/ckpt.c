/* The checkpoint engine every enclave carries: the runtime ecalls that
 * export this enclave's state into an encrypted image in untrusted memory
 * (CKPT_*) and import it into a fresh enclave at the same base (RESTORE_*),
 * as checkpoint_abi.h and docs/checkpoint.md describe. No application code
 * takes part. The image format itself (sizes, header validation, chunk
 * encryption and verification) is ckpt_image.c's, which the fuzzer runs.
 *
 * Rules that shape this file:
 *  - The heap and every writable image page are what is being captured or
 *    rewritten, so nothing here allocates, and the small argument structs
 *    are copied through the stack, not through dispatch_app_ecall.
 *  - Keys, the header, the run list and all counters live in the
 *    incarnation pages, which are never captured. During an import the
 *    data pages (.data, .bss, the GOT) hold ciphertext until every chunk is
 *    decrypted: VERIFY and DECRYPT touch only the incarnation, their own
 *    stack, read-only code and data, and the image buffer.
 *  - Plaintext never reaches untrusted memory: each piece is encrypted
 *    from its pages straight into the image buffer in one pass that
 *    authenticates the ciphertext as it computes it, never reading the
 *    buffer back. On import, the ciphertext is authenticated as it is
 *    copied in, over the copy, so the host cannot change it between check
 *    and use.
 *  - Several host threads run the worker ecalls at once on different TCSs;
 *    they share work through atomic counters, and the control ecalls
 *    (BEGIN, END, ABORT) wait until no worker is inside before they change
 *    or wipe what the workers read. */
#include "trts_internal.h"

#include <string.h>

#include "ckpt_image.h"
#include "crypto/crypto.h"
#include "me_client.h"

#define PAGE SGX_PAGE_SIZE

/* Import steps (struct trts_ckpt_state.step). */
#define STEP_NONE    0u
#define STEP_WORK    1u /* VERIFY, then DECRYPT once every chunk verified */
#define STEP_CLOSING 2u /* RESTORE_END running: no more workers */

_Static_assert(sizeof(struct trts_me_session) <= sizeof(((struct trts_ckpt_state *)0)->me_session),
               "ME session fits the engine state");

/* Which checkpoint of which lineage this state is. In .bss, so it is
 * captured: a restored enclave continues the lineage where it left off. */
static struct {
    uint8_t id[16];
    uint64_t generation;
} g_lineage;

static struct trts_ckpt_state *engine(void)
{
    return &trts_incarnation()->ckpt;
}

static struct spm_ckpt_run *run_list(void)
{
    return trts_ckpt_runs()->runs;
}

static struct trts_me_session *me_session(void)
{
    return (struct trts_me_session *)engine()->me_session;
}

/* ---- Threads ---- */

/* Offset of TCS `index`'s thread data page. */
static uint64_t thread_data_offset(uint32_t index)
{
    return ckpt_thread_stack_offset(trts_layout(), index) + trts_layout()->stack_size;
}

static uint64_t *thread_state(uint32_t index)
{
    /* Page-aligned page + SPM_TD_STATE: aligned for atomics. */
    return (uint64_t *)(trts_base() + thread_data_offset(index) + SPM_TD_STATE);
}

static uint32_t own_tcs_index(void)
{
    uint64_t self = (uint64_t)trts_thread_data() - trts_base();
    const struct spm_layout_info *l = trts_layout();
    return (uint32_t)((self - l->thread_region_offset) / l->thread_region_stride);
}

/* Marks every thread parked in an ocall FROZEN (entry.S then refuses its
 * ORET). -EBUSY if a thread other than the caller is executing. */
static int freeze_parked_threads(uint32_t self)
{
    uint32_t count = trts_layout()->tcs_count;
    for (uint32_t i = 0; i < count; i++) {
        if (i == self)
            continue;
        uint64_t *state = thread_state(i);
        uint64_t s = __atomic_load_n(state, __ATOMIC_SEQ_CST);
        while (s == SPM_TD_STATE_OCALL &&
               !__atomic_compare_exchange_n(state, &s, SPM_TD_STATE_FROZEN, false, __ATOMIC_SEQ_CST,
                                            __ATOMIC_SEQ_CST))
            ; /* s now holds what the thread changed to */
        if (s == SPM_TD_STATE_ECALL)
            return -EBUSY;
    }
    return 0;
}

/* Lets every frozen thread return from its ocall again. */
static void thaw_threads(void)
{
    uint32_t count = trts_layout()->tcs_count;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t frozen = SPM_TD_STATE_FROZEN;
        __atomic_compare_exchange_n(thread_state(i), &frozen, SPM_TD_STATE_OCALL, false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
}

/* ---- One control call at a time; workers counted ---- */

static int control_enter(struct trts_ckpt_state *c)
{
    int idle = 0;
    return __atomic_compare_exchange_n(&c->control_busy, &idle, 1, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST)
               ? 0
               : -EBUSY;
}

static void control_leave(struct trts_ckpt_state *c)
{
    __atomic_store_n(&c->control_busy, 0, __ATOMIC_SEQ_CST);
}

/* A worker announces itself before it looks at the phase; a control call
 * changes the phase before it waits for workers to leave. With both
 * sequentially consistent, no worker runs on state a control call is
 * changing. */
static bool worker_enter(struct trts_ckpt_state *c, uint32_t phase)
{
    __atomic_add_fetch(&c->active_workers, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&trts_incarnation()->phase, __ATOMIC_SEQ_CST) == phase &&
        !__atomic_load_n(&c->failed, __ATOMIC_SEQ_CST))
        return true;
    __atomic_sub_fetch(&c->active_workers, 1, __ATOMIC_SEQ_CST);
    return false;
}

static void worker_leave(struct trts_ckpt_state *c)
{
    __atomic_sub_fetch(&c->active_workers, 1, __ATOMIC_SEQ_CST);
}

static void wait_for_workers(struct trts_ckpt_state *c)
{
    while (__atomic_load_n(&c->active_workers, __ATOMIC_SEQ_CST) != 0)
        __builtin_ia32_pause();
}

static bool phase_is(uint32_t phase)
{
    return __atomic_load_n(&trts_incarnation()->phase, __ATOMIC_SEQ_CST) == phase;
}

static void set_phase(uint32_t phase)
{
    __atomic_store_n(&trts_incarnation()->phase, phase, __ATOMIC_SEQ_CST);
}

static bool move_phase(uint32_t from, uint32_t to)
{
    return __atomic_compare_exchange_n(&trts_incarnation()->phase, &from, to, false,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* ---- Arguments: small fixed structs through the stack ---- */

/* Copies the host's struct spm_ecall_args and its input (exactly in_size
 * bytes, or any size when in_size is 0 and nothing is read) after checking
 * both lie outside ELRANGE, and checks room for out_size bytes of output. */
static int read_args(uint64_t args_address, void *in, size_t in_size, size_t out_size,
                     struct spm_ecall_args *args)
{
    const struct spm_ecall_args *host = (const struct spm_ecall_args *)args_address;
    if (!spm_is_outside_enclave(host, sizeof(*host)))
        return -EFAULT;
    memcpy(args, host, sizeof(*args)); /* read once: the host may change it */
    if (in_size) {
        if (args->in_size != in_size)
            return -EINVAL;
        if (!spm_is_outside_enclave((const void *)args->in_ptr, in_size))
            return -EFAULT;
        memcpy(in, (const void *)args->in_ptr, in_size);
    }
    if (out_size) {
        if (args->out_capacity < out_size)
            return -ENOSPC;
        if (!spm_is_outside_enclave((void *)args->out_ptr, out_size))
            return -EFAULT;
    }
    return 0;
}

/* Writes the output read_args made room for. */
static void write_out(uint64_t args_address, const struct spm_ecall_args *args, const void *out,
                      size_t size)
{
    memcpy((void *)args->out_ptr, out, size);
    ((struct spm_ecall_args *)args_address)->out_size = size;
}

/* The image buffer as the host describes it now: outside ELRANGE and large
 * enough for the image. Returns its address, or 0. */
static uint8_t *image_buffer(const struct spm_ckpt_buffer *buffer, uint64_t need)
{
    if (buffer->size < need || !spm_is_outside_enclave((void *)buffer->address, buffer->size))
        return NULL;
    return (uint8_t *)buffer->address;
}

/* ---- Run lists ---- */

struct run_builder {
    struct spm_ckpt_run runs[SPM_CKPT_MAX_RUNS + 8];
    uint32_t count;
    bool overflow;
};

/* Adds [offset, offset + size) keeping the list sorted and merged
 * (overlapping or adjacent ranges become one). */
static void add_range(struct run_builder *b, uint64_t offset, uint64_t size)
{
    if (size == 0)
        return;
    uint32_t i = 0;
    while (i < b->count && b->runs[i].offset + b->runs[i].size < offset)
        i++;
    uint64_t start = offset, end = offset + size;
    uint32_t j = i;
    while (j < b->count && b->runs[j].offset <= end) {
        if (b->runs[j].offset < start)
            start = b->runs[j].offset;
        if (b->runs[j].offset + b->runs[j].size > end)
            end = b->runs[j].offset + b->runs[j].size;
        j++;
    }
    /* runs[i, j) merge into one at i */
    if (j == i) {
        if (b->count == sizeof(b->runs) / sizeof(b->runs[0])) {
            b->overflow = true;
            return;
        }
        memmove(&b->runs[i + 1], &b->runs[i], (b->count - i) * sizeof(b->runs[0]));
        b->count++;
    } else if (j > i + 1) {
        memmove(&b->runs[i + 1], &b->runs[j], (b->count - j) * sizeof(b->runs[0]));
        b->count -= j - i - 1;
    }
    b->runs[i].offset = start;
    b->runs[i].size = end - start;
}

/* This enclave's capturable regions (ckpt_image.h). */
static uint32_t capturable_regions(struct ckpt_region *out, uint32_t capacity)
{
    return ckpt_capturable_regions(trts_layout(), __ehdr_start, out, capacity);
}

#define REGION_CAPACITY (TRTS_MAX_TCS + 16)

/* ---- Export ---- */

static int check_own_identity(struct spm_ckpt_header *h, bool fill)
{
    struct sgx_report_body self;
    int ret = spm_self_report_body(&self);
    if (ret < 0)
        return ret;
    if (fill) {
        memcpy(h->mr_enclave, self.mr_enclave, 32);
        memcpy(h->mr_signer, self.mr_signer, 32);
        h->isv_prod_id = self.isv_prod_id;
        h->isv_svn = self.isv_svn;
        h->attributes_flags = self.attributes.flags;
        return 0;
    }
    ret = memcmp(h->mr_enclave, self.mr_enclave, 32) != 0 ||
          memcmp(h->mr_signer, self.mr_signer, 32) != 0 || h->isv_prod_id != self.isv_prod_id ||
          h->isv_svn != self.isv_svn || h->attributes_flags != self.attributes.flags;
    return ret ? -EKEYREJECTED : 0;
}

static void wipe_key(struct trts_ckpt_state *c)
{
    spm_wipe(c->key, sizeof(c->key));
    c->key_ready = 0;
}

/* Captures the run list and fills the header; the caller froze the parked
 * threads. */
static int build_capture(struct trts_ckpt_state *c, uint64_t chunk_size)
{
    const struct spm_layout_info *l = trts_layout();
    struct run_builder b;
    b.count = 0;
    b.overflow = false;
    struct ckpt_region regions[REGION_CAPACITY];
    uint32_t n = capturable_regions(regions, REGION_CAPACITY);
    for (uint32_t i = 0; i < n; i++) {
        const struct ckpt_region *r = &regions[i];
        if (r->tcs != UINT32_MAX) {
            if (__atomic_load_n(thread_state(r->tcs), __ATOMIC_SEQ_CST) == SPM_TD_STATE_FROZEN)
                add_range(&b, r->offset, r->size);
        } else if (r->offset == l->heap_offset) {
            uint64_t heap_start = trts_base() + l->heap_offset;
            uint64_t high = trts_heap_high_water();
            if (high < heap_start || high > heap_start + l->heap_size)
                return -EINVAL; /* the allocator's own state is broken */
            add_range(&b, r->offset, high - heap_start);
        } else {
            add_range(&b, r->offset, r->size);
        }
    }
    if (b.overflow || b.count > SPM_CKPT_MAX_RUNS)
        return -E2BIG;

    struct spm_ckpt_header *h = &c->header;
    memset(h, 0, sizeof(*h));
    h->magic = SPM_CKPT_MAGIC;
    h->version = SPM_CKPT_VERSION;
    int ret = check_own_identity(h, true);
    if (ret < 0)
        return ret;
    h->elrange_base = trts_base();
    h->elrange_size = l->elrange_size;
    memcpy(h->lineage_id, g_lineage.id, sizeof(h->lineage_id));
    h->generation = g_lineage.generation;
    h->run_count = b.count;
    h->chunk_size = chunk_size;
    h->tcs_count = l->tcs_count;
    struct spm_ckpt_run *runs = run_list();
    memcpy(runs, b.runs, b.count * sizeof(b.runs[0]));
    if ((ret = ckpt_compute_sizes(h, runs)) < 0)
        return ret;
    if ((ret = spm_random(h->checkpoint_id, sizeof(h->checkpoint_id))) < 0 ||
        (ret = spm_random(c->key, sizeof(c->key))) < 0)
        return ret;
    c->key_ready = 1;
    tc_sha256_two(h, sizeof(*h), runs, h->run_count * sizeof(runs[0]), c->digest);
    return 0;
}

static bool all_zero(const uint8_t *p, size_t size)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < size; i++)
        acc |= p[i];
    return acc == 0;
}

static int ckpt_begin(uint64_t args_address)
{
    struct spm_ecall_args args;
    struct spm_ckpt_begin_in in;
    int ret = read_args(args_address, &in, sizeof(in), sizeof(struct spm_ckpt_begin_out), &args);
    if (ret < 0)
        return ret;
    uint64_t chunk_size = in.chunk_size ? in.chunk_size : SPM_CKPT_DEFAULT_CHUNK_SIZE;
    if (chunk_size % PAGE || chunk_size < SPM_CKPT_MIN_CHUNK_SIZE ||
        chunk_size > SPM_CKPT_MAX_CHUNK_SIZE)
        return -EINVAL;
    struct trts_ckpt_state *c = engine();
    if ((ret = control_enter(c)) < 0)
        return ret;
    if (!move_phase(TRTS_PHASE_LIVE, TRTS_PHASE_EXPORTING)) {
        control_leave(c);
        return -EBUSY;
    }
    /* From here application ecalls are refused (trts.c pairs its fence with
     * this one), so the scan below sees every thread that got in. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if ((ret = freeze_parked_threads(own_tcs_index())) < 0)
        goto fail;
    /* Lineage and generation are captured state: advance them before the
     * capture, so that a restored enclave continues after this one. */
    if (all_zero(g_lineage.id, sizeof(g_lineage.id)) &&
        (ret = spm_random(g_lineage.id, sizeof(g_lineage.id))) < 0)
        goto fail;
    g_lineage.generation++;
    c->next_chunk = 0;
    c->chunks_done = 0;
    c->failed = 0;
    c->escrow_maybe_sent = 0;
    if ((ret = build_capture(c, chunk_size)) < 0)
        goto fail;
    struct spm_ckpt_begin_out out = {
        .image_size = c->header.image_size,
        .payload_size = c->header.payload_size,
        .chunk_count = c->header.chunk_count,
        .run_count = c->header.run_count,
    };
    write_out(args_address, &args, &out, sizeof(out));
    control_leave(c);
    return 0;
fail:
    wipe_key(c);
    thaw_threads();
    set_phase(TRTS_PHASE_LIVE);
    control_leave(c);
    return ret;
}

/* The chunks of the checkpoint in `c`, in this enclave's pages, under the
 * expanded key `key`. */
static struct ckpt_chunks chunks_of(const struct trts_ckpt_state *c, const struct tc_gcm_key *key)
{
    return (struct ckpt_chunks){
        .header = &c->header,
        .runs = run_list(),
        .digest = c->digest,
        .key = key,
        .elrange = (uint8_t *)trts_base(),
    };
}

static int ckpt_encrypt(uint64_t args_address)
{
    struct spm_ecall_args args;
    struct spm_ckpt_buffer buffer;
    int ret =
        read_args(args_address, &buffer, sizeof(buffer), sizeof(struct spm_ckpt_work_out), &args);
    if (ret < 0)
        return ret;
    struct trts_ckpt_state *c = engine();
    if (!worker_enter(c, TRTS_PHASE_EXPORTING))
        return -EBUSY;
    uint8_t *image = image_buffer(&buffer, c->header.image_size);
    if (!image) {
        worker_leave(c);
        return -EFAULT;
    }
    struct tc_gcm_key key;
    tc_gcm_key_init(&key, c->key);
    const struct ckpt_chunks chunks = chunks_of(c, &key);
    uint32_t done = 0, count = c->header.chunk_count;
    while (phase_is(TRTS_PHASE_EXPORTING)) {
        uint32_t index = __atomic_fetch_add(&c->next_chunk, 1, __ATOMIC_SEQ_CST);
        if (index >= count)
            break;
        ckpt_encrypt_chunk(&chunks, index, image);
        __atomic_add_fetch(&c->chunks_done, 1, __ATOMIC_SEQ_CST);
        done++;
    }
    tc_gcm_key_wipe(&key);
    worker_leave(c);
    struct spm_ckpt_work_out out = {.chunks_done = done};
    write_out(args_address, &args, &out, sizeof(out));
    return 0;
}

static void checkpoint_ref(const struct trts_ckpt_state *c, struct spm_me_checkpoint_ref *ref)
{
    memcpy(ref->checkpoint_id, c->header.checkpoint_id, sizeof(ref->checkpoint_id));
    memcpy(ref->lineage_id, c->header.lineage_id, sizeof(ref->lineage_id));
    ref->generation = c->header.generation;
    memcpy(ref->header_digest, c->digest, sizeof(ref->header_digest));
}

/* True when a request got no authenticated answer from the ME (me_client.h):
 * it may or may not have been carried out. */
static bool me_unanswered(int ret)
{
    return ret == -ECONNRESET || ret == -ETIMEDOUT || ret == -EIO || ret == -EPROTO;
}

/* An open session to the ME, the one kept from an earlier call if any:
 * requests on one session are ordered by their sequence numbers, so a
 * CANCEL sent after an ESCROW on the same session cannot be overtaken by it. */
static int me_connect(void)
{
    struct trts_me_session *s = me_session();
    if (s->open)
        return 0;
    return trts_me_open(s);
}

static void me_disconnect(void)
{
    trts_me_close(me_session());
}

static void wipe_runs(const struct spm_ckpt_header *h)
{
    const struct spm_ckpt_run *runs = run_list();
    for (uint32_t i = 0; i < h->run_count; i++)
        spm_wipe((void *)(trts_base() + runs[i].offset), runs[i].size);
}

static int ckpt_end(uint64_t args_address)
{
    struct spm_ecall_args args;
    struct spm_ckpt_buffer buffer;
    int ret = read_args(args_address, &buffer, sizeof(buffer), 0, &args);
    if (ret < 0)
        return ret;
    struct trts_ckpt_state *c = engine();
    if ((ret = control_enter(c)) < 0)
        return ret;
    if (!move_phase(TRTS_PHASE_EXPORTING, TRTS_PHASE_EXPORT_BUSY)) {
        control_leave(c);
        return -EBUSY;
    }
    wait_for_workers(c);
    const struct spm_ckpt_header *h = &c->header;
    uint8_t *image = image_buffer(&buffer, h->image_size);
    if (__atomic_load_n(&c->chunks_done, __ATOMIC_SEQ_CST) != h->chunk_count) {
        ret = -EBUSY; /* CKPT_ENCRYPT has not finished every chunk */
        goto out;
    }
    if (!image) {
        ret = -EFAULT;
        goto out;
    }
    struct spm_me_checkpoint_ref ref;
    checkpoint_ref(c, &ref);
    if ((ret = me_connect()) < 0)
        goto out;
    bool pending_before = c->escrow_maybe_sent;
    c->escrow_maybe_sent = 1;
    ret = trts_me_escrow(me_session(), &ref, c->key);
    if (ret < 0) {
        /* A verdict of the ME means this request escrowed nothing; an
         * earlier attempt may still have. */
        c->escrow_maybe_sent = pending_before || me_unanswered(ret);
        if (ret == -ECONNRESET)
            me_disconnect();
        goto out;
    }
    /* K is in escrow: from here this enclave never runs again. */
    memcpy(image, h, sizeof(*h));
    memcpy(image + sizeof(*h), run_list(), h->run_count * sizeof(struct spm_ckpt_run));
    me_disconnect();
    wipe_key(c);
    struct trts_incarnation *inc = trts_incarnation();
    inc->drbg_ready = 0;
    spm_wipe(inc->drbg, sizeof(inc->drbg));
    /* EXPORTED before the wipe: entry.S refuses every thread from now on,
     * and this one must not touch data pages once they are gone. */
    set_phase(TRTS_PHASE_EXPORTED);
    wipe_runs(h);
    return 0;
out:
    set_phase(TRTS_PHASE_EXPORTING);
    control_leave(c);
    return ret;
}

static int ckpt_abort(void)
{
    struct trts_ckpt_state *c = engine();
    int ret = control_enter(c);
    if (ret < 0)
        return ret;
    if (phase_is(TRTS_PHASE_LIVE)) {
        control_leave(c);
        return 0; /* nothing to abort: the enclave runs */
    }
    if (!move_phase(TRTS_PHASE_EXPORTING, TRTS_PHASE_EXPORT_BUSY)) {
        control_leave(c);
        return -EBUSY;
    }
    wait_for_workers(c);
    if (c->escrow_maybe_sent) {
        /* An escrowed key next to a running enclave would be a fork: run on
         * only once the ME confirmed that this checkpoint can never be
         * released (CANCEL answers 0 for a key it never got, too, and
         * -EALREADY / -ESTALE when another copy already resumed it). */
        struct spm_me_checkpoint_ref ref;
        checkpoint_ref(c, &ref);
        if ((ret = me_connect()) == 0) {
            ret = trts_me_cancel(me_session(), &ref);
            if (ret == -ECONNRESET) {
                /* spmd restarted: the old session, and any request on it
                 * the ME had not carried out, is gone. */
                me_disconnect();
                if ((ret = me_connect()) == 0)
                    ret = trts_me_cancel(me_session(), &ref);
            }
        }
        if (ret == -EALREADY || ret == -ESTALE) {
            /* The ME's verdict: this checkpoint was resumed by another copy
             * (or superseded by a newer one). That copy is the enclave now;
             * this one must never run again. */
            set_phase(TRTS_PHASE_DEAD);
            me_disconnect();
            wipe_key(c);
            wipe_runs(&c->header);
            return ret;
        }
        if (ret < 0) {
            if (ret == -ECONNRESET)
                me_disconnect();
            set_phase(TRTS_PHASE_EXPORTING);
            control_leave(c);
            return ret;
        }
        c->escrow_maybe_sent = 0;
    }
    me_disconnect();
    wipe_key(c);
    thaw_threads();
    set_phase(TRTS_PHASE_LIVE);
    control_leave(c);
    return 0;
}

/* ---- Import ---- */

/* Everything about a header and run list copied into the incarnation that
 * does not need the ME. -EINVAL malformed, -EKEYREJECTED another enclave's. */
static int validate_image(struct spm_ckpt_header *h, const struct spm_ckpt_run *runs,
                          uint64_t buffer_size)
{
    struct ckpt_region regions[REGION_CAPACITY];
    const struct ckpt_target target = {
        .elrange_base = trts_base(),
        .layout = trts_layout(),
        .regions = regions,
        .region_count = capturable_regions(regions, REGION_CAPACITY),
    };
    int ret = ckpt_validate(h, runs, buffer_size, &target);
    if (ret < 0)
        return ret;
    return check_own_identity(h, false);
}

/* Locks (for entry.S) every TCS whose thread region is in the run list.
 * -EBUSY if one of them is the caller's or is not idle. */
static int lock_restored_threads(const struct spm_ckpt_header *h, uint32_t self)
{
    struct trts_incarnation *inc = trts_incarnation();
    const struct spm_ckpt_run *runs = run_list();
    uint32_t count = trts_layout()->tcs_count;
    for (uint32_t t = 0; t < count; t++) {
        uint64_t td = thread_data_offset(t);
        for (uint32_t i = 0; i < h->run_count; i++)
            if (td >= runs[i].offset && td < runs[i].offset + runs[i].size) {
                if (t == self)
                    return -EBUSY;
                __atomic_or_fetch(&inc->locked[t / 64], 1ull << (t % 64), __ATOMIC_SEQ_CST);
            }
    }
    __atomic_store_n(&inc->locked_any, 1, __ATOMIC_SEQ_CST);
    /* entry.S claims a thread's state and then reads the lock: whoever
     * claimed before the lock was set shows up here. */
    for (uint32_t t = 0; t < count; t++)
        if ((__atomic_load_n(&inc->locked[t / 64], __ATOMIC_SEQ_CST) >> (t % 64)) & 1 &&
            __atomic_load_n(thread_state(t), __ATOMIC_SEQ_CST) != SPM_TD_STATE_IDLE)
            return -EBUSY;
    return 0;
}

static void unlock_threads(void)
{
    struct trts_incarnation *inc = trts_incarnation();
    __atomic_store_n(&inc->locked_any, 0, __ATOMIC_SEQ_CST);
    for (uint32_t i = 0; i < TRTS_MAX_TCS / 64; i++)
        __atomic_store_n(&inc->locked[i], 0, __ATOMIC_SEQ_CST);
}

static int restore_begin(uint64_t args_address)
{
    struct spm_ecall_args args;
    struct spm_ckpt_buffer buffer;
    int ret = read_args(args_address, &buffer, sizeof(buffer), sizeof(struct spm_restore_begin_out),
                        &args);
    if (ret < 0)
        return ret;
    struct trts_ckpt_state *c = engine();
    if ((ret = control_enter(c)) < 0)
        return ret;
    /* Only an enclave that never ran imports: it relocates itself (its
     * heap comes with the image). One that initialised stays as it is. */
    if (move_phase(TRTS_PHASE_FRESH, TRTS_PHASE_RESTORING) && (ret = trts_relocate_once()) < 0) {
        set_phase(TRTS_PHASE_DEAD);
        control_leave(c);
        return ret;
    }
    if (!phase_is(TRTS_PHASE_RESTORING) || c->key_ready) {
        control_leave(c);
        return -EBUSY;
    }
    struct spm_ckpt_header *h = &c->header;
    const uint8_t *image = image_buffer(&buffer, sizeof(*h));
    if (!image) {
        ret = -EFAULT;
        goto fail;
    }
    struct spm_ckpt_run *runs = run_list();
    if ((ret = ckpt_read_header(image, buffer.size, h, runs)) < 0 ||
        (ret = validate_image(h, runs, buffer.size)) < 0)
        goto fail;
    tc_sha256_two(h, sizeof(*h), runs, h->run_count * sizeof(runs[0]), c->digest);
    if ((ret = lock_restored_threads(h, own_tcs_index())) < 0)
        goto fail;
    struct spm_me_checkpoint_ref ref;
    checkpoint_ref(c, &ref);
    me_disconnect();
    if ((ret = me_connect()) < 0)
        goto fail;
    ret = trts_me_release(me_session(), &ref, c->key);
    if (ret < 0)
        goto fail;
    c->key_ready = 1;
    c->next_chunk = 0;
    c->chunks_done = 0;
    c->next_decrypt = 0;
    c->decrypted = 0;
    c->failed = 0;
    c->lease_drawn = 0;
    __atomic_store_n(&c->step, STEP_WORK, __ATOMIC_SEQ_CST);
    struct spm_restore_begin_out out = {
        .payload_size = h->payload_size,
        .chunk_count = h->chunk_count,
        .run_count = h->run_count,
        .generation = h->generation,
    };
    write_out(args_address, &args, &out, sizeof(out));
    control_leave(c);
    return 0;
fail:
    /* Nothing was written into ELRANGE: the import may begin again. */
    unlock_threads();
    wipe_key(c);
    me_disconnect();
    control_leave(c);
    return ret;
}

static bool restore_worker_enter(struct trts_ckpt_state *c)
{
    if (!worker_enter(c, TRTS_PHASE_RESTORING))
        return false;
    /* entry.S already refuses a TCS whose thread region is being imported;
     * a worker on one would be rewriting its own stack. */
    uint32_t self = own_tcs_index();
    uint64_t locked = __atomic_load_n(&trts_incarnation()->locked[self / 64], __ATOMIC_SEQ_CST);
    if (c->key_ready && __atomic_load_n(&c->step, __ATOMIC_SEQ_CST) == STEP_WORK &&
        !((locked >> (self % 64)) & 1))
        return true;
    worker_leave(c);
    return false;
}

static int restore_work(uint64_t args_address, bool decrypt)
{
    struct spm_ecall_args args;
    struct spm_ckpt_buffer buffer = {0, 0};
    int ret = read_args(args_address, &buffer, decrypt ? 0 : sizeof(buffer),
                        sizeof(struct spm_ckpt_work_out), &args);
    if (ret < 0)
        return ret;
    struct trts_ckpt_state *c = engine();
    if (!restore_worker_enter(c))
        return __atomic_load_n(&c->failed, __ATOMIC_SEQ_CST) ? -EBADMSG : -EBUSY;
    const struct spm_ckpt_header *h = &c->header;
    const uint8_t *image = NULL;
    if (!decrypt && !(image = image_buffer(&buffer, h->image_size))) {
        worker_leave(c);
        return -EFAULT;
    }
    /* DECRYPT only once every tag verified: a chunk decrypted before a
     * later one failed would be plaintext the engine then has to trust. */
    if (decrypt && __atomic_load_n(&c->chunks_done, __ATOMIC_SEQ_CST) != h->chunk_count) {
        worker_leave(c);
        return -EBUSY;
    }
    uint32_t *next = decrypt ? &c->next_decrypt : &c->next_chunk;
    uint32_t *finished = decrypt ? &c->decrypted : &c->chunks_done;
    struct tc_gcm_key key;
    tc_gcm_key_init(&key, c->key);
    const struct ckpt_chunks chunks = chunks_of(c, &key);
    uint32_t done = 0;
    ret = 0;
    while (phase_is(TRTS_PHASE_RESTORING) && !__atomic_load_n(&c->failed, __ATOMIC_SEQ_CST)) {
        uint32_t index = __atomic_fetch_add(next, 1, __ATOMIC_SEQ_CST);
        if (index >= h->chunk_count)
            break;
        if (decrypt) {
            ckpt_decrypt_chunk(&chunks, index);
        } else if (!ckpt_verify_chunk(&chunks, index, image)) {
            __atomic_store_n(&c->failed, 1, __ATOMIC_SEQ_CST);
            ret = -EBADMSG;
            break;
        }
        __atomic_add_fetch(finished, 1, __ATOMIC_SEQ_CST);
        done++;
    }
    tc_gcm_key_wipe(&key);
    if (ret == 0 &&
        (__atomic_load_n(&c->failed, __ATOMIC_SEQ_CST) || !phase_is(TRTS_PHASE_RESTORING)))
        ret = -EBADMSG; /* another worker found a bad chunk, or the import was abandoned */
    worker_leave(c);
    if (ret < 0)
        return ret;
    struct spm_ckpt_work_out out = {.chunks_done = done};
    write_out(args_address, &args, &out, sizeof(out));
    return 0;
}

/* The import is over for good: nothing it wrote may survive, and the
 * enclave never runs. The caller holds the control lock. */
static void restore_die(struct trts_ckpt_state *c)
{
    set_phase(TRTS_PHASE_DEAD);
    wait_for_workers(c);
    me_disconnect();
    bool runs_valid = c->key_ready;
    wipe_key(c);
    if (runs_valid)
        wipe_runs(&c->header);
    /* Data pages are gone: only incarnation and stack from here. */
}

static int restore_end(void)
{
    struct trts_ckpt_state *c = engine();
    int ret = control_enter(c);
    if (ret < 0)
        return ret;
    const struct spm_ckpt_header *h = &c->header;
    if (!phase_is(TRTS_PHASE_RESTORING) || !c->key_ready ||
        __atomic_load_n(&c->decrypted, __ATOMIC_SEQ_CST) != h->chunk_count) {
        control_leave(c);
        return __atomic_load_n(&c->failed, __ATOMIC_SEQ_CST) ? -EBADMSG : -EBUSY;
    }
    __atomic_store_n(&c->step, STEP_CLOSING, __ATOMIC_SEQ_CST);
    wait_for_workers(c);
    /* The same lease on a retry: a COMMIT whose reply was lost is then
     * answered OK rather than "consumed". */
    if (!c->lease_drawn) {
        if ((ret = spm_random(c->lease, sizeof(c->lease))) < 0)
            goto retry_later;
        c->lease_drawn = 1;
    }
    struct spm_me_checkpoint_ref ref;
    checkpoint_ref(c, &ref);
    if ((ret = me_connect()) < 0)
        goto retry_later;
    ret = trts_me_commit(me_session(), &ref, c->lease);
    if (ret == -ECONNRESET) {
        /* spmd restarted and forgot the session: the lease makes a second
         * COMMIT safe whatever became of the first. */
        me_disconnect();
        if ((ret = me_connect()) == 0)
            ret = trts_me_commit(me_session(), &ref, c->lease);
    }
    if (ret < 0 && (me_unanswered(ret) || ret == -ENOTCONN))
        goto retry_later;
    if (ret < 0) {
        /* Consumed, superseded, unknown, not ours: this copy never runs. */
        restore_die(c);
        return ret;
    }
    me_disconnect();
    wipe_key(c);
    thaw_threads();
    unlock_threads();
    set_phase(TRTS_PHASE_LIVE);
    control_leave(c);
    return 0;
retry_later:
    if (ret == -ECONNRESET)
        me_disconnect();
    control_leave(c);
    return ret;
}

static int restore_abort(void)
{
    struct trts_ckpt_state *c = engine();
    int ret = control_enter(c);
    if (ret < 0)
        return ret;
    if (!phase_is(TRTS_PHASE_RESTORING) && !phase_is(TRTS_PHASE_FRESH)) {
        control_leave(c);
        return -EBUSY;
    }
    restore_die(c);
    return 0;
}

int64_t trts_ckpt_ecall(uint64_t id, uint64_t args_address)
{
    /* Export calls need an enclave that ran; import calls one that did not
     * (restore_begin claims it). */
    if (id < SPM_RT_ECALL_RESTORE_BEGIN) {
        uint32_t phase = __atomic_load_n(&trts_incarnation()->phase, __ATOMIC_SEQ_CST);
        if (phase == TRTS_PHASE_FRESH || phase == TRTS_PHASE_INITIALISING ||
            phase == TRTS_PHASE_RESTORING)
            return -EBUSY;
    }
    switch (id) {
    case SPM_RT_ECALL_CKPT_BEGIN:
        return ckpt_begin(args_address);
    case SPM_RT_ECALL_CKPT_ENCRYPT:
        return ckpt_encrypt(args_address);
    case SPM_RT_ECALL_CKPT_END:
        return ckpt_end(args_address);
    case SPM_RT_ECALL_CKPT_ABORT:
        return ckpt_abort();
    case SPM_RT_ECALL_RESTORE_BEGIN:
        return restore_begin(args_address);
    case SPM_RT_ECALL_RESTORE_VERIFY:
        return restore_work(args_address, false);
    case SPM_RT_ECALL_RESTORE_DECRYPT:
        return restore_work(args_address, true);
    case SPM_RT_ECALL_RESTORE_END:
        return restore_end();
    case SPM_RT_ECALL_RESTORE_ABORT:
        return restore_abort();
    default:
        return -ENOSYS;
    }
}
