/* The Kubernetes API stand-in's REST routes (kube-api.h). Shapes follow what kubectl 1.27-1.33
 * and client-go send and expect (shared/reference/kubernetes-vault.md C): legacy discovery only
 * (the aggregated form is asked for first, and a plain application/json answer makes clients
 * fall back), metav1.Status errors with the reasons client-go maps, Tables for `kubectl get`. */
#include "kube-api.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "crypto.h"
#include "json.h"
#include "kube-auth.h"
#include "kube-proto.h"
#include "kube-store.h"
#include "log.h"
#include "strv.h"

#define KUBE_VERSION_MINOR "31"
#define KUBE_GIT_VERSION "v1.31.0"
#define PATCH_RETRIES 5

/* One request in flight. */
typedef struct call {
        kube_api *api;
        const http_server_request *req;
        http_server_response *resp;
        kube_user user;
        kube_attrs attrs;
        const kube_resource *res;
        char **segments;           /* path segments after /api/v1 */
        time_t now;
        buf err;                   /* etcd errors, for the 500 message */
} call;

static void call_done(call *c) {
        kube_user_done(&c->user);
        strv_free(c->segments);
        buf_free(&c->err);
}

/* ---- replies ---- */

static int reply_json(http_server_response *resp, int code, json_t *j /* stolen */) {
        _cleanup_json_ json_t *ref = j;
        _cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (!text)
                return -ENOMEM;
        resp->status = code;
        resp->content_type = "application/json";
        buf_clear(&resp->body);
        return buf_puts(&resp->body, text);
}

static int reply_text(http_server_response *resp, int code, const char *text) {
        resp->status = code;
        resp->content_type = "text/plain; charset=utf-8";
        buf_clear(&resp->body);
        return buf_puts(&resp->body, text);
}

static int status_details(http_server_response *resp, int code, const char *reason,
                          const char *message, const char *name, const char *kind) {
        json_t *details = NULL;
        if (name || kind) {
                details = json_object();
                if (!details)
                        return -ENOMEM;
                if (name)
                        json_object_set_new(details, "name", json_string(name));
                if (kind)
                        json_object_set_new(details, "kind", json_string(kind));
        }
        return reply_json(resp, code,
                          json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:o*,s:i}", "kind", "Status", "apiVersion",
                                    "v1", "metadata", "status", "Failure", "message", message, "reason",
                                    reason, "details", details, "code", code));
}

int kube_api_status(http_server_response *resp, int code, const char *reason, const char *message) {
        return status_details(resp, code, reason, message, NULL, NULL);
}

_printf_(5, 6) static int failf(call *c, int code, const char *reason, const char *name,
                                const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return status_details(c->resp, code, reason, m, name, c->res ? c->res->name : NULL);
}

/* The reply for a kube-store error on the object name (may be NULL). */
static int fail_store(call *c, int r, const char *name) {
        const char *res = c->res ? c->res->name : "";
        switch (r) {
        case -ENOENT:
                return failf(c, 404, "NotFound", name, "%s \"%s\" not found", res, strempty(name));
        case -EEXIST:
                return failf(c, 409, "AlreadyExists", name, "%s \"%s\" already exists", res, strempty(name));
        case -ESTALE:
                return failf(c, 409, "Conflict", name,
                             "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                             "please apply your changes to the latest version and try again",
                             res, strempty(name));
        case -ENOMEM:
                return r;
        default:
                return failf(c, 500, "InternalError", name, "Internal error occurred: %s",
                             c->err.len ? c->err.data : strerror(-r));
        }
}

/* ---- time ---- */

static void format_time(time_t t, char out[32]) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static time_t parse_time(const char *s) {
        struct tm tm = {};
        const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
        return p && !*p ? timegm(&tm) : (time_t) -1;
}

void kube_api_human_duration(long long s, char out[32]) {
        long long m = s / 60, h = s / 3600, d = h / 24, y = d / 365;
        if (s < -1)
                snprintf(out, 32, "<invalid>");
        else if (s < 0)
                snprintf(out, 32, "0s");
        else if (s < 60 * 2)
                snprintf(out, 32, "%llds", s);
        else if (m < 10) {
                if (s % 60 == 0)
                        snprintf(out, 32, "%lldm", m);
                else
                        snprintf(out, 32, "%lldm%llds", m, s % 60);
        } else if (m < 60 * 3)
                snprintf(out, 32, "%lldm", m);
        else if (h < 8) {
                if (m % 60 == 0)
                        snprintf(out, 32, "%lldh", h);
                else
                        snprintf(out, 32, "%lldh%lldm", h, m % 60);
        } else if (h < 48)
                snprintf(out, 32, "%lldh", h);
        else if (h < 24 * 8) {
                if (h % 24 == 0)
                        snprintf(out, 32, "%lldd", d);
                else
                        snprintf(out, 32, "%lldd%lldh", d, h % 24);
        } else if (h < 24 * 365 * 2)
                snprintf(out, 32, "%lldd", d);
        else if (h < 24 * 365 * 8) {
                if (d % 365 == 0)
                        snprintf(out, 32, "%lldy", y);
                else
                        snprintf(out, 32, "%lldy%lldd", y, d % 365);
        } else
                snprintf(out, 32, "%lldy", y);
}

/* ---- patches ---- */

static const char *merge_key(const char *path) {
        static const struct { const char *path, *key; } keys[] = {
                { "status.conditions", "type" },
                { "status.addresses", "type" },
                { "spec.taints", "key" },
        };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq(path, keys[i].path))
                        return keys[i].key;
        return NULL;
}

static int merge(json_t *target, json_t *patch, bool strategic, const char *path);

