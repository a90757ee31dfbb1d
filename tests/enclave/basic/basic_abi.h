/* Ecall/ocall ids and argument structs of the basic test enclave. */
#ifndef SPM_TEST_BASIC_ABI_H
#define SPM_TEST_BASIC_ABI_H

#include <stdint.h>

#include "spm/arch/sgx_arch.h"

enum basic_ecall {
    BASIC_ECALL_ECHO,
    BASIC_ECALL_COUNT,
    BASIC_ECALL_REPORT,
    BASIC_ECALL_VERIFY_REPORT,
    BASIC_ECALL_TARGET_INFO,
    BASIC_ECALL_SEAL,
    BASIC_ECALL_UNSEAL,
    BASIC_ECALL_GET_KEY,
    BASIC_ECALL_QUOTE,
    BASIC_ECALL_OCALL_ECHO,
    BASIC_ECALL_HEAP,
    BASIC_ECALL_ECDSA,
    BASIC_ECALL_SELF_REPORT,
    BASIC_ECALL_RANDOM,
    BASIC_ECALL_PARK,
};

enum basic_ocall {
    BASIC_OCALL_ECHO,
    BASIC_OCALL_PARK,
};

struct basic_count_result {
    uint64_t value;
    uint64_t max_inside;
} __attribute__((packed));

struct basic_report_request {
    struct sgx_target_info target;
    uint8_t report_data[64];
} __attribute__((packed));

_Static_assert(sizeof(struct basic_report_request) == 576, "report request");

#endif
