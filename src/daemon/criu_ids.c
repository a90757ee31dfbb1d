/* Reading a criu dump's run id from its own files (criu_ids.h). */
#include "criu_ids.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* One protobuf varint at *p (below end); false when it runs past end. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *value)
{
    *value = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;
        *value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return true;
    }
    return false;
}

int spmd_criu_run_id_inventory(const uint8_t *buf, size_t size, char *id, size_t id_size)
{
    enum { INVENTORY_MAGIC = 0x58313116, RUN_ID_FIELD = 13 };
    id[0] = 0;
    if (size < 8 ||
        (uint32_t)(buf[0] | buf[1] << 8 | buf[2] << 16 | (uint32_t)buf[3] << 24) != INVENTORY_MAGIC)
        return -EBADMSG;
    uint32_t message = (uint32_t)(buf[4] | buf[5] << 8 | buf[6] << 16 | (uint32_t)buf[7] << 24);
    if (message > size - 8)
        return -EBADMSG;
    const uint8_t *p = buf + 8, *end = p + message;
    while (p < end) {
        uint64_t key, value;
        if (!pb_varint(&p, end, &key))
            return -EBADMSG;
        switch (key & 7) {
        case 0:
            if (!pb_varint(&p, end, &value))
                return -EBADMSG;
            break;
        case 1:
        case 5:
            if ((size_t)(end - p) < ((key & 7) == 1 ? 8u : 4u))
                return -EBADMSG;
            p += (key & 7) == 1 ? 8 : 4;
            break;
        case 2:
            if (!pb_varint(&p, end, &value) || value > (uint64_t)(end - p))
                return -EBADMSG;
            if (key >> 3 == RUN_ID_FIELD) {
                if (value < 8 || value >= id_size)
                    return -EBADMSG;
                for (uint64_t i = 0; i < value; i++)
                    if (!p[i] || !strchr("0123456789abcdef-", p[i]))
                        return -EBADMSG;
                memcpy(id, p, (size_t)value);
                id[value] = 0;
                return 0;
            }
            p += value;
            break;
        default:
            return -EBADMSG;
        }
    }
    return -ENOENT;
}

int spmd_criu_run_id_log(const char *text, size_t size, char *id, size_t id_size)
{
    /* As fgets would read it: up to the first newline, at most 127 bytes. */
    char line[SPMD_CRIU_LOG_LINE_READ + 1], found[64];
    size_t len = size < SPMD_CRIU_LOG_LINE_READ ? size : SPMD_CRIU_LOG_LINE_READ;
    const char *nl = memchr(text, '\n', len);
    if (nl)
        len = (size_t)(nl - text) + 1;
    memcpy(line, text, len);
    line[len] = 0;
    id[0] = 0;
    bool ok = len && sscanf(line, "(%*[0-9.]) CRIU run id = %63[0-9a-f-]", found) == 1 &&
              strlen(found) >= 8 && strlen(found) < id_size;
    if (!ok)
        return -ENOENT;
    memcpy(id, found, strlen(found) + 1);
    return 0;
}
