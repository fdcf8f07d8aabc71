/* bootagent config parsing: a full valid file, defaults, and file:line errors. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "agent-config.h"
#include "strv.h"

static const char *const valid =
        "# comment\n"
        "[agent]\n"
        "role = etcd\n"
        "renew_fraction = 0.5\n"
        "\n"
        "[metadata]\n"
        "url = http://127.0.0.1:1234\n"
        "deadline_ms = 2000\n"
        "[vault]\n"
        "address = https://vault.internal:8200\n"
        "ca_file = /etc/ssl/vault-ca.pem\n"
        "role = etcd-nodes\n"
        "[secret]\n"
        "path = etcd/shared\n"
        "field = token\n"
        "file = /etc/etcd/token\n"
        "mode = 0640\n"
        "owner = 0:4\n"
        "[secret]\n"
        "path = other\n"
        "field = x\n"
        "file = /etc/x\n"
        "[pki]\n"
        "role = etcd-peer\n"
        "alt_names = a.etcd.local, b.etcd.local\n"
        "ip_sans = 127.0.0.1\n"
        "local_key = yes\n"
        "owner = 0:5\n"
        "cert_file = /etc/etcd/pki/etcd.crt\n"
        "key_file = /etc/etcd/pki/etcd.key\n"
        "ca_file = /etc/etcd/pki/ca.crt\n"
        "[etcd]\n"
        "client_port = 12379\n"
        "peer_port = 12380\n"
        "[units]\n"
        "mode = exec\n"
        "start = etcd.service\n"
        "exec_start = etcd --name ${ETCD_NAME}\n";

static void test_valid(void) {
        _cleanup_(agent_config_freep) agent_config *c = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK_OK(agent_config_parse(valid, "agent.conf", &c, &err));
        CHECK(c->role == AGENT_CONFIG_ROLE_ETCD);
        CHECK(c->renew_fraction == 0.5);
        CHECK_STREQ(c->metadata_url, "http://127.0.0.1:1234");
        CHECK(c->metadata_deadline_ms == 2000);
        CHECK_STREQ(c->vault_addr, "https://vault.internal:8200");
        CHECK_STREQ(c->vault_role, "etcd-nodes");
        CHECK_STREQ(c->vault_auth_mount, "exoscale"); /* default */
        CHECK_STREQ(c->kv_mount, "secret");
        CHECK(c->n_secrets == 2);
        CHECK_STREQ(c->secrets[0].file, "/etc/etcd/token");
        CHECK(c->secrets[0].mode == 0640);
        CHECK(c->secrets[0].uid == 0 && c->secrets[0].gid == 4);
        CHECK(c->secrets[1].mode == 0600); /* default */
        CHECK(strv_length(c->pki_alt_names) == 2);
        CHECK_STREQ(c->pki_alt_names[1], "b.etcd.local");
        CHECK(c->pki_local_key);
        CHECK(c->pki_uid == 0 && c->pki_gid == 5);
        CHECK(c->etcd_client_port == 12379 && c->etcd_peer_port == 12380);
        CHECK_STREQ(c->etcd_data_dir, "/var/lib/etcd");
        CHECK(c->units_exec);
        CHECK_STREQ(c->units[0], "etcd.service");
        CHECK_STREQ(c->exec_start, "etcd --name ${ETCD_NAME}");
        CHECK_STREQ(c->state_dir, "/var/lib/bootagent");
}

static void test_defaults(void) {
        _cleanup_(agent_config_freep) agent_config *c = NULL;
        CHECK_OK(agent_config_parse("[agent]\nrole = etcd\n[vault]\naddress = http://v:8200\n[pki]\nrole = r\n"
                              "cert_file = /c\nkey_file = /k\nca_file = /ca\n", "x.conf", &c, NULL));
        CHECK_STREQ(c->units[0], "etcd.service");
        CHECK(!c->units_exec);
        CHECK(c->pki_uid == (uid_t) -1);
        CHECK(c->etcd_client_port == 2379 && c->etcd_peer_port == 2380);
        CHECK_STREQ(c->vault_role, "etcd");
        CHECK_STREQ(c->metadata_url, "http://169.254.169.254");
        CHECK(!c->metadata_socket && !c->vault_socket);
        CHECK(c->renew_fraction > 0.66 && c->renew_fraction < 0.67);
}

