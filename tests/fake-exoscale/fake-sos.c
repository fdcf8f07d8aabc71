/* The fake object store (fake-sos.h). Test code, not product. */
#include "fake-sos.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "http.h"
#include "sigv4.h"
#include "sos.h"
#include "strv.h"

typedef struct blob {
        char *bucket, *key;
        uint8_t *data;
        size_t len;
        char etag[64];          /* quoted */
        unsigned number;        /* parts only */
        uint8_t md5[16];
} blob;

typedef struct upload {
        char id[33];
        char *bucket, *key;
        blob *parts;
        size_t n_parts;
} upload;

struct fake_sos {
        const exoapi_credentials *creds;
        const char *const *zones;
        char **buckets;
        blob *objects;
        size_t n_objects;
        upload *uploads;
        size_t n_uploads;
        size_t min_part_size;
        int port;
        bool hold_parts;
        bool fail_next_part;
        bool fail_deletes;
        long held;
        long puts, puts_md5;    /* PUT requests with a body, and those with a Content-MD5 */
};

int fake_sos_new(const exoapi_credentials *creds, const char *const *zones, fake_sos **ret) {
        fake_sos *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->creds = creds;
        s->zones = zones;
        s->min_part_size = SOS_MIN_PART_SIZE;
        *ret = s;
        return 0;
}

static void blob_done(blob *b) {
        free(b->bucket);
        free(b->key);
        free(b->data);
        *b = (blob) {};
}

static void upload_done(upload *u) {
        for (size_t i = 0; i < u->n_parts; i++)
                blob_done(&u->parts[i]);
        free(u->parts);
        free(u->bucket);
        free(u->key);
        *u = (upload) {};
}

void fake_sos_free(fake_sos *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_objects; i++)
                blob_done(&s->objects[i]);
        for (size_t i = 0; i < s->n_uploads; i++)
                upload_done(&s->uploads[i]);
        free(s->objects);
        free(s->uploads);
        strv_free(s->buckets);
        free(s);
}

int fake_sos_add_bucket(fake_sos *s, const char *name) {
        return strv_push(&s->buckets, name);
}

void fake_sos_set_min_part_size(fake_sos *s, size_t size) {
        s->min_part_size = size;
}

void fake_sos_set_port(fake_sos *s, int port) {
        s->port = port;
}

void fake_sos_hold_parts(fake_sos *s) {
        s->hold_parts = true;
}

void fake_sos_fail_next_part(fake_sos *s) {
        s->fail_next_part = true;
}

void fake_sos_fail_deletes(fake_sos *s, bool on) {
        s->fail_deletes = on;
}

long fake_sos_held(const fake_sos *s) {
        return s->held;
}

static void md5(const void *data, size_t len, uint8_t out[16]) {
        unsigned n = 16;
        if (EVP_Digest(data, len, out, &n, EVP_md5(), NULL) != 1)
                memset(out, 0, 16);
}

/* ---- replies ---- */

typedef struct s3_call {
        fake_sos *s;
        const http_server_request *req;
        http_server_response *resp;
} s3_call;

static int s3_error(s3_call *c, int status, const char *code, const char *message) {
        char id[UUID_STRING_SIZE];
        random_uuid(id);
        c->resp->status = status;
        c->resp->content_type = "application/xml";
        buf_clear(&c->resp->body);
        return buf_printf(&c->resp->body,
                          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
                          "<Resource>%s</Resource><RequestId>%s</RequestId></Error>",
                          code, message, c->req ? c->req->raw_path : "", id) < 0 ? -ENOMEM : 0;
}

