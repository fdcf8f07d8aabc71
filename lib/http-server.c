/* The HTTP server on libmicrohttpd. MHD parses requests and writes replies; this file adds what
 * the services need on top:
 * - one MHD daemon per listener (the daemon's closure is the listener, so a handler sees its
 *   tag), each in MHD_USE_EPOLL mode without threads of its own. One poll() over the daemons'
 *   epoll descriptors, then MHD_run() on each, all in the caller's thread: handlers never run
 *   concurrently, across listeners either.
 * - the request target as sent (MHD_OPTION_URI_LOG_CALLBACK), split and decoded here, so the
 *   raw path and raw query are available and decoding rules stay the ones the services expect.
 * - the body cap (Content-Length first, then the running total) and a whole-exchange deadline
 *   per connection with millisecond resolution (MHD's own timeout is an idle timeout in whole
 *   seconds; it stays as a backstop). A connection past its deadline is shut down(), which MHD
 *   sees as the peer going away; the descriptor stays MHD's to close.
 * - a back-off when out of descriptors: MHD retries a failed accept() on every run when the
 *   daemon has no connection of its own, and its listen socket is level-triggered, so poll()
 *   would return at once forever. Such a listener is left out of poll() for
 *   HTTP_SERVER_EMFILE_BACKOFF_MS at a time (its daemon still runs on the timer). */
#include "http-server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <openssl/x509.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"
#include "strv.h"
#include "time-util.h"

#define HTTP_SERVER_EMFILE_BACKOFF_MS 100

typedef struct conn conn;

typedef struct listener {
        http_server *server;
        struct MHD_Daemon *daemon;
        int epoll_fd;              /* MHD's; readable when the daemon has work */
        int listen_fd;             /* MHD's (it closes it in MHD_stop_daemon()) */
        char *tag;
        bool tls;
        char *cert_pem, *key_pem, *client_ca_pem; /* TLS: MHD's options point here */
        char *unix_path;           /* UNIX listeners: the socket file, removed on close */
        dev_t unix_dev;            /* ... and which file it was, so only ours is removed */
        ino_t unix_ino;
        bool closing;              /* unlisten from a handler: stop after this step */
        int64_t backoff_until;     /* out of descriptors: not polled before this (monotonic ms) */
} listener;

/* One TCP connection (MHD's socket context). */
struct conn {
        http_server *server;
        int fd;
        int64_t deadline;          /* monotonic ms */
        bool expired;              /* shut down for its deadline */
        conn *prev, *next;
};

/* One request (MHD's request context, created by the URI log callback). */
typedef struct request {
        char *uri;                 /* the request target as sent */
        bool started;              /* the access handler has seen the head */
        bool failed;               /* an error reply is queued, ignore any body */
        bool too_large;            /* the body passed the cap: drop the rest, then 413 */
        buf body;
} request;

/* A streamed reply (http_server_stream): MHD pulls bytes through stream_read(); with nothing to
 * send the connection is suspended, and http_server_step() resumes it when produce() gave more
 * or ended. */
typedef struct stream {
        http_server *server;
        listener *listener;
        struct MHD_Connection *connection;
        http_server_stream s;
        buf out;
        size_t sent;               /* bytes of out already handed to MHD */
        bool ended, failed, suspended;
        int64_t next_produce;      /* monotonic ms */
        struct stream *prev, *next;
} stream;

struct http_server {
        http_server_handler handler;
        http_server_error_body_fn error_body;
        void *userdata;
        listener **listeners;
        size_t n_listeners;
        conn *conns;
        stream *streams;
        struct pollfd *pfds;
        size_t pfds_cap;
        int io_timeout_ms;
        bool in_step;
};

/* ---- our part of request parsing ---- */

void http_server_target_done(http_server_target *t) {
        free(t->raw_path);
        free(t->path);
        free(t->query);
        *t = (http_server_target){};
}

int http_server_parse_target(const char *target, size_t len, http_server_target *ret) {
        _cleanup_(http_server_target_done) http_server_target t = {};
        const char *q;
        int r;

        /* origin-form only: "/path[?query]"; anything else must arrive percent-encoded */
        if (len == 0 || target[0] != '/')
                return -EBADMSG;
        for (size_t i = 0; i < len; i++)
                if (target[i] <= 0x20 || target[i] >= 0x7f)
                        return -EBADMSG;
        q = memchr(target, '?', len);
        t.raw_path = strndup(target, (size_t) ((q ? q : target + len) - target));
        t.query = q ? strndup(q + 1, (size_t) (target + len - q - 1)) : strdup("");
        if (!t.raw_path || !t.query)
                return -ENOMEM;
        r = http_unescape(t.raw_path, strlen(t.raw_path), false, &t.path);
        if (r < 0)
                return r;
        *ret = t;
        t = (http_server_target){};
        return 0;
}

