/* Authentication and the fixed authorization policy of the Kubernetes API stand-in (kube-auth.h).
 * Upstream sources followed: plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go,
 * staging/src/k8s.io/cluster-bootstrap/util/secrets/secrets.go, staging/src/k8s.io/apiserver/
 * pkg/authentication/request/x509/x509.go, plugin/pkg/auth/authorizer/rbac/bootstrappolicy. */
#include "kube-auth.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>

#include "crypto.h"
#include "strv.h"

void kube_user_done(kube_user *u) {
        free(u->name);
        strv_free(u->groups);
        *u = (kube_user){};
}

static int user_make(const char *name, char **groups, kube_user *ret) {
        char *n = strdup(name);
        if (!n) {
                strv_free(groups);
                return -ENOMEM;
        }
        /* sorted and deduplicated, as upstream's GetGroups hands them on */
        strv_sort(groups);
        size_t j = 0;
        for (size_t i = 0; groups[i]; i++) {
                if (j > 0 && streq(groups[j - 1], groups[i]))
                        free(groups[i]);
                else
                        groups[j++] = groups[i];
        }
        groups[j] = NULL;
        *ret = (kube_user){ .name = n, .groups = groups };
        return 0;
}

int kube_auth_from_cert(const char *cn, char *const *orgs, kube_user *ret) {
        char **groups = NULL;
        if (!cn || !*cn)
                return -EACCES;
        for (char *const *o = orgs; o && *o; o++)
                if (strv_push(&groups, *o) < 0)
                        goto oom;
        if (strv_push(&groups, "system:authenticated") < 0)
                goto oom;
        return user_make(cn, groups, ret);
oom:
        strv_free(groups);
        return -ENOMEM;
}

int kube_auth_anonymous(kube_user *ret) {
        char **groups = NULL;
        if (strv_push(&groups, "system:unauthenticated") < 0)
                return -ENOMEM;
        return user_make("system:anonymous", groups, ret);
}

static bool all_in(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!(islower((unsigned char) s[i]) || isdigit((unsigned char) s[i])))
                        return false;
        return true;
}

bool kube_auth_bootstrap_token_id(const char *token, char ret_id[7]) {
        /* \A([a-z0-9]{6})\.([a-z0-9]{16})\z */
        if (!token || strlen(token) != 23 || token[6] != '.' || !all_in(token, 6) ||
            !all_in(token + 7, 16))
                return false;
        memcpy(ret_id, token, 6);
        ret_id[6] = 0;
        return true;
}

/* A Secret's data[key], base64-decoded (new string, NULL when missing or undecodable). */
static char *secret_data(json_t *secret, const char *key) {
        json_t *v = json_object_get(json_object_get(secret, "data"), key);
        uint8_t *out = NULL;
        if (!json_is_string(v) || base64_decode(json_string_value(v), &out, NULL) < 0)
                return NULL;
        return (char *) out;
}

/* Go's time.Parse(time.RFC3339, s): "2006-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm)". Returns 0 or
 * -EINVAL. */
static int parse_rfc3339(const char *s, time_t *ret) {
        struct tm tm = {};
        const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        long offset = 0;
        if (!p || s[4] != '-' || s[10] != 'T')
                return -EINVAL;
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                while (isdigit((unsigned char) *p))
                        p++;
        }
        if (*p == 'Z')
                p++;
        else if ((*p == '+' || *p == '-') && isdigit((unsigned char) p[1]) &&
                 isdigit((unsigned char) p[2]) && p[3] == ':' && isdigit((unsigned char) p[4]) &&
                 isdigit((unsigned char) p[5])) {
                offset = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
                if (*p == '-')
                        offset = -offset;
                p += 6;
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        *ret = timegm(&tm) - offset;
        return 0;
}

/* \Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z */
static bool valid_extra_group(const char *g) {
        const char *rest = startswith(g, "system:bootstrappers:");
        size_t n = rest ? strlen(rest) : 0;
        if (!rest || n < 1 || n > 256)
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = rest[i];
                bool alnum = islower((unsigned char) ch) || isdigit((unsigned char) ch);
                if (i == n - 1 ? !alnum : !(alnum || ch == ':' || ch == '-'))
                        return false;
        }
        return true;
}

