#include "role-control-plane.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cp-objects.h"
#include "discover.h"
#include "etcd.h"
#include "fs.h"
#include "http.h"
#include "json.h"
#include "kube-bootstrap.h"
#include "kube-client.h"
#include "log.h"
#include "logtail.h"
#include "stage.h"
#include "strv.h"
#include "time-util.h"
#include "units.h"
#include "vault.h"

#define SECRETS_PATH "/api/v1/namespaces/kube-system/secrets"
#define CLUSTER_INFO_PATH "/api/v1/namespaces/kube-public/configmaps"

/* The rooted files of one [certificate] section. */
typedef struct cert_files {
        char *cert, *key, *ca;
} cert_files;

static void cert_files_done(cert_files *f) {
        free(f->cert);
        free(f->key);
        free(f->ca);
        *f = (cert_files){ 0 };
}

/* The role's state for one run, next to the driver's agent. */
typedef struct role_cp {
        agent *a;
        kube_bootstrap_token token;     /* secret: wiped by role_cp_done() */
        char *token_expiration;
        char **etcd_servers;
        char *endpoint, *server;        /* the control-plane endpoint (expanded); our own apiserver */
        char *env_file, *encryption_config, *sa_key, *sa_pub, *client_ca, *signing_cert, *signing_key; /* rooted */
        cert_files apiserver, etcd, admin, kubelet, front_proxy;
        char *cm_kubeconfig, *sched_kubeconfig; /* rooted */
} role_cp;

static int cert_files_get(agent *a, const char *name, cert_files *ret) {
        const agent_config_cert *t = name ? agent_config_find_cert(a->cfg, name) : NULL;
        if (!t)
                return 0;
        if (agent_rooted(a, t->cert_file, &ret->cert) < 0 || agent_rooted(a, t->key_file, &ret->key) < 0 ||
            agent_rooted(a, t->ca_file, &ret->ca) < 0)
                return -ENOMEM;
        return 0;
}

static int kubeconfig_file(agent *a, const char *name, char **ret) {
        const agent_config_kubeconfig *k = name ? agent_config_find_kubeconfig(a->cfg, name) : NULL;
        *ret = NULL;
        return k ? agent_rooted(a, k->file, ret) : 0;
}

static int in_pki_dir(agent *a, const char *name, char **ret) {
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", a->cfg->cp_pki_dir, name) < 0)
                return -ENOMEM;
        return agent_rooted(a, p, ret);
}

static int role_cp_init(role_cp *p, agent *a) {
        const agent_config *c = a->cfg;
        _cleanup_strv_free_ char **env = NULL;
        *p = (role_cp){ .a = a };
        if (agent_identity_env(a, &env) < 0)
                return -ENOMEM;
        int r = strv_env_expand(c->cp_endpoint, env, &p->endpoint);
        if (r < 0)
                return r;
        if (asprintf(&p->server, "https://%s:%u", a->id.local_ipv4, c->cp_secure_port) < 0 ||
            agent_rooted(a, c->cp_env_file, &p->env_file) < 0 ||
            agent_rooted(a, c->cp_encryption_config, &p->encryption_config) < 0 ||
            in_pki_dir(a, "sa.key", &p->sa_key) < 0 || in_pki_dir(a, "sa.pub", &p->sa_pub) < 0 ||
            in_pki_dir(a, "client-ca.crt", &p->client_ca) < 0 ||
            (c->cp_cluster_signing_secret && (in_pki_dir(a, "cluster-signing.crt", &p->signing_cert) < 0 ||
                                              in_pki_dir(a, "cluster-signing.key", &p->signing_key) < 0)) ||
            cert_files_get(a, c->cp_apiserver_cert, &p->apiserver) < 0 || cert_files_get(a, c->cp_etcd_cert, &p->etcd) < 0 ||
            cert_files_get(a, c->cp_admin_cert, &p->admin) < 0 || cert_files_get(a, c->cp_kubelet_cert, &p->kubelet) < 0 ||
            cert_files_get(a, c->cp_front_proxy_cert, &p->front_proxy) < 0 ||
            kubeconfig_file(a, c->cp_controller_manager_kubeconfig, &p->cm_kubeconfig) < 0 ||
            kubeconfig_file(a, c->cp_scheduler_kubeconfig, &p->sched_kubeconfig) < 0)
                return -ENOMEM;
        return 0;
}

