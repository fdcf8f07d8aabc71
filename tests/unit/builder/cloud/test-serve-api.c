/* The Exoscale API subset and the metadata service over real HTTP on loopback: signatures
 * (valid, tampered, expired, wrong key), instance/pool/private-network listings against
 * cloud.json, metadata keys, and a cloud.json reload that brings up a new instance's listeners. */
#include "exoscale.h"
#include "serve-test.h"

static test_server T;

/* A signed GET; expires is absolute; tamper flips one signature character. */
static long api_get(const char *path_and_query, int64_t expires, const char *secret, bool tamper,
                    json_t **ret) {
        _cleanup_free_ char *path = strdup(path_and_query), *header = NULL;
        _cleanup_buf_ buf auth = BUF_INIT(4096);
        char *q = strchr(path, '?');
        if (q)
                *q++ = 0;
        CHECK_OK(exo_sign("GET", path, q, NULL, 0, TEST_API_KEY, secret, expires, &auth));
        if (tamper) {
                char *sig = strstr(auth.data, "signature=") + 10;
                *sig = *sig == 'A' ? 'B' : 'A';
        }
        CHECK(asprintf(&header, "Authorization: %s", auth.data) >= 0);
        char *headers[] = { header, NULL };
        return request_full("GET", T.ports.api, path_and_query, NULL, headers, ret, NULL);
}

static long api_ok(const char *path, json_t **ret) {
        return api_get(path, time(NULL) + 600, TEST_API_SECRET, false, ret);
}

static void test_signatures(void) {
        _cleanup_json_ json_t *j = NULL;
        CHECK(api_ok("/v2/zone", &j) == 200);
        CHECK_STREQ(json_path_string(j, "zones.0.name"), "local");
        json_decref(TAKE_PTR(j));

        CHECK(api_get("/v2/zone", time(NULL) + 600, TEST_API_SECRET, true, &j) == 403);
        CHECK(json_path_string(j, "message"));
        json_decref(TAKE_PTR(j));
        CHECK(api_get("/v2/zone", time(NULL) - 10, TEST_API_SECRET, false, &j) == 403);
        CHECK_STREQ(json_path_string(j, "message"), "request expired");
        json_decref(TAKE_PTR(j));
        CHECK(api_get("/v2/zone", time(NULL) + 600, "wrong-secret", false, NULL) == 403);
        CHECK(request_full("GET", T.ports.api, "/v2/zone", NULL, NULL, NULL, NULL) == 403);
        char *bad[] = { (char *) "Authorization: EXO2-HMAC-SHA256 nonsense", NULL };
        CHECK(request_full("GET", T.ports.api, "/v2/zone", NULL, bad, NULL, NULL) == 403);

        /* the signed query must be the one sent: sign manager-id=a, send manager-id=b */
        _cleanup_buf_ buf auth = BUF_INIT(4096);
        _cleanup_free_ char *header = NULL;
        CHECK_OK(exo_sign("GET", "/v2/instance", "manager-id=a", NULL, 0, TEST_API_KEY, TEST_API_SECRET,
                          time(NULL) + 600, &auth));
        CHECK(asprintf(&header, "Authorization: %s", auth.data) >= 0);
        char *headers[] = { header, NULL };
        CHECK(request_full("GET", T.ports.api, "/v2/instance?manager-id=b", NULL, headers, NULL, NULL) == 403);
}

