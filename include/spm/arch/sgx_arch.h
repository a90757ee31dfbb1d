/* SGX hardware-defined layouts, byte-identical to what the CPU, the Linux
 * driver and Intel's SDK use (see shared/SGX-FORMATS.md). Nothing but
 * architectural structures lives here: SPM's own formats are in abi/.
 * Every size is asserted so a stray field breaks the build, not an enclave. */
#ifndef SPM_ARCH_SGX_ARCH_H
#define SPM_ARCH_SGX_ARCH_H

#include <stddef.h>
#include <stdint.h>

#define SGX_PAGE_SIZE           4096u
#define SGX_HASH_SIZE           32u
#define SGX_CPUSVN_SIZE         16u
#define SGX_KEYID_SIZE          32u
#define SGX_REPORT_DATA_SIZE    64u
#define SGX_MAC_SIZE            16u
#define SGX_MODULUS_SIZE        384u
#define SGX_CONFIGID_SIZE       64u
#define SGX_ISVEXT_PROD_ID_SIZE 16u
#define SGX_ISV_FAMILY_ID_SIZE  16u

/* ATTRIBUTES.FLAGS bits */
#define SGX_FLAGS_INITTED        0x0000000000000001ull
#define SGX_FLAGS_DEBUG          0x0000000000000002ull
#define SGX_FLAGS_MODE64BIT      0x0000000000000004ull
#define SGX_FLAGS_PROVISION_KEY  0x0000000000000010ull
#define SGX_FLAGS_EINITTOKEN_KEY 0x0000000000000020ull
#define SGX_FLAGS_KSS            0x0000000000000080ull
#define SGX_FLAGS_AEX_NOTIFY     0x0000000000000400ull
#define SGX_XFRM_LEGACY          0x0000000000000003ull

/* SECINFO.FLAGS */
#define SGX_SECINFO_R              0x01ull
#define SGX_SECINFO_W              0x02ull
#define SGX_SECINFO_X              0x04ull
#define SGX_SECINFO_SECS           0x0000ull
#define SGX_SECINFO_TCS            0x0100ull
#define SGX_SECINFO_REG            0x0200ull
#define SGX_SECINFO_VA             0x0300ull
#define SGX_SECINFO_TRIM           0x0400ull
#define SGX_SECINFO_PAGE_TYPE_MASK 0xff00ull

/* ENCLU leaves */
enum sgx_enclu_leaf {
    SGX_ENCLU_EREPORT = 0,
    SGX_ENCLU_EGETKEY = 1,
    SGX_ENCLU_EENTER = 2,
    SGX_ENCLU_ERESUME = 3,
    SGX_ENCLU_EEXIT = 4,
};

/* KEYREQUEST.KEYNAME */
enum sgx_key_name {
    SGX_KEYSELECT_EINITTOKEN = 0,
    SGX_KEYSELECT_PROVISION = 1,
    SGX_KEYSELECT_PROVISION_SEAL = 2,
    SGX_KEYSELECT_REPORT = 3,
    SGX_KEYSELECT_SEAL = 4,
};

/* KEYREQUEST.KEYPOLICY */
#define SGX_KEYPOLICY_MRENCLAVE    0x0001u
#define SGX_KEYPOLICY_MRSIGNER     0x0002u
#define SGX_KEYPOLICY_NOISVPRODID  0x0004u
#define SGX_KEYPOLICY_CONFIGID     0x0008u
#define SGX_KEYPOLICY_ISVFAMILYID  0x0010u
#define SGX_KEYPOLICY_ISVEXTPRODID 0x0020u
#define SGX_KEYPOLICY_VALID_MASK   0x003fu
#define SGX_KEYPOLICY_KSS_MASK     0x003cu

/* Error codes EGETKEY / EREPORT return in RAX (SDM table 40-x). */
#define SGX_SUCCESS           0
#define SGX_INVALID_ATTRIBUTE 2
#define SGX_INVALID_CPUSVN    32
#define SGX_INVALID_ISVSVN    64
#define SGX_INVALID_KEYNAME   256

struct sgx_attributes {
    uint64_t flags;
    uint64_t xfrm;
};
_Static_assert(sizeof(struct sgx_attributes) == 16, "SDM: ATTRIBUTES is 16 bytes");

