/* etcd v3 over the JSON gateway. The gateway is grpc-gateway's proto3 JSON: int64 fields come as
 * decimal strings, fields at their default (false, 0, empty) are left out, bytes are base64. */
#include "etcd-client.h"

#include <stdio.h>

#include "crypto.h"
#include "http.h"
#include "json.h"
#include "strv.h"

#define ETCD_CLIENT_DEFAULT_TIMEOUT_MS 5000
#define ETCD_CLIENT_DEFAULT_MAX_REPLY (16u * 1024u * 1024u)

struct etcd_client {
        char **endpoints;
        char *ca_file, *cert_file, *key_file;
        long timeout_ms;
        size_t max_reply;
};

void etcd_client_free(etcd_client *c) {
        if (!c)
                return;
        strv_free(c->endpoints);
        free(c->ca_file);
        free(c->cert_file);
        free(c->key_file);
        free(c);
}

static int dup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (s && !(*ret = strdup(s)))
                return -ENOMEM;
        return 0;
}

int etcd_client_new(const etcd_client_options *o, etcd_client **ret) {
        _cleanup_(etcd_client_freep) etcd_client *c = NULL;

        if (!o->endpoints || !o->endpoints[0])
                return -EINVAL;
        for (char *const *e = o->endpoints; *e; e++)
                if (!startswith(*e, "http://") && !startswith(*e, "https://"))
                        return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->endpoints = strv_copy(o->endpoints);
        if (!c->endpoints || dup_opt(o->ca_file, &c->ca_file) < 0 ||
            dup_opt(o->cert_file, &c->cert_file) < 0 || dup_opt(o->key_file, &c->key_file) < 0)
                return -ENOMEM;
        /* "http://h:2379/" and "http://h:2379" are the same endpoint */
        for (char **e = c->endpoints; *e; e++) {
                size_t n = strlen(*e);
                while (n > 0 && (*e)[n - 1] == '/')
                        (*e)[--n] = 0;
        }
        c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : ETCD_CLIENT_DEFAULT_TIMEOUT_MS;
        c->max_reply = o->max_reply > 0 ? o->max_reply : ETCD_CLIENT_DEFAULT_MAX_REPLY;
        *ret = TAKE_PTR(c);
        return 0;
}

void etcd_client_kv_done(etcd_client_kv *kv) {
        free(kv->key);
        free(kv->value);
        *kv = (etcd_client_kv){};
}

void etcd_client_range_result_done(etcd_client_range_result *r) {
        for (size_t i = 0; i < r->n_kvs; i++)
                etcd_client_kv_done(&r->kvs[i]);
        free(r->kvs);
        *r = (etcd_client_range_result){};
}

char *etcd_client_prefix_end(const char *prefix) {
        char *end = strdup(prefix);
        if (!end)
                return NULL;
        for (size_t n = strlen(end); n > 0; n--) {
                unsigned char ch = (unsigned char) end[n - 1];
                if (ch < 0xff) {
                        end[n - 1] = (char) (ch + 1);
                        end[n] = 0;
                        return end;
                }
        }
        free(end);
        return NULL;
}

/* ---- transport ---- */

static int gateway_error(long status, const buf *body, const char *url, buf *err) {
        _cleanup_json_ json_t *j = NULL;
        const char *msg = NULL;
        if (body->len > 0 && json_parse(body->data, body->len, &j, NULL) >= 0) {
                msg = json_path_string(j, "message");
                if (!msg)
                        msg = json_path_string(j, "error");
        }
        if (err)
                buf_printf(err, "POST %s: HTTP %ld%s%.300s", url, status, msg ? ": " : "",
                           msg ? msg : "");
        return status == 400 ? -EINVAL : status == 503 ? -EAGAIN : -EIO;
}

/* POST body (a JSON object, stolen) to path on the first endpoint that answers. *ret: the reply
 * object. */
