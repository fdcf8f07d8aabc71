/* kube-bootstrap: bootstrap token syntax, the detached JWS of cluster-info and the CA pin, with
 * the upstream vectors (kubernetes/kubernetes cluster-bootstrap/token/jws/jws_test.go and
 * cmd/kubeadm/app/util/pubkeypin/pubkeypin_test.go, as listed in the reference notes, section
 * B.3), and the cluster-info check as a joining node runs it. */
#include <stdio.h>

#include "check.h"
#include "crypto.h"
#include "kube-bootstrap.h"

/* The two test certificates of upstream's pubkeypin_test.go (testCertPEM, testCert2PEM):
 * self-signed RSA-2048, valid until 2117. */
static const char CERT1_PEM[] =
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
static const char CERT2_PEM[] =
        "-----BEGIN CERTIFICATE-----\n"
        "MIID9jCCAt6gAwIBAgIJAN5MXZDic7qYMA0GCSqGSIb3DQEBBQUAMFkxCzAJBgNV\n"
        "BAYTAkFVMRMwEQYDVQQIEwpTb21lLVN0YXRlMSEwHwYDVQQKExhJbnRlcm5ldCBX\n"
        "aWRnaXRzIFB0eSBMdGQxEjAQBgNVBAMTCXRlc3RDZXJ0MjAgFw0xNzA3MjQxNjA0\n"
        "MDFaGA8yMTE3MDYzMDE2MDQwMVowWTELMAkGA1UEBhMCQVUxEzARBgNVBAgTClNv\n"
        "bWUtU3RhdGUxITAfBgNVBAoTGEludGVybmV0IFdpZGdpdHMgUHR5IEx0ZDESMBAG\n"
        "A1UEAxMJdGVzdENlcnQyMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"
        "0brwpJYN2ytPWzRBtZSVc3dhkQlA59AzxzqeLLkano0Pxo9NIc3T/y58nnRI8uaS\n"
        "I1P7BzUfJTiUEvmAtX8NggqKK4ld/gPrU+IRww1CUYS4KCkA/0d0ctPy0JwBCjD+\n"
        "b57G3rmNE8c+0jns6J96ZzNtqmv6N+ZlFBAXm1p4S+k0kGi5+hoQ6H7SYXjk2lG+\n"
        "r/8jPQEjy/NSdw1dcCA0Nc6o+hPr32927dS6J9KOhBeXNYUNdbuDDmroM9/gN2e/\n"
        "YMSA1olLeDPQ7Xvhk0PIyEDnHh83AffPCx5yM3htVRGddjIsPAVUJEL3z5leJtxe\n"
        "fzyPghOhHJY0PXqznDQTcwIDAQABo4G+MIG7MB0GA1UdDgQWBBRP0IJqv/5rQ4Uf\n"
        "SByl77dJeEapRDCBiwYDVR0jBIGDMIGAgBRP0IJqv/5rQ4UfSByl77dJeEapRKFd\n"
        "pFswWTELMAkGA1UEBhMCQVUxEzARBgNVBAgTClNvbWUtU3RhdGUxITAfBgNVBAoT\n"
        "GEludGVybmV0IFdpZGdpdHMgUHR5IEx0ZDESMBAGA1UEAxMJdGVzdENlcnQyggkA\n"
        "3kxdkOJzupgwDAYDVR0TBAUwAwEB/zANBgkqhkiG9w0BAQUFAAOCAQEA0RIMHc10\n"
        "wHHPMh9UflqBgDMF7gfbOL0juJfGloAOcohWWfMZBBJ0CQKMy3xRyoK3HmbW1eeb\n"
        "iATjesw7t4VEAwf7mgKAd+eTfWYB952uq5qYJ2TI28mSofEq1Wz3RmrNkC1KCBs1\n"
        "u+YMFGwyl6necV9zKCeiju4jeovI1GA38TvH7MgYln6vMJ+FbgOXj7XCpek7dQiY\n"
        "KGaeSSH218mGNQaWRQw2Sm3W6cFdANoCJUph4w18s7gjtFpfV63s80hXRps+vEyv\n"
        "jEQMEQpG8Ss7HGJLGLBw/xAmG0e//XS/o2dDonbGbvzToFByz8OGxjMhk6yV6hdd\n"
        "+iyvsLAw/MYMSA==\n"
        "-----END CERTIFICATE-----\n"
        ;

