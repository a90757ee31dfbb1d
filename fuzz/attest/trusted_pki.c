/* The test platform's quotes for the hosted-trusted harnesses
 * (trusted_pki.h), with BearSSL through the trusted crypto adapter: the
 * same P-256 code the enclaves run, so no host library is linked next to
 * the trusted objects (their symbols would clash). */
#include "trusted_pki.h"

#include <bearssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define ATTEST_KEY  FUZZ_PKI_DIR "/platform/attest.key"
#define ATTEST_CERT FUZZ_PKI_DIR "/platform/attest.crt"
#define ROOT_CERT   FUZZ_PKI_DIR "/platform/root.crt"
#define AUTH_SIZE   32u
#define QE_PROD_ID  1u
#define QE_SVN      1u
#define PCE_SVN     1u
#define SIG_AT      sizeof(struct sgx_quote)
#define SIG_SIZE    sizeof(struct sgx_ecdsa_sig_data)

static uint8_t g_private[32];
static uint8_t g_public[65]; /* 0x04 || x || y */
static char *g_chain;        /* attest.crt || root.crt || NUL */
static size_t g_chain_size;  /* with the NUL */

static char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: cannot open %s\n", path);
        abort();
    }
    char *data = malloc(1u << 16);
    if (!data)
        abort();
    *size = fread(data, 1, (1u << 16) - 1, f);
    data[*size] = 0;
    fclose(f);
    return data;
}

static void pem_sink(void *ctx, const void *data, size_t size)
{
    br_skey_decoder_push(ctx, data, size);
}

void fuzz_pki_init(void)
{
    size_t key_size = 0, cert_size = 0, root_size = 0;
    char *key_pem = read_all(ATTEST_KEY, &key_size);
    br_pem_decoder_context pem;
    br_skey_decoder_context skey;
    br_pem_decoder_init(&pem);
    br_skey_decoder_init(&skey);
    size_t at = 0;
    while (at < key_size) {
        at += br_pem_decoder_push(&pem, key_pem + at, key_size - at);
        int event = br_pem_decoder_event(&pem);
        if (event == BR_PEM_BEGIN_OBJ)
            br_pem_decoder_setdest(&pem, pem_sink, &skey);
        else if (event == BR_PEM_END_OBJ || event == BR_PEM_ERROR)
            break;
    }
    const br_ec_private_key *sk = br_skey_decoder_get_ec(&skey);
    if (!sk || sk->curve != BR_EC_secp256r1 || sk->xlen != 32) {
        fprintf(stderr, "fuzz: %s is not a P-256 private key\n", ATTEST_KEY);
        abort();
    }
    memcpy(g_private, sk->x, 32);
    br_ec_public_key pk;
    uint8_t pk_buf[BR_EC_KBUF_PUB_MAX_SIZE];
    if (br_ec_compute_pub(&br_ec_p256_m31, &pk, pk_buf, sk) != 65)
        abort();
    memcpy(g_public, pk.q, 65);
    free(key_pem);

    char *cert = read_all(ATTEST_CERT, &cert_size);
    char *root = read_all(ROOT_CERT, &root_size);
    g_chain_size = cert_size + root_size + 1;
    g_chain = malloc(g_chain_size);
    if (!g_chain)
        abort();
    memcpy(g_chain, cert, cert_size);
    memcpy(g_chain + cert_size, root, root_size);
    g_chain[cert_size + root_size] = 0;
    free(cert);
    free(root);
}

const uint8_t *fuzz_pki_attest_public(void)
{
    return g_public + 1;
}

static void sign(const void *data, size_t size, uint8_t signature[64])
{
    uint8_t hash[32];
    tc_sha256(data, size, hash);
    if (tc_p256_sign(g_private, hash, signature) < 0)
        abort();
}

/* The simulated QE's identity (src/host/platform/quote.h); REPORTDATA is
 * filled in by fuzz_pki_resign. */