static int call(etcd_client *c, const char *path, json_t *body_json, long timeout_ms, json_t **ret,
                buf *err) {
        _cleanup_json_ json_t *body_ref = body_json;
        _cleanup_free_ char *body = NULL;
        static char *const headers[] = { (char *) "Content-Type: application/json", NULL };
        int r = -EIO;

        if (!body_json || !(body = json_dump_compact(body_json)))
                return -ENOMEM;
        for (char **e = c->endpoints; *e; e++) {
                _cleanup_free_ char *url = NULL;
                _cleanup_buf_ buf e_err = BUF_INIT(1024);
                http_response resp = {};

                if (asprintf(&url, "%s%s", *e, path) < 0)
                        return -ENOMEM;
                http_request req = {
                        .method = "POST", .url = url, .headers = headers, .body = body,
                        .body_len = strlen(body), .timeout_ms = timeout_ms > 0 ? timeout_ms : c->timeout_ms,
                        .max_body = c->max_reply, .ca_file = c->ca_file, .cert_file = c->cert_file,
                        .key_file = c->key_file,
                };
                r = http_do(&req, &resp, &e_err);
                if (r < 0) {
                        http_response_free(&resp);
                        if (r == -ENOMEM || r == -ENOBUFS || r == -EINVAL || !e[1]) {
                                if (err)
                                        buf_printf(err, "%s", e_err.len ? e_err.data : strerror(-r));
                                return r;
                        }
                        continue; /* no answer: the next member may give one */
                }
                if (resp.status != 200) {
                        r = gateway_error(resp.status, &resp.body, url, err);
                        http_response_free(&resp);
                        return r;
                }
                _cleanup_buf_ buf perr = BUF_INIT(512);
                r = json_parse(resp.body.data, resp.body.len, ret, &perr);
                http_response_free(&resp);
                if (r >= 0 && !json_is_object(*ret)) {
                        json_decref(*ret);
                        *ret = NULL;
                        r = -EBADMSG;
                }
                if (r < 0 && err)
                        buf_printf(err, "POST %s: malformed reply%s%s", url, perr.len ? ": " : "",
                                   perr.len ? perr.data : "");
                return r < 0 ? -EBADMSG : 0;
        }
        return r;
}

/* ---- encoding ---- */

static json_t *b64(const void *data, size_t len) {
        _cleanup_free_ char *s = base64_encode(data, len);
        return s ? json_string(s) : NULL;
}

static json_t *b64s(const char *s) { return b64(s, strlen(s)); }

/* An int64 field, absent meaning 0 (proto3 JSON). */
static int field_i64(json_t *j, const char *path, int64_t *ret) {
        int r = json_path_i64(j, path, ret);
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        return r;
}