char *http_server_query_lookup(const char *query, const char *name) {
        const char *p = query;
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

/* ---- request/response helpers for handlers ---- */

const char *http_server_request_header(const http_server_request *req, const char *name) {
        size_t n = strlen(name);
        for (char **h = req->headers; h && *h; h++)
                if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':' && (*h)[n + 1] == ' ')
                        return *h + n + 2;
        return NULL;
}

char *http_server_query_param(const http_server_request *req, const char *name) {
        return http_server_query_lookup(req->query, name);
}

int http_server_respond(http_server_response *resp, int status, const char *fmt, ...) {
        va_list ap;
        resp->status = status;
        buf_clear(&resp->body);
        va_start(ap, fmt);
        int r = buf_vprintf(&resp->body, fmt, ap);
        va_end(ap);
        return r;
}

/* ---- replies ---- */

/* Reply bodies may hold secrets (tokens, keys): wiped when MHD is done with them. */
static void wipe_free(void *cls) {
        buf *b = cls;
        buf_free_secret(b);
        free(b);
}

static bool header_is_safe(const char *h) { return !strpbrk(h, "\r\n"); }

static void conn_extend(struct MHD_Connection *connection) {
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        conn *c = ci ? ci->socket_context : NULL;
        /* Taking the reply gets a fresh timeout, as reading the request had. */
        if (c && !c->expired)
                c->deadline = time_now_ms() + c->server->io_timeout_ms;
}

/* Queue a reply; takes body. Returns an MHD result for the access handler. */
static enum MHD_Result queue(struct MHD_Connection *connection, int status,
                             const char *content_type, char **headers, buf *body) {
        buf *b = malloc(sizeof(*b));
        if (!b) {
                buf_free_secret(body);
                return MHD_NO;
        }
        *b = *body;
        *body = (buf){};
        struct MHD_Response *resp =
                MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->data, wipe_free, b);
        if (!resp) {
                wipe_free(b);
                return MHD_NO;
        }
        bool ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES &&
                  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
        for (char **hd = headers; ok && hd && *hd; hd++) {
                const char *colon = strchr(*hd, ':');
                _cleanup_free_ char *name = colon ? strndup(*hd, (size_t) (colon - *hd)) : NULL;
                if (!name) {
                        ok = false;
                        break;
                }
                const char *value = colon + 1;
                value += strspn(value, " \t");
                ok = MHD_add_response_header(resp, name, value) == MHD_YES;
        }
        enum MHD_Result res = ok ? MHD_queue_response(connection, (unsigned) status, resp) : MHD_NO;
        MHD_destroy_response(resp);
        if (res == MHD_YES)
                conn_extend(connection);
        return res;
}

/* The server's own error replies; the owner may shape the body (http_server_set_error_body). */
static enum MHD_Result queue_error(listener *l, struct MHD_Connection *connection, request *rq,
                                   int status, const char *message) {
        _cleanup_buf_ buf body = {};
        http_server *h = l->server;
        rq->failed = true;
        if (h->error_body && h->error_body(l->tag, status, message, &body, h->userdata) >= 0 && body.data)
                return queue(connection, status, "application/json", NULL, &body);
        buf_clear(&body);
        if (buf_printf(&body, "{\"error\":\"%s\"}", message) < 0)
                return MHD_NO;
        return queue(connection, status, "application/json", NULL, &body);
}

/* ---- the access handler ---- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
        char ***headers = cls;
        (void) kind;
        _cleanup_free_ char *entry = NULL;
        if (asprintf(&entry, "%s: %s", key, strempty(value)) < 0)
                return MHD_NO;
        for (char *p = entry; *p != ':'; p++)
                *p = (char) (*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        return strv_consume(headers, TAKE_PTR(entry)) < 0 ? MHD_NO : MHD_YES;
}

static bool is_tchar(char c) {
        /* RFC 9110 token characters */
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Checks on the head that MHD (at its default strictness) leaves to us. Refused:
 * - a header name that is not a token ("Bad Name: x"): MHD keeps the space in the name;
 * - Content-Length headers that disagree, or Content-Length next to Transfer-Encoding: the two
 *   ways a request means different things to different parsers (request smuggling). MHD takes
 *   the first Content-Length and lets Transfer-Encoding win. */
