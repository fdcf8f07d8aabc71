/* The end of a build: the template disk flattened from its last layer, the manifest, and the
 * template installed in the local store (store/templates.h) under NAME@VERSION. */
#pragma once

#include "base.h"
#include "build-steps.h"
#include "crypto.h"
#include "progress.h"
#include "recipe.h"

/* sha256 over the names and contents of every file the recipe was read from (the manifest's
 * recipe digest). Returns 0 or -errno. */
int build_recipe_digest(const Recipe *recipe, char out[SHA256_HEX_SIZE]);

/* Write the build manifest (JSON, atomically) to path: template name and version, recipe path,
 * digest (sha256 over every recipe/include file's name and content) and the packages it asks for,
 * base key and package list, the installed packages (result->packages), per-step keys, cache
 * state and timings, and the exported file's path and sha256. output_path is the path recorded
 * for it (NULL: export_path), for exports written in a temporary place and moved later. Returns 0 or -errno (logged). */
int build_manifest_write(const char *path, const Recipe *recipe, const base_image *base,
                         const build_result *result, const char *export_path, const char *output_path);

/* Flatten layer (and its whole backing chain) into one zstd-compressed qcow2 at out, written
 * next to it and renamed into place, shown as a task through progress (may be NULL). Returns 0 or
 * -errno (logged). */
int build_export(const char *layer, const char *out, progress *p);

/* Export result->disk with the base's kernel and initrd and the manifest as NAME@VERSION; the
 * export shows through progress (may be NULL). A version that exists already is never replaced
 * (call template_current first): -EEXIST. Returns 0 and the template directory in *ret_dir (may
 * be NULL), or -errno (logged). */
int template_install(const char *store, const Recipe *recipe, const base_image *base, const build_result *result,
                     progress *p, char **ret_dir);

/* Whether NAME@VERSION in the store was made from exactly result's layers (same step keys, in
 * order), so exporting again would give the same disk. Returns 1, 0, or -errno (not logged). */
int template_current(const char *store, const Recipe *recipe, const build_result *result);
