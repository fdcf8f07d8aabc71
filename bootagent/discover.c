#include "discover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

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

int discover_api_new(json_t *creds, const char *secret_path, const char *zone, exoapi **ret, buf *err) {
        const char *url = json_path_string(creds, "api_url");
        exoapi_credentials key = {
                .key = (char *) json_path_string(creds, "api_key"),
                .secret = (char *) json_path_string(creds, "api_secret"),
        };
        exoapi *api = NULL;
        int r;
        if (!url || !key.key || !key.secret) {
                if (err)
                        buf_printf(err, "secret %s needs api_url, api_key and api_secret", secret_path);
                return -EINVAL;
        }
        r = exoapi_new(&key, zone && *zone ? zone : "local", &api);
        /* The client holds its own copy of the API secret (wiped when freed): wipe this one. */
        explicit_bzero(key.secret, strlen(key.secret));
        if (r >= 0)
                r = exoapi_set_endpoint(api, url);
        if (r < 0) {
                exoapi_free(api);
                if (err)
                        buf_printf(err, "cloud API client for %s: %s", url, strerror(-r));
                return r;
        }
        *ret = api;
        return 0;
}

/* A pool id and its private network's id as new strings: 0, -EBADMSG for a missing or empty one,
 * -ENOMEM. */
static int pool_ids(const char *id, const char *net, char **ret_pool_id, char **ret_network_id) {
        if (!id || !*id || !net || !*net)
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

int discover_parse_manager(json_t *instance, char **ret_pool_id, char **ret_network_id) {
        const char *type = json_path_string(instance, "manager.type");
        const char *id = json_path_string(instance, "manager.id");
        json_t *pn = json_object_get(instance, "private-networks");
        const char *net = json_path_string(json_array_get(pn, 0), "id");

        if (!type || !streq(type, "instance-pool"))
                return -EBADMSG;
        return pool_ids(id, net, ret_pool_id, ret_network_id);
}

static int peer_cmp(const void *a, const void *b) {
        return strcmp(((const pool_peer *) a)->instance_id, ((const pool_peer *) b)->instance_id);
}

int discover_parse_peers(json_t *list, json_t *network, pool_view *view) {
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
                        struct in_addr a;
                        /* The address goes into URLs ("https://IP:PORT"): only an IPv4 address. */
                        if (lid && ip && streq(lid, id) && inet_pton(AF_INET, ip, &a) == 1) {
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

int discover_parse_pool_by_name(json_t *pools, const char *name, char **ret_pool_id, char **ret_network_id) {
        json_t *pool, *found = NULL;
        size_t i;

        if (!json_is_array(pools))
                return -EBADMSG;
        json_array_foreach(pools, i, pool) {
                const char *n = json_path_string(pool, "name");
                if (!n || !streq(n, name))
                        continue;
                if (found)
                        return -EBADMSG;
                found = pool;
        }
        if (!found)
                return -ENOENT;
        const char *id = json_path_string(found, "id");
        const char *net = json_path_string(json_array_get(json_object_get(found, "private-networks"), 0), "id");
        return pool_ids(id, net, ret_pool_id, ret_network_id);
}

/* The peers of a known pool and network. */
static int discover_members(exoapi *api, pool_view *view, const char *net_id, buf *err) {
        _cleanup_json_ json_t *instances = NULL, *network = NULL;
        int r = exoapi_instance_list_by_pool(api, view->pool_id, &instances);
        if (r >= 0)
                r = exoapi_private_network_get(api, net_id, &network);
        if (r < 0) {
                if (err)
                        buf_puts(err, exoapi_error(api));
                return r;
        }
        r = discover_parse_peers(instances, network, view);
        if (r < 0 && err)
                buf_printf(err, "malformed instance list or private network reply");
        return r;
}

int discover_pool_by_name(exoapi *api, const char *name, pool_view *ret, buf *err) {
        _cleanup_json_ json_t *pools = NULL;
        _cleanup_free_ char *net_id = NULL;
        pool_view view = { 0 };
        int r;

        r = exoapi_pool_list(api, &pools);
        if (r < 0) {
                if (err)
                        buf_puts(err, exoapi_error(api));
                return r;
        }
        r = discover_parse_pool_by_name(pools, name, &view.pool_id, &net_id);
        if (r == -ENOENT) {
                if (err)
                        buf_printf(err, "no instance pool named '%s'", name);
                return r;
        }
        if (r < 0) {
                if (err)
                        buf_printf(err, "instance pool '%s': %s", name,
                                   r == -EBADMSG ? "malformed, ambiguous or not on a private network" : strerror(-r));
                return r;
        }
        r = discover_members(api, &view, net_id, err);
        if (r < 0) {
                pool_view_done(&view);
                return r;
        }
        *ret = view;
        return 0;
}

int discover_pool(exoapi *api, const char *instance_id, pool_view *ret, buf *err) {
        _cleanup_json_ json_t *self = NULL, *instances = NULL, *network = NULL;
        _cleanup_free_ char *net_id = NULL;
        pool_view view = { 0 };
        int r;

        r = exoapi_instance_get(api, instance_id, &self);
        if (r < 0)
                goto api_fail;
        r = discover_parse_manager(self, &view.pool_id, &net_id);
        if (r < 0) {
                if (err)
                        buf_printf(err, "instance %s is not an instance-pool member on a private network", instance_id);
                return r;
        }
        r = exoapi_instance_list_by_pool(api, view.pool_id, &instances);
        if (r < 0)
                goto api_fail;
        r = exoapi_private_network_get(api, net_id, &network);
        if (r < 0)
                goto api_fail;
        r = discover_parse_peers(instances, network, &view);
        if (r < 0) {
                if (err)
                        buf_printf(err, "malformed instance list or private network reply");
                goto fail;
        }
        *ret = view;
        return 0;

api_fail:
        if (err)
                buf_puts(err, exoapi_error(api));
fail:
        pool_view_done(&view);
        return r;
}
