/* The node role (pool-role.h): the members are Kubernetes worker nodes. Included only by
 * pool-role-node.c and the registry (pool-roles.c); everything else reaches the role through
 * pool_role_find("node"). */
#pragma once

#include "pool-role.h"

extern const pool_role_ops pool_role_node_ops;
