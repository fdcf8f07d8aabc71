/* Single-threaded HTTP/1.1 server: one poll() loop over listeners and connections, every socket
 * non-blocking, one request per connection. Each connection is a small state machine:
 * READ (head, then Content-Length body) -> WRITE (response) -> LINGER (error replies only: drain
 * what the client still sends so closing does not reset the connection before it read the reply).
 * Chunked request bodies are rejected with 411: every client of ours sends Content-Length. */
#include "httpd.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"
#include "strv.h"
#include "time-util.h"

#define HTTPD_MAX_CONNECTIONS 512
#define HTTPD_LINGER_MS 2000
#define HTTPD_READ_CHUNK 16384

typedef struct listener {
        int fd;
        char *tag;
} listener;

typedef enum conn_state {
        CONN_READ,
        CONN_WRITE,
        CONN_LINGER,
} conn_state;

typedef struct conn {
        int fd;
        conn_state state;
        char peer[INET6_ADDRSTRLEN];
        const char *tag;           /* owned by the listener, which lives as long as the server */
        buf in;
        size_t head_len;           /* 0 until the head is parsed */
        httpd_request_head head;
        buf out;
        size_t out_done;
        bool linger;               /* drain input after the reply (error replies) */
        int io_timeout_ms;
        int64_t deadline;          /* monotonic ms */
} conn;

struct httpd {
        httpd_handler handler;
        void *userdata;
        listener *listeners;
        size_t n_listeners;
        conn **conns;
        size_t n_conns;
        struct pollfd *pfds;
        size_t pfds_cap;
        int io_timeout_ms;
};

static const char *status_reason(int status) {
        switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 412: return "Precondition Failed";
        case 413: return "Content Too Large";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return "Status";
        }
}

/* ---- request head parser ---- */

void httpd_request_head_done(httpd_request_head *h) {
        free(h->method);
        free(h->raw_path);
        free(h->path);
        free(h->query);
        strv_free(h->headers);
        *h = (httpd_request_head){};
}

