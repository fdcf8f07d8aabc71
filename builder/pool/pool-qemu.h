/* The QEMU provider: each pool member is a VM booted from a template in the local store (a qcow2
 * overlay of its disk, its kernel and initrd), with its own path to the pool's local cloud and a
 * private network shared with the other members. See pool-qemu.c for the layout. Included only
 * by pool-qemu.c and the registry (pool-providers.c); everything else reaches the provider
 * through pool_provider_find("qemu"). */
#pragma once

#include "pool-provider.h"

#include "base.h"
#include "buf.h"

/* configure takes port_base (see pool_cloud_port_base()): the pool's first port (the local
 * cloud's API, then three per member: two unused since the members' metadata and Vault became
 * UNIX sockets, the forward to the member's etcd; the multicast network uses UDP port_base + 1),
 * -ERANGE when the block does not fit; and cache_dir, the template store (NULL: the default
 * store, see base_store_dir(), whose errors it returns). */
extern const pool_provider_ops pool_qemu_ops;

/* The guestfwd forwards of member index's user-mode NIC in the pool at pool_dir (exposed for its
 * unit test): 169.254.169.254 port 80 to the member's metadata socket and 8200 to its Vault
 * socket (pool_cloud_socket(), through `socat STDIO UNIX-CONNECT:PATH`), 8080 to the cloud API on
 * 127.0.0.1:api_port (`socat STDIO TCP:...`). *ret is a new strv. Returns 0, -EINVAL when the
 * socket paths hold a character QEMU's option syntax, libslirp's argv split or socat's address
 * syntax would read as its own (only A-Z a-z 0-9 / . _ - pass; err says so), or -ENOMEM. */
int pool_qemu_guestfwd(const char *pool_dir, int index, int api_port, char ***ret, buf *err);

/* A member's disk in its directory dir, before its VM starts (exposed for its unit test): on first
 * use DIR/template.sha256 (the digest tmpl's manifest gives its disk), then DIR/disk.qcow2, a
 * qcow2 overlay on tmpl's disk by path. When the disk exists, the template's digest must still be
 * the recorded one: a template deleted and built again with other content gives -ESTALE ("member
 * MEMBER_ID: its disk is an overlay on TEMPLATE as it was ...: replace the member instead of
 * restarting it"), as a start on another base would corrupt the member's file system. A disk
 * without the record (made before it was kept) is started as it is. Returns 0 or -errno (err
 * says why). */
int pool_qemu_member_disk(const base_image *tmpl, const char *dir, const char *member_id, const char *template,
                          buf *err);
