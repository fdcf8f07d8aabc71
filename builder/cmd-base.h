/* Commands around base images and build VMs: `imgbuild base` and `imgbuild vm-exec`. */
#pragma once

/* imgbuild base [--cache-dir DIR] [--force] IMAGE_DIR: build (or find) the base image. */
int cmd_base(int argc, char **argv);

/* imgbuild vm-exec [--cache-dir DIR] [--timeout SEC] [--net] IMAGE_DIR -- COMMAND...: boot the
 * base image on a throw-away overlay, run COMMAND through the communicator, shut down. Exits with
 * the command's status. */
int cmd_vm_exec(int argc, char **argv);
