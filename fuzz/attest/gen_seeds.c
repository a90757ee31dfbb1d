/* Writes the seed corpora of the attestation harnesses from the test PKI
 * (testpki/: `spm ca init`, `spm platform init --ca`, `spm host-cert`):
 *   gen_attest_seeds FUZZ_CORPUS_DIR     (e.g. fuzz/corpus)
 * quote, me_quote: quotes the test platform's simulated QE makes
 * (spm_sim_quote), plain and in re-sign mode; cert_chain: the quote chain,
 * the TLS host chain, the CA alone, a chain with its root given in the
 * input; platform: the test platform's files and a counter file the store
 * wrote, in the harness's layout; escrow: plaintext escrow states (format 3
 * and 2) in the harness's layout, sealed by the harness; me_peer: step
 * sequences through both handshakes and the hand-over. Quotes carry a
 * fixed report body, so a regeneration writes the same bytes whenever the
 * platform and its certificates are the same. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/common/fileio.h"
#include "host/crypto/ecdsa.h"
#include "host/crypto/hash.h"
#include "host/platform/sim/sim.h"
#include "spm/abi/me_abi.h"

#define PKI FUZZ_PKI_DIR

static const char *g_out;

static void die(const char *what)
{
    fprintf(stderr, "gen_attest_seeds: %s\n", what);
    exit(1);
}

static void put(const char *harness, const char *name, const void *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", g_out, harness);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", g_out, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        die(path);
}

struct buf {
    uint8_t data[1 << 16];
    size_t size;
};

static void add(struct buf *b, const void *data, size_t size)
{
    if (size > sizeof(b->data) - b->size)
        die("seed too large");
    memcpy(b->data + b->size, data, size);
    b->size += size;
}

static void add8(struct buf *b, uint8_t v)
{
    add(b, &v, 1);
}

static void add16(struct buf *b, uint16_t v)
{
    add(b, &v, 2); /* little-endian host */
}

static void add_file(struct buf *b, const char *path, int with_size)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (spm_read_file(path, 1 << 16, &data, &size) < 0)
        die(path);
    if (with_size)
        add16(b, (uint16_t)size);
    add(b, data, size);
    free(data);
}

static void quotes(struct spm_sim_platform *p)
{
    struct sgx_secs secs;
    memset(&secs, 0, sizeof(secs));
    memset(secs.mr_enclave, 0x61, 32);
    memset(secs.mr_signer, 0x62, 32);
    secs.isv_prod_id = 1;
    secs.isv_svn = 2;
    secs.attributes.flags = SGX_FLAGS_INITTED | SGX_FLAGS_MODE64BIT;
    secs.attributes.xfrm = SGX_XFRM_LEGACY;
    struct sgx_target_info qe;
    struct sgx_report report;
    uint8_t report_data[64] = "report data of a seed quote";
    spm_sim_qe_target_info(p, &qe);
    if (spm_sim_ereport(p, &secs, &qe, report_data, &report) < 0)
        die("EREPORT");
    uint8_t *quote = NULL;
    size_t quote_size = 0;
    if (spm_sim_quote(p, &report, &quote, &quote_size) < 0)
        die("quote");
    struct buf b = {.size = 0};
    add8(&b, 0); /* as is */
    add(&b, quote, quote_size);
    put("quote", "quote", b.data, b.size);
    put("me_quote", "quote", b.data, b.size);
    b.data[0] = 0x07; /* re-signed, key set, QE REPORTDATA bound */
    put("quote", "quote-resigned", b.data, b.size);
    put("me_quote", "quote-resigned", b.data, b.size);
    b.data[0] = 0x01;
    put("quote", "quote-resigned-only", b.data, b.size);
    put("me_quote", "quote-resigned-only", b.data, b.size);
    free(quote);
}

static void cert_chains(void)
{
    struct buf b = {.size = 0};
    add8(&b, 0x30);
    add_file(&b, PKI "/platform/attest.crt", 0);
    add_file(&b, PKI "/platform/root.crt", 0);
    put("cert_chain", "quote-chain", b.data, b.size);
    b.size = 0;
    add8(&b, 0xf1); /* root in the input */
    add_file(&b, PKI "/host/ca.crt", 1);
    add_file(&b, PKI "/host/host.crt", 0);
    add_file(&b, PKI "/host/ca.crt", 0);
    put("cert_chain", "host-chain-own-root", b.data, b.size);
    b.size = 0;
    add8(&b, 0x00);
    add_file(&b, PKI "/ca/ca.crt", 0);
    put("cert_chain", "ca-alone", b.data, b.size);
}

