/* The host provider: pool members are host processes (bootagent with `units = exec` and its
 * etcd on 127.0.0.x) in a local cloud the pool runs itself. See pool-host.c for the layout.
 * Included only by pool-host.c and the registry (pool-providers.c); everything else reaches the
 * provider through pool_provider_find("host"). */
#pragma once

#include "pool-provider.h"

/* configure takes port_base (see pool_cloud_port_base()): the first of the ports the pool uses
 * (the local cloud's API, etcd client and peer ports, then two per member); -ERANGE when the
 * block does not fit. */
extern const pool_provider_ops pool_host_ops;
