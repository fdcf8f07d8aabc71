/* The API stand-in's pure parts: bootstrap-token authentication (A.3, A.4 of the reference:
 * valid, expired, unparsable expiry, wrong usage, wrong secret, bad extra group), certificate
 * users, the authorization policy and its 403 message, merge and strategic merge patches,
 * the Age column, kube-apiserver flag parsing and validation, the protobuf body decoder, and
 * the Status shape. */
#include <stdio.h>

#include "check.h"
#include "crypto.h"
#include "http-server.h"
#include "json.h"
#include "kube-api.h"
#include "kube-apiserver.h"
#include "kube-auth.h"
#include "kube-proto.h"
#include "strv.h"

static json_t *token_secret(const char *expiration, const char *usage, const char *groups) {
        json_t *data = json_object();
        const char *kv[][2] = { { "token-id", "07401b" }, { "token-secret", "f395accd246ae52d" },
                                { "expiration", expiration }, { "usage-bootstrap-authentication", usage },
                                { "auth-extra-groups", groups } };
        for (size_t i = 0; i < ELEMENTSOF(kv); i++) {
                if (!kv[i][1])
                        continue;
                char *b = base64_encode(kv[i][1], strlen(kv[i][1]));
                json_object_set_new(data, kv[i][0], json_string(b));
                free(b);
        }
        return json_pack("{s:s,s:{s:s,s:s},s:o}", "type", "bootstrap.kubernetes.io/token", "metadata",
                         "name", "bootstrap-token-07401b", "namespace", "kube-system", "data", data);
}

