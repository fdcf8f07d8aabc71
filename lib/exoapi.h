/* Exoscale API v2 client (protocols.md §1-2): signed JSON requests to a zone's endpoint, error
 * bodies turned into one line, async operations polled to completion, and thin typed wrappers
 * for what the builder and the pool code use.
 *
 * Errors: every call returns >= 0 or a negative errno; the one-line reason for the last failure
 * is then in exoapi_error(), e.g.
 *   "PUT https://api-ch-gva-2.exoscale.com/v2/instance-pool/ID:scale: HTTP 403: Invalid signature"
 *   "operation ID failed: unavailable: no capacity"
 * The API key and secret never appear in it. HTTP statuses map to errno: 400 -EINVAL,
 * 401/403 -EACCES, 404 -ENOENT, 409 -EEXIST, 429 -EBUSY, 5xx -EIO, others -EPROTO. */
#pragma once

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "macro.h"

typedef struct exoapi_credentials {
        char *key;
        char *secret;              /* wiped by exoapi_credentials_done() */
} exoapi_credentials;

/* From EXOSCALE_API_KEY and EXOSCALE_API_SECRET. Returns 0, -ENOKEY when either is unset or
 * empty (err, which must not be NULL, says which), -ENOMEM. */
int exoapi_credentials_from_env(exoapi_credentials *ret, buf *err);
/* From a file of "key = value" lines (api_key, api_secret; '#' comments and blank lines
 * allowed). The file must not be readable or writable by group or others: -EPERM otherwise.
 * -EBADMSG for a malformed line or a missing key, -errno from open/read. err gets one line
 * naming the file, never its content. */
int exoapi_credentials_from_file(const char *path, exoapi_credentials *ret, buf *err);
void exoapi_credentials_done(exoapi_credentials *c);

typedef struct exoapi exoapi;

#define EXOAPI_DEFAULT_ENDPOINT "https://api-{zone}.exoscale.com/v2"

/* New client for zone; copies the credentials. Returns 0, -EINVAL (empty key/secret/zone),
 * -ENOMEM. */
