/* The simulated platform's persistent state: creating a provisioning CA and a
 * platform directory, and loading a platform back with every file checked,
 * so that a missing, truncated or foreign file is reported by name instead
 * of silently producing different keys; and the monotonic counter store the
 * Migration Enclave's rollback protection stands on. The file layouts are
 * described in sim_internal.h. */
#include "sim_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/common/fileio.h"
#include "host/common/log.h"
#include "host/crypto/hash.h"
#include "host/crypto/x509.h"

#define DEFAULT_CA_NAME     "SPM provisioning CA"
#define CA_DAYS             7300u /* 20 years */
#define ATTEST_DAYS         3650u /* 10 years */
#define MAX_PEM_FILE_SIZE   (64u * 1024u)
#define MAX_STATE_FILE_SIZE 4096u

/* The SDK simulation's DEFAULT_CPUSVN (linux-sgx sdk/simulation/tinst/
 * rts_sim.h), so that requests built for the SDK's simulation mean the same
 * here. */
static const uint8_t default_cpusvn[SGX_CPUSVN_SIZE] = {
    0x48, 0x20, 0xf3, 0x37, 0x6a, 0xe6, 0xb2, 0xf2, 0x03, 0x4d, 0x3b, 0x7a, 0x4b, 0x48, 0xa7, 0x78,
};

static int join(char out[PATH_MAX], const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX) {
        spm_error("path too long: %s/%s", dir, name);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* 0 if none of `names` exists in dir, -EEXIST (logged) if one does. */
static int refuse_existing(const char *dir, const char *const *names, size_t count,
                           const char *what)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < count; i++) {
        int ret = join(path, dir, names[i]);
        if (ret < 0)
            return ret;
        struct stat st;
        if (lstat(path, &st) == 0) {
            spm_error("refusing to overwrite the %s in %s: %s already exists (remove the "
                      "directory first if you really mean to replace it)",
                      what, dir, path);
            return -EEXIST;
        }
        if (errno != ENOENT) {
            int err = errno;
            spm_error("cannot check %s: %s", path, strerror(err));
            return -err;
        }
    }
    return 0;
}

static int write_in(const char *dir, const char *name, const void *data, size_t size, unsigned mode)
{
    char path[PATH_MAX];
    int ret = join(path, dir, name);
    if (ret == 0)
        ret = spm_write_file_atomic(path, data, size, mode);
    return ret;
}

static void unlink_in(const char *dir, const char *name)
{
    char path[PATH_MAX];
    if (join(path, dir, name) == 0)
        unlink(path);
}

/* Reads dir/name; the error names the file (spm_read_file logs the errno). */
static int read_in(const char *dir, const char *name, size_t max_size, uint8_t **data, size_t *size)
{
    char path[PATH_MAX];
    int ret = join(path, dir, name);
    if (ret == 0)
        ret = spm_read_file(path, max_size, data, size);
    return ret;
}

static void free_secret(uint8_t *data, size_t size)
{
    if (data) {
        spm_wipe(data, size);
        free(data);
    }
}

int spm_sim_ca_init(const char *dir, const char *common_name)
{
    static const char *const files[] = {SPM_SIM_CA_KEY_FILE, SPM_SIM_CA_CERT_FILE};
    if (!common_name)
        common_name = DEFAULT_CA_NAME;
    int ret = refuse_existing(dir, files, 2, "provisioning CA");
    if (ret < 0)
        return ret;
    if ((ret = spm_mkdir_p(dir, 0700)) < 0)
        return ret;

    struct spm_ec_key *key = NULL;
    char *key_pem = NULL, *cert_pem = NULL;
    size_t key_pem_size = 0, cert_pem_size = 0;
    if ((ret = spm_ec_key_generate(&key)) < 0 ||
        (ret = spm_x509_create_ca(key, common_name, CA_DAYS, &cert_pem, &cert_pem_size)) < 0 ||
        (ret = spm_ec_key_to_pem(key, &key_pem, &key_pem_size)) < 0)
        goto out;
    if ((ret = write_in(dir, SPM_SIM_CA_KEY_FILE, key_pem, key_pem_size, 0600)) < 0)
        goto out;
    if ((ret = write_in(dir, SPM_SIM_CA_CERT_FILE, cert_pem, cert_pem_size, 0644)) < 0) {
        unlink_in(dir, SPM_SIM_CA_KEY_FILE);
        goto out;
    }
    spm_info("created provisioning CA '%s' in %s", common_name, dir);
out:
    if (ret < 0)
        spm_error("cannot create the provisioning CA in %s", dir);
    free_secret((uint8_t *)key_pem, key_pem_size);
    free(cert_pem);
    spm_ec_key_free(key);
    return ret;
}

