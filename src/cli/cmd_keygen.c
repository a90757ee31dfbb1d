/* `spm keygen`: creates an enclave author's signing key (RSA-3072, e = 3,
 * PKCS#8 PEM, mode 0600). It never replaces an existing key unless told to,
 * since losing an author key changes MRSIGNER for every future release. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "host/common/fileio.h"
#include "host/image/image.h"
#include "host/image/image_internal.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: spm keygen --out KEY.pem [--force]\n\n"
                 "Creates an RSA-3072 signing key with public exponent 3 (as SGX requires),\n"
                 "written as unencrypted PEM with mode 0600. Refuses to overwrite KEY.pem\n"
                 "unless --force is given. Prints the MRSIGNER enclaves signed with it get.\n");
}

/* Exit codes: 0 ok, 1 failure, 2 usage. */
int spm_cmd_keygen(int argc, char **argv)
{
    const char *out = NULL;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (spm_cli_is_help(arg, false)) {
            usage(stdout);
            return 0;
        } else if (strcmp(arg, "--force") == 0) {
            force = true;
        } else if (strcmp(arg, "--out") == 0 || strcmp(arg, "-o") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "spm keygen: %s needs a file name\n", arg);
                return 2;
            }
            out = argv[++i];
        } else if (strncmp(arg, "--out=", 6) == 0) {
            out = arg + 6;
        } else {
            fprintf(stderr, "spm keygen: unknown argument '%s'\n\n", arg);
            usage(stderr);
            return 2;
        }
    }
    if (!out || !*out) {
        fprintf(stderr, "spm keygen: --out KEY.pem is required\n\n");
        usage(stderr);
        return 2;
    }
    if (force && unlink(out) < 0 && errno != ENOENT) {
        fprintf(stderr, "spm keygen: cannot remove the old %s: %s\n", out, strerror(errno));
        return 1;
    }
    int ret = spm_keygen(out);
    if (ret == -EEXIST) {
        fprintf(stderr, "spm keygen: use --force to replace %s, or choose another path\n", out);
        return 1;
    }
    if (ret < 0) {
        fprintf(stderr, "spm keygen: cannot create %s: %s\n", out, strerror(-ret));
        return 1;
    }
    uint8_t mrsigner[32];
    char hex[65];
    if (spm_key_mrsigner(out, mrsigner) < 0) {
        fprintf(stderr, "spm keygen: wrote %s but cannot read it back\n", out);
        return 1;
    }
    spm_hex(mrsigner, sizeof(mrsigner), hex);
    printf("wrote RSA-3072 (e=3) enclave signing key %s\nMRSIGNER %s\n", out, hex);
    return 0;
}
