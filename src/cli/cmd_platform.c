/* `spm platform`: this host's simulated SGX platform, the directory holding
 * its root secret (the simulated fuses), CPUSVN and certified attestation
 * key. `init` creates it from a provisioning CA; `show` says what SPM runs
 * on, which matters because the sim backend protects nothing against root. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "host/common/fileio.h"
#include "host/platform/sim/sim.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spm platform init [--platform DIR] --ca CADIR\n"
            "       spm platform show [--platform DIR]\n\n"
            "init  creates a simulated SGX platform in DIR: a random 256-bit root secret\n"
            "      from which every EGETKEY key and report MAC key derives, a CPUSVN, and an\n"
            "      ECDSA P-256 attestation key certified by the CA in CADIR ('spm ca init').\n"
            "      An existing platform is never overwritten.\n"
            "show  prints the backend, the platform directory, its CPUSVN and its\n"
            "      attestation certificate.\n\n"
            "options:\n"
            "  --platform DIR  platform directory (also --dir); default $%s, else %s\n"
            "  --ca CADIR      the provisioning CA directory (init only)\n"
            "  --help          show this text\n",
            SPM_PLATFORM_ENV, SPM_PLATFORM_DEFAULT_DIR);
}

static int show(const char *dir)
{
    struct spm_sim_platform *platform = NULL;
    int ret = spm_sim_platform_open(dir, &platform);
    if (ret < 0) {
        fprintf(stderr, "spm platform show: cannot load the platform in %s: %s\n", dir,
                strerror(-ret));
        return 1;
    }
    struct spm_sim_platform_info info;
    ret = spm_sim_platform_describe(platform, &info);
    if (ret < 0) {
        fprintf(stderr, "spm platform show: cannot describe the platform in %s: %s\n", dir,
                strerror(-ret));
        spm_sim_platform_close(platform);
        return 1;
    }
    char cpusvn[2 * sizeof(info.cpusvn) + 1];
    spm_hex(info.cpusvn, sizeof(info.cpusvn), cpusvn);
    printf("backend:      sim (software SGX platform; protects nothing against local root)\n"
           "platform:     %s\n"
           "cpusvn:       %s\n"
           "attestation certificate:\n"
           "  subject:    %s\n"
           "  issuer:     %s\n"
           "trusted root: %s\n",
           info.dir, cpusvn, info.attest_subject, info.attest_issuer, info.root_subject);
    spm_sim_platform_close(platform);
    return 0;
}

int spm_cmd_platform(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (spm_cli_is_help(argv[1], true)) {
        usage(stdout);
        return 0;
    }
    const char *command = argv[1];
    bool is_init = strcmp(command, "init") == 0;
    if (!is_init && strcmp(command, "show") != 0) {
        fprintf(stderr, "spm platform: unknown subcommand '%s'\n\n", command);
        usage(stderr);
        return 2;
    }

    const char *platform_dir = NULL, *ca_dir = NULL;
    for (int i = 2; i < argc; i++) {
        int found;
        if (spm_cli_is_help(argv[i], false)) {
            usage(stdout);
            return 0;
        }
        if ((found = spm_cli_option_value(argc, argv, &i, "--platform", &platform_dir)) == 0 &&
            (found = spm_cli_option_value(argc, argv, &i, "--dir", &platform_dir)) == 0 && is_init)
            found = spm_cli_option_value(argc, argv, &i, "--ca", &ca_dir);
        if (found < 0) {
            fprintf(stderr, "spm platform %s: option '%s' needs a non-empty value\n", command,
                    argv[i]);
            return 2;
        }
        if (found == 0) {
            fprintf(stderr, "spm platform %s: unknown argument '%s' (see 'spm platform --help')\n",
                    command, argv[i]);
            return 2;
        }
    }
    const char *dir = spm_sim_platform_dir(platform_dir);
    if (!is_init)
        return show(dir);

    if (!ca_dir) {
        fprintf(stderr, "spm platform init: --ca CADIR is required (create one with 'spm ca "
                        "init --dir CADIR')\n");
        return 2;
    }
    int ret = spm_sim_platform_init(dir, ca_dir);
    if (ret < 0) {
        fprintf(stderr, "spm platform init: failed to create a platform in %s: %s\n", dir,
                strerror(-ret));
        return 1;
    }
    printf("created simulated SGX platform in %s (attestation key certified by %s)\n", dir, ca_dir);
    return 0;
}
