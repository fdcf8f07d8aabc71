/* cloud.json parsing: a valid file and its lookups, then one broken file per error, each
 * reported with its JSON path. */
#include "check.h"
#include "cloudstate.h"

#define INSTANCE(id, mp, vp, ip)                                                              \
        "{\"id\":\"" id "\",\"name\":\"n\",\"state\":\"running\",\"pool\":\"p1\","            \
        "\"private_ip\":\"" ip "\",\"public_ip\":\"127.0.0.1\",\"security_groups\":[\"etcd\"]," \
        "\"labels\":{\"role\":\"etcd\"},\"metadata_port\":" #mp ",\"vault_port\":" #vp "}"

#define HEAD "{\"zone\":\"local\",\"api_port\":18080,\"api_key\":\"EXOk\",\"api_secret\":\"s\","
#define POOLS "\"pools\":[{\"id\":\"p1\",\"name\":\"etcd\",\"size\":3,\"template\":\"etcd@1\",\"private_network\":\"pn1\"}]"
#define VAULT                                                                                     \
        ",\"vault\":{\"roles\":{\"etcd\":{\"pool\":\"etcd\",\"security_group\":\"etcd\","         \
        "\"policies\":[\"etcd\"],\"ttl\":3600}},\"policies\":{\"etcd\":{\"secret/data/etcd/*\":[\"read\"]}}," \
        "\"pki_roles\":{\"peer\":{\"allowed_domains\":[\"etcd.local\"],\"allow_subdomains\":true,\"max_ttl\":86400}}," \
        "\"kv\":{\"a/b\":{\"k\":\"v\"}}}"

static void test_valid(void) {
        static const char text[] = HEAD "\"instances\":[" INSTANCE("i1", 18111, 18211, "10.0.0.1") ","
                INSTANCE("i2", 18112, 18212, "fd00::2") "]," POOLS VAULT "}";
        _cleanup_(cloud_state_freep) cloud_state *s = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);

        CHECK_OK(cloud_state_parse(text, strlen(text), &s, &err));
        CHECK_STREQ(s->zone, "local");
        CHECK(s->api_port == 18080);
        CHECK(s->n_instances == 2 && s->n_pools == 1 && s->n_roles == 1 && s->n_pki_roles == 1);
        const cloud_instance *i2 = cloud_find_instance(s, "i2");
        CHECK(i2 && i2->metadata_port == 18112 && i2->vault_port == 18212);
        CHECK_STREQ(i2->private_ip, "fd00::2");
        CHECK(cloud_instance_has_security_group(i2, "etcd"));
        CHECK(!cloud_instance_has_security_group(i2, "web"));
        CHECK(i2->created_at && strlen(i2->created_at) == 20);
        CHECK(!cloud_find_instance(s, "i3"));
        CHECK_STREQ(cloud_find_pool(s, "p1")->name, "etcd");
        CHECK_STREQ(cloud_find_pool_by_name(s, "etcd")->id, "p1");
        CHECK_STREQ(cloud_find_pool_by_network(s, "pn1")->id, "p1");
        const cloud_vault_role *role = cloud_find_role(s, "etcd");
        CHECK(role && role->ttl == 3600);
        CHECK(role->max_ttl == CLOUD_VAULT_SYSTEM_MAX_TTL); /* Vault's 768h when the role sets none */
        CHECK_STREQ(role->pool, "etcd");
        const cloud_pki_role *pki = cloud_find_pki_role(s, "peer");
        CHECK(pki && pki->max_ttl == 86400 && pki->allow_subdomains && pki->allow_ip_sans && !pki->allow_any_name);
        CHECK(json_object_get(s->kv_seeds, "a/b"));

        /* minimal: no vault section, a null pool */
        static const char minimal[] = HEAD "\"instances\":[{\"id\":\"x\",\"name\":\"n\",\"state\":\"stopped\","
                "\"pool\":null,\"private_ip\":\"10.0.0.1\",\"public_ip\":\"10.0.0.1\",\"metadata_port\":1,"
                "\"vault_port\":2}],\"pools\":[]}";
        cloud_state_free(TAKE_PTR(s));
        CHECK_OK(cloud_state_parse(minimal, strlen(minimal), &s, &err));
        CHECK(!s->instances[0].pool && s->n_roles == 0 && !s->policies);
}

/* An instance's service on a UNIX socket instead of a port: a file name, one or the other. */
#define SOCKET_INSTANCE(id, endpoints)                                                        \
        "{\"id\":\"" id "\",\"name\":\"n\",\"state\":\"running\",\"private_ip\":\"10.0.0.1\","  \
        "\"public_ip\":\"10.0.0.1\"," endpoints "}"

