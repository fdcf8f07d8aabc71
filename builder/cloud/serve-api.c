/* The Exoscale API v2 subset the agent's discovery uses (read-only), on the "api" listener:
 * every request must carry a valid EXO2-HMAC-SHA256 signature made with cloud.json's api_key
 * and api_secret. Field names and shapes: shared/reference/protocols.md §2. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "exoscale.h"
#include "json.h"
#include "serve-service.h"

static int api_error(http_server_response *resp, int status, const char *message) {
        return serve_reply_json(resp, status, json_pack("{s:s}", "message", message));
}

/* Security groups only have names in cloud.json; give each a stable UUID-shaped id. */
static void security_group_id(const char *name, char out[37]) {
        char hex[SHA256_HEX_SIZE];
        _cleanup_free_ char *key = NULL;
        if (asprintf(&key, "security-group:%s", name) < 0)
                key = NULL;
        sha256_hex(strempty(key), strlen(strempty(key)), hex);
        snprintf(out, 37, "%.8s-%.4s-4%.3s-8%.3s-%.12s", hex, hex + 8, hex + 13, hex + 17, hex + 20);
}

static json_t *instance_json(const cloud_state *cloud, const cloud_instance *in, bool full) {
        const cloud_pool *pool = cloud_find_pool(cloud, in->pool);
        json_t *groups = json_array(), *sg;
        size_t i;
        char id[37];

        json_array_foreach(in->security_groups, i, sg) {
                security_group_id(json_string_value(sg), id);
                json_array_append_new(groups, json_pack("{s:s,s:O}", "id", id, "name", sg));
        }
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o*}", "id", in->id, "name", in->name, "state",
                              in->state, "public-ip", in->public_ip, "created-at", in->created_at,
                              "security-groups", groups, "labels",
                              in->labels ? json_incref(in->labels) : json_object());
        if (!o)
                return NULL;
        if (pool)
                json_object_set_new(o, "manager", json_pack("{s:s,s:s}", "id", pool->id, "type", "instance-pool"));
        json_object_set_new(o, "private-networks",
                            pool && pool->private_network ? json_pack("[{s:s}]", "id", pool->private_network)
                                                          : json_array());
        if (full) {
                _cleanup_free_ char *user_data = base64_encode(strempty(in->user_data), strlen(strempty(in->user_data)));
                if (user_data)
                        json_object_set_new(o, "user-data", json_string(user_data));
        }
        return o;
}

static json_t *pool_json(const cloud_state *cloud, const cloud_pool *pool) {
        json_t *members = json_array();
        for (size_t i = 0; i < cloud->n_instances; i++)
                if (cloud->instances[i].pool && streq(cloud->instances[i].pool, pool->id))
                        json_array_append_new(members, json_pack("{s:s}", "id", cloud->instances[i].id));
        json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:{s:s},s:o}", "id", pool->id, "name", pool->name, "size",
                              (json_int_t) pool->size, "state", "running", "template", "id", pool->template,
                              "instances", members);
        if (o)
                json_object_set_new(o, "private-networks",
                                    pool->private_network ? json_pack("[{s:s}]", "id", pool->private_network)
                                                          : json_array());
        return o;
}

static int list_instances(const serve_state *s, const http_server_request *req, http_server_response *resp) {
        _cleanup_free_ char *manager_id = http_server_query_param(req, "manager-id");
        _cleanup_free_ char *manager_type = http_server_query_param(req, "manager-type");
        json_t *list = json_array();

        if (manager_type && !streq(manager_type, "instance-pool")) {
                json_decref(list);
                return api_error(resp, 400, "manager-type must be instance-pool");
        }
        for (size_t i = 0; i < s->cloud->n_instances; i++) {
                const cloud_instance *in = &s->cloud->instances[i];
                if (manager_id && !(in->pool && streq(in->pool, manager_id)))
                        continue;
                json_array_append_new(list, instance_json(s->cloud, in, false));
        }
        return serve_reply_json(resp, 200, json_pack("{s:o}", "instances", list));
}

