/* The provider registry: lookup by name, the list --help walks, the provider `pool create` picks
 * when none is given (qemu for a template in the store, host otherwise), and the local
 * providers' configure (the port block of `pool create --port-base`, the template store). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "pool-exoscale.h"
#include "pool-host.h"
#include "pool-providers.h"
#include "pool-qemu.h"

/* Every line of a provider's --help paragraph fits 80 columns and ends in a newline. */
static void check_help(const char *help) {
        CHECK(help && *help && help[strlen(help) - 1] == '\n');
        for (const char *l = help; *l; l = strchr(l, '\n') + 1)
                CHECK(strcspn(l, "\n") <= 80);
}

/* configure of a local provider with --port-base port_base (0: none given). */
static int configure_local(const pool_provider_ops *ops, int port_base, const char *cache_dir, json_t **ret_state,
                           buf *err) {
        pool_create_options o = { .pool_name = "p", .template = "etcd@1", .port_base = port_base, .cache_dir = cache_dir };
        json_t *state = json_object();
        CHECK(state);
        buf_clear(err);
        int r = ops->configure(state, &o, err);
        *ret_state = state;
        return r;
}

static void test_configure_local(const char *store) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        const pool_provider_ops *const local[] = { &pool_host_ops, &pool_qemu_ops };

        for (size_t i = 0; i < ELEMENTSOF(local); i++) {
                json_t *state;
                CHECK_OK(configure_local(local[i], 20000, store, &state, &err));
                CHECK(json_integer_value(json_object_get(state, "port_base")) == 20000);
                json_decref(state);
                /* No --port-base: a multiple of 500 in 10000..31500, below the ephemeral ports. */
                for (int k = 0; k < 50; k++) {
                        CHECK_OK(configure_local(local[i], 0, store, &state, &err));
                        json_int_t pb = json_integer_value(json_object_get(state, "port_base"));
                        CHECK(pb >= 10000 && pb <= 31500 && pb % 500 == 0);
                        json_decref(state);
                }
                /* A block that does not fit, with the message `pool create` prints. */
                CHECK(configure_local(local[i], 65100, store, &state, &err) == -ERANGE);
                CHECK_STREQ(err.data, "--port-base 65100 leaves no room for the pool's ports");
                json_decref(state);
                CHECK(configure_local(local[i], 1000, store, &state, &err) == -ERANGE);
                json_decref(state);
        }
        /* qemu records the template store it boots from. */
        json_t *state;
        CHECK_OK(configure_local(&pool_qemu_ops, 20000, store, &state, &err));
        CHECK_STREQ(json_string_value(json_object_get(state, "store")), store);
        json_decref(state);
}

int main(void) {
        char store[] = "/tmp/test-pool-providers.XXXXXX", tmpl[128], manifest[192];

        /* Every provider by its name, each a complete table. */
        const char *const names[] = { "host", "qemu", "exoscale" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const pool_provider_ops *ops = pool_provider_find(names[i]);
                CHECK(ops);
                CHECK_STREQ(ops->name, names[i]);
                CHECK(ops->configure && ops->setup && ops->teardown && ops->reserve_member && ops->start_member &&
                      ops->destroy_member && ops->member_state && ops->health_inputs && ops->agent_status);
        }
        CHECK(pool_provider_find("host") == &pool_host_ops);
        CHECK(pool_provider_find("qemu") == &pool_qemu_ops);
        CHECK(pool_provider_find("exoscale") == &pool_exoscale_ops);
        CHECK(pool_qemu_ops.boot_member);          /* VMs boot in parallel */
        CHECK(!pool_host_ops.boot_member);
        CHECK(!pool_exoscale_ops.leave_member);    /* no SSH: the core removes it through etcd */

        /* The list --help walks: qemu, host, exoscale, then NULL; each with its paragraph. */
        CHECK(pool_providers[0] == &pool_qemu_ops && pool_providers[1] == &pool_host_ops &&
              pool_providers[2] == &pool_exoscale_ops && !pool_providers[3]);
        for (size_t i = 0; pool_providers[i]; i++) {
                check_help(pool_providers[i]->help);
                CHECK(strstr(pool_providers[i]->help, pool_providers[i]->name));
        }

        /* Unknown names, including near misses. */
        CHECK(!pool_provider_find("nope"));
        CHECK(!pool_provider_find(""));
        CHECK(!pool_provider_find("Host"));
        CHECK(!pool_provider_find("hosts"));

        /* The default: qemu only for NAME@VERSION of a template in the store. */
        CHECK(mkdtemp(store));
        CHECK_STREQ(pool_provider_default(store, "etcd@1"), "host");   /* not in the store */
        CHECK_STREQ(pool_provider_default(store, "etcd"), "host");     /* no version: a label */
        snprintf(tmpl, sizeof(tmpl), "%s/templates/etcd/1", store);
        snprintf(manifest, sizeof(manifest), "%s/manifest.json", tmpl);
        CHECK_OK(mkdir_p(tmpl, 0700));
        CHECK_OK(write_file_atomic(manifest, "{}", 2, 0600, (uid_t) -1, (gid_t) -1));
        CHECK_STREQ(pool_provider_default(store, "etcd@1"), "qemu");
        CHECK_STREQ(pool_provider_default(store, "etcd@2"), "host");
        CHECK_STREQ(pool_provider_default(store, "etcd"), "host");
        /* The default store comes from $IMGBUILD_CACHE_DIR when no directory is given. */
        CHECK(setenv("IMGBUILD_CACHE_DIR", store, 1) == 0);
        CHECK_STREQ(pool_provider_default(NULL, "etcd@1"), "qemu");
        CHECK(unsetenv("IMGBUILD_CACHE_DIR") == 0);

        test_configure_local(store);

        CHECK_OK(rm_rf(store));
        return 0;
}
