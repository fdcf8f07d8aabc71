/* A recipe's steps, run in a build VM through the communicator (builder/runner.h keeps one layer
 * per step under the recipe's cache keys). What each step does in the guest:
 *   packages  wait for the network, apt-get update, apt-get install -y --no-install-recommends
 *             (DEBIAN_FRONTEND=noninteractive); the VM gets outbound user-mode networking.
 *   copy      a file lands at DEST with mode and owner; a directory's contents land under DEST
 *             keeping their own modes, owned by owner.
 *   run       /bin/sh -c COMMAND in /, with the step's env.
 *   download  a local source (file:// or a plain path) is checked against sha256 on the host and
 *             copied in; an http(s) URL is fetched in the guest with curl (the package mirror is
 *             the only network here) and checked there. Installed at DEST with mode.
 *   agent     not run yet: refused with an error (the agent's install contract is not settled).
 * Every step's stdout/stderr is streamed to ours. After the last step a hygiene step (its own
 * layer, keyed after the last step) empties /etc/machine-id and removes SSH host keys, apt lists
 * and caches, /tmp, shell history and logs, so the last layer is ready to export. */
#pragma once

#include "base.h"
#include "recipe.h"

/* Run every step not cached yet, then hygiene. On success *ret_disk (may be NULL) is the last
 * layer. Returns 0 or -errno (logged). */
int build_steps_run(const Recipe *recipe, const base_image *base, const char *store, char **ret_disk);

/* Flatten layer (and its whole backing chain) into one zstd-compressed qcow2 at out, written
 * next to it and renamed into place. Returns 0 or -errno (logged). */
int build_export(const char *layer, const char *out);
