/* Pool discovery over the Exoscale API v2 (signed with lib/exoscale.h): own instance -> pool ->
 * pool instances -> private network leases. */
#pragma once

#include <jansson.h>

#include "buf.h"

typedef struct cloud_api {
        const char *url;        /* e.g. https://api-ch-gva-2.exoscale.com/v2 (borrowed) */
        const char *key;        /* borrowed */
        const char *secret;     /* borrowed secret */
} cloud_api;

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
/* Fill peers from an instance list and a private network: running instances with a lease. */
int discover_parse_peers(json_t *instances, json_t *network, pool_view *view);

int discover_pool(const cloud_api *api, const char *instance_id, pool_view *ret, buf *err);
void pool_view_done(pool_view *v);
const pool_peer *pool_view_find_ip(const pool_view *v, const char *ip);
