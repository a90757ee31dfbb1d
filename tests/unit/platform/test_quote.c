/* Quotes: the simulated QE only quotes reports targeted at it on its own
 * platform; a quote verifies against its CA and nothing else; and because
 * the quote is attacker input, no single-byte change, truncation or
 * extension of it verifies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/crypto/hash.h"
#include "host/platform/quote.h"
#include "test_util.h"

struct fixture {
    char *scratch, *ca, *other_ca, *dir1, *dir2;
    char *ca_cert, *other_ca_cert;
    struct spm_sim_platform *p1, *p2;
    struct sgx_secs app;
    uint8_t *quote;
    size_t quote_size;
    struct sgx_report report;
};

static void report_for_qe(const struct spm_sim_platform *p, const struct sgx_secs *secs,
                          struct sgx_report *report)
{
    struct sgx_target_info qe;
    uint8_t data[64];
    for (unsigned i = 0; i < 64; i++)
        data[i] = (uint8_t)(0xc0 ^ i);
    spm_sim_qe_target_info(p, &qe);
    assert_int_equal(spm_sim_ereport(p, secs, &qe, data, report), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->scratch = test_make_scratch();
    f->ca = test_make_ca(f->scratch, "ca");
    f->other_ca = test_make_ca(f->scratch, "other-ca");
    f->ca_cert = test_path(f->ca, "ca.crt");
    f->other_ca_cert = test_path(f->other_ca, "ca.crt");
    f->dir1 = test_make_platform(f->scratch, "p1", f->ca);
    f->dir2 = test_make_platform(f->scratch, "p2", f->ca);
    f->p1 = test_open(f->dir1);
    f->p2 = test_open(f->dir2);
    test_secs(&f->app, 0x11, 0x22, 2);
    report_for_qe(f->p1, &f->app, &f->report);
    assert_int_equal(spm_sim_quote(f->p1, &f->report, &f->quote, &f->quote_size), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->quote);
    spm_sim_platform_close(f->p2);
    spm_sim_platform_close(f->p1);
    free(f->dir2);
    free(f->dir1);
    free(f->other_ca_cert);
    free(f->ca_cert);
    free(f->other_ca);
    free(f->ca);
    test_remove_scratch(f->scratch);
    free(f);
    return 0;
}

/* Verifies with the library's error log silenced (the loops below provoke
 * thousands of refusals). */
static int quiet_verify(const uint8_t *quote, size_t size, const char *root)
{
    struct test_capture capture;
    struct sgx_report_body body;
    test_capture_begin(&capture);
    int ret = spm_quote_verify(quote, size, root, &body);
    free(test_capture_end(&capture));
    return ret;
}

static void test_quote_verifies_against_its_ca_only(void **state)
{
    struct fixture *f = *state;
    struct sgx_report_body body;
    memset(&body, 0, sizeof(body));
    assert_int_equal(spm_quote_verify(f->quote, f->quote_size, f->ca_cert, &body), 0);
    assert_memory_equal(&body, &f->report.body, sizeof(body));
    assert_int_equal(quiet_verify(f->quote, f->quote_size, f->other_ca_cert), -EKEYREJECTED);
    char *missing = test_path(f->scratch, "no-such-root.crt");
    assert_int_equal(quiet_verify(f->quote, f->quote_size, missing), -ENOENT);
    free(missing);
    /* A quote from the second platform of the same CA verifies too. */
    struct sgx_report report;
    uint8_t *quote = NULL;
    size_t size = 0;
    report_for_qe(f->p2, &f->app, &report);
    assert_int_equal(spm_sim_quote(f->p2, &report, &quote, &size), 0);
    assert_int_equal(spm_quote_verify(quote, size, f->ca_cert, &body), 0);
    free(quote);
}

