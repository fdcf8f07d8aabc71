/* The node role's user-data parser: a good file (comments, CRLF, spacing, upper-case pin), each
 * required key missing, bad token / pin / endpoint / node name syntax, duplicates, unknown keys,
 * and that no error message ever carries the token. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "node-userdata.h"

#define TOKEN "07401b.f395accd246ae52d"
#define PIN "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3"

static const char good[] =
        "# handed to the pool by the platform\n"
        "kube_token = " TOKEN "\r\n"
        "\n"
        "kube_endpoint=https://10.0.0.1:6443\n"
        "  kube_ca_pin =  SHA256:345959ACB2C3B2FEB87D281961C893F62A314207EF02599F1CC4A5FB255480B3  \n"
        "node_name = worker-1.pool-a";

static void test_good(void) {
        node_userdata u = { 0 };
        CHECK_OK(node_userdata_parse(good, strlen(good), &u, NULL));
        CHECK_STREQ(u.token.id, "07401b");
        CHECK_STREQ(u.token.secret, "f395accd246ae52d");
        CHECK_STREQ(u.endpoint, "https://10.0.0.1:6443");
        CHECK_STREQ(u.ca_pin, PIN);
        CHECK_STREQ(u.node_name, "worker-1.pool-a");
        node_userdata_done(&u);
        CHECK(u.token.secret[0] == 0 && !u.endpoint);

        /* node_name is optional; IPv6 and DNS endpoints */
        const char *t = "kube_token=" TOKEN "\nkube_endpoint=https://[fd00::1]:443\nkube_ca_pin=" PIN "\n";
        CHECK_OK(node_userdata_parse(t, strlen(t), &u, NULL));
        CHECK(u.node_name == NULL);
        node_userdata_done(&u);
        t = "kube_token=" TOKEN "\nkube_endpoint=https://api.Cluster-1.example:6443\nkube_ca_pin=" PIN;
        CHECK_OK(node_userdata_parse(t, strlen(t), &u, NULL));
        node_userdata_done(&u);
}

/* Replace from in good with to; expect -EINVAL and want in the message, never the token. */
static void expect_error(const char *from, const char *to, const char *want) {
        char text[4096];
        const char *p = strstr(good, from);
        CHECK(p);
        snprintf(text, sizeof(text), "%.*s%s%s", (int) (p - good), good, to, p + strlen(from));
        node_userdata u = { .endpoint = (char *) "untouched" };
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK(node_userdata_parse(text, strlen(text), &u, &err) == -EINVAL);
        CHECK(u.endpoint && streq(u.endpoint, "untouched"));
        if (!err.data || !strstr(err.data, want)) {
                fprintf(stderr, "error \"%s\" does not contain \"%s\"\n", err.data ? err.data : "", want);
                CHECK(0);
        }
        CHECK(!strstr(err.data, "f395accd246ae52d") && !strstr(err.data, "f395accd246ae52"));
}

static void test_errors(void) {
        /* missing keys */
        expect_error("kube_token = " TOKEN "\r\n", "", "user-data: missing kube_token");
        expect_error("kube_endpoint=https://10.0.0.1:6443\n", "", "user-data: missing kube_endpoint");
        expect_error("  kube_ca_pin =", "# kube_ca_pin =", "user-data: missing kube_ca_pin");
        /* bad token syntax: the message says what is wrong, not what was given */
        expect_error(TOKEN, "07401B.f395accd246ae52d", "user-data line 2: kube_token is not a bootstrap token");
        expect_error(TOKEN, "07401b.f395accd246ae52", "line 2: kube_token is not a bootstrap token");
        expect_error(TOKEN, "07401b:f395accd246ae52d", "line 2: kube_token is not a bootstrap token");
        expect_error(TOKEN, "07401b.f395accd246ae52d extra", "line 2: kube_token is not a bootstrap token");
        /* bad pin syntax */
        expect_error("SHA256:", "md5:", "line 5: kube_ca_pin 'md5:345959");
        expect_error("4A5FB255480B3", "4A5FB255480B", "line 5: kube_ca_pin");
        expect_error("SHA256:345959", "SHA256:x45959", "is not sha256:<64 hex digits>");
        /* bad endpoint */
        expect_error("https://10.0.0.1:6443", "http://10.0.0.1:6443", "line 4: kube_endpoint 'http://10.0.0.1:6443' is not https://<host>:<port>");
        expect_error("https://10.0.0.1:6443", "https://10.0.0.1", "line 4: kube_endpoint");
        expect_error("https://10.0.0.1:6443", "https://10.0.0.1:6443/api", "line 4: kube_endpoint");
        expect_error("https://10.0.0.1:6443", "https://10.0.0.300:6443", "line 4: kube_endpoint");
        expect_error("https://10.0.0.1:6443", "https://10.0.0.1:0", "line 4: kube_endpoint");
        expect_error("https://10.0.0.1:6443", "https://user@h:6443", "line 4: kube_endpoint");
        expect_error("https://10.0.0.1:6443", "https://[fd00::zz]:6443", "line 4: kube_endpoint");
        /* node name */
        expect_error("worker-1.pool-a", "Worker-1", "line 6: node_name 'Worker-1' is not a DNS-1123 subdomain");
        expect_error("worker-1.pool-a", "worker-.a", "line 6: node_name");
        expect_error("worker-1.pool-a", "worker..a", "line 6: node_name");
        expect_error("worker-1.pool-a", "-worker", "line 6: node_name");
        /* structure */
        expect_error("\n\nkube_endpoint", "\nkube_endpoint=https://h:1\nkube_endpoint", "line 4: kube_endpoint given twice");
        expect_error("kube_token = ", "kube_token = " TOKEN "\nkube_token = ", "line 3: kube_token given twice");
        expect_error("node_name", "colour = blue\nnode_name", "line 6: unknown key 'colour'");
        expect_error("node_name = worker-1.pool-a", "just words", "line 6: expected 'key=value'");

        node_userdata u = { 0 };
        _cleanup_buf_ buf err = BUF_INIT(256);
        CHECK(node_userdata_parse("kube_token=" TOKEN "\0x", 35, &u, &err) == -EINVAL);
        CHECK(strstr(err.data, "NUL byte"));
}

static void test_validators(void) {
        CHECK(node_userdata_name_valid("a"));
        CHECK(node_userdata_name_valid("n1.example.com"));
        CHECK(!node_userdata_name_valid(""));
        CHECK(!node_userdata_name_valid("a."));
        CHECK(!node_userdata_name_valid("a.-b"));
        CHECK(!node_userdata_name_valid("a_b"));
        char long_name[300];
        memset(long_name, 'a', 254);
        long_name[254] = 0;
        CHECK(!node_userdata_name_valid(long_name));
        CHECK(node_userdata_endpoint_valid("https://127.0.0.1:1"));
        CHECK(node_userdata_endpoint_valid("https://[::1]:65535"));
        CHECK(!node_userdata_endpoint_valid("https://127.0.0.1:65536"));
        CHECK(!node_userdata_endpoint_valid("https://:6443"));
        CHECK(!node_userdata_endpoint_valid("https://[::1]6443"));
        CHECK(!node_userdata_endpoint_valid("https://a..b:6443"));
}

int main(void) {
        test_good();
        test_errors();
        test_validators();
        return 0;
}
