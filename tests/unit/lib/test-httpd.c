/* httpd: the request head parser directly, then a real server on 127.0.0.1 driven by a thread,
 * spoken to over raw sockets so malformed and slow clients can be played. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "check.h"
#include "httpd.h"
#include "strv.h"

/* ---- parser ---- */

static int parse(const char *head, httpd_request_head *h) {
        return httpd_parse_request_head(head, strlen(head), h);
}

static void test_parse_ok(void) {
        httpd_request_head h = {};
        CHECK_OK(parse("POST /v2/a%20b/c:stop?x=1&y=%41 HTTP/1.1\r\n"
                       "Host: 127.0.0.1\r\n"
                       "X-Thing:   padded value \t\r\n"
                       "Content-Length: 5\r\n"
                       "Content-Length: 5\r\n"
                       "\r\n",
                       &h));
        CHECK_STREQ(h.method, "POST");
        CHECK_STREQ(h.raw_path, "/v2/a%20b/c:stop");
        CHECK_STREQ(h.path, "/v2/a b/c:stop");
        CHECK_STREQ(h.query, "x=1&y=%41");
        CHECK(h.content_length == 5);
        CHECK(strv_length(h.headers) == 4);
        CHECK_STREQ(h.headers[0], "host: 127.0.0.1");
        CHECK_STREQ(h.headers[1], "x-thing: padded value");
        httpd_request_head_done(&h);

        CHECK_OK(parse("GET / HTTP/1.0\r\n\r\n", &h));
        CHECK_STREQ(h.path, "/");
        CHECK_STREQ(h.query, "");
        CHECK(h.headers && !h.headers[0]);
        CHECK(h.content_length == 0);
        httpd_request_head_done(&h);

        /* '+' in a path is a plus, not a space */
        CHECK_OK(parse("GET /a+b HTTP/1.1\r\n\r\n", &h));
        CHECK_STREQ(h.path, "/a+b");
        httpd_request_head_done(&h);
}

static void test_parse_bad(void) {
        static const char *const bad[] = {
                "",
                "\r\n",
                "GET / HTTP/1.1\r\n",                          /* no empty line */
                "GET / HTTP/1.1\n\n",                          /* bare LF */
                "GET / HTTP/1.1\r\nHost: x\n\r\n",             /* bare LF in a header */
                "GET /\r\n\r\n",                               /* no version */
                "GET / HTTP/2.0\r\n\r\n",
                "GET  / HTTP/1.1\r\n\r\n",                     /* double space */
                "GET http://x/ HTTP/1.1\r\n\r\n",              /* absolute form */
                "GET /a b HTTP/1.1\r\n\r\n",
                "G(T / HTTP/1.1\r\n\r\n",
                "GET /%zz HTTP/1.1\r\n\r\n",
                "GET /%00 HTTP/1.1\r\n\r\n",                   /* encoded NUL */
                "GET /%4 HTTP/1.1\r\n\r\n",
                "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
                "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
                "GET / HTTP/1.1\r\nA: b\r\n continued\r\n\r\n", /* obsolete folding */
                "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",
                "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
                "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                "GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
                "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "GET / HTTP/1.1\r\n\r\nextra",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                httpd_request_head h = {};
                int r = parse(bad[i], &h);
                if (r != -EBADMSG)
                        fprintf(stderr, "case %zu: %d\n", i, r);
                CHECK(r == -EBADMSG);
        }

        /* an embedded NUL */
        httpd_request_head h = {};
        CHECK(httpd_parse_request_head("GET / HTTP/1.1\r\nA: \0b\r\n\r\n", 25, &h) == -EBADMSG);

        CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 8388609\r\n\r\n", &h) == -EMSGSIZE);
        CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", &h) ==
              -EMSGSIZE);
        CHECK_OK(parse("POST / HTTP/1.1\r\nContent-Length: 8388608\r\n\r\n", &h));
        httpd_request_head_done(&h);
        CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h) == -ENOTSUP);
}