static void role_cp_done(role_cp *p) {
        kube_bootstrap_token_wipe(&p->token);
        free(p->token_expiration);
        strv_free(p->etcd_servers);
        free(p->endpoint);
        free(p->server);
        free(p->env_file);
        free(p->encryption_config);
        free(p->sa_key);
        free(p->sa_pub);
        free(p->client_ca);
        free(p->signing_cert);
        free(p->signing_key);
        cert_files_done(&p->apiserver);
        cert_files_done(&p->etcd);
        cert_files_done(&p->admin);
        cert_files_done(&p->kubelet);
        cert_files_done(&p->front_proxy);
        free(p->cm_kubeconfig);
        free(p->sched_kubeconfig);
}

/* A string field of a KV secret, or NULL with the reason in err. */
static const char *kv_field(json_t *data, const char *path, const char *field, buf *err) {
        const char *v = json_string_value(json_object_get(data, field));
        if (!v || !*v)
                buf_printf(err, "secret %s has no string field '%s'", path, field);
        return v && *v ? v : NULL;
}

static int write_one(role_cp *p, const char *path, const char *data, mode_t mode, unsigned *written, buf *err) {
        int r = stage_write_file(path, data, mode, p->a->cfg->pki_uid, p->a->cfg->pki_gid);
        if (r < 0) {
                buf_printf(err, "writing %s: %s", path, strerror(-r));
                return r;
        }
        *written += r > 0;
        return 0;
}

/* The CA certificates client certificates chain to: the admin certificate's CA (Vault's), and the
 * kubelet client signer's certificate when the cluster has one; each once. */
static int client_ca_bundle(role_cp *p, const char *signing_pem, char **ret, buf *err) {
        _cleanup_free_ char *admin_ca = NULL, *api_ca = NULL;
        _cleanup_buf_ buf b = BUF_INIT(1024 * 1024);
        int r = read_file(p->admin.ca, 256 * 1024, &admin_ca, NULL);
        if (r >= 0)
                r = read_file(p->apiserver.ca, 256 * 1024, &api_ca, NULL);
        if (r < 0) {
                buf_printf(err, "reading the CA of the certificates: %s", strerror(-r));
                return r;
        }
        const char *parts[] = { admin_ca, api_ca, signing_pem };
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                if (!parts[i] || (b.data && strstr(b.data, parts[i])))
                        continue;
                if (buf_puts(&b, parts[i]) < 0 || (parts[i][strlen(parts[i]) - 1] != '\n' && buf_puts(&b, "\n") < 0))
                        return -ENOMEM;
        }
        *ret = buf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

/* keys: from Vault KV, the service-account key pair, the EncryptionConfiguration, the kubelet
 * client signer (optional) and the bootstrap token; the client CA bundle. */
