/* The Vault-API-compatible service, one listener per instance (/v1): Exoscale auth login bound
 * to the listener's instance, token self-maintenance, KV v2 under secret/, PKI under pki/ with
 * the local CA, sys/health and sys/seal-status. Wire formats: shared/reference/protocols.md §4-5.
 *
 * It answers as Vault 1.15 does, so what passes against it passes against Vault (checked with
 * node-vault in tests/integration/test-vault-client.sh). Where it still differs, on purpose or
 * not yet done:
 * - Tokens are bound to the listener they were issued through (the stand-in for Vault's
 *   client-IP checks); through another instance's port a token is an invalid token.
 * - Field types are strict: a number where a string is expected is 400 (Vault's framework
 *   converts weakly, "1" for 1). Unknown top-level fields get Vault's warning, but unknown keys
 *   inside KV "options" are 400 (Vault ignores them silently; a typo'd "cas" would then write
 *   unconditionally). Query parameters of GET requests are not checked for unknown names.
 * - Only the routes below exist; anything else is 404 "no handler for route", a known path with
 *   another method 405 with an empty errors list (Vault: "unsupported operation").
 * - KV v2: no destroy, undelete, metadata writes, delete_version_after, cas_required or custom
 *   metadata; max_versions is fixed at 10; DELETE with a "versions" body is not supported (soft
 *   delete of the latest version only).
 * - PKI: EC P-256 keys only (key_type/key_bits of roles are not modelled); other_sans and
 *   user_ids are refused as a role without allowed_other_sans/allowed_user_ids refuses them;
 *   serial_number (subject serialNumber) and cert_metadata are accepted and ignored; issuer_ref
 *   must be "default"; a certificate is cut at the CA's expiry where Vault (leaf_not_after_behavior
 *   "err") refuses; a not_after in the past is refused; no CRL, revocation or tidy. Of the
 *   role's subject fields only organization (O, before the CN) is modelled; key usages are fixed
 *   (Vault's defaults with server_flag and client_flag).
 * - sys/health: never standby, sealed or a DR secondary, so only activecode changes the status;
 *   a code outside 100..599 is 400 (Go's net/http would panic in Vault). No license block.
 * - The HTTP server's own 413/400/500 bodies are Vault-shaped, but their texts are ours
 *   ("request body too large"); 414/431 come from libmicrohttpd with HTML bodies. Chunked
 *   request bodies are accepted (as Vault does); no 411 is ever sent.
 * - No response wrapping, namespaces, X-Vault-Request checks or request forwarding. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto.h"
#include "json.h"
#include "log.h"
#include "serve-service.h"
#include "strv.h"

/* Vault's texts: an auth plugin's refusal is a bare "permission denied"; the ACL check in core
 * wraps it (hashicorp/go-multierror), and a token that is not (or no longer) valid adds
 * "invalid token"; a request without a token is "missing client token". */
#define PERMISSION_DENIED "permission denied"
#define ACL_DENIED "1 error occurred:\n\t* permission denied\n\n"
#define INVALID_TOKEN "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"
#define MISSING_TOKEN "missing client token"

#define VAULT_VERSION "1.15.0+imgbuild"
#define VAULT_CLUSTER_NAME "imgbuild-local"
#define VAULT_CLUSTER_ID "00000000-0000-4000-8000-000000000000"

typedef struct vault_call {
        const serve_state *s;
        const char *instance_id;       /* whose listener the request came through */
        const http_server_request *req;
        http_server_response *resp;
        json_t *body;                  /* parsed request body (an object; empty for none) */
        const char *path;              /* after /v1/ */
        const char *rest;              /* what follows the route's prefix */
        const char *token;             /* the caller's token, when the route needs one */
        json_t *token_entry;
        json_t *warnings;              /* array, owned; goes out with the reply's envelope */
        time_t now;
} vault_call;

/* ---- replies ---- */

/* Vault's response envelope around data (stolen, may be NULL) and auth (stolen, may be NULL),
 * with the warnings collected for the request. */
static int reply(vault_call *c, json_t *data, json_t *auth) {
        char request_id[UUID_STRING_SIZE];
        random_uuid(request_id);
        json_t *warnings = json_array_size(c->warnings) > 0 ? TAKE_PTR(c->warnings) : NULL;
        return serve_reply_json(c->resp, 200,
                                json_pack("{s:s,s:s,s:b,s:i,s:o?,s:n,s:o?,s:o?}", "request_id", request_id,
                                          "lease_id", "", "renewable", 0, "lease_duration", 0, "data",
                                          data, "wrap_info", "warnings", warnings, "auth", auth));
}

/* Add a warning to the reply's "warnings". Returns 0 or -ENOMEM. */
_printf_(2, 3) static int warn(vault_call *c, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        if (!c->warnings && !(c->warnings = json_array()))
                return -ENOMEM;
        return json_array_append_new(c->warnings, json_string(m)) < 0 ? -ENOMEM : 0;
}

static int fail(vault_call *c, int status, const char *message) {
        return serve_vault_error(c->resp, status, message);
}

_printf_(3, 4) static int failf(vault_call *c, int status, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return fail(c, status, m);
}

/* An auth plugin's refusal (login, renewal re-validation). */
static int fail_denied(vault_call *c) { return fail(c, 403, PERMISSION_DENIED); }
/* The ACL said no. */
static int fail_acl(vault_call *c) { return fail(c, 403, ACL_DENIED); }

/* For helpers that may answer the request themselves: > 0 means "replied, stop here". */
static int replied(int r) { return r < 0 ? r : 1; }

/* ---- request parsing helpers ---- */

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Fields the endpoint does not know are ignored with a warning, as Vault's framework does
 * (sdk/framework/backend.go): "Endpoint ignored these unrecognized parameters: [a b]", sorted.
 * Returns 0 or -ENOMEM. */
static int check_fields(vault_call *c, const char *const *allowed) {
        _cleanup_strv_free_ char **unknown = NULL;
        _cleanup_free_ char *joined = NULL;
        const char *key;
        json_t *v;
        int r;

        json_object_foreach(c->body, key, v) {
                bool ok = false;
                for (const char *const *a = allowed; *a && !ok; a++)
                        ok = streq(key, *a);
                if (!ok && (r = strv_push(&unknown, key)) < 0)
                        return r;
        }
        if (!unknown)
                return 0;
        qsort(unknown, strv_length(unknown), sizeof(char *), compare_strings);
        if (!(joined = strv_join(unknown, " ")))
                return -ENOMEM;
        return warn(c, "Endpoint ignored these unrecognized parameters: [%s]", joined);
}

