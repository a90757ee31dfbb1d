/* The Migration Enclave's quote verifier (me_quote.c) run inside a test
 * enclave, with the build's pinned provisioning root, against quotes from
 * simulated platforms: a platform provisioned by the pinned CA is
 * accepted, with the right body and platform id; one provisioned by any
 * other CA (even one with the same name) is refused; and every kind of
 * damage an attacker can do to a quote is refused without a crash: each
 * byte flipped, truncation, trailing bytes, length fields overflowed,
 * certificate chains edited, and, holding a platform's attestation key,
 * quotes re-signed around each single check. It also times one verification.
 * argv: quote_test_enclave.signed provisioning-ca-dir */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "crypto/ecdsa.h"
#include "crypto/hash.h"
#include "platform/quote.h"
#include "platform/sim/sim.h"
#include "quote_test_abi.h"
#include "spm/urts.h"

/* Offsets in a quote from SPM's simulated QE (32 bytes of auth data). */
#define OFF_SIG_DATA_LEN 432u
#define OFF_SIG          436u
#define OFF_ATTEST_KEY   500u
#define OFF_QE_REPORT    564u
#define OFF_QE_SIG       948u
#define OFF_AUTH_SIZE    1012u
#define OFF_AUTH_DATA    1014u
#define OFF_CERT_TYPE    1046u
#define OFF_CERT_SIZE    1048u
#define OFF_CERT_DATA    1052u

#define QUOTE_CAPACITY (16u << 10)

static const char *g_image, *g_build_ca;
static char g_dir[256], g_plat_a[320], g_plat_a2[320], g_plat_b[320], g_plat_same_name[320],
    g_ca_b[320], g_ca_same_name[320];
static struct spm_enclave *g_on_a, *g_on_a2, *g_on_b, *g_on_same_name;

struct quote {
    uint8_t *data;
    size_t size;
};

static struct spm_enclave *load(const char *platform)
{
    struct spm_enclave_options o = {.platform_dir = platform};
    struct spm_enclave *e = NULL;
    assert_int_equal(spm_enclave_load(g_image, &o, &e), 0);
    return e;
}

static struct quote get_quote(struct spm_enclave *e, uint8_t fill)
{
    uint8_t report_data[64];
    memset(report_data, fill, sizeof(report_data));
    struct quote q = {malloc(QUOTE_CAPACITY), 0};
    assert_non_null(q.data);
    assert_int_equal(spm_enclave_ecall(e, QUOTE_TEST_ECALL_QUOTE, report_data, sizeof(report_data),
                                       q.data, QUOTE_CAPACITY, &q.size, 0),
                     0);
    assert_true(q.size > OFF_CERT_DATA);
    return q;
}

/* me_quote_verify's verdict on `data` (the ecall itself must succeed). */
static int verify_result(const uint8_t *data, size_t size, struct quote_test_result *result)
{
    size_t n = 0;
    assert_int_equal(spm_enclave_ecall(g_on_a, QUOTE_TEST_ECALL_VERIFY, data, size, result,
                                       sizeof(*result), &n, 0),
                     0);
    assert_int_equal(n, sizeof(*result));
    if (result->ret != 0) {
        /* Nothing leaks out of a refused quote. */
        static const uint8_t zero[sizeof(result->body)];
        assert_memory_equal(&result->body, zero, sizeof(result->body));
    }
    return result->ret;
}

static int verify(const uint8_t *data, size_t size)
{
    struct quote_test_result result;
    return verify_result(data, size, &result);
}