static int stage_keys(role_cp *p) {
        agent *a = p->a;
        const agent_config *c = a->cfg;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_json_ json_t *sa = NULL, *enc = NULL, *sign = NULL, *tok = NULL;
        _cleanup_secret_ char *encryption = NULL;
        _cleanup_free_ char *bundle = NULL;
        const char *sa_key, *sa_pub, *key, *token, *cert = NULL, *cert_key = NULL;
        unsigned written = 0, files = 0;
        char detail[256];
        int r;

        stage_begin(a);
        stage_deadline(a, c->vault_deadline_ms);
        if ((r = vault_kv_read(&a->vault, c->kv_mount, c->cp_service_account_secret, &sa, &err)) < 0 ||
            (r = vault_kv_read(&a->vault, c->kv_mount, c->cp_encryption_secret, &enc, &err)) < 0 ||
            (r = vault_kv_read(&a->vault, c->kv_mount, c->cp_bootstrap_token_secret, &tok, &err)) < 0 ||
            (c->cp_cluster_signing_secret &&
             (r = vault_kv_read(&a->vault, c->kv_mount, c->cp_cluster_signing_secret, &sign, &err)) < 0))
                return stage_fail(a, "keys", r, &err);
        if (!(sa_key = kv_field(sa, c->cp_service_account_secret, "private_key", &err)) ||
            !(sa_pub = kv_field(sa, c->cp_service_account_secret, "public_key", &err)) ||
            !(key = kv_field(enc, c->cp_encryption_secret, "key", &err)) ||
            !(token = kv_field(tok, c->cp_bootstrap_token_secret, "token", &err)) ||
            (sign && (!(cert = kv_field(sign, c->cp_cluster_signing_secret, "cert", &err)) ||
                      !(cert_key = kv_field(sign, c->cp_cluster_signing_secret, "key", &err)))))
                return stage_fail(a, "keys", -ENOENT, &err);
        if (kube_bootstrap_token_parse(token, &p->token) < 0) {
                /* never the value: it may be a token with a typo */
                buf_printf(&err, "secret %s: field 'token' is not a bootstrap token <id>.<secret> ([a-z0-9]{6}.[a-z0-9]{16})",
                           c->cp_bootstrap_token_secret);
                return stage_fail(a, "keys", -EINVAL, &err);
        }
        const char *expiration = json_string_value(json_object_get(tok, "expiration"));
        if (expiration && !(p->token_expiration = strdup(expiration)))
                return -ENOMEM;
        const char *key_name = json_string_value(json_object_get(enc, "name"));
        r = cp_encryption_config(c->cp_encryption_provider, key_name ? key_name : "key1", key, &encryption, &err);
        if (r < 0) {
                char why[512];
                snprintf(why, sizeof(why), "secret %s: %s", c->cp_encryption_secret, err.data);
                buf_clear(&err);
                buf_puts(&err, why);
                return stage_fail(a, "keys", r, &err);
        }
        r = client_ca_bundle(p, cert, &bundle, &err);
        if (r < 0)
                return stage_fail(a, "keys", r, &err);
        const struct {
                const char *path, *data;
                mode_t mode;
        } out[] = {
                { p->sa_key, sa_key, 0600 },
                { p->sa_pub, sa_pub, 0644 },
                { p->encryption_config, encryption, 0600 },
                { p->client_ca, bundle, 0644 },
                { p->signing_cert, cert, 0644 },
                { p->signing_key, cert_key, 0600 },
        };
        for (size_t i = 0; i < ELEMENTSOF(out); i++) {
                if (!out[i].path || !out[i].data)
                        continue;
                files++;
                if ((r = write_one(p, out[i].path, out[i].data, out[i].mode, &written, &err)) < 0)
                        return stage_fail(a, "keys", r, &err);
        }
        snprintf(detail, sizeof(detail), "%u of %u files written, bootstrap token id %s%s", written, files, p->token.id,
                 sign ? ", kubelet client signer" : "");
        return stage_end(a, "keys", true, detail);
}

/* One round of etcd-servers: the pool's members now, and whether one answers. Returns 1 with
 * p->etcd_servers set and the detail, 0 (not yet; the reason in err), or a negative errno. */
static int etcd_servers_round(role_cp *p, exoapi *api, etcd_tls *tls, char *detail, size_t size, buf *err) {
        const agent_config *c = p->a->cfg;
        _cleanup_(pool_view_done) pool_view pool = { 0 };
        _cleanup_strv_free_ char **servers = NULL;
        _cleanup_free_ char *joined = NULL;
        int r;

        buf_clear(err);
        r = discover_pool_by_name(api, c->cp_etcd_pool, &pool, err);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;
        if (pool.n_peers == 0) {
                buf_printf(err, "etcd pool '%s' has no running member with a private address", c->cp_etcd_pool);
                return 0;
        }
        for (size_t i = 0; i < pool.n_peers; i++)
                if (strv_pushf(&servers, "https://%s:%u", pool.peers[i].ip, c->cp_etcd_port) < 0)
                        return -ENOMEM;
        if (!(joined = strv_join(servers, ",")))
                return -ENOMEM;
        for (char **u = servers; *u; u++) {
                bool learner;
                char last[512];
                buf_clear(err);
                if (etcd_status(tls, *u, &learner, err) >= 0) {
                        snprintf(detail, size, "%zu member%s of pool %s: %s; %s answers", pool.n_peers,
                                 pool.n_peers == 1 ? "" : "s", c->cp_etcd_pool, joined, *u);
                        strv_free(p->etcd_servers);
                        p->etcd_servers = TAKE_PTR(servers);
                        return 1;
                }
                snprintf(last, sizeof(last), "%s", err->len ? err->data : "no answer");
                buf_clear(err);
                buf_printf(err, "no member of etcd pool '%s' (%s) answered; last: %s: %s", c->cp_etcd_pool, joined, *u, last);
        }
        return 0;
}

