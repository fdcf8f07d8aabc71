/* Base images: a Debian tree made by mmdebstrap (no loop mounts), with bootagent baked in, turned
 * into kernel + initrd + qcow2 disk in the image store, keyed by content. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"

/* What the builder needs from an image definition (images/NAME/image.conf). Borrowed strings. */
typedef struct base_spec {
        const char *definition;     /* the definition file's text, hashed into the key */
        const char *suite;          /* e.g. bookworm */
        const char *mirror;         /* http(s) URL */
        const char *variant;        /* mmdebstrap variant, e.g. minbase */
        char *const *packages;      /* mmdebstrap --include */
        char *const *initrd_modules;/* MODULES=list for the initrd */
        char *const *dpkg_paths;    /* mmdebstrap --dpkgopt: "path-exclude=GLOB", ... (may be NULL) */
        uint64_t disk_size;         /* bytes */
} base_spec;

/* A base image in the store: paths owned by the struct. */
typedef struct base_image {
        char key[SHA256_HEX_SIZE];
        char *dir;     /* STORE/base/KEY */
        char *kernel;  /* DIR/vmlinuz */
        char *initrd;  /* DIR/initrd.img */
        char *disk;    /* DIR/disk.qcow2 (read-only parent of every build's overlays) */
} base_image;

void base_image_done(base_image *b);

/* The virtio-serial port name the communicator listens on inside build VMs
 * (/dev/virtio-ports/BASE_COMM_PORT). */
#define BASE_COMM_PORT "org.imgbuild.comm"

/* The image store: dir if given, else $IMGBUILD_CACHE_DIR, $XDG_CACHE_HOME/imgbuild or
 * ~/.cache/imgbuild; a relative dir is made absolute. Returns 0 and a new string, or -errno (-ENOENT when no home is known). */
int base_store_dir(const char *dir, char **ret);

/* Locate the bootagent binary baked into images: explicit path if given, else
 * $IMGBUILD_BOOTAGENT, else next to the running imgbuild (same directory, or ../bootagent/ in a
 * build tree). Returns 0 and a new absolute path, or -ENOENT. */
int base_find_bootagent(const char *explicit_path, char **ret);

/* Content key: sha256 over a format version, the definition text, the package list (including
 * bootagent's own runtime libraries) and the bootagent binary. */
int base_key(const base_spec *spec, const char *bootagent, char ret[SHA256_HEX_SIZE]);

/* Look the base image up in the store without building. Returns 1 and fills *ret if present,
 * 0 if not, -errno. */
int base_lookup(const char *store, const base_spec *spec, const char *bootagent, base_image *ret);

/* Build the base image unless the store has it (or force). Work happens in a temporary directory
 * in the store, renamed into place when complete; a failed or interrupted build leaves nothing
 * under the key. Tool output goes to a log whose last lines are shown on failure. Returns 1 if
 * built, 0 if found in the store, -errno. Logs its own progress and failures. */
int base_build(const char *store, const base_spec *spec, const char *bootagent, bool force, base_image *ret);
