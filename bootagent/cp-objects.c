#include "cp-objects.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "strv.h"

static bool key_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

int cp_encryption_config(const char *provider, const char *key_name, const char *key_b64, char **ret, buf *err) {
        uint8_t *key = NULL;
        size_t len = 0;
        char *text = NULL;
        bool gcm;

        if (!provider || !(streq(provider, "secretbox") || streq(provider, "aescbc") || streq(provider, "aesgcm"))) {
                buf_printf(err, "unknown encryption provider '%s' (secretbox, aescbc or aesgcm)", strempty(provider));
                return -EINVAL;
        }
        gcm = streq(provider, "aesgcm");
        if (!key_name || !key_name_valid(key_name)) {
                buf_printf(err, "invalid encryption key name '%s' (a-z, 0-9, '-'; at most 63)", strempty(key_name));
                return -EINVAL;
        }
        if (!key_b64 || base64_decode(key_b64, &key, &len) < 0) {
                buf_printf(err, "the encryption key is not standard base64");
                return -EINVAL;
        }
        explicit_bzero(key, len);
        free(key);
        if (!(len == 32 || (gcm && (len == 16 || len == 24)))) {
                buf_printf(err, "the encryption key is %zu bytes; %s needs %s", len, provider, gcm ? "16, 24 or 32" : "32");
                return -EINVAL;
        }
        if (asprintf(&text,
                     "apiVersion: apiserver.config.k8s.io/v1\n"
                     "kind: EncryptionConfiguration\n"
                     "resources:\n"
                     "  - resources:\n"
                     "      - secrets\n"
                     "    providers:\n"
                     "      - %s:\n"
                     "          keys:\n"
                     "            - name: %s\n"
                     "              secret: %s\n"
                     "      - identity: {}\n",
                     provider, key_name, key_b64) < 0)
                return -ENOMEM;
        *ret = text;
        return 0;
}

static int set_b64(json_t *data, const char *key, const char *value) {
        _cleanup_free_ char *b = base64_encode(value, strlen(value));
        if (!b || json_object_set_new(data, key, json_string(b)) < 0) {
                if (b)
                        explicit_bzero(b, strlen(b));
                return -ENOMEM;
        }
        explicit_bzero(b, strlen(b));
        return 0;
}

json_t *cp_bootstrap_token_secret(const kube_bootstrap_token *token, const char *expiration) {
        char name[64];
        snprintf(name, sizeof(name), "bootstrap-token-%s", token->id);
        _cleanup_json_ json_t *s = json_pack("{s:s,s:s,s:{s:s,s:s},s:s,s:{}}", "apiVersion", "v1", "kind", "Secret",
                                             "metadata", "name", name, "namespace", "kube-system", "type",
                                             "bootstrap.kubernetes.io/token", "data");
        if (!s)
                return NULL;
        json_t *data = json_object_get(s, "data");
        if (set_b64(data, "description", "the platform's node bootstrap token (bootagent, from Vault KV)") < 0 ||
            set_b64(data, "token-id", token->id) < 0 || set_b64(data, "token-secret", token->secret) < 0 ||
            set_b64(data, "usage-bootstrap-authentication", "true") < 0 ||
            set_b64(data, "usage-bootstrap-signing", "true") < 0 ||
            set_b64(data, "auth-extra-groups", CP_BOOTSTRAP_GROUP) < 0 ||
            (expiration && set_b64(data, "expiration", expiration) < 0))
                return NULL;
        return TAKE_PTR(s);
}

/* data[key] of a Secret, decoded, compared with want (constant time over want's length). */
static bool data_equals(json_t *data, const char *key, const char *want) {
        const char *b = json_string_value(json_object_get(data, key));
        uint8_t *v = NULL;
        size_t len = 0;
        bool eq;
        if (!b || base64_decode(b, &v, &len) < 0)
                return false;
        eq = len == strlen(want) && CRYPTO_memcmp(v, want, len) == 0;
        explicit_bzero(v, len);
        free(v);
        return eq;
}

bool cp_bootstrap_token_secret_matches(json_t *secret, const kube_bootstrap_token *token) {
        json_t *data = json_object_get(secret, "data");
        const char *type = json_string_value(json_object_get(secret, "type"));
        return type && streq(type, "bootstrap.kubernetes.io/token") && data_equals(data, "token-id", token->id) &&
               data_equals(data, "token-secret", token->secret);
}

int cp_cluster_info_kubeconfig(const char *server, const char *ca_pem, char **ret) {
        if (!server || !*server || !ca_pem || !*ca_pem)
                return -EINVAL;
        _cleanup_free_ char *ca = base64_encode(ca_pem, strlen(ca_pem));
        if (!ca)
                return -ENOMEM;
        /* kubeadm's: clientcmd's YAML of a Config holding one cluster named "". */
        if (asprintf(ret,
                     "apiVersion: v1\n"
                     "clusters:\n"
                     "- cluster:\n"
                     "    certificate-authority-data: %s\n"
                     "    server: %s\n"
                     "  name: \"\"\n"
                     "contexts: null\n"
                     "current-context: \"\"\n"
                     "kind: Config\n"
                     "preferences: {}\n"
                     "users: null\n",
                     ca, server) < 0)
                return -ENOMEM;
        return 0;
}

