/* The Vault-API-compatible service, one listener per instance (/v1): Exoscale auth login bound
 * to the listener's instance, token self-maintenance, KV v2 under secret/, PKI under pki/ with
 * the local CA, sys/health. Wire formats: shared/reference/protocols.md §4-5. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "json.h"
#include "log.h"
#include "serve-service.h"
#include "strv.h"

#define PERMISSION_DENIED "permission denied"

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
        time_t now;
} vault_call;

/* ---- replies ---- */

/* Vault's response envelope around data (stolen, may be NULL), auth (stolen, may be NULL) and
 * warnings (stolen, may be NULL). */
static int reply(vault_call *c, json_t *data, json_t *auth, json_t *warnings) {
        char request_id[UUID_STRING_SIZE];
        random_uuid(request_id);
        return serve_reply_json(c->resp, 200,
                                json_pack("{s:s,s:s,s:b,s:i,s:o?,s:n,s:o?,s:o?}", "request_id", request_id,
                                          "lease_id", "", "renewable", 0, "lease_duration", 0, "data",
                                          data, "wrap_info", "warnings", warnings, "auth", auth));
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

static int fail_denied(vault_call *c) { return fail(c, 403, PERMISSION_DENIED); }

/* For helpers that may answer the request themselves: > 0 means "replied, stop here". */
static int replied(int r) { return r < 0 ? r : 1; }

/* ---- request parsing helpers ---- */

/* Reject fields the endpoint does not know, so typos do not pass silently. */
static int check_fields(vault_call *c, const char *const *allowed) {
        const char *key;
        json_t *v;
        json_object_foreach(c->body, key, v) {
                bool ok = false;
                for (const char *const *a = allowed; *a && !ok; a++)
                        ok = streq(key, *a);
                if (!ok)
                        return replied(failf(c, 400, "unknown field: %s", key));
        }
        return 0;
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
        int r;

        if ((r = check_fields(c, fields)) != 0 || (r = field_string(c, "role", &role_name)) != 0 ||
            (r = field_string(c, "instance", &instance)) != 0)
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
        r = vault_store_token_create(c->s->vault, instance, role_name, role->policies, role->ttl,
                                     c->now, &token, &entry);
        if (r < 0)
                return r;
        log_info("vault: instance %s logged in as role %s", instance, role_name);
        return reply(c, NULL, auth_block(c, token, entry), NULL);
}

static int vault_renew_self(vault_call *c) {
        static const char *const fields[] = { "increment", NULL };
        const char *role_name = json_string_value(json_object_get(c->token_entry, "role"));
        const char *instance = json_string_value(json_object_get(c->token_entry, "instance_id"));
        const cloud_vault_role *role = cloud_find_role(c->s->cloud, role_name);
        json_t *entry;
        int r;

        if ((r = check_fields(c, fields)) != 0)
                return r < 0 ? r : 0;
        /* Like the Exoscale plugin: renewal re-runs the login checks. */
        if (!role || !instance_passes_role(c, role, instance))
                return fail_denied(c);
        r = vault_store_token_renew(c->s->vault, c->token, role->ttl, c->now, &entry);
        if (r == -ENOENT)
                return fail_denied(c);
        if (r < 0)
                return r;
        return reply(c, NULL, auth_block(c, c->token, entry), NULL);
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
                     NULL, NULL);
}

static int vault_revoke_self(vault_call *c) {
        int r = vault_store_token_revoke(c->s->vault, c->token);
        if (r < 0 && r != -ENOENT)
                return r;
        c->resp->status = 204;
        buf_clear(&c->resp->body);
        return 0;
}

static int vault_health(vault_call *c) {
        return serve_reply_json(c->resp, 200,
                                json_pack("{s:b,s:b,s:b,s:b,s:s,s:s,s:I,s:s,s:s,s:s}", "initialized", 1,
                                          "sealed", 0, "standby", 0, "performance_standby", 0,
                                          "replication_performance_mode", "disabled",
                                          "replication_dr_mode", "disabled", "server_time_utc",
                                          (json_int_t) c->now, "version", "1.15.0+imgbuild",
                                          "cluster_name", "imgbuild-local", "cluster_id",
                                          "00000000-0000-4000-8000-000000000000"));
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
        int64_t v = version;
        if (v == 0) {
                json_t *meta;
                if (vault_store_kv_metadata(c->s->vault, c->rest, &meta) >= 0) {
                        (void) json_path_i64(meta, "current_version", &v);
                        json_decref(meta);
                }
        }
        return reply(c,
                     json_pack("{s:O,s:{s:O,s:n,s:O,s:O,s:I}}", "data", json_object_get(entry, "data"),
                               "metadata", "created_time", json_object_get(entry, "created_time"),
                               "custom_metadata", "deletion_time", json_object_get(entry, "deletion_time"),
                               "destroyed", json_object_get(entry, "destroyed"), "version", (json_int_t) v),
                     NULL, NULL);
}

