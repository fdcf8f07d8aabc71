/* httpd: the request head parser directly, then a real server on 127.0.0.1 and on UNIX sockets,
 * driven by a thread, spoken to over raw sockets so malformed and slow clients can be played. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "http-server.h"
#include "strv.h"
#include "time-util.h"

/* ---- our part of parsing: the request target ---- */

static int parse(const char *target, http_server_target *t) {
        return http_server_parse_target(target, strlen(target), t);
}

static void test_parse_ok(void) {
        http_server_target t = {};
        CHECK_OK(parse("/v2/a%20b/c:stop?x=1&y=%41", &t));
        CHECK_STREQ(t.raw_path, "/v2/a%20b/c:stop");
        CHECK_STREQ(t.path, "/v2/a b/c:stop");
        CHECK_STREQ(t.query, "x=1&y=%41");
        http_server_target_done(&t);

        CHECK_OK(parse("/", &t));
        CHECK_STREQ(t.path, "/");
        CHECK_STREQ(t.query, "");
        http_server_target_done(&t);

        /* '+' in a path is a plus, not a space */
        CHECK_OK(parse("/a+b?", &t));
        CHECK_STREQ(t.path, "/a+b");
        CHECK_STREQ(t.query, "");
        http_server_target_done(&t);

        /* the query lookup: decoded, '+' is a space, first match wins, no '=' gives "" */
        _cleanup_free_ char *a = http_server_query_lookup("a=1&b=%41+c&a=2&flag", "a");
        _cleanup_free_ char *b = http_server_query_lookup("a=1&b=%41+c&a=2&flag", "b");
        _cleanup_free_ char *f = http_server_query_lookup("a=1&b=%41+c&a=2&flag", "flag");
        _cleanup_free_ char *m = http_server_query_lookup("a=1&b=%41+c&a=2&flag", "missing");
        _cleanup_free_ char *bad = http_server_query_lookup("a=%zz", "a");
        CHECK_STREQ(a, "1");
        CHECK_STREQ(b, "A c");
        CHECK_STREQ(f, "");
        CHECK(!m && !bad);
}

static void test_parse_bad(void) {
        static const char *const bad[] = {
                "",
                "*",
                "http://x/",                                   /* absolute form */
                "x/y",
                "/a b",
                "/a\tb",
                "/a\x7f",
                "/\xc3\xa9",                                 /* raw UTF-8: must be escaped */
                "/%zz",
                "/%00",                                        /* encoded NUL */
                "/%4",
                "/%4?x=1",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                http_server_target t = {};
                int r = parse(bad[i], &t);
                if (r != -EBADMSG)
                        fprintf(stderr, "case %zu: %d\n", i, r);
                CHECK(r == -EBADMSG);
        }

        /* an embedded NUL */
        http_server_target t = {};
        CHECK(http_server_parse_target("/a\0b", 4, &t) == -EBADMSG);
}

/* ---- live server ---- */

typedef struct server {
        http_server *h;
        pthread_t thread;
        volatile sig_atomic_t stop;
        int run_result;
        uint16_t port_a, port_b;
} server;

/* Streamed replies: "/stream" sends "tick 1".."tick <n>" every interval ms, then ends;
 * "/stream-forever" never ends. stream_freed counts free_fn calls. */
typedef struct ticker {
        int n, count;
} ticker;

static volatile int stream_freed;

static int tick(void *userdata, buf *out) {
        ticker *t = userdata;
        if (t->n <= 0)
                return buf_puts(out, "x\n") < 0 ? -ENOMEM : 0;
        if (t->count >= t->n)
                return 1;
        t->count++;
        return buf_printf(out, "tick %d\n", t->count) < 0 ? -ENOMEM : t->count == t->n ? 1 : 0;
}

static void tick_free(void *userdata) {
        free(userdata);
        __atomic_add_fetch(&stream_freed, 1, __ATOMIC_SEQ_CST);
}

