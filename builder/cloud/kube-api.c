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
#include "kube-csr.h"
#include "kube-pdb.h"
#include "kube-proto.h"
#include "kube-store.h"
#include "log.h"
#include "strv.h"
#include "time-util.h"

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
        const char *group;         /* of the resource path: "" for /api/v1 */
        char **segments;           /* path segments after /api/v1 or /apis/GROUP/v1 */
        time_t now;
        buf err;                   /* etcd errors, for the 500 message */
} call;

/* What a PUT or PATCH writes: the object, its /status, or a CSR's /approval. */
typedef enum write_mode { WRITE_MAIN, WRITE_STATUS, WRITE_APPROVAL } write_mode;

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
        json_t *groups = json_array();
        if (!groups)
                return -ENOMEM;
        for (const char *const *g = kube_api_groups; *g; g++) {
                _cleanup_free_ char *gv = NULL;
                if (asprintf(&gv, "%s/v1", *g) < 0)
                        goto oom;
                json_t *e = json_pack("{s:s,s:[{s:s,s:s}],s:{s:s,s:s}}", "name", *g, "versions", "groupVersion", gv,
                                      "version", "v1", "preferredVersion", "groupVersion", gv, "version", "v1");
                if (!e || json_array_append_new(groups, e) < 0)
                        goto oom;
        }
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups", groups));
oom:
        json_decref(groups);
        return -ENOMEM;
}

static int reply_api_group(call *c, const char *group) {
        _cleanup_free_ char *gv = NULL;
        if (asprintf(&gv, "%s/v1", group) < 0)
                return -ENOMEM;
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}],s:{s:s,s:s}}", "kind", "APIGroup", "apiVersion", "v1",
                                    "name", group, "versions", "groupVersion", gv, "version", "v1",
                                    "preferredVersion", "groupVersion", gv, "version", "v1"));
}

static int add_resource_entry(json_t *list, const char *name, const char *singular, bool namespaced,
                              const char *kind, json_t *verbs, const char *short_name) {
        json_t *e = json_pack("{s:s,s:s,s:b,s:s,s:o}", "name", name, "singularName", singular, "namespaced",
                              namespaced, "kind", kind, "verbs", verbs);
        if (!e || json_array_append_new(list, e) < 0)
                return -ENOMEM;
        if (short_name)
                json_object_set_new(e, "shortNames", json_pack("[s]", short_name));
        return 0;
}

/* The APIResourceList of one group-version ("" for the core group). */
static int reply_resource_list(call *c, const char *group) {
        _cleanup_free_ char *gv = NULL;
        json_t *list = json_array();
        if (!list || asprintf(&gv, "%s%sv1", group, *group ? "/" : "") < 0)
                goto oom;
        for (const kube_resource *const *rp = kube_resources; *rp; rp++) {
                const kube_resource *r = *rp;
                _cleanup_free_ char *sub = NULL;
                if (!streq(r->group, group))
                        continue;
                if (add_resource_entry(list, r->name, r->singular, r->namespaced, r->kind,
                                       json_pack("[s,s,s,s,s,s,s]", "create", "delete", "get", "list", "patch",
                                                 "update", "watch"),
                                       r->short_name) < 0)
                        goto oom;
                if (r->has_status) {
                        if (asprintf(&sub, "%s/status", r->name) < 0 ||
                            add_resource_entry(list, sub, "", r->namespaced, r->kind,
                                               json_pack("[s,s,s]", "get", "patch", "update"), NULL) < 0)
                                goto oom;
                }
        }
        if (!*group) {
                /* drain's CheckEvictionSupport wants group and version on this entry */
                json_t *e = json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:[s]}", "name", "pods/eviction", "singularName", "",
                                      "namespaced", true, "group", "policy", "version", "v1", "kind", "Eviction",
                                      "verbs", "create");
                if (!e || json_array_append_new(list, e) < 0)
                        goto oom;
        }
        if (streq(group, "certificates.k8s.io") &&
            add_resource_entry(list, "certificatesigningrequests/approval", "", false, "CertificateSigningRequest",
                               json_pack("[s,s,s]", "get", "patch", "update"), NULL) < 0)
                goto oom;
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                                    "groupVersion", gv, "resources", list));
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
        } else if (streq(res->name, "configmaps")) {
                json_array_append_new(cols, column("Data", "", 0, "The number of entries in the data"));
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
        } else if (streq(res->name, "pods")) {
                json_array_append_new(cols, column("Ready", "", 0, "The aggregate readiness state of this pod for accepting traffic."));
                json_array_append_new(cols, column("Status", "", 0, "The aggregate status of the containers in this pod."));
                json_array_append_new(cols, column("Restarts", "", 0, "The number of times the containers in this pod have been restarted."));
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
                json_array_append_new(cols, column("IP", "", 1, "IP address allocated to the pod."));
                json_array_append_new(cols, column("Node", "", 1, "Name of the Node this pod is assigned to."));
        } else if (streq(res->name, "certificatesigningrequests")) {
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
                json_array_append_new(cols, column("SignerName", "", 0, "The name of the signer"));
                json_array_append_new(cols, column("Requestor", "", 0, "Name of the user who created the request"));
                json_array_append_new(cols, column("RequestedDuration", "", 0, "The requested duration of the certificate"));
                json_array_append_new(cols, column("Condition", "", 0, "The state of the request"));
        } else if (streq(res->name, "poddisruptionbudgets")) {
                json_array_append_new(cols, column("Min Available", "", 0, "The minimum number of pods that must be available"));
                json_array_append_new(cols, column("Max Unavailable", "", 0, "The maximum number of pods that may be unavailable"));
                json_array_append_new(cols, column("Allowed Disruptions", "", 0, "Calculated number of pods that may be disrupted at this time"));
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
        } else if (streq(res->name, "clusterrolebindings") || streq(res->name, "rolebindings")) {
                json_array_append_new(cols, column("Role", "", 0, "The role of the binding"));
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
        } else
                json_array_append_new(cols, column("Age", "", 0, "CreationTimestamp"));
        /* Data counts are numbers upstream */
        json_t *col;
        size_t i;
        json_array_foreach(cols, i, col)
                if (streq(json_string_value(json_object_get(col, "name")), "Data"))
                        json_object_set_new(col, "type", json_string("integer"));
        return cols;
}