/* Loads the CA's key and certificate from ca_dir and checks they match. */
static int load_ca(const char *ca_dir, struct spm_ec_key **key, uint8_t **cert, size_t *cert_size)
{
    uint8_t *key_pem = NULL;
    size_t key_pem_size = 0;
    int ret = read_in(ca_dir, SPM_SIM_CA_KEY_FILE, MAX_PEM_FILE_SIZE, &key_pem, &key_pem_size);
    if (ret < 0)
        goto out;
    ret = spm_ec_key_from_pem((const char *)key_pem, key_pem_size, key);
    if (ret < 0) {
        spm_error("%s/%s is not a PEM ECDSA P-256 private key", ca_dir, SPM_SIM_CA_KEY_FILE);
        goto out;
    }
    ret = read_in(ca_dir, SPM_SIM_CA_CERT_FILE, MAX_PEM_FILE_SIZE, cert, cert_size);
    if (ret < 0)
        goto out;
    ret = spm_x509_check_ca((const char *)*cert, *cert_size, *key);
    if (ret == -EBADMSG)
        spm_error("%s/%s is not a PEM certificate", ca_dir, SPM_SIM_CA_CERT_FILE);
    else if (ret < 0)
        spm_error("%s/%s is not the CA certificate of %s/%s", ca_dir, SPM_SIM_CA_CERT_FILE, ca_dir,
                  SPM_SIM_CA_KEY_FILE);
out:
    free_secret(key_pem, key_pem_size);
    if (ret < 0) {
        spm_ec_key_free(*key);
        *key = NULL;
        free(*cert);
        *cert = NULL;
    }
    return ret;
}

