#include "agent-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "parse-util.h"
#include "strv.h"

static const char *const role_names[] = {
        [AGENT_CONFIG_ROLE_ETCD] = "etcd",
        [AGENT_CONFIG_ROLE_VAULT] = "vault",
        [AGENT_CONFIG_ROLE_CONTROL_PLANE] = "control-plane",
        [AGENT_CONFIG_ROLE_NODE] = "node",
};

const char *agent_config_role_to_string(agent_config_role r) { return role_names[r]; }

char *agent_config_path(const char *root, const char *path) {
        char *s;
        if (asprintf(&s, "%s%s", strempty(root), path) < 0)
                return NULL;
        return s;
}

void agent_config_free(agent_config *c) {
        if (!c)
                return;
        free(c->state_dir);
        free(c->metadata_url);
        free(c->metadata_socket);
        free(c->vault_addr);
        free(c->vault_socket);
        free(c->vault_ca_file);
        free(c->vault_auth_mount);
        free(c->vault_role);
        free(c->kv_mount);
        free(c->cloud_api_secret);
        for (size_t i = 0; i < c->n_secrets; i++) {
                free(c->secrets[i].path);
                free(c->secrets[i].field);
                free(c->secrets[i].file);
        }
        free(c->secrets);
        free(c->pki_mount);
        free(c->pki_role);
        free(c->pki_common_name);
        strv_free(c->pki_alt_names);
        strv_free(c->pki_ip_sans);
        free(c->pki_ttl);
        free(c->cert_file);
        free(c->key_file);
        free(c->ca_file);
        for (size_t i = 0; i < c->n_certs; i++) {
                agent_config_cert *t = &c->certs[i];
                free(t->name);
                free(t->mount);
                free(t->role);
                free(t->common_name);
                strv_free(t->organization);
                strv_free(t->alt_names);
                strv_free(t->ip_sans);
                free(t->ttl);
                free(t->cert_file);
                free(t->key_file);
                free(t->ca_file);
                strv_free(t->reload);
                strv_free(t->restart);
        }
        free(c->certs);
        for (size_t i = 0; i < c->n_kubeconfigs; i++) {
                agent_config_kubeconfig *k = &c->kubeconfigs[i];
                free(k->name);
                free(k->file);
                free(k->certificate);
                free(k->server);
                free(k->cluster);
                free(k->user);
        }
        free(c->kubeconfigs);
        for (size_t i = 0; i < c->n_envs; i++) {
                free(c->envs[i].name);
                free(c->envs[i].file);
                strv_free(c->envs[i].vars);
        }
        free(c->envs);
        free(c->etcd_data_dir);
        free(c->etcd_name_prefix);
        free(c->etcd_env_file);
        free(c->node_kubeconfig);
        free(c->node_kubelet_config);
        free(c->node_ca_file);
        free(c->node_cert_file);
        free(c->node_key_file);
        free(c->node_env_file);
        char **cp_strings[] = { &c->cp_endpoint, &c->cp_etcd_pool, &c->cp_apiserver_cert, &c->cp_etcd_cert,
                                &c->cp_kubelet_cert, &c->cp_front_proxy_cert, &c->cp_admin_cert,
                                &c->cp_controller_manager_kubeconfig, &c->cp_scheduler_kubeconfig,
                                &c->cp_service_account_secret, &c->cp_encryption_secret,
                                &c->cp_bootstrap_token_secret, &c->cp_cluster_signing_secret,
                                &c->cp_encryption_provider, &c->cp_service_cidr, &c->cp_cluster_cidr,
                                &c->cp_pki_dir, &c->cp_encryption_config, &c->cp_env_file };
        for (size_t i = 0; i < ELEMENTSOF(cp_strings); i++)
                free(*cp_strings[i]);
        strv_free(c->units);
        free(c->exec_start);
        free(c);
}

/* ---- value parsers: one per kind of value; the key table below says which field gets which ---- */

typedef struct config_item config_item;
/* Parses v into the item's field of base (the config, or the current secret for [secret]).
 * Returns 0, -EINVAL for a bad value, -ESRCH for an unknown user or group, or -ENOMEM. */
typedef int (*config_parser)(const char *v, void *base, const config_item *it, bool resolve);

struct config_item {
        unsigned section;
        const char *key;
        config_parser parse;
        size_t offset; /* of the field in agent_config, or in agent_config_secret for [secret] */
        size_t offset2; /* owner: of the gid next to the uid at offset */
};

#define FIELD(type, base, off) ((type *) (void *) ((char *) (base) + (off)))

static int parse_string(const char *v, void *base, const config_item *it, bool resolve) {
        (void) resolve;
        return free_and_strdup(FIELD(char *, base, it->offset), v);
}

static int parse_abs_path(const char *v, void *base, const config_item *it, bool resolve) {
        return v[0] == '/' ? parse_string(v, base, it, resolve) : -EINVAL;
}

/* A UNIX socket: absolute, and short enough for sockaddr_un's sun_path (108 bytes with its NUL). */
static int parse_socket_path(const char *v, void *base, const config_item *it, bool resolve) {
        return v[0] == '/' && strlen(v) < 108 ? parse_string(v, base, it, resolve) : -EINVAL;
}

