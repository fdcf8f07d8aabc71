/* A small etcd v3 client over etcd's JSON gateway (POST /v3/kv/range, /v3/kv/put,
 * /v3/kv/deleterange, /v3/kv/txn; etcd 3.4+), on lib/http.c. Keys and values are bytes (base64
 * on the wire, as the gateway wants). Conditional writes are transactions on create_revision
 * (create-if-absent) and mod_revision (compare-and-swap), which is what an optimistic-concurrency
 * store (Kubernetes' resourceVersion among them) needs.
 *
 * Endpoints are tried in order: a request that gets no HTTP answer from one endpoint (refused,
 * timed out) goes to the next; an answer of any kind ends the request, so a write is never sent
 * twice to members that both answered. Not thread-safe (no shared state beyond the options).
 * Not covered yet: watch, leases. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "macro.h"

typedef struct etcd_client etcd_client;

typedef struct etcd_client_options {
        char *const *endpoints;    /* "http://host:port" or "https://...", NULL-terminated */
        const char *ca_file;       /* TLS: CA bundle, client certificate, key (PEM paths; NULL) */
        const char *cert_file;
        const char *key_file;
        long timeout_ms;           /* per endpoint attempt; 0: 5000 */
        size_t max_reply;          /* cap on one reply; 0: 16 MiB */
} etcd_client_options;

/* Copy the options into a new client. Returns 0, -EINVAL without endpoints or for an endpoint
 * that is not http(s)://, -ENOMEM. */
int etcd_client_new(const etcd_client_options *o, etcd_client **ret);
void etcd_client_free(etcd_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(etcd_client *, etcd_client_free);

typedef struct etcd_client_kv {
        char *key;                 /* NUL-terminated (keys with NUL bytes are cut there) */
        char *value;               /* value_len bytes, NUL-terminated for convenience */
        size_t value_len;
        int64_t create_revision;
        int64_t mod_revision;
        int64_t version;
} etcd_client_kv;

typedef struct etcd_client_range_result {
        etcd_client_kv *kvs;
        size_t n_kvs;
        int64_t revision;          /* the store's revision the answer was read at */
        int64_t count;             /* keys in the range (may exceed n_kvs when limited) */
        bool more;                 /* limited: more keys follow */
} etcd_client_range_result;

void etcd_client_kv_done(etcd_client_kv *kv);
void etcd_client_range_result_done(etcd_client_range_result *r);

/* All errors: -ECONNREFUSED / -ETIMEDOUT / -EHOSTUNREACH / -EIO when no endpoint answered (err:
 * the last endpoint's failure), -EBADMSG for a reply that is not what the gateway sends,
 * -EINVAL / -EAGAIN / -EIO for a gateway error status (400 / 503 / others; err: etcd's message),
 * -ENOMEM. err (may be NULL) gets one line; it is appended to, not cleared. */

/* Read one key. Returns 0 and *ret (free with etcd_client_kv_done()), -ENOENT when absent.
 * ret_revision (may be NULL): the store's revision at the read, also when absent. */
int etcd_client_get(etcd_client *c, const char *key, etcd_client_kv *ret, int64_t *ret_revision,
                    buf *err);
/* Read every key starting with prefix, in key order, at most limit (0: no limit). */
int etcd_client_list_prefix(etcd_client *c, const char *prefix, int64_t limit,
                            etcd_client_range_result *ret, buf *err);
/* The same as the store was at revision (> 0; 0: now): what a watch from a resourceVersion
 * starts from. A compacted or future revision is the gateway's 400 (-EINVAL, err says which). */
int etcd_client_list_prefix_at(etcd_client *c, const char *prefix, int64_t revision, int64_t limit,
                               etcd_client_range_result *ret, buf *err);
/* Write unconditionally. ret_revision (may be NULL): the revision of the write. */
int etcd_client_put(etcd_client *c, const char *key, const void *value, size_t len,
                    int64_t *ret_revision, buf *err);
/* Write only if the key does not exist. Returns 0, -EEXIST when it does. */
int etcd_client_create(etcd_client *c, const char *key, const void *value, size_t len,
                       int64_t *ret_revision, buf *err);
/* Write only if the key's mod_revision is still mod_revision. Returns 0, -ESTALE when it was
 * changed since, -ENOENT when it is gone. */
int etcd_client_update(etcd_client *c, const char *key, const void *value, size_t len,
                       int64_t mod_revision, int64_t *ret_revision, buf *err);
/* Delete one key; when mod_revision > 0 only if it is still at that revision. Returns 0,
 * -ENOENT when there was no such key, -ESTALE when it changed since mod_revision. */
int etcd_client_delete(etcd_client *c, const char *key, int64_t mod_revision,
                       int64_t *ret_revision, buf *err);
/* Whether an endpoint answers a read (a range on key, keys only) within timeout_ms (0: the
 * client's). Returns 0 or an error as above. */
int etcd_client_ping(etcd_client *c, const char *key, long timeout_ms, buf *err);

/* The first key after every key that starts with prefix (etcd's range_end for a prefix), as a
 * new string; "\0" (returned as "") would mean "no end" and is never produced for a non-empty
 * prefix made of bytes below 0xff. Returns NULL on ENOMEM or for such a prefix. */
char *etcd_client_prefix_end(const char *prefix);