/* An optional string field. Returns 0 (value or NULL), or replied 400 (> 0). */
static int field_string(vault_call *c, const char *name, const char **ret) {
        json_t *v = json_object_get(c->body, name);
        if (v && !json_is_string(v))
                return replied(failf(c, 400, "field %s must be a string", name));
        *ret = v ? json_string_value(v) : NULL;
        return 0;
}

/* Vault's comma-string-slice: "a,b" or ["a","b"]; blanks dropped. Returns 0, or replied (> 0). */
static int field_list(vault_call *c, const char *name, char ***ret) {
        json_t *v = json_object_get(c->body, name), *e;
        _cleanup_strv_free_ char **l = NULL;
        size_t i;
        int r = 0;

        if (json_is_string(v))
                r = strv_split(json_string_value(v), ", ", &l);
        else if (json_is_array(v)) {
                json_array_foreach(v, i, e) {
                        if (!json_is_string(e))
                                return replied(failf(c, 400, "field %s must be a list of strings", name));
                        if ((r = strv_push(&l, json_string_value(e))) < 0)
                                return r;
                }
        } else if (v)
                return replied(failf(c, 400, "field %s must be a comma-separated string", name));
        if (r < 0)
                return r;
        if (!l && !(l = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

/* A Vault duration: integer seconds, or "90", "90s", "15m", "1h30m", "2d". Returns 0 or -EINVAL. */
static int parse_duration(json_t *v, int64_t *ret) {
        const char *p;
        int64_t total = 0;

        if (json_is_integer(v)) {
                if (json_integer_value(v) < 0)
                        return -EINVAL;
                *ret = json_integer_value(v);
                return 0;
        }
        if (!json_is_string(v) || !*(p = json_string_value(v)))
                return -EINVAL;
        while (*p) {
                int64_t n = 0, unit;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                for (; isdigit((unsigned char) *p); p++) {
                        if (n > 100000000)
                                return -EINVAL;
                        n = n * 10 + (*p - '0');
                }
                switch (*p) {
                case 0: unit = 1; break;
                case 's': unit = 1; p++; break;
                case 'm': unit = 60; p++; break;
                case 'h': unit = 3600; p++; break;
                case 'd': unit = 86400; p++; break;
                default: return -EINVAL;
                }
                total += n * unit;
                if (total > 100LL * 365 * 86400)
                        return -EINVAL;
        }
        *ret = total;
        return 0;
}

/* A duration as Vault's warnings print it: Go's time.Duration text with zero units trimmed
 * (sdk/framework/lease.go humanDuration): 3600 -> "1h", 5400 -> "1h30m", 90 -> "1m30s". */
static void human_duration(int64_t d, char out[32]) {
        int64_t h = d / 3600, m = d % 3600 / 60, sec = d % 60;
        if (h > 0 && m == 0 && sec == 0)
                snprintf(out, 32, "%lldh", (long long) h);
        else if (h > 0 && sec == 0)
                snprintf(out, 32, "%lldh%lldm", (long long) h, (long long) m);
        else if (h > 0)
                snprintf(out, 32, "%lldh%lldm%llds", (long long) h, (long long) m, (long long) sec);
        else if (m > 0 && sec == 0)
                snprintf(out, 32, "%lldm", (long long) m);
        else if (m > 0)
                snprintf(out, 32, "%lldm%llds", (long long) m, (long long) sec);
        else
                snprintf(out, 32, "%llds", (long long) sec);
}

/* A token's TTL as Vault's core computes it (framework.CalculateTTL): the increment asked for,
 * else the role's ttl, cut so the token does not outlive issue_time + the role's max_ttl (with a
 * warning). Returns 0, or replied 400 (> 0) once the max TTL has passed. */
static int token_ttl(vault_call *c, const cloud_vault_role *role, int64_t increment, int64_t issue_time,
                     int64_t *ret) {
        int64_t ttl = increment > 0 ? increment : role->ttl;
        int64_t left = issue_time + role->max_ttl - c->now;
        char a[32], b[32];
        int r;

        if (left <= 0)
                return replied(fail(c, 400, "past the max TTL, cannot renew"));
        if (ttl > left) {
                human_duration(ttl, a);
                human_duration(left, b);
                if ((r = warn(c, "TTL of \"%s\" exceeded the effective max_ttl of \"%s\"; TTL value is capped accordingly",
                              a, b)) < 0)
                        return r;
                ttl = left;
        }
        *ret = ttl;
        return 0;
}

/* ---- tokens and policies ---- */

static const char *request_token(const http_server_request *req) {
        const char *t = http_server_request_header(req, "x-vault-token"), *b;
        if (t && *t)
                return t;
        b = http_server_request_header(req, "authorization");
        return b ? startswith(b, "Bearer ") : NULL;
}

/* Does glob (a literal path, or a prefix ending in '*') match path? */
static bool glob_matches(const char *glob, const char *path) {
        size_t n = strlen(glob);
        if (n > 0 && glob[n - 1] == '*')
                return strneq(glob, path, n - 1);
        return streq(glob, path);
}

/* Union of the capabilities every matching rule of the token's policies grants; "deny" wins. */
static bool acl_allows(const cloud_state *cloud, json_t *policy_names, const char *path,
                       const char *capability) {
        json_t *name, *caps, *cap;
        const char *glob;
        size_t i, k;
        bool allowed = false;

        json_array_foreach(policy_names, i, name) {
                json_t *policy = json_object_get(cloud->policies, json_string_value(name));
                json_object_foreach(policy, glob, caps) {
                        if (!glob_matches(glob, path))
                                continue;
                        json_array_foreach(caps, k, cap) {
                                if (streq(json_string_value(cap), "deny"))
                                        return false;
                                if (streq(json_string_value(cap), capability))
                                        allowed = true;
                        }
                }
        }
        return allowed;
}

/* The Exoscale auth validator: the instance exists and runs, is the one behind the listener
 * (the stand-in for client_ip == instance_public_ip), and is in the role's pool and security
 * group. */
static bool instance_passes_role(vault_call *c, const cloud_vault_role *role, const char *instance_id) {
        const cloud_instance *in = cloud_find_instance(c->s->cloud, instance_id);
        if (!in || !streq(in->state, "running") || !streq(instance_id, c->instance_id))
                return false;
        if (role->pool) {
                const cloud_pool *pool = cloud_find_pool(c->s->cloud, in->pool);
                if (!pool || !streq(pool->name, role->pool))
                        return false;
        }
        if (role->security_group && !cloud_instance_has_security_group(in, role->security_group))
                return false;
        return true;
}

static json_t *token_policies(json_t *entry) {
        json_t *l = json_array(), *p;
        size_t i;
        json_array_append_new(l, json_string("default"));
        json_array_foreach(json_object_get(entry, "policies"), i, p)
                json_array_append(l, p);
        return l;
}

static json_t *auth_block(vault_call *c, const char *token, json_t *entry) {
        json_t *policies = token_policies(entry);
        return json_pack("{s:s,s:O,s:O,s:o,s:{s:O,s:O,s:s},s:O,s:b,s:s,s:s,s:b}", "client_token", token,
                         "accessor", json_object_get(entry, "accessor"), "policies", policies,
                         "token_policies", policies, "metadata", "instance_id",
                         json_object_get(entry, "instance_id"), "role", json_object_get(entry, "role"),
                         "zone", c->s->cloud->zone, "lease_duration", json_object_get(entry, "ttl"),
                         "renewable", 1, "entity_id", "", "token_type", "service", "orphan", 1);
}

/* ---- auth endpoints ---- */

static int vault_login(vault_call *c) {
        static const char *const fields[] = { "role", "instance", "zone", NULL };
        _cleanup_secret_ char *token = NULL;
        const char *role_name, *instance;
        json_t *entry;
        int64_t ttl;
        int r;

        if ((r = check_fields(c, fields)) < 0)
                return r;
        if ((r = field_string(c, "role", &role_name)) != 0 || (r = field_string(c, "instance", &instance)) != 0)
                return r < 0 ? r : 0;
        if (!role_name)
                return fail(c, 400, "missing field: role");
        if (!instance)
                return fail(c, 400, "missing field: instance");
        const cloud_vault_role *role = cloud_find_role(c->s->cloud, role_name);
        if (!role)
                return failf(c, 400, "role \"%s\" not found", role_name);
        if (!instance_passes_role(c, role, instance)) {
                log_info("vault: login as role %s for instance %s through %s's port denied", role_name,
                         instance, c->instance_id);
                return fail_denied(c);
        }
        if ((r = token_ttl(c, role, 0, c->now, &ttl)) != 0)
                return r < 0 ? r : 0;
        r = vault_store_token_create(c->s->vault, instance, role_name, role->policies, ttl, c->now,
                                     &token, &entry);
        if (r < 0)
                return r;
        log_info("vault: instance %s logged in as role %s", instance, role_name);
        return reply(c, NULL, auth_block(c, token, entry));
}

static int vault_renew_self(vault_call *c) {
        static const char *const fields[] = { "increment", NULL };
        const char *role_name = json_string_value(json_object_get(c->token_entry, "role"));
        const char *instance = json_string_value(json_object_get(c->token_entry, "instance_id"));
        const cloud_vault_role *role = cloud_find_role(c->s->cloud, role_name);
        json_t *increment_field = json_object_get(c->body, "increment"), *entry;
        int64_t increment = 0, issue = c->now, ttl;
        int r;

        if ((r = check_fields(c, fields)) < 0)
                return r;
        /* Vault's increment is a duration: seconds, or "1h" and the like. */
        if (increment_field && parse_duration(increment_field, &increment) < 0)
                return fail(c, 400, "invalid increment");
        /* Like the Exoscale plugin: renewal re-runs the login checks. */
        if (!role || !instance_passes_role(c, role, instance))
                return fail_denied(c);
        (void) json_path_i64(c->token_entry, "issue_time", &issue);
        if ((r = token_ttl(c, role, increment, issue, &ttl)) != 0)
                return r < 0 ? r : 0;
        r = vault_store_token_renew(c->s->vault, c->token, ttl, c->now, &entry);
        if (r == -ENOENT)
                return fail(c, 403, INVALID_TOKEN);
        if (r < 0)
                return r;
        return reply(c, NULL, auth_block(c, c->token, entry));
}

static int vault_lookup_self(vault_call *c) {
        json_t *e = c->token_entry;
        int64_t issue = 0, expire = 0, ttl = 0;
        char issued[32], expires[32];
        struct tm tm;

        (void) json_path_i64(e, "issue_time", &issue);
        (void) json_path_i64(e, "expire_time", &expire);
        (void) json_path_i64(e, "ttl", &ttl);
        strftime(issued, sizeof(issued), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&(time_t){ issue }, &tm));
        strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&(time_t){ expire }, &tm));
        return reply(c,
                     json_pack("{s:O,s:I,s:I,s:s,s:i,s:s,s:s,s:{s:O,s:O},s:i,s:b,s:s,s:o,s:b,s:I,s:s}",
                               "accessor", json_object_get(e, "accessor"), "creation_time", (json_int_t) issue,
                               "creation_ttl", (json_int_t) ttl, "expire_time", expires,
                               "explicit_max_ttl", 0, "id", c->token, "issue_time", issued, "meta",
                               "instance_id", json_object_get(e, "instance_id"), "role",
                               json_object_get(e, "role"), "num_uses", 0, "orphan", 1, "path",
                               "auth/exoscale/login", "policies", token_policies(e), "renewable", 1,
                               "ttl", (json_int_t) (expire - c->now), "type", "service"),
                     NULL);
}