int exoapi_new(const exoapi_credentials *creds, const char *zone, exoapi **ret);
void exoapi_free(exoapi *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(exoapi *, exoapi_free);

/* Endpoint URL up to and including the "/v2" path, with "{zone}" replaced by the zone (if it
 * occurs). The default is EXOAPI_DEFAULT_ENDPOINT; local services and the test fake use
 * e.g. "http://127.0.0.1:PORT/v2" or "http://127.0.0.1:PORT/{zone}/v2". Returns 0 or -ENOMEM. */
int exoapi_set_endpoint(exoapi *c, const char *url_template);
/* Zone addressed by all later calls (zonal resources and their operations live on their own
 * zone's endpoint). Returns 0 or -ENOMEM. */
int exoapi_set_zone(exoapi *c, const char *zone);
const char *exoapi_zone(const exoapi *c);
/* Operation polling: the base interval b (default 3000 ms; waits are b for the first 10 b, then
 * rise linearly to 20 b at 300 b and stay there: egoscale v3's 3 s, 30 s, 60 s, 15 min), and the
 * deadline for one operation (default 3600 s: template registration is slow). */
void exoapi_set_poll_interval(exoapi *c, long base_ms);
void exoapi_set_operation_timeout(exoapi *c, long timeout_ms);
/* Added to the local clock when computing the signature's expiry (tests; hosts with skew). */
void exoapi_set_clock_offset(exoapi *c, int64_t seconds);
/* Cancellation (NULL, the default: none): once *cancel is nonzero (e.g. interrupt_signal_flag()),
 * a call under way stops within about a second (its request as http_request.cancel says, a wait
 * between operation polls within TIME_CANCEL_SLICE_MS) and later calls fail at once, all with
 * -ECANCELED and exoapi_error() saying "cancelled". Set it back to NULL to clean up after a
 * cancelled call with the same client. */
void exoapi_set_cancel(exoapi *c, const volatile sig_atomic_t *cancel);

/* The reason for the last failed call (never NULL; "" before any failure). */
const char *exoapi_error(const exoapi *c);

/* One signed request. path is relative to the endpoint ("/instance/ID:stop"), already escaped;
 * query is the raw query string without '?' (values percent-encoded) or NULL; body (borrowed,
 * may be NULL) is serialized once and exactly those bytes are signed and sent. GET, PUT and
 * DELETE are retried on 429/5xx and transport errors under a deadline; POST is never retried.
 * On success *ret (may be NULL) gets the parsed response (new reference; JSON null for an empty
 * body). */
int exoapi_request(exoapi *c, const char *method, const char *path, const char *query,
                   json_t *body, json_t **ret);

/* Poll the operation object op (as returned by a mutating call; borrowed) until it leaves
 * "pending", on the current zone's endpoint. Gives up after 5 consecutive poll errors or the
 * operation timeout (-ETIME), or when cancelled (-ECANCELED, exoapi_set_cancel). State "failure" gives -EREMOTEIO and "timeout" -ETIMEDOUT, with
 * "operation ID failed: reason: message". On success, *ret_reference_id (may be NULL) gets
 * reference.id (-EBADMSG if it is missing then). */
int exoapi_wait_operation(exoapi *c, json_t *op, char **ret_reference_id);

/* The wait before the next poll, elapsed_ms into an operation (exposed for tests). */
long exoapi_poll_interval_ms(long base_ms, long elapsed_ms);

/* Parsed operation object, for exoapi_wait_operation() and the fuzzer. Strings are borrowed from
 * the JSON. */
typedef enum exoapi_op_state {
        EXOAPI_OP_PENDING,
        EXOAPI_OP_SUCCESS,
        EXOAPI_OP_FAILURE,
        EXOAPI_OP_TIMEOUT,
} exoapi_op_state;

typedef struct exoapi_operation {
        const char *id;
        exoapi_op_state state;
        const char *reason;        /* may be NULL */
        const char *message;       /* may be NULL */
        const char *reference_id;  /* may be NULL */
} exoapi_operation;

/* Returns 0, or -EBADMSG when op is not an object with a string id and a known state. */
int exoapi_operation_parse(json_t *op, exoapi_operation *ret);

/* The message of an error body: "message" and "error" (older shape), or RFC 9457 "title",
 * "detail" and "errors" (strings or {detail, location}), joined with ": "; a body that is not
 * JSON (or has none of these) is its own text, with control characters replaced and cut at
 * 512 bytes. Returns a new string ("" for an empty body) or NULL on ENOMEM. */
char *exoapi_error_message(const char *body, size_t len);

/* Typed wrappers. Functions named *_create (and stop/start/delete/scale/...) wait for the
 * operation; ids returned in ret_id are new strings. Functions returning JSON give a new
 * reference to the parsed object (or to the list inside a list response). */

typedef struct exoapi_instance_spec {
        const char *name;
        const char *instance_type_id;
        const char *template_id;
        uint64_t disk_size_gb;
        char *const *security_group_ids;   /* may be NULL */
        const char *ssh_key;               /* key name; may be NULL */
        const char *user_data;             /* plain text, base64-encoded here; may be NULL */
        char *const *labels;               /* "key=value" strings; may be NULL */
} exoapi_instance_spec;

/* Whether s has the shape of an API id (a UUID): options that take an id or a name use it. */
bool exoapi_is_id(const char *s);
/* The id of instance type ref: an id as it is, or FAMILY.SIZE ("standard.medium") looked up in
 * GET /instance-type. Returns 0, -ENOENT when the zone does not offer it, or the API's error. */
int exoapi_instance_type_id(exoapi *c, const char *ref, char **ret_id);

int exoapi_instance_create(exoapi *c, const exoapi_instance_spec *spec, char **ret_id);
int exoapi_instance_get(exoapi *c, const char *id, json_t **ret);
/* Members of an instance pool (GET /instance?manager-id=...&manager-type=instance-pool). */
int exoapi_instance_list_by_pool(exoapi *c, const char *pool_id, json_t **ret);
int exoapi_instance_stop(exoapi *c, const char *id);
int exoapi_instance_start(exoapi *c, const char *id);  /* sends {}, as the schema asks */
int exoapi_instance_delete(exoapi *c, const char *id);

/* Snapshot an instance's disk; returns the snapshot id. */
int exoapi_snapshot_create(exoapi *c, const char *instance_id, char **ret_id);
int exoapi_snapshot_get(exoapi *c, const char *id, json_t **ret);
/* Export, then return the snapshot object (export.presigned-url, export.md5sum). */
int exoapi_snapshot_export(exoapi *c, const char *id, json_t **ret_snapshot);
/* Promote to a template in the same zone; returns the template id. */
int exoapi_snapshot_promote(exoapi *c, const char *id, const char *template_name,
                            const char *default_user, char **ret_template_id);

typedef struct exoapi_template_spec {
        const char *name;
        const char *url;
        const char *checksum;              /* MD5 hex */
        const char *boot_mode;             /* "legacy" or "uefi"; NULL: API default */
        const char *default_user;          /* may be NULL */
        const char *description;           /* may be NULL */
        bool password_enabled;
        bool ssh_key_enabled;
} exoapi_template_spec;

int exoapi_template_register(exoapi *c, const exoapi_template_spec *spec, char **ret_id);
int exoapi_template_get(exoapi *c, const char *id, json_t **ret);
/* Copy from the current zone to target_zone; returns the template id in target_zone (address it
 * there with exoapi_set_zone()). */
int exoapi_template_copy(exoapi *c, const char *id, const char *target_zone, char **ret_id);
int exoapi_template_delete(exoapi *c, const char *id);
int exoapi_template_list_private(exoapi *c, json_t **ret);

int exoapi_ssh_key_create(exoapi *c, const char *name, const char *public_key);
int exoapi_ssh_key_delete(exoapi *c, const char *name);

int exoapi_security_group_create(exoapi *c, const char *name, const char *description,
                                 char **ret_id);
int exoapi_security_group_get(exoapi *c, const char *id, json_t **ret);
int exoapi_security_group_delete(exoapi *c, const char *id);

typedef struct exoapi_sg_rule {
        const char *flow_direction;        /* "ingress" or "egress" */
        const char *protocol;              /* "tcp", "udp", "icmp", ... */
        unsigned start_port, end_port;     /* 0: not sent */
        const char *network;               /* CIDR, or NULL with security_group_id set */
        const char *security_group_id;
        const char *description;           /* may be NULL */
} exoapi_sg_rule;

int exoapi_security_group_add_rule(exoapi *c, const char *sg_id, const exoapi_sg_rule *rule);

/* The API's limit on an instance pool's instance-prefix (pool names may have 63). */
#define EXOAPI_INSTANCE_PREFIX_MAX 30

typedef struct exoapi_pool_spec {
        const char *name;
        const char *instance_type_id;
        const char *template_id;
        uint64_t size;
        uint64_t disk_size_gb;
        const char *instance_prefix;       /* may be NULL; 1 to EXOAPI_INSTANCE_PREFIX_MAX chars */
        char *const *security_group_ids;   /* each list may be NULL */
        char *const *private_network_ids;
        char *const *elastic_ip_ids;
        char *const *anti_affinity_group_ids;
        const char *ssh_key;               /* may be NULL */
        const char *user_data;             /* plain text; may be NULL */
        char *const *labels;               /* "key=value"; may be NULL */
} exoapi_pool_spec;

int exoapi_pool_create(exoapi *c, const exoapi_pool_spec *spec, char **ret_id);
int exoapi_pool_get(exoapi *c, const char *id, json_t **ret);
int exoapi_pool_list(exoapi *c, json_t **ret);
/* PUT /instance-pool/ID with the fields in changes (borrowed; e.g. {"template":{"id":...}}).
 * The API clears list fields a PUT omits (protocols.md §2.5), so the pool is read first and its
 * anti-affinity-groups, elastic-ips, private-networks, security-groups, ssh-key(s) and
 * deploy-target are re-sent unless changes sets them. */
int exoapi_pool_update(exoapi *c, const char *id, json_t *changes);
int exoapi_pool_scale(exoapi *c, const char *id, uint64_t size);
/* Remove these members; the pool's size shrinks by their number. Done (0) when none of them is
 * a member any more, so a retry after a lost reply, or a second call, succeeds. */
int exoapi_pool_evict(exoapi *c, const char *id, char *const *instance_ids);
int exoapi_pool_delete(exoapi *c, const char *id);

/* Includes leases[{instance-id, ip}] for managed networks. */
int exoapi_private_network_get(exoapi *c, const char *id, json_t **ret);
