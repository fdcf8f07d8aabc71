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
