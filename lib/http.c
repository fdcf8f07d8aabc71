/* HTTP client over libcurl. One easy handle per attempt keeps attempts independent (no reused
 * connection to a server that just failed). Every foreign code (CURLcode) is converted to a
 * negative errno here, once. */
#include "http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#include "crypto.h"
#include "strv.h"
#include "time-util.h"

#define HTTP_DEFAULT_TIMEOUT_MS 10000L
#define HTTP_DEFAULT_MAX_BODY (4u * 1024u * 1024u)
#define HTTP_DEFAULT_BACKOFF_MS 200L
#define HTTP_DEFAULT_BACKOFF_MAX_MS 5000L
/* A Retry-After longer than this is not waited for even without a deadline: no caller of this
 * client wants to sleep for an hour on a server's word. */
#define HTTP_MAX_RETRY_AFTER_MS 600000L

int http_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO; }

void http_response_free(http_response *resp) {
        if (!resp)
                return;
        buf_free(&resp->body);
        free(resp->content_type);
        resp->content_type = NULL;
        strv_free(resp->headers);
        resp->headers = NULL;
        resp->status = 0;
        resp->attempts = 0;
        resp->deadline_reached = false;
}

char *http_escape(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        size_t len = strlen(s);
        char *out = malloc(len * 3 + 1), *p = out;
        if (!out)
                return NULL;
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                /* RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" */
                if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                    *c == '-' || *c == '.' || *c == '_' || *c == '~')
                        *p++ = (char) *c;
                else {
                        *p++ = '%';
                        *p++ = hex[*c >> 4];
                        *p++ = hex[*c & 15];
                }
        }
        *p = 0;
        return out;
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int http_unescape(const char *s, size_t len, bool plus_is_space, char **ret) {
        char *out = malloc(len + 1), *p = out;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c == '%') {
                        int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
                        int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
                        if (lo < 0 || (hi | lo) == 0) {
                                free(out);
                                return -EBADMSG;
                        }
                        c = (char) (hi << 4 | lo);
                        i += 2;
                } else if (c == '+' && plus_is_space)
                        c = ' ';
                else if (c == 0) {
                        free(out);
                        return -EBADMSG;
                }
                *p++ = c;
        }
        *p = 0;
        *ret = out;
        return 0;
}

static int curl_code_to_errno(CURLcode c) {
        switch (c) {
        case CURLE_OK:
                return 0;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_BAD_FUNCTION_ARGUMENT:
                return -EINVAL;
        case CURLE_UNKNOWN_OPTION:
        case CURLE_NOT_BUILT_IN:
                return -EOPNOTSUPP;
        default:
                return -EIO;
        }
}

/* Transport failures worth another attempt: the server may come up, the network may recover.
 * A bad URL, an oversized body or a TLS trust failure will fail the same way again. */
static bool curl_code_retryable(CURLcode c) {
        switch (c) {
        case CURLE_OUT_OF_MEMORY:
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_BAD_FUNCTION_ARGUMENT:
        case CURLE_WRITE_ERROR: /* our body cap */
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
                return false;
        default:
                return true;
        }
}

static bool status_retryable(const http_request *req, long status) {
        if (!req->retry_status)
                return status == 429 || (status >= 500 && status <= 599);
        for (const int *s = req->retry_status; *s; s++)
                if (*s == status)
                        return true;
        return false;
}

static bool has_header(char *const *headers, const char *name) {
        size_t n = strlen(name);
        for (char *const *h = headers; h && *h; h++)
                if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':')
                        return true;
        return false;
}

typedef struct write_ctx {
        buf *body;
        int error;
        CURL *curl;
        const http_request *req;
} write_ctx;

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        write_ctx *w = userdata;
        int r;

        if (w->req->on_body) {
                long status = 0;
                /* The headers are complete once body bytes arrive, so the status is known. */
                (void) curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
                r = w->req->on_body(status, data, size * nmemb, w->req->on_body_userdata);
        } else
                r = buf_append(w->body, data, size * nmemb);
        if (r < 0) {
                w->error = r;
                return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        }
        return size * nmemb;
}

/* Response headers as "name: value" with the name lower-cased; a status line starts them over
 * (an interim 100 Continue, or the next attempt). */
