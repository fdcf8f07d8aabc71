/* Objects in etcd (kube-store.h). */
#include "kube-store.h"

#include <inttypes.h>
#include <stdio.h>

#include "json.h"

#define CORE(n, sing, k, prefix, ns, sn, st) \
        { .name = n, .singular = sing, .kind = k, .list_kind = k "List", .etcd_prefix = prefix, \
          .namespaced = ns, .short_name = sn, .has_status = st, .group = "", .version = "v1" }
#define GROUP(g, n, sing, k, ns, sn, st) \
        { .name = n, .singular = sing, .kind = k, .list_kind = k "List", .etcd_prefix = n, \
          .namespaced = ns, .short_name = sn, .has_status = st, .group = g, .version = "v1" }

static const kube_resource namespaces = CORE("namespaces", "namespace", "Namespace", "namespaces", false, "ns", true);
static const kube_resource configmaps = CORE("configmaps", "configmap", "ConfigMap", "configmaps", true, "cm", false);
static const kube_resource secrets = CORE("secrets", "secret", "Secret", "secrets", true, NULL, false);
static const kube_resource nodes = CORE("nodes", "node", "Node", "minions", false, "no", true);
static const kube_resource pods = CORE("pods", "pod", "Pod", "pods", true, "po", true);
static const kube_resource csrs = GROUP("certificates.k8s.io", "certificatesigningrequests",
                                        "certificatesigningrequest", "CertificateSigningRequest", false, "csr", true);
static const kube_resource pdbs = GROUP("policy", "poddisruptionbudgets", "poddisruptionbudget",
                                        "PodDisruptionBudget", true, "pdb", true);
static const kube_resource crbs = GROUP("rbac.authorization.k8s.io", "clusterrolebindings",
                                        "clusterrolebinding", "ClusterRoleBinding", false, NULL, false);
static const kube_resource roles = GROUP("rbac.authorization.k8s.io", "roles", "role", "Role", true, NULL, false);
static const kube_resource rolebindings = GROUP("rbac.authorization.k8s.io", "rolebindings", "rolebinding",
                                                "RoleBinding", true, NULL, false);
static const kube_resource daemonsets = GROUP("apps", "daemonsets", "daemonset", "DaemonSet", true, "ds", true);

const kube_resource *const kube_resources[] = { &namespaces, &configmaps, &secrets, &nodes, &pods,
                                                &csrs, &pdbs, &crbs, &roles, &rolebindings, &daemonsets, NULL };
const char *const kube_api_groups[] = { "apps", "certificates.k8s.io", "policy", "rbac.authorization.k8s.io", NULL };

const kube_resource *kube_resource_find(const char *name) {
        for (const kube_resource *const *r = kube_resources; *r; r++)
                if (streq((*r)->name, name))
                        return *r;
        return NULL;
}

char *kube_store_key(const kube_resource *res, const char *namespace, const char *name) {
        char *k = NULL;
        int r;
        if (res->namespaced && namespace)
                r = asprintf(&k, "/registry/%s/%s/%s", res->etcd_prefix, namespace, strempty(name));
        else
                r = asprintf(&k, "/registry/%s/%s", res->etcd_prefix, strempty(name));
        return r < 0 ? NULL : k;
}

void kube_format_time(time_t t, char out[32]) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int kube_object_rv(json_t *obj, int64_t *ret) {
        json_t *v = json_object_get(json_object_get(obj, "metadata"), "resourceVersion");
        int64_t n = 0;
        if (!v || (json_is_string(v) && !*json_string_value(v))) {
                *ret = 0;
                return 0;
        }
        if (!json_is_string(v))
                return -EINVAL;
        for (const char *p = json_string_value(v); *p; p++) {
                if (*p < '0' || *p > '9' || n > INT64_MAX / 10 - 1)
                        return -EINVAL;
                n = n * 10 + (*p - '0');
        }
        if (n <= 0)
                return -EINVAL;
        *ret = n;
        return 0;
}

static int set_rv(json_t *obj, int64_t rv) {
        char s[24];
        json_t *md = json_object_get(obj, "metadata");
        snprintf(s, sizeof(s), "%" PRId64, rv);
        return json_is_object(md) && json_object_set_new(md, "resourceVersion", json_string(s)) == 0
                       ? 0
                       : -ENOMEM;
}

