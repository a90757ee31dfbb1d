/* BearSSL behind SPM's trusted API. AES uses the AES-NI implementation and
 * GHASH the PCLMUL one directly (no CPUID probing, which faults inside a
 * hardware enclave); ECDSA uses the constant-time i31 code. The checkpoint
 * engine's chunk AES-GCM is gcm_chunk.c's own. */
#include "crypto.h"

#include <bearssl.h>
#include <errno.h>

#include "spm/trts.h"

_Static_assert(sizeof(br_hmac_drbg_context) <= TC_DRBG_SIZE, "DRBG context fits");

static void aes_block_encrypt(const br_aes_x86ni_cbcenc_keys *k, uint8_t block[16])
{
    uint8_t iv[16] = {0};
    br_aes_x86ni_cbcenc_run(k, iv, block, 16);
}

static void cmac_double(uint8_t v[16])
{
    uint8_t carry = v[0] >> 7;
    for (int i = 0; i < 15; i++)
        v[i] = (uint8_t)((v[i] << 1) | (v[i + 1] >> 7));
    v[15] = (uint8_t)((v[15] << 1) ^ (carry ? 0x87 : 0));
}

void tc_aes128_cmac(const uint8_t key[16], const void *data, size_t size, uint8_t mac[16])
{
    br_aes_x86ni_cbcenc_keys k;
    br_aes_x86ni_cbcenc_init(&k, key, 16);
    uint8_t subkey[16] = {0};
    aes_block_encrypt(&k, subkey);
    cmac_double(subkey); /* K1 */
    const uint8_t *p = data;
    size_t full = size ? (size - 1) / 16 : 0; /* blocks before the last */
    uint8_t state[16] = {0}, last[16] = {0};
    for (size_t i = 0; i < full; i++) {
        for (int j = 0; j < 16; j++)
            state[j] ^= p[16 * i + j];
        aes_block_encrypt(&k, state);
    }
    size_t rest = size - 16 * full;
    memcpy(last, p + 16 * full, rest);
    if (rest < 16) {
        last[rest] = 0x80;
        cmac_double(subkey); /* K2 */
    }
    for (int j = 0; j < 16; j++)
        state[j] ^= last[j] ^ subkey[j];
    aes_block_encrypt(&k, state);
    memcpy(mac, state, 16);
    spm_wipe(&k, sizeof(k));
    spm_wipe(subkey, sizeof(subkey));
    spm_wipe(state, sizeof(state));
}

int tc_aes_gcm(const uint8_t *key, size_t key_size, const uint8_t *iv, size_t iv_size,
               const void *aad, size_t aad_size, void *data, size_t size, bool encrypt,
               uint8_t tag[16])
{
    br_aes_x86ni_ctr_keys aes;
    br_gcm_context gcm;
    br_aes_x86ni_ctr_init(&aes, key, key_size);
    br_gcm_init(&gcm, &aes.vtable, br_ghash_pclmul);
    br_gcm_reset(&gcm, iv, iv_size);
    br_gcm_aad_inject(&gcm, aad, aad_size);
    br_gcm_flip(&gcm);
    br_gcm_run(&gcm, encrypt, data, size);
    int ret = 0;
    if (encrypt)
        br_gcm_get_tag(&gcm, tag);
    else if (!br_gcm_check_tag(&gcm, tag))
        ret = -EBADMSG;
    spm_wipe(&aes, sizeof(aes));
    spm_wipe(&gcm, sizeof(gcm));
    return ret;
}

void tc_drbg_init(void *ctx, const void *seed, size_t seed_size)
{
    br_hmac_drbg_init(ctx, &br_sha256_vtable, seed, seed_size);
}

void tc_drbg_generate(void *ctx, void *out, size_t size)
{
    br_hmac_drbg_generate(ctx, out, size);
}

