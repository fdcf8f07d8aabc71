/* Kubernetes API client. Transport is lib/http (one libcurl easy handle per request); this file
 * adds the API server's conventions: credentials, JSON bodies and their content types,
 * metav1.Status error replies, and the watch stream's framing. */
#include "kube-client.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#include "http.h"
#include "strv.h"

#define KUBE_WATCH_SLACK_MS 30000L  /* client-side margin over the server's timeoutSeconds */
#define KUBE_ERROR_BODY_MAX (64u * 1024u)
#define KUBE_QUOTE_MAX 200u

struct kube_client {
        char *server;
        char *ca_file, *ca_pem;
        char *cert_file, *key_file, *cert_pem;
        char *key_pem;          /* secret */
        char *auth_header;      /* secret: "Authorization: Bearer <token>" or NULL */
        char *user_agent;       /* "User-Agent: ..." */
        bool tls_no_verify;
        long timeout_ms;
        unsigned attempts;
        long deadline_ms;
        size_t max_reply;
};

static const int kube_retry_status[] = { 502, 503, 504, 0 };

const char *kube_patch_content_type(kube_patch_type type) {
        switch (type) {
        case KUBE_PATCH_MERGE:
                return "application/merge-patch+json";
        case KUBE_PATCH_STRATEGIC:
                return "application/strategic-merge-patch+json";
        case KUBE_PATCH_JSON:
                return "application/json-patch+json";
        }
        return NULL;
}

void kube_client_free(kube_client *k) {
        if (!k)
                return;
        free(k->server);
        free(k->ca_file);
        free(k->ca_pem);
        free(k->cert_file);
        free(k->key_file);
        free(k->cert_pem);
        free_secret(k->key_pem);
        free_secret(k->auth_header);
        free(k->user_agent);
        free(k);
}

const char *kube_client_server(const kube_client *k) { return k->server; }

