/* The Vault-compatible service over real HTTP on loopback: login bound to the listener, token
 * renew/expiry/revoke, KV v2 with cas (including a two-writer race), PKI issue and sign checked
 * with OpenSSL, policy denials, and persistence across a restart. */
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto.h"
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
        /* Changed (issue 14 item 10): an unknown field is ignored with a warning, as Vault's
         * framework does (sdk/framework/backend.go HandleRequest), where it was 400. */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":\"etcd\",\"instance\":\"i-1\",\"x\":1}", &j) == 200);
        CHECK_STREQ(json_path_string(j, "warnings.0"), "Endpoint ignored these unrecognized parameters: [x]");
        json_decref(TAKE_PTR(j));
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
        /* Changed (issue 14 item 10): an ACL denial reads as Vault's core words it (the
         * go-multierror form), where it was the bare "permission denied" of a plugin. */
        CHECK_STREQ(json_path_string(j, "errors.0"), "1 error occurred:\n\t* permission denied\n\n");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/other", token, NULL, NULL) == 403);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/metadata/etcd/x", token, NULL, NULL) == 403);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/other-role", token, "{}", NULL) == 403);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/x", NULL, NULL, NULL) == 403);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/nothing/here", token, NULL, NULL) == 404);
        /* Changed (issue 14 item 10): KV v2 delete exists now, so as in Vault the ACL decides:
         * the etcd policy grants no "delete" on etcd/x (was 405). */
        CHECK(vault_request("DELETE", T.ports.vault[0], "/v1/secret/data/etcd/x", token, NULL, NULL) == 403);
        CHECK(vault_request("PUT", T.ports.vault[0], "/v1/secret/metadata/etcd/x", token, "{}", NULL) == 405);
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

/* The role's organization is the subject's O, in order before the CN, for sign (whatever the
 * CSR's subject says) and issue; a role without one gives none. */
static void test_pki_organization(void) {
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1"), *csr = make_csr("kubernetes-admin", "IP:10.0.0.11");
        _cleanup_json_ json_t *body = json_pack("{s:s}", "csr", csr), *j = NULL;
        _cleanup_free_ char *text = json_dump_compact(body);
        char subject[256];

        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/sign/client", token, text, &j) == 200);
        X509 *cert = parse_cert(json_path_string(j, "data.certificate"));
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        CHECK_STREQ(subject, "/O=system:masters/O=ops/CN=kubernetes-admin");
        X509_free(cert);
        json_decref(TAKE_PTR(j));

        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/client", token,
                            "{\"common_name\":\"system:kube-scheduler\"}", &j) == 200);
        cert = parse_cert(json_path_string(j, "data.certificate"));
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        CHECK_STREQ(subject, "/O=system:masters/O=ops/CN=system:kube-scheduler");
        X509_free(cert);
        json_decref(TAKE_PTR(j));

        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"etcd-1.etcd.local\"}", &j) == 200);
        cert = parse_cert(json_path_string(j, "data.certificate"));
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        CHECK_STREQ(subject, "/CN=etcd-1.etcd.local");
        X509_free(cert);
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

/* ---- issue 14 item 10: answers as Vault gives them ---- */

static long vault_request_headers(const char *method, uint16_t port, const char *path, const char *token,
                                  const char *content_type, const char *body, json_t **ret_json) {
        _cleanup_free_ char *h = NULL, *ct = NULL;
        CHECK(asprintf(&ct, "Content-Type: %s", content_type) >= 0);
        CHECK(asprintf(&h, "X-Vault-Token: %s", token) >= 0);
        char *headers[3] = { ct, h, NULL };
        return request_full(method, port, path, body, headers, ret_json, NULL);
}

/* A raw exchange on loopback, for what lib/http.h would not send. Returns the whole reply. */
static char *raw_exchange(uint16_t port, const char *text) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        _cleanup_buf_ buf out = BUF_INIT(1 << 20);
        char chunk[4096];
        ssize_t n;

        CHECK(fd >= 0 && connect(fd, (struct sockaddr *) &a, sizeof(a)) == 0);
        CHECK(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
        while ((n = read(fd, chunk, sizeof(chunk))) > 0)
                CHECK_OK(buf_append(&out, chunk, (size_t) n));
        close(fd);
        CHECK_OK(buf_append(&out, "", 0));
        return buf_steal(&out);
}