static int get_instance(const serve_state *s, const char *id, http_server_response *resp) {
        const cloud_instance *in = cloud_find_instance(s->cloud, id);
        if (!in)
                return api_error(resp, 404, "instance not found");
        return serve_reply_json(resp, 200, instance_json(s->cloud, in, true));
}

static int list_pools(const serve_state *s, http_server_response *resp) {
        json_t *list = json_array();
        for (size_t i = 0; i < s->cloud->n_pools; i++)
                json_array_append_new(list, pool_json(s->cloud, &s->cloud->pools[i]));
        return serve_reply_json(resp, 200, json_pack("{s:o}", "instance-pools", list));
}

static int get_pool(const serve_state *s, const char *id, http_server_response *resp) {
        const cloud_pool *pool = cloud_find_pool(s->cloud, id);
        if (!pool)
                return api_error(resp, 404, "instance pool not found");
        return serve_reply_json(resp, 200, pool_json(s->cloud, pool));
}

/* Leases are the private_ip of every instance whose pool is on this network. */
static int get_private_network(const serve_state *s, const char *id, http_server_response *resp) {
        const cloud_pool *pool = cloud_find_pool_by_network(s->cloud, id);
        if (!pool)
                return api_error(resp, 404, "private network not found");
        json_t *leases = json_array();
        for (size_t i = 0; i < s->cloud->n_instances; i++) {
                const cloud_instance *in = &s->cloud->instances[i];
                const cloud_pool *p = cloud_find_pool(s->cloud, in->pool);
                if (p && p->private_network && streq(p->private_network, id))
                        json_array_append_new(leases, json_pack("{s:s,s:s}", "instance-id", in->id, "ip", in->private_ip));
        }
        return serve_reply_json(resp, 200, json_pack("{s:s,s:s,s:o}", "id", id, "name", pool->name, "leases", leases));
}

static int list_zones(const serve_state *s, http_server_response *resp) {
        return serve_reply_json(resp, 200, json_pack("{s:[{s:s}]}", "zones", "name", s->cloud->zone));
}

/* The reason a request's signature is refused, or NULL when it is good. */
static const char *signature_problem(const serve_state *s, const http_server_request *req) {
        const char *auth = http_server_request_header(req, "authorization");
        if (!auth)
                return "missing Authorization header";
        switch (exo_verify(auth, req->method, req->raw_path, req->query, req->body, req->body_len,
                           s->cloud->api_key, s->cloud->api_secret, s->now())) {
        case 0:
                return NULL;
        case -ETIME:
                return "request expired";
        case -EBADMSG:
                return "malformed Authorization header";
        default:
                return "invalid request signature";
        }
}

/* The part of path after prefix when it is a single non-empty segment, else NULL. */
static const char *one_segment(const char *path, const char *prefix) {
        const char *rest = startswith(path, prefix);
        return rest && *rest && !strchr(rest, '/') ? rest : NULL;
}

int serve_api(const serve_state *s, _unused_ const char *instance_id, const http_server_request *req, http_server_response *resp) {
        const char *id, *problem = signature_problem(s, req);

        if (problem)
                return api_error(resp, 403, problem);
        if (!streq(req->method, "GET"))
                return api_error(resp, 405, "method not allowed: this API is read-only");

        if (streq(req->path, "/v2/zone"))
                return list_zones(s, resp);
        if (streq(req->path, "/v2/instance"))
                return list_instances(s, req, resp);
        if ((id = one_segment(req->path, "/v2/instance/")))
                return get_instance(s, id, resp);
        if (streq(req->path, "/v2/instance-pool"))
                return list_pools(s, resp);
        if ((id = one_segment(req->path, "/v2/instance-pool/")))
                return get_pool(s, id, resp);
        if ((id = one_segment(req->path, "/v2/private-network/")))
                return get_private_network(s, id, resp);
        return api_error(resp, 404, "not found");
}