static const uint8_t g_mrsigner[32] = {0x11, 0x22, 0x33}; /* fuzz_platform.c */
static const uint8_t g_counter_id[16] = {0x44, 0x55};

static void platform_files(void)
{
    /* A copy of the test platform whose counter the store advances. */
    char dir[] = "/tmp/spm-gen-seeds-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    static const char *const files[] = {"platform.state", "attest.key", "attest.crt", "root.crt"};
    char path[4096];
    for (int i = 0; i < 4; i++) {
        uint8_t *data = NULL;
        size_t size = 0;
        snprintf(path, sizeof(path), "%s/platform/%s", PKI, files[i]);
        if (spm_read_file(path, 1 << 16, &data, &size) < 0)
            die(path);
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        if (spm_write_file_atomic(path, data, size, 0600) < 0)
            die(path);
        free(data);
    }
    struct spm_sim_platform *p = NULL;
    if (spm_sim_platform_open(dir, &p) < 0)
        die("cannot open the copy of the test platform");
    uint8_t tag[32];
    memset(tag, 0x74, sizeof(tag));
    uint64_t value = 0;
    if (spm_sim_counter_increment(p, g_mrsigner, g_counter_id, tag, &value) < 0 ||
        spm_sim_counter_increment(p, g_mrsigner, g_counter_id, tag, &value) < 0)
        die("counter");
    uint8_t name_input[48], digest[32];
    char hex[33];
    memcpy(name_input, g_mrsigner, 32);
    memcpy(name_input + 32, g_counter_id, 16);
    spm_sha256(name_input, sizeof(name_input), digest);
    spm_hex(digest, 16, hex);

    struct buf b = {.size = 0};
    add8(&b, 0x9f); /* all five files, and a quote */
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/platform/%s", PKI, files[i]);
        add_file(&b, path, 1);
    }
    snprintf(path, sizeof(path), "%s/counters/%s", dir, hex);
    add_file(&b, path, 1);
    put("platform", "platform-with-counter", b.data, b.size);
    b.data[0] = 0x0f; /* no counter file: it reads 0 */
    b.size -= 2 + 136;
    put("platform", "platform", b.data, b.size);

    b.size = 0;
    add8(&b, 0x7f); /* all five files, checksums recomputed by the harness */
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/platform/%s", PKI, files[i]);
        add_file(&b, path, 1);
    }
    snprintf(path, sizeof(path), "%s/counters/%s", dir, hex);
    add_file(&b, path, 1);
    put("platform", "platform-resummed", b.data, b.size);

    quotes(p);
    spm_sim_platform_close(p);
    snprintf(path, sizeof(path), "%s/counters/%s", dir, hex);
    unlink(path);
    snprintf(path, sizeof(path), "%s/counters/lock", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/counters", dir);
    rmdir(path);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* ---- The ME's escrow state (me_state.h; entries as me_enclave.c's struct
 * me_entry: format 3 is 312 bytes, format 2 its first 216) ---- */

static const struct spm_me_checkpoint_ref g_ref = {
    .checkpoint_id = {0x43, 0x43, 0x43, 0x43, 0x43, 0x43, 0x43, 0x43, 0x43, 0x43, 0x43, 0x43, 0x43,
                      0x43, 0x43, 0x43},
    .lineage_id = {0x4c, 0x4c, 0x4c, 0x4c, 0x4c, 0x4c, 0x4c, 0x4c, 0x4c, 0x4c, 0x4c, 0x4c, 0x4c,
                   0x4c, 0x4c, 0x4c},
    .generation = 7,
}; /* header_digest 0x48 x 32, filled in by main (fuzz_me_peer.c's g_ref) */