#define RBAC "rbac.authorization.k8s.io"

/* {"path": collection, "object": obj} (obj stolen), or NULL. */
static json_t *entry(const char *path, json_t *obj) {
        return obj ? json_pack("{s:s,s:o}", "path", path, "object", obj) : NULL;
}

static json_t *cluster_role_binding(const char *name, const char *role, const char *subject_kind, const char *subject) {
        json_t *o = json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:s,s:s},s:[{s:s,s:s,s:s}]}", "apiVersion", RBAC "/v1", "kind",
                              "ClusterRoleBinding", "metadata", "name", name, "roleRef", "apiGroup", RBAC, "kind",
                              "ClusterRole", "name", role, "subjects", "apiGroup", RBAC, "kind", subject_kind, "name",
                              subject);
        return entry("/apis/" RBAC "/v1/clusterrolebindings", o);
}

json_t *cp_rbac_objects(void) {
        static const char *const clusterinfo = "kubeadm:bootstrap-signer-clusterinfo";
        json_t *role = json_pack("{s:s,s:s,s:{s:s,s:s},s:[{s:[s],s:[s],s:[s],s:[s]}]}", "apiVersion", RBAC "/v1", "kind",
                                 "Role", "metadata", "name", clusterinfo, "namespace", "kube-public", "rules",
                                 "apiGroups", "", "resources", "configmaps", "resourceNames", "cluster-info", "verbs",
                                 "get");
        json_t *role_binding = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s,s:s},s:[{s:s,s:s,s:s}]}", "apiVersion",
                                         RBAC "/v1", "kind", "RoleBinding", "metadata", "name", clusterinfo,
                                         "namespace", "kube-public", "roleRef", "apiGroup", RBAC, "kind", "Role",
                                         "name", clusterinfo, "subjects", "apiGroup", RBAC, "kind", "User", "name",
                                         "system:anonymous");
        return json_pack("[o,o,o,o,o]",
                         cluster_role_binding("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", "Group",
                                              CP_BOOTSTRAP_GROUP),
                         cluster_role_binding("kubeadm:node-autoapprove-bootstrap",
                                              "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                                              "Group", CP_BOOTSTRAP_GROUP),
                         cluster_role_binding("kubeadm:node-autoapprove-certificate-rotation",
                                              "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                                              "Group", "system:nodes"),
                         entry("/apis/" RBAC "/v1/namespaces/kube-public/roles", role),
                         entry("/apis/" RBAC "/v1/namespaces/kube-public/rolebindings", role_binding));
}

/* One "--name=value" flag; values with white space would be split by the unit. */
static int flag(buf *b, const char *name, const char *value, buf *err) {
        if (!value)
                return 0;
        if (!*value || strpbrk(value, " \t\n\r")) {
                buf_printf(err, "flag --%s: empty value or white space in '%s'", name, value);
                return -EINVAL;
        }
        return buf_printf(b, "%s--%s=%s", b->len ? " " : "", name, value) < 0 ? -ENOMEM : 0;
}

static int env_line(buf *out, const char *key, buf *args) {
        return buf_printf(out, "%s=%s\n", key, args->len ? args->data : "") < 0 ? -ENOMEM : 0;
}

int cp_flags_env(const cp_flags *f, char **ret, buf *err) {
        _cleanup_buf_ buf out = BUF_INIT(256 * 1024), api = BUF_INIT(64 * 1024), sign = BUF_INIT(8192),
                          cm = BUF_INIT(64 * 1024), sched = BUF_INIT(8192);
        _cleanup_free_ char *etcd = NULL, *port = NULL;
        int r = 0;

        if (!f->etcd_servers || !*f->etcd_servers) {
                buf_printf(err, "no etcd servers");
                return -EINVAL;
        }
        if (!f->advertise_address || !f->tls_cert || !f->tls_key || !f->client_ca || !f->cluster_ca || !f->etcd_ca ||
            !f->etcd_cert || !f->etcd_key || !f->sa_key || !f->sa_pub || !f->encryption_config || !f->service_cidr) {
                buf_printf(err, "a required path or value of the control-plane flags is missing");
                return -EINVAL;
        }
        etcd = strv_join(f->etcd_servers, ",");
        if (!etcd || asprintf(&port, "%u", f->secure_port) < 0)
                return -ENOMEM;
        const char *api_flags[][2] = {
                { "advertise-address", f->advertise_address },
                { "bind-address", f->advertise_address },
                { "secure-port", port },
                { "allow-privileged", "true" },
                { "authorization-mode", "Node,RBAC" },
                { "enable-admission-plugins", "NodeRestriction" },
                { "enable-bootstrap-token-auth", "true" },
                { "client-ca-file", f->client_ca },
                { "tls-cert-file", f->tls_cert },
                { "tls-private-key-file", f->tls_key },
                { "etcd-servers", etcd },
                { "etcd-cafile", f->etcd_ca },
                { "etcd-certfile", f->etcd_cert },
                { "etcd-keyfile", f->etcd_key },
                { "kubelet-client-certificate", f->kubelet_cert },
                { "kubelet-client-key", f->kubelet_cert ? f->kubelet_key : NULL },
                { "kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname" },
                { "proxy-client-cert-file", f->front_proxy_cert },
                { "proxy-client-key-file", f->front_proxy_cert ? f->front_proxy_key : NULL },
                { "requestheader-client-ca-file", f->front_proxy_cert ? f->front_proxy_ca : NULL },
                { "requestheader-extra-headers-prefix", f->front_proxy_cert ? "X-Remote-Extra-" : NULL },
                { "requestheader-group-headers", f->front_proxy_cert ? "X-Remote-Group" : NULL },
                { "requestheader-username-headers", f->front_proxy_cert ? "X-Remote-User" : NULL },
                { "service-account-issuer", "https://kubernetes.default.svc.cluster.local" },
                { "service-account-key-file", f->sa_pub },
                { "service-account-signing-key-file", f->sa_key },
                { "service-cluster-ip-range", f->service_cidr },
                { "encryption-provider-config", f->encryption_config },
        };
        for (size_t i = 0; i < ELEMENTSOF(api_flags) && r >= 0; i++)
                r = flag(&api, api_flags[i][0], api_flags[i][1], err);
        if (r >= 0 && f->signing_cert && f->signing_key)
                if ((r = flag(&sign, "cluster-signing-cert-file", f->signing_cert, err)) >= 0)
                        r = flag(&sign, "cluster-signing-key-file", f->signing_key, err);
        if (r >= 0 && f->controller_manager_kubeconfig) {
                const char *cm_flags[][2] = {
                        { "kubeconfig", f->controller_manager_kubeconfig },
                        { "authentication-kubeconfig", f->controller_manager_kubeconfig },
                        { "authorization-kubeconfig", f->controller_manager_kubeconfig },
                        { "bind-address", "127.0.0.1" },
                        { "client-ca-file", f->client_ca },
                        { "root-ca-file", f->cluster_ca },
                        { "requestheader-client-ca-file", f->front_proxy_cert ? f->front_proxy_ca : NULL },
                        { "service-account-private-key-file", f->sa_key },
                        { "service-cluster-ip-range", f->service_cidr },
                        { "cluster-cidr", f->cluster_cidr },
                        { "allocate-node-cidrs", f->cluster_cidr ? "true" : NULL },
                        { "controllers", "*,bootstrapsigner,tokencleaner" },
                        { "use-service-account-credentials", "true" },
                        { "leader-elect", "true" },
                };
                for (size_t i = 0; i < ELEMENTSOF(cm_flags) && r >= 0; i++)
                        r = flag(&cm, cm_flags[i][0], cm_flags[i][1], err);
                if (r >= 0 && sign.len)
                        r = buf_printf(&cm, " %s", sign.data) < 0 ? -ENOMEM : 0;
        }
        if (r >= 0 && f->scheduler_kubeconfig) {
                const char *s_flags[][2] = {
                        { "kubeconfig", f->scheduler_kubeconfig },
                        { "authentication-kubeconfig", f->scheduler_kubeconfig },
                        { "authorization-kubeconfig", f->scheduler_kubeconfig },
                        { "bind-address", "127.0.0.1" },
                        { "leader-elect", "true" },
                };
                for (size_t i = 0; i < ELEMENTSOF(s_flags) && r >= 0; i++)
                        r = flag(&sched, s_flags[i][0], s_flags[i][1], err);
        }
        if (r < 0)
                return r;
        if (buf_puts(&out, "# Written by bootagent (control-plane role): the flags of kube-apiserver,\n"
                           "# kube-controller-manager and kube-scheduler (EnvironmentFile= of their units).\n") < 0 ||
            buf_printf(&out, "KUBE_ETCD_SERVERS=%s\n", etcd) < 0 || env_line(&out, "KUBE_APISERVER_ARGS", &api) < 0 ||
            env_line(&out, "KUBE_CLUSTER_SIGNING_ARGS", &sign) < 0 ||
            env_line(&out, "KUBE_CONTROLLER_MANAGER_ARGS", &cm) < 0 || env_line(&out, "KUBE_SCHEDULER_ARGS", &sched) < 0)
                return -ENOMEM;
        *ret = buf_steal(&out);
        return *ret ? 0 : -ENOMEM;
}
