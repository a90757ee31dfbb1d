/* `spm ca`: the provisioning CA that stands in for Intel's PCK chain. It
 * certifies each simulated platform's attestation key, and verifiers trust
 * quotes that chain up to its certificate. The build uses two more forms:
 * `init --reuse` makes the build's CA once and keeps it across rebuilds,
 * and `pin-source` turns its certificate into the C source that pins it in
 * the Migration Enclave, as real verifiers hardcode Intel's root. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "host/common/fileio.h"
#include "host/crypto/ecdsa.h"
#include "host/crypto/hash.h"
#include "host/crypto/x509.h"
#include "host/platform/sim/sim.h"

#define MAX_PEM_FILE_SIZE (64u << 10)
#define PEM_BEGIN_LINE    "-----BEGIN CERTIFICATE-----\n"
#define PEM_END_LINE      "-----END CERTIFICATE-----\n"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spm ca init --dir DIR [--cn NAME] [--reuse]\n"
            "       spm ca pin-source --cert CA.crt --out FILE.c\n\n"
            "init creates a provisioning CA in DIR: an ECDSA P-256 key (DIR/ca.key, mode 0600)\n"
            "and a self-signed CA certificate (DIR/ca.crt). Platforms get their attestation\n"
            "certificate from it ('spm platform init --ca DIR'); verifiers trust DIR/ca.crt.\n"
            "An existing CA is never overwritten: with --reuse, a CA already in DIR (key\n"
            "matching its certificate, key mode 0600) is kept and the command succeeds.\n\n"
            "pin-source writes the C source that pins CA.crt as the provisioning root in\n"
            "the Migration Enclave (used by the build; see -Dprovisioning_ca).\n\n"
            "options:\n"
            "  --dir DIR    directory for the CA (created if missing)\n"
            "  --cn NAME    the CA certificate's common name (default \"SPM provisioning CA\")\n"
            "  --reuse      keep a valid CA already in DIR\n"
            "  --cert FILE  the CA certificate to pin (PEM, as 'spm ca init' writes it)\n"
            "  --out FILE   the C file to write\n"
            "  --help       show this text\n");
}

/* Reads DIR/name into a NUL-terminated buffer. */
static int read_in(const char *dir, const char *name, uint8_t **data, size_t *size)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    return spm_read_file(path, MAX_PEM_FILE_SIZE, data, size);
}

/* For --reuse: DIR holds a CA when both files exist; it is usable when the
 * key is private to its owner and belongs to the certificate. -ENOENT when
 * DIR holds no CA at all (then one is created). */
static int check_existing_ca(const char *dir)
{
    char key_path[4096];
    int n = snprintf(key_path, sizeof(key_path), "%s/ca.key", dir);
    if (n < 0 || (size_t)n >= sizeof(key_path))
        return -ENAMETOOLONG;
    struct stat st;
    if (stat(key_path, &st) < 0)
        return -errno;
    if (st.st_mode & 077) {
        fprintf(stderr, "spm ca init: %s is readable by others (mode %03o); make it 0600\n",
                key_path, (unsigned)(st.st_mode & 0777));
        return -EPERM;
    }
    uint8_t *key_pem = NULL, *cert_pem = NULL;
    size_t key_size = 0, cert_size = 0;
    struct spm_ec_key *key = NULL;
    int ret = read_in(dir, "ca.key", &key_pem, &key_size);
    if (ret == 0)
        ret = read_in(dir, "ca.crt", &cert_pem, &cert_size);
    if (ret == 0 && (ret = spm_ec_key_from_pem((const char *)key_pem, key_size, &key)) == 0)
        ret = spm_x509_check_ca((const char *)cert_pem, cert_size, key);
    if (ret < 0 && ret != -ENOENT)
        fprintf(stderr, "spm ca init: %s holds no usable CA (ca.key and ca.crt): %s\n", dir,
                strerror(-ret));
    spm_ec_key_free(key);
    if (key_pem) {
        spm_wipe(key_pem, key_size);
        free(key_pem);
    }
    free(cert_pem);
    return ret;
}

