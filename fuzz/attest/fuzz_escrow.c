/* The Migration Enclave's sealed escrow state as it loads it back from
 * disk at INIT (src/enclaves/me/me_enclave.c e_init; layout in me_state.h),
 * and the sealed-data envelope it arrives in (src/trusted/sgx.c
 * spm_unseal). spmd hands the ME whatever file it finds: a stale copy, one
 * of another escrow, a truncated one, or bytes of its own.
 *
 * The state is AES-GCM sealed, so fuzzed ciphertext would never
 * authenticate: in the default mode the harness seals the fuzzed plaintext
 * (header as AAD, entries as text) with the ME's own spm_seal under the
 * stand-in enclave's fixed seal key, and gives that to INIT, so the layout
 * checks, the entry states and the rollback logic behind the seal see
 * fuzzed bytes. In raw mode the bytes go to INIT and to spm_unseal as they
 * are.
 *
 * Input: byte 0 is the mode:
 *   bit 0     raw: the rest is the sealed blob itself
 *   bit 1     spmd's policy allows debug enclaves
 *   bits 2-3  the platform counter of the state's escrow id: 0 at the
 *             state's version with its digest as tag (the current state),
 *             1 one behind with the state's prev_digest as tag (an
 *             interrupted update, which INIT completes), 2 never used,
 *             3 one ahead (a rollback)
 *   bit 4     the counter increment fails
 *   bit 5     after a successful INIT, list the LEAVING entries and hand
 *             one over (PEER_LIST, PEER_HANDOVER), through the table
 * then, unless raw, byte 1 is the AAD's size, the AAD (the 72-byte
 * me_state_header) and the entries.
 *
 * Checked: INIT succeeds only when the header is this ME's layout, the
 * entries are exactly entry_count of known states, and the counter vouches
 * for the state; then the ME reports the header's version, count and
 * escrow id and holds exactly those entries; a failed INIT leaves the ME
 * uninitialised with an empty table; spm_unseal accepts only what
 * authenticates and its AAD lies inside the blob. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "me_client.h"
#include "me_hosted.h"
#include "me_state.h"
#include "spm/abi/me_abi.h"
#include "spm/trts.h"
#include "trusted_hosted.h"

#define MODE_RAW        0x01u
#define MODE_DEBUG      0x02u
#define MODE_COUNTER    0x0cu
#define MODE_FAIL_STEP  0x10u
#define MODE_USE        0x20u
#define COUNTER_CURRENT 0x00u
#define COUNTER_BEHIND  0x04u
#define COUNTER_NONE    0x08u
#define HEADER_SIZE     sizeof(struct spm_me_message_header)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_trts_init();
    return 0;
}

static void check_unseal(const uint8_t *sealed, size_t size)
{
    uint8_t *text = malloc(size ? size : 1);
    assert(text);
    size_t text_size = 0, aad_size = 0;
    const uint8_t *aad = NULL;
    int ret = spm_unseal(sealed, size, text, size, &text_size, &aad, &aad_size);
    assert(ret == 0 || ret == -EBADMSG || ret == -ENOSPC);
    if (ret == 0) {
        assert(size >= sizeof(struct sgx_sealed_data));
        assert(aad >= sealed && aad_size <= size && aad <= sealed + size - aad_size);
        assert(text_size + aad_size == size - sizeof(struct sgx_sealed_data));
    }
    free(text);
}

/* After INIT failed: nothing loaded, nothing served. */
static void check_refused(void)
{
    struct fuzz_me_entry_view view;
    assert(fuzz_me_entry(0, &view) == 0);
    uint8_t msg[HEADER_SIZE], reply[64];
    struct spm_me_message_header h;
    trts_me_header(&h, SPM_ME_MSG_PEER_LIST, 0);
    memcpy(msg, &h, sizeof(h));
    size_t reply_size = 0;
    assert(fuzz_me_handle(msg, sizeof(msg), reply, sizeof(reply), &reply_size) == -EAGAIN);
}

/* After INIT succeeded: the table is the state's. */
static void check_loaded(const struct me_state_header *header, const uint8_t *text,
                         const struct me_init_out *out)
{
    assert(out->version == header->version && out->entry_count == header->entry_count);
    assert(out->fresh == 0 && memcmp(out->escrow_id, header->escrow_id, 16) == 0);
    size_t entry_size =
        header->format == ME_STATE_FORMAT_2 ? ME_STATE_ENTRY_SIZE_V2 : ME_STATE_ENTRY_SIZE;
    assert(header->format == ME_STATE_FORMAT || header->format == ME_STATE_FORMAT_2);
    struct fuzz_me_entry_view view;
    size_t count = fuzz_me_entry(0, &view);
    assert(count == header->entry_count);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = text + i * entry_size;
        uint64_t generation;
        uint32_t state;
        memcpy(&generation, e + 32, 8);
        memcpy(&state, e + 152, 4);
        fuzz_me_entry(i, &view);
        assert(view.state == state && view.generation == generation);
        assert(memcmp(view.lineage_id, e, 16) == 0 && memcmp(view.checkpoint_id, e + 16, 16) == 0);
        assert(state >= 1 && state <= 6);
        if (header->format == ME_STATE_FORMAT_2)
            assert(state <= 3);
    }
}