static void test_listings(void) {
        _cleanup_json_ json_t *j = NULL;

        CHECK(api_ok("/v2/instance/i-1", &j) == 200);
        CHECK_STREQ(json_path_string(j, "id"), "i-1");
        CHECK_STREQ(json_path_string(j, "name"), "etcd-1");
        CHECK_STREQ(json_path_string(j, "state"), "running");
        CHECK_STREQ(json_path_string(j, "public-ip"), "127.0.0.11");
        CHECK_STREQ(json_path_string(j, "manager.id"), TEST_POOL);
        CHECK_STREQ(json_path_string(j, "manager.type"), "instance-pool");
        CHECK_STREQ(json_path_string(j, "private-networks.0.id"), TEST_NET);
        CHECK_STREQ(json_path_string(j, "security-groups.0.name"), "etcd");
        CHECK(strlen(json_path_string(j, "security-groups.0.id")) == 36);
        CHECK_STREQ(json_path_string(j, "labels.role"), "etcd");
        CHECK_STREQ(json_path_string(j, "user-data"), "IyEvYmluL3NoCmVjaG8gaGkK");
        CHECK(json_path_string(j, "created-at"));
        json_decref(TAKE_PTR(j));

        CHECK(api_ok("/v2/instance/i-3", &j) == 200);
        CHECK(!json_object_get(j, "manager"));
        CHECK(json_array_size(json_object_get(j, "private-networks")) == 0);
        json_decref(TAKE_PTR(j));
        CHECK(api_ok("/v2/instance/nope", &j) == 404);
        CHECK(json_path_string(j, "message"));
        json_decref(TAKE_PTR(j));

        CHECK(api_ok("/v2/instance", &j) == 200);
        CHECK(json_array_size(json_object_get(j, "instances")) == 3);
        json_decref(TAKE_PTR(j));
        CHECK(api_ok("/v2/instance?manager-type=instance-pool&manager-id=" TEST_POOL, &j) == 200);
        CHECK(json_array_size(json_object_get(j, "instances")) == 2);
        CHECK_STREQ(json_path_string(j, "instances.0.id"), "i-1");
        CHECK_STREQ(json_path_string(j, "instances.1.id"), "i-2");
        json_decref(TAKE_PTR(j));

        CHECK(api_ok("/v2/instance-pool/" TEST_POOL, &j) == 200);
        CHECK_STREQ(json_path_string(j, "name"), "etcd");
        CHECK(json_array_size(json_object_get(j, "instances")) == 2);
        CHECK_STREQ(json_path_string(j, "instances.1.id"), "i-2");
        CHECK_STREQ(json_path_string(j, "private-networks.0.id"), TEST_NET);
        json_decref(TAKE_PTR(j));
        CHECK(api_ok("/v2/instance-pool", &j) == 200);
        CHECK(json_array_size(json_object_get(j, "instance-pools")) == 1);
        json_decref(TAKE_PTR(j));
        CHECK(api_ok("/v2/instance-pool/nope", NULL) == 404);

        CHECK(api_ok("/v2/private-network/" TEST_NET, &j) == 200);
        CHECK(json_array_size(json_object_get(j, "leases")) == 2);
        CHECK_STREQ(json_path_string(j, "leases.0.instance-id"), "i-1");
        CHECK_STREQ(json_path_string(j, "leases.0.ip"), "10.0.0.11");
        CHECK_STREQ(json_path_string(j, "leases.1.instance-id"), "i-2");
        CHECK_STREQ(json_path_string(j, "leases.1.ip"), "10.0.0.12");
        json_decref(TAKE_PTR(j));
        CHECK(api_ok("/v2/private-network/nope", NULL) == 404);
        CHECK(api_ok("/v2/template", NULL) == 404);
}

static void expect_text(uint16_t port, const char *path, long status, const char *text) {
        _cleanup_free_ char *body = NULL;
        CHECK(request_full("GET", port, path, NULL, NULL, NULL, &body) == status);
        if (text)
                CHECK_STREQ(body, text);
}

