/* The QEMU provider: each pool member is a VM booted from a template in the local store (a qcow2
 * overlay of its disk, its kernel and initrd), with its own path to the pool's local cloud and a
 * private network shared with the other members. See pool-qemu.c for the layout. Included only
 * by pool-qemu.c and the registry (pool-providers.c); everything else reaches the provider
 * through pool_provider_find("qemu"). */
#pragma once

#include "pool-provider.h"

/* configure takes port_base (see pool_cloud_port_base()): the pool's first port (the local
 * cloud's API, then three per member: metadata, Vault, the forward to the member's etcd; the
 * multicast network uses UDP port_base + 1), -ERANGE when the block does not fit; and cache_dir,
 * the template store (NULL: the default store, see base_store_dir(), whose errors it returns). */
extern const pool_provider_ops pool_qemu_ops;