static void test_unknown_fields_warn(void) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1");

        /* sorted, space-separated, as Go prints a []string */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":\"etcd\",\"zz\":1,\"instance\":\"i-1\",\"aa\":\"x\"}", &j) == 200);
        CHECK_STREQ(json_path_string(j, "warnings.0"), "Endpoint ignored these unrecognized parameters: [aa zz]");
        CHECK(json_path_string(j, "auth.client_token"));
        json_decref(TAKE_PTR(j));
        /* none: no warnings at all (null) */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/warn", token, "{\"data\":{\"a\":\"1\"}}", &j) == 200);
        CHECK(json_is_null(json_object_get(j, "warnings")));
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/etcd/warn", token,
                            "{\"data\":{\"a\":\"2\"},\"extra\":true}", &j) == 200);
        CHECK_STREQ(json_path_string(j, "warnings.0"), "Endpoint ignored these unrecognized parameters: [extra]");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"w.etcd.local\",\"key_typo\":\"ec\"}", &j) == 200);
        CHECK_STREQ(json_path_string(j, "warnings.0"), "Endpoint ignored these unrecognized parameters: [key_typo]");
        json_decref(TAKE_PTR(j));
        /* a 204 reply carries no envelope, so no warning either */
        _cleanup_free_ char *t2 = vault_login_as(&T, 0, "i-1");
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/token/revoke-self", t2, "{\"x\":1}", NULL) == 204);
}

static void test_denial_texts(void) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1");

        CHECK(vault_request("GET", T.ports.vault[0], "/v1/auth/token/lookup-self", NULL, NULL, &j) == 403);
        CHECK_STREQ(json_path_string(j, "errors.0"), "missing client token");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/etcd/x", "hvs.bogus", NULL, &j) == 403);
        CHECK_STREQ(json_path_string(j, "errors.0"), "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n");
        json_decref(TAKE_PTR(j));
        /* through another instance's port the token does not exist */
        CHECK(vault_request("GET", T.ports.vault[1], "/v1/auth/token/lookup-self", token, NULL, &j) == 403);
        CHECK_STREQ(json_path_string(j, "errors.0"), "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/other", token, NULL, &j) == 403);
        CHECK_STREQ(json_path_string(j, "errors.0"), "1 error occurred:\n\t* permission denied\n\n");
        json_decref(TAKE_PTR(j));
        /* the auth plugin's own refusal stays bare */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":\"etcd\",\"instance\":\"i-2\"}", &j) == 403);
        CHECK_STREQ(json_path_string(j, "errors.0"), "permission denied");
}

static void test_renew_increment(void) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1"), *body = NULL;
        int64_t lease;

        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/token/renew-self", token, "{\"increment\":600}", &j) == 200);
        CHECK_OK(json_path_i64(j, "auth.lease_duration", &lease));
        CHECK(lease == 600);
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/auth/token/lookup-self", token, NULL, &j) == 200);
        CHECK_OK(json_path_i64(j, "data.ttl", &lease));
        CHECK(lease == 600);
        json_decref(TAKE_PTR(j));
        /* longer than the role's ttl is fine below the max TTL (768h by default) */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/token/renew-self", token, "{\"increment\":\"2h\"}", &j) == 200);
        CHECK_OK(json_path_i64(j, "auth.lease_duration", &lease));
        CHECK(lease == 7200);
        CHECK(json_is_null(json_object_get(j, "warnings")));
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/token/renew-self", token, "{\"increment\":\"soon\"}", NULL) == 400);

        /* role "short": ttl 600, max_ttl 900 counted from login */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/exoscale/login", NULL,
                            "{\"role\":\"short\",\"instance\":\"i-1\"}", &j) == 200);
        CHECK_OK(json_path_i64(j, "auth.lease_duration", &lease));
        CHECK(lease == 600);
        body = strdup(json_path_string(j, "auth.client_token"));
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/token/renew-self", body, "{\"increment\":\"1h\"}", &j) == 200);
        CHECK_OK(json_path_i64(j, "auth.lease_duration", &lease));
        CHECK(lease == 900);
        CHECK_STREQ(json_path_string(j, "warnings.0"),
                    "TTL of \"1h\" exceeded the effective max_ttl of \"15m\"; TTL value is capped accordingly");
        json_decref(TAKE_PTR(j));
        test_clock_offset = 300;
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/auth/token/renew-self", body, NULL, &j) == 200);
        CHECK_OK(json_path_i64(j, "auth.lease_duration", &lease));
        CHECK(lease == 600);
        json_decref(TAKE_PTR(j));
        test_clock_offset = 0;
}