static const char *int_or_string(json_t *v, char out[32]) {
        if (json_is_integer(v))
                snprintf(out, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_string(v))
                snprintf(out, 32, "%s", json_string_value(v));
        else
                snprintf(out, 32, "N/A");
        return out;
}

/* Upstream's CSR Condition column (printers.go extractCSRStatus). */
static void csr_condition(json_t *csr, char out[64]) {
        snprintf(out, 64, "%s%s%s",
                 kube_csr_condition(csr, "Denied") ? "Denied" : kube_csr_condition(csr, "Approved") ? "Approved" : "Pending",
                 kube_csr_condition(csr, "Failed") ? ",Failed" : "",
                 *strempty(json_path_string(csr, "status.certificate")) ? ",Issued" : "");
}

/* The cells after Name of the kinds other than nodes, namespaces, configmaps and secrets. */
static int kind_cells(call *c, json_t *obj, json_t *cells, const char *age) {
        const char *res = c->res->name;
        char a[32], b[32];
        if (streq(res, "pods")) {
                size_t i, ready = 0, total = json_array_size(json_path(obj, "spec.containers"));
                json_int_t restarts = 0;
                json_t *cs;
                json_array_foreach(json_path(obj, "status.containerStatuses"), i, cs) {
                        if (json_is_true(json_object_get(cs, "ready")))
                                ready++;
                        restarts += json_integer_value(json_object_get(cs, "restartCount"));
                }
                const char *phase = json_path_string(obj, "status.phase");
                const char *reason = json_path_string(obj, "status.reason");
                const char *ip = json_path_string(obj, "status.podIP");
                const char *node = json_path_string(obj, "spec.nodeName");
                snprintf(a, sizeof(a), "%zu/%zu", ready, total);
                json_array_append_new(cells, json_string(a));
                json_array_append_new(cells, json_string(json_path(obj, "metadata.deletionTimestamp") ? "Terminating"
                                                         : reason                                   ? reason
                                                         : phase                                    ? phase
                                                                                                    : "Pending"));
                json_array_append_new(cells, json_integer(restarts));
                json_array_append_new(cells, json_string(age));
                json_array_append_new(cells, json_string(ip ? ip : "<none>"));
                json_array_append_new(cells, json_string(node ? node : "<none>"));
        } else if (streq(res, "certificatesigningrequests")) {
                char cond[64], dur[32];
                json_int_t exp = json_integer_value(json_path(obj, "spec.expirationSeconds"));
                if (exp > 0)
                        kube_api_human_duration((long long) exp, dur);
                else
                        snprintf(dur, sizeof(dur), "<none>");
                csr_condition(obj, cond);
                json_array_append_new(cells, json_string(age));
                json_array_append_new(cells, json_string(strempty(json_path_string(obj, "spec.signerName"))));
                json_array_append_new(cells, json_string(strempty(json_path_string(obj, "spec.username"))));
                json_array_append_new(cells, json_string(dur));
                json_array_append_new(cells, json_string(cond));
        } else if (streq(res, "poddisruptionbudgets")) {
                json_array_append_new(cells, json_string(int_or_string(json_path(obj, "spec.minAvailable"), a)));
                json_array_append_new(cells, json_string(int_or_string(json_path(obj, "spec.maxUnavailable"), b)));
                json_array_append_new(cells, json_integer(json_integer_value(json_path(obj, "status.disruptionsAllowed"))));
                json_array_append_new(cells, json_string(age));
        } else if (streq(res, "clusterrolebindings") || streq(res, "rolebindings")) {
                _cleanup_free_ char *role = NULL;
                if (asprintf(&role, "%s/%s", strempty(json_path_string(obj, "roleRef.kind")),
                             strempty(json_path_string(obj, "roleRef.name"))) < 0)
                        return -ENOMEM;
                json_array_append_new(cells, json_string(role));
                json_array_append_new(cells, json_string(age));
        } else
                json_array_append_new(cells, json_string(age));
        return 0;
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
        } else if (!streq(res->name, "configmaps") && !streq(res->name, "secrets")) {
                if (kind_cells(c, obj, cells, age) < 0) {
                        json_decref(cells);
                        return NULL;
                }
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

/* The fields a kind may be selected by besides metadata.name and metadata.namespace (upstream's
 * field label conversion funcs, the ones kubectl and kubelets use). */
static bool selectable_field(const kube_resource *res, const char *field) {
        if (streq(field, "metadata.name") || streq(field, "metadata.namespace"))
                return true;
        if (streq(res->name, "pods"))
                return streq(field, "spec.nodeName") || streq(field, "status.phase");
        if (streq(res->name, "certificatesigningrequests"))
                return streq(field, "spec.signerName");
        if (streq(res->name, "nodes"))
                return streq(field, "spec.unschedulable");
        return false;
}

/* fieldSelector: metadata.name, metadata.namespace and selectable_field(), = / == / !=. */
static int field_match(const kube_resource *res, json_t *obj, const char *selector) {
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
                if (!selectable_field(res, s))
                        return -EINVAL;
                json_t *hv = json_path(obj, s);
                const char *have = json_is_boolean(hv) ? (json_is_true(hv) ? "true" : "false") : json_string_value(hv);
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
                                     "the body of the request was in an unknown format - this stand-in decodes protobuf only for Namespace, ConfigMap, Secret, CertificateSigningRequest and Eviction; use application/json");
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

/* Upstream's path.ValidatePathSegmentName: not "." or "..", no '/' and no '%'. The reason, or
 * NULL when name is valid. */
static const char *name_path_segment_problem(const char *name) {
        if (streq(name, ".") || streq(name, ".."))
                return "may not be '.' or '..'";
        if (strchr(name, '/'))
                return "may not contain '/'";
        if (strchr(name, '%'))
                return "may not contain '%'";
        return NULL;
}

static bool valid_path_segment_name(const char *name) { return *name && !name_path_segment_problem(name); }

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

        char expected[128];
        snprintf(expected, sizeof(expected), "%s%s%s", c->res->group, *c->res->group ? "/" : "", c->res->version);
        if ((kind && !streq(kind, c->res->kind)) || (api_version && !streq(api_version, expected)))
                return failf(c, 400, "BadRequest", NULL, "the API version in the data (%s) does not match the expected API version (%s)",
                             api_version ? api_version : "", expected) < 0 ? -ENOMEM : 1;
        if (!json_is_object(md)) {
                md = json_object();
                if (!md || json_object_set_new(obj, "metadata", md) < 0)
                        return -ENOMEM;
        }
        json_object_set_new(obj, "kind", json_string(c->res->kind));
        json_object_set_new(obj, "apiVersion", json_string(expected));
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
        if (streq(c->res->group, "rbac.authorization.k8s.io")) {
                /* RBAC objects are named like path segments (ValidatePathSegmentName): kubeadm's
                 * "kubeadm:node-autoapprove-bootstrap" is valid. */
                const char *why = !valid_path_segment_name(name) ? name_path_segment_problem(name) : NULL;
                if (why) {
                        _cleanup_free_ char *m = NULL;
                        if (asprintf(&m, "Invalid value: \"%s\": %s", name, why) < 0)
                                return -ENOMEM;
                        return fail_invalid(c, name, "FieldValueInvalid", "metadata.name", m);
                }
        } else if (!valid_name(name)) {
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

/* Drop from items what the selectors (may be NULL or "") do not select. Returns 0, -EINVAL for a
 * selector outside what is supported, -ENOMEM. */
static int filter_items(const kube_resource *res, json_t *items, const char *labels, const char *fields) {
        for (size_t i = json_array_size(items); i-- > 0;) {
                json_t *obj = json_array_get(items, i);
                int m = 1;
                if (labels && *labels)
                        m = label_match(obj, labels);
                if (m == 1 && fields && *fields)
                        m = field_match(res, obj, fields);
                if (m < 0)
                        return m;
                if (m == 0)
                        json_array_remove(items, i);
        }
        return 0;
}

/* What a read shows that is not stored: a PDB's status, computed from its namespace's pods
 * (kube-pdb.h). Returns 0 or a negative errno (c->err says why for etcd). */
static int decorate(call *c, json_t *obj) {
        if (!streq(c->res->name, "poddisruptionbudgets"))
                return 0;
        _cleanup_json_ json_t *pods = NULL;
        kube_pdb_status st;
        char ts[32];
        int r = kube_store_list(c->api->etcd, kube_resource_find("pods"), json_path_string(obj, "metadata.namespace"),
                                &pods, NULL, &c->err);
        if (r < 0)
                return r;
        if (kube_pdb_compute(obj, pods, &st) < 0)
                return 0; /* admitted specs compute; a malformed stored one shows no status */
        kube_format_time(c->now, ts);
        return kube_pdb_set_status(obj, &st, ts);
}

static int do_list(call *c, const char *ns) {
        _cleanup_json_ json_t *items = NULL;
        _cleanup_free_ char *labels = http_server_query_param(c->req, "labelSelector");
        _cleanup_free_ char *fields = http_server_query_param(c->req, "fieldSelector");
        _cleanup_free_ char *watch = http_server_query_param(c->req, "watch");
        int64_t rev = 0;
        char rv[24];
        int r;

        (void) watch;
        r = kube_store_list(c->api->etcd, c->res, ns, &items, &rev, &c->err);
        if (r < 0)
                return fail_store(c, r, NULL);
        r = filter_items(c->res, items, labels, fields);
        if (r == -EINVAL)
                return failf(c, 400, "BadRequest", NULL, "unable to parse requirement: selector \"%s\" is not supported by this stand-in",
                             fields && *fields ? fields : strempty(labels));
        if (r < 0)
                return r;
        size_t i;
        json_t *obj;
        json_array_foreach(items, i, obj)
                if ((r = decorate(c, obj)) < 0)
                        return r;
        snprintf(rv, sizeof(rv), "%" PRId64, rev);
        if (wants_table(c))
                return reply_table(c, items, rv);
        /* items carry no kind/apiVersion in a list, as upstream's */
        json_array_foreach(items, i, obj) {
                json_object_del(obj, "kind");
                json_object_del(obj, "apiVersion");
        }
        char gv[128];
        snprintf(gv, sizeof(gv), "%s%s%s", c->res->group, *c->res->group ? "/" : "", c->res->version);
        return reply_json(c->resp, 200,
                          json_pack("{s:s,s:s,s:{s:s},s:O}", "kind", c->res->list_kind, "apiVersion", gv,
                                    "metadata", "resourceVersion", rv, "items", items));
}

/* What the strategies of the newer kinds do on create: a CSR gets its requester from the
 * authenticated user and no status, and its request must parse (A.6); a pod starts Pending; a
 * PDB's spec must make sense; a ClusterRoleBinding needs a roleRef. Returns 0, 1 (replied), or
 * -ENOMEM. */
static int admit_create(call *c, json_t *obj, const char *name) {
        const char *res = c->res->name;
        json_t *md = json_object_get(obj, "metadata");

        if (streq(res, "certificatesigningrequests")) {
                _cleanup_(kube_csr_request_done) kube_csr_request req = {};
                _cleanup_buf_ buf why = BUF_INIT(512);
                json_t *spec = json_object_get(obj, "spec");
                json_int_t exp;
                if (!json_is_object(spec))
                        return fail_invalid(c, name, "FieldValueRequired", "spec", "Required value");
                const char *signer = json_string_value(json_object_get(spec, "signerName"));
                if (!signer || !*signer)
                        return fail_invalid(c, name, "FieldValueRequired", "spec.signerName", "Required value");
                if (!strchr(signer, '/'))
                        return fail_invalid(c, name, "FieldValueInvalid", "spec.signerName",
                                            "Invalid value: must be a fully qualified domain and path of the form 'example.com/signer-name'");
                if (json_array_size(json_object_get(spec, "usages")) == 0)
                        return fail_invalid(c, name, "FieldValueRequired", "spec.usages", "Required value");
                json_t *e = json_object_get(spec, "expirationSeconds");
                if (e && !json_is_null(e) && (!json_is_integer(e) || (exp = json_integer_value(e)) < 600 || exp > INT32_MAX))
                        return fail_invalid(c, name, "FieldValueInvalid", "spec.expirationSeconds",
                                            "Invalid value: may not specify a duration less than 600 seconds (10 minutes)");
                int r = kube_csr_parse_request(json_string_value(json_object_get(spec, "request")), &req, &why);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        _cleanup_free_ char *m = NULL;
                        if (asprintf(&m, "Invalid value: \"...\": %s", why.data) < 0)
                                return -ENOMEM;
                        return fail_invalid(c, name, "FieldValueInvalid", "spec.request", m);
                }
                /* the requester, never what the body says */
                json_t *groups = json_array();
                for (char **g = c->user.groups; groups && g && *g; g++)
                        json_array_append_new(groups, json_string(*g));
                if (!groups)
                        return -ENOMEM;
                json_object_set_new(spec, "username", json_string(c->user.name));
                json_object_set_new(spec, "groups", groups);
                json_object_set_new(spec, "uid", json_string(""));
                json_object_del(spec, "extra");
                json_object_set_new(obj, "status", json_object());
        } else if (streq(res, "pods")) {
                json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Pending"));
        } else if (streq(res, "poddisruptionbudgets")) {
                kube_pdb_status st;
                _cleanup_json_ json_t *none = json_array();
                if (!none)
                        return -ENOMEM;
                if (kube_pdb_compute(obj, none, &st) < 0)
                        return fail_invalid(c, name, "FieldValueInvalid", "spec",
                                            "Invalid value: exactly one of minAvailable and maxUnavailable (an integer >= 0 or a percentage), and a valid selector");
                json_object_set_new(md, "generation", json_integer(1));
                json_object_del(obj, "status");
        } else if (streq(res, "clusterrolebindings") || streq(res, "rolebindings")) {
                if (!json_path_string(obj, "roleRef.name") || !json_path_string(obj, "roleRef.kind"))
                        return fail_invalid(c, name, "FieldValueRequired", "roleRef", "Required value");
        } else if (streq(res, "daemonsets"))
                json_object_set_new(md, "generation", json_integer(1));
        return 0;
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
        kube_format_time(c->now, ts);
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
        r = admit_create(c, obj, name);
        if (r != 0)
                return r < 0 ? r : 0;
        r = kube_store_create(c->api->etcd, c->res, obj, &c->err);
        if (r < 0)
                return fail_store(c, r, name);
        return reply_object(c, 201, obj);
}

/* CSR conditions after a write through /status or /approval: each type at most once, Approved
 * and Denied not both, neither removed once there (A.6), and through /status not changed at
 * all. Timestamps that are null or missing default to now. Returns 0 or 1 (replied 422). */
static int csr_check_conditions(call *c, json_t *old, json_t *obj, write_mode mode) {
        const char *name = json_string_value(json_path(obj, "metadata.name"));
        json_t *conds = json_path(obj, "status.conditions");
        char ts[32];
        size_t i;
        json_t *cond;

        kube_format_time(c->now, ts);
        if (conds && !json_is_array(conds) && !json_is_null(conds))
                return fail_invalid(c, strempty(name), "FieldValueInvalid", "status.conditions", "Invalid value: must be a list");
        json_array_foreach(conds, i, cond) {
                const char *t = json_string_value(json_object_get(cond, "type"));
                if (!json_is_object(cond) || !t || !*t)
                        return fail_invalid(c, strempty(name), "FieldValueRequired", "status.conditions[].type", "Required value");
                for (size_t j = 0; j < i; j++)
                        if (streq(strempty(json_string_value(json_object_get(json_array_get(conds, j), "type"))), t))
                                return fail_invalid(c, strempty(name), "FieldValueDuplicate", "status.conditions[].type",
                                                    "Duplicate value");
                if (!json_is_string(json_object_get(cond, "status")))
                        json_object_set_new(cond, "status", json_string("True"));
                if (!json_is_string(json_object_get(cond, "lastUpdateTime")))
                        json_object_set_new(cond, "lastUpdateTime", json_string(ts));
                if (!json_is_string(json_object_get(cond, "lastTransitionTime")))
                        json_object_set_new(cond, "lastTransitionTime", json_string(ts));
        }
        if (kube_csr_condition(obj, "Approved") && kube_csr_condition(obj, "Denied"))
                return fail_invalid(c, strempty(name), "FieldValueInvalid", "status.conditions",
                                    "Invalid value: \"Approved\": Approved and Denied conditions are mutually exclusive");
        static const char *const decisions[] = { "Approved", "Denied" };
        for (size_t k = 0; k < ELEMENTSOF(decisions); k++) {
                bool was = kube_csr_condition(old, decisions[k]), is = kube_csr_condition(obj, decisions[k]);
                if (was && !is)
                        return fail_invalid(c, strempty(name), "FieldValueForbidden", "status.conditions",
                                            "Forbidden: updates may not remove a condition of type \"Approved\" or \"Denied\"");
                if (mode == WRITE_STATUS && !was && is)
                        return fail_invalid(c, strempty(name), "FieldValueForbidden", "status.conditions",
                                            "Forbidden: updates may not add a condition of type \"Approved\" or \"Denied\" (use the approval subresource)");
        }
        const char *old_cert = json_path_string(old, "status.certificate");
        const char *new_cert = json_path_string(obj, "status.certificate");
        if (old_cert && *old_cert && (!new_cert || !streq(old_cert, new_cert)))
                return fail_invalid(c, strempty(name), "FieldValueForbidden", "status.certificate",
                                    "Forbidden: updates may not modify existing certificate content");
        return 0;
}

/* Carry what a write may not change from old into obj: identity, and for resources with a
 * status subresource the status (main resource) or everything but the status (/status); a CSR's
 * spec never changes, its /approval writes only the conditions. Returns 0, 1 when the write was
 * refused (replied), or -ENOMEM. */
static int carry_over(call *c, json_t *old, json_t **obj, write_mode mode) {
        bool csr = streq(c->res->name, "certificatesigningrequests");
        /* NodeRestriction: a node writes the status of the pods bound to it only */
        const char *node = startswith(c->user.name, "system:node:");
        if (node && streq(c->res->name, "pods") && !strv_contains(c->user.groups, "system:masters")) {
                const char *bound = json_path_string(old, "spec.nodeName");
                const char *pod = strempty(json_path_string(old, "metadata.name"));
                if (!bound || !streq(bound, node))
                        return failf(c, 403, "Forbidden", pod, "pods \"%s\" is forbidden: node \"%s\" can only update pod status for pods with spec.nodeName set to itself",
                                     pod, node) < 0 ? -ENOMEM : 1;
        }
        if (mode != WRITE_MAIN) {
                json_t *n = json_deep_copy(old);
                json_t *st = json_object_get(*obj, "status");
                if (!n)
                        return -ENOMEM;
                if (mode == WRITE_APPROVAL) {
                        /* only the conditions; the certificate stays */
                        json_t *nst = json_object_get(n, "status");
                        if (!json_is_object(nst)) {
                                nst = json_object();
                                json_object_set_new(n, "status", nst);
                        }
                        json_t *conds = json_object_get(st, "conditions");
                        if (conds)
                                json_object_set(nst, "conditions", conds);
                        else
                                json_object_del(nst, "conditions");
                } else if (st)
                        json_object_set(n, "status", st);
                else
                        json_object_del(n, "status");
                /* the caller's resourceVersion precondition stays */
                json_t *rv = json_path(*obj, "metadata.resourceVersion");
                if (rv)
                        json_object_set(json_object_get(n, "metadata"), "resourceVersion", rv);
                json_decref(*obj);
                *obj = n;
                return csr ? csr_check_conditions(c, old, n, mode) : 0;
        }
        json_t *md = json_object_get(*obj, "metadata"), *omd = json_object_get(old, "metadata");
        static const char *const keep[] = { "uid", "creationTimestamp", "name", "namespace", "generation" };
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
        if (csr) {
                json_t *spec = json_object_get(old, "spec");
                if (spec)
                        json_object_set(*obj, "spec", spec);
        }
        return 0;
}

static int do_update(call *c, const char *ns, const char *name, write_mode mode) {
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
        r = carry_over(c, old, &obj, mode);
        if (r != 0)
                return r < 0 ? r : 0;
        /* no resourceVersion: an unconditional update, as these kinds allow */
        r = kube_store_update(c->api->etcd, c->res, obj, rv > 0 ? rv : old_rv, &c->err);
        if (r < 0)
                return fail_store(c, r, name);
        return reply_object(c, 200, obj);
}

static int do_patch(call *c, const char *ns, const char *name, write_mode mode) {
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
                r = carry_over(c, old, &obj, mode);
                if (r != 0)
                        return r < 0 ? r : 0;
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

/* ---- eviction (pkg/registry/core/pod/storage/eviction.go) ---- */

static int reply_eviction_blocked(call *c, const char *pdb, const kube_pdb_status *st) {
        _cleanup_free_ char *cause = NULL;
        if (asprintf(&cause, "The disruption budget %s needs %" PRId64 " healthy pods and has %" PRId64 " currently", pdb,
                     st->desired_healthy, st->current_healthy) < 0)
                return -ENOMEM;
        return reply_json(c->resp, 429,
                          json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:{s:[{s:s,s:s}]},s:i}", "kind", "Status", "apiVersion",
                                    "v1", "metadata", "status", "Failure", "message",
                                    "Cannot evict pod as it would violate the pod's disruption budget.", "reason",
                                    "TooManyRequests", "details", "causes", "reason", "DisruptionBudget", "message",
                                    cause, "code", 429));
}

