/* EGETKEY and EREPORT of the simulated CPU: keys are bound to the platform
 * and to the identity the policy names, the SDK simulation's refusals hold,
 * reports verify only for their target on their platform, and the
 * derivation buffers are byte-identical to the SDK's C structs (checked
 * against an independent implementation with a known root secret). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "host/common/fileio.h"
#include "host/crypto/hash.h"
#include "test_util.h"

struct fixture {
    char *scratch, *ca, *dir1, *dir2, *dir_known;
    struct spm_sim_platform *p1, *p2, *known;
};

static const uint8_t known_root_secret[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const uint8_t sdk_default_cpusvn[16] = {0x48, 0x20, 0xf3, 0x37, 0x6a, 0xe6, 0xb2, 0xf2,
                                               0x03, 0x4d, 0x3b, 0x7a, 0x4b, 0x48, 0xa7, 0x78};

/* Replaces a platform's state file by one holding known_root_secret, laid
 * out as sim_internal.h documents (this also pins that format). */
static void write_known_state(const char *dir)
{
    uint8_t state[96] = {0};
    memcpy(state, "SPMPLAT\0", 8);
    state[8] = 1;   /* version */
    state[12] = 96; /* size */
    memcpy(state + 16, known_root_secret, 32);
    memcpy(state + 48, sdk_default_cpusvn, 16);
    spm_sha256(state, 64, state + 64);
    char *path = test_path(dir, "platform.state");
    assert_int_equal(spm_write_file_atomic(path, state, sizeof(state), 0600), 0);
    free(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->scratch = test_make_scratch();
    f->ca = test_make_ca(f->scratch, "ca");
    f->dir1 = test_make_platform(f->scratch, "p1", f->ca);
    f->dir2 = test_make_platform(f->scratch, "p2", f->ca);
    f->dir_known = test_make_platform(f->scratch, "known", f->ca);
    write_known_state(f->dir_known);
    f->p1 = test_open(f->dir1);
    f->p2 = test_open(f->dir2);
    f->known = test_open(f->dir_known);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    spm_sim_platform_close(f->known);
    spm_sim_platform_close(f->p2);
    spm_sim_platform_close(f->p1);
    free(f->dir_known);
    free(f->dir2);
    free(f->dir1);
    free(f->ca);
    test_remove_scratch(f->scratch);
    free(f);
    return 0;
}

static void seal_request(struct sgx_key_request *kr, uint16_t policy, uint16_t isv_svn)
{
    memset(kr, 0, sizeof(*kr));
    kr->key_name = SGX_KEYSELECT_SEAL;
    kr->key_policy = policy;
    kr->isv_svn = isv_svn;
    kr->attribute_mask.flags = 0xFF0000000000000Bull; /* sgx_seal_data's default */
    kr->misc_mask = 0xF0000000u;
    memset(kr->key_id, 0x5a, sizeof(kr->key_id));
}

static void get_key(const struct spm_sim_platform *p, const struct sgx_secs *secs,
                    const struct sgx_key_request *kr, uint8_t key[16])
{
    assert_int_equal(spm_sim_egetkey(p, secs, kr, key), SGX_SUCCESS);
}

static void test_keys_differ_across_platforms(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs secs;
    struct sgx_key_request kr;
    uint8_t k1[16], k2[16];
    test_secs(&secs, 0xa1, 0xb1, 3);
    static const uint16_t policies[] = {SGX_KEYPOLICY_MRENCLAVE, SGX_KEYPOLICY_MRSIGNER};
    for (size_t i = 0; i < 2; i++) {
        seal_request(&kr, policies[i], 3);
        get_key(f->p1, &secs, &kr, k1);
        get_key(f->p2, &secs, &kr, k2);
        assert_memory_not_equal(k1, k2, 16);
        /* ...and a platform is deterministic. */
        get_key(f->p1, &secs, &kr, k2);
        assert_memory_equal(k1, k2, 16);
    }
    kr.key_name = SGX_KEYSELECT_REPORT;
    kr.key_policy = 0;
    kr.isv_svn = 0;
    memset(&kr.attribute_mask, 0, sizeof(kr.attribute_mask));
    kr.misc_mask = 0;
    get_key(f->p1, &secs, &kr, k1);
    get_key(f->p2, &secs, &kr, k2);
    assert_memory_not_equal(k1, k2, 16);
}

static void test_mrenclave_policy_separates_enclaves(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs x, y;
    struct sgx_key_request kr;
    uint8_t kx[16], ky[16];
    test_secs(&x, 0x01, 0xcc, 1);
    test_secs(&y, 0x02, 0xcc, 1);
    seal_request(&kr, SGX_KEYPOLICY_MRENCLAVE, 1);
    get_key(f->p1, &x, &kr, kx);
    get_key(f->p1, &y, &kr, ky);
    assert_memory_not_equal(kx, ky, 16);
}

static void test_mrsigner_policy_shared_by_signer_not_across_platforms(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs x, y, other_signer;
    struct sgx_key_request kr;
    uint8_t kx[16], ky[16], kz[16], kx2[16];
    test_secs(&x, 0x01, 0xcc, 1);
    test_secs(&y, 0x02, 0xcc, 1);
    test_secs(&other_signer, 0x01, 0xdd, 1);
    seal_request(&kr, SGX_KEYPOLICY_MRSIGNER, 1);
    get_key(f->p1, &x, &kr, kx);
    get_key(f->p1, &y, &kr, ky);
    assert_memory_equal(kx, ky, 16);
    get_key(f->p1, &other_signer, &kr, kz);
    assert_memory_not_equal(kx, kz, 16);
    get_key(f->p2, &x, &kr, kx2);
    assert_memory_not_equal(kx, kx2, 16);
}

static void test_isvsvn_above_enclave_refused(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs secs;
    struct sgx_key_request kr;
    uint8_t current[16], older[16], key[16];
    test_secs(&secs, 0x01, 0xcc, 5);
    seal_request(&kr, SGX_KEYPOLICY_MRSIGNER, 6);
    assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_ISVSVN);
    kr.isv_svn = 0xffff;
    assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_ISVSVN);
    kr.isv_svn = 5;
    get_key(f->p1, &secs, &kr, current);
    kr.isv_svn = 4; /* an older version's key is available, and different */
    get_key(f->p1, &secs, &kr, older);
    assert_memory_not_equal(current, older, 16);
}