static void qe_identity(struct sgx_report_body *qe)
{
    memset(qe, 0, sizeof(*qe));
    static const char mrenclave[] = "SPM simulated quoting enclave";
    static const char mrsigner[] = "SPM simulated quoting enclave signer";
    tc_sha256(mrenclave, sizeof(mrenclave) - 1, qe->mr_enclave);
    tc_sha256(mrsigner, sizeof(mrsigner) - 1, qe->mr_signer);
    qe->attributes.flags = SGX_FLAGS_INITTED | SGX_FLAGS_MODE64BIT | SGX_FLAGS_PROVISION_KEY;
    qe->attributes.xfrm = SGX_XFRM_LEGACY;
    qe->isv_prod_id = QE_PROD_ID;
    qe->isv_svn = QE_SVN;
}

void fuzz_pki_quote(const struct sgx_report_body *body, uint8_t **quote_out, size_t *quote_size)
{
    size_t size = SIG_AT + SIG_SIZE + 2 + AUTH_SIZE + 6 + g_chain_size;
    uint8_t *quote = calloc(1, size);
    if (!quote)
        abort();
    struct sgx_quote fixed;
    memset(&fixed, 0, sizeof(fixed));
    fixed.header.version = SGX_QUOTE_VERSION;
    fixed.header.att_key_type = SGX_QUOTE_ATT_KEY_ECDSA_P256;
    fixed.header.qe_svn = QE_SVN;
    fixed.header.pce_svn = PCE_SVN;
    uint8_t vendor[32];
    tc_sha256("SPM-SIM-QE", 10, vendor);
    memcpy(fixed.header.vendor_id, vendor, sizeof(fixed.header.vendor_id));
    fixed.report_body = *body;
    fixed.signature_data_len = (uint32_t)(size - SIG_AT);
    memcpy(quote, &fixed, sizeof(fixed));

    uint8_t *p = quote + SIG_AT + SIG_SIZE;
    uint16_t auth_size = AUTH_SIZE, cert_type = SGX_QUOTE_CERT_TYPE_PCK_CHAIN;
    uint32_t cert_size = (uint32_t)g_chain_size;
    memcpy(p, &auth_size, 2);
    for (unsigned i = 0; i < AUTH_SIZE; i++)
        p[2 + i] = (uint8_t)i;
    p += 2 + AUTH_SIZE;
    memcpy(p, &cert_type, 2);
    memcpy(p + 2, &cert_size, 4);
    memcpy(p + 6, g_chain, g_chain_size);
    struct sgx_ecdsa_sig_data sig;
    memset(&sig, 0, sizeof(sig));
    qe_identity(&sig.qe_report);
    memcpy(quote + SIG_AT, &sig, sizeof(sig));
    fuzz_pki_resign(quote, size, 1, 1);
    *quote_out = quote;
    *quote_size = size;
}

void fuzz_pki_resign(uint8_t *quote, size_t quote_size, int set_key, int bind_qe)
{
    if (quote_size < SIG_AT + SIG_SIZE)
        return;
    struct sgx_ecdsa_sig_data sig;
    memcpy(&sig, quote + SIG_AT, sizeof(sig));
    if (set_key)
        memcpy(sig.attest_pub_key, g_public + 1, 64);
    size_t auth_at = SIG_AT + SIG_SIZE + 2;
    if (bind_qe && quote_size >= auth_at) {
        uint16_t auth_size;
        memcpy(&auth_size, quote + auth_at - 2, 2);
        if (auth_size <= quote_size - auth_at) {
            memset(sig.qe_report.report_data, 0, sizeof(sig.qe_report.report_data));
            tc_sha256_two(sig.attest_pub_key, 64, quote + auth_at, auth_size,
                          sig.qe_report.report_data);
        }
    }
    sign(&sig.qe_report, sizeof(sig.qe_report), sig.qe_report_sig);
    sign(quote, offsetof(struct sgx_quote, signature_data_len), sig.sig);
    memcpy(quote + SIG_AT, &sig, sizeof(sig));
}