static int merge_list(json_t *target_obj, const char *name, json_t *patch_list, const char *key,
                      const char *path) {
        json_t *cur = json_object_get(target_obj, name);
        if (!json_is_array(cur)) {
                cur = json_array();
                if (!cur || json_object_set_new(target_obj, name, cur) < 0)
                        return -ENOMEM;
        }
        size_t i;
        json_t *el;
        json_array_foreach(patch_list, i, el) {
                const char *k = json_string_value(json_object_get(el, key));
                if (!json_is_object(el) || !k)
                        return -EINVAL;
                const char *directive = json_string_value(json_object_get(el, "$patch"));
                size_t j;
                json_t *old;
                bool found = false;
                json_array_foreach(cur, j, old) {
                        const char *ok = json_string_value(json_object_get(old, key));
                        if (ok && streq(ok, k)) {
                                found = true;
                                if (directive && streq(directive, "delete")) {
                                        json_array_remove(cur, j);
                                        break;
                                }
                                int r = merge(old, el, true, path);
                                if (r < 0)
                                        return r;
                                break;
                        }
                }
                if (!found && !(directive && streq(directive, "delete"))) {
                        json_t *n = json_object();
                        if (!n || json_array_append_new(cur, n) < 0)
                                return -ENOMEM;
                        int r = merge(n, el, true, path);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int merge(json_t *target, json_t *patch, bool strategic, const char *path) {
        const char *k;
        json_t *v;
        if (!json_is_object(patch))
                return -EINVAL;
        if (strategic) {
                const char *directive = json_string_value(json_object_get(patch, "$patch"));
                if (directive && streq(directive, "replace")) {
                        json_object_clear(target);
                        json_object_foreach(patch, k, v)
                                if (k[0] != '$' && json_object_set(target, k, v) < 0)
                                        return -ENOMEM;
                        return 0;
                }
        }
        json_object_foreach(patch, k, v) {
                _cleanup_free_ char *sub = NULL;
                if (strategic && k[0] == '$')
                        continue; /* $setElementOrder/..., $retainKeys, ...: order and pruning hints */
                if (asprintf(&sub, "%s%s%s", path, *path ? "." : "", k) < 0)
                        return -ENOMEM;
                if (json_is_null(v)) {
                        json_object_del(target, k);
                        continue;
                }
                if (json_is_object(v)) {
                        const char *directive = strategic ? json_string_value(json_object_get(v, "$patch")) : NULL;
                        if (directive && streq(directive, "delete")) {
                                json_object_del(target, k);
                                continue;
                        }
                        json_t *t = json_object_get(target, k);
                        if (!json_is_object(t)) {
                                t = json_object();
                                if (!t || json_object_set_new(target, k, t) < 0)
                                        return -ENOMEM;
                        }
                        int r = merge(t, v, strategic, sub);
                        if (r < 0)
                                return r;
                        continue;
                }
                const char *key = strategic && json_is_array(v) ? merge_key(sub) : NULL;
                if (key) {
                        int r = merge_list(target, k, v, key, sub);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (json_object_set(target, k, v) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int kube_api_patch(json_t *target, json_t *patch, bool strategic) {
        if (!json_is_object(target) || !json_is_object(patch))
                return -EINVAL;
        return merge(target, patch, strategic, "");
}

/* ---- authentication ---- */

static int authenticate(call *c) {
        const http_server_request *req = c->req;
        const char *auth = http_server_request_header(req, "Authorization");
        const char *token = auth ? startswith(auth, "Bearer ") : NULL;
        int r;

        /* x509 first, then tokens, as upstream's union authenticator orders them */
        if (req->client_cert_rejected)
                return 0;
        if (req->client_cert_verified) {
                r = kube_auth_from_cert(req->client_cn, req->client_orgs, &c->user);
                return r == -EACCES ? 0 : r < 0 ? r : 1;
        }
        if (auth) {
                char id[7];
                if (!token || !c->api->bootstrap_token_auth || !kube_auth_bootstrap_token_id(token, id))
                        return 0;
                _cleanup_free_ char *name = NULL;
                _cleanup_json_ json_t *secret = NULL;
                if (asprintf(&name, "bootstrap-token-%s", id) < 0)
                        return -ENOMEM;
                r = kube_store_get(c->api->etcd, kube_resource_find("secrets"), "kube-system", name,
                                   &secret, &c->err);
                if (r < 0 && r != -ENOENT)
                        return 0; /* upstream: an authenticator error is a 401 too */
                const char *reason = NULL;
                r = kube_auth_bootstrap_token(token, secret, c->now, &c->user, &reason);
                return r == -EACCES ? 0 : r < 0 ? r : 1;
        }
        if (!c->api->anonymous_auth)
                return 0;
        r = kube_auth_anonymous(&c->user);
        return r < 0 ? r : 1;
}

/* ---- discovery, version, health ---- */

static int reply_version(call *c) {
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "major", "1", "minor",
                                    KUBE_VERSION_MINOR, "gitVersion", KUBE_GIT_VERSION, "gitCommit",
                                    "imgbuild-stand-in", "gitTreeState", "clean", "buildDate",
                                    "2024-08-13T00:00:00Z", "goVersion", "go1.22.5", "compiler",
                                    "gc", "platform", "linux/amd64"));
}

static int reply_api_versions(call *c) {
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:[s],s:[{s:s,s:s}]}", "kind", "APIVersions", "versions", "v1",
                                    "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
                                    "serverAddress", "127.0.0.1:0"));
}

static int reply_api_groups(call *c) {
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:[]}", "kind", "APIGroupList", "apiVersion", "v1", "groups"));
}

static int reply_resource_list(call *c) {
        json_t *list = json_array();
        if (!list)
                return -ENOMEM;
        for (const kube_resource *const *rp = kube_resources; *rp; rp++) {
                const kube_resource *r = *rp;
                json_t *e = json_pack("{s:s,s:s,s:b,s:s,s:[s,s,s,s,s,s]}", "name", r->name,
                                      "singularName", r->singular, "namespaced", r->namespaced,
                                      "kind", r->kind, "verbs", "create", "delete", "get", "list",
                                      "patch", "update");
                if (!e || json_array_append_new(list, e) < 0)
                        goto oom;
                if (r->short_name)
                        json_object_set_new(e, "shortNames", json_pack("[s]", r->short_name));
                if (r->has_status) {
                        _cleanup_free_ char *n = NULL;
                        if (asprintf(&n, "%s/status", r->name) < 0)
                                goto oom;
                        e = json_pack("{s:s,s:s,s:b,s:s,s:[s,s,s]}", "name", n, "singularName", "",
                                      "namespaced", r->namespaced, "kind", r->kind, "verbs", "get",
                                      "patch", "update");
                        if (!e || json_array_append_new(list, e) < 0)
                                goto oom;
                }
        }
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:o}", "kind", "APIResourceList", "groupVersion", "v1",
                                    "resources", list));
oom:
        json_decref(list);
        return -ENOMEM;
}

