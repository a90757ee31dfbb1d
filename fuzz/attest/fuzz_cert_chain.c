/* X.509 on the host (src/host/crypto/x509.c): the chain a quote carries,
 * checked by spm_x509_verify_chain against a trusted root, the names
 * `spm platform show` prints (spm_x509_names), and the CA check `spm
 * platform init` and `spm host-cert` run on a CA certificate
 * (spm_x509_check_ca). All take PEM text an attacker may have written.
 *
 * Input: byte 0 is the mode. Mode bit 0 clear: the trusted root is the
 * test provisioning CA (fuzz/attest/testpki/ca/ca.crt) and the rest of the
 * input is the chain. Bit 0 set: bytes 1-2 (little-endian) give the size
 * of a root bundle that follows (cut to what is there), the rest is the
 * chain. Bits 4-7 pick the name buffers' sizes (1 to 256 bytes).
 *
 * Every PEM sits in a buffer of exactly its size with no NUL after it
 * (the functions take sizes), so ASan reports any read past it. Checked:
 * results are among the documented errnos; an accepted chain yields a
 * P-256 point, has a leaf, ends with the trusted root when that is the
 * test CA, and verifies again with the same key; what check_ca accepts is
 * one certificate whose names can be read; names are NUL-terminated inside
 * their buffers; refusals of the chain are logged. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/common/fileio.h"
#include "host/crypto/ecdsa.h"
#include "host/crypto/x509.h"
#include "host_log.h"

#define ROOT_PEM FUZZ_PKI_DIR "/ca/ca.crt"

static uint8_t *g_root;
static size_t g_root_size;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int ret = spm_read_file(ROOT_PEM, 1u << 16, &g_root, &g_root_size);
    assert(ret == 0);
    return 0;
}

static char *copy(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    assert(p);
    memcpy(p, data, size);
    return p;
}

static void check_names(const char *pem, size_t size, size_t buffer_size, int expect_ok)
{
    char *subject = malloc(buffer_size), *issuer = malloc(buffer_size);
    assert(subject && issuer);
    memset(subject, 'x', buffer_size);
    memset(issuer, 'x', buffer_size);
    int ret = spm_x509_names(pem, size, subject, buffer_size, issuer, buffer_size);
    assert(ret == 0 || ret == -EBADMSG || ret == -ENOMEM);
    if (expect_ok)
        assert(ret == 0);
    if (ret == 0)
        assert(memchr(subject, 0, buffer_size) && memchr(issuer, 0, buffer_size));
    free(subject);
    free(issuer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    const uint8_t *root_bytes = g_root;
    size_t root_size = g_root_size;
    int own_root = mode & 1;
    if (own_root) {
        if (size < 2)
            return 0;
        size_t want = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        root_size = want < size ? want : size;
        root_bytes = data;
        data += root_size;
        size -= root_size;
    }
    char *root = copy(root_bytes, root_size);
    char *chain = copy(data, size);
    size_t name_size = 1 + (size_t)(mode >> 4) * 17;

    uint8_t leaf[SPM_EC_PUBLIC_SIZE];
    fuzz_log_reset();
    int ret = spm_x509_verify_chain(chain, size, root, root_size, leaf);
    assert(ret == 0 || ret == -EBADMSG || ret == -EKEYREJECTED || ret == -ENOMEM);
    if (ret < 0 && ret != -ENOMEM)
        assert(fuzz_log_count() > 0);
    if (ret == 0) {
        struct spm_ec_key *key = NULL;
        assert(spm_ec_key_from_public(leaf, &key) == 0);
        spm_ec_key_free(key);
        if (!own_root)
            assert(size > g_root_size &&
                   memcmp(chain + size - g_root_size, g_root, g_root_size) == 0);
        uint8_t again[SPM_EC_PUBLIC_SIZE];
        assert(spm_x509_verify_chain(chain, size, root, root_size, again) == 0);
        assert(memcmp(again, leaf, sizeof(leaf)) == 0);
    }
    check_names(chain, size, name_size, ret == 0);

    ret = spm_x509_check_ca(chain, size, NULL);
    assert(ret == 0 || ret == -EBADMSG || ret == -EKEYREJECTED);
    if (ret == 0)
        check_names(chain, size, name_size, 1);
    ret = spm_x509_check_ca(root, root_size, NULL);
    assert(ret == 0 || ret == -EBADMSG || ret == -EKEYREJECTED);
    free(chain);
    free(root);
    return 0;
}