struct sgx_measurement {
    uint8_t m[SGX_HASH_SIZE];
};
_Static_assert(sizeof(struct sgx_measurement) == SGX_HASH_SIZE, "a measurement is a SHA-256");

/* ECREATE/EADD/EEXTEND measurement records: each a 64-byte block. */
#define SGX_MEASURE_BLOCK_SIZE  64u
#define SGX_EEXTEND_CHUNK_SIZE  256u
#define SGX_MEASURE_TAG_ECREATE 0x0045544145524345ull /* "ECREATE\0" */
#define SGX_MEASURE_TAG_EADD    0x0000000044444145ull /* "EADD\0\0\0\0" */
#define SGX_MEASURE_TAG_EEXTEND 0x00444E4554584545ull /* "EEXTEND\0" */

/* SECS: the enclave control structure (one page). */
struct sgx_secs {
    uint64_t size;
    uint64_t base;
    uint32_t ssa_frame_size; /* pages */
    uint32_t misc_select;
    uint8_t reserved1[24];
    struct sgx_attributes attributes;
    uint8_t mr_enclave[SGX_HASH_SIZE];
    uint8_t reserved2[32];
    uint8_t mr_signer[SGX_HASH_SIZE];
    uint8_t reserved3[32];
    uint8_t config_id[SGX_CONFIGID_SIZE];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint16_t config_svn;
    uint8_t reserved4[3834];
} __attribute__((packed));

/* TCS: thread control structure; offsets are relative to the enclave base. */
struct sgx_tcs {
    uint64_t state;
    uint64_t flags;
    uint64_t ossa;
    uint32_t cssa;
    uint32_t nssa;
    uint64_t oentry;
    uint64_t aep;
    uint64_t ofs_base;
    uint64_t ogs_base;
    uint32_t fs_limit;
    uint32_t gs_limit;
    uint8_t reserved[4024];
} __attribute__((packed));

/* SIGSTRUCT (1808 B). MODULUS, SIGNATURE, Q1, Q2 are little-endian. */
struct sgx_sigstruct_header {
    uint8_t header[12];
    uint32_t type;
    uint32_t vendor;
    uint32_t date;
    uint8_t header2[16];
    uint32_t swdefined;
    uint8_t reserved[84];
} __attribute__((packed));

struct sgx_sigstruct_body {
    uint32_t misc_select;
    uint32_t misc_mask;
    uint8_t reserved[4];
    uint8_t isv_family_id[SGX_ISV_FAMILY_ID_SIZE];
    struct sgx_attributes attributes;
    struct sgx_attributes attribute_mask;
    uint8_t mr_enclave[SGX_HASH_SIZE];
    uint8_t reserved2[16];
    uint8_t isv_ext_prod_id[SGX_ISVEXT_PROD_ID_SIZE];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
} __attribute__((packed));

struct sgx_sigstruct {
    struct sgx_sigstruct_header header;
    uint8_t modulus[SGX_MODULUS_SIZE];
    uint32_t exponent;
    uint8_t signature[SGX_MODULUS_SIZE];
    struct sgx_sigstruct_body body;
    uint8_t reserved4[12];
    uint8_t q1[SGX_MODULUS_SIZE];
    uint8_t q2[SGX_MODULUS_SIZE];
} __attribute__((packed));

#define SGX_SIGSTRUCT_HEADER1                                                                      \
    {                                                                                              \
        0x06, 0x00, 0x00, 0x00, 0xE1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00                     \
    }
#define SGX_SIGSTRUCT_HEADER2                                                                      \
    {                                                                                              \
        0x01, 0x01, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,  \
            0x00                                                                                   \
    }
#define SGX_SIGSTRUCT_TYPE_DEBUG_SIGNER 0x80000000u
#define SGX_SIGSTRUCT_VENDOR_INTEL      0x8086u

