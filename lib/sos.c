#include "sos.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "crypto.h"
#include "http.h"
#include "sigv4.h"
#include "strv.h"

#define RESPONSE_MAX (1024u * 1024u)
#define XML_TEXT_MAX (64u * 1024u)

struct sos {
        char *key;
        char *secret;
        char *zone;
        char *endpoint_template;
        const volatile sig_atomic_t *cancel;
        buf error;
};

int sos_new(const char *key, const char *secret, const char *zone, sos **ret) {
        if (!key || !*key || !secret || !*secret || !zone || !*zone)
                return -EINVAL;
        sos *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->key = strdup(key);
        s->secret = strdup(secret);
        s->zone = strdup(zone);
        s->endpoint_template = strdup(SOS_DEFAULT_ENDPOINT);
        if (!s->key || !s->secret || !s->zone || !s->endpoint_template) {
                sos_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

void sos_free(sos *s) {
        if (!s)
                return;
        free(s->key);
        free_secret(s->secret);
        free(s->zone);
        free(s->endpoint_template);
        buf_free(&s->error);
        free(s);
}

int sos_set_endpoint(sos *s, const char *url_template) {
        return free_and_strdup(&s->endpoint_template, url_template);
}

int sos_set_zone(sos *s, const char *zone) {
        return free_and_strdup(&s->zone, zone);
}

void sos_set_cancel(sos *s, const volatile sig_atomic_t *cancel) {
        s->cancel = cancel;
}

const char *sos_error(const sos *s) {
        return s->error.data ? s->error.data : "";
}

static int set_error(sos *s, int r, const char *fmt, ...) _printf_(3, 4);
static int set_error(sos *s, int r, const char *fmt, ...) {
        va_list ap;
        buf_clear(&s->error);
        va_start(ap, fmt);
        (void) buf_vprintf(&s->error, fmt, ap);
        va_end(ap);
        return r;
}

/* The endpoint with "{zone}" replaced, without a trailing '/'. */
static char *endpoint_url(const sos *s) {
        _cleanup_buf_ buf b = {};
        const char *t = s->endpoint_template, *z;
        while ((z = strstr(t, "{zone}"))) {
                if (buf_append(&b, t, (size_t) (z - t)) < 0 || buf_puts(&b, s->zone) < 0)
                        return NULL;
                t = z + 6;
        }
        if (buf_puts(&b, t) < 0)
                return NULL;
        while (b.len > 0 && b.data[b.len - 1] == '/')
                b.data[--b.len] = 0;
        return buf_steal(&b);
}

/* ENDPOINT/BUCKET/KEY (key encoded, '/' kept), and where its path starts and its host. */
static int object_url(const sos *s, const char *bucket, const char *key, char **ret_url) {
        _cleanup_free_ char *base = endpoint_url(s);
        _cleanup_buf_ buf b = {};
        if (!base || buf_printf(&b, "%s/", base) < 0 || sigv4_uri_encode(bucket, strlen(bucket), false, &b) < 0 ||
            (key && (buf_puts(&b, "/") < 0 || sigv4_uri_encode(key, strlen(key), true, &b) < 0)))
                return -ENOMEM;
        *ret_url = buf_steal(&b);
        return *ret_url ? 0 : -ENOMEM;
}

typedef struct sos_call {
        const char *method;
        const char *bucket, *key;
        const char *query;          /* raw, may be NULL */
        const void *body;
        size_t body_len;
        const char *content_type;   /* may be NULL */
        bool retry;
} sos_call;

/* One signed request; a status other than 2xx is an error (resp is still filled). */
static int sos_request(sos *s, const sos_call *call, http_response *resp) {
        _cleanup_free_ char *url = NULL, *full = NULL;
        _cleanup_buf_ buf auth = {}, err = {}, host = {}, date_h = {}, hash_h = {}, auth_h = {}, ct_h = {}, md5_h = {};
        char date[SIGV4_DATE_SIZE], hash[SHA256_HEX_SIZE];
        const char *q = strempty(call->query);
        int r;

        if (object_url(s, call->bucket, call->key, &url) < 0 ||
            asprintf(&full, "%s%s%s", url, *q ? "?" : "", q) < 0)
                return set_error(s, -ENOMEM, "out of memory");
        const char *authority = strstr(url, "://");
        const char *path = authority ? strchr(authority + 3, '/') : NULL;
        if (!path)
                return set_error(s, -EINVAL, "malformed SOS endpoint %s", s->endpoint_template);
        authority += 3;

        sigv4_format_date(time(NULL), date);
        sha256_hex(call->body ? call->body : "", call->body_len, hash);
        if (call->body_len > 0) {
                /* The store checks the body against it (BadDigest otherwise), as Packer's upload asks. */
                uint8_t md5[16];
                unsigned n = 16;
                _cleanup_free_ char *b64 = NULL;
                if (EVP_Digest(call->body, call->body_len, md5, &n, EVP_md5(), NULL) != 1 ||
                    !(b64 = base64_encode(md5, sizeof(md5))) || buf_printf(&md5_h, "Content-MD5: %s", b64) < 0)
                        return set_error(s, -ENOMEM, "cannot hash the request body");
        }
        if (buf_printf(&host, "Host: %.*s", (int) (path - authority), authority) < 0 ||
            buf_printf(&date_h, "X-Amz-Date: %s", date) < 0 || buf_printf(&hash_h, "X-Amz-Content-Sha256: %s", hash) < 0 ||
            (call->content_type && buf_printf(&ct_h, "Content-Type: %s", call->content_type) < 0))
                return set_error(s, -ENOMEM, "out of memory");
        /* Optional headers last: an absent one (NULL) ends the list. */
        char *signed_headers[] = { host.data, date_h.data, hash_h.data, md5_h.data ?: ct_h.data,
                                   md5_h.data ? ct_h.data : NULL, NULL };
        sigv4_credentials creds = { s->key, s->secret, s->zone, "s3" };
        r = sigv4_authorization(&creds, date, call->method, path, q, signed_headers, hash, &auth);
        if (r < 0)
                return set_error(s, r, "%s %s: cannot sign the request: %s", call->method, full, strerror(-r));
        if (buf_printf(&auth_h, "Authorization: %s", auth.data) < 0)
                return set_error(s, -ENOMEM, "out of memory");
        char *headers[] = { host.data, date_h.data, hash_h.data, auth_h.data, (char *) "User-Agent: imgbuild",
                            md5_h.data ?: ct_h.data, md5_h.data ? ct_h.data : NULL, NULL };
        http_request req = {
                .method = call->method,
                .url = full,
                .headers = headers,
                .body = call->body,
                .body_len = call->body_len,
                /* At least 256 KiB/s, and a minute for the reply. */
                .timeout_ms = 60000 + (long) (call->body_len / 262),
                .max_body = RESPONSE_MAX,
                .attempts = call->retry ? 4 : 1,
                .backoff_ms = 1000,
                .cancel = s->cancel,
        };
        r = http_do(&req, resp, &err);
        if (r < 0)
                return set_error(s, r, "%s", err.data ? err.data : full);
        if (resp->status < 200 || resp->status >= 300) {
                _cleanup_free_ char *msg = sos_error_message(resp->body.data, resp->body.len);
                return set_error(s, http_status_to_errno(resp->status), "%s %s: HTTP %ld%s%s", call->method, full,
                                 resp->status, msg && *msg ? ": " : "", strempty(msg));
        }
        return 0;
}

static int take_etag(sos *s, const http_response *resp, const char *what, char **ret_etag) {
        const char *etag = http_response_header(resp, "etag");
        if (!ret_etag)
                return 0;
        if (!etag || !*etag)
                return set_error(s, -EBADMSG, "%s: the reply has no ETag", what);
        *ret_etag = strdup(etag);
        return *ret_etag ? 0 : set_error(s, -ENOMEM, "out of memory");
}

int sos_put_object(sos *s, const char *bucket, const char *key, const void *data, size_t len, char **ret_etag) {
        _cleanup_(http_response_free) http_response resp = {};
        sos_call call = { .method = "PUT", .bucket = bucket, .key = key, .body = data, .body_len = len,
                          .content_type = "application/octet-stream", .retry = true };
        int r = sos_request(s, &call, &resp);
        return r < 0 ? r : take_etag(s, &resp, "PUT object", ret_etag);
}

int sos_delete_object(sos *s, const char *bucket, const char *key) {
        _cleanup_(http_response_free) http_response resp = {};
        sos_call call = { .method = "DELETE", .bucket = bucket, .key = key, .retry = true };
        return sos_request(s, &call, &resp);
}

int sos_multipart_create(sos *s, const char *bucket, const char *key, char **ret_upload_id) {
        _cleanup_(http_response_free) http_response resp = {};
        sos_call call = { .method = "POST", .bucket = bucket, .key = key, .query = "uploads",
                          .content_type = "application/octet-stream" };
        int r = sos_request(s, &call, &resp);
        if (r < 0)
                return r;
        r = sos_xml_text(resp.body.data, resp.body.len, "UploadId", ret_upload_id);
        if (r >= 0 && !**ret_upload_id) {
                free(*ret_upload_id);
                r = -EBADMSG;
        }
        if (r < 0)
                return set_error(s, r == -ENOMEM ? r : -EBADMSG, "POST %s/%s?uploads: no UploadId in the reply", bucket, key);
        return 0;
}

int sos_multipart_put_part(sos *s, const char *bucket, const char *key, const char *upload_id, unsigned part,
                           const void *data, size_t len, char **ret_etag) {
        _cleanup_(http_response_free) http_response resp = {};
        _cleanup_free_ char *id = http_escape(upload_id), *query = NULL;
        if (!id || asprintf(&query, "partNumber=%u&uploadId=%s", part, id) < 0)
                return set_error(s, -ENOMEM, "out of memory");
        if (part < 1 || part > SOS_MAX_PARTS)
                return set_error(s, -EINVAL, "part number %u out of 1..%u", part, SOS_MAX_PARTS);
        sos_call call = { .method = "PUT", .bucket = bucket, .key = key, .query = query, .body = data,
                          .body_len = len, .retry = true };
        int r = sos_request(s, &call, &resp);
        return r < 0 ? r : take_etag(s, &resp, "PUT part", ret_etag);
}

static int xml_escape(buf *out, const char *s) {
        for (; *s; s++) {
                const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
                if ((e ? buf_puts(out, e) : buf_append(out, s, 1)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int sos_multipart_complete(sos *s, const char *bucket, const char *key, const char *upload_id, char *const *etags) {
        _cleanup_(http_response_free) http_response resp = {};
        _cleanup_free_ char *id = http_escape(upload_id), *query = NULL, *message = NULL;
        _cleanup_buf_ buf body = {};
        size_t n = strv_length(etags);

        if (n == 0 || n > SOS_MAX_PARTS)
                return set_error(s, -EINVAL, "complete: %zu parts (1..%u)", n, SOS_MAX_PARTS);
        if (!id || asprintf(&query, "uploadId=%s", id) < 0 || buf_puts(&body, "<CompleteMultipartUpload>") < 0)
                return set_error(s, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
                if (buf_printf(&body, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1) < 0 ||
                    xml_escape(&body, etags[i]) < 0 || buf_puts(&body, "</ETag></Part>") < 0)
                        return set_error(s, -ENOMEM, "out of memory");
        if (buf_puts(&body, "</CompleteMultipartUpload>") < 0)
                return set_error(s, -ENOMEM, "out of memory");
        sos_call call = { .method = "POST", .bucket = bucket, .key = key, .query = query, .body = body.data,
                          .body_len = body.len, .content_type = "application/xml" };
        int r = sos_request(s, &call, &resp);
        if (r < 0)
                return r;
        /* S3 may answer 200 and report the failure in the body. */
        size_t pos = 0;
        const char *inner;
        size_t inner_len;
        if (sos_xml_element(resp.body.data, resp.body.len, &pos, "Error", &inner, &inner_len) != 0) {
                message = sos_error_message(resp.body.data, resp.body.len);
                return set_error(s, -EIO, "POST %s/%s?uploadId=...: %s", bucket, key, strempty(message));
        }
        return 0;
}

int sos_multipart_abort(sos *s, const char *bucket, const char *key, const char *upload_id) {
        _cleanup_(http_response_free) http_response resp = {};
        _cleanup_free_ char *id = http_escape(upload_id), *query = NULL;
        if (!id || asprintf(&query, "uploadId=%s", id) < 0)
                return set_error(s, -ENOMEM, "out of memory");
        sos_call call = { .method = "DELETE", .bucket = bucket, .key = key, .query = query, .retry = true };
        return sos_request(s, &call, &resp);
}

int sos_multipart_list(sos *s, const char *bucket, const char *key, char ***ret_upload_ids) {
        _cleanup_(http_response_free) http_response resp = {};
        _cleanup_free_ char *prefix = http_escape(key), *query = NULL;
        _cleanup_strv_free_ char **ids = NULL;
        const char *inner;
        size_t inner_len, pos = 0;
        int r;

        if (!prefix || asprintf(&query, "uploads&prefix=%s", prefix) < 0)
                return set_error(s, -ENOMEM, "out of memory");
        sos_call call = { .method = "GET", .bucket = bucket, .query = query, .retry = true };
        r = sos_request(s, &call, &resp);
        if (r < 0)
                return r;
        while ((r = sos_xml_element(resp.body.data, resp.body.len, &pos, "Upload", &inner, &inner_len)) > 0) {
                _cleanup_free_ char *k = NULL, *id = NULL;
                if (sos_xml_text(inner, inner_len, "Key", &k) < 0 || sos_xml_text(inner, inner_len, "UploadId", &id) < 0)
                        return set_error(s, -EBADMSG, "GET %s?uploads: an Upload without Key or UploadId", bucket);
                if (streq(k, key) && strv_consume(&ids, TAKE_PTR(id)) < 0)
                        return set_error(s, -ENOMEM, "out of memory");
        }
        if (r < 0)
                return set_error(s, r, "GET %s?uploads: malformed XML reply", bucket);
        *ret_upload_ids = TAKE_PTR(ids);
        return 0;
}

int sos_presign(sos *s, const char *method, const char *bucket, const char *key, long expires_s, char **ret_url) {
        _cleanup_free_ char *url = NULL;
        char date[SIGV4_DATE_SIZE];
        sigv4_credentials creds = { s->key, s->secret, s->zone, "s3" };
        int r = object_url(s, bucket, key, &url);
        if (r < 0)
                return set_error(s, r, "out of memory");
        sigv4_format_date(time(NULL), date);
        r = sigv4_presign(&creds, date, method, url, expires_s, ret_url);
        return r < 0 ? set_error(s, r, "cannot presign %s %s: %s", method, url, strerror(-r)) : 0;
}

/* ---- XML ---- */

/* Whether the tag name at p (after '<' or '</') is tag, ignoring a namespace prefix, and is
 * followed by a delimiter before end. */
static bool tag_match(const char *p, const char *end, const char *tag) {
        const char *name = p;
        while (p < end && *p != '>' && *p != '/' && !isspace((unsigned char) *p)) {
                if (*p == ':')
                        name = p + 1;
                p++;
        }
        size_t n = strlen(tag);
        return p < end && (size_t) (p - name) == n && strneq(name, tag, n);
}

int sos_xml_element(const char *xml, size_t len, size_t *pos, const char *tag, const char **ret_inner,
                    size_t *ret_inner_len) {
        const char *end = xml + len;

        if (!xml || *pos >= len)
                return 0;
        for (const char *p = xml + *pos; p < end; p++) {
                if (*p != '<' || p + 1 >= end || p[1] == '/' || p[1] == '?' || p[1] == '!')
                        continue;
                if (!tag_match(p + 1, end, tag))
                        continue;
                const char *gt = memchr(p, '>', (size_t) (end - p));
                if (!gt)
                        return -EBADMSG;
                if (gt[-1] == '/') {
                        *ret_inner = gt + 1;
                        *ret_inner_len = 0;
                        *pos = (size_t) (gt + 1 - xml);
                        return 1;
                }
                /* The matching close tag, counting nested elements of the same name. */
                unsigned depth = 1;
                for (const char *c = gt + 1; c < end; c++) {
                        if (*c != '<' || c + 1 >= end)
                                continue;
                        bool closing = c[1] == '/';
                        const char *name = c + (closing ? 2 : 1);
                        if (name >= end || !tag_match(name, end, tag))
                                continue;
                        const char *cgt = memchr(c, '>', (size_t) (end - c));
                        if (!cgt)
                                return -EBADMSG;
                        if (!closing) {
                                if (cgt[-1] != '/')
                                        depth++;
                                continue;
                        }
                        if (--depth == 0) {
                                *ret_inner = gt + 1;
                                *ret_inner_len = (size_t) (c - gt - 1);
                                *pos = (size_t) (cgt + 1 - xml);
                                return 1;
                        }
                }
                return -EBADMSG;
        }
        return 0;
}

static int utf8_put(buf *out, unsigned long cp) {
        char u[4];
        size_t n;
        if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return -EBADMSG;
        if (cp < 0x80) {
                u[0] = (char) cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (char) (0xC0 | (cp >> 6));
                u[1] = (char) (0x80 | (cp & 0x3F));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char) (0xE0 | (cp >> 12));
                u[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char) (0x80 | (cp & 0x3F));
                n = 3;
        } else {
                u[0] = (char) (0xF0 | (cp >> 18));
                u[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char) (0x80 | (cp & 0x3F));
                n = 4;
        }
        return buf_append(out, u, n);
}

int sos_xml_text(const char *xml, size_t len, const char *tag, char **ret) {
        _cleanup_buf_ buf out = BUF_INIT(XML_TEXT_MAX);
        const char *inner;
        size_t n, pos = 0;
        int r = sos_xml_element(xml, len, &pos, tag, &inner, &n);

        if (r <= 0)
                return r == 0 ? -ENOENT : r;
        if (n > XML_TEXT_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                if (inner[i] == 0)
                        return -EBADMSG;
                if (inner[i] != '&') {
                        r = buf_append(&out, &inner[i], 1);
                        if (r < 0)
                                return r == -ENOBUFS ? -EBADMSG : r;
                        continue;
                }
                const char *semi = memchr(inner + i, ';', n - i);
                if (!semi || semi - (inner + i) > 12)
                        return -EBADMSG;
                size_t elen = (size_t) (semi - (inner + i)) + 1;
                static const struct { const char *name, *text; } entities[] = {
                        { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" }, { "&apos;", "'" },
                };
                bool done = false;
                for (size_t e = 0; e < ELEMENTSOF(entities) && !done; e++)
                        if (strlen(entities[e].name) == elen && strneq(inner + i, entities[e].name, elen)) {
                                if (buf_puts(&out, entities[e].text) < 0)
                                        return -ENOMEM;
                                done = true;
                        }
                if (!done) {
                        if (elen < 4 || inner[i + 1] != '#')
                                return -EBADMSG;
                        bool hex = inner[i + 2] == 'x';
                        unsigned long cp = 0;
                        size_t start = i + (hex ? 3 : 2);
                        if (start >= i + elen - 1)
                                return -EBADMSG;
                        for (size_t k = start; k < i + elen - 1; k++) {
                                int d = hex ? (isxdigit((unsigned char) inner[k])
                                                       ? (isdigit((unsigned char) inner[k]) ? inner[k] - '0'
                                                                                            : (tolower((unsigned char) inner[k]) - 'a' + 10))
                                                       : -1)
                                            : (isdigit((unsigned char) inner[k]) ? inner[k] - '0' : -1);
                                if (d < 0 || cp > 0x10FFFF)
                                        return -EBADMSG;
                                cp = cp * (hex ? 16 : 10) + (unsigned long) d;
                        }
                        r = utf8_put(&out, cp);
                        if (r < 0)
                                return r == -ENOBUFS ? -EBADMSG : r;
                }
                i += elen - 1;
        }
        if (buf_puts(&out, "") < 0)
                return -ENOMEM;
        *ret = buf_steal(&out);
        return *ret ? 0 : -ENOMEM;
}

char *sos_error_message(const char *body, size_t len) {
        _cleanup_free_ char *code = NULL, *message = NULL;
        size_t pos = 0;
        const char *inner;
        size_t inner_len;
        char *s;

        if (body && sos_xml_element(body, len, &pos, "Error", &inner, &inner_len) > 0) {
                (void) sos_xml_text(inner, inner_len, "Code", &code);
                (void) sos_xml_text(inner, inner_len, "Message", &message);
                if (code || message) {
                        if (asprintf(&s, "%.200s%s%.300s", strempty(code), code && message ? ": " : "",
                                     strempty(message)) < 0)
                                return NULL;
                        for (char *c = s; *c; c++)
                                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                        *c = ' ';
                        return s;
                }
        }
        size_t n = len > 200 ? 200 : len;
        s = malloc(n + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++)
                s[i] = (unsigned char) body[i] < 0x20 || body[i] == 0x7f ? ' ' : body[i];
        s[n] = 0;
        return s;
}
