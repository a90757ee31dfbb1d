/* Private to the untrusted runtime. */
#ifndef SPM_HOST_URTS_INTERNAL_H
#define SPM_HOST_URTS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "checkpoint.h"
#include "image/image.h"
#include "platform/platform.h"
#include "spm/abi/me_abi.h"
#include "spm/urts.h"

/* Room for one operation's error message: it may name two paths. */
#define SPM_URTS_ERROR_SIZE 1024

/* Where an enclave is in the checkpoint cycle (control.h's state=). */
enum spm_enclave_state {
    SPM_ENCLAVE_LIVE,
    SPM_ENCLAVE_EXPORTING,
    SPM_ENCLAVE_EXPORTED, /* ELRANGE gone, the image in `image` */
    SPM_ENCLAVE_IMPORTING,
    /* An export could not be aborted (the ME did not confirm a cancel): the
     * enclave is frozen and the gate stays closed until "resume" manages to
     * abort it. */
    SPM_ENCLAVE_ABORT_PENDING,
};

struct spm_enclave {
    const struct spm_platform_ops *ops;
    struct spm_platform *platform;
    struct spm_hw_enclave *hw; /* NULL while exported; ocall returns re-read it */
    struct spm_layout layout;
    uint8_t mrenclave[32], mrsigner[32];
    uint64_t base, size;
    uint32_t tcs_count;
    uint64_t *tcs_offsets;
    /* What an import needs to build the same enclave again. */
    char *image_path;   /* absolute where it could be resolved */
    char *platform_dir; /* explicit at load, or NULL (then $SPM_PLATFORM/default) */

    /* `lock` guards the TCS pool and the gate. The gate is folded into the
     * pool so that an ecall pays for one mutex, as before:
     *   gate_closed  new ecalls and ocall returns wait (NOWAIT ecalls -EBUSY);
     *   inside       application threads executing enclave code right now
     *                (not counting those out in an ocall handler). */
    pthread_mutex_t lock;
    pthread_cond_t tcs_free;    /* ecall waiters: a TCS was released or the gate opened */
    pthread_cond_t gate_opened; /* ocall returners */
    pthread_cond_t drained;     /* the exporter: inside reached 0 (CLOCK_MONOTONIC) */
    uint32_t *free_tcs;         /* stack of idle TCS indexes */
    uint32_t free_count;
    bool gate_closed;
    uint32_t inside;
    enum spm_enclave_state state;
    /* With ABORT_PENDING: the ME refused the cancel because another copy
     * resumed the checkpoint (-EALREADY) or a newer one exists (-ESTALE).
     * The enclave is dead for good; 0 otherwise. */
    int abort_refused;

    /* The checkpoint image while exported (an anonymous mapping CRIU dumps
     * like any page), and what the last export/import did. */
    uint8_t *image;
    size_t image_size;
    /* While exported: ELRANGE is held by an inaccessible, unbacked mapping
     * of its own, so nothing else the process or CRIU maps (a parasite left
     * by a killed dump, a malloc arena) can take the addresses the import
     * must rebuild the enclave at. CRIU dumps and restores it as an empty
     * VMA. */
    bool elrange_reserved;
    struct spm_ckpt_stats last_export, last_import;
    /* While exported: the public reference the ME escrowed the key under,
     * read back from the image's header (export reply's refs=). */
    struct spm_me_checkpoint_ref last_ref;
    bool has_ref;
    int last_errno; /* of the last failed export/import, 0 after a success */
    char last_error[SPM_URTS_ERROR_SIZE];

    /* Incremented whenever relaying a message to spmd fails in transport
     * (no spmd, timeout): an import that fails meanwhile failed because the
     * ME was unreachable, whatever errno the enclave chose, and is retried
     * rather than refused for good. */
    uint32_t me_unreachable;

    struct spm_enclave *next_registered; /* process-wide registry */
    bool registered;

    const spm_ocall_fn *ocalls;
    uint32_t ocall_count;
    void *ocall_ctx;
};