static void test_kv_delete_list_patch(void) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1");
        int64_t v;

        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/scratch/a", token,
                            "{\"data\":{\"x\":\"1\",\"y\":\"2\",\"o\":{\"p\":1,\"q\":2}}}", NULL) == 200);
        /* patch: merge-patch media type only, RFC 7396 semantics */
        CHECK(vault_request("PATCH", T.ports.vault[0], "/v1/secret/data/scratch/a", token,
                            "{\"data\":{\"y\":null}}", &j) == 415);
        CHECK(strstr(json_path_string(j, "errors.0"), "application/merge-patch+json"));
        json_decref(TAKE_PTR(j));
        CHECK(vault_request_headers("PATCH", T.ports.vault[0], "/v1/secret/data/scratch/a", token,
                                    "application/merge-patch+json",
                                    "{\"data\":{\"y\":null,\"z\":\"3\",\"o\":{\"q\":null}}}", &j) == 200);
        CHECK_OK(json_path_i64(j, "data.version", &v));
        CHECK(v == 2);
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/scratch/a", token, NULL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "data.data.x"), "1");
        CHECK_STREQ(json_path_string(j, "data.data.z"), "3");
        CHECK(!json_path(j, "data.data.y"));
        CHECK(json_path(j, "data.data.o.p") && !json_path(j, "data.data.o.q"));
        json_decref(TAKE_PTR(j));
        CHECK(vault_request_headers("PATCH", T.ports.vault[0], "/v1/secret/data/scratch/a", token,
                                    "application/merge-patch+json", "{\"data\":{\"x\":\"9\"},\"options\":{\"cas\":1}}",
                                    &j) == 400);
        CHECK_STREQ(json_path_string(j, "errors.0"), "check-and-set parameter did not match the current version");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request_headers("PATCH", T.ports.vault[0], "/v1/secret/data/scratch/none", token,
                                    "application/merge-patch+json", "{\"data\":{\"x\":\"9\"}}", NULL) == 404);
        /* the etcd policy has no patch on etcd/ */
        CHECK(vault_request_headers("PATCH", T.ports.vault[0], "/v1/secret/data/etcd/x", token,
                                    "application/merge-patch+json", "{\"data\":{\"x\":\"9\"}}", NULL) == 403);

        /* list: LIST or GET ?list=true, folders with a trailing '/', checked as "list" */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/scratch/dir/b", token, "{\"data\":{\"b\":1}}", NULL) == 200);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/scratch/dir/c", token, "{\"data\":{\"c\":1}}", NULL) == 200);
        CHECK(vault_request("LIST", T.ports.vault[0], "/v1/secret/metadata/scratch", token, NULL, &j) == 200);
        CHECK(json_array_size(json_path(j, "data.keys")) == 2);
        CHECK_STREQ(json_path_string(j, "data.keys.0"), "a");
        CHECK_STREQ(json_path_string(j, "data.keys.1"), "dir/");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/metadata/scratch/dir/?list=true", token, NULL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "data.keys.0"), "b");
        CHECK_STREQ(json_path_string(j, "data.keys.1"), "c");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("LIST", T.ports.vault[0], "/v1/secret/metadata/scratch/nothing/", token, NULL, &j) == 404);
        CHECK(json_array_size(json_object_get(j, "errors")) == 0);
        json_decref(TAKE_PTR(j));
        /* read is not list: etcd/ may be read but not listed */
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/metadata/etcd/?list=true", token, NULL, NULL) == 403);
        CHECK(vault_request("LIST", T.ports.vault[0], "/v1/secret/metadata", token, NULL, NULL) == 403);

        /* delete: soft delete of the latest version; a read is 404 with the metadata */
        CHECK(vault_request("DELETE", T.ports.vault[0], "/v1/secret/data/scratch/a", token, NULL, NULL) == 204);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/scratch/a", token, NULL, &j) == 404);
        CHECK(json_is_null(json_path(j, "data.data")));
        CHECK(strlen(json_path_string(j, "data.metadata.deletion_time")) > 0);
        CHECK_OK(json_path_i64(j, "data.metadata.version", &v));
        CHECK(v == 2);
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/scratch/a?version=1", token, NULL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "data.data.y"), "2");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request_headers("PATCH", T.ports.vault[0], "/v1/secret/data/scratch/a", token,
                                    "application/merge-patch+json", "{\"data\":{\"x\":\"9\"}}", NULL) == 404);
        CHECK(vault_request("DELETE", T.ports.vault[0], "/v1/secret/data/scratch/none", token, NULL, NULL) == 204);
        /* a new write after a delete is a new live version */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/secret/data/scratch/a", token,
                            "{\"data\":{\"x\":\"4\"},\"options\":{\"cas\":2}}", &j) == 200);
        CHECK_OK(json_path_i64(j, "data.version", &v));
        CHECK(v == 3);
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/scratch/a", token, NULL, NULL) == 200);

        /* metadata delete: every version goes */
        CHECK(vault_request("DELETE", T.ports.vault[0], "/v1/secret/metadata/scratch/a", token, NULL, NULL) == 204);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/data/scratch/a?version=1", token, NULL, NULL) == 404);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/secret/metadata/scratch/a", token, NULL, NULL) == 404);
        CHECK(vault_request("LIST", T.ports.vault[0], "/v1/secret/metadata/scratch/", token, NULL, &j) == 200);
        CHECK(json_array_size(json_path(j, "data.keys")) == 1);
        CHECK_STREQ(json_path_string(j, "data.keys.0"), "dir/");
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("DELETE", T.ports.vault[0], "/v1/secret/metadata/etcd/x", token, NULL, NULL) == 403);
}