/* The value to store: obj without resourceVersion. */
static char *encode(json_t *obj) {
        _cleanup_json_ json_t *copy = json_deep_copy(obj);
        json_t *md = copy ? json_object_get(copy, "metadata") : NULL;
        if (!md)
                return NULL;
        json_object_del(md, "resourceVersion");
        return json_dump_compact(copy);
}

static int decode(const etcd_client_kv *kv, json_t **ret, buf *err) {
        _cleanup_json_ json_t *obj = NULL;
        if (json_parse(kv->value, kv->value_len, &obj, NULL) < 0 || !json_is_object(obj) ||
            !json_is_object(json_object_get(obj, "metadata"))) {
                if (err)
                        buf_printf(err, "etcd key %s does not hold a JSON object", kv->key);
                return -EBADMSG;
        }
        int r = set_rv(obj, kv->mod_revision);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(obj);
        return 0;
}

static char *object_key(const kube_resource *res, json_t *obj) {
        const char *name = json_string_value(json_path(obj, "metadata.name"));
        const char *ns = json_string_value(json_path(obj, "metadata.namespace"));
        if (!name || (res->namespaced && !ns))
                return NULL;
        return kube_store_key(res, ns, name);
}

int kube_store_get(etcd_client *etcd, const kube_resource *res, const char *namespace,
                   const char *name, json_t **ret, buf *err) {
        _cleanup_(etcd_client_kv_done) etcd_client_kv kv = {};
        _cleanup_free_ char *key = kube_store_key(res, namespace, name);
        if (!key)
                return -ENOMEM;
        int r = etcd_client_get(etcd, key, &kv, NULL, err);
        if (r < 0)
                return r;
        return decode(&kv, ret, err);
}

int kube_store_list(etcd_client *etcd, const kube_resource *res, const char *namespace,
                    json_t **ret, int64_t *ret_revision, buf *err) {
        return kube_store_list_at(etcd, res, namespace, 0, ret, ret_revision, err);
}

int kube_store_list_at(etcd_client *etcd, const kube_resource *res, const char *namespace, int64_t rev,
                       json_t **ret, int64_t *ret_revision, buf *err) {
        _cleanup_(etcd_client_range_result_done) etcd_client_range_result rr = {};
        _cleanup_free_ char *prefix = kube_store_key(res, namespace, NULL);
        _cleanup_json_ json_t *items = json_array();
        if (!prefix || !items)
                return -ENOMEM;
        if (res->namespaced && namespace) {
                /* "/registry/configmaps/ns/" */
                size_t n = strlen(prefix);
                if (n == 0 || prefix[n - 1] != '/')
                        return -EINVAL;
        }
        int r = etcd_client_list_prefix_at(etcd, prefix, rev, 0, &rr, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < rr.n_kvs; i++) {
                json_t *obj = NULL;
                r = decode(&rr.kvs[i], &obj, err);
                if (r < 0)
                        return r;
                if (json_array_append_new(items, obj) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(items);
        if (ret_revision)
                *ret_revision = rr.revision;
        return 0;
}

int kube_store_create(etcd_client *etcd, const kube_resource *res, json_t *obj, buf *err) {
        _cleanup_free_ char *key = object_key(res, obj);
        _cleanup_free_ char *value = NULL;
        int64_t rev;
        if (!key || !(value = encode(obj)))
                return -ENOMEM;
        int r = etcd_client_create(etcd, key, value, strlen(value), &rev, err);
        if (r < 0)
                return r;
        return set_rv(obj, rev);
}

int kube_store_update(etcd_client *etcd, const kube_resource *res, json_t *obj, int64_t rv,
                      buf *err) {
        _cleanup_free_ char *key = object_key(res, obj);
        _cleanup_free_ char *value = NULL;
        int64_t rev;
        if (!key || !(value = encode(obj)))
                return -ENOMEM;
        int r = etcd_client_update(etcd, key, value, strlen(value), rv, &rev, err);
        if (r < 0)
                return r;
        return set_rv(obj, rev);
}

int kube_store_delete(etcd_client *etcd, const kube_resource *res, const char *namespace,
                      const char *name, int64_t rv, buf *err) {
        _cleanup_free_ char *key = kube_store_key(res, namespace, name);
        if (!key)
                return -ENOMEM;
        return etcd_client_delete(etcd, key, rv, NULL, err);
}
