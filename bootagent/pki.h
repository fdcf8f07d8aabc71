/* Certificates on disk: freshness checks and local key + CSR generation (OpenSSL). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Whether cert_path holds a certificate that matches key_path, covers ip (if not NULL) and is
 * younger than fraction of its lifetime at now. Returns 1 fresh, 0 missing/stale/mismatched (a
 * key whose private half does not match its public half counts as mismatched),
 * -errno on read errors other than ENOENT. */
int pki_cert_fresh(const char *cert_path, const char *key_path, const char *ip, double fraction, time_t now);

/* New P-256 key and a CSR for common_name. Both PEM; *ret_key is a secret (free_secret). */
int pki_make_csr(const char *common_name, char **ret_key, char **ret_csr);

/* A new P-256 private key as PEM (PKCS#8), a secret (free_secret). Returns 0, -ENOMEM or -EIO. */
int pki_make_key(char **ret_key);
/* A CSR (PEM) signed by key_pem with subject O=organization... (may be NULL), CN=common_name.
 * Returns 0, -EBADMSG for an unreadable key, -ENOMEM or -EIO. */
int pki_make_csr_for_key(const char *key_pem, const char *common_name, char *const *organization, char **ret_csr);

/* What a certificate must carry. NULL members are not checked. */
typedef struct pki_want {
        const char *common_name;  /* the subject CN, exactly */
        char *const *organization; /* each one among the subject's O values */
        char *const *dns;         /* each one among the DNS SANs */
        char *const *ips;         /* each one among the IP SANs */
} pki_want;

/* Whether cert_pem (PEM) is a certificate for key_pem (PEM, may be NULL: not checked) that carries
 * want (may be NULL) and, unless now is 0, is valid at now and younger than fraction of its lifetime.
 * Returns 1 yes, 0 no (also for text that is not a certificate or key). */
int pki_cert_check(const char *cert_pem, const char *key_pem, const pki_want *want, double fraction, time_t now);
/* The serial number of cert_pem as colon-separated lower-case hex (Vault's form) in a new string,
 * and its notAfter. Returns 0, -EBADMSG or -ENOMEM. */
int pki_cert_info(const char *cert_pem, char **ret_serial, int64_t *ret_not_after);
/* Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo of key_pem's public key (what a kubeadm
 * CA pin of a certificate for that key holds). Returns 0 or -EBADMSG. */
int pki_key_spki_sha256(const char *key_pem, char ret_hex[65]);