static int decode_b64_field(json_t *j, const char *name, char **ret, size_t *ret_len) {
        json_t *v = json_object_get(j, name);
        uint8_t *data = NULL;
        size_t len = 0;
        if (!v) {
                /* an empty value is left out */
                if (!(*ret = strdup("")))
                        return -ENOMEM;
                if (ret_len)
                        *ret_len = 0;
                return 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        int r = base64_decode(json_string_value(v), &data, &len);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        *ret = (char *) data;
        if (ret_len)
                *ret_len = len;
        return 0;
}

static int parse_kv(json_t *j, etcd_client_kv *ret) {
        _cleanup_(etcd_client_kv_done) etcd_client_kv kv = {};
        int r;
        if (!json_is_object(j))
                return -EBADMSG;
        if ((r = decode_b64_field(j, "key", &kv.key, NULL)) < 0 ||
            (r = decode_b64_field(j, "value", &kv.value, &kv.value_len)) < 0 ||
            (r = field_i64(j, "create_revision", &kv.create_revision)) < 0 ||
            (r = field_i64(j, "mod_revision", &kv.mod_revision)) < 0 ||
            (r = field_i64(j, "version", &kv.version)) < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        *ret = kv;
        kv = (etcd_client_kv){};
        return 0;
}

static int parse_range(json_t *j, etcd_client_range_result *ret) {
        _cleanup_(etcd_client_range_result_done) etcd_client_range_result res = {};
        json_t *kvs = json_object_get(j, "kvs");
        int r;

        if ((r = field_i64(j, "header.revision", &res.revision)) < 0 ||
            (r = field_i64(j, "count", &res.count)) < 0)
                return -EBADMSG;
        res.more = json_path_bool(j, "more");
        if (kvs) {
                if (!json_is_array(kvs))
                        return -EBADMSG;
                size_t n = json_array_size(kvs);
                if (n > 0 && !(res.kvs = calloc(n, sizeof(*res.kvs))))
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        r = parse_kv(json_array_get(kvs, i), &res.kvs[i]);
                        if (r < 0)
                                return r;
                        res.n_kvs++;
                }
        }
        *ret = res;
        res = (etcd_client_range_result){};
        return 0;
}

static int malformed(buf *err, const char *what) {
        if (err)
                buf_printf(err, "etcd %s: malformed reply", what);
        return -EBADMSG;
}

/* ---- operations ---- */

int etcd_client_get(etcd_client *c, const char *key, etcd_client_kv *ret, int64_t *ret_revision,
                    buf *err) {
        _cleanup_json_ json_t *reply = NULL;
        _cleanup_(etcd_client_range_result_done) etcd_client_range_result res = {};
        int r = call(c, "/v3/kv/range", json_pack("{s:o}", "key", b64s(key)), 0, &reply, err);
        if (r < 0)
                return r;
        r = parse_range(reply, &res);
        if (r < 0)
                return r == -ENOMEM ? r : malformed(err, "range");
        if (ret_revision)
                *ret_revision = res.revision;
        if (res.n_kvs == 0)
                return -ENOENT;
        *ret = res.kvs[0];
        res.kvs[0] = (etcd_client_kv){};
        return 0;
}

int etcd_client_list_prefix(etcd_client *c, const char *prefix, int64_t limit,
                            etcd_client_range_result *ret, buf *err) {
        return etcd_client_list_prefix_at(c, prefix, 0, limit, ret, err);
}

int etcd_client_list_prefix_at(etcd_client *c, const char *prefix, int64_t revision, int64_t limit,
                               etcd_client_range_result *ret, buf *err) {
        _cleanup_json_ json_t *reply = NULL;
        _cleanup_free_ char *end = etcd_client_prefix_end(prefix);
        int r;
        if (!end)
                return *prefix ? -ENOMEM : -EINVAL;
        if (revision < 0)
                return -EINVAL;
        r = call(c, "/v3/kv/range",
                 json_pack("{s:o,s:o,s:I,s:I}", "key", b64s(prefix), "range_end", b64s(end), "limit",
                           (json_int_t) (limit > 0 ? limit : 0), "revision", (json_int_t) revision),
                 0, &reply, err);
        if (r < 0)
                return r;
        r = parse_range(reply, ret);
        return r == -EBADMSG ? malformed(err, "range") : r;
}

int etcd_client_put(etcd_client *c, const char *key, const void *value, size_t len,
                    int64_t *ret_revision, buf *err) {
        _cleanup_json_ json_t *reply = NULL;
        int64_t rev;
        int r = call(c, "/v3/kv/put", json_pack("{s:o,s:o}", "key", b64s(key), "value", b64(value, len)),
                     0, &reply, err);
        if (r < 0)
                return r;
        if (field_i64(reply, "header.revision", &rev) < 0)
                return malformed(err, "put");
        if (ret_revision)
                *ret_revision = rev;
        return 0;
}

/* A transaction: if key's target (CREATE or MOD) equals revision, do success (stolen array);
 * otherwise read the key. Returns 1 when it succeeded, 0 when the compare failed (*ret_current:
 * whether the key exists now), or an error. */
static int txn(etcd_client *c, const char *key, const char *target, int64_t revision,
               json_t *success, int64_t *ret_revision, bool *ret_current, json_t **ret_reply,
               buf *err) {
        _cleanup_json_ json_t *reply = NULL;
        const char *field = streq(target, "CREATE") ? "create_revision" : "mod_revision";
        int64_t rev;
        json_t *body = json_pack("{s:[{s:s,s:s,s:o,s:I}],s:o,s:[{s:{s:o}}]}", "compare", "target",
                                 target, "result", "EQUAL", "key", b64s(key), field,
                                 (json_int_t) revision, "success", success, "failure",
                                 "request_range", "key", b64s(key));
        int r = call(c, "/v3/kv/txn", body, 0, &reply, err);
        if (r < 0)
                return r;
        if (field_i64(reply, "header.revision", &rev) < 0)
                return malformed(err, "txn");
        if (ret_revision)
                *ret_revision = rev;
        if (json_path_bool(reply, "succeeded")) {
                if (ret_reply)
                        *ret_reply = TAKE_PTR(reply);
                return 1;
        }
        json_t *kvs = json_path(reply, "responses.0.response_range.kvs");
        if (ret_current)
                *ret_current = json_is_array(kvs) && json_array_size(kvs) > 0;
        return 0;
}

int etcd_client_create(etcd_client *c, const char *key, const void *value, size_t len,
                       int64_t *ret_revision, buf *err) {
        int r = txn(c, key, "CREATE", 0,
                    json_pack("[{s:{s:o,s:o}}]", "request_put", "key", b64s(key), "value", b64(value, len)),
                    ret_revision, NULL, NULL, err);
        return r < 0 ? r : r == 1 ? 0 : -EEXIST;
}

int etcd_client_update(etcd_client *c, const char *key, const void *value, size_t len,
                       int64_t mod_revision, int64_t *ret_revision, buf *err) {
        bool exists = false;
        if (mod_revision <= 0)
                return -EINVAL;
        int r = txn(c, key, "MOD", mod_revision,
                    json_pack("[{s:{s:o,s:o}}]", "request_put", "key", b64s(key), "value", b64(value, len)),
                    ret_revision, &exists, NULL, err);
        return r < 0 ? r : r == 1 ? 0 : exists ? -ESTALE : -ENOENT;
}

int etcd_client_delete(etcd_client *c, const char *key, int64_t mod_revision,
                       int64_t *ret_revision, buf *err) {
        _cleanup_json_ json_t *reply = NULL;
        int64_t deleted = 0;
        int r;

        if (mod_revision > 0) {
                bool exists = false;
                r = txn(c, key, "MOD", mod_revision,
                        json_pack("[{s:{s:o}}]", "request_delete_range", "key", b64s(key)),
                        ret_revision, &exists, &reply, err);
                if (r < 0)
                        return r;
                if (r == 0)
                        return exists ? -ESTALE : -ENOENT;
                if (field_i64(reply, "responses.0.response_delete_range.deleted", &deleted) < 0)
                        return malformed(err, "txn");
                return deleted > 0 ? 0 : -ENOENT;
        }
        r = call(c, "/v3/kv/deleterange", json_pack("{s:o}", "key", b64s(key)), 0, &reply, err);
        if (r < 0)
                return r;
        int64_t rev;
        if (field_i64(reply, "deleted", &deleted) < 0 || field_i64(reply, "header.revision", &rev) < 0)
                return malformed(err, "deleterange");
        if (ret_revision)
                *ret_revision = rev;
        return deleted > 0 ? 0 : -ENOENT;
}

int etcd_client_ping(etcd_client *c, const char *key, long timeout_ms, buf *err) {
        _cleanup_json_ json_t *reply = NULL;
        return call(c, "/v3/kv/range", json_pack("{s:o,s:b}", "key", b64s(key), "keys_only", 1),
                    timeout_ms, &reply, err);
}