static bool refused(int ret)
{
    return ret == -EBADMSG || ret == -EKEYREJECTED;
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

/* The quote with its certification data replaced by `text` (+ its NUL
 * when `nul`), every length field made consistent again. */
static struct quote with_cert_data(const struct quote *q, const char *text, size_t text_size,
                                   bool nul)
{
    size_t cert_size = text_size + (nul ? 1 : 0);
    struct quote out = {malloc(OFF_CERT_DATA + cert_size), OFF_CERT_DATA + cert_size};
    assert_non_null(out.data);
    memcpy(out.data, q->data, OFF_CERT_DATA);
    memcpy(out.data + OFF_CERT_DATA, text, text_size);
    if (nul)
        out.data[OFF_CERT_DATA + text_size] = 0;
    put32(out.data + OFF_CERT_SIZE, (uint32_t)cert_size);
    put32(out.data + OFF_SIG_DATA_LEN, (uint32_t)(out.size - OFF_SIG));
    return out;
}

/* The PEM chain a quote carries (without the NUL), as a string. */
static char *chain_text(const struct quote *q, size_t *size)
{
    uint32_t cert_size = get32(q->data + OFF_CERT_SIZE);
    assert_int_equal(OFF_CERT_DATA + cert_size, q->size);
    *size = cert_size - 1;
    char *text = malloc(cert_size);
    memcpy(text, q->data + OFF_CERT_DATA, cert_size);
    return text;
}

/* Position of the n-th "-----BEGIN" in a chain (n from 0). */
static size_t block_start(const char *text, unsigned n)
{
    const char *p = text;
    for (unsigned i = 0; i <= n; i++) {
        const char *found = strstr(i == 0 ? p : p + 1, "-----BEGIN");
        assert_non_null(found);
        p = found;
    }
    return (size_t)(p - text);
}

static char *read_text(const char *dir, const char *name, size_t *size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    uint8_t *data = NULL;
    assert_int_equal(spm_read_file(path, 1 << 20, &data, size), 0);
    return (char *)data;
}

/* ---- (a) the pinned CA's platforms are accepted ---- */

static void test_accepts_quote_from_pinned_ca_platform(void **state)
{
    (void)state;
    struct quote q = get_quote(g_on_a, 0x5a);
    struct quote_test_result result;
    assert_int_equal(verify_result(q.data, q.size, &result), 0);
    assert_memory_equal(&result.body, q.data + 48, sizeof(result.body));
    uint8_t report_data[64];
    memset(report_data, 0x5a, sizeof(report_data));
    assert_memory_equal(result.body.report_data, report_data, 64);
    uint8_t expected_id[32];
    spm_sha256(q.data + OFF_ATTEST_KEY, 64, expected_id);
    assert_memory_equal(result.platform_id, expected_id, 32);

    /* The host verifier with the build CA's certificate agrees. */
    char root[512];
    snprintf(root, sizeof(root), "%s/ca.crt", g_build_ca);
    struct sgx_report_body body;
    assert_int_equal(spm_quote_verify(q.data, q.size, root, &body), 0);

    /* The platform id names the platform: stable across its quotes, and
     * another platform of the same CA has another one. */
    struct quote q2 = get_quote(g_on_a, 0x11), other = get_quote(g_on_a2, 0x5a);
    struct quote_test_result r2, r_other;
    assert_int_equal(verify_result(q2.data, q2.size, &r2), 0);
    assert_int_equal(verify_result(other.data, other.size, &r_other), 0);
    assert_memory_equal(r2.platform_id, result.platform_id, 32);
    assert_memory_not_equal(r_other.platform_id, result.platform_id, 32);
    assert_memory_equal(r_other.body.mr_enclave, result.body.mr_enclave, 32);
    free(q.data);
    free(q2.data);
    free(other.data);
}

/* ---- (b) other CAs are refused ---- */

static void test_refuses_quote_from_other_ca(void **state)
{
    (void)state;
    struct quote q = get_quote(g_on_b, 0x5a);
    assert_int_equal(verify(q.data, q.size), -EKEYREJECTED);
    /* It is a good quote for its own CA: only the root differs. */
    char root[512];
    snprintf(root, sizeof(root), "%s/ca.crt", g_ca_b);
    struct sgx_report_body body;
    assert_int_equal(spm_quote_verify(q.data, q.size, root, &body), 0);
    free(q.data);

    /* A CA with the pinned CA's very name: same issuer DN, other key. */
    q = get_quote(g_on_same_name, 0x5a);
    assert_int_equal(verify(q.data, q.size), -EKEYREJECTED);
    /* ... even when its chain carries the pinned root as the root copy. */
    size_t text_size, root_size;
    char *text = chain_text(&q, &text_size);
    char *pinned = read_text(g_build_ca, "ca.crt", &root_size);
    size_t leaf_size = block_start(text, 1);
    char *edited = malloc(leaf_size + root_size);
    memcpy(edited, text, leaf_size);
    memcpy(edited + leaf_size, pinned, root_size);
    struct quote forged = with_cert_data(&q, edited, leaf_size + root_size, true);
    assert_int_equal(verify(forged.data, forged.size), -EKEYREJECTED);
    free(forged.data);
    free(edited);
    free(pinned);
    free(text);
    free(q.data);
}

/* ---- (c) damaged quotes ---- */

static void test_every_bit_flip_is_refused(void **state)
{
    (void)state;
    struct quote q = get_quote(g_on_a, 0x33);
    assert_int_equal(verify(q.data, q.size), 0);
    uint8_t *copy = malloc(q.size);
    static const uint8_t masks[] = {0x01, 0x80};
    unsigned accepted = 0;
    for (size_t m = 0; m < sizeof(masks); m++) {
        for (size_t i = 0; i < q.size; i++) {
            memcpy(copy, q.data, q.size);
            copy[i] ^= masks[m];
            int ret = verify(copy, q.size);
            if (!refused(ret)) {
                print_error("flip 0x%02x at offset %zu: %d\n", masks[m], i, ret);
                accepted++;
                continue;
            }
            /* Signed bytes fail their signature, not the parser. */
            if ((i >= 48 && i < OFF_SIG_DATA_LEN) || (i >= OFF_SIG && i < OFF_ATTEST_KEY) ||
                (i >= OFF_QE_REPORT && i < OFF_AUTH_SIZE) ||
                (i >= OFF_AUTH_DATA && i < OFF_CERT_TYPE))
                assert_int_equal(ret, -EKEYREJECTED);
            /* Framing bytes fail the parser. */
            if ((i < 4) || (i >= 8 && i < 48 - 20 && i >= 12) ||
                (i >= OFF_SIG_DATA_LEN && i < OFF_SIG) ||
                (i >= OFF_AUTH_SIZE && i < OFF_AUTH_DATA) ||
                (i >= OFF_CERT_TYPE && i < OFF_CERT_DATA) || i == q.size - 1)
                assert_int_equal(ret, -EBADMSG);
        }
    }
    assert_int_equal(accepted, 0);
    free(copy);
    free(q.data);
}

static void test_truncation_and_trailing_bytes_are_refused(void **state)
{
    (void)state;
    struct quote q = get_quote(g_on_a, 0x44);
    uint8_t *copy = malloc(q.size + 256);
    for (size_t size = 0; size < q.size; size++) {
        /* As cut, and with signature_data_len made to match the cut. */
        memcpy(copy, q.data, q.size);
        assert_int_equal(verify(copy, size), -EBADMSG);
        if (size >= OFF_SIG) {
            put32(copy + OFF_SIG_DATA_LEN, (uint32_t)(size - OFF_SIG));
            assert_true(refused(verify(copy, size)));
        }
    }
    static const size_t extra[] = {1, 3, 255};
    for (size_t k = 0; k < sizeof(extra) / sizeof(extra[0]); k++) {
        memcpy(copy, q.data, q.size);
        memset(copy + q.size, 0, extra[k]);
        assert_int_equal(verify(copy, q.size + extra[k]), -EBADMSG);
        put32(copy + OFF_SIG_DATA_LEN, (uint32_t)(q.size + extra[k] - OFF_SIG));
        assert_int_equal(verify(copy, q.size + extra[k]), -EBADMSG);
        /* Trailing bytes counted in cert_size too: after the NUL. */
        put32(copy + OFF_CERT_SIZE, (uint32_t)(q.size + extra[k] - OFF_CERT_DATA));
        assert_int_equal(verify(copy, q.size + extra[k]), -EBADMSG);
    }
    free(copy);
    free(q.data);
}

static void test_overflowed_length_fields_are_refused(void **state)
{
    (void)state;
    struct quote q = get_quote(g_on_a, 0x55);
    uint8_t *copy = malloc(q.size);
    uint32_t cert_size = get32(q.data + OFF_CERT_SIZE);
    static const uint32_t lengths32[] = {0, 1, 0x7fffffffu, 0x80000000u, 0xfffffff0u, 0xffffffffu};
    for (size_t k = 0; k < sizeof(lengths32) / sizeof(lengths32[0]); k++) {
        memcpy(copy, q.data, q.size);
        put32(copy + OFF_SIG_DATA_LEN, lengths32[k]);
        assert_int_equal(verify(copy, q.size), -EBADMSG);
        memcpy(copy, q.data, q.size);
        put32(copy + OFF_CERT_SIZE, lengths32[k]);
        assert_int_equal(verify(copy, q.size), -EBADMSG);
    }
    static const uint32_t off_by_one[] = {1, 0xffffffffu};
    for (size_t k = 0; k < 2; k++) {
        memcpy(copy, q.data, q.size);
        put32(copy + OFF_CERT_SIZE, cert_size + off_by_one[k]);
        assert_int_equal(verify(copy, q.size), -EBADMSG);
    }
    static const uint16_t lengths16[] = {0, 31, 33, 0x7fff, 0xffff};
    for (size_t k = 0; k < sizeof(lengths16) / sizeof(lengths16[0]); k++) {
        memcpy(copy, q.data, q.size);
        put16(copy + OFF_AUTH_SIZE, lengths16[k]);
        assert_int_equal(verify(copy, q.size), -EBADMSG);
    }
    /* Larger than any quote: refused by size before it is read. */
    size_t big_size = (64u << 10) + 1;
    uint8_t *big = calloc(1, big_size);
    memcpy(big, q.data, q.size);
    put32(big + OFF_SIG_DATA_LEN, (uint32_t)(big_size - OFF_SIG));
    put32(big + OFF_CERT_SIZE, (uint32_t)(big_size - OFF_CERT_DATA));
    assert_int_equal(verify(big, big_size), -EBADMSG);
    free(big);
    free(copy);
    free(q.data);
}

/* Edits of the PEM chain, every length kept consistent. */
static void expect_chain(const struct quote *q, int expected, const char *text, size_t size,
                         bool nul)
{
    struct quote e = with_cert_data(q, text, size, nul);
    assert_int_equal(verify(e.data, e.size), expected);
    free(e.data);
}

static void test_edited_chains_are_refused(void **state)
{
    (void)state;
    struct quote q = get_quote(g_on_a, 0x66);
    size_t size, root_b_size;
    char *text = chain_text(&q, &size);
    size_t leaf_size = block_start(text, 1);
    char *root_b = read_text(g_ca_b, "ca.crt", &root_b_size);
    char *buf = malloc(2 * size + root_b_size + 64);

    /* Control: the unchanged chain, rebuilt, is accepted. */
    expect_chain(&q, 0, text, size, true);

    expect_chain(&q, -EBADMSG, text, size, false);                             /* no NUL */
    expect_chain(&q, -EBADMSG, "", 0, true);                                   /* empty */
    expect_chain(&q, -EKEYREJECTED, text, leaf_size, true);                    /* leaf only */
    expect_chain(&q, -EKEYREJECTED, text + leaf_size, size - leaf_size, true); /* root only */
    /* leaf, root, root: a certificate off the path. */
    memcpy(buf, text, size);
    memcpy(buf + size, text + leaf_size, size - leaf_size);
    expect_chain(&q, -EKEYREJECTED, buf, 2 * size - leaf_size, true);
    /* leaf, leaf, root. */
    memcpy(buf, text, leaf_size);
    memcpy(buf + leaf_size, text, size);
    expect_chain(&q, -EKEYREJECTED, buf, leaf_size + size, true);
    /* The root copy swapped for another CA's root. */
    memcpy(buf, text, leaf_size);
    memcpy(buf + leaf_size, root_b, root_b_size);
    expect_chain(&q, -EKEYREJECTED, buf, leaf_size + root_b_size, true);
    /* An inner NUL. */
    memcpy(buf, text, size);
    buf[10] = 0;
    expect_chain(&q, -EBADMSG, buf, size, true);
    /* Non-canonical PEM the decoder would tolerate. */
    memcpy(buf, "junk\n", 5);
    memcpy(buf + 5, text, size);
    expect_chain(&q, -EBADMSG, buf, size + 5, true); /* text before */
    memcpy(buf, text, size);
    memcpy(buf + size, "\n", 1);
    expect_chain(&q, -EBADMSG, buf, size + 1, true); /* blank line after */
    memcpy(buf, text, size);
    expect_chain(&q, -EBADMSG, buf, size - 1, true); /* last newline missing */
    /* A line break moved: line 1 one character shorter, line 2 longer. */
    memcpy(buf, text, size);
    size_t first_line = strlen("-----BEGIN CERTIFICATE-----\n");
    char tmp = buf[first_line + 63];
    buf[first_line + 63] = '\n';
    buf[first_line + 64] = tmp;
    expect_chain(&q, -EBADMSG, buf, size, true);
    /* CRLF line ends. */
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
        if (text[i] == '\n')
            buf[n++] = '\r';
        buf[n++] = text[i];
    }
    expect_chain(&q, -EBADMSG, buf, n, true);
    /* A space inside the base64. */
    memcpy(buf, text, first_line + 10);
    buf[first_line + 10] = ' ';
    memcpy(buf + first_line + 11, text + first_line + 10, size - first_line - 10);
    expect_chain(&q, -EBADMSG, buf, size + 1, true);
    /* Another object type. */
    memcpy(buf, text, size);
    memcpy(buf + 11, "X509 CRL   ", 11);
    expect_chain(&q, -EBADMSG, buf, size, true);
    free(buf);
    free(root_b);
    free(text);
    free(q.data);
}

