/* What the pool core and the providers both need to judge a member's health: where its etcd
 * answers and with which TLS files, and the calls to that etcd (its v3 JSON gateway). A leaf: it
 * uses only lib/, so providers depend on it and never on the core (pool.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

/* Where to look to judge a member's health. Strings owned by the struct. */
typedef struct pool_health_inputs {
        char *etcd_url;     /* the member's etcd client URL, "https://127.0.0.11:30001" */
        char *ca_file;      /* TLS files to talk to etcd with (may be NULL) */
        char *cert_file;
        char *key_file;
        char *connect_to;   /* "host:port" to connect to instead of the URL's (a port forward to
                             * the member's address; TLS still checks the URL's), or NULL */
} pool_health_inputs;

/* Free the strings of h and zero it (h itself is the caller's). */
void pool_health_inputs_done(pool_health_inputs *h);

/* Call path on base_url with the TLS files (and connect_to) of tls; POST body when body is not
 * NULL, else GET; 2 s timeout, replies capped at 1 MiB. Returns 0 with the HTTP status and, for
 * a JSON reply, the parsed body (a new reference, NULL when the reply is not JSON; ret_body may
 * be NULL), or a negative errno when nothing answered (outputs untouched). */
int pool_health_etcd_call(const pool_health_inputs *tls, const char *base_url, const char *path, const char *body,
                          long *ret_status, json_t **ret_body);

/* Whether the etcd at h->etcd_url answers /health with "health": "true". */
bool pool_health_check(const pool_health_inputs *h);