static void test_quote_layout(void **state)
{
    struct fixture *f = *state;
    const uint8_t *q = f->quote;
    struct sgx_quote fixed;
    struct sgx_ecdsa_sig_data sig;
    memcpy(&fixed, q, sizeof(fixed));
    assert_int_equal(fixed.header.version, 3);
    assert_int_equal(fixed.header.att_key_type, 2);
    assert_int_equal(fixed.header.att_key_data_0, 0);
    assert_memory_equal(fixed.header.vendor_id, spm_quote_vendor_id, 16);
    assert_memory_equal(&fixed.report_body, &f->report.body, 384);
    assert_int_equal(fixed.signature_data_len, f->quote_size - 436);
    memcpy(&sig, q + 436, sizeof(sig));

    /* QE report: the simulated QE's identity, REPORTDATA binding the key. */
    uint8_t mrenclave[32], mrsigner[32], digest[32], zero[32] = {0};
    spm_quote_sim_qe_identity(mrenclave, mrsigner);
    assert_memory_equal(sig.qe_report.mr_enclave, mrenclave, 32);
    assert_memory_equal(sig.qe_report.mr_signer, mrsigner, 32);
    spm_sha256("SPM simulated quoting enclave", 29, digest);
    assert_memory_equal(mrenclave, digest, 32);

    const uint8_t *p = q + 436 + sizeof(sig);
    uint16_t auth_size, cert_type;
    uint32_t cert_size;
    memcpy(&auth_size, p, 2);
    assert_int_equal(auth_size, 32);
    for (unsigned i = 0; i < 32; i++)
        assert_int_equal(p[2 + i], i);
    struct spm_sha256 hash;
    spm_sha256_init(&hash);
    spm_sha256_update(&hash, sig.attest_pub_key, 64);
    spm_sha256_update(&hash, p + 2, 32);
    spm_sha256_final(&hash, digest);
    assert_memory_equal(sig.qe_report.report_data, digest, 32);
    assert_memory_equal(sig.qe_report.report_data + 32, zero, 32);

    p += 2 + 32;
    memcpy(&cert_type, p, 2);
    memcpy(&cert_size, p + 2, 4);
    assert_int_equal(cert_type, 5);
    assert_int_equal(p + 6 + cert_size, q + f->quote_size);
    const char *certs = (const char *)p + 6;
    assert_int_equal(certs[cert_size - 1], 0);
    assert_int_equal(strlen(certs), cert_size - 1);
    /* Leaf first, then the root. */
    const char *first = strstr(certs, "-----BEGIN CERTIFICATE-----");
    const char *second = strstr(first + 1, "-----BEGIN CERTIFICATE-----");
    assert_ptr_equal(first, certs);
    assert_non_null(second);
    assert_null(strstr(second + 1, "-----BEGIN CERTIFICATE-----"));
}

/* Every byte of the quote is covered: [0,432) by the quote signature;
 * signature_data_len by the exact-size check; the signature, attestation
 * key, QE report and QE report signature by the two ECDSA verifications and
 * the leaf-key comparison; auth_data by the QE REPORTDATA hash (its size,
 * the cert type and size by the exact parse); the certificate text by the
 * canonical-PEM + full-path chain check and the NUL checks. So no byte is
 * exempt, and each is flipped in three ways (low bit, high bit, all bits). */
static void test_quote_rejects_every_single_byte_change(void **state)
{
    struct fixture *f = *state;
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    uint8_t *copy = malloc(f->quote_size);
    memcpy(copy, f->quote, f->quote_size);
    size_t accepted = 0;
    for (size_t i = 0; i < f->quote_size; i++) {
        for (size_t m = 0; m < sizeof(masks); m++) {
            copy[i] ^= masks[m];
            int ret = quiet_verify(copy, f->quote_size, f->ca_cert);
            if (ret == 0) {
                print_error("quote with byte %zu ^ 0x%02x verified\n", i, masks[m]);
                accepted++;
            }
            assert_true(ret == -EBADMSG || ret == -EKEYREJECTED || ret == 0);
            copy[i] ^= masks[m];
        }
    }
    assert_int_equal(accepted, 0);
    assert_int_equal(quiet_verify(copy, f->quote_size, f->ca_cert), 0);
    free(copy);
}