static int cmd_init(int argc, char **argv)
{
    const char *dir = NULL, *common_name = NULL;
    bool reuse = false;
    for (int i = 2; i < argc; i++) {
        int found;
        if (spm_cli_is_help(argv[i], false)) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--reuse") == 0) {
            reuse = true;
            continue;
        }
        if ((found = spm_cli_option_value(argc, argv, &i, "--dir", &dir)) == 0)
            found = spm_cli_option_value(argc, argv, &i, "--cn", &common_name);
        if (found < 0) {
            fprintf(stderr, "spm ca init: option '%s' needs a non-empty value\n", argv[i]);
            return 2;
        }
        if (found == 0) {
            fprintf(stderr, "spm ca init: unknown argument '%s' (see 'spm ca --help')\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "spm ca init: --dir DIR is required (see 'spm ca --help')\n");
        return 2;
    }

    if (reuse) {
        int ret = check_existing_ca(dir);
        if (ret == 0) {
            /* A build tool compares the directory's time with spm's: mark
             * it current so what depends on the CA is not remade again. */
            if (utimensat(AT_FDCWD, dir, NULL, 0) < 0) {
                fprintf(stderr, "spm ca init: cannot update the time of %s: %s\n", dir,
                        strerror(errno));
                return 1;
            }
            printf("kept the provisioning CA in %s\n", dir);
            return 0;
        }
        if (ret != -ENOENT)
            return 1;
    }
    int ret = spm_sim_ca_init(dir, common_name);
    if (ret < 0) {
        fprintf(stderr, "spm ca init: failed to create a CA in %s: %s\n", dir, strerror(-ret));
        return 1;
    }
    printf("created provisioning CA in %s\n"
           "  %s/ca.key  private key: keep it on this machine, mode 0600\n"
           "  %s/ca.crt  certificate: give it to verifiers and to 'spm platform init --ca'\n",
           dir, dir, dir);
    return 0;
}

/* The certificate must be one PEM block as OpenSSL writes it (64-column
 * base64 lines, "\n" ends, nothing around it): the Migration Enclave's
 * decoder accepts only that form, and refusing here turns a bad pin into a
 * build error rather than an ME that rejects every quote. */
static bool is_one_canonical_block(const char *pem, size_t size)
{
    size_t begin = sizeof(PEM_BEGIN_LINE) - 1, end = sizeof(PEM_END_LINE) - 1;
    if (size < begin + end || memcmp(pem, PEM_BEGIN_LINE, begin) != 0 ||
        memcmp(pem + size - end, PEM_END_LINE, end) != 0)
        return false;
    size_t line = 0, last_line = 0;
    bool short_line_seen = false;
    for (size_t i = begin; i < size - end; i++) {
        char c = pem[i];
        if (c == '\n') {
            if (line == 0 || line > 64 || short_line_seen)
                return false;
            short_line_seen = line < 64;
            last_line = line;
            line = 0;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '+' || c == '/' || c == '=') {
            line++;
        } else {
            return false;
        }
    }
    return line == 0 && last_line % 4 == 0;
}

static int write_pin_source(const char *cert_path, const char *out)
{
    uint8_t *pem = NULL;
    char *text = NULL;
    int status = 1;
    size_t pem_size = 0;
    int ret = spm_read_file(cert_path, MAX_PEM_FILE_SIZE, &pem, &pem_size);
    if (ret < 0) {
        fprintf(stderr, "spm ca pin-source: cannot read %s: %s\n", cert_path, strerror(-ret));
        goto out;
    }
    if (spm_x509_check_ca((const char *)pem, pem_size, NULL) < 0 ||
        !is_one_canonical_block((const char *)pem, pem_size)) {
        fprintf(stderr,
                "spm ca pin-source: %s is not one CA certificate in canonical PEM (as 'spm ca "
                "init' writes it)\n",
                cert_path);
        goto out;
    }
    char subject[256], issuer[256];
    if (spm_x509_names((const char *)pem, pem_size, subject, sizeof(subject), issuer,
                       sizeof(issuer)) < 0)
        subject[0] = 0;
    uint8_t digest[32];
    char fingerprint[65];
    spm_sha256(pem, pem_size, digest);
    spm_hex(digest, sizeof(digest), fingerprint);

    /* Each base64 line becomes "    \"...\\n\"\n": 8 bytes more than itself. */
    size_t capacity = 1024 + strlen(subject) + pem_size * 2;
    text = malloc(capacity);
    if (!text) {
        fprintf(stderr, "spm ca pin-source: out of memory\n");
        goto out;
    }
    size_t n = 0;
    int w = snprintf(text, capacity,
                     "/* Generated by `spm ca pin-source`: the provisioning root the\n"
                     " * Migration Enclave trusts (me_quote.h). Do not edit.\n"
                     " * from:    %s\n"
                     " * subject: %s\n"
                     " * SHA-256 of the PEM: %s */\n"
                     "#include <stddef.h>\n\n"
                     "__attribute__((visibility(\"hidden\"))) const char "
                     "spm_provisioning_root_pem[] =\n",
                     cert_path, subject, fingerprint);
    if (w < 0 || (size_t)w >= capacity)
        goto out;
    n = (size_t)w;
    const char *p = (const char *)pem, *end = p + pem_size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)); /* every line ends in \n */
        w = snprintf(text + n, capacity - n, "    \"%.*s\\n\"\n", (int)(nl - p), p);
        if (w < 0 || (size_t)w >= capacity - n)
            goto out;
        n += (size_t)w;
        p = nl + 1;
    }
    w = snprintf(text + n, capacity - n,
                 "    ;\n"
                 "__attribute__((visibility(\"hidden\"))) const size_t "
                 "spm_provisioning_root_pem_size =\n"
                 "    sizeof(spm_provisioning_root_pem) - 1;\n");
    if (w < 0 || (size_t)w >= capacity - n)
        goto out;
    n += (size_t)w;
    ret = spm_write_file_atomic(out, text, n, 0644);
    if (ret < 0) {
        fprintf(stderr, "spm ca pin-source: cannot write %s: %s\n", out, strerror(-ret));
        goto out;
    }
    status = 0;
