/* A criu dump's run id as spmd reads it back from the dump's own files
 * (src/daemon/criu_ids.c): the protobuf of inventory.img and the first
 * line of dump.log, both in an image directory other processes could
 * write. spmd builds an `nft delete table` command from the result.
 *
 * Input: byte 0's low bit picks the file (0: inventory.img, 1: dump.log),
 * bits 1-7 the caller's id buffer size (1..128; spmd passes 64); the rest
 * is the file's first bytes (at most what spmd reads of it), in an
 * exact-size buffer. Properties: an id is NUL-terminated within its
 * buffer, 8 or more characters of [0-9a-f-] only (nothing a shell, nft
 * or a path could read otherwise), and occurs in the input; a refused
 * file leaves the id empty. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "criu_ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int log = data[0] & 1;
    size_t id_size = (size_t)(data[0] >> 1) + 1;
    size_t file_size = size - 1;
    size_t limit = log ? SPMD_CRIU_LOG_LINE_READ : SPMD_CRIU_INVENTORY_READ;
    if (file_size > limit)
        file_size = limit;
    uint8_t *file = malloc(file_size ? file_size : 1);
    char *id = malloc(id_size);
    assert(file && id);
    memcpy(file, data + 1, file_size);

    int ret = log ? spmd_criu_run_id_log((const char *)file, file_size, id, id_size)
                  : spmd_criu_run_id_inventory(file, file_size, id, id_size);
    if (ret < 0) {
        assert(ret == -EBADMSG || ret == -ENOENT);
        assert(id[0] == 0);
    } else {
        assert(ret == 0);
        size_t len = strnlen(id, id_size);
        assert(len < id_size && len >= 8);
        assert(strspn(id, "0123456789abcdef-") == len);
        assert(memmem(file, file_size, id, len) != NULL);
    }
    free(id);
    free(file);
    return 0;
}