static void test_cpusvn_rules(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs secs;
    struct sgx_key_request kr;
    uint8_t cpusvn[16], zero_key[16], explicit_key[16], older_key[16];
    test_secs(&secs, 0x01, 0xcc, 1);
    spm_sim_platform_cpusvn(f->p1, cpusvn);
    assert_memory_equal(cpusvn, sdk_default_cpusvn, 16);

    seal_request(&kr, SGX_KEYPOLICY_MRENCLAVE, 1);
    get_key(f->p1, &secs, &kr, zero_key); /* all-zero CPUSVN = the current */
    memcpy(kr.cpu_svn, cpusvn, 16);
    get_key(f->p1, &secs, &kr, explicit_key);
    assert_memory_equal(zero_key, explicit_key, 16);

    kr.cpu_svn[3]--; /* older in one component */
    get_key(f->p1, &secs, &kr, older_key);
    assert_memory_not_equal(older_key, explicit_key, 16);

    for (unsigned i = 0; i < 16; i++) {
        memcpy(kr.cpu_svn, cpusvn, 16);
        kr.cpu_svn[i]++; /* newer in one component */
        assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, older_key), SGX_INVALID_CPUSVN);
    }
}

static void test_keyname_policy_and_reserved_checks(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs secs, kss;
    struct sgx_key_request kr;
    uint8_t key[16];
    test_secs(&secs, 0x01, 0xcc, 1);

    seal_request(&kr, SGX_KEYPOLICY_MRSIGNER, 1);
    kr.key_name = 5;
    assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_KEYNAME);
    kr.key_name = 0xffff;
    assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_KEYNAME);

    seal_request(&kr, SGX_KEYPOLICY_MRSIGNER, 1);
    kr.reserved1[1] = 1;
    assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_ATTRIBUTE);
    seal_request(&kr, SGX_KEYPOLICY_MRSIGNER, 1);
    kr.reserved2[sizeof(kr.reserved2) - 1] = 1;
    assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_ATTRIBUTE);
    seal_request(&kr, SGX_KEYPOLICY_MRSIGNER | 0x40, 1);
    assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_ATTRIBUTE);

    /* KSS policies and CONFIGSVN need the KSS attribute. */
    static const uint16_t kss_policies[] = {SGX_KEYPOLICY_NOISVPRODID, SGX_KEYPOLICY_CONFIGID,
                                            SGX_KEYPOLICY_ISVFAMILYID, SGX_KEYPOLICY_ISVEXTPRODID};
    kss = secs;
    kss.attributes.flags |= SGX_FLAGS_KSS;
    kss.config_svn = 2;
    for (size_t i = 0; i < 4; i++) {
        seal_request(&kr, SGX_KEYPOLICY_MRSIGNER | kss_policies[i], 1);
        assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_ATTRIBUTE);
        assert_int_equal(spm_sim_egetkey(f->p1, &kss, &kr, key), SGX_SUCCESS);
    }
    seal_request(&kr, SGX_KEYPOLICY_MRSIGNER, 1);
    kr.config_svn = 1;
    assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_ATTRIBUTE);
    assert_int_equal(spm_sim_egetkey(f->p1, &kss, &kr, key), SGX_SUCCESS);
    kr.config_svn = 3; /* above the enclave's CONFIGSVN */
    assert_int_equal(spm_sim_egetkey(f->p1, &kss, &kr, key), SGX_INVALID_ISVSVN);
}

