/* kube-client against loopback servers: the project's HTTP server (lib/http-server.h, in a
 * thread) for requests, content types, credentials, Status errors, the reply cap and whole
 * watch bodies; a raw socket server for a chunked watch stream whose events are split across
 * chunks and must reach the callback before the stream goes on; openssl s_server for the CA
 * and client certificate given as PEM text. The watch decoder is also fed directly, split at
 * every byte. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "http.h"
#include "http-server.h"
#include "kube-client.h"
#include "strv.h"

#define TOKEN "abcdef.0123456789abcdef"

typedef struct server {
        http_server *h;
        pthread_t thread;
        volatile sig_atomic_t stop;
        int run_result;
        uint16_t port;
} server;

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static int status_reply(http_server_response *resp, int code, const char *reason, const char *message) {
        return http_server_respond(resp, code,
                                   "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                                   "\"status\":\"Failure\",\"message\":\"%s\",\"reason\":\"%s\",\"code\":%d}",
                                   message, reason, code);
}

static int handler(const http_server_request *req, http_server_response *resp, void *userdata) {
        (void) userdata;
        const char *auth = http_server_request_header(req, "authorization");
        const char *ct = http_server_request_header(req, "content-type");
        const char *accept = http_server_request_header(req, "accept");
        const char *ua = http_server_request_header(req, "user-agent");

        if (streq(req->path, "/echo")) {
                _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s#}", "method", req->method,
                                                     "query", req->query, "auth", auth ? auth : "-", "ct",
                                                     ct ? ct : "-", "accept", accept ? accept : "-", "ua",
                                                     ua ? ua : "-", "body", req->body, (int) req->body_len);
                CHECK(j);
                _cleanup_free_ char *text = json_dump_compact(j);
                return buf_puts(&resp->body, text);
        }
        if (streq(req->path, "/api/v1/namespaces/x/configmaps/y"))
                return status_reply(resp, 404, "NotFound", "configmaps \\\"y\\\" not found");
        if (streq(req->path, "/exists"))
                return status_reply(resp, 409, "AlreadyExists", "secrets \\\"bootstrap-token-abcdef\\\" already exists");
        if (streq(req->path, "/conflict"))
                return status_reply(resp, 409, "Conflict", "the object has been modified");
        if (streq(req->path, "/forbidden"))
                return status_reply(resp, 403, "Forbidden", "nodes is forbidden: User \\\"system:anonymous\\\" cannot list");
        if (streq(req->path, "/unauthorized"))
                return status_reply(resp, 401, "Unauthorized", "Unauthorized");
        if (streq(req->path, "/evict"))
                return http_server_respond(resp, 429,
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
                        "\"message\":\"Cannot evict pod as it would violate the pod's disruption budget.\","
                        "\"reason\":\"TooManyRequests\",\"details\":{\"causes\":[{\"reason\":\"DisruptionBudget\","
                        "\"message\":\"The disruption budget pdb needs 2 healthy pods and has 2 currently\"}]},"
                        "\"code\":429}");
        if (streq(req->path, "/invalid"))
                return http_server_respond(resp, 422,
                        "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Invalid\","
                        "\"message\":\"Node \\\"N\\\" is invalid\",\"details\":{\"causes\":["
                        "{\"field\":\"metadata.name\",\"message\":\"a lowercase RFC 1123 subdomain\"},"
                        "{\"field\":\"spec.a\",\"reason\":\"FieldValueRequired\"},{\"message\":\"three\"},"
                        "{\"message\":\"four\"},{\"message\":\"five\"}]},\"code\":422}");
        if (streq(req->path, "/html")) {
                resp->content_type = "text/html";
                resp->status = 502;
                return buf_puts(&resp->body, "<html>\n\x1b[31mBad gateway</html>");
        }
        if (streq(req->path, "/notjson")) {
                resp->content_type = "text/plain";
                return buf_puts(&resp->body, "ok");
        }
        if (streq(req->path, "/readyz")) {
                resp->content_type = "text/plain";
                return buf_puts(&resp->body, "ok");
        }
        if (streq(req->path, "/empty")) {
                resp->status = 200;
                return 0;
        }
        if (streq(req->path, "/big")) {
                CHECK(buf_puts(&resp->body, "{\"a\":\"") == 0);
                for (int i = 0; i < 100; i++)
                        CHECK(buf_puts(&resp->body, "0123456789abcdef0123456789abcdef") == 0);
                return buf_puts(&resp->body, "\"}");
        }
        if (streq(req->path, "/api/v1/nodes")) {
                /* a watch sent whole (MHD buffers): what the query carried, then the events */
                _cleanup_free_ char *watch = http_server_query_param(req, "watch");
                _cleanup_free_ char *rv = http_server_query_param(req, "resourceVersion");
                _cleanup_free_ char *bm = http_server_query_param(req, "allowWatchBookmarks");
                _cleanup_free_ char *to = http_server_query_param(req, "timeoutSeconds");
                _cleanup_free_ char *fs = http_server_query_param(req, "fieldSelector");
                CHECK_STREQ(watch, "true");
                CHECK_STREQ(bm, "true");
                CHECK_STREQ(auth, "Bearer " TOKEN);
                if (rv && streq(rv, "1"))
                        return status_reply(resp, 410, "Expired", "too old resource version: 1 (2)");
                if (rv && streq(rv, "err"))
                        return buf_puts(&resp->body,
                                        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"11\"}}}\n"
                                        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"status\":\"Failure\","
                                        "\"message\":\"too old resource version: 5 (9)\",\"reason\":\"Expired\",\"code\":410}}\n");
                if (rv && streq(rv, "garbage"))
                        return buf_puts(&resp->body, "{\"type\":\"ADDED\",\"object\":{}}\nnot json\n");
                if (rv && streq(rv, "cut"))
                        return buf_puts(&resp->body, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}\n{\"type\":\"AD");
                if (rv && streq(rv, "big")) {
                        CHECK(buf_puts(&resp->body, "{\"type\":\"ADDED\",\"object\":{\"x\":\"") == 0);
                        for (int i = 0; i < 100; i++)
                                CHECK(buf_puts(&resp->body, "0123456789abcdef0123456789abcdef") == 0);
                        return buf_puts(&resp->body, "\"}}\n");
                }
                CHECK_STREQ(to, "7");
                CHECK_STREQ(rv, "5");
                CHECK_STREQ(fs, "metadata.name=n1");
                return buf_puts(&resp->body,
                                "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"6\"}}}\n"
                                "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"7\"}}}\n"
                                "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Node\",\"metadata\":{\"resourceVersion\":\"9\"}}}\n");
        }
        return status_reply(resp, 404, "NotFound", "the server could not find the requested resource");
}