static int s3_xml(s3_call *c, int status, const char *fmt, ...) _printf_(3, 4);
static int s3_xml(s3_call *c, int status, const char *fmt, ...) {
        va_list ap;
        c->resp->status = status;
        c->resp->content_type = "application/xml";
        buf_clear(&c->resp->body);
        va_start(ap, fmt);
        int r = buf_puts(&c->resp->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        if (r >= 0)
                r = buf_vprintf(&c->resp->body, fmt, ap);
        va_end(ap);
        return r < 0 ? -ENOMEM : 0;
}

static int add_etag(http_server_response *resp, const char *value) {
        char *h;
        if (asprintf(&h, "ETag: %s", value) < 0)
                return -ENOMEM;
        return strv_consume(&resp->headers, h);
}

/* Check the request's signature; 0 when good, else the S3 error is the reply (returns 1). */
static int authorize(fake_sos *s, const char *zone, const char *method, const char *raw_path, const char *query,
                     char *const *headers, const void *body, size_t body_len, int *ret_status,
                     const char **ret_code, buf *msg) {
        char hash[SHA256_HEX_SIZE];
        sigv4_credentials creds = { s->creds->key, s->creds->secret, zone, "s3" };
        bool presigned = strstr(strempty(query), "X-Amz-Algorithm=") != NULL;

        sha256_hex(body ? body : "", body_len, hash);
        switch (sigv4_verify(&creds, method, raw_path, query, headers, hash, time(NULL), msg)) {
        case 0:
                return 0;
        case -EACCES:
                *ret_status = 403, *ret_code = "SignatureDoesNotMatch";
                break;
        case -EPERM:
                *ret_status = 403, *ret_code = "InvalidAccessKeyId";
                break;
        case -ETIME:
                *ret_status = 403, *ret_code = presigned ? "AccessDenied" : "RequestTimeTooSkewed";
                break;
        case -EILSEQ:
                *ret_status = 400, *ret_code = "XAmzContentSHA256Mismatch";
                break;
        case -ENOKEY:
                *ret_status = 403, *ret_code = "AccessDenied";
                break;
        case -ENOMEM:
                return -ENOMEM;
        default:
                *ret_status = 400, *ret_code = presigned ? "AuthorizationQueryParametersError" : "AuthorizationHeaderMalformed";
                break;
        }
        return 1;
}

static blob *find_object(fake_sos *s, const char *bucket, const char *key) {
        for (size_t i = 0; i < s->n_objects; i++)
                if (streq(s->objects[i].bucket, bucket) && streq(s->objects[i].key, key))
                        return &s->objects[i];
        return NULL;
}

static upload *find_upload(fake_sos *s, const char *bucket, const char *key, const char *id) {
        for (size_t i = 0; i < s->n_uploads; i++)
                if (streq(s->uploads[i].bucket, bucket) && streq(s->uploads[i].key, key) && id &&
                    streq(s->uploads[i].id, id))
                        return &s->uploads[i];
        return NULL;
}

static void object_remove(fake_sos *s, blob *o) {
        size_t i = (size_t) (o - s->objects);
        blob_done(o);
        memmove(&s->objects[i], &s->objects[i + 1], (s->n_objects - i - 1) * sizeof(blob));
        s->n_objects--;
}

static void upload_remove(fake_sos *s, upload *u) {
        size_t i = (size_t) (u - s->uploads);
        upload_done(u);
        memmove(&s->uploads[i], &s->uploads[i + 1], (s->n_uploads - i - 1) * sizeof(upload));
        s->n_uploads--;
}

/* Store data (taken) as BUCKET/KEY, replacing what was there. */
static int object_put(fake_sos *s, const char *bucket, const char *key, uint8_t *data, size_t len, const char *etag) {
        blob *o = find_object(s, bucket, key);
        if (o)
                object_remove(s, o);
        blob *grown = reallocarray(s->objects, s->n_objects + 1, sizeof(blob));
        if (!grown) {
                free(data);
                return -ENOMEM;
        }
        s->objects = grown;
        o = &s->objects[s->n_objects];
        *o = (blob) { .bucket = strdup(bucket), .key = strdup(key), .data = data, .len = len };
        snprintf(o->etag, sizeof(o->etag), "%s", etag);
        if (!o->bucket || !o->key) {
                blob_done(o);
                return -ENOMEM;
        }
        s->n_objects++;
        return 0;
}

static uint8_t *copy_body(const http_server_request *req) {
        uint8_t *d = malloc(req->body_len ? req->body_len : 1);
        if (d && req->body_len)
                memcpy(d, req->body, req->body_len);
        return d;
}

static int hold_produce(void *userdata, buf *out) {
        return 0; /* never anything, never the end */
}

static int part_put(s3_call *c, const char *bucket, const char *key, const char *upload_id, const char *number) {
        fake_sos *s = c->s;
        upload *u = find_upload(s, bucket, key, upload_id);
        char *end;
        unsigned long n = strtoul(strempty(number), &end, 10);
        char hex[33];

        if (!u)
                return s3_error(c, 404, "NoSuchUpload", "The specified upload does not exist.");
        if (!number || end == number || *end || n < 1 || n > SOS_MAX_PARTS)
                return s3_error(c, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
        if (s->fail_next_part) {
                s->fail_next_part = false;
                return s3_error(c, 500, "InternalError", "We encountered an internal error. Please try again.");
        }
        if (s->hold_parts && n >= 2) {
                s->held++;
                c->resp->status = 200;
                c->resp->content_type = "application/xml";
                c->resp->stream = (http_server_stream) { .produce = hold_produce, .interval_ms = 1000 };
                return 0;
        }
        blob p = { .number = (unsigned) n, .len = c->req->body_len, .data = copy_body(c->req) };
        if (!p.data)
                return -ENOMEM;
        md5(p.data, p.len, p.md5);
        hex_encode(p.md5, 16, hex);
        snprintf(p.etag, sizeof(p.etag), "\"%s\"", hex);
        for (size_t i = 0; i < u->n_parts; i++)
                if (u->parts[i].number == p.number) {
                        blob_done(&u->parts[i]);
                        u->parts[i] = p;
                        return add_etag(c->resp, p.etag);
                }
        blob *grown = reallocarray(u->parts, u->n_parts + 1, sizeof(blob));
        if (!grown) {
                free(p.data);
                return -ENOMEM;
        }
        u->parts = grown;
        u->parts[u->n_parts++] = p;
        return add_etag(c->resp, p.etag);
}

static int upload_create(s3_call *c, const char *bucket, const char *key) {
        fake_sos *s = c->s;
        uint8_t raw[16];
        upload *grown = reallocarray(s->uploads, s->n_uploads + 1, sizeof(upload));
        if (!grown || random_bytes(raw, sizeof(raw)) < 0)
                return -ENOMEM;
        s->uploads = grown;
        upload *u = &s->uploads[s->n_uploads];
        *u = (upload) { .bucket = strdup(bucket), .key = strdup(key) };
        hex_encode(raw, sizeof(raw), u->id);
        if (!u->bucket || !u->key) {
                upload_done(u);
                return -ENOMEM;
        }
        s->n_uploads++;
        return s3_xml(c, 200, "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                              "<Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>",
                      bucket, key, u->id);
}

static int upload_complete(s3_call *c, const char *bucket, const char *key, const char *upload_id) {
        fake_sos *s = c->s;
        upload *u = find_upload(s, bucket, key, upload_id);
        const char *xml = c->req->body, *inner;
        size_t pos = 0, inner_len, n = 0, total = 0;
        unsigned last = 0;
        blob **chosen = NULL;
        int r;

        if (!u)
                return s3_error(c, 404, "NoSuchUpload", "The specified upload does not exist.");
        while ((r = sos_xml_element(xml, c->req->body_len, &pos, "Part", &inner, &inner_len)) > 0) {
                _cleanup_free_ char *number = NULL, *etag = NULL;
                blob *p = NULL;
                if (sos_xml_text(inner, inner_len, "PartNumber", &number) < 0 ||
                    sos_xml_text(inner, inner_len, "ETag", &etag) < 0) {
                        free(chosen);
                        return s3_error(c, 400, "MalformedXML", "The XML you provided was not well-formed.");
                }
                unsigned long num = strtoul(number, NULL, 10);
                if (num <= last) {
                        free(chosen);
                        return s3_error(c, 400, "InvalidPartOrder", "The list of parts was not in ascending order.");
                }
                last = (unsigned) num;
                for (size_t i = 0; i < u->n_parts && !p; i++)
                        if (u->parts[i].number == num && streq(u->parts[i].etag, etag))
                                p = &u->parts[i];
                if (!p) {
                        free(chosen);
                        return s3_error(c, 400, "InvalidPart",
                                        "One or more of the specified parts could not be found or its ETag did not match.");
                }
                blob **grown = reallocarray(chosen, n + 1, sizeof(blob *));
                if (!grown) {
                        free(chosen);
                        return -ENOMEM;
                }
                chosen = grown;
                chosen[n++] = p;
        }
        if (r < 0 || n == 0) {
                free(chosen);
                return s3_error(c, 400, "MalformedXML", "The XML you provided was not well-formed.");
        }
        for (size_t i = 0; i + 1 < n; i++)
                if (chosen[i]->len < s->min_part_size) {
                        free(chosen);
                        return s3_error(c, 400, "EntityTooSmall",
                                        "Your proposed upload is smaller than the minimum allowed object size.");
                }
        for (size_t i = 0; i < n; i++)
                total += chosen[i]->len;
        uint8_t *data = malloc(total ? total : 1), *md5s = malloc(16 * n);
        if (!data || !md5s) {
                free(data);
                free(md5s);
                free(chosen);
                return -ENOMEM;
        }
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
                memcpy(data + off, chosen[i]->data, chosen[i]->len);
                off += chosen[i]->len;
                memcpy(md5s + 16 * i, chosen[i]->md5, 16);
        }
        free(chosen);
        uint8_t sum[16];
        char hex[33], etag[64];
        md5(md5s, 16 * n, sum);
        free(md5s);
        hex_encode(sum, 16, hex);
        snprintf(etag, sizeof(etag), "\"%s-%zu\"", hex, n);
        upload_remove(s, u);
        r = object_put(s, bucket, key, data, total, etag);
        if (r < 0)
                return r;
        return s3_xml(c, 200, "<CompleteMultipartUploadResult><Location>/%s/%s</Location><Bucket>%s</Bucket>"
                              "<Key>%s</Key><ETag>&quot;%s-%zu&quot;</ETag></CompleteMultipartUploadResult>",
                      bucket, key, bucket, key, hex, n);
}

static int upload_list(s3_call *c, const char *bucket, const char *prefix) {
        fake_sos *s = c->s;
        _cleanup_buf_ buf items = {};
        for (size_t i = 0; i < s->n_uploads; i++)
                if (streq(s->uploads[i].bucket, bucket) && startswith(s->uploads[i].key, strempty(prefix)) &&
                    buf_printf(&items, "<Upload><Key>%s</Key><UploadId>%s</UploadId></Upload>", s->uploads[i].key,
                               s->uploads[i].id) < 0)
                        return -ENOMEM;
        return s3_xml(c, 200, "<ListMultipartUploadsResult><Bucket>%s</Bucket><IsTruncated>false</IsTruncated>%s"
                              "</ListMultipartUploadsResult>", bucket, strempty(items.data));
}

int fake_sos_handle(fake_sos *s, const http_server_request *req, http_server_response *resp) {
        s3_call c = { .s = s, .req = req, .resp = resp };
        _cleanup_free_ char *zone = NULL, *bucket = NULL, *upload_id = NULL, *part = NULL, *prefix = NULL;
        _cleanup_buf_ buf msg = {};
        const char *key = NULL, *code = NULL;
        int n = 0, status = 0, r;

        if (sscanf(req->path, "/sos/%m[^/]/%m[^/]%n", &zone, &bucket, &n) < 2 || n == 0)
                return s3_error(&c, 400, "InvalidURI", "Couldn't parse the specified URI.");
        if (!strv_contains((char *const *) s->zones, zone))
                return s3_error(&c, 404, "NoSuchHost", "No such zone.");
        if (req->path[n] == '/' && req->path[n + 1])
                key = req->path + n + 1;

        r = authorize(s, zone, req->method, req->raw_path, req->query, req->headers, req->body, req->body_len, &status,
                      &code, &msg);
        if (r < 0)
                return r;
        if (r > 0)
                return s3_error(&c, status, code, msg.data ? msg.data : code);
        if (!strv_contains(s->buckets, bucket))
                return s3_error(&c, 404, "NoSuchBucket", "The specified bucket does not exist");
        const char *content_md5 = http_server_request_header(req, "content-md5");
        if (streq(req->method, "PUT") && req->body_len > 0) {
                s->puts++;
                s->puts_md5 += content_md5 != NULL;
        }
        if (content_md5) {
                uint8_t sum[16];
                md5(req->body, req->body_len, sum);
                _cleanup_free_ char *b64 = base64_encode(sum, sizeof(sum));
                if (!b64)
                        return -ENOMEM;
                if (!streq(b64, content_md5))
                        return s3_error(&c, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
        }

        upload_id = http_server_query_param(req, "uploadId");
        part = http_server_query_param(req, "partNumber");
        bool uploads = strstr(req->query, "uploads") == req->query || strstr(req->query, "&uploads");

        if (!key) {
                if (streq(req->method, "GET") && uploads) {
                        prefix = http_server_query_param(req, "prefix");
                        return upload_list(&c, bucket, prefix);
                }
                return s3_error(&c, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
        }
        if (streq(req->method, "PUT") && upload_id)
                return part_put(&c, bucket, key, upload_id, part);
        if (streq(req->method, "PUT")) {
                uint8_t *data = copy_body(req), sum[16];
                char hex[33], etag[64];
                if (!data)
                        return -ENOMEM;
                md5(data, req->body_len, sum);
                hex_encode(sum, 16, hex);
                snprintf(etag, sizeof(etag), "\"%s\"", hex);
                r = object_put(s, bucket, key, data, req->body_len, etag);
                return r < 0 ? r : add_etag(resp, etag);
        }
        if (streq(req->method, "POST") && uploads)
                return upload_create(&c, bucket, key);
        if (streq(req->method, "POST") && upload_id)
                return upload_complete(&c, bucket, key, upload_id);
        if (streq(req->method, "DELETE") && upload_id) {
                upload *u = find_upload(s, bucket, key, upload_id);
                if (!u)
                        return s3_error(&c, 404, "NoSuchUpload", "The specified upload does not exist.");
                upload_remove(s, u);
                resp->status = 204;
                return 0;
        }
        if (streq(req->method, "DELETE")) {
                if (s->fail_deletes)
                        return s3_error(&c, 500, "InternalError", "We encountered an internal error. Please try again.");
                blob *o = find_object(s, bucket, key);
                if (o)
                        object_remove(s, o);
                resp->status = 204;
                return 0;
        }
        if (streq(req->method, "GET") || streq(req->method, "HEAD")) {
                blob *o = find_object(s, bucket, key);
                if (!o)
                        return s3_error(&c, 404, "NoSuchKey", "The specified key does not exist.");
                resp->content_type = "application/octet-stream";
                buf_clear(&resp->body);
                if (streq(req->method, "GET") && buf_append(&resp->body, o->data, o->len) < 0)
                        return -ENOMEM;
                return add_etag(resp, o->etag);
        }
        return s3_error(&c, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
}

int fake_sos_fetch(fake_sos *s, const char *url, char md5_hex[33], size_t *ret_size, buf *err) {
        _cleanup_free_ char *prefix = NULL, *raw_path = NULL, *path = NULL, *zone = NULL, *bucket = NULL, *host = NULL;
        _cleanup_buf_ buf msg = {};
        const char *code = NULL;
        int n = 0, status = 0, r;

        if (asprintf(&prefix, "http://127.0.0.1:%d/", s->port) < 0 || asprintf(&host, "host: 127.0.0.1:%d", s->port) < 0)
                return -ENOMEM;
        if (!url || !startswith(url, prefix)) {
                buf_printf(err, "cannot download the template URL (not this fake's object store)");
                return -EHOSTUNREACH;
        }
        const char *p = url + strlen(prefix) - 1, *q = strchr(p, '?');
        raw_path = strndup(p, q ? (size_t) (q - p) : strlen(p));
        if (!raw_path || http_unescape(raw_path, strlen(raw_path), false, &path) < 0 ||
            sscanf(path, "/sos/%m[^/]/%m[^/]%n", &zone, &bucket, &n) < 2 || n == 0 || path[n] != '/' ||
            !strv_contains((char *const *) s->zones, zone)) {
                buf_printf(err, "cannot download the template URL: HTTP 404");
                return -ENOENT;
        }
        char *headers[] = { host, NULL };
        r = authorize(s, zone, "GET", raw_path, q ? q + 1 : "", headers, NULL, 0, &status, &code, &msg);
        if (r < 0)
                return r;
        if (r > 0) {
                buf_printf(err, "cannot download the template URL: HTTP %d %s: %s", status, code, strempty(msg.data));
                return -EACCES;
        }
        blob *o = strv_contains(s->buckets, bucket) ? find_object(s, bucket, path + n + 1) : NULL;
        if (!o) {
                buf_printf(err, "cannot download the template URL: HTTP 404 NoSuchKey");
                return -ENOENT;
        }
        uint8_t sum[16];
        md5(o->data, o->len, sum);
        hex_encode(sum, 16, md5_hex);
        *ret_size = o->len;
        return 0;
}

json_t *fake_sos_state(const fake_sos *s) {
        json_t *objects = json_array(), *uploads = json_array();
        for (size_t i = 0; i < s->n_objects; i++)
                json_array_append_new(objects, json_sprintf("%s/%s", s->objects[i].bucket, s->objects[i].key));
        for (size_t i = 0; i < s->n_uploads; i++)
                json_array_append_new(uploads, json_pack("{s:s, s:s, s:s, s:I}", "bucket", s->uploads[i].bucket, "key",
                                                         s->uploads[i].key, "id", s->uploads[i].id, "parts",
                                                         (json_int_t) s->uploads[i].n_parts));
        return json_pack("{s:o, s:o, s:I, s:I}", "objects", objects, "uploads", uploads, "puts", (json_int_t) s->puts,
                         "puts-with-content-md5", (json_int_t) s->puts_md5);
}