/* etcd-servers: the etcd pool's members through the cloud API (as the etcd role finds its own),
 * until one of them answers with our etcd client certificate; the pool is looked up again every
 * round (it may still be forming). Nothing is written before. */
static int stage_etcd_servers(role_cp *p) {
        agent *a = p->a;
        const agent_config *c = a->cfg;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_json_ json_t *creds = NULL;
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        int64_t end = time_now_ms() + c->cp_etcd_deadline_ms;
        char detail[1024];
        int r;

        stage_begin(a);
        stage_deadline(a, c->vault_deadline_ms);
        r = vault_kv_read(&a->vault, c->kv_mount, c->cloud_api_secret, &creds, &err);
        if (r >= 0)
                r = discover_api_new(creds, c->cloud_api_secret, a->id.zone, &api, &err);
        if (r < 0)
                return stage_fail(a, "etcd-servers", r, &err);

        stage_deadline(a, c->cp_etcd_deadline_ms);
        etcd_tls tls = { .ca_file = p->etcd.ca, .cert_file = p->etcd.cert, .key_file = p->etcd.key, .deadline = &a->deadline };
        for (;;) {
                int64_t t = time_now_ms();
                r = etcd_servers_round(p, api, &tls, detail, sizeof(detail), &err);
                if (r < 0)
                        return stage_fail(a, "etcd-servers", r, &err);
                if (r > 0)
                        return stage_end(a, "etcd-servers", true, detail);
                a->stage_wait += time_now_ms() - t;
                if (time_now_ms() >= end) {
                        char why[1024];
                        snprintf(why, sizeof(why), "no etcd server within %ld ms: %s", c->cp_etcd_deadline_ms, err.data);
                        buf_clear(&err);
                        buf_puts(&err, why);
                        a->deadline = (request_deadline){ 0 }; /* the reason says it already */
                        return stage_fail(a, "etcd-servers", -ETIMEDOUT, &err);
                }
                log_info("etcd servers not usable yet: %s", err.data);
                agent_sleep(a, 1000);
        }
}

/* flags: the environment file with the three components' flags. */
static int stage_flags(role_cp *p) {
        agent *a = p->a;
        const agent_config *c = a->cfg;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *text = NULL;
        unsigned written = 0;
        int r;

        stage_begin(a);
        const cp_flags f = {
                .advertise_address = a->id.local_ipv4,
                .secure_port = c->cp_secure_port,
                .etcd_servers = p->etcd_servers,
                .etcd_ca = p->etcd.ca, .etcd_cert = p->etcd.cert, .etcd_key = p->etcd.key,
                .tls_cert = p->apiserver.cert, .tls_key = p->apiserver.key,
                .client_ca = p->client_ca, .cluster_ca = p->apiserver.ca,
                .kubelet_cert = p->kubelet.cert, .kubelet_key = p->kubelet.key,
                .front_proxy_cert = p->front_proxy.cert, .front_proxy_key = p->front_proxy.key,
                .front_proxy_ca = p->front_proxy.ca,
                .sa_key = p->sa_key, .sa_pub = p->sa_pub,
                .encryption_config = p->encryption_config,
                .service_cidr = c->cp_service_cidr, .cluster_cidr = c->cp_cluster_cidr,
                .signing_cert = p->signing_cert, .signing_key = p->signing_key,
                .controller_manager_kubeconfig = p->cm_kubeconfig,
                .scheduler_kubeconfig = p->sched_kubeconfig,
        };
        r = cp_flags_env(&f, &text, &err);
        if (r >= 0)
                r = write_one(p, p->env_file, text, 0644, &written, &err);
        if (r < 0)
                return stage_fail(a, "flags", r, &err);
        return stage_end(a, "flags", true, written ? "flags written" : "flags unchanged");
}