int kube_auth_bootstrap_token(const char *token, json_t *secret, time_t now, kube_user *ret,
                              const char **ret_reason) {
        _cleanup_secret_ char *secret_value = NULL;
        _cleanup_free_ char *token_id = NULL, *expiration = NULL, *usage = NULL, *extra = NULL;
        const char *reason = NULL;
        char id[7];
        char **groups = NULL;
        char name[64];

        if (!kube_auth_bootstrap_token_id(token, id))
                reason = "not a bootstrap token";
        else if (!json_is_object(secret))
                reason = "no bootstrap-token Secret";
        else if (json_object_get(json_object_get(secret, "metadata"), "deletionTimestamp"))
                reason = "the Secret is being deleted";
        else if (!json_is_string(json_object_get(secret, "type")) ||
                 !streq(json_string_value(json_object_get(secret, "type")), "bootstrap.kubernetes.io/token"))
                reason = "the Secret's type is not bootstrap.kubernetes.io/token";
        else if (!json_is_object(json_object_get(secret, "data")))
                reason = "the Secret has no data";
        if (reason)
                goto denied;

        secret_value = secret_data(secret, "token-secret");
        token_id = secret_data(secret, "token-id");
        expiration = secret_data(secret, "expiration");
        usage = secret_data(secret, "usage-bootstrap-authentication");
        extra = secret_data(secret, "auth-extra-groups");
        if (!secret_value || strlen(secret_value) != 16 ||
            CRYPTO_memcmp(secret_value, token + 7, 16) != 0)
                reason = "wrong token secret";
        else if (!token_id || !streq(token_id, id))
                reason = "token-id does not match";
        else if (expiration && *expiration) {
                time_t t;
                if (parse_rfc3339(expiration, &t) < 0)
                        reason = "unparsable expiration (treated as expired)";
                else if (now > t)
                        reason = "expired";
        }
        if (!reason && (!usage || !streq(usage, "true")))
                reason = "usage-bootstrap-authentication is not \"true\"";
        if (reason)
                goto denied;

        if (strv_push(&groups, "system:bootstrappers") < 0 ||
            strv_push(&groups, "system:authenticated") < 0)
                goto oom;
        if (extra && *extra) {
                _cleanup_(strv_freep) char **l = NULL;
                if (strv_split(extra, ",", &l) < 0)
                        goto oom;
                for (char **g = l; *g; g++) {
                        /* upstream trims spaces around each */
                        char *s = *g + strspn(*g, " ");
                        size_t n = strlen(s);
                        while (n > 0 && s[n - 1] == ' ')
                                s[--n] = 0;
                        if (!valid_extra_group(s)) {
                                reason = "invalid auth-extra-groups";
                                strv_free(groups);
                                goto denied;
                        }
                        if (strv_push(&groups, s) < 0)
                                goto oom;
                }
        }
        snprintf(name, sizeof(name), "system:bootstrap:%s", id);
        return user_make(name, groups, ret);
oom:
        strv_free(groups);
        return -ENOMEM;
denied:
        if (ret_reason)
                *ret_reason = reason;
        return -EACCES;
}

/* ---- authorization ---- */

static bool in_group(const kube_user *u, const char *g) { return strv_contains(u->groups, g); }

static bool verb_in(const char *verb, const char *const *verbs) {
        for (; *verbs; verbs++)
                if (streq(verb, *verbs))
                        return true;
        return false;
}

static bool path_under(const char *path, const char *base) {
        const char *rest = startswith(path, base);
        return rest && (*rest == 0 || *rest == '/');
}

