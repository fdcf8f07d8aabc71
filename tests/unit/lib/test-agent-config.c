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
        test_errors();
        test_check();
        test_load_missing();
        _cleanup_free_ char *p = agent_config_path("/tmp/root", "/etc/x");
        CHECK_STREQ(p, "/tmp/root/etc/x");
        return 0;
}
