/* cloud.json: parse, validate (reporting the JSON path of the first error) and look up. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloudstate.h"
#include "fs.h"
#include "json.h"

#define CLOUD_JSON_MAX (4u * 1024u * 1024u)

/* Report "where.key: message" into err and return -EINVAL. */
_printf_(4, 5) static int fail(buf *err, const char *where, const char *key, const char *fmt, ...) {
        va_list ap;

        if (!err)
                return -EINVAL;
        buf_clear(err);
        if (*where)
                (void) buf_printf(err, "%s%s%s: ", where, key ? "." : "", strempty(key));
        else
                (void) buf_printf(err, "%s: ", strempty(key));
        va_start(ap, fmt);
        (void) buf_vprintf(err, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static int get_string(json_t *obj, const char *where, const char *key, bool required, buf *err,
                      const char **ret) {
        json_t *v = json_object_get(obj, key);
        if (!v || (json_is_null(v) && !required)) {
                if (required)
                        return fail(err, where, key, "missing");
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return fail(err, where, key, "must be a string");
        if (required && json_string_length(v) == 0)
                return fail(err, where, key, "must not be empty");
        *ret = json_string_value(v);
        return 0;
}

static int get_int(json_t *obj, const char *where, const char *key, int64_t min, int64_t max,
                   buf *err, int64_t *ret) {
        json_t *v = json_object_get(obj, key);
        if (!v)
                return fail(err, where, key, "missing");
        if (!json_is_integer(v))
                return fail(err, where, key, "must be an integer");
        json_int_t i = json_integer_value(v);
        if (i < min || i > max)
                return fail(err, where, key, "%lld is out of range %lld..%lld", (long long) i,
                            (long long) min, (long long) max);
        *ret = i;
        return 0;
}

static int get_port(json_t *obj, const char *where, const char *key, buf *err, uint16_t *ret) {
        int64_t v;
        int r = get_int(obj, where, key, 1, 65535, err, &v);
        if (r < 0)
                return r;
        *ret = (uint16_t) v;
        return 0;
}

/* A service's endpoint: "<service>_socket" (a file name) or "<service>_port", one of them. */
static int get_endpoint(json_t *obj, const char *where, const char *service, buf *err, uint16_t *ret_port,
                        const char **ret_socket) {
        char port_key[32], socket_key[32];
        const char *name;
        int r;

        snprintf(port_key, sizeof(port_key), "%s_port", service);
        snprintf(socket_key, sizeof(socket_key), "%s_socket", service);
        if (!json_object_get(obj, socket_key)) {
                *ret_socket = NULL;
                return get_port(obj, where, port_key, err, ret_port);
        }
        if (json_object_get(obj, port_key))
                return fail(err, where, port_key, "not together with %s", socket_key);
        if ((r = get_string(obj, where, socket_key, true, err, &name)) < 0)
                return r;
        if (strlen(name) > CLOUD_SOCKET_NAME_MAX || name[0] == '.' ||
            strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(name))
                return fail(err, where, socket_key,
                            "\"%s\" is not a file name (1..%d of A-Z a-z 0-9 . _ -, not starting with '.')", name,
                            CLOUD_SOCKET_NAME_MAX);
        *ret_port = 0;
        *ret_socket = name;
        return 0;
}

static int get_bool(json_t *obj, const char *where, const char *key, buf *err, bool *ret) {
        json_t *v = json_object_get(obj, key);
        if (!v) {
                *ret = false;
                return 0;
        }
        if (!json_is_boolean(v))
                return fail(err, where, key, "must be true or false");
        *ret = json_is_true(v);
        return 0;
}

static int get_ip(json_t *obj, const char *where, const char *key, buf *err, const char **ret) {
        unsigned char addr[sizeof(struct in6_addr)];
        const char *s;
        int r = get_string(obj, where, key, true, err, &s);
        if (r < 0)
                return r;
        if (inet_pton(AF_INET, s, addr) != 1 && inet_pton(AF_INET6, s, addr) != 1)
                return fail(err, where, key, "not an IP address: \"%s\"", s);
        *ret = s;
        return 0;
}

/* An array of strings (missing means empty when !required). */
static int get_string_array(json_t *obj, const char *where, const char *key, bool required,
                            buf *err, json_t **ret) {
        json_t *v = json_object_get(obj, key), *e;
        size_t i;

        if (!v && !required) {
                *ret = NULL;
                return 0;
        }
        if (!v)
                return fail(err, where, key, "missing");
        if (!json_is_array(v))
                return fail(err, where, key, "must be an array of strings");
        json_array_foreach(v, i, e)
                if (!json_is_string(e))
                        return fail(err, where, key, "element %zu must be a string", i);
        *ret = v;
        return 0;
}

static int get_object(json_t *obj, const char *where, const char *key, bool required, buf *err,
                      json_t **ret) {
        json_t *v = json_object_get(obj, key);
        if (!v && !required) {
                *ret = NULL;
                return 0;
        }
        if (!v)
                return fail(err, where, key, "missing");
        if (!json_is_object(v))
                return fail(err, where, key, "must be an object");
        *ret = v;
        return 0;
}

static int get_array(json_t *obj, const char *key, buf *err, json_t **ret) {
        json_t *v = json_object_get(obj, key);
        if (!v)
                return fail(err, "", key, "missing");
        if (!json_is_array(v))
                return fail(err, "", key, "must be an array");
        *ret = v;
        return 0;
}

static int parse_instance(json_t *o, const char *where, const char *created_at, buf *err,
                          cloud_instance *ret) {
        cloud_instance i = { .created_at = created_at };
        json_t *v;
        const char *key;
        int r;

        if (!json_is_object(o))
                return fail(err, where, NULL, "must be an object");
        if ((r = get_string(o, where, "id", true, err, &i.id)) < 0 ||
            (r = get_string(o, where, "name", true, err, &i.name)) < 0 ||
            (r = get_string(o, where, "state", true, err, &i.state)) < 0 ||
            (r = get_string(o, where, "pool", false, err, &i.pool)) < 0 ||
            (r = get_ip(o, where, "private_ip", err, &i.private_ip)) < 0 ||
            (r = get_ip(o, where, "public_ip", err, &i.public_ip)) < 0 ||
            (r = get_string_array(o, where, "security_groups", false, err, &i.security_groups)) < 0 ||
            (r = get_object(o, where, "labels", false, err, &i.labels)) < 0 ||
            (r = get_string(o, where, "user_data", false, err, &i.user_data)) < 0 ||
            (r = get_endpoint(o, where, "metadata", err, &i.metadata_port, &i.metadata_socket)) < 0 ||
            (r = get_endpoint(o, where, "vault", err, &i.vault_port, &i.vault_socket)) < 0)
                return r;
        if (json_object_get(o, "created_at") &&
            (r = get_string(o, where, "created_at", true, err, &i.created_at)) < 0)
                return r;
        json_object_foreach(i.labels, key, v)
                if (!json_is_string(v))
                        return fail(err, where, "labels", "value of \"%s\" must be a string", key);
        *ret = i;
        return 0;
}

static int parse_pool(json_t *o, const char *where, buf *err, cloud_pool *ret) {
        cloud_pool p = {};
        int r;

        if (!json_is_object(o))
                return fail(err, where, NULL, "must be an object");
        if ((r = get_string(o, where, "id", true, err, &p.id)) < 0 ||
            (r = get_string(o, where, "name", true, err, &p.name)) < 0 ||
            (r = get_int(o, where, "size", 0, 1000, err, &p.size)) < 0 ||
            (r = get_string(o, where, "template", true, err, &p.template)) < 0 ||
            (r = get_string(o, where, "private_network", false, err, &p.private_network)) < 0)
                return r;
        *ret = p;
        return 0;
}

static int parse_role(json_t *o, const char *where, const char *name, buf *err,
                      cloud_vault_role *ret) {
        cloud_vault_role role = { .name = name };
        int r;

        if (!json_is_object(o))
                return fail(err, where, NULL, "must be an object");
        if ((r = get_string(o, where, "pool", false, err, &role.pool)) < 0 ||
            (r = get_string(o, where, "security_group", false, err, &role.security_group)) < 0 ||
            (r = get_string_array(o, where, "policies", true, err, &role.policies)) < 0 ||
            (r = get_int(o, where, "ttl", 1, 365 * 86400, err, &role.ttl)) < 0)
                return r;
        /* Vault's system max_ttl (768h) applies unless the role sets a smaller one. */
        role.max_ttl = CLOUD_VAULT_SYSTEM_MAX_TTL;
        if (json_object_get(o, "max_ttl") &&
            (r = get_int(o, where, "max_ttl", 1, CLOUD_VAULT_SYSTEM_MAX_TTL, err, &role.max_ttl)) < 0)
                return r;
        *ret = role;
        return 0;
}

static int parse_pki_role(json_t *o, const char *where, const char *name, buf *err,
                          cloud_pki_role *ret) {
        cloud_pki_role role = { .name = name };
        int r;

        if (!json_is_object(o))
                return fail(err, where, NULL, "must be an object");
        if ((r = get_string_array(o, where, "allowed_domains", false, err, &role.allowed_domains)) < 0 ||
            (r = get_bool(o, where, "allow_subdomains", err, &role.allow_subdomains)) < 0 ||
            (r = get_bool(o, where, "allow_bare_domains", err, &role.allow_bare_domains)) < 0 ||
            (r = get_bool(o, where, "allow_any_name", err, &role.allow_any_name)) < 0 ||
            (r = get_string_array(o, where, "allowed_uri_sans", false, err, &role.allowed_uri_sans)) < 0 ||
            (r = get_string_array(o, where, "organization", false, err, &role.organization)) < 0 ||
            (r = get_int(o, where, "max_ttl", 1, 10 * 365 * 86400, err, &role.max_ttl)) < 0)
                return r;
        /* Vault's default for allow_ip_sans is true. */
        role.allow_ip_sans = true;
        if (json_object_get(o, "allow_ip_sans") &&
            (r = get_bool(o, where, "allow_ip_sans", err, &role.allow_ip_sans)) < 0)
                return r;
        *ret = role;
        return 0;
}

static int parse_policies(json_t *policies, buf *err) {
        static const char *const known[] = { "read", "create", "update", "delete", "list", "patch", "deny" };
        const char *name, *glob;
        json_t *policy, *caps, *cap;
        char where[256];
        size_t i;

        json_object_foreach(policies, name, policy) {
                snprintf(where, sizeof(where), "vault.policies.%s", name);
                if (!json_is_object(policy))
                        return fail(err, where, NULL, "must be an object");
                json_object_foreach(policy, glob, caps) {
                        if (!json_is_array(caps))
                                return fail(err, where, glob, "must be an array of capabilities");
                        json_array_foreach(caps, i, cap) {
                                bool ok = false;
                                for (size_t k = 0; json_is_string(cap) && k < ELEMENTSOF(known); k++)
                                        ok = ok || streq(json_string_value(cap), known[k]);
                                if (!ok)
                                        return fail(err, where, glob, "element %zu is not a capability", i);
                        }
                }
        }
        return 0;
}

static int parse_vault(cloud_state *s, buf *err) {
        json_t *vault, *roles = NULL, *pki_roles = NULL, *o, *pol;
        const char *name;
        char where[256];
        size_t i;
        int r;

        if ((r = get_object(s->root, "", "vault", false, err, &vault)) < 0)
                return r;
        if (!vault)
                return 0;
        if ((r = get_object(vault, "vault", "roles", false, err, &roles)) < 0 ||
            (r = get_object(vault, "vault", "policies", false, err, &s->policies)) < 0 ||
            (r = get_object(vault, "vault", "pki_roles", false, err, &pki_roles)) < 0 ||
            (r = get_object(vault, "vault", "kv", false, err, &s->kv_seeds)) < 0)
                return r;
        if (s->policies && (r = parse_policies(s->policies, err)) < 0)
                return r;

        s->roles = calloc(json_object_size(roles) + 1, sizeof(*s->roles));
        s->pki_roles = calloc(json_object_size(pki_roles) + 1, sizeof(*s->pki_roles));
        if (!s->roles || !s->pki_roles)
                return -ENOMEM;
        json_object_foreach(roles, name, o) {
                cloud_vault_role *role = &s->roles[s->n_roles];
                snprintf(where, sizeof(where), "vault.roles.%s", name);
                if ((r = parse_role(o, where, name, err, role)) < 0)
                        return r;
                json_array_foreach(role->policies, i, pol)
                        if (!json_object_get(s->policies, json_string_value(pol)))
                                return fail(err, where, "policies", "unknown policy \"%s\"",
                                            json_string_value(pol));
                s->n_roles++;
        }
        json_object_foreach(pki_roles, name, o) {
                snprintf(where, sizeof(where), "vault.pki_roles.%s", name);
                if ((r = parse_pki_role(o, where, name, err, &s->pki_roles[s->n_pki_roles])) < 0)
                        return r;
                s->n_pki_roles++;
        }
        json_object_foreach(s->kv_seeds, name, o) {
                if (!json_is_object(o)) {
                        snprintf(where, sizeof(where), "vault.kv.%s", name);
                        return fail(err, where, NULL, "must be an object");
                }
        }
        return 0;
}

static bool same_socket(const char *a, const char *b) { return a && b && streq(a, b); }

/* Every port (API, metadata, Vault) and every socket name must be distinct: each is its own
 * listener. A port of 0 is a service on a socket. */
static int check_ports(const cloud_state *s, buf *err) {
        for (size_t i = 0; i < s->n_instances; i++) {
                const cloud_instance *a = &s->instances[i];
                char where[64];
                snprintf(where, sizeof(where), "instances[%zu]", i);
                if (a->metadata_port && a->metadata_port == a->vault_port)
                        return fail(err, where, "vault_port", "same port as metadata_port");
                if (same_socket(a->metadata_socket, a->vault_socket))
                        return fail(err, where, "vault_socket", "same socket as metadata_socket");
                if (a->metadata_port == s->api_port)
                        return fail(err, where, "metadata_port", "same port as api_port");
                if (a->vault_port == s->api_port)
                        return fail(err, where, "vault_port", "same port as api_port");
                for (size_t j = 0; j < i; j++) {
                        const cloud_instance *b = &s->instances[j];
                        if (streq(a->id, b->id))
                                return fail(err, where, "id", "duplicate id (also instances[%zu])", j);
                        if (a->metadata_port && (a->metadata_port == b->metadata_port || a->metadata_port == b->vault_port))
                                return fail(err, where, "metadata_port",
                                            "port %u already used by instances[%zu]", a->metadata_port, j);
                        if (a->vault_port && (a->vault_port == b->metadata_port || a->vault_port == b->vault_port))
                                return fail(err, where, "vault_port",
                                            "port %u already used by instances[%zu]", a->vault_port, j);
                        if (same_socket(a->metadata_socket, b->metadata_socket) ||
                            same_socket(a->metadata_socket, b->vault_socket))
                                return fail(err, where, "metadata_socket", "\"%s\" already used by instances[%zu]",
                                            a->metadata_socket, j);
                        if (same_socket(a->vault_socket, b->metadata_socket) ||
                            same_socket(a->vault_socket, b->vault_socket))
                                return fail(err, where, "vault_socket", "\"%s\" already used by instances[%zu]",
                                            a->vault_socket, j);
                }
        }
        return 0;
}

static int parse_instances_and_pools(cloud_state *s, buf *err) {
        json_t *instances, *pools, *o;
        char where[64];
        size_t i;
        int r;

        if ((r = get_array(s->root, "instances", err, &instances)) < 0 ||
            (r = get_array(s->root, "pools", err, &pools)) < 0)
                return r;
        s->instances = calloc(json_array_size(instances) + 1, sizeof(*s->instances));
        s->pools = calloc(json_array_size(pools) + 1, sizeof(*s->pools));
        if (!s->instances || !s->pools)
                return -ENOMEM;

        json_array_foreach(pools, i, o) {
                snprintf(where, sizeof(where), "pools[%zu]", i);
                if ((r = parse_pool(o, where, err, &s->pools[i])) < 0)
                        return r;
                for (size_t j = 0; j < i; j++) {
                        if (streq(s->pools[i].id, s->pools[j].id))
                                return fail(err, where, "id", "duplicate id (also pools[%zu])", j);
                        if (streq(s->pools[i].name, s->pools[j].name))
                                return fail(err, where, "name", "duplicate name (also pools[%zu])", j);
                }
                s->n_pools++;
        }
        json_array_foreach(instances, i, o) {
                snprintf(where, sizeof(where), "instances[%zu]", i);
                if ((r = parse_instance(o, where, s->created_at, err, &s->instances[i])) < 0)
                        return r;
                if (s->instances[i].pool && !cloud_find_pool(s, s->instances[i].pool))
                        return fail(err, where, "pool", "unknown pool \"%s\"", s->instances[i].pool);
                s->n_instances++;
        }
        return check_ports(s, err);
}

int cloud_state_parse(const char *text, size_t len, cloud_state **ret, buf *err) {
        _cleanup_(cloud_state_freep) cloud_state *s = NULL;
        int64_t port;
        time_t now = time(NULL);
        struct tm tm;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        strftime(s->created_at, sizeof(s->created_at), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));

        r = json_parse(text, len, &s->root, err);
        if (r < 0)
                return r == -EBADMSG ? -EINVAL : r;
        if (!json_is_object(s->root))
                return fail(err, "", "$", "must be an object");
        if ((r = get_string(s->root, "", "zone", true, err, &s->zone)) < 0 ||
            (r = get_int(s->root, "", "api_port", 1, 65535, err, &port)) < 0 ||
            (r = get_string(s->root, "", "api_key", true, err, &s->api_key)) < 0 ||
            (r = get_string(s->root, "", "api_secret", true, err, &s->api_secret)) < 0)
                return r;
        s->api_port = (uint16_t) port;
        if ((r = parse_instances_and_pools(s, err)) < 0 || (r = parse_vault(s, err)) < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int cloud_state_load(const char *path, cloud_state **ret, buf *err) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file(path, CLOUD_JSON_MAX, &text, &len);
        if (r < 0)
                return r;
        return cloud_state_parse(text, len, ret, err);
}

void cloud_state_free(cloud_state *s) {
        if (!s)
                return;
        free(s->instances);
        free(s->pools);
        free(s->roles);
        free(s->pki_roles);
        json_decref(s->root);
        free(s);
}

const cloud_instance *cloud_find_instance(const cloud_state *s, const char *id) {
        for (size_t i = 0; id && i < s->n_instances; i++)
                if (streq(s->instances[i].id, id))
                        return &s->instances[i];
        return NULL;
}

const cloud_pool *cloud_find_pool(const cloud_state *s, const char *id) {
        for (size_t i = 0; id && i < s->n_pools; i++)
                if (streq(s->pools[i].id, id))
                        return &s->pools[i];
        return NULL;
}

const cloud_pool *cloud_find_pool_by_name(const cloud_state *s, const char *name) {
        for (size_t i = 0; name && i < s->n_pools; i++)
                if (streq(s->pools[i].name, name))
                        return &s->pools[i];
        return NULL;
}

const cloud_pool *cloud_find_pool_by_network(const cloud_state *s, const char *network_id) {
        for (size_t i = 0; network_id && i < s->n_pools; i++)
                if (s->pools[i].private_network && streq(s->pools[i].private_network, network_id))
                        return &s->pools[i];
        return NULL;
}

const cloud_vault_role *cloud_find_role(const cloud_state *s, const char *name) {
        for (size_t i = 0; name && i < s->n_roles; i++)
                if (streq(s->roles[i].name, name))
                        return &s->roles[i];
        return NULL;
}

const cloud_pki_role *cloud_find_pki_role(const cloud_state *s, const char *name) {
        for (size_t i = 0; name && i < s->n_pki_roles; i++)
                if (streq(s->pki_roles[i].name, name))
                        return &s->pki_roles[i];
        return NULL;
}

bool cloud_instance_has_security_group(const cloud_instance *i, const char *name) {
        json_t *e;
        size_t k;
        json_array_foreach(i->security_groups, k, e)
                if (streq(json_string_value(e), name))
                        return true;
        return false;
}