static void expect_error(const char *text, const char *message);

static void test_sockets(void) {
        static const char text[] = HEAD "\"instances\":["
                SOCKET_INSTANCE("i1", "\"metadata_socket\":\"m1-metadata.sock\",\"vault_socket\":\"m1-vault.sock\"") ","
                SOCKET_INSTANCE("i2", "\"metadata_socket\":\"m2-metadata.sock\",\"vault_port\":18212") ","
                INSTANCE("i3", 18113, 18213, "10.0.0.3") "]," POOLS "}";
        _cleanup_(cloud_state_freep) cloud_state *s = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);

        CHECK_OK(cloud_state_parse(text, strlen(text), &s, &err));
        const cloud_instance *i1 = cloud_find_instance(s, "i1"), *i2 = cloud_find_instance(s, "i2"),
                             *i3 = cloud_find_instance(s, "i3");
        CHECK(i1 && i1->metadata_port == 0 && i1->vault_port == 0);
        CHECK_STREQ(i1->metadata_socket, "m1-metadata.sock");
        CHECK_STREQ(i1->vault_socket, "m1-vault.sock");
        CHECK(i2 && i2->metadata_port == 0 && i2->vault_port == 18212 && !i2->vault_socket);
        CHECK(i3 && !i3->metadata_socket && !i3->vault_socket && i3->metadata_port == 18113);

        expect_error(HEAD "\"instances\":[" SOCKET_INSTANCE("i1", "\"metadata_socket\":\"a\",\"metadata_port\":1,"
                     "\"vault_port\":2") "],\"pools\":[]}",
                     "instances[0].metadata_port: not together with metadata_socket");
        expect_error(HEAD "\"instances\":[" SOCKET_INSTANCE("i1", "\"metadata_socket\":\"a\"") "],\"pools\":[]}",
                     "instances[0].vault_port: missing");
        static const char *const bad_names[] = { "\"\"", "\"../x\"", "\"a/b\"", "\".hidden\"", "\"a b\"", "1",
                                                 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"" };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                _cleanup_free_ char *t = NULL;
                CHECK(asprintf(&t, HEAD "\"instances\":[" SOCKET_INSTANCE("i1", "\"metadata_socket\":%s,\"vault_port\":2")
                               "],\"pools\":[]}", bad_names[i]) > 0);
                expect_error(t, "instances[0].metadata_socket: ");
        }
        expect_error(HEAD "\"instances\":[" SOCKET_INSTANCE("i1", "\"metadata_socket\":\"a\",\"vault_socket\":\"a\"")
                     "],\"pools\":[]}",
                     "instances[0].vault_socket: same socket as metadata_socket");
        expect_error(HEAD "\"instances\":[" SOCKET_INSTANCE("i1", "\"metadata_socket\":\"a\",\"vault_socket\":\"b\"") ","
                     SOCKET_INSTANCE("i2", "\"metadata_socket\":\"c\",\"vault_socket\":\"a\"") "],\"pools\":[]}",
                     "instances[1].vault_socket: \"a\" already used by instances[0]");
        expect_error(HEAD "\"instances\":[" SOCKET_INSTANCE("i1", "\"metadata_socket\":\"a\",\"vault_socket\":\"b\"") ","
                     SOCKET_INSTANCE("i2", "\"metadata_socket\":\"b\",\"vault_socket\":\"c\"") "],\"pools\":[]}",
                     "instances[1].metadata_socket: \"b\" already used by instances[0]");
}

static void expect_error(const char *text, const char *message) {
        _cleanup_(cloud_state_freep) cloud_state *s = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        CHECK(cloud_state_parse(text, strlen(text), &s, &err) == -EINVAL);
        CHECK(!s);
        if (!strstr(err.data, message)) {
                fprintf(stderr, "expected error containing \"%s\", got \"%s\"\n", message, err.data);
                exit(1);
        }
}

