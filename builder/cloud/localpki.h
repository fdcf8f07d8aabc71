/* The local services' certificate authority: an EC P-256 CA created on first start in
 * DIR/pki/{ca.pem,ca.key} and reused afterwards, which issues leaf certificates the way Vault's
 * PKI engine does (key generated here, or taken from a verified CSR). Role policy (which names
 * and TTLs are allowed) is the caller's business; this module only builds certificates. */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"

typedef struct localpki localpki;

/* Load the CA from dir (ca.pem, ca.key), or create dir and a new CA there if there is no ca.pem,
 * under a lock (dir/.lock) so concurrent callers agree on one CA. A key without its certificate
 * (a creation cut short) is made again; a certificate without its key, or a mismatched pair (also: a damaged key), is
 * -EBADMSG rather than being overwritten. Returns 0 or -errno. */
int localpki_open(const char *dir, localpki **ret);
void localpki_free(localpki *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(localpki *, localpki_free);

/* The CA certificate as PEM (borrowed). */
const char *localpki_ca_pem(const localpki *p);
/* When the CA certificate expires (leaf certificates never outlive it). */
time_t localpki_ca_not_after(const localpki *p);

typedef struct localpki_request {
        const char *common_name;
        char **dns_names;      /* subjectAltName DNS entries (NULL-terminated, may be NULL) */
        char **ip_addresses;   /* subjectAltName IP entries, textual IPv4/IPv6 */
        char **uris;           /* subjectAltName URI entries (may be NULL) */
        char **organization;   /* subject O entries, before the CN (may be NULL) */
        int64_t ttl;           /* seconds from now */
} localpki_request;

typedef struct localpki_cert {
        char *certificate;     /* PEM */
        char *serial_number;   /* colon-separated lower-case hex, like Vault */
        int64_t expiration;    /* UNIX seconds (notAfter) */
} localpki_cert;

/* Issue a certificate for public_key signed by the CA, valid from now - 30 s (clock skew) for
 * ttl seconds (cut at the CA's own expiry). Returns 0, -EINVAL for an unparsable IP, -ENOMEM, -EIO
 * for other OpenSSL failures. */
int localpki_issue(localpki *p, const localpki_request *req, EVP_PKEY *public_key, time_t now,
                   localpki_cert *ret);
void localpki_cert_done(localpki_cert *c);

/* A new EC P-256 key. Returns 0 or -EIO. */
int localpki_generate_key(EVP_PKEY **ret);
/* The private key as a PEM string in the traditional format ("EC PRIVATE KEY" for EC keys, as
 * Vault returns with private_key_format der/pem). The caller wipes and frees it. */
int localpki_private_key_pem(EVP_PKEY *key, char **ret);
/* The private key as PEM-encoded PKCS#8 ("PRIVATE KEY"), Vault's private_key_format=pkcs8. The
 * caller wipes and frees it. Returns 0, -EIO or -ENOMEM. */
int localpki_private_key_pkcs8_pem(EVP_PKEY *key, char **ret);

/* Sign a certificate for csr (verified by the caller) with an explicit CA, as
 * kube-controller-manager's csrsigning controller does: the CSR's subject copied as is, its public
 * key, valid from not_before to not_after (cut at the CA's expiry), CA:FALSE, the authority key
 * id (when the CA has a subject key id), and key_usage / ext_key_usage in OpenSSL's config syntax ("critical,digitalSignature",
 * "clientAuth"; NULL: left out). Returns 0 and the certificate's PEM in *ret_pem, -ENOMEM, -EIO
 * for OpenSSL failures. */
int localpki_sign_csr(X509 *ca, EVP_PKEY *ca_key, X509_REQ *csr, time_t not_before, time_t not_after,
                      const char *key_usage, const char *ext_key_usage, char **ret_pem);
/* Parse a PEM CSR and verify its self-signature. Returns 0, or -EBADMSG for anything else. */
int localpki_parse_csr(const char *pem, X509_REQ **ret);
/* The CSR's subject CN (NULL if none) and its DNS and IP subjectAltNames (new strv's, may be
 * empty). Returns 0 or -ENOMEM/-EBADMSG. */
int localpki_csr_names(X509_REQ *csr, char **ret_cn, char ***ret_dns, char ***ret_ips);