static bool head_malformed(char **headers, bool *ret_has_length, size_t *ret_length) {
        const char *length = NULL;
        bool te = false;
        for (char **h = headers; h && *h; h++) {
                const char *v, *colon = strchr(*h, ':');
                for (const char *p = *h; p < colon; p++)
                        if (!is_tchar(*p))
                                return true;
                if ((v = startswith(*h, "content-length: "))) {
                        if (length && !streq(length, v))
                                return true;
                        length = v;
                } else if (startswith(*h, "transfer-encoding: "))
                        te = true;
        }
        if (length && te)
                return true;
        *ret_has_length = length;
        *ret_length = 0;
        if (length) {
                /* MHD has checked it is a number; saturate rather than overflow */
                for (const char *p = length; *p >= '0' && *p <= '9'; p++) {
                        if (*ret_length > HTTP_SERVER_MAX_BODY) {
                                *ret_length = HTTP_SERVER_MAX_BODY + 1;
                                break;
                        }
                        *ret_length = *ret_length * 10 + (size_t) (*p - '0');
                }
        }
        return false;
}

/* ---- TLS client certificates ---- */

typedef struct client_identity {
        bool verified, rejected;
        char *cn;
        char **orgs;
} client_identity;

static void client_identity_done(client_identity *id) {
        free(id->cn);
        strv_free(id->orgs);
        *id = (client_identity){};
}

