/* The control-plane role's pure builders (cp-objects.h): the EncryptionConfiguration (providers,
 * key sizes, names, the key never in an error), the bootstrap-token Secret and its match, the
 * cluster-info kubeconfig (read back by the node side's parser, signed and verified with the
 * node side's JWS check, pinned), kubeadm's RBAC objects, and the components' flags. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cp-objects.h"
#include "crypto.h"
#include "macro.h"

/* upstream pubkeypin_test.go's testCertPEM (also in test-kube-bootstrap.c) */
static const char CA_PEM[] =
        "-----BEGIN CERTIFICATE-----\n"
        "MIIDRDCCAiygAwIBAgIJAJgVaCXvC6HkMA0GCSqGSIb3DQEBBQUAMB8xHTAbBgNV\n"
        "BAMTFGt1YmVhZG0ta2V5cGlucy10ZXN0MCAXDTE3MDcwNTE3NDMxMFoYDzIxMTcw\n"
        "NjExMTc0MzEwWjAfMR0wGwYDVQQDExRrdWJlYWRtLWtleXBpbnMtdGVzdDCCASIw\n"
        "DQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAK0ba8mHU9UtYlzM1Own2Fk/XGjR\n"
        "J4uJQvSeGLtz1hID1IA0dLwruvgLCPadXEOw/f/IWIWcmT+ZmvIHZKa/woq2iHi5\n"
        "+HLhXs7aG4tjKGLYhag1hLjBI7icqV7ovkjdGAt9pWkxEzhIYClFMXDjKpMSynu+\n"
        "YX6nZ9tic1cOkHmx2yiZdMkuriRQnpTOa7bb03OC1VfGl7gHlOAIYaj4539WCOr8\n"
        "+ACTUMJUFEHcRZ2o8a/v6F9GMK+7SC8SJUI+GuroXqlMAdhEv4lX5Co52enYaClN\n"
        "+D9FJLRpBv2YfiCQdJRaiTvCBSxEFz6BN+PtP5l2Hs703ZWEkOqCByM6HV8CAwEA\n"
        "AaOBgDB+MB0GA1UdDgQWBBRQgUX8MhK2rWBWQiPHWcKzoWDH5DBPBgNVHSMESDBG\n"
        "gBRQgUX8MhK2rWBWQiPHWcKzoWDH5KEjpCEwHzEdMBsGA1UEAxMUa3ViZWFkbS1r\n"
        "ZXlwaW5zLXRlc3SCCQCYFWgl7wuh5DAMBgNVHRMEBTADAQH/MA0GCSqGSIb3DQEB\n"
        "BQUAA4IBAQCaAUif7Pfx3X0F08cxhx8/Hdx4jcJw6MCq6iq6rsXM32ge43t8OHKC\n"
        "pJW08dk58a3O1YQSMMvD6GJDAiAfXzfwcwY6j258b1ZlI9Ag0VokvhMl/XfdCsdh\n"
        "AWImnL1t4hvU5jLaImUUMlYxMcSfHBGAm7WJIZ2LdEfg6YWfZh+WGbg1W7uxLxk6\n"
        "y4h5rWdNnzBHWAGf7zJ0oEDV6W6RSwNXtC0JNnLaeIUm/6xdSddJlQPwUv8YH4jX\n"
        "c1vuFqTnJBPcb7W//R/GI2Paicm1cmns9NLnPR35exHxFTy+D1yxmGokpoPMdife\n"
        "aH+sfuxT8xeTPb3kjzF9eJTlnEquUDLM\n"
        "-----END CERTIFICATE-----\n"
        ;
#define CA_PIN "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3"
#define KEY32 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" /* "0123456789abcdef0123456789abcdef" */
#define KEY16 "MDEyMzQ1Njc4OWFiY2RlZg=="                     /* "0123456789abcdef" */

