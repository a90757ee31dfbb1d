/* `spm ca issue` / `spm host-cert`: gives a host its identity for the TLS
 * transport between spmd instances — a key, a certificate from the cluster
 * CA naming the host's addresses, and the CA certificate as trust anchor.
 * Both commands take the same arguments; `spm ca issue` is dispatched from
 * cmd_ca.c, `spm host-cert` from main.c. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "host/crypto/x509.h"
#include "host/net/host_cert.h"

static void usage(FILE *out, const char *command)
{
    fprintf(out,
            "usage: %s --dir CADIR --name NAME [--ip IP]... [--dns NAME]... --out DIR [--force]\n\n"
            "Issues this host's identity for the TLS link between spmd instances (used by\n"
            "'spm migrate'), from the cluster CA in CADIR (as 'spm ca init' created it):\n"
            "  DIR/host.key  a new ECDSA P-256 key, mode 0600: never leaves this host\n"
            "  DIR/host.crt  its certificate: CN=NAME, subjectAltName = the --ip and --dns\n"
            "                values, serverAuth+clientAuth, valid for one year\n"
            "  DIR/ca.crt    a copy of CADIR/ca.crt, the only CA spmd trusts for peers\n"
            "A peer dialling this host checks that the address it dialled is among the\n"
            "--ip/--dns values, so give every address other hosts will use (at least one).\n"
            "Existing files in DIR are not replaced unless --force is given.\n\n"
            "options:\n"
            "  --dir CADIR  the cluster CA (CADIR/ca.key, CADIR/ca.crt)\n"
            "  --name NAME  the host's name (certificate CN, shown in peers' logs)\n"
            "  --ip IP      an IPv4 or IPv6 address of this host (repeatable)\n"
            "  --dns NAME   a DNS name of this host (repeatable, no wildcards)\n"
            "  --out DIR    where to write the three files (created if missing)\n"
            "  --force      replace existing files in DIR\n"
            "  --help       show this text\n",
            command);
}

/* argv[0] is the subcommand's own word ("issue" or "host-cert"). Exit
 * codes: 0 issued, 1 failure, 2 usage. */
static int run(int argc, char **argv, const char *command)
{
    const char *ca_dir = NULL, *name = NULL, *out_dir = NULL;
    const char *ips[SPM_X509_MAX_HOST_NAMES], *dns_names[SPM_X509_MAX_HOST_NAMES];
    size_t ip_count = 0, dns_count = 0;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        if (spm_cli_is_help(argv[i], false)) {
            usage(stdout, command);
            return 0;
        }
        if (strcmp(argv[i], "--force") == 0) {
            force = true;
            continue;
        }
        const char *value = NULL;
        int found;
        if ((found = spm_cli_option_value(argc, argv, &i, "--ip", &value)) > 0) {
            if (ip_count + dns_count >= SPM_X509_MAX_HOST_NAMES) {
                fprintf(stderr, "%s: at most %u --ip and --dns values in all\n", command,
                        SPM_X509_MAX_HOST_NAMES);
                return 2;
            }
            ips[ip_count++] = value;
            continue;
        }
        if (found == 0 && (found = spm_cli_option_value(argc, argv, &i, "--dns", &value)) > 0) {
            if (ip_count + dns_count >= SPM_X509_MAX_HOST_NAMES) {
                fprintf(stderr, "%s: at most %u --ip and --dns values in all\n", command,
                        SPM_X509_MAX_HOST_NAMES);
                return 2;
            }
            dns_names[dns_count++] = value;
            continue;
        }
        if (found == 0)
            found = spm_cli_option_value(argc, argv, &i, "--dir", &ca_dir);
        if (found == 0)
            found = spm_cli_option_value(argc, argv, &i, "--name", &name);
        if (found == 0)
            found = spm_cli_option_value(argc, argv, &i, "--out", &out_dir);
        if (found < 0) {
            fprintf(stderr, "%s: option '%s' needs a non-empty value\n", command, argv[i]);
            return 2;
        }
        if (found == 0) {
            fprintf(stderr, "%s: unknown argument '%s' (see '%s --help')\n", command, argv[i],
                    command);
            return 2;
        }
    }
    if (!ca_dir || !name || !out_dir) {
        fprintf(stderr,
                "%s: --dir CADIR, --name NAME and --out DIR are required (see '%s "
                "--help')\n",
                command, command);
        return 2;
    }
    if (ip_count + dns_count == 0) {
        fprintf(stderr,
                "%s: give at least one --ip or --dns: peers check the address they "
                "dial against them\n",
                command);
        return 2;
    }

    int ret =
        spm_host_cert_issue(ca_dir, name, ips, ip_count, dns_names, dns_count, out_dir, force);
    if (ret == -EEXIST) {
        fprintf(stderr,
                "%s: %s already holds a host identity; not replacing it without "
                "--force\n",
                command, out_dir);
        return 1;
    }
    if (ret < 0) {
        fprintf(stderr, "%s: cannot issue the host certificate for '%s' from the CA in %s: %s\n",
                command, name, ca_dir, strerror(-ret));
        return 1;
    }
    printf("issued host identity '%s' in %s\n"
           "  %s/%s  private key: keep it on this host, mode 0600\n"
           "  %s/%s  certificate from the CA in %s\n"
           "  %s/%s    the cluster CA certificate spmd trusts for peers\n",
           name, out_dir, out_dir, SPM_HOST_KEY_FILE, out_dir, SPM_HOST_CERT_FILE, ca_dir, out_dir,
           SPM_HOST_CA_FILE);
    return 0;
}

int spm_cmd_ca_issue(int argc, char **argv)
{
    return run(argc, argv, "spm ca issue");
}

int spm_cmd_host_cert(int argc, char **argv)
{
    return run(argc, argv, "spm host-cert");
}