out:
    free(text);
    free(pem);
    return status;
}

static int cmd_pin_source(int argc, char **argv)
{
    const char *cert = NULL, *out = NULL;
    for (int i = 2; i < argc; i++) {
        int found;
        if (spm_cli_is_help(argv[i], false)) {
            usage(stdout);
            return 0;
        }
        if ((found = spm_cli_option_value(argc, argv, &i, "--cert", &cert)) == 0)
            found = spm_cli_option_value(argc, argv, &i, "--out", &out);
        if (found < 0) {
            fprintf(stderr, "spm ca pin-source: option '%s' needs a non-empty value\n", argv[i]);
            return 2;
        }
        if (found == 0) {
            fprintf(stderr, "spm ca pin-source: unknown argument '%s' (see 'spm ca --help')\n",
                    argv[i]);
            return 2;
        }
    }
    if (!cert || !out) {
        fprintf(stderr, "spm ca pin-source: --cert FILE and --out FILE are required\n");
        return 2;
    }
    return write_pin_source(cert, out);
}

/* Exit codes: 0 ok, 1 failure, 2 usage. */
int spm_cmd_ca(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (spm_cli_is_help(argv[1], true)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "init") == 0)
        return cmd_init(argc, argv);
    if (strcmp(argv[1], "pin-source") == 0)
        return cmd_pin_source(argc, argv);
    fprintf(stderr, "spm ca: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