static void *server_thread(void *userdata) {
        server *s = userdata;
        s->run_result = http_server_run(s->h, &s->stop);
        return NULL;
}

static void server_start(server *s) {
        CHECK_OK(http_server_new(handler, s, &s->h));
        int r = http_server_listen(s->h, "127.0.0.1", 0, "test");
        CHECK_OK(r);
        s->port = (uint16_t) r;
        CHECK(pthread_create(&s->thread, NULL, server_thread, s) == 0);
}

static void server_stop(server *s) {
        s->stop = 1;
        CHECK(pthread_join(s->thread, NULL) == 0);
        CHECK_OK(s->run_result);
        http_server_free(s->h);
}

static kube_client *client(const server *s, const char *token, size_t max_reply) {
        char u[64];
        kube_client *k = NULL;
        snprintf(u, sizeof(u), "http://127.0.0.1:%u/", s->port);
        kube_client_config cfg = { .server = u, .token = token, .max_reply = max_reply };
        CHECK_OK(kube_client_new(&cfg, &k, NULL));
        return k;
}

static void check_config_bad(const kube_client_config *cfg, const char *why) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        kube_client *k = NULL;
        CHECK(kube_client_new(cfg, &k, &err) == -EINVAL);
        CHECK(!k);
        CHECK(strstr(strempty(err.data), why));
}

