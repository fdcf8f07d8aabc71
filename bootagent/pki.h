/* Certificates on disk: freshness checks and local key + CSR generation (OpenSSL). */
#pragma once

#include <stdbool.h>
#include <time.h>

/* Whether cert_path holds a certificate that matches key_path, covers ip (if not NULL) and is
 * younger than fraction of its lifetime at now. Returns 1 fresh, 0 missing/stale/mismatched (a
 * key whose private half does not match its public half counts as mismatched),
 * -errno on read errors other than ENOENT. */
int pki_cert_fresh(const char *cert_path, const char *key_path, const char *ip, double fraction, time_t now);

/* New P-256 key and a CSR for common_name. Both PEM; *ret_key is a secret (free_secret). */
int pki_make_csr(const char *common_name, char **ret_key, char **ret_csr);

/* A new P-256 private key as PEM (PKCS#8) in *ret_key, a secret (free_secret). Returns 0, -ENOMEM
 * or -EIO. */
int pki_new_key(char **ret_key);
/* A CSR (PEM) signed by key_pem with subject CN=common_name and, when organization is not NULL,
 * O=organization; no extensions. Returns 0, -EBADMSG for a key_pem that is not a private key,
 * -ENOMEM, -EIO. */
int pki_key_csr(const char *key_pem, const char *common_name, const char *organization, char **ret_csr);
/* Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo of key_pem's public key. Returns 0 or
 * -EBADMSG. */
int pki_key_spki_sha256(const char *key_pem, char ret_hex[65]);
/* Whether cert_pem's first certificate belongs to key_pem and is valid at now (between notBefore
 * and notAfter). Returns 1 yes, 0 no (also for unparsable input). */
int pki_cert_matches_key(const char *cert_pem, const char *key_pem, time_t now);