static int parse_url(const char *v, void *base, const config_item *it, bool resolve) {
        return startswith(v, "http://") || startswith(v, "https://") ? parse_string(v, base, it, resolve) : -EINVAL;
}

/* "a, b c": replaces the list (a repeated key does not append). */
static int parse_list(const char *v, void *base, const config_item *it, bool resolve) {
        char ***l = FIELD(char **, base, it->offset);
        (void) resolve;
        strv_free(*l);
        *l = NULL;
        return strv_split(v, ", ", l);
}

/* Whether v expands with the identity variables (and nothing else). */
static bool expands(const char *v) {
        static const char *const names[] = { AGENT_CONFIG_VARIABLES };
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_free_ char *out = NULL;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strv_pushf(&env, "%s=x", names[i]) < 0)
                        return false;
        return strv_env_expand(v, env, &out) >= 0;
}

static int parse_expanded(const char *v, void *base, const config_item *it, bool resolve) {
        return expands(v) ? parse_string(v, base, it, resolve) : -EINVAL;
}

static int parse_expanded_list(const char *v, void *base, const config_item *it, bool resolve) {
        return expands(v) ? parse_list(v, base, it, resolve) : -EINVAL;
}

static int parse_expanded_url(const char *v, void *base, const config_item *it, bool resolve) {
        return expands(v) ? parse_url(v, base, it, resolve) : -EINVAL;
}

static int parse_yes_no(const char *v, void *base, const config_item *it, bool resolve) {
        (void) resolve;
        return parse_bool(v, FIELD(bool, base, it->offset));
}

static int parse_deadline_ms(const char *v, void *base, const config_item *it, bool resolve) {
        unsigned long n;
        (void) resolve;
        if (parse_ulong(v, 100, 3600000, &n) < 0)
                return -EINVAL;
        *FIELD(long, base, it->offset) = (long) n;
        return 0;
}

static int parse_port(const char *v, void *base, const config_item *it, bool resolve) {
        unsigned long n;
        (void) resolve;
        if (parse_ulong(v, 1, 65535, &n) < 0)
                return -EINVAL;
        *FIELD(unsigned, base, it->offset) = (unsigned) n;
        return 0;
}

static int parse_fraction(const char *v, void *base, const config_item *it, bool resolve) {
        char *end;
        (void) resolve;
        double d = strtod(v, &end);
        if (*end || end == v || !(d > 0.0 && d < 1.0))
                return -EINVAL;
        *FIELD(double, base, it->offset) = d;
        return 0;
}

static int parse_encryption_provider(const char *v, void *base, const config_item *it, bool resolve) {
        return streq(v, "secretbox") || streq(v, "aescbc") || streq(v, "aesgcm") ? parse_string(v, base, it, resolve)
                                                                                    : -EINVAL;
}

/* An IPv4 CIDR "a.b.c.d/n" (n 1..32) with no host bits set, as the flags that take one want it. */
static int parse_cidr(const char *v, void *base, const config_item *it, bool resolve) {
        char ip[INET_ADDRSTRLEN];
        const char *slash = strchr(v, '/');
        unsigned long n;
        struct in_addr a;
        if (!slash || (size_t) (slash - v) >= sizeof(ip) || parse_ulong(slash + 1, 1, 32, &n) < 0)
                return -EINVAL;
        memcpy(ip, v, (size_t) (slash - v));
        ip[slash - v] = 0;
        if (inet_pton(AF_INET, ip, &a) != 1)
                return -EINVAL;
        uint32_t mask = n == 32 ? 0xffffffffu : ~(0xffffffffu >> n);
        if (ntohl(a.s_addr) & ~mask)
                return -EINVAL;
        return parse_string(v, base, it, resolve);
}

static int parse_file_mode(const char *v, void *base, const config_item *it, bool resolve) {
        (void) resolve;
        return parse_mode(v, FIELD(mode_t, base, it->offset));
}

static int parse_role(const char *v, void *base, const config_item *it, bool resolve) {
        (void) resolve;
        for (size_t i = 0; i < ELEMENTSOF(role_names); i++)
                if (streq(v, role_names[i])) {
                        *FIELD(agent_config_role, base, it->offset) = (agent_config_role) i;
                        return 0;
                }
        return -EINVAL;
}

/* [units] mode: "exec" (bootagent runs exec_start itself) or "systemd". */
static int parse_units_mode(const char *v, void *base, const config_item *it, bool resolve) {
        (void) resolve;
        if (!streq(v, "exec") && !streq(v, "systemd"))
                return -EINVAL;
        *FIELD(bool, base, it->offset) = streq(v, "exec");
        return 0;
}

/* getpwnam_r/getgrnam_r want a caller buffer; grow it while they say ERANGE. Returns 0, -ESRCH
 * (no such name, or the lookup failed) or -ENOMEM. */