static int dup_opt(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* The host part of an http:// URL is loopback: credentials may go there in clear text. */
static bool url_is_loopback(const char *url) {
        const char *h = startswith(url, "http://");
        if (!h)
                return false;
        if (startswith(h, "[::1]"))
                return h[5] == 0 || h[5] == ':' || h[5] == '/';
        size_t n = strcspn(h, ":/");
        if (n == 9 && strneq(h, "localhost", 9))
                return true;
        if (!startswith(h, "127."))
                return false;
        for (size_t i = 4; i < n; i++)
                if (!isdigit((unsigned char) h[i]) && h[i] != '.')
                        return false;
        return true;
}

static int config_error(buf *err, const char *what) {
        if (err)
                (void) buf_printf(err, "kube client: %s", what);
        return -EINVAL;
}

int kube_client_new(const kube_client_config *cfg, kube_client **ret, buf *err) {
        _cleanup_(kube_client_freep) kube_client *k = NULL;
        bool https, creds;
        int r;

        if (!cfg->server || !*cfg->server)
                return config_error(err, "no server URL");
        https = startswith(cfg->server, "https://");
        if (!https && !startswith(cfg->server, "http://"))
                return config_error(err, "server URL is not http:// or https://");
        if (!!(cfg->cert_file || cfg->cert_pem) != !!(cfg->key_file || cfg->key_pem))
                return config_error(err, "client certificate and key must be given together");
        if (cfg->token) {
                if (!*cfg->token)
                        return config_error(err, "empty bearer token");
                /* A header value: no spaces, control characters or non-ASCII. */
                for (const char *c = cfg->token; *c; c++)
                        if (*c <= ' ' || *c >= 0x7f)
                                return config_error(err, "bearer token has characters that cannot go in a header");
        }
        creds = cfg->token || cfg->cert_file || cfg->cert_pem;
        if (creds && cfg->tls_no_verify)
                return config_error(err, "credentials are never sent to an unverified server");
        if (creds && !https && !url_is_loopback(cfg->server))
                return config_error(err, "credentials over http:// only to loopback");

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->server = strdup(cfg->server);
        if (!k->server)
                return -ENOMEM;
        size_t n = strlen(k->server);
        while (n > 0 && k->server[n - 1] == '/')
                k->server[--n] = 0;
        if ((r = dup_opt(cfg->ca_file, &k->ca_file)) < 0 || (r = dup_opt(cfg->ca_pem, &k->ca_pem)) < 0 ||
            (r = dup_opt(cfg->cert_file, &k->cert_file)) < 0 ||
            (r = dup_opt(cfg->key_file, &k->key_file)) < 0 ||
            (r = dup_opt(cfg->cert_pem, &k->cert_pem)) < 0 || (r = dup_opt(cfg->key_pem, &k->key_pem)) < 0)
                return r;
        if (cfg->token && asprintf(&k->auth_header, "Authorization: Bearer %s", cfg->token) < 0) {
                k->auth_header = NULL;
                return -ENOMEM;
        }
        if (asprintf(&k->user_agent, "User-Agent: %s",
                     cfg->user_agent ? cfg->user_agent : "imgbuild-kube-client") < 0) {
                k->user_agent = NULL;
                return -ENOMEM;
        }
        k->tls_no_verify = cfg->tls_no_verify;
        k->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : KUBE_DEFAULT_TIMEOUT_MS;
        k->attempts = cfg->attempts;
        k->deadline_ms = cfg->deadline_ms;
        k->max_reply = cfg->max_reply > 0 ? cfg->max_reply : KUBE_DEFAULT_MAX_REPLY;
        *ret = TAKE_PTR(k);
        return 0;
}

int kube_status_errno(long code, const char *reason) {
        if (code >= 200 && code <= 299)
                return 0;
        switch (code) {
        case 400:
                return -EBADR;
        case 401:
                return -EKEYREJECTED;
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 405:
                return -EOPNOTSUPP;
        case 409:
                return reason && streq(reason, "AlreadyExists") ? -EEXIST : -ESTALE;
        case 410:
                return -ETIME;
        case 413:
                return -E2BIG;
        case 415:
                return -EPROTONOSUPPORT;
        case 422:
                return -EINVAL;
        case 429:
                return -EBUSY;
        }
        if (code >= 500 && code <= 599)
                return -EIO;
        return -EPROTO;
}

/* Append s (at most max bytes of it), non-printable bytes as '?', so a hostile reply cannot put
 * control characters or line breaks into the one-line message. */
static void append_sanitized(buf *err, const char *s, size_t len, size_t max) {
        for (size_t i = 0; i < len && i < max; i++) {
                unsigned char c = (unsigned char) s[i];
                char o = c >= 0x20 && c < 0x7f ? (char) c : '?';
                (void) buf_append(err, &o, 1);
        }
        if (len > max)
                (void) buf_puts(err, "...");
}

static void append_str(buf *err, const char *s) {
        append_sanitized(err, s, strlen(s), 1024);
}

/* "HTTP 404 NotFound: nodes "x" not found (causes: ...)" from a Status object. code is the
 * HTTP status (Status.code is only trusted when the HTTP status is absent, as in watch ERROR
 * events). */
static int describe_status(json_t *st, long code, buf *err) {
        const char *reason = json_path_string(st, "reason");
        const char *message = json_path_string(st, "message");
        json_t *causes = json_path(st, "details.causes");

        if (!err)
                return kube_status_errno(code, reason);
        (void) buf_printf(err, "HTTP %ld", code);
        if (reason && *reason) {
                (void) buf_puts(err, " ");
                append_str(err, reason);
        }
        if (message && *message) {
                (void) buf_puts(err, ": ");
                append_str(err, message);
        }
        if (json_is_array(causes) && json_array_size(causes) > 0) {
                size_t i, shown = 0;
                json_t *c;
                (void) buf_puts(err, " (causes:");
                json_array_foreach(causes, i, c) {
                        const char *field = json_path_string(c, "field");
                        const char *cm = json_path_string(c, "message");
                        const char *cr = json_path_string(c, "reason");
                        if (shown == 3) {
                                (void) buf_printf(err, " and %zu more", json_array_size(causes) - 3);
                                break;
                        }
                        (void) buf_puts(err, shown ? "; " : " ");
                        if (field && *field) {
                                append_str(err, field);
                                (void) buf_puts(err, ": ");
                        }
                        append_str(err, cm ? cm : cr ? cr : "?");
                        shown++;
                }
                (void) buf_puts(err, ")");
        }
        return kube_status_errno(code, reason);
}

static bool is_status(json_t *j) {
        const char *kind = json_path_string(j, "kind");
        return json_is_object(j) && kind && streq(kind, "Status");
}

int kube_parse_reply(const char *method, const char *url, long status, const char *body, size_t len,
                     json_t **ret, buf *err) {
        _cleanup_buf_ buf perr = BUF_INIT(1024);
        _cleanup_json_ json_t *j = NULL;
        int r;

        if (status >= 200 && status <= 299) {
                if (len == 0)
                        j = json_null();
                else {
                        r = json_parse(body, len, &j, &perr);
                        if (r < 0) {
                                if (err)
                                        (void) buf_printf(err, "%s %s: HTTP %ld reply is not JSON: %s", method,
                                                          url, status, strempty(perr.data));
                                return r;
                        }
                }
                if (ret)
                        *ret = TAKE_PTR(j);
                return 0;
        }

        if (err)
                (void) buf_printf(err, "%s %s: ", method, url);
        if (len > 0 && json_parse(body, len, &j, NULL) >= 0 && is_status(j))
                return describe_status(j, status, err);

        /* Not a Status (a proxy's HTML page, a plain-text 403): quote the start of it. */
        if (err) {
                (void) buf_printf(err, "HTTP %ld", status);
                if (len > 0) {
                        (void) buf_puts(err, ": \"");
                        append_sanitized(err, body, len, KUBE_QUOTE_MAX);
                        (void) buf_puts(err, "\"");
                }
        }
        return kube_status_errno(status, NULL);
}

static int build_headers(kube_client *k, const char *content_type, char ***ret) {
        _cleanup_strv_free_ char **h = NULL;
        int r;

        if ((r = strv_push(&h, "Accept: application/json")) < 0 || (r = strv_push(&h, k->user_agent)) < 0)
                return r;
        if (content_type && (r = strv_pushf(&h, "Content-Type: %s", content_type)) < 0)
                return r;
        if (k->auth_header && (r = strv_push(&h, k->auth_header)) < 0)
                return r;
        *ret = TAKE_PTR(h);
        return 0;
}

/* The header array holds the token: wipe it, then free. */
static void headers_free_secret(char **h) {
        for (char **p = h; p && *p; p++)
                explicit_bzero(*p, strlen(*p));
        strv_free(h);
}

static void fill_request(kube_client *k, http_request *req) {
        req->timeout_ms = k->timeout_ms;
        req->max_body = k->max_reply;
        req->attempts = k->attempts;
        req->backoff_ms = 200;
        req->backoff_max_ms = 3000;
        req->deadline_ms = k->deadline_ms;
        req->retry_status = kube_retry_status;
        req->ca_file = k->ca_file;
        req->ca_pem = k->ca_pem;
        req->cert_file = k->cert_file;
        req->key_file = k->key_file;
        req->cert_pem = k->cert_pem;
        req->key_pem = k->key_pem;
        req->tls_no_verify = k->tls_no_verify;
}

static int check_path(const char *path, buf *err) {
        if (path && path[0] == '/')
                return 0;
        if (err)
                (void) buf_printf(err, "kube client: API path \"%s\" does not start with '/'", strempty(path));
        return -EINVAL;
}

/* One request; on an answer (any status) returns 0 with resp filled. */
static int kube_do(kube_client *k, const char *method, const char *path, const char *content_type,
                   const char *body, char **ret_url, http_response *resp, buf *err) {
        _cleanup_free_ char *url = NULL;
        char **headers = NULL;
        _cleanup_buf_ buf e = BUF_INIT(1024);
        int r;

        r = check_path(path, err);
        if (r < 0)
                return r;
        if (asprintf(&url, "%s%s", k->server, path) < 0)
                return -ENOMEM;
        r = build_headers(k, content_type, &headers);
        if (r < 0)
                return r;
        http_request req = {
                .method = method,
                .url = url,
                .headers = headers,
                .body = body,
                .body_len = body ? strlen(body) : 0,
        };
        fill_request(k, &req);
        r = http_do(&req, resp, &e);
        headers_free_secret(headers);
        if (r < 0) {
                if (err && e.data)
                        (void) buf_puts(err, e.data);
                return r;
        }
        *ret_url = TAKE_PTR(url);
        return 0;
}

static int kube_call(kube_client *k, const char *method, const char *path, const char *content_type,
                     json_t *body, json_t **ret, buf *err) {
        _cleanup_free_ char *text = NULL, *url = NULL;
        http_response resp = { 0 };
        int r;

        if (body) {
                text = json_dump_compact(body);
                if (!text)
                        return -ENOMEM;
        }
        r = kube_do(k, method, path, body ? content_type : NULL, text, &url, &resp, err);
        if (r >= 0)
                r = kube_parse_reply(method, url, resp.status, resp.body.data, resp.body.len, ret, err);
        /* Secrets travel in bodies too (bootstrap-token Secrets). */
        if (text)
                explicit_bzero(text, strlen(text));
        buf_free_secret(&resp.body);
        http_response_free(&resp);
        return r;
}

int kube_get(kube_client *k, const char *path, json_t **ret, buf *err) {
        return kube_call(k, "GET", path, NULL, NULL, ret, err);
}

int kube_post(kube_client *k, const char *path, json_t *body, json_t **ret, buf *err) {
        return kube_call(k, "POST", path, "application/json", body, ret, err);
}

int kube_put(kube_client *k, const char *path, json_t *body, json_t **ret, buf *err) {
        return kube_call(k, "PUT", path, "application/json", body, ret, err);
}

int kube_patch(kube_client *k, const char *path, kube_patch_type type, json_t *patch, json_t **ret,
               buf *err) {
        const char *ct = kube_patch_content_type(type);
        if (!ct || !patch) {
                if (err)
                        (void) buf_puts(err, "kube client: PATCH without a patch or with an unknown patch type");
                return -EINVAL;
        }
        return kube_call(k, "PATCH", path, ct, patch, ret, err);
}

int kube_delete(kube_client *k, const char *path, json_t *body, json_t **ret, buf *err) {
        return kube_call(k, "DELETE", path, "application/json", body, ret, err);
}

int kube_get_text(kube_client *k, const char *path, char **ret, buf *err) {
        _cleanup_free_ char *url = NULL;
        http_response resp = { 0 };
        int r;

        r = kube_do(k, "GET", path, NULL, NULL, &url, &resp, err);
        if (r < 0)
                goto out;
        if (resp.status < 200 || resp.status > 299) {
                r = kube_parse_reply("GET", url, resp.status, resp.body.data, resp.body.len, NULL, err);
                goto out;
        }
        char *text = buf_steal(&resp.body);
        if (!text) {
                r = -ENOMEM;
                goto out;
        }
        *ret = text;
        r = 0;
out:
        http_response_free(&resp);
        return r;
}

/* Watch stream decoding. */

void kube_watch_decoder_init(kube_watch_decoder *d, size_t max) {
        *d = (kube_watch_decoder){ .event = BUF_INIT(max > 0 ? max : KUBE_DEFAULT_MAX_REPLY) };
}

void kube_watch_decoder_done(kube_watch_decoder *d) {
        buf_free(&d->event);
        free(d->resource_version);
        d->resource_version = NULL;
}

bool kube_watch_decoder_idle(const kube_watch_decoder *d) { return d->depth == 0 && d->event.len == 0; }

static int decoder_error(buf *err, int r, const char *fmt, ...) _printf_(3, 4);
static int decoder_error(buf *err, int r, const char *fmt, ...) {
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                (void) buf_puts(err, "watch stream: ");
                (void) buf_vprintf(err, fmt, ap);
                va_end(ap);
        }
        return r;
}

