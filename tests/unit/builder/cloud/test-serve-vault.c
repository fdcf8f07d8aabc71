/* The Vault-compatible service over real HTTP on loopback: login bound to the listener, token
 * renew/expiry/revoke, KV v2 with cas (including a two-writer race), PKI issue and sign checked
 * with OpenSSL, policy denials, and persistence across a restart. */
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "localpki.h"
#include "serve-test.h"
#include "strv.h"

static test_server T;

static void test_login(void) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1");

        CHECK(strneq(token, "hvs.", 4));
        /* someone else's instance id through i-1's listener */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":\"etcd\",\"instance\":\"i-2\"}", &j) == 403);
        CHECK_STREQ(json_path_string(j, "errors.0"), "permission denied");
        json_decref(TAKE_PTR(j));
        /* i-3 is in no pool: the role's validator fails */
        CHECK(vault_request("POST", T.ports.vault[2], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":\"etcd\",\"instance\":\"i-3\"}", &j) == 403);
        json_decref(TAKE_PTR(j));
        /* unknown instance */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":\"etcd\",\"instance\":\"nope\"}", NULL) == 403);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":\"web\",\"instance\":\"i-1\"}", &j) == 400);
        CHECK_STREQ(json_path_string(j, "errors.0"), "role \"web\" not found");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"instance\":\"i-1\"}", &j) == 400);
        CHECK_STREQ(json_path_string(j, "errors.0"), "missing field: role");
        json_decref(TAKE_PTR(j));
        /* strict input: bad JSON, wrong types, unknown fields */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL, "{\"role\":", &j) == 400);
        CHECK(strstr(json_path_string(j, "errors.0"), "failed to parse JSON input"));
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":1,\"instance\":\"i-1\"}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":\"etcd\",\"instance\":\"i-1\",\"x\":1}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL, "[]", NULL) == 400);
}

static void test_token_lifecycle(void) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1");

        CHECK(vault_request("GET", T.ports.vault[0], "/v1/auth/token/lookup-self", token, NULL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "data.id"), token);
        CHECK_STREQ(json_path_string(j, "data.meta.instance_id"), "i-1");
        CHECK_STREQ(json_path_string(j, "data.policies.1"), "etcd");
        json_decref(TAKE_PTR(j));

        /* the token only works through its own instance's listener */
        CHECK(vault_request("GET", T.ports.vault[1], "/v1/auth/token/lookup-self", token, NULL, NULL) == 403);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/auth/token/lookup-self", "hvs.bogus", NULL, NULL) == 403);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/auth/token/lookup-self", NULL, NULL, NULL) == 403);

        /* 50 minutes later: renew gives a full TTL again */
        test_clock_offset = 3000;
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/token/renew-self", token, "{\"increment\":\"1h\"}", &j) == 200);
        CHECK_STREQ(json_path_string(j, "auth.client_token"), token);
        int64_t lease;
        CHECK_OK(json_path_i64(j, "auth.lease_duration", &lease));
        CHECK(lease == 3600);
        json_decref(TAKE_PTR(j));
        /* 1 h after the first login it would have expired without the renewal */
        test_clock_offset = 4000;
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/auth/token/lookup-self", token, NULL, &j) == 200);
        int64_t ttl;
        CHECK_OK(json_path_i64(j, "data.ttl", &ttl));
        CHECK(ttl == 2600);
        json_decref(TAKE_PTR(j));
        /* past the renewed expiry */
        test_clock_offset = 6700;
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/auth/token/lookup-self", token, NULL, NULL) == 403);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/token/renew-self", token, NULL, NULL) == 403);
        test_clock_offset = 0;

        /* revoke */
        _cleanup_free_ char *t2 = vault_login_as(&T, 0, "i-1");
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/token/revoke-self", t2, NULL, NULL) == 204);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/auth/token/lookup-self", t2, NULL, NULL) == 403);
}

/* Renewal re-validates the instance: stopped in cloud.json -> denied. */
static void test_renew_revalidates(void) {
        _cleanup_free_ char *token = vault_login_as(&T, 1, "i-2");
        _cleanup_free_ char *json = test_cloud_json(&T.ports, false), *path = NULL;
        char *state = strstr(json, "\"id\":\"i-2\",\"name\":\"etcd-2\",\"state\":\"running\"");

        CHECK(state);
        memcpy(strstr(state, "running"), "stopped", 7);
        CHECK(asprintf(&path, "%s/cloud.json", T.dir) >= 0);
        CHECK_OK(write_file_atomic(path, json, strlen(json), 0644, (uid_t) -1, (gid_t) -1));
        /* the server polls cloud.json between requests */
        for (int i = 0; i < 50 && vault_request("POST", T.ports.vault[1], "/v1/auth/token/renew-self", token,
                                                NULL, NULL) == 200; i++)
                usleep(50 * 1000);
        CHECK(vault_request("POST", T.ports.vault[1], "/v1/auth/token/renew-self", token, NULL, NULL) == 403);
        test_server_write_cloud(&T, false);
}

