#include "role-node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "fs.h"
#include "http.h"
#include "json.h"
#include "kube-bootstrap.h"
#include "kube-client.h"
#include "log.h"
#include "metadata.h"
#include "node-userdata.h"
#include "pki.h"
#include "stage.h"
#include "time-util.h"

#define CLUSTER_INFO_PATH "/api/v1/namespaces/kube-public/configmaps/cluster-info"
#define CSR_PATH "/apis/certificates.k8s.io/v1/certificatesigningrequests"
#define KUBELET_SIGNER "kubernetes.io/kube-apiserver-client-kubelet"
#define TOKEN_REJECTED "bootstrap token rejected (expired or unknown)"

/* The role's state for one run, next to the driver's agent. */
typedef struct role_node {
        agent *a;
        node_userdata ud;       /* holds the token: wiped by role_node_done() */
        char *node_name;
        kube_cluster_info ci;   /* from discovery: the pinned CA */
        char *key_pem;          /* secret */
        char *kubeconfig, *kubelet_config, *ca_file, *cert_file, *key_file, *env_file; /* rooted */
} role_node;

static int role_node_init(role_node *n, agent *a) {
        *n = (role_node){ .a = a };
        const agent_config *c = a->cfg;
        if (agent_rooted(a, c->node_kubeconfig, &n->kubeconfig) < 0 ||
            agent_rooted(a, c->node_kubelet_config, &n->kubelet_config) < 0 ||
            agent_rooted(a, c->node_ca_file, &n->ca_file) < 0 || agent_rooted(a, c->node_cert_file, &n->cert_file) < 0 ||
            agent_rooted(a, c->node_key_file, &n->key_file) < 0 || agent_rooted(a, c->node_env_file, &n->env_file) < 0)
                return -ENOMEM;
        return 0;
}

static void role_node_done(role_node *n) {
        node_userdata_done(&n->ud);
        kube_cluster_info_done(&n->ci);
        free(n->node_name);
        free_secret(n->key_pem);
        free(n->kubeconfig);
        free(n->kubelet_config);
        free(n->ca_file);
        free(n->cert_file);
        free(n->key_file);
        free(n->env_file);
}

