/* The boundary between the kvs host (untrusted: sockets, RESP parsing) and
 * the kvs enclave (trusted: the data, the signing key, every reply byte).
 * The host turns what clients send into a batch of commands and makes one
 * ecall per batch, so a pipelining client pays the enclave transition once
 * per read rather than once per command. Every length in a batch is the
 * host's claim; the enclave checks them all before it executes anything.
 *
 * KVS_ECALL_BATCH input, little-endian, no padding:
 *     struct kvs_batch_header { magic, command_count }
 *     command_count times:
 *         u32 argc                     (1 .. KVS_MAX_ARGC)
 *         argc times: u32 size, then size bytes
 * Output:
 *     struct kvs_batch_reply { status, commands_done, needed_size }
 *     then the RESP2 replies of the first commands_done commands, concatenated.
 * The ecall returns 0 with status 0 when every command ran. When the reply of
 * the next command does not fit in the rest of the output buffer it returns 0
 * with status -ENOSPC: commands_done commands ran, their replies follow, the
 * next command did NOT run, and needed_size is the size of its reply alone;
 * the host resends the remaining commands with at least
 * sizeof(struct kvs_batch_reply) + needed_size bytes of output. (The runtime
 * copies output back only for a zero return, hence the status field.) A batch
 * that is malformed in any way is refused whole with -EBADMSG before any
 * command runs; an output buffer smaller than the reply header gets -ENOSPC. */
#ifndef KVS_ABI_H
#define KVS_ABI_H

#include <stdint.h>

enum kvs_ecall {
    KVS_ECALL_BATCH,
};

#define KVS_BATCH_MAGIC 0x3142564bu /* "KVB1" */

struct kvs_batch_header {
    uint32_t magic;
    uint32_t command_count;
} __attribute__((packed));

struct kvs_batch_reply {
    int32_t status;
    uint32_t commands_done;
    uint64_t needed_size;
} __attribute__((packed));

/* Limits both sides enforce. One argument stays well below the 64 MiB an
 * ecall may return, so the reply to GET of the largest value always fits. */
#define KVS_MAX_ARGC         65536u
#define KVS_MAX_ARG_SIZE     (32u << 20)
#define KVS_MAX_COMMAND_SIZE (48u << 20) /* all arguments of one command */

_Static_assert(sizeof(struct kvs_batch_header) == 8, "batch header");
_Static_assert(sizeof(struct kvs_batch_reply) == 16, "batch reply");

#endif
