/* The local template store, under the image store (base_store_dir):
 *   STORE/templates/NAME/VERSION/disk.qcow2     the flattened, zstd-compressed build
 *   STORE/templates/NAME/VERSION/vmlinuz        the base's kernel and initrd (direct boot)
 *   STORE/templates/NAME/VERSION/initrd.img
 *   STORE/templates/NAME/VERSION/manifest.json  build_manifest_write()
 * A template is assembled in a temporary directory next to its final place and renamed in, so a
 * directory under NAME/VERSION is always complete. */
#pragma once

#include "base.h"
#include "build-steps.h"
#include "recipe.h"

/* Export result->disk with the base's kernel and initrd and the manifest as NAME@VERSION,
 * replacing an older build of it. Returns 0 and the template directory in *ret_dir (may be NULL),
 * or -errno (logged). */
int template_install(const char *store, const Recipe *recipe, const base_image *base, const build_result *result,
                     char **ret_dir);

/* Find NAME@VERSION in the store, as a bootable image (key empty, dir/kernel/initrd/disk set).
 * Returns 0, -ENOENT (not logged), -EINVAL for a malformed reference, or -errno. */
int template_open(const char *store, const char *ref, base_image *ret);
