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

/* The host provider's node pool options (pool create --role node): the kubelet, the user-data,
 * the token from its file (checked, never echoed), the Node names' prefix from the pool name. */
static void test_host_node(const char *dir) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        char token[256], bad[256];
        const char *pin = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        pool_create_options o = { .pool_name = "Node_Pool.A", .template = "n@1", .role = "node", .port_base = 20000,
                                  .kubelet = "/bin/true", .kube_endpoint = "https://127.0.0.1:6443",
                                  .kube_ca_pin = pin, .kube_token_file = token };
        json_t *state;

        snprintf(token, sizeof(token), "%s/token", dir);
        snprintf(bad, sizeof(bad), "%s/bad-token", dir);
        CHECK_OK(write_file_atomic(token, "07401b.f395accd246ae52d\n", 24, 0600, (uid_t) -1, (gid_t) -1));
        CHECK_OK(write_file_atomic(bad, "07401b.F395ACCD246AE52D\n", 24, 0600, (uid_t) -1, (gid_t) -1));

        CHECK(state = json_object());
        CHECK_OK(pool_host_ops.configure(state, &o, &err));
        CHECK_STREQ(json_string_value(json_object_get(state, "node_prefix")), "node-pool-a");
        CHECK_STREQ(json_string_value(json_object_get(state, "kubelet")), "/usr/bin/true");
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(state, "kube"), "token")), "07401b.f395accd246ae52d");
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(state, "kube"), "ca_pin")), pin);
        json_decref(state);

        /* Each missing or malformed option is named; the token's content never is. */
        struct { pool_create_options o; int r; const char *msg; } cases[] = {
                { o, -EINVAL, "needs --kubelet PATH" },
                { o, -ENOENT, "--kubelet /nonexistent/kubelet: " },
                { o, -EINVAL, "--kube-endpoint 'http://127.0.0.1:6443' is not https://HOST:PORT" },
                { o, -EINVAL, "--kube-ca-pin 'sha256:0123' is not sha256:<64 lowercase hex digits>" },
                { o, -ENOENT, "--kube-token-file /nonexistent/token: " },
                { o, -EINVAL, "does not hold a bootstrap token" },
        };
        cases[0].o.kubelet = NULL;
        cases[1].o.kubelet = "/nonexistent/kubelet";
        cases[2].o.kube_endpoint = "http://127.0.0.1:6443";
        cases[3].o.kube_ca_pin = "sha256:0123";
        cases[4].o.kube_token_file = "/nonexistent/token";
        cases[5].o.kube_token_file = bad;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                buf_clear(&err);
                CHECK(state = json_object());
                CHECK(pool_host_ops.configure(state, &cases[i].o, &err) == cases[i].r);
                CHECK(strstr(err.data, cases[i].msg));
                CHECK(!strstr(err.data, "F395ACCD246AE52D"));
                json_decref(state);
        }
        /* The node options on an etcd pool are refused; an etcd pool (role etcd or none given)
         * has no node state. */
        o.role = "etcd";
        buf_clear(&err);
        CHECK(state = json_object());
        CHECK(pool_host_ops.configure(state, &o, &err) == -EINVAL && strstr(err.data, "are for a pool of role node"));
        json_decref(state);
        pool_create_options e = { .pool_name = "p", .template = "etcd@1", .port_base = 20000 };
        CHECK(state = json_object());
        CHECK_OK(pool_host_ops.configure(state, &e, &err));
        CHECK(!json_object_get(state, "kube") && !json_object_get(state, "kubelet"));
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
        CHECK(pool_host_ops.node_name);            /* host members may be Kubernetes nodes */

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
        test_host_node(store);

        CHECK_OK(rm_rf(store));
        return 0;
}
