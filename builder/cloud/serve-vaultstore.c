/* Token and KV v2 storage for the Vault-compatible service, persisted in one JSON file:
 *   {"tokens": {<sha256 hex of token>: {...}},
 *    "kv": {<path>: {"current_version": N, "created_time", "updated_time",
 *                    "versions": {"1": {"data", "created_time", "deletion_time", "destroyed"}}}}} */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "fs.h"
#include "json.h"
#include "serve-vaultstore.h"
#include "strv.h"

#define VAULT_JSON_MAX (64u * 1024u * 1024u)
/* Like Vault's KV v2 default max_versions: older versions are dropped. */
#define KV_MAX_VERSIONS 10

struct vault_store {
        char *path;
        json_t *root;
};

static void format_time(time_t t, char out[32]) {
        struct tm tm;
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

static int store_save(vault_store *v) {
        _cleanup_free_ char *text = json_dump_compact(v->root);
        if (!text)
                return -ENOMEM;
        int r = write_file_atomic(v->path, text, strlen(text), 0600, (uid_t) -1, (gid_t) -1);
        /* The document holds secret values. */
        explicit_bzero(text, strlen(text));
        return r;
}

static json_t *section(vault_store *v, const char *name) { return json_object_get(v->root, name); }

int vault_store_open(const char *path, vault_store **ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_t *root = NULL;
        size_t len;
        int r;

        r = read_file(path, VAULT_JSON_MAX, &text, &len);
        if (r == -ENOENT)
                root = json_pack("{s:{},s:{}}", "tokens", "kv");
        else if (r < 0)
                return r;
        else {
                r = json_parse(text, len, &root, NULL);
                explicit_bzero(text, len);
                if (r < 0)
                        return r;
                if (!json_is_object(json_object_get(root, "tokens")) ||
                    !json_is_object(json_object_get(root, "kv")))
                        return -EBADMSG;
        }
        if (!root)
                return -ENOMEM;

        vault_store *v = calloc(1, sizeof(*v));
        if (!v || !(v->path = strdup(path))) {
                free(v);
                return -ENOMEM;
        }
        v->root = TAKE_PTR(root);
        *ret = v;
        return 0;
}

void vault_store_free(vault_store *v) {
        if (!v)
                return;
        json_decref(v->root);
        free(v->path);
        free(v);
}

/* ---- tokens ---- */

static void token_hash(const char *token, char out[SHA256_HEX_SIZE]) {
        sha256_hex(token, strlen(token), out);
}

/* Forget every expired token, so logins that are never used again do not pile up. */
static void purge_expired_tokens(vault_store *v, time_t now) {
        json_t *tokens = section(v, "tokens"), *entry;
        const char *hash;
        void *tmp;
        int64_t expire;

        json_object_foreach_safe(tokens, tmp, hash, entry)
                if (json_path_i64(entry, "expire_time", &expire) < 0 || expire <= now)
                        json_object_del(tokens, hash);
}

int vault_store_token_create(vault_store *v, const char *instance_id, const char *role,
                             json_t *policies, int64_t ttl, time_t now, char **ret_token,
                             json_t **ret_entry) {
        uint8_t secret[32], acc[16];
        char hex[2 * sizeof(secret) + 1], accessor[2 * sizeof(acc) + 1], hash[SHA256_HEX_SIZE];
        int r;

        if ((r = random_bytes(secret, sizeof(secret))) < 0 || (r = random_bytes(acc, sizeof(acc))) < 0)
                return r;
        hex_encode(secret, sizeof(secret), hex);
        explicit_bzero(secret, sizeof(secret));
        hex_encode(acc, sizeof(acc), accessor);

        _cleanup_secret_ char *token = NULL;
        if (asprintf(&token, "hvs.%s", hex) < 0)
                token = NULL;
        explicit_bzero(hex, sizeof(hex));
        if (!token)
                return -ENOMEM;
        token_hash(token, hash);
        purge_expired_tokens(v, now);

        json_t *entry = json_pack("{s:s,s:s,s:O,s:I,s:I,s:I,s:s}", "instance_id", instance_id,
                                  "role", role, "policies", policies, "issue_time", (json_int_t) now,
                                  "expire_time", (json_int_t) (now + ttl), "ttl", (json_int_t) ttl,
                                  "accessor", accessor);
        if (!entry || json_object_set_new(section(v, "tokens"), hash, entry) < 0)
                return -ENOMEM;
        if ((r = store_save(v)) < 0) {
                json_object_del(section(v, "tokens"), hash);
                return r;
        }
        *ret_token = TAKE_PTR(token);
        *ret_entry = entry;
        return 0;
}

int vault_store_token_lookup(vault_store *v, const char *token, time_t now, json_t **ret_entry) {
        char hash[SHA256_HEX_SIZE];
        int64_t expire;

        token_hash(token, hash);
        json_t *entry = json_object_get(section(v, "tokens"), hash);
        if (!entry)
                return -ENOENT;
        if (json_path_i64(entry, "expire_time", &expire) < 0 || expire <= now) {
                json_object_del(section(v, "tokens"), hash);
                (void) store_save(v); /* dropping an expired token late is harmless */
                return -ENOENT;
        }
        *ret_entry = entry;
        return 0;
}

int vault_store_token_renew(vault_store *v, const char *token, int64_t ttl, time_t now,
                            json_t **ret_entry) {
        json_t *entry;
        int r = vault_store_token_lookup(v, token, now, &entry);
        if (r < 0)
                return r;
        if (json_object_set_new(entry, "expire_time", json_integer(now + ttl)) < 0 ||
            json_object_set_new(entry, "ttl", json_integer(ttl)) < 0)
                return -ENOMEM;
        if ((r = store_save(v)) < 0)
                return r;
        *ret_entry = entry;
        return 0;
}

int vault_store_token_revoke(vault_store *v, const char *token) {
        char hash[SHA256_HEX_SIZE];
        token_hash(token, hash);
        if (json_object_del(section(v, "tokens"), hash) < 0)
                return -ENOENT;
        return store_save(v);
}

/* ---- KV v2 ---- */

int vault_store_kv_exists(vault_store *v, const char *path) {
        return json_object_get(section(v, "kv"), path) != NULL;
}

int vault_store_kv_read(vault_store *v, const char *path, int64_t version, json_t **ret) {
        json_t *secret = json_object_get(section(v, "kv"), path);
        int64_t current;
        char key[32];

        if (!secret || json_path_i64(secret, "current_version", &current) < 0)
                return -ENOENT;
        if (version == 0)
                version = current;
        snprintf(key, sizeof(key), "%lld", (long long) version);
        json_t *entry = json_object_get(json_object_get(secret, "versions"), key);
        if (!entry)
                return -ENOENT;
        *ret = entry;
        return 0;
}

static json_t *version_metadata(json_t *entry, int64_t version) {
        return json_pack("{s:O,s:n,s:O,s:O,s:I}", "created_time", json_object_get(entry, "created_time"),
                         "custom_metadata", "deletion_time", json_object_get(entry, "deletion_time"),
                         "destroyed", json_object_get(entry, "destroyed"), "version",
                         (json_int_t) version);
}

int vault_store_kv_write(vault_store *v, const char *path, json_t *data, int64_t cas, time_t now,
                         json_t **ret_meta) {
        json_t *kv = section(v, "kv"), *secret = json_object_get(kv, path);
        int64_t current = 0;
        char when[32], key[32];
        int r;

        if (secret && json_path_i64(secret, "current_version", &current) < 0)
                return -EBADMSG;
        if (cas >= 0 && cas != current)
                return -ESTALE;

        format_time(now, when);
        if (!secret) {
                secret = json_pack("{s:I,s:s,s:s,s:{}}", "current_version", (json_int_t) 0,
                                   "created_time", when, "updated_time", when, "versions");
                if (!secret || json_object_set_new(kv, path, secret) < 0)
                        return -ENOMEM;
        }
        snprintf(key, sizeof(key), "%lld", (long long) (current + 1));
        json_t *entry = json_pack("{s:o,s:s,s:s,s:b}", "data", json_deep_copy(data), "created_time",
                                  when, "deletion_time", "", "destroyed", 0);
        if (!entry || json_object_set_new(json_object_get(secret, "versions"), key, entry) < 0 ||
            json_object_set_new(secret, "current_version", json_integer(current + 1)) < 0 ||
            json_object_set_new(secret, "updated_time", json_string(when)) < 0)
                return -ENOMEM;
        if (current + 1 > KV_MAX_VERSIONS) {
                snprintf(key, sizeof(key), "%lld", (long long) (current + 1 - KV_MAX_VERSIONS));
                json_object_del(json_object_get(secret, "versions"), key);
        }
        if ((r = store_save(v)) < 0)
                return r;
        json_t *meta = version_metadata(entry, current + 1);
        if (!meta)
                return -ENOMEM;
        *ret_meta = meta;
        return 0;
}

int vault_store_kv_metadata(vault_store *v, const char *path, json_t **ret) {
        json_t *secret = json_object_get(section(v, "kv"), path), *entry;
        const char *key;

        if (!secret)
                return -ENOENT;
        json_t *versions = json_object();
        if (!versions)
                return -ENOMEM;
        json_object_foreach(json_object_get(secret, "versions"), key, entry)
                json_object_set_new(versions, key,
                                    json_pack("{s:O,s:O,s:O}", "created_time",
                                              json_object_get(entry, "created_time"), "deletion_time",
                                              json_object_get(entry, "deletion_time"), "destroyed",
                                              json_object_get(entry, "destroyed")));
        int64_t current = 0;
        (void) json_path_i64(secret, "current_version", &current);
        json_t *meta = json_pack("{s:I,s:I,s:O,s:O,s:i,s:b,s:s,s:n,s:o}", "current_version",
                                 (json_int_t) current, "oldest_version",
                                 (json_int_t) (current > KV_MAX_VERSIONS ? current - KV_MAX_VERSIONS + 1 : 1),
                                 "created_time", json_object_get(secret, "created_time"),
                                 "updated_time", json_object_get(secret, "updated_time"),
                                 "max_versions", KV_MAX_VERSIONS, "cas_required", 0, "delete_version_after", "0s",
                                 "custom_metadata", "versions", versions);
        if (!meta)
                return -ENOMEM;
        *ret = meta;
        return 0;
}

int vault_store_kv_delete(vault_store *v, const char *path, time_t now) {
        json_t *entry;
        char when[32];
        int r = vault_store_kv_read(v, path, 0, &entry);
        if (r < 0)
                return r;
        if (!streq(strempty(json_string_value(json_object_get(entry, "deletion_time"))), ""))
                return 0;
        format_time(now, when);
        if (json_object_set_new(entry, "deletion_time", json_string(when)) < 0)
                return -ENOMEM;
        return store_save(v);
}

int vault_store_kv_destroy(vault_store *v, const char *path) {
        if (json_object_del(section(v, "kv"), path) < 0)
                return -ENOENT;
        return store_save(v);
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int vault_store_kv_list(vault_store *v, const char *prefix, json_t **ret) {
        json_t *secret;
        const char *path;
        size_t n = 0, plen = strlen(prefix);
        _cleanup_strv_free_ char **keys = NULL;
        int r;

        json_object_foreach(section(v, "kv"), path, secret) {
                if (!strneq(path, prefix, plen) || !path[plen])
                        continue;
                const char *rest = path + plen, *slash = strchr(rest, '/');
                _cleanup_free_ char *key = slash ? strndup(rest, (size_t) (slash - rest + 1)) : strdup(rest);
                if (!key)
                        return -ENOMEM;
                if (!strv_contains(keys, key) && (r = strv_push(&keys, key)) < 0)
                        return r;
                n++;
        }
        if (n == 0)
                return -ENOENT;
        qsort(keys, strv_length(keys), sizeof(char *), compare_strings);
        json_t *list = json_array();
        for (char **k = keys; list && *k; k++)
                if (json_array_append_new(list, json_string(*k)) < 0) {
                        json_decref(list);
                        list = NULL;
                }
        if (!list)
                return -ENOMEM;
        *ret = list;
        return 0;
}

int vault_store_seed(vault_store *v, json_t *seeds, time_t now) {
        const char *path;
        json_t *data;
        int n = 0;

        json_object_foreach(seeds, path, data) {
                if (vault_store_kv_exists(v, path))
                        continue;
                json_t *meta = NULL;
                int r = vault_store_kv_write(v, path, data, 0, now, &meta);
                json_decref(meta);
                if (r < 0)
                        return r;
                n++;
        }
        return n;
}
