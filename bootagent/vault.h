/* Vault client (protocols.md §4, §5): Exoscale auth login, token renewal, KV v2, PKI, health.
 * The token lives only in memory and is wiped on vault_done(); it is never logged. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "macro.h"
#include "request.h"

typedef struct vault {
        const char *addr;      /* borrowed, e.g. http://127.0.0.1:8200 */
        const char *unix_socket; /* borrowed, may be NULL: a UNIX socket to reach addr through */
        const char *ca_file;   /* borrowed, may be NULL */
        long deadline_ms;      /* per call, retries of 429/5xx/transport errors included */
        /* The calling stage's deadline (borrowed, may be NULL): with deadline->at set, no call
         * outlives it. Counts the requests. */
        request_deadline *deadline;
        char *token;           /* owned secret */
        uint64_t lease_duration;
} vault;

typedef struct pki_bundle {
        char *certificate;     /* PEM */
        char *issuing_ca;      /* PEM */
        char *private_key;     /* PEM secret; NULL for pki/sign */
        char *serial;
        int64_t expiration;
} pki_bundle;

/* Turn a Vault reply into the JSON body or an error. status >= 400: -EACCES (403), -ENOENT
 * (404), -EINVAL (400), -EIO (others), with the {"errors":[...]} messages joined into err.
 * A 2xx body that is not a JSON object: -EBADMSG. A 204 or empty body gives a NULL *ret. */
int vault_parse_reply(long status, const char *body, size_t len, json_t **ret, buf *err);
/* Read .auth.client_token and .auth.lease_duration from a login/renew reply. -EBADMSG if absent. */
int vault_parse_auth(json_t *reply, char **ret_token, uint64_t *ret_lease);
/* Read .data.{certificate,issuing_ca,private_key?,serial_number,expiration}. */
int vault_parse_pki(json_t *reply, pki_bundle *ret);

int vault_login(vault *v, const char *mount, const char *role, const char *instance, buf *err);
int vault_renew_self(vault *v, buf *err);
/* KV v2: *ret is a new reference to .data.data. -ENOENT when the secret does not exist. */
int vault_kv_read(vault *v, const char *mount, const char *path, json_t **ret, buf *err);
/* KV v2 write; cas < 0: unconditional. A check-and-set mismatch gives -EEXIST. */
int vault_kv_write(vault *v, const char *mount, const char *path, json_t *data, int64_t cas, buf *err);
/* pki/issue/<role> (csr_pem NULL) or pki/sign/<role> with a CSR. ip_sans/alt_names comma lists. */
int vault_pki(vault *v, const char *mount, const char *role, const char *common_name,
              const char *alt_names, const char *ip_sans, const char *ttl, const char *csr_pem,
              pki_bundle *ret, buf *err);
/* sys/health: 0 when initialized, unsealed and active or standby. */
int vault_health(vault *v, buf *err);

void vault_done(vault *v);
void pki_bundle_done(pki_bundle *b);
