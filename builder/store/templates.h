/* The local template store, under the image store (base_store_dir):
 *   STORE/templates/NAME/VERSION/disk.qcow2     the flattened, zstd-compressed build
 *   STORE/templates/NAME/VERSION/vmlinuz        the base's kernel and initrd (direct boot)
 *   STORE/templates/NAME/VERSION/initrd.img
 *   STORE/templates/NAME/VERSION/manifest.json  build_manifest_write()
 * A template is assembled in a temporary directory next to its final place and renamed in, so a
 * directory under NAME/VERSION is always complete. */
#pragma once

#include "base.h"
#include "json.h"
#include "recipe.h"

/* Find NAME@VERSION in the store, as a bootable image (key empty, dir/kernel/initrd/disk set).
 * Returns 0, -ENOENT (not logged), -EINVAL for a malformed reference, or -errno. */
int template_open(const char *store, const char *ref, base_image *ret);

/* The sha256 of tmpl's disk as its manifest records it (output.sha256): what a pool member's
 * overlay was made on. Returns 0, -EBADMSG if the manifest has none, or -errno (not logged). */
int template_disk_sha256(const base_image *tmpl, char ret[SHA256_HEX_SIZE]);

/* The role of tmpl's agent as its manifest records it (agent.role: the recipe's agent step).
 * Returns 0 and a new string in *ret, -ENODATA when the manifest records none (no agent step, or
 * a template exported before manifests recorded it), or -errno (not logged). */
int template_agent_role(const base_image *tmpl, char **ret);

/* Every complete template in the store, sorted by name then version: a JSON array of
 * {"name", "version", "dir", "manifest": {...}}. Returns 0 (an empty array when there are none)
 * or -errno (not logged). */
int templates_list(const char *store, json_t **ret);

/* The store-wide lock between builds and gc (STORE/.lock): builds hold it shared for as long as
 * they run, gc exclusively. exclusive: fails at once with -EBUSY when a build holds it; shared:
 * waits for a running gc, saying so. Returns 0 and the lock's fd (close it to release). */
int store_lock(const char *store, bool exclusive, int *ret_fd);

/* The newest build of each recipe, whether or not it finished: STORE/builds/SHA.json (SHA of the
 * recipe's absolute path) holds {"recipe": path, "keys": [step keys]}, written when a build starts
 * so gc keeps the layers an interrupted build resumes from. Returns 0 or -errno (not logged). */
int build_record_write(const char *store, const Recipe *recipe, char *const *keys);
