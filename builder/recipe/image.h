/* Base image definitions: images/NAME/image.conf, line-oriented like recipes (comments, '\'
 * continuations, quoting; no variables). Instructions:
 *   suite NAME               Debian suite (required), e.g. bookworm
 *   mirror URL               Debian mirror, http:// or https:// (required)
 *   variant NAME             mmdebstrap variant (default minbase)
 *   packages NAME...         packages for mmdebstrap --include (may repeat; at least one)
 *   initrd-modules NAME...   kernel modules for the initrd's MODULES=list (may repeat)
 *   disk-size SIZE           size of the base disk, e.g. 2G (default 2G)
 *   path-exclude GLOB...     files dpkg does not install (dpkg's --path-exclude; may repeat)
 *   path-include GLOB...     files dpkg installs after all (--path-include; may repeat)
 * path-exclude and path-include apply in the order written, later ones winning, as dpkg has it;
 * they stay in the image (/etc/dpkg/dpkg.cfg.d/99mmdebstrap), so recipes' packages steps follow
 * them too.
 * The builder turns this into a base disk; its digest starts every recipe's cache key chain. */
#pragma once

#include <stdint.h>

#include "recipe-lex.h"

typedef struct Image {
        char *path;            /* the image.conf path as given */
        char *suite;
        char *mirror;
        char *variant;
        char **packages;       /* in the order written */
        char **initrd_modules;
        char **dpkg_paths;     /* "path-exclude=GLOB" / "path-include=GLOB", in the order written */
        uint64_t disk_size;    /* bytes */
} Image;

#define IMAGE_MAX_SIZE (256u * 1024u)

/* Parse a definition. Returns 0 and a new Image, -EINVAL with problems added to diag (an
 * unreadable file is one of them), -ENOMEM. */
int image_parse_file(const char *path, Diagnostics *diag, Image **ret);
int image_parse_buffer(const char *name, const char *text, size_t len, Diagnostics *diag, Image **ret);
Image *image_free(Image *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(Image *, image_free);

/* Debian package name syntax (policy 5.6.1): [a-z0-9][a-z0-9+.-]+ (also the recipe's packages
 * step and a suite name use it). */
bool image_package_name_valid(const char *s);
