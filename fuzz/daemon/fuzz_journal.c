/* The migration journal spmd reads back at recovery (src/daemon/journal.c
 * spmd_journal_parse, called by migrate.c's journal_read on the file's
 * text): a file anyone with root on the host could have rewritten.
 *
 * Input: the file's bytes, at most SPMD_JOURNAL_MAX_SIZE (as journal_read
 * reads it, NUL-terminated one past its end, in an exact-size buffer).
 * Properties: an accepted journal has a pid > 0, a mode >= 0, a non-empty
 * phase, and every string NUL-terminated within its field; its id= line
 * is the hex of the decoded id; formatting the result and parsing that
 * again gives the same journal, and the same text once more. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/fileio.h"
#include "journal.h"

static void check_string(const char *field, size_t size)
{
    assert(memchr(field, 0, size) != NULL);
    assert(strchr(field, '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SPMD_JOURNAL_MAX_SIZE)
        return 0;
    char *text = malloc(size + 1);
    assert(text);
    memcpy(text, data, size);
    text[size] = 0;
    struct spmd_journal j;
    if (spmd_journal_parse(text, &j) < 0) {
        free(text);
        return 0;
    }
    assert(j.pid > 0 && j.mode >= 0 && j.phase[0]);
    assert(j.role == SPMD_ROLE_SOURCE || j.role == SPMD_ROLE_DEST);
    check_string(j.phase, sizeof(j.phase));
    check_string(j.peer, sizeof(j.peer));
    check_string(j.ip, sizeof(j.ip));
    check_string(j.refs, sizeof(j.refs));
    char hex[33];
    spm_hex(j.id, sizeof(j.id), hex);
    const char *id = strstr(text, "id=");
    assert(id);
    /* The first id= line is the one read (a line starting with it). */
    for (; id && !(id == text || id[-1] == '\n'); id = strstr(id + 1, "id="))
        ;
    assert(id && strncasecmp(id + 3, hex, 32) == 0);

    char out[2048], again_text[2048];
    int n = spmd_journal_format(&j, out, sizeof(out));
    assert(n > 0 && (size_t)n == strlen(out));
    struct spmd_journal again;
    assert(spmd_journal_parse(out, &again) == 0);
    assert(memcmp(&again, &j, sizeof(j)) == 0);
    assert(spmd_journal_format(&again, again_text, sizeof(again_text)) == n);
    assert(strcmp(out, again_text) == 0);
    free(text);
    return 0;
}