static void test_attribute_masking(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs a, b;
    struct sgx_key_request kr;
    uint8_t ka[16], kb[16];
    test_secs(&a, 0x01, 0xcc, 1);

    /* A flag outside the mask does not change the key; inside it does. */
    b = a;
    b.attributes.flags |= SGX_FLAGS_AEX_NOTIFY;
    seal_request(&kr, SGX_KEYPOLICY_MRSIGNER, 1);
    kr.attribute_mask.flags = SGX_FLAGS_MODE64BIT;
    get_key(f->p1, &a, &kr, ka);
    get_key(f->p1, &b, &kr, kb);
    assert_memory_equal(ka, kb, 16);
    kr.attribute_mask.flags |= SGX_FLAGS_AEX_NOTIFY;
    get_key(f->p1, &a, &kr, ka);
    get_key(f->p1, &b, &kr, kb);
    assert_memory_not_equal(ka, kb, 16);

    /* DEBUG is always in the key, even with an empty mask. */
    b = a;
    b.attributes.flags |= SGX_FLAGS_DEBUG;
    kr.attribute_mask.flags = 0;
    get_key(f->p1, &a, &kr, ka);
    get_key(f->p1, &b, &kr, kb);
    assert_memory_not_equal(ka, kb, 16);

    /* XFRM and MISCSELECT likewise follow their masks. */
    b = a;
    b.attributes.xfrm |= 0x4;
    b.misc_select = 0x1;
    kr.attribute_mask.xfrm = 0;
    kr.misc_mask = 0;
    get_key(f->p1, &a, &kr, ka);
    get_key(f->p1, &b, &kr, kb);
    assert_memory_equal(ka, kb, 16);
    kr.attribute_mask.xfrm = 0x4;
    get_key(f->p1, &a, &kr, ka);
    get_key(f->p1, &b, &kr, kb);
    assert_memory_not_equal(ka, kb, 16);
    kr.attribute_mask.xfrm = 0;
    kr.misc_mask = 0x1;
    get_key(f->p1, &a, &kr, ka);
    get_key(f->p1, &b, &kr, kb);
    assert_memory_not_equal(ka, kb, 16);
}