/* ---- live server ---- */

typedef struct server {
        httpd *h;
        pthread_t thread;
        volatile sig_atomic_t stop;
        int run_result;
        uint16_t port_a, port_b;
} server;

static int handler(const httpd_request *req, httpd_response *resp, void *userdata) {
        server *s = userdata;

        if (streq(req->path, "/fail"))
                return -ENOENT;
        if (streq(req->path, "/add-listener")) {
                /* listeners may be added by the loop's own thread while it runs */
                int port = httpd_listen(s->h, "127.0.0.1", 0, "dynamic");
                if (port < 0)
                        return port;
                return httpd_respond(resp, 200, "%d", port);
        }

        _cleanup_free_ char *q = httpd_query_param(req, "q");
        _cleanup_free_ char *missing = httpd_query_param(req, "missing");
        _cleanup_free_ char *flag = httpd_query_param(req, "flag");
        const char *x = httpd_request_header(req, "X-Test");
        int r = strv_push(&resp->headers, "X-Reply: yes");
        if (r < 0)
                return r;
        resp->content_type = "text/plain";
        CHECK(!missing);
        return httpd_respond(resp, 201,
                             "method=%s path=%s raw=%s query=%s tag=%s peer=%s x=%s q=%s flag=%s "
                             "len=%zu body=%.20s",
                             req->method, req->path, req->raw_path, req->query, req->listener_tag,
                             req->peer_addr, x ? x : "-", q ? q : "-", flag ? flag : "-",
                             req->body_len, req->body);
}

static void *server_thread(void *userdata) {
        server *s = userdata;
        s->run_result = httpd_run(s->h, &s->stop);
        return NULL;
}

static void server_start(server *s, int io_timeout_ms) {
        int r;
        CHECK_OK(httpd_new(handler, s, &s->h));
        httpd_set_io_timeout(s->h, io_timeout_ms);
        r = httpd_listen(s->h, "127.0.0.1", 0, "tag-a");
        CHECK_OK(r);
        s->port_a = (uint16_t) r;
        r = httpd_listen(s->h, "127.0.0.1", 0, "tag-b");
        CHECK_OK(r);
        s->port_b = (uint16_t) r;
        CHECK(s->port_a != s->port_b);
        CHECK(pthread_create(&s->thread, NULL, server_thread, s) == 0);
}

static void server_stop(server *s) {
        s->stop = 1;
        CHECK(pthread_join(s->thread, NULL) == 0);
        CHECK_OK(s->run_result);
        httpd_free(s->h);
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        return fd;
}

static void send_all(int fd, const void *data, size_t len) {
        const char *p = data;
        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n < 0)
                        return; /* the server may have replied and closed early */
                p += n;
                len -= (size_t) n;
        }
}

/* Read until EOF with a 5 s limit; the response as a string (caller frees). */
static char *recv_all(int fd) {
        buf b = {};
        int64_t deadline = now_ms() + 5000;
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int left = (int) (deadline - now_ms());
                CHECK(left > 0);
                CHECK(poll(&p, 1, left) >= 0);
                char chunk[4096];
                ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
                if (n < 0 && errno == ECONNRESET)
                        break;
                CHECK(n >= 0);
                if (n == 0)
                        break;
                CHECK_OK(buf_append(&b, chunk, (size_t) n));
        }
        return buf_steal(&b);
}

static char *request(uint16_t port, const void *data, size_t len) {
        _cleanup_close_ int fd = connect_to(port);
        send_all(fd, data, len);
        return recv_all(fd);
}

static char *request_str(uint16_t port, const char *s) { return request(port, s, strlen(s)); }