/* The UTF-8 text of every entry of nid in name, appended to *list. Returns 0 or -ENOMEM. */
static int name_entries(const X509_NAME *name, int nid, char ***list) {
        for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
             i = X509_NAME_get_index_by_NID(name, nid, i)) {
                const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
                unsigned char *utf8 = NULL;
                int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
                if (n < 0)
                        continue; /* not text: not an identity */
                _cleanup_free_ char *v = strndup((const char *) utf8, (size_t) n);
                OPENSSL_free(utf8);
                if (!v || strv_consume(list, TAKE_PTR(v)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* What the client proved with its certificate. GnuTLS only asks for the certificate (MHD sets
 * GNUTLS_CERT_REQUEST when a trust list is given); verifying it is ours: the chain against the
 * listener's client CA, the validity period, and clientAuth usage. Returns 0 or -ENOMEM. */
static int client_identity_get(struct MHD_Connection *connection, client_identity *ret) {
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        gnutls_session_t session = ci ? (gnutls_session_t) ci->tls_session : NULL;
        const gnutls_datum_t *peers;
        unsigned n_peers = 0, status = 0;

        *ret = (client_identity){};
        if (!session || !(peers = gnutls_certificate_get_peers(session, &n_peers)) || n_peers == 0)
                return 0;
        gnutls_typed_vdata_st purpose = { .type = GNUTLS_DT_KEY_PURPOSE_OID,
                                          .data = (unsigned char *) GNUTLS_KP_TLS_WWW_CLIENT };
        if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0 || status != 0) {
                ret->rejected = true;
                return 0;
        }
        const unsigned char *der = peers[0].data;
        X509 *x = d2i_X509(NULL, &der, (long) peers[0].size);
        if (!x) {
                ret->rejected = true;
                return 0;
        }
        _cleanup_(strv_freep) char **cns = NULL;
        _cleanup_(strv_freep) char **orgs = NULL;
        const X509_NAME *subject = X509_get_subject_name(x);
        int r = name_entries(subject, NID_commonName, &cns);
        if (r >= 0)
                r = name_entries(subject, NID_organizationName, &orgs);
        X509_free(x);
        if (r < 0)
                return r;
        if (!orgs && !(orgs = calloc(1, sizeof(char *))))
                return -ENOMEM;
        if (cns && !(ret->cn = strdup(cns[0])))
                return -ENOMEM;
        ret->orgs = TAKE_PTR(orgs);
        ret->verified = true;
        return 0;
}

/* ---- streamed replies ---- */

static int stream_interval(const stream *st) { return st->s.interval_ms > 0 ? st->s.interval_ms : 200; }

static ssize_t stream_read(void *cls, uint64_t pos, char *data, size_t max) {
        stream *st = cls;
        (void) pos;
        if (st->sent < st->out.len) {
                size_t n = st->out.len - st->sent;
                if (n > max)
                        n = max;
                memcpy(data, st->out.data + st->sent, n);
                st->sent += n;
                if (st->sent == st->out.len) {
                        buf_clear(&st->out);
                        st->sent = 0;
                }
                return (ssize_t) n;
        }
        if (st->failed)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        if (st->ended)
                return MHD_CONTENT_READER_END_OF_STREAM;
        /* nothing now: sleep until http_server_step() has more */
        MHD_suspend_connection(st->connection);
        st->suspended = true;
        return 0;
}

static void stream_release(void *cls) {
        stream *st = cls;
        http_server *h = st->server;
        if (st->prev)
                st->prev->next = st->next;
        else
                h->streams = st->next;
        if (st->next)
                st->next->prev = st->prev;
        if (st->s.free_fn)
                st->s.free_fn(st->s.userdata);
        buf_free(&st->out);
        free(st);
}

static void stream_wake(stream *st) {
        if (st->suspended) {
                st->suspended = false;
                MHD_resume_connection(st->connection);
        }
}

/* Run the producers that are due; returns the ms until the next one is (-1: none). */
static int streams_produce(http_server *h, int64_t now) {
        int64_t wait = -1;
        for (stream *st = h->streams; st; st = st->next) {
                if (st->ended || st->failed)
                        continue;
                if (now >= st->next_produce) {
                        int r = st->s.produce(st->s.userdata, &st->out);
                        if (r < 0)
                                st->failed = true;
                        else if (r > 0)
                                st->ended = true;
                        st->next_produce = now + stream_interval(st);
                        if (st->out.len > st->sent || st->ended || st->failed)
                                stream_wake(st);
                }
                if (!st->ended && !st->failed && (wait < 0 || st->next_produce - now < wait))
                        wait = st->next_produce - now;
        }
        return (int) wait;
}

/* Queue a streamed reply; takes resp->body (sent first) and the stream. */
static enum MHD_Result queue_stream(listener *l, struct MHD_Connection *connection, http_server_response *resp) {
        http_server *h = l->server;
        stream *st = calloc(1, sizeof(*st));
        if (!st) {
                if (resp->stream.free_fn)
                        resp->stream.free_fn(resp->stream.userdata);
                return MHD_NO;
        }
        *st = (stream){ .server = h, .listener = l, .connection = connection, .s = resp->stream,
                        .out = resp->body, .next_produce = 0 };
        st->out.max = HTTP_SERVER_MAX_STREAM_BUFFER;
        resp->body = (buf){};
        resp->stream = (http_server_stream){};
        st->next = h->streams;
        if (h->streams)
                h->streams->prev = st;
        h->streams = st;
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
                                                                   stream_release);
        if (!r) {
                stream_release(st);
                return MHD_NO;
        }
        /* one request per connection, as every reply: closed once the stream ends */
        bool ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                          resp->content_type ? resp->content_type : "application/json") == MHD_YES &&
                  MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
        for (char **hd = resp->headers; ok && hd && *hd; hd++) {
                const char *colon = strchr(*hd, ':');
                _cleanup_free_ char *name = colon ? strndup(*hd, (size_t) (colon - *hd)) : NULL;
                ok = name && MHD_add_response_header(r, name, colon + 1 + strspn(colon + 1, " \t")) == MHD_YES;
        }
        enum MHD_Result res = ok ? MHD_queue_response(connection, (unsigned) (resp->status > 0 ? resp->status : 200), r)
                                 : MHD_NO;
        MHD_destroy_response(r); /* MHD holds the last reference; stream_release runs when it is done */
        if (res == MHD_YES) {
                /* the stream decides when it ends: no deadline of ours, no idle timeout of MHD's */
                const union MHD_ConnectionInfo *ci =
                        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
                conn *c = ci ? ci->socket_context : NULL;
                if (c)
                        c->deadline = INT64_MAX;
                (void) MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
        }
        return res;
}

