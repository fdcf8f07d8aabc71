/* A base image from its definition (images/NAME/image.conf, builder/recipe/image.h): parsed,
 * keyed and found in (or built into) the image store. What `imgbuild base`, `vm-exec` and builds
 * start from. */
#pragma once

#include <stdbool.h>

#include "base.h"

/* Parse the image definition (images/NAME directory or its image.conf) and build, or find in the
 * store, its base image. cache_dir and bootagent_path may be NULL (see base_store_dir and
 * base_find_bootagent). Returns 0 or -errno (logged). */
int base_ensure(const char *image, const char *cache_dir, const char *bootagent_path, bool force,
                base_image *ret);

/* Like base_ensure, but builds nothing: the base image's key (a content key over the definition
 * and the bootagent binary, so no disk is needed) and whether the store has it. Returns 1 if
 * present, 0 if not (*ret_key set either way), or -errno (logged). For `imgbuild build --plan`. */
int base_find(const char *image, const char *cache_dir, const char *bootagent_path, char ret_key[SHA256_HEX_SIZE]);