static void test_config(void) {
        kube_client *k = NULL;

        check_config_bad(&(kube_client_config){ 0 }, "no server URL");
        check_config_bad(&(kube_client_config){ .server = "ftp://x" }, "not http:// or https://");
        check_config_bad(&(kube_client_config){ .server = "https://x", .cert_file = "/c" }, "given together");
        check_config_bad(&(kube_client_config){ .server = "https://x", .key_pem = "k" }, "given together");
        check_config_bad(&(kube_client_config){ .server = "https://x", .token = "a b" }, "cannot go in a header");
        check_config_bad(&(kube_client_config){ .server = "https://x", .token = "a\r\nX-Evil: 1" },
                         "cannot go in a header");
        check_config_bad(&(kube_client_config){ .server = "https://x", .token = "" }, "empty bearer token");
        check_config_bad(&(kube_client_config){ .server = "https://x", .token = TOKEN, .tls_no_verify = true },
                         "never sent to an unverified server");
        check_config_bad(&(kube_client_config){ .server = "https://x", .cert_pem = "c", .key_pem = "k",
                                                .tls_no_verify = true },
                         "never sent to an unverified server");
        check_config_bad(&(kube_client_config){ .server = "http://10.0.0.1:6443", .token = TOKEN },
                         "only to loopback");
        check_config_bad(&(kube_client_config){ .server = "http://127.0.0.1.evil:80", .token = TOKEN },
                         "only to loopback");
        check_config_bad(&(kube_client_config){ .server = "http://localhost.evil", .token = TOKEN },
                         "only to loopback");

        static const char *const loopback[] = { "http://127.0.0.1:6443", "http://localhost", "http://[::1]:80/",
                                                "http://127.1.2.3/" };
        for (size_t i = 0; i < ELEMENTSOF(loopback); i++) {
                CHECK_OK(kube_client_new(&(kube_client_config){ .server = loopback[i], .token = TOKEN }, &k, NULL));
                kube_client_free(k);
        }
        CHECK_OK(kube_client_new(&(kube_client_config){ .server = "https://10.0.0.1:6443//", .token = TOKEN }, &k,
                                 NULL));
        CHECK_STREQ(kube_client_server(k), "https://10.0.0.1:6443");
        kube_client_free(k);
        /* discovery: no credentials, no verification */
        CHECK_OK(kube_client_new(&(kube_client_config){ .server = "https://10.0.0.1:6443", .tls_no_verify = true },
                                 &k, NULL));
        kube_client_free(k);
        kube_client_free(NULL);

        CHECK_STREQ(kube_patch_content_type(KUBE_PATCH_MERGE), "application/merge-patch+json");
        CHECK_STREQ(kube_patch_content_type(KUBE_PATCH_STRATEGIC), "application/strategic-merge-patch+json");
        CHECK_STREQ(kube_patch_content_type(KUBE_PATCH_JSON), "application/json-patch+json");
        CHECK(!kube_patch_content_type((kube_patch_type) 42));
}

static void test_requests(server *s) {
        _cleanup_(kube_client_freep) kube_client *k = client(s, TOKEN, 0);
        _cleanup_(kube_client_freep) kube_client *anon = client(s, NULL, 0);
        _cleanup_json_ json_t *body = json_pack("{s:{s:b}}", "spec", "unschedulable", 1);
        json_t *r = NULL;

        CHECK_OK(kube_get(k, "/echo?limit=500", &r, NULL));
        CHECK_STREQ(json_path_string(r, "method"), "GET");
        CHECK_STREQ(json_path_string(r, "query"), "limit=500");
        CHECK_STREQ(json_path_string(r, "auth"), "Bearer " TOKEN);
        CHECK_STREQ(json_path_string(r, "accept"), "application/json");
        CHECK_STREQ(json_path_string(r, "ua"), "imgbuild-kube-client");
        CHECK_STREQ(json_path_string(r, "ct"), "-");
        CHECK_STREQ(json_path_string(r, "body"), "");
        json_decref(r);

        CHECK_OK(kube_get(anon, "/echo", &r, NULL));
        CHECK_STREQ(json_path_string(r, "auth"), "-");
        json_decref(r);

        CHECK_OK(kube_post(k, "/echo", body, &r, NULL));
        CHECK_STREQ(json_path_string(r, "method"), "POST");
        CHECK_STREQ(json_path_string(r, "ct"), "application/json");
        CHECK_STREQ(json_path_string(r, "body"), "{\"spec\":{\"unschedulable\":true}}");
        json_decref(r);

        CHECK_OK(kube_put(k, "/echo", body, &r, NULL));
        CHECK_STREQ(json_path_string(r, "method"), "PUT");
        CHECK_STREQ(json_path_string(r, "ct"), "application/json");
        json_decref(r);

        static const struct {
                kube_patch_type type;
                const char *ct;
        } patches[] = {
                { KUBE_PATCH_MERGE, "application/merge-patch+json" },
                { KUBE_PATCH_STRATEGIC, "application/strategic-merge-patch+json" },
                { KUBE_PATCH_JSON, "application/json-patch+json" },
        };
        for (size_t i = 0; i < ELEMENTSOF(patches); i++) {
                CHECK_OK(kube_patch(k, "/echo", patches[i].type, body, &r, NULL));
                CHECK_STREQ(json_path_string(r, "method"), "PATCH");
                CHECK_STREQ(json_path_string(r, "ct"), patches[i].ct);
                CHECK_STREQ(json_path_string(r, "body"), "{\"spec\":{\"unschedulable\":true}}");
                json_decref(r);
        }
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK(kube_patch(k, "/echo", KUBE_PATCH_MERGE, NULL, &r, &err) == -EINVAL);
        CHECK(kube_patch(k, "/echo", (kube_patch_type) 9, body, &r, &err) == -EINVAL);

        CHECK_OK(kube_delete(k, "/echo", NULL, &r, NULL));
        CHECK_STREQ(json_path_string(r, "method"), "DELETE");
        CHECK_STREQ(json_path_string(r, "ct"), "-");
        json_decref(r);

        /* the reply may be dropped; an empty 2xx body is null */
        CHECK_OK(kube_get(k, "/echo", NULL, NULL));
        CHECK_OK(kube_get(k, "/empty", &r, NULL));
        CHECK(json_is_null(r));
        json_decref(r);

        /* text replies */
        char *text = NULL;
        CHECK_OK(kube_get_text(k, "/readyz", &text, NULL));
        CHECK_STREQ(text, "ok");
        free(text);
        text = NULL;
        CHECK(kube_get_text(k, "/nope", &text, &err) == -ENOENT);
        CHECK(!text);

        /* a path must be absolute */
        buf_clear(&err);
        CHECK(kube_get(k, "api/v1", &r, &err) == -EINVAL);
        CHECK(strstr(err.data, "does not start with '/'"));
}