static void test_errors(void) {
        expect_error("{", "line 1");
        expect_error("[]", "must be an object");
        expect_error("{\"api_port\":1}", "zone: missing");
        expect_error(HEAD "\"instances\":{}," POOLS "}", "instances: must be an array");
        expect_error("{\"zone\":\"z\",\"api_port\":70000,\"api_key\":\"k\",\"api_secret\":\"s\"}",
                     "api_port: 70000 is out of range");
        expect_error(HEAD "\"instances\":[" INSTANCE("i1", 18111, 18211, "10.0.0.1") ","
                     INSTANCE("i1", 18112, 18212, "10.0.0.2") "]," POOLS "}",
                     "instances[1].id: duplicate id (also instances[0])");
        expect_error(HEAD "\"instances\":[" INSTANCE("i1", 18111, 18211, "10.0.0.1") ","
                     INSTANCE("i2", 18112, 18111, "10.0.0.2") "]," POOLS "}",
                     "instances[1].vault_port: port 18111 already used by instances[0]");
        expect_error(HEAD "\"instances\":[" INSTANCE("i1", 18080, 18211, "10.0.0.1") "]," POOLS "}",
                     "instances[0].metadata_port: same port as api_port");
        expect_error(HEAD "\"instances\":[" INSTANCE("i1", 18111, 18111, "10.0.0.1") "]," POOLS "}",
                     "instances[0].vault_port: same port as metadata_port");
        expect_error(HEAD "\"instances\":[" INSTANCE("i1", 18111, 18211, "10.0.0.999") "]," POOLS "}",
                     "instances[0].private_ip: not an IP address: \"10.0.0.999\"");
        expect_error(HEAD "\"instances\":[" INSTANCE("i1", 18111, 18211, "10.0.0.1") "],\"pools\":[]}",
                     "instances[0].pool: unknown pool \"p1\"");
        expect_error(HEAD "\"instances\":[{\"id\":\"i1\"}]," POOLS "}", "instances[0].name: missing");
        expect_error(HEAD "\"instances\":[],\"pools\":[{\"id\":\"p1\",\"name\":\"x\",\"size\":1,\"template\":\"t\"},"
                     "{\"id\":\"p1\",\"name\":\"y\",\"size\":1,\"template\":\"t\"}]}",
                     "pools[1].id: duplicate id");
        expect_error(HEAD "\"instances\":[],\"pools\":[{\"id\":\"p1\",\"name\":\"x\",\"size\":-1,\"template\":\"t\"}]}",
                     "pools[0].size");
        expect_error(HEAD "\"instances\":[]," POOLS ",\"vault\":{\"roles\":{\"r\":{\"policies\":[\"nope\"],\"ttl\":1}}}}",
                     "vault.roles.r.policies: unknown policy \"nope\"");
        expect_error(HEAD "\"instances\":[]," POOLS ",\"vault\":{\"policies\":{\"p\":{\"a/*\":[\"fly\"]}}}}",
                     "vault.policies.p.a/*: element 0 is not a capability");
        expect_error(HEAD "\"instances\":[]," POOLS ",\"vault\":{\"pki_roles\":{\"r\":{\"max_ttl\":0}}}}",
                     "vault.pki_roles.r.max_ttl");
        expect_error(HEAD "\"instances\":[]," POOLS ",\"vault\":{\"kv\":{\"a\":1}}}", "vault.kv.a: must be an object");
        expect_error(HEAD "\"instances\":[]," POOLS ",\"vault\":{\"roles\":{\"r\":{\"policies\":[],\"ttl\":1,"
                     "\"max_ttl\":9999999}}}}",
                     "vault.roles.r.max_ttl: 9999999 is out of range");
        expect_error(HEAD "\"instances\":[]," POOLS ",\"vault\":{\"pki_roles\":{\"r\":{\"max_ttl\":1,"
                     "\"allowed_uri_sans\":\"x\"}}}}",
                     "vault.pki_roles.r.allowed_uri_sans: must be an array");
}

/* max_ttl of a role, allowed_uri_sans of a PKI role, the patch capability. */
static void test_vault_options(void) {
        static const char text[] = HEAD "\"instances\":[]," POOLS ",\"vault\":{\"roles\":{\"r\":{"
                "\"policies\":[\"p\"],\"ttl\":60,\"max_ttl\":120}},\"policies\":{\"p\":{\"secret/data/x\":"
                "[\"patch\",\"delete\",\"list\"]}},\"pki_roles\":{\"q\":{\"max_ttl\":60,"
                "\"allowed_uri_sans\":[\"spiffe://*\"]}}}}";
        _cleanup_(cloud_state_freep) cloud_state *s = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);

        CHECK_OK(cloud_state_parse(text, strlen(text), &s, &err));
        CHECK(cloud_find_role(s, "r")->max_ttl == 120);
        CHECK(json_array_size(cloud_find_pki_role(s, "q")->allowed_uri_sans) == 1);
}

int main(void) {
        test_sockets();
        test_valid();
        test_vault_options();
        test_errors();
        return 0;
}
