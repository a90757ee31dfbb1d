/* The migration journal's text (migrate.c keeps one per migration in
 * <state>/migrations/<id>/journal): the key=value lines spmd writes before
 * each step and reads back at recovery. On disk it is outside spmd's
 * control between the two, so reading it back is parsing untrusted text:
 * one parser here, a fuzz target (fuzz/daemon/fuzz_journal.c). */
#ifndef SPM_DAEMON_JOURNAL_H
#define SPM_DAEMON_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

/* Largest journal file spmd reads back. */
#define SPMD_JOURNAL_MAX_SIZE 8192u

enum spmd_journal_role { SPMD_ROLE_SOURCE = 1, SPMD_ROLE_DEST = 2 };

struct spmd_journal {
    uint8_t id[16];
    enum spmd_journal_role role;
    char phase[24];
    int pid;
    int mode;
    char peer[64]; /* source: destination "ADDR:PORT"; destination: source's */
    char ip[64];   /* the service address that moves, or "" */
    char refs[1024];
};

/* The journal's text for j into text (size bytes, NUL-terminated): the
 * length written, or -E2BIG when it does not fit. */
int spmd_journal_format(const struct spmd_journal *j, char *text, size_t size)
    __attribute__((warn_unused_result));

/* Parses a journal's NUL-terminated text into *j: the first line of each
 * key counts, unknown lines are ignored, a string value longer than its
 * field is cut to fit. -EBADMSG (j is then undefined) unless id= is 32 hex
 * digits, pid= a decimal number in 1..INT_MAX, mode= one in 0..INT_MAX
 * (or absent: 0) and phase= is present and not empty; a role= other than
 * "source" means the destination. */
int spmd_journal_parse(const char *text, struct spmd_journal *j)
    __attribute__((warn_unused_result));

#endif