static void test_encryption_config(void) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        char *text = NULL;

        CHECK_OK(cp_encryption_config("secretbox", "key1", KEY32, &text, &err));
        CHECK_STREQ(text, "apiVersion: apiserver.config.k8s.io/v1\n"
                          "kind: EncryptionConfiguration\n"
                          "resources:\n"
                          "  - resources:\n"
                          "      - secrets\n"
                          "    providers:\n"
                          "      - secretbox:\n"
                          "          keys:\n"
                          "            - name: key1\n"
                          "              secret: " KEY32 "\n"
                          "      - identity: {}\n");
        free(text);
        CHECK_OK(cp_encryption_config("aesgcm", "k-2", KEY16, &text, &err));
        CHECK(strstr(text, "      - aesgcm:\n") && strstr(text, "- name: k-2\n"));
        free(text);

        text = NULL;
        CHECK(cp_encryption_config("aescbc", "key1", KEY16, &text, &err) == -EINVAL);
        CHECK_STREQ(err.data, "the encryption key is 16 bytes; aescbc needs 32");
        CHECK(!strstr(err.data, KEY16) && text == NULL);
        buf_clear(&err);
        CHECK(cp_encryption_config("secretbox", "key1", "not base64!", &text, &err) == -EINVAL);
        CHECK_STREQ(err.data, "the encryption key is not standard base64");
        buf_clear(&err);
        CHECK(cp_encryption_config("kms", "key1", KEY32, &text, &err) == -EINVAL);
        CHECK_STREQ(err.data, "unknown encryption provider 'kms' (secretbox, aescbc or aesgcm)");
        buf_clear(&err);
        CHECK(cp_encryption_config("secretbox", "Key 1", KEY32, &text, &err) == -EINVAL);
        CHECK(cp_encryption_config("secretbox", "", KEY32, &text, &err) == -EINVAL);
        CHECK(cp_encryption_config("secretbox", "key1", NULL, &text, &err) == -EINVAL);
}

static const char *data_value(json_t *s, const char *key, char out[256]) {
        const char *b = json_string_value(json_object_get(json_object_get(s, "data"), key));
        uint8_t *v = NULL;
        size_t len = 0;
        if (!b || base64_decode(b, &v, &len) < 0 || len >= 256)
                return NULL;
        memcpy(out, v, len);
        out[len] = 0;
        free(v);
        return out;
}

static void test_bootstrap_secret(void) {
        kube_bootstrap_token t, other;
        char v[256];
        CHECK_OK(kube_bootstrap_token_parse("07401b.f395accd246ae52d", &t));
        CHECK_OK(kube_bootstrap_token_parse("07401b.0123456789abcdef", &other));
        _cleanup_json_ json_t *s = cp_bootstrap_token_secret(&t, NULL);
        CHECK(s);
        CHECK_STREQ(json_path_string(s, "metadata.name"), "bootstrap-token-07401b");
        CHECK_STREQ(json_path_string(s, "metadata.namespace"), "kube-system");
        CHECK_STREQ(json_path_string(s, "type"), "bootstrap.kubernetes.io/token");
        CHECK_STREQ(data_value(s, "token-id", v), "07401b");
        CHECK_STREQ(data_value(s, "token-secret", v), "f395accd246ae52d");
        CHECK_STREQ(data_value(s, "usage-bootstrap-authentication", v), "true");
        CHECK_STREQ(data_value(s, "usage-bootstrap-signing", v), "true");
        CHECK_STREQ(data_value(s, "auth-extra-groups", v), "system:bootstrappers:kubeadm:default-node-token");
        CHECK(!json_object_get(json_object_get(s, "data"), "expiration"));
        CHECK(cp_bootstrap_token_secret_matches(s, &t));
        CHECK(!cp_bootstrap_token_secret_matches(s, &other));
        json_object_set_new(s, "type", json_string("Opaque"));
        CHECK(!cp_bootstrap_token_secret_matches(s, &t));

        _cleanup_json_ json_t *e = cp_bootstrap_token_secret(&t, "2030-01-01T00:00:00Z");
        CHECK_STREQ(data_value(e, "expiration", v), "2030-01-01T00:00:00Z");
        kube_bootstrap_token_wipe(&t);
}