static void test_round_trip(server *s) {
        static const char req[] = "POST /p%20x/y?q=a%20b%2Bc+d&flag&other=1 HTTP/1.1\r\n"
                                  "Host: 127.0.0.1\r\nX-TEST: hello\r\nContent-Length: 11\r\n\r\n"
                                  "hello world";
        _cleanup_free_ char *resp = request_str(s->port_a, req);
        CHECK(startswith(resp, "HTTP/1.1 201 Created\r\n"));
        CHECK(strstr(resp, "\r\nContent-Type: text/plain\r\n"));
        CHECK(strstr(resp, "\r\nConnection: close\r\n"));
        CHECK(strstr(resp, "\r\nX-Reply: yes\r\n"));
        const char *body = strstr(resp, "\r\n\r\n");
        CHECK(body);
        body += 4;
        CHECK_STREQ(body, "method=POST path=/p x/y raw=/p%20x/y query=q=a%20b%2Bc+d&flag&other=1 "
                          "tag=tag-a peer=127.0.0.1 x=hello q=a b+c d flag= len=11 body=hello world");
        char cl[64];
        snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", strlen(body));
        CHECK(strstr(resp, cl));
}

static void test_listener_tags(server *s) {
        _cleanup_free_ char *a = request_str(s->port_a, "GET /t HTTP/1.1\r\n\r\n");
        _cleanup_free_ char *b = request_str(s->port_b, "GET /t HTTP/1.1\r\n\r\n");
        CHECK(strstr(a, " tag=tag-a "));
        CHECK(strstr(b, " tag=tag-b "));

        /* a listener added while running serves right away, with its own tag */
        _cleanup_free_ char *added = request_str(s->port_a, "GET /add-listener HTTP/1.1\r\n\r\n");
        const char *body = strstr(added, "\r\n\r\n");
        CHECK(startswith(added, "HTTP/1.1 200 OK\r\n") && body);
        int port = atoi(body + 4);
        CHECK(port > 0);
        _cleanup_free_ char *d = request_str((uint16_t) port, "GET /t HTTP/1.1\r\n\r\n");
        CHECK(strstr(d, " tag=dynamic "));
}