/* REPORT body (384 B), REPORT (432 B), TARGETINFO (512 B). */
struct sgx_report_body {
    uint8_t cpu_svn[SGX_CPUSVN_SIZE];
    uint32_t misc_select;
    uint8_t reserved1[12];
    uint8_t isv_ext_prod_id[SGX_ISVEXT_PROD_ID_SIZE];
    struct sgx_attributes attributes;
    uint8_t mr_enclave[SGX_HASH_SIZE];
    uint8_t reserved2[32];
    uint8_t mr_signer[SGX_HASH_SIZE];
    uint8_t reserved3[32];
    uint8_t config_id[SGX_CONFIGID_SIZE];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint16_t config_svn;
    uint8_t reserved4[42];
    uint8_t isv_family_id[SGX_ISV_FAMILY_ID_SIZE];
    uint8_t report_data[SGX_REPORT_DATA_SIZE];
} __attribute__((packed));

struct sgx_report {
    struct sgx_report_body body;
    uint8_t key_id[SGX_KEYID_SIZE];
    uint8_t mac[SGX_MAC_SIZE];
} __attribute__((packed));

struct sgx_target_info {
    uint8_t mr_enclave[SGX_HASH_SIZE];
    struct sgx_attributes attributes;
    uint8_t reserved1[2];
    uint16_t config_svn;
    uint32_t misc_select;
    uint8_t reserved2[8];
    uint8_t config_id[SGX_CONFIGID_SIZE];
    uint8_t reserved3[384];
} __attribute__((packed));

/* KEYREQUEST (512 B). */
struct sgx_key_request {
    uint16_t key_name;
    uint16_t key_policy;
    uint16_t isv_svn;
    uint8_t reserved1[2];
    uint8_t cpu_svn[SGX_CPUSVN_SIZE];
    struct sgx_attributes attribute_mask;
    uint8_t key_id[SGX_KEYID_SIZE];
    uint32_t misc_mask;
    uint16_t config_svn;
    uint8_t reserved2[434];
} __attribute__((packed));

/* Sealed data (sgx_sealed_data_t): header 560 B, then ciphertext || AAD. */
struct sgx_sealed_data {
    struct sgx_key_request key_request;
    uint32_t plain_text_offset; /* = ciphertext length */
    uint8_t reserved1[12];
    uint32_t payload_size; /* ciphertext + AAD */
    uint8_t reserved2[12];
    uint8_t tag[16];
    uint8_t payload[];
} __attribute__((packed));

/* DCAP ECDSA quote v3 (SGX-FORMATS.md section 6). */
#define SGX_QUOTE_VERSION             3u
#define SGX_QUOTE_ATT_KEY_ECDSA_P256  2u
#define SGX_QUOTE_CERT_TYPE_PCK_CHAIN 5u

struct sgx_quote_header {
    uint16_t version;
    uint16_t att_key_type;
    uint32_t att_key_data_0;
    uint16_t qe_svn;
    uint16_t pce_svn;
    uint8_t vendor_id[16];
    uint8_t user_data[20];
} __attribute__((packed));

struct sgx_quote {
    struct sgx_quote_header header;
    struct sgx_report_body report_body;
    uint32_t signature_data_len;
    uint8_t signature_data[];
} __attribute__((packed));

struct sgx_ecdsa_sig_data {
    uint8_t sig[64];            /* r || s, big-endian */
    uint8_t attest_pub_key[64]; /* x || y, big-endian */
    struct sgx_report_body qe_report;
    uint8_t qe_report_sig[64];
    /* then: u16 auth_data_size, auth_data, u16 cert type, u32 size, data */
} __attribute__((packed));