static int decoder_event(kube_watch_decoder *d, kube_watch_cb cb, void *userdata, buf *err) {
        _cleanup_json_ json_t *ev = NULL;
        _cleanup_buf_ buf perr = BUF_INIT(1024);
        int r;

        r = json_parse(d->event.data, d->event.len, &ev, &perr);
        buf_clear(&d->event);
        if (r < 0)
                return decoder_error(err, r, "event is not JSON: %s", strempty(perr.data));
        const char *type = json_path_string(ev, "type");
        json_t *object = json_object_get(ev, "object");
        if (!type || !json_is_object(object))
                return decoder_error(err, -EBADMSG, "event without a string \"type\" and an object \"object\"");

        if (streq(type, "ERROR")) {
                /* The object is a Status; its code is all there is of an HTTP status here. */
                json_int_t code = json_integer_value(json_object_get(object, "code"));
                if (err)
                        (void) buf_puts(err, "watch ERROR event: ");
                r = describe_status(object, code > 0 ? (long) code : 500, err);
                return r < 0 ? r : -EPROTO;
        }

        const char *rv = json_path_string(object, "metadata.resourceVersion");
        if (rv && *rv) {
                char *copy = strdup(rv);
                if (!copy)
                        return -ENOMEM;
                free(d->resource_version);
                d->resource_version = copy;
        }
        return cb ? cb(type, object, userdata) : 0;
}