static bool is_tchar(char c) {
        /* RFC 9110 token characters */
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/* Visible ASCII for the request target; anything else must arrive percent-encoded. */
static bool is_target_char(char c) { return c > 0x20 && c < 0x7f; }

static int parse_request_line(const char *line, size_t len, httpd_request_head *h) {
        const char *end = line + len, *sp1, *sp2, *q;

        sp1 = memchr(line, ' ', len);
        if (!sp1 || sp1 == line)
                return -EBADMSG;
        for (const char *p = line; p < sp1; p++)
                if (!is_tchar(*p))
                        return -EBADMSG;
        sp2 = memchr(sp1 + 1, ' ', (size_t) (end - sp1 - 1));
        if (!sp2 || sp2 == sp1 + 1)
                return -EBADMSG;
        if ((size_t) (end - sp2 - 1) != strlen("HTTP/1.1") ||
            (!strneq(sp2 + 1, "HTTP/1.1", 8) && !strneq(sp2 + 1, "HTTP/1.0", 8)))
                return -EBADMSG;
        /* origin-form only: "/path[?query]" */
        if (sp1[1] != '/')
                return -EBADMSG;
        for (const char *p = sp1 + 1; p < sp2; p++)
                if (!is_target_char(*p))
                        return -EBADMSG;

        q = memchr(sp1 + 1, '?', (size_t) (sp2 - sp1 - 1));
        h->method = strndup(line, (size_t) (sp1 - line));
        h->raw_path = strndup(sp1 + 1, (size_t) ((q ? q : sp2) - sp1 - 1));
        h->query = q ? strndup(q + 1, (size_t) (sp2 - q - 1)) : strdup("");
        if (!h->method || !h->raw_path || !h->query)
                return -ENOMEM;
        return http_unescape(h->raw_path, strlen(h->raw_path), false, &h->path);
}

static int parse_content_length(const char *value, size_t *ret) {
        size_t n = 0;
        if (!*value)
                return -EBADMSG;
        for (const char *p = value; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EBADMSG;
                if (n > HTTPD_MAX_BODY)
                        return -EMSGSIZE; /* stop before the value can overflow */
                n = n * 10 + (size_t) (*p - '0');
        }
        if (n > HTTPD_MAX_BODY)
                return -EMSGSIZE;
        *ret = n;
        return 0;
}

static int parse_header_line(const char *line, size_t len, httpd_request_head *h,
                             bool *seen_length) {
        const char *colon = memchr(line, ':', len), *v, *vend = line + len;
        if (!colon || colon == line)
                return -EBADMSG; /* also rejects obsolete line folding (leading whitespace) */
        for (const char *p = line; p < colon; p++)
                if (!is_tchar(*p))
                        return -EBADMSG;
        for (v = colon + 1; v < vend && is_ows(*v); v++)
                ;
        while (vend > v && is_ows(vend[-1]))
                vend--;
        for (const char *p = v; p < vend; p++)
                if ((unsigned char) *p < 0x20 && *p != '\t')
                        return -EBADMSG;

        size_t name_len = (size_t) (colon - line), value_len = (size_t) (vend - v);
        char *entry = malloc(name_len + 2 + value_len + 1);
        if (!entry)
                return -ENOMEM;
        for (size_t i = 0; i < name_len; i++)
                entry[i] = (char) (line[i] >= 'A' && line[i] <= 'Z' ? line[i] + 32 : line[i]);
        memcpy(entry + name_len, ": ", 2);
        memcpy(entry + name_len + 2, v, value_len);
        entry[name_len + 2 + value_len] = 0;

        const char *value = entry + name_len + 2;
        int r = 0;
        if (startswith(entry, "content-length: ")) {
                size_t n = 0;
                r = parse_content_length(value, &n);
                /* Repeated Content-Length headers must agree (request smuggling otherwise). */
                if (r == 0 && *seen_length && n != h->content_length)
                        r = -EBADMSG;
                if (r == 0) {
                        h->content_length = n;
                        *seen_length = true;
                }
        } else if (startswith(entry, "transfer-encoding: "))
                r = -ENOTSUP;
        if (r < 0) {
                free(entry);
                return r;
        }
        return strv_consume(&h->headers, entry);
}

int httpd_parse_request_head(const char *data, size_t len, httpd_request_head *ret) {
        httpd_request_head h = {};
        const char *p = data, *end = data + len;
        bool seen_length = false, first = true;
        int r = -EBADMSG;

        if (memchr(data, 0, len))
                goto fail;
        for (;;) {
                const char *eol = NULL;
                for (const char *c = p; c < end; c++)
                        if (*c == '\r' || *c == '\n') {
                                eol = c;
                                break;
                        }
                /* Lines end in CRLF; a bare CR or LF is malformed. */
                if (!eol || eol + 1 >= end || eol[0] != '\r' || eol[1] != '\n') {
                        r = -EBADMSG;
                        goto fail;
                }
                size_t line_len = (size_t) (eol - p);
                if (line_len == 0) {
                        /* The empty line ends the head; nothing may follow it here. */
                        if (first || eol + 2 != end) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        break;
                }
                r = first ? parse_request_line(p, line_len, &h)
                          : parse_header_line(p, line_len, &h, &seen_length);
                if (r < 0)
                        goto fail;
                first = false;
                p = eol + 2;
        }
        if (!h.headers) {
                h.headers = calloc(1, sizeof(char *));
                if (!h.headers) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        *ret = h;
        return 0;
fail:
        httpd_request_head_done(&h);
        return r;
}

/* ---- request/response helpers for handlers ---- */

const char *httpd_request_header(const httpd_request *req, const char *name) {
        size_t n = strlen(name);
        for (char **h = req->headers; h && *h; h++)
                if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':' && (*h)[n + 1] == ' ')
                        return *h + n + 2;
        return NULL;
}

char *httpd_query_param(const httpd_request *req, const char *name) {
        const char *p = req->query;
        while (p && *p) {
                const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
                const char *eq = memchr(p, '=', (size_t) (end - p));
                const char *name_end = eq ? eq : end;
                _cleanup_free_ char *key = NULL;
                if (http_unescape(p, (size_t) (name_end - p), true, &key) == 0 && streq(key, name)) {
                        char *value = NULL;
                        if (!eq)
                                return strdup("");
                        if (http_unescape(eq + 1, (size_t) (end - eq - 1), true, &value) == 0)
                                return value;
                        return NULL;
                }
                p = amp ? amp + 1 : NULL;
        }
        return NULL;
}

int httpd_respond(httpd_response *resp, int status, const char *fmt, ...) {
        va_list ap;
        resp->status = status;
        buf_clear(&resp->body);
        va_start(ap, fmt);
        int r = buf_vprintf(&resp->body, fmt, ap);
        va_end(ap);
        return r;
}

/* ---- server ---- */

int httpd_new(httpd_handler handler, void *userdata, httpd **ret) {
        httpd *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->handler = handler;
        h->userdata = userdata;
        h->io_timeout_ms = HTTPD_READ_TIMEOUT_MS;
        *ret = h;
        return 0;
}

static void conn_free(conn *c) {
        if (!c)
                return;
        closep(&c->fd);
        buf_free(&c->in);
        buf_free(&c->out);
        httpd_request_head_done(&c->head);
        free(c);
}

void httpd_free(httpd *h) {
        if (!h)
                return;
        for (size_t i = 0; i < h->n_conns; i++)
                conn_free(h->conns[i]);
        for (size_t i = 0; i < h->n_listeners; i++) {
                closep(&h->listeners[i].fd);
                free(h->listeners[i].tag);
        }
        free(h->conns);
        free(h->listeners);
        free(h->pfds);
        free(h);
}

void httpd_set_io_timeout(httpd *h, int timeout_ms) {
        h->io_timeout_ms = timeout_ms > 0 ? timeout_ms : HTTPD_READ_TIMEOUT_MS;
}

int httpd_listen(httpd *h, const char *addr, uint16_t port, const char *tag) {
        struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                                  .ai_socktype = SOCK_STREAM };
        struct addrinfo *ai = NULL;
        struct sockaddr_storage bound;
        socklen_t bound_len = sizeof(bound);
        char service[8];
        int one = 1, r;

        snprintf(service, sizeof(service), "%u", port);
        r = getaddrinfo(addr ? addr : "127.0.0.1", service, &hints, &ai);
        if (r != 0)
                return r == EAI_SYSTEM ? negative_errno() : -EADDRNOTAVAIL;

        _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = negative_errno();
                freeaddrinfo(ai);
                return r;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
            getsockname(fd, (struct sockaddr *) &bound, &bound_len) < 0) {
                r = negative_errno();
                freeaddrinfo(ai);
                return r;
        }
        freeaddrinfo(ai);

        _cleanup_free_ char *t = strdup(strempty(tag));
        if (!t)
                return -ENOMEM;
        listener *l = realloc(h->listeners, (h->n_listeners + 1) * sizeof(*l));
        if (!l)
                return -ENOMEM;
        h->listeners = l;
        h->listeners[h->n_listeners++] = (listener){ .fd = TAKE_FD(fd), .tag = TAKE_PTR(t) };

        if (bound.ss_family == AF_INET6)
                return ntohs(((struct sockaddr_in6 *) &bound)->sin6_port);
        return ntohs(((struct sockaddr_in *) &bound)->sin_port);
}