static int reply_health(call *c, const char *base, const char *rest) {
        bool check_etcd = !streq(base, "/livez");
        _cleanup_free_ char *verbose = http_server_query_param(c->req, "verbose");
        _cleanup_buf_ buf text = BUF_INIT(4096);
        bool ok = true;

        if (*rest && !streq(rest, "/etcd") && !streq(rest, "/ping"))
                return reply_text(c->resp, 404, "404 page not found\n");
        if (check_etcd && !streq(rest, "/ping")) {
                buf_clear(&c->err);
                ok = etcd_client_ping(c->api->etcd, "/registry/health", 2000, &c->err) >= 0;
        }
        if (*rest)
                return reply_text(c->resp, ok ? 200 : 500, ok ? "ok" : "internal server error: etcd check failed\n");
        if (!verbose && ok)
                return reply_text(c->resp, 200, "ok");
        int r = buf_printf(&text, "[+]ping ok\n");
        if (r >= 0 && check_etcd)
                r = ok ? buf_printf(&text, "[+]etcd ok\n")
                       : buf_printf(&text, "[-]etcd failed: reason withheld\n");
        if (r >= 0)
                r = ok ? buf_printf(&text, "%s check passed\n", base + 1)
                       : buf_printf(&text, "%s check failed\n", base + 1);
        if (r < 0)
                return r;
        return reply_text(c->resp, ok ? 200 : 500, text.data);
}

/* ---- tables ---- */

static bool wants_table(call *c) {
        const char *accept = http_server_request_header(c->req, "Accept");
        return accept && strstr(accept, "as=Table") && strstr(accept, "g=meta.k8s.io");
}

static json_t *column(const char *name, const char *format, int priority, const char *description) {
        return json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", name, "type", "string", "format", format,
                         "description", description, "priority", priority);
}

static const char *node_address(json_t *node, const char *type) {
        size_t i;
        json_t *a;
        json_array_foreach(json_path(node, "status.addresses"), i, a) {
                const char *t = json_string_value(json_object_get(a, "type"));
                if (t && streq(t, type))
                        return json_string_value(json_object_get(a, "address"));
        }
        return NULL;
}

static int node_cells(json_t *node, json_t *cells) {
        _cleanup_buf_ buf status = BUF_INIT(256), roles = BUF_INIT(1024);
        const char *ready = NULL, *k;
        size_t i;
        json_t *cond, *v;

        json_array_foreach(json_path(node, "status.conditions"), i, cond) {
                const char *t = json_string_value(json_object_get(cond, "type"));
                if (t && streq(t, "Ready"))
                        ready = json_string_value(json_object_get(cond, "status"));
        }
        int r = buf_puts(&status, !ready ? "Unknown" : streq(ready, "True") ? "Ready" : "NotReady");
        if (r >= 0 && json_is_true(json_path(node, "spec.unschedulable")))
                r = buf_puts(&status, ",SchedulingDisabled");
        json_object_foreach(json_path(node, "metadata.labels"), k, v) {
                const char *role = startswith(k, "node-role.kubernetes.io/");
                if (r >= 0 && role && *role)
                        r = buf_printf(&roles, "%s%s", roles.len ? "," : "", role);
        }
        if (r < 0)
                return r;
        const char *os = json_string_value(json_path(node, "status.nodeInfo.osImage"));
        const char *kernel = json_string_value(json_path(node, "status.nodeInfo.kernelVersion"));
        const char *runtime = json_string_value(json_path(node, "status.nodeInfo.containerRuntimeVersion"));
        const char *version = json_string_value(json_path(node, "status.nodeInfo.kubeletVersion"));
        const char *internal = node_address(node, "InternalIP"), *external = node_address(node, "ExternalIP");
        json_array_insert_new(cells, 1, json_string(status.data));
        json_array_insert_new(cells, 2, json_string(roles.len ? roles.data : "<none>"));
        json_array_append_new(cells, json_string(version ? version : ""));
        json_array_append_new(cells, json_string(internal ? internal : "<none>"));
        json_array_append_new(cells, json_string(external ? external : "<none>"));
        json_array_append_new(cells, json_string(os ? os : "<unknown>"));
        json_array_append_new(cells, json_string(kernel ? kernel : "<unknown>"));
        json_array_append_new(cells, json_string(runtime ? runtime : "<unknown>"));
        return 0;
}

/* The columns upstream's printers give these kinds (pkg/printers/internalversion/printers.go). */
static json_t *table_columns(const kube_resource *res) {
        json_t *cols = json_array();
        if (!cols)
                return NULL;
        json_array_append_new(cols, column("Name", "name", 0, "Name must be unique within a namespace."));
        if (streq(res->name, "nodes")) {
                json_array_append_new(cols, column("Status", "", 0, "The status of the node"));
                json_array_append_new(cols, column("Roles", "", 0, "The roles of the node"));
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
                json_array_append_new(cols, column("Version", "", 0, "Kubelet Version reported by the node."));
                json_array_append_new(cols, column("Internal-IP", "", 1, "List of internal IPs in the node."));
                json_array_append_new(cols, column("External-IP", "", 1, "List of external IPs in the node."));
                json_array_append_new(cols, column("OS-Image", "", 1, "OS image reported by the node."));
                json_array_append_new(cols, column("Kernel-Version", "", 1, "Kernel version reported by the node."));
                json_array_append_new(cols, column("Container-Runtime", "", 1, "Container runtime reported by the node."));
        } else if (streq(res->name, "namespaces")) {
                json_array_append_new(cols, column("Status", "", 0, "The status of the namespace"));
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
        } else if (streq(res->name, "secrets")) {
                json_array_append_new(cols, column("Type", "", 0, "The type of the secret"));
                json_array_append_new(cols, column("Data", "", 0, "The number of entries in the data"));
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
        } else {
                json_array_append_new(cols, column("Data", "", 0, "The number of entries in the data"));
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
        }
        /* Data counts are numbers upstream */
        json_t *col;
        size_t i;
        json_array_foreach(cols, i, col)
                if (streq(json_string_value(json_object_get(col, "name")), "Data"))
                        json_object_set_new(col, "type", json_string("integer"));
        return cols;
}