static enum MHD_Result dispatch(listener *l, struct MHD_Connection *connection, const char *method,
                                request *rq) {
        http_server *h = l->server;
        http_server_response resp = { .status = 200, .body = BUF_INIT(0) };
        _cleanup_(http_server_target_done) http_server_target t = {};
        _cleanup_(strv_freep) char **headers = NULL;
        _cleanup_(client_identity_done) client_identity id = {};
        char peer[INET6_ADDRSTRLEN] = "";
        enum MHD_Result res;
        int r;

        r = http_server_parse_target(rq->uri, strlen(rq->uri), &t);
        if (r == -EBADMSG)
                return queue_error(l, connection, rq, 400, "malformed request");
        if (r < 0)
                return MHD_NO;
        if (MHD_get_connection_values(connection, MHD_HEADER_KIND, collect_header, &headers) < 0)
                return MHD_NO;
        if (!headers && !(headers = calloc(1, sizeof(char *))))
                return MHD_NO;

        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
                const struct sockaddr *sa = ci->client_addr;
                if (sa->sa_family == AF_INET6)
                        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, peer,
                                  sizeof(peer));
                else if (sa->sa_family == AF_INET)
                        inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, peer,
                                  sizeof(peer));
        }

        if (l->tls && l->client_ca_pem && client_identity_get(connection, &id) < 0)
                return MHD_NO;

        if (buf_append(&rq->body, "", 0) < 0) /* so the body is a string even when empty */
                return MHD_NO;
        http_server_request req = {
                .method = method,
                .path = t.path,
                .raw_path = t.raw_path,
                .query = t.query,
                .headers = headers,
                .body = rq->body.data,
                .body_len = rq->body.len,
                .peer_addr = peer,
                .listener_tag = l->tag,
                .tls = l->tls,
                .client_cert_verified = id.verified,
                .client_cert_rejected = id.rejected,
                .client_cn = id.cn,
                .client_orgs = id.orgs,
        };
        r = h->handler(&req, &resp, h->userdata);
        for (char **hd = resp.headers; r >= 0 && hd && *hd; hd++)
                if (!header_is_safe(*hd) || !strchr(*hd, ':'))
                        r = -EINVAL;
        if (r < 0 && resp.stream.produce && resp.stream.free_fn)
                resp.stream.free_fn(resp.stream.userdata);
        if (r >= 0 && resp.stream.produce)
                res = queue_stream(l, connection, &resp);
        else if (r < 0) {
                char message[128];
                snprintf(message, sizeof(message), "internal error: %s", strerror(-r));
                res = queue_error(l, connection, rq, 500, message);
        } else
                res = queue(connection, resp.status > 0 ? resp.status : 200,
                            resp.content_type ? resp.content_type : "application/json",
                            resp.headers, &resp.body);
        strv_free(resp.headers);
        buf_free_secret(&resp.body);
        return res;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
        listener *l = cls;
        request *rq = *req_cls;
        (void) url;
        (void) version;

        if (!rq)
                return MHD_NO; /* the URI log callback failed to allocate */

        if (!rq->started) {
                _cleanup_(strv_freep) char **headers = NULL;
                bool has_length = false;
                size_t length = 0;

                rq->started = true;
                if (MHD_get_connection_values(connection, MHD_HEADER_KIND, collect_header, &headers) < 0)
                        return MHD_NO;
                if (head_malformed(headers, &has_length, &length))
                        return queue_error(l, connection, rq, 400, "malformed request");
                /* Refused from the head alone, before any of the body is read. */
                if (has_length && length > HTTP_SERVER_MAX_BODY)
                        return queue_error(l, connection, rq, 413, "request body too large");
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (rq->failed)
                        return MHD_YES;
                if (rq->too_large)
                        return MHD_YES;
                int r = buf_append(&rq->body, upload_data, n);
                if (r == -ENOBUFS) {
                        /* A chunked body past the cap. MHD 0.9.75 takes no reply in the middle
                         * of a body, so the rest is read and dropped, and 413 goes out at its
                         * end; the connection's deadline bounds how long that may take. */
                        rq->too_large = true;
                        buf_free_secret(&rq->body);
                        return MHD_YES;
                }
                return r < 0 ? MHD_NO : MHD_YES;
        }

        if (rq->failed)
                return MHD_YES; /* the error reply is queued already */
        if (rq->too_large)
                return queue_error(l, connection, rq, 413, "request body too large");
        return dispatch(l, connection, method, rq);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *connection) {
        (void) cls;
        (void) connection;
        request *rq = calloc(1, sizeof(*rq));
        if (!rq)
                return NULL;
        rq->uri = strdup(uri);
        if (!rq->uri) {
                free(rq);
                return NULL;
        }
        rq->body = BUF_INIT(HTTP_SERVER_MAX_BODY);
        return rq;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
        request *rq = *req_cls;
        (void) cls;
        (void) connection;
        (void) toe;
        if (!rq)
                return;
        free(rq->uri);
        buf_free_secret(&rq->body); /* request bodies carry secrets too (KV writes) */
        free(rq);
        *req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
        listener *l = cls;
        http_server *h = l->server;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci =
                        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
                conn *c = calloc(1, sizeof(*c));
                if (!c || !ci) {
                        /* No deadline of ours then; MHD's idle timeout still applies. */
                        free(c);
                        return;
                }
                c->server = h;
                c->fd = ci->connect_fd;
                c->deadline = time_now_ms() + h->io_timeout_ms;
                c->next = h->conns;
                if (h->conns)
                        h->conns->prev = c;
                h->conns = c;
                *socket_context = c;
                return;
        }

        conn *c = *socket_context;
        if (!c)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                h->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        free(c);
        *socket_context = NULL;
}