#define HTTP_MAX_HEADERS 200
static size_t header_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        http_response *resp = userdata;
        size_t len = size * nmemb, n = len;

        while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
                n--;
        if (n >= 5 && strneq(data, "HTTP/", 5)) {
                strv_free(resp->headers);
                resp->headers = NULL;
                return len;
        }
        const char *colon = memchr(data, ':', n);
        if (n == 0 || !colon || strv_length(resp->headers) >= HTTP_MAX_HEADERS)
                return len;
        char *line = strndup(data, n);
        if (!line)
                return 0; /* aborts the transfer */
        for (char *c = line; *c && *c != ':'; c++)
                *c = (char) tolower((unsigned char) *c);
        return strv_consume(&resp->headers, line) < 0 ? 0 : len;
}

const char *http_response_header(const http_response *resp, const char *name) {
        size_t n = strlen(name);
        for (char **h = resp->headers; h && *h; h++)
                if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':') {
                        const char *v = *h + n + 1;
                        while (*v == ' ' || *v == '\t')
                                v++;
                        return v;
                }
        return NULL;
}

/* libcurl's progress callback, set only for a cancellable request: non-zero aborts the transfer
 * (CURLE_ABORTED_BY_CALLBACK). */
static int xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        const http_request *req = userdata;
        return *req->cancel ? 1 : 0;
}

/* Every method but GET and HEAD carries its body, possibly empty, so a bodiless PUT still sends
 * "Content-Length: 0"; a GET carries one only when given. */
static bool sends_body(const char *method, size_t body_len) {
        return !streq(method, "HEAD") && (!streq(method, "GET") || body_len > 0);
}

static struct curl_slist *build_headers(const http_request *req, const char *method,
                                        int *ret_error) {
        struct curl_slist *list = NULL, *l;

        for (char *const *h = req->headers; h && *h; h++) {
                l = curl_slist_append(list, *h);
                if (!l)
                        goto fail;
                list = l;
        }
        /* The headers go out exactly as given: drop libcurl's own form Content-Type for bodies
         * and its "Expect: 100-continue" round trip. */
        if (sends_body(method, req->body_len) && !has_header(req->headers, "content-type")) {
                l = curl_slist_append(list, "Content-Type:");
                if (!l)
                        goto fail;
                list = l;
        }
        if (!has_header(req->headers, "expect")) {
                l = curl_slist_append(list, "Expect:");
                if (!l)
                        goto fail;
                list = l;
        }
        *ret_error = 0;
        return list;
fail:
        curl_slist_free_all(list);
        *ret_error = -ENOMEM;
        return NULL;
}

/* One attempt. Returns 0 with resp->status and *ret_retry_after_s (the reply's Retry-After in
 * seconds, either form; 0 without one) set when a response arrived, or a negative errno,
 * *ret_retryable and libcurl's message in errbuf (CURL_ERROR_SIZE bytes) when none did.
 * *ret_errbuf_first is set when errbuf explains the failure better than the errno does (an
 * option libcurl refused). */