int kube_watch_decoder_feed(kube_watch_decoder *d, const void *data, size_t len, kube_watch_cb cb,
                            void *userdata, buf *err) {
        const char *p = data;
        size_t start = 0; /* first byte of the current event within this piece */
        int r;

        for (size_t i = 0; i < len; i++) {
                char c = p[i];

                if (d->depth == 0) {
                        /* Between events: whitespace, then '{' opens the next one. */
                        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
                                continue;
                        if (c != '{')
                                return decoder_error(err, -EBADMSG, "expected '{' between events, got byte 0x%02x",
                                                     (unsigned char) c);
                        d->depth = 1;
                        start = i;
                        continue;
                }
                if (d->in_string) {
                        if (d->escaped)
                                d->escaped = false;
                        else if (c == '\\')
                                d->escaped = true;
                        else if (c == '"')
                                d->in_string = false;
                        continue;
                }
                if (c == '"')
                        d->in_string = true;
                else if (c == '{' || c == '[') {
                        /* Deeper than any object the API server sends; bounds jansson's recursion too. */
                        if (d->depth >= 512)
                                return decoder_error(err, -EBADMSG, "event nested deeper than 512 levels");
                        d->depth++;
                } else if (c == '}' || c == ']') {
                        d->depth--;
                        if (d->depth == 0) {
                                r = buf_append(&d->event, p + start, i + 1 - start);
                                if (r == -ENOBUFS)
                                        return decoder_error(err, r, "event larger than %zu bytes", d->event.max);
                                if (r < 0)
                                        return r;
                                r = decoder_event(d, cb, userdata, err);
                                if (r != 0)
                                        return r;
                        }
                }
        }
        if (d->depth > 0) {
                /* The event continues in the next piece: keep what is here. */
                r = buf_append(&d->event, p + start, len - start);
                if (r == -ENOBUFS)
                        return decoder_error(err, r, "event larger than %zu bytes", d->event.max);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Watch over HTTP. */

typedef struct watch_ctx {
        kube_watch_decoder dec;
        kube_watch_cb cb;
        void *userdata;
        long status;
        buf error_body;         /* a non-2xx reply's body (a Status), capped */
        buf err;                /* the decoder's message */
        int result;             /* what stopped the stream: cb's or the decoder's value */
} watch_ctx;

static int watch_on_body(long status, const void *data, size_t len, void *userdata) {
        watch_ctx *w = userdata;

        w->status = status;
        if (status < 200 || status > 299) {
                /* Keep the start of it for the message; the rest does not matter. */
                size_t room = w->error_body.max - w->error_body.len;
                if (room > 0)
                        (void) buf_append(&w->error_body, data, len < room ? len : room);
                return 0;
        }
        int r = kube_watch_decoder_feed(&w->dec, data, len, w->cb, w->userdata, &w->err);
        if (r == 0)
                return 0;
        w->result = r;
        return -ECANCELED; /* stops the transfer; w->result says why */
}

static int append_query(char **path, const char *fmt, ...) _printf_(2, 3);
static int append_query(char **path, const char *fmt, ...) {
        _cleanup_free_ char *add = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&add, fmt, ap);
        va_end(ap);
        if (n < 0) {
                add = NULL;
                return -ENOMEM;
        }
        char *joined;
        if (asprintf(&joined, "%s%c%s", *path, strchr(*path, '?') ? '&' : '?', add) < 0)
                return -ENOMEM;
        free(*path);
        *path = joined;
        return 0;
}

int kube_watch(kube_client *k, const char *path, char **resource_version, unsigned timeout_s,
               kube_watch_cb cb, void *userdata, buf *err) {
        _cleanup_free_ char *p = NULL, *url = NULL;
        char **headers = NULL;
        _cleanup_buf_ buf e = BUF_INIT(1024);
        http_response resp = { 0 };
        watch_ctx w = { .cb = cb, .userdata = userdata, .error_body = BUF_INIT(KUBE_ERROR_BODY_MAX),
                        .err = BUF_INIT(4096) };
        int r;

        r = check_path(path, err);
        if (r < 0)
                return r;
        if (timeout_s == 0)
                timeout_s = KUBE_DEFAULT_WATCH_TIMEOUT_S;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        if ((r = append_query(&p, "watch=true&allowWatchBookmarks=true&timeoutSeconds=%u", timeout_s)) < 0)
                return r;
        if (resource_version && *resource_version && **resource_version) {
                _cleanup_free_ char *rv = http_escape(*resource_version);
                if (!rv || (r = append_query(&p, "resourceVersion=%s", rv)) < 0)
                        return -ENOMEM;
        }
        if (asprintf(&url, "%s%s", k->server, p) < 0)
                return -ENOMEM;
        r = build_headers(k, NULL, &headers);
        if (r < 0)
                return r;

        kube_watch_decoder_init(&w.dec, k->max_reply);
        http_request req = { .method = "GET", .url = url, .headers = headers };
        fill_request(k, &req);
        req.timeout_ms = (long) timeout_s * 1000L + KUBE_WATCH_SLACK_MS;
        req.deadline_ms = 0;
        req.on_body = watch_on_body;
        req.on_body_userdata = &w;
        r = http_do(&req, &resp, &e);
        headers_free_secret(headers);

        /* Where the stream got to, whatever ended it. */
        if (resource_version && w.dec.resource_version) {
                free(*resource_version);
                *resource_version = TAKE_PTR(w.dec.resource_version);
        }

        if (w.result != 0) {
                /* cb or the decoder stopped the stream. */
                r = w.result;
                if (r < 0 && err && w.err.len > 0)
                        (void) buf_printf(err, "GET %s: %s", url, w.err.data);
        } else if (r < 0) {
                if (err && e.data)
                        (void) buf_puts(err, e.data);
        } else if (resp.status < 200 || resp.status > 299) {
                /* Status replies come without streaming, and may be empty (HEAD-like 401). */
                r = kube_parse_reply("GET", url, resp.status, w.error_body.data, w.error_body.len, NULL, err);
                if (r == 0)
                        r = -EPROTO;
        } else if (!kube_watch_decoder_idle(&w.dec)) {
                r = -EBADMSG;
                if (err)
                        (void) buf_printf(err, "GET %s: watch stream ended inside an event", url);
        } else
                r = 0;

        kube_watch_decoder_done(&w.dec);
        buf_free(&w.error_body);
        buf_free(&w.err);
        http_response_free(&resp);
        return r;
}