static json_t *table_row(call *c, json_t *obj) {
        const kube_resource *res = c->res;
        json_t *cells = json_array();
        char age[32];
        time_t created = parse_time(json_string_value(json_path(obj, "metadata.creationTimestamp")));
        if (!cells)
                return NULL;
        if (created == (time_t) -1)
                snprintf(age, sizeof(age), "<unknown>");
        else
                kube_api_human_duration((long long) (c->now - created), age);
        json_array_append_new(cells, json_string(strempty(json_string_value(json_path(obj, "metadata.name")))));
        if (streq(res->name, "nodes")) {
                json_array_append_new(cells, json_string(age));
                if (node_cells(obj, cells) < 0) {
                        json_decref(cells);
                        return NULL;
                }
        } else if (streq(res->name, "namespaces")) {
                const char *phase = json_string_value(json_path(obj, "status.phase"));
                json_array_append_new(cells, json_string(phase ? phase : "Active"));
                json_array_append_new(cells, json_string(age));
        } else {
                json_t *data = json_object_get(obj, "data");
                size_t n = json_is_object(data) ? json_object_size(data) : 0;
                if (streq(res->name, "configmaps") && json_is_object(json_object_get(obj, "binaryData")))
                        n += json_object_size(json_object_get(obj, "binaryData"));
                if (streq(res->name, "secrets")) {
                        const char *type = json_string_value(json_object_get(obj, "type"));
                        json_array_append_new(cells, json_string(type ? type : "Opaque"));
                }
                json_array_append_new(cells, json_integer((json_int_t) n));
                json_array_append_new(cells, json_string(age));
        }
        return json_pack("{s:o,s:{s:s,s:s,s:O}}", "cells", cells, "object", "kind",
                         "PartialObjectMetadata", "apiVersion", "meta.k8s.io/v1", "metadata",
                         json_object_get(obj, "metadata"));
}

static int reply_table(call *c, json_t *items, const char *rv) {
        json_t *rows = json_array();
        size_t i;
        json_t *obj;
        if (!rows)
                return -ENOMEM;
        json_array_foreach(items, i, obj) {
                json_t *row = table_row(c, obj);
                if (!row || json_array_append_new(rows, row) < 0) {
                        json_decref(rows);
                        return -ENOMEM;
                }
        }
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:{s:s},s:o,s:o}", "kind", "Table", "apiVersion",
                                    "meta.k8s.io/v1", "metadata", "resourceVersion", rv,
                                    "columnDefinitions", table_columns(c->res), "rows", rows));
}

/* ---- selectors ---- */

/* Whether obj matches a labelSelector (equality-based: k=v, k==v, k!=v, k, !k; comma = and).
 * Returns 1, 0, or -EINVAL for a selector outside that subset (set-based "in"/"notin"). */
static int label_match(json_t *obj, const char *selector) {
        _cleanup_(strv_freep) char **terms = NULL;
        json_t *labels = json_path(obj, "metadata.labels");
        if (strv_split(selector, ",", &terms) < 0)
                return -ENOMEM;
        for (char **t = terms; *t; t++) {
                char *s = *t, *op;
                bool neg = false, exists_only = false;
                const char *value = NULL;
                if (strchr(s, '(') || strstr(s, " in ") || strstr(s, " notin "))
                        return -EINVAL;
                if ((op = strstr(s, "!="))) {
                        *op = 0;
                        value = op + 2;
                        neg = true;
                } else if ((op = strstr(s, "=="))) {
                        *op = 0;
                        value = op + 2;
                } else if ((op = strchr(s, '='))) {
                        *op = 0;
                        value = op + 1;
                } else if (s[0] == '!') {
                        s++;
                        neg = true;
                        exists_only = true;
                } else
                        exists_only = true;
                const char *have = json_string_value(json_object_get(labels, s));
                bool m = exists_only ? have != NULL : have && streq(have, value);
                if (neg ? m : !m)
                        return 0;
        }
        return 1;
}

/* fieldSelector: metadata.name and metadata.namespace, = / == / !=. */
static int field_match(json_t *obj, const char *selector) {
        _cleanup_(strv_freep) char **terms = NULL;
        if (strv_split(selector, ",", &terms) < 0)
                return -ENOMEM;
        for (char **t = terms; *t; t++) {
                char *s = *t, *op;
                bool neg = false;
                const char *value;
                if ((op = strstr(s, "!="))) {
                        *op = 0;
                        value = op + 2;
                        neg = true;
                } else if ((op = strstr(s, "=="))) {
                        *op = 0;
                        value = op + 2;
                } else if ((op = strchr(s, '='))) {
                        *op = 0;
                        value = op + 1;
                } else
                        return -EINVAL;
                if (!streq(s, "metadata.name") && !streq(s, "metadata.namespace"))
                        return -EINVAL;
                const char *have = json_string_value(json_path(obj, s));
                bool m = have ? streq(have, value) : !*value;
                if (neg ? m : !m)
                        return 0;
        }
        return 1;
}

/* ---- objects ---- */

static json_t *body_object(call *c) {
        _cleanup_buf_ buf perr = BUF_INIT(512);
        const char *ct = http_server_request_header(c->req, "Content-Type");
        json_t *j = NULL;
        if (ct && strncasecmp(ct, "application/vnd.kubernetes.protobuf", 35) == 0) {
                int r = kube_proto_decode(c->req->body, c->req->body_len, &j);
                if (r == -EOPNOTSUPP)
                        (void) failf(c, 415, "UnsupportedMediaType", NULL,
                                     "the body of the request was in an unknown format - this stand-in decodes protobuf only for Namespace, ConfigMap and Secret; use application/json");
                else if (r < 0)
                        (void) failf(c, 400, "BadRequest", NULL, "the body of the request could not be decoded as protobuf");
                return r < 0 ? NULL : j;
        }
        /* JSON otherwise; no CBOR or YAML */
        if (ct && strncasecmp(ct, "application/json", 16) != 0 && !strstr(ct, "patch+json")) {
                (void) failf(c, 415, "UnsupportedMediaType", NULL,
                             "the body of the request was in an unknown format - accepted media types include: application/json");
                return NULL;
        }
        if (json_parse(c->req->body, c->req->body_len, &j, &perr) < 0 || !json_is_object(j)) {
                json_decref(j);
                (void) failf(c, 400, "BadRequest", NULL, "the body of the request was in an unknown format: %s",
                             perr.len ? perr.data : "not a JSON object");
                return NULL;
        }
        return j;
}

