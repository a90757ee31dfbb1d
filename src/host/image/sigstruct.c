/* SIGSTRUCT (SGX-FORMATS.md section 2): filling and signing it with the
 * enclave author's RSA-3072 key, and the checks EINIT makes on it. The key
 * handling (keygen, PEM) lives here too because the author key exists only
 * to sign SIGSTRUCTs. RSA itself is behind crypto/rsa.h. */
#include "image.h"
#include "image_internal.h"
#include "host/common/fileio.h"
#include "host/common/log.h"
#include "host/crypto/hash.h"
#include "host/crypto/rsa.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_KEY_FILE_SIZE (64u << 10)

static const uint8_t header1[12] = SGX_SIGSTRUCT_HEADER1;
static const uint8_t header2[16] = SGX_SIGSTRUCT_HEADER2;

_Static_assert(SPM_RSA3072_SIZE == SGX_MODULUS_SIZE, "SGX uses RSA-3072");

static void reverse_copy(uint8_t *dst, const uint8_t *src, size_t size)
{
    for (size_t i = 0; i < size; i++)
        dst[i] = src[size - 1 - i];
}

/* The 256 signed bytes: [0..127] || [900..1027]. */
static void signed_bytes(const struct sgx_sigstruct *sig, uint8_t out[256])
{
    memcpy(out, &sig->header, sizeof(sig->header));
    memcpy(out + sizeof(sig->header), &sig->body, sizeof(sig->body));
}

static int load_key(const char *key_path, struct spm_rsa_key **key)
{
    uint8_t *pem = NULL;
    size_t size = 0;
    int ret = spm_read_file(key_path, MAX_KEY_FILE_SIZE, &pem, &size);
    if (ret < 0)
        return ret;
    ret = spm_rsa_read_private_pem(pem, size, key_path, key);
    spm_wipe(pem, size);
    free(pem);
    return ret;
}

uint32_t img_sigstruct_date(time_t t)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return 0;
    unsigned year = (unsigned)tm.tm_year + 1900, month = (unsigned)tm.tm_mon + 1,
             day = (unsigned)tm.tm_mday;
    unsigned digits[8] = {year / 1000 % 10, year / 100 % 10, year / 10 % 10, year % 10,
                          month / 10,       month % 10,      day / 10,       day % 10};
    uint32_t bcd = 0;
    for (unsigned i = 0; i < 8; i++)
        bcd = bcd << 4 | digits[i];
    return bcd;
}

int spm_sigstruct_sign(struct sgx_sigstruct *sig, const char *key_path)
{
    if (sig->header.vendor != 0 && sig->header.vendor != SGX_SIGSTRUCT_VENDOR_INTEL) {
        spm_error("SIGSTRUCT vendor %#x is neither 0 nor 0x8086", sig->header.vendor);
        return -EINVAL;
    }
    struct spm_rsa_key *key = NULL;
    int ret = load_key(key_path, &key);
    if (ret < 0)
        return ret;

    uint8_t modulus_be[SGX_MODULUS_SIZE], sig_be[SGX_MODULUS_SIZE];
    uint8_t q1_be[SGX_MODULUS_SIZE], q2_be[SGX_MODULUS_SIZE], msg[256];
    memcpy(sig->header.header, header1, sizeof(header1));
    memcpy(sig->header.header2, header2, sizeof(header2));
    memset(sig->header.reserved, 0, sizeof(sig->header.reserved));
    memset(sig->body.reserved, 0, sizeof(sig->body.reserved));
    memset(sig->body.reserved2, 0, sizeof(sig->body.reserved2));
    memset(sig->reserved4, 0, sizeof(sig->reserved4));
    sig->exponent = SPM_RSA_EXPONENT;
    if ((ret = spm_rsa_modulus(key, modulus_be)) < 0)
        goto out;
    reverse_copy(sig->modulus, modulus_be, SGX_MODULUS_SIZE);

    signed_bytes(sig, msg);
    if ((ret = spm_rsa_sign_sha256(key, msg, sizeof(msg), sig_be)) < 0 ||
        (ret = spm_rsa_sgx_q1q2(sig_be, modulus_be, q1_be, q2_be)) < 0) {
        spm_error("%s: signing the SIGSTRUCT failed", key_path);
        goto out;
    }
    reverse_copy(sig->signature, sig_be, SGX_MODULUS_SIZE);
    reverse_copy(sig->q1, q1_be, SGX_MODULUS_SIZE);
    reverse_copy(sig->q2, q2_be, SGX_MODULUS_SIZE);
out:
    spm_rsa_free(key);
    return ret;
}

static bool all_zero(const uint8_t *p, size_t size)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < size; i++)
        acc |= p[i];
    return acc == 0;
}

