/* The migration journal's text (journal.h): written by spmd, read back at
 * recovery from a file that anyone with root on the host could have
 * changed in between, so every value is checked as it is read. */
#include "journal.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/fileio.h"

int spmd_journal_format(const struct spmd_journal *j, char *text, size_t size)
{
    char hex[33];
    spm_hex(j->id, sizeof(j->id), hex);
    int n =
        snprintf(text, size, "id=%s\nrole=%s\nphase=%s\npid=%d\nmode=%d\npeer=%s\nip=%s\nrefs=%s\n",
                 hex, j->role == SPMD_ROLE_SOURCE ? "source" : "destination", j->phase, j->pid,
                 j->mode, j->peer, j->ip, j->refs);
    return n < 0 || (size_t)n >= size ? -E2BIG : n;
}

/* The value of the first "key=" line into out (cut to size - 1 bytes);
 * false, and out "", when there is none. */
static bool line_value(const char *text, const char *key, char *out, size_t size)
{
    size_t key_size = strlen(key);
    out[0] = 0;
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > key_size && strncmp(p, key, key_size) == 0 && p[key_size] == '=') {
            size_t v = len - key_size - 1;
            if (v >= size)
                v = size - 1;
            memcpy(out, p + key_size + 1, v);
            out[v] = 0;
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly 2 * size hex digits. */
static int hex_to_bytes(const char *hex, uint8_t *out, size_t size)
{
    if (strlen(hex) != size * 2)
        return -EINVAL;
    for (size_t i = 0; i < size; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* A decimal number in min..INT_MAX, digits only. */
static int decimal(const char *text, int min, int *value)
{
    long long v = 0;
    if (!text[0])
        return -EINVAL;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
        if (v > INT_MAX)
            return -EINVAL;
    }
    if (v < min)
        return -EINVAL;
    *value = (int)v;
    return 0;
}

int spmd_journal_parse(const char *text, struct spmd_journal *j)
{
    char value[1024];
    memset(j, 0, sizeof(*j));
    line_value(text, "id", value, sizeof(value));
    int ret = hex_to_bytes(value, j->id, sizeof(j->id));
    line_value(text, "role", value, sizeof(value));
    j->role = strcmp(value, "source") == 0 ? SPMD_ROLE_SOURCE : SPMD_ROLE_DEST;
    line_value(text, "phase", j->phase, sizeof(j->phase));
    line_value(text, "pid", value, sizeof(value));
    if (ret == 0)
        ret = decimal(value, 1, &j->pid);
    if (ret == 0 && line_value(text, "mode", value, sizeof(value)))
        ret = decimal(value, 0, &j->mode);
    line_value(text, "peer", j->peer, sizeof(j->peer));
    line_value(text, "ip", j->ip, sizeof(j->ip));
    line_value(text, "refs", j->refs, sizeof(j->refs));
    return ret < 0 || !j->phase[0] ? -EBADMSG : 0;
}
