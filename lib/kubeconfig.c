#include "kubeconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
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