static int do_eviction(call *c, const char *ns, const char *name) {
        _cleanup_json_ json_t *body = body_object(c);
        _cleanup_json_ json_t *pod = NULL, *pdbs = NULL, *pods = NULL;
        json_t *match = NULL;
        int64_t rv;
        size_t i;
        json_t *pdb;
        int r;

        if (!body)
                return 0;
        const char *kind = json_string_value(json_object_get(body, "kind"));
        const char *api_version = json_string_value(json_object_get(body, "apiVersion"));
        const char *body_name = json_path_string(body, "metadata.name");
        if ((kind && !streq(kind, "Eviction")) ||
            (api_version && !streq(api_version, "policy/v1") && !streq(api_version, "policy/v1beta1")))
                return failf(c, 400, "BadRequest", name, "the body of the request is not a policy/v1 Eviction");
        if (body_name && !streq(body_name, name))
                return failf(c, 400, "BadRequest", name, "name in URL does not match name in Eviction object");
        bool dry_run = false;
        json_t *dr;
        json_array_foreach(json_path(body, "deleteOptions.dryRun"), i, dr)
                dry_run = dry_run || streq(strempty(json_string_value(dr)), "All");

        r = kube_store_get(c->api->etcd, c->res, ns, name, &pod, &c->err);
        if (r < 0)
                return fail_store(c, r, name);
        if (kube_object_rv(pod, &rv) < 0)
                return -EBADMSG;
        const char *phase = json_path_string(pod, "status.phase");
        /* terminal and pending pods go without asking the budgets */
        bool check = !(phase && (streq(phase, "Succeeded") || streq(phase, "Failed") || streq(phase, "Pending")));
        if (check) {
                r = kube_store_list(c->api->etcd, kube_resource_find("poddisruptionbudgets"), ns, &pdbs, NULL, &c->err);
                if (r < 0)
                        return fail_store(c, r, name);
                json_array_foreach(pdbs, i, pdb) {
                        int m = kube_selector_match(json_path(pdb, "spec.selector"), json_path(pod, "metadata.labels"));
                        if (m <= 0)
                                continue;
                        if (match)
                                return failf(c, 500, "InternalError", name,
                                             "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.");
                        match = pdb;
                }
        }
        if (match) {
                kube_pdb_status st;
                const char *pdb_name = strempty(json_path_string(match, "metadata.name"));
                r = kube_store_list(c->api->etcd, c->res, ns, &pods, NULL, &c->err);
                if (r < 0)
                        return fail_store(c, r, name);
                if (kube_pdb_compute(match, pods, &st) < 0)
                        return failf(c, 500, "InternalError", name, "the disruption budget %s is invalid", pdb_name);
                /* an unready pod may go while the budget is met without it (IfHealthyBudget) */
                bool unready_ok = !kube_pod_healthy(pod) && st.current_healthy >= st.desired_healthy;
                if (!unready_ok && st.disruptions_allowed <= 0)
                        return reply_eviction_blocked(c, pdb_name, &st);
        }
        if (!dry_run) {
                r = kube_store_delete(c->api->etcd, c->res, ns, name, rv, &c->err);
                if (r == -ESTALE)
                        return failf(c, 409, "Conflict", name,
                                     "Operation cannot be fulfilled on pods \"%s\": the object has been modified; please apply your changes to the latest version and try again", name);
                if (r < 0)
                        return fail_store(c, r, name);
        }
        return reply_json(c->resp, 201,
                          json_pack("{s:s,s:s,s:{},s:s,s:i}", "kind", "Status", "apiVersion", "v1", "metadata", "status",
                                    "Success", "code", 201));
}