static void test_privileged_keys_need_attributes(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs secs, privileged;
    struct sgx_key_request kr;
    uint8_t key[16];
    test_secs(&secs, 0x01, 0xcc, 1);
    privileged = secs;
    privileged.attributes.flags |= SGX_FLAGS_PROVISION_KEY | SGX_FLAGS_EINITTOKEN_KEY;
    static const uint16_t names[] = {SGX_KEYSELECT_EINITTOKEN, SGX_KEYSELECT_PROVISION,
                                     SGX_KEYSELECT_PROVISION_SEAL};
    for (size_t i = 0; i < 3; i++) {
        seal_request(&kr, 0, 1);
        kr.key_name = names[i];
        assert_int_equal(spm_sim_egetkey(f->p1, &secs, &kr, key), SGX_INVALID_ATTRIBUTE);
        assert_int_equal(spm_sim_egetkey(f->p1, &privileged, &kr, key), SGX_SUCCESS);
        kr.isv_svn = 2;
        assert_int_equal(spm_sim_egetkey(f->p1, &privileged, &kr, key), SGX_INVALID_ISVSVN);
    }
}

/* What sgx_verify_report() does inside the enclave whose SECS is `secs`. */
static int verify_report(const struct spm_sim_platform *p, const struct sgx_secs *secs,
                         const struct sgx_report *report)
{
    struct sgx_key_request kr;
    uint8_t key[16], mac[16];
    memset(&kr, 0, sizeof(kr));
    kr.key_name = SGX_KEYSELECT_REPORT;
    memcpy(kr.key_id, report->key_id, sizeof(kr.key_id));
    assert_int_equal(spm_sim_egetkey(p, secs, &kr, key), SGX_SUCCESS);
    assert_true(spm_aes128_cmac(key, &report->body, sizeof(report->body), mac));
    return spm_ct_memcmp(mac, report->mac, sizeof(mac)) == 0;
}

static void test_report_verifies_only_for_its_target(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs x, y, z, y_debug;
    struct sgx_target_info target_y;
    struct sgx_report report, again;
    uint8_t report_data[64];
    for (unsigned i = 0; i < 64; i++)
        report_data[i] = (uint8_t)(0x80 + i);
    test_secs(&x, 0x0a, 0xcc, 9);
    x.misc_select = 0x1;
    x.config_svn = 3;
    memset(x.config_id, 0x77, sizeof(x.config_id));
    test_secs(&y, 0x0b, 0xcc, 1);
    test_secs(&z, 0x0c, 0xcc, 1);
    test_target_of(&y, &target_y);

    assert_int_equal(spm_sim_ereport(f->p1, &x, &target_y, report_data, &report), 0);
    /* The body is X's identity, the platform's CPUSVN and the data. */
    uint8_t cpusvn[16];
    spm_sim_platform_cpusvn(f->p1, cpusvn);
    assert_memory_equal(report.body.cpu_svn, cpusvn, 16);
    assert_memory_equal(report.body.mr_enclave, x.mr_enclave, 32);
    assert_memory_equal(report.body.mr_signer, x.mr_signer, 32);
    assert_memory_equal(&report.body.attributes, &x.attributes, 16);
    assert_int_equal(report.body.misc_select, 0x1);
    assert_int_equal(report.body.isv_prod_id, 7);
    assert_int_equal(report.body.isv_svn, 9);
    assert_int_equal(report.body.config_svn, 3);
    assert_memory_equal(report.body.config_id, x.config_id, 64);
    assert_memory_equal(report.body.report_data, report_data, 64);

    assert_true(verify_report(f->p1, &y, &report));
    assert_false(verify_report(f->p1, &z, &report));
    assert_false(verify_report(f->p1, &x, &report));
    assert_false(verify_report(f->p2, &y, &report));
    /* Y with other attributes is another target. */
    y_debug = y;
    y_debug.attributes.flags |= SGX_FLAGS_DEBUG;
    assert_false(verify_report(f->p1, &y_debug, &report));
    /* Any change to the body breaks the MAC. */
    for (size_t i = 0; i < sizeof(report.body); i += 7) {
        ((uint8_t *)&report.body)[i] ^= 0x01;
        assert_false(verify_report(f->p1, &y, &report));
        ((uint8_t *)&report.body)[i] ^= 0x01;
    }
    /* KEYIDs are fresh per report. */
    assert_int_equal(spm_sim_ereport(f->p1, &x, &target_y, report_data, &again), 0);
    assert_memory_not_equal(report.key_id, again.key_id, 32);
    assert_true(verify_report(f->p1, &y, &again));
}