static int handler(const http_server_request *req, http_server_response *resp, void *userdata) {
        server *s = userdata;

        if (streq(req->path, "/stream") || streq(req->path, "/stream-forever")) {
                ticker *t = calloc(1, sizeof(*t));
                if (!t)
                        return -ENOMEM;
                t->n = streq(req->path, "/stream") ? 4 : 0;
                resp->content_type = "text/plain";
                resp->stream = (http_server_stream){ .produce = tick, .free_fn = tick_free, .userdata = t,
                                                     .interval_ms = 200 };
                return http_server_respond(resp, 200, "start\n");
        }
        if (streq(req->path, "/fail"))
                return -ENOENT;
        if (streq(req->path, "/add-listener")) {
                /* listeners may be added by the loop's own thread while it runs */
                int port = http_server_listen(s->h, "127.0.0.1", 0, "dynamic");
                if (port < 0)
                        return port;
                return http_server_respond(resp, 200, "%d", port);
        }

        if (streq(req->path, "/unlisten")) {
                /* closing from a handler takes effect at the end of the step */
                _cleanup_free_ char *tag = http_server_query_param(req, "tag");
                return http_server_respond(resp, 200, "%d", http_server_unlisten(s->h, tag));
        }

        _cleanup_free_ char *q = http_server_query_param(req, "q");
        _cleanup_free_ char *missing = http_server_query_param(req, "missing");
        _cleanup_free_ char *flag = http_server_query_param(req, "flag");
        const char *x = http_server_request_header(req, "X-Test");
        int r = strv_push(&resp->headers, "X-Reply: yes");
        if (r < 0)
                return r;
        resp->content_type = "text/plain";
        CHECK(!missing);
        return http_server_respond(resp, 201,
                             "method=%s path=%s raw=%s query=%s tag=%s peer=%s x=%s q=%s flag=%s "
                             "len=%zu body=%.20s",
                             req->method, req->path, req->raw_path, req->query, req->listener_tag,
                             req->peer_addr, x ? x : "-", q ? q : "-", flag ? flag : "-",
                             req->body_len, req->body);
}

static void *server_thread(void *userdata) {
        server *s = userdata;
        s->run_result = http_server_run(s->h, &s->stop);
        return NULL;
}

static void server_start(server *s, int io_timeout_ms) {
        int r;
        CHECK_OK(http_server_new(handler, s, &s->h));
        http_server_set_io_timeout(s->h, io_timeout_ms);
        r = http_server_listen(s->h, "127.0.0.1", 0, "tag-a");
        CHECK_OK(r);
        s->port_a = (uint16_t) r;
        r = http_server_listen(s->h, "127.0.0.1", 0, "tag-b");
        CHECK_OK(r);
        s->port_b = (uint16_t) r;
        CHECK(s->port_a != s->port_b);
        CHECK(pthread_create(&s->thread, NULL, server_thread, s) == 0);
}

