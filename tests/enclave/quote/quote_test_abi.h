/* Ecalls of the quote test enclave, which runs the Migration Enclave's
 * quote verifier (me_quote.c, with the build's pinned root) on whatever
 * bytes the host test hands it. */
#ifndef SPM_TEST_QUOTE_ABI_H
#define SPM_TEST_QUOTE_ABI_H

#include <stdint.h>

#include "spm/arch/sgx_arch.h"

enum quote_test_ecall {
    QUOTE_TEST_ECALL_QUOTE,  /* in: report_data[64]; out: this enclave's quote */
    QUOTE_TEST_ECALL_VERIFY, /* in: quote; out: struct quote_test_result */
    QUOTE_TEST_ECALL_REPEAT, /* in: u32 count || quote; out: struct quote_test_result */
};

/* The verifier's verdict travels as data so that it cannot be confused
 * with an ecall failure. */
struct quote_test_result {
    int32_t ret; /* me_quote_verify's return value */
    uint32_t reserved;
    struct sgx_report_body body;
    uint8_t platform_id[32];
} __attribute__((packed));

_Static_assert(sizeof(struct quote_test_result) == 8 + 384 + 32, "quote test result");

#endif
