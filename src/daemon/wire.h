/* What two spmds say to each other inside their TLS 1.3 connection
 * (src/host/net/tls.h frames every message: magic "SPMW", version, type,
 * size). The source spmd drives a migration; the destination obeys, and
 * relays the Migration Enclaves' messages into its ME without being able to
 * read them.
 *
 *   S -> D  HELLO            who is migrating what (D answers HELLO)
 *   S <-> D ME               one ME message each way (attestation, then the
 *                            sealed hand-over); D accepts only the message
 *                            types a peer ME may send (OFFER, CONFIRM,
 *                            SEALED) so a remote spmd cannot drive D's ME
 *                            as if it were D's own daemon
 *   S -> D  FILE_BEGIN, FILE_DATA..., FILE_END   one CRIU image file
 *   S -> D  IMAGES_DONE      everything sent; D answers OK once it is all
 *                            on disk (fsync)
 *   S -> D  RESTORE          D runs `criu restore --leave-stopped`: the
 *                            process exists but cannot run before the key
 *                            is handed over; D answers RESTORED or ERROR
 *   S -> D  GO               after the hand-over: D resumes the process and
 *                            answers RUNNING once its enclave imported
 *   S -> D  DISCARD          the migration is off: D kills the stopped
 *                            copy, removes the images and the service IP
 *   D -> S  QUERY            (recovery, on a connection D opens) what became
 *                            of a migration; S answers STATE
 *
 * Post-copy (--mode post) opens a second connection for the same migration
 * (HELLO with SPMD_HELLO_TUNNEL) before RESTORE. It carries CRIU's
 * page-server stream between the source's `criu dump --lazy-pages` and the
 * destination's `criu lazy-pages` daemon, which both talk plain TCP on
 * their own host's loopback only:
 *   S <-> D TUNNEL_DATA      bytes of that stream, in order
 *   S <-> D TUNNEL_END       this side's end of the stream closed, with how
 *                            (D: the lazy-pages daemon's exit status, 0 when
 *                            every page arrived)
 *   any     ERROR            status + message; the session ends
 *
 * Every body is a packed struct with a size checked exactly (names and
 * messages are length-prefixed and bounded); a malformed message ends the
 * session with an ERROR naming what was wrong and changes no state. */
#ifndef SPM_DAEMON_WIRE_H
#define SPM_DAEMON_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/tls.h"

#define SPMD_WIRE_VERSION    1u
#define SPMD_WIRE_PORT       SPM_TLS_DEFAULT_PORT
#define SPMD_WIRE_DATA_CHUNK (1u << 20)
#define SPMD_WIRE_MAX_FILES  4096u
#define SPMD_WIRE_NAME_MAX   128u
#define SPMD_WIRE_TEXT_MAX   240u
/* The most image bytes one migration may bring, in one file or in all. */
#define SPMD_WIRE_MAX_IMAGE_BYTES (64ull << 30)

enum spmd_wire_type {
    SPMD_WIRE_HELLO = 1,
    SPMD_WIRE_ME,
    SPMD_WIRE_FILE_BEGIN,
    SPMD_WIRE_FILE_DATA,
    SPMD_WIRE_FILE_END,
    SPMD_WIRE_IMAGES_DONE,
    SPMD_WIRE_RESTORE,
    SPMD_WIRE_RESTORED,
    SPMD_WIRE_GO,
    SPMD_WIRE_RUNNING,
    SPMD_WIRE_DISCARD,
    SPMD_WIRE_QUERY,
    SPMD_WIRE_STATE,
    SPMD_WIRE_OK,
    SPMD_WIRE_ERROR,
    SPMD_WIRE_TUNNEL_DATA,
    SPMD_WIRE_TUNNEL_END,
};

/* Purpose of a connection, in HELLO.flags. */
#define SPMD_HELLO_MIGRATE 1u /* a new migration: D prepares an incoming dir */
#define SPMD_HELLO_RESUME  2u /* recovery of a known migration: D looks it up */
#define SPMD_HELLO_TUNNEL  4u /* the page-server tunnel of a post-copy migration */

struct spmd_wire_hello {
    uint32_t version;
    uint32_t flags;
    uint8_t migration_id[16];
    uint32_t pid;    /* the process being migrated (informational on D) */
    uint32_t mode;   /* enum spmd_mode */
    char source[64]; /* NUL-terminated "ADDR:PORT" where S listens (recovery) */
    char name[64];   /* the sender's host name (logs) */
} __attribute__((packed));

struct spmd_wire_file {
    uint64_t size;
    uint32_t mode;
    uint16_t name_size; /* name bytes follow, no NUL */
    uint16_t reserved;
} __attribute__((packed));

