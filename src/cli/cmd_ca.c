/* `spm ca`: the provisioning CA that stands in for Intel's PCK chain. It
 * certifies each simulated platform's attestation key, and verifiers trust
 * quotes that chain up to its certificate. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "host/platform/sim/sim.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spm ca init --dir DIR [--cn NAME]\n\n"
            "Creates a provisioning CA in DIR: an ECDSA P-256 key (DIR/ca.key, mode 0600)\n"
            "and a self-signed CA certificate (DIR/ca.crt). Platforms get their attestation\n"
            "certificate from it ('spm platform init --ca DIR'); verifiers trust DIR/ca.crt.\n"
            "An existing CA is never overwritten.\n\n"
            "options:\n"
            "  --dir DIR   directory for the CA (created if missing)\n"
            "  --cn NAME   the CA certificate's common name (default \"SPM provisioning CA\")\n"
            "  --help      show this text\n");
}

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
    if (strcmp(argv[1], "init") != 0) {
        fprintf(stderr, "spm ca: unknown subcommand '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }

    const char *dir = NULL, *common_name = NULL;
    for (int i = 2; i < argc; i++) {
        int found;
        if (spm_cli_is_help(argv[i], false)) {
            usage(stdout);
            return 0;
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