static int vault_revoke_self(vault_call *c) {
        int r = vault_store_token_revoke(c->s->vault, c->token);
        if (r < 0 && r != -ENOENT)
                return r;
        c->resp->status = 204;
        buf_clear(&c->resp->body);
        return 0;
}

/* Vault's parseutil.ParseBool (Go's strconv.ParseBool). Returns 0/1, or -EINVAL. */
static int parse_go_bool(const char *s) {
        static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
        static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (streq(s, yes[i]))
                        return 1;
                if (streq(s, no[i]))
                        return 0;
        }
        return -EINVAL;
}

/* sys/health's query parameters (http/sys_health.go): the *ok flags must be booleans, the
 * *code ones integers, else 400 with an empty errors list. This node is always initialized,
 * unsealed and active, so activecode is the status. */
static int vault_health(vault_call *c) {
        static const char *const flags[] = { "standbyok", "perfstandbyok" };
        static const char *const codes[] = { "uninitcode", "sealedcode", "standbycode", "activecode",
                                             "drsecondarycode", "performancestandbycode" };
        int status = 200;

        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                _cleanup_free_ char *v = http_server_query_param(c->req, flags[i]);
                if (v && parse_go_bool(v) < 0)
                        return serve_reply_json(c->resp, 400, json_pack("{s:[]}", "errors"));
        }
        for (size_t i = 0; i < ELEMENTSOF(codes); i++) {
                _cleanup_free_ char *v = http_server_query_param(c->req, codes[i]);
                char *end;
                if (!v)
                        continue;
                errno = 0;
                long code = strtol(v, &end, 10);
                if (errno || end == v || *end || code < 100 || code > 599)
                        return serve_reply_json(c->resp, 400, json_pack("{s:[]}", "errors"));
                if (streq(codes[i], "activecode"))
                        status = (int) code;
        }
        return serve_reply_json(c->resp, status,
                                json_pack("{s:b,s:b,s:b,s:b,s:s,s:s,s:I,s:s,s:s,s:s}", "initialized", 1,
                                          "sealed", 0, "standby", 0, "performance_standby", 0,
                                          "replication_performance_mode", "disabled",
                                          "replication_dr_mode", "disabled", "server_time_utc",
                                          (json_int_t) c->now, "version", VAULT_VERSION,
                                          "cluster_name", VAULT_CLUSTER_NAME, "cluster_id", VAULT_CLUSTER_ID));
}