/* The built-in policy for Node and RBAC (see kube-auth.h). */
static bool builtin_policy(const kube_user *u, const kube_attrs *a) {
        static const char *const read[] = { "get", "list", "watch", NULL };

        if (!a->resource) {
                /* system:public-info-viewer: everyone, authenticated or not */
                if (streq(a->verb, "get") &&
                    (path_under(a->path, "/healthz") || path_under(a->path, "/livez") ||
                     path_under(a->path, "/readyz") || path_under(a->path, "/version")))
                        return true;
                /* system:discovery */
                if (in_group(u, "system:authenticated") && streq(a->verb, "get") &&
                    (path_under(a->path, "/api") || path_under(a->path, "/apis") ||
                     path_under(a->path, "/openapi")))
                        return true;
                return false;
        }

        /* kubeadm's Role kubeadm:bootstrap-signer-clusterinfo in kube-public, bound to User
         * system:anonymous: a joining node reads cluster-info before it trusts the server
         * (kubernetes-vault.md B.1). */
        if (streq(u->name, "system:anonymous") && streq(a->verb, "get") && streq(a->api_group, "") &&
            streq(a->resource, "configmaps") && a->namespace && streq(a->namespace, "kube-public") && a->name &&
            streq(a->name, "cluster-info"))
                return true;

        /* system:node-bootstrapper (bound to system:bootstrappers, as the kubelet TLS bootstrap
         * setup does) and the Node authorizer's node rules: create and read CSRs */
        bool csrs = streq(a->api_group, "certificates.k8s.io") && streq(a->resource, "certificatesigningrequests") &&
                    !a->subresource;
        if (csrs && (in_group(u, "system:bootstrappers") || in_group(u, "system:nodes")) &&
            (verb_in(a->verb, read) || streq(a->verb, "create")))
                return true;

        /* The Node authorizer with NodeRestriction: a node reads nodes, and writes only its own
         * Node object and status; it reads pods and writes their status (the API layer checks
         * that the pod is bound to it). */
        const char *node = startswith(u->name, "system:node:");
        if (node && *node && in_group(u, "system:nodes") && streq(a->api_group, "") && streq(a->resource, "pods")) {
                if (!a->subresource && verb_in(a->verb, read))
                        return true;
                if (a->subresource && streq(a->subresource, "status") && a->name &&
                    (streq(a->verb, "update") || streq(a->verb, "patch") || streq(a->verb, "get")))
                        return true;
        }
        if (node && *node && in_group(u, "system:nodes") && streq(a->api_group, "") &&
            streq(a->resource, "nodes")) {
                if (verb_in(a->verb, read))
                        return true;
                static const char *const write[] = { "create", "update", "patch", NULL };
                if (verb_in(a->verb, write) && a->name && streq(a->name, node))
                        return true;
                /* creating without a name in the path: the name is in the body, which the API
                 * layer checks against the node's (kube-api.c) */
                if (streq(a->verb, "create") && !a->name && !a->subresource)
                        return true;
        }
        return false;
}

bool kube_authz_allowed(const kube_user *u, const kube_attrs *a, char *const *authorization_mode) {
        if (in_group(u, "system:masters"))
                return true;
        for (char *const *m = authorization_mode; m && *m; m++) {
                if (streq(*m, "AlwaysAllow"))
                        return true;
                if (streq(*m, "AlwaysDeny"))
                        return false;
                if ((streq(*m, "Node") || streq(*m, "RBAC")) && builtin_policy(u, a))
                        return true;
        }
        return false;
}

char *kube_authz_forbidden_message(const kube_user *u, const kube_attrs *a) {
        char *m = NULL;
        int r;
        if (!a->resource)
                r = asprintf(&m, "forbidden: User \"%s\" cannot %s path \"%s\"", u->name, a->verb,
                             a->path);
        else {
                _cleanup_free_ char *res = NULL;
                if (asprintf(&res, "%s%s%s", a->resource, a->subresource ? "/" : "",
                             a->subresource ? a->subresource : "") < 0)
                        return NULL;
                _cleanup_free_ char *scope = NULL;
                if (a->namespace)
                        r = asprintf(&scope, "in the namespace \"%s\"", a->namespace);
                else
                        r = asprintf(&scope, "at the cluster scope");
                if (r < 0)
                        return NULL;
                if (a->name)
                        r = asprintf(&m, "%s \"%s\" is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\" %s",
                                     a->resource, a->name, u->name, a->verb, res, a->api_group, scope);
                else
                        r = asprintf(&m, "%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\" %s",
                                     a->resource, u->name, a->verb, res, a->api_group, scope);
        }
        return r < 0 ? NULL : m;
}
