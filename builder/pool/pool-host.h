/* The host provider: pool members are host processes (bootagent with `units = exec` and its
 * etcd on 127.0.0.x) in a local cloud the pool runs itself. See pool-host.c for the layout. */
#pragma once

#include <jansson.h>

#include "pool-provider.h"

/* Record the first of the ports the pool uses (the local cloud's API, etcd client and peer
 * ports, then two per member). Returns 0, -ERANGE when the block does not fit, -ENOMEM. */
int pool_host_set_port_base(json_t *state, int port_base);

/* See pool_provider_new(). */
int pool_host_provider_new(const char *dir, json_t *state, pool_provider **ret);
