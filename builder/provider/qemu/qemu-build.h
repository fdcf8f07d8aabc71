/* The qemu build provider (build-provider.h): the recipe's steps in a local VM booted from the
 * base image, one cached qcow2 layer per step (runner.h), the result installed in the local
 * template store (export.h). */
#pragma once

#include "base.h"
#include "build-provider.h"
#include "build-steps.h"
#include "progress.h"
#include "recipe.h"

extern const build_provider_ops qemu_build_provider;

/* The provider's steps on its own, for a base already in hand (tests): every step not cached yet,
 * then hygiene, shown through p (NULL: plain log lines). On success fills *ret (may be NULL).
 * Returns 0 or -errno (logged). */
int qemu_build_steps_run(const Recipe *recipe, const base_image *base, const char *store, progress *p,
                         build_result *ret);
