/* Kubernetes API client over lib/http (libcurl) and jansson: one API server, CA pinned by file or
 * PEM, authentication by client certificate + key or bearer token; JSON requests (GET, POST, PUT,
 * PATCH, DELETE), list + watch with resourceVersion. Replies are capped; a non-2xx reply becomes
 * one negative errno and one line in err built from its metav1.Status:
 *   "GET https://10.0.0.1:6443/api/v1/nodes/n1: HTTP 404 NotFound: nodes \"n1\" not found"
 * Nothing here logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"
#include "macro.h"

#define KUBE_DEFAULT_MAX_REPLY (4u * 1024u * 1024u)
#define KUBE_DEFAULT_TIMEOUT_MS 10000L
#define KUBE_DEFAULT_WATCH_TIMEOUT_S 300u

typedef struct kube_client_config {
        /* "https://host:port" (an optional path prefix is kept; a trailing '/' is dropped).
         * "http://" is accepted, but carries credentials only to a loopback address
         * (127.0.0.0/8, [::1], localhost: tests). Required. */
        const char *server;
        /* CA bundle the server's certificate must chain to: a PEM file or PEM text (text wins).
         * Neither: the system trust store (not what a cluster uses). */
        const char *ca_file;
        const char *ca_pem;
        /* Client certificate auth: certificate and key, as files or PEM text; both or neither. */
        const char *cert_file;
        const char *key_file;
        const char *cert_pem;
        const char *key_pem;   /* secret: copied and wiped by the client */
        /* Bearer token auth ("<id>.<secret>" for a bootstrap token); secret: copied and wiped.
         * Visible ASCII only. Together with a client certificate both are sent (the API server
         * tries the certificate first). */
        const char *token;
        /* Discovery only (kubeadm's first cluster-info fetch): https without verifying the
         * server. Refused together with any credential, so nothing secret goes to an unverified
         * peer. */
        bool tls_no_verify;
        long timeout_ms;        /* per request; 0: KUBE_DEFAULT_TIMEOUT_MS */
        /* Retries of transport failures and 502/503/504 with backoff, until attempts (0: 1) or
         * deadline_ms (total per request; 0: none) run out. Other statuses are answers. */
        unsigned attempts;
        long deadline_ms;
        size_t max_reply;       /* cap on one reply, and on one watch event; 0: KUBE_DEFAULT_MAX_REPLY */
        const char *user_agent; /* NULL: "imgbuild-kube-client" */
} kube_client_config;

typedef struct kube_client kube_client;

/* Create a client; copies everything in cfg. Returns 0 and *ret, -EINVAL for a config that is
 * not usable (no server, not http(s), certificate without key, a token with spaces or control
 * characters, credentials with tls_no_verify or over http:// to another host) with the reason in err (may be
 * NULL; appended to), -ENOMEM. */