/* A client of our own apiserver as the admin identity, retrying transport failures and
 * 502/503/504 for up to 30 s per request, never past the stage's deadline (a lost POST reply
 * comes back as 409, which every create here takes as "exists"). */
static int admin_client(role_cp *p, kube_client **ret, buf *err) {
        long left = 30000;
        if (p->a->deadline.at > 0) {
                int64_t l = p->a->deadline.at - time_now_ms();
                left = l < 1000 ? 1000 : l < 30000 ? (long) l : 30000;
        }
        return kube_client_new(&(kube_client_config){ .server = p->server, .ca_file = p->apiserver.ca,
                                                      .cert_file = p->admin.cert, .key_file = p->admin.key,
                                                      .timeout_ms = left < 10000 ? left : 10000, .attempts = 8,
                                                      .deadline_ms = left, .user_agent = "bootagent" },
                               ret, err);
}

/* -ETIMEDOUT with the reason when the stage's deadline has passed (checked between requests). */
static int deadline_check(const agent *a, const char *what, buf *err) {
        if (!stage_deadline_passed(a))
                return 0;
        buf_clear(err);
        buf_printf(err, "deadline of %ld ms exceeded before %s", a->deadline.ms, what);
        return -ETIMEDOUT;
}

static const char *apiserver_unit(const agent *a) {
        return a->cfg->units ? a->cfg->units[0] : "kube-apiserver.service";
}

/* units = exec: -ESRCH with the reason when the apiserver we started is gone. */
static int check_apiserver_running(role_cp *p, buf *err) {
        agent *a = p->a;
        _cleanup_free_ char *pid_file = NULL, *log_file = NULL, *tail = NULL;
        int status;
        if (!a->cfg->units_exec)
                return 0;
        if (units_exec_paths(a->state_dir, apiserver_unit(a), &pid_file, &log_file) < 0)
                return -ENOMEM;
        if (units_exec_running(pid_file, &status) != 0)
                return 0;
        buf_clear(err);
        if (status >= 0)
                buf_printf(err, "%s exited (status %d) while waiting for /readyz", apiserver_unit(a), status);
        else
                buf_printf(err, "%s is not running while waiting for /readyz", apiserver_unit(a));
        if (log_file_tail_line(log_file, 20, 1024, &tail) >= 0 && *tail)
                buf_printf(err, ": %s", tail);
        return -ESRCH;
}

/* readyz: our own kube-apiserver answers /readyz "ok". */
static int stage_readyz(role_cp *p) {
        agent *a = p->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(kube_client_freep) kube_client *k = NULL;
        int64_t end = time_now_ms() + a->cfg->cp_ready_deadline_ms;
        int r;

        stage_begin(a);
        stage_deadline(a, a->cfg->cp_ready_deadline_ms);
        r = admin_client(p, &k, &err);
        if (r < 0)
                return stage_fail(a, "readyz", r, &err);
        for (;;) {
                _cleanup_free_ char *body = NULL;
                int64_t t = time_now_ms();
                buf_clear(&err);
                r = kube_get_text(k, "/readyz", &body, &err);
                if (r >= 0 && streq(body, "ok")) {
                        char detail[256];
                        snprintf(detail, sizeof(detail), "%s/readyz ok", p->server);
                        return stage_end(a, "readyz", true, detail);
                }
                if (r >= 0) {
                        buf_clear(&err);
                        buf_printf(&err, "/readyz answered '%.200s'", strempty(body));
                }
                a->stage_wait += time_now_ms() - t;
                r = check_apiserver_running(p, &err);
                if (r < 0)
                        return stage_fail(a, "readyz", r, &err);
                if (time_now_ms() >= end) {
                        char why[1024];
                        snprintf(why, sizeof(why), "%s/readyz not ok within %ld ms: %s", p->server,
                                 a->cfg->cp_ready_deadline_ms, err.len ? err.data : "no answer");
                        buf_clear(&err);
                        buf_puts(&err, why);
                        a->deadline = (request_deadline){ 0 };
                        return stage_fail(a, "readyz", -ETIMEDOUT, &err);
                }
                agent_sleep(a, 500);
        }
}