static void test_kv(void) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1");
        int64_t v;

        /* seeded secret */
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/bootagent/cloud-api", token, NULL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "data.data.api_key"), "k");
        json_decref(TAKE_PTR(j));

        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/x", token, NULL, &j) == 404);
        CHECK(json_array_size(json_object_get(j, "errors")) == 0);
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/x", token,
                            "{\"data\":{\"a\":\"1\"},\"options\":{\"cas\":0}}", &j) == 200);
        CHECK_OK(json_path_i64(j, "data.version", &v));
        CHECK(v == 1);
        json_decref(TAKE_PTR(j));
        /* cas 0 again: exists */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/x", token,
                            "{\"data\":{\"a\":\"2\"},\"options\":{\"cas\":0}}", &j) == 400);
        CHECK_STREQ(json_path_string(j, "errors.0"), "check-and-set parameter did not match the current version");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/x", token,
                            "{\"data\":{\"a\":\"2\"},\"options\":{\"cas\":1}}", NULL) == 200);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/x", token, "{\"data\":{\"a\":\"3\"}}", NULL) == 200);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/x", token, NULL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "data.data.a"), "3");
        CHECK_OK(json_path_i64(j, "data.metadata.version", &v));
        CHECK(v == 3);
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/x?version=1", token, NULL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "data.data.a"), "1");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/x?version=9", token, NULL, NULL) == 404);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/x?version=-1", token, NULL, NULL) == 400);

        /* strict input */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/y", token, "{\"data\":\"x\"}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/%2E%2E/y", token, "{\"data\":{}}", NULL) == 400);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/x/", token, NULL, NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/y", token,
                            "{\"data\":{},\"options\":{\"cas\":-1}}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/y", token,
                            "{\"data\":{},\"options\":{\"cass\":0}}", NULL) == 400);

        /* policy: read-only path, path outside every policy, metadata without a grant */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/bootagent/cloud-api", token,
                            "{\"data\":{}}", &j) == 403);
        CHECK_STREQ(json_path_string(j, "errors.0"), "permission denied");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/other", token, NULL, NULL) == 403);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/metadata/etcd/x", token, NULL, NULL) == 403);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/other-role", token, "{}", NULL) == 403);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/x", NULL, NULL, NULL) == 403);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/nothing/here", token, NULL, NULL) == 404);
        CHECK(vault_request("DELETE", T.ports.vault[0], "/v1/secret/data/etcd/x", token, NULL, NULL) == 405);
}

typedef struct racer {
        uint16_t port;
        const char *token;
        const char *me;
        long status;
} racer;

static void *race(void *arg) {
        racer *r = arg;
        _cleanup_free_ char *body = NULL;
        CHECK(asprintf(&body, "{\"data\":{\"winner\":\"%s\"},\"options\":{\"cas\":0}}", r->me) >= 0);
        r->status = vault_request("POST", r->port, "/v1/secret/data/etcd/" TEST_POOL "/bootstrap", r->token, body, NULL);
        return NULL;
}

/* Two instances race for the bootstrap key with cas:0: exactly one wins, and it is recorded. */
static void test_kv_cas_race(void) {
        _cleanup_free_ char *t1 = vault_login_as(&T, 0, "i-1"), *t2 = vault_login_as(&T, 1, "i-2");
        _cleanup_json_ json_t *j = NULL;
        racer a = { T.ports.vault[0], t1, "i-1", 0 }, b = { T.ports.vault[1], t2, "i-2", 0 };
        pthread_t ta, tb;

        CHECK(pthread_create(&ta, NULL, race, &a) == 0);
        CHECK(pthread_create(&tb, NULL, race, &b) == 0);
        CHECK(pthread_join(ta, NULL) == 0);
        CHECK(pthread_join(tb, NULL) == 0);
        CHECK((a.status == 200 && b.status == 400) || (a.status == 400 && b.status == 200));
        CHECK(vault_request("GET", T.ports.vault[1], "/v1/secret/data/etcd/" TEST_POOL "/bootstrap", t2, NULL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "data.data.winner"), a.status == 200 ? "i-1" : "i-2");
}

static X509 *parse_cert(const char *pem) {
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        CHECK(x);
        return x;
}