/* A lower-case RFC 1123 subdomain (what most kinds require of metadata.name). */
static bool valid_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253 || !isalnum((unsigned char) s[0]) || !isalnum((unsigned char) s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(islower((unsigned char) s[i]) || isdigit((unsigned char) s[i]) || s[i] == '-' || s[i] == '.'))
                        return false;
        return true;
}

/* Secrets: stringData merges into data (base64), as upstream's Secret strategy does. */
static int secret_normalize(json_t *obj) {
        json_t *sd = json_object_get(obj, "stringData");
        const char *k;
        json_t *v;
        if (!sd)
                return 0;
        if (!json_is_object(sd))
                return -EINVAL;
        json_t *data = json_object_get(obj, "data");
        if (!json_is_object(data)) {
                data = json_object();
                if (!data || json_object_set_new(obj, "data", data) < 0)
                        return -ENOMEM;
        }
        json_object_foreach(sd, k, v) {
                if (!json_is_string(v))
                        return -EINVAL;
                _cleanup_free_ char *b = base64_encode(json_string_value(v), json_string_length(v));
                if (!b || json_object_set_new(data, k, json_string(b)) < 0)
                        return -ENOMEM;
        }
        json_object_del(obj, "stringData");
        if (!json_object_get(obj, "type"))
                json_object_set_new(obj, "type", json_string("Opaque"));
        return 0;
}

/* 422 Invalid with one cause, as upstream's field validation reports it (kubectl prints
 * "The <Kind> "<name>" is invalid: <field>: <message>" from the cause). Returns 1 (replied) or
 * -ENOMEM. */
static int fail_invalid(call *c, const char *name, const char *cause_reason, const char *field,
                        const char *message) {
        _cleanup_free_ char *m = NULL;
        if (asprintf(&m, "%s \"%s\" is invalid: %s: %s", c->res->kind, name, field, message) < 0)
                return -ENOMEM;
        int r = reply_json(c->resp, 422,
                           json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:{s:s,s:s,s:[{s:s,s:s,s:s}]},s:i}", "kind",
                                     "Status", "apiVersion", "v1", "metadata", "status", "Failure", "message",
                                     m, "reason", "Invalid", "details", "name", name, "kind", c->res->kind,
                                     "causes", "reason", cause_reason, "message", message, "field", field,
                                     "code", 422));
        return r < 0 ? r : 1;
}

/* Checks every write makes: kind, apiVersion, name, namespace. Replies and returns > 0 when the
 * object is refused. */
static int admit(call *c, json_t *obj, const char *ns, const char *name_in_path) {
        const char *kind = json_string_value(json_object_get(obj, "kind"));
        const char *api_version = json_string_value(json_object_get(obj, "apiVersion"));
        json_t *md = json_object_get(obj, "metadata");
        const char *name, *obj_ns;
        int r;

        if ((kind && !streq(kind, c->res->kind)) || (api_version && !streq(api_version, "v1")))
                return failf(c, 400, "BadRequest", NULL, "the API version in the data (%s) does not match the expected API version (v1)",
                             api_version ? api_version : "") < 0 ? -ENOMEM : 1;
        if (!json_is_object(md)) {
                md = json_object();
                if (!md || json_object_set_new(obj, "metadata", md) < 0)
                        return -ENOMEM;
        }
        json_object_set_new(obj, "kind", json_string(c->res->kind));
        json_object_set_new(obj, "apiVersion", json_string("v1"));
        name = json_string_value(json_object_get(md, "name"));
        if ((!name || !*name) && !name_in_path) {
                const char *gen = json_string_value(json_object_get(md, "generateName"));
                if (gen && *gen) {
                        static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
                        char suffix[6];
                        uint8_t rnd[5];
                        if (random_bytes(rnd, sizeof(rnd)) < 0)
                                return -EIO;
                        for (size_t i = 0; i < 5; i++)
                                suffix[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
                        suffix[5] = 0;
                        _cleanup_free_ char *n = NULL;
                        if (asprintf(&n, "%s%s", gen, suffix) < 0)
                                return -ENOMEM;
                        json_object_set_new(md, "name", json_string(n));
                        name = json_string_value(json_object_get(md, "name"));
                }
        }
        if (name_in_path && name && !streq(name, name_in_path))
                return failf(c, 400, "BadRequest", name, "the name of the object (%s) does not match the name on the URL (%s)",
                             name, name_in_path) < 0 ? -ENOMEM : 1;
        if (!name && name_in_path) {
                json_object_set_new(md, "name", json_string(name_in_path));
                name = name_in_path;
        }
        if (!name || !*name)
                return fail_invalid(c, "", "FieldValueRequired", "metadata.name",
                                    "Required value: name or generateName is required");
        if (streq(c->res->name, "namespaces") && (strchr(name, '.') || strlen(name) > 63)) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "Invalid value: \"%s\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character", name) < 0)
                        return -ENOMEM;
                return fail_invalid(c, name, "FieldValueInvalid", "metadata.name", m);
        }
        if (!valid_name(name)) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "Invalid value: \"%s\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", name) < 0)
                        return -ENOMEM;
                return fail_invalid(c, name, "FieldValueInvalid", "metadata.name", m);
        }
        obj_ns = json_string_value(json_object_get(md, "namespace"));
        if (c->res->namespaced) {
                if (obj_ns && !streq(obj_ns, ns))
                        return failf(c, 400, "BadRequest", name, "the namespace of the provided object does not match the namespace sent on the request") < 0 ? -ENOMEM : 1;
                json_object_set_new(md, "namespace", json_string(ns));
        } else
                json_object_del(md, "namespace");
        if (streq(c->res->name, "secrets")) {
                const char *type = json_string_value(json_object_get(obj, "type"));
                if (!type || !*type)
                        json_object_set_new(obj, "type", json_string("Opaque"));
        }
        if (streq(c->res->name, "secrets") && (r = secret_normalize(obj)) < 0)
                return r == -EINVAL ? (failf(c, 400, "BadRequest", name, "stringData must map keys to strings") < 0 ? -ENOMEM : 1) : r;
        /* NodeRestriction: a node writes only its own Node */
        const char *node = startswith(c->user.name, "system:node:");
        if (node && streq(c->res->name, "nodes") && !strv_contains(c->user.groups, "system:masters") &&
            !streq(name, node))
                return failf(c, 403, "Forbidden", name, "nodes \"%s\" is forbidden: node \"%s\" is not allowed to modify node \"%s\"",
                             name, node, name) < 0 ? -ENOMEM : 1;
        return 0;
}