static void encode_state(const uint8_t root_secret[SPM_SIM_ROOT_SECRET_SIZE],
                         const uint8_t cpusvn[SGX_CPUSVN_SIZE], uint8_t out[SPM_SIM_STATE_SIZE])
{
    memset(out, 0, SPM_SIM_STATE_SIZE);
    memcpy(out, SPM_SIM_STATE_MAGIC, 8);
    for (unsigned i = 0; i < 4; i++) {
        out[8 + i] = (uint8_t)(SPM_SIM_STATE_VERSION >> (8 * i));
        out[12 + i] = (uint8_t)(SPM_SIM_STATE_SIZE >> (8 * i));
    }
    memcpy(out + 16, root_secret, SPM_SIM_ROOT_SECRET_SIZE);
    memcpy(out + 48, cpusvn, SGX_CPUSVN_SIZE);
    spm_sha256(out, 64, out + 64);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int spm_sim_platform_init(const char *dir, const char *ca_dir)
{
    static const char *const files[] = {SPM_SIM_STATE_FILE, SPM_SIM_ATTEST_KEY_FILE,
                                        SPM_SIM_ATTEST_CERT_FILE, SPM_SIM_ROOT_CERT_FILE};
    int ret = refuse_existing(dir, files, 4, "platform");
    if (ret < 0)
        return ret;

    struct spm_ec_key *ca_key = NULL, *attest_key = NULL;
    uint8_t *ca_cert = NULL;
    size_t ca_cert_size = 0;
    char *key_pem = NULL, *cert_pem = NULL, *chain = NULL;
    size_t key_pem_size = 0, cert_pem_size = 0;
    uint8_t state[SPM_SIM_STATE_SIZE];
    uint8_t root_secret[SPM_SIM_ROOT_SECRET_SIZE];
    uint8_t public_key[SPM_EC_PUBLIC_SIZE], chained_key[SPM_EC_PUBLIC_SIZE];
    size_t written = 0;

    if ((ret = load_ca(ca_dir, &ca_key, &ca_cert, &ca_cert_size)) < 0)
        goto out;
    if (!spm_random(root_secret, sizeof(root_secret))) {
        spm_error("no randomness for the platform root secret");
        ret = -EIO;
        goto out;
    }
    if ((ret = spm_ec_key_generate(&attest_key)) < 0 ||
        (ret = spm_ec_key_public(attest_key, public_key)) < 0)
        goto out;

    /* The certificate names the platform by its key, so two platforms of one
     * CA are told apart in `spm platform show`. */
    uint8_t digest[32];
    char id_hex[17], common_name[64];
    spm_sha256(public_key, sizeof(public_key), digest);
    spm_hex(digest, 8, id_hex);
    snprintf(common_name, sizeof(common_name), "SPM simulated SGX platform %s", id_hex);
    if ((ret = spm_x509_issue(ca_key, (const char *)ca_cert, ca_cert_size, attest_key, common_name,
                              ATTEST_DAYS, &cert_pem, &cert_pem_size)) < 0 ||
        (ret = spm_ec_key_to_pem(attest_key, &key_pem, &key_pem_size)) < 0)
        goto out;

    /* Check now what every quote's verifier will check, so that a CA
     * certificate that cannot serve as a quote root fails here. */
    chain = malloc(cert_pem_size + ca_cert_size + 1);
    if (!chain) {
        ret = -ENOMEM;
        goto out;
    }
    memcpy(chain, cert_pem, cert_pem_size);
    memcpy(chain + cert_pem_size, ca_cert, ca_cert_size);
    chain[cert_pem_size + ca_cert_size] = 0;
    ret = spm_x509_verify_chain(chain, cert_pem_size + ca_cert_size, (const char *)ca_cert,
                                ca_cert_size, chained_key);
    if (ret == 0 && memcmp(chained_key, public_key, sizeof(public_key)) != 0)
        ret = -EKEYREJECTED;
    if (ret < 0) {
        spm_error("the new attestation certificate does not verify against %s/%s (is it a "
                  "certificate written by 'spm ca init'?)",
                  ca_dir, SPM_SIM_CA_CERT_FILE);
        goto out;
    }

    encode_state(root_secret, default_cpusvn, state);
    if ((ret = spm_mkdir_p(dir, 0700)) < 0)
        goto out;
    /* platform.state last: its presence marks a complete platform. */
    if ((ret = write_in(dir, SPM_SIM_ATTEST_KEY_FILE, key_pem, key_pem_size, 0600)) < 0)
        goto out;
    written++;
    if ((ret = write_in(dir, SPM_SIM_ATTEST_CERT_FILE, cert_pem, cert_pem_size, 0600)) < 0)
        goto out;
    written++;
    if ((ret = write_in(dir, SPM_SIM_ROOT_CERT_FILE, ca_cert, ca_cert_size, 0600)) < 0)
        goto out;
    written++;
    if ((ret = write_in(dir, SPM_SIM_STATE_FILE, state, sizeof(state), 0600)) < 0)
        goto out;
    spm_info("created platform %s (%s)", dir, common_name);
out:
    if (ret < 0) {
        /* Undo in reverse order, so a retry does not meet half a platform. */
        static const char *const undo[] = {SPM_SIM_ROOT_CERT_FILE, SPM_SIM_ATTEST_CERT_FILE,
                                           SPM_SIM_ATTEST_KEY_FILE};
        for (size_t i = 3 - written; i < 3; i++)
            unlink_in(dir, undo[i]);
        spm_error("cannot create the platform in %s", dir);
    }
    spm_wipe(state, sizeof(state));
    spm_wipe(root_secret, sizeof(root_secret));
    free(chain);
    free_secret((uint8_t *)key_pem, key_pem_size);
    free(cert_pem);
    free(ca_cert);
    spm_ec_key_free(attest_key);
    spm_ec_key_free(ca_key);
    return ret;
}

const char *spm_sim_platform_dir(const char *explicit_dir)
{
    if (explicit_dir && explicit_dir[0])
        return explicit_dir;
    const char *env = getenv(SPM_PLATFORM_ENV);
    if (env && env[0])
        return env;
    return SPM_PLATFORM_DEFAULT_DIR;
}

static int load_state(const char *dir, struct spm_sim_platform *p)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t size = 0;
    int ret = join(path, dir, SPM_SIM_STATE_FILE);
    if (ret < 0)
        return ret;
    ret = spm_read_file(path, MAX_STATE_FILE_SIZE, &data, &size);
    if (ret == -ENOENT) {
        spm_error("no platform in %s: %s is missing (create one with 'spm platform init')", dir,
                  path);
        return ret;
    }
    if (ret == -EFBIG) {
        spm_error("platform state file %s is corrupt: too large", path);
        return -EBADMSG;
    }
    if (ret < 0)
        return ret;

    ret = -EBADMSG;
    uint8_t digest[32];
    if (size < 16 || memcmp(data, SPM_SIM_STATE_MAGIC, 8) != 0) {
        spm_error("%s is not an SPM platform state file (%s)", path,
                  size < 16 ? "truncated header" : "wrong magic");
        goto out;
    }
    if (get32(data + 8) != SPM_SIM_STATE_VERSION) {
        spm_error("platform state file %s has version %u; this spm reads version %u", path,
                  get32(data + 8), SPM_SIM_STATE_VERSION);
        goto out;
    }
    if (size != SPM_SIM_STATE_SIZE || get32(data + 12) != SPM_SIM_STATE_SIZE) {
        spm_error("platform state file %s is corrupt: %zu bytes, expected %u (truncated?)", path,
                  size, SPM_SIM_STATE_SIZE);
        goto out;
    }
    spm_sha256(data, 64, digest);
    if (spm_ct_memcmp(digest, data + 64, 32) != 0) {
        spm_error("platform state file %s is corrupt: checksum mismatch", path);
        goto out;
    }
    memcpy(p->root_secret, data + 16, SPM_SIM_ROOT_SECRET_SIZE);
    memcpy(p->cpusvn, data + 48, SGX_CPUSVN_SIZE);
    ret = 0;
out:
    free_secret(data, size);
    return ret;
}

