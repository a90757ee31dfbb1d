/* Minting a host identity for spmd's TLS transport from the cluster CA.
 * The CA directory's layout is the one `spm ca init` writes; the X.509 work
 * itself stays in src/host/crypto/x509.c. */
#include "host_cert.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/common/fileio.h"
#include "host/common/log.h"
#include "host/crypto/ecdsa.h"
#include "host/crypto/x509.h"

/* As `spm ca init` names them (src/host/platform/sim/store.c). */
#define CA_KEY_FILE   "ca.key"
#define CA_CERT_FILE  "ca.crt"
#define MAX_PEM_BYTES (64u * 1024u)

static int join(char out[PATH_MAX], const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX) {
        spm_error("path %s/%s is too long", dir, name);
        return -ENAMETOOLONG;
    }
    return 0;
}

static void free_secret(void *p, size_t size)
{
    if (p)
        spm_wipe(p, size);
    free(p);
}

/* Loads the CA's key and certificate and checks they belong together. */
static int load_ca(const char *ca_dir, struct spm_ec_key **key, uint8_t **cert, size_t *cert_size)
{
    char path[PATH_MAX];
    uint8_t *key_pem = NULL;
    size_t key_pem_size = 0;
    int ret = join(path, ca_dir, CA_KEY_FILE);
    if (ret == 0)
        ret = spm_read_file(path, MAX_PEM_BYTES, &key_pem, &key_pem_size);
    if (ret < 0)
        goto out;
    if ((ret = spm_ec_key_from_pem((const char *)key_pem, key_pem_size, key)) < 0) {
        spm_error("%s is not a PEM ECDSA P-256 private key", path);
        goto out;
    }
    if ((ret = join(path, ca_dir, CA_CERT_FILE)) < 0 ||
        (ret = spm_read_file(path, MAX_PEM_BYTES, cert, cert_size)) < 0)
        goto out;
    if ((ret = spm_x509_check_ca((const char *)*cert, *cert_size, *key)) < 0)
        spm_error("%s is not the CA certificate of %s/%s", path, ca_dir, CA_KEY_FILE);
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

static int refuse_existing(const char *out_dir)
{
    static const char *const names[] = {SPM_HOST_KEY_FILE, SPM_HOST_CERT_FILE, SPM_HOST_CA_FILE};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int ret = join(path, out_dir, names[i]);
        if (ret < 0)
            return ret;
        struct stat st;
        if (lstat(path, &st) == 0) {
            spm_error("refusing to overwrite %s (use --force to replace the host identity)", path);
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

int spm_host_cert_issue(const char *ca_dir, const char *name, const char *const *ips,
                        size_t ip_count, const char *const *dns_names, size_t dns_count,
                        const char *out_dir, bool force)
{
    if (!ca_dir || !name || !out_dir || (ip_count && !ips) || (dns_count && !dns_names))
        return -EINVAL;
    int ret;
    if (!force && (ret = refuse_existing(out_dir)) < 0)
        return ret;

    struct spm_ec_key *ca_key = NULL, *host_key = NULL;
    uint8_t *ca_pem = NULL;
    size_t ca_pem_size = 0, key_pem_size = 0, cert_pem_size = 0;
    char *key_pem = NULL, *cert_pem = NULL;
    /* Everything is built before the first file is written. */
    if ((ret = load_ca(ca_dir, &ca_key, &ca_pem, &ca_pem_size)) < 0 ||
        (ret = spm_ec_key_generate(&host_key)) < 0 ||
        (ret = spm_x509_issue_host(ca_key, (const char *)ca_pem, ca_pem_size, host_key, name, ips,
                                   ip_count, dns_names, dns_count, SPM_HOST_CERT_DAYS, &cert_pem,
                                   &cert_pem_size)) < 0 ||
        (ret = spm_ec_key_to_pem(host_key, &key_pem, &key_pem_size)) < 0)
        goto out;
    if ((ret = spm_mkdir_p(out_dir, 0700)) < 0) {
        spm_error("cannot create %s: %s", out_dir, strerror(-ret));
        goto out;
    }
    if ((ret = write_in(out_dir, SPM_HOST_KEY_FILE, key_pem, key_pem_size, 0600)) < 0)
        goto out;
    if ((ret = write_in(out_dir, SPM_HOST_CERT_FILE, cert_pem, cert_pem_size, 0644)) < 0) {
        unlink_in(out_dir, SPM_HOST_KEY_FILE);
        goto out;
    }
    if ((ret = write_in(out_dir, SPM_HOST_CA_FILE, ca_pem, ca_pem_size, 0644)) < 0) {
        unlink_in(out_dir, SPM_HOST_CERT_FILE);
        unlink_in(out_dir, SPM_HOST_KEY_FILE);
        goto out;
    }
    spm_info("issued host certificate '%s' into %s", name, out_dir);
out:
    if (ret < 0)
        spm_error("cannot issue the host certificate '%s' into %s", name, out_dir);
    free_secret(key_pem, key_pem_size);
    free(cert_pem);
    free(ca_pem);
    spm_ec_key_free(host_key);
    spm_ec_key_free(ca_key);
    return ret;
}