static int lookup_name(const char *name, bool group, uid_t *ret_uid, gid_t *ret_gid) {
        long hint = sysconf(group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
        for (size_t size = hint > 0 ? (size_t) hint : 1024; size <= 1024 * 1024; size *= 2) {
                _cleanup_free_ char *b = malloc(size);
                if (!b)
                        return -ENOMEM;
                struct passwd pw, *pwp = NULL;
                struct group gr, *grp = NULL;
                int r = group ? getgrnam_r(name, &gr, b, size, &grp) : getpwnam_r(name, &pw, b, size, &pwp);
                if (r == ERANGE)
                        continue;
                if (r == ENOMEM)
                        return -ENOMEM;
                if (r != 0 || (group ? !grp : !pwp))
                        return -ESRCH;
                if (ret_uid)
                        *ret_uid = pw.pw_uid;
                *ret_gid = group ? gr.gr_gid : pw.pw_gid;
                return 0;
        }
        return -ESRCH;
}

/* "uid:gid" numbers, or "user[:group]" names resolved on the image (a lone user gets its primary
 * group). Without resolve (a check on another host than the image), names are only checked to be
 * names and the owner is left as is. */
static int parse_owner(const char *v, void *base, const config_item *it, bool resolve) {
        _cleanup_free_ char *user = strdup(v);
        unsigned long n;
        uid_t uid;
        gid_t gid;
        int r;

        if (!user)
                return -ENOMEM;
        char *group = strchr(user, ':');
        if (group)
                *group++ = 0;
        if (!resolve)
                return parse_user_name_valid(user, strlen(user)) &&
                       (!group || parse_user_name_valid(group, strlen(group))) ? 0 : -EINVAL;
        if (parse_ulong(user, 0, 0x7fffffff, &n) >= 0) {
                uid = (uid_t) n;
                gid = (gid_t) n;
        } else if ((r = lookup_name(user, false, &uid, &gid)) < 0)
                return r;
        if (group) {
                if (parse_ulong(group, 0, 0x7fffffff, &n) >= 0)
                        gid = (gid_t) n;
                else if ((r = lookup_name(group, true, NULL, &gid)) < 0)
                        return r;
        }
        *FIELD(uid_t, base, it->offset) = uid;
        *FIELD(gid_t, base, it->offset2) = gid;
        return 0;
}

/* ---- sections and keys ---- */

enum {
        SECTION_NONE,
        SECTION_AGENT,
        SECTION_METADATA,
        SECTION_VAULT,
        SECTION_SECRET,
        SECTION_PKI,
        SECTION_ETCD,
        SECTION_NODE,
        SECTION_CONTROL_PLANE,
        SECTION_UNITS,
        SECTION_CERTIFICATE,
        SECTION_KUBECONFIG,
        SECTION_ENVIRONMENT,
};

static const char *const section_names[] = {
        [SECTION_AGENT] = "agent", [SECTION_METADATA] = "metadata", [SECTION_VAULT] = "vault",
        [SECTION_SECRET] = "secret", [SECTION_PKI] = "pki", [SECTION_ETCD] = "etcd",
        [SECTION_NODE] = "node", [SECTION_CONTROL_PLANE] = "control-plane", [SECTION_UNITS] = "units", [SECTION_CERTIFICATE] = "certificate", [SECTION_KUBECONFIG] = "kubeconfig",
        [SECTION_ENVIRONMENT] = "environment",
};

/* Sections that take a name ("[certificate NAME]"); the others take none. */
static bool section_named(unsigned sec) {
        return sec == SECTION_CERTIFICATE || sec == SECTION_KUBECONFIG || sec == SECTION_ENVIRONMENT;
}

#define C(sec, key, parser, field) { SECTION_##sec, key, parser, offsetof(agent_config, field), 0 }
#define S(key, parser, field) { SECTION_SECRET, key, parser, offsetof(agent_config_secret, field), 0 }
#define T(key, parser, field) { SECTION_CERTIFICATE, key, parser, offsetof(agent_config_cert, field), 0 }
#define K(key, parser, field) { SECTION_KUBECONFIG, key, parser, offsetof(agent_config_kubeconfig, field), 0 }
#define E(key, parser, field) { SECTION_ENVIRONMENT, key, parser, offsetof(agent_config_env, field), 0 }
#define OWNER(sec, type) { SECTION_##sec, "owner", parse_owner, offsetof(type, uid), offsetof(type, gid) }

/* Every key: a new key is a row here (and a field in agent_config). */
static const config_item config_items[] = {
        C(AGENT, "role", parse_role, role),
        C(AGENT, "state_dir", parse_abs_path, state_dir),
        C(AGENT, "renew_fraction", parse_fraction, renew_fraction),

        C(METADATA, "url", parse_url, metadata_url),
        C(METADATA, "deadline_ms", parse_deadline_ms, metadata_deadline_ms),
        C(METADATA, "socket", parse_socket_path, metadata_socket),

        C(VAULT, "address", parse_url, vault_addr),
        C(VAULT, "ca_file", parse_abs_path, vault_ca_file),
        C(VAULT, "auth_mount", parse_string, vault_auth_mount),
        C(VAULT, "role", parse_string, vault_role),
        C(VAULT, "kv_mount", parse_string, kv_mount),
        C(VAULT, "cloud_api_secret", parse_string, cloud_api_secret),
        C(VAULT, "deadline_ms", parse_deadline_ms, vault_deadline_ms),
        C(VAULT, "socket", parse_socket_path, vault_socket),

        S("path", parse_string, path),
        S("field", parse_string, field),
        S("file", parse_abs_path, file),
        S("mode", parse_file_mode, mode),
        { SECTION_SECRET, "owner", parse_owner, offsetof(agent_config_secret, uid), offsetof(agent_config_secret, gid) },

        C(PKI, "mount", parse_string, pki_mount),
        C(PKI, "role", parse_string, pki_role),
        C(PKI, "common_name", parse_string, pki_common_name),
        C(PKI, "alt_names", parse_list, pki_alt_names),
        C(PKI, "ip_sans", parse_list, pki_ip_sans),
        C(PKI, "ttl", parse_string, pki_ttl),
        { SECTION_PKI, "owner", parse_owner, offsetof(agent_config, pki_uid), offsetof(agent_config, pki_gid) },
        C(PKI, "local_key", parse_yes_no, pki_local_key),
        C(PKI, "cert_file", parse_abs_path, cert_file),
        C(PKI, "key_file", parse_abs_path, key_file),
        C(PKI, "ca_file", parse_abs_path, ca_file),

        T("mount", parse_string, mount),
        T("role", parse_string, role),
        T("common_name", parse_expanded, common_name),
        T("organization", parse_list, organization),
        T("alt_names", parse_expanded_list, alt_names),
        T("ip_sans", parse_expanded_list, ip_sans),
        T("ttl", parse_string, ttl),
        T("local_key", parse_yes_no, local_key),
        T("cert_file", parse_abs_path, cert_file),
        T("key_file", parse_abs_path, key_file),
        T("ca_file", parse_abs_path, ca_file),
        T("mode", parse_file_mode, mode),
        OWNER(CERTIFICATE, agent_config_cert),
        T("reload", parse_list, reload),
        T("restart", parse_list, restart),

        K("file", parse_abs_path, file),
        K("certificate", parse_string, certificate),
        K("server", parse_expanded_url, server),
        K("cluster", parse_string, cluster),
        K("user", parse_string, user),
        K("mode", parse_file_mode, mode),
        OWNER(KUBECONFIG, agent_config_kubeconfig),

        E("file", parse_abs_path, file),
        E("mode", parse_file_mode, mode),
        OWNER(ENVIRONMENT, agent_config_env),

        C(ETCD, "client_port", parse_port, etcd_client_port),
        C(ETCD, "peer_port", parse_port, etcd_peer_port),
        C(ETCD, "data_dir", parse_abs_path, etcd_data_dir),
        C(ETCD, "name_prefix", parse_string, etcd_name_prefix),
        C(ETCD, "env_file", parse_abs_path, etcd_env_file),
        C(ETCD, "deadline_ms", parse_deadline_ms, etcd_deadline_ms),

        C(NODE, "kubeconfig", parse_abs_path, node_kubeconfig),
        C(NODE, "kubelet_config", parse_abs_path, node_kubelet_config),
        C(NODE, "ca_file", parse_abs_path, node_ca_file),
        C(NODE, "cert_file", parse_abs_path, node_cert_file),
        C(NODE, "key_file", parse_abs_path, node_key_file),
        C(NODE, "env_file", parse_abs_path, node_env_file),
        C(NODE, "discovery_deadline_ms", parse_deadline_ms, node_discovery_deadline_ms),
        C(NODE, "csr_deadline_ms", parse_deadline_ms, node_csr_deadline_ms),
        C(NODE, "ready_deadline_ms", parse_deadline_ms, node_ready_deadline_ms),

        C(CONTROL_PLANE, "endpoint", parse_expanded_url, cp_endpoint),
        C(CONTROL_PLANE, "etcd_pool", parse_string, cp_etcd_pool),
        C(CONTROL_PLANE, "etcd_port", parse_port, cp_etcd_port),
        C(CONTROL_PLANE, "apiserver_certificate", parse_string, cp_apiserver_cert),
        C(CONTROL_PLANE, "etcd_certificate", parse_string, cp_etcd_cert),
        C(CONTROL_PLANE, "kubelet_certificate", parse_string, cp_kubelet_cert),
        C(CONTROL_PLANE, "front_proxy_certificate", parse_string, cp_front_proxy_cert),
        C(CONTROL_PLANE, "admin_certificate", parse_string, cp_admin_cert),
        C(CONTROL_PLANE, "controller_manager_kubeconfig", parse_string, cp_controller_manager_kubeconfig),
        C(CONTROL_PLANE, "scheduler_kubeconfig", parse_string, cp_scheduler_kubeconfig),
        C(CONTROL_PLANE, "service_account_secret", parse_string, cp_service_account_secret),
        C(CONTROL_PLANE, "encryption_secret", parse_string, cp_encryption_secret),
        C(CONTROL_PLANE, "bootstrap_token_secret", parse_string, cp_bootstrap_token_secret),
        C(CONTROL_PLANE, "cluster_signing_secret", parse_string, cp_cluster_signing_secret),
        C(CONTROL_PLANE, "encryption_provider", parse_encryption_provider, cp_encryption_provider),
        C(CONTROL_PLANE, "service_cidr", parse_cidr, cp_service_cidr),
        C(CONTROL_PLANE, "cluster_cidr", parse_cidr, cp_cluster_cidr),
        C(CONTROL_PLANE, "secure_port", parse_port, cp_secure_port),
        C(CONTROL_PLANE, "pki_dir", parse_abs_path, cp_pki_dir),
        C(CONTROL_PLANE, "encryption_config", parse_abs_path, cp_encryption_config),
        C(CONTROL_PLANE, "env_file", parse_abs_path, cp_env_file),
        C(CONTROL_PLANE, "etcd_deadline_ms", parse_deadline_ms, cp_etcd_deadline_ms),
        C(CONTROL_PLANE, "ready_deadline_ms", parse_deadline_ms, cp_ready_deadline_ms),
        C(CONTROL_PLANE, "bootstrap_deadline_ms", parse_deadline_ms, cp_bootstrap_deadline_ms),

        C(UNITS, "mode", parse_units_mode, units_exec),
        C(UNITS, "start", parse_list, units),
        C(UNITS, "exec_start", parse_string, exec_start),
};

#undef C
#undef S
#undef T
#undef K
#undef E
#undef OWNER

/* An environment variable name as systemd's EnvironmentFile= takes it, upper-case only here so
 * that it cannot be mistaken for a setting of the section. */
static bool env_name_valid(const char *s) {
        if (!(*s >= 'A' && *s <= 'Z') && *s != '_')
                return false;
        for (; *s; s++)
                if (!(*s >= 'A' && *s <= 'Z') && !(*s >= '0' && *s <= '9') && *s != '_')
                        return false;
        return true;
}

/* The section being filled: the config, or the last of a repeatable section's array. */
static void *section_base(agent_config *c, unsigned sec) {
        switch (sec) {
        case SECTION_SECRET: return &c->secrets[c->n_secrets - 1];
        case SECTION_CERTIFICATE: return &c->certs[c->n_certs - 1];
        case SECTION_KUBECONFIG: return &c->kubeconfigs[c->n_kubeconfigs - 1];
        case SECTION_ENVIRONMENT: return &c->envs[c->n_envs - 1];
        default: return c;
        }
}

/* Applies one key. Returns 0, -ENOENT for an unknown key, -EEXIST for an environment variable
 * set twice, or a parser's error. */
static int apply_key(agent_config *c, unsigned sec, const char *key, const char *v, bool resolve) {
        void *base = section_base(c, sec);
        if (sec == SECTION_ENVIRONMENT && env_name_valid(key)) {
                agent_config_env *e = base;
                size_t n = strlen(key);
                if (strv_env_get(e->vars, key, n))
                        return -EEXIST;
                return expands(v) ? strv_pushf(&e->vars, "%s=%s", key, v) : -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(config_items); i++)
                if (config_items[i].section == sec && streq(config_items[i].key, key))
                        return config_items[i].parse(v, base, &config_items[i], resolve);
        return -ENOENT;
}

/* A section name: [A-Za-z0-9_.-], 1..64 bytes. */
static bool section_name_valid(const char *s) {
        size_t n = strlen(s);
        return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* The line of an earlier section of kind sec called name, or 0. */
static unsigned named_section_line(const agent_config *c, unsigned sec, const char *name) {
        switch (sec) {
        case SECTION_CERTIFICATE:
                for (size_t i = 0; i < c->n_certs; i++)
                        if (streq(c->certs[i].name, name))
                                return c->certs[i].line;
                return 0;
        case SECTION_KUBECONFIG:
                for (size_t i = 0; i < c->n_kubeconfigs; i++)
                        if (streq(c->kubeconfigs[i].name, name))
                                return c->kubeconfigs[i].line;
                return 0;
        default:
                for (size_t i = 0; i < c->n_envs; i++)
                        if (streq(c->envs[i].name, name))
                                return c->envs[i].line;
                return 0;
        }
}

/* Append a new, defaulted section of kind sec called name. Returns 0 or -ENOMEM. */
static int add_named_section(agent_config *c, unsigned sec, const char *name, unsigned line) {
        _cleanup_free_ char *n = strdup(name);
        if (!n)
                return -ENOMEM;
        switch (sec) {
        case SECTION_CERTIFICATE: {
                agent_config_cert *a = reallocarray(c->certs, c->n_certs + 1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                c->certs = a;
                a[c->n_certs++] = (agent_config_cert){ .name = TAKE_PTR(n), .local_key = true, .mode = 0600,
                                                       .uid = (uid_t) -1, .gid = (gid_t) -1, .line = line };
                return 0;
        }
        case SECTION_KUBECONFIG: {
                agent_config_kubeconfig *a = reallocarray(c->kubeconfigs, c->n_kubeconfigs + 1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                c->kubeconfigs = a;
                a[c->n_kubeconfigs++] = (agent_config_kubeconfig){ .name = TAKE_PTR(n), .mode = 0600, .uid = (uid_t) -1,
                                                                   .gid = (gid_t) -1, .line = line };
                return 0;
        }
        default: {
                agent_config_env *a = reallocarray(c->envs, c->n_envs + 1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                c->envs = a;
                a[c->n_envs++] = (agent_config_env){ .name = TAKE_PTR(n), .mode = 0644, .uid = (uid_t) -1,
                                                     .gid = (gid_t) -1, .line = line };
                return 0;
        }
        }
}

const agent_config_cert *agent_config_find_cert(const agent_config *c, const char *name) {
        for (size_t i = 0; i < c->n_certs; i++)
                if (streq(c->certs[i].name, name))
                        return &c->certs[i];
        return NULL;
}

const agent_config_kubeconfig *agent_config_find_kubeconfig(const agent_config *c, const char *name) {
        for (size_t i = 0; i < c->n_kubeconfigs; i++)
                if (streq(c->kubeconfigs[i].name, name))
                        return &c->kubeconfigs[i];
        return NULL;
}

static int fill_defaults(agent_config *c) {
        struct {
                char **field;
                const char *value;
        } defaults[] = {
                { &c->state_dir, "/var/lib/bootagent" },
                { &c->metadata_url, "http://169.254.169.254" },
                { &c->vault_auth_mount, "exoscale" },
                { &c->vault_role, agent_config_role_to_string(c->role) },
                { &c->kv_mount, "secret" },
                { &c->cloud_api_secret, "bootagent/cloud-api" },
                { &c->pki_mount, "pki" },
                { &c->etcd_data_dir, "/var/lib/etcd" },
                { &c->etcd_name_prefix, "etcd-" },
                { &c->etcd_env_file, "/etc/default/etcd-bootagent" },
                { &c->node_kubeconfig, "/var/lib/kubelet/kubeconfig" },
                { &c->node_kubelet_config, "/var/lib/kubelet/config.yaml" },
                { &c->node_ca_file, "/var/lib/kubelet/pki/ca.crt" },
                { &c->node_cert_file, "/var/lib/kubelet/pki/kubelet-client.crt" },
                { &c->node_key_file, "/var/lib/kubelet/pki/kubelet-client.key" },
                { &c->node_env_file, "/etc/default/kubelet-bootagent" },
                { &c->cp_apiserver_cert, "apiserver" },
                { &c->cp_etcd_cert, "apiserver-etcd-client" },
                { &c->cp_admin_cert, "admin" },
                { &c->cp_encryption_provider, "secretbox" },
                { &c->cp_service_cidr, "10.96.0.0/12" },
                { &c->cp_pki_dir, "/etc/kubernetes/pki" },
                { &c->cp_encryption_config, "/etc/kubernetes/encryption-config.yaml" },
                { &c->cp_env_file, "/etc/default/kubernetes-bootagent" },
        };
        for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
                if (!*defaults[i].field && free_and_strdup(defaults[i].field, defaults[i].value) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < c->n_certs; i++)
                if ((!c->certs[i].mount && free_and_strdup(&c->certs[i].mount, "pki") < 0) ||
                    (!c->certs[i].common_name && free_and_strdup(&c->certs[i].common_name, "${instance_id}") < 0))
                        return -ENOMEM;
        for (size_t i = 0; i < c->n_kubeconfigs; i++)
                if ((!c->kubeconfigs[i].cluster && free_and_strdup(&c->kubeconfigs[i].cluster, "kubernetes") < 0) ||
                    (!c->kubeconfigs[i].user && free_and_strdup(&c->kubeconfigs[i].user, c->kubeconfigs[i].name) < 0))
                        return -ENOMEM;
        if (!c->units && c->role == AGENT_CONFIG_ROLE_ETCD && strv_push(&c->units, "etcd.service") < 0)
                return -ENOMEM;
        if (!c->units && c->role == AGENT_CONFIG_ROLE_NODE && strv_push(&c->units, "kubelet.service") < 0)
                return -ENOMEM;
        if (!c->units && c->role == AGENT_CONFIG_ROLE_CONTROL_PLANE && c->cp_configured &&
            (strv_push(&c->units, "kube-apiserver.service") < 0 || strv_push(&c->units, "kube-controller-manager.service") < 0 ||
             strv_push(&c->units, "kube-scheduler.service") < 0))
                return -ENOMEM;
        /* The optional sections are used when they exist under their default names. */
        if (!c->cp_kubelet_cert && agent_config_find_cert(c, "apiserver-kubelet-client") &&
            free_and_strdup(&c->cp_kubelet_cert, "apiserver-kubelet-client") < 0)
                return -ENOMEM;
        if (!c->cp_front_proxy_cert && agent_config_find_cert(c, "front-proxy-client") &&
            free_and_strdup(&c->cp_front_proxy_cert, "front-proxy-client") < 0)
                return -ENOMEM;
        if (!c->cp_controller_manager_kubeconfig && agent_config_find_kubeconfig(c, "controller-manager") &&
            free_and_strdup(&c->cp_controller_manager_kubeconfig, "controller-manager") < 0)
                return -ENOMEM;
        if (!c->cp_scheduler_kubeconfig && agent_config_find_kubeconfig(c, "scheduler") &&
            free_and_strdup(&c->cp_scheduler_kubeconfig, "scheduler") < 0)
                return -ENOMEM;
        return 0;
}

static bool secret_complete(const agent_config_secret *s) { return s->path && s->field && s->file; }

#define FAIL(line, ...)                                                             \
        do {                                                                        \
                if (err) {                                                          \
                        buf_printf(err, "%s:%u: ", filename, (line));               \
                        buf_printf(err, __VA_ARGS__);                               \
                }                                                                   \
                return -EINVAL;                                                     \
        } while (0)

static int parse(const char *text, const char *filename, bool resolve, agent_config **ret, buf *err) {
        _cleanup_(agent_config_freep) agent_config *c = calloc(1, sizeof(*c));
        _cleanup_free_ char *copy = strdup(text);
        unsigned sec = SECTION_NONE, line = 0, secret_line = 0, vault_line = 0;
        int r;

        if (!c || !copy)
                return -ENOMEM;
        c->role = (agent_config_role) -1;
        c->renew_fraction = 2.0 / 3.0;
        c->metadata_deadline_ms = 60000;
        c->vault_deadline_ms = 60000;
        c->etcd_deadline_ms = 120000;
        c->node_discovery_deadline_ms = 300000;
        c->node_csr_deadline_ms = 300000;
        c->node_ready_deadline_ms = 300000;
        c->cp_etcd_deadline_ms = 60000;
        c->cp_ready_deadline_ms = 120000;
        c->cp_bootstrap_deadline_ms = 60000;
        c->cp_etcd_port = 2379;
        c->cp_secure_port = 6443;
        c->pki_uid = (uid_t) -1; /* keep the agent's own (root) */
        c->pki_gid = (gid_t) -1;
        c->etcd_client_port = 2379;
        c->etcd_peer_port = 2380;

        for (char *next = copy; next; ) {
                char *s = next, *nl = strchr(s, '\n');
                if (nl)
                        *nl = 0;
                next = nl ? nl + 1 : NULL;
                line++;
                s = parse_strip(s);

                if (*s == 0 || *s == '#')
                        continue;
                if (*s == '[') {
                        if (s[strlen(s) - 1] != ']')
                                FAIL(line, "section header without closing ']'");
                        s[strlen(s) - 1] = 0;
                        s = parse_strip(s + 1);
                        /* "[certificate NAME]": the kind, then the name after blanks. */
                        char *name = s + strcspn(s, " \t");
                        if (*name) {
                                *name++ = 0;
                                name = parse_strip(name);
                        }
                        sec = SECTION_NONE;
                        for (unsigned i = 1; i < ELEMENTSOF(section_names); i++)
                                if (streq(s, section_names[i]))
                                        sec = i;
                        if (sec == SECTION_NONE)
                                FAIL(line, "unknown section [%s%s%s]", s, *name ? " " : "", name);
                        if (section_named(sec)) {
                                if (!*name)
                                        FAIL(line, "[%s] needs a name: [%s NAME]", s, s);
                                if (!section_name_valid(name))
                                        FAIL(line, "invalid name '%s' (letters, digits, '_', '.', '-'; at most 64)", name);
                                unsigned first = named_section_line(c, sec, name);
                                if (first)
                                        FAIL(line, "duplicate [%s %s] (first at line %u)", s, name, first);
                                if (add_named_section(c, sec, name, line) < 0)
                                        return -ENOMEM;
                                continue;
                        }
                        if (*name)
                                FAIL(line, "[%s] takes no name", s);
                        if (sec == SECTION_VAULT && !vault_line)
                                vault_line = line;
                        if (sec == SECTION_CONTROL_PLANE)
                                c->cp_configured = true;
                        if (sec != SECTION_SECRET)
                                continue;
                        /* Each [secret] starts a new one; the one before must be complete. */
                        if (c->n_secrets > 0 && !secret_complete(&c->secrets[c->n_secrets - 1]))
                                FAIL(secret_line, "[secret] needs path, field and file");
                        agent_config_secret *a = reallocarray(c->secrets, c->n_secrets + 1, sizeof(*a));
                        if (!a)
                                return -ENOMEM;
                        c->secrets = a;
                        c->secrets[c->n_secrets++] = (agent_config_secret){ .mode = 0600 };
                        secret_line = line;
                        continue;
                }
                char *eq = strchr(s, '=');
                if (!eq)
                        FAIL(line, "expected 'key = value'");
                *eq = 0;
                char *key = parse_strip(s), *value = parse_strip(eq + 1);
                if (sec == SECTION_NONE)
                        FAIL(line, "'%s' outside of a section", key);
                if (*value == 0)
                        FAIL(line, "empty value for '%s'", key);
                r = apply_key(c, sec, key, value, resolve);
                if (r == -ENOENT)
                        FAIL(line, "unknown key '%s' in [%s]", key, section_names[sec]);
                if (r == -EEXIST)
                        FAIL(line, "'%s' is set twice", key);
                if (r == -ENOMEM)
                        return r;
                if (r == -ESRCH)
                        FAIL(line, "unknown user or group in '%s'", value);
                if (r < 0)
                        FAIL(line, "invalid value for '%s': '%s'", key, value);
                /* Where a kubeconfig names its certificate, for the whole-file check. */
                if (sec == SECTION_KUBECONFIG && streq(key, "certificate"))
                        c->kubeconfigs[c->n_kubeconfigs - 1].certificate_line = line;
        }

        /* Whole-file checks, reported at the last line. */
        if (c->n_secrets > 0 && !secret_complete(&c->secrets[c->n_secrets - 1]))
                FAIL(secret_line, "[secret] needs path, field and file");
        if (c->role == (agent_config_role) -1)
                FAIL(line, "missing 'role' in [agent]");
        /* The node role joins with its user-data alone: [vault] is optional there, but a [vault]
         * section needs its address, and what reads Vault needs Vault. */
        if (!c->vault_addr && (c->role != AGENT_CONFIG_ROLE_NODE || vault_line))
                FAIL(vault_line ? vault_line : line, "missing 'address' in [vault]");
        if (!c->vault_addr && c->n_secrets > 0)
                FAIL(secret_line, "[secret] needs Vault: no [vault] address");
        if (!c->vault_addr && c->pki_role)
                FAIL(line, "[pki] needs Vault: no [vault] address");
        if (!c->vault_addr && c->n_certs > 0)
                FAIL(c->certs[0].line, "[certificate %s] needs Vault: no [vault] address", c->certs[0].name);
        if (c->pki_role && (!c->cert_file || !c->key_file || !c->ca_file))
                FAIL(line, "[pki] role needs cert_file, key_file and ca_file");
        if (c->role == AGENT_CONFIG_ROLE_ETCD && !c->pki_role)
                FAIL(line, "role etcd needs a [pki] role (etcd runs with TLS)");
        if (c->units_exec && !c->exec_start)
                FAIL(line, "'mode = exec' in [units] needs 'exec_start'");
        if (c->units_exec && strv_length(c->units) > 1)
                FAIL(line, "'mode = exec' runs exactly one unit");
        if (c->etcd_client_port == c->etcd_peer_port)
                FAIL(line, "etcd client_port and peer_port must differ");
        for (size_t i = 0; i < c->n_certs; i++) {
                const agent_config_cert *t = &c->certs[i];
                if (!t->role || !t->cert_file || !t->key_file || !t->ca_file)
                        FAIL(t->line, "[certificate %s] needs role, cert_file, key_file and ca_file", t->name);
        }
        for (size_t i = 0; i < c->n_kubeconfigs; i++) {
                const agent_config_kubeconfig *k = &c->kubeconfigs[i];
                if (!k->file || !k->certificate || !k->server)
                        FAIL(k->line, "[kubeconfig %s] needs file, certificate and server", k->name);
                if (!agent_config_find_cert(c, k->certificate))
                        FAIL(k->certificate_line, "[kubeconfig %s]: no [certificate %s]", k->name, k->certificate);
        }
        for (size_t i = 0; i < c->n_envs; i++)
                if (!c->envs[i].file)
                        FAIL(c->envs[i].line, "[environment %s] needs file", c->envs[i].name);

        if (c->role == AGENT_CONFIG_ROLE_CONTROL_PLANE && c->cp_configured) {
                static const struct {
                        size_t offset;
                        const char *key;
                } required[] = {
                        { offsetof(agent_config, cp_endpoint), "endpoint" },
                        { offsetof(agent_config, cp_etcd_pool), "etcd_pool" },
                        { offsetof(agent_config, cp_service_account_secret), "service_account_secret" },
                        { offsetof(agent_config, cp_encryption_secret), "encryption_secret" },
                        { offsetof(agent_config, cp_bootstrap_token_secret), "bootstrap_token_secret" },
                };
                for (size_t i = 0; i < ELEMENTSOF(required); i++)
                        if (!*FIELD(char *, c, required[i].offset))
                                FAIL(line, "role control-plane needs '%s' in [control-plane]", required[i].key);
        }
        r = fill_defaults(c);
        if (r < 0)
                return r;
        if (c->role == AGENT_CONFIG_ROLE_CONTROL_PLANE && c->cp_configured) {
                /* Every certificate and kubeconfig the role names must exist. */
                const char *certs[][2] = { { c->cp_apiserver_cert, "apiserver_certificate" },
                                           { c->cp_etcd_cert, "etcd_certificate" },
                                           { c->cp_admin_cert, "admin_certificate" },
                                           { c->cp_kubelet_cert, "kubelet_certificate" },
                                           { c->cp_front_proxy_cert, "front_proxy_certificate" } };
                const char *kcs[][2] = { { c->cp_controller_manager_kubeconfig, "controller_manager_kubeconfig" },
                                         { c->cp_scheduler_kubeconfig, "scheduler_kubeconfig" } };
                for (size_t i = 0; i < ELEMENTSOF(certs); i++)
                        if (certs[i][0] && !agent_config_find_cert(c, certs[i][0]))
                                FAIL(line, "role control-plane: no [certificate %s] (%s)", certs[i][0], certs[i][1]);
                for (size_t i = 0; i < ELEMENTSOF(kcs); i++)
                        if (kcs[i][0] && !agent_config_find_kubeconfig(c, kcs[i][0]))
                                FAIL(line, "role control-plane: no [kubeconfig %s] (%s)", kcs[i][0], kcs[i][1]);
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int agent_config_parse(const char *text, const char *filename, agent_config **ret, buf *err) {
        return parse(text, filename, true, ret, err);
}

int agent_config_check(const char *text, const char *filename, buf *err) {
        _cleanup_(agent_config_freep) agent_config *c = NULL;
        return parse(text, filename, false, &c, err);
}

int agent_config_load(const char *path, agent_config **ret, buf *err) {
        _cleanup_free_ char *text = NULL;
        int r = read_file(path, 1024 * 1024, &text, NULL);
        if (r < 0) {
                if (err)
                        buf_printf(err, "%s: %s", path, strerror(-r));
                return r;
        }
        return agent_config_parse(text, path, ret, err);
}