/* ---- An independent implementation with the SDK's own struct layouts. ---- */

struct sdk_attributes {
    uint64_t flags, xfrm;
};
typedef struct {
    uint16_t key_name;
    uint16_t key_policy;
    struct sdk_attributes tmp_attr;
    struct sdk_attributes attribute_mask;
    uint32_t tmp_misc;
    uint32_t misc_mask;
    uint8_t csr_owner_epoch[16];
    uint8_t cpu_svn[16];
    uint16_t isv_svn;
    uint16_t isv_prod_id;
    uint16_t config_svn;
    uint8_t config_id[64];
    uint8_t isv_family_id[16];
    uint8_t isv_ext_prod_id[16];
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint8_t key_id[32];
} sdk_dd_seal_key_t;
typedef struct {
    uint16_t key_name;
    struct sdk_attributes attributes;
    uint32_t misc_select;
    uint8_t csr_owner_epoch[16];
    uint8_t mrenclave[32];
    uint8_t cpu_svn[16];
    uint16_t config_svn;
    uint8_t config_id[64];
    uint8_t key_id[32];
} sdk_dd_report_key_t;
_Static_assert(sizeof(sdk_dd_seal_key_t) == 280, "dd_seal_key_t");
_Static_assert(sizeof(sdk_dd_report_key_t) == 192, "dd_report_key_t");

static void expected_secret(const char *label, uint16_t index, uint8_t out[16])
{
    uint8_t message[64], mac[32];
    size_t n = strlen(label);
    memcpy(message, label, n);
    message[n] = (uint8_t)index;
    message[n + 1] = (uint8_t)(index >> 8);
    assert_true(spm_hmac_sha256(known_root_secret, 32, message, n + 2, mac));
    memcpy(out, mac, 16);
}