static int load_attestation(const char *dir, struct spm_sim_platform *p)
{
    uint8_t *key_pem = NULL, *cert = NULL, *root = NULL;
    size_t key_pem_size = 0, cert_size = 0, root_size = 0;
    uint8_t certified[SPM_EC_PUBLIC_SIZE];

    int ret = read_in(dir, SPM_SIM_ATTEST_KEY_FILE, MAX_PEM_FILE_SIZE, &key_pem, &key_pem_size);
    if (ret < 0)
        goto out;
    if ((ret = spm_ec_key_from_pem((const char *)key_pem, key_pem_size, &p->attest_key)) < 0) {
        spm_error("platform file %s/%s is corrupt: not a PEM ECDSA P-256 private key", dir,
                  SPM_SIM_ATTEST_KEY_FILE);
        goto out;
    }
    if ((ret = spm_ec_key_public(p->attest_key, p->attest_public)) < 0)
        goto out;
    /* PKCS#8 carries the public key beside the private one, and OpenSSL
     * takes it as written: a key whose private half was altered would
     * still match the certificate, and sign quotes no verifier accepts. */
    static const char probe[] = "SPM attestation key pair check";
    uint8_t probe_signature[SPM_EC_SIGNATURE_SIZE];
    ret = spm_ec_sign(p->attest_key, probe, sizeof(probe), probe_signature);
    if (ret == -ENOMEM)
        goto out;
    if (ret < 0 || !spm_ec_verify(p->attest_public, probe, sizeof(probe), probe_signature)) {
        spm_error("platform file %s/%s is corrupt: its private key does not match the public key "
                  "it carries",
                  dir, SPM_SIM_ATTEST_KEY_FILE);
        ret = -EBADMSG;
        goto out;
    }
    if ((ret = read_in(dir, SPM_SIM_ATTEST_CERT_FILE, MAX_PEM_FILE_SIZE, &cert, &cert_size)) < 0 ||
        (ret = read_in(dir, SPM_SIM_ROOT_CERT_FILE, MAX_PEM_FILE_SIZE, &root, &root_size)) < 0)
        goto out;

    /* The chain exactly as quotes carry it, verified as a verifier would. */
    p->cert_chain = malloc(cert_size + root_size + 1);
    if (!p->cert_chain) {
        ret = -ENOMEM;
        goto out;
    }
    memcpy(p->cert_chain, cert, cert_size);
    memcpy(p->cert_chain + cert_size, root, root_size);
    p->cert_chain[cert_size + root_size] = 0;
    p->cert_chain_size = cert_size + root_size;
    p->attest_cert_size = cert_size;
    ret = spm_x509_verify_chain(p->cert_chain, p->cert_chain_size, (const char *)root, root_size,
                                certified);
    if (ret == -ENOMEM)
        goto out;
    if (ret < 0) {
        spm_error("platform files %s/%s and %s/%s are corrupt: not a PEM certificate issued by "
                  "the PEM CA certificate",
                  dir, SPM_SIM_ATTEST_CERT_FILE, dir, SPM_SIM_ROOT_CERT_FILE);
        ret = -EBADMSG;
        goto out;
    }
    if (memcmp(certified, p->attest_public, sizeof(certified)) != 0) {
        spm_error("platform file %s/%s is corrupt: it certifies another key than %s/%s", dir,
                  SPM_SIM_ATTEST_CERT_FILE, dir, SPM_SIM_ATTEST_KEY_FILE);
        ret = -EBADMSG;
        goto out;
    }
out:
    free_secret(key_pem, key_pem_size);
    free(cert);
    free(root);
    return ret;
}