static void check_cert_issued_by_ca(X509 *cert, const char *ca_pem) {
        X509 *ca = parse_cert(ca_pem);
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        CHECK(X509_STORE_add_cert(store, ca) == 1);
        CHECK(X509_STORE_CTX_init(ctx, store, cert, NULL) == 1);
        CHECK(X509_verify_cert(ctx) == 1);
        CHECK(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca)) == 0);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(ca);
}

static char *cert_cn(X509 *x) {
        char cn[256];
        CHECK(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0);
        return strdup(cn);
}

/* The certificate's SANs as "DNS:x" / "IP:y" strings. */
static char **cert_sans(X509 *x) {
        GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        char **l = NULL;
        char ip[64];
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                if (g->type == GEN_DNS)
                        CHECK_OK(strv_pushf(&l, "DNS:%s", ASN1_STRING_get0_data(g->d.dNSName)));
                else if (g->type == GEN_IPADD) {
                        CHECK(ASN1_STRING_length(g->d.iPAddress) == 4);
                        inet_ntop(AF_INET, ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof(ip));
                        CHECK_OK(strv_pushf(&l, "IP:%s", ip));
                }
        }
        GENERAL_NAMES_free(gens);
        return l;
}

static void test_pki_issue(void) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1"), *ca_pem = NULL, *cn = NULL;
        _cleanup_strv_free_ char **sans = NULL;
        int64_t expiration;

        CHECK(request_full("GET", T.ports.vault[0], "/v1/pki/ca/pem", NULL, NULL, NULL, &ca_pem) == 200);
        CHECK(strstr(ca_pem, "BEGIN CERTIFICATE"));

        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"etcd-1.etcd.local\",\"alt_names\":\"a.etcd.local\","
                            "\"ip_sans\":\"10.0.0.11,127.0.0.11\",\"ttl\":\"2h\"}", &j) == 200);
        X509 *cert = parse_cert(json_path_string(j, "data.certificate"));
        CHECK_STREQ(json_path_string(j, "data.issuing_ca"), ca_pem);
        CHECK_STREQ(json_path_string(j, "data.ca_chain.0"), ca_pem);
        CHECK_STREQ(json_path_string(j, "data.private_key_type"), "ec");
        CHECK(json_is_integer(json_path(j, "data.expiration")));
        CHECK_OK(json_path_i64(j, "data.expiration", &expiration));
        CHECK(expiration >= time(NULL) + 7200 - 5 && expiration <= time(NULL) + 7200 + 5);
        const char *serial = json_path_string(j, "data.serial_number");
        CHECK(serial && strlen(serial) == 47 && serial[2] == ':');

        check_cert_issued_by_ca(cert, ca_pem);
        cn = cert_cn(cert);
        CHECK_STREQ(cn, "etcd-1.etcd.local");
        sans = cert_sans(cert);
        CHECK(strv_contains(sans, "DNS:etcd-1.etcd.local"));
        CHECK(strv_contains(sans, "DNS:a.etcd.local"));
        CHECK(strv_contains(sans, "IP:10.0.0.11"));
        CHECK(strv_contains(sans, "IP:127.0.0.11"));

        /* the private key belongs to the certificate */
        BIO *b = BIO_new_mem_buf(json_path_string(j, "data.private_key"), -1);
        CHECK(strstr(json_path_string(j, "data.private_key"), "BEGIN EC PRIVATE KEY"));
        EVP_PKEY *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        CHECK(key && X509_check_private_key(cert, key) == 1);
        EVP_PKEY_free(key);
        BIO_free(b);
        X509_free(cert);
        json_decref(TAKE_PTR(j));

        /* ttl over max_ttl is capped, with a warning, as Vault does */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"etcd-1.etcd.local\",\"ttl\":\"100d\"}", &j) == 200);
        CHECK_OK(json_path_i64(j, "data.expiration", &expiration));
        CHECK(expiration <= time(NULL) + 86400 + 5);
        CHECK(json_array_size(json_object_get(j, "warnings")) == 1);
        json_decref(TAKE_PTR(j));

        /* names outside the role, bad IPs, bad ttl, missing CN */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"evil.example.com\"}", &j) == 400);
        CHECK(strstr(json_path_string(j, "errors.0"), "not allowed"));
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"etcd.local\"}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"x.etcd.local\",\"alt_names\":\"x.other\"}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"x.etcd.local\",\"ip_sans\":\"10.0.0.999\"}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"x.etcd.local\",\"ttl\":\"1y\"}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token, "{}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", NULL,
                            "{\"common_name\":\"x.etcd.local\"}", NULL) == 403);
}