#define PKI "[pki]\nrole = r\ncert_file = /c\nkey_file = /k\nca_file = /ca\n"

/* The services' UNIX sockets: absolute paths that fit sun_path, taken as written (not under --root). */
static void test_sockets(void) {
        _cleanup_(agent_config_freep) agent_config *c = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        char path[200], text[512];

        CHECK_OK(agent_config_parse("[agent]\nrole = etcd\n[metadata]\nsocket = /run/cloud/m1-metadata.sock\n"
                                    "[vault]\naddress = http://vault\nsocket = /run/cloud/m1-vault.sock\n" PKI,
                                    "x.conf", &c, &err));
        CHECK_STREQ(c->metadata_socket, "/run/cloud/m1-metadata.sock");
        CHECK_STREQ(c->metadata_url, "http://169.254.169.254"); /* still the Host and path */
        CHECK_STREQ(c->vault_socket, "/run/cloud/m1-vault.sock");
        CHECK_STREQ(c->vault_addr, "http://vault");

        /* 107 bytes is the longest sun_path takes; 108 is refused, as is a relative path. */
        memset(path, 'a', sizeof(path));
        path[0] = '/';
        path[107] = 0;
        snprintf(text, sizeof(text), "[agent]\nrole = etcd\n[vault]\naddress = http://v\nsocket = %s\n" PKI, path);
        agent_config_free(TAKE_PTR(c));
        CHECK_OK(agent_config_parse(text, "x.conf", &c, &err));
        path[107] = 'a';
        path[108] = 0;
        snprintf(text, sizeof(text), "[agent]\nrole = etcd\n[vault]\naddress = http://v\nsocket = %s\n" PKI, path);
        agent_config_free(TAKE_PTR(c));
        buf_clear(&err);
        CHECK(agent_config_parse(text, "x.conf", &c, &err) == -EINVAL);
        CHECK(strstr(err.data, "x.conf:5: invalid value for 'socket'"));
}

/* [node]: the node role's paths and deadlines, kubelet.service by default. */
static void test_node(void) {
        _cleanup_(agent_config_freep) agent_config *c = NULL, *d = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK_OK(agent_config_parse("[agent]\nrole = node\n[vault]\naddress = http://v:8200\n", "n.conf", &c, NULL));
        CHECK_STREQ(c->units[0], "kubelet.service");
        CHECK_STREQ(c->node_kubeconfig, "/var/lib/kubelet/kubeconfig");
        CHECK_STREQ(c->node_kubelet_config, "/var/lib/kubelet/config.yaml");
        CHECK_STREQ(c->node_key_file, "/var/lib/kubelet/pki/kubelet-client.key");
        CHECK(c->node_ready_deadline_ms == 300000);
        CHECK_OK(agent_config_parse("[agent]\nrole = node\n[vault]\naddress = http://v:8200\n[node]\n"
                                    "kubeconfig = /k/kubeconfig\nkubelet_config = /k/config.yaml\nca_file = /k/ca\n"
                                    "cert_file = /k/c\nkey_file = /k/k\nenv_file = /k/env\ndiscovery_deadline_ms = 1000\n"
                                    "csr_deadline_ms = 2000\nready_deadline_ms = 3000\n", "n.conf", &d, NULL));
        CHECK_STREQ(d->node_kubeconfig, "/k/kubeconfig");
        CHECK_STREQ(d->node_kubelet_config, "/k/config.yaml");
        CHECK_STREQ(d->node_ca_file, "/k/ca");
        CHECK_STREQ(d->node_cert_file, "/k/c");
        CHECK_STREQ(d->node_key_file, "/k/k");
        CHECK_STREQ(d->node_env_file, "/k/env");
        CHECK(d->node_discovery_deadline_ms == 1000 && d->node_csr_deadline_ms == 2000 && d->node_ready_deadline_ms == 3000);
        agent_config *e = NULL;
        CHECK(agent_config_parse("[agent]\nrole = node\n[vault]\naddress = http://v:8200\n[node]\nkey_file = k.pem\n",
                                 "n.conf", &e, &err) == -EINVAL && !e);
        CHECK(strstr(err.data, "n.conf:6: invalid value for 'key_file'"));
}

