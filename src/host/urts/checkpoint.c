/* The host half of an enclave checkpoint (docs/checkpoint.md): the gate
 * that empties the enclave, the worker threads that run CKPT_ENCRYPT and
 * RESTORE_VERIFY/DECRYPT on idle TCSs, and rebuilding ELRANGE at the same
 * base. The enclave does the cryptography and decides what is captured;
 * this file only orders the runtime ecalls of checkpoint_abi.h, provides
 * the untrusted image buffer, and keeps the enclave either running or
 * recoverable whatever fails. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "control/control.h"
#include "crypto/hash.h"
#include "spm/abi/checkpoint_abi.h"
#include "urts_internal.h"

/* CKPT_ABORT must reach the ME to cancel an escrow that may have reached
 * it (until it does, the enclave stays frozen), and RESTORE_END to commit.
 * Attempts and the first pause between them (doubling), before giving up
 * for this request. */
#define ABORT_ATTEMPTS 5
#define ABORT_PAUSE_MS 200

void spm_urts_elrange_reserve(struct spm_enclave *e)
{
    if (e->elrange_reserved || !e->base || !e->size)
        return;
    void *p = mmap((void *)e->base, e->size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == (void *)e->base) {
        e->elrange_reserved = true;
        return;
    }
    if (p != MAP_FAILED)
        munmap(p, e->size);
    /* The import tries anyway; ECREATE then names what is in the way. */
    spm_error("cannot hold ELRANGE %#llx+%#llx while the enclave is out: %s; another mapping "
              "there would stop the import",
              (unsigned long long)e->base, (unsigned long long)e->size,
              strerror(p == MAP_FAILED ? errno : EEXIST));
}

void spm_urts_elrange_release(struct spm_enclave *e)
{
    if (!e->elrange_reserved)
        return;
    munmap((void *)e->base, e->size);
    e->elrange_reserved = false;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Records why the last operation failed, for "status"; e->lock held. */
static void set_error_locked(struct spm_enclave *e, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error_locked(struct spm_enclave *e, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->last_error, sizeof(e->last_error), fmt, ap);
    va_end(ap);
    e->last_errno = err;
    spm_error("%s", e->last_error);
}

/* Opens the gate and wakes everyone who waited at it; e->lock held. */
static void open_gate_locked(struct spm_enclave *e)
{
    e->gate_closed = false;
    e->state = SPM_ENCLAVE_LIVE;
    pthread_cond_broadcast(&e->gate_opened);
    pthread_cond_broadcast(&e->tcs_free);
}

/* The TCSs no thread holds, most recently released first; only meaningful
 * while the gate is closed and nobody is inside (then nothing changes the
 * pool). *idle is malloc'd, owned by the caller. e->lock held. */
static int idle_tcs_locked(struct spm_enclave *e, uint32_t **idle, uint32_t *count)
{
    *count = e->free_count;
    *idle = NULL;
    if (e->free_count == 0)
        return 0;
    *idle = malloc(e->free_count * sizeof(**idle));
    if (!*idle)
        return -ENOMEM;
    for (uint32_t i = 0; i < e->free_count; i++)
        (*idle)[i] = e->free_tcs[e->free_count - 1 - i];
    return 0;
}

static unsigned worker_count(const struct spm_ckpt_options *o, uint32_t idle_count)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = o && o->threads ? o->threads : (cpus > 0 ? (unsigned)cpus : 1);
    if (want > idle_count)
        want = idle_count;
    return want ? want : 1;
}

struct worker {
    struct spm_enclave *enclave;
    uint32_t tcs;
    uint32_t ecall;
    struct spm_ckpt_buffer buffer;
    pthread_t thread;
    bool started;
    int ret;
    uint32_t chunks;
};

static void run_worker(struct worker *w)
{
    struct spm_ckpt_work_out out = {0};
    size_t out_size = 0;
    w->ret = spm_urts_ecall_internal(w->enclave, w->tcs, w->ecall, &w->buffer, sizeof(w->buffer),
                                     &out, sizeof(out), &out_size);
    if (w->ret == 0 && out_size != sizeof(out))
        w->ret = -EPROTO;
    w->chunks = w->ret == 0 ? out.chunks_done : 0;
}