static void check_error(kube_client *k, const char *path, int expected, const char *message) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *want = NULL;
        json_t *r = NULL;
        CHECK(kube_get(k, path, &r, &err) == expected);
        CHECK(!r);
        CHECK(asprintf(&want, "GET %s%s: %s", kube_client_server(k), path, message) > 0);
        CHECK_STREQ(err.data, want);
}

static void test_status_errors(server *s) {
        _cleanup_(kube_client_freep) kube_client *k = client(s, TOKEN, 0);

        check_error(k, "/api/v1/namespaces/x/configmaps/y", -ENOENT, "HTTP 404 NotFound: configmaps \"y\" not found");
        check_error(k, "/exists", -EEXIST,
                    "HTTP 409 AlreadyExists: secrets \"bootstrap-token-abcdef\" already exists");
        check_error(k, "/conflict", -ESTALE, "HTTP 409 Conflict: the object has been modified");
        check_error(k, "/forbidden", -EACCES,
                    "HTTP 403 Forbidden: nodes is forbidden: User \"system:anonymous\" cannot list");
        check_error(k, "/unauthorized", -EKEYREJECTED, "HTTP 401 Unauthorized: Unauthorized");
        check_error(k, "/evict", -EBUSY,
                    "HTTP 429 TooManyRequests: Cannot evict pod as it would violate the pod's disruption budget. "
                    "(causes: The disruption budget pdb needs 2 healthy pods and has 2 currently)");
        check_error(k, "/invalid", -EINVAL,
                    "HTTP 422 Invalid: Node \"N\" is invalid (causes: metadata.name: a lowercase RFC 1123 "
                    "subdomain; spec.a: FieldValueRequired; three and 2 more)");
        /* not a Status: quoted, control characters replaced; not retried by default */
        check_error(k, "/html", -EIO, "HTTP 502: \"<html>??[31mBad gateway</html>\"");
        /* a 2xx that is not JSON */
        _cleanup_buf_ buf err = BUF_INIT(1024);
        json_t *r = NULL;
        CHECK(kube_get(k, "/notjson", &r, &err) == -EBADMSG);
        CHECK(strstr(err.data, "/notjson: HTTP 200 reply is not JSON: line 1"));
        /* the token is in no message */
        CHECK(!strstr(err.data, TOKEN));

        /* the mapping itself */
        CHECK(kube_status_errno(200, NULL) == 0);
        CHECK(kube_status_errno(201, "Created") == 0);
        CHECK(kube_status_errno(400, "BadRequest") == -EBADR);
        CHECK(kube_status_errno(405, NULL) == -EOPNOTSUPP);
        CHECK(kube_status_errno(410, "Expired") == -ETIME);
        CHECK(kube_status_errno(413, NULL) == -E2BIG);
        CHECK(kube_status_errno(415, NULL) == -EPROTONOSUPPORT);
        CHECK(kube_status_errno(503, NULL) == -EIO);
        CHECK(kube_status_errno(302, NULL) == -EPROTO);
        CHECK(kube_status_errno(0, NULL) == -EPROTO);
}

static void test_cap(server *s) {
        _cleanup_(kube_client_freep) kube_client *small = client(s, NULL, 1000);
        _cleanup_(kube_client_freep) kube_client *k = client(s, NULL, 0);
        _cleanup_buf_ buf err = BUF_INIT(1024);
        json_t *r = NULL;

        CHECK_OK(kube_get(k, "/big", &r, NULL));
        CHECK(strlen(json_path_string(r, "a")) == 3200);
        json_decref(r);
        r = NULL;
        CHECK(kube_get(small, "/big", &r, &err) == -ENOBUFS);
        CHECK(!r);
        CHECK(strstr(err.data, "/big: response body larger than 1000 bytes"));
}