static void test_cluster_info(void) {
        _cleanup_free_ char *kc = NULL, *again = NULL, *jws = NULL, *server = NULL, *ca = NULL;
        kube_bootstrap_token t;
        kube_cluster_info ci = { 0 };

        CHECK_OK(cp_cluster_info_kubeconfig("https://10.0.0.100:6443", CA_PEM, &kc));
        CHECK_OK(cp_cluster_info_kubeconfig("https://10.0.0.100:6443", CA_PEM, &again));
        CHECK_STREQ(kc, again); /* what is signed is the same on every member */
        CHECK(strncmp(kc, "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: ", 68) == 0);
        CHECK_OK(kube_bootstrap_kubeconfig_cluster(kc, &server, &ca, NULL));
        CHECK_STREQ(server, "https://10.0.0.100:6443");
        CHECK_STREQ(ca, CA_PEM);
        CHECK(cp_cluster_info_kubeconfig("", CA_PEM, &jws) == -EINVAL);

        /* as a node verifies it: the JWS for the token, then the pin */
        CHECK_OK(kube_bootstrap_token_parse("abcdef.0123456789abcdef", &t));
        CHECK_OK(kube_bootstrap_jws_sign(kc, strlen(kc), t.id, t.secret, &jws));
        _cleanup_json_ json_t *cm = json_pack("{s:{s:s,s:s}}", "data", "kubeconfig", kc, "jws-kubeconfig-abcdef", jws);
        CHECK_OK(kube_bootstrap_cluster_info_verify(cm, &t, CA_PIN, &ci, NULL));
        CHECK_STREQ(ci.server, "https://10.0.0.100:6443");
        kube_cluster_info_done(&ci);
}

static void test_rbac(void) {
        static const char *const want[][3] = {
                { "ClusterRoleBinding", "kubeadm:kubelet-bootstrap", "system:node-bootstrapper" },
                { "ClusterRoleBinding", "kubeadm:node-autoapprove-bootstrap",
                  "system:certificates.k8s.io:certificatesigningrequests:nodeclient" },
                { "ClusterRoleBinding", "kubeadm:node-autoapprove-certificate-rotation",
                  "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient" },
                { "Role", "kubeadm:bootstrap-signer-clusterinfo", NULL },
                { "RoleBinding", "kubeadm:bootstrap-signer-clusterinfo", "kubeadm:bootstrap-signer-clusterinfo" },
        };
        _cleanup_json_ json_t *objs = cp_rbac_objects();
        CHECK(json_array_size(objs) == ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                json_t *o = json_object_get(json_array_get(objs, i), "object");
                const char *path = json_string_value(json_object_get(json_array_get(objs, i), "path"));
                CHECK_STREQ(json_path_string(o, "kind"), want[i][0]);
                CHECK_STREQ(json_path_string(o, "metadata.name"), want[i][1]);
                CHECK(strncmp(path, "/apis/rbac.authorization.k8s.io/v1/", 35) == 0);
                if (want[i][2])
                        CHECK_STREQ(json_path_string(o, "roleRef.name"), want[i][2]);
        }
        json_t *b = json_object_get(json_array_get(objs, 1), "object");
        CHECK_STREQ(json_path_string(json_array_get(json_object_get(b, "subjects"), 0), "name"),
                    "system:bootstrappers:kubeadm:default-node-token");
        b = json_object_get(json_array_get(objs, 2), "object");
        CHECK_STREQ(json_path_string(json_array_get(json_object_get(b, "subjects"), 0), "name"), "system:nodes");
        b = json_object_get(json_array_get(objs, 4), "object");
        CHECK_STREQ(json_path_string(json_array_get(json_object_get(b, "subjects"), 0), "name"), "system:anonymous");
        CHECK_STREQ(json_path_string(b, "metadata.namespace"), "kube-public");
}

