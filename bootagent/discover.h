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

/* Parsers for the API replies (fuzzed). */
int discover_parse_manager(json_t *instance, char **ret_pool_id, char **ret_network_id);
/* Fill peers from an instance list (the "instances" array) and a private network: running or
 * starting instances with a lease, the first one whose "ip" is an IPv4 address (others are
 * ignored: peer addresses end up in URLs). */
int discover_parse_peers(json_t *instances, json_t *network, pool_view *view);

/* Discover the pool of instance_id through api. On failure err gets the API's error line. */
int discover_pool(exoapi *api, const char *instance_id, pool_view *ret, buf *err);
void pool_view_done(pool_view *v);
const pool_peer *pool_view_find_ip(const pool_view *v, const char *ip);