static void test_metadata(void) {
        expect_text(T.ports.meta[0], "/latest/meta-data/instance-id", 200, "i-1");
        expect_text(T.ports.meta[1], "/latest/meta-data/instance-id", 200, "i-2");
        expect_text(T.ports.meta[0], "/latest/meta-data/local-ipv4", 200, "10.0.0.11");
        expect_text(T.ports.meta[0], "/latest/meta-data/public-ipv4", 200, "127.0.0.11");
        expect_text(T.ports.meta[0], "/latest/meta-data/availability-zone", 200, "local");
        expect_text(T.ports.meta[0], "/latest/meta-data/local-hostname", 200, "etcd-1");
        expect_text(T.ports.meta[0], "/latest/user-data", 200, "#!/bin/sh\necho hi\n");
        expect_text(T.ports.meta[1], "/latest/user-data", 200, "");
        expect_text(T.ports.meta[0], "/latest/meta-data/nope", 404, NULL);
        expect_text(T.ports.meta[0], "/other", 404, NULL);

        _cleanup_free_ char *index = NULL;
        CHECK(request_full("GET", T.ports.meta[0], "/latest/meta-data/", NULL, NULL, NULL, &index) == 200);
        CHECK(strstr(index, "instance-id\n"));
        CHECK(strstr(index, "local-ipv4\n"));
        CHECK(request_full("POST", T.ports.meta[0], "/latest/user-data", "x", NULL, NULL, NULL) == 405);
}

/* Poll port until path answers with status and (if not NULL) body: the server re-reads
 * cloud.json between requests. */
static void wait_for(uint16_t port, const char *path, long status, const char *body) {
        for (int i = 0; i < 100; i++) {
                _cleanup_free_ char *url = NULL;
                http_response resp = {};
                CHECK(asprintf(&url, "http://127.0.0.1:%u%s", port, path) >= 0);
                http_request req = { .url = url, .timeout_ms = 1000 };
                bool done = http_do(&req, &resp, NULL) >= 0 && resp.status == status &&
                            (!body || streq(resp.body.data, body));
                http_response_free(&resp);
                if (done)
                        return;
                usleep(50 * 1000);
        }
        fprintf(stderr, "port %u %s never answered %ld %s\n", port, path, status, strempty(body));
        exit(1);
}

/* Wait up to 5 s until nothing listens on 127.0.0.1:port any more. */
static void wait_refused(uint16_t port) {
        for (int i = 0; i < 500; i++) {
                struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                CHECK(fd >= 0);
                int r = connect(fd, (struct sockaddr *) &a, sizeof(a));
                int e = errno;
                close(fd);
                if (r < 0 && e == ECONNREFUSED)
                        return;
                usleep(10 * 1000);
        }
        fprintf(stderr, "port %u still accepts connections\n", port);
        exit(1);
}

/* Replacing cloud.json: i-3 leaves and i-4 joins the pool on i-3's old ports; then i-4 moves to
 * new ports, which get listeners, and the old ones are closed. */
static void test_reload(void) {
        _cleanup_json_ json_t *j = NULL;
        uint16_t old_meta = T.ports.meta[2], old_vault = T.ports.vault[2];

        test_server_write_cloud(&T, true);
        wait_for(old_meta, "/latest/meta-data/instance-id", 200, "i-4");
        free(vault_login_as(&T, 2, "i-4"));
        CHECK(api_ok("/v2/private-network/" TEST_NET, &j) == 200);
        CHECK(json_array_size(json_object_get(j, "leases")) == 3);
        json_decref(TAKE_PTR(j));
        CHECK(api_ok("/v2/instance/i-3", NULL) == 404);

        uint16_t fresh[2];
        pick_ports(fresh, 2);
        T.ports.meta[2] = fresh[0];
        T.ports.vault[2] = fresh[1];
        test_server_write_cloud(&T, true);
        wait_for(fresh[0], "/latest/meta-data/instance-id", 200, "i-4");
        free(vault_login_as(&T, 2, "i-4"));
        /* Changed with lib/http-server: the old ports are closed (they answered 404 before). */
        wait_refused(old_meta);
        wait_refused(old_vault);

        /* a broken cloud.json is ignored: the previous state stays */
        _cleanup_free_ char *path = NULL;
        CHECK(asprintf(&path, "%s/cloud.json", T.dir) >= 0);
        CHECK_OK(write_file_atomic(path, "{\"zone\":", 8, 0644, (uid_t) -1, (gid_t) -1));
        usleep(500 * 1000);
        CHECK(api_ok("/v2/instance/i-4", NULL) == 200);
}

int main(void) {
        test_server_setup(&T);
        test_signatures();
        test_listings();
        test_metadata();
        test_reload();
        test_server_teardown(&T);
        return 0;
}