/* Uses the loaded table: PEER_LIST, and a HANDOVER without a session. */
static void use_table(void)
{
    uint8_t *reply = malloc(SPM_ME_MAX_MESSAGE + HEADER_SIZE);
    assert(reply);
    uint8_t msg[HEADER_SIZE + sizeof(struct spm_me_peer_checkpoint)];
    struct spm_me_message_header h;
    trts_me_header(&h, SPM_ME_MSG_PEER_LIST, 0);
    memcpy(msg, &h, HEADER_SIZE);
    size_t reply_size = 0;
    assert(fuzz_me_handle(msg, HEADER_SIZE, reply, SPM_ME_MAX_MESSAGE + HEADER_SIZE, &reply_size) ==
           0);
    struct spm_me_message_header rh;
    assert(trts_me_check_header(reply, reply_size, &rh) == 0);
    if (rh.type == SPM_ME_MSG_PEER_LIST) {
        struct spm_me_peer_list list;
        memcpy(&list, reply + HEADER_SIZE, sizeof(list));
        assert(reply_size == HEADER_SIZE + sizeof(list) +
                                 (size_t)list.count * sizeof(struct spm_me_peer_leaving));
        size_t leaving = 0;
        struct fuzz_me_entry_view view;
        for (size_t i = 0, n = fuzz_me_entry(0, &view); i < n; i++) {
            fuzz_me_entry(i, &view);
            leaving += view.state == 4; /* LEAVING */
        }
        assert(list.count == leaving);
    }
    struct fuzz_me_entry_view view;
    struct spm_me_peer_checkpoint req;
    memset(&req, 0, sizeof(req));
    if (fuzz_me_entry(0, &view) > 0) {
        memcpy(req.ref.lineage_id, view.lineage_id, 16);
        memcpy(req.ref.checkpoint_id, view.checkpoint_id, 16);
        req.ref.generation = view.generation;
        memcpy(req.ref.header_digest, view.header_digest, 32);
    }
    trts_me_header(&h, SPM_ME_MSG_PEER_RESOLVE, sizeof(req));
    memcpy(msg, &h, HEADER_SIZE);
    memcpy(msg + HEADER_SIZE, &req, sizeof(req));
    assert(fuzz_me_handle(msg, sizeof(msg), reply, SPM_ME_MAX_MESSAGE + HEADER_SIZE, &reply_size) ==
           0);
    assert(trts_me_check_header(reply, reply_size, &rh) == 0);
    free(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    fuzz_trts_reset();
    fuzz_me_reset();
    fuzz_me_peer_reset();

    uint8_t *sealed = NULL;
    size_t sealed_size = 0;
    struct me_state_header header;
    memset(&header, 0, sizeof(header));
    if (mode & MODE_RAW) {
        sealed_size = size - 1;
        sealed = malloc(sealed_size ? sealed_size : 1);
        assert(sealed);
        memcpy(sealed, data + 1, sealed_size);
        check_unseal(sealed, sealed_size);
    } else {
        if (size < 2)
            return 0;
        size_t aad_size = data[1];
        if (aad_size > size - 2)
            aad_size = size - 2;
        const uint8_t *aad = data + 2;
        const uint8_t *text = aad + aad_size;
        size_t text_size = size - 2 - aad_size;
        memcpy(&header, aad, aad_size < sizeof(header) ? aad_size : sizeof(header));
        fuzz_trts_seal(aad, aad_size, text, text_size, &sealed, &sealed_size);
        check_unseal(sealed, sealed_size);
        uint8_t digest[32];
        tc_sha256(sealed, sealed_size, digest);
        switch (mode & MODE_COUNTER) {
        case COUNTER_CURRENT:
            fuzz_trts_counter_set(header.escrow_id, header.version, digest);
            break;
        case COUNTER_BEHIND:
            fuzz_trts_counter_set(header.escrow_id, header.version - 1, header.prev_digest);
            break;
        case COUNTER_NONE:
            break;
        default:
            fuzz_trts_counter_set(header.escrow_id, header.version + 1, digest);
            break;
        }
    }
    fuzz_trts_fail_counter = (mode & MODE_FAIL_STEP) != 0;

    size_t in_size = sizeof(struct spm_me_init_in) + sealed_size;
    uint8_t *in = malloc(in_size);
    assert(in);
    struct spm_me_init_in init = {.policy = (mode & MODE_DEBUG) ? SPM_ME_POLICY_ALLOW_DEBUG : 0};
    memcpy(in, &init, sizeof(init));
    memcpy(in + sizeof(init), sealed, sealed_size);
    struct me_init_out out;
    size_t out_size = 0;
    int ret = fuzz_me_init(in, in_size, (uint8_t *)&out, sizeof(out), &out_size);
    assert(ret == 0 || ret == -EBADMSG || ret == -ESTALE || ret == -EIO || ret == -ENOMEM);
    if (ret < 0) {
        check_refused();
    } else if (sealed_size == 0) {
        assert(out.fresh == 1 && out.entry_count == 0); /* no state: a new escrow */
    } else {
        /* What INIT loaded must be what the blob holds (in raw mode too: the
         * fuzzer can learn a tag under the fixed key from comparisons). */
        uint8_t *plain = malloc(sealed_size);
        const uint8_t *aad = NULL;
        size_t plain_size = 0, aad_size = 0;
        assert(plain && spm_unseal(sealed, sealed_size, plain, sealed_size, &plain_size, &aad,
                                   &aad_size) == 0);
        assert(aad_size == sizeof(header) && out_size == sizeof(out));
        memcpy(&header, aad, sizeof(header));
        check_loaded(&header, plain, &out);
        if (mode & MODE_USE)
            use_table();
        free(plain);
    }
    free(in);
    free(sealed);
    return 0;
}