typedef struct seen {
        char **events;           /* "TYPE name rv" */
        int stop_after;          /* return 2 after this many events; 0: never */
        atomic_int count;
} seen;

static int collect(const char *type, json_t *object, void *userdata) {
        seen *s = userdata;
        const char *name = json_path_string(object, "metadata.name");
        const char *rv = json_path_string(object, "metadata.resourceVersion");
        CHECK(strv_pushf(&s->events, "%s %s %s", type, name ? name : "-", rv ? rv : "-") == 0);
        int n = atomic_fetch_add(&s->count, 1) + 1;
        return s->stop_after > 0 && n >= s->stop_after ? 2 : 0;
}

static void test_watch_whole(server *s) {
        _cleanup_(kube_client_freep) kube_client *k = client(s, TOKEN, 0);
        _cleanup_(kube_client_freep) kube_client *small = client(s, TOKEN, 1000);
        _cleanup_buf_ buf err = BUF_INIT(4096);
        seen got = { 0 };
        char *rv = strdup("5");
        CHECK(rv);

        CHECK(kube_watch(k, "/api/v1/nodes?fieldSelector=metadata.name%3Dn1", &rv, 7, collect, &got, &err) == 0);
        _cleanup_free_ char *joined = strv_join(got.events, "|");
        CHECK_STREQ(joined, "ADDED n1 6|MODIFIED n1 7|BOOKMARK - 9");
        CHECK_STREQ(rv, "9"); /* the bookmark moves it on too */
        strv_free(got.events);

        /* the callback stops it; rv is where it stopped */
        free(rv);
        rv = strdup("5");
        got = (seen){ .stop_after = 1 };
        CHECK(kube_watch(k, "/api/v1/nodes?fieldSelector=metadata.name%3Dn1", &rv, 7, collect, &got, &err) == 2);
        CHECK(strv_length(got.events) == 1);
        CHECK_STREQ(rv, "6");
        strv_free(got.events);
        got = (seen){ 0 };

        /* 410 before the stream: list again */
        free(rv);
        rv = strdup("1");
        CHECK(kube_watch(k, "/api/v1/nodes", &rv, 0, collect, &got, &err) == -ETIME);
        CHECK(strstr(err.data, "GET http://127.0.0.1:"));
        CHECK(strstr(err.data, "/api/v1/nodes?watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=1: "
                               "HTTP 410 Expired: too old resource version: 1 (2)"));
        CHECK_STREQ(rv, "1");
        CHECK(!got.events);
        buf_clear(&err);

        /* an ERROR event in the stream, after an event */
        free(rv);
        rv = strdup("err");
        CHECK(kube_watch(k, "/api/v1/nodes", &rv, 0, collect, &got, &err) == -ETIME);
        CHECK(strstr(err.data, "watch ERROR event: HTTP 410 Expired: too old resource version: 5 (9)"));
        CHECK_STREQ(rv, "11");
        CHECK(strv_length(got.events) == 1);
        strv_free(got.events);
        got = (seen){ 0 };
        buf_clear(&err);

        /* not a stream of events; a stream cut inside an event; an event over the cap */
        free(rv);
        rv = strdup("garbage");
        CHECK(kube_watch(k, "/api/v1/nodes", &rv, 0, collect, &got, &err) == -EBADMSG);
        CHECK(strstr(err.data, "expected '{' between events, got byte 0x6e"));
        strv_free(got.events);
        got = (seen){ 0 };
        buf_clear(&err);
        free(rv);
        rv = strdup("cut");
        CHECK(kube_watch(k, "/api/v1/nodes", &rv, 0, collect, &got, &err) == -EBADMSG);
        CHECK(strstr(err.data, "watch stream ended inside an event"));
        CHECK_STREQ(rv, "12");
        strv_free(got.events);
        got = (seen){ 0 };
        buf_clear(&err);
        free(rv);
        rv = strdup("big");
        CHECK(kube_watch(small, "/api/v1/nodes", &rv, 0, collect, &got, &err) == -ENOBUFS);
        CHECK(strstr(err.data, "event larger than 1000 bytes"));
        CHECK(!got.events);
        free(rv);
}

/* ---- a chunked watch stream from a raw socket ---- */

typedef struct raw_server {
        int fd;
        uint16_t port;
        pthread_t thread;
        seen *seen;
        char request[4096];
        bool ordered; /* the first event reached the callback before the second was sent */
} raw_server;

static void send_all(int fd, const char *s, size_t n) {
        while (n > 0) {
                ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
                CHECK(w > 0);
                s += w;
                n -= (size_t) w;
        }
}

static void send_chunk(int fd, const char *s) {
        char head[32];
        snprintf(head, sizeof(head), "%zx\r\n", strlen(s));
        send_all(fd, head, strlen(head));
        send_all(fd, s, strlen(s));
        send_all(fd, "\r\n", 2);
}

