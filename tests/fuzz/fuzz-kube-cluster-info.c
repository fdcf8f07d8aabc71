/* Fuzz a joining node's discovery input: the data as a cluster-info ConfigMap (JSON) checked
 * for a fixed token and pin, as a kubeconfig, as a detached JWS, as a CA bundle for the pin,
 * and as a bootstrap token. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube-bootstrap.h"

#define PIN "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *text = malloc(size + 1);
        kube_bootstrap_token token;
        json_t *j = NULL;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        if (kube_bootstrap_token_parse("abcdef.0123456789abcdef", &token) < 0)
                abort();
        if (json_parse(text, size, &j, NULL) >= 0) {
                kube_cluster_info ci = { 0 };
                if (kube_bootstrap_cluster_info_verify(j, &token, PIN, &ci, &err) >= 0) {
                        if (!ci.server || !ci.ca_pem || !ci.kubeconfig || !kube_bootstrap_cluster_info_same(&ci, j))
                                abort();
                        kube_cluster_info_done(&ci);
                }
                json_decref(j);
        }

        char *server = NULL, *ca = NULL;
        if (kube_bootstrap_kubeconfig_cluster(text, &server, &ca, &err) >= 0) {
                char *pin = NULL;
                if (kube_bootstrap_ca_pin(ca, &pin) >= 0)
                        free(pin);
                free(server);
                free(ca);
        }
        (void) kube_bootstrap_jws_verify("content", 7, text, token.id, token.secret);
        (void) kube_bootstrap_pin_check(text, PIN);
        (void) kube_bootstrap_pin_check(PIN, text);
        kube_bootstrap_token t;
        if (kube_bootstrap_token_parse(text, &t) >= 0)
                kube_bootstrap_token_wipe(&t);
        kube_bootstrap_token_wipe(&token);
        return 0;
}