static int http_attempt(const http_request *req, const char *method, struct curl_slist *headers,
                        long timeout_ms, http_response *resp, char *errbuf, bool *ret_retryable,
                        bool *ret_errbuf_first, int64_t *ret_retry_after_s) {
        write_ctx w = { .body = &resp->body, .req = req };
        struct curl_slist *connect_to = NULL;
        const char *refused = NULL; /* the first option libcurl did not accept */
        CURLcode c = CURLE_OK;
        int r;

        buf_clear(&resp->body);
        free(resp->content_type);
        resp->content_type = NULL;
        strv_free(resp->headers);
        resp->headers = NULL;
        resp->status = 0;
        *ret_retryable = false;
        *ret_errbuf_first = false;
        *ret_retry_after_s = 0;

        CURL *curl = curl_easy_init();
        if (!curl)
                return -ENOMEM;
        w.curl = curl;

        errbuf[0] = 0;
        /* Each option is part of the request's meaning, CURLOPT_PROTOCOLS_STR (the protocol
         * allow-list, unknown to libcurl before 7.85) most of all: the first one libcurl refuses
         * fails the request instead of sending it without. */
#define SETOPT(opt, val)                                                                   \
        do {                                                                               \
                if (c == CURLE_OK && (c = curl_easy_setopt(curl, opt, val)) != CURLE_OK)  \
                        refused = #opt;                                                    \
        } while (0)
        SETOPT(CURLOPT_ERRORBUFFER, errbuf);
        SETOPT(CURLOPT_URL, req->url);
        SETOPT(CURLOPT_NOSIGNAL, 1L);
        SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms);
        SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(CURLOPT_NOPROXY, "127.0.0.1,localhost,169.254.169.254");
        SETOPT(CURLOPT_HTTPHEADER, headers);
        SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
        SETOPT(CURLOPT_WRITEDATA, &w);
        SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
        SETOPT(CURLOPT_HEADERDATA, resp);
        if (req->cancel) {
                SETOPT(CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
                SETOPT(CURLOPT_XFERINFODATA, (void *) req);
                SETOPT(CURLOPT_NOPROGRESS, 0L);
        }
        if (req->ca_file)
                SETOPT(CURLOPT_CAINFO, req->ca_file);
        if (req->cert_file)
                SETOPT(CURLOPT_SSLCERT, req->cert_file);
        if (req->key_file)
                SETOPT(CURLOPT_SSLKEY, req->key_file);
        /* Blobs: the PEM text without its NUL. The CA and certificate are public and copied;
         * the key stays in the caller's memory (NOCOPY), so no copy of it outlives the call
         * unwiped. */
        if (req->ca_pem) {
                struct curl_blob b = { (void *) req->ca_pem, strlen(req->ca_pem), CURL_BLOB_COPY };
                SETOPT(CURLOPT_CAINFO_BLOB, &b);
        }
        if (req->cert_pem) {
                struct curl_blob b = { (void *) req->cert_pem, strlen(req->cert_pem), CURL_BLOB_COPY };
                SETOPT(CURLOPT_SSLCERT_BLOB, &b);
                SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
        }
        if (req->key_pem) {
                struct curl_blob b = { (void *) req->key_pem, strlen(req->key_pem), CURL_BLOB_NOCOPY };
                SETOPT(CURLOPT_SSLKEY_BLOB, &b);
                SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        }
        if (req->tls_no_verify) {
                SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
                SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (req->connect_to) {
                _cleanup_free_ char *entry = NULL;
                /* Empty host and port: the rule applies to whatever the URL names. */
                if (asprintf(&entry, "::%s", req->connect_to) < 0 || !(connect_to = curl_slist_append(NULL, entry))) {
                        r = -ENOMEM;
                        goto out;
                }
                SETOPT(CURLOPT_CONNECT_TO, connect_to);
        }
        if (req->unix_socket)
                SETOPT(CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);

        if (streq(method, "HEAD"))
                SETOPT(CURLOPT_NOBODY, 1L);
        else if (sends_body(method, req->body_len)) {
                /* POSTFIELDS makes it a POST; CUSTOMREQUEST renames the method, keeping the body. */
                SETOPT(CURLOPT_POSTFIELDS, req->body ? req->body : "");
                SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
                if (!streq(method, "POST"))
                        SETOPT(CURLOPT_CUSTOMREQUEST, method);
        }
#undef SETOPT
        if (refused) {
                /* Not worth retrying: the same options are refused the same way. */
                snprintf(errbuf, CURL_ERROR_SIZE, "libcurl refused %s: %s", refused, curl_easy_strerror(c));
                *ret_errbuf_first = true;
                r = curl_code_to_errno(c);
                goto out;
        }

        c = curl_easy_perform(curl);
        if (c == CURLE_OK) {
                const char *ct = NULL;
                CURLcode ci = curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
                if (ci != CURLE_OK) {
                        snprintf(errbuf, CURL_ERROR_SIZE, "libcurl reported no response status: %s",
                                 curl_easy_strerror(ci));
                        resp->status = 0;
                        *ret_errbuf_first = true;
                        r = -EIO;
                        goto out;
                }
                /* libcurl turns the HTTP-date form into seconds from now; a date in the past
                 * comes back negative before libcurl 8.12. */
                curl_off_t retry_after = 0;
                if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
                        *ret_retry_after_s = (int64_t) retry_after;
                if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) {
                        resp->content_type = strdup(ct);
                        if (!resp->content_type) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
                r = 0;
                goto out;
        }

        if (c == CURLE_ABORTED_BY_CALLBACK && req->cancel && *req->cancel) {
                snprintf(errbuf, CURL_ERROR_SIZE, "cancelled");
                *ret_errbuf_first = true;
                r = -ECANCELED;
                goto out;
        }
        *ret_retryable = curl_code_retryable(c);
        if (!errbuf[0])
                snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(c));
        if (c == CURLE_WRITE_ERROR && w.error < 0) {
                r = w.error;
                if (req->on_body) {
                        /* The caller's callback stopped it: its reason, not libcurl's. */
                        snprintf(errbuf, CURL_ERROR_SIZE, "stopped by the body callback: %s", strerror(-r));
                        *ret_errbuf_first = true;
                }
        }
        else
                r = curl_code_to_errno(c);
out:
        curl_easy_cleanup(curl);
        curl_slist_free_all(connect_to);
        return r;
}

