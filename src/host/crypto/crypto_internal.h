/* Shared inside the host crypto module only (it names OpenSSL types). */
#ifndef SPM_HOST_CRYPTO_INTERNAL_H
#define SPM_HOST_CRYPTO_INTERNAL_H

#include <stddef.h>

#include <openssl/bio.h>

/* Copies a memory BIO's content into a malloc'd NUL-terminated buffer owned
 * by the caller. -EIO (empty BIO), -ENOMEM. */
int spm_crypto_bio_to_buffer(BIO *bio, char **out, size_t *out_size)
    __attribute__((warn_unused_result));

#endif