/* ---- Holding an attestation key: each check on its own ---- */

static struct spm_ec_key *attest_key(const char *platform)
{
    size_t size;
    char *pem = read_text(platform, "attest.key", &size);
    struct spm_ec_key *key = NULL;
    assert_int_equal(spm_ec_key_from_pem(pem, size, &key), 0);
    spm_wipe(pem, size);
    free(pem);
    return key;
}

/* Re-signs the QE report and the quote with `key` and puts key's public
 * half in attest_pub_key; with `fix_report_data` the QE REPORTDATA is
 * recomputed for it too. */
static void resign(struct quote *q, struct spm_ec_key *key, bool fix_report_data)
{
    uint8_t *d = q->data;
    assert_int_equal(spm_ec_key_public(key, d + OFF_ATTEST_KEY), 0);
    if (fix_report_data) {
        struct spm_sha256 h;
        uint8_t digest[32];
        spm_sha256_init(&h);
        spm_sha256_update(&h, d + OFF_ATTEST_KEY, 64);
        spm_sha256_update(&h, d + OFF_AUTH_DATA, 32);
        spm_sha256_final(&h, digest);
        memcpy(d + OFF_QE_REPORT + offsetof(struct sgx_report_body, report_data), digest, 32);
    }
    assert_int_equal(spm_ec_sign(key, d + OFF_QE_REPORT, 384, d + OFF_QE_SIG), 0);
    assert_int_equal(spm_ec_sign(key, d, OFF_SIG_DATA_LEN, d + OFF_SIG), 0);
}

