/* X.509 over OpenSSL 3: creating the provisioning CA and the certificates it
 * issues to platforms' attestation keys, and verifying the chain a quote
 * carries. The chain check is deliberately stricter than a TLS stack's: the
 * bytes come from an attacker and no byte of them may be ignored, so the PEM
 * must be canonical and every certificate in it must be on the validated
 * path. One of the three files allowed to include OpenSSL. */
#include "x509.h"
#include "crypto_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hash.h"
#include "host/common/log.h"

#define MAX_CHAIN_CERTS 8
#define MAX_COMMON_NAME 64 /* RFC 5280 ub-common-name */
#define MAX_DAYS        36500u
#define SKEW_SECONDS    86400L /* notBefore is back-dated for clock skew */

static STACK_OF(X509) * parse_certs(const char *pem, size_t pem_size)
{
    if (pem_size == 0 || pem_size > INT32_MAX)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_size);
    STACK_OF(X509) *certs = sk_X509_new_null();
    if (!bio || !certs)
        goto fail;
    for (;;) {
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!cert)
            break;
        if (sk_X509_num(certs) >= MAX_CHAIN_CERTS || !sk_X509_push(certs, cert)) {
            X509_free(cert);
            goto fail;
        }
    }
    /* The loop ends on the first failure; a read error (as opposed to plain
     * end of input) is caught by the canonical re-encoding check or, for
     * single certificates, by the count. */
    ERR_clear_error();
    BIO_free(bio);
    if (sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        return NULL;
    }
    return certs;
fail:
    ERR_clear_error();
    BIO_free(bio);
    sk_X509_pop_free(certs, X509_free);
    return NULL;
}

static X509 *parse_one_cert(const char *pem, size_t pem_size)
{
    STACK_OF(X509) *certs = parse_certs(pem, pem_size);
    if (!certs)
        return NULL;
    X509 *cert = NULL;
    if (sk_X509_num(certs) == 1)
        cert = sk_X509_shift(certs);
    sk_X509_pop_free(certs, X509_free);
    return cert;
}

int spm_crypto_bio_to_buffer(BIO *bio, char **out, size_t *out_size)
{
    char *data = NULL;
    long size = BIO_get_mem_data(bio, &data);
    if (size <= 0)
        return -EIO;
    char *copy = malloc((size_t)size + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, data, (size_t)size);
    copy[size] = 0;
    *out = copy;
    *out_size = (size_t)size;
    return 0;
}

static bool add_extension(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (!ext)
        return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static bool set_random_serial(X509 *cert)
{
    uint8_t bytes[16];
    if (!spm_random(bytes, sizeof(bytes)))
        return false;
    bytes[0] &= 0x7f; /* positive */
    bytes[0] |= 0x40; /* and never zero, always 16 bytes */
    BIGNUM *bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
    bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok;
}

/* What makes an end-entity certificate a TLS host certificate (NULL for
 * the platform certificates, which TLS never sees). */
struct host_names {
    const char *const *ips;
    size_t ip_count;
    const char *const *dns_names;
    size_t dns_count;
};

/* A DNS name as a certificate may carry it: LDH labels of 1-63 bytes, no
 * wildcard, at most 253 bytes. Checked so that the certificate says exactly
 * what the operator typed and a hostname check cannot be widened. */
static bool is_dns_name(const char *name)
{
    size_t length = strlen(name), label = 0;
    if (length == 0 || length > 253)
        return false;
    for (size_t i = 0; i <= length; i++) {
        char c = name[i];
        if (c == '.' || c == 0) {
            if (label == 0 || label > 63 || name[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && label > 0))
            return false;
        label++;
    }
    return true;
}

static bool push_name(GENERAL_NAMES *names, GENERAL_NAME *name)
{
    if (name && sk_GENERAL_NAME_push(names, name))
        return true;
    GENERAL_NAME_free(name);
    return false;
}

/* Adds extendedKeyUsage serverAuth+clientAuth and a subjectAltName built
 * from typed entries (never from a config string an argument could extend). */
static int add_host_extensions(X509 *cert, X509V3_CTX *ctx, const struct host_names *host)
{
    if (!add_extension(cert, ctx, NID_ext_key_usage, "serverAuth,clientAuth"))
        return -EIO;
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    if (!names)
        return -ENOMEM;
    int ret = -ENOMEM;
    for (size_t i = 0; i < host->ip_count; i++) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host->ips[i]);
        if (!ip) {
            spm_error("'%s' is not an IPv4 or IPv6 address", host->ips[i]);
            ret = -EINVAL;
            goto out;
        }
        GENERAL_NAME *name = GENERAL_NAME_new();
        if (name)
            GENERAL_NAME_set0_value(name, GEN_IPADD, ip);
        else
            ASN1_OCTET_STRING_free(ip);
        if (!push_name(names, name))
            goto out;
    }
    for (size_t i = 0; i < host->dns_count; i++) {
        if (!is_dns_name(host->dns_names[i])) {
            spm_error("'%s' is not a DNS name (letters, digits, '-' and '.', no wildcard)",
                      host->dns_names[i]);
            ret = -EINVAL;
            goto out;
        }
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (!dns || ASN1_STRING_set(dns, host->dns_names[i], -1) != 1) {
            ASN1_IA5STRING_free(dns);
            goto out;
        }
        GENERAL_NAME *name = GENERAL_NAME_new();
        if (name)
            GENERAL_NAME_set0_value(name, GEN_DNS, dns);
        else
            ASN1_IA5STRING_free(dns);
        if (!push_name(names, name))
            goto out;
    }
    ret =
        X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -EIO;
out:
    GENERAL_NAMES_free(names);
    return ret;
}