/* ---- server ---- */

int http_server_new(http_server_handler handler, void *userdata, http_server **ret) {
        http_server *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->handler = handler;
        h->userdata = userdata;
        h->io_timeout_ms = HTTP_SERVER_IO_TIMEOUT_MS;
        *ret = h;
        return 0;
}

static void listener_free(listener *l) {
        if (!l)
                return;
        if (l->daemon) {
                /* MHD must not be stopped with suspended connections: end this listener's
                 * streams, let them run out, then stop */
                bool woke = false;
                for (stream *st = l->server->streams; st; st = st->next)
                        if (st->listener == l) {
                                st->failed = true;
                                woke = woke || st->suspended;
                                stream_wake(st);
                        }
                if (woke)
                        (void) MHD_run(l->daemon);
                MHD_stop_daemon(l->daemon); /* closes the listen socket and every connection */
        }
        if (l->unix_path) {
                struct stat st;
                /* Not a file another server has put there since (it found ours stale). */
                if (lstat(l->unix_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->unix_dev &&
                    st.st_ino == l->unix_ino)
                        (void) unlink(l->unix_path);
                free(l->unix_path);
        }
        free(l->tag);
        free(l->cert_pem);
        free_secret(l->key_pem);
        free(l->client_ca_pem);
        free(l);
}

void http_server_free(http_server *h) {
        if (!h)
                return;
        for (size_t i = 0; i < h->n_listeners; i++)
                listener_free(h->listeners[i]);
        free(h->listeners);
        free(h->pfds);
        free(h);
}

void http_server_set_error_body(http_server *h, http_server_error_body_fn fn) { h->error_body = fn; }

void http_server_set_io_timeout(http_server *h, int timeout_ms) {
        h->io_timeout_ms = timeout_ms > 0 ? timeout_ms : HTTP_SERVER_IO_TIMEOUT_MS;
}

static int bind_socket(const char *addr, uint16_t port, int *ret_fd, int *ret_family,
                       uint16_t *ret_port) {
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
        *ret_family = bound.ss_family;
        *ret_port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *) &bound)->sin6_port)
                                                : ntohs(((struct sockaddr_in *) &bound)->sin_port);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Check what MHD would refuse without saying why: that GnuTLS takes the certificate and key
 * (and that they match), and the client CA. Returns 0 or -EINVAL. */
static int tls_check(const http_server_tls *tls) {
        gnutls_certificate_credentials_t cred;
        gnutls_datum_t cert = { (unsigned char *) tls->cert_pem, (unsigned) strlen(tls->cert_pem) };
        gnutls_datum_t key = { (unsigned char *) tls->key_pem, (unsigned) strlen(tls->key_pem) };
        int r = 0;

        if (gnutls_certificate_allocate_credentials(&cred) < 0)
                return -ENOMEM;
        if (gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM) < 0)
                r = -EINVAL;
        if (r == 0 && tls->client_ca_pem) {
                gnutls_datum_t ca = { (unsigned char *) tls->client_ca_pem,
                                      (unsigned) strlen(tls->client_ca_pem) };
                if (gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM) <= 0)
                        r = -EINVAL;
        }
        gnutls_certificate_free_credentials(cred);
        return r;
}

/* Bind a UNIX stream socket at path, mode 0600. A socket file left there by a server that is gone
 * (connect refused) is replaced; a live one is not (-EADDRINUSE), nor anything but a socket
 * (-EEXIST). */
static int bind_unix(const char *path, int *ret_fd, struct stat *ret_st) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(path);
        struct stat st;
        int r;

        if (len == 0 || path[0] != '/')
                return -EINVAL;
        if (len >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, len + 1);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno != EADDRINUSE)
                        return negative_errno();
                if (lstat(path, &st) < 0)
                        return negative_errno();
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        return negative_errno();
                /* Non-blocking: a live server with a full backlog says EAGAIN, not refused. */
                if (connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0 || errno != ECONNREFUSED)
                        return -EADDRINUSE;
                if (unlink(path) < 0 && errno != ENOENT)
                        return negative_errno();
                if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        return negative_errno();
        }
        /* bind() made it with the umask's mode; until this chmod only its directory guards it,
         * which is why the caller's directory must be private. */
        if (chmod(path, 0600) < 0 || listen(fd, 128) < 0 || lstat(path, &st) < 0) {
                r = negative_errno();
                (void) unlink(path);
                return r;
        }
        *ret_st = st;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Serve the bound, listening socket fd (taken, closed on failure too) as a new listener. For a
 * UNIX socket, unix_path and st name its file, which goes with the listener (here already on
 * failure). Returns 0 or -errno. */