int tc_p256_keygen(void *drbg, uint8_t private_key[32], uint8_t public_key[65])
{
    const br_ec_impl *ec = &br_ec_p256_m31;
    br_ec_private_key sk;
    br_ec_public_key pk;
    uint8_t sk_buf[BR_EC_KBUF_PRIV_MAX_SIZE], pk_buf[BR_EC_KBUF_PUB_MAX_SIZE];
    if (br_ec_keygen(drbg, ec, &sk, sk_buf, BR_EC_secp256r1) != 32)
        return -EIO;
    if (br_ec_compute_pub(ec, &pk, pk_buf, &sk) != 65)
        return -EIO;
    memcpy(private_key, sk.x, 32);
    memcpy(public_key, pk.q, 65);
    spm_wipe(sk_buf, sizeof(sk_buf));
    return 0;
}

int tc_p256_sign(const uint8_t private_key[32], const uint8_t hash[32], uint8_t sig[64])
{
    br_ec_private_key sk = {BR_EC_secp256r1, (unsigned char *)private_key, 32};
    return br_ecdsa_i31_sign_raw(&br_ec_p256_m31, &br_sha256_vtable, hash, &sk, sig) == 64 ? 0
                                                                                           : -EIO;
}

bool tc_p256_verify(const uint8_t public_key[65], const uint8_t hash[32], const uint8_t sig[64])
{
    br_ec_public_key pk = {BR_EC_secp256r1, (unsigned char *)public_key, 65};
    return br_ecdsa_i31_vrfy_raw(&br_ec_p256_m31, hash, 32, &pk, sig, 64) == 1;
}

int tc_p256_ecdh(const uint8_t private_key[32], const uint8_t peer_public[65], uint8_t shared_x[32])
{
    uint8_t point[65];
    memcpy(point, peer_public, 65);
    /* mul() validates that the peer's point is on the curve. */
    if (br_ec_p256_m31.mul(point, 65, private_key, 32, BR_EC_secp256r1) != 1) {
        spm_wipe(point, sizeof(point));
        return -EINVAL;
    }
    memcpy(shared_x, point + 1, 32);
    spm_wipe(point, sizeof(point));
    return 0;
}

void tc_hmac_sha256(const void *key, size_t key_size, const void *data, size_t size,
                    uint8_t mac[32])
{
    br_hmac_key_context kc;
    br_hmac_context hc;
    br_hmac_key_init(&kc, &br_sha256_vtable, key, key_size);
    br_hmac_init(&hc, &kc, 0);
    br_hmac_update(&hc, data, size);
    br_hmac_out(&hc, mac);
    spm_wipe(&kc, sizeof(kc));
    spm_wipe(&hc, sizeof(hc));
}

void tc_sha256(const void *data, size_t size, uint8_t digest[32])
{
    br_sha256_context c;
    br_sha256_init(&c);
    br_sha256_update(&c, data, size);
    br_sha256_out(&c, digest);
}

void tc_sha256_two(const void *a, size_t a_size, const void *b, size_t b_size, uint8_t digest[32])
{
    br_sha256_context c;
    br_sha256_init(&c);
    br_sha256_update(&c, a, a_size);
    br_sha256_update(&c, b, b_size);
    br_sha256_out(&c, digest);
}

/* ---- Certificates ---- */

#define PEM_BEGIN_LINE    "-----BEGIN CERTIFICATE-----\n"
#define PEM_END_LINE      "-----END CERTIFICATE-----\n"
#define PEM_LINE_BYTES    48u /* DER bytes per 64-column base64 line */
#define MAX_CERT_SIZE     (64u << 10)
#define MAX_DN_SIZE       1024u
#define DAYS_0AD_TO_EPOCH 719528u /* days from 0000-01-01 (proleptic Gregorian) to 1970-01-01 */

struct der_sink {
    uint8_t *data;
    size_t capacity;
    size_t size;
    bool overflow;
};

static void der_sink_append(void *ctx, const void *src, size_t size)
{
    struct der_sink *sink = ctx;
    if (sink->overflow || size > sink->capacity - sink->size) {
        sink->overflow = true;
        return;
    }
    memcpy(sink->data + sink->size, src, size);
    sink->size += size;
}

/* Base64 of up to 48 bytes as one PEM line with its "\n": what OpenSSL
 * writes for that slice of a certificate. */