/* Builds and signs a certificate for subject_key. issuer == NULL makes it
 * self-signed (subject_key then signs). */
static int build_cert(EVP_PKEY *subject_key, X509 *issuer, EVP_PKEY *issuer_key,
                      const char *common_name, unsigned days, bool is_ca,
                      const struct host_names *host, char **pem, size_t *pem_size)
{
    size_t name_length = common_name ? strlen(common_name) : 0;
    if (name_length == 0 || name_length > MAX_COMMON_NAME || days == 0 || days > MAX_DAYS) {
        spm_error("certificate name must be 1-%d bytes and validity 1-%u days", MAX_COMMON_NAME,
                  MAX_DAYS);
        return -EINVAL;
    }
    int ret = -EIO;
    BIO *bio = NULL;
    X509 *cert = X509_new();
    if (!cert)
        return -ENOMEM;
    X509_NAME *name = X509_get_subject_name(cert);
    if (X509_set_version(cert, X509_VERSION_3) != 1 || !set_random_serial(cert) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), -SKEW_SECONDS) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, NULL) ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"SPM", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name,
                                   -1, -1, 0) != 1 ||
        X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_set_pubkey(cert, subject_key) != 1)
        goto out;

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
    bool ok;
    if (is_ca)
        ok = add_extension(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE") &&
             add_extension(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_extension(cert, &ctx, NID_subject_key_identifier, "hash");
    else
        ok = add_extension(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
             add_extension(cert, &ctx, NID_key_usage, "critical,digitalSignature") &&
             add_extension(cert, &ctx, NID_subject_key_identifier, "hash") &&
             add_extension(cert, &ctx, NID_authority_key_identifier, "keyid:always");
    if (ok && host) {
        int host_ret = add_host_extensions(cert, &ctx, host);
        if (host_ret < 0) {
            ret = host_ret;
            goto out;
        }
    }
    if (!ok || X509_sign(cert, issuer_key, EVP_sha256()) <= 0)
        goto out;

    bio = BIO_new(BIO_s_mem());
    if (!bio) {
        ret = -ENOMEM;
        goto out;
    }
    if (PEM_write_bio_X509(bio, cert) != 1)
        goto out;
    ret = spm_crypto_bio_to_buffer(bio, pem, pem_size);
out:
    if (ret == -EIO)
        spm_error("cannot create the certificate for '%s' (OpenSSL failure)", common_name);
    ERR_clear_error();
    BIO_free(bio);
    X509_free(cert);
    return ret;
}

int spm_x509_create_ca(const struct spm_ec_key *key, const char *common_name, unsigned days,
                       char **pem, size_t *pem_size)
{
    EVP_PKEY *pkey = spm_ec_key_evp(key);
    return build_cert(pkey, NULL, pkey, common_name, days, true, NULL, pem, pem_size);
}

static bool cert_is_ca(X509 *cert)
{
    uint32_t flags = X509_get_extension_flags(cert);
    if (flags & EXFLAG_INVALID)
        return false;
    if (!(flags & EXFLAG_CA))
        return false;
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN))
        return false;
    return true;
}