static void test_quote_rejects_truncation_and_extension(void **state)
{
    struct fixture *f = *state;
    uint8_t *longer = malloc(f->quote_size + 1);
    memcpy(longer, f->quote, f->quote_size);
    for (size_t size = 0; size < f->quote_size; size++)
        assert_int_equal(quiet_verify(longer, size, f->ca_cert), -EBADMSG);
    /* One extra byte, with and without signature_data_len adjusted. */
    longer[f->quote_size] = 0;
    assert_int_equal(quiet_verify(longer, f->quote_size + 1, f->ca_cert), -EBADMSG);
    uint32_t length;
    memcpy(&length, longer + 432, 4);
    length++;
    memcpy(longer + 432, &length, 4);
    assert_int_equal(quiet_verify(longer, f->quote_size + 1, f->ca_cert), -EBADMSG);
    /* Lengths near the type limits must not wrap. */
    uint8_t *copy = malloc(f->quote_size);
    memcpy(copy, f->quote, f->quote_size);
    size_t auth_offset = 436 + sizeof(struct sgx_ecdsa_sig_data);
    size_t cert_size_offset = auth_offset + 2 + 32 + 2;
    static const uint32_t sizes[] = {0xffffffffu, 0xfffffff0u, 0x80000000u, 0};
    for (size_t i = 0; i < 4; i++) {
        memcpy(copy + 432, &sizes[i], 4);
        assert_int_equal(quiet_verify(copy, f->quote_size, f->ca_cert), -EBADMSG);
        memcpy(copy + 432, f->quote + 432, 4);
        memcpy(copy + cert_size_offset, &sizes[i], 4);
        assert_int_equal(quiet_verify(copy, f->quote_size, f->ca_cert), -EBADMSG);
        memcpy(copy + cert_size_offset, f->quote + cert_size_offset, 4);
    }
    uint16_t auth = 0xffff;
    memcpy(copy + auth_offset, &auth, 2);
    assert_int_equal(quiet_verify(copy, f->quote_size, f->ca_cert), -EBADMSG);
    free(copy);
    free(longer);
    struct sgx_report_body body;
    assert_int_equal(spm_quote_verify(NULL, 0, f->ca_cert, &body), -EBADMSG);
}

static void test_qe_refuses_reports_not_targeted_at_it(void **state)
{
    struct fixture *f = *state;
    uint8_t *quote = NULL;
    size_t size = 0;
    struct test_capture capture;
    struct sgx_report report;
    struct sgx_target_info other;
    struct sgx_secs y;
    uint8_t data[64] = {0};

    /* Targeted at another enclave. */
    test_secs(&y, 0x44, 0x22, 1);
    test_target_of(&y, &other);
    assert_int_equal(spm_sim_ereport(f->p1, &f->app, &other, data, &report), 0);
    test_capture_begin(&capture);
    assert_int_equal(spm_sim_quote(f->p1, &report, &quote, &size), -EINVAL);
    char *log = test_capture_end(&capture);
    assert_non_null(strstr(log, "quoting enclave"));
    free(log);

    /* Targeted at the QE but made on another platform. */
    report_for_qe(f->p2, &f->app, &report);
    test_capture_begin(&capture);
    assert_int_equal(spm_sim_quote(f->p1, &report, &quote, &size), -EINVAL);
    free(test_capture_end(&capture));

    /* Altered after EREPORT. */
    report = f->report;
    report.body.isv_svn++;
    test_capture_begin(&capture);
    assert_int_equal(spm_sim_quote(f->p1, &report, &quote, &size), -EINVAL);
    free(test_capture_end(&capture));
    assert_null(quote);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote_verifies_against_its_ca_only),
        cmocka_unit_test(test_quote_layout),
        cmocka_unit_test(test_quote_rejects_every_single_byte_change),
        cmocka_unit_test(test_quote_rejects_truncation_and_extension),
        cmocka_unit_test(test_qe_refuses_reports_not_targeted_at_it),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