static size_t base64_line(const uint8_t *src, size_t size, char out[66])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16;
        if (i + 1 < size)
            v |= (uint32_t)src[i + 1] << 8;
        if (i + 2 < size)
            v |= src[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < size ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < size ? alphabet[v & 63] : '=';
    }
    out[o++] = '\n';
    return o;
}

static bool expect_text(const char *pem, size_t pem_size, size_t *offset, const char *text,
                        size_t size)
{
    if (size > pem_size - *offset || memcmp(pem + *offset, text, size) != 0)
        return false;
    *offset += size;
    return true;
}

/* BearSSL's PEM decoder tolerates what a canonical encoder never writes
 * (other line lengths, spaces, text between blocks, CRLF), so the text is
 * re-encoded line by line from the decoded DER and must match exactly. */
static bool pem_is_canonical(const char *pem, size_t pem_size, const uint8_t *der,
                             const struct tc_der_cert *certs, size_t count)
{
    size_t offset = 0;
    char line[66];
    for (size_t c = 0; c < count; c++) {
        if (!expect_text(pem, pem_size, &offset, PEM_BEGIN_LINE, sizeof(PEM_BEGIN_LINE) - 1))
            return false;
        const uint8_t *p = der + certs[c].offset;
        for (size_t done = 0; done < certs[c].size; done += PEM_LINE_BYTES) {
            size_t slice = certs[c].size - done;
            if (slice > PEM_LINE_BYTES)
                slice = PEM_LINE_BYTES;
            size_t line_size = base64_line(p + done, slice, line);
            if (!expect_text(pem, pem_size, &offset, line, line_size))
                return false;
        }
        if (!expect_text(pem, pem_size, &offset, PEM_END_LINE, sizeof(PEM_END_LINE) - 1))
            return false;
    }
    return offset == pem_size;
}

int tc_pem_certificates(const char *pem, size_t pem_size, uint8_t *der, size_t der_capacity,
                        struct tc_der_cert *certs, size_t max_certs, size_t *count)
{
    br_pem_decoder_context pc;
    struct der_sink sink = {der, der_capacity, 0, false};
    const char *cursor = pem;
    size_t left = pem_size, found = 0, start = 0;
    bool inside = false;
    br_pem_decoder_init(&pc);
    while (left > 0) {
        size_t used = br_pem_decoder_push(&pc, cursor, left);
        cursor += used;
        left -= used;
        int event = br_pem_decoder_event(&pc);
        if (event == BR_PEM_BEGIN_OBJ) {
            if (inside || strcmp(br_pem_decoder_name(&pc), "CERTIFICATE") != 0)
                return -EBADMSG;
            if (found == max_certs)
                return -ENOSPC;
            inside = true;
            start = sink.size;
            br_pem_decoder_setdest(&pc, der_sink_append, &sink);
        } else if (event == BR_PEM_END_OBJ) {
            if (!inside)
                return -EBADMSG;
            if (sink.overflow)
                return -ENOSPC;
            if (sink.size == start)
                return -EBADMSG;
            certs[found].offset = start;
            certs[found].size = sink.size - start;
            found++;
            inside = false;
            br_pem_decoder_setdest(&pc, NULL, NULL);
        } else if (event == BR_PEM_ERROR || (event == 0 && used == 0)) {
            return -EBADMSG; /* a decoding error, or no progress possible */
        }
    }
    if (inside || found == 0)
        return -EBADMSG;
    if (sink.overflow)
        return -ENOSPC;
    if (!pem_is_canonical(pem, pem_size, der, certs, found))
        return -EBADMSG;
    *count = found;
    return 0;
}

struct dn_sink {
    uint8_t data[MAX_DN_SIZE];
    size_t size;
    bool overflow;
};

static void dn_sink_append(void *ctx, const void *src, size_t size)
{
    struct dn_sink *sink = ctx;
    if (sink->overflow || size > sizeof(sink->data) - sink->size) {
        sink->overflow = true;
        return;
    }
    memcpy(sink->data + sink->size, src, size);
    sink->size += size;
}

/* Runs BearSSL's path validation over certs[0..count): 0 (BR_ERR_OK) when
 * the path ends at the trust anchor, else BearSSL's X.509 error code. */