static int check_ca(X509 *cert, const struct spm_ec_key *key)
{
    if (!cert_is_ca(cert)) {
        spm_error("the certificate is not a CA certificate (basicConstraints CA:TRUE, "
                  "keyCertSign)");
        return -EKEYREJECTED;
    }
    if (key && EVP_PKEY_eq(X509_get0_pubkey(cert), spm_ec_key_evp(key)) != 1) {
        ERR_clear_error();
        spm_error("the CA key does not belong to the CA certificate");
        return -EKEYREJECTED;
    }
    return 0;
}

int spm_x509_check_ca(const char *pem, size_t pem_size, const struct spm_ec_key *key)
{
    X509 *cert = parse_one_cert(pem, pem_size);
    if (!cert)
        return -EBADMSG;
    int ret = check_ca(cert, key);
    X509_free(cert);
    return ret;
}

int spm_x509_issue(const struct spm_ec_key *ca_key, const char *ca_pem, size_t ca_pem_size,
                   const struct spm_ec_key *subject_key, const char *common_name, unsigned days,
                   char **pem, size_t *pem_size)
{
    X509 *ca = parse_one_cert(ca_pem, ca_pem_size);
    if (!ca)
        return -EBADMSG;
    int ret = check_ca(ca, ca_key);
    if (ret == 0)
        ret = build_cert(spm_ec_key_evp(subject_key), ca, spm_ec_key_evp(ca_key), common_name, days,
                         false, NULL, pem, pem_size);
    X509_free(ca);
    return ret;
}

int spm_x509_issue_host(const struct spm_ec_key *ca_key, const char *ca_pem, size_t ca_pem_size,
                        const struct spm_ec_key *subject_key, const char *common_name,
                        const char *const *ips, size_t ip_count, const char *const *dns_names,
                        size_t dns_count, unsigned days, char **pem, size_t *pem_size)
{
    if (ip_count + dns_count == 0 || ip_count > SPM_X509_MAX_HOST_NAMES ||
        dns_count > SPM_X509_MAX_HOST_NAMES - ip_count) {
        spm_error("a host certificate needs 1-%u subject alternative names (IP addresses and DNS "
                  "names together)",
                  SPM_X509_MAX_HOST_NAMES);
        return -EINVAL;
    }
    const struct host_names host = {ips, ip_count, dns_names, dns_count};
    X509 *ca = parse_one_cert(ca_pem, ca_pem_size);
    if (!ca)
        return -EBADMSG;
    int ret = check_ca(ca, ca_key);
    if (ret == 0)
        ret = build_cert(spm_ec_key_evp(subject_key), ca, spm_ec_key_evp(ca_key), common_name, days,
                         false, &host, pem, pem_size);
    X509_free(ca);
    return ret;
}

static void name_to_string(X509_NAME *name, char *out, size_t out_size)
{
    out[0] = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        char *data = NULL;
        long size = BIO_get_mem_data(bio, &data);
        if (size > 0) {
            size_t n = (size_t)size < out_size - 1 ? (size_t)size : out_size - 1;
            memcpy(out, data, n);
            out[n] = 0;
        }
    }
    BIO_free(bio);
}

int spm_x509_names(const char *pem, size_t pem_size, char *subject, size_t subject_size,
                   char *issuer, size_t issuer_size)
{
    STACK_OF(X509) *certs = parse_certs(pem, pem_size);
    if (!certs)
        return -EBADMSG;
    X509 *cert = sk_X509_value(certs, 0);
    name_to_string(X509_get_subject_name(cert), subject, subject_size);
    name_to_string(X509_get_issuer_name(cert), issuer, issuer_size);
    sk_X509_pop_free(certs, X509_free);
    return 0;
}

/* DER encodings of two certificates are identical. */
static bool same_der(X509 *a, X509 *b)
{
    unsigned char *der_a = NULL, *der_b = NULL;
    int size_a = i2d_X509(a, &der_a);
    int size_b = i2d_X509(b, &der_b);
    bool same = size_a > 0 && size_a == size_b && memcmp(der_a, der_b, (size_t)size_a) == 0;
    OPENSSL_free(der_a);
    OPENSSL_free(der_b);
    return same;
}

