/* The registry of pool roles: the one place that names the concrete roles (etcd, node). The core
 * (pool.c) and `imgbuild pool` find a role here by name and use it only through its
 * pool_role_ops table (pool-role.h). */
#pragma once

#include "buf.h"
#include "pool-provider.h"
#include "pool-role.h"

/* Every role, in the order `imgbuild pool --help` describes them, then NULL. */
extern const pool_role_ops *const pool_roles[];

/* The role called name (exact, case-sensitive), or NULL. The table is static. */
const pool_role_ops *pool_role_find(const char *name);

/* The role of a new pool on template (`pool create`). When the provider's templates are the
 * image store's (store_templates: qemu) and the template's manifest records the role of its
 * recipe's agent step, that role; given (--role, may be NULL) must then be the same, else
 * -EINVAL with err saying both. Otherwise given, else etcd. An unknown name (given or recorded)
 * is -EINVAL with err listing the roles; a role recorded that no pool can have (vault) is
 * -EINVAL. cache_dir: the store (NULL: the default). Returns 0 and the static table in *ret. */
int pool_role_choose(const pool_provider_ops *provider, const char *cache_dir, const char *template,
                     const char *given, const pool_role_ops **ret, buf *err);