/* user-data: the token, endpoint and CA pin the platform gave this instance. */
static int stage_user_data(role_node *n) {
        agent *a = n->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        char *text = NULL;
        size_t len = 0;
        char detail[512];
        int r;

        stage_begin(a);
        stage_deadline(a, a->cfg->metadata_deadline_ms);
        r = metadata_user_data(a->cfg->metadata_url, a->cfg->metadata_socket, &a->deadline, NODE_USERDATA_MAX, &text,
                               &len, &err);
        if (r < 0)
                return stage_fail(a, "user-data", r, &err);
        r = node_userdata_parse(text, len, &n->ud, &err);
        explicit_bzero(text, len);
        free(text);
        if (r < 0)
                return stage_fail(a, "user-data", r, &err);
        if (n->ud.node_name)
                n->node_name = strdup(n->ud.node_name);
        else {
                char host[256] = "";
                if (gethostname(host, sizeof(host) - 1) < 0)
                        return stage_fail(a, "user-data", negative_errno(), NULL);
                for (char *p = host; *p; p++)
                        *p = (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
                if (!node_userdata_name_valid(host)) {
                        buf_printf(&err, "no node_name in user-data and the host name '%s' is not a valid Node name", host);
                        return stage_fail(a, "user-data", -EINVAL, &err);
                }
                n->node_name = strdup(host);
        }
        if (!n->node_name)
                return -ENOMEM;
        /* The token ID is public (it names the Secret); the secret part is never written. */
        snprintf(detail, sizeof(detail), "endpoint %s, token id %s, pin %s, node %s", n->ud.endpoint, n->ud.token.id,
                 n->ud.ca_pin, n->node_name);
        return stage_end(a, "user-data", true, detail);
}

/* A client whose requests retry transport failures and 502/503/504 for up to 30 s (a POST whose
 * reply was lost comes back as 409 AlreadyExists, which the csr stage reads as its own). */
static int client_new(const kube_client_config *cfg, kube_client **ret, buf *err) {
        kube_client_config c = *cfg;
        c.timeout_ms = 10000;
        c.attempts = 8;
        c.deadline_ms = 30000;
        c.user_agent = "bootagent";
        return kube_client_new(&c, ret, err);
}

/* "sha256:<hex>" of the CA in a cluster-info ConfigMap's kubeconfig, for the mismatch message. */
static char *configmap_ca_pin(json_t *cm) {
        const char *kc = json_path_string(cm, "data.kubeconfig");
        _cleanup_free_ char *server = NULL, *ca = NULL;
        char *pin = NULL;
        if (!kc || kube_bootstrap_kubeconfig_cluster(kc, &server, &ca, NULL) < 0 || kube_bootstrap_ca_pin(ca, &pin) < 0)
                return NULL;
        return pin;
}

/* discovery, as kubeadm does it: cluster-info without credentials and without TLS verification,
 * the JWS checked with the token, the CA checked against the pin, then cluster-info again over
 * TLS verified by that CA, byte-identical. Nothing carries the token here. */
static int stage_discovery(role_node *n) {
        agent *a = n->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(kube_client_freep) kube_client *anon = NULL, *verified = NULL;
        _cleanup_json_ json_t *again = NULL;
        int64_t end = time_now_ms() + a->cfg->node_discovery_deadline_ms;
        char detail[512];
        int r;

        stage_begin(a);
        r = client_new(&(kube_client_config){ .server = n->ud.endpoint, .tls_no_verify = true }, &anon, &err);
        if (r < 0)
                return stage_fail(a, "discovery", r, &err);
        for (;;) {
                _cleanup_json_ json_t *cm = NULL;
                buf_clear(&err);
                r = kube_get(anon, CLUSTER_INFO_PATH, &cm, &err);
                if (r >= 0) {
                        r = kube_bootstrap_cluster_info_verify(cm, &n->ud.token, n->ud.ca_pin, &n->ci, &err);
                        if (r == -EPERM) {
                                _cleanup_free_ char *got = configmap_ca_pin(cm);
                                buf_clear(&err);
                                buf_printf(&err, "CA pin mismatch: expected %s, got %s (the bootstrap token was not sent)",
                                           n->ud.ca_pin, got ? got : "an unreadable CA");
                                return stage_fail(a, "discovery", r, &err);
                        }
                        if (r == -EKEYREJECTED) {
                                buf_clear(&err);
                                buf_printf(&err, "cluster-info signature jws-kubeconfig-%s does not match the bootstrap token "
                                           "(wrong token, or another cluster)", n->ud.token.id);
                                return stage_fail(a, "discovery", r, &err);
                        }
                        if (r >= 0)
                                break;
                        if (r != -ENOENT)
                                return stage_fail(a, "discovery", r, &err);
                        /* No signature for our token (yet): the signer may not have run, or the
                         * token expired and its signature was removed. */
                        buf_clear(&err);
                        buf_printf(&err, "cluster-info has no signature for token id %s (token expired or unknown, "
                                   "or the signer has not run)", n->ud.token.id);
                }
                if (time_now_ms() >= end) {
                        char why[1024];
                        snprintf(why, sizeof(why), "%s", err.len ? err.data : "no answer");
                        buf_clear(&err);
                        buf_printf(&err, "cluster-info not verified within %ld ms: %s", a->cfg->node_discovery_deadline_ms, why);
                        return stage_fail(a, "discovery", -ETIMEDOUT, &err);
                }
                log_info("cluster-info not usable yet: %s", err.data);
                agent_sleep(a, 1000);
        }
        /* The pinned CA now verifies the server: fetch again and require the same kubeconfig. */
        buf_clear(&err);
        r = client_new(&(kube_client_config){ .server = n->ud.endpoint, .ca_pem = n->ci.ca_pem }, &verified, &err);
        if (r >= 0)
                r = kube_get(verified, CLUSTER_INFO_PATH, &again, &err);
        if (r < 0)
                return stage_fail(a, "discovery", r, &err);
        if (!kube_bootstrap_cluster_info_same(&n->ci, again)) {
                buf_printf(&err, "cluster-info changed between the unverified and the CA-verified fetch");
                return stage_fail(a, "discovery", -EBADMSG, &err);
        }
        snprintf(detail, sizeof(detail), "cluster CA matches %s, signed for token id %s, server %s", n->ud.ca_pin,
                 n->ud.token.id, n->ci.server);
        return stage_end(a, "discovery", true, detail);
}

/* The node's key: created 0600 before anything is asked, kept across runs. */
static int ensure_key(role_node *n, bool *ret_created, buf *err) {
        const agent_config *c = n->a->cfg;
        char hex[65];
        int r = read_file(n->key_file, 64 * 1024, &n->key_pem, NULL);
        if (r >= 0 && pki_key_spki_sha256(n->key_pem, hex) >= 0) {
                *ret_created = false;
                return 0;
        }
        if (r < 0 && r != -ENOENT) {
                buf_printf(err, "reading %s: %s", n->key_file, strerror(-r));
                return r;
        }
        if (r >= 0)
                log_warning("%s holds no usable private key: replacing it", n->key_file);
        free_secret(TAKE_PTR(n->key_pem));
        r = pki_make_key(&n->key_pem);
        if (r >= 0)
                r = stage_write_file(n->key_file, n->key_pem, 0600, c->pki_uid, c->pki_gid);
        if (r < 0) {
                buf_printf(err, "creating the node key %s: %s", n->key_file, strerror(-r));
                return r;
        }
        *ret_created = true;
        return 0;
}

static const char *csr_condition(json_t *csr, const char *type, const char **ret_message) {
        json_t *conds = json_object_get(json_object_get(csr, "status"), "conditions");
        size_t i;
        json_t *c;
        json_array_foreach(conds, i, c) {
                if (streq(strempty(json_string_value(json_object_get(c, "type"))), type) &&
                    streq(strempty(json_string_value(json_object_get(c, "status"))), "True")) {
                        *ret_message = strempty(json_string_value(json_object_get(c, "message")));
                        const char *reason = json_string_value(json_object_get(c, "reason"));
                        return reason ? reason : type;
                }
        }
        return NULL;
}

/* The reply of a request made with the token, as the stage's reason. */
static int token_request_failed(role_node *n, int r, buf *err) {
        if (r == -EKEYREJECTED) {
                buf_clear(err);
                buf_printf(err, TOKEN_REJECTED ": token id %s", n->ud.token.id);
        }
        return r;
}

static int post_csr(role_node *n, kube_client *k, const char *name, json_t **ret, buf *err) {
        _cleanup_free_ char *subject = NULL, *csr = NULL, *b64 = NULL;
        char nodes[] = "system:nodes", *organization[] = { nodes, NULL };
        int r;
        if (asprintf(&subject, "system:node:%s", n->node_name) < 0)
                return -ENOMEM;
        r = pki_make_csr_for_key(n->key_pem, subject, organization, &csr);
        if (r < 0) {
                buf_printf(err, "making the CSR: %s", strerror(-r));
                return r;
        }
        b64 = base64_encode(csr, strlen(csr));
        _cleanup_json_ json_t *body = b64 ? json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:s,s:[s,s]}}", "apiVersion",
                                                      "certificates.k8s.io/v1", "kind", "CertificateSigningRequest",
                                                      "metadata", "name", name, "spec", "request", b64, "signerName",
                                                      KUBELET_SIGNER, "usages", "digital signature", "client auth")
                                          : NULL;
        if (!body)
                return -ENOMEM;
        return kube_post(k, CSR_PATH, body, ret, err);
}

