/* The run id of a criu dump, which names the nft table of its network
 * lock ("CRIU-" and the id): spmd reads it back from the dump's own files
 * (CRIU's inventory.img, or the first line of dump.log) to drop exactly
 * that dump's table. Both files sit in an image directory other processes
 * on the host could write, so their parsing is here, on buffers, with a
 * fuzz target (fuzz/daemon/fuzz_criu_ids.c). */
#ifndef SPM_DAEMON_CRIU_IDS_H
#define SPM_DAEMON_CRIU_IDS_H

#include <stddef.h>
#include <stdint.h>

/* How much of inventory.img, and of dump.log's first line, is read. */
#define SPMD_CRIU_INVENTORY_READ 4096u
#define SPMD_CRIU_LOG_LINE_READ  127u

/* dump_criu_run_id (field 13 of inventory_entry) from the `size` bytes of
 * an inventory.img (its magic, the message's size, the message). On
 * success id holds 8 to id_size - 1 characters of [0-9a-f-] and a NUL.
 * -EBADMSG (wrong magic, message past the buffer, a malformed field, a run
 * id of other characters or not fitting), -ENOENT (no run id). */
int spmd_criu_run_id_inventory(const uint8_t *buf, size_t size, char *id, size_t id_size)
    __attribute__((warn_unused_result));

/* The run id from the first line of a dump.log at -v3, "(TIME) CRIU run id
 * = ID", within the first `size` bytes of text (only its first
 * SPMD_CRIU_LOG_LINE_READ bytes are looked at). The same promise on id;
 * -ENOENT when the line is not there. */
int spmd_criu_run_id_log(const char *text, size_t size, char *id, size_t id_size)
    __attribute__((warn_unused_result));

#endif