int kube_client_new(const kube_client_config *cfg, kube_client **ret, buf *err);
/* Free the client, wiping the token and key. Accepts NULL. */
void kube_client_free(kube_client *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(kube_client *, kube_client_free);
/* The server URL as normalised (owned by the client). */
const char *kube_client_server(const kube_client *k);

typedef enum kube_patch_type {
        KUBE_PATCH_MERGE,       /* application/merge-patch+json (RFC 7386) */
        KUBE_PATCH_STRATEGIC,   /* application/strategic-merge-patch+json (kubectl, kubelet) */
        KUBE_PATCH_JSON,        /* application/json-patch+json (RFC 6902) */
} kube_patch_type;

/* The Content-Type for a patch type; NULL for a value outside the enum. Static string. */
const char *kube_patch_content_type(kube_patch_type type);

/* Requests. path is the API path, starting with '/', with its query if any
 * ("/api/v1/namespaces/kube-public/configmaps/cluster-info", "/api/v1/nodes?limit=500"); the
 * caller escapes its parts (http_escape()). body (may be NULL for DELETE) is sent as compact
 * JSON. On success returns 0 and a new reference to the reply in *ret (may be NULL: the reply
 * is not kept); a 2xx reply with an empty body gives a JSON null.
 * Errors, with one line in err (may be NULL; appended to):
 *   the HTTP status mapped from the reply (its metav1.Status when it has one):
 *     400 -EBADR, 401 -EKEYREJECTED (credentials not accepted, e.g. an expired token),
 *     403 -EACCES, 404 -ENOENT, 405 -EOPNOTSUPP, 409 reason AlreadyExists -EEXIST,
 *     409 otherwise -ESTALE (resourceVersion conflict: read again), 410 -ETIME (resourceVersion
 *     too old: list again), 413 -E2BIG, 415 -EPROTONOSUPPORT, 422 -EINVAL (Invalid), 429 -EBUSY
 *     (TooManyRequests, e.g. an eviction blocked by a PodDisruptionBudget), 5xx -EIO, any other
 *     non-2xx -EPROTO;
 *   -EBADMSG for a 2xx reply that is not JSON; -ENOBUFS for a reply over the cap;
 *   http_do()'s transport errors (-ECONNREFUSED, -ETIMEDOUT, -EIO for TLS trust failures, ...).
 * The token and key never appear in err. */
int kube_get(kube_client *k, const char *path, json_t **ret, buf *err);
int kube_post(kube_client *k, const char *path, json_t *body, json_t **ret, buf *err);
int kube_put(kube_client *k, const char *path, json_t *body, json_t **ret, buf *err);
int kube_patch(kube_client *k, const char *path, kube_patch_type type, json_t *patch, json_t **ret,
               buf *err);
int kube_delete(kube_client *k, const char *path, json_t *body, json_t **ret, buf *err);
/* GET a path whose 2xx reply is not JSON (/readyz, /livez: "ok"). Returns 0 and the body
 * (NUL-terminated, caller frees) in *ret, errors as above. */
int kube_get_text(kube_client *k, const char *path, char **ret, buf *err);

/* Watch events. type is "ADDED", "MODIFIED", "DELETED", "BOOKMARK" (object then carries only
 * metadata.resourceVersion) or any other type the server sends except "ERROR", which ends the
 * watch with the error its Status describes. object is borrowed for the call. Return 0 to go
 * on, > 0 to stop the watch (kube_watch returns that value), < 0 to fail it (returned as is; the
 * callback writes its own message). */
typedef int (*kube_watch_cb)(const char *type, json_t *object, void *userdata);

/* Watch path (a collection, with its query if any, e.g. a fieldSelector) from *resource_version
 * (in/out; NULL or "" means "from the server's current state", which is only right right after
 * a list), for at most timeout_s seconds server-side (timeoutSeconds; 0:
 * KUBE_DEFAULT_WATCH_TIMEOUT_S), with bookmarks. Events go to cb as they arrive (not when the
 * stream ends). *resource_version is replaced (old value freed) by every event's
 * metadata.resourceVersion, also on failure, so the caller resumes where the stream stopped.
 * Returns cb's positive value when cb stopped the watch, 0 when the server ended the stream
 * (timeout: watch again from *resource_version), cb's negative value, or a negative errno with
 * err (appended to) as for kube_get: a non-2xx reply, an ERROR event (410 Expired: -ETIME, list
 * again), -EBADMSG for a stream that is not a sequence of {"type","object"} JSON objects,
 * -ENOBUFS for one event over the cap. */
int kube_watch(kube_client *k, const char *path, char **resource_version, unsigned timeout_s,
               kube_watch_cb cb, void *userdata, buf *err);

/* The pieces, exposed for tests and fuzzing. */

/* Turn one reply into a result as kube_get does: 2xx and JSON (or empty) -> 0 and *ret (may be
 * NULL); otherwise the mapped errno and "<method> <url>: HTTP <code> <reason>: <message>" in err
 * (appended to; method and url only label the message), with up to three of the Status's
 * details.causes. A non-Status error body is quoted, cut to 200 bytes, non-printable bytes
 * replaced by '?'. */
int kube_parse_reply(const char *method, const char *url, long status, const char *body, size_t len,
                     json_t **ret, buf *err);
/* The errno kube_parse_reply maps a status code and reason (may be NULL) to; 0 for 2xx. */
int kube_status_errno(long code, const char *reason);

/* Incremental decoder of a watch stream: a sequence of JSON objects with optional whitespace
 * between them (the API server ends each with "\n"; nothing relies on that), fed in pieces of
 * any size, each complete event handed to cb. An ERROR event fails with its Status's errno. */
typedef struct kube_watch_decoder {
        buf event;            /* bytes of the event being framed; capped at max */
        int depth;            /* object/array nesting */
        bool in_string, escaped;
        char *resource_version; /* last metadata.resourceVersion seen (owned), or NULL */
} kube_watch_decoder;

/* max: cap on one event (0: KUBE_DEFAULT_MAX_REPLY). */
void kube_watch_decoder_init(kube_watch_decoder *d, size_t max);
/* Feed len bytes. Returns 0 (feed more), cb's non-zero value, -EBADMSG (not a watch stream,
 * or an event without a string "type" and an object "object"), -ENOBUFS (event over the cap),
 * an ERROR event's errno, -ENOMEM; with a reason in err (appended to) for the decoder's own
 * errors. After a non-zero return the decoder must not be fed again. */
int kube_watch_decoder_feed(kube_watch_decoder *d, const void *data, size_t len, kube_watch_cb cb,
                            void *userdata, buf *err);
/* True when the stream so far ended on an event boundary (a clean end of stream). */
bool kube_watch_decoder_idle(const kube_watch_decoder *d);
void kube_watch_decoder_done(kube_watch_decoder *d);
