/* bootagent configuration: /etc/bootagent/agent.conf, baked into the template by the recipe.
 *
 * INI-style: "[section]" headers, "key = value" lines, '#' comments. Sections: [agent],
 * [metadata], [vault], [secret] (repeatable: one KV v2 read each), [pki], [etcd], [units].
 * Every file path is absolute and is prefixed with --root at use (see config_path()). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "macro.h"

typedef enum agent_role {
        ROLE_ETCD,
        ROLE_VAULT,
        ROLE_CONTROL_PLANE,
        ROLE_NODE,
} agent_role;

typedef struct secret_spec {
        char *path;   /* KV v2 path under the mount, e.g. "etcd/shared" */
        char *field;  /* key inside .data.data */
        char *file;   /* destination */
        mode_t mode;  /* default 0600 */
        uid_t uid;    /* default 0 */
        gid_t gid;
} secret_spec;

typedef struct agent_config {
        agent_role role;
        char *state_dir;          /* default /var/lib/bootagent */
        double renew_fraction;    /* re-issue certificates past this part of their lifetime */

        char *metadata_url;       /* default http://169.254.169.254 */
        long metadata_deadline_ms;

        char *vault_addr;         /* e.g. https://vault.internal:8200 */
        char *vault_ca_file;      /* NULL: system trust */
        char *vault_auth_mount;   /* default "exoscale" */
        char *vault_role;         /* default: the role name */
        char *kv_mount;           /* default "secret" */
        char *cloud_api_secret;   /* KV path of {api_key, api_secret, api_url}: "bootagent/cloud-api" */
        long vault_deadline_ms;

        secret_spec *secrets;
        size_t n_secrets;

        char *pki_mount;          /* default "pki" */
        char *pki_role;           /* NULL: no certificate */
        char *pki_common_name;    /* default: instance id */
        char **pki_alt_names;     /* extra DNS SANs */
        char **pki_ip_sans;       /* extra IP SANs besides local-ipv4 */
        char *pki_ttl;            /* e.g. "24h"; NULL: role default */
        bool pki_local_key;       /* generate the key locally and send a CSR (pki/sign) */
        char *cert_file, *key_file, *ca_file;
        uid_t pki_uid;            /* owner of key and certificate ("owner = etcd"); default root */
        gid_t pki_gid;

        unsigned etcd_client_port, etcd_peer_port;
        char *etcd_data_dir;      /* default /var/lib/etcd; recreated 0700, owned like the key */
        char *etcd_name_prefix;   /* default "etcd-" */
        char *etcd_env_file;      /* default /etc/default/etcd-bootagent */
        long etcd_deadline_ms;    /* join + promote */

        bool units_exec;          /* "units = exec": run exec_start ourselves (hosts without systemd) */
        char **units;             /* units to start, in order */
        char *exec_start;         /* template for units = exec; ${VAR} from the role's environment */
} agent_config;

/* Parse configuration text. On error returns -EINVAL with "FILE:LINE: reason" in err. */
int config_parse(const char *text, const char *filename, agent_config **ret, buf *err);
/* Check configuration text on another host than the image (the builder, before a build): like
 * config_parse, but user and group names are only checked to be well-formed, not looked up.
 * Returns 0, -EINVAL with "FILE:LINE: reason" in err, or -ENOMEM. */
int config_check(const char *text, const char *filename, buf *err);
/* Read and parse a file (capped at 1 MiB). */
int config_load(const char *path, agent_config **ret, buf *err);
void config_free(agent_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(agent_config *, config_free);

const char *role_to_string(agent_role r);

/* root + path as a new string (root may be NULL or ""). NULL on ENOMEM. */
char *config_path(const char *root, const char *path);