static void test_flags(void) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        char a[] = "https://10.0.1.1:2379", b[] = "https://10.0.1.2:2379", *servers[] = { a, b, NULL };
        cp_flags f = {
                .advertise_address = "10.0.0.5", .secure_port = 6443, .etcd_servers = servers,
                .etcd_ca = "/p/etcd/ca.crt", .etcd_cert = "/p/etcd.crt", .etcd_key = "/p/etcd.key",
                .tls_cert = "/p/apiserver.crt", .tls_key = "/p/apiserver.key", .client_ca = "/p/client-ca.crt",
                .cluster_ca = "/p/ca.crt", .sa_key = "/p/sa.key", .sa_pub = "/p/sa.pub",
                .encryption_config = "/e.yaml", .service_cidr = "10.96.0.0/12",
        };
        char *text = NULL;
        CHECK_OK(cp_flags_env(&f, &text, &err));
        CHECK(strstr(text, "\nKUBE_ETCD_SERVERS=https://10.0.1.1:2379,https://10.0.1.2:2379\n"));
        CHECK(strstr(text, "\nKUBE_APISERVER_ARGS=--advertise-address=10.0.0.5 --bind-address=10.0.0.5 --secure-port=6443 "));
        CHECK(strstr(text, " --etcd-servers=https://10.0.1.1:2379,https://10.0.1.2:2379 --etcd-cafile=/p/etcd/ca.crt "));
        CHECK(strstr(text, " --encryption-provider-config=/e.yaml\n"));
        CHECK(!strstr(text, "kubelet-client-certificate") && !strstr(text, "proxy-client"));
        CHECK(strstr(text, "\nKUBE_CLUSTER_SIGNING_ARGS=\nKUBE_CONTROLLER_MANAGER_ARGS=\nKUBE_SCHEDULER_ARGS=\n"));
        free(text);

        f.kubelet_cert = "/p/k.crt", f.kubelet_key = "/p/k.key";
        f.front_proxy_cert = "/p/fp.crt", f.front_proxy_key = "/p/fp.key", f.front_proxy_ca = "/p/fp-ca.crt";
        f.signing_cert = "/p/s.crt", f.signing_key = "/p/s.key";
        f.controller_manager_kubeconfig = "/k/cm.conf", f.scheduler_kubeconfig = "/k/s.conf";
        CHECK_OK(cp_flags_env(&f, &text, &err));
        CHECK(strstr(text, " --kubelet-client-certificate=/p/k.crt --kubelet-client-key=/p/k.key "));
        CHECK(strstr(text, " --proxy-client-cert-file=/p/fp.crt --proxy-client-key-file=/p/fp.key --requestheader-client-ca-file=/p/fp-ca.crt "));
        CHECK(strstr(text, "\nKUBE_CLUSTER_SIGNING_ARGS=--cluster-signing-cert-file=/p/s.crt --cluster-signing-key-file=/p/s.key\n"));
        CHECK(strstr(text, "\nKUBE_CONTROLLER_MANAGER_ARGS=--kubeconfig=/k/cm.conf "));
        CHECK(strstr(text, " --controllers=*,bootstrapsigner,tokencleaner "));
        CHECK(strstr(text, " --cluster-signing-cert-file=/p/s.crt --cluster-signing-key-file=/p/s.key\nKUBE_SCHEDULER_ARGS=--kubeconfig=/k/s.conf "));
        free(text);

        text = NULL;
        f.sa_key = "/with space/sa.key";
        CHECK(cp_flags_env(&f, &text, &err) == -EINVAL);
        CHECK(strstr(err.data, "white space") && !text);
        f.sa_key = "/p/sa.key";
        char *none[] = { NULL };
        f.etcd_servers = none;
        buf_clear(&err);
        CHECK(cp_flags_env(&f, &text, &err) == -EINVAL);
        CHECK_STREQ(err.data, "no etcd servers");
}

int main(void) {
        test_encryption_config();
        test_bootstrap_secret();
        test_cluster_info();
        test_rbac();
        test_flags();
        return 0;
}