static int add_listener(http_server *h, int fd_in, int family, const char *tag, const http_server_tls *tls,
                        const char *unix_path, const struct stat *st) {
        _cleanup_close_ int fd = fd_in;

        listener **ls = realloc(h->listeners, (h->n_listeners + 1) * sizeof(*ls));
        if (!ls) {
                if (unix_path)
                        (void) unlink(unix_path);
                return -ENOMEM;
        }
        h->listeners = ls;
        listener *l = calloc(1, sizeof(*l));
        if (!l) {
                if (unix_path)
                        (void) unlink(unix_path);
                return -ENOMEM;
        }
        l->server = h;
        l->epoll_fd = -1;
        l->listen_fd = -1;
        l->tag = strdup(strempty(tag));
        if (unix_path) {
                l->unix_path = strdup(unix_path);
                l->unix_dev = st->st_dev;
                l->unix_ino = st->st_ino;
                if (!l->unix_path) {
                        (void) unlink(unix_path);
                        listener_free(l);
                        return -ENOMEM;
                }
        }
        if (tls) {
                l->tls = true;
                l->cert_pem = strdup(tls->cert_pem);
                l->key_pem = strdup(tls->key_pem);
                l->client_ca_pem = tls->client_ca_pem ? strdup(tls->client_ca_pem) : NULL;
        }
        if (!l->tag || (tls && (!l->cert_pem || !l->key_pem ||
                                (tls->client_ca_pem && !l->client_ca_pem)))) {
                listener_free(l);
                return -ENOMEM;
        }

        /* MHD's timeout is whole seconds of idleness: a backstop behind our deadline. */
        unsigned idle_s = (unsigned) (h->io_timeout_ms + 999) / 1000 + 1;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (family == AF_INET6 ? MHD_USE_IPv6 : 0) |
                         (tls ? MHD_USE_TLS : 0);
        /* The TLS options come first, ended early by MHD_OPTION_END in their place when the
         * listener is plain, so the list below stays one call. MHD_OPTION_ARRAY keeps it so. */
        struct MHD_OptionItem tls_options[] = {
                { tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, l->cert_pem },
                { MHD_OPTION_HTTPS_MEM_KEY, 0, l->key_pem },
                { l->client_ca_pem ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, l->client_ca_pem },
                { MHD_OPTION_END, 0, NULL },
        };
        l->daemon = MHD_start_daemon(
                flags, 0, NULL, NULL, on_request, l,
                MHD_OPTION_ARRAY, tls_options,
                MHD_OPTION_LISTEN_SOCKET, (MHD_socket) fd,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) HTTP_SERVER_MAX_HEAD,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned) HTTP_SERVER_MAX_CONNECTIONS,
                MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
                /* Not 1: that also refuses HTTP/1.1 requests without Host, which the test
                 * fakes' raw clients send. The checks that matter are ours (head_malformed,
                 * http_server_parse_target). Bare LF line ends are accepted at 0. */
                MHD_OPTION_STRICT_FOR_CLIENT, 0,
                MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *) NULL,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *) NULL,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, (void *) l,
                MHD_OPTION_END);
        if (!l->daemon) {
                listener_free(l);
                return -EIO; /* MHD says no more (it logs nothing without MHD_USE_ERROR_LOG) */
        }
        l->listen_fd = TAKE_FD(fd); /* the daemon's now */
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!di) {
                listener_free(l);
                return -EIO;
        }
        l->epoll_fd = di->epoll_fd;
        h->listeners[h->n_listeners++] = l;
        return 0;
}

static int listen_common(http_server *h, const char *addr, uint16_t port, const char *tag,
                         const http_server_tls *tls) {
        int fd = -1, family = 0, r;
        uint16_t bound_port = 0;

        if (tls) {
                if (!tls->cert_pem || !tls->key_pem)
                        return -EINVAL;
                r = tls_check(tls);
                if (r < 0)
                        return r;
        }
        r = bind_socket(addr, port, &fd, &family, &bound_port);
        if (r < 0)
                return r;
        r = add_listener(h, fd, family, tag, tls, NULL, NULL);
        return r < 0 ? r : bound_port;
}

