/* http_server_listen_tls(): TLS, the verified client identity (CN, every O) handed to the
 * handler, and the cases that must not give one: no certificate, another CA's, a certificate
 * without clientAuth usage. Fixtures in tests/unit/lib/tls/ (README there). The client is
 * lib/http.c (libcurl over OpenSSL), so this also checks the two TLS stacks agree. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "check.h"
#include "fs.h"
#include "http-server.h"
#include "http.h"
#include "strv.h"

typedef struct server {
        http_server *h;
        pthread_t thread;
        volatile sig_atomic_t stop;
        int run_result;
} server;

static char fixture_dir[4096];

static char *fixture(const char *name) {
        char path[4200];
        char *data = NULL;
        snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
        CHECK_OK(read_file(path, 1 << 20, &data, NULL));
        return data;
}

static const char *fixture_path(const char *name) {
        static char path[4][4200];
        static int i;
        i = (i + 1) % 4;
        snprintf(path[i], sizeof(path[i]), "%s/%s", fixture_dir, name);
        return path[i];
}

static int handler(const http_server_request *req, http_server_response *resp, void *userdata) {
        _cleanup_free_ char *orgs = req->client_orgs ? strv_join(req->client_orgs, ",") : NULL;
        resp->content_type = "text/plain";
        return http_server_respond(resp, 200, "tls=%d verified=%d rejected=%d cn=%s o=%s", req->tls,
                                   req->client_cert_verified, req->client_cert_rejected,
                                   req->client_cn ? req->client_cn : "-", orgs ? orgs : "-");
}

static void *server_thread(void *userdata) {
        server *s = userdata;
        s->run_result = http_server_run(s->h, &s->stop);
        return NULL;
}

static char *get(int port, const char *cert, const char *key) {
        char url[64];
        http_response resp = {};
        snprintf(url, sizeof(url), "https://127.0.0.1:%d/who", port);
        http_request req = { .url = url, .ca_file = fixture_path("ca.pem"),
                             .cert_file = cert ? fixture_path(cert) : NULL,
                             .key_file = key ? fixture_path(key) : NULL, .timeout_ms = 5000 };
        CHECK_OK(http_do(&req, &resp, NULL));
        CHECK(resp.status == 200);
        char *body = buf_steal(&resp.body);
        http_response_free(&resp);
        return body;
}

static void test_bad_config(void) {
        _cleanup_free_ char *cert = fixture("server.pem");
        _cleanup_free_ char *key = fixture("server.key");
        _cleanup_free_ char *other_key = fixture("alice.key");
        _cleanup_(http_server_freep) http_server *h = NULL;
        CHECK_OK(http_server_new(handler, NULL, &h));
        /* a key that is not the certificate's, no key, a CA that is not PEM */
        CHECK(http_server_listen_tls(h, "127.0.0.1", 0, "t",
                                     &(http_server_tls){ .cert_pem = cert, .key_pem = other_key }) == -EINVAL);
        CHECK(http_server_listen_tls(h, "127.0.0.1", 0, "t", &(http_server_tls){ .cert_pem = cert }) == -EINVAL);
        CHECK(http_server_listen_tls(h, "127.0.0.1", 0, "t",
                                     &(http_server_tls){ .cert_pem = cert, .key_pem = key,
                                                         .client_ca_pem = "garbage" }) == -EINVAL);
}

int main(void) {
        const char *src = getenv("IMGBUILD_SOURCE_DIR");
        snprintf(fixture_dir, sizeof(fixture_dir), "%s/tests/unit/lib/tls", src ? src : ".");
        CHECK_OK(http_global_init());
        signal(SIGPIPE, SIG_IGN);

        test_bad_config();

        _cleanup_free_ char *cert = fixture("server.pem");
        _cleanup_free_ char *key = fixture("server.key");
        _cleanup_free_ char *ca = fixture("ca.pem");
        server s = {};
        CHECK_OK(http_server_new(handler, &s, &s.h));
        int with_ca = http_server_listen_tls(s.h, "127.0.0.1", 0, "ca",
                                             &(http_server_tls){ cert, key, ca });
        CHECK_OK(with_ca);
        int without_ca = http_server_listen_tls(s.h, "127.0.0.1", 0, "plain-tls",
                                                &(http_server_tls){ cert, key, NULL });
        CHECK_OK(without_ca);
        int plain = http_server_listen(s.h, "127.0.0.1", 0, "plain");
        CHECK_OK(plain);
        CHECK(pthread_create(&s.thread, NULL, server_thread, &s) == 0);

        char *b;
        b = get(with_ca, "alice.pem", "alice.key");
        CHECK_STREQ(b, "tls=1 verified=1 rejected=0 cn=alice o=team-a,team-b");
        free(b);
        b = get(with_ca, NULL, NULL);
        CHECK_STREQ(b, "tls=1 verified=0 rejected=0 cn=- o=-");
        free(b);
        b = get(with_ca, "mallory.pem", "mallory.key");
        CHECK_STREQ(b, "tls=1 verified=0 rejected=1 cn=- o=-");
        free(b);
        b = get(with_ca, "alice-server-only.pem", "alice-server-only.key");
        CHECK_STREQ(b, "tls=1 verified=0 rejected=1 cn=- o=-");
        free(b);
        /* without a client CA nothing is asked for, so nothing is verified */
        b = get(without_ca, "alice.pem", "alice.key");
        CHECK_STREQ(b, "tls=1 verified=0 rejected=0 cn=- o=-");
        free(b);

        /* plain HTTP on the same server is unchanged */
        char url[64];
        http_response resp = {};
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/who", plain);
        CHECK_OK(http_do(&(http_request){ .url = url }, &resp, NULL));
        CHECK_STREQ(resp.body.data, "tls=0 verified=0 rejected=0 cn=- o=-");
        http_response_free(&resp);

        /* a plain-HTTP client on the TLS port gets no reply */
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/who", with_ca);
        int r = http_do(&(http_request){ .url = url, .timeout_ms = 3000 }, &resp, NULL);
        CHECK(r < 0 || resp.status != 200);
        http_response_free(&resp);

        s.stop = 1;
        CHECK(pthread_join(s.thread, NULL) == 0);
        CHECK_OK(s.run_result);
        http_server_free(s.h);
        return 0;
}