static int vault_kv_write(vault_call *c) {
        static const char *const fields[] = { "data", "options", NULL };
        json_t *data = json_object_get(c->body, "data"), *options = json_object_get(c->body, "options");
        json_t *meta, *cas = NULL;
        const char *key;
        json_t *v;
        int r;

        if ((r = check_fields(c, fields)) != 0)
                return r < 0 ? r : 0;
        if (!kv_path_ok(c->rest))
                return fail(c, 400, "invalid secret path");
        if (!json_is_object(data))
                return fail(c, 400, "no data provided");
        if (options && !json_is_object(options))
                return fail(c, 400, "options must be an object");
        json_object_foreach(options, key, v) {
                if (!streq(key, "cas"))
                        return failf(c, 400, "unknown option: %s", key);
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                        return fail(c, 400, "cas must be a non-negative integer");
                cas = v;
        }
        r = vault_store_kv_write(c->s->vault, c->rest, data, cas ? json_integer_value(cas) : -1, c->now, &meta);
        if (r == -ESTALE)
                return fail(c, 400, "check-and-set parameter did not match the current version");
        if (r < 0)
                return r;
        return reply(c, meta, NULL, NULL);
}

static int vault_kv_metadata(vault_call *c) {
        json_t *meta;
        if (!kv_path_ok(c->rest))
                return fail(c, 400, "invalid secret path");
        if (vault_store_kv_metadata(c->s->vault, c->rest, &meta) < 0)
                return serve_reply_json(c->resp, 404, json_pack("{s:[]}", "errors"));
        return reply(c, meta, NULL, NULL);
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

/* Check the requested names and TTL against the role and fill req. Returns 0, replied (> 0). */
static int pki_check(vault_call *c, const cloud_pki_role *role, const char *cn, char ***dns, char **ips,
                     localpki_request *req, json_t **warnings) {
        json_t *ttl_field = json_object_get(c->body, "ttl");
        int64_t ttl = role->max_ttl;
        int r;

        if (!cn || !*cn)
                return replied(fail(c, 400, "the common_name field is required"));
        if (strlen(cn) > 64 || !name_allowed(role, cn))
                return replied(failf(c, 400, "common name %s not allowed by this role", cn));
        for (char **n = *dns; *n; n++)
                if (!is_hostname(*n) || !name_allowed(role, *n))
                        return replied(failf(c, 400, "subject alternate name %s not allowed by this role", *n));
        if (ips[0] && !role->allow_ip_sans)
                return replied(fail(c, 400, "IP Subject Alternative Names are not allowed in this role"));
        for (char **n = ips; *n; n++)
                if (!is_ip(*n))
                        return replied(failf(c, 400, "the value %s is not a valid IP address", *n));
        if (ttl_field && parse_duration(ttl_field, &ttl) < 0)
                return replied(fail(c, 400, "invalid ttl"));
        if (ttl == 0)
                ttl = role->max_ttl;
        if (ttl > role->max_ttl) {
                /* Vault caps the TTL at the role's max_ttl and says so. */
                *warnings = json_pack("[s]", "TTL is longer than permitted max_ttl, so max_ttl is being used");
                ttl = role->max_ttl;
        }
        /* The CN goes into the DNS SANs too when it is a host name, as Vault does. */
        if (!json_is_true(json_object_get(c->body, "exclude_cn_from_sans")) && is_hostname(cn) &&
            !strv_contains(*dns, cn) && (r = strv_push(dns, cn)) < 0)
                return r;
        *req = (localpki_request){ .common_name = cn, .dns_names = *dns, .ip_addresses = ips, .ttl = ttl };
        return 0;
}

static int pki_format_ok(vault_call *c) {
        const char *format, *key_format;
        int r;
        if ((r = field_string(c, "format", &format)) != 0 || (r = field_string(c, "private_key_format", &key_format)) != 0)
                return r;
        if (format && !streq(format, "pem"))
                return replied(fail(c, 400, "only format pem is supported"));
        if (key_format && !streq(key_format, "der") && !streq(key_format, "pem"))
                return replied(fail(c, 400, "only private_key_format der or pem is supported"));
        return 0;
}

static json_t *cert_data(vault_call *c, const localpki_cert *cert) {
        const char *ca = localpki_ca_pem(c->s->pki);
        return json_pack("{s:s,s:s,s:[s],s:s,s:I}", "certificate", cert->certificate, "issuing_ca", ca,
                         "ca_chain", ca, "serial_number", cert->serial_number, "expiration",
                         (json_int_t) cert->expiration);
}

static int vault_pki_issue(vault_call *c) {
        static const char *const fields[] = { "common_name", "alt_names", "ip_sans", "ttl", "format",
                                              "private_key_format", "exclude_cn_from_sans",
                                              "remove_roots_from_chain", NULL };
        _cleanup_strv_free_ char **dns = NULL, **ips = NULL;
        _cleanup_secret_ char *key_pem = NULL;
        _cleanup_(localpki_cert_done) localpki_cert cert = {};
        json_t *warnings = NULL;
        EVP_PKEY *key = NULL;
        localpki_request req;
        const char *cn;
        int r;

        const cloud_pki_role *role = cloud_find_pki_role(c->s->cloud, c->rest);
        if (!role)
                return failf(c, 400, "unknown role: %s", c->rest);
        if ((r = check_fields(c, fields)) != 0 || (r = pki_format_ok(c)) != 0 ||
            (r = field_string(c, "common_name", &cn)) != 0 || (r = field_list(c, "alt_names", &dns)) != 0 ||
            (r = field_list(c, "ip_sans", &ips)) != 0 || (r = pki_check(c, role, cn, &dns, ips, &req, &warnings)) != 0)
                return r < 0 ? r : 0;

        r = localpki_generate_key(&key);
        if (r >= 0)
                r = localpki_issue(c->s->pki, &req, key, c->now, &cert);
        if (r >= 0)
                r = localpki_private_key_pem(key, &key_pem);
        EVP_PKEY_free(key);
        if (r < 0) {
                json_decref(warnings);
                return r;
        }
        json_t *data = cert_data(c, &cert);
        if (data) {
                json_object_set_new(data, "private_key", json_string(key_pem));
                json_object_set_new(data, "private_key_type", json_string("ec"));
        }
        log_info("vault: issued certificate %s for %s (instance %s)", cert.serial_number, cn, c->instance_id);
        return reply(c, data, NULL, warnings);
}

static void x509_req_freep(X509_REQ **r) { X509_REQ_free(*r); }

static int vault_pki_sign(vault_call *c) {
        static const char *const fields[] = { "csr", "common_name", "alt_names", "ip_sans", "ttl", "format",
                                              "exclude_cn_from_sans", "remove_roots_from_chain", NULL };
        _cleanup_strv_free_ char **dns = NULL, **ips = NULL, **csr_dns = NULL, **csr_ips = NULL;
        _cleanup_free_ char *csr_cn = NULL;
        _cleanup_(x509_req_freep) X509_REQ *csr = NULL;
        _cleanup_(localpki_cert_done) localpki_cert cert = {};
        json_t *warnings = NULL;
        localpki_request req;
        const char *cn, *csr_pem;
        int r;

        const cloud_pki_role *role = cloud_find_pki_role(c->s->cloud, c->rest);
        if (!role)
                return failf(c, 400, "unknown role: %s", c->rest);
        if ((r = check_fields(c, fields)) != 0 || (r = pki_format_ok(c)) != 0 ||
            (r = field_string(c, "csr", &csr_pem)) != 0 || (r = field_string(c, "common_name", &cn)) != 0 ||
            (r = field_list(c, "alt_names", &dns)) != 0 || (r = field_list(c, "ip_sans", &ips)) != 0)
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
                cn = csr_cn;
        for (char **n = csr_dns; *n; n++)
                if (!strv_contains(dns, *n) && (r = strv_push(&dns, *n)) < 0)
                        return r;
        for (char **n = csr_ips; *n; n++)
                if (!strv_contains(ips, *n) && (r = strv_push(&ips, *n)) < 0)
                        return r;
        if ((r = pki_check(c, role, cn, &dns, ips, &req, &warnings)) != 0)
                return r < 0 ? r : 0;

        r = localpki_issue(c->s->pki, &req, X509_REQ_get0_pubkey(csr), c->now, &cert);
        if (r < 0) {
                json_decref(warnings);
                return r;
        }
        log_info("vault: signed certificate %s for %s (instance %s)", cert.serial_number, cn, c->instance_id);
        return reply(c, cert_data(c, &cert), NULL, warnings);
}

static int vault_ca_pem(vault_call *c) {
        c->resp->status = 200;
        c->resp->content_type = "application/pem-x509-file";
        buf_clear(&c->resp->body);
        return buf_puts(&c->resp->body, localpki_ca_pem(c->s->pki));
}

/* ---- routing ---- */

typedef int (*vault_route_fn)(vault_call *c);

/* A prefix ending in '/' matches paths below it (the remainder is c->rest); others are exact.
 * capability: checked against the request path for routes that touch secrets; "write" means
 * create or update depending on whether the secret exists. */
static const struct vault_route {
        const char *method;
        const char *prefix;
        bool needs_token;
        const char *capability;
        vault_route_fn fn;
} vault_routes[] = {
        { "GET", "sys/health", false, NULL, vault_health },
        { "POST", "auth/exoscale/login", false, NULL, vault_login },
        { "POST", "auth/token/renew-self", true, NULL, vault_renew_self },
        { "GET", "auth/token/lookup-self", true, NULL, vault_lookup_self },
        { "POST", "auth/token/revoke-self", true, NULL, vault_revoke_self },
        { "GET", "pki/ca/pem", false, NULL, vault_ca_pem },
        { "POST", "pki/issue/", true, "update", vault_pki_issue },
        { "POST", "pki/sign/", true, "update", vault_pki_sign },
        { "GET", "secret/data/", true, "read", vault_kv_read },
        { "POST", "secret/data/", true, "write", vault_kv_write },
        { "GET", "secret/metadata/", true, "read", vault_kv_metadata },
};

static const char *route_match(const struct vault_route *r, const char *path) {
        size_t n = strlen(r->prefix);
        if (r->prefix[n - 1] == '/')
                return strneq(path, r->prefix, n) && path[n] ? path + n : NULL;
        return streq(path, r->prefix) ? path + n : NULL;
}

/* Authenticate the caller and check the route's capability. Returns 0 to go on, > 0 replied. */
static int authorize(vault_call *c, const struct vault_route *route) {
        const char *capability = route->capability;

        c->token = request_token(c->req);
        if (!c->token || vault_store_token_lookup(c->s->vault, c->token, c->now, &c->token_entry) < 0)
                return replied(fail_denied(c));
        /* A token only works through its own instance's listener. */
        if (!streq(json_string_value(json_object_get(c->token_entry, "instance_id")), c->instance_id))
                return replied(fail_denied(c));
        if (!capability)
                return 0;
        if (streq(capability, "write"))
                capability = vault_store_kv_exists(c->s->vault, c->rest) ? "update" : "create";
        if (!acl_allows(c->s->cloud, json_object_get(c->token_entry, "policies"), c->path, capability)) {
                log_info("vault: instance %s denied %s on %s", c->instance_id, capability, c->path);
                return replied(fail_denied(c));
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

int serve_vault(const serve_state *s, const char *instance_id, const http_server_request *req, http_server_response *resp) {
        _cleanup_json_ json_t *body = NULL;
        vault_call c = { .s = s, .instance_id = instance_id, .req = req, .resp = resp, .now = s->now() };
        const char *method = req->method;
        bool path_known = false;
        int r;

        if (!(c.path = startswith(req->path, "/v1/")))
                return fail(&c, 404, "unsupported path");
        /* PUT and POST are synonyms in Vault; HEAD is answered like GET without a body. */
        if (streq(method, "PUT"))
                method = "POST";
        else if (streq(method, "HEAD"))
                method = "GET";

        for (size_t i = 0; i < ELEMENTSOF(vault_routes); i++) {
                const struct vault_route *route = &vault_routes[i];
                const char *rest = route_match(route, c.path);
                if (!rest)
                        continue;
                path_known = true;
                if (!streq(route->method, method))
                        continue;
                c.rest = rest;
                if (route->needs_token && (r = authorize(&c, route)) != 0)
                        return r < 0 ? r : 0;
                if ((r = parse_body(&c, &body)) != 0)
                        return r < 0 ? r : 0;
                c.body = body;
                return route->fn(&c);
        }
        if (path_known)
                return serve_reply_json(resp, 405, json_pack("{s:[]}", "errors"));
        return failf(&c, 404, "no handler for route \"%s\"", c.path);
}
