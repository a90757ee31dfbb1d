/* The trusted runtime's API for enclave authors. Everything here runs inside
 * the enclave; nothing returns a pointer into untrusted memory. Functions
 * return 0 or a negative errno unless stated otherwise.
 *
 * An enclave defines its ecall table:
 *
 *     static int my_call(const uint8_t *in, size_t in_size,
 *                        uint8_t *out, size_t out_capacity, size_t *out_size);
 *     const struct spm_ecall_entry spm_app_ecalls[] = { {my_call} };
 *     const uint32_t spm_app_ecall_count = 1;
 *
 * `in` and `out` are trusted copies: the runtime copied the input in after
 * checking it lies entirely outside the enclave, and copies *out_size bytes
 * of `out` back after the handler returns 0. */
#ifndef SPM_TRTS_H
#define SPM_TRTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spm/arch/sgx_arch.h"

typedef int (*spm_ecall_fn)(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                            size_t *out_size);

struct spm_ecall_entry {
    spm_ecall_fn fn;
};

extern const struct spm_ecall_entry spm_app_ecalls[];
extern const uint32_t spm_app_ecall_count;

/* ---- Ocalls ---- */
/* Calls host function `id` with a copy of `in`; up to out_capacity bytes the
 * host returns are copied into `out` and their count into *out_size (a host
 * that claims more than out_capacity is refused with -EPROTO). Returns the
 * host's status if it is 0 or a whitelisted negative errno, else -EIO. */
int spm_ocall(uint32_t id, const void *in, size_t in_size, void *out, size_t out_capacity,
              size_t *out_size) __attribute__((warn_unused_result));
/* Prints a line on the host's stderr (untrusted: never print secrets). */
void spm_print(const char *msg);
/* Seconds since the epoch, from the (untrusted) host clock. */
uint64_t spm_untrusted_time(void);

/* ---- Memory ---- */
void *malloc(size_t size);
void *calloc(size_t count, size_t size);
void *realloc(void *p, size_t size);
void free(void *p);
void *memcpy(void *dst, const void *src, size_t size);
void *memmove(void *dst, const void *src, size_t size);
void *memset(void *dst, int c, size_t size);
int memcmp(const void *a, const void *b, size_t size);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t size);
/* Constant-time comparison: 0 when equal. */
int spm_ct_equal(const void *a, const void *b, size_t size);
/* Zeroes memory in a way the compiler keeps. */
void spm_wipe(void *p, size_t size);

/* Bytes of heap in use and in total. */
void spm_heap_stats(size_t *used, size_t *total);

/* True when [p, p+size) lies entirely inside / outside ELRANGE (overflow-safe). */
bool spm_is_within_enclave(const void *p, size_t size);
bool spm_is_outside_enclave(const void *p, size_t size);

/* ---- Locks (spinning: enclave threads have no futex) ---- */
struct spm_spinlock {
    volatile int locked;
};
void spm_spin_lock(struct spm_spinlock *l);
void spm_spin_unlock(struct spm_spinlock *l);

/* ---- Randomness: HMAC-DRBG seeded from RDRAND ---- */
int spm_random(void *out, size_t size) __attribute__((warn_unused_result));

/* ---- Identity, reports, keys ---- */
/* This enclave's own REPORT body (targeted at itself). */
int spm_self_report_body(struct sgx_report_body *body) __attribute__((warn_unused_result));
/* This enclave's TARGETINFO, for a peer to target a report at it. */
int spm_self_target_info(struct sgx_target_info *target) __attribute__((warn_unused_result));
/* EREPORT targeted at `target` carrying report_data. */
int spm_create_report(const struct sgx_target_info *target, const uint8_t report_data[64],
                      struct sgx_report *report) __attribute__((warn_unused_result));
/* Local attestation: verifies a REPORT's MAC with this enclave's report key
 * (succeeds only for reports targeted at this enclave on this platform).
 * -EKEYREJECTED when the MAC does not match. */
int spm_verify_report(const struct sgx_report *report) __attribute__((warn_unused_result));
/* EGETKEY with a full request; -EPERM for an SGX error (ISVSVN, CPUSVN...). */
int spm_get_key(const struct sgx_key_request *request, uint8_t key[16])
    __attribute__((warn_unused_result));

/* ---- Sealing (struct sgx_sealed_data layout, AES-128-GCM, zero IV) ---- */
#define SPM_SEAL_POLICY_MRENCLAVE SGX_KEYPOLICY_MRENCLAVE
#define SPM_SEAL_POLICY_MRSIGNER  SGX_KEYPOLICY_MRSIGNER
/* Size of the sealed blob for the given plaintext and AAD sizes (0 on overflow). */
size_t spm_sealed_size(size_t text_size, size_t aad_size);
int spm_seal(uint16_t key_policy, const void *aad, size_t aad_size, const void *text,
             size_t text_size, void *sealed, size_t sealed_size)
    __attribute__((warn_unused_result));
/* Unseals into text (text_capacity >= ciphertext size); *text_size and the
 * AAD location inside `sealed` are returned. -EBADMSG on any mismatch. */
int spm_unseal(const void *sealed, size_t sealed_size, void *text, size_t text_capacity,
               size_t *text_size, const uint8_t **aad, size_t *aad_size)
    __attribute__((warn_unused_result));

/* ---- Remote attestation ---- */
/* Obtains a quote over this enclave's REPORT with report_data from the
 * platform's quoting service; the quote is checked to carry this enclave's
 * own report body. *quote is heap-allocated (free()). */
int spm_get_quote(const uint8_t report_data[64], uint8_t **quote, size_t *quote_size)
    __attribute__((warn_unused_result));

/* ---- Platform monotonic counters ----
 * Named by a 16-byte id, private to enclaves with this enclave's MRSIGNER,
 * kept by the platform (the simulated CPU's store; on hardware a trusted
 * counter service) so that host software cannot move them backwards. Each
 * value carries a 32-byte tag, stored by the increment that produced it:
 * bind it to what the value versions (e.g. the digest of the state written
 * at that version), so that a reader can tell its own write from another
 * writer's at the same number. A counter that was never incremented reads 0
 * with an all-zero tag. -EIO if the platform's store fails, -ENOSYS where
 * the platform has none (hardware, for now). */
int spm_counter_read(const uint8_t id[16], uint64_t *value, uint8_t tag[32])
    __attribute__((warn_unused_result));
/* Adds one, stores `tag` with the new value, and returns the new value.
 * The value is not compared with anything: a caller that expects v+1 must
 * check *value itself (another writer may have moved the counter). */
int spm_counter_increment(const uint8_t id[16], const uint8_t tag[32], uint64_t *value)
    __attribute__((warn_unused_result));

/* ---- Crypto the runtime exposes to enclave code ---- */
void spm_sha256(const void *data, size_t size, uint8_t digest[32]);
/* ECDSA P-256: private key 32 bytes, public key 65 bytes (0x04 || x || y),
 * signature r || s (64 bytes) over SHA-256(msg). */
int spm_ecdsa_p256_keygen(uint8_t private_key[32], uint8_t public_key[65])
    __attribute__((warn_unused_result));
int spm_ecdsa_p256_sign(const uint8_t private_key[32], const void *msg, size_t msg_size,
                        uint8_t signature[64]) __attribute__((warn_unused_result));
bool spm_ecdsa_p256_verify(const uint8_t public_key[65], const void *msg, size_t msg_size,
                           const uint8_t signature[64]);

#endif