static void *worker_main(void *arg)
{
    run_worker(arg);
    return NULL;
}

/* Runs `ecall` on `count` TCSs at once: this thread on idle[0], a
 * short-lived thread on each other one. Each returns when no chunk is left,
 * so fewer threads (if one cannot be created) only cost time. Returns the
 * first failure, else 0 with the chunks done in total. */
static int run_parallel(struct spm_enclave *e, const uint32_t *idle, unsigned count, uint32_t ecall,
                        const struct spm_ckpt_buffer *buffer, uint32_t *chunks)
{
    struct worker *workers = calloc(count, sizeof(*workers));
    if (!workers)
        return -ENOMEM;
    for (unsigned i = 0; i < count; i++) {
        workers[i] =
            (struct worker){.enclave = e, .tcs = idle[i], .ecall = ecall, .buffer = *buffer};
    }
    for (unsigned i = 1; i < count; i++) {
        int err = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
        workers[i].started = err == 0;
        if (err)
            spm_debug("checkpoint worker %u not started (%s); the others do its share", i,
                      strerror(err));
    }
    run_worker(&workers[0]);
    int ret = 0;
    uint64_t total = 0;
    for (unsigned i = 0; i < count; i++) {
        if (i > 0) {
            if (!workers[i].started)
                continue;
            pthread_join(workers[i].thread, NULL);
        }
        if (workers[i].ret < 0 && ret == 0)
            ret = workers[i].ret;
        total += workers[i].chunks;
    }
    free(workers);
    if (ret == 0 && total > UINT32_MAX)
        ret = -EPROTO;
    *chunks = (uint32_t)total;
    return ret;
}

/* The enclave wrote the header, but it lies in ordinary process memory:
 * every size is checked before it is used. */
int spm_urts_checkpoint_ref(const uint8_t *image, size_t image_size,
                            struct spm_me_checkpoint_ref *ref)
{
    struct spm_ckpt_header h;
    if (image_size < sizeof(h))
        return -EPROTO;
    memcpy(&h, image, sizeof(h));
    if (h.magic != SPM_CKPT_MAGIC || h.version != SPM_CKPT_VERSION ||
        h.run_count > SPM_CKPT_MAX_RUNS ||
        h.header_size != sizeof(h) + (uint64_t)h.run_count * sizeof(struct spm_ckpt_run) ||
        h.header_size > image_size)
        return -EPROTO;
    memset(ref, 0, sizeof(*ref));
    memcpy(ref->checkpoint_id, h.checkpoint_id, sizeof(ref->checkpoint_id));
    memcpy(ref->lineage_id, h.lineage_id, sizeof(ref->lineage_id));
    ref->generation = h.generation;
    spm_sha256(image, h.header_size, ref->header_digest);
    return 0;
}

/* CKPT_ABORT until the enclave confirms it runs again (the ME confirmed the
 * cancel of any escrow). 0, or the last failure. */
static int abort_export(struct spm_enclave *e, uint32_t tcs)
{
    int ret = 0;
    for (int attempt = 0; attempt < ABORT_ATTEMPTS; attempt++) {
        size_t ignored;
        ret = spm_urts_ecall_internal(e, tcs, SPM_RT_ECALL_CKPT_ABORT, NULL, 0, NULL, 0, &ignored);
        if (ret == 0)
            return 0;
        spm_error("checkpoint abort of the enclave at %#llx failed (%s), attempt %d of %d",
                  (unsigned long long)e->base, strerror(-ret), attempt + 1, ABORT_ATTEMPTS);
        sleep_ms(ABORT_PAUSE_MS << attempt);
    }
    return ret;
}

int spm_urts_export(struct spm_enclave *e, const struct spm_ckpt_options *o,
                    struct spm_ckpt_stats *stats)
{
    uint64_t start = now_us();
    memset(stats, 0, sizeof(*stats));
    unsigned timeout_ms = o && o->timeout_ms ? o->timeout_ms : SPM_CONTROL_DEFAULT_TIMEOUT_MS;