/* csr: a CSR for the node's key, made with the bootstrap token, until it carries a certificate.
 * Its name comes from the key, so a re-run finds its own CSR instead of making a second one. */
static int stage_csr(role_node *n) {
        agent *a = n->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(kube_client_freep) kube_client *k = NULL;
        _cleanup_free_ char *name = NULL, *path = NULL, *cert_pem = NULL;
        _cleanup_json_ json_t *csr = NULL;
        int64_t end = time_now_ms() + a->cfg->node_csr_deadline_ms;
        bool created_key = false, created_csr = false;
        char hex[65], detail[512], token[KUBE_TOKEN_ID_LEN + 1 + KUBE_TOKEN_SECRET_LEN + 1];
        int r;

        stage_begin(a);
        r = ensure_key(n, &created_key, &err);
        if (r < 0)
                return stage_fail(a, "csr", r, &err);
        if (read_file(n->cert_file, 256 * 1024, &cert_pem, NULL) >= 0 &&
            pki_cert_check(cert_pem, n->key_pem, NULL, 1.0, time(NULL)) > 0)
                return stage_end(a, "csr", true, "the certificate on disk matches the node key");
        r = pki_key_spki_sha256(n->key_pem, hex);
        if (r < 0)
                return stage_fail(a, "csr", r, NULL);
        if (asprintf(&name, "node-csr-%.16s", hex) < 0 || asprintf(&path, CSR_PATH "/%s", name) < 0)
                return -ENOMEM;

        snprintf(token, sizeof(token), "%s.%s", n->ud.token.id, n->ud.token.secret);
        r = client_new(&(kube_client_config){ .server = n->ud.endpoint, .ca_pem = n->ci.ca_pem, .token = token }, &k, &err);
        explicit_bzero(token, sizeof(token));
        if (r < 0)
                return stage_fail(a, "csr", r, &err);

        r = kube_get(k, path, &csr, &err);
        if (r == -ENOENT) {
                buf_clear(&err);
                r = post_csr(n, k, name, &csr, &err);
                created_csr = r >= 0;
                if (r == -EEXIST) {
                        /* made by an earlier run whose reply was lost: read it */
                        buf_clear(&err);
                        r = kube_get(k, path, &csr, &err);
                }
        }
        if (r < 0)
                return stage_fail(a, "csr", token_request_failed(n, r, &err), &err);
        log_info("CSR %s %s for system:node:%s", name, created_csr ? "created" : "exists", n->node_name);

        for (;;) {
                const char *msg = NULL, *why;
                if ((why = csr_condition(csr, "Denied", &msg))) {
                        buf_printf(&err, "CSR %s denied (%s): %s", name, why, msg);
                        return stage_fail(a, "csr", -EACCES, &err);
                }
                if ((why = csr_condition(csr, "Failed", &msg))) {
                        buf_printf(&err, "CSR %s failed (%s): %s", name, why, msg);
                        return stage_fail(a, "csr", -EIO, &err);
                }
                const char *b64 = json_path_string(csr, "status.certificate");
                if (b64 && *b64) {
                        _cleanup_free_ uint8_t *pem = NULL;
                        size_t len;
                        if (base64_decode(b64, &pem, &len) < 0 || memchr(pem, 0, len)) {
                                buf_printf(&err, "CSR %s: status.certificate is not base64 PEM", name);
                                return stage_fail(a, "csr", -EBADMSG, &err);
                        }
                        if (pki_cert_check((const char *) pem, n->key_pem, NULL, 1.0, time(NULL)) <= 0) {
                                buf_printf(&err, "CSR %s: the issued certificate is not for the node key, or not valid now", name);
                                return stage_fail(a, "csr", -EBADMSG, &err);
                        }
                        r = stage_write_file(n->cert_file, (const char *) pem, 0644, a->cfg->pki_uid, a->cfg->pki_gid);
                        if (r < 0) {
                                buf_printf(&err, "writing %s: %s", n->cert_file, strerror(-r));
                                return stage_fail(a, "csr", r, &err);
                        }
                        const char *approved = csr_condition(csr, "Approved", &msg);
                        snprintf(detail, sizeof(detail), "CSR %s %s, approved (%s), certificate issued%s", name,
                                 created_csr ? "created" : "reused", approved ? approved : "?",
                                 created_key ? ", new key" : "");
                        return stage_end(a, "csr", true, detail);
                }
                if (time_now_ms() >= end) {
                        buf_printf(&err, "CSR %s not %s within %ld ms", name,
                                   csr_condition(csr, "Approved", &msg) ? "signed" : "approved",
                                   a->cfg->node_csr_deadline_ms);
                        return stage_fail(a, "csr", -ETIMEDOUT, &err);
                }
                agent_sleep(a, 500);
                json_decref(TAKE_PTR(csr));
                buf_clear(&err);
                r = kube_get(k, path, &csr, &err);
                if (r == -EKEYREJECTED || r == -EACCES || r == -ENOENT)
                        return stage_fail(a, "csr", token_request_failed(n, r, &err), &err);
                if (r < 0) {
                        log_warning("Reading CSR %s: %s", name, err.data);
                        csr = NULL;
                }
        }
}

