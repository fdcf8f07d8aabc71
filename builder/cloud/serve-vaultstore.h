/* What the Vault-compatible service remembers across restarts: tokens (by sha256 of the token,
 * never the token itself) and KV v2 secrets with their versions, kept as one JSON document and
 * written atomically (mode 0600) to DIR/vault.json after every change. */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"

typedef struct vault_store vault_store;

/* Load path if it exists, else start empty. Returns 0, -EBADMSG for a corrupt file, -errno. */
int vault_store_open(const char *path, vault_store **ret);
void vault_store_free(vault_store *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(vault_store *, vault_store_free);

/* Write every seed (object: path -> data object) that does not exist yet as its version 1.
 * Returns the number written or -errno. */
int vault_store_seed(vault_store *v, json_t *seeds, time_t now);

/* Tokens. A token entry is an object {instance_id, role, policies, issue_time, expire_time, ttl,
 * accessor}; returned entries are borrowed and valid until the next call that changes the store. */

/* Create a token: "hvs." + 32 random bytes in hex. Expired tokens are forgotten on the way.
 * *ret_token is new (wipe and free it). */
int vault_store_token_create(vault_store *v, const char *instance_id, const char *role,
                             json_t *policies, int64_t ttl, time_t now, char **ret_token,
                             json_t **ret_entry);
/* Find a live token. Expired tokens are dropped. Returns 0 or -ENOENT. */
int vault_store_token_lookup(vault_store *v, const char *token, time_t now, json_t **ret_entry);
/* Extend a live token to now + ttl. Returns 0 or -ENOENT. */
int vault_store_token_renew(vault_store *v, const char *token, int64_t ttl, time_t now,
                            json_t **ret_entry);
/* Revoke a token. Returns 0 or -ENOENT. */
int vault_store_token_revoke(vault_store *v, const char *token);

/* KV v2 under the "secret/" mount; path excludes the mount and the data/ infix.
 * Read a version (0: the current one). *ret is a borrowed {data, created_time, deletion_time,
 * destroyed, version}. Returns 0 or -ENOENT. */
int vault_store_kv_read(vault_store *v, const char *path, int64_t version, json_t **ret);
/* Write data (copied) as a new version; only the last 10 versions are kept. cas < 0: unconditional; cas == 0: only if the secret does
 * not exist; cas > 0: only if the current version is cas. Returns 0 and the new version's
 * metadata (new reference), -ESTALE for a cas mismatch, -errno if saving failed. */
int vault_store_kv_write(vault_store *v, const char *path, json_t *data, int64_t cas, time_t now,
                         json_t **ret_meta);
/* The secret's metadata in Vault's shape (new reference), or -ENOENT. */
int vault_store_kv_metadata(vault_store *v, const char *path, json_t **ret);
/* Soft-delete the current version (Vault's DELETE on data/): its data stays but reads answer
 * 404 until a new version is written. Deleting a deleted version keeps its first deletion time.
 * Returns 0, -ENOENT if there is no such secret, -errno if saving failed. */
int vault_store_kv_delete(vault_store *v, const char *path, time_t now);
/* Forget the secret with every version (Vault's DELETE on metadata/). Returns 0, -ENOENT, or
 * -errno if saving failed. */
int vault_store_kv_destroy(vault_store *v, const char *path);
/* The keys directly below prefix ("" for the top, else ending in '/'), as Vault's LIST on
 * metadata/ gives them: sorted, unique, sub-folders with a trailing '/'. *ret is a new array of
 * strings; -ENOENT when there is none. */
int vault_store_kv_list(vault_store *v, const char *prefix, json_t **ret);
/* Whether the secret exists (decides between the create and update capabilities). */
int vault_store_kv_exists(vault_store *v, const char *path);
