/* The etcd role (pool-role.h): the members form one etcd cluster. Included only by
 * pool-role-etcd.c and the registry (pool-roles.c); everything else reaches the role through
 * pool_role_find("etcd"). */
#pragma once

#include "pool-role.h"

extern const pool_role_ops pool_role_etcd_ops;