static char *kubeconfig_text(const role_node *n) {
        _cleanup_free_ char *ca64 = base64_encode(n->ci.ca_pem, strlen(n->ci.ca_pem));
        char *s;
        if (!ca64)
                return NULL;
        /* The shape kubelet writes after its own TLS bootstrap. */
        if (asprintf(&s,
                     "# Written by bootagent (node role): kubelet's credential from the approved CSR.\n"
                     "apiVersion: v1\n"
                     "kind: Config\n"
                     "clusters:\n"
                     "- cluster:\n"
                     "    certificate-authority-data: %s\n"
                     "    server: %s\n"
                     "  name: default-cluster\n"
                     "contexts:\n"
                     "- context:\n"
                     "    cluster: default-cluster\n"
                     "    namespace: default\n"
                     "    user: default-auth\n"
                     "  name: default-context\n"
                     "current-context: default-context\n"
                     "preferences: {}\n"
                     "users:\n"
                     "- name: default-auth\n"
                     "  user:\n"
                     "    client-certificate: %s\n"
                     "    client-key: %s\n",
                     ca64, n->ud.endpoint, n->cert_file, n->key_file) < 0)
                return NULL;
        return s;
}

/* kubelet-config: the kubeconfig, the CA, a KubeletConfiguration and the environment file the
 * kubelet unit reads. */