/* ---- watch ---- */

/* One watch: every poll lists the collection from etcd and sends the difference to what the
 * client was last sent (ADDED, MODIFIED, DELETED). Stand-in: changes between two polls collapse
 * into one event, and no BOOKMARK events are sent. */
typedef struct watch {
        kube_api *api;
        const kube_resource *res;
        char *ns, *labels, *fields;
        json_t *known;             /* "ns/name" -> the object last sent */
        int64_t deadline;          /* monotonic ms */
        int64_t since;             /* resourceVersion to start from; 0: the current state */
        bool started;
} watch;

static void watch_free(void *userdata) {
        watch *w = userdata;
        if (!w)
                return;
        free(w->ns);
        free(w->labels);
        free(w->fields);
        json_decref(w->known);
        free(w);
}

static int watch_event(buf *out, const char *type, json_t *obj) {
        _cleanup_json_ json_t *ev = json_pack("{s:s,s:O}", "type", type, "object", obj);
        _cleanup_free_ char *text = ev ? json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (!text)
                return -ENOMEM;
        int r = buf_puts(out, text);
        return r < 0 ? r : buf_puts(out, "\n");
}

/* The objects selected, keyed "ns/name", decorated as reads are. */
static int watch_snapshot(watch *w, int64_t rev, json_t **ret, int64_t *ret_rev, buf *err) {
        _cleanup_json_ json_t *items = NULL, *map = json_object();
        call c = { .api = w->api, .res = w->res, .now = w->api->now ? w->api->now() : time(NULL), .err = BUF_INIT(1024) };
        size_t i;
        json_t *o;
        int r = map ? kube_store_list_at(w->api->etcd, w->res, w->ns, rev, &items, ret_rev, err) : -ENOMEM;
        if (r >= 0)
                r = filter_items(w->res, items, w->labels, w->fields);
        json_array_foreach(items, i, o) {
                _cleanup_free_ char *key = NULL;
                if (r < 0)
                        break;
                if ((r = decorate(&c, o)) < 0)
                        break;
                if (asprintf(&key, "%s/%s", strempty(json_path_string(o, "metadata.namespace")),
                             strempty(json_path_string(o, "metadata.name"))) < 0 ||
                    json_object_set(map, key, o) < 0)
                        r = -ENOMEM;
        }
        buf_free(&c.err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(map);
        return 0;
}

static int watch_produce(void *userdata, buf *out) {
        watch *w = userdata;
        _cleanup_json_ json_t *now_map = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        int64_t rev = 0;
        const char *key;
        json_t *o, *tmp;
        int r;

        if (!w->started) {
                w->started = true;
                if (w->since > 0) {
                        /* the state at the client's resourceVersion, unless that is now or later */
                        r = watch_snapshot(w, 0, &now_map, &rev, &err);
                        if (r < 0)
                                return r;
                        if (w->since < rev) {
                                json_decref(now_map);
                                now_map = NULL;
                                buf_clear(&err);
                                json_decref(w->known);
                                w->known = NULL;
                                r = watch_snapshot(w, w->since, &w->known, NULL, &err);
                                if (r == -ENOMEM)
                                        return r;
                                if (r < 0) {
                                        /* compacted: the client lists again (410 Expired) */
                                        _cleanup_free_ char *m = NULL;
                                        if (asprintf(&m, "too old resource version: %" PRId64 " (%" PRId64 ")", w->since, rev) < 0)
                                                return -ENOMEM;
                                        _cleanup_json_ json_t *st = json_pack(
                                                "{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                                                "metadata", "status", "Failure", "message", m, "reason", "Expired", "code", 410);
                                        if (!st)
                                                return -ENOMEM;
                                        r = watch_event(out, "ERROR", st);
                                        return r < 0 ? r : 1;
                                }
                        } else {
                                json_decref(w->known);
                                w->known = TAKE_PTR(now_map);
                                return 0;
                        }
                }
        }
        if (time_now_ms() >= w->deadline)
                return 1;
        r = watch_snapshot(w, 0, &now_map, &rev, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0; /* etcd did not answer this time: try at the next poll */
        json_object_foreach(now_map, key, o) {
                json_t *before = json_object_get(w->known, key);
                const char *rv_now = json_path_string(o, "metadata.resourceVersion");
                const char *rv_before = before ? json_path_string(before, "metadata.resourceVersion") : NULL;
                if (before && rv_before && rv_now && streq(rv_before, rv_now) && json_equal(before, o))
                        continue;
                r = watch_event(out, before ? "MODIFIED" : "ADDED", o);
                if (r < 0)
                        return r;
        }
        json_object_foreach_safe(w->known, tmp, key, o) {
                if (json_object_get(now_map, key))
                        continue;
                char rvs[24];
                snprintf(rvs, sizeof(rvs), "%" PRId64, rev);
                json_object_set_new(json_object_get(o, "metadata"), "resourceVersion", json_string(rvs));
                r = watch_event(out, "DELETED", o);
                if (r < 0)
                        return r;
        }
        json_decref(w->known);
        w->known = TAKE_PTR(now_map);
        return 0;
}

static int do_watch(call *c, const char *ns) {
        _cleanup_free_ char *since = http_server_query_param(c->req, "resourceVersion");
        _cleanup_free_ char *timeout = http_server_query_param(c->req, "timeoutSeconds");
        watch *w = calloc(1, sizeof(*w));
        long t = 1800;
        int r;

        if (!w)
                return -ENOMEM;
        *w = (watch){ .api = c->api, .res = c->res };
        w->labels = http_server_query_param(c->req, "labelSelector");
        w->fields = http_server_query_param(c->req, "fieldSelector");
        if ((ns && !(w->ns = strdup(ns))) || !(w->known = json_object())) {
                watch_free(w);
                return -ENOMEM;
        }
        if (since && *since) {
                _cleanup_json_ json_t *probe = json_pack("{s:{s:s}}", "metadata", "resourceVersion", since);
                if (!probe || kube_object_rv(probe, &w->since) < 0) {
                        watch_free(w);
                        return failf(c, 400, "BadRequest", NULL, "invalid resourceVersion \"%s\"", since);
                }
        }
        if (timeout && *timeout) {
                char *end;
                t = strtol(timeout, &end, 10);
                if (*end || t < 0) {
                        watch_free(w);
                        return failf(c, 400, "BadRequest", NULL, "invalid timeoutSeconds \"%s\"", timeout);
                }
                if (t == 0 || t > 1800)
                        t = 1800;
        }
        /* the selectors must parse before the stream starts: try them on nothing */
        _cleanup_json_ json_t *probe_items = json_pack("[{s:{s:s,s:s}}]", "metadata", "name", "", "namespace", "");
        r = probe_items ? filter_items(c->res, probe_items, w->labels, w->fields) : -ENOMEM;
        if (r < 0) {
                const char *sel = w->fields && *w->fields ? w->fields : strempty(w->labels);
                _cleanup_free_ char *copy = strdup(sel);
                watch_free(w);
                if (r == -EINVAL)
                        return failf(c, 400, "BadRequest", NULL, "unable to parse requirement: selector \"%s\" is not supported by this stand-in",
                                     strempty(copy));
                return r;
        }
        w->deadline = time_now_ms() + t * 1000;
        c->resp->status = 200;
        c->resp->content_type = "application/json";
        buf_clear(&c->resp->body);
        c->resp->stream = (http_server_stream){ .produce = watch_produce, .free_fn = watch_free, .userdata = w,
                                                .interval_ms = 250 };
        return 0;
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
        if (!c->res || !streq(c->res->group, c->group) || (ns && !c->res->namespaced))
                return failf(c, 404, "NotFound", NULL, "the server could not find the requested resource");
        write_mode mode = WRITE_MAIN;
        if (sub && streq(sub, "status") && c->res->has_status)
                mode = WRITE_STATUS;
        else if (sub && streq(sub, "approval") && streq(c->res->name, "certificatesigningrequests"))
                mode = WRITE_APPROVAL;
        else if (sub && !(streq(sub, "eviction") && streq(c->res->name, "pods")))
                return failf(c, 404, "NotFound", NULL, "the server could not find the requested resource");
        bool eviction = sub && streq(sub, "eviction");
        const char *verb = verb_of(c->req->method, !name, c);
        if (eviction)
                verb = streq(c->req->method, "POST") ? "create" : NULL;
        else if (sub && verb && !strv_contains((char *const[]){ (char *) "get", (char *) "update", (char *) "patch", NULL }, verb))
                verb = NULL;
        if (!verb)
                return failf(c, 405, "MethodNotAllowed", name, "the server does not allow this method on the requested resource");
        c->attrs = (kube_attrs){ .verb = verb, .api_group = c->group, .resource = c->res->name,
                                 .subresource = sub, .namespace = ns, .name = name };
        if (!c->user.name || !kube_authz_allowed(&c->user, &c->attrs, c->api->authorization_mode))
                return deny(c);
        if (c->res->namespaced && !ns && !streq(verb, "list") && !streq(verb, "watch"))
                return failf(c, 404, "NotFound", NULL, "the server could not find the requested resource");

        if (eviction)
                return do_eviction(c, ns, name);
        if (streq(verb, "watch"))
                return do_watch(c, ns);
        if (streq(verb, "list"))
                return do_list(c, ns);
        if (streq(verb, "create"))
                return do_create(c, ns);
        if (streq(verb, "get")) {
                _cleanup_json_ json_t *obj = NULL;
                int r = kube_store_get(c->api->etcd, c->res, ns, name, &obj, &c->err);
                if (r < 0)
                        return fail_store(c, r, name);
                r = decorate(c, obj);
                if (r < 0)
                        return r;
                return reply_object(c, 200, obj);
        }
        if (streq(verb, "update"))
                return do_update(c, ns, name, mode);
        if (streq(verb, "patch"))
                return do_patch(c, ns, name, mode);
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

        /* /apis/GROUP/v1/...: a resource path of a group served */
        const char *group = NULL;
        if ((rest = startswith(path, "/apis/"))) {
                for (const char *const *g = kube_api_groups; *g; g++) {
                        const char *after = startswith(rest, *g);
                        const char *res_path = after ? startswith(after, "/v1/") : NULL;
                        if (res_path && *res_path) {
                                group = *g;
                                rest = res_path;
                                break;
                        }
                }
        }
        if (group || ((rest = startswith(path, "/api/v1/")) && *rest)) {
                c.group = group ? group : "";
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
                return reply_resource_list(&c, "");
        if ((rest = startswith(path, "/apis/")))
                for (const char *const *g = kube_api_groups; *g; g++) {
                        const char *after = startswith(rest, *g);
                        if (after && (streq(after, "") || streq(after, "/")))
                                return reply_api_group(&c, *g);
                        if (after && (streq(after, "/v1") || streq(after, "/v1/")))
                                return reply_resource_list(&c, *g);
                }
        return kube_api_status(resp, 404, "NotFound", "the server could not find the requested resource");
}

int kube_api_ensure_namespaces(kube_api *api, buf *err) {
        static const char *const names[] = { "default", "kube-system", "kube-public", "kube-node-lease" };
        const kube_resource *res = kube_resource_find("namespaces");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char uid[UUID_STRING_SIZE], ts[32];
                random_uuid(uid);
                kube_format_time(api->now ? api->now() : time(NULL), ts);
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

int kube_api_run_controllers(kube_api *api, buf *err) {
        const kube_resource *res = kube_resource_find("certificatesigningrequests");
        _cleanup_json_ json_t *csrs = NULL, *crbs = NULL;
        time_t now = api->now ? api->now() : time(NULL);
        int changed = 0;
        size_t i;
        json_t *csr;
        int r;

        r = kube_store_list(api->etcd, res, NULL, &csrs, NULL, err);
        if (r < 0)
                return r;
        json_array_foreach(csrs, i, csr) {
                int64_t rv;
                int a = 0, s = 0;
                if (kube_object_rv(csr, &rv) < 0)
                        continue;
                if (!kube_csr_condition(csr, "Approved") && !kube_csr_condition(csr, "Denied")) {
                        if (!crbs) {
                                r = kube_store_list(api->etcd, kube_resource_find("clusterrolebindings"), NULL, &crbs,
                                                    NULL, err);
                                if (r < 0)
                                        return r;
                        }
                        a = kube_csr_auto_approve(csr, crbs, now);
                        if (a < 0)
                                return a;
                }
                if (api->signing_cert && api->signing_key) {
                        s = kube_csr_sign(csr, api->signing_cert, api->signing_key, api->signing_duration, now, err);
                        if (s < 0)
                                return s;
                }
                if (!a && !s)
                        continue;
                r = kube_store_update(api->etcd, res, csr, rv, err);
                if (r == -ESTALE || r == -ENOENT)
                        continue; /* changed or gone meanwhile: the next round sees it */
                if (r < 0)
                        return r;
                changed++;
        }
        return changed;
}