#define CERT1_PIN "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3"
#define CERT2_PIN "sha256:d1ef16989563fe7775f81a7dc55ce16a467ca9baedae2d081cb0a068b6a81971"

static void test_token(void) {
        kube_bootstrap_token t = { "", "" };
        CHECK_OK(kube_bootstrap_token_parse("abcdef.0123456789abcdef", &t));
        CHECK_STREQ(t.id, "abcdef");
        CHECK_STREQ(t.secret, "0123456789abcdef");
        CHECK_OK(kube_bootstrap_token_parse("07401b.f395accd246ae52d", &t));
        CHECK_STREQ(t.id, "07401b");

        static const char *const bad[] = {
                "", "abcdef", "abcdef.", ".0123456789abcdef", "ABCDEF.0123456789abcdef",
                "abcdef.0123456789ABCDEF", "abcde.0123456789abcdefg", "abcdefg.0123456789abcde",
                "abcdef:0123456789abcdef", "abcdef.0123456789abcdef\n", " abcdef.0123456789abcdef",
                "abcdef.0123456789abcde", "abcdef.0123456789abcdeff", "abc-ef.0123456789abcdef",
                "abcdef.0123456789abcd.f", "abcdef..123456789abcdef",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                kube_bootstrap_token u = { "keep", "keep" };
                CHECK(kube_bootstrap_token_parse(bad[i], &u) == -EINVAL);
                CHECK_STREQ(u.id, "keep"); /* untouched on failure */
        }
        CHECK(kube_bootstrap_token_parse(NULL, &t) == -EINVAL);

        CHECK(kube_bootstrap_token_id_valid("abc123"));
        CHECK(!kube_bootstrap_token_id_valid("abc12"));
        CHECK(!kube_bootstrap_token_id_valid("abc1234"));
        CHECK(!kube_bootstrap_token_id_valid("Abc123"));
        CHECK(!kube_bootstrap_token_id_valid(NULL));

        kube_bootstrap_token_wipe(&t);
        CHECK(t.secret[0] == 0 && t.id[0] == 0);
}

#define JOSHUA_HEADER "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9"
static const char content[] = "Hello from the other side. I must have called a thousand times.";

static void check_sign(const char *c, const char *id, const char *secret, const char *expected) {
        _cleanup_free_ char *jws = NULL;
        CHECK_OK(kube_bootstrap_jws_sign(c, strlen(c), id, secret, &jws));
        CHECK_STREQ(jws, expected);
        CHECK_OK(kube_bootstrap_jws_verify(c, strlen(c), expected, id, secret));
}