int http_server_listen_unix(http_server *h, const char *path, const char *tag) {
        struct stat st;
        int fd = -1;
        int r = bind_unix(path, &fd, &st);
        if (r < 0)
                return r;
        return add_listener(h, fd, AF_UNIX, tag, NULL, path, &st);
}

int http_server_listen(http_server *h, const char *addr, uint16_t port, const char *tag) {
        return listen_common(h, addr, port, tag, NULL);
}

int http_server_listen_tls(http_server *h, const char *addr, uint16_t port, const char *tag,
                           const http_server_tls *tls) {
        if (!tls)
                return -EINVAL;
        return listen_common(h, addr, port, tag, tls);
}

/* Stop the listeners marked closing. Not while a daemon runs (a handler may have marked it). */
static void reap_closing(http_server *h) {
        size_t j = 0;
        for (size_t i = 0; i < h->n_listeners; i++) {
                if (h->listeners[i]->closing)
                        listener_free(h->listeners[i]);
                else
                        h->listeners[j++] = h->listeners[i];
        }
        h->n_listeners = j;
}

int http_server_unlisten(http_server *h, const char *tag) {
        int n = 0;
        for (size_t i = 0; i < h->n_listeners; i++)
                if (!h->listeners[i]->closing && streq(h->listeners[i]->tag, strempty(tag))) {
                        h->listeners[i]->closing = true;
                        n++;
                }
        if (!h->in_step)
                reap_closing(h);
        return n;
}

/* After a run: is a connection still waiting on this listener because accept() failed for want
 * of a descriptor? Only checked when one is waiting, so it costs nothing normally. */
static bool out_of_descriptors(listener *l) {
        struct pollfd p = { .fd = l->listen_fd, .events = POLLIN };
        if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
                return false;
        int fd = fcntl(l->listen_fd, F_DUPFD_CLOEXEC, 0);
        if (fd >= 0) {
                close(fd);
                return false;
        }
        return errno == EMFILE || errno == ENFILE;
}

int http_server_step(http_server *h, int timeout_ms) {
        size_t n = h->n_listeners, np = 0;
        int64_t now = time_now_ms();
        int r;

        if (n > h->pfds_cap) {
                struct pollfd *p = realloc(h->pfds, n * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                h->pfds = p;
                h->pfds_cap = n;
        }
        for (size_t i = 0; i < n; i++) {
                listener *l = h->listeners[i];
                MHD_UNSIGNED_LONG_LONG t;
                if (l->backoff_until > now) {
                        int64_t left = l->backoff_until - now;
                        if (timeout_ms < 0 || left < timeout_ms)
                                timeout_ms = (int) left;
                } else
                        h->pfds[np++] = (struct pollfd){ .fd = l->epoll_fd, .events = POLLIN };
                if (MHD_get_timeout(l->daemon, &t) == MHD_YES &&
                    (timeout_ms < 0 || t < (MHD_UNSIGNED_LONG_LONG) timeout_ms))
                        timeout_ms = (int) t;
        }
        int wait = streams_produce(h, now);
        if (wait >= 0 && (timeout_ms < 0 || wait < timeout_ms))
                timeout_ms = wait;
        for (conn *c = h->conns; c; c = c->next)
                if (!c->expired && (timeout_ms < 0 || c->deadline - now < timeout_ms))
                        timeout_ms = c->deadline - now > 0 ? (int) (c->deadline - now) : 0;

        r = poll(h->pfds, np, timeout_ms);
        if (r < 0 && errno != EINTR)
                return negative_errno();

        h->in_step = true;
        now = time_now_ms();
        /* Connections past their deadline: shut down, so MHD finds them closed and drops them
         * in the run below. */
        for (conn *c = h->conns; c; c = c->next)
                if (!c->expired && now >= c->deadline) {
                        (void) shutdown(c->fd, SHUT_RDWR);
                        c->expired = true;
                }
        /* By index: a handler may add listeners (appended) while we go. */
        for (size_t i = 0; i < h->n_listeners; i++) {
                listener *l = h->listeners[i];
                if (l->closing)
                        continue;
                (void) MHD_run(l->daemon);
                if (out_of_descriptors(l))
                        l->backoff_until = now + HTTP_SERVER_EMFILE_BACKOFF_MS;
                else
                        l->backoff_until = 0;
        }
        h->in_step = false;
        reap_closing(h);
        return 0;
}

int http_server_run(http_server *h, volatile sig_atomic_t *stop) {
        while (!*stop) {
                int r = http_server_step(h, 200);
                if (r < 0)
                        return r;
        }
        return 0;
}