static int validate_path(br_x509_minimal_context *xc, const br_x509_trust_anchor *anchor,
                         const uint8_t *der, const struct tc_der_cert *certs, size_t count,
                         uint32_t days, uint32_t seconds)
{
    br_x509_minimal_init(xc, &br_sha256_vtable, anchor, 1);
    /* SHA-256 and P-256 only: anything else fails as an unsupported algorithm. */
    br_x509_minimal_set_hash(xc, br_sha256_ID, &br_sha256_vtable);
    br_x509_minimal_set_ecdsa(xc, &br_ec_p256_m31, br_ecdsa_i31_vrfy_asn1);
    br_x509_minimal_set_time(xc, days, seconds);
    const br_x509_class **engine = &xc->vtable;
    (*engine)->start_chain(engine, NULL);
    for (size_t i = 0; i < count; i++) {
        (*engine)->start_cert(engine, (uint32_t)certs[i].size);
        (*engine)->append(engine, der + certs[i].offset, certs[i].size);
        (*engine)->end_cert(engine);
    }
    return (int)(*engine)->end_chain(engine);
}

int tc_x509_verify_chain(const uint8_t *der, const struct tc_der_cert *certs, size_t count,
                         const uint8_t *root_der, size_t root_size, uint64_t now,
                         uint8_t leaf_public[65])
{
    /* The anchor: the pinned root's subject DN and P-256 key. */
    br_x509_decoder_context dc;
    struct dn_sink dn;
    dn.size = 0;
    dn.overflow = false;
    br_x509_decoder_init(&dc, dn_sink_append, &dn);
    br_x509_decoder_push(&dc, root_der, root_size);
    const br_x509_pkey *root_key = br_x509_decoder_get_pkey(&dc);
    if (!root_key || dn.overflow || dn.size == 0 || !br_x509_decoder_isCA(&dc) ||
        root_key->key_type != BR_KEYTYPE_EC || root_key->key.ec.curve != BR_EC_secp256r1 ||
        root_key->key.ec.qlen != 65)
        return -EINVAL;
    br_x509_trust_anchor anchor = {{dn.data, dn.size}, BR_X509_TA_CA, *root_key};

    if (count < 2)
        return -EKEYREJECTED;
    for (size_t i = 0; i < count; i++)
        if (certs[i].size == 0 || certs[i].size > MAX_CERT_SIZE)
            return -EKEYREJECTED;
    const struct tc_der_cert *root_copy = &certs[count - 1];
    if (root_copy->size != root_size || memcmp(der + root_copy->offset, root_der, root_size) != 0)
        return -EKEYREJECTED;

    uint64_t days = now / 86400u;
    uint32_t seconds = (uint32_t)(now % 86400u);
    days = days > UINT32_MAX - DAYS_0AD_TO_EPOCH ? UINT32_MAX : days + DAYS_0AD_TO_EPOCH;

    /* The path is the chain without its root copy. BearSSL stops at the
     * first certificate an anchor signed and ignores the rest, so a shorter
     * prefix must not validate: then every certificate is on the path. */
    br_x509_minimal_context xc;
    size_t path = count - 1;
    for (size_t prefix = 1; prefix < path; prefix++)
        if (validate_path(&xc, &anchor, der, certs, prefix, (uint32_t)days, seconds) == 0)
            return -EKEYREJECTED;
    if (validate_path(&xc, &anchor, der, certs, path, (uint32_t)days, seconds) != 0)
        return -EKEYREJECTED;
    unsigned usages = 0;
    const br_x509_pkey *leaf = xc.vtable->get_pkey(&xc.vtable, &usages);
    if (!leaf || leaf->key_type != BR_KEYTYPE_EC || leaf->key.ec.curve != BR_EC_secp256r1 ||
        leaf->key.ec.qlen != 65 || leaf->key.ec.q[0] != 0x04 || !(usages & BR_KEYTYPE_SIGN))
        return -EKEYREJECTED;
    memcpy(leaf_public, leaf->key.ec.q, 65);
    return 0;
}