static void add_entry(struct buf *b, unsigned format, uint32_t state, uint8_t lineage,
                      uint64_t generation)
{
    uint8_t e[312];
    memset(e, 0, sizeof(e));
    memset(e, lineage, 16);                           /* lineage_id */
    memset(e + 16, 0x43, 16);                         /* checkpoint_id */
    memcpy(e + 32, &generation, 8);                   /* generation */
    memset(e + 40, 0x48, 32);                         /* header_digest */
    memset(e + 72, 0x61, 32);                         /* owner.mr_enclave */
    memset(e + 104, 0x62, 32);                        /* owner.mr_signer */
    e[136] = 1;                                       /* owner.isv_prod_id */
    e[138] = 1;                                       /* owner.isv_svn */
    e[144] = SGX_FLAGS_INITTED | SGX_FLAGS_MODE64BIT; /* owner.attributes_flags */
    memcpy(e + 152, &state, 4);                       /* state */
    memset(e + 160, 0x4b, 32);                        /* key */
    e[208] = 1;                                       /* changed_at */
    if (state == 4 || state == 5) { /* LEAVING, LEFT: out_handover_id, out_platform_id */
        memset(e + 264, 0x68, 16);
        memset(e + 280, 0x70, 32);
    }
    add(b, e, format == 3 ? 312 : 216);
}

static void escrow_state(const char *name, uint8_t mode, unsigned format, uint32_t count,
                         uint64_t version, const uint32_t *states)
{
    struct buf b = {.size = 0};
    add8(&b, mode);
    add8(&b, 72);
    uint64_t magic = 0x5752435345454d53ull;
    add(&b, &magic, 8);
    add(&b, &format, 4);
    add(&b, &count, 4);
    add(&b, &version, 8);
    uint8_t escrow_id[16], prev[32];
    memset(escrow_id, 0x45, sizeof(escrow_id));
    memset(prev, version > 1 ? 0x50 : 0, sizeof(prev));
    add(&b, escrow_id, 16);
    add(&b, prev, 32);
    for (uint32_t i = 0; i < count; i++)
        add_entry(&b, format, states[i], (uint8_t)(0x4c + i), 7 + i);
    put("escrow", name, b.data, b.size);
}

static void escrow(void)
{
    static const uint32_t all[] = {1, 2, 3, 4, 5, 6};
    escrow_state("format3-all-states", 0x20, 3, 6, 3, all);
    escrow_state("format3-interrupted-update", 0x24, 3, 2, 4, all);
    escrow_state("format2", 0x20, 2, 3, 2, all);
    escrow_state("format3-empty", 0x00, 3, 0, 1, all);
    escrow_state("format3-rollback", 0x2c, 3, 1, 2, all);
    /* raw: a sealed blob's header with nothing authenticated */
    struct buf b = {.size = 0};
    add8(&b, 0x01);
    uint8_t blob[560 + 72];
    memset(blob, 0, sizeof(blob));
    blob[0] = 4; /* key_request.key_name SEAL */
    uint32_t payload = 72;
    memcpy(blob + 528, &payload, 4);
    add(&b, blob, sizeof(blob));
    put("escrow", "raw-envelope", b.data, b.size);
}

/* ---- ME-to-ME step sequences (fuzz_me_peer.c's opcodes) ---- */

static void add_request(struct buf *b, uint16_t type, int32_t status)
{
    add(b, &type, 2);
    add16(b, 0);
    add(b, &status, 4);
}