int spm_sigstruct_verify(const struct sgx_sigstruct *sig, uint8_t mrsigner[32])
{
    /* The fixed fields first: the CPU refuses these before any RSA work. */
    if (memcmp(sig->header.header, header1, sizeof(header1)) != 0 ||
        memcmp(sig->header.header2, header2, sizeof(header2)) != 0) {
        spm_error("SIGSTRUCT: HEADER or HEADER2 is not the architectural constant "
                  "(not a SIGSTRUCT, or corrupted)");
        return -EBADMSG;
    }
    if (sig->header.type & ~SGX_SIGSTRUCT_TYPE_DEBUG_SIGNER) {
        spm_error("SIGSTRUCT: TYPE %#x has reserved bits set", sig->header.type);
        return -EBADMSG;
    }
    if (sig->header.vendor != 0 && sig->header.vendor != SGX_SIGSTRUCT_VENDOR_INTEL) {
        spm_error("SIGSTRUCT: VENDOR %#x is neither 0 nor 0x8086", sig->header.vendor);
        return -EBADMSG;
    }
    if (sig->exponent != SPM_RSA_EXPONENT) {
        spm_error("SIGSTRUCT: EXPONENT is %u, SGX requires 3", sig->exponent);
        return -EBADMSG;
    }
    /* Not covered by the signature, so they must hold nothing. */
    if (!all_zero(sig->reserved4, sizeof(sig->reserved4))) {
        spm_error("SIGSTRUCT: the reserved bytes at 1028..1039 are not zero");
        return -EBADMSG;
    }
    if (!(sig->modulus[SGX_MODULUS_SIZE - 1] & 0x80)) {
        spm_error("SIGSTRUCT: MODULUS is not a 3072-bit number");
        return -EBADMSG;
    }

    uint8_t modulus_be[SGX_MODULUS_SIZE], sig_be[SGX_MODULUS_SIZE], msg[256];
    uint8_t q1_be[SGX_MODULUS_SIZE], q2_be[SGX_MODULUS_SIZE];
    uint8_t q1_le[SGX_MODULUS_SIZE], q2_le[SGX_MODULUS_SIZE];
    reverse_copy(modulus_be, sig->modulus, SGX_MODULUS_SIZE);
    reverse_copy(sig_be, sig->signature, SGX_MODULUS_SIZE);
    signed_bytes(sig, msg);
    int ret = spm_rsa_verify_sha256(modulus_be, sig->exponent, msg, sizeof(msg), sig_be);
    if (ret < 0) {
        spm_error("SIGSTRUCT: the RSA signature over bytes 0..127 and 900..1027 does not verify "
                  "with the MODULUS it carries (SIGSTRUCT modified after signing?)");
        return ret == -ENOMEM ? ret : -EKEYREJECTED;
    }
    /* EINIT checks the signature with Q1/Q2; wrong ones fail it. */
    ret = spm_rsa_sgx_q1q2(sig_be, modulus_be, q1_be, q2_be);
    if (ret < 0)
        return ret == -ENOMEM ? ret : -EKEYREJECTED;
    reverse_copy(q1_le, q1_be, SGX_MODULUS_SIZE);
    reverse_copy(q2_le, q2_be, SGX_MODULUS_SIZE);
    if (memcmp(q1_le, sig->q1, SGX_MODULUS_SIZE) != 0 ||
        memcmp(q2_le, sig->q2, SGX_MODULUS_SIZE) != 0) {
        spm_error("SIGSTRUCT: Q1/Q2 do not match the signature and modulus");
        return -EKEYREJECTED;
    }
    spm_sha256(sig->modulus, SGX_MODULUS_SIZE, mrsigner);
    return 0;
}

int spm_keygen(const char *out_path)
{
    struct spm_rsa_key *key = NULL;
    char *pem = NULL;
    size_t pem_size = 0;
    int ret = spm_rsa_generate(&key);
    if (ret < 0)
        return ret;
    ret = spm_rsa_private_pem(key, &pem, &pem_size);
    spm_rsa_free(key);
    if (ret < 0)
        return ret;

    /* O_EXCL: an author key is never silently replaced. */
    int fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        ret = -errno;
        if (ret == -EEXIST)
            spm_error("%s already exists; refusing to overwrite a signing key", out_path);
        else
            spm_error("cannot create %s: %s", out_path, strerror(-ret));
        goto out;
    }
    size_t done = 0;
    while (done < pem_size) {
        ssize_t n = write(fd, pem + done, pem_size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ret = n < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)n;
    }
    if (ret == 0 && fsync(fd) < 0)
        ret = -errno;
    if (close(fd) < 0 && ret == 0)
        ret = -errno;
    if (ret < 0) {
        spm_error("cannot write %s: %s", out_path, strerror(-ret));
        unlink(out_path);
    }
out:
    spm_wipe(pem, pem_size);
    free(pem);
    return ret;
}

int spm_key_mrsigner(const char *key_path, uint8_t mrsigner[32])
{
    struct spm_rsa_key *key = NULL;
    uint8_t modulus_be[SGX_MODULUS_SIZE], modulus_le[SGX_MODULUS_SIZE];
    int ret = load_key(key_path, &key);
    if (ret < 0)
        return ret;
    ret = spm_rsa_modulus(key, modulus_be);
    spm_rsa_free(key);
    if (ret < 0)
        return ret;
    reverse_copy(modulus_le, modulus_be, SGX_MODULUS_SIZE);
    spm_sha256(modulus_le, SGX_MODULUS_SIZE, mrsigner);
    return 0;
}