struct spmd_wire_file_end {
    uint8_t sha256[32];
} __attribute__((packed));

struct spmd_wire_images_done {
    uint32_t files;
    uint32_t reserved;
    uint64_t bytes;
} __attribute__((packed));

/* RESTORE.flags */
#define SPMD_RESTORE_LAZY 1u /* post-copy: restore with --lazy-pages through the tunnel */

struct spmd_wire_restore {
    uint32_t flags;
    uint32_t reserved;
    char service_ip[64]; /* "" or "ADDR/PREFIX" to bring up before restoring */
} __attribute__((packed));

struct spmd_wire_restored {
    uint32_t pid;
    uint32_t reserved;
    uint64_t restore_us;
} __attribute__((packed));

struct spmd_wire_running {
    uint32_t pid;
    uint32_t reserved;
    uint64_t resume_us; /* SIGCONT until the enclave's import finished */
    uint64_t import_us; /* the import itself, as the process measured it */
} __attribute__((packed));

struct spmd_wire_tunnel_end {
    int32_t status; /* 0: the stream ended cleanly; else why it did not */
    uint32_t reserved;
} __attribute__((packed));

enum spmd_wire_outcome {
    SPMD_OUTCOME_UNKNOWN = 0,     /* S has no record: D keeps waiting */
    SPMD_OUTCOME_PENDING = 1,     /* still being decided */
    SPMD_OUTCOME_HANDED_OVER = 2, /* D owns the key: D resumes its copy */
    SPMD_OUTCOME_KEPT = 3,        /* S kept the key: D discards its copy */
};

struct spmd_wire_state {
    uint8_t migration_id[16];
    uint32_t outcome; /* enum spmd_wire_outcome */
    uint32_t reserved;
} __attribute__((packed));

struct spmd_wire_error {
    int32_t status;
    uint16_t text_size; /* text bytes follow, no NUL, <= SPMD_WIRE_TEXT_MAX */
    uint16_t reserved;
} __attribute__((packed));

enum spmd_mode {
    SPMD_MODE_STOP = 0, /* stop-and-copy */
    SPMD_MODE_POST = 1, /* post-copy: CRIU lazy-pages */
    SPMD_MODE_PRE = 2,  /* pre-copy: CRIU pre-dump rounds (needs soft-dirty) */
};

_Static_assert(sizeof(struct spmd_wire_hello) == 16 + 16 + 128, "wire hello");
_Static_assert(sizeof(struct spmd_wire_file) == 16, "wire file");
_Static_assert(sizeof(struct spmd_wire_file_end) == 32, "wire file end");
_Static_assert(sizeof(struct spmd_wire_images_done) == 16, "wire images done");
_Static_assert(sizeof(struct spmd_wire_restore) == 72, "wire restore");
_Static_assert(sizeof(struct spmd_wire_restored) == 16, "wire restored");
_Static_assert(sizeof(struct spmd_wire_running) == 24, "wire running");
_Static_assert(sizeof(struct spmd_wire_state) == 24, "wire state");
_Static_assert(sizeof(struct spmd_wire_error) == 8, "wire error");
_Static_assert(sizeof(struct spmd_wire_tunnel_end) == 8, "wire tunnel end");

/* ---- Decoding (wire.c) ----
 * One function per message type, the only code that reads a body a peer
 * wrote. Each checks what can be checked from the body alone (and, where
 * named, the receiver's own context); what depends on the session's state
 * (order, totals so far) stays with the caller. body is borrowed and
 * `size` bytes long; decoded values are copies, never pointers into it.
 * Where a function takes why/why_size, a refusal writes there the text the
 * receiver sends back in its ERROR. Every function returns 0 or a negative
 * errno, as documented with it. */

/* An empty body (GO, DISCARD, OK): -EBADMSG when size is not 0. */
int spmd_wire_empty_decode(size_t size) __attribute__((warn_unused_result));

/* HELLO, either way: -EPROTO (not exactly a hello's size), -EPROTONOSUPPORT
 * (a version other than ours, flags other than exactly one of
 * SPMD_HELLO_*, or an unknown mode). source and name come out
 * NUL-terminated (their last byte is forced to 0). */
int spmd_wire_hello_decode(const uint8_t *body, size_t size, struct spmd_wire_hello *out, char *why,
                           size_t why_size) __attribute__((warn_unused_result));

/* An ME body a peer may relay into this host's ME: its header's type is
 * PEER_OFFER, PEER_CONFIRM or PEER_SEALED (the ME checks the rest). That
 * type in *me_type; -EPROTO for anything else or a body shorter than the
 * header. */
