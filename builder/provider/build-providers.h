/* The build providers imgbuild knows (build-provider.h): the one place that names them. */
#pragma once

#include "build-provider.h"

#define BUILD_PROVIDER_DEFAULT "qemu"

/* Every provider, NULL-terminated, the default first. */
extern const build_provider_ops *const build_providers[];

/* The provider called name (NULL: the default), or NULL when there is none. */
const build_provider_ops *build_providers_find(const char *name);