static void me_peer(const uint8_t platform_id[32])
{
    struct spm_me_checkpoint_ref ref = g_ref;
    memset(ref.header_digest, 0x48, 32);
    struct spm_me_identity owner;
    memset(&owner, 0, sizeof(owner));
    memset(owner.mr_enclave, 0x61, 32);
    memset(owner.mr_signer, 0x62, 32);
    owner.isv_prod_id = 1;
    owner.isv_svn = 1;
    owner.attributes_flags = SGX_FLAGS_INITTED | SGX_FLAGS_MODE64BIT;

    /* The ME as S: OPEN, ACCEPT, READY, HANDOVER, TRANSFER_ACK, RESOLVE, LIST. */
    struct buf b = {.size = 0};
    add8(&b, 0);
    add8(&b, 1);
    add8(&b, 2), add8(&b, 0);
    add8(&b, 5), add8(&b, 0x01), add8(&b, 8), add_request(&b, SPM_ME_PEER_READY, 0);
    add8(&b, 6), add8(&b, 0);
    add8(&b, 5), add8(&b, 0x21), add8(&b, 8 + 88);
    add_request(&b, SPM_ME_PEER_TRANSFER_ACK, 0);
    add(&b, (uint8_t[16]){0}, 16);
    add(&b, &ref, sizeof(ref));
    add8(&b, 7), add8(&b, 0);
    add8(&b, 8);
    put("me_peer", "source-handover-acked", b.data, b.size);

    /* The ME as S, the hand-over resolved as aborted. */
    b.size = 0;
    add8(&b, 0);
    add8(&b, 1);
    add8(&b, 2), add8(&b, 0);
    add8(&b, 5), add8(&b, 0x01), add8(&b, 8), add_request(&b, SPM_ME_PEER_READY, 0);
    add8(&b, 6), add8(&b, 0);
    add8(&b, 7), add8(&b, 0);
    add8(&b, 5), add8(&b, 0x21), add8(&b, 8 + 96);
    add_request(&b, SPM_ME_PEER_RESOLVED, 0);
    add(&b, (uint8_t[16]){0}, 16);
    add(&b, &ref, sizeof(ref));
    uint32_t verdict = SPM_ME_PEER_ABORTED, reserved = 0;
    add(&b, &verdict, 4);
    add(&b, &reserved, 4);
    add8(&b, 8);
    put("me_peer", "source-resolved-aborted", b.data, b.size);

    /* The ME as D: OFFER, CONFIRM, TRANSFER, RESOLVE. */
    b.size = 0;
    add8(&b, 0);
    add8(&b, 3), add8(&b, 0);
    uint64_t session = 0x5345535331;
    add(&b, &session, 8);
    add8(&b, 4), add8(&b, 0);
    struct spm_me_checkpoint_ref other = ref;
    memset(other.lineage_id, 0x6c, 16); /* a lineage D does not hold */
    add8(&b, 5), add8(&b, 0x00), add8(&b, 8 + 232);
    add_request(&b, SPM_ME_PEER_TRANSFER, 0);
    uint8_t handover[16];
    memset(handover, 0x68, 16);
    add(&b, handover, 16);
    add(&b, &other, sizeof(other));
    add(&b, &owner, sizeof(owner));
    add(&b, (uint8_t[32]){0x4b}, 32);
    add(&b, platform_id, 32);
    add8(&b, 5), add8(&b, 0x00), add8(&b, 8 + 168);
    add_request(&b, SPM_ME_PEER_RESOLVE, 0);
    memset(handover, 0x69, 16);
    add(&b, handover, 16);
    add(&b, &other, sizeof(other));
    add(&b, &owner, sizeof(owner));
    add8(&b, 8);
    put("me_peer", "destination-transfer-resolve", b.data, b.size);

    /* A debug peer allowed by policy, then raw garbage. */
    b.size = 0;
    add8(&b, 1);
    add8(&b, 1);
    add8(&b, 2), add8(&b, 0x01);
    add8(&b, 0), add16(&b, 20);
    uint32_t magic = SPM_ME_MAGIC;
    add(&b, &magic, 4);
    add16(&b, 1), add16(&b, SPM_ME_MSG_PEER_SEALED);
    add(&b, (uint8_t[12]){4}, 12);
    put("me_peer", "debug-peer-then-raw", b.data, b.size);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_attest_seeds FUZZ_CORPUS_DIR\n");
        return 2;
    }
    g_out = argv[1];
    platform_files();
    cert_chains();
    escrow();
    uint8_t *pem = NULL;
    size_t pem_size = 0;
    struct spm_ec_key *key = NULL;
    uint8_t xy[SPM_EC_PUBLIC_SIZE], platform_id[32];
    if (spm_read_file(PKI "/platform/attest.key", 1 << 16, &pem, &pem_size) < 0 ||
        spm_ec_key_from_pem((const char *)pem, pem_size, &key) < 0 ||
        spm_ec_key_public(key, xy) < 0)
        die("attestation key");
    spm_sha256(xy, sizeof(xy), platform_id);
    me_peer(platform_id);
    spm_ec_key_free(key);
    free(pem);
    return 0;
}
