/* The kubeconfig writer: parsed back as JSON field by field, and through the cluster-info
 * kubeconfig reader (lib/kube-bootstrap.h) that the node join uses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crypto.h"
#include "json.h"
#include "kube-bootstrap.h"
#include "kubeconfig.h"

static const char ca[] = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";
static const char cert[] = "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n";
static const char key[] = "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n";

/* The base64 field at path decodes to want. */
static void check_b64(json_t *k, const char *path, const char *want) {
        const char *s = json_path_string(k, path);
        uint8_t *data = NULL;
        size_t len = 0;
        CHECK(s);
        CHECK_OK(base64_decode(s, &data, &len));
        CHECK(len == strlen(want) && memcmp(data, want, len) == 0);
        free(data);
}

int main(void) {
        kubeconfig_spec spec = { .cluster = "kubernetes", .server = "https://10.0.0.5:6443", .ca_pem = ca,
                                 .user = "admin", .cert_pem = cert, .key_pem = key };
        char *text = NULL;
        _cleanup_json_ json_t *k = NULL;

        CHECK_OK(kubeconfig_build(&spec, &text));
        CHECK_OK(json_parse(text, strlen(text), &k, NULL));
        CHECK_STREQ(json_path_string(k, "apiVersion"), "v1");
        CHECK_STREQ(json_path_string(k, "kind"), "Config");
        CHECK(json_array_size(json_path(k, "clusters")) == 1);
        CHECK(json_array_size(json_path(k, "users")) == 1);
        CHECK(json_array_size(json_path(k, "contexts")) == 1);
        CHECK_STREQ(json_path_string(k, "clusters.0.name"), "kubernetes");
        CHECK_STREQ(json_path_string(k, "clusters.0.cluster.server"), "https://10.0.0.5:6443");
        check_b64(k, "clusters.0.cluster.certificate-authority-data", ca);
        CHECK_STREQ(json_path_string(k, "users.0.name"), "admin");
        check_b64(k, "users.0.user.client-certificate-data", cert);
        check_b64(k, "users.0.user.client-key-data", key);
        CHECK_STREQ(json_path_string(k, "contexts.0.name"), "admin@kubernetes");
        CHECK_STREQ(json_path_string(k, "contexts.0.context.cluster"), "kubernetes");
        CHECK_STREQ(json_path_string(k, "contexts.0.context.user"), "admin");
        CHECK_STREQ(json_path_string(k, "current-context"), "admin@kubernetes");
        CHECK(json_is_object(json_path(k, "preferences")));

        /* The kubeconfig reader of the node join finds the same cluster. */
        char *server = NULL, *ca_pem = NULL;
        CHECK_OK(kube_bootstrap_kubeconfig_cluster(text, &server, &ca_pem, NULL));
        CHECK_STREQ(server, "https://10.0.0.5:6443");
        CHECK_STREQ(ca_pem, ca);
        free(server);
        free(ca_pem);
        free_secret(text);

        spec.key_pem = NULL;
        text = NULL;
        CHECK(kubeconfig_build(&spec, &text) == -EINVAL && !text);
        return 0;
}