/* [vault] is optional for role node (its join needs only user-data), nowhere else; without it
 * nothing may need Vault. */
static void test_node_without_vault(void) {
        _cleanup_(agent_config_freep) agent_config *c = NULL, *e = NULL;
        CHECK_OK(agent_config_parse("[agent]\nrole = node\n[metadata]\nurl = http://m\n", "n.conf", &c, NULL));
        CHECK(c->vault_addr == NULL);
        CHECK_STREQ(c->units[0], "kubelet.service");
        /* environment files read no Vault */
        CHECK_OK(agent_config_parse("[agent]\nrole = node\n[environment k]\nfile = /etc/default/k\nA = ${local_ipv4}\n",
                                    "n.conf", &e, NULL));
        CHECK(e->vault_addr == NULL && e->n_envs == 1);
        static const struct {
                const char *text, *want;
        } bad[] = {
                /* a [vault] section still needs its address (named at its header; whole-file
                 * checks otherwise name the line after the last) */
                { "[agent]\nrole = node\n[vault]\ndeadline_ms = 1000\n", "n.conf:3: missing 'address' in [vault]" },
                { "[agent]\nrole = node\n[secret]\npath = p\nfield = f\nfile = /f\n",
                  "n.conf:3: [secret] needs Vault: no [vault] address" },
                { "[agent]\nrole = node\n[pki]\nrole = r\ncert_file = /c\nkey_file = /k\nca_file = /a\n",
                  "n.conf:8: [pki] needs Vault: no [vault] address" },
                { "[agent]\nrole = node\n\n[certificate kubelet]\nrole = r\ncert_file = /c\nkey_file = /k\nca_file = /a\n",
                  "n.conf:4: [certificate kubelet] needs Vault: no [vault] address" },
                /* every other role needs Vault */
                { "[agent]\nrole = control-plane\n", "n.conf:3: missing 'address' in [vault]" },
                { "[agent]\nrole = vault\n", "n.conf:3: missing 'address' in [vault]" },
                { "[agent]\nrole = etcd\n[pki]\nrole = r\ncert_file = /c\nkey_file = /k\nca_file = /a\n",
                  "n.conf:8: missing 'address' in [vault]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_buf_ buf err = BUF_INIT(1024);
                agent_config *d = NULL;
                CHECK(agent_config_parse(bad[i].text, "n.conf", &d, &err) == -EINVAL && !d);
                if (!err.data || !strstr(err.data, bad[i].want)) {
                        fprintf(stderr, "case %zu: error \"%s\" does not contain \"%s\"\n", i, strempty(err.data), bad[i].want);
                        CHECK(0);
                }
        }
}

/* [control-plane]: required keys, defaults, the certificates and kubeconfigs it names. */
#define CP_BASE "[agent]\nrole = control-plane\n[vault]\naddress = http://v:8200\n" \
        "[certificate apiserver]\nrole = s\ncert_file = /p/a.crt\nkey_file = /p/a.key\nca_file = /p/ca.crt\n" \
        "[certificate apiserver-etcd-client]\nrole = m\ncert_file = /p/e.crt\nkey_file = /p/e.key\nca_file = /p/ca.crt\n" \
        "[certificate admin]\nrole = m\ncert_file = /p/ad.crt\nkey_file = /p/ad.key\nca_file = /p/ca.crt\n" \
        "[certificate sched]\nrole = c\ncert_file = /p/s.crt\nkey_file = /p/s.key\nca_file = /p/ca.crt\n" \
        "[kubeconfig scheduler]\nfile = /k/s.conf\ncertificate = sched\nserver = https://${local_ipv4}:6443\n"
#define CP_KEYS "[control-plane]\nendpoint = https://${local_ipv4}:6443\netcd_pool = etcd\n" \
        "service_account_secret = k/sa\nencryption_secret = k/enc\nbootstrap_token_secret = k/tok\n"

static void test_control_plane(void) {
        _cleanup_(agent_config_freep) agent_config *c = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK_OK(agent_config_parse(CP_BASE CP_KEYS, "cp.conf", &c, &err));
        CHECK_STREQ(c->cp_endpoint, "https://${local_ipv4}:6443");
        CHECK_STREQ(c->cp_apiserver_cert, "apiserver");
        CHECK_STREQ(c->cp_etcd_cert, "apiserver-etcd-client");
        CHECK_STREQ(c->cp_admin_cert, "admin");
        CHECK(!c->cp_kubelet_cert && !c->cp_front_proxy_cert && !c->cp_controller_manager_kubeconfig);
        CHECK_STREQ(c->cp_scheduler_kubeconfig, "scheduler"); /* present under its default name */
        CHECK(c->cp_etcd_port == 2379 && c->cp_secure_port == 6443);
        CHECK_STREQ(c->cp_service_cidr, "10.96.0.0/12");
        CHECK_STREQ(c->cp_encryption_provider, "secretbox");
        CHECK_STREQ(c->cp_env_file, "/etc/default/kubernetes-bootagent");
        CHECK_STREQ(c->units[0], "kube-apiserver.service");
        CHECK_STREQ(c->units[2], "kube-scheduler.service");
        /* without [control-plane]: only the generic stages, no units of its own */
        agent_config *g = NULL;
        CHECK_OK(agent_config_parse(CP_BASE, "cp.conf", &g, &err));
        CHECK(!g->cp_configured && !g->units);
        agent_config_free(g);

        static const char *const bad[][2] = {
                { CP_BASE "[control-plane]\n", "role control-plane needs 'endpoint' in [control-plane]" },
                { CP_BASE CP_KEYS "kubelet_certificate = nope\n", "no [certificate nope] (kubelet_certificate)" },
                { CP_BASE CP_KEYS "controller_manager_kubeconfig = cm\n", "no [kubeconfig cm] (controller_manager_kubeconfig)" },
                { CP_BASE CP_KEYS "admin_certificate = root\n", "no [certificate root] (admin_certificate)" },
                { CP_BASE CP_KEYS "service_cidr = 10.96.0.1/12\n", "invalid value for 'service_cidr'" },
                { CP_BASE CP_KEYS "service_cidr = 10.96.0.0\n", "invalid value for 'service_cidr'" },
                { CP_BASE CP_KEYS "encryption_provider = kms\n", "invalid value for 'encryption_provider'" },
                { CP_BASE CP_KEYS "endpoint2 = x\n", "unknown key 'endpoint2' in [control-plane]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                agent_config *d = NULL;
                buf_clear(&err);
                CHECK(agent_config_parse(bad[i][0], "cp.conf", &d, &err) == -EINVAL && !d);
                if (!strstr(err.data, bad[i][1])) {
                        fprintf(stderr, "error \"%s\" does not contain \"%s\"\n", err.data, bad[i][1]);
                        CHECK(0);
                }
        }
}

/* Replace the first occurrence of from in valid with to, parse, expect an error naming where. */
static void expect_error(const char *from, const char *to, const char *want) {
        char text[4096];
        const char *p = strstr(valid, from);
        CHECK(p);
        snprintf(text, sizeof(text), "%.*s%s%s", (int) (p - valid), valid, to, p + strlen(from));
        _cleanup_(agent_config_freep) agent_config *c = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK(agent_config_parse(text, "agent.conf", &c, &err) == -EINVAL);
        CHECK(c == NULL);
        if (!err.data || !strstr(err.data, want)) {
                fprintf(stderr, "error \"%s\" does not contain \"%s\"\n", err.data ? err.data : "", want);
                CHECK(0);
        }
}

static void test_errors(void) {
        expect_error("role = etcd\n", "role = database\n", "agent.conf:3: invalid value for 'role'");
        expect_error("renew_fraction = 0.5", "renew_fraction = 1.5", "agent.conf:4: invalid value");
        expect_error("deadline_ms = 2000", "deadline_ms = soon", "agent.conf:8: invalid value");
        expect_error("[metadata]", "[meta]", "agent.conf:6: unknown section [meta]");
        expect_error("mode = 0640", "mode = rw", "agent.conf:17: invalid value for 'mode'");
        expect_error("owner = 0:4", "owner = no-such-user-here", "agent.conf:18: unknown user");
        expect_error("field = x\n", "", "agent.conf:19: [secret] needs path, field and file");
        expect_error("client_port = 12379", "client_port = 70000", "agent.conf:33: invalid value");
        expect_error("client_port = 12379", "client_port = 12380", "client_port and peer_port must differ");
        expect_error("url = http://127.0.0.1:1234", "url = ftp://x", "agent.conf:7: invalid value for 'url'");
        expect_error("url = http://127.0.0.1:1234", "url =", "agent.conf:7: empty value");
        expect_error("url = http://127.0.0.1:1234", "colour = blue", "agent.conf:7: unknown key 'colour' in [metadata]");
        expect_error("url = http://127.0.0.1:1234", "just words", "agent.conf:7: expected 'key = value'");
        expect_error("address = https://vault.internal:8200\n", "", "missing 'address' in [vault]");
        expect_error("role = etcd\n", "", "missing 'role' in [agent]");
        expect_error("exec_start = etcd --name ${ETCD_NAME}\n", "", "needs 'exec_start'");
        expect_error("cert_file = /etc/etcd/pki/etcd.crt", "cert_file = etcd.crt", "agent.conf:29: invalid value");
        expect_error("# comment\n", "role = etcd\n", "agent.conf:1: 'role' outside of a section");
        expect_error("[pki]", "[pki", "agent.conf:23: section header without closing ']'");
        expect_error("deadline_ms = 2000", "socket = m.sock", "agent.conf:8: invalid value for 'socket'");
}

/* The builder's check on its own host: names are left to the image, everything else is checked. */
static void test_check(void) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        char text[4096];
        const char *p = strstr(valid, "owner = 0:4");
        CHECK(p);
        snprintf(text, sizeof(text), "%.*sowner = no-such-user-here:no-such-group%s", (int) (p - valid), valid,
                 p + strlen("owner = 0:4"));
        CHECK_OK(agent_config_check(text, "agent.conf", &err));
        CHECK_OK(agent_config_check(valid, "agent.conf", &err));
        agent_config *c = NULL;
        CHECK(agent_config_parse(text, "agent.conf", &c, &err) == -EINVAL && !c); /* on this host: unknown */
        buf_free(&err);
        snprintf(text, sizeof(text), "%.*sowner = bad name%s", (int) (p - valid), valid, p + strlen("owner = 0:4"));
        CHECK(agent_config_check(text, "agent.conf", &err) == -EINVAL);
        CHECK(err.data && strstr(err.data, "agent.conf:18: invalid value for 'owner'"));
        buf_free(&err);
        snprintf(text, sizeof(text), "%.*sowner = etcd:%s", (int) (p - valid), valid, p + strlen("owner = 0:4"));
        CHECK(agent_config_check(text, "agent.conf", &err) == -EINVAL);
        buf_free(&err);
        CHECK(agent_config_check("[agent]\nrole = etcd\nbogus = 1\n", "x.conf", &err) == -EINVAL);
        CHECK(err.data && strstr(err.data, "x.conf:3: unknown key 'bogus' in [agent]"));
}

/* Named sections: certificates, kubeconfigs, environment files (a fixture of their own so the
 * line numbers above stay put). */
static const char *const named =
        "[agent]\n"                                              /* 1 */
        "role = control-plane\n"
        "[vault]\n"
        "address = http://127.0.0.1:8200\n"
        "[certificate apiserver]\n"                              /* 5 */
        "role = kube-apiserver\n"
        "common_name = kube-apiserver\n"
        "alt_names = kubernetes, ${instance_id}.cluster.local\n"
        "ip_sans = ${local_ipv4}, ${public_ipv4}, 10.96.0.1\n"
        "ttl = 24h\n"                                            /* 10 */
        "cert_file = /etc/kubernetes/pki/apiserver.crt\n"
        "key_file = /etc/kubernetes/pki/apiserver.key\n"
        "ca_file = /etc/kubernetes/pki/ca.crt\n"
        "restart = kube-apiserver.service\n"
        "[certificate admin]\n"                                  /* 15 */
        "mount = pki-kubernetes\n"
        "role = admin\n"
        "common_name = kubernetes-admin\n"
        "organization = system:masters\n"
        "local_key = no\n"                                       /* 20 */
        "mode = 0640\n"
        "owner = 0:5\n"
        "cert_file = /etc/kubernetes/pki/admin.crt\n"
        "key_file = /etc/kubernetes/pki/admin.key\n"
        "ca_file = /etc/kubernetes/pki/ca.crt\n"                 /* 25 */
        "reload = a.service b.service\n"
        "[kubeconfig admin]\n"
        "file = /etc/kubernetes/admin.conf\n"
        "certificate = admin\n"
        "server = https://${local_ipv4}:6443\n"                  /* 30 */
        "[environment kube]\n"
        "file = /etc/default/kube\n"
        "ADVERTISE_ADDRESS = ${local_ipv4}\n"
        "NODE_NAME = node-${instance_id}\n"
        "mode = 0600\n";                                        /* 35 */

static void test_named(void) {
        _cleanup_(agent_config_freep) agent_config *c = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK_OK(agent_config_parse(named, "agent.conf", &c, &err));
        CHECK(c->n_certs == 2 && c->n_kubeconfigs == 1 && c->n_envs == 1);
        const agent_config_cert *a = &c->certs[0], *b = agent_config_find_cert(c, "admin");
        CHECK_STREQ(a->name, "apiserver");
        CHECK_STREQ(a->mount, "pki"); /* default */
        CHECK_STREQ(a->role, "kube-apiserver");
        CHECK(strv_length(a->alt_names) == 2);
        CHECK_STREQ(a->alt_names[1], "${instance_id}.cluster.local"); /* expanded at run time */
        CHECK(strv_length(a->ip_sans) == 3);
        CHECK(a->local_key); /* default yes */
        CHECK(a->mode == 0600 && a->uid == (uid_t) -1);
        CHECK_STREQ(a->restart[0], "kube-apiserver.service");
        CHECK(!a->reload);
        CHECK(b == &c->certs[1]);
        CHECK_STREQ(b->mount, "pki-kubernetes");
        CHECK_STREQ(b->organization[0], "system:masters");
        CHECK(!b->local_key);
        CHECK(b->mode == 0640 && b->uid == 0 && b->gid == 5);
        CHECK(strv_length(b->reload) == 2);
        CHECK(!agent_config_find_cert(c, "nope"));
        const agent_config_kubeconfig *k = &c->kubeconfigs[0];
        CHECK_STREQ(k->name, "admin");
        CHECK_STREQ(k->certificate, "admin");
        CHECK_STREQ(k->server, "https://${local_ipv4}:6443");
        CHECK_STREQ(k->cluster, "kubernetes"); /* default */
        CHECK_STREQ(k->user, "admin");         /* default: the section's name */
        CHECK(k->mode == 0600);
        const agent_config_env *e = &c->envs[0];
        CHECK_STREQ(e->file, "/etc/default/kube");
        CHECK(strv_length(e->vars) == 2);
        CHECK_STREQ(e->vars[0], "ADVERTISE_ADDRESS=${local_ipv4}");
        CHECK_STREQ(e->vars[1], "NODE_NAME=node-${instance_id}");
        CHECK(e->mode == 0600);

        /* Without a name the common name is the instance id. */
        _cleanup_(agent_config_freep) agent_config *d = NULL;
        CHECK_OK(agent_config_parse("[agent]\nrole = node\n[vault]\naddress = http://v:8200\n[certificate k]\nrole = r\n"
                                    "cert_file = /c\nkey_file = /k\nca_file = /ca\n", "x.conf", &d, NULL));
        CHECK_STREQ(d->certs[0].common_name, "${instance_id}");
        CHECK(d->n_kubeconfigs == 0 && d->n_envs == 0);
}

static void expect_named_error(const char *from, const char *to, const char *want) {
        char text[4096];
        const char *p = strstr(named, from);
        CHECK(p);
        snprintf(text, sizeof(text), "%.*s%s%s", (int) (p - named), named, to, p + strlen(from));
        _cleanup_(agent_config_freep) agent_config *c = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK(agent_config_parse(text, "agent.conf", &c, &err) == -EINVAL);
        CHECK(c == NULL);
        if (!err.data || !strstr(err.data, want)) {
                fprintf(stderr, "error \"%s\" does not contain \"%s\"\n", err.data ? err.data : "", want);
                CHECK(0);
        }
        /* The builder's check says the same (it does not look users up). */
        if (strstr(want, "unknown user"))
                return;
        buf_free(&err);
        CHECK(agent_config_check(text, "agent.conf", &err) == -EINVAL);
        CHECK(err.data && strstr(err.data, want));
}

static void test_named_errors(void) {
        expect_named_error("[certificate admin]", "[certificate apiserver]",
                           "agent.conf:15: duplicate [certificate apiserver] (first at line 5)");
        expect_named_error("[certificate admin]", "[certificate]", "agent.conf:15: [certificate] needs a name");
        expect_named_error("[certificate admin]", "[certificate a/b]", "agent.conf:15: invalid name 'a/b'");
        expect_named_error("[vault]", "[vault x]", "agent.conf:3: [vault] takes no name");
        expect_named_error("[certificate admin]", "[cert admin]", "agent.conf:15: unknown section [cert admin]");
        expect_named_error("role = kube-apiserver\n", "", "agent.conf:5: [certificate apiserver] needs role, cert_file");
        expect_named_error("ca_file = /etc/kubernetes/pki/ca.crt\nrestart", "restart",
                           "agent.conf:5: [certificate apiserver] needs role, cert_file, key_file and ca_file");
        expect_named_error("ttl = 24h", "serial = 1", "agent.conf:10: unknown key 'serial' in [certificate]");
        expect_named_error("local_key = no", "local_key = perhaps", "agent.conf:20: invalid value for 'local_key'");
        expect_named_error("mode = 0640", "mode = 99999", "agent.conf:21: invalid value for 'mode'");
        expect_named_error("owner = 0:5", "owner = no-such-user-here", "agent.conf:22: unknown user");
        expect_named_error("ip_sans = ${local_ipv4}", "ip_sans = ${local_ip}", "agent.conf:9: invalid value for 'ip_sans'");
        expect_named_error("common_name = kube-apiserver", "common_name = ${instance_id",
                           "agent.conf:7: invalid value for 'common_name'");
        expect_named_error("certificate = admin", "certificate = nobody",
                           "agent.conf:29: [kubeconfig admin]: no [certificate nobody]");
        expect_named_error("server = https://${local_ipv4}:6443", "server = ${local_ipv4}:6443",
                           "agent.conf:30: invalid value for 'server'");
        expect_named_error("server = https://${local_ipv4}:6443\n", "", "agent.conf:27: [kubeconfig admin] needs file, certificate and server");
        expect_named_error("[environment kube]", "[environment kube]\n[environment kube]",
                           "agent.conf:32: duplicate [environment kube] (first at line 31)");
        expect_named_error("file = /etc/default/kube\n", "", "agent.conf:31: [environment kube] needs file");
        expect_named_error("NODE_NAME = node-${instance_id}", "ADVERTISE_ADDRESS = x",
                           "agent.conf:34: 'ADVERTISE_ADDRESS' is set twice");
        expect_named_error("NODE_NAME = node-${instance_id}", "NODE_NAME = ${HOME}", "agent.conf:34: invalid value for 'NODE_NAME'");
        expect_named_error("NODE_NAME = node-${instance_id}", "node_name = x", "agent.conf:34: unknown key 'node_name' in [environment]");
}

static void test_load_missing(void) {
        agent_config *c = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK(agent_config_load("/nonexistent/agent.conf", &c, &err) == -ENOENT);
        CHECK(err.data && strstr(err.data, "/nonexistent/agent.conf"));
}

int main(void) {
        test_sockets();
        test_valid();
        test_defaults();
        test_node();
        test_node_without_vault();
        test_control_plane();
        test_errors();
        test_check();
        test_named();
        test_named_errors();
        test_load_missing();
        _cleanup_free_ char *p = agent_config_path("/tmp/root", "/etc/x");
        CHECK_STREQ(p, "/tmp/root/etc/x");
        return 0;
}