/* Queue the response for writing and switch the connection to WRITE. */
static int conn_queue_response(conn *c, int status, const char *content_type, char **headers,
                               const buf *body) {
        bool head_only = c->head.method && streq(c->head.method, "HEAD");
        int r;

        buf_clear(&c->out);
        r = buf_printf(&c->out,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n",
                       status, status_reason(status), content_type, body->len);
        for (char **hd = headers; r >= 0 && hd && *hd; hd++)
                r = buf_printf(&c->out, "%s\r\n", *hd);
        if (r >= 0)
                r = buf_puts(&c->out, "\r\n");
        if (r >= 0 && !head_only)
                r = buf_append(&c->out, body->data, body->len);
        if (r < 0)
                return r;
        c->state = CONN_WRITE;
        c->out_done = 0;
        c->deadline = time_now_ms() + c->io_timeout_ms;
        return 0;
}

static int conn_reply_error(conn *c, int status, const char *message) {
        buf body = {};
        int r = buf_printf(&body, "{\"error\":\"%s\"}", message);
        if (r >= 0)
                r = conn_queue_response(c, status, "application/json", NULL, &body);
        buf_free(&body);
        /* The client may still be sending: read it away before closing. */
        c->linger = true;
        return r;
}

static bool header_is_safe(const char *h) { return !strpbrk(h, "\r\n"); }