static int reply_object(call *c, int code, json_t *obj) {
        if (wants_table(c)) {
                _cleanup_json_ json_t *items = json_pack("[O]", obj);
                const char *rv = json_string_value(json_path(obj, "metadata.resourceVersion"));
                if (!items)
                        return -ENOMEM;
                return reply_table(c, items, strempty(rv));
        }
        json_incref(obj);
        return reply_json(c->resp, code, obj);
}

static int do_list(call *c, const char *ns) {
        _cleanup_json_ json_t *items = NULL;
        _cleanup_free_ char *labels = http_server_query_param(c->req, "labelSelector");
        _cleanup_free_ char *fields = http_server_query_param(c->req, "fieldSelector");
        _cleanup_free_ char *watch = http_server_query_param(c->req, "watch");
        int64_t rev = 0;
        char rv[24];
        int r;

        if (watch && (streq(watch, "true") || streq(watch, "1")))
                return failf(c, 405, "MethodNotAllowed", NULL, "watch is not supported by this stand-in yet");
        r = kube_store_list(c->api->etcd, c->res, ns, &items, &rev, &c->err);
        if (r < 0)
                return fail_store(c, r, NULL);
        for (size_t i = json_array_size(items); i-- > 0;) {
                json_t *obj = json_array_get(items, i);
                int m = 1;
                if (labels && *labels)
                        m = label_match(obj, labels);
                if (m == 1 && fields && *fields)
                        m = field_match(obj, fields);
                if (m == -EINVAL)
                        return failf(c, 400, "BadRequest", NULL, "unable to parse requirement: selector \"%s\" is not supported by this stand-in",
                                     labels && label_match(obj, labels) == -EINVAL ? labels : fields);
                if (m < 0)
                        return m;
                if (m == 0)
                        json_array_remove(items, i);
        }
        snprintf(rv, sizeof(rv), "%" PRId64, rev);
        if (wants_table(c))
                return reply_table(c, items, rv);
        /* items carry no kind/apiVersion in a list, as upstream's */
        size_t i;
        json_t *obj;
        json_array_foreach(items, i, obj) {
                json_object_del(obj, "kind");
                json_object_del(obj, "apiVersion");
        }
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:{s:s},s:O}", "kind", c->res->list_kind, "apiVersion", "v1",
                                    "metadata", "resourceVersion", rv, "items", items));
}

static int do_create(call *c, const char *ns) {
        _cleanup_json_ json_t *obj = body_object(c);
        char uid[UUID_STRING_SIZE], ts[32];
        int r;

        if (!obj)
                return 0;
        r = admit(c, obj, ns, NULL);
        if (r != 0)
                return r < 0 ? r : 0;
        json_t *md = json_object_get(obj, "metadata");
        const char *name = json_string_value(json_object_get(md, "name"));
        if (json_object_get(md, "resourceVersion"))
                return failf(c, 500, "InternalError", name, "Internal error occurred: resourceVersion should not be set on objects to be created");
        if (c->res->namespaced) {
                _cleanup_json_ json_t *nsobj = NULL;
                r = kube_store_get(c->api->etcd, kube_resource_find("namespaces"), NULL, ns, &nsobj, &c->err);
                if (r == -ENOENT)
                        return failf(c, 404, "NotFound", ns, "namespaces \"%s\" not found", ns);
                if (r < 0)
                        return fail_store(c, r, name);
                const char *phase = json_string_value(json_path(nsobj, "status.phase"));
                if (phase && streq(phase, "Terminating"))
                        return failf(c, 403, "Forbidden", name, "%s \"%s\" is forbidden: unable to create new content in namespace %s because it is being terminated",
                                     c->res->name, name, ns);
        }
        random_uuid(uid);
        format_time(c->now, ts);
        json_object_set_new(md, "uid", json_string(uid));
        json_object_set_new(md, "creationTimestamp", json_string(ts));
        json_object_del(md, "deletionTimestamp");
        if (streq(c->res->name, "namespaces")) {
                json_object_set_new(obj, "spec", json_pack("{s:[s]}", "finalizers", "kubernetes"));
                json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
                json_t *labels = json_object_get(md, "labels");
                if (!json_is_object(labels)) {
                        labels = json_object();
                        json_object_set_new(md, "labels", labels);
                }
                json_object_set_new(labels, "kubernetes.io/metadata.name", json_string(name));
        }
        r = kube_store_create(c->api->etcd, c->res, obj, &c->err);
        if (r < 0)
                return fail_store(c, r, name);
        return reply_object(c, 201, obj);
}

/* Carry what a write may not change from old into obj: identity, and for resources with a
 * status subresource the status (main resource) or everything but the status (/status). */
static int carry_over(call *c, json_t *old, json_t **obj, bool status_write) {
        if (status_write) {
                json_t *n = json_deep_copy(old);
                json_t *st = json_object_get(*obj, "status");
                if (!n)
                        return -ENOMEM;
                if (st)
                        json_object_set(n, "status", st);
                else
                        json_object_del(n, "status");
                /* the caller's resourceVersion precondition stays */
                json_t *rv = json_path(*obj, "metadata.resourceVersion");
                if (rv)
                        json_object_set(json_object_get(n, "metadata"), "resourceVersion", rv);
                json_decref(*obj);
                *obj = n;
                return 0;
        }
        json_t *md = json_object_get(*obj, "metadata"), *omd = json_object_get(old, "metadata");
        static const char *const keep[] = { "uid", "creationTimestamp", "name", "namespace" };
        for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
                json_t *v = json_object_get(omd, keep[i]);
                if (v)
                        json_object_set(md, keep[i], v);
                else
                        json_object_del(md, keep[i]);
        }
        if (c->res->has_status) {
                json_t *st = json_object_get(old, "status");
                if (st)
                        json_object_set(*obj, "status", st);
                else
                        json_object_del(*obj, "status");
        }
        return 0;
}