/* sys/seal-status (unauthenticated): an unsealed single-key shamir seal. */
static int vault_seal_status(vault_call *c) {
        return serve_reply_json(c->resp, 200,
                                json_pack("{s:s,s:b,s:b,s:i,s:i,s:i,s:s,s:s,s:s,s:b,s:s,s:s,s:b,s:s}",
                                          "type", "shamir", "initialized", 1, "sealed", 0, "t", 1, "n", 1,
                                          "progress", 0, "nonce", "", "version", VAULT_VERSION,
                                          "build_date", "2023-09-22T16:53:10Z", "migration", 0,
                                          "cluster_name", VAULT_CLUSTER_NAME, "cluster_id", VAULT_CLUSTER_ID,
                                          "recovery_seal", 0, "storage_type", "file"));
}

/* ---- KV v2 ---- */

/* Secret paths are plain keys, but "a/../b" would read like a traversal in policies and logs:
 * refuse empty, "." and ".." segments. */
static bool kv_path_ok(const char *p) {
        _cleanup_strv_free_ char **parts = NULL;
        size_t n = strlen(p);

        if (n == 0 || p[0] == '/' || p[n - 1] == '/' || strstr(p, "//") || strv_split(p, "/", &parts) < 0)
                return false;
        for (char **s = parts; *s; s++)
                if (streq(*s, ".") || streq(*s, ".."))
                        return false;
        return true;
}

static json_t *kv_version_metadata(json_t *entry, int64_t version) {
        return json_pack("{s:O,s:n,s:O,s:O,s:I}", "created_time", json_object_get(entry, "created_time"),
                         "custom_metadata", "deletion_time", json_object_get(entry, "deletion_time"),
                         "destroyed", json_object_get(entry, "destroyed"), "version", (json_int_t) version);
}

static bool kv_entry_deleted(json_t *entry) {
        return !streq(strempty(json_string_value(json_object_get(entry, "deletion_time"))), "") ||
               json_is_true(json_object_get(entry, "destroyed"));
}

/* The version number a read of version (0: current) resolves to. */
static int64_t kv_resolve_version(vault_call *c, int64_t version) {
        json_t *meta;
        int64_t v = version;
        if (v == 0 && vault_store_kv_metadata(c->s->vault, c->rest, &meta) >= 0) {
                (void) json_path_i64(meta, "current_version", &v);
                json_decref(meta);
        }
        return v;
}

static int vault_kv_read(vault_call *c) {
        _cleanup_free_ char *version_text = http_server_query_param(c->req, "version");
        int64_t version = 0;
        json_t *entry;

        if (!kv_path_ok(c->rest))
                return fail(c, 400, "invalid secret path");
        if (version_text) {
                char *end;
                errno = 0;
                long long v = strtoll(version_text, &end, 10);
                if (errno || end == version_text || *end || v < 0)
                        return fail(c, 400, "version must be a non-negative integer");
                version = v;
        }
        if (vault_store_kv_read(c->s->vault, c->rest, version, &entry) < 0)
                return serve_reply_json(c->resp, 404, json_pack("{s:[]}", "errors"));
        int64_t v = kv_resolve_version(c, version);
        json_t *meta = kv_version_metadata(entry, v);
        if (kv_entry_deleted(entry)) {
                /* Vault answers a deleted version with 404 and the envelope: data null, metadata
                 * saying when it was deleted. */
                int r = reply(c, json_pack("{s:n,s:o}", "data", "metadata", meta), NULL);
                c->resp->status = 404;
                return r;
        }
        return reply(c, json_pack("{s:O,s:o}", "data", json_object_get(entry, "data"), "metadata", meta), NULL);
}

/* options.cas: -1 when absent. Returns 0, or replied 400 (> 0). */
static int kv_options_cas(vault_call *c, int64_t *ret) {
        json_t *options = json_object_get(c->body, "options"), *v;
        const char *key;

        *ret = -1;
        if (options && !json_is_object(options))
                return replied(fail(c, 400, "options must be an object"));
        json_object_foreach(options, key, v) {
                if (!streq(key, "cas"))
                        return replied(failf(c, 400, "unknown option: %s", key));
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                        return replied(fail(c, 400, "cas must be a non-negative integer"));
                *ret = json_integer_value(v);
        }
        return 0;
}

static int kv_store(vault_call *c, json_t *data, int64_t cas) {
        json_t *meta;
        int r = vault_store_kv_write(c->s->vault, c->rest, data, cas, c->now, &meta);
        if (r == -ESTALE)
                return fail(c, 400, "check-and-set parameter did not match the current version");
        if (r < 0)
                return r;
        return reply(c, meta, NULL);
}

static int vault_kv_write(vault_call *c) {
        static const char *const fields[] = { "data", "options", "version", NULL };
        json_t *data = json_object_get(c->body, "data");
        int64_t cas;
        int r;

        if ((r = check_fields(c, fields)) < 0)
                return r;
        if (!kv_path_ok(c->rest))
                return fail(c, 400, "invalid secret path");
        if (!json_is_object(data))
                return fail(c, 400, "no data provided");
        if ((r = kv_options_cas(c, &cas)) != 0)
                return r < 0 ? r : 0;
        return kv_store(c, data, cas);
}

/* RFC 7396 JSON merge patch of patch onto target (both objects): a null removes the key,
 * objects merge recursively, anything else replaces. Returns a new object or NULL. */