static void test_errors(server *s) {
        _cleanup_free_ char *fail = request_str(s->port_a, "GET /fail HTTP/1.1\r\n\r\n");
        CHECK(startswith(fail, "HTTP/1.1 500 Internal Server Error\r\n"));
        CHECK(strstr(fail, "\r\nContent-Type: application/json\r\n"));
        CHECK(strstr(fail, "\r\n\r\n{\"error\":\"internal error: No such file or directory\"}"));

        _cleanup_free_ char *bad = request_str(s->port_a, "GET /x HTTP/1.1\nHost: y\n\n");
        CHECK(startswith(bad, "HTTP/1.1 400 Bad Request\r\n"));

        _cleanup_free_ char *chunked = request_str(
                s->port_a, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        CHECK(startswith(chunked, "HTTP/1.1 411 Length Required\r\n"));

        /* body over the cap: refused from the head alone, while the client is still sending */
        size_t big = HTTPD_MAX_BODY + 1;
        char *over = malloc(big + 100);
        CHECK(over);
        int n = snprintf(over, 100, "POST /x HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", big);
        memset(over + n, 'a', big);
        _cleanup_free_ char *too_large = request(s->port_a, over, (size_t) n + big);
        free(over);
        CHECK(startswith(too_large, "HTTP/1.1 413 Content Too Large\r\n"));

        /* head over the cap */
        buf head = {};
        CHECK_OK(buf_puts(&head, "GET / HTTP/1.1\r\n"));
        while (head.len < HTTPD_MAX_HEAD + 100)
                CHECK_OK(buf_puts(&head, "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"));
        CHECK_OK(buf_puts(&head, "\r\n"));
        _cleanup_free_ char *head_large = request(s->port_a, head.data, head.len);
        buf_free(&head);
        CHECK(startswith(head_large, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));

        /* HEAD: the length of what GET would send, no body */
        _cleanup_free_ char *h = request_str(s->port_a, "HEAD /t HTTP/1.1\r\n\r\n");
        CHECK(startswith(h, "HTTP/1.1 201 Created\r\n"));
        CHECK(strstr(h, "\r\nContent-Length: "));
        CHECK(!strstr(h, "\r\nContent-Length: 0\r\n"));
        CHECK(strlen(h) > 4 && streq(h + strlen(h) - 4, "\r\n\r\n"));
}

static void test_large_body(server *s) {
        /* A body arriving in many reads, just under the cap. */
        size_t len = HTTPD_MAX_BODY;
        char *req = malloc(len + 100);
        CHECK(req);
        int n = snprintf(req, 100, "PUT /big HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", len);
        memset(req + n, 'z', len);
        _cleanup_free_ char *resp = request(s->port_a, req, (size_t) n + len);
        free(req);
        CHECK(startswith(resp, "HTTP/1.1 201 Created\r\n"));
        CHECK(strstr(resp, "len=8388608 body=zzzzzzzzzzzzzzzzzzzz"));
}

static void test_slow_clients(server *s) {
        /* Clients that send half a request and stall must not hold up others. */
        int slow[8];
        for (size_t i = 0; i < ELEMENTSOF(slow); i++) {
                slow[i] = connect_to(s->port_a);
                send_all(slow[i], "GET /slow HTTP/1.1\r\nHost: x\r\n", 29);
        }
        /* and a client that sends its head byte by byte still gets served */
        int trickle = connect_to(s->port_b);
        send_all(trickle, "GET /tr", 7);

        int64_t start = now_ms();
        _cleanup_free_ char *resp = request_str(s->port_a, "GET /fast HTTP/1.1\r\n\r\n");
        CHECK(startswith(resp, "HTTP/1.1 201 Created\r\n"));
        CHECK(now_ms() - start < 1000);

        const char *rest = "ickle HTTP/1.1\r\n\r\n";
        for (const char *p = rest; *p; p++) {
                send_all(trickle, p, 1);
                struct timespec ts = { .tv_nsec = 2 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        _cleanup_free_ char *tr = recv_all(trickle);
        CHECK(strstr(tr, "path=/trickle raw=/trickle query= tag=tag-b"));
        close(trickle);

        for (size_t i = 0; i < ELEMENTSOF(slow); i++)
                close(slow[i]);
}

static void test_many_concurrent(server *s) {
        /* Open many connections first, then send on all: every one is answered. */
        int fds[64];
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = connect_to(i % 2 ? s->port_a : s->port_b);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                send_all(fds[i], "GET /many HTTP/1.1\r\n\r\n", 23);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                _cleanup_free_ char *resp = recv_all(fds[i]);
                CHECK(startswith(resp, "HTTP/1.1 201 Created\r\n"));
                CHECK(strstr(resp, i % 2 ? "tag=tag-a" : "tag=tag-b"));
                close(fds[i]);
        }
}

static void test_timeout(void) {
        server s = {};
        server_start(&s, 300);

        /* a stalled request is dropped after the I/O timeout, without a reply */
        int64_t start = now_ms();
        _cleanup_close_ int fd = connect_to(s.port_a);
        send_all(fd, "GET /stalled HTTP/1.1\r\n", 24);
        _cleanup_free_ char *resp = recv_all(fd);
        int64_t took = now_ms() - start;
        CHECK_STREQ(resp, "");
        CHECK(took >= 280 && took < 2000);

        /* the timeout counts from accept, so trickling bytes does not keep a connection alive */
        _cleanup_close_ int trickle = connect_to(s.port_a);
        start = now_ms();
        for (int i = 0; i < 10; i++) {
                send_all(trickle, "X", 1);
                struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        _cleanup_free_ char *resp2 = recv_all(trickle);
        CHECK_STREQ(resp2, "");
        CHECK(now_ms() - start < 2000);

        server_stop(&s);
}

int main(void) {
        test_parse_ok();
        test_parse_bad();
        test_timeout();

        server s = {};
        server_start(&s, 0);
        test_round_trip(&s);
        test_listener_tags(&s);
        test_errors(&s);
        test_large_body(&s);
        test_slow_clients(&s);
        test_many_concurrent(&s);
        server_stop(&s);
        return 0;
}
