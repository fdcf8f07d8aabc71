/* The exoscale provider's configure: what `pool create --provider exoscale` records, and what it
 * refuses; the instance-prefix a pool name gives (the API takes 30 characters, names have up to
 * 63; test-exoapi checks the fake refuses 31). The provider's API behaviour is tested against
 * fake-exoscale by tests/integration/test-exoscale-pool.sh. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "json.h"
#include "pool-exoscale.h"

static int configure(const pool_create_options *o, json_t **ret_state, buf *err) {
        json_t *state = json_object();
        CHECK(state);
        buf_clear(err);
        int r = pool_exoscale_ops.configure(state, o, err);
        *ret_state = state;
        return r;
}

static void test_instance_prefix(void) {
        char prefix[EXOAPI_INSTANCE_PREFIX_MAX + 1];

        /* A 63-character pool name (the longest a pool may have): its first 30 characters. */
        const char *longest = "etcd-production-eu-central-cluster-number-0001-with-a-long-name";
        CHECK(strlen(longest) == 63);
        pool_exoscale_instance_prefix(longest, prefix);
        CHECK_STREQ(prefix, "etcd-production-eu-central-clu");
        CHECK(strlen(prefix) == EXOAPI_INSTANCE_PREFIX_MAX);

        /* Cut at a '-': not left at the end of the prefix (members are PREFIX-<id>). */
        const char *dash = "etcd-production-eu-central-cl--ster-number-0001-with-a-long-nam";
        CHECK(strlen(dash) == 63);
        pool_exoscale_instance_prefix(dash, prefix);
        CHECK_STREQ(prefix, "etcd-production-eu-central-cl");

        /* Short names are kept whole, 30 exactly too. */
        pool_exoscale_instance_prefix("etcd", prefix);
        CHECK_STREQ(prefix, "etcd");
        pool_exoscale_instance_prefix("abcdefghijklmnopqrstuvwxyz0123", prefix);
        CHECK_STREQ(prefix, "abcdefghijklmnopqrstuvwxyz0123");
}

int main(void) {
        _cleanup_buf_ buf err = BUF_INIT(4096);

        test_instance_prefix();
        char dir[] = "/tmp/test-pool-exoscale.XXXXXX", ca[64], cert[64], key[64];
        json_t *state;

        CHECK(mkdtemp(dir));
        snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
        snprintf(cert, sizeof(cert), "%s/op.crt", dir);
        snprintf(key, sizeof(key), "%s/op.key", dir);
        CHECK(fclose(fopen(ca, "w")) == 0 && fclose(fopen(cert, "w")) == 0 && fclose(fopen(key, "w")) == 0);
        CHECK(unsetenv("EXOSCALE_API_ENDPOINT") == 0);

        char *const sgs[] = { (char *) "sg-1", (char *) "sg-2", NULL };
        pool_create_options o = {
                .pool_name = "etcd", .template = "etcd@1", .zone = "ch-gva-2", .private_network = "pn-1",
                .security_groups = sgs, .etcd_ca = ca, .etcd_cert = cert, .etcd_key = key,
        };

        /* Defaults, and file names as given (already absolute). */
        CHECK_OK(configure(&o, &state, &err));
        CHECK_STREQ(json_path_string(state, "zone"), "ch-gva-2");
        CHECK_STREQ(json_path_string(state, "instance_type"), "standard.small");
        CHECK(json_integer_value(json_object_get(state, "disk_size")) == 10);
        CHECK(json_integer_value(json_object_get(state, "etcd_port")) == 2379);
        CHECK(json_integer_value(json_object_get(state, "start_timeout")) == 900);
        CHECK_STREQ(json_path_string(state, "security_groups.1"), "sg-2");
        CHECK_STREQ(json_path_string(state, "etcd_key"), key);
        CHECK(!json_object_get(state, "api_endpoint"));
        CHECK(!json_object_get(state, "credentials_file"));
        json_decref(state);

        /* The endpoint from the environment is recorded for later commands. */
        CHECK(setenv("EXOSCALE_API_ENDPOINT", "http://127.0.0.1:1/{zone}/v2", 1) == 0);
        CHECK_OK(configure(&o, &state, &err));
        CHECK_STREQ(json_path_string(state, "api_endpoint"), "http://127.0.0.1:1/{zone}/v2");
        json_decref(state);
        o.api_endpoint = "http://127.0.0.1:2/v2";
        CHECK_OK(configure(&o, &state, &err));
        CHECK_STREQ(json_path_string(state, "api_endpoint"), "http://127.0.0.1:2/v2");
        json_decref(state);

        /* Relative file names are made absolute. */
        CHECK(chdir(dir) == 0);
        o.etcd_ca = "ca.crt";
        CHECK_OK(configure(&o, &state, &err));
        CHECK(json_path_string(state, "etcd_ca")[0] == '/');
        json_decref(state);

        /* Refusals say what is wrong. */
        o.zone = NULL;
        CHECK(configure(&o, &state, &err) == -EINVAL && strstr(err.data, "--zone"));
        json_decref(state);
        o.zone = "ch-gva-2";
        o.private_network = NULL;
        CHECK(configure(&o, &state, &err) == -EINVAL && strstr(err.data, "--private-network"));
        json_decref(state);
        o.private_network = "pn-1";
        o.etcd_key = "missing.key";
        CHECK(configure(&o, &state, &err) == -ENOENT && strstr(err.data, "--etcd-key missing.key"));
        json_decref(state);
        o.etcd_key = NULL;
        CHECK(configure(&o, &state, &err) == -EINVAL && strstr(err.data, "--etcd-key is required"));
        json_decref(state);
        o.etcd_key = key;
        o.disk_size_gb = 5;
        CHECK(configure(&o, &state, &err) == -EINVAL && strstr(err.data, "--disk-size"));
        json_decref(state);

        CHECK(unlink(ca) == 0 && unlink(cert) == 0 && unlink(key) == 0 && rmdir(dir) == 0);
        return 0;
}