static void test_derivation_matches_sdk_layout(void **state)
{
    struct fixture *f = *state;
    struct sgx_secs secs;
    test_secs(&secs, 0x31, 0x32, 4);
    secs.attributes.flags |= SGX_FLAGS_KSS | SGX_FLAGS_DEBUG;
    secs.attributes.xfrm = 0xe7;
    secs.misc_select = 0xF0000001u;
    secs.config_svn = 6;
    for (unsigned i = 0; i < 64; i++)
        secs.config_id[i] = (uint8_t)(3 * i);
    uint8_t *reserved = (uint8_t *)&secs;
    for (unsigned i = 0; i < 32; i++)
        reserved[262 + i] = (uint8_t)(0xf0 ^ i); /* ISVFAMILYID, ISVEXTPRODID */

    struct sgx_key_request kr;
    seal_request(&kr,
                 SGX_KEYPOLICY_MRENCLAVE | SGX_KEYPOLICY_MRSIGNER | SGX_KEYPOLICY_CONFIGID |
                     SGX_KEYPOLICY_ISVFAMILYID | SGX_KEYPOLICY_ISVEXTPRODID,
                 3);
    kr.attribute_mask.xfrm = 0x3;
    kr.config_svn = 5;
    for (unsigned i = 0; i < 32; i++)
        kr.key_id[i] = (uint8_t)(0x40 + i);

    sdk_dd_seal_key_t dd;
    memset(&dd, 0, sizeof(dd));
    dd.key_name = SGX_KEYSELECT_SEAL;
    dd.key_policy = kr.key_policy;
    dd.tmp_attr.flags =
        (kr.attribute_mask.flags | SGX_FLAGS_INITTED | SGX_FLAGS_DEBUG) & secs.attributes.flags;
    dd.tmp_attr.xfrm = kr.attribute_mask.xfrm & secs.attributes.xfrm;
    dd.attribute_mask.flags = kr.attribute_mask.flags;
    dd.attribute_mask.xfrm = kr.attribute_mask.xfrm;
    dd.tmp_misc = kr.misc_mask & secs.misc_select;
    dd.misc_mask = ~kr.misc_mask;
    expected_secret("SPM sim owner epoch", 0, dd.csr_owner_epoch);
    memcpy(dd.cpu_svn, sdk_default_cpusvn, 16);
    dd.isv_svn = 3;
    dd.isv_prod_id = secs.isv_prod_id;
    dd.config_svn = 5;
    memcpy(dd.config_id, secs.config_id, 64);
    memcpy(dd.isv_family_id, reserved + 262, 16);
    memcpy(dd.isv_ext_prod_id, reserved + 278, 16);
    memcpy(dd.mrenclave, secs.mr_enclave, 32);
    memcpy(dd.mrsigner, secs.mr_signer, 32);
    memcpy(dd.key_id, kr.key_id, 32);
    uint8_t root[16], expected[16], key[16];
    expected_secret("SPM sim key root", SGX_KEYSELECT_SEAL, root);
    assert_true(spm_aes128_cmac(root, &dd, sizeof(dd), expected));
    get_key(f->known, &secs, &kr, key);
    assert_memory_equal(key, expected, 16);

    /* NOISVPRODID leaves ISVPRODID out. */
    kr.key_policy |= SGX_KEYPOLICY_NOISVPRODID;
    dd.key_policy = kr.key_policy;
    dd.isv_prod_id = 0;
    assert_true(spm_aes128_cmac(root, &dd, sizeof(dd), expected));
    get_key(f->known, &secs, &kr, key);
    assert_memory_equal(key, expected, 16);

    /* The REPORT key, and EREPORT's MAC under the target's report key. */
    sdk_dd_report_key_t rd;
    memset(&rd, 0, sizeof(rd));
    rd.key_name = SGX_KEYSELECT_REPORT;
    rd.attributes.flags = secs.attributes.flags;
    rd.attributes.xfrm = secs.attributes.xfrm;
    rd.misc_select = secs.misc_select;
    expected_secret("SPM sim owner epoch", 0, rd.csr_owner_epoch);
    memcpy(rd.mrenclave, secs.mr_enclave, 32);
    memcpy(rd.cpu_svn, sdk_default_cpusvn, 16);
    rd.config_svn = secs.config_svn;
    memcpy(rd.config_id, secs.config_id, 64);
    memcpy(rd.key_id, kr.key_id, 32);
    expected_secret("SPM sim key root", SGX_KEYSELECT_REPORT, root);
    assert_true(spm_aes128_cmac(root, &rd, sizeof(rd), expected));
    memset(&kr, 0, sizeof(kr));
    kr.key_name = SGX_KEYSELECT_REPORT;
    memcpy(kr.key_id, rd.key_id, 32);
    get_key(f->known, &secs, &kr, key);
    assert_memory_equal(key, expected, 16);

    struct sgx_secs other;
    struct sgx_target_info target;
    struct sgx_report report;
    uint8_t data[64] = {1, 2, 3};
    test_secs(&other, 0x55, 0x66, 1);
    test_target_of(&secs, &target);
    assert_int_equal(spm_sim_ereport(f->known, &other, &target, data, &report), 0);
    memcpy(rd.key_id, report.key_id, 32);
    uint8_t report_key[16], mac[16];
    assert_true(spm_aes128_cmac(root, &rd, sizeof(rd), report_key));
    assert_true(spm_aes128_cmac(report_key, &report.body, 384, mac));
    assert_memory_equal(mac, report.mac, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_differ_across_platforms),
        cmocka_unit_test(test_mrenclave_policy_separates_enclaves),
        cmocka_unit_test(test_mrsigner_policy_shared_by_signer_not_across_platforms),
        cmocka_unit_test(test_isvsvn_above_enclave_refused),
        cmocka_unit_test(test_cpusvn_rules),
        cmocka_unit_test(test_keyname_policy_and_reserved_checks),
        cmocka_unit_test(test_attribute_masking),
        cmocka_unit_test(test_privileged_keys_need_attributes),
        cmocka_unit_test(test_report_verifies_only_for_its_target),
        cmocka_unit_test(test_derivation_matches_sdk_layout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