static int conn_dispatch(httpd *h, conn *c) {
        httpd_response resp = { .status = 200, .body = BUF_INIT(0) };
        /* Bytes after the body (a pipelined request) are ignored: one request per connection. */
        c->in.data[c->head_len + c->head.content_length] = 0;
        httpd_request req = {
                .method = c->head.method,
                .path = c->head.path,
                .raw_path = c->head.raw_path,
                .query = c->head.query,
                .headers = c->head.headers,
                .body = c->in.data + c->head_len,
                .body_len = c->head.content_length,
                .peer_addr = c->peer,
                .listener_tag = c->tag,
        };
        int r = h->handler(&req, &resp, h->userdata);
        for (char **hd = resp.headers; r >= 0 && hd && *hd; hd++)
                if (!header_is_safe(*hd))
                        r = -EINVAL;
        if (r < 0) {
                char message[128];
                snprintf(message, sizeof(message), "internal error: %s", strerror(-r));
                r = conn_reply_error(c, 500, message);
        } else
                r = conn_queue_response(c, resp.status > 0 ? resp.status : 200,
                                        resp.content_type ? resp.content_type : "application/json",
                                        resp.headers, &resp.body);
        strv_free(resp.headers);
        buf_free(&resp.body);
        return r;
}

/* The head is complete at in[0..head_len): parse it and decide what comes next. */
static int conn_parse_head(conn *c, size_t head_len) {
        int r = httpd_parse_request_head(c->in.data, head_len, &c->head);
        switch (r) {
        case 0:
                c->head_len = head_len;
                return 0;
        case -EMSGSIZE:
                return conn_reply_error(c, 413, "request body too large");
        case -ENOTSUP:
                return conn_reply_error(c, 411, "chunked request bodies are not supported, send Content-Length");
        case -EBADMSG:
                return conn_reply_error(c, 400, "malformed request");
        default:
                return r;
        }
}

/* The end of the head: the first empty line. "\n\n" counts too, so a client using bare LF
 * gets a 400 from the parser instead of waiting for the read timeout. */
static const char *find_head_end(const buf *in, size_t from) {
        const char *crlf = memmem(in->data + from, in->len - from, "\r\n\r\n", 4);
        const char *lf = memmem(in->data + from, in->len - from, "\n\n", 2);
        if (lf && (!crlf || lf < crlf))
                return lf + 2;
        return crlf ? crlf + 4 : NULL;
}

/* Read what is available. Returns 0 to keep the connection, < 0 to drop it. */
static int conn_on_readable(httpd *h, conn *c) {
        char chunk[HTTPD_READ_CHUNK];

        for (;;) {
                ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
                if (n == 0)
                        return -ECONNRESET; /* closed before a full request (or done lingering) */
                if (c->state == CONN_LINGER)
                        continue;

                size_t old_len = c->in.len;
                int r = buf_append(&c->in, chunk, (size_t) n);
                if (r < 0)
                        return r;

                if (c->head_len == 0) {
                        const char *end = find_head_end(&c->in, old_len >= 3 ? old_len - 3 : 0);
                        if (!end) {
                                if (c->in.len >= HTTPD_MAX_HEAD)
                                        return conn_reply_error(c, 431, "request head too large");
                                continue;
                        }
                        size_t head_len = (size_t) (end - c->in.data);
                        if (head_len > HTTPD_MAX_HEAD)
                                return conn_reply_error(c, 431, "request head too large");
                        r = conn_parse_head(c, head_len);
                        if (r < 0 || c->state != CONN_READ)
                                return r;
                        /* Room for the body and whatever else the client sent with it. */
                        c->in.max = c->head_len + c->head.content_length + HTTPD_READ_CHUNK;
                }
                if (c->in.len >= c->head_len + c->head.content_length)
                        return conn_dispatch(h, c);
        }
}

/* Write what the socket takes. Returns 0 to keep the connection, < 0 to drop it. */
static int conn_on_writable(conn *c) {
        while (c->out_done < c->out.len) {
                ssize_t n = send(c->fd, c->out.data + c->out_done, c->out.len - c->out_done,
                                 MSG_NOSIGNAL);
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
                c->out_done += (size_t) n;
        }
        if (!c->linger)
                return -ECONNRESET; /* done: close */
        (void) shutdown(c->fd, SHUT_WR);
        c->state = CONN_LINGER;
        c->deadline = time_now_ms() + HTTPD_LINGER_MS;
        return 0;
}