int spmd_wire_me_from_peer(const uint8_t *body, size_t size, uint16_t *me_type)
    __attribute__((warn_unused_result));

/* Whether `name` may name an image file on the wire and in the incoming
 * directory: 1..SPMD_WIRE_NAME_MAX printable ASCII bytes, no space, no
 * '/', not starting with '.' (so never "." or ".."). */
bool spmd_wire_image_name_ok(const char *name);

/* FILE_BEGIN: the header in *out and the file name, NUL-terminated, in
 * name. -EBADMSG when short, when the reserved field is set, the name's
 * size is 0, over SPMD_WIRE_NAME_MAX or not the rest of the body, the file
 * is over SPMD_WIRE_MAX_IMAGE_BYTES, or the name is refused (holds a NUL,
 * or fails spmd_wire_image_name_ok). */
int spmd_wire_file_begin_decode(const uint8_t *body, size_t size, struct spmd_wire_file *out,
                                char name[SPMD_WIRE_NAME_MAX + 1], char *why, size_t why_size)
    __attribute__((warn_unused_result));

/* FILE_BEGIN's body for a file of `file_size` bytes, `mode` and `name`
 * (spmd_wire_image_name_ok) into out, which holds sizeof(struct
 * spmd_wire_file) + SPMD_WIRE_NAME_MAX bytes; its size in *out_size.
 * -EINVAL for a refused name. */
int spmd_wire_file_begin_encode(uint64_t file_size, uint32_t mode, const char *name, uint8_t *out,
                                size_t *out_size) __attribute__((warn_unused_result));

/* FILE_DATA: a piece of the current file. -EBADMSG when it would run past
 * the file's size (file_size bytes, `got` already received). */
int spmd_wire_file_data_decode(size_t size, uint64_t file_size, uint64_t got, char *why,
                               size_t why_size) __attribute__((warn_unused_result));

/* FILE_END, IMAGES_DONE, RESTORED, RUNNING, QUERY and STATE: exactly the
 * struct, else -EBADMSG. Their values are the caller's to weigh. */
int spmd_wire_file_end_decode(const uint8_t *body, size_t size, struct spmd_wire_file_end *out)
    __attribute__((warn_unused_result));
int spmd_wire_images_done_decode(const uint8_t *body, size_t size,
                                 struct spmd_wire_images_done *out)
    __attribute__((warn_unused_result));
int spmd_wire_restored_decode(const uint8_t *body, size_t size, struct spmd_wire_restored *out)
    __attribute__((warn_unused_result));
int spmd_wire_running_decode(const uint8_t *body, size_t size, struct spmd_wire_running *out)
    __attribute__((warn_unused_result));
int spmd_wire_state_decode(const uint8_t *body, size_t size, struct spmd_wire_state *out)
    __attribute__((warn_unused_result));

/* RESTORE for a migration of `mode` (enum spmd_mode): -EBADMSG when not
 * exactly the struct; -EINVAL for unknown flags, SPMD_RESTORE_LAZY set
 * other than for post-copy (or missing for it), or a service address of
 * other bytes than digits, '.' and '/'. service_ip comes out
 * NUL-terminated (its last byte is forced to 0). */
int spmd_wire_restore_decode(const uint8_t *body, size_t size, uint32_t mode,
                             struct spmd_wire_restore *out, char *why, size_t why_size)
    __attribute__((warn_unused_result));

/* ERROR: the sender's status (negative) as the return value and its text
 * in text (NUL-terminated, cut to text_size - 1 bytes, every byte outside
 * printable ASCII replaced by '?'); text_size must be at least 1.
 * -EBADMSG when malformed: short, text over SPMD_WIRE_TEXT_MAX or not the
 * rest of the body, or a status that is not negative. A sender's own
 * -EBADMSG status comes back the same as a malformed body. */
int spmd_wire_error_decode(const uint8_t *body, size_t size, char *text, size_t text_size)
    __attribute__((warn_unused_result));

/* ERROR's body for `status` and the first SPMD_WIRE_TEXT_MAX bytes of
 * `text` into out (sizeof(struct spmd_wire_error) + SPMD_WIRE_TEXT_MAX
 * bytes); returns its size. */
size_t spmd_wire_error_encode(int32_t status, const char *text, uint8_t *out);

/* TUNNEL_DATA: -EBADMSG for an empty one (an end is TUNNEL_END). */
int spmd_wire_tunnel_data_decode(size_t size) __attribute__((warn_unused_result));

/* TUNNEL_END: the sender's status in *status; -EBADMSG when not exactly
 * the struct. */
int spmd_wire_tunnel_end_decode(const uint8_t *body, size_t size, int32_t *status)
    __attribute__((warn_unused_result));

#endif
