/* spm: the one command-line tool of SPM. Subcommands live in cmd_*.c and
 * are dispatched from this table; only this layer prints to the user. */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

struct spm_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct spm_command commands[] = {
    {"ca", spm_cmd_ca, "manage the provisioning CA (init)"},
    {"platform", spm_cmd_platform, "manage this host's simulated SGX platform (init, show)"},
    {"keygen", spm_cmd_keygen, "create an enclave author's RSA-3072 signing key"},
    {"sign", spm_cmd_sign, "lay out, measure and sign an enclave image"},
    {"inspect", spm_cmd_inspect, "print an enclave image's identity and layout"},
    {"checkpoint", spm_cmd_checkpoint, "checkpoint an SPM process with CRIU (enclave exported)"},
    {"restore", spm_cmd_restore, "restore a checkpoint with CRIU and check each enclave resumed"},
    {"criu-action", spm_cmd_criu_action, "CRIU action script for callers without the plugin"},
    {"host-cert", spm_cmd_host_cert, "issue this host's TLS identity for spmd peers"},
    {"migrate", spm_cmd_migrate, "live-migrate an SPM process to another host's spmd"},
    {"recover", spm_cmd_recover, "settle migrations a crash or a cut link interrupted"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: spm <command> [options]\n\n"
                 "SPM: secure checkpoint/restore and migration of SGX enclave processes.\n"
                 "Backend: sim (software SGX platform; protects nothing against local root).\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'spm <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    /* CRIU execs an action script by path, without arguments: installed as
     * the link spm-criu-action, spm is that script. */
    const char *self = argc > 0 ? strrchr(argv[0], '/') : NULL;
    self = self ? self + 1 : (argc > 0 ? argv[0] : "");
    if (strcmp(self, "spm-criu-action") == 0)
        return spm_cmd_criu_action(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (spm_cli_is_help(argv[1], true)) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "spm: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