static void test_each_check_holds_against_the_attestation_key(void **state)
{
    (void)state;
    struct spm_ec_key *key_a = attest_key(g_plat_a), *key_b = attest_key(g_plat_b);
    struct quote q = get_quote(g_on_a, 0x77);
    uint8_t *copy = malloc(q.size);
    struct quote c = {copy, q.size};
    struct sgx_report_body *qe = (struct sgx_report_body *)(copy + OFF_QE_REPORT);

    /* Control: re-signed unchanged, the quote is still good. */
    memcpy(copy, q.data, q.size);
    resign(&c, key_a, true);
    assert_int_equal(verify(copy, q.size), 0);
    /* The app report body changed and re-signed: accepted (it is the
     * attestation key's word), which shows the edits below fail on their
     * own check, not on a signature. */
    memcpy(copy, q.data, q.size);
    copy[48 + offsetof(struct sgx_report_body, isv_svn)] ^= 1;
    resign(&c, key_a, true);
    assert_int_equal(verify(copy, q.size), 0);

    struct {
        const char *what;
        size_t offset;
        uint8_t mask;
        int expected;
    } edits[] = {
        {"QE MRENCLAVE", OFF_QE_REPORT + offsetof(struct sgx_report_body, mr_enclave), 1,
         -EKEYREJECTED},
        {"QE MRSIGNER", OFF_QE_REPORT + offsetof(struct sgx_report_body, mr_signer) + 31, 0x80,
         -EKEYREJECTED},
        {"QE ISVPRODID", OFF_QE_REPORT + offsetof(struct sgx_report_body, isv_prod_id), 3,
         -EKEYREJECTED},
        {"QE debug", OFF_QE_REPORT + offsetof(struct sgx_report_body, attributes), SGX_FLAGS_DEBUG,
         -EKEYREJECTED},
        {"header version", 0, 1, -EBADMSG},
        {"header key type", 2, 1, -EBADMSG},
        {"header vendor id", 12, 1, -EBADMSG},
    };
    for (size_t k = 0; k < sizeof(edits) / sizeof(edits[0]); k++) {
        memcpy(copy, q.data, q.size);
        copy[edits[k].offset] ^= edits[k].mask;
        resign(&c, key_a, true);
        int ret = verify(copy, q.size);
        if (ret != edits[k].expected)
            print_error("%s: %d\n", edits[k].what, ret);
        assert_int_equal(ret, edits[k].expected);
    }
    /* QE ISVSVN 0: below the QE's minimum. */
    memcpy(copy, q.data, q.size);
    qe->isv_svn = 0;
    resign(&c, key_a, true);
    assert_int_equal(verify(copy, q.size), -EKEYREJECTED);
    /* Auth data changed but REPORTDATA not recomputed. */
    memcpy(copy, q.data, q.size);
    copy[OFF_AUTH_DATA] ^= 1;
    resign(&c, key_a, false);
    assert_int_equal(verify(copy, q.size), -EKEYREJECTED);
    /* REPORTDATA's upper half must be zero. */
    memcpy(copy, q.data, q.size);
    qe->report_data[63] = 1;
    resign(&c, key_a, true);
    assert_int_equal(verify(copy, q.size), -EKEYREJECTED);
    /* Another platform's key signing everything, with this chain: the
     * leaf certifies key A, not key B. */
    memcpy(copy, q.data, q.size);
    resign(&c, key_b, true);
    assert_int_equal(verify(copy, q.size), -EKEYREJECTED);

    free(copy);
    free(q.data);
    spm_ec_key_free(key_a);
    spm_ec_key_free(key_b);
}

