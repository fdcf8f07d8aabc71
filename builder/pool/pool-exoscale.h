/* The exoscale provider: pool members are the instances of one Exoscale instance pool (API v2,
 * lib/exoapi.h), on a managed private network whose leases give each member its address. See
 * pool-exoscale.c for how each pool operation maps onto the API. Included only by
 * pool-exoscale.c and the registry (pool-providers.c); everything else reaches the provider
 * through pool_provider_find("exoscale"). */
#pragma once

#include "exoapi.h"
#include "pool-provider.h"

/* configure checks the exoscale fields of pool_create_options (zone, private_network and the
 * etcd TLS files are required) and records them in the provider state of a new pool (file names
 * made absolute; no secret is stored, only where to find it); -EINVAL / -ENOENT with err set. */
extern const pool_provider_ops pool_exoscale_ops;

/* The instance-prefix sent for pool_name when the pool is created (exposed for its unit test):
 * the API caps it at EXOAPI_INSTANCE_PREFIX_MAX (30) characters while a pool name may have 63,
 * so the name's first 30 characters, without trailing '-' (members are named PREFIX-<id>). */
void pool_exoscale_instance_prefix(const char *pool_name, char ret[EXOAPI_INSTANCE_PREFIX_MAX + 1]);
