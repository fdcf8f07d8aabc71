/* The registry of pool providers: see pool-providers.h. */
#include "pool-providers.h"

#include <string.h>

#include "base.h"
#include "pool-exoscale.h"
#include "pool-host.h"
#include "pool-qemu.h"
#include "templates.h"

const pool_provider_ops *const pool_providers[] = {
        &pool_qemu_ops,
        &pool_host_ops,
        &pool_exoscale_ops,
        NULL,
};

const pool_provider_ops *pool_provider_find(const char *name) {
        for (size_t i = 0; pool_providers[i]; i++)
                if (streq(pool_providers[i]->name, name))
                        return pool_providers[i];
        return NULL;
}

/* Whether ref is NAME@VERSION of a template in the image store. */
static bool template_in_store(const char *cache_dir, const char *ref) {
        _cleanup_free_ char *store = NULL;
        _cleanup_(base_image_done) base_image b = {};
        return strchr(ref, '@') && base_store_dir(cache_dir, &store) >= 0 && template_open(store, ref, &b) >= 0;
}

const char *pool_provider_default(const char *cache_dir, const char *template) {
        return template_in_store(cache_dir, template) ? pool_qemu_ops.name : pool_host_ops.name;
}