static int httpd_accept(httpd *h, listener *l) {
        while (h->n_conns < HTTPD_MAX_CONNECTIONS) {
                struct sockaddr_storage sa;
                socklen_t sa_len = sizeof(sa);
                _cleanup_close_ int fd = accept4(l->fd, (struct sockaddr *) &sa, &sa_len,
                                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                                return 0;
                        /* Out of descriptors and the like: keep serving who we have. */
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                                return 0;
                        return negative_errno();
                }
                conn **cs = realloc(h->conns, (h->n_conns + 1) * sizeof(*cs));
                if (!cs)
                        return -ENOMEM;
                h->conns = cs;
                conn *c = calloc(1, sizeof(*c));
                if (!c)
                        return -ENOMEM;
                c->fd = TAKE_FD(fd);
                c->tag = l->tag;
                /* One read past the head limit, so a head just under it still fits. */
                c->in = BUF_INIT(HTTPD_MAX_HEAD + HTTPD_READ_CHUNK);
                c->io_timeout_ms = h->io_timeout_ms;
                c->deadline = time_now_ms() + c->io_timeout_ms;
                if (sa.ss_family == AF_INET6)
                        inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &sa)->sin6_addr, c->peer,
                                  sizeof(c->peer));
                else if (sa.ss_family == AF_INET)
                        inet_ntop(AF_INET, &((struct sockaddr_in *) &sa)->sin_addr, c->peer,
                                  sizeof(c->peer));
                h->conns[h->n_conns++] = c;
        }
        return 0;
}

static void httpd_drop(httpd *h, size_t i) {
        conn_free(h->conns[i]);
        h->conns[i] = h->conns[--h->n_conns];
}

int httpd_step(httpd *h, int timeout_ms) {
        size_t nl = h->n_listeners, nc = h->n_conns, n = nl + nc;
        int64_t now = time_now_ms();
        int r;

        if (n > h->pfds_cap) {
                struct pollfd *p = realloc(h->pfds, n * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                h->pfds = p;
                h->pfds_cap = n;
        }
        for (size_t i = 0; i < nl; i++)
                h->pfds[i] = (struct pollfd){
                        .fd = h->listeners[i].fd,
                        .events = nc < HTTPD_MAX_CONNECTIONS ? POLLIN : 0,
                };
        for (size_t i = 0; i < nc; i++) {
                conn *c = h->conns[i];
                h->pfds[nl + i] = (struct pollfd){
                        .fd = c->fd,
                        .events = c->state == CONN_WRITE ? POLLOUT : POLLIN,
                };
                if (timeout_ms < 0 || c->deadline - now < timeout_ms)
                        timeout_ms = c->deadline - now > 0 ? (int) (c->deadline - now) : 0;
        }

        r = poll(h->pfds, n, timeout_ms);
        if (r < 0)
                return errno == EINTR ? 0 : negative_errno();

        now = time_now_ms();
        /* Backwards, so dropping (swap with the last) never skips an unprocessed connection. */
        for (size_t i = nc; i-- > 0;) {
                conn *c = h->conns[i];
                short ev = h->pfds[nl + i].revents;
                int k = 0;

                if (ev & (POLLIN | POLLERR | POLLHUP) && c->state != CONN_WRITE)
                        k = conn_on_readable(h, c);
                /* A reply queued by the read above is tried right away. */
                if (k >= 0 && c->state == CONN_WRITE && (ev || c->out_done == 0))
                        k = conn_on_writable(c);
                if (k >= 0 && now >= c->deadline)
                        k = -ETIMEDOUT;
                if (k < 0)
                        httpd_drop(h, i);
        }
        for (size_t i = 0; i < nl; i++)
                if (h->pfds[i].revents & POLLIN) {
                        r = httpd_accept(h, &h->listeners[i]);
                        if (r < 0)
                                return r;
                }
        return 0;
}

int httpd_run(httpd *h, volatile sig_atomic_t *stop) {
        while (!*stop) {
                int r = httpd_step(h, 200);
                if (r < 0)
                        return r;
        }
        return 0;
}
