#include "etcd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "json.h"
#include "strv.h"

#define ETCD_MAX_BODY (1024 * 1024)

int etcd_parse_error(long status, const char *body, size_t len, buf *err) {
        _cleanup_json_ json_t *j = NULL;
        const char *msg = NULL;

        if (len > 0 && json_parse(body, len, &j, NULL) >= 0) {
                msg = json_path_string(j, "error");
                if (!msg)
                        msg = json_path_string(j, "message");
        }
        if (err) {
                buf_printf(err, "HTTP %ld", status);
                if (msg)
                        buf_printf(err, ": %.300s", msg);
        }
        switch (status) {
        case 400: return -EINVAL;
        case 404: return -ENOENT;
        case 409: return -EEXIST;
        case 503: return -EAGAIN;
        default: return -EIO;
        }
}

void etcd_members_done(etcd_members *m) {
        for (size_t i = 0; i < m->n; i++) {
                free(m->v[i].name);
                strv_free(m->v[i].peer_urls);
                strv_free(m->v[i].client_urls);
        }
        free(m->v);
        *m = (etcd_members){ 0 };
}

static int parse_urls(json_t *arr, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t i;
        json_t *u;

        if (arr && !json_is_array(arr))
                return -EBADMSG;
        json_array_foreach(arr, i, u) {
                if (!json_is_string(u) || i >= 16)
                        return -EBADMSG;
                if (strv_push(&l, json_string_value(u)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int etcd_parse_members(json_t *reply, etcd_members *ret) {
        etcd_members m = { 0 };
        json_t *arr = json_object_get(reply, "members");
        size_t i;
        json_t *o;
        int r;

        if (!json_is_array(arr) || json_array_size(arr) > 64)
                return -EBADMSG;
        r = json_path_u64(reply, "header.cluster_id", &m.cluster_id);
        if (r == -EBADMSG)
                return r;
        m.v = calloc(json_array_size(arr) + 1, sizeof(etcd_member));
        if (!m.v)
                return -ENOMEM;
        json_array_foreach(arr, i, o) {
                etcd_member *e = &m.v[m.n++];
                const char *name = json_path_string(o, "name");
                if (!json_is_object(o) || json_path_u64(o, "ID", &e->id) < 0) {
                        r = -EBADMSG;
                        goto fail;
                }
                if (name && *name && !(e->name = strdup(name))) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = parse_urls(json_object_get(o, "peerURLs"), &e->peer_urls);
                if (r < 0)
                        goto fail;
                r = parse_urls(json_object_get(o, "clientURLs"), &e->client_urls);
                if (r < 0)
                        goto fail;
                e->is_learner = json_path_bool(o, "isLearner");
        }
        *ret = m;
        return 0;
fail:
        etcd_members_done(&m);
        return r;
}

int etcd_parse_added_id(json_t *reply, uint64_t *ret) {
        return json_path_u64(reply, "member.ID", ret) < 0 ? -EBADMSG : 0;
}

int etcd_parse_status(json_t *reply, bool *ret_is_learner, uint64_t *ret_leader) {
        uint64_t leader = 0;
        if (!json_is_object(reply) || json_path_u64(reply, "leader", &leader) == -EBADMSG)
                return -EBADMSG;
        *ret_is_learner = json_path_bool(reply, "isLearner");
        *ret_leader = leader;
        return 0;
}

etcd_member *etcd_members_find_peer(const etcd_members *m, const char *url) {
        for (size_t i = 0; i < m->n; i++)
                if (strv_contains(m->v[i].peer_urls, url))
                        return &m->v[i];
        return NULL;
}

char *etcd_url_host(const char *url) {
        const char *p = strstr(url, "://");
        if (!p)
                return NULL;
        p += 3;
        size_t l = strcspn(p, ":/");
        return l > 0 ? strndup(p, l) : NULL;
}

static int etcd_request(const etcd_tls *tls, const char *method, const char *url, const char *body,
                        unsigned attempts, long deadline_ms, http_response *resp, buf *err) {
        static const int retry_status[] = { 502, 503, 504, 0 };
        static char *const headers[] = { (char *) "Content-Type: application/json", NULL };
        http_request req = {
                .method = method,
                .url = url,
                .headers = body ? headers : NULL,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .timeout_ms = 5000,
                .max_body = ETCD_MAX_BODY,
                .attempts = attempts,
                .backoff_ms = 200,
                .backoff_max_ms = 2000,
                .deadline_ms = deadline_ms,
                .retry_status = retry_status,
                .ca_file = tls->ca_file,
                .cert_file = tls->cert_file,
                .key_file = tls->key_file,
        };
        return request_do(&req, tls->deadline, resp, err);
}

int etcd_call(const etcd_tls *tls, const char *endpoint, const char *path, const char *body,
              unsigned attempts, long deadline_ms, json_t **ret, buf *err) {
        _cleanup_free_ char *url = NULL;
        _cleanup_buf_ buf e = BUF_INIT(1024);
        http_response resp = { 0 };
        int r;

        if (asprintf(&url, "%s%s", endpoint, path) < 0)
                return -ENOMEM;
        r = etcd_request(tls, "POST", url, body, attempts, deadline_ms, &resp, err);
        if (r < 0)
                goto out;
        if (resp.status != 200) {
                r = etcd_parse_error(resp.status, resp.body.data, resp.body.len, &e);
                if (err)
                        buf_printf(err, "POST %s: %s", url, e.data ? e.data : "");
                goto out;
        }
        r = json_parse(resp.body.data, resp.body.len, ret, &e);
        if (r < 0 && err)
                buf_printf(err, "POST %s: bad JSON: %s", url, e.data ? e.data : "");
out:
        http_response_free(&resp);
        return r;
}

int etcd_health(const etcd_tls *tls, const char *endpoint, buf *err) {
        _cleanup_free_ char *url = NULL;
        _cleanup_json_ json_t *j = NULL;
        http_response resp = { 0 };
        int r;

        if (asprintf(&url, "%s/health", endpoint) < 0)
                return -ENOMEM;
        r = etcd_request(tls, "GET", url, NULL, 1, 0, &resp, err);
        if (r >= 0) {
                const char *h = NULL;
                if (resp.status == 200 && json_parse(resp.body.data, resp.body.len, &j, NULL) >= 0)
                        h = json_path_string(j, "health");
                r = h && streq(h, "true") ? 0 : -EAGAIN;
                if (r < 0 && err)
                        buf_printf(err, "GET %s: unhealthy (HTTP %ld)", url, resp.status);
        }
        http_response_free(&resp);
        return r;
}

int etcd_member_list(const etcd_tls *tls, const char *endpoint, etcd_members *ret, buf *err) {
        _cleanup_json_ json_t *j = NULL;
        int r = etcd_call(tls, endpoint, "/v3/cluster/member/list", "{}", 3, 10000, &j, err);
        if (r < 0)
                return r;
        r = etcd_parse_members(j, ret);
        if (r < 0 && err)
                buf_printf(err, "%s/v3/cluster/member/list: malformed reply", endpoint);
        return r;
}

int etcd_member_add_learner(const etcd_tls *tls, const char *endpoint, const char *peer_url,
                            uint64_t *ret_id, etcd_members *ret_members, buf *err) {
        _cleanup_json_ json_t *body = json_pack("{s:[s], s:b}", "peerURLs", peer_url, "isLearner", 1);
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *text = body ? json_dump_compact(body) : NULL;
        uint64_t id;
        int r;

        if (!text)
                return -ENOMEM;
        /* Not retried: a lost reply must be resolved by listing members, not by adding twice. */
        r = etcd_call(tls, endpoint, "/v3/cluster/member/add", text, 1, 0, &j, err);
        if (r < 0)
                return r;
        r = etcd_parse_added_id(j, &id);
        if (r >= 0)
                r = etcd_parse_members(j, ret_members);
        if (r < 0) {
                if (err)
                        buf_printf(err, "%s/v3/cluster/member/add: malformed reply", endpoint);
                return r;
        }
        *ret_id = id;
        return 0;
}

static int member_id_call(const etcd_tls *tls, const char *endpoint, const char *path, uint64_t id, buf *err) {
        _cleanup_json_ json_t *j = NULL;
        char body[64];
        snprintf(body, sizeof(body), "{\"ID\":\"%" PRIu64 "\"}", id);
        return etcd_call(tls, endpoint, path, body, 1, 0, &j, err);
}

int etcd_member_remove(const etcd_tls *tls, const char *endpoint, uint64_t id, buf *err) {
        return member_id_call(tls, endpoint, "/v3/cluster/member/remove", id, err);
}

int etcd_member_promote(const etcd_tls *tls, const char *endpoint, uint64_t id, buf *err) {
        return member_id_call(tls, endpoint, "/v3/cluster/member/promote", id, err);
}

int etcd_status(const etcd_tls *tls, const char *endpoint, bool *ret_is_learner, buf *err) {
        _cleanup_json_ json_t *j = NULL;
        uint64_t leader;
        int r = etcd_call(tls, endpoint, "/v3/maintenance/status", "{}", 1, 0, &j, err);
        if (r < 0)
                return r;
        r = etcd_parse_status(j, ret_is_learner, &leader);
        if (r < 0 && err)
                buf_printf(err, "%s/v3/maintenance/status: malformed reply", endpoint);
        return r;
}