static void test_jws(void) {
        /* upstream vectors */
        check_sign(content, "joshua", "my voice is my passcode",
                   JOSHUA_HEADER "..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8");
        check_sign("", "joshua", "my voice is my passcode",
                   JOSHUA_HEADER "..7Ui1ALizW4jXphVUB7xUqC9vLYLL9RZeOFfVLoB7Tgk");
        check_sign(content, "joshua", "", JOSHUA_HEADER "..UfkqvDGiIFxrMnFseDj9LYJOLNrvjW8aHhF71mvvAs8");
        /* a real 6.16 token (derived in the reference with Python's hmac and openssl) */
        check_sign("hello\n", "abcdef", "0123456789abcdef",
                   "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9..jGfh3cAKffhbjQqP1x03VRxdhcDip6Xp1PFxbB0P9vg");

        const char *good = JOSHUA_HEADER "..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8";
        size_t n = strlen(content);
        /* upstream's negative: sig + "foo" */
        CHECK(kube_bootstrap_jws_verify(content, n, JOSHUA_HEADER "..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8foo",
                                        "joshua", "my voice is my passcode") == -EKEYREJECTED);
        /* another secret, another content, another kid, one flipped character */
        CHECK(kube_bootstrap_jws_verify(content, n, good, "joshua", "my voice is my passcodE") == -EKEYREJECTED);
        CHECK(kube_bootstrap_jws_verify(content, n - 1, good, "joshua", "my voice is my passcode") == -EKEYREJECTED);
        CHECK(kube_bootstrap_jws_verify(content, n, good, "joshub", "my voice is my passcode") == -EKEYREJECTED);
        CHECK(kube_bootstrap_jws_verify(content, n, JOSHUA_HEADER "..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_9",
                                        "joshua", "my voice is my passcode") == -EKEYREJECTED);
        /* the full token is not the key (the docs say so, the code does not) */
        _cleanup_free_ char *full = NULL;
        CHECK_OK(kube_bootstrap_jws_sign("hello\n", 6, "abcdef", "abcdef.0123456789abcdef", &full));
        CHECK(kube_bootstrap_jws_verify("hello\n", 6, full, "abcdef", "0123456789abcdef") == -EKEYREJECTED);
        /* an attached (non-detached) JWS, or no signature at all, is malformed */
        CHECK(kube_bootstrap_jws_verify(content, n, JOSHUA_HEADER ".SGVsbG8.VShe2taLd", "joshua", "x") == -EBADMSG);
        CHECK(kube_bootstrap_jws_verify(content, n, JOSHUA_HEADER "..", "joshua", "x") == -EBADMSG);
        CHECK(kube_bootstrap_jws_verify(content, n, "..abc", "joshua", "x") == -EBADMSG);
        CHECK(kube_bootstrap_jws_verify(content, n, "", "joshua", "x") == -EBADMSG);
        CHECK(kube_bootstrap_jws_verify(content, n, NULL, "joshua", "x") == -EBADMSG);
        CHECK(kube_bootstrap_jws_verify(content, n, JOSHUA_HEADER "..a b", "joshua", "x") == -EBADMSG);
        CHECK(kube_bootstrap_jws_verify(content, n, JOSHUA_HEADER "..abc=", "joshua", "x") == -EBADMSG);
        /* kids a JSON encoder would escape are refused rather than signed differently */
        char *jws = NULL;
        CHECK(kube_bootstrap_jws_sign("x", 1, "a\"b", "s", &jws) == -EINVAL);
        CHECK(kube_bootstrap_jws_sign("x", 1, "a<b", "s", &jws) == -EINVAL);
        CHECK(kube_bootstrap_jws_sign("x", 1, "", "s", &jws) == -EINVAL);
        CHECK(kube_bootstrap_jws_sign("x", 1, "a\nb", "s", &jws) == -EINVAL);
        CHECK(!jws);
        CHECK(kube_bootstrap_jws_verify(content, n, good, "jo\"shua", "x") == -EINVAL);
}

