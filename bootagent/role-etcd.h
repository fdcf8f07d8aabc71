/* The etcd role: pool discovery, seed election, member bootstrap/join/restart, the etcd
 * environment file, promotion, and leaving the cluster (protocols.md §6.4). */
#pragma once

#include "role.h"

extern const role_ops role_etcd_ops;