static int stage_kubelet_config(role_node *n) {
        agent *a = n->a;
        const agent_config *c = a->cfg;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        _cleanup_free_ char *kubeconfig = kubeconfig_text(n), *config = NULL, *env = NULL;
        unsigned written = 0;
        char detail[256];
        int r;

        stage_begin(a);
        if (!kubeconfig ||
            asprintf(&config,
                     "# Written by bootagent (node role).\n"
                     "apiVersion: kubelet.config.k8s.io/v1beta1\n"
                     "kind: KubeletConfiguration\n"
                     "# kubelet renews its client certificate itself (CSRs with its current one).\n"
                     "rotateCertificates: true\n"
                     "authentication:\n"
                     "  anonymous:\n"
                     "    enabled: false\n"
                     "  webhook:\n"
                     "    enabled: true\n"
                     "  x509:\n"
                     "    clientCAFile: %s\n"
                     "authorization:\n"
                     "  mode: Webhook\n"
                     "cgroupDriver: systemd\n"
                     "clusterDomain: cluster.local\n",
                     n->ca_file) < 0 ||
            asprintf(&env,
                     "# Written by bootagent (node role); read by kubelet.service (EnvironmentFile=).\n"
                     "KUBELET_KUBECONFIG=%s\nKUBELET_CONFIG=%s\nKUBELET_NODE_NAME=%s\nKUBELET_CA_FILE=%s\n",
                     n->kubeconfig, n->kubelet_config, n->node_name, n->ca_file) < 0)
                return -ENOMEM;
        struct {
                const char *path, *data;
                mode_t mode;
        } files[] = {
                { n->ca_file, n->ci.ca_pem, 0644 },
                { n->kubeconfig, kubeconfig, 0600 },
                { n->kubelet_config, config, 0644 },
                { n->env_file, env, 0644 },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                r = stage_write_file(files[i].path, files[i].data, files[i].mode, c->pki_uid, c->pki_gid);
                if (r < 0) {
                        buf_printf(&err, "writing %s: %s", files[i].path, strerror(-r));
                        return stage_fail(a, "kubelet-config", r, &err);
                }
                written += r > 0;
        }
        snprintf(detail, sizeof(detail), "%u of %zu files written", written, ELEMENTSOF(files));
        return stage_end(a, "kubelet-config", true, detail);
}

