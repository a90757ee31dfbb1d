/* Host certificates for the TLS transport between spmd instances: each host
 * gets a P-256 key and a certificate from the cluster CA (the directory
 * `spm ca init` writes), plus a copy of the CA certificate as its trust
 * anchor. Kept apart from the CLI so daemons' tests can mint hosts too. */
#ifndef SPM_HOST_NET_HOST_CERT_H
#define SPM_HOST_NET_HOST_CERT_H

#include <stdbool.h>
#include <stddef.h>

/* The files spm_host_cert_issue writes into its output directory, which are
 * what spm_tls_config_load takes. */
#define SPM_HOST_KEY_FILE  "host.key"
#define SPM_HOST_CERT_FILE "host.crt"
#define SPM_HOST_CA_FILE   "ca.crt"
/* Validity of a host certificate. */
#define SPM_HOST_CERT_DAYS 365u

/* Issues a host identity into out_dir (created mode 0700 if missing):
 * host.key (fresh EC P-256 key, PKCS#8 PEM, mode 0600), host.crt (issued by
 * the CA in ca_dir, i.e. ca_dir/ca.key and ca_dir/ca.crt: CN=name, SAN the
 * given IPs and DNS names, serverAuth+clientAuth, 1 year) and ca.crt (a
 * copy of ca_dir/ca.crt, mode 0644). All arguments are borrowed. Without
 * `force`, refuses if any of the three files exists. Files are written
 * atomically, key first; on failure the files this call wrote are removed.
 * -EEXIST (a file exists and !force), -EINVAL (bad name, no or bad SAN),
 * -ENOENT (CA missing), -EBADMSG / -EKEYREJECTED (the CA directory does not
 * hold a matching CA key and certificate), -ENOMEM, or a file -errno. Each
 * failure is logged with the file concerned. */
int spm_host_cert_issue(const char *ca_dir, const char *name, const char *const *ips,
                        size_t ip_count, const char *const *dns_names, size_t dns_count,
                        const char *out_dir, bool force) __attribute__((warn_unused_result));

#endif
