#include "discover.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exoscale.h"
#include "request.h"
#include "json.h"
#include "strv.h"

void pool_view_done(pool_view *v) {
        free(v->pool_id);
        for (size_t i = 0; i < v->n_peers; i++) {
                free(v->peers[i].instance_id);
                free(v->peers[i].ip);
        }
        free(v->peers);
        *v = (pool_view){ 0 };
}

const pool_peer *pool_view_find_ip(const pool_view *v, const char *ip) {
        for (size_t i = 0; i < v->n_peers; i++)
                if (streq(v->peers[i].ip, ip))
                        return &v->peers[i];
        return NULL;
}

int discover_parse_manager(json_t *instance, char **ret_pool_id, char **ret_network_id) {
        const char *type = json_path_string(instance, "manager.type");
        const char *id = json_path_string(instance, "manager.id");
        json_t *pn = json_object_get(instance, "private-networks");
        const char *net = json_path_string(json_array_get(pn, 0), "id");

        if (!type || !streq(type, "instance-pool") || !id || !*id || !net || !*net)
                return -EBADMSG;
        char *a = strdup(id), *b = strdup(net);
        if (!a || !b) {
                free(a);
                free(b);
                return -ENOMEM;
        }
        *ret_pool_id = a;
        *ret_network_id = b;
        return 0;
}

static int peer_cmp(const void *a, const void *b) {
        return strcmp(((const pool_peer *) a)->instance_id, ((const pool_peer *) b)->instance_id);
}

int discover_parse_peers(json_t *instances, json_t *network, pool_view *view) {
        json_t *list = json_object_get(instances, "instances");
        json_t *leases = json_object_get(network, "leases");
        size_t i, j;
        json_t *inst, *lease;

        if (!json_is_array(list) || !json_is_array(leases) || json_array_size(list) > 1024)
                return -EBADMSG;
        pool_peer *peers = calloc(json_array_size(list) + 1, sizeof(pool_peer));
        if (!peers)
                return -ENOMEM;
        size_t n = 0;
        json_array_foreach(list, i, inst) {
                const char *id = json_path_string(inst, "id");
                const char *state = json_path_string(inst, "state");
                if (!id || !state)
                        continue;
                if (!streq(state, "running") && !streq(state, "starting"))
                        continue;
                json_array_foreach(leases, j, lease) {
                        const char *lid = json_path_string(lease, "instance-id");
                        const char *ip = json_path_string(lease, "ip");
                        if (lid && ip && streq(lid, id)) {
                                peers[n].instance_id = strdup(id);
                                peers[n].ip = strdup(ip);
                                if (!peers[n].instance_id || !peers[n].ip) {
                                        n++;
                                        view->peers = peers;
                                        view->n_peers = n;
                                        return -ENOMEM;
                                }
                                n++;
                                break;
                        }
                }
        }
        qsort(peers, n, sizeof(pool_peer), peer_cmp);
        view->peers = peers;
        view->n_peers = n;
        return 0;
}

/* Signed GET <api->url><path>?<query>; *ret a new JSON reference. */
static int api_get(const cloud_api *api, const char *path, const char *query, json_t **ret, buf *err) {
        _cleanup_free_ char *url = NULL, *url_path = NULL;
        _cleanup_buf_ buf auth = BUF_INIT(4096);
        _cleanup_buf_ buf e = BUF_INIT(1024);
        _cleanup_strv_free_ char **headers = NULL;
        http_response resp = { 0 };
        int r;

        if (asprintf(&url, "%s%s%s%s", api->url, path, query ? "?" : "", strempty(query)) < 0)
                return -ENOMEM;
        /* The signed path is the URL path, including the /v2 prefix. */
        const char *p = strstr(api->url, "://");
        p = p ? strchr(p + 3, '/') : NULL;
        if (asprintf(&url_path, "%s%s", strempty(p), path) < 0)
                return -ENOMEM;
        r = buf_puts(&auth, "Authorization: ");
        if (r < 0)
                return r;
        r = exo_sign("GET", url_path, query, NULL, 0, api->key, api->secret, time(NULL) + 600, &auth);
        if (r < 0)
                return r;
        r = strv_push(&headers, auth.data);
        if (r < 0)
                return r;
        http_request req = {
                .url = url,
                .headers = headers,
                .timeout_ms = 5000,
                .max_body = 4 * 1024 * 1024,
                .attempts = 5,
                .backoff_ms = 200,
                .deadline_ms = 30000,
        };
        r = request_do(&req, &resp, err);
        if (r < 0)
                goto out;
        if (resp.status != 200) {
                _cleanup_json_ json_t *j = NULL;
                const char *msg = NULL;
                if (json_parse(resp.body.data, resp.body.len, &j, NULL) >= 0)
                        msg = json_path_string(j, "message");
                if (err)
                        buf_printf(err, "GET %s: HTTP %ld%s%.200s", url, resp.status, msg ? ": " : "", strempty(msg));
                r = resp.status == 404 ? -ENOENT : resp.status == 403 ? -EACCES : -EIO;
                goto out;
        }
        r = json_parse(resp.body.data, resp.body.len, ret, &e);
        if (r < 0 && err)
                buf_printf(err, "GET %s: bad JSON: %s", url, strempty(e.data));
out:
        http_response_free(&resp);
        return r;
}

int discover_pool(const cloud_api *api, const char *instance_id, pool_view *ret, buf *err) {
        _cleanup_json_ json_t *self = NULL, *instances = NULL, *network = NULL;
        _cleanup_free_ char *path = NULL, *query = NULL, *net_id = NULL, *esc = http_escape(instance_id);
        pool_view view = { 0 };
        int r;

        if (!esc || asprintf(&path, "/instance/%s", esc) < 0)
                return -ENOMEM;
        r = api_get(api, path, NULL, &self, err);
        if (r < 0)
                return r;
        r = discover_parse_manager(self, &view.pool_id, &net_id);
        if (r < 0) {
                if (err)
                        buf_printf(err, "instance %s is not an instance-pool member on a private network", instance_id);
                return r;
        }
        _cleanup_free_ char *pool_esc = http_escape(view.pool_id), *net_esc = http_escape(net_id);
        free(path);
        path = NULL;
        if (!pool_esc || !net_esc || asprintf(&query, "manager-id=%s&manager-type=instance-pool", pool_esc) < 0 ||
            asprintf(&path, "/private-network/%s", net_esc) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        r = api_get(api, "/instance", query, &instances, err);
        if (r < 0)
                goto fail;
        r = api_get(api, path, NULL, &network, err);
        if (r < 0)
                goto fail;
        r = discover_parse_peers(instances, network, &view);
        if (r < 0) {
                if (err)
                        buf_printf(err, "malformed instance list or private network reply");
                goto fail;
        }
        *ret = view;
        return 0;
fail:
        pool_view_done(&view);
        return r;
}