static const char *node_ready(json_t *node, const char **ret_message) {
        json_t *conds = json_object_get(json_object_get(node, "status"), "conditions");
        size_t i;
        json_t *c;
        json_array_foreach(conds, i, c)
                if (streq(strempty(json_string_value(json_object_get(c, "type"))), "Ready")) {
                        *ret_message = json_string_value(json_object_get(c, "message"));
                        return strempty(json_string_value(json_object_get(c, "status")));
                }
        return NULL;
}

/* ready: with the node's own credential, the Node until its Ready condition is True. */
static int stage_ready(role_node *n) {
        agent *a = n->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(kube_client_freep) kube_client *k = NULL;
        _cleanup_free_ char *path = NULL, *escaped = http_escape(n->node_name), *last = NULL;
        int64_t end = time_now_ms() + a->cfg->node_ready_deadline_ms;
        int r;

        stage_begin(a);
        if (!escaped || asprintf(&path, "/api/v1/nodes/%s", escaped) < 0)
                return -ENOMEM;
        r = client_new(&(kube_client_config){ .server = n->ud.endpoint, .ca_pem = n->ci.ca_pem,
                                              .cert_file = n->cert_file, .key_file = n->key_file },
                       &k, &err);
        if (r < 0)
                return stage_fail(a, "ready", r, &err);
        for (;;) {
                _cleanup_json_ json_t *node = NULL;
                const char *msg = NULL, *status = NULL;
                buf_clear(&err);
                r = kube_get(k, path, &node, &err);
                if (r >= 0 && (status = node_ready(node, &msg)) && streq(status, "True")) {
                        char detail[256];
                        snprintf(detail, sizeof(detail), "node %s Ready", n->node_name);
                        return stage_end(a, "ready", true, detail);
                }
                free(last);
                if (r == -ENOENT)
                        last = strdup("the Node is not registered");
                else if (r < 0)
                        last = strdup(strempty(err.data));
                else if (!status)
                        last = strdup("no Ready condition");
                else if (asprintf(&last, "Ready=%s: %s", status, strempty(msg)) < 0)
                        last = NULL;
                if (!last)
                        return -ENOMEM;
                if (r == -EKEYREJECTED || r == -EACCES)
                        return stage_fail(a, "ready", r, &err);
                if (time_now_ms() >= end) {
                        buf_clear(&err);
                        buf_printf(&err, "not Ready within %ld ms: %s", a->cfg->node_ready_deadline_ms, last);
                        return stage_fail(a, "ready", -ETIMEDOUT, &err);
                }
                agent_sleep(a, 1000);
        }
}

/* user-data -> discovery -> csr -> kubelet-config -> units -> ready. */
static int role_node_firstboot(agent *a, role_start_units_fn start_units) {
        _cleanup_(role_node_done) role_node n = { 0 };
        bool started = false;
        int r;
        if ((r = role_node_init(&n, a)) < 0)
                return r;
        if ((r = stage_user_data(&n)) < 0 || (r = stage_discovery(&n)) < 0 || (r = stage_csr(&n)) < 0 ||
            (r = stage_kubelet_config(&n)) < 0)
                return r;
        /* The token is not needed any more: kubelet gets the certificate, never the token. */
        kube_bootstrap_token_wipe(&n.ud.token);
        r = start_units(a, n.env_file, &started);
        if (r < 0)
                return r;
        return stage_ready(&n);
}

const role_ops role_node_ops = {
        .role = AGENT_CONFIG_ROLE_NODE,
        .firstboot = role_node_firstboot,
};