static char *make_csr(const char *cn, const char *san) {
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        X509_REQ *req = X509_REQ_new();
        X509V3_CTX ctx;
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        char *data, *pem;
        BIO *b = BIO_new(BIO_s_mem());

        CHECK(key && req && exts && b);
        CHECK(X509_REQ_set_pubkey(req, key) == 1);
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0);
        X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
        sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san));
        CHECK(X509_REQ_add_extensions(req, exts) == 1);
        CHECK(X509_REQ_sign(req, key, EVP_sha256()) > 0);
        CHECK(PEM_write_bio_X509_REQ(b, req) == 1);
        long len = BIO_get_mem_data(b, &data);
        pem = strndup(data, (size_t) len);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        BIO_free(b);
        X509_REQ_free(req);
        EVP_PKEY_free(key);
        return pem;
}

static void test_pki_sign(void) {
        _cleanup_json_ json_t *j = NULL, *body = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1"), *csr = make_csr("etcd-1.etcd.local", "IP:10.0.0.11");
        _cleanup_free_ char *text = NULL, *cn = NULL;
        _cleanup_strv_free_ char **sans = NULL;

        body = json_pack("{s:s,s:s}", "csr", csr, "ttl", "1h");
        text = json_dump_compact(body);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/sign/etcd-peer", token, text, &j) == 200);
        CHECK(!json_object_get(json_object_get(j, "data"), "private_key"));
        X509 *cert = parse_cert(json_path_string(j, "data.certificate"));
        check_cert_issued_by_ca(cert, json_path_string(j, "data.issuing_ca"));
        cn = cert_cn(cert);
        CHECK_STREQ(cn, "etcd-1.etcd.local");
        sans = cert_sans(cert);
        CHECK(strv_contains(sans, "IP:10.0.0.11"));

        /* the certificate carries the CSR's public key */
        X509_REQ *req = NULL;
        CHECK_OK(localpki_parse_csr(csr, &req));
        CHECK(EVP_PKEY_eq(X509_get0_pubkey(cert), X509_REQ_get0_pubkey(req)) == 1);
        X509_REQ_free(req);
        X509_free(cert);
        json_decref(TAKE_PTR(j));

        /* a CSR for a name outside the role, a corrupt CSR */
        free(csr);
        csr = make_csr("evil.example.com", "DNS:evil.example.com");
        json_decref(body);
        free(text);
        body = json_pack("{s:s}", "csr", csr);
        text = json_dump_compact(body);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/sign/etcd-peer", token, text, NULL) == 400);
        char *mid = strstr(csr, "\n") + 10;
        *mid = *mid == 'A' ? 'B' : 'A';
        json_decref(body);
        free(text);
        body = json_pack("{s:s}", "csr", csr);
        text = json_dump_compact(body);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/sign/etcd-peer", token, text, NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/sign/etcd-peer", token, "{\"csr\":\"junk\"}", NULL) == 400);
}

static void test_health(void) {
        _cleanup_json_ json_t *j = NULL;
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/sys/health", NULL, NULL, &j) == 200);
        CHECK(json_is_true(json_object_get(j, "initialized")));
        CHECK(json_is_false(json_object_get(j, "sealed")));
}

/* Tokens and KV data survive a restart; vault.json holds no plaintext token; the CA is reused. */
static void test_persistence(void) {
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1"), *path = NULL, *state = NULL;
        _cleanup_free_ char *ca_before = NULL, *ca_after = NULL;
        _cleanup_json_ json_t *j = NULL;
        struct stat st;

        CHECK(request_full("GET", T.ports.vault[0], "/v1/pki/ca/pem", NULL, NULL, NULL, &ca_before) == 200);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/persist", token,
                            "{\"data\":{\"v\":\"kept-secret\"}}", NULL) == 200);
        test_server_stop(&T);

        CHECK(asprintf(&path, "%s/vault.json", T.dir) >= 0);
        CHECK_OK(read_file(path, 1 << 20, &state, NULL));
        CHECK(!strstr(state, token));
        CHECK(!strstr(state, token + 4));
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
        free(path);
        CHECK(asprintf(&path, "%s/pki/ca.key", T.dir) >= 0);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

        test_server_start(&T);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/persist", token, NULL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "data.data.v"), "kept-secret");
        CHECK(request_full("GET", T.ports.vault[0], "/v1/pki/ca/pem", NULL, NULL, NULL, &ca_after) == 200);
        CHECK_STREQ(ca_before, ca_after);
}

int main(void) {
        test_server_setup(&T);
        test_login();
        test_token_lifecycle();
        test_renew_revalidates();
        test_kv();
        test_kv_cas_race();
        test_pki_issue();
        test_pki_sign();
        test_health();
        test_persistence();
        test_server_teardown(&T);
        return 0;
}
