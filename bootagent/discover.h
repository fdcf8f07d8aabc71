/* Pool discovery over the Exoscale API v2 (lib/exoapi.h): own instance -> pool -> pool instances
 * -> private network leases. */
#pragma once

#include <jansson.h>

#include "buf.h"
#include "exoapi.h"

typedef struct pool_peer {
        char *instance_id;
        char *ip;               /* private network lease */
} pool_peer;

typedef struct pool_view {
        char *pool_id;
        pool_peer *peers;       /* running members with a lease, sorted by instance id */
        size_t n_peers;
} pool_view;

/* A client of the cloud API from the credentials secret (the KV secret named by [vault]
 * cloud_api_secret, read by the caller: api_url, api_key, api_secret; secret_path only names it
 * in errors) for zone (NULL or "": "local"). The API secret in creds is wiped: the client holds
 * its own copy. Returns 0 and *ret, -EINVAL with the reason in err, -ENOMEM. */
int discover_api_new(json_t *creds, const char *secret_path, const char *zone, exoapi **ret, buf *err);

/* Parsers for the API replies (fuzzed). */
int discover_parse_manager(json_t *instance, char **ret_pool_id, char **ret_network_id);
/* Fill peers from an instance list (the "instances" array) and a private network: running or
 * starting instances with a lease, the first one whose "ip" is an IPv4 address (others are
 * ignored: peer addresses end up in URLs). */
int discover_parse_peers(json_t *instances, json_t *network, pool_view *view);

/* The pool called name in an instance-pool list (the "instance-pools" array of GET
 * /instance-pool): its id and the id of its first private network, as new strings. Returns 0,
 * -ENOENT when no pool has that name, -EBADMSG for a list that is not an array, a pool of that
 * name without an id or a private network, or two pools of that name, -ENOMEM. */
int discover_parse_pool_by_name(json_t *pools, const char *name, char **ret_pool_id, char **ret_network_id);

/* Discover the pool called name (another pool than our own: the control plane's etcd) through
 * api, as discover_pool does for our own. On failure err gets the reason. */
int discover_pool_by_name(exoapi *api, const char *name, pool_view *ret, buf *err);

/* Discover the pool of instance_id through api. On failure err gets the API's error line. */
int discover_pool(exoapi *api, const char *instance_id, pool_view *ret, buf *err);
void pool_view_done(pool_view *v);
const pool_peer *pool_view_find_ip(const pool_view *v, const char *ip);
