/* The kubeconfig writer: parsed back as JSON field by field, and through the cluster-info
 * kubeconfig reader (lib/kube-bootstrap.h) that the node join uses; the reader of a client's
 * current context (kubeconfig_load: what `pool create --kubeconfig` reads). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "crypto.h"
#include "fs.h"
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

static char dir[] = "/tmp/test-kubeconfig.XXXXXX";

/* Write text to dir/name; returns the path (static buffer, one at a time). */
static const char *put(const char *name, const char *text) {
        static char path[128];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        CHECK_OK(write_file_atomic(path, text, strlen(text), 0600, (uid_t) -1, (gid_t) -1));
        return path;
}

/* kubeconfig_load of text refuses it with r and a message holding what. */
static void load_refused(const char *text, int r, const char *what) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        kubeconfig_client c = {};
        CHECK(kubeconfig_load(put("bad", text), &c, &err) == r);
        CHECK(!c.server);
        if (!strstr(err.data, what)) {
                fprintf(stderr, "error '%s' does not say '%s'\n", err.data, what);
                abort();
        }
}

static void test_load(const char *built) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        kubeconfig_client c = {};

        CHECK(mkdtemp(dir));
        /* What kubeconfig_build writes: the PEMs come back as text, no files. */
        CHECK_OK(kubeconfig_load(put("admin.conf", built), &c, &err));
        CHECK_STREQ(c.server, "https://10.0.0.5:6443");
        CHECK_STREQ(c.ca_pem, ca);
        CHECK_STREQ(c.cert_pem, cert);
        CHECK_STREQ(c.key_pem, key);
        CHECK(!c.ca_file && !c.cert_file && !c.key_file && !c.token);
        kubeconfig_client_done(&c);
        CHECK(!c.server);

        /* Files: relative ones against the kubeconfig's directory, absolute ones as they are; the
         * current context picks among several; a token. */
        const char *files = "{\"current-context\": \"b\", \"contexts\": ["
                            "{\"name\": \"a\", \"context\": {\"cluster\": \"x\", \"user\": \"x\"}},"
                            "{\"name\": \"b\", \"context\": {\"cluster\": \"c\", \"user\": \"u\"}}],"
                            "\"clusters\": [{\"name\": \"c\", \"cluster\": {\"server\": \"https://k:6443\","
                            " \"certificate-authority\": \"pki/ca.crt\"}}],"
                            "\"users\": [{\"name\": \"u\", \"user\": {\"client-certificate\": \"/etc/a.crt\","
                            " \"client-key\": \"a.key\", \"token\": \"abc.def\"}}]}";
        CHECK_OK(kubeconfig_load(put("files.conf", files), &c, &err));
        char want[160];
        CHECK_STREQ(c.server, "https://k:6443");
        snprintf(want, sizeof(want), "%s/pki/ca.crt", dir);
        CHECK_STREQ(c.ca_file, want);
        CHECK_STREQ(c.cert_file, "/etc/a.crt");
        snprintf(want, sizeof(want), "%s/a.key", dir);
        CHECK_STREQ(c.key_file, want);
        CHECK_STREQ(c.token, "abc.def");
        CHECK(!c.ca_pem && !c.cert_pem && !c.key_pem);
        kubeconfig_client_done(&c);

        /* Refused, each with its reason. */
        load_refused("apiVersion: v1\nkind: Config\n", -EBADMSG, "kubectl config view --raw --flatten -o json");
        load_refused("{\"contexts\": []}", -EBADMSG, "no current-context");
        load_refused("{\"current-context\": \"a\", \"contexts\": [{\"name\": \"a\", \"context\": "
                     "{\"cluster\": \"c\"}}]}", -EBADMSG, "cluster 'c', which is not there");
        load_refused("{\"current-context\": \"a\", \"contexts\": [{\"name\": \"a\", \"context\": "
                     "{\"cluster\": \"c\", \"user\": \"u\"}}], \"clusters\": [{\"name\": \"c\", "
                     "\"cluster\": {\"server\": \"https://k\"}}]}", -EBADMSG, "user 'u', which is not there");
        load_refused("{\"current-context\": \"a\", \"contexts\": [{\"name\": \"a\", \"context\": "
                     "{\"cluster\": \"c\"}}], \"clusters\": [{\"name\": \"c\", \"cluster\": {}}]}",
                     -EBADMSG, "has no server");
        load_refused("{\"current-context\": \"a\", \"contexts\": [{\"name\": \"a\", \"context\": "
                     "{\"cluster\": \"c\"}}], \"clusters\": [{\"name\": \"c\", \"cluster\": "
                     "{\"server\": \"https://k\", \"certificate-authority-data\": \"%%%\"}}]}",
                     -EBADMSG, "certificate-authority-data is not base64");
        load_refused("{\"current-context\": \"a\", \"contexts\": [{\"name\": \"a\", \"context\": "
                     "{\"cluster\": \"c\", \"user\": \"u\"}}], \"clusters\": [{\"name\": \"c\", "
                     "\"cluster\": {\"server\": \"https://k\"}}], \"users\": [{\"name\": \"u\", "
                     "\"user\": {\"exec\": {\"command\": \"x\"}}}]}", -EOPNOTSUPP, "plugin");
        CHECK(kubeconfig_load("/nonexistent/kubeconfig", &c, &err) == -ENOENT);
        CHECK_OK(rm_rf(dir));
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
        test_load(text);
        free_secret(text);

        spec.key_pem = NULL;
        text = NULL;
        CHECK(kubeconfig_build(&spec, &text) == -EINVAL && !text);
        return 0;
}
