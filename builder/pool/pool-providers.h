/* The registry of pool providers: the one place that names the concrete providers (host, qemu,
 * exoscale). The core (pool.c) and `imgbuild pool` find a provider here by name and use it only
 * through its pool_provider_ops table (pool-provider.h). */
#pragma once

#include "pool-provider.h"

/* Every provider, in the order `imgbuild pool --help` describes them, then NULL. */
extern const pool_provider_ops *const pool_providers[];

/* The provider called name ("host", "qemu", "exoscale"; exact, case-sensitive), or NULL. The
 * table is static. */
const pool_provider_ops *pool_provider_find(const char *name);

/* The provider `pool create` uses when none is given: "qemu" when template is NAME@VERSION of a
 * template in the image store (cache_dir; NULL: the default store, see base_store_dir()), else
 * "host". A static string. */
const char *pool_provider_default(const char *cache_dir, const char *template);