static void test_pin(void) {
        _cleanup_free_ char *p1 = NULL, *p2 = NULL, *both_first2 = NULL;
        CHECK_OK(kube_bootstrap_ca_pin(CERT1_PEM, &p1));
        CHECK_STREQ(p1, CERT1_PIN);
        CHECK_OK(kube_bootstrap_ca_pin(CERT2_PEM, &p2));
        CHECK_STREQ(p2, CERT2_PIN);

        /* a bundle: the first certificate is pinned; the check accepts any of them */
        _cleanup_free_ char *bundle = NULL;
        CHECK(asprintf(&bundle, "%s%s", CERT2_PEM, CERT1_PEM) > 0);
        CHECK_OK(kube_bootstrap_ca_pin(bundle, &both_first2));
        CHECK_STREQ(both_first2, CERT2_PIN);
        CHECK_OK(kube_bootstrap_pin_check(bundle, CERT1_PIN));
        CHECK_OK(kube_bootstrap_pin_check(bundle, CERT2_PIN));
        CHECK_OK(kube_bootstrap_pin_check(CERT1_PEM, CERT1_PIN));
        CHECK(kube_bootstrap_pin_check(CERT2_PEM, CERT1_PIN) == -EKEYREJECTED);

        /* the format name is case-insensitive, upper-case hex is fine (upstream TestSet) */
        CHECK_OK(kube_bootstrap_pin_check(CERT1_PEM,
                                          "SHA256:345959ACB2C3B2FEB87D281961C893F62A314207EF02599F1CC4A5FB255480B3"));
        uint8_t d[32], keep[32];
        memset(keep, 0x5a, sizeof(keep));
        memcpy(d, keep, sizeof(d));
        static const char *const bad[] = {
                "xyz", "sha256:0011223344", CERT1_PIN CERT1_PIN + 7, CERT1_PIN "345959acb2c3b2feb8",
                "345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3",
                "sha1:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3",
                "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480bg",
                "sha256: 345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b",
                "sha256:", "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK(kube_bootstrap_pin_parse(bad[i], d) == -EINVAL);
                CHECK(memcmp(d, keep, sizeof(d)) == 0);
                CHECK(kube_bootstrap_pin_check(CERT1_PEM, bad[i]) == -EINVAL);
        }
        /* the doubled hash of upstream's test */
        CHECK(kube_bootstrap_pin_parse(CERT1_PIN CERT1_PIN, d) == -EINVAL);
        CHECK(kube_bootstrap_pin_parse(NULL, d) == -EINVAL);

        /* no certificate at all */
        char *p = NULL;
        CHECK(kube_bootstrap_ca_pin("", &p) == -EBADMSG);
        CHECK(kube_bootstrap_ca_pin("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &p) == -EBADMSG);
        CHECK(!p);
        CHECK(kube_bootstrap_pin_check("not a pem", CERT1_PIN) == -EBADMSG);
}

/* The kubeconfig kubeadm puts in cluster-info (clientcmd's YAML), with the given CA. */
static char *kubeadm_kubeconfig(const char *ca_pem, const char *server) {
        _cleanup_free_ char *ca64 = base64_encode(ca_pem, strlen(ca_pem));
        char *s = NULL;
        CHECK(ca64);
        CHECK(asprintf(&s,
                       "apiVersion: v1\n"
                       "clusters:\n"
                       "- cluster:\n"
                       "    certificate-authority-data: %s\n"
                       "    server: %s\n"
                       "  name: \"\"\n"
                       "contexts: null\n"
                       "current-context: \"\"\n"
                       "kind: Config\n"
                       "preferences: {}\n"
                       "users: null\n",
                       ca64, server) > 0);
        return s;
}

static void check_kubeconfig_bad(const char *kc, const char *why) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        char *server = NULL, *ca = NULL;
        CHECK(kube_bootstrap_kubeconfig_cluster(kc, &server, &ca, &err) == -EBADMSG);
        CHECK(!server && !ca);
        if (!strstr(strempty(err.data), why))
                fprintf(stderr, "kubeconfig error \"%s\", expected \"%s\"\n", strempty(err.data), why);
        CHECK(strstr(strempty(err.data), why));
}

static void test_kubeconfig(void) {
        _cleanup_free_ char *kc = kubeadm_kubeconfig(CERT1_PEM, "https://10.0.0.1:6443");
        _cleanup_free_ char *ca64 = base64_encode(CERT1_PEM, strlen(CERT1_PEM));
        char *server = NULL, *ca = NULL;

        CHECK_OK(kube_bootstrap_kubeconfig_cluster(kc, &server, &ca, NULL));
        CHECK_STREQ(server, "https://10.0.0.1:6443");
        CHECK_STREQ(ca, CERT1_PEM);
        free(server);
        free(ca);

        /* JSON (valid YAML too), and quoted YAML scalars with a comment */
        _cleanup_free_ char *json = NULL, *quoted = NULL, *indented = NULL;
        CHECK(asprintf(&json, "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"clusters\":[{\"name\":\"\","
                              "\"cluster\":{\"server\":\"https://cp.example:6443\","
                              "\"certificate-authority-data\":\"%s\"}}]}", ca64) > 0);
        CHECK_OK(kube_bootstrap_kubeconfig_cluster(json, &server, &ca, NULL));
        CHECK_STREQ(server, "https://cp.example:6443");
        CHECK_STREQ(ca, CERT1_PEM);
        free(server);
        free(ca);
        CHECK(asprintf(&quoted, "# cluster-info\nclusters:\n- name: x\n  cluster:\n"
                                "    server: 'https://it''s:6443' # comment\n"
                                "    certificate-authority-data: \"%s\"\r\nkind: Config\n", ca64) > 0);
        CHECK_OK(kube_bootstrap_kubeconfig_cluster(quoted, &server, &ca, NULL));
        CHECK_STREQ(server, "https://it's:6443");
        free(server);
        free(ca);
        /* a sequence indented under its key */
        CHECK(asprintf(&indented, "clusters:\n  - cluster:\n      server: https://a:1\n"
                                  "      certificate-authority-data: %s\n    name: a\nusers: []\n", ca64) > 0);
        CHECK_OK(kube_bootstrap_kubeconfig_cluster(indented, &server, &ca, NULL));
        CHECK_STREQ(server, "https://a:1");
        free(server);
        free(ca);

        /* negatives */
        _cleanup_free_ char *two = NULL, *http = NULL, *notpem = NULL, *flow = NULL, *nokey = NULL;
        CHECK(asprintf(&two, "clusters:\n- cluster:\n    server: https://a:1\n    certificate-authority-data: %s\n"
                             "- cluster:\n    server: https://b:1\n    certificate-authority-data: %s\n", ca64, ca64) > 0);
        check_kubeconfig_bad(two, "a second \"server\"");
        http = kubeadm_kubeconfig(CERT1_PEM, "http://10.0.0.1:6443");
        check_kubeconfig_bad(http, "is not https://");
        _cleanup_free_ char *hello64 = base64_encode("hello", 5);
        CHECK(asprintf(&notpem, "clusters:\n- cluster:\n    server: https://a:1\n    certificate-authority-data: %s\n",
                       hello64) > 0);
        check_kubeconfig_bad(notpem, "not a PEM certificate");
        check_kubeconfig_bad("clusters:\n- cluster:\n    server: https://a:1\n    certificate-authority-data: !!x\n",
                             "not a one-line scalar");
        check_kubeconfig_bad("clusters:\n- cluster:\n    server: https://a:1\n    certificate-authority-data: @@@@\n",
                             "not a one-line scalar");
        check_kubeconfig_bad("clusters:\n- cluster:\n    server: https://a:1\n    certificate-authority-data: a$b=\n",
                             "not base64");
        check_kubeconfig_bad("clusters:\n- cluster:\n    server: https://a:1\n    certificate-authority: /ca.pem\n",
                             "no cluster \"certificate-authority-data\"");
        CHECK(asprintf(&flow, "clusters: [{cluster: {server: https://a:1, certificate-authority-data: %s}}]\n", ca64) > 0);
        check_kubeconfig_bad(flow, "not a block sequence");
        CHECK(asprintf(&nokey, "kind: Config\nserver: https://a:1\ncertificate-authority-data: %s\n", ca64) > 0);
        check_kubeconfig_bad(nokey, "no \"clusters\"");
        check_kubeconfig_bad("clusters:\n- cluster:\n    server: \"https://a:1\\x\"\n", "not a one-line scalar");
        check_kubeconfig_bad("clusters:\n- cluster:\n\tserver: https://a:1\n", "tab in indentation");
        check_kubeconfig_bad("clusters:\nclusters:\n", "\"clusters\" twice");
        check_kubeconfig_bad("{\"clusters\":[]}", "not a list of one cluster");
        check_kubeconfig_bad("{\"clusters\":", "cluster-info kubeconfig: ");
        check_kubeconfig_bad("", "no \"clusters\"");
        check_kubeconfig_bad(NULL, "missing");
}

static json_t *configmap(const char *kubeconfig, const char *sig_key, const char *sig) {
        json_t *cm = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                               "metadata", "name", "cluster-info", "namespace", "kube-public", "data",
                               "kubeconfig", kubeconfig);
        CHECK(cm);
        if (sig_key)
                CHECK(json_object_set_new(json_object_get(cm, "data"), sig_key, json_string(sig)) == 0);
        return cm;
}