/* GET path, POST body to collection when it is not there; a 409 (another member, or our own
 * earlier POST whose reply was lost) reads it again. *ret: the object as it is now;
 * *ret_created: whether this call made it. */
static int get_or_create(kube_client *k, const char *collection, const char *name, json_t *body, json_t **ret,
                         bool *ret_created, buf *err) {
        _cleanup_free_ char *path = NULL, *escaped = http_escape(name);
        if (!escaped || asprintf(&path, "%s/%s", collection, escaped) < 0)
                return -ENOMEM;
        *ret_created = false;
        int r = kube_get(k, path, ret, err);
        if (r != -ENOENT)
                return r;
        buf_clear(err);
        r = kube_post(k, collection, body, ret, err);
        if (r >= 0) {
                *ret_created = true;
                return 0;
        }
        if (r != -EEXIST)
                return r;
        buf_clear(err);
        return kube_get(k, path, ret, err);
}

/* The bootstrap-token Secret: made once; kept when it holds our token. */
static int ensure_token_secret(role_cp *p, kube_client *k, const char **ret_what, buf *err) {
        _cleanup_json_ json_t *want = cp_bootstrap_token_secret(&p->token, p->token_expiration), *have = NULL;
        bool created;
        char name[64];
        if (!want)
                return -ENOMEM;
        snprintf(name, sizeof(name), "bootstrap-token-%s", p->token.id);
        int r = get_or_create(k, SECRETS_PATH, name, want, &have, &created, err);
        /* the request body held the token secret */
        json_t *data = json_object_get(want, "data");
        const char *ts = json_string_value(json_object_get(data, "token-secret"));
        if (ts)
                explicit_bzero((char *) ts, strlen(ts));
        if (r < 0)
                return r;
        if (!cp_bootstrap_token_secret_matches(have, &p->token)) {
                buf_printf(err, "Secret kube-system/%s exists and does not hold the token of Vault KV %s (not changed)", name,
                           p->a->cfg->cp_bootstrap_token_secret);
                return -EEXIST;
        }
        *ret_what = created ? "created" : "kept";
        return 0;
}

/* cluster-info: our kubeconfig with our token's signature. Another member's is kept when it is
 * the same kubeconfig; our signature is added when missing. */
static int ensure_cluster_info(role_cp *p, kube_client *k, const char **ret_what, buf *err) {
        _cleanup_free_ char *ca = NULL, *kubeconfig = NULL, *jws = NULL, *key = NULL;
        _cleanup_json_ json_t *want = NULL, *have = NULL;
        bool created;
        int r = read_file(p->apiserver.ca, 256 * 1024, &ca, NULL);
        if (r < 0) {
                buf_printf(err, "reading %s: %s", p->apiserver.ca, strerror(-r));
                return r;
        }
        if ((r = cp_cluster_info_kubeconfig(p->endpoint, ca, &kubeconfig)) < 0 ||
            (r = kube_bootstrap_jws_sign(kubeconfig, strlen(kubeconfig), p->token.id, p->token.secret, &jws)) < 0)
                return r;
        if (asprintf(&key, "jws-kubeconfig-%s", p->token.id) < 0)
                return -ENOMEM;
        want = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name",
                         "cluster-info", "namespace", "kube-public", "data", "kubeconfig", kubeconfig, key, jws);
        if (!want)
                return -ENOMEM;
        r = get_or_create(k, CLUSTER_INFO_PATH, "cluster-info", want, &have, &created, err);
        if (r < 0)
                return r;
        if (created) {
                *ret_what = "created";
                return 0;
        }
        const char *have_kc = json_path_string(have, "data.kubeconfig");
        if (!have_kc || !streq(have_kc, kubeconfig)) {
                buf_printf(err, "ConfigMap kube-public/cluster-info holds another kubeconfig (another CA or endpoint than %s): "
                           "not changed", p->endpoint);
                return -EEXIST;
        }
        const char *have_jws = json_string_value(json_object_get(json_object_get(have, "data"), key));
        if (have_jws && streq(have_jws, jws)) {
                *ret_what = "kept";
                return 0;
        }
        _cleanup_json_ json_t *patch = json_pack("{s:{s:s}}", "data", key, jws);
        if (!patch)
                return -ENOMEM;
        r = kube_patch(k, CLUSTER_INFO_PATH "/cluster-info", KUBE_PATCH_MERGE, patch, NULL, err);
        if (r < 0)
                return r;
        *ret_what = "signed";
        return 0;
}