static char **cert_uris(X509 *x) {
        GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        char **l = NULL;
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                if (g->type == GEN_URI)
                        CHECK_OK(strv_push(&l, (const char *) ASN1_STRING_get0_data(g->d.uniformResourceIdentifier)));
        }
        GENERAL_NAMES_free(gens);
        return l;
}

static void test_pki_formats(void) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *token = vault_login_as(&T, 0, "i-1");
        int64_t expiration;

        /* private_key_format=pkcs8 */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"k.etcd.local\",\"private_key_format\":\"pkcs8\"}", &j) == 200);
        CHECK(startswith(json_path_string(j, "data.private_key"), "-----BEGIN PRIVATE KEY-----"));
        json_decref(TAKE_PTR(j));

        /* format=pem_bundle: the key in front of the certificate */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"b.etcd.local\",\"format\":\"pem_bundle\"}", &j) == 200);
        const char *bundle = json_path_string(j, "data.certificate");
        CHECK(startswith(bundle, "-----BEGIN EC PRIVATE KEY-----"));
        CHECK(strstr(bundle, json_path_string(j, "data.private_key")));
        CHECK(strstr(bundle, "-----BEGIN CERTIFICATE-----"));
        X509 *cert = parse_cert(strstr(bundle, "-----BEGIN CERTIFICATE-----"));
        X509_free(cert);
        json_decref(TAKE_PTR(j));

        /* format=der: base64 DER */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"d.etcd.local\",\"format\":\"der\"}", &j) == 200);
        uint8_t *der = NULL;
        size_t der_len;
        CHECK_OK(base64_decode(json_path_string(j, "data.certificate"), &der, &der_len));
        const unsigned char *p = der;
        cert = d2i_X509(NULL, &p, (long) der_len);
        CHECK(cert);
        X509_free(cert);
        free(der);
        CHECK(!strstr(json_path_string(j, "data.private_key"), "-----"));
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"d.etcd.local\",\"format\":\"p12\"}", NULL) == 400);

        /* uri_sans within the role's allowed_uri_sans */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"u.etcd.local\",\"uri_sans\":\"spiffe://etcd.local/node/1\"}", &j) == 200);
        cert = parse_cert(json_path_string(j, "data.certificate"));
        _cleanup_strv_free_ char **uris = cert_uris(cert);
        CHECK(strv_contains(uris, "spiffe://etcd.local/node/1"));
        X509_free(cert);
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"u.etcd.local\",\"uri_sans\":[\"https://evil.example\"]}", &j) == 400);
        CHECK(strstr(json_path_string(j, "errors.0"), "URI Subject Alternative Names are not allowed"));
        json_decref(TAKE_PTR(j));

        /* not_after: taken as given, not with ttl, not in the past */
        char when[32], body[160];
        time_t at = test_now() + 3 * 86400;
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&at, &tm));
        snprintf(body, sizeof(body), "{\"common_name\":\"n.etcd.local\",\"not_after\":\"%s\"}", when);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token, body, &j) == 200);
        CHECK_OK(json_path_i64(j, "data.expiration", &expiration));
        CHECK(expiration == at);
        json_decref(TAKE_PTR(j));
        snprintf(body, sizeof(body), "{\"common_name\":\"n.etcd.local\",\"not_after\":\"%s\",\"ttl\":\"1h\"}", when);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token, body, NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"n.etcd.local\",\"not_after\":\"2001-01-01T00:00:00Z\"}", NULL) == 400);
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"n.etcd.local\",\"not_after\":\"tomorrow\"}", NULL) == 400);

        /* remove_roots_from_chain; other_sans refused like a role without allowed_other_sans */
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"r.etcd.local\",\"remove_roots_from_chain\":true}", &j) == 200);
        CHECK(json_array_size(json_path(j, "data.ca_chain")) == 0);
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("POST", T.ports.vault[0], "/v1/pki/issue/etcd-peer", token,
                            "{\"common_name\":\"r.etcd.local\",\"other_sans\":\"1.2.3.4;UTF8:x\"}", NULL) == 400);
}

