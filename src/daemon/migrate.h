/* Live migration in spmd: the admin socket `spm migrate` and `spm recover`
 * talk to, the TLS listener other spmds reach, and both halves of a
 * migration (source: attest, dump, send, hand the key over, tell the
 * destination to go; destination: receive, restore stopped, resume on GO),
 * with a journal per migration so that a restarted spmd can settle what a
 * crash interrupted. See docs/migration.md. */
#ifndef SPM_DAEMON_MIGRATE_H
#define SPM_DAEMON_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

/* One message into the local ME and its reply (both whole ME messages,
 * header included). 0, or -errno when the ME could not be called at all;
 * the ME's own refusals come back as SPM_ME_MSG_ERROR replies. */
typedef int (*spmd_me_call_fn)(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                               size_t *out_size);

struct spmd_migrate_config {
    spmd_me_call_fn me_call;
    const char *state_dir;    /* journals and images live in <state_dir>/migrations */
    const char *platform_dir; /* this host's platform, for processes restored here */
    const char *spmd_socket;  /* this host's ME socket, likewise */
    const char *listen;       /* "ADDR[:PORT]" for peers, or NULL: no peer listener */
    const char *tls_dir;      /* host.crt, host.key, ca.crt (spm host-cert) */
    const char *name;         /* this host's name in logs and reports */
};

/* Starts the admin socket (<spmd_socket>.admin, root only) and, when
 * `listen` is set, the peer listener; both served by background threads.
 * -errno (logged) when a socket or the TLS configuration cannot be set up. */
int spmd_migrate_start(const struct spmd_migrate_config *config)
    __attribute__((warn_unused_result));

/* Stops accepting; running migrations finish or fail on their own. */
void spmd_migrate_stop(void);

/* The admin socket path for an spmd socket path. */
#define SPMD_ADMIN_SUFFIX ".admin"

#endif
