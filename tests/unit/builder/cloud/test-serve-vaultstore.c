/* The Vault store on its own: KV versions (cas, the 10-version window, metadata), tokens
 * (expiry, purge of expired ones on create, hashing), and reloading from vault.json. */
#include <stdio.h>

#include "check.h"
#include "fs.h"
#include "json.h"
#include "serve-vaultstore.h"

static char dir[64], path[128];

static void test_kv_versions(vault_store *v) {
        json_t *meta = NULL, *entry;
        int64_t n;

        for (int i = 1; i <= 12; i++) {
                json_t *data = json_pack("{s:i}", "i", i);
                CHECK_OK(vault_store_kv_write(v, "a/b", data, i == 1 ? 0 : -1, 1000 + i, &meta));
                CHECK_OK(json_path_i64(meta, "version", &n));
                CHECK(n == i);
                json_decref(meta);
                json_decref(data);
        }
        json_t *data = json_object();
        CHECK(vault_store_kv_write(v, "a/b", data, 0, 2000, &meta) == -ESTALE);
        CHECK(vault_store_kv_write(v, "a/b", data, 11, 2000, &meta) == -ESTALE);
        json_decref(data);

        CHECK(vault_store_kv_read(v, "a/b", 2, &entry) == -ENOENT);
        CHECK_OK(vault_store_kv_read(v, "a/b", 3, &entry));
        CHECK_OK(json_path_i64(entry, "data.i", &n));
        CHECK(n == 3);
        CHECK_OK(vault_store_kv_read(v, "a/b", 0, &entry));
        CHECK_OK(json_path_i64(entry, "data.i", &n));
        CHECK(n == 12);
        CHECK(vault_store_kv_read(v, "a/c", 0, &entry) == -ENOENT);

        CHECK_OK(vault_store_kv_metadata(v, "a/b", &meta));
        CHECK_OK(json_path_i64(meta, "oldest_version", &n));
        CHECK(n == 3);
        CHECK_OK(json_path_i64(meta, "current_version", &n));
        CHECK(n == 12);
        CHECK(json_object_size(json_object_get(meta, "versions")) == 10);
        json_decref(meta);
}

/* Soft delete keeps the data for older reads, destroy forgets the secret, list gives one level. */
static void test_kv_delete_list(vault_store *v) {
        json_t *data = json_pack("{s:s}", "k", "v"), *meta, *entry, *keys;

        CHECK_OK(vault_store_kv_write(v, "l/one", data, -1, 100, &meta));
        json_decref(meta);
        CHECK_OK(vault_store_kv_write(v, "l/d/two", data, -1, 100, &meta));
        json_decref(meta);
        CHECK_OK(vault_store_kv_write(v, "l/d/three", data, -1, 100, &meta));
        json_decref(meta);
        json_decref(data);

        CHECK_OK(vault_store_kv_list(v, "l/", &keys));
        CHECK(json_array_size(keys) == 2);
        CHECK_STREQ(json_string_value(json_array_get(keys, 0)), "d/");
        CHECK_STREQ(json_string_value(json_array_get(keys, 1)), "one");
        json_decref(keys);
        CHECK_OK(vault_store_kv_list(v, "l/d/", &keys));
        CHECK_STREQ(json_string_value(json_array_get(keys, 0)), "three");
        CHECK_STREQ(json_string_value(json_array_get(keys, 1)), "two");
        json_decref(keys);
        CHECK(vault_store_kv_list(v, "l/none/", &keys) == -ENOENT);
        CHECK_OK(vault_store_kv_list(v, "", &keys));
        CHECK(json_array_size(keys) >= 1);
        json_decref(keys);

        CHECK_OK(vault_store_kv_delete(v, "l/one", 200));
        CHECK_OK(vault_store_kv_read(v, "l/one", 0, &entry));
        CHECK_STREQ(json_path_string(entry, "deletion_time"), "1970-01-01T00:03:20Z");
        CHECK_OK(vault_store_kv_delete(v, "l/one", 300)); /* the first deletion time stays */
        CHECK_STREQ(json_path_string(entry, "deletion_time"), "1970-01-01T00:03:20Z");
        CHECK_STREQ(json_path_string(entry, "data.k"), "v");
        CHECK(vault_store_kv_delete(v, "l/nope", 200) == -ENOENT);

        CHECK_OK(vault_store_kv_destroy(v, "l/one"));
        CHECK(vault_store_kv_read(v, "l/one", 0, &entry) == -ENOENT);
        CHECK(vault_store_kv_destroy(v, "l/one") == -ENOENT);
        CHECK_OK(vault_store_kv_list(v, "l/", &keys));
        CHECK(json_array_size(keys) == 1);
        json_decref(keys);
}

static void test_tokens(vault_store *v, char **ret_live) {
        json_t *policies = json_pack("[s]", "etcd"), *entry;
        char *old = NULL, *live = NULL;

        CHECK_OK(vault_store_token_create(v, "i-1", "etcd", policies, 10, 1000, &old, &entry));
        CHECK_OK(vault_store_token_lookup(v, old, 1009, &entry));
        CHECK(vault_store_token_lookup(v, "hvs.nope", 1000, &entry) == -ENOENT);
        /* creating a token later purges the expired one */
        CHECK_OK(vault_store_token_create(v, "i-1", "etcd", policies, 3600, 1020, &live, &entry));
        CHECK(vault_store_token_lookup(v, old, 1000, &entry) == -ENOENT);
        CHECK_OK(vault_store_token_renew(v, live, 3600, 2000, &entry));
        CHECK_OK(vault_store_token_lookup(v, live, 5000, &entry));
        CHECK(vault_store_token_lookup(v, live, 5600, &entry) == -ENOENT);
        free(live);
        CHECK_OK(vault_store_token_create(v, "i-1", "etcd", policies, 3600, time(NULL), &live, &entry));
        free(old);
        json_decref(policies);
        *ret_live = live;
}

int main(void) {
        _cleanup_(vault_store_freep) vault_store *v = NULL;
        _cleanup_free_ char *token = NULL, *text = NULL;
        json_t *entry;

        snprintf(dir, sizeof(dir), "/tmp/test-vaultstore-XXXXXX");
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/vault.json", dir);
        CHECK_OK(vault_store_open(path, &v));
        test_kv_versions(v);
        test_kv_delete_list(v);
        test_tokens(v, &token);

        /* seeds only fill what is missing */
        json_t *seeds = json_pack("{s:{s:s},s:{s:s}}", "a/b", "x", "y", "new", "k", "v");
        CHECK(vault_store_seed(v, seeds, 3000) == 1);
        json_decref(seeds);

        /* everything is on disk, tokens only as hashes */
        vault_store_free(TAKE_PTR(v));
        CHECK_OK(read_file(path, 1 << 20, &text, NULL));
        CHECK(!strstr(text, token + 4));
        CHECK_OK(vault_store_open(path, &v));
        CHECK_OK(vault_store_token_lookup(v, token, time(NULL), &entry));
        CHECK_OK(vault_store_kv_read(v, "new", 0, &entry));
        CHECK_STREQ(json_path_string(entry, "data.k"), "v");

        /* a corrupt file is refused, not replaced */
        vault_store_free(TAKE_PTR(v));
        CHECK_OK(write_file_atomic(path, "{\"tokens\":[]}", 13, 0600, (uid_t) -1, (gid_t) -1));
        CHECK(vault_store_open(path, &v) == -EBADMSG);

        CHECK_OK(rm_rf(dir));
        return 0;
}