static void set_error(buf *err, const char *method, const char *url, const char *reason,
                      unsigned attempts, bool at_deadline) {
        if (!err)
                return;
        buf_clear(err);
        /* Best effort: a failure to format the message must not mask the real error. */
        (void) buf_printf(err, "%s %s: %s (%u attempt%s%s)", method, url, reason, attempts,
                          attempts == 1 ? "" : "s", at_deadline ? ", deadline reached" : "");
}

/* Whether a reply's Retry-After is honoured: 429 Too Many Requests and 503 Service Unavailable
 * are the statuses RFC 9110 gives it a meaning for. */
static bool status_has_retry_after(long status) {
        return status == 429 || status == 503;
}

int http_do(const http_request *req, http_response *resp, buf *err) {
        const char *method = req->method ? req->method : "GET";
        long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
        long delay = req->backoff_ms > 0 ? req->backoff_ms : HTTP_DEFAULT_BACKOFF_MS;
        long delay_max = req->backoff_max_ms > 0 ? req->backoff_max_ms : HTTP_DEFAULT_BACKOFF_MAX_MS;
        if (delay > delay_max)
                delay = delay_max;
        unsigned max_attempts = req->attempts > 0 && !req->on_body ? req->attempts : 1;
        int64_t deadline = req->deadline_ms > 0 ? time_now_ms() + req->deadline_ms : 0;
        if (req->deadline_at > 0 && (deadline == 0 || req->deadline_at < deadline))
                deadline = req->deadline_at;
        unsigned attempt = 0;
        char curl_error[CURL_ERROR_SIZE] = "";
        bool errbuf_first = false, retryable = false;
        /* Retries stopped because the deadline left no time for the next attempt or wait. */
        bool at_deadline = false;
        /* The Retry-After (s) that ended the retries: past the deadline or over the cap. */
        int64_t retry_after_refused = 0;
        /* The response of the latest attempt that got one, while a retry is under way. */
        http_response prev = { 0 };
        int r = 0;

        http_response_free(resp);
        resp->body = BUF_INIT(req->max_body > 0 ? req->max_body : HTTP_DEFAULT_MAX_BODY);

        struct curl_slist *headers = build_headers(req, method, &r);
        if (r < 0) {
                set_error(err, method, req->url, strerror(-r), 0, false);
                return r;
        }

        for (;;) {
                long t = timeout_ms;
                bool cut = false;
                int64_t retry_after = 0;

                retryable = false;
                if (deadline > 0) {
                        int64_t left = deadline - time_now_ms();
                        if (left <= 0) {
                                /* A tiny deadline before the first attempt, or a backoff sleep
                                 * that woke up past the deadline (a busy machine): an earlier
                                 * answer in prev is returned below, not the timeout. */
                                r = -ETIMEDOUT;
                                at_deadline = true;
                                retryable = true;
                                break;
                        }
                        if (left < t) {
                                t = (long) left;
                                cut = true;
                        }
                }

                if (req->cancel && *req->cancel) {
                        r = -ECANCELED;
                        snprintf(curl_error, sizeof(curl_error), "cancelled");
                        errbuf_first = true;
                        retryable = false;
                        break;
                }
                attempt++;
                r = http_attempt(req, method, headers, t, resp, curl_error, &retryable, &errbuf_first,
                                 &retry_after);
                if (r == -ETIMEDOUT && cut)
                        at_deadline = true;
                if (r == 0 && !status_retryable(req, resp->status))
                        break;
                if (r < 0 && !retryable)
                        break;
                if (attempt >= max_attempts)
                        break;

                /* Jitter in [d/2, d] spreads clients that failed together. */
                long sleep = delay / 2 + (long) (random_u64() % (uint64_t) (delay - delay / 2 + 1));
                if (r == 0 && retry_after > 0 && status_has_retry_after(resp->status)) {
                        /* The server said when to come back: not sooner, and not at all when
                         * that is past the deadline (waiting would only end in failing then). */
                        int64_t ra_ms = retry_after > HTTP_MAX_RETRY_AFTER_MS / 1000 ? HTTP_MAX_RETRY_AFTER_MS + 1
                                                                                  : retry_after * 1000;
                        bool past = deadline > 0 && time_now_ms() + ra_ms >= deadline;
                        if (past || ra_ms > HTTP_MAX_RETRY_AFTER_MS) {
                                retry_after_refused = retry_after;
                                at_deadline = past;
                                break;
                        }
                        if (ra_ms > sleep)
                                sleep = (long) ra_ms;
                }
                if (deadline > 0 && time_now_ms() + sleep >= deadline) {
                        at_deadline = true;
                        break;
                }
                if (time_sleep_ms_cancellable(sleep, req->cancel) < 0) {
                        /* The answer of the attempt before, if any, is not the request's result. */
                        r = -ECANCELED;
                        snprintf(curl_error, sizeof(curl_error), "cancelled");
                        errbuf_first = true;
                        retryable = false;
                        break;
                }
                delay = delay > delay_max / 2 ? delay_max : delay * 2;
                if (r == 0) {
                        /* Keep this answer: the next attempt may get none (cut short by the
                         * deadline, the server going away), and an answer says more. */
                        http_response_free(&prev);
                        prev = *resp;
                        *resp = (http_response){ .body = BUF_INIT(prev.body.max) };
                }
        }
        curl_slist_free_all(headers);

        if (r < 0 && retryable && prev.status != 0) {
                /* The last attempt failed in transit after an earlier one was answered. */
                http_response_free(resp);
                *resp = prev;
                prev = (http_response){ 0 };
                r = 0;
        }
        http_response_free(&prev);
        resp->attempts = attempt;
        resp->deadline_reached = at_deadline;

        if (r == 0) {
                if (status_retryable(req, resp->status) && err) {
                        char reason[128];
                        if (retry_after_refused > 0)
                                snprintf(reason, sizeof(reason), "HTTP %ld with Retry-After %" PRId64 " s, %s",
                                         resp->status, retry_after_refused,
                                         at_deadline ? "past the deadline" : "too long to wait");
                        else
                                snprintf(reason, sizeof(reason), "HTTP %ld", resp->status);
                        set_error(err, method, req->url, reason, attempt, at_deadline && retry_after_refused == 0);
                }
                return 0;
        }
        if (attempt == 0) {
                set_error(err, method, req->url,
                          r == -ECANCELED ? "cancelled" : "deadline passed before the first attempt", 0, false);
                return r;
        }

        if (r == -ENOBUFS && !req->on_body) {
                char reason[64];
                snprintf(reason, sizeof(reason), "response body larger than %zu bytes",
                         resp->body.max);
                set_error(err, method, req->url, reason, attempt, false);
        } else if (r == -EHOSTUNREACH)
                set_error(err, method, req->url, "Could not resolve host", attempt, at_deadline);
        else if ((errbuf_first || r == -EIO) && curl_error[0])
                /* Unmapped failures (TLS trust, protocol errors): libcurl's text says more. */
                set_error(err, method, req->url, curl_error, attempt, at_deadline);
        else
                set_error(err, method, req->url, strerror(-r), attempt, at_deadline);
        return r;
}

int http_status_to_errno(long status) {
        switch (status) {
        case 400:
                return -EINVAL;
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 409:
                return -EEXIST;
        case 429:
                return -EBUSY;
        default:
                return status >= 500 && status < 600 ? -EIO : -EPROTO;
        }
}