static void server_stop(server *s) {
        s->stop = 1;
        CHECK(pthread_join(s->thread, NULL) == 0);
        CHECK_OK(s->run_result);
        http_server_free(s->h);
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

        /* Changed with MHD: bare LF line ends are accepted (RFC 9112 2.2 lets a recipient do so;
         * the old parser answered 400). Nothing in front of these servers could frame the
         * request differently. */
        _cleanup_free_ char *bare_lf = request_str(s->port_a, "GET /x HTTP/1.1\nHost: y\n\n");
        CHECK(startswith(bare_lf, "HTTP/1.1 201 Created\r\n"));
        CHECK(strstr(bare_lf, " path=/x "));

        /* Changed with MHD, intended: chunked request bodies are decoded and accepted (Vault
         * accepts them; the old server answered 411). */
        _cleanup_free_ char *chunked = request_str(
                s->port_a, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        CHECK(startswith(chunked, "HTTP/1.1 201 Created\r\n"));
        CHECK(strstr(chunked, " len=5 body=hello"));

        /* a chunked body over the cap: refused once the running total passes it */
        {
                buf big = BUF_INIT(HTTP_SERVER_MAX_BODY + 1024 * 1024);
                CHECK_OK(buf_puts(&big, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
                static char chunk[65536];
                memset(chunk, 'c', sizeof(chunk));
                for (size_t sent = 0; sent <= HTTP_SERVER_MAX_BODY; sent += sizeof(chunk)) {
                        CHECK_OK(buf_printf(&big, "%zx\r\n", sizeof(chunk)));
                        CHECK_OK(buf_append(&big, chunk, sizeof(chunk)));
                        CHECK_OK(buf_puts(&big, "\r\n"));
                }
                CHECK_OK(buf_puts(&big, "0\r\n\r\n"));
                _cleanup_free_ char *chunked_large = request(s->port_a, big.data, big.len);
                buf_free(&big);
                CHECK(startswith(chunked_large, "HTTP/1.1 413 Content Too Large\r\n"));
        }

        /* body over the cap: refused from the head alone, while the client is still sending */
        size_t big = HTTP_SERVER_MAX_BODY + 1;
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
        while (head.len < HTTP_SERVER_MAX_HEAD + 100)
                CHECK_OK(buf_puts(&head, "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"));
        CHECK_OK(buf_puts(&head, "\r\n"));
        _cleanup_free_ char *head_large = request(s->port_a, head.data, head.len);
        buf_free(&head);
        CHECK(startswith(head_large, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));

        /* A head of 3/4 of the cap is fine. MHD's pool also holds its own bookkeeping (about 50
         * bytes a header line), so the usable head is a little under HTTP_SERVER_MAX_HEAD,
         * less with many short headers. */
        CHECK_OK(buf_puts(&head, "GET /t HTTP/1.1\r\nX-Big: "));
        while (head.len < HTTP_SERVER_MAX_HEAD * 3 / 4)
                CHECK_OK(buf_puts(&head, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        CHECK_OK(buf_puts(&head, "\r\n"));
        for (int i = 0; i < 20; i++)
                CHECK_OK(buf_printf(&head, "X-Header-%d: value\r\n", i));
        CHECK_OK(buf_puts(&head, "\r\n"));
        _cleanup_free_ char *head_ok = request(s->port_a, head.data, head.len);
        buf_free(&head);
        CHECK(startswith(head_ok, "HTTP/1.1 201 Created\r\n"));

        /* HEAD: the length of what GET would send, no body */
        _cleanup_free_ char *h = request_str(s->port_a, "HEAD /t HTTP/1.1\r\n\r\n");
        CHECK(startswith(h, "HTTP/1.1 201 Created\r\n"));
        CHECK(strstr(h, "\r\nContent-Length: "));
        CHECK(!strstr(h, "\r\nContent-Length: 0\r\n"));
        CHECK(strlen(h) > 4 && streq(h + strlen(h) - 4, "\r\n\r\n"));
}

/* What the old own parser refused, sent over the wire: MHD (or our checks on top) must refuse it
 * too, with 400 or the more specific status MHD picks. */
static void test_malformed(server *s) {
        static const struct {
                const char *request;
                const char *status;
        } cases[] = {
                { "GET /\r\n\r\n", "HTTP/1.1 400 " },                         /* no version */
                { "GET / HTTP/2.0\r\n\r\n", "HTTP/1.1 505 " },
                { "GET http://x/ HTTP/1.1\r\n\r\n", "HTTP/1.1 400 " },         /* absolute form */
                { "GET /a b HTTP/1.1\r\n\r\n", "HTTP/1.1 400 " },
                { "GET /%zz HTTP/1.1\r\n\r\n", "HTTP/1.1 400 " },
                { "GET /%00 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 " },              /* encoded NUL */
                { "GET /%4 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 " },
                { "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "HTTP/1.1 400 " },
                { "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "HTTP/1.1 400 " },
                { "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "HTTP/1.1 400 " },
                { "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 400 " },
                /* request smuggling: framing two parsers could read differently */
                { "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                  "HTTP/1.1 400 " },
                { "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n0\r\n\r\n",
                  "HTTP/1.1 400 " },
        };
        bool ok = true;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *resp = request_str(s->port_a, cases[i].request);
                if (!startswith(resp, cases[i].status)) {
                        fprintf(stderr, "case %zu: %.40s\n", i, resp);
                        ok = false;
                }
        }
        CHECK(ok);
}

static void test_large_body(server *s) {
        /* A body arriving in many reads, just under the cap. */
        size_t len = HTTP_SERVER_MAX_BODY;
        char *req = malloc(len + 100);
        CHECK(req);
        int n = snprintf(req, 100, "PUT /big HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", len);
        memset(req + n, 'z', len);
        _cleanup_free_ char *resp = request(s->port_a, req, (size_t) n + len);
        free(req);
        CHECK(startswith(resp, "HTTP/1.1 201 Created\r\n"));
        CHECK(strstr(resp, "len=8388608 body=zzzzzzzzzzzzzzzzzzzz"));
}

/* Clients that send half a request and stall must not hold up others. No upper time bound: the
 * server's I/O timeout is an hour, so a server that waited for a stalled client before serving
 * the next would not answer /fast before ctest's 120 s timeout kills the test. */
static void test_slow_clients(void) {
        server srv = {}, *s = &srv;
        server_start(s, 3600 * 1000);
        int slow[8];
        for (size_t i = 0; i < ELEMENTSOF(slow); i++) {
                slow[i] = connect_to(s->port_a);
                send_all(slow[i], "GET /slow HTTP/1.1\r\nHost: x\r\n", 29);
        }
        /* and a client that sends its head byte by byte still gets served */
        int trickle = connect_to(s->port_b);
        send_all(trickle, "GET /tr", 7);

        _cleanup_free_ char *resp = request_str(s->port_a, "GET /fast HTTP/1.1\r\n\r\n");
        CHECK(startswith(resp, "HTTP/1.1 201 Created\r\n"));

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
        server_stop(s);
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
        /* lower bound only: a server without the timeout would never close (ctest's timeout) */
        CHECK(took >= 280);

        /* the timeout counts from accept, so trickling bytes does not keep a connection alive:
         * a byte every 50 ms until the server closes, which a timeout restarted by each byte
         * would never do */
        _cleanup_close_ int trickle = connect_to(s.port_a);
        start = now_ms();
        int sent = 0;
        for (;;) {
                if (send(trickle, "X", 1, MSG_NOSIGNAL) != 1)
                        break; /* reset by the server */
                sent++;
                struct pollfd pfd = { .fd = trickle, .events = POLLIN };
                if (poll(&pfd, 1, 50) > 0) {
                        char c;
                        CHECK(recv(trickle, &c, 1, 0) <= 0); /* closed, nothing sent back */
                        break;
                }
        }
        CHECK(now_ms() - start >= 280);
        CHECK(sent >= 2);

        server_stop(&s);
}

static bool refused(uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        return connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno == ECONNREFUSED;
}

static void test_unlisten(server *s) {
        _cleanup_free_ char *added = request_str(s->port_a, "GET /add-listener HTTP/1.1\r\n\r\n");
        const char *body = strstr(added, "\r\n\r\n");
        CHECK(body);
        uint16_t port = (uint16_t) atoi(body + 4);
        CHECK(port > 0 && !refused(port));

        /* a connection open on it is closed with it */
        _cleanup_close_ int open_fd = connect_to(port);
        send_all(open_fd, "GET /half", 9);

        /* every listener tagged "dynamic" (one from test_listener_tags, this one) */
        _cleanup_free_ char *closed = request_str(s->port_b, "GET /unlisten?tag=dynamic HTTP/1.1\r\n\r\n");
        body = strstr(closed, "\r\n\r\n");
        CHECK(body && streq(body + 4, "2"));
        /* the reply goes out before the step ends, the close right after */
        int64_t deadline = now_ms() + 1000;
        while (!refused(port)) {
                CHECK(now_ms() < deadline);
                struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        _cleanup_free_ char *rest = recv_all(open_fd);
        CHECK_STREQ(rest, "");

        _cleanup_free_ char *none = request_str(s->port_b, "GET /unlisten?tag=nothing HTTP/1.1\r\n\r\n");
        body = strstr(none, "\r\n\r\n");
        CHECK(body && streq(body + 4, "0"));

        /* the others still answer */
        _cleanup_free_ char *a = request_str(s->port_a, "GET /t HTTP/1.1\r\n\r\n");
        CHECK(strstr(a, " tag=tag-a "));
}

static void test_unlisten_direct(void) {
        _cleanup_(http_server_freep) http_server *h = NULL;
        CHECK_OK(http_server_new(handler, NULL, &h));
        int port = http_server_listen(h, "127.0.0.1", 0, "x");
        CHECK(port > 0);
        CHECK(!refused((uint16_t) port));
        CHECK(http_server_unlisten(h, "x") == 1);
        CHECK(refused((uint16_t) port));
        CHECK(http_server_unlisten(h, "x") == 0);
        CHECK_OK(http_server_step(h, 0));
        /* the port is free again */
        CHECK(http_server_listen(h, "127.0.0.1", (uint16_t) port, "x") == port);
}

/* ---- UNIX listeners ---- */

/* connect() to the UNIX socket at path: the connected fd, or -errno. */
static int unix_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        CHECK(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static char *unix_request(const char *path, const char *s) {
        _cleanup_close_ int fd = unix_connect(path);
        CHECK(fd >= 0);
        send_all(fd, s, strlen(s));
        return recv_all(fd);
}

/* connect() to path as user nobody (65534) in a child: its errno, or 0 if it connected. Only
 * root can become another user; the caller skips that check otherwise. */
static int connect_as_nobody(const char *path) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(100);
                int fd = unix_connect(path);
                _exit(fd >= 0 ? 0 : -fd);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
        CHECK(WEXITSTATUS(status) != 100);
        return WEXITSTATUS(status);
}

/* A socket file nobody listens on any more, as a killed server leaves it. */
static void make_stale_socket(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        close(fd);
}

static void test_unix(void) {
        char dir[] = "/tmp/test-http-server-unix.XXXXXX";
        char a[128], b[128], stale[128], file[128], too_long[200];
        struct stat st;
        server s = {};

        CHECK(mkdtemp(dir));
        snprintf(a, sizeof(a), "%s/a.sock", dir);
        snprintf(b, sizeof(b), "%s/b.sock", dir);
        snprintf(stale, sizeof(stale), "%s/stale.sock", dir);
        snprintf(file, sizeof(file), "%s/file", dir);
        snprintf(too_long, sizeof(too_long), "%s/%0100d.sock", dir, 0);

        CHECK_OK(http_server_new(handler, &s, &s.h));
        /* Under a permissive umask the socket is still 0600. */
        mode_t old_umask = umask(0);
        CHECK(http_server_listen_unix(s.h, a, "unix-a") == 0);
        umask(old_umask);
        CHECK(http_server_listen_unix(s.h, b, "unix-b") == 0);
        CHECK(lstat(a, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600);
        CHECK(lstat(b, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600);

        /* What refuses to listen: a live socket, a file that is no socket, a path too long
         * for sun_path, a relative one, a missing directory. */
        CHECK(http_server_listen_unix(s.h, a, "again") == -EADDRINUSE);
        CHECK(lstat(a, &st) == 0); /* left alone */
        int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        close(fd);
        CHECK(http_server_listen_unix(s.h, file, "file") == -EEXIST);
        CHECK(lstat(file, &st) == 0 && S_ISREG(st.st_mode));
        CHECK(http_server_listen_unix(s.h, too_long, "long") == -ENAMETOOLONG);
        CHECK(http_server_listen_unix(s.h, "x.sock", "relative") == -EINVAL);
        char missing[160];
        snprintf(missing, sizeof(missing), "%s/no/x.sock", dir);
        CHECK(http_server_listen_unix(s.h, missing, "missing") == -ENOENT);
        /* A killed server's leftover is replaced. */
        make_stale_socket(stale);
        CHECK(http_server_listen_unix(s.h, stale, "unix-stale") == 0);

        CHECK(pthread_create(&s.thread, NULL, server_thread, &s) == 0);

        /* Each socket answers with its own tag: the identity of whoever comes through it. */
        _cleanup_free_ char *ra = unix_request(a, "GET /t?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        _cleanup_free_ char *rb = unix_request(b, "GET /t HTTP/1.1\r\nHost: x\r\n\r\n");
        _cleanup_free_ char *rs = unix_request(stale, "GET /t HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(startswith(ra, "HTTP/1.1 201 Created\r\n"));
        CHECK(strstr(ra, " tag=unix-a peer= x=- q=1 "));
        CHECK(strstr(rb, " tag=unix-b "));
        CHECK(strstr(rs, " tag=unix-stale "));

        if (geteuid() == 0) {
                /* Another user: stopped by the private directory, and by the file's own 0600
                 * when the directory is opened up. */
                CHECK(chmod(dir, 0700) == 0);
                CHECK(connect_as_nobody(a) == EACCES);
                CHECK(chmod(dir, 0755) == 0);
                CHECK(connect_as_nobody(a) == EACCES);
                /* The check is real: with the file opened up too, nobody gets in. */
                CHECK(chmod(b, 0666) == 0);
                CHECK(connect_as_nobody(b) == 0);
                CHECK(chmod(b, 0600) == 0);
                CHECK(chmod(dir, 0700) == 0);
        } else
                fprintf(stderr, "not root: the other-user checks are skipped\n");

        /* unlisten closes the socket and removes its file; the others stay. */
        _cleanup_free_ char *closed = unix_request(b, "GET /unlisten?tag=unix-a HTTP/1.1\r\n\r\n");
        const char *body = strstr(closed, "\r\n\r\n");
        CHECK(body && streq(body + 4, "1"));
        int64_t deadline = now_ms() + 1000;
        while (lstat(a, &st) == 0) {
                CHECK(now_ms() < deadline);
                struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        CHECK(errno == ENOENT);
        CHECK(unix_connect(a) == -ENOENT);
        _cleanup_free_ char *rb2 = unix_request(b, "GET /t HTTP/1.1\r\n\r\n");
        CHECK(strstr(rb2, " tag=unix-b "));

        /* A file that took the socket's place is not removed with the listener. */
        CHECK(unlink(stale) == 0);
        make_stale_socket(stale);
        CHECK(lstat(stale, &st) == 0);
        ino_t other = st.st_ino;
        _cleanup_free_ char *closed2 = unix_request(b, "GET /unlisten?tag=unix-stale HTTP/1.1\r\n\r\n");
        body = strstr(closed2, "\r\n\r\n");
        CHECK(body && streq(body + 4, "1"));

        server_stop(&s); /* frees the server: b goes with it */
        CHECK(lstat(b, &st) < 0 && errno == ENOENT);
        CHECK(lstat(stale, &st) == 0 && st.st_ino == other);
        CHECK(unlink(stale) == 0 && unlink(file) == 0 && rmdir(dir) == 0);
}

static int64_t cpu_ms(void) {
        struct rusage ru;
        CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
        return ((int64_t) ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
               (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* CPU the process (the server thread, really: this one sleeps) burns over one second. */
static int64_t cpu_over_one_second(void) {
        int64_t before = cpu_ms();
        struct timespec ts = { .tv_sec = 1 };
        nanosleep(&ts, NULL);
        return cpu_ms() - before;
}

static int non_blocking_connect(uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* Review 7.4: out of descriptors, the old server spun at 100 % CPU. Two ways to run out: the
 * process's other descriptors (MHD retries accept() on every run when the listener has no
 * connection of its own), or the listener's own connections (MHD stops accepting until one
 * closes). Neither may busy-loop, and serving resumes once descriptors are free. */
static void test_out_of_descriptors(void) {
        server s = {};
        struct rlimit old, low;
        int spare[256], n_spare = 0, clients[256], n_clients = 0;

        server_start(&s, 0);
        CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
        int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(probe >= 0);
        close(probe);
        low = old;
        low.rlim_cur = (rlim_t) probe + 64;
        CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);

        /* 1: the descriptors are taken by someone else */
        for (;;) {
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        CHECK(errno == EMFILE);
                        break;
                }
                CHECK(n_spare < (int) ELEMENTSOF(spare));
                spare[n_spare++] = fd;
        }
        close(spare[--n_spare]);
        int waiting = non_blocking_connect(s.port_a); /* the last descriptor: accept() gets EMFILE */
        CHECK(waiting >= 0);
        send_all(waiting, "GET /after-emfile HTTP/1.1\r\n\r\n", 31);
        int64_t cpu = cpu_over_one_second();
        fprintf(stderr, "out of descriptors (other users): %lld ms CPU in 1 s\n", (long long) cpu);
        CHECK(cpu < 300);
        while (n_spare > 0)
                close(spare[--n_spare]);
        _cleanup_free_ char *resp = recv_all(waiting);
        CHECK(startswith(resp, "HTTP/1.1 201 Created\r\n"));
        CHECK(strstr(resp, " path=/after-emfile "));
        close(waiting);

        /* 2: the listener's own connections take them all */
        for (;;) {
                int fd = non_blocking_connect(s.port_a);
                if (fd < 0) {
                        CHECK(fd == -EMFILE);
                        break;
                }
                CHECK(n_clients < (int) ELEMENTSOF(clients));
                clients[n_clients++] = fd;
        }
        cpu = cpu_over_one_second();
        fprintf(stderr, "out of descriptors (own connections, %d clients): %lld ms CPU in 1 s\n",
                n_clients, (long long) cpu);
        CHECK(cpu < 300);
        /* the last client is not accepted yet; once the others hang up, it is served */
        int last = clients[--n_clients];
        while (n_clients > 0)
                close(clients[--n_clients]);
        send_all(last, "GET /after-own HTTP/1.1\r\n\r\n", 28);
        _cleanup_free_ char *resp2 = recv_all(last);
        CHECK(startswith(resp2, "HTTP/1.1 201 Created\r\n"));
        close(last);

        CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
        server_stop(&s);
}

/* A streamed reply: chunked, produced over time (longer than the I/O timeout, which does not
 * apply to it), ended by the producer; and freed when the client goes away mid-stream. */
static void test_stream(void) {
        server s = {};
        server_start(&s, 300);
        int64_t t0 = now_ms();
        _cleanup_free_ char *resp = request_str(s.port_a, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
        int64_t took = now_ms() - t0;
        CHECK(startswith(resp, "HTTP/1.1 200 OK\r\n"));
        CHECK(strcasestr(resp, "\r\nTransfer-Encoding: chunked\r\n"));
        CHECK(strstr(resp, "start\n"));
        CHECK(strstr(resp, "tick 1\n") && strstr(resp, "tick 4\n") && !strstr(resp, "tick 5"));
        size_t len = strlen(resp);
        CHECK(len > 7 && streq(resp + len - 7, "\r\n0\r\n\r\n"));
        CHECK(took >= 550); /* four ticks 200 ms apart, past the 300 ms I/O timeout */
        for (int i = 0; i < 50 && __atomic_load_n(&stream_freed, __ATOMIC_SEQ_CST) < 1; i++)
                time_sleep_ms(20);
        CHECK(__atomic_load_n(&stream_freed, __ATOMIC_SEQ_CST) == 1);

        /* the client leaves a stream that never ends: noticed at a write, freed */
        static const char forever[] = "GET /stream-forever HTTP/1.1\r\nHost: x\r\n\r\n";
        int fd = connect_to(s.port_a);
        send_all(fd, forever, strlen(forever));
        char head[256];
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK(poll(&p, 1, 5000) == 1);
        CHECK(recv(fd, head, sizeof(head), 0) > 0);
        close(fd);
        for (int i = 0; i < 250 && __atomic_load_n(&stream_freed, __ATOMIC_SEQ_CST) < 2; i++)
                time_sleep_ms(20);
        CHECK(__atomic_load_n(&stream_freed, __ATOMIC_SEQ_CST) == 2);

        /* one still open when the server stops: freed too, nothing left suspended in MHD */
        fd = connect_to(s.port_b);
        send_all(fd, forever, strlen(forever));
        p = (struct pollfd){ .fd = fd, .events = POLLIN };
        CHECK(poll(&p, 1, 5000) == 1);
        server_stop(&s);
        CHECK(__atomic_load_n(&stream_freed, __ATOMIC_SEQ_CST) == 3);
        close(fd);
}

int main(void) {
        test_parse_ok();
        test_stream();
        test_parse_bad();
        test_timeout();
        test_unlisten_direct();
        test_unix();
        test_out_of_descriptors();

        server s = {};
        server_start(&s, 0);
        test_round_trip(&s);
        test_listener_tags(&s);
        test_errors(&s);
        test_malformed(&s);
        test_large_body(&s);
        test_slow_clients();
        test_many_concurrent(&s);
        test_unlisten(&s);
        server_stop(&s);
        return 0;
}