int spm_sim_platform_open(const char *dir, struct spm_sim_platform **out)
{
    struct spm_sim_platform *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    int ret = -ENOMEM;
    p->dir = strdup(dir);
    if (!p->dir)
        goto fail;
    if ((ret = load_state(dir, p)) < 0 || (ret = load_attestation(dir, p)) < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    spm_sim_platform_close(p);
    return ret;
}

void spm_sim_platform_close(struct spm_sim_platform *p)
{
    if (!p)
        return;
    spm_ec_key_free(p->attest_key);
    free(p->cert_chain);
    free(p->dir);
    spm_wipe(p, sizeof(*p));
    free(p);
}

void spm_sim_platform_cpusvn(const struct spm_sim_platform *p, uint8_t cpusvn[16])
{
    memcpy(cpusvn, p->cpusvn, SGX_CPUSVN_SIZE);
}

int spm_sim_platform_describe(const struct spm_sim_platform *p, struct spm_sim_platform_info *info)
{
    memset(info, 0, sizeof(*info));
    info->dir = p->dir;
    memcpy(info->cpusvn, p->cpusvn, SGX_CPUSVN_SIZE);
    char unused[8];
    int ret = spm_x509_names(p->cert_chain, p->attest_cert_size, info->attest_subject,
                             sizeof(info->attest_subject), info->attest_issuer,
                             sizeof(info->attest_issuer));
    if (ret == 0)
        ret = spm_x509_names(p->cert_chain + p->attest_cert_size,
                             p->cert_chain_size - p->attest_cert_size, info->root_subject,
                             sizeof(info->root_subject), unused, sizeof(unused));
    return ret;
}

/* ---- Monotonic counters (layout in sim_internal.h) ---- */

static void put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int counter_path(const struct spm_sim_platform *p, const uint8_t mrsigner[32],
                        const uint8_t id[16], char path[PATH_MAX])
{
    uint8_t name_input[48], digest[32];
    memcpy(name_input, mrsigner, 32);
    memcpy(name_input + 32, id, 16);
    spm_sha256(name_input, sizeof(name_input), digest);
    char hex[33];
    spm_hex(digest, 16, hex);
    int n = snprintf(path, PATH_MAX, "%s/%s/%s", p->dir, SPM_SIM_COUNTER_DIR, hex);
    if (n < 0 || n >= PATH_MAX) {
        spm_error("path too long: %s/%s/%s", p->dir, SPM_SIM_COUNTER_DIR, hex);
        return -ENAMETOOLONG;
    }
    return 0;
}

static void encode_counter(const uint8_t mrsigner[32], const uint8_t id[16], uint64_t value,
                           const uint8_t tag[SPM_SIM_COUNTER_TAG_SIZE],
                           uint8_t out[SPM_SIM_COUNTER_FILE_SIZE])
{
    memset(out, 0, SPM_SIM_COUNTER_FILE_SIZE);
    memcpy(out, SPM_SIM_COUNTER_MAGIC, 8);
    put32(out + 8, SPM_SIM_COUNTER_VERSION);
    put32(out + 12, SPM_SIM_COUNTER_FILE_SIZE);
    memcpy(out + 16, mrsigner, 32);
    memcpy(out + 48, id, 16);
    for (unsigned i = 0; i < 8; i++)
        out[64 + i] = (uint8_t)(value >> (8 * i));
    memcpy(out + 72, tag, SPM_SIM_COUNTER_TAG_SIZE);
    spm_sha256(out, 104, out + 104);
}

/* Reads the counter at `path`; a missing file is 0 with an all-zero tag,
 * anything else that is not exactly this counter's file (in this format) is
 * -EBADMSG with the file named. */
static int load_counter(const char *path, const uint8_t mrsigner[32], const uint8_t id[16],
                        uint64_t *value, uint8_t tag[SPM_SIM_COUNTER_TAG_SIZE])
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT) {
            *value = 0;
            memset(tag, 0, SPM_SIM_COUNTER_TAG_SIZE);
            return 0;
        }
        int err = errno;
        spm_error("cannot read monotonic counter %s: %s", path, strerror(err));
        return -err;
    }
    uint8_t *data = NULL;
    size_t size = 0;
    int ret = spm_read_file(path, MAX_STATE_FILE_SIZE, &data, &size);
    if (ret == -EFBIG) {
        spm_error("monotonic counter file %s is corrupt: too large", path);
        return -EBADMSG;
    }
    if (ret < 0)
        return ret;
    uint8_t digest[32];
    ret = -EBADMSG;
    if (size < 16 || memcmp(data, SPM_SIM_COUNTER_MAGIC, 8) != 0) {
        spm_error("monotonic counter file %s is corrupt (%s)", path,
                  size < 16 ? "truncated header" : "wrong magic");
        goto out;
    }
    if (get32(data + 8) != SPM_SIM_COUNTER_VERSION) {
        /* Version 1 had no tag: reading it as "tag all zero" would let the
         * ME accept any state at that version, so it is refused. */
        spm_error("monotonic counter file %s has version %u; this spm reads version %u (a "
                  "counter store of an older spm: recreate the platform's counters)",
                  path, get32(data + 8), SPM_SIM_COUNTER_VERSION);
        goto out;
    }
    if (size != SPM_SIM_COUNTER_FILE_SIZE || get32(data + 12) != SPM_SIM_COUNTER_FILE_SIZE) {
        spm_error("monotonic counter file %s is corrupt: %zu bytes, expected %u (truncated?)", path,
                  size, SPM_SIM_COUNTER_FILE_SIZE);
        goto out;
    }
    spm_sha256(data, 104, digest);
    if (spm_ct_memcmp(digest, data + 104, 32) != 0) {
        spm_error("monotonic counter file %s is corrupt: checksum mismatch", path);
        goto out;
    }
    if (memcmp(data + 16, mrsigner, 32) != 0 || memcmp(data + 48, id, 16) != 0) {
        spm_error("monotonic counter file %s is corrupt: it holds another counter (moved or "
                  "copied from another name?)",
                  path);
        goto out;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)data[64 + i] << (8 * i);
    *value = v;
    memcpy(tag, data + 72, SPM_SIM_COUNTER_TAG_SIZE);
    ret = 0;
