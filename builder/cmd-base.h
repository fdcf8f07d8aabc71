/* Commands around base images and build VMs: `imgbuild base` and `imgbuild vm-exec`. */
#pragma once

#include <stdbool.h>

#include "base.h"

/* Parse the image definition (images/NAME directory or its image.conf) and build, or find in the
 * store, its base image. cache_dir and bootagent_path may be NULL (see base_store_dir and
 * base_find_bootagent). Returns 0 or -errno (logged). For `imgbuild build`: pass
 * recipe->base_definition, then run the steps with build_steps_run(). */
int base_ensure(const char *image, const char *cache_dir, const char *bootagent_path, bool force,
                base_image *ret);

/* Like base_ensure, but builds nothing: the base image's key (a content key over the definition
 * and the bootagent binary, so no disk is needed) and whether the store has it. Returns 1 if
 * present, 0 if not (*ret_key set either way), or -errno (logged). For `imgbuild build --plan`. */
int base_find(const char *image, const char *cache_dir, const char *bootagent_path, char ret_key[SHA256_HEX_SIZE]);

/* imgbuild base [--cache-dir DIR] [--force] IMAGE_DIR: build (or find) the base image. */
int cmd_base(int argc, char **argv);

/* imgbuild vm-exec [--cache-dir DIR] [--timeout SEC] [--net] IMAGE_DIR|--template NAME@VERSION --
 * COMMAND...: boot the base image (or a built template, builder/templates.h) on a throw-away
 * overlay, run COMMAND through the communicator, shut down. Exits with the command's status. */
int cmd_vm_exec(int argc, char **argv);