static void *raw_thread(void *userdata) {
        raw_server *r = userdata;
        int c = accept4(r->fd, NULL, NULL, SOCK_CLOEXEC);
        CHECK(c >= 0);
        size_t len = 0;
        while (!strstr(r->request, "\r\n\r\n")) {
                ssize_t n = recv(c, r->request + len, sizeof(r->request) - 1 - len, 0);
                CHECK(n > 0);
                len += (size_t) n;
                r->request[len] = 0;
        }
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n";
        send_all(c, head, strlen(head));
        /* event 1 split inside a string holding braces and an escaped quote */
        send_chunk(c, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a}\\\"{");
        sleep_ms(30);
        send_chunk(c, "b\",\"resourceVersion\":\"21\"}}}\n{\"type\":\"MODI");
        /* the first event is delivered before the rest of the stream exists */
        for (int i = 0; i < 500 && atomic_load(&r->seen->count) < 1; i++)
                sleep_ms(10);
        r->ordered = atomic_load(&r->seen->count) == 1;
        send_chunk(c, "FIED\",\"object\":{\"metadata\":{\"name\":\"[x]\",\"resourceVersion\":\"22\"}}}");
        send_chunk(c, "\r\n\n  ");
        send_all(c, "0\r\n\r\n", 5);
        close(c);
        return NULL;
}

