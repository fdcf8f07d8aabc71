#include "kubeconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "fs.h"
#include "json.h"
#include "macro.h"

/* base64 of a PEM as a new JSON string; the intermediate is wiped (it may be a key). */
static json_t *b64(const char *pem) {
        char *s = base64_encode(pem, strlen(pem));
        if (!s)
                return NULL;
        json_t *j = json_string(s);
        free_secret(s);
        return j;
}

int kubeconfig_build(const kubeconfig_spec *s, char **ret) {
        _cleanup_free_ char *context = NULL;

        if (!s->cluster || !s->server || !s->ca_pem || !s->user || !s->cert_pem || !s->key_pem)
                return -EINVAL;
        if (asprintf(&context, "%s@%s", s->user, s->cluster) < 0)
                return -ENOMEM;
        /* "o" steals the reference; a NULL from b64() makes json_pack fail, freeing the rest. */
        _cleanup_json_ json_t *k = json_pack(
                "{s:s, s:s, s:[{s:s, s:{s:s, s:o}}], s:[{s:s, s:{s:o, s:o}}], s:[{s:s, s:{s:s, s:s}}], s:s, s:{}}",
                "apiVersion", "v1", "kind", "Config",
                "clusters", "name", s->cluster, "cluster", "server", s->server, "certificate-authority-data", b64(s->ca_pem),
                "users", "name", s->user, "user", "client-certificate-data", b64(s->cert_pem), "client-key-data", b64(s->key_pem),
                "contexts", "name", context, "context", "cluster", s->cluster, "user", s->user,
                "current-context", context, "preferences");
        if (!k)
                return -ENOMEM;
        /* The key's base64 in k is wiped when freed if the program called json_wipe_on_free(). */
        char *text = json_dumps(k, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

void kubeconfig_client_done(kubeconfig_client *c) {
        free(c->server);
        free(c->ca_file);
        free(c->ca_pem);
        free(c->cert_file);
        free(c->cert_pem);
        free(c->key_file);
        free_secret(c->key_pem);
        free_secret(c->token);
        *c = (kubeconfig_client){};
}

/* The entry called name in the list key ("clusters", "users", "contexts"): its inner object
 * (entry[key minus its "s"]), or NULL. */
static json_t *named(json_t *root, const char *key, const char *inner, const char *name) {
        json_t *e;
        size_t i;
        json_array_foreach(json_object_get(root, key), i, e)
                if (streq(strempty(json_string_value(json_object_get(e, "name"))), name)) {
                        json_t *o = json_object_get(e, inner);
                        return json_is_object(o) ? o : NULL;
                }
        return NULL;
}

/* One credential or CA from o: "<field>-data" (base64, decoded into *ret_pem) or "<field>" (a
 * path, made absolute against dir into *ret_file). Neither: 0, nothing set. */
static int file_or_data(json_t *o, const char *field, const char *dir, char **ret_file, char **ret_pem,
                        const char *path, buf *err) {
        _cleanup_free_ char *data_key = NULL;
        const char *data, *file;

        if (asprintf(&data_key, "%s-data", field) < 0)
                return -ENOMEM;
        data = json_string_value(json_object_get(o, data_key));
        file = json_string_value(json_object_get(o, field));
        if (data && *data) {
                uint8_t *pem = NULL;
                if (base64_decode(data, &pem, NULL) < 0)
                        return buf_printf(err, "%s: %s is not base64", path, data_key), -EBADMSG;
                *ret_pem = (char *) pem;
        } else if (file && *file) {
                char *s;
                if (file[0] == '/' ? !(s = strdup(file)) : asprintf(&s, "%s/%s", dir, file) < 0)
                        return -ENOMEM;
                *ret_file = s;
        }
        return 0;
}

int kubeconfig_load(const char *path, kubeconfig_client *ret, buf *err) {
        _cleanup_(kubeconfig_client_done) kubeconfig_client c = {};
        _cleanup_free_ char *text = NULL, *dir = NULL;
        _cleanup_json_ json_t *root = NULL;
        size_t len;
        int r;

        r = read_file(path, 1024 * 1024, &text, &len);
        if (r < 0)
                return buf_printf(err, "reading %s: %s", path, strerror(-r)), r;
        r = json_parse(text, len, &root, NULL);
        explicit_bzero(text, len);
        if (r < 0 || !json_is_object(root))
                return buf_printf(err, "%s is not a JSON kubeconfig (convert a YAML one with "
                                  "'kubectl config view --raw --flatten -o json')", path), -EBADMSG;
        const char *slash = strrchr(path, '/');
        if (!(dir = slash ? strndup(path, (size_t) (slash - path) ?: 1) : strdup(".")))
                return -ENOMEM;
        const char *current = json_string_value(json_object_get(root, "current-context"));
        json_t *context = current ? named(root, "contexts", "context", current) : NULL;
        if (!context)
                return buf_printf(err, "%s: no current-context, or it is not among the contexts", path), -EBADMSG;
        const char *cluster_name = strempty(json_string_value(json_object_get(context, "cluster"))),
                   *user_name = strempty(json_string_value(json_object_get(context, "user")));
        json_t *cluster = named(root, "clusters", "cluster", cluster_name),
               *user = *user_name ? named(root, "users", "user", user_name) : NULL;
        if (!cluster)
                return buf_printf(err, "%s: context %s names cluster '%s', which is not there", path, current,
                                  cluster_name), -EBADMSG;
        if (*user_name && !user)
                return buf_printf(err, "%s: context %s names user '%s', which is not there", path, current,
                                  user_name), -EBADMSG;
        const char *server = json_string_value(json_object_get(cluster, "server"));
        if (!server || !*server)
                return buf_printf(err, "%s: cluster %s has no server", path, cluster_name), -EBADMSG;
        if (json_object_get(user, "exec") || json_object_get(user, "auth-provider"))
                return buf_printf(err, "%s: user %s gets its credentials from a plugin (exec / auth-provider), "
                                  "which this client does not run", path, user_name), -EOPNOTSUPP;
        if (!(c.server = strdup(server)))
                return -ENOMEM;
        r = file_or_data(cluster, "certificate-authority", dir, &c.ca_file, &c.ca_pem, path, err);
        if (r >= 0)
                r = file_or_data(user, "client-certificate", dir, &c.cert_file, &c.cert_pem, path, err);
        if (r >= 0)
                r = file_or_data(user, "client-key", dir, &c.key_file, &c.key_pem, path, err);
        if (r < 0)
                return r;
        const char *token = json_string_value(json_object_get(user, "token"));
        if (token && *token && !(c.token = strdup(token)))
                return -ENOMEM;
        *ret = c;
        c = (kubeconfig_client){};
        return 0;
}
