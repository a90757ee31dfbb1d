/* Ecalls of the ME test enclave: each drives one step of the trusted ME
 * client (src/trusted/me_client.c) on a session kept in the enclave, so the
 * host test can run the protocol against a real spmd step by step. */
#ifndef SPM_TESTS_ME_TEST_ABI_H
#define SPM_TESTS_ME_TEST_ABI_H

#include <stdint.h>

#include "spm/abi/me_abi.h"

enum me_test_ecall {
    ME_TEST_ECALL_OPEN = 0, /* no data; out: u64 session */
    ME_TEST_ECALL_ESCROW,   /* in: struct spm_me_escrow */
    ME_TEST_ECALL_RELEASE,  /* in: struct spm_me_checkpoint_ref; out: 32-byte key */
    ME_TEST_ECALL_COMMIT,   /* in: struct spm_me_commit */
    ME_TEST_ECALL_CANCEL,   /* in: struct spm_me_checkpoint_ref */
    ME_TEST_ECALL_CLOSE,    /* no data */
    ME_TEST_ECALL_COUNTER,  /* in: struct me_test_counter; out: struct me_test_counter_value */
    ME_TEST_ECALL_COUNT,
};

struct me_test_counter {
    uint8_t increment; /* 0: read, 1: increment */
    uint8_t id[16];
    uint8_t tag[32]; /* increment: the tag to store with the new value */
} __attribute__((packed));
_Static_assert(sizeof(struct me_test_counter) == 49, "me test counter");

struct me_test_counter_value {
    uint64_t value;
    uint8_t tag[32]; /* read: the tag stored with the value; increment: zero */
} __attribute__((packed));
_Static_assert(sizeof(struct me_test_counter_value) == 40, "me test counter value");

#endif