static void test_bootstrap_tokens(void) {
        const char *tok = "07401b.f395accd246ae52d";
        time_t now = 1700000000; /* 2023-11-14 */
        kube_user u = {};
        const char *why = NULL;
        char id[7];

        CHECK(kube_auth_bootstrap_token_id(tok, id) && streq(id, "07401b"));
        CHECK(!kube_auth_bootstrap_token_id("07401B.f395accd246ae52d", id));
        CHECK(!kube_auth_bootstrap_token_id("07401b.f395accd246ae52", id));
        CHECK(!kube_auth_bootstrap_token_id("07401bf395accd246ae52d0", id));

        json_t *s = token_secret("2030-01-01T00:00:00Z", "true", "system:bootstrappers:worker, system:bootstrappers:a");
        CHECK_OK(kube_auth_bootstrap_token(tok, s, now, &u, &why));
        CHECK_STREQ(u.name, "system:bootstrap:07401b");
        _cleanup_free_ char *g = strv_join(u.groups, ",");
        CHECK_STREQ(g, "system:authenticated,system:bootstrappers,system:bootstrappers:a,system:bootstrappers:worker");
        kube_user_done(&u);
        /* the wrong secret, the right secret for another id */
        CHECK(kube_auth_bootstrap_token("07401b.f395accd246ae52e", s, now, &u, &why) == -EACCES);
        CHECK_STREQ(why, "wrong token secret");
        CHECK(kube_auth_bootstrap_token(tok, NULL, now, &u, &why) == -EACCES);
        json_decref(s);

        struct { const char *exp, *usage, *groups, *why; } bad[] = {
                { "2020-01-01T00:00:00Z", "true", NULL, "expired" },
                { "2023-11-14T22:13:19Z", "true", NULL, "expired" },        /* one second ago */
                { "tomorrow", "true", NULL, "unparsable expiration (treated as expired)" },
                { NULL, "false", NULL, "usage-bootstrap-authentication is not \"true\"" },
                { NULL, NULL, NULL, "usage-bootstrap-authentication is not \"true\"" },
                { NULL, "TRUE", NULL, "usage-bootstrap-authentication is not \"true\"" },
                { NULL, "true", "system:masters", "invalid auth-extra-groups" },
                { NULL, "true", "system:bootstrappers:ok,system:bootstrappers:Bad", "invalid auth-extra-groups" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                s = token_secret(bad[i].exp, bad[i].usage, bad[i].groups);
                CHECK(kube_auth_bootstrap_token(tok, s, now, &u, &why) == -EACCES);
                CHECK_STREQ(why, bad[i].why);
                json_decref(s);
        }
        /* expiry in another zone, still in the future; no expiry at all */
        s = token_secret("2023-11-14T23:13:21+01:00", "true", NULL);
        CHECK_OK(kube_auth_bootstrap_token(tok, s, now, &u, &why));
        kube_user_done(&u);
        json_decref(s);
        s = token_secret(NULL, "true", NULL);
        CHECK_OK(kube_auth_bootstrap_token(tok, s, now, &u, &why));
        kube_user_done(&u);
        /* wrong type */
        json_object_set_new(s, "type", json_string("Opaque"));
        CHECK(kube_auth_bootstrap_token(tok, s, now, &u, &why) == -EACCES);
        json_decref(s);
}

static void test_authz(void) {
        char *mode[] = { (char *) "Node", (char *) "RBAC", NULL };
        char *orgs_admin[] = { (char *) "system:masters", NULL };
        char *orgs_node[] = { (char *) "system:nodes", NULL };
        kube_user admin = {}, node = {}, anon = {}, nobody = {};
        CHECK_OK(kube_auth_from_cert("kubernetes-admin", orgs_admin, &admin));
        CHECK_OK(kube_auth_from_cert("system:node:n1", orgs_node, &node));
        CHECK_OK(kube_auth_from_cert("someone", NULL, &nobody));
        CHECK(kube_auth_from_cert("", NULL, &(kube_user){}) == -EACCES);
        CHECK_OK(kube_auth_anonymous(&anon));

        kube_attrs list_nodes = { .verb = "list", .api_group = "", .resource = "nodes" };
        kube_attrs patch_n1_status = { .verb = "patch", .api_group = "", .resource = "nodes", .subresource = "status", .name = "n1" };
        kube_attrs patch_n2 = { .verb = "patch", .api_group = "", .resource = "nodes", .name = "n2" };
        kube_attrs readyz = { .verb = "get", .path = "/readyz" };
        kube_attrs api = { .verb = "get", .path = "/api/v1" };
        kube_attrs secrets = { .verb = "get", .api_group = "", .resource = "secrets", .namespace = "kube-system", .name = "x" };

        CHECK(kube_authz_allowed(&admin, &secrets, mode));
        CHECK(kube_authz_allowed(&admin, &secrets, (char *[]){ (char *) "AlwaysDeny", NULL }));
        CHECK(kube_authz_allowed(&node, &list_nodes, mode));
        CHECK(kube_authz_allowed(&node, &patch_n1_status, mode));
        CHECK(!kube_authz_allowed(&node, &patch_n2, mode));
        CHECK(!kube_authz_allowed(&node, &secrets, mode));
        CHECK(kube_authz_allowed(&anon, &readyz, mode));
        kube_attrs cluster_info = { .verb = "get", .api_group = "", .resource = "configmaps", .namespace = "kube-public", .name = "cluster-info" };
        kube_attrs other_cm = { .verb = "get", .api_group = "", .resource = "configmaps", .namespace = "kube-public", .name = "other" };
        kube_attrs list_cm = { .verb = "list", .api_group = "", .resource = "configmaps", .namespace = "kube-public" };
        kube_attrs system_cm = { .verb = "get", .api_group = "", .resource = "configmaps", .namespace = "kube-system", .name = "cluster-info" };
        CHECK(kube_authz_allowed(&anon, &cluster_info, mode));
        CHECK(!kube_authz_allowed(&anon, &other_cm, mode));
        CHECK(!kube_authz_allowed(&anon, &list_cm, mode));
        CHECK(!kube_authz_allowed(&anon, &system_cm, mode));
        CHECK(!kube_authz_allowed(&anon, &cluster_info, (char *[]){ (char *) "AlwaysDeny", NULL }));
        CHECK(!kube_authz_allowed(&anon, &api, mode));
        CHECK(kube_authz_allowed(&nobody, &api, mode));
        CHECK(!kube_authz_allowed(&nobody, &list_nodes, mode));
        CHECK(kube_authz_allowed(&nobody, &list_nodes, (char *[]){ (char *) "AlwaysAllow", NULL }));

        _cleanup_free_ char *m = kube_authz_forbidden_message(&nobody, &list_nodes);
        CHECK_STREQ(m, "nodes is forbidden: User \"someone\" cannot list resource \"nodes\" in API group \"\" at the cluster scope");
        _cleanup_free_ char *m2 = kube_authz_forbidden_message(&nobody, &secrets);
        CHECK_STREQ(m2, "secrets \"x\" is forbidden: User \"someone\" cannot get resource \"secrets\" in API group \"\" in the namespace \"kube-system\"");
        _cleanup_free_ char *m3 = kube_authz_forbidden_message(&anon, &api);
        CHECK_STREQ(m3, "forbidden: User \"system:anonymous\" cannot get path \"/api/v1\"");
        kube_user_done(&admin);
        kube_user_done(&node);
        kube_user_done(&anon);
        kube_user_done(&nobody);
}

static void check_patch(const char *target, const char *patch, bool strategic, const char *want) {
        json_t *t = NULL, *p = NULL;
        CHECK_OK(json_parse(target, strlen(target), &t, NULL));
        CHECK_OK(json_parse(patch, strlen(patch), &p, NULL));
        CHECK_OK(kube_api_patch(t, p, strategic));
        _cleanup_free_ char *got = json_dump_compact(t);
        CHECK_STREQ(got, want);
        json_decref(t);
        json_decref(p);
}

static void test_patch(void) {
        check_patch("{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"l\":[1,2]}", "{\"b\":{\"c\":null,\"e\":4},\"l\":[3]}", false,
                    "{\"a\":1,\"b\":{\"d\":3,\"e\":4},\"l\":[3]}");
        /* cordon / uncordon */
        check_patch("{\"spec\":{}}", "{\"spec\":{\"unschedulable\":true}}", true, "{\"spec\":{\"unschedulable\":true}}");
        check_patch("{\"spec\":{\"unschedulable\":true}}", "{\"spec\":{\"unschedulable\":null}}", true, "{\"spec\":{}}");
        /* conditions merge by type; order hints dropped */
        check_patch("{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},{\"type\":\"DiskPressure\",\"status\":\"False\"}]}}",
                    "{\"status\":{\"$setElementOrder/conditions\":[{\"type\":\"Ready\"}],\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":\"PIDPressure\",\"status\":\"False\"}]}}",
                    true,
                    "{\"status\":{\"conditions\":[{\"status\":\"True\",\"type\":\"Ready\"},{\"status\":\"False\",\"type\":\"DiskPressure\"},{\"status\":\"False\",\"type\":\"PIDPressure\"}]}}");
        check_patch("{\"status\":{\"conditions\":[{\"type\":\"Ready\"}]}}",
                    "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"$patch\":\"delete\"}]}}", true,
                    "{\"status\":{\"conditions\":[]}}");
        check_patch("{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}}",
                    "{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"c\":\"3\"}}}", true,
                    "{\"metadata\":{\"labels\":{\"c\":\"3\"}}}");
        json_t *t = json_object(), *p = json_array();
        CHECK(kube_api_patch(t, p, false) == -EINVAL);
        json_decref(t);
        json_decref(p);
}

static void test_age(void) {
        struct { long long s; const char *want; } v[] = {
                { -5, "<invalid>" }, { 0, "0s" }, { 119, "119s" }, { 120, "2m" }, { 150, "2m30s" },
                { 600, "10m" }, { 3 * 3600 + 60, "3h1m" }, { 9 * 3600, "9h" }, { 49 * 3600, "2d1h" },
                { 10 * 86400, "10d" }, { 3 * 365 * 86400LL + 86400, "3y1d" }, { 9 * 365 * 86400LL, "9y" },
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                char out[32];
                kube_api_human_duration(v[i].s, out);
                CHECK_STREQ(out, v[i].want);
        }
}

static int parse(const char *const *args, kube_apiserver_flags *f, buf *err) {
        char *argv[64];
        int argc = 0;
        argv[argc++] = (char *) "kube-apiserver";
        for (; *args; args++)
                argv[argc++] = (char *) *args;
        buf_clear(err);
        return kube_apiserver_parse_flags(argc, argv, f, err);
}

static void test_flags(void) {
        _cleanup_buf_ buf err = BUF_INIT(8192);
        kube_apiserver_flags f = {};

        CHECK_OK(parse((const char *[]){ "--etcd-servers=http://a:2379,http://b:2379", "--secure-port", "7443",
                                         "--enable-bootstrap-token-auth", "--anonymous-auth=false",
                                         "--authorization-mode=Node,RBAC", "--service_cluster_ip_range=10.0.0.0/16",
                                         "--service-cluster-ip-range=10.96.0.0/12", "--etcd-servers", "http://c:2379",
                                         "--allow-privileged", "-v=2", NULL },
                       &f, &err));
        CHECK(strv_length(f.etcd_servers) == 3);
        CHECK(f.secure_port == 7443 && f.enable_bootstrap_token_auth && !f.anonymous_auth);
        CHECK(strv_length(f.service_cluster_ip_ranges) == 1);
        CHECK_STREQ(f.service_cluster_ip_ranges[0], "10.96.0.0/12");
        CHECK_STREQ(f.bind_address, "0.0.0.0");
        CHECK_STREQ(f.ignored[0], "--allow-privileged");
        CHECK(!f.ignored[1]);
        /* no TLS files, no service-account flags */
        buf_clear(&err);
        CHECK(kube_apiserver_validate(&f, &err) == -EINVAL);
        CHECK(strstr(err.data, "--tls-cert-file and --tls-private-key-file are required"));
        CHECK(strstr(err.data, "service-account-issuer is a required flag"));
        kube_apiserver_flags_done(&f);

        CHECK_OK(parse((const char *[]){ NULL }, &f, &err));
        CHECK_STREQ(f.authorization_mode[0], "AlwaysAllow");
        buf_clear(&err);
        CHECK(kube_apiserver_validate(&f, &err) == -EINVAL);
        CHECK(strstr(err.data, "--etcd-servers must be specified"));
        kube_apiserver_flags_done(&f);

        CHECK(parse((const char *[]){ "--nope=1", NULL }, &f, &err) == -EINVAL);
        CHECK_STREQ(err.data, "unknown flag: --nope");
        CHECK(parse((const char *[]){ "--secure-port=x", NULL }, &f, &err) == -EINVAL);
        CHECK(strstr(err.data, "invalid argument \"x\" for \"--secure-port\" flag"));
        CHECK(parse((const char *[]){ "--anonymous-auth=yes", NULL }, &f, &err) == -EINVAL);
        CHECK(parse((const char *[]){ "--etcd-servers", NULL }, &f, &err) == -EINVAL);
        CHECK_STREQ(err.data, "flag needs an argument: --etcd-servers");
        CHECK(parse((const char *[]){ "serve", NULL }, &f, &err) == -EINVAL);
        CHECK(parse((const char *[]){ "-x", NULL }, &f, &err) == -EINVAL);

        CHECK_OK(parse((const char *[]){ "--etcd-servers=ftp://x", "--secure-port=0", "--bind-address=::1x",
                                         "--service-cluster-ip-range=10.0.0.0/8", "--authorization-mode=Node,Node,ABAC",
                                         NULL },
                       &f, &err));
        buf_clear(&err);
        CHECK(kube_apiserver_validate(&f, &err) == -EINVAL);
        CHECK(strstr(err.data, "\"ftp://x\" is not an http:// or https:// URL"));
        CHECK(strstr(err.data, "--secure-port 0 must be between 1 and 65535"));
        CHECK(strstr(err.data, "failed to parse IP: \"::1x\""));
        CHECK(strstr(err.data, "the mask must be >= 12"));
        CHECK(strstr(err.data, "authorization-mode Node has mode specified more than once"));
        CHECK(strstr(err.data, "authorization-mode \"ABAC\" is not supported by this stand-in"));
        kube_apiserver_flags_done(&f);
}

static void test_proto(void) {
        /* k8s\0 + Unknown{typeMeta{v1, ConfigMap}, raw{metadata{name "cfg", generateName ""},
         * data{"a": "1"}}} */
        static const uint8_t raw[] = {
                0x0a, 0x07, 0x0a, 0x03, 'c', 'f', 'g', 0x12, 0x00,
                0x12, 0x06, 0x0a, 0x01, 'a', 0x12, 0x01, '1',
        };
        uint8_t msg[128] = { 'k', '8', 's', 0 };
        size_t n = 4;
        static const char tm[] = { 0x0a, 0x02, 'v', '1', 0x12, 0x09, 'C', 'o', 'n', 'f', 'i', 'g', 'M', 'a', 'p' };
        msg[n++] = 0x0a;
        msg[n++] = sizeof(tm);
        memcpy(msg + n, tm, sizeof(tm));
        n += sizeof(tm);
        msg[n++] = 0x12;
        msg[n++] = sizeof(raw);
        memcpy(msg + n, raw, sizeof(raw));
        n += sizeof(raw);
        json_t *j = NULL;
        CHECK_OK(kube_proto_decode(msg, n, &j));
        _cleanup_free_ char *s = json_dump_compact(j);
        CHECK_STREQ(s, "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"1\"},\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cfg\"}}");
        json_decref(j);
        /* every truncation is refused, none crashes */
        for (size_t cut = 0; cut < n; cut++) {
                j = NULL;
                int r = kube_proto_decode(msg, cut, &j);
                CHECK(r < 0 || j);
                json_decref(j);
        }
        /* another kind: not ours */
        msg[4 + 2 + 6] = 'X';
        CHECK(kube_proto_decode(msg, n, &j) == -EOPNOTSUPP);
}

/* A tiny protobuf writer for the CSR and Eviction bodies kubectl 1.32+ sends. */
static void pb_varint(buf *b, uint64_t v) {
        do {
                uint8_t c = (uint8_t) (v & 0x7f);
                v >>= 7;
                if (v)
                        c |= 0x80;
                CHECK_OK(buf_append(b, &c, 1));
        } while (v);
}

static void pb_field_bytes(buf *b, uint32_t field, const void *data, size_t len) {
        pb_varint(b, (uint64_t) field << 3 | 2);
        pb_varint(b, len);
        CHECK_OK(buf_append(b, data, len));
}

static void pb_field_str(buf *b, uint32_t field, const char *s) { pb_field_bytes(b, field, s, strlen(s)); }

static void pb_field_buf(buf *b, uint32_t field, buf *inner) { pb_field_bytes(b, field, inner->data, inner->len); }

static json_t *pb_decode_unknown(const char *api_version, const char *kind, buf *raw) {
        _cleanup_buf_ buf tm = BUF_INIT(0), msg = BUF_INIT(0);
        json_t *j = NULL;
        pb_field_str(&tm, 1, api_version);
        pb_field_str(&tm, 2, kind);
        CHECK_OK(buf_append(&msg, "k8s", 4));
        pb_field_buf(&msg, 1, &tm);
        pb_field_buf(&msg, 2, raw);
        CHECK_OK(kube_proto_decode(msg.data, msg.len, &j));
        for (size_t cut = 4; cut < msg.len; cut++) {
                json_t *t = NULL;
                int r = kube_proto_decode(msg.data, cut, &t);
                CHECK(r < 0 || t);
                json_decref(t);
        }
        return j;
}

static void test_proto_csr_eviction(void) {
        _cleanup_buf_ buf md = BUF_INIT(0), spec = BUF_INIT(0), cond = BUF_INIT(0), when = BUF_INIT(0),
                          status = BUF_INIT(0), raw = BUF_INIT(0);
        /* `kubectl certificate deny` PUTs the object read, with a condition appended */
        pb_field_str(&md, 1, "c1");
        pb_field_str(&spec, 1, "PEM");
        pb_field_str(&spec, 2, "system:bootstrap:abcdef");
        pb_field_str(&spec, 4, "system:bootstrappers");
        pb_field_str(&spec, 5, "digital signature");
        pb_field_str(&spec, 5, "client auth");
        pb_field_str(&spec, 7, "kubernetes.io/kube-apiserver-client-kubelet");
        pb_varint(&spec, 8 << 3 | 0);
        pb_varint(&spec, 3600);
        pb_varint(&when, 1 << 3 | 0);
        pb_varint(&when, 1700000000);
        pb_field_str(&cond, 1, "Denied");
        pb_field_str(&cond, 2, "KubectlDeny");
        pb_field_str(&cond, 3, "This CSR was denied by kubectl certificate deny.");
        pb_field_buf(&cond, 4, &when);
        pb_field_str(&cond, 6, "True");
        pb_field_buf(&status, 1, &cond);
        pb_field_buf(&raw, 1, &md);
        pb_field_buf(&raw, 2, &spec);
        pb_field_buf(&raw, 3, &status);
        json_t *j = pb_decode_unknown("certificates.k8s.io/v1", "CertificateSigningRequest", &raw);
        _cleanup_free_ char *s = json_dump_compact(j);
        CHECK_STREQ(s, "{\"apiVersion\":\"certificates.k8s.io/v1\",\"kind\":\"CertificateSigningRequest\","
                       "\"metadata\":{\"name\":\"c1\"},\"spec\":{\"expirationSeconds\":3600,"
                       "\"groups\":[\"system:bootstrappers\"],\"request\":\"UEVN\","
                       "\"signerName\":\"kubernetes.io/kube-apiserver-client-kubelet\","
                       "\"usages\":[\"digital signature\",\"client auth\"],\"username\":\"system:bootstrap:abcdef\"},"
                       "\"status\":{\"conditions\":[{\"lastUpdateTime\":\"2023-11-14T22:13:20Z\","
                       "\"message\":\"This CSR was denied by kubectl certificate deny.\",\"reason\":\"KubectlDeny\","
                       "\"status\":\"True\",\"type\":\"Denied\"}]}}");
        json_decref(j);

        /* drain's eviction, server-side dry run */
        _cleanup_buf_ buf emd = BUF_INIT(0), opts = BUF_INIT(0), eraw = BUF_INIT(0);
        pb_field_str(&emd, 1, "web-1");
        pb_field_str(&emd, 3, "default");
        pb_field_str(&opts, 5, "All");
        pb_field_buf(&eraw, 1, &emd);
        pb_field_buf(&eraw, 2, &opts);
        j = pb_decode_unknown("policy/v1", "Eviction", &eraw);
        _cleanup_free_ char *e = json_dump_compact(j);
        CHECK_STREQ(e, "{\"apiVersion\":\"policy/v1\",\"deleteOptions\":{\"dryRun\":[\"All\"]},\"kind\":\"Eviction\","
                       "\"metadata\":{\"name\":\"web-1\",\"namespace\":\"default\"}}");
        json_decref(j);
}

static void test_status(void) {
        http_server_response resp = { .body = BUF_INIT(0) };
        json_t *j = NULL;
        CHECK_OK(kube_api_status(&resp, 401, "Unauthorized", "Unauthorized"));
        CHECK(resp.status == 401);
        CHECK_OK(json_parse(resp.body.data, resp.body.len, &j, NULL));
        _cleanup_free_ char *s = json_dump_compact(j);
        CHECK_STREQ(s, "{\"apiVersion\":\"v1\",\"code\":401,\"kind\":\"Status\",\"message\":\"Unauthorized\",\"metadata\":{},\"reason\":\"Unauthorized\",\"status\":\"Failure\"}");
        json_decref(j);
        buf_free(&resp.body);
}

int main(void) {
        test_bootstrap_tokens();
        test_authz();
        test_patch();
        test_age();
        test_flags();
        test_proto();
        test_proto_csr_eviction();
        test_status();
        return 0;
}
