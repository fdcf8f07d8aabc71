/* http client against the project's own HTTP server (lib/http-server.h) on 127.0.0.1 (run in a
 * thread): methods, headers, bodies, body cap, retries and backoff under a deadline (relative and
 * absolute), Retry-After, error texts. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "http.h"
#include "http-server.h"
#include "strv.h"

typedef struct server {
        http_server *h;
        pthread_t thread;
        volatile sig_atomic_t stop;
        int run_result;
        uint16_t port;
        atomic_int hits;           /* requests to the retry endpoints */
        atomic_int client_done;    /* set by the test once http_do() returned (/cancel-then-hang) */
        atomic_int replied;        /* /cancel-then-hang has answered */
} server;

/* The cancel flag of test_cancel, set by the server (as a signal handler would) or a thread. */
static volatile sig_atomic_t cancel_flag;

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int handler(const http_server_request *req, http_server_response *resp, void *userdata) {
        server *s = userdata;

        if (streq(req->path, "/echo")) {
                const char *x = http_server_request_header(req, "x-test");
                const char *ct = http_server_request_header(req, "content-type");
                const char *cl = http_server_request_header(req, "content-length");
                const char *expect = http_server_request_header(req, "expect");
                resp->content_type = "text/plain; charset=utf-8";
                int r = strv_push(&resp->headers, "X-Served: 1");
                if (r < 0)
                        return r;
                r = buf_printf(&resp->body, "%s x=%s ct=%s cl=%s expect=%s body=", req->method,
                               x ? x : "-", ct ? ct : "-", cl ? cl : "-", expect ? expect : "-");
                if (r < 0)
                        return r;
                return buf_append(&resp->body, req->body, req->body_len);
        }
        if (streq(req->path, "/big")) {
                resp->content_type = "application/octet-stream";
                for (int i = 0; i < 1000; i++) {
                        int r = buf_puts(&resp->body, "0123456789abcdef0123456789abcdef"
                                                      "0123456789abcdef0123456789abcdef");
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (streq(req->path, "/flaky")) {
                /* 503 for the first three requests, then success */
                int n = atomic_fetch_add(&s->hits, 1) + 1;
                return n <= 3 ? http_server_respond(resp, 503, "{\"error\":\"busy\"}")
                              : http_server_respond(resp, 200, "{\"attempt\":%d}", n);
        }
        if (streq(req->path, "/status")) {
                atomic_fetch_add(&s->hits, 1);
                _cleanup_free_ char *code = http_server_query_param(req, "code");
                return http_server_respond(resp, code ? atoi(code) : 200, "{}");
        }
        if (streq(req->path, "/busy-then-slow")) {
                /* 503 at once, then an answer that comes too late */
                if (atomic_fetch_add(&s->hits, 1) == 0)
                        return http_server_respond(resp, 503, "{\"error\":\"busy\"}");
                sleep_ms(400);
                return http_server_respond(resp, 200, "{}");
        }
        if (streq(req->path, "/cancel-then-busy")) {
                /* The client is cancelled while it waits for this answer, which is retryable */
                atomic_fetch_add(&s->hits, 1);
                cancel_flag = 1;
                return http_server_respond(resp, 503, "{\"error\":\"busy\"}");
        }
        if (streq(req->path, "/cancel-then-hang")) {
                /* Cancelled while the transfer waits for an answer that is only sent once the
                 * client's call has returned: a call that returns -ECANCELED with replied still
                 * 0 was ended by the flag, not by the answer (no clock involved). */
                atomic_fetch_add(&s->hits, 1);
                cancel_flag = 1;
                while (!atomic_load(&s->client_done))
                        sleep_ms(10);
                atomic_store(&s->replied, 1);
                return http_server_respond(resp, 200, "{}");
        }
        if (streq(req->path, "/retry-after")) {
                /* The first request is told to come back after ?s= seconds (or, with ?date=1,
                 * at an HTTP-date that many seconds ahead), with ?code= (429); the next gets in. */
                _cleanup_free_ char *secs = http_server_query_param(req, "s");
                _cleanup_free_ char *code = http_server_query_param(req, "code");
                _cleanup_free_ char *date = http_server_query_param(req, "date");
                if (atomic_fetch_add(&s->hits, 1) > 0)
                        return http_server_respond(resp, 200, "{\"ok\":true}");
                int r;
                if (date) {
                        char when[64];
                        struct tm tm;
                        time_t t = time(NULL) + atoi(secs);
                        strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
                        r = strv_pushf(&resp->headers, "Retry-After: %s", when);
                } else
                        r = strv_pushf(&resp->headers, "Retry-After: %s", secs);
                if (r < 0)
                        return r;
                return http_server_respond(resp, code ? atoi(code) : 429, "{\"error\":\"slow down\"}");
        }
        if (streq(req->path, "/slow")) {
                sleep_ms(400);
                return http_server_respond(resp, 200, "{}");
        }
        return http_server_respond(resp, 404, "{\"error\":\"not found\"}");
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

static char *url(const server *s, const char *path) {
        char *u = NULL;
        CHECK(asprintf(&u, "http://127.0.0.1:%u%s", s->port, path) > 0);
        return u;
}

static void test_methods(server *s) {
        _cleanup_free_ char *u = url(s, "/echo");
        char *headers[] = { (char *) "X-Test: one two", (char *) "Content-Type: application/json",
                            NULL };
        static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH" };

        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                http_response resp = {};
                buf err = {};
                http_request req = { .method = methods[i], .url = u, .headers = headers,
                                     .body = "{\"a\":1}\0tail", .body_len = 12 };
                CHECK_OK(http_do(&req, &resp, &err));
                CHECK(resp.status == 200);
                CHECK_STREQ(resp.content_type, "text/plain; charset=utf-8");
                /* Response headers, looked up by any case. */
                CHECK_STREQ(http_response_header(&resp, "Content-Type"), "text/plain; charset=utf-8");
                CHECK(!http_response_header(&resp, "x-not-sent"));
                char expected[256];
                int n = snprintf(expected, sizeof(expected),
                                 "%s x=one two ct=application/json cl=12 expect=- body=", methods[i]);
                CHECK(resp.body.len == (size_t) n + 12);
                CHECK(memcmp(resp.body.data, expected, (size_t) n) == 0);
                /* the body arrives byte for byte, NUL included */
                CHECK(memcmp(resp.body.data + n, "{\"a\":1}\0tail", 12) == 0);
                CHECK(err.len == 0);
                http_response_free(&resp);
                buf_free(&err);
        }

        /* GET: no body, no Content-Length; default method */
        http_response resp = {};
        http_request get = { .url = u };
        CHECK_OK(http_do(&get, &resp, NULL));
        CHECK(resp.status == 200);
        CHECK_STREQ(resp.body.data, "GET x=- ct=- cl=- expect=- body=");

        /* PUT without a body still says Content-Length: 0; curl's form Content-Type is not added
         * to a body without one, and large bodies go without "Expect: 100-continue" */
        http_request put = { .method = "PUT", .url = u };
        CHECK_OK(http_do(&put, &resp, NULL));
        CHECK_STREQ(resp.body.data, "PUT x=- ct=- cl=0 expect=- body=");

        size_t big_len = 2 * 1024 * 1024;
        char *big = malloc(big_len);
        CHECK(big);
        memset(big, 'b', big_len);
        http_request post = { .method = "POST", .url = u, .body = big, .body_len = big_len,
                              .max_body = 4 * 1024 * 1024 };
        CHECK_OK(http_do(&post, &resp, NULL));
        free(big);
        /* expect=-: no "Expect: 100-continue", so no waiting for a 100 that a server may never
         * send (checked on the header, not on a time: a 2 MB POST can take a second on a busy
         * machine) */
        CHECK(startswith(resp.body.data, "POST x=- ct=- cl=2097152 expect=- body=bbbb"));
        CHECK(resp.body.len == strlen("POST x=- ct=- cl=2097152 expect=- body=") + big_len);

        /* HEAD */
        http_request head = { .method = "HEAD", .url = u };
        CHECK_OK(http_do(&head, &resp, NULL));
        CHECK(resp.status == 200);
        CHECK(resp.body.len == 0);

        /* a status other than 2xx is a response, not an error */
        _cleanup_free_ char *missing = url(s, "/nope");
        http_request nf = { .url = missing };
        CHECK_OK(http_do(&nf, &resp, NULL));
        CHECK(resp.status == 404);
        CHECK_STREQ(resp.content_type, "application/json");
        CHECK_STREQ(resp.body.data, "{\"error\":\"not found\"}");
        http_response_free(&resp);
}

static void test_body_cap(server *s) {
        _cleanup_free_ char *u = url(s, "/big");
        http_response resp = {};
        buf err = {};
        http_request req = { .url = u, .max_body = 64000, .attempts = 3, .backoff_ms = 1 };
        CHECK_OK(http_do(&req, &resp, NULL));
        CHECK(resp.body.len == 64000);

        req.max_body = 63999;
        CHECK(http_do(&req, &resp, &err) == -ENOBUFS);
        /* not retried: the same body comes back every time */
        _cleanup_free_ char *expected = NULL;
        CHECK(asprintf(&expected, "GET %s: response body larger than 63999 bytes (1 attempt)", u) > 0);
        CHECK_STREQ(err.data, expected);
        http_response_free(&resp);
        buf_free(&err);
}

static void test_retries(server *s) {
        _cleanup_free_ char *u = url(s, "/flaky");
        http_response resp = {};
        buf err = {};

        atomic_store(&s->hits, 0);
        http_request req = { .url = u, .attempts = 5, .backoff_ms = 10, .backoff_max_ms = 40 };
        CHECK_OK(http_do(&req, &resp, &err));
        CHECK(resp.status == 200);
        CHECK_STREQ(resp.body.data, "{\"attempt\":4}");
        CHECK(atomic_load(&s->hits) == 4);
        CHECK(err.len == 0);

        /* attempts used up: the last response is returned and err names the status */
        atomic_store(&s->hits, 0);
        req.attempts = 3;
        CHECK_OK(http_do(&req, &resp, &err));
        CHECK(resp.status == 503);
        CHECK_STREQ(resp.body.data, "{\"error\":\"busy\"}");
        CHECK(atomic_load(&s->hits) == 3);
        _cleanup_free_ char *expected = NULL;
        CHECK(asprintf(&expected, "GET %s: HTTP 503 (3 attempts)", u) > 0);
        CHECK_STREQ(err.data, expected);

        /* a 4xx is final by default */
        _cleanup_free_ char *conflict = url(s, "/status?code=409");
        atomic_store(&s->hits, 0);
        http_request c = { .url = conflict, .attempts = 3, .backoff_ms = 1 };
        CHECK_OK(http_do(&c, &resp, NULL));
        CHECK(resp.status == 409);
        CHECK(atomic_load(&s->hits) == 1);

        /* ... unless listed; and a custom list replaces the 429/5xx default */
        static const int retry_409[] = { 409, 0 };
        c.retry_status = retry_409;
        atomic_store(&s->hits, 0);
        CHECK_OK(http_do(&c, &resp, NULL));
        CHECK(atomic_load(&s->hits) == 3);

        _cleanup_free_ char *unavailable = url(s, "/status?code=503");
        c.url = unavailable;
        atomic_store(&s->hits, 0);
        CHECK_OK(http_do(&c, &resp, NULL));
        CHECK(resp.status == 503);
        CHECK(atomic_load(&s->hits) == 1);

        http_response_free(&resp);
        buf_free(&err);
}

static void test_backoff_and_deadline(server *s) {
        _cleanup_free_ char *u = url(s, "/status?code=503");
        http_response resp = {};

        /* backoff 100, 200, 400 (jittered to at least half): >= 350 ms over four attempts */
        atomic_store(&s->hits, 0);
        http_request req = { .url = u, .attempts = 4, .backoff_ms = 100, .backoff_max_ms = 1000 };
        int64_t start = now_ms();
        CHECK_OK(http_do(&req, &resp, NULL));
        int64_t took = now_ms() - start;
        CHECK(atomic_load(&s->hits) == 4);
        CHECK(took >= 350); /* only a lower bound: a loaded machine is slower, never faster */

        /* the deadline stops retrying long before the attempts run out */
        atomic_store(&s->hits, 0);
        http_request d = { .url = u, .attempts = 1000, .backoff_ms = 50, .backoff_max_ms = 100,
                           .deadline_ms = 600 };
        CHECK_OK(http_do(&d, &resp, NULL));
        CHECK(resp.status == 503);
        /* Counted, not timed: at least 25 ms between attempts fit at most ~20 into 600 ms,
         * however slow the machine; a retry did happen. */
        CHECK(atomic_load(&s->hits) >= 2 && atomic_load(&s->hits) < 30);

        /* an attempt cut short by the deadline after an answered one: the answer is returned,
         * not the timeout (under load the last slice of the deadline can be a few ms) */
        _cleanup_free_ char *late = url(s, "/busy-then-slow");
        _cleanup_buf_ buf derr = BUF_INIT(1024);
        atomic_store(&s->hits, 0);
        http_request bs = { .url = late, .attempts = 5, .backoff_ms = 10, .backoff_max_ms = 10,
                            .deadline_ms = 300 };
        CHECK_OK(http_do(&bs, &resp, &derr));
        CHECK(resp.status == 503);
        CHECK_STREQ(resp.body.data, "{\"error\":\"busy\"}");
        CHECK(atomic_load(&s->hits) == 2);
        _cleanup_free_ char *bs_err = NULL;
        CHECK(asprintf(&bs_err, "GET %s: HTTP 503 (2 attempts, deadline reached)", late) > 0);
        CHECK(resp.attempts == 2 && resp.deadline_reached);
        CHECK_STREQ(derr.data, bs_err);
        sleep_ms(400); /* let the server finish the slow handler */

        /* the deadline also cuts a slow attempt short */
        _cleanup_free_ char *slow = url(s, "/slow");
        buf err = {};
        http_request t = { .url = slow, .attempts = 5, .deadline_ms = 150 };
        start = now_ms();
        /* -ETIMEDOUT is the proof it was cut short: the handler answers 200 after 400 ms */
        CHECK(http_do(&t, &resp, &err) == -ETIMEDOUT);
        took = now_ms() - start;
        CHECK(took >= 140);
        _cleanup_free_ char *expected = NULL;
        CHECK(asprintf(&expected, "GET %s: Connection timed out (1 attempt, deadline reached)", slow) > 0);
        CHECK_STREQ(err.data, expected);
        sleep_ms(400); /* let the server finish the slow handler */

        /* and the per-attempt timeout */
        http_request pt = { .url = slow, .timeout_ms = 100 };
        CHECK(http_do(&pt, &resp, NULL) == -ETIMEDOUT);
        sleep_ms(400);

        http_response_free(&resp);
        buf_free(&err);
}

static void *cancel_later(void *userdata) {
        sleep_ms(300);
        cancel_flag = 1;
        return NULL;
}

/* req.cancel: no attempt after the flag is set, the wait between attempts and a transfer under
 * way are cut short. No upper time bound: the retry waits here are an hour long, so a call that
 * did not end on the flag would hang until ctest's 120 s timeout kills the test; and the slow
 * answer is only sent after the call returned, so a call ended by the answer cannot pass. */
static void test_cancel(server *s) {
        _cleanup_free_ char *u = url(s, "/status?code=503");
        http_response resp = {};
        _cleanup_buf_ buf err = BUF_INIT(1024);
        int r;

        /* set before: nothing is sent */
        cancel_flag = 1;
        atomic_store(&s->hits, 0);
        http_request before = { .url = u, .attempts = 3, .cancel = &cancel_flag };
        CHECK(http_do(&before, &resp, &err) == -ECANCELED);
        CHECK(atomic_load(&s->hits) == 0);
        _cleanup_free_ char *expected = NULL;
        CHECK(asprintf(&expected, "GET %s: cancelled (0 attempts)", u) > 0);
        CHECK_STREQ(err.data, expected);

        /* set while the first attempt is answered: the retry wait (an hour) does not start */
        _cleanup_free_ char *busy = url(s, "/cancel-then-busy");
        cancel_flag = 0;
        atomic_store(&s->hits, 0);
        http_request retry = { .url = busy, .attempts = 5, .backoff_ms = 3600 * 1000L,
                               .backoff_max_ms = 3600 * 1000L, .cancel = &cancel_flag };
        CHECK(http_do(&retry, &resp, &err) == -ECANCELED);
        CHECK(atomic_load(&s->hits) == 1);
        CHECK(resp.attempts == 1 && !resp.deadline_reached);
        CHECK(strstr(err.data, "cancelled (1 attempt)"));

        /* set by another thread in the middle of the wait: cut short, no second attempt */
        cancel_flag = 0;
        atomic_store(&s->hits, 0);
        retry.url = u;
        pthread_t t;
        CHECK(pthread_create(&t, NULL, cancel_later, NULL) == 0);
        int64_t start = now_ms();
        CHECK(http_do(&retry, &resp, &err) == -ECANCELED);
        int64_t took = now_ms() - start;
        CHECK(pthread_join(t, NULL) == 0);
        CHECK(took >= 250); /* it did wait for the flag (lower bound only) */
        /* (on a loaded machine the flag may come while the first attempt is still under way) */
        CHECK(atomic_load(&s->hits) <= 1);
        CHECK(resp.attempts <= 1);

        /* without the flag the same request does wait (and the deadline ends it here) */
        atomic_store(&s->hits, 0);
        http_request uncancelled = { .url = u, .attempts = 5, .backoff_ms = 1000, .backoff_max_ms = 1000,
                                     .deadline_ms = 100 };
        CHECK_OK(http_do(&uncancelled, &resp, NULL));
        CHECK(resp.status == 503);

        /* set while the transfer waits for an answer: aborted by the progress callback (libcurl
         * calls it about once a second while it waits), before the server answered */
        _cleanup_free_ char *hang = url(s, "/cancel-then-hang");
        cancel_flag = 0;
        atomic_store(&s->hits, 0);
        atomic_store(&s->client_done, 0);
        atomic_store(&s->replied, 0);
        http_request transfer = { .url = hang, .timeout_ms = 3600 * 1000L, .cancel = &cancel_flag };
        r = http_do(&transfer, &resp, &err);
        int replied = atomic_load(&s->replied);
        atomic_store(&s->client_done, 1);
        CHECK(r == -ECANCELED);
        CHECK(!replied);
        CHECK(atomic_load(&s->hits) == 1 && resp.attempts == 1);
        CHECK(strstr(err.data, "cancelled (1 attempt)"));
        while (!atomic_load(&s->replied)) /* let the server finish the handler */
                sleep_ms(10);
        http_response_free(&resp);
}

static uint16_t unused_port(void);

/* deadline_at: one absolute end shared by several calls (a caller's stage), earlier than the
 * call's own deadline_ms. */
static void test_deadline_at(server *s) {
        _cleanup_free_ char *slow = url(s, "/slow");
        _cleanup_buf_ buf err = BUF_INIT(1024);
        http_response resp = {};
        char u[64];

        /* Retried until deadline_at, though deadline_ms and attempts would allow far more.
         * Nothing listens on the port: refused at once, whatever the machine's load. */
        snprintf(u, sizeof(u), "http://127.0.0.1:%u/x", unused_port());
        int64_t start = now_ms();
        int64_t at = start + 2000;
        http_request req = { .url = u, .attempts = 1000, .backoff_ms = 20, .backoff_max_ms = 50,
                             .deadline_ms = 60000, .deadline_at = at };
        int r = http_do(&req, &resp, &err);
        if (r != -ECONNREFUSED)
                fprintf(stderr, "deadline_at: %s after %" PRId64 " ms\n", err.data, now_ms() - start);
        /* (the last attempt may be the one cut short at the deadline: a timeout then) */
        CHECK(r == -ECONNREFUSED || r == -ETIMEDOUT);
        CHECK(resp.deadline_reached);
        CHECK(resp.attempts >= 2);
        char count[64];
        snprintf(count, sizeof(count), "(%u attempts, deadline reached)", resp.attempts);
        CHECK(strstr(err.data, count));
        /* Returned once there was no time left for another wait: close to deadline_at (lower
         * bound only: a loaded machine may run late, never early). */
        CHECK(now_ms() >= at - 60);

        /* The next call under the same, now passed, deadline_at sends nothing. */
        while (now_ms() < at)
                sleep_ms(10);
        _cleanup_free_ char *status = url(s, "/status?code=200");
        atomic_store(&s->hits, 0);
        req.url = status;
        CHECK(http_do(&req, &resp, &err) == -ETIMEDOUT);
        CHECK(atomic_load(&s->hits) == 0);
        CHECK(resp.attempts == 0 && resp.deadline_reached);
        _cleanup_free_ char *expected = NULL;
        CHECK(asprintf(&expected, "GET %s: deadline passed before the first attempt (0 attempts)", status) > 0);
        CHECK_STREQ(err.data, expected);

        /* deadline_at cuts a slow attempt short like deadline_ms does. */
        http_request t = { .url = slow, .attempts = 5, .deadline_ms = 60000, .deadline_at = now_ms() + 150 };
        CHECK(http_do(&t, &resp, &err) == -ETIMEDOUT);
        CHECK(resp.attempts == 1 && resp.deadline_reached);
        CHECK(strstr(err.data, "Connection timed out (1 attempt, deadline reached)"));
        sleep_ms(400); /* let the server finish the slow handler */
        http_response_free(&resp);
}

/* Retry-After on 429/503: honoured (seconds and HTTP-date), and when it is past the deadline
 * the call ends at once instead of retrying until the deadline. */
static void test_retry_after(server *s) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        http_response resp = {};

        /* 429 with Retry-After: 1, then 200: the second attempt waits the second, not the 10 ms
         * backoff. */
        _cleanup_free_ char *one = url(s, "/retry-after?s=1");
        atomic_store(&s->hits, 0);
        http_request req = { .url = one, .attempts = 5, .backoff_ms = 10, .backoff_max_ms = 10,
                             .deadline_ms = 20000 };
        int64_t start = now_ms();
        CHECK_OK(http_do(&req, &resp, &err));
        int64_t took = now_ms() - start;
        CHECK(resp.status == 200);
        CHECK(atomic_load(&s->hits) == 2);
        CHECK(resp.attempts == 2 && !resp.deadline_reached);
        CHECK(took >= 950);

        /* The same on a 503, with the HTTP-date form (2-3 s ahead: dates have whole seconds). */
        _cleanup_free_ char *date = url(s, "/retry-after?s=3&date=1&code=503");
        atomic_store(&s->hits, 0);
        req.url = date;
        start = now_ms();
        CHECK_OK(http_do(&req, &resp, &err));
        took = now_ms() - start;
        CHECK(resp.status == 200);
        CHECK(atomic_load(&s->hits) == 2);
        CHECK(took >= 1000);

        /* Retry-After past the deadline: no second attempt, no waiting until the deadline, and
         * err says why. Counted, not timed: the deadline is 400 s away, so a call that waited
         * for it would be killed by ctest's 120 s timeout, and one that retried anyway would
         * get the 200 of the second request. */
        _cleanup_free_ char *far = url(s, "/retry-after?s=500");
        atomic_store(&s->hits, 0);
        http_request d = { .url = far, .attempts = 5, .backoff_ms = 10, .deadline_ms = 400 * 1000L };
        CHECK_OK(http_do(&d, &resp, &err));
        CHECK(resp.status == 429);
        CHECK(atomic_load(&s->hits) == 1);
        CHECK(resp.attempts == 1 && resp.deadline_reached);
        _cleanup_free_ char *expected = NULL;
        CHECK(asprintf(&expected, "GET %s: HTTP 429 with Retry-After 500 s, past the deadline (1 attempt)", far) > 0);
        CHECK_STREQ(err.data, expected);

        /* Without a deadline, a wait over the 600 s cap is not taken either. */
        _cleanup_free_ char *huge = url(s, "/retry-after?s=3600");
        atomic_store(&s->hits, 0);
        http_request h = { .url = huge, .attempts = 5, .backoff_ms = 10 };
        CHECK_OK(http_do(&h, &resp, &err));
        CHECK(resp.status == 429);
        CHECK(atomic_load(&s->hits) == 1);
        CHECK(!resp.deadline_reached);
        CHECK(strstr(err.data, "HTTP 429 with Retry-After 3600 s, too long to wait (1 attempt)"));
        /* (a value whose milliseconds overflow 64 bits is just as long) */
        _cleanup_free_ char *absurd = url(s, "/retry-after?s=9000000000000000000");
        atomic_store(&s->hits, 0);
        h.url = absurd;
        CHECK_OK(http_do(&h, &resp, &err));
        CHECK(resp.status == 429);
        CHECK(atomic_load(&s->hits) == 1);
        CHECK(strstr(err.data, "too long to wait (1 attempt)"));

        /* A Retry-After on another status (500) is not honoured: the backoff applies. */
        _cleanup_free_ char *other = url(s, "/retry-after?s=5&code=500");
        atomic_store(&s->hits, 0);
        http_request o = { .url = other, .attempts = 3, .backoff_ms = 10, .backoff_max_ms = 10 };
        start = now_ms();
        CHECK_OK(http_do(&o, &resp, &err));
        CHECK(resp.status == 200);
        CHECK(atomic_load(&s->hits) == 2);
        http_response_free(&resp);
}

static uint16_t unused_port(void) {
        /* Bind an ephemeral port and release it: nothing listens there afterwards. */
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

static void test_transport_errors(void) {
        http_response resp = {};
        buf err = {};
        char u[64];

        snprintf(u, sizeof(u), "http://127.0.0.1:%u/v1/x?y=1", unused_port());
        char *headers[] = { (char *) "Authorization: Bearer s3cr3t", NULL };
        http_request req = { .method = "POST", .url = u, .headers = headers, .body = "password",
                             .body_len = 8, .attempts = 3, .backoff_ms = 5 };
        CHECK(http_do(&req, &resp, &err) == -ECONNREFUSED);
        CHECK(resp.status == 0);
        _cleanup_free_ char *expected = NULL;
        CHECK(asprintf(&expected, "POST %s: Connection refused (3 attempts)", u) > 0);
        CHECK_STREQ(err.data, expected);
        CHECK(!strstr(err.data, "s3cr3t") && !strstr(err.data, "password"));

        /* only http and https; a bad scheme is not retried */
        http_request ftp = { .url = "ftp://127.0.0.1/x", .attempts = 3, .backoff_ms = 5 };
        CHECK(http_do(&ftp, &resp, &err) == -EINVAL);
        CHECK(strstr(err.data, "(1 attempt)"));

        /* An option libcurl refuses fails the request, once, and err names the option. Strings
         * longer than CURL_MAX_INPUT_LENGTH (8000000) are refused with CURLE_BAD_FUNCTION_ARGUMENT. */
        _cleanup_free_ char *huge = malloc(8000002);
        CHECK(huge);
        memset(huge, 'a', 8000001);
        huge[8000001] = 0;
        http_request refused = { .url = u, .ca_file = huge, .attempts = 3, .backoff_ms = 5 };
        CHECK(http_do(&refused, &resp, &err) == -EINVAL);
        CHECK(resp.status == 0);
        CHECK(strstr(err.data, "libcurl refused CURLOPT_CAINFO"));
        CHECK(strstr(err.data, "(1 attempt)"));

        http_response_free(&resp);
        buf_free(&err);
}

/* unix_socket: the request goes to the socket, whatever host and port the URL names; a socket that
 * is missing or that the caller may not open is a refused connection. */
static void test_unix_socket(void) {
        char dir[] = "/tmp/test-http-unix.XXXXXX", path[128];
        server s = {};
        http_response resp = {};
        buf err = {};

        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/s.sock", dir);
        CHECK_OK(http_server_new(handler, &s, &s.h));
        CHECK_OK(http_server_listen_unix(s.h, path, "unix"));
        CHECK(pthread_create(&s.thread, NULL, server_thread, &s) == 0);

        /* Port 1 on 127.0.0.1 would be refused: the socket is what answers. */
        http_request req = { .method = "PUT", .url = "http://127.0.0.1:1/echo", .unix_socket = path,
                             .body = "over unix", .body_len = 9 };
        CHECK_OK(http_do(&req, &resp, &err));
        CHECK(resp.status == 200);
        CHECK_STREQ(resp.body.data, "PUT x=- ct=- cl=9 expect=- body=over unix");

        /* A proxy in the environment is not used for it either. */
        CHECK(setenv("http_proxy", "http://127.0.0.1:1", 1) == 0);
        http_request via_proxy = { .url = "http://169.254.169.254/echo", .unix_socket = path };
        CHECK_OK(http_do(&via_proxy, &resp, &err));
        CHECK(resp.status == 200 && startswith(resp.body.data, "GET "));
        CHECK(unsetenv("http_proxy") == 0);

        /* Not open to the caller (another user; root opens anything): a connection failure,
         * retried like one. */
        http_request denied = { .url = "http://x/echo", .unix_socket = path, .attempts = 2, .backoff_ms = 5 };
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                bool root = geteuid() == 0;
                if (root && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                             setresuid(65534, 65534, 65534) < 0))
                        _exit(2);
                if (!root && chmod(path, 0) < 0)
                        _exit(2);
                int r = http_do(&denied, &resp, &err);
                _exit(r == -ECONNREFUSED && strstr(err.data, "(2 attempts)") ? 0 : 1);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(chmod(path, 0600) == 0);

        server_stop(&s); /* removes the socket */
        http_request gone = { .url = "http://x/echo", .unix_socket = path, .attempts = 2, .backoff_ms = 5 };
        CHECK(http_do(&gone, &resp, &err) == -ECONNREFUSED);
        CHECK_STREQ(err.data, "GET http://x/echo: Connection refused (2 attempts)");
        http_response_free(&resp);
        buf_free(&err);
        CHECK(rmdir(dir) == 0);
}

/* ---- TLS against openssl s_server, with a throwaway CA ---- */

static char tls_dir[] = "/tmp/test-http-tls.XXXXXX";
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

/* Start argv in tls_dir, output discarded; it dies with this process (PDEATHSIG). */
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
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "%s %s failed\n", argv[0], argv[1]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
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

static uint16_t unused_port(void);

static void test_tls(void) {
        char port_arg[32], path[128], u[64];
        http_response resp = {};
        buf err = {};

        CHECK(mkdtemp(tls_dir));
        CHECK(atexit(tls_cleanup) == 0);
        snprintf(path, sizeof(path), "%s/san.ext", tls_dir);
        FILE *f = fopen(path, "we");
        CHECK(f);
        /* 10.10.0.11: a guest address reached only through connect_to (nothing is sent there). */
        fputs("subjectAltName=IP:127.0.0.1,IP:10.10.0.11\n", f);
        CHECK(fclose(f) == 0);

        run((const char *[]){ "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                        "-days", "1", "-subj", "/CN=test-ca", NULL });
        make_cert("server", "127.0.0.1");
        make_cert("client", "client");

        uint16_t port = unused_port();
        snprintf(port_arg, sizeof(port_arg), "127.0.0.1:%u", port);
        /* -Verify: a client certificate signed by the CA is required; -www answers GET / */
        pid_t s_server = spawn((const char *[]){ "openssl", "s_server", "-accept", port_arg, "-cert",
                                         "server.pem", "-key", "server.key", "-CAfile", "ca.pem",
                                         "-Verify", "1", "-www", "-quiet", NULL });
        snprintf(u, sizeof(u), "https://127.0.0.1:%u/", port);

        char ca[128], cert[128], key[128];
        snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
        snprintf(cert, sizeof(cert), "%s/client.pem", tls_dir);
        snprintf(key, sizeof(key), "%s/client.key", tls_dir);
        http_request req = { .url = u, .ca_file = ca, .cert_file = cert, .key_file = key,
                             .attempts = 50, .backoff_ms = 50, .backoff_max_ms = 100,
                             .deadline_ms = 10000 };
        /* retried while s_server starts up (connection refused) */
        CHECK_OK(http_do(&req, &resp, &err));
        CHECK(resp.status == 200);
        CHECK(strstr(resp.body.data, "s_server"));

        /* a server the CA did not sign is not trusted, and that is not retried */
        http_request untrusted = { .url = u, .cert_file = cert, .key_file = key, .attempts = 3,
                                   .backoff_ms = 5 };
        CHECK(http_do(&untrusted, &resp, &err) == -EIO);
        CHECK(strstr(err.data, u));
        CHECK(strstr(err.data, "certificate"));
        CHECK(strstr(err.data, "(1 attempt)"));

        /* connect_to: the URL names the guest's address, the connection goes to loopback, and
         * the certificate is checked against the URL's address */
        char guest_url[64], loopback[32];
        snprintf(guest_url, sizeof(guest_url), "https://10.10.0.11:%u/", port);
        snprintf(loopback, sizeof(loopback), "127.0.0.1:%u", port);
        http_request forwarded = { .url = guest_url, .ca_file = ca, .cert_file = cert, .key_file = key,
                                   .connect_to = loopback, .timeout_ms = 5000 };
        CHECK_OK(http_do(&forwarded, &resp, &err));
        CHECK(resp.status == 200);
        snprintf(guest_url, sizeof(guest_url), "https://10.10.0.12:%u/", port);
        CHECK(http_do(&forwarded, &resp, &err) == -EIO);
        CHECK(strstr(err.data, "10.10.0.12"));

        /* without a client certificate the server refuses the handshake */
        http_request anonymous = { .url = u, .ca_file = ca };
        CHECK(http_do(&anonymous, &resp, &err) < 0);

        CHECK(kill(s_server, SIGTERM) == 0);
        CHECK(waitpid(s_server, NULL, 0) == s_server);
        http_response_free(&resp);
        buf_free(&err);
}

static void test_escape(void) {
        _cleanup_free_ char *e = http_escape("a b/c?d=é~-._");
        CHECK_STREQ(e, "a%20b%2Fc%3Fd%3D%C3%A9~-._");

        char *d = NULL;
        CHECK_OK(http_unescape(e, strlen(e), false, &d));
        CHECK_STREQ(d, "a b/c?d=é~-._");
        free(d);
        CHECK_OK(http_unescape("a+b%2B", 6, true, &d));
        CHECK_STREQ(d, "a b+");
        free(d);
        CHECK_OK(http_unescape("a+b", 3, false, &d));
        CHECK_STREQ(d, "a+b");
        free(d);
        /* length bounds the input: the escape at the end is cut short */
        CHECK(http_unescape("ab%41", 4, false, &d) == -EBADMSG);
        CHECK(http_unescape("%g1", 3, false, &d) == -EBADMSG);
        CHECK(http_unescape("%00", 3, false, &d) == -EBADMSG);
}

int main(void) {
        CHECK_OK(http_global_init());
        test_escape();
        test_transport_errors();
        test_unix_socket();
        test_tls();

        server s = {};
        server_start(&s);
        test_methods(&s);
        test_body_cap(&s);
        test_retries(&s);
        test_backoff_and_deadline(&s);
        test_cancel(&s);
        test_deadline_at(&s);
        test_retry_after(&s);
        server_stop(&s);
        return 0;
}
