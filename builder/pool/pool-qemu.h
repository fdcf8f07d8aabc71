/* The QEMU provider: each pool member is a VM booted from a template in the local store (a qcow2
 * overlay of its disk, its kernel and initrd), with its own path to the pool's local cloud and a
 * private network shared with the other members. See pool-qemu.c for the layout. */
#pragma once

#include <jansson.h>

#include "pool-provider.h"

/* Record the pool's first port (the local cloud's API, then three per member: metadata, Vault,
 * the forward to the member's etcd; the multicast network uses UDP port_base + 1) and the
 * template store (NULL: the default store, see base_store_dir()). Returns 0, -ERANGE when the
 * block does not fit, -ENOMEM, or -errno from base_store_dir(). */
int pool_qemu_configure(json_t *state, int port_base, const char *store);

/* See pool_provider_new(). */
int pool_qemu_provider_new(const char *dir, json_t *state, pool_provider **ret);