static void test_health_and_seal(void) {
        _cleanup_json_ json_t *j = NULL;
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/sys/health?activecode=299", NULL, NULL, &j) == 299);
        CHECK(json_is_true(json_object_get(j, "initialized")));
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/sys/health?standbyok=true&perfstandbyok=1&sealedcode=200",
                            NULL, NULL, NULL) == 200);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/sys/health?standbyok=maybe", NULL, NULL, NULL) == 400);
        CHECK(vault_request("GET", T.ports.vault[0], "/v1/sys/health?activecode=abc", NULL, NULL, &j) == 400);
        CHECK(json_array_size(json_object_get(j, "errors")) == 0);
        json_decref(TAKE_PTR(j));
        CHECK(vault_request("HEAD", T.ports.vault[0], "/v1/sys/health?activecode=299", NULL, NULL, NULL) == 299);

        CHECK(vault_request("GET", T.ports.vault[0], "/v1/sys/seal-status", NULL, NULL, &j) == 200);
        CHECK(json_is_false(json_object_get(j, "sealed")));
        CHECK(json_is_true(json_object_get(j, "initialized")));
        CHECK_STREQ(json_path_string(j, "type"), "shamir");
        CHECK(json_path_string(j, "version"));
}

/* The HTTP server's own replies on a Vault port are Vault-shaped; chunked bodies are read. */
static void test_server_errors_shape(void) {
        _cleanup_free_ char *big = NULL, *chunked = NULL;
        big = raw_exchange(T.ports.vault[0], "POST /v1/auth/exoscale/login HTTP/1.1\r\nHost: x\r\n"
                                             "Content-Length: 100000000\r\n\r\n");
        CHECK(startswith(big, "HTTP/1.1 413 "));
        CHECK(strstr(big, "\r\n\r\n{\"errors\":[\"request body too large\"]}"));
        chunked = raw_exchange(T.ports.vault[0], "POST /v1/auth/exoscale/login HTTP/1.1\r\nHost: x\r\n"
                                                 "Transfer-Encoding: chunked\r\n\r\n"
                                                 "20\r\n{\"role\":\"etcd\",\"instance\":\"i-1\"}\r\n0\r\n\r\n");
        CHECK(startswith(chunked, "HTTP/1.1 200 "));
        CHECK(strstr(chunked, "\"client_token\":\"hvs."));
        /* the API port keeps the server's own shape */
        _cleanup_free_ char *api = raw_exchange(T.ports.api, "POST /v2/x HTTP/1.1\r\nHost: x\r\n"
                                                             "Content-Length: 100000000\r\n\r\n");
        CHECK(strstr(api, "\r\n\r\n{\"error\":\"request body too large\"}"));
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
        test_pki_organization();
        test_health();
        test_unknown_fields_warn();
        test_denial_texts();
        test_renew_increment();
        test_kv_delete_list_patch();
        test_pki_formats();
        test_health_and_seal();
        test_server_errors_shape();
        test_persistence();
        test_server_teardown(&T);
        return 0;
}