/* chain_pem must be exactly what PEM_write_bio_X509 produces for the parsed
 * certificates: this rejects edits OpenSSL's decoder tolerates (whitespace,
 * unused base64 bits, text outside the blocks). */
static bool is_canonical(STACK_OF(X509) * certs, const char *pem, size_t pem_size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    bool ok = bio != NULL;
    for (int i = 0; ok && i < sk_X509_num(certs); i++)
        ok = PEM_write_bio_X509(bio, sk_X509_value(certs, i)) == 1;
    if (ok) {
        char *data = NULL;
        long size = BIO_get_mem_data(bio, &data);
        ok = size > 0 && (size_t)size == pem_size && memcmp(data, pem, pem_size) == 0;
    }
    BIO_free(bio);
    return ok;
}

static int leaf_public_key(X509 *leaf, uint8_t out[SPM_EC_PUBLIC_SIZE])
{
    EVP_PKEY *pkey = X509_get0_pubkey(leaf);
    char group[64];
    size_t group_size = 0;
    BIGNUM *x = NULL, *y = NULL;
    int ret = -EKEYREJECTED;
    if (!pkey || !EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &group_size) ||
        strcmp(group, "prime256v1") != 0) {
        spm_error("the leaf certificate's key is not an ECDSA P-256 key");
        goto out;
    }
    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
        !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) ||
        BN_bn2binpad(x, out, 32) != 32 || BN_bn2binpad(y, out + 32, 32) != 32) {
        spm_error("cannot read the leaf certificate's public key");
        goto out;
    }
    ret = 0;
out:
    ERR_clear_error();
    BN_free(x);
    BN_free(y);
    return ret;
}

int spm_x509_verify_chain(const char *chain_pem, size_t chain_pem_size, const char *root_pem,
                          size_t root_pem_size, uint8_t leaf_public[SPM_EC_PUBLIC_SIZE])
{
    int ret = -EBADMSG;
    STACK_OF(X509) *chain = NULL, *roots = NULL, *untrusted = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;

    roots = parse_certs(root_pem, root_pem_size);
    if (!roots) {
        spm_error("the trusted root holds no PEM certificate");
        goto out;
    }
    chain = parse_certs(chain_pem, chain_pem_size);
    if (!chain || sk_X509_num(chain) < 2) {
        spm_error("the certificate chain is not a PEM leaf followed by its CA chain");
        goto out;
    }
    if (!is_canonical(chain, chain_pem, chain_pem_size)) {
        spm_error("the certificate chain is not in canonical PEM form (altered or padded)");
        goto out;
    }

    ret = -ENOMEM;
    store = X509_STORE_new();
    untrusted = sk_X509_new_null();
    ctx = X509_STORE_CTX_new();
    if (!store || !untrusted || !ctx)
        goto out;
    for (int i = 0; i < sk_X509_num(roots); i++)
        if (X509_STORE_add_cert(store, sk_X509_value(roots, i)) != 1)
            goto out;
    /* Borrowed pointers: `chain` keeps ownership. */
    for (int i = 1; i < sk_X509_num(chain); i++)
        if (!sk_X509_push(untrusted, sk_X509_value(chain, i)))
            goto out;
    X509 *leaf = sk_X509_value(chain, 0);
    if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
        goto out;
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT);

    ret = -EKEYREJECTED;
    if (X509_verify_cert(ctx) != 1) {
        spm_error("certificate chain rejected: %s",
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    STACK_OF(X509) *path = X509_STORE_CTX_get0_chain(ctx);
    if (!path || sk_X509_num(path) != sk_X509_num(chain)) {
        spm_error("certificate chain rejected: it carries certificates that are not on the "
                  "path to the trusted root");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
        if (!same_der(sk_X509_value(path, i), sk_X509_value(chain, i))) {
            spm_error("certificate chain rejected: certificate %d differs from the validated "
                      "path (the root copy must equal the trusted root)",
                      i);
            goto out;
        }
    }
    ret = leaf_public_key(leaf, leaf_public);
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_free(untrusted);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(roots, X509_free);
    return ret;
}