    pthread_mutex_lock(&e->lock);
    if (e->state == SPM_ENCLAVE_EXPORTED) {
        pthread_mutex_unlock(&e->lock);
        return -EALREADY;
    }
    if (e->state != SPM_ENCLAVE_LIVE) {
        set_error_locked(e, -ENOLINK,
                         "enclave at %#llx: an earlier checkpoint could not be aborted (the "
                         "Migration Enclave did not confirm the cancel); send 'resume' once spmd "
                         "is reachable",
                         (unsigned long long)e->base);
        pthread_mutex_unlock(&e->lock);
        return -ENOLINK;
    }
    e->gate_closed = true;
    e->state = SPM_ENCLAVE_EXPORTING;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (e->inside > 0) {
        if (pthread_cond_timedwait(&e->drained, &e->lock, &deadline) == ETIMEDOUT &&
            e->inside > 0) {
            uint32_t inside = e->inside;
            open_gate_locked(e);
            set_error_locked(e, -ETIMEDOUT,
                             "checkpoint of the enclave at %#llx: %u thread(s) still inside "
                             "after %u ms; the enclave runs on (retry when it is less busy, or "
                             "raise the timeout)",
                             (unsigned long long)e->base, inside, timeout_ms);
            pthread_mutex_unlock(&e->lock);
            spm_urts_state_changed();
            return -ETIMEDOUT;
        }
    }
    uint32_t *idle, idle_count;
    int ret = idle_tcs_locked(e, &idle, &idle_count);
    if (ret == 0 && idle_count == 0) {
        set_error_locked(e, -EBUSY,
                         "checkpoint of the enclave at %#llx: all %u TCS are held by threads "
                         "parked in ocalls, none is left to run the checkpoint; the enclave runs "
                         "on (sign it with more TCS than the threads that may park)",
                         (unsigned long long)e->base, e->tcs_count);
        ret = -EBUSY;
    }
    if (ret < 0) {
        open_gate_locked(e);
        pthread_mutex_unlock(&e->lock);
        spm_urts_state_changed();
        return ret;
    }
    pthread_mutex_unlock(&e->lock);
    spm_urts_state_changed();