static json_t *merge_patch(json_t *target, json_t *patch) {
        json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object(), *v;
        const char *key;

        if (!out)
                return NULL;
        json_object_foreach(patch, key, v) {
                json_t *merged;
                if (json_is_null(v)) {
                        (void) json_object_del(out, key);
                        continue;
                }
                merged = json_is_object(v) ? merge_patch(json_object_get(out, key), v) : json_deep_copy(v);
                if (!merged || json_object_set_new(out, key, merged) < 0) {
                        json_decref(out);
                        return NULL;
                }
        }
        return out;
}

/* PATCH secret/data/x: merge the data into the current version and write it as a new one. Vault
 * wants the merge-patch media type, and a live current version to patch. */
static int vault_kv_patch(vault_call *c) {
        static const char *const fields[] = { "data", "options", NULL };
        const char *type = http_server_request_header(c->req, "content-type");
        json_t *data = json_object_get(c->body, "data"), *entry;
        _cleanup_json_ json_t *merged = NULL;
        _cleanup_free_ char *media = NULL;
        int64_t cas;
        int r;

        media = strndup(strempty(type), strcspn(strempty(type), "; \t"));
        if (!media)
                return -ENOMEM;
        if (strcasecmp(media, "application/merge-patch+json") != 0)
                return failf(c, 415, "PATCH requires Content-Type of application/merge-patch+json, got \"%s\"", media);
        if ((r = check_fields(c, fields)) < 0)
                return r;
        if (!kv_path_ok(c->rest))
                return fail(c, 400, "invalid secret path");
        if (!json_is_object(data))
                return fail(c, 400, "no data provided");
        if ((r = kv_options_cas(c, &cas)) != 0)
                return r < 0 ? r : 0;
        if (vault_store_kv_read(c->s->vault, c->rest, 0, &entry) < 0 || kv_entry_deleted(entry))
                return serve_reply_json(c->resp, 404, json_pack("{s:[]}", "errors"));
        if (!(merged = merge_patch(json_object_get(entry, "data"), data)))
                return -ENOMEM;
        return kv_store(c, merged, cas);
}

/* DELETE secret/data/x: soft delete of the current version; 204 whether or not it existed. */
static int vault_kv_delete(vault_call *c) {
        if (!kv_path_ok(c->rest))
                return fail(c, 400, "invalid secret path");
        int r = vault_store_kv_delete(c->s->vault, c->rest, c->now);
        if (r < 0 && r != -ENOENT)
                return r;
        c->resp->status = 204;
        buf_clear(&c->resp->body);
        return 0;
}

static int vault_kv_metadata(vault_call *c) {
        json_t *meta;
        if (!kv_path_ok(c->rest))
                return fail(c, 400, "invalid secret path");
        if (vault_store_kv_metadata(c->s->vault, c->rest, &meta) < 0)
                return serve_reply_json(c->resp, 404, json_pack("{s:[]}", "errors"));
        return reply(c, meta, NULL);
}

/* DELETE secret/metadata/x: the secret and all its versions go; 204 either way. */
static int vault_kv_metadata_delete(vault_call *c) {
        if (!kv_path_ok(c->rest))
                return fail(c, 400, "invalid secret path");
        int r = vault_store_kv_destroy(c->s->vault, c->rest);
        if (r < 0 && r != -ENOENT)
                return r;
        c->resp->status = 204;
        buf_clear(&c->resp->body);
        return 0;
}

/* LIST secret/metadata/prefix/ (the router added the trailing '/', as Vault does). */
static int vault_kv_list(vault_call *c) {
        size_t n = strlen(c->rest);
        json_t *keys;

        if (n > 0) {
                _cleanup_free_ char *dir = strndup(c->rest, n - 1);
                if (!dir)
                        return -ENOMEM;
                if (!kv_path_ok(dir))
                        return fail(c, 400, "invalid secret path");
        }
        int r = vault_store_kv_list(c->s->vault, c->rest, &keys);
        if (r == -ENOENT)
                return serve_reply_json(c->resp, 404, json_pack("{s:[]}", "errors"));
        if (r < 0)
                return r;
        return reply(c, json_pack("{s:o}", "keys", keys), NULL);
}

/* ---- PKI ---- */

static bool is_hostname(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || strstr(s, ".."))
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && *s != '-' && *s != '.' && *s != '*')
                        return false;
        return true;
}

static bool name_allowed(const cloud_pki_role *role, const char *name) {
        json_t *d;
        size_t i;

        if (role->allow_any_name)
                return true;
        json_array_foreach(role->allowed_domains, i, d) {
                const char *domain = json_string_value(d);
                size_t nl = strlen(name), dl = strlen(domain);
                if (role->allow_bare_domains && streq(name, domain))
                        return true;
                if (role->allow_subdomains && nl > dl + 1 && name[nl - dl - 1] == '.' &&
                    streq(name + nl - dl, domain))
                        return true;
        }
        return false;
}