static int do_update(call *c, const char *ns, const char *name, bool status_write) {
        _cleanup_json_ json_t *obj = body_object(c);
        _cleanup_json_ json_t *old = NULL;
        int64_t rv, old_rv;
        int r;

        if (!obj)
                return 0;
        r = admit(c, obj, ns, name);
        if (r != 0)
                return r < 0 ? r : 0;
        if (kube_object_rv(obj, &rv) < 0)
                return failf(c, 400, "BadRequest", name, "invalid resourceVersion");
        r = kube_store_get(c->api->etcd, c->res, ns, name, &old, &c->err);
        if (r < 0)
                return fail_store(c, r, name);
        if (kube_object_rv(old, &old_rv) < 0)
                return -EBADMSG;
        r = carry_over(c, old, &obj, status_write);
        if (r < 0)
                return r;
        /* no resourceVersion: an unconditional update, as these kinds allow */
        r = kube_store_update(c->api->etcd, c->res, obj, rv > 0 ? rv : old_rv, &c->err);
        if (r < 0)
                return fail_store(c, r, name);
        return reply_object(c, 200, obj);
}

static int do_patch(call *c, const char *ns, const char *name, bool status_write) {
        const char *ct = http_server_request_header(c->req, "Content-Type");
        bool strategic;
        _cleanup_json_ json_t *patch = NULL;
        int r;

        if (ct && strncasecmp(ct, "application/merge-patch+json", 28) == 0)
                strategic = false;
        else if (ct && strncasecmp(ct, "application/strategic-merge-patch+json", 38) == 0)
                strategic = true;
        else
                return failf(c, 415, "UnsupportedMediaType", name, "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (this stand-in has no JSON patch or server-side apply)");
        patch = body_object(c);
        if (!patch)
                return 0;
        int64_t want_rv;
        if (kube_object_rv(patch, &want_rv) < 0)
                return failf(c, 400, "BadRequest", name, "invalid resourceVersion");

        for (int attempt = 0;; attempt++) {
                _cleanup_json_ json_t *old = NULL, *obj = NULL;
                int64_t old_rv;
                r = kube_store_get(c->api->etcd, c->res, ns, name, &old, &c->err);
                if (r < 0)
                        return fail_store(c, r, name);
                if (kube_object_rv(old, &old_rv) < 0)
                        return -EBADMSG;
                if (want_rv > 0 && want_rv != old_rv)
                        return fail_store(c, -ESTALE, name);
                obj = json_deep_copy(old);
                if (!obj)
                        return -ENOMEM;
                r = kube_api_patch(obj, patch, strategic);
                if (r == -EINVAL)
                        return failf(c, 422, "Invalid", name, "the patch could not be applied to %s \"%s\"", c->res->name, name);
                if (r < 0)
                        return r;
                r = admit(c, obj, ns, name);
                if (r != 0)
                        return r < 0 ? r : 0;
                r = carry_over(c, old, &obj, status_write);
                if (r < 0)
                        return r;
                json_object_del(json_object_get(obj, "metadata"), "resourceVersion");
                r = kube_store_update(c->api->etcd, c->res, obj, old_rv, &c->err);
                if (r == -ESTALE && want_rv == 0 && attempt < PATCH_RETRIES)
                        continue; /* someone else wrote in between: patch the new version */
                if (r < 0)
                        return fail_store(c, r, name);
                return reply_object(c, 200, obj);
        }
}

static int do_delete(call *c, const char *ns, const char *name) {
        _cleanup_json_ json_t *old = NULL;
        int64_t rv;
        int r = kube_store_get(c->api->etcd, c->res, ns, name, &old, &c->err);
        if (r < 0)
                return fail_store(c, r, name);
        if (kube_object_rv(old, &rv) < 0)
                return -EBADMSG;
        if (streq(c->res->name, "namespaces")) {
                /* What upstream's namespace controller does later, done now: the namespace's
                 * objects go first. Stand-in: no Terminating phase is observable. */
                for (const kube_resource *const *rp = kube_resources; *rp; rp++) {
                        _cleanup_json_ json_t *items = NULL;
                        size_t i;
                        json_t *o;
                        if (!(*rp)->namespaced)
                                continue;
                        r = kube_store_list(c->api->etcd, *rp, name, &items, NULL, &c->err);
                        if (r < 0)
                                return fail_store(c, r, name);
                        json_array_foreach(items, i, o) {
                                r = kube_store_delete(c->api->etcd, *rp, name,
                                                      json_string_value(json_path(o, "metadata.name")), 0, &c->err);
                                if (r < 0 && r != -ENOENT)
                                        return fail_store(c, r, name);
                        }
                }
        }
        r = kube_store_delete(c->api->etcd, c->res, ns, name, rv, &c->err);
        if (r < 0)
                return fail_store(c, r, name);
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:{},s:s,s:{s:s,s:s,s:O*}}", "kind", "Status", "apiVersion",
                                    "v1", "metadata", "status", "Success", "details", "name", name, "kind",
                                    c->res->name, "uid", json_path(old, "metadata.uid")));
}

/* ---- routing ---- */

static const char *verb_of(const char *method, bool collection, call *c) {
        if (streq(method, "GET") || streq(method, "HEAD")) {
                if (!collection)
                        return "get";
                _cleanup_free_ char *w = http_server_query_param(c->req, "watch");
                return w && (streq(w, "true") || streq(w, "1")) ? "watch" : "list";
        }
        if (streq(method, "POST"))
                return collection ? "create" : NULL;
        if (streq(method, "PUT"))
                return collection ? NULL : "update";
        if (streq(method, "PATCH"))
                return collection ? NULL : "patch";
        if (streq(method, "DELETE"))
                return collection ? "deletecollection" : "delete";
        return NULL;
}

static int deny(call *c) {
        if (!c->user.name)
                return kube_api_status(c->resp, 401, "Unauthorized", "Unauthorized");
        _cleanup_free_ char *m = kube_authz_forbidden_message(&c->user, &c->attrs);
        if (!m)
                return -ENOMEM;
        return status_details(c->resp, 403, "Forbidden", m, c->attrs.name, c->attrs.resource);
}