out:
    free(data);
    return ret;
}

int spm_sim_counter_read(const struct spm_sim_platform *p, const uint8_t mrsigner[32],
                         const uint8_t id[16], uint64_t *value, uint8_t tag[32])
{
    char path[PATH_MAX];
    int ret = counter_path(p, mrsigner, id, path);
    if (ret < 0)
        return ret;
    /* Writers replace the file by rename: a reader sees the old or the new
     * value (with its tag), so reading needs no lock. */
    return load_counter(path, mrsigner, id, value, tag);
}

int spm_sim_counter_increment(const struct spm_sim_platform *p, const uint8_t mrsigner[32],
                              const uint8_t id[16], const uint8_t tag[32], uint64_t *value)
{
    char path[PATH_MAX], dir[PATH_MAX], lock_path[PATH_MAX];
    int ret = counter_path(p, mrsigner, id, path);
    if (ret < 0)
        return ret;
    if ((ret = join(dir, p->dir, SPM_SIM_COUNTER_DIR)) < 0 ||
        (ret = join(lock_path, dir, SPM_SIM_COUNTER_LOCK_FILE)) < 0)
        return ret;
    if ((ret = spm_mkdir_p(dir, 0700)) < 0)
        return ret;
    int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        ret = -errno;
        spm_error("cannot open the counter store's lock %s: %s", lock_path, strerror(-ret));
        return ret;
    }
    while (flock(lock_fd, LOCK_EX) < 0) {
        if (errno == EINTR)
            continue;
        ret = -errno;
        spm_error("cannot lock the counter store (%s): %s", lock_path, strerror(-ret));
        close(lock_fd);
        return ret;
    }
    uint64_t current = 0;
    uint8_t current_tag[SPM_SIM_COUNTER_TAG_SIZE];
    if ((ret = load_counter(path, mrsigner, id, &current, current_tag)) < 0)
        goto out;
    if (current == UINT64_MAX) {
        spm_error("monotonic counter %s is at its maximum and cannot advance", path);
        ret = -EOVERFLOW;
        goto out;
    }
    uint8_t file[SPM_SIM_COUNTER_FILE_SIZE];
    encode_counter(mrsigner, id, current + 1, tag, file);
    if ((ret = spm_write_file_atomic(path, file, sizeof(file), 0600)) < 0) {
        spm_error("cannot advance monotonic counter %s", path);
        goto out;
    }
    *value = current + 1;
out:
    flock(lock_fd, LOCK_UN);
    close(lock_fd);
    return ret;
}
