/* The Migration Enclave's escrow table and ecalls (src/enclaves/me/
 * me_enclave.c) compiled hosted for the me_peer and escrow harnesses. The
 * file is included rather than linked, as wireguard-tools' fuzzers include
 * the parser they test, so that a harness can start each input from a
 * fresh ME (g_me is static) and see what it loaded; nothing of the ME's
 * code is changed. */
#include "me_enclave.c"

#include "me_hosted.h"

void fuzz_me_reset(void)
{
    spm_wipe(&g_me, sizeof(g_me));
}

int fuzz_me_init(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                 size_t *out_size)
{
    return e_init(in, in_size, out, out_capacity, out_size);
}

int fuzz_me_handle(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    return e_handle(in, in_size, out, out_capacity, out_size);
}

bool fuzz_me_failed(void)
{
    return g_me.failed;
}

uint64_t fuzz_me_version(void)
{
    return g_me.version;
}

size_t fuzz_me_entry(size_t index, struct fuzz_me_entry_view *view)
{
    size_t found = 0;
    for (uint32_t i = 0; i < ME_MAX_ENTRIES; i++) {
        const struct me_entry *e = &g_me.entries[i];
        if (e->state == ENTRY_FREE)
            continue;
        if (found++ == index) {
            view->state = e->state;
            view->generation = e->generation;
            memcpy(view->lineage_id, e->lineage_id, 16);
            memcpy(view->checkpoint_id, e->checkpoint_id, 16);
            memcpy(view->header_digest, e->header_digest, 32);
        }
    }
    return found;
}

size_t fuzz_me_encode_entry(uint32_t state, const struct spm_me_checkpoint_ref *ref,
                            const struct spm_me_identity *owner, const uint8_t key[32],
                            uint8_t *out)
{
    struct me_entry e;
    memset(&e, 0, sizeof(e));
    memcpy(e.lineage_id, ref->lineage_id, 16);
    memcpy(e.checkpoint_id, ref->checkpoint_id, 16);
    e.generation = ref->generation;
    memcpy(e.header_digest, ref->header_digest, 32);
    memcpy(&e.owner, owner, sizeof(e.owner));
    e.state = state;
    memcpy(e.key, key, 32);
    e.changed_at = 1;
    memcpy(out, &e, sizeof(e));
    return sizeof(e);
}