static bool is_ip(const char *s) {
        unsigned char a[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* Vault's allowed_uri_sans globs (ryanuber/go-glob): '*' matches any run of bytes, nothing
 * else is special. */
static bool star_glob(const char *glob, const char *s) {
        if (!*glob)
                return !*s;
        if (*glob == '*') {
                for (const char *p = s;; p++) {
                        if (star_glob(glob + 1, p))
                                return true;
                        if (!*p)
                                return false;
                }
        }
        return *s == *glob && star_glob(glob + 1, s + 1);
}

static bool uri_allowed(const cloud_pki_role *role, const char *uri) {
        json_t *g;
        size_t i;
        json_array_foreach(role->allowed_uri_sans, i, g)
                if (star_glob(json_string_value(g), uri))
                        return true;
        return false;
}

/* not_after as Vault takes it: RFC 3339 in UTC, "2025-01-02T03:04:05Z". Returns 0 or -EINVAL. */
static int parse_not_after(const char *s, time_t *ret) {
        struct tm tm = {};
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end)
                return -EINVAL;
        *ret = timegm(&tm);
        return 0;
}

/* What an issue or sign request asks for, beyond the names. */
typedef struct pki_names {
        const char *cn;
        char **dns, **ips, **uris;
        char **organization;  /* the role's, as Vault's role field "organization" */
} pki_names;

static void pki_names_done(pki_names *n) {
        strv_free(n->dns);
        strv_free(n->ips);
        strv_free(n->uris);
        strv_free(n->organization);
}

/* The name fields common to issue and sign; fields Vault knows but this role model has no
 * room for are refused as a role without them refuses them. Returns 0, replied (> 0). */
static int pki_fields(vault_call *c, pki_names *n) {
        _cleanup_strv_free_ char **other = NULL, **user_ids = NULL;
        const char *issuer;
        int r;

        if ((r = field_string(c, "common_name", &n->cn)) != 0 || (r = field_list(c, "alt_names", &n->dns)) != 0 ||
            (r = field_list(c, "ip_sans", &n->ips)) != 0 || (r = field_list(c, "uri_sans", &n->uris)) != 0 ||
            (r = field_list(c, "other_sans", &other)) != 0 || (r = field_list(c, "user_ids", &user_ids)) != 0 ||
            (r = field_string(c, "issuer_ref", &issuer)) != 0)
                return r;
        if (other[0])
                return replied(failf(c, 400, "other_sans %s not allowed by this role", other[0]));
        if (user_ids[0])
                return replied(failf(c, 400, "user_id %s is not allowed by this role", user_ids[0]));
        if (issuer && *issuer && !streq(issuer, "default"))
                return replied(failf(c, 400, "unable to find PKI issuer for reference: %s", issuer));
        return 0;
}

/* Check the requested names and TTL against the role and fill req. Returns 0, replied (> 0). */
static int pki_check(vault_call *c, const cloud_pki_role *role, pki_names *n, localpki_request *req) {
        json_t *ttl_field = json_object_get(c->body, "ttl");
        const char *cn = n->cn, *not_after_text;
        int64_t ttl = 0;
        int r;

        if (!cn || !*cn)
                return replied(fail(c, 400, "the common_name field is required"));
        if (strlen(cn) > 64 || !name_allowed(role, cn))
                return replied(failf(c, 400, "common name %s not allowed by this role", cn));
        for (char **d = n->dns; *d; d++)
                if (!is_hostname(*d) || !name_allowed(role, *d))
                        return replied(failf(c, 400, "subject alternate name %s not allowed by this role", *d));
        if (n->ips[0] && !role->allow_ip_sans)
                return replied(fail(c, 400, "IP Subject Alternative Names are not allowed in this role"));
        for (char **d = n->ips; *d; d++)
                if (!is_ip(*d))
                        return replied(failf(c, 400, "the value %s is not a valid IP address", *d));
        for (char **d = n->uris; *d; d++)
                if (!uri_allowed(role, *d))
                        return replied(failf(c, 400, "URI Subject Alternative Names are not allowed in this role, but was provided %s", *d));
        if ((r = field_string(c, "not_after", &not_after_text)) != 0)
                return r;
        if (ttl_field && parse_duration(ttl_field, &ttl) < 0)
                return replied(fail(c, 400, "invalid ttl"));
        if (not_after_text) {
                /* Vault: not_after is taken as given (the role's max_ttl does not cap it). */
                time_t not_after;
                if (ttl > 0)
                        return replied(fail(c, 400, "Either ttl or not_after should be provided. Both should not be provided in the same request."));
                if (parse_not_after(not_after_text, &not_after) < 0)
                        return replied(failf(c, 400, "parsing time \"%s\": not in the form 2006-01-02T15:04:05Z", not_after_text));
                if (not_after <= c->now)
                        return replied(failf(c, 400, "not_after %s is in the past", not_after_text));
                ttl = not_after - c->now;
        } else {
                if (ttl == 0)
                        ttl = role->max_ttl;
                if (ttl > role->max_ttl) {
                        /* Vault caps the TTL at the role's max_ttl and says so. */
                        char a[32], b[32];
                        human_duration(ttl, a);
                        human_duration(role->max_ttl, b);
                        if ((r = warn(c, "TTL \"%s\" is longer than permitted maxTTL \"%s\", so maxTTL is being used", a, b)) < 0)
                                return r;
                        ttl = role->max_ttl;
                }
        }
        /* The subject's O comes from the role, never from the request or the CSR (Vault's sign and
         * issue; only sign-verbatim keeps a CSR's subject). */
        json_t *o;
        size_t i;
        json_array_foreach(role->organization, i, o)
                if ((r = strv_push(&n->organization, json_string_value(o))) < 0)
                        return r;
        /* The CN goes into the DNS SANs too when it is a host name, as Vault does. */
        if (!json_is_true(json_object_get(c->body, "exclude_cn_from_sans")) && is_hostname(cn) &&
            !strv_contains(n->dns, cn) && (r = strv_push(&n->dns, cn)) < 0)
                return r;
        *req = (localpki_request){ .common_name = cn, .dns_names = n->dns, .ip_addresses = n->ips,
                                   .uris = n->uris, .organization = n->organization, .ttl = ttl };
        return 0;
}

typedef enum pki_format { PKI_PEM, PKI_DER, PKI_PEM_BUNDLE } pki_format;

/* format (pem, der, pem_bundle) and private_key_format (der, pem: the traditional format;
 * pkcs8). Returns 0, replied (> 0). */
static int pki_format_get(vault_call *c, pki_format *ret_format, bool *ret_pkcs8) {
        const char *format, *key_format;
        int r;
        if ((r = field_string(c, "format", &format)) != 0 || (r = field_string(c, "private_key_format", &key_format)) != 0)
                return r;
        if (!format || !*format || streq(format, "pem"))
                *ret_format = PKI_PEM;
        else if (streq(format, "der"))
                *ret_format = PKI_DER;
        else if (streq(format, "pem_bundle"))
                *ret_format = PKI_PEM_BUNDLE;
        else
                return replied(failf(c, 400, "unknown format: %s", format));
        if (key_format && *key_format && !streq(key_format, "der") && !streq(key_format, "pem") &&
            !streq(key_format, "pkcs8"))
                return replied(failf(c, 400, "unknown private_key_format: %s", key_format));
        *ret_pkcs8 = key_format && streq(key_format, "pkcs8");
        return 0;
}

/* format=der: the base64 body of a PEM block is the base64 of its DER, so drop the armour and
 * the line breaks. Returns a new string or NULL. */
static char *pem_to_der_base64(const char *pem) {
        const char *p = strstr(pem, "-----\n"), *end = p ? strstr(p, "\n-----END") : NULL;
        if (!end)
                return NULL;
        p += 6;
        char *out = malloc((size_t) (end - p) + 1), *o = out;
        if (!out)
                return NULL;
        for (; p < end; p++)
                if (*p != '\n' && *p != '\r')
                        *o++ = *p;
        *o = 0;
        return out;
}

static json_t *encoded(pki_format format, const char *pem) {
        if (format != PKI_DER)
                return json_string(pem);
        _cleanup_free_ char *b64 = pem_to_der_base64(pem);
        return b64 ? json_string(b64) : NULL;
}

/* key_pem: the issued private key (NULL for sign); with pem_bundle it goes in front of the
 * certificate, as Vault's ToPEMBundle() does (the CA, a self-signed root, is left out). */
static json_t *cert_data(vault_call *c, const localpki_cert *cert, pki_format format, const char *key_pem) {
        const char *ca = localpki_ca_pem(c->s->pki);
        json_t *chain = json_array(), *data;
        _cleanup_free_ char *bundle = NULL;

        /* remove_roots_from_chain: our CA is a self-signed root. */
        if (chain && !json_is_true(json_object_get(c->body, "remove_roots_from_chain")))
                json_array_append_new(chain, encoded(format, ca));
        if (format == PKI_PEM_BUNDLE &&
            asprintf(&bundle, "%s%s%s", key_pem ? key_pem : "", key_pem ? "\n" : "", cert->certificate) < 0)
                bundle = NULL;
        if (format == PKI_PEM_BUNDLE && !bundle) {
                json_decref(chain);
                return NULL;
        }
        data = json_pack("{s:o,s:o,s:o,s:s,s:I}", "certificate",
                         bundle ? json_string(bundle) : encoded(format, cert->certificate), "issuing_ca",
                         encoded(format, ca), "ca_chain", chain, "serial_number", cert->serial_number,
                         "expiration", (json_int_t) cert->expiration);
        if (bundle)
                explicit_bzero(bundle, strlen(bundle));
        return data;
}

static int vault_pki_issue(vault_call *c) {
        static const char *const fields[] = { "common_name", "alt_names", "ip_sans", "uri_sans", "other_sans",
                                              "ttl", "not_after", "format", "private_key_format",
                                              "exclude_cn_from_sans", "remove_roots_from_chain", "user_ids",
                                              "issuer_ref", "serial_number", "cert_metadata", NULL };
        _cleanup_(pki_names_done) pki_names names = {};
        _cleanup_secret_ char *key_pem = NULL, *key_out = NULL;
        _cleanup_(localpki_cert_done) localpki_cert cert = {};
        EVP_PKEY *key = NULL;
        localpki_request req;
        pki_format format;
        bool pkcs8;
        int r;

        const cloud_pki_role *role = cloud_find_pki_role(c->s->cloud, c->rest);
        if (!role)
                return failf(c, 400, "unknown role: %s", c->rest);
        if ((r = check_fields(c, fields)) < 0)
                return r;
        if ((r = pki_format_get(c, &format, &pkcs8)) != 0 || (r = pki_fields(c, &names)) != 0 ||
            (r = pki_check(c, role, &names, &req)) != 0)
                return r < 0 ? r : 0;

        r = localpki_generate_key(&key);
        if (r >= 0)
                r = localpki_issue(c->s->pki, &req, key, c->now, &cert);
        if (r >= 0)
                r = pkcs8 ? localpki_private_key_pkcs8_pem(key, &key_pem) : localpki_private_key_pem(key, &key_pem);
        EVP_PKEY_free(key);
        if (r < 0)
                return r;
        if (format == PKI_DER && !(key_out = pem_to_der_base64(key_pem)))
                return -ENOMEM;
        json_t *data = cert_data(c, &cert, format, key_pem);
        if (data) {
                json_object_set_new(data, "private_key", json_string(key_out ? key_out : key_pem));
                json_object_set_new(data, "private_key_type", json_string("ec"));
        }
        log_info("vault: issued certificate %s for %s (instance %s)", cert.serial_number, names.cn, c->instance_id);
        return reply(c, data, NULL);
}

static void x509_req_freep(X509_REQ **r) { X509_REQ_free(*r); }

static int vault_pki_sign(vault_call *c) {
        static const char *const fields[] = { "csr", "common_name", "alt_names", "ip_sans", "uri_sans",
                                              "other_sans", "ttl", "not_after", "format",
                                              "private_key_format", "exclude_cn_from_sans",
                                              "remove_roots_from_chain", "user_ids", "issuer_ref",
                                              "serial_number", "cert_metadata", NULL };
        _cleanup_(pki_names_done) pki_names names = {};
        _cleanup_strv_free_ char **csr_dns = NULL, **csr_ips = NULL;
        _cleanup_free_ char *csr_cn = NULL;
        _cleanup_(x509_req_freep) X509_REQ *csr = NULL;
        _cleanup_(localpki_cert_done) localpki_cert cert = {};
        localpki_request req;
        const char *csr_pem;
        pki_format format;
        bool pkcs8;
        int r;

        const cloud_pki_role *role = cloud_find_pki_role(c->s->cloud, c->rest);
        if (!role)
                return failf(c, 400, "unknown role: %s", c->rest);
        if ((r = check_fields(c, fields)) < 0)
                return r;
        if ((r = pki_format_get(c, &format, &pkcs8)) != 0 || (r = field_string(c, "csr", &csr_pem)) != 0 ||
            (r = pki_fields(c, &names)) != 0)
                return r < 0 ? r : 0;
        if (!csr_pem)
                return fail(c, 400, "missing field: csr");
        if (localpki_parse_csr(csr_pem, &csr) < 0)
                return fail(c, 400, "certificate request could not be parsed or its signature is invalid");
        if ((r = localpki_csr_names(csr, &csr_cn, &csr_dns, &csr_ips)) == -EBADMSG)
                return fail(c, 400, "certificate request has malformed names");
        if (r < 0)
                return r;
        /* Vault's defaults use_csr_common_name and use_csr_sans: the CSR's names count. */
        if (csr_cn)
                names.cn = csr_cn;
        for (char **n = csr_dns; *n; n++)
                if (!strv_contains(names.dns, *n) && (r = strv_push(&names.dns, *n)) < 0)
                        return r;
        for (char **n = csr_ips; *n; n++)
                if (!strv_contains(names.ips, *n) && (r = strv_push(&names.ips, *n)) < 0)
                        return r;
        if ((r = pki_check(c, role, &names, &req)) != 0)
                return r < 0 ? r : 0;

        r = localpki_issue(c->s->pki, &req, X509_REQ_get0_pubkey(csr), c->now, &cert);
        if (r < 0)
                return r;
        log_info("vault: signed certificate %s for %s (instance %s)", cert.serial_number, names.cn, c->instance_id);
        return reply(c, cert_data(c, &cert, format, NULL), NULL);
}

static int vault_ca_pem(vault_call *c) {
        c->resp->status = 200;
        c->resp->content_type = "application/pem-x509-file";
        buf_clear(&c->resp->body);
        return buf_puts(&c->resp->body, localpki_ca_pem(c->s->pki));
}

/* ---- routing ---- */

typedef int (*vault_route_fn)(vault_call *c);

/* A prefix ending in '/' matches paths below it (the remainder is c->rest; empty only for LIST,
 * which lists the top); others are exact. capability: checked against the request path for
 * routes that touch secrets; "write" means create or update depending on whether the secret
 * exists. Methods are Vault's operations: PUT is POST, HEAD is GET, GET ?list=true is LIST. */
static const struct vault_route {
        const char *method;
        const char *prefix;
        bool needs_token;
        const char *capability;
        vault_route_fn fn;
} vault_routes[] = {
        { "GET", "sys/health", false, NULL, vault_health },
        { "GET", "sys/seal-status", false, NULL, vault_seal_status },
        { "POST", "auth/exoscale/login", false, NULL, vault_login },
        { "POST", "auth/token/renew-self", true, NULL, vault_renew_self },
        { "GET", "auth/token/lookup-self", true, NULL, vault_lookup_self },
        { "POST", "auth/token/revoke-self", true, NULL, vault_revoke_self },
        { "GET", "pki/ca/pem", false, NULL, vault_ca_pem },
        { "POST", "pki/issue/", true, "update", vault_pki_issue },
        { "POST", "pki/sign/", true, "update", vault_pki_sign },
        { "GET", "secret/data/", true, "read", vault_kv_read },
        { "POST", "secret/data/", true, "write", vault_kv_write },
        { "PATCH", "secret/data/", true, "patch", vault_kv_patch },
        { "DELETE", "secret/data/", true, "delete", vault_kv_delete },
        { "GET", "secret/metadata/", true, "read", vault_kv_metadata },
        { "DELETE", "secret/metadata/", true, "delete", vault_kv_metadata_delete },
        { "LIST", "secret/metadata/", true, "list", vault_kv_list },
};

static const char *route_match(const struct vault_route *r, const char *method, const char *path) {
        size_t n = strlen(r->prefix);
        if (r->prefix[n - 1] == '/')
                return strneq(path, r->prefix, n) && (path[n] || streq(method, "LIST")) ? path + n : NULL;
        return streq(path, r->prefix) ? path + n : NULL;
}

/* Authenticate the caller and check the route's capability. Returns 0 to go on, > 0 replied. */
static int authorize(vault_call *c, const struct vault_route *route) {
        const char *capability = route->capability;

        c->token = request_token(c->req);
        if (!c->token || !*c->token)
                return replied(fail(c, 403, MISSING_TOKEN));
        if (vault_store_token_lookup(c->s->vault, c->token, c->now, &c->token_entry) < 0)
                return replied(fail(c, 403, INVALID_TOKEN));
        /* A token only works through its own instance's listener; elsewhere it does not exist. */
        if (!streq(json_string_value(json_object_get(c->token_entry, "instance_id")), c->instance_id))
                return replied(fail(c, 403, INVALID_TOKEN));
        if (!capability)
                return 0;
        if (streq(capability, "write"))
                capability = vault_store_kv_exists(c->s->vault, c->rest) ? "update" : "create";
        if (!acl_allows(c->s->cloud, json_object_get(c->token_entry, "policies"), c->path, capability)) {
                log_info("vault: instance %s denied %s on %s", c->instance_id, capability, c->path);
                return replied(fail_acl(c));
        }
        return 0;
}

static int parse_body(vault_call *c, json_t **ret) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        json_t *j;

        if (c->req->body_len == 0) {
                *ret = json_object();
                return *ret ? 0 : -ENOMEM;
        }
        if (json_parse(c->req->body, c->req->body_len, &j, &err) < 0)
                return replied(failf(c, 400, "failed to parse JSON input: %s", err.data));
        if (!json_is_object(j)) {
                json_decref(j);
                return replied(fail(c, 400, "JSON input must be an object"));
        }
        *ret = j;
        return 0;
}