/* kubeadm's RBAC objects: create-or-keep each. */
static int ensure_rbac(const agent *a, kube_client *k, unsigned *ret_created, unsigned *ret_kept, buf *err) {
        _cleanup_json_ json_t *objs = cp_rbac_objects();
        json_t *o;
        size_t i;
        if (!objs)
                return -ENOMEM;
        json_array_foreach(objs, i, o) {
                const char *path = json_string_value(json_object_get(o, "path"));
                json_t *obj = json_object_get(o, "object");
                const char *name = json_path_string(obj, "metadata.name");
                _cleanup_json_ json_t *have = NULL;
                bool created;
                int r = deadline_check(a, name, err);
                if (r >= 0)
                        r = get_or_create(k, path, name, obj, &have, &created, err);
                if (r < 0)
                        return r;
                if (created)
                        (*ret_created)++;
                else
                        (*ret_kept)++;
        }
        return 0;
}

/* bootstrap: what nodes need to join, from whichever member gets there first. */
static int stage_bootstrap(role_cp *p) {
        agent *a = p->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(kube_client_freep) kube_client *k = NULL;
        const char *secret = NULL, *ci = NULL;
        unsigned created = 0, kept = 0;
        char detail[512];
        int r;

        stage_begin(a);
        stage_deadline(a, a->cfg->cp_bootstrap_deadline_ms);
        r = admin_client(p, &k, &err);
        if (r >= 0)
                r = ensure_token_secret(p, k, &secret, &err);
        if (r >= 0)
                r = stage_abort_point("bootstrap-secret");
        if (r >= 0 && (r = deadline_check(a, "cluster-info", &err)) >= 0)
                r = ensure_cluster_info(p, k, &ci, &err);
        if (r >= 0)
                r = stage_abort_point("bootstrap-cluster-info");
        if (r >= 0)
                r = ensure_rbac(a, k, &created, &kept, &err);
        if (r == -ECANCELED)
                return r;
        if (r < 0) {
                a->deadline = (request_deadline){ 0 }; /* the API client's own deadline; the reason says so */
                return stage_fail(a, "bootstrap", r, &err);
        }
        snprintf(detail, sizeof(detail), "Secret bootstrap-token-%s %s, cluster-info %s (endpoint %s), RBAC: %u created, %u kept",
                 p->token.id, secret, ci, p->endpoint, created, kept);
        return stage_end(a, "bootstrap", true, detail);
}

/* keys -> etcd-servers -> flags -> units -> readyz -> bootstrap. */
static int role_cp_firstboot(agent *a, role_start_units_fn start_units) {
        _cleanup_(role_cp_done) role_cp p = { 0 };
        bool started = false;
        int r;
        if (!a->cfg->cp_configured) /* no [control-plane]: certificates and units only */
                return start_units(a, NULL, &started);
        if ((r = role_cp_init(&p, a)) < 0)
                return r;
        if ((r = stage_keys(&p)) < 0 || (r = stage_etcd_servers(&p)) < 0 || (r = stage_flags(&p)) < 0)
                return r;
        r = start_units(a, p.env_file, &started);
        if (r < 0)
                return r;
        if ((r = stage_readyz(&p)) < 0)
                return r;
        return stage_bootstrap(&p);
}

const role_ops role_control_plane_ops = {
        .role = AGENT_CONFIG_ROLE_CONTROL_PLANE,
        .firstboot = role_cp_firstboot,
};