static void test_watch_stream(void) {
        raw_server r = { .seen = &(seen){ 0 } };
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t sl = sizeof(sa);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        r.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(r.fd >= 0);
        CHECK(bind(r.fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        CHECK(listen(r.fd, 4) == 0);
        CHECK(getsockname(r.fd, (struct sockaddr *) &sa, &sl) == 0);
        r.port = ntohs(sa.sin_port);
        CHECK(pthread_create(&r.thread, NULL, raw_thread, &r) == 0);

        char u[64];
        snprintf(u, sizeof(u), "http://127.0.0.1:%u", r.port);
        _cleanup_(kube_client_freep) kube_client *k = NULL;
        CHECK_OK(kube_client_new(&(kube_client_config){ .server = u, .token = TOKEN }, &k, NULL));
        _cleanup_buf_ buf err = BUF_INIT(1024);
        char *rv = NULL; /* no resourceVersion: none in the query */
        CHECK(kube_watch(k, "/apis/certificates.k8s.io/v1/certificatesigningrequests", &rv, 60, collect, r.seen,
                         &err) == 0);
        CHECK(pthread_join(r.thread, NULL) == 0);
        close(r.fd);
        CHECK(r.ordered);
        _cleanup_free_ char *joined = strv_join(r.seen->events, "|");
        CHECK_STREQ(joined, "ADDED a}\"{b 21|MODIFIED [x] 22");
        CHECK_STREQ(rv, "22");
        CHECK(startswith(r.request, "GET /apis/certificates.k8s.io/v1/certificatesigningrequests?watch=true&"
                                    "allowWatchBookmarks=true&timeoutSeconds=60 HTTP/1.1\r\n"));
        CHECK(strstr(r.request, "\r\nAuthorization: Bearer " TOKEN "\r\n"));
        free(rv);
        strv_free(r.seen->events);
}

/* ---- the decoder, split everywhere ---- */

static const char stream[] =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"q\\\\\",\"resourceVersion\":\"1\"},\"l\":[{},[]]}}\n"
        "\r\n\t {\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"\\u007b\",\"resourceVersion\":\"2\"}}}"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"3\"}}}\n";

static void feed_split(size_t a, size_t b) {
        kube_watch_decoder d;
        seen got = { 0 };
        size_t n = strlen(stream);
        kube_watch_decoder_init(&d, 0);
        CHECK(kube_watch_decoder_feed(&d, stream, a, collect, &got, NULL) == 0);
        CHECK(kube_watch_decoder_feed(&d, stream + a, b - a, collect, &got, NULL) == 0);
        CHECK(kube_watch_decoder_feed(&d, stream + b, n - b, collect, &got, NULL) == 0);
        CHECK(kube_watch_decoder_idle(&d));
        _cleanup_free_ char *joined = strv_join(got.events, "|");
        CHECK_STREQ(joined, "ADDED q\\ 1|DELETED { 2|BOOKMARK - 3");
        CHECK_STREQ(d.resource_version, "3");
        strv_free(got.events);
        kube_watch_decoder_done(&d);
}

static void check_decoder_bad(const char *s, int expected, const char *why) {
        kube_watch_decoder d;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        kube_watch_decoder_init(&d, 100);
        CHECK(kube_watch_decoder_feed(&d, s, strlen(s), NULL, NULL, &err) == expected);
        CHECK(strstr(strempty(err.data), why));
        kube_watch_decoder_done(&d);
}

static void test_decoder(void) {
        size_t n = strlen(stream);
        for (size_t a = 0; a <= n; a++)
                feed_split(a, a);
        for (size_t a = 0; a <= n; a += 7)
                for (size_t b = a; b <= n; b += 5)
                        feed_split(a, b);

        /* one byte at a time, and not idle inside an event */
        kube_watch_decoder d;
        seen got = { 0 };
        kube_watch_decoder_init(&d, 0);
        for (size_t i = 0; i < n; i++) {
                CHECK(kube_watch_decoder_feed(&d, stream + i, 1, collect, &got, NULL) == 0);
                if (i == 5)
                        CHECK(!kube_watch_decoder_idle(&d));
        }
        CHECK(kube_watch_decoder_idle(&d));
        CHECK(strv_length(got.events) == 3);
        strv_free(got.events);
        kube_watch_decoder_done(&d);

        check_decoder_bad("[1]", -EBADMSG, "expected '{' between events, got byte 0x5b");
        check_decoder_bad("{\"type\":1,\"object\":{}}", -EBADMSG, "without a string \"type\"");
        check_decoder_bad("{\"type\":\"ADDED\",\"object\":[]}", -EBADMSG, "an object \"object\"");
        check_decoder_bad("{\"type\":\"ADDED\"}", -EBADMSG, "an object \"object\"");
        check_decoder_bad("{\"a\":1 2}", -EBADMSG, "event is not JSON");
        check_decoder_bad("{\"a\":\"0123456789012345678901234567890123456789012345678901234567890123"
                          "0123456789012345678901234567890123456789012345678901234567890123\"}", -ENOBUFS,
                          "event larger than 100 bytes");
        check_decoder_bad("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":403,\"reason\":\"Forbidden\"}}",
                          -EACCES, "watch ERROR event: HTTP 403 Forbidden");
        check_decoder_bad("{\"type\":\"ERROR\",\"object\":{}}", -EIO, "watch ERROR event: HTTP 500");

        /* nesting is bounded before jansson sees it */
        _cleanup_free_ char *deep = malloc(2000);
        CHECK(deep);
        memset(deep, '[', 1999);
        deep[0] = '{';
        deep[1999] = 0;
        kube_watch_decoder_init(&d, 0);
        CHECK(kube_watch_decoder_feed(&d, deep, strlen(deep), NULL, NULL, NULL) == -EBADMSG);
        kube_watch_decoder_done(&d);

        /* a callback's own non-zero return ends feeding */
        got = (seen){ .stop_after = 2 };
        kube_watch_decoder_init(&d, 0);
        CHECK(kube_watch_decoder_feed(&d, stream, n, collect, &got, NULL) == 2);
        CHECK_STREQ(d.resource_version, "2");
        strv_free(got.events);
        kube_watch_decoder_done(&d);
}

/* ---- TLS: CA and client certificate as PEM text, against openssl s_server ---- */

static char tls_dir[] = "/tmp/test-kube-client-tls.XXXXXX";
static const char *const tls_files[] = { "ca.key", "ca.pem", "ca.srl", "server.key", "server.csr",
                                         "server.pem", "client.key", "client.csr", "client.pem",
                                         "san.ext" };

static void tls_cleanup(void) {
        char path[128];
        for (size_t i = 0; i < ELEMENTSOF(tls_files); i++) {
                snprintf(path, sizeof(path), "%s/%s", tls_dir, tls_files[i]);
                unlink(path);
        }
        rmdir(tls_dir);
}

static pid_t spawn(const char *const argv[]) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || chdir(tls_dir) < 0 ||
                    prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        _exit(127);
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        return pid;
}

static void run(const char *const argv[]) {
        int status;
        pid_t pid = spawn(argv);
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char *slurp(const char *name) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", tls_dir, name);
        FILE *f = fopen(path, "re");
        CHECK(f);
        char *s = calloc(1, 65536);
        CHECK(s);
        size_t n = fread(s, 1, 65535, f);
        CHECK(n > 0);
        fclose(f);
        return s;
}

static void make_cert(const char *name, const char *cn) {
        char key[32], csr[32], pem[32], subj[64];
        snprintf(key, sizeof(key), "%s.key", name);
        snprintf(csr, sizeof(csr), "%s.csr", name);
        snprintf(pem, sizeof(pem), "%s.pem", name);
        snprintf(subj, sizeof(subj), "/CN=%s", cn);
        run((const char *[]){ "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", csr, "-subj", subj, NULL });
        run((const char *[]){ "openssl", "x509", "-req", "-in", csr, "-CA", "ca.pem", "-CAkey", "ca.key",
                        "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", pem, NULL });
}

static uint16_t unused_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t len = sizeof(sa);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        CHECK(getsockname(fd, (struct sockaddr *) &sa, &len) == 0);
        close(fd);
        return ntohs(sa.sin_port);
}

