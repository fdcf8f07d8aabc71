#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "strv.h"

static const char *const role_names[] = {
        [ROLE_ETCD] = "etcd",
        [ROLE_VAULT] = "vault",
        [ROLE_CONTROL_PLANE] = "control-plane",
        [ROLE_NODE] = "node",
};

const char *role_to_string(agent_role r) { return role_names[r]; }

char *config_path(const char *root, const char *path) {
        char *s;
        if (asprintf(&s, "%s%s", strempty(root), path) < 0)
                return NULL;
        return s;
}

void config_free(agent_config *c) {
        if (!c)
                return;
        free(c->state_dir);
        free(c->metadata_url);
        free(c->vault_addr);
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
        free(c->etcd_data_dir);
        free(c->etcd_name_prefix);
        free(c->etcd_env_file);
        strv_free(c->units);
        free(c->exec_start);
        free(c);
}

static char *strip(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char) s[l - 1]))
                s[--l] = 0;
        return s;
}

static int set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int parse_bool(const char *v, bool *ret) {
        if (streq(v, "yes") || streq(v, "true") || streq(v, "1"))
                *ret = true;
        else if (streq(v, "no") || streq(v, "false") || streq(v, "0"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int parse_ulong(const char *v, unsigned long min, unsigned long max, unsigned long *ret) {
        char *end;
        errno = 0;
        if (!isdigit((unsigned char) v[0]))
                return -EINVAL;
        unsigned long n = strtoul(v, &end, 10);
        if (errno || *end || n < min || n > max)
                return -EINVAL;
        *ret = n;
        return 0;
}

/* "600", "0600": octal permission bits. */
static int parse_mode(const char *v, mode_t *ret) {
        char *end;
        errno = 0;
        unsigned long m = strtoul(v, &end, 8);
        if (errno || *end || end == v || m > 07777)
                return -EINVAL;
        *ret = (mode_t) m;
        return 0;
}

/* A user or group name (or number) as useradd accepts it. */
static bool owner_name_valid(const char *s) {
        const char *allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
        return s[0] && s[0] != '-' && strspn(s, allowed) == strlen(s);
}

/* "uid:gid" numbers, or "user[:group]" names resolved on the image. Without resolve (a check on
 * another host than the image), names are only checked to be names and the owner is left as is. */
static int parse_owner(const char *v, bool resolve, uid_t *ret_uid, gid_t *ret_gid) {
        _cleanup_free_ char *user = strdup(v);
        if (!user)
                return -ENOMEM;
        char *group = strchr(user, ':');
        if (group)
                *group++ = 0;
        unsigned long n;
        uid_t uid;
        gid_t gid;
        if (!resolve)
                return owner_name_valid(user) && (!group || owner_name_valid(group)) ? 0 : -EINVAL;
        if (parse_ulong(user, 0, 0x7fffffff, &n) >= 0) {
                uid = (uid_t) n;
                gid = (gid_t) n;
        } else {
                struct passwd *pw = getpwnam(user);
                if (!pw)
                        return -ESRCH;
                uid = pw->pw_uid;
                gid = pw->pw_gid;
        }
        if (group) {
                if (parse_ulong(group, 0, 0x7fffffff, &n) >= 0)
                        gid = (gid_t) n;
                else {
                        struct group *gr = getgrnam(group);
                        if (!gr)
                                return -ESRCH;
                        gid = gr->gr_gid;
                }
        }
        *ret_uid = uid;
        *ret_gid = gid;
        return 0;
}

typedef enum section {
        SECTION_NONE,
        SECTION_AGENT,
        SECTION_METADATA,
        SECTION_VAULT,
        SECTION_SECRET,
        SECTION_PKI,
        SECTION_ETCD,
        SECTION_UNITS,
} section;

static const char *const section_names[] = {
        [SECTION_AGENT] = "agent", [SECTION_METADATA] = "metadata", [SECTION_VAULT] = "vault",
        [SECTION_SECRET] = "secret", [SECTION_PKI] = "pki", [SECTION_ETCD] = "etcd",
        [SECTION_UNITS] = "units",
};

/* Applies one key. Returns 0, -ENOENT for an unknown key, -EINVAL for a bad value. */
static int apply_key(agent_config *c, section sec, const char *key, const char *v, bool resolve) {
        unsigned long n;
        int r;

        switch (sec) {
        case SECTION_AGENT:
                if (streq(key, "role")) {
                        for (size_t i = 0; i < ELEMENTSOF(role_names); i++)
                                if (streq(v, role_names[i])) {
                                        c->role = (agent_role) i;
                                        return 0;
                                }
                        return -EINVAL;
                }
                if (streq(key, "state_dir"))
                        return v[0] == '/' ? set_string(&c->state_dir, v) : -EINVAL;
                if (streq(key, "renew_fraction")) {
                        char *end;
                        double d = strtod(v, &end);
                        if (*end || end == v || !(d > 0.0 && d < 1.0))
                                return -EINVAL;
                        c->renew_fraction = d;
                        return 0;
                }
                break;
        case SECTION_METADATA:
                if (streq(key, "url"))
                        return startswith(v, "http://") || startswith(v, "https://") ? set_string(&c->metadata_url, v) : -EINVAL;
                if (streq(key, "deadline_ms")) {
                        if ((r = parse_ulong(v, 100, 3600000, &n)) < 0)
                                return r;
                        c->metadata_deadline_ms = (long) n;
                        return 0;
                }
                break;
        case SECTION_VAULT:
                if (streq(key, "address"))
                        return startswith(v, "http://") || startswith(v, "https://") ? set_string(&c->vault_addr, v) : -EINVAL;
                if (streq(key, "ca_file"))
                        return v[0] == '/' ? set_string(&c->vault_ca_file, v) : -EINVAL;
                if (streq(key, "auth_mount"))
                        return set_string(&c->vault_auth_mount, v);
                if (streq(key, "role"))
                        return set_string(&c->vault_role, v);
                if (streq(key, "kv_mount"))
                        return set_string(&c->kv_mount, v);
                if (streq(key, "cloud_api_secret"))
                        return set_string(&c->cloud_api_secret, v);
                if (streq(key, "deadline_ms")) {
                        if ((r = parse_ulong(v, 100, 3600000, &n)) < 0)
                                return r;
                        c->vault_deadline_ms = (long) n;
                        return 0;
                }
                break;
        case SECTION_SECRET: {
                secret_spec *s = &c->secrets[c->n_secrets - 1];
                if (streq(key, "path"))
                        return set_string(&s->path, v);
                if (streq(key, "field"))
                        return set_string(&s->field, v);
                if (streq(key, "file"))
                        return v[0] == '/' ? set_string(&s->file, v) : -EINVAL;
                if (streq(key, "mode"))
                        return parse_mode(v, &s->mode);
                if (streq(key, "owner"))
                        return parse_owner(v, resolve, &s->uid, &s->gid);
                break;
        }
        case SECTION_PKI:
                if (streq(key, "mount"))
                        return set_string(&c->pki_mount, v);
                if (streq(key, "role"))
                        return set_string(&c->pki_role, v);
                if (streq(key, "common_name"))
                        return set_string(&c->pki_common_name, v);
                if (streq(key, "alt_names")) {
                        strv_free(c->pki_alt_names);
                        c->pki_alt_names = NULL;
                        return strv_split(v, ", ", &c->pki_alt_names);
                }
                if (streq(key, "ip_sans")) {
                        strv_free(c->pki_ip_sans);
                        c->pki_ip_sans = NULL;
                        return strv_split(v, ", ", &c->pki_ip_sans);
                }
                if (streq(key, "ttl"))
                        return set_string(&c->pki_ttl, v);
                if (streq(key, "owner"))
                        return parse_owner(v, resolve, &c->pki_uid, &c->pki_gid);
                if (streq(key, "local_key"))
                        return parse_bool(v, &c->pki_local_key);
                if (streq(key, "cert_file"))
                        return v[0] == '/' ? set_string(&c->cert_file, v) : -EINVAL;
                if (streq(key, "key_file"))
                        return v[0] == '/' ? set_string(&c->key_file, v) : -EINVAL;
                if (streq(key, "ca_file"))
                        return v[0] == '/' ? set_string(&c->ca_file, v) : -EINVAL;
                break;
        case SECTION_ETCD:
                if (streq(key, "client_port") || streq(key, "peer_port")) {
                        if ((r = parse_ulong(v, 1, 65535, &n)) < 0)
                                return r;
                        *(streq(key, "client_port") ? &c->etcd_client_port : &c->etcd_peer_port) = (unsigned) n;
                        return 0;
                }
                if (streq(key, "data_dir"))
                        return v[0] == '/' ? set_string(&c->etcd_data_dir, v) : -EINVAL;
                if (streq(key, "name_prefix"))
                        return set_string(&c->etcd_name_prefix, v);
                if (streq(key, "env_file"))
                        return v[0] == '/' ? set_string(&c->etcd_env_file, v) : -EINVAL;
                if (streq(key, "deadline_ms")) {
                        if ((r = parse_ulong(v, 100, 3600000, &n)) < 0)
                                return r;
                        c->etcd_deadline_ms = (long) n;
                        return 0;
                }
                break;
        case SECTION_UNITS:
                if (streq(key, "mode")) {
                        if (streq(v, "exec"))
                                c->units_exec = true;
                        else if (streq(v, "systemd"))
                                c->units_exec = false;
                        else
                                return -EINVAL;
                        return 0;
                }
                if (streq(key, "start")) {
                        strv_free(c->units);
                        c->units = NULL;
                        return strv_split(v, ", ", &c->units);
                }
                if (streq(key, "exec_start"))
                        return set_string(&c->exec_start, v);
                break;
        case SECTION_NONE:
                break;
        }
        return -ENOENT;
}

static int fill_defaults(agent_config *c) {
        struct {
                char **field;
                const char *value;
        } defaults[] = {
                { &c->state_dir, "/var/lib/bootagent" },
                { &c->metadata_url, "http://169.254.169.254" },
                { &c->vault_auth_mount, "exoscale" },
                { &c->vault_role, role_to_string(c->role) },
                { &c->kv_mount, "secret" },
                { &c->cloud_api_secret, "bootagent/cloud-api" },
                { &c->pki_mount, "pki" },
                { &c->etcd_data_dir, "/var/lib/etcd" },
                { &c->etcd_name_prefix, "etcd-" },
                { &c->etcd_env_file, "/etc/default/etcd-bootagent" },
        };
        for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
                if (!*defaults[i].field && set_string(defaults[i].field, defaults[i].value) < 0)
                        return -ENOMEM;
        if (!c->units && c->role == ROLE_ETCD && strv_push(&c->units, "etcd.service") < 0)
                return -ENOMEM;
        return 0;
}

static bool secret_complete(const secret_spec *s) { return s->path && s->field && s->file; }

#define FAIL(line, ...)                                                             \
        do {                                                                        \
                if (err) {                                                          \
                        buf_printf(err, "%s:%u: ", filename, (line));               \
                        buf_printf(err, __VA_ARGS__);                               \
                }                                                                   \
                return -EINVAL;                                                     \
        } while (0)

static int parse(const char *text, const char *filename, bool resolve, agent_config **ret, buf *err) {
        _cleanup_(config_freep) agent_config *c = calloc(1, sizeof(*c));
        _cleanup_free_ char *copy = strdup(text);
        unsigned secret_line = 0;
        int r;

        if (!c || !copy)
                return -ENOMEM;
        c->role = (agent_role) -1;
        c->renew_fraction = 2.0 / 3.0;
        c->metadata_deadline_ms = 60000;
        c->vault_deadline_ms = 60000;
        c->etcd_deadline_ms = 120000;
        c->pki_uid = (uid_t) -1; /* keep the agent's own (root) */
        c->pki_gid = (gid_t) -1;
        c->etcd_client_port = 2379;
        c->etcd_peer_port = 2380;

        section sec = SECTION_NONE;
        unsigned line = 0;
        char *next = copy;
        while (next) {
                char *l = next;
                char *nl = strchr(l, '\n');
                if (nl)
                        *nl = 0;
                next = nl ? nl + 1 : NULL;
                line++;
                char *s = strip(l);

                if (*s == 0 || *s == '#')
                        continue;
                if (*s == '[') {
                        size_t len = strlen(s);
                        if (s[len - 1] != ']')
                                FAIL(line, "section header without closing ']'");
                        s[len - 1] = 0;
                        s = strip(s + 1);
                        sec = SECTION_NONE;
                        for (size_t i = 1; i < ELEMENTSOF(section_names); i++)
                                if (streq(s, section_names[i]))
                                        sec = (section) i;
                        if (sec == SECTION_NONE)
                                FAIL(line, "unknown section [%s]", s);
                        if (sec == SECTION_SECRET) {
                                if (c->n_secrets > 0 && !secret_complete(&c->secrets[c->n_secrets - 1]))
                                        FAIL(secret_line, "[secret] needs path, field and file");
                                secret_spec *a = reallocarray(c->secrets, c->n_secrets + 1, sizeof(*a));
                                if (!a)
                                        return -ENOMEM;
                                c->secrets = a;
                                c->secrets[c->n_secrets++] = (secret_spec){ .mode = 0600 };
                                secret_line = line;
                        }
                        continue;
                }
                char *eq = strchr(s, '=');
                if (!eq)
                        FAIL(line, "expected 'key = value'");
                *eq = 0;
                char *key = strip(s), *value = strip(eq + 1);
                if (sec == SECTION_NONE)
                        FAIL(line, "'%s' outside of a section", key);
                if (*value == 0)
                        FAIL(line, "empty value for '%s'", key);
                r = apply_key(c, sec, key, value, resolve);
                if (r == -ENOENT)
                        FAIL(line, "unknown key '%s' in [%s]", key, section_names[sec]);
                if (r == -ENOMEM)
                        return r;
                if (r == -ESRCH)
                        FAIL(line, "unknown user or group in '%s'", value);
                if (r < 0)
                        FAIL(line, "invalid value for '%s': '%s'", key, value);
        }

        /* Whole-file checks, reported at the last line. */
        if (c->n_secrets > 0 && !secret_complete(&c->secrets[c->n_secrets - 1]))
                FAIL(secret_line, "[secret] needs path, field and file");
        if (c->role == (agent_role) -1)
                FAIL(line, "missing 'role' in [agent]");
        if (!c->vault_addr)
                FAIL(line, "missing 'address' in [vault]");
        if (c->pki_role && (!c->cert_file || !c->key_file || !c->ca_file))
                FAIL(line, "[pki] role needs cert_file, key_file and ca_file");
        if (c->role == ROLE_ETCD && !c->pki_role)
                FAIL(line, "role etcd needs a [pki] role (etcd runs with TLS)");
        if (c->units_exec && !c->exec_start)
                FAIL(line, "'mode = exec' in [units] needs 'exec_start'");
        if (c->units_exec && strv_length(c->units) > 1)
                FAIL(line, "'mode = exec' runs exactly one unit");
        if (c->etcd_client_port == c->etcd_peer_port)
                FAIL(line, "etcd client_port and peer_port must differ");

        r = fill_defaults(c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int config_parse(const char *text, const char *filename, agent_config **ret, buf *err) {
        return parse(text, filename, true, ret, err);
}

int config_check(const char *text, const char *filename, buf *err) {
        _cleanup_(config_freep) agent_config *c = NULL;
        return parse(text, filename, false, &c, err);
}

int config_load(const char *path, agent_config **ret, buf *err) {
        _cleanup_free_ char *text = NULL;
        int r = read_file(path, 1024 * 1024, &text, NULL);
        if (r < 0) {
                if (err)
                        buf_printf(err, "%s: %s", path, strerror(-r));
                return r;
        }
        return config_parse(text, path, ret, err);
}