_Static_assert(sizeof(struct sgx_secs) == 4096, "SECS is one page");
_Static_assert(offsetof(struct sgx_secs, attributes) == 48, "SECS.ATTRIBUTES");
_Static_assert(offsetof(struct sgx_secs, mr_enclave) == 64, "SECS.MRENCLAVE");
_Static_assert(offsetof(struct sgx_secs, mr_signer) == 128, "SECS.MRSIGNER");
_Static_assert(offsetof(struct sgx_secs, isv_prod_id) == 256, "SECS.ISVPRODID");
_Static_assert(sizeof(struct sgx_tcs) == 4096, "TCS is one page");
_Static_assert(offsetof(struct sgx_tcs, oentry) == 32, "TCS.OENTRY");
_Static_assert(offsetof(struct sgx_tcs, ogs_base) == 56, "TCS.OGSBASGX");
_Static_assert(sizeof(struct sgx_sigstruct_header) == 128, "SIGSTRUCT header");
_Static_assert(sizeof(struct sgx_sigstruct_body) == 128, "SIGSTRUCT body");
_Static_assert(sizeof(struct sgx_sigstruct) == 1808, "SIGSTRUCT is 1808 bytes");
_Static_assert(offsetof(struct sgx_sigstruct, modulus) == 128, "SIGSTRUCT.MODULUS");
_Static_assert(offsetof(struct sgx_sigstruct, exponent) == 512, "SIGSTRUCT.EXPONENT");
_Static_assert(offsetof(struct sgx_sigstruct, signature) == 516, "SIGSTRUCT.SIGNATURE");
_Static_assert(offsetof(struct sgx_sigstruct, body) == 900, "SIGSTRUCT.MISCSELECT");
_Static_assert(offsetof(struct sgx_sigstruct, body.mr_enclave) == 960, "SIGSTRUCT.ENCLAVEHASH");
_Static_assert(offsetof(struct sgx_sigstruct, body.isv_prod_id) == 1024, "SIGSTRUCT.ISVPRODID");
_Static_assert(offsetof(struct sgx_sigstruct, q1) == 1040, "SIGSTRUCT.Q1");
_Static_assert(offsetof(struct sgx_sigstruct, q2) == 1424, "SIGSTRUCT.Q2");
_Static_assert(sizeof(struct sgx_report_body) == 384, "REPORT body");
_Static_assert(offsetof(struct sgx_report_body, attributes) == 48, "REPORT.ATTRIBUTES");
_Static_assert(offsetof(struct sgx_report_body, mr_enclave) == 64, "REPORT.MRENCLAVE");
_Static_assert(offsetof(struct sgx_report_body, mr_signer) == 128, "REPORT.MRSIGNER");
_Static_assert(offsetof(struct sgx_report_body, isv_prod_id) == 256, "REPORT.ISVPRODID");
_Static_assert(offsetof(struct sgx_report_body, isv_family_id) == 304, "REPORT.ISVFAMILYID");
_Static_assert(offsetof(struct sgx_report_body, report_data) == 320, "REPORT.REPORTDATA");
_Static_assert(sizeof(struct sgx_report) == 432, "REPORT");
_Static_assert(offsetof(struct sgx_report, key_id) == 384, "REPORT.KEYID");
_Static_assert(offsetof(struct sgx_report, mac) == 416, "REPORT.MAC");
_Static_assert(sizeof(struct sgx_target_info) == 512, "TARGETINFO");
_Static_assert(offsetof(struct sgx_target_info, config_svn) == 50, "TARGETINFO.CONFIGSVN");
_Static_assert(offsetof(struct sgx_target_info, misc_select) == 52, "TARGETINFO.MISCSELECT");
_Static_assert(offsetof(struct sgx_target_info, config_id) == 64, "TARGETINFO.CONFIGID");
_Static_assert(sizeof(struct sgx_key_request) == 512, "KEYREQUEST");
_Static_assert(offsetof(struct sgx_key_request, cpu_svn) == 8, "KEYREQUEST.CPUSVN");
_Static_assert(offsetof(struct sgx_key_request, key_id) == 40, "KEYREQUEST.KEYID");
_Static_assert(offsetof(struct sgx_key_request, misc_mask) == 72, "KEYREQUEST.MISCMASK");
_Static_assert(offsetof(struct sgx_key_request, config_svn) == 76, "KEYREQUEST.CONFIGSVN");
_Static_assert(sizeof(struct sgx_sealed_data) == 560, "sealed data header");
_Static_assert(offsetof(struct sgx_sealed_data, payload_size) == 528, "sealed payload_size");
_Static_assert(offsetof(struct sgx_sealed_data, tag) == 544, "sealed tag");
_Static_assert(sizeof(struct sgx_quote_header) == 48, "quote header");
_Static_assert(offsetof(struct sgx_quote, report_body) == 48, "quote report body");
_Static_assert(offsetof(struct sgx_quote, signature_data_len) == 432, "quote sig len");
_Static_assert(sizeof(struct sgx_quote) == 436, "quote fixed part");
_Static_assert(sizeof(struct sgx_ecdsa_sig_data) == 576, "quote signature data fixed part");

#endif