/* The ocall context of one EENTER: which enclave, and whether the thread
 * is one of the runtime's own (control thread, checkpoint workers), whose
 * ocalls bypass the gate: they run while it is closed. */
struct spm_urts_call {
    struct spm_enclave *enclave;
    bool internal;
};

/* The host this process's enclaves live on (host_target.c). adopt takes
 * the platform directory and spmd socket a "resume" request named (NULL or
 * "" keeps the current one); -EINVAL for a relative path, -ENAMETOOLONG
 * for a socket path over sun_path; nothing changes on failure. The getters
 * copy into the caller's buffer (truncating at size):
 *   spmd socket:      adopted, else $SPM_SPMD_SOCKET, else the default;
 *   import platform:  adopted, else $SPM_PLATFORM, else `recorded` (the
 *                     load-time directory), else the default;
 *   load platform:    adopted, else spm_sim_platform_dir(explicit_dir). */
int spm_urts_adopt_host(const char *platform_dir, const char *spmd_socket)
    __attribute__((warn_unused_result));
void spm_urts_spmd_socket(char *path, size_t size);
void spm_urts_platform_dir(const char *recorded, char *dir, size_t size);
void spm_urts_load_platform_dir(const char *explicit_dir, char *dir, size_t size);

/* SPM_RT_OCALL_ME: relays one message to spmd's socket
 * (spm_urts_spmd_socket) and copies its reply into out. Returns 0 or
 * -ECONNREFUSED/-ENOENT (no spmd), -EPROTO (malformed reply), -ENOSPC,
 * -ETIMEDOUT. me_relay.c. */
int spm_urts_me_relay(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                      size_t *out_size);

/* Serves one ocall of `ctx` (a struct spm_urts_call); see platform.h. */
int64_t spm_urts_ocall_dispatch(void *ctx, uint64_t id, void *frame);

/* Runs ecall `id` on TCS `tcs_index`, which the caller owns (it took it
 * from the idle set while the gate is closed), bypassing the gate. Same
 * results as spm_enclave_ecall. enclave.c. */
int spm_urts_ecall_internal(struct spm_enclave *e, uint32_t tcs_index, uint32_t id, const void *in,
                            size_t in_size, void *out, size_t out_capacity, size_t *out_size)
    __attribute__((warn_unused_result));

/* Opens the platform an import rebuilds on (spm_urts_platform_dir) and
 * names it in dir[0..dir_size) for the caller's messages. Sets
 * e->platform. enclave.c. */
int spm_urts_open_platform(struct spm_enclave *e, char *dir, size_t dir_size)
    __attribute__((warn_unused_result));

/* Holds ELRANGE with an inaccessible mapping while the enclave is exported
 * (spm_urts_elrange_reserve), and gives it back for ECREATE or for good
 * (spm_urts_elrange_release; nothing if not held). checkpoint.c. */
void spm_urts_elrange_reserve(struct spm_enclave *e);
void spm_urts_elrange_release(struct spm_enclave *e);

/* Reads e->image_path and runs ECREATE (at `base`, 0: anywhere) / EADD /
 * EINIT on e->platform, setting e->hw, the layout and the identity. With
 * `expect_identity` (an import), refuses with -ENOEXEC an image whose
 * layout, MRENCLAVE, MRSIGNER or base differ from the recorded ones: the
 * file was replaced, which putting it back fixes. enclave.c. */
int spm_urts_build(struct spm_enclave *e, uint64_t base, bool expect_identity)
    __attribute__((warn_unused_result));

/* Process-wide registry of loaded enclaves (control_server.c). register
 * also starts the control thread and its socket on first use (a failure to
 * do so is logged, not returned: the enclave works, it just cannot be
 * checkpointed). unregister waits for a running export/import. */
void spm_urts_register(struct spm_enclave *e);
void spm_urts_unregister(struct spm_enclave *e);

/* Serialises exports and imports with registry changes. */
void spm_urts_op_lock(void);
void spm_urts_op_unlock(void);

/* Tells status waiters that an enclave's state changed (control_server.c). */
void spm_urts_state_changed(void);

#endif