static int handle_resource(call *c) {
        char **s = c->segments;
        size_t n = strv_length(s);
        const char *ns = NULL, *resource, *name = NULL, *sub = NULL;

        /* [namespaces/NS/]RESOURCE[/NAME[/SUB]] */
        if (n >= 3 && streq(s[0], "namespaces") && !streq(s[2], "status") && !streq(s[2], "finalize")) {
                ns = s[1];
                resource = s[2];
                name = n > 3 ? s[3] : NULL;
                sub = n > 4 ? s[4] : NULL;
                if (n > 5)
                        return failf(c, 404, "NotFound", NULL, "the server could not find the requested resource");
        } else {
                resource = s[0];
                name = n > 1 ? s[1] : NULL;
                sub = n > 2 ? s[2] : NULL;
                if (n > 3)
                        return failf(c, 404, "NotFound", NULL, "the server could not find the requested resource");
        }
        c->res = kube_resource_find(resource);
        if (!c->res || (ns && !c->res->namespaced) || (sub && !(streq(sub, "status") && c->res->has_status)))
                return failf(c, 404, "NotFound", NULL, "the server could not find the requested resource");
        const char *verb = verb_of(c->req->method, !name, c);
        if (!verb || (sub && !(streq(verb, "get") || streq(verb, "update") || streq(verb, "patch"))))
                return failf(c, 405, "MethodNotAllowed", name, "the server does not allow this method on the requested resource");
        c->attrs = (kube_attrs){ .verb = verb, .api_group = "", .resource = c->res->name,
                                 .subresource = sub, .namespace = ns, .name = name };
        if (!c->user.name || !kube_authz_allowed(&c->user, &c->attrs, c->api->authorization_mode))
                return deny(c);
        if (c->res->namespaced && !ns && !streq(verb, "list") && !streq(verb, "watch"))
                return failf(c, 404, "NotFound", NULL, "the server could not find the requested resource");

        bool status_write = sub != NULL;
        if (streq(verb, "list") || streq(verb, "watch"))
                return do_list(c, ns);
        if (streq(verb, "create"))
                return do_create(c, ns);
        if (streq(verb, "get")) {
                _cleanup_json_ json_t *obj = NULL;
                int r = kube_store_get(c->api->etcd, c->res, ns, name, &obj, &c->err);
                if (r < 0)
                        return fail_store(c, r, name);
                return reply_object(c, 200, obj);
        }
        if (streq(verb, "update"))
                return do_update(c, ns, name, status_write);
        if (streq(verb, "patch"))
                return do_patch(c, ns, name, status_write);
        if (streq(verb, "delete"))
                return do_delete(c, ns, name);
        return failf(c, 405, "MethodNotAllowed", name, "the server does not allow this method on the requested resource (deletecollection is not supported by this stand-in)");
}

int kube_api_handle(const http_server_request *req, http_server_response *resp, void *userdata) {
        kube_api *api = userdata;
        _cleanup_(call_done) call c = { .api = api, .req = req, .resp = resp, .err = BUF_INIT(1024) };
        const char *path = req->path, *rest;
        int r;

        c.now = api->now ? api->now() : time(NULL);
        r = authenticate(&c);
        if (r < 0)
                return r;
        /* One line per request with the credential it carried (never the credential itself), as
         * kube-apiserver's httplog at -v=2: tests check what a client sent where. */
        log_info("kube-apiserver: %s %s credential=%s user=%s", req->method, path,
                 req->client_cert_verified                          ? "client-certificate"
                 : http_server_request_header(req, "Authorization") ? "bearer-token"
                                                                    : "none",
                 r > 0 ? c.user.name : "(unauthorized)");
        if (r == 0)
                return kube_api_status(resp, 401, "Unauthorized", "Unauthorized");

        if ((rest = startswith(path, "/api/v1/")) && *rest) {
                r = strv_split(rest, "/", &c.segments);
                if (r < 0)
                        return r;
                if (!c.segments || !c.segments[0])
                        return kube_api_status(resp, 404, "NotFound", "the server could not find the requested resource");
                for (char **s = c.segments; *s; s++)
                        if (!**s)
                                return kube_api_status(resp, 404, "NotFound", "the server could not find the requested resource");
                return handle_resource(&c);
        }

        /* non-resource paths */
        /* upstream's non-resource verbs are the lower-cased method, "get" for HEAD */
        const char *m = req->method;
        c.attrs = (kube_attrs){ .path = path,
                                .verb = streq(m, "GET") || streq(m, "HEAD") ? "get"
                                        : streq(m, "POST")                  ? "post"
                                        : streq(m, "PUT")                   ? "put"
                                        : streq(m, "PATCH")                 ? "patch"
                                                                            : "delete" };
        if (!kube_authz_allowed(&c.user, &c.attrs, api->authorization_mode))
                return deny(&c);
        if (!streq(c.attrs.verb, "get"))
                return kube_api_status(resp, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
        if (streq(path, "/version") || streq(path, "/version/"))
                return reply_version(&c);
        static const char *const health[] = { "/healthz", "/livez", "/readyz" };
        for (size_t i = 0; i < ELEMENTSOF(health); i++)
                if ((rest = startswith(path, health[i])) && (!*rest || *rest == '/'))
                        return reply_health(&c, health[i], rest);
        if (streq(path, "/api") || streq(path, "/api/"))
                return reply_api_versions(&c);
        if (streq(path, "/apis") || streq(path, "/apis/"))
                return reply_api_groups(&c);
        if (streq(path, "/api/v1") || streq(path, "/api/v1/"))
                return reply_resource_list(&c);
        return kube_api_status(resp, 404, "NotFound", "the server could not find the requested resource");
}

int kube_api_ensure_namespaces(kube_api *api, buf *err) {
        static const char *const names[] = { "default", "kube-system", "kube-public", "kube-node-lease" };
        const kube_resource *res = kube_resource_find("namespaces");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char uid[UUID_STRING_SIZE], ts[32];
                random_uuid(uid);
                format_time(api->now ? api->now() : time(NULL), ts);
                _cleanup_json_ json_t *obj = json_pack(
                        "{s:s,s:s,s:{s:s,s:s,s:s,s:{s:s}},s:{s:[s]},s:{s:s}}", "kind", "Namespace",
                        "apiVersion", "v1", "metadata", "name", names[i], "uid", uid, "creationTimestamp", ts,
                        "labels", "kubernetes.io/metadata.name", names[i], "spec", "finalizers",
                        "kubernetes", "status", "phase", "Active");
                if (!obj)
                        return -ENOMEM;
                int r = kube_store_create(api->etcd, res, obj, err);
                if (r < 0 && r != -EEXIST)
                        return r;
        }
        return 0;
}