    /* Nobody is inside and nobody can enter: the runtime's ecalls below run
     * on TCSs this thread now owns. */
    uint8_t *image = MAP_FAILED;
    size_t image_size = 0;
    struct spm_ckpt_begin_in begin_in = {.chunk_size = o ? o->chunk_size : 0};
    struct spm_ckpt_begin_out begin_out;
    size_t out_size = 0;
    unsigned workers = worker_count(o, idle_count);
    const char *step = "CKPT_BEGIN";
    uint64_t t_drained = now_us(), t_begun = 0, t_encrypted = 0;
    ret = spm_urts_ecall_internal(e, idle[0], SPM_RT_ECALL_CKPT_BEGIN, &begin_in, sizeof(begin_in),
                                  &begin_out, sizeof(begin_out), &out_size);
    if (ret == 0 && out_size != sizeof(begin_out))
        ret = -EPROTO;
    if (ret < 0) {
        /* The enclave did not start a checkpoint (or undid its own start):
         * an ABORT is still sent in case it got half way, and its answer
         * does not matter. */
        size_t ignored;
        if (spm_urts_ecall_internal(e, idle[0], SPM_RT_ECALL_CKPT_ABORT, NULL, 0, NULL, 0,
                                    &ignored) < 0)
            spm_debug("CKPT_ABORT after a failed CKPT_BEGIN: nothing to abort");
        pthread_mutex_lock(&e->lock);
        open_gate_locked(e);
        set_error_locked(e, ret,
                         "checkpoint of the enclave at %#llx: the enclave refused CKPT_BEGIN: %s; "
                         "the enclave runs on",
                         (unsigned long long)e->base, strerror(-ret));
        pthread_mutex_unlock(&e->lock);
        free(idle);
        spm_urts_state_changed();
        return ret;
    }
    /* The image holds at most ELRANGE's pages plus a tag per page and the
     * header: anything larger is a lie the host need not map. */
    uint64_t limit = e->size + e->size / 128 + (1u << 20);
    if (begin_out.image_size < sizeof(struct spm_ckpt_header) || begin_out.image_size > limit) {
        ret = -EPROTO;
        step = "CKPT_BEGIN (image size)";
        goto abort;
    }
    image_size = (size_t)begin_out.image_size;
    /* Private anonymous memory, which CRIU dumps and restores fastest.
     * For a lazy dump, shared anonymous memory instead: CRIU copies that
     * with the images (lazy-pages serves only private anonymous memory),
     * so a post-copy migration carries the sealed state before the
     * restore, and the import after it reads no page that still has to
     * cross the link. */
    image = mmap(NULL, image_size, PROT_READ | PROT_WRITE,
                 (o && o->lazy ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    if (image == MAP_FAILED) {
        ret = -errno;
        step = "mapping the image buffer";
        goto abort;
    }
    /* Every byte is written once, now, by the workers: in 2 MiB pages that
     * is one fault per 512 the kernel would otherwise take (advice only;
     * transparent huge pages may be off). */
    if (!(o && o->lazy))
        (void)madvise(image, image_size, MADV_HUGEPAGE);
    struct spm_ckpt_buffer buffer = {(uint64_t)image, image_size};
    uint32_t chunks = 0;
    t_begun = now_us();
    step = "CKPT_ENCRYPT";
    ret = run_parallel(e, idle, workers, SPM_RT_ECALL_CKPT_ENCRYPT, &buffer, &chunks);
    if (ret == 0 && chunks != begin_out.chunk_count)
        ret = -EPROTO;
    if (ret < 0)
        goto abort;
    t_encrypted = now_us();
    step = "CKPT_END";
    size_t ignored;
    ret = spm_urts_ecall_internal(e, idle[0], SPM_RT_ECALL_CKPT_END, &buffer, sizeof(buffer), NULL,
                                  0, &ignored);
    if (ret < 0)
        goto abort;

    /* Which checkpoint the ME holds the key for: the orchestrator of a
     * migration names it to the source ME. Not fatal here (the enclave
     * already wiped itself); the export request refuses to report
     * success without it. */
    struct spm_me_checkpoint_ref ref = {0};
    int ref_ret = spm_urts_checkpoint_ref(image, image_size, &ref);
    if (ref_ret < 0)
        spm_error("exported the enclave at %#llx, but its image header is malformed: the "
                  "checkpoint cannot be named for a migration",
                  (unsigned long long)e->base);

    /* The key is in escrow and the enclave wiped itself: ELRANGE and the
     * platform's secrets leave this process before CRIU reads it. */
    pthread_mutex_lock(&e->lock);
    e->last_ref = ref;
    e->has_ref = ref_ret == 0;
    e->ops->edestroy(e->hw);
    e->hw = NULL;
    spm_urts_elrange_reserve(e);
    e->ops->close(e->platform);
    e->platform = NULL;
    e->image = image;
    e->image_size = image_size;
    e->state = SPM_ENCLAVE_EXPORTED;
    e->last_errno = 0;
    e->last_error[0] = '\0';
    stats->bytes = image_size;
    stats->chunks = chunks;
    stats->threads = workers;
    stats->usec = now_us() - start;
    e->last_export = *stats;
    pthread_mutex_unlock(&e->lock);
    free(idle);
    spm_urts_state_changed();
    spm_info(
        "exported the enclave at %#llx: %zu bytes, %u chunks, %u threads, %llu us (drain %llu, "
        "begin %llu, encrypt %llu, end+teardown %llu)",
        (unsigned long long)e->base, image_size, chunks, workers, (unsigned long long)stats->usec,
        (unsigned long long)(t_drained - start), (unsigned long long)(t_begun - t_drained),
        (unsigned long long)(t_encrypted - t_begun),
        (unsigned long long)(start + stats->usec - t_encrypted));
    return 0;

abort:;
    int abort_ret = abort_export(e, idle[0]);
    if (image != MAP_FAILED)
        munmap(image, image_size);
    pthread_mutex_lock(&e->lock);
    if (abort_ret == 0) {
        open_gate_locked(e);
        set_error_locked(e, ret,
                         "checkpoint of the enclave at %#llx failed at %s: %s; aborted, the "
                         "enclave runs on",
                         (unsigned long long)e->base, step, strerror(-ret));
    } else if (abort_ret == -EALREADY || abort_ret == -ESTALE) {
        e->state = SPM_ENCLAVE_ABORT_PENDING;
        e->abort_refused = abort_ret;
        set_error_locked(e, abort_ret,
                         "checkpoint of the enclave at %#llx failed at %s: %s, and the Migration "
                         "Enclave refused the cancel: %s. Another copy of this enclave runs with "
                         "that state, so this one never will",
                         (unsigned long long)e->base, step, strerror(-ret),
                         abort_ret == -EALREADY ? "the checkpoint was already resumed"
                                                : "a newer checkpoint exists");
    } else {
        e->state = SPM_ENCLAVE_ABORT_PENDING;
        set_error_locked(e, ret,
                         "checkpoint of the enclave at %#llx failed at %s: %s, and the abort "
                         "failed too (%s): the enclave stays frozen until the Migration Enclave "
                         "confirms the cancel; make spmd reachable and send 'resume'",
                         (unsigned long long)e->base, step, strerror(-ret), strerror(-abort_ret));
    }
    pthread_mutex_unlock(&e->lock);
    free(idle);
    spm_urts_state_changed();
    return ret;
}

/* What a permanent refusal means, for the operator. */
static const char *refusal_reason(int err)
{
    switch (err) {
    case -EALREADY:
        return "this checkpoint was already resumed once";
    case -ESTALE:
        return "a newer checkpoint of this enclave exists";
    case -ENOENT:
        return "the Migration Enclave holds no key for this checkpoint";
    case -EKEYREJECTED:
        return "the checkpoint belongs to another enclave";
    case -EBADMSG:
        return "the checkpoint image was altered";
    case -EINVAL:
        return "the checkpoint image is malformed";
    default:
        return "refused";
    }
}

/* The enclave's refusals that no retry can change. */
static bool is_permanent(int err)
{
    switch (err) {
    case -EALREADY:     /* this checkpoint was already resumed */
    case -ESTALE:       /* a newer checkpoint of the lineage exists */
    case -ENOENT:       /* the ME holds no key for it */
    case -EKEYREJECTED: /* another enclave's checkpoint */
    case -EBADMSG:      /* altered, swapped, dropped or truncated */
    case -EINVAL:       /* malformed */
        return true;
    default:
        return false;
    }
}

/* Retries the abort of an export that could not be aborted earlier. */
static int retry_abort(struct spm_enclave *e)
{
    pthread_mutex_lock(&e->lock);
    uint32_t *idle, idle_count;
    int ret = idle_tcs_locked(e, &idle, &idle_count);
    pthread_mutex_unlock(&e->lock);
    if (ret < 0)
        return ret;
    if (idle_count == 0)
        return -EBUSY; /* cannot happen: the export ran on one of them */
    ret = abort_export(e, idle[0]);
    free(idle);
    pthread_mutex_lock(&e->lock);
    if (ret == 0) {
        open_gate_locked(e);
        e->last_errno = 0;
        e->last_error[0] = '\0';
    } else {
        set_error_locked(e, ret,
                         "enclave at %#llx: the checkpoint abort still fails (%s); it stays "
                         "frozen until the Migration Enclave confirms the cancel",
                         (unsigned long long)e->base, strerror(-ret));
    }
    pthread_mutex_unlock(&e->lock);
    spm_urts_state_changed();
    return ret;
}

int spm_urts_import(struct spm_enclave *e, const struct spm_ckpt_options *o,
                    struct spm_ckpt_stats *stats, bool *permanent)
{
    uint64_t start = now_us();
    memset(stats, 0, sizeof(*stats));
    *permanent = false;
    pthread_mutex_lock(&e->lock);
    enum spm_enclave_state state = e->state;
    if (state == SPM_ENCLAVE_LIVE) {
        pthread_mutex_unlock(&e->lock);
        return 0;
    }
    if (state == SPM_ENCLAVE_ABORT_PENDING) {
        int refused = e->abort_refused;
        pthread_mutex_unlock(&e->lock);
        int ret = refused ? refused : retry_abort(e);
        if (ret == -EALREADY || ret == -ESTALE) {
            pthread_mutex_lock(&e->lock);
            e->abort_refused = ret;
            pthread_mutex_unlock(&e->lock);
            *permanent = true; /* another copy resumed this state */
        }
        return ret;
    }
    if (state != SPM_ENCLAVE_EXPORTED) {
        pthread_mutex_unlock(&e->lock);
        return -EBUSY; /* exporting/importing: the op lock makes this unreachable */
    }
    e->state = SPM_ENCLAVE_IMPORTING;
    uint32_t *idle, idle_count;
    int ret = idle_tcs_locked(e, &idle, &idle_count);
    if (ret == 0 && idle_count == 0)
        ret = -EPROTO; /* the export ran on an idle TCS, so one is */
    if (ret < 0) {
        e->state = SPM_ENCLAVE_EXPORTED;
        pthread_mutex_unlock(&e->lock);
        return ret;
    }
    pthread_mutex_unlock(&e->lock);
    spm_urts_state_changed();

    char platform_dir[PATH_MAX], spmd[PATH_MAX];
    char step_text[PATH_MAX + 64];
    spm_urts_platform_dir(e->platform_dir, platform_dir, sizeof(platform_dir));
    spm_urts_spmd_socket(spmd, sizeof(spmd));
    snprintf(step_text, sizeof(step_text), "opening the SGX platform at %s", platform_dir);
    const char *step = step_text;
    bool begun = false;
    uint32_t me_unreachable = __atomic_load_n(&e->me_unreachable, __ATOMIC_RELAXED);
    unsigned workers = worker_count(o, idle_count);
    uint32_t chunks = 0;
    struct spm_ckpt_buffer buffer = {(uint64_t)e->image, e->image_size};
    if (!e->platform && (ret = spm_urts_open_platform(e, platform_dir, sizeof(platform_dir))) < 0)
        goto fail;
    step = "rebuilding ELRANGE at the recorded base";
    spm_urts_elrange_release(e);
    if ((ret = spm_urts_build(e, e->base, true)) < 0)
        goto fail;
    uint64_t t_built = now_us(), t_begun = 0, t_verified = 0, t_decrypted = 0;
    step = "RESTORE_BEGIN";
    struct spm_restore_begin_out begin_out;
    size_t out_size = 0;
    ret = spm_urts_ecall_internal(e, idle[0], SPM_RT_ECALL_RESTORE_BEGIN, &buffer, sizeof(buffer),
                                  &begin_out, sizeof(begin_out), &out_size);
    if (ret == 0 && out_size != sizeof(begin_out))
        ret = -EPROTO;
    if (ret < 0) {
        *permanent = is_permanent(ret);
        goto fail;
    }
    begun = true;
    t_begun = now_us();
    step = "RESTORE_VERIFY";
    ret = run_parallel(e, idle, workers, SPM_RT_ECALL_RESTORE_VERIFY, &buffer, &chunks);
    if (ret == 0 && chunks != begin_out.chunk_count)
        ret = -EPROTO;
    if (ret < 0) {
        *permanent = is_permanent(ret);
        goto fail;
    }
    t_verified = now_us();
    step = "RESTORE_DECRYPT";
    ret = run_parallel(e, idle, workers, SPM_RT_ECALL_RESTORE_DECRYPT, &buffer, &chunks);
    if (ret == 0 && chunks != begin_out.chunk_count)
        ret = -EPROTO;
    if (ret < 0) {
        *permanent = is_permanent(ret);
        goto fail;
    }
    t_decrypted = now_us();
    step = "RESTORE_END";
    /* COMMIT with the ME: if spmd is unreachable the enclave keeps its
     * state and its lease, and the same call can simply be repeated. */
    for (int attempt = 0;; attempt++) {
        size_t ignored;
        ret = spm_urts_ecall_internal(e, idle[0], SPM_RT_ECALL_RESTORE_END, NULL, 0, NULL, 0,
                                      &ignored);
        if (ret == 0 || is_permanent(ret) || attempt + 1 >= ABORT_ATTEMPTS)
            break;
        spm_error("restore of the enclave at %#llx: RESTORE_END failed (%s), attempt %d of %d",
                  (unsigned long long)e->base, strerror(-ret), attempt + 1, ABORT_ATTEMPTS);
        sleep_ms(ABORT_PAUSE_MS << attempt);
    }
    if (ret < 0) {
        *permanent = is_permanent(ret);
        goto fail;
    }

    pthread_mutex_lock(&e->lock);
    munmap(e->image, e->image_size);
    stats->bytes = e->image_size;
    stats->chunks = chunks;
    stats->threads = workers;
    e->image = NULL;
    e->image_size = 0;
    e->has_ref = false;
    e->last_errno = 0;
    e->last_error[0] = '\0';
    stats->usec = now_us() - start;
    e->last_import = *stats;
    /* Waiting ecalls run, parked threads return into the rebuilt enclave. */
    open_gate_locked(e);
    pthread_mutex_unlock(&e->lock);
    free(idle);
    spm_urts_state_changed();
    spm_info("imported the enclave at %#llx on the platform at %s (spmd %s): %llu bytes, %u "
             "chunks, %u threads, %llu us (rebuild %llu, begin %llu, verify %llu, decrypt %llu, "
             "end %llu)",
             (unsigned long long)e->base, platform_dir, spmd, (unsigned long long)stats->bytes,
             chunks, workers, (unsigned long long)stats->usec,
             (unsigned long long)(t_built - start), (unsigned long long)(t_begun - t_built),
             (unsigned long long)(t_verified - t_begun),
             (unsigned long long)(t_decrypted - t_verified),
             (unsigned long long)(start + stats->usec - t_decrypted));
    return 0;

fail:
    if (*permanent && __atomic_load_n(&e->me_unreachable, __ATOMIC_RELAXED) != me_unreachable) {
        spm_info("the enclave's refusal (%s) came while spmd was unreachable: retryable",
                 strerror(-ret));
        *permanent = false;
    }
    if (e->hw) {
        if (begun) {
            /* Wipes whatever was decrypted; the enclave is dead anyway. */
            size_t ignored_size;
            if (spm_urts_ecall_internal(e, idle[0], SPM_RT_ECALL_RESTORE_ABORT, NULL, 0, NULL, 0,
                                        &ignored_size) < 0)
                spm_debug("RESTORE_ABORT failed; the enclave is destroyed anyway");
        }
        e->ops->edestroy(e->hw);
        e->hw = NULL;
    }
    spm_urts_elrange_reserve(e);
    if (e->platform) {
        e->ops->close(e->platform);
        e->platform = NULL;
    }
    pthread_mutex_lock(&e->lock);
    e->state = SPM_ENCLAVE_EXPORTED;
    if (*permanent)
        set_error_locked(e, ret,
                         "restore of the enclave at %#llx (platform %s, spmd %s) refused at %s: "
                         "%s (%s); the enclave refuses this checkpoint for good, the images stay "
                         "untouched",
                         (unsigned long long)e->base, platform_dir, spmd, step, refusal_reason(ret),
                         strerror(-ret));
    else if (step == step_text)
        set_error_locked(e, ret,
                         "restore of the enclave at %#llx failed: cannot open the SGX platform "
                         "at %s: %s; the checkpoint and its key are kept, retry with 'resume "
                         "platform=DIR' naming this host's platform",
                         (unsigned long long)e->base, platform_dir, strerror(-ret));
    else
        set_error_locked(e, ret,
                         "restore of the enclave at %#llx (platform %s, spmd %s) failed at %s: "
                         "%s; the checkpoint is kept, retry with 'resume'%s",
                         (unsigned long long)e->base, platform_dir, spmd, step, strerror(-ret),
                         ret == -ENOEXEC ? "" : " (is spmd running and reachable?)");

    pthread_mutex_unlock(&e->lock);
    free(idle);
    spm_urts_state_changed();
    return ret;
}

int spm_enclave_checkpoint(struct spm_enclave *e, const struct spm_ckpt_options *options,
                           struct spm_ckpt_stats *stats)
{
    spm_urts_op_lock();
    int ret = spm_urts_export(e, options, stats);
    spm_urts_op_unlock();
    return ret;
}

int spm_enclave_restore(struct spm_enclave *e, const struct spm_ckpt_options *options,
                        struct spm_ckpt_stats *stats, bool *permanent)
{
    spm_urts_op_lock();
    int ret = spm_urts_import(e, options, stats, permanent);
    spm_urts_op_unlock();
    return ret;
}
