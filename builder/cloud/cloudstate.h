/* The local cloud's state file, DIR/cloud.json: instances, pools, API credentials and the
 * Vault-compatible service's configuration (roles, policies, PKI roles, KV seeds). Loaded and
 * validated in one go; every error names the JSON path that is wrong. The schema is the structs
 * below (members named as the JSON keys; "roles", "policies", "pki_roles" and "kv" (kv_seeds) sit
 * inside "vault"); the README's local cloud section describes it for users. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "macro.h"

/* Strings are borrowed from cloud_state.root and live as long as the cloud_state. */
typedef struct cloud_instance {
        const char *id;
        const char *name;
        const char *state;
        const char *pool;              /* pool id, or NULL */
        const char *private_ip;
        const char *public_ip;
        json_t *security_groups;       /* array of strings */
        json_t *labels;                /* object of strings */
        const char *user_data;
        const char *created_at;        /* ISO 8601; defaults to the load time */
        /* Each of the instance's services listens on a port on 127.0.0.1 (open to every local
         * user) or on a UNIX socket DIR/sockets/NAME (its user's only); exactly one is given. */
        uint16_t metadata_port;        /* 0 when metadata_socket is set */
        uint16_t vault_port;           /* 0 when vault_socket is set */
        const char *metadata_socket;   /* NAME, or NULL */
        const char *vault_socket;
} cloud_instance;

/* A socket NAME: 1..CLOUD_SOCKET_NAME_MAX of [A-Za-z0-9._-], not starting with '.'. */
#define CLOUD_SOCKET_NAME_MAX 64

typedef struct cloud_pool {
        const char *id;
        const char *name;
        int64_t size;
        const char *template;
        const char *private_network;   /* may be NULL */
} cloud_pool;

/* Vault's default system max_ttl, 768h: no token outlives it, whatever the role says. */
#define CLOUD_VAULT_SYSTEM_MAX_TTL (768 * 3600)

typedef struct cloud_vault_role {
        const char *name;
        const char *pool;              /* pool name the instance must belong to, or NULL */
        const char *security_group;    /* security group the instance must have, or NULL */
        json_t *policies;              /* array of strings */
        int64_t ttl;                   /* seconds */
        int64_t max_ttl;               /* seconds since login a token may live, renewals included */
} cloud_vault_role;

typedef struct cloud_pki_role {
        const char *name;
        json_t *allowed_domains;       /* array of strings */
        bool allow_subdomains;
        bool allow_bare_domains;
        bool allow_ip_sans;
        bool allow_any_name;
        json_t *allowed_uri_sans;      /* array of globs ('*' anywhere), NULL or empty: none */
        json_t *organization;          /* array of O values put in every subject, NULL: none */
        int64_t max_ttl;               /* seconds */
} cloud_pki_role;

typedef struct cloud_state {
        json_t *root;
        const char *zone;
        uint16_t api_port;
        const char *api_key;
        const char *api_secret;
        cloud_instance *instances;
        size_t n_instances;
        cloud_pool *pools;
        size_t n_pools;
        cloud_vault_role *roles;
        size_t n_roles;
        cloud_pki_role *pki_roles;
        size_t n_pki_roles;
        json_t *policies;              /* object: name -> { glob: [capabilities] } */
        json_t *kv_seeds;              /* object: path -> object, or NULL */
        char created_at[32];
} cloud_state;

/* Parse and validate cloud.json text. Returns 0 and a new state, -EINVAL with
 * "instances[1].private_ip: not an IP address" (or a JSON syntax error) in err, or -ENOMEM. */
int cloud_state_parse(const char *text, size_t len, cloud_state **ret, buf *err);
/* Read path (capped at 4 MiB) and parse it. File errors are returned as -errno with no message. */
int cloud_state_load(const char *path, cloud_state **ret, buf *err);
void cloud_state_free(cloud_state *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(cloud_state *, cloud_state_free);

/* Lookups; NULL when absent. */
const cloud_instance *cloud_find_instance(const cloud_state *s, const char *id);
const cloud_pool *cloud_find_pool(const cloud_state *s, const char *id);
const cloud_pool *cloud_find_pool_by_name(const cloud_state *s, const char *name);
const cloud_pool *cloud_find_pool_by_network(const cloud_state *s, const char *network_id);
const cloud_vault_role *cloud_find_role(const cloud_state *s, const char *name);
const cloud_pki_role *cloud_find_pki_role(const cloud_state *s, const char *name);
bool cloud_instance_has_security_group(const cloud_instance *i, const char *name);
