/* Post-copy's page-server tunnel (wire.h, docs/migration.md).
 *
 * In a post-copy migration the restored process runs before its memory has
 * arrived: CRIU's lazy-pages daemon on the destination fetches each missing
 * page from the page server of the source's `criu dump --lazy-pages`. Both
 * speak plain TCP, so each listens or connects on its own host's loopback
 * only, and the two spmds carry the stream between them inside a second
 * TLS connection of the migration (TUNNEL_DATA / TUNNEL_END frames).
 *
 * CRIU's page server takes an orderly end of its connection (EOF) as "every
 * page has moved" and then kills the frozen source tree. So the source side
 * never closes that connection in an orderly way unless the migration is
 * committed (the key was handed over and the process runs at the
 * destination) and the destination's daemon said it got every page; every
 * other end, including this spmd dying, resets the connection (SO_LINGER
 * 0), the dump fails, and CRIU lets the source tree run on. */
#ifndef SPM_DAEMON_TUNNEL_H
#define SPM_DAEMON_TUNNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/tls.h"

/* A free TCP port on 127.0.0.1 for the source's page server (bound, read,
 * released: the dump binds it moments later). */
int spmd_tunnel_free_port(uint16_t *port);

/* ---- Source side ---- */

/* Fails a page server nobody has connected to yet: connects, sends it a
 * request it rejects and resets the connection, so the dump fails and the
 * source tree runs on. */
void spmd_tunnel_reset_page_server(uint16_t page_port);

struct spmd_tunnel_source;

/* Starts the source's pump thread: it connects to the page server on
 * 127.0.0.1:page_port (retrying while the dump starts it) and carries its
 * stream over c, which the tunnel now owns. */
int spmd_tunnel_source_start(struct spm_tls_conn *c, uint16_t page_port,
                             struct spmd_tunnel_source **out);

/* False once the stream broke (before the hand-over: roll back). */
bool spmd_tunnel_source_ok(struct spmd_tunnel_source *t);

/* Ends the source side and frees it. commit: the key is at the destination
 * and the process runs there; the stream is closed in an orderly way once
 * the destination reported every page delivered (waiting for that), and the
 * dump completes. Otherwise, or when the stream broke, the page server's
 * connection is reset: the dump fails and the source tree runs on.
 * Returns 0 when the pages all moved and the end was orderly, else a
 * -errno with the reason in why. */
int spmd_tunnel_source_finish(struct spmd_tunnel_source *t, bool commit, uint64_t *bytes, char *why,
                              size_t why_size);

/* ---- Destination side ---- */

/* Called when the pages of a post-copy migration will not all arrive while
 * its restored copy may already run: that copy must not go on. */
typedef void (*spmd_tunnel_lost_fn)(const uint8_t id[16], const char *why);

/* A post-copy migration `id` from the peer whose certificate names
 * peer_name begins: one tunnel connection will be accepted for it. */
int spmd_tunnel_expect(const uint8_t id[16], const char *peer_name);

/* Claims the expected tunnel of `id` for a connection from peer_name:
 * -ENOENT (none expected), -EPERM (another peer), -EALREADY (taken). */
int spmd_tunnel_attach(const uint8_t id[16], const char *peer_name);

/* Serves an attached tunnel connection until its stream ends; takes c. */
void spmd_tunnel_serve(struct spm_tls_conn *c, const uint8_t id[16], spmd_tunnel_lost_fn lost);

/* The loopback port the lazy-pages daemon of migration id must dial,
 * waiting up to timeout_ms for the tunnel connection to arrive. */
int spmd_tunnel_port(const uint8_t id[16], int timeout_ms, uint16_t *port);

/* The lazy-pages daemon of migration id: the tunnel reaps it and reports
 * its exit status to the source. */
void spmd_tunnel_set_daemon(const uint8_t id[16], pid_t daemon);

/* GO: the restored copy may run from now on. -EPIPE when the stream
 * already broke (its pages will not all arrive: it must not run). */
int spmd_tunnel_go(const uint8_t id[16]);

/* The migration was discarded: its daemon and connection go. */
void spmd_tunnel_forget(const uint8_t id[16]);

#endif