/* The operation Vault makes of the HTTP method (http/logical.go). Returns NULL for none. */
static const char *vault_operation(const http_server_request *req) {
        if (streq(req->method, "PUT") || streq(req->method, "POST"))
                return "POST";
        if (streq(req->method, "GET") || streq(req->method, "HEAD")) {
                _cleanup_free_ char *list = http_server_query_param(req, "list");
                return list && parse_go_bool(list) == 1 ? "LIST" : "GET";
        }
        if (streq(req->method, "LIST") || streq(req->method, "DELETE") || streq(req->method, "PATCH"))
                return req->method;
        return NULL;
}

int serve_vault(const serve_state *s, const char *instance_id, const http_server_request *req, http_server_response *resp) {
        _cleanup_json_ json_t *body = NULL;
        _cleanup_free_ char *list_path = NULL;
        vault_call c = { .s = s, .instance_id = instance_id, .req = req, .resp = resp, .now = s->now() };
        const char *method = vault_operation(req);
        bool path_known = false;
        int r;

        if (!(c.path = startswith(req->path, "/v1/")))
                return fail(&c, 404, "unsupported path");
        /* Vault lists directories: a LIST path always ends in '/'. */
        if (method && streq(method, "LIST") && (!*c.path || c.path[strlen(c.path) - 1] != '/')) {
                if (asprintf(&list_path, "%s/", c.path) < 0)
                        return -ENOMEM;
                c.path = list_path;
        }

        for (size_t i = 0; i < ELEMENTSOF(vault_routes); i++) {
                const struct vault_route *route = &vault_routes[i];
                const char *rest = route_match(route, strempty(method), c.path);
                if (!rest)
                        continue;
                path_known = true;
                if (!method || !streq(route->method, method))
                        continue;
                c.rest = rest;
                if (route->needs_token && (r = authorize(&c, route)) != 0)
                        return r < 0 ? r : 0;
                if ((r = parse_body(&c, &body)) != 0)
                        return r < 0 ? r : 0;
                c.body = body;
                r = route->fn(&c);
                json_decref(c.warnings); /* left when the handler failed before replying */
                return r;
        }
        if (path_known)
                return serve_reply_json(resp, 405, json_pack("{s:[]}", "errors"));
        return failf(&c, 404, "no handler for route \"%s\"", c.path);
}