/* ---- Cost ---- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_time_one_verification(void **state)
{
    (void)state;
    struct quote q = get_quote(g_on_a, 0x12);
    enum { ROUNDS = 200 };
    uint8_t *in = malloc(4 + q.size);
    uint32_t rounds = ROUNDS;
    memcpy(in, &rounds, 4);
    memcpy(in + 4, q.data, q.size);
    struct quote_test_result result;
    size_t n;
    double start = now_seconds();
    assert_int_equal(spm_enclave_ecall(g_on_a, QUOTE_TEST_ECALL_REPEAT, in, 4 + q.size, &result,
                                       sizeof(result), &n, 0),
                     0);
    double in_enclave = (now_seconds() - start) / ROUNDS;
    assert_int_equal(result.ret, 0);

    char root[512];
    snprintf(root, sizeof(root), "%s/ca.crt", g_build_ca);
    struct sgx_report_body body;
    start = now_seconds();
    for (int i = 0; i < ROUNDS; i++)
        assert_int_equal(spm_quote_verify(q.data, q.size, root, &body), 0);
    double host = (now_seconds() - start) / ROUNDS;
    printf("quote of %zu bytes: in-enclave me_quote_verify %.3f ms, host spm_quote_verify "
           "(OpenSSL) %.3f ms (mean of %d)\n",
           q.size, in_enclave * 1e3, host * 1e3, ROUNDS);
    free(in);
    free(q.data);
}

/* ---- Setup ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/spm-quote-test-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_plat_a, sizeof(g_plat_a), "%s/platform-a", g_dir);
    snprintf(g_plat_a2, sizeof(g_plat_a2), "%s/platform-a2", g_dir);
    snprintf(g_plat_b, sizeof(g_plat_b), "%s/platform-b", g_dir);
    snprintf(g_plat_same_name, sizeof(g_plat_same_name), "%s/platform-same-name", g_dir);
    snprintf(g_ca_b, sizeof(g_ca_b), "%s/ca-b", g_dir);
    snprintf(g_ca_same_name, sizeof(g_ca_same_name), "%s/ca-same-name", g_dir);
    if (spm_sim_ca_init(g_ca_b, "another provisioning CA") ||
        spm_sim_ca_init(g_ca_same_name, "SPM build provisioning CA") ||
        spm_sim_platform_init(g_plat_a, g_build_ca) ||
        spm_sim_platform_init(g_plat_a2, g_build_ca) || spm_sim_platform_init(g_plat_b, g_ca_b) ||
        spm_sim_platform_init(g_plat_same_name, g_ca_same_name))
        return -1;
    g_on_a = load(g_plat_a);
    g_on_a2 = load(g_plat_a2);
    g_on_b = load(g_plat_b);
    g_on_same_name = load(g_plat_same_name);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    spm_enclave_destroy(g_on_a);
    spm_enclave_destroy(g_on_a2);
    spm_enclave_destroy(g_on_b);
    spm_enclave_destroy(g_on_same_name);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s quote_test_enclave.signed provisioning-ca-dir\n", argv[0]);
        return 2;
    }
    g_image = argv[1];
    g_build_ca = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_quote_from_pinned_ca_platform),
        cmocka_unit_test(test_refuses_quote_from_other_ca),
        cmocka_unit_test(test_every_bit_flip_is_refused),
        cmocka_unit_test(test_truncation_and_trailing_bytes_are_refused),
        cmocka_unit_test(test_overflowed_length_fields_are_refused),
        cmocka_unit_test(test_edited_chains_are_refused),
        cmocka_unit_test(test_each_check_holds_against_the_attestation_key),
        cmocka_unit_test(test_time_one_verification),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