static void test_tls(void) {
        char path[128], port_arg[32], u[64];

        CHECK(mkdtemp(tls_dir));
        CHECK(atexit(tls_cleanup) == 0);
        snprintf(path, sizeof(path), "%s/san.ext", tls_dir);
        FILE *f = fopen(path, "we");
        CHECK(f);
        fputs("subjectAltName=IP:127.0.0.1\n", f);
        CHECK(fclose(f) == 0);
        run((const char *[]){ "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                        "-days", "1", "-subj", "/CN=test-ca", NULL });
        make_cert("server", "127.0.0.1");
        make_cert("client", "system:node:n1");
        _cleanup_free_ char *ca = slurp("ca.pem"), *cert = slurp("client.pem");
        _cleanup_secret_ char *key = slurp("client.key");

        uint16_t port = unused_port();
        snprintf(port_arg, sizeof(port_arg), "127.0.0.1:%u", port);
        /* -Verify: a client certificate signed by the CA is required */
        pid_t s_server = spawn((const char *[]){ "openssl", "s_server", "-accept", port_arg, "-cert", "server.pem",
                                         "-key", "server.key", "-CAfile", "ca.pem", "-Verify", "1", "-www",
                                         "-quiet", NULL });
        snprintf(u, sizeof(u), "https://127.0.0.1:%u", port);

        kube_client *k = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        char *text = NULL;
        /* CA and client certificate from memory; retried while s_server starts */
        CHECK_OK(kube_client_new(&(kube_client_config){ .server = u, .ca_pem = ca, .cert_pem = cert, .key_pem = key,
                                                        .attempts = 100, .deadline_ms = 10000 },
                                 &k, NULL));
        CHECK_OK(kube_get_text(k, "/", &text, &err));
        CHECK(strstr(text, "s_server"));
        free(text);
        text = NULL;
        kube_client_free(k);

        /* trusting another certificate (not the server's issuer): not trusted */
        CHECK_OK(kube_client_new(&(kube_client_config){ .server = u, .ca_pem = cert, .cert_pem = cert,
                                                        .key_pem = key },
                                 &k, NULL));
        CHECK(kube_get_text(k, "/", &text, &err) == -EIO);
        CHECK(strstr(err.data, u));
        kube_client_free(k);

        /* without a client certificate the handshake fails, even unverified */
        CHECK_OK(kube_client_new(&(kube_client_config){ .server = u, .tls_no_verify = true }, &k, NULL));
        CHECK(kube_get_text(k, "/", &text, &err) < 0);
        CHECK(!text);
        kube_client_free(k);
        CHECK(kill(s_server, SIGTERM) == 0);
        CHECK(waitpid(s_server, NULL, 0) == s_server);

        /* a server that asks for no client certificate: reachable unverified, not verified */
        port = unused_port();
        snprintf(port_arg, sizeof(port_arg), "127.0.0.1:%u", port);
        snprintf(u, sizeof(u), "https://127.0.0.1:%u", port);
        s_server = spawn((const char *[]){ "openssl", "s_server", "-accept", port_arg, "-cert", "server.pem", "-key",
                                   "server.key", "-www", "-quiet", NULL });
        CHECK_OK(kube_client_new(&(kube_client_config){ .server = u, .tls_no_verify = true, .attempts = 100,
                                                        .deadline_ms = 10000 },
                                 &k, NULL));
        CHECK_OK(kube_get_text(k, "/", &text, &err));
        CHECK(strstr(text, "s_server"));
        free(text);
        kube_client_free(k);
        CHECK_OK(kube_client_new(&(kube_client_config){ .server = u }, &k, NULL));
        CHECK(kube_get_text(k, "/", &text, &err) == -EIO);
        kube_client_free(k);
        CHECK(kill(s_server, SIGTERM) == 0);
        CHECK(waitpid(s_server, NULL, 0) == s_server);
}

int main(void) {
        server s = { 0 };

        signal(SIGPIPE, SIG_IGN);
        CHECK_OK(http_global_init());
        test_config();
        test_decoder();
        server_start(&s);
        test_requests(&s);
        test_status_errors(&s);
        test_cap(&s);
        test_watch_whole(&s);
        server_stop(&s);
        test_watch_stream();
        if (access("/usr/bin/openssl", X_OK) == 0)
                test_tls();
        else
                fprintf(stderr, "openssl not found: TLS part skipped\n");
        return 0;
}