static void test_cluster_info(void) {
        _cleanup_free_ char *kc = kubeadm_kubeconfig(CERT1_PEM, "https://10.0.0.1:6443");
        _cleanup_free_ char *sig = NULL, *other_sig = NULL;
        kube_bootstrap_token token, other;
        kube_cluster_info ci = { 0 };
        _cleanup_buf_ buf err = BUF_INIT(4096);

        CHECK_OK(kube_bootstrap_token_parse("abcdef.0123456789abcdef", &token));
        CHECK_OK(kube_bootstrap_token_parse("abcdef.0123456789abcdeg", &other));
        CHECK_OK(kube_bootstrap_jws_sign(kc, strlen(kc), token.id, token.secret, &sig));
        CHECK_OK(kube_bootstrap_jws_sign(kc, strlen(kc), other.id, other.secret, &other_sig));

        _cleanup_json_ json_t *cm = configmap(kc, "jws-kubeconfig-abcdef", sig);
        CHECK_OK(kube_bootstrap_cluster_info_verify(cm, &token, CERT1_PIN, &ci, &err));
        CHECK_STREQ(ci.server, "https://10.0.0.1:6443");
        CHECK_STREQ(ci.ca_pem, CERT1_PEM);
        CHECK_STREQ(ci.kubeconfig, kc);
        CHECK(err.len == 0);
        CHECK(kube_bootstrap_cluster_info_same(&ci, cm));
        /* the second fetch must carry the same bytes */
        _cleanup_free_ char *kc_changed = kubeadm_kubeconfig(CERT1_PEM, "https://10.0.0.2:6443");
        _cleanup_json_ json_t *cm_changed = configmap(kc_changed, NULL, NULL);
        CHECK(!kube_bootstrap_cluster_info_same(&ci, cm_changed));
        CHECK(!kube_bootstrap_cluster_info_same(&ci, NULL));
        kube_cluster_info_done(&ci);
        CHECK(!ci.server);

        /* not signed for this token (yet): the caller polls */
        _cleanup_json_ json_t *unsigned_cm = configmap(kc, "jws-kubeconfig-zzzzzz", sig);
        CHECK(kube_bootstrap_cluster_info_verify(unsigned_cm, &token, CERT1_PIN, &ci, &err) == -ENOENT);
        CHECK(strstr(err.data, "no signature for token ID abcdef"));
        buf_clear(&err);

        /* signed with another token secret */
        _cleanup_json_ json_t *forged = configmap(kc, "jws-kubeconfig-abcdef", other_sig);
        CHECK(kube_bootstrap_cluster_info_verify(forged, &token, CERT1_PIN, &ci, &err) == -EKEYREJECTED);
        CHECK(strstr(err.data, "was not signed with token abcdef"));
        buf_clear(&err);

        /* a kubeconfig changed after signing (the server URL swapped) */
        _cleanup_json_ json_t *tampered = configmap(kc_changed, "jws-kubeconfig-abcdef", sig);
        CHECK(kube_bootstrap_cluster_info_verify(tampered, &token, CERT1_PIN, &ci, &err) == -EKEYREJECTED);
        buf_clear(&err);

        /* correctly signed, but another CA than the pinned one: the token must not go there */
        _cleanup_free_ char *kc2 = kubeadm_kubeconfig(CERT2_PEM, "https://10.0.0.1:6443");
        _cleanup_free_ char *sig2 = NULL;
        CHECK_OK(kube_bootstrap_jws_sign(kc2, strlen(kc2), token.id, token.secret, &sig2));
        _cleanup_json_ json_t *wrong_ca = configmap(kc2, "jws-kubeconfig-abcdef", sig2);
        CHECK(kube_bootstrap_cluster_info_verify(wrong_ca, &token, CERT1_PIN, &ci, &err) == -EPERM);
        CHECK(strstr(err.data, "the cluster CA (" CERT2_PIN ") does not match the pin " CERT1_PIN));
        buf_clear(&err);

        /* a malformed pin, a malformed signature, a ConfigMap without data */
        CHECK(kube_bootstrap_cluster_info_verify(cm, &token, "sha256:abc", &ci, &err) == -EINVAL);
        CHECK(kube_bootstrap_cluster_info_verify(cm, &token, NULL, &ci, &err) == -EINVAL);
        _cleanup_json_ json_t *garbled = configmap(kc, "jws-kubeconfig-abcdef", "not-a-jws");
        CHECK(kube_bootstrap_cluster_info_verify(garbled, &token, CERT1_PIN, &ci, &err) == -EBADMSG);
        _cleanup_json_ json_t *nodata = json_pack("{s:s}", "kind", "ConfigMap");
        CHECK(kube_bootstrap_cluster_info_verify(nodata, &token, CERT1_PIN, &ci, &err) == -EBADMSG);
        _cleanup_json_ json_t *numsig = configmap(kc, NULL, NULL);
        CHECK(json_object_set_new(json_object_get(numsig, "data"), "jws-kubeconfig-abcdef", json_integer(1)) == 0);
        CHECK(kube_bootstrap_cluster_info_verify(numsig, &token, CERT1_PIN, &ci, &err) == -EBADMSG);
        /* a signed kubeconfig that does not parse */
        _cleanup_free_ char *sig_bad = NULL;
        CHECK_OK(kube_bootstrap_jws_sign("kind: Config\n", 13, token.id, token.secret, &sig_bad));
        _cleanup_json_ json_t *badkc = configmap("kind: Config\n", "jws-kubeconfig-abcdef", sig_bad);
        CHECK(kube_bootstrap_cluster_info_verify(badkc, &token, CERT1_PIN, &ci, &err) == -EBADMSG);
        CHECK(!ci.server && !ci.kubeconfig);

        kube_bootstrap_token_wipe(&token);
        kube_bootstrap_token_wipe(&other);
}

int main(void) {
        test_token();
        test_jws();
        test_pin();
        test_kubeconfig();
        test_cluster_info();
        return 0;
}
