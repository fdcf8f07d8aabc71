/* Fuzz the pool discovery replies the agent acts on (bootagent/discover.c). The input is one JSON
 * object {"instance": GET /instance/ID, "instances": the "instances" list of GET /instance,
 * "network": GET /private-network/ID, "pools": the "instance-pools" list of GET /instance-pool,
 * "name": the pool name looked for (default "etcd")}. Checked also: a pool found by name is the
 * only one of that name, and its ids are the reply's. Checked: an accepted manager is an instance pool with
 * non-empty pool and network ids taken from the reply; the peers are exactly the running or
 * starting instances with a lease (the first lease for each), sorted by instance id, each with an
 * IPv4 address that pool_view_find_ip finds. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first lease of network for instance id with a usable address, or NULL. */
static const char *lease_ip(json_t *network, const char *id) {
        json_t *lease;
        size_t i;
        json_array_foreach(json_object_get(network, "leases"), i, lease) {
                const char *lid = json_path_string(lease, "instance-id"), *ip = json_path_string(lease, "ip");
                struct in_addr a;
                if (lid && ip && streq(lid, id) && inet_pton(AF_INET, ip, &a) == 1)
                        return ip;
        }
        return NULL;
}

static void check_manager(json_t *instance) {
        char *pool_id = NULL, *net_id = NULL;
        int r = discover_parse_manager(instance, &pool_id, &net_id);
        if (r < 0) {
                if (r != -EBADMSG || pool_id || net_id)
                        abort();
                return;
        }
        if (!streq(json_path_string(instance, "manager.type"), "instance-pool") || !*pool_id || !*net_id ||
            !streq(pool_id, json_path_string(instance, "manager.id")) ||
            !streq(net_id, json_path_string(json_array_get(json_object_get(instance, "private-networks"), 0), "id")))
                abort();
        free(pool_id);
        free(net_id);
}

static void check_peers(json_t *list, json_t *network) {
        pool_view v = { 0 };
        size_t i, expected = 0;
        json_t *inst;

        int r = discover_parse_peers(list, network, &v);
        if (r < 0) {
                if (r != -EBADMSG || v.peers || v.n_peers)
                        abort();
                return;
        }
        json_array_foreach(list, i, inst) {
                const char *id = json_path_string(inst, "id"), *state = json_path_string(inst, "state");
                if (id && state && (streq(state, "running") || streq(state, "starting")) && lease_ip(network, id))
                        expected++;
        }
        if (v.n_peers != expected || v.n_peers > json_array_size(list))
                abort();
        for (i = 0; i < v.n_peers; i++) {
                const pool_peer *p = &v.peers[i];
                struct in_addr a;
                if (!p->instance_id || !p->ip || inet_pton(AF_INET, p->ip, &a) != 1)
                        abort();
                if (i > 0 && strcmp(v.peers[i - 1].instance_id, p->instance_id) > 0)
                        abort();
                if (!streq(lease_ip(network, p->instance_id), p->ip))
                        abort();
                const pool_peer *f = pool_view_find_ip(&v, p->ip);
                if (!f || !streq(f->ip, p->ip))
                        abort();
        }
        pool_view_done(&v);
}

static void check_pool_by_name(json_t *pools, const char *name) {
        char *pool_id = NULL, *net_id = NULL;
        int r = discover_parse_pool_by_name(pools, name, &pool_id, &net_id);
        if (r < 0) {
                if ((r != -EBADMSG && r != -ENOENT) || pool_id || net_id)
                        abort();
                return;
        }
        size_t i, same = 0;
        json_t *p, *found = NULL;
        json_array_foreach(pools, i, p) {
                const char *n = json_path_string(p, "name");
                if (n && streq(n, name)) {
                        same++;
                        found = p;
                }
        }
        if (same != 1 || !*pool_id || !*net_id || !streq(pool_id, json_path_string(found, "id")) ||
            !streq(net_id, json_path_string(json_array_get(json_object_get(found, "private-networks"), 0), "id")))
                abort();
        free(pool_id);
        free(net_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_ json_t *root = NULL;

        if (size > 256 * 1024 || json_parse((const char *) data, size, &root, NULL) < 0)
                return 0;
        check_manager(json_object_get(root, "instance"));
        check_manager(root);
        check_peers(json_object_get(root, "instances"), json_object_get(root, "network"));
        const char *name = json_string_value(json_object_get(root, "name"));
        check_pool_by_name(json_object_get(root, "pools"), name ? name : "etcd");
        return 0;
}
