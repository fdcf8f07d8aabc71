#include "build-providers.h"

#include "macro.h"
#include "provider-exoscale.h"
#include "qemu-build.h"

const build_provider_ops *const build_providers[] = {
        &qemu_build_provider,
        &exoscale_build_provider,
        NULL,
};

const build_provider_ops *build_providers_find(const char *name) {
        for (size_t i = 0; build_providers[i]; i++)
                if (streq(build_providers[i]->name, name ?: BUILD_PROVIDER_DEFAULT))
                        return build_providers[i];
        return NULL;
}
