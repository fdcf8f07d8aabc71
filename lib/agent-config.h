/* bootagent configuration: /etc/bootagent/agent.conf, baked into the template by the recipe.
 * bootagent reads it on the image; imgbuild checks a recipe's copy before a build (in lib/ so that
 * both use one parser and the builder needs nothing from bootagent/).
 *
 * INI-style: "[section]" headers, "key = value" lines, '#' comments (whole lines only: a '#' or ';'
 * inside a value is part of it). Sections: [agent], [metadata], [vault], [secret] (repeatable: one
 * KV v2 read each), [pki] (the role's one unnamed certificate), [certificate NAME], [kubeconfig
 * NAME], [environment NAME] (named, repeatable, names unique per kind), [etcd], [node],
 * [control-plane], [units].
 * Every file path is absolute and is prefixed with --root at use (see agent_config_path()), except
 * [vault] ca_file and the sockets of [metadata] and [vault], which name the host's services as url
 * and address do.
 *
 * Values of the named sections marked "expanded" may use ${instance_id}, ${zone}, ${local_ipv4}
 * and ${public_ipv4} (the instance's identity, AGENT_CONFIG_VARIABLES); any other ${NAME} is an
 * error at parse time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "macro.h"

typedef enum agent_config_role {
        AGENT_CONFIG_ROLE_ETCD,
        AGENT_CONFIG_ROLE_VAULT,
        AGENT_CONFIG_ROLE_CONTROL_PLANE,
        AGENT_CONFIG_ROLE_NODE,
} agent_config_role;

/* One [secret] section. */
typedef struct agent_config_secret {
        char *path;   /* KV v2 path under the mount, e.g. "etcd/shared" */
        char *field;  /* key inside .data.data */
        char *file;   /* destination */
        mode_t mode;  /* default 0600 */
        uid_t uid;    /* default 0 */
        gid_t gid;
} agent_config_secret;

/* One [certificate NAME] section: a certificate from Vault PKI, by default signed from a key made
 * on the instance (pki/sign), else issued with Vault's key (pki/issue, "local_key = no"). */
typedef struct agent_config_cert {
        char *name;
        char *mount;          /* default "pki" */
        char *role;           /* the PKI role (required) */
        char *common_name;    /* expanded; default ${instance_id} */
        char **organization;  /* O values the certificate must carry (the PKI role sets them) */
        char **alt_names;     /* DNS SANs, expanded */
        char **ip_sans;       /* IP SANs, expanded ("${local_ipv4}") */
        char *ttl;            /* NULL: the role's */
        bool local_key;       /* default yes */
        char *cert_file, *key_file, *ca_file; /* all required */
        mode_t mode;          /* of the key; default 0600 (certificate and CA: 0644) */
        uid_t uid;            /* owner of the three files; default (uid_t)-1: root */
        gid_t gid;
        char **reload;        /* units reloaded after a renewal */
        char **restart;       /* units restarted after a renewal */
        unsigned line;        /* of the section header */
} agent_config_cert;

/* One [kubeconfig NAME] section: a kubeconfig for one of the [certificate] sections. */
typedef struct agent_config_kubeconfig {
        char *name;
        char *file;
        char *certificate;    /* name of a [certificate] section */
        char *server;         /* https URL, expanded */
        char *cluster;        /* default "kubernetes" */
        char *user;           /* default NAME */
        mode_t mode;          /* default 0600 */
        uid_t uid;
        gid_t gid;
        unsigned line, certificate_line;
} agent_config_kubeconfig;

/* One [environment NAME] section: an environment file for units. Upper-case keys
 * ([A-Z_][A-Z0-9_]*) are its variables, in order; their values are expanded. */
typedef struct agent_config_env {
        char *name;
        char *file;
        char **vars;          /* "KEY=value" (unexpanded) */
        mode_t mode;          /* default 0644 */
        uid_t uid;
        gid_t gid;
        unsigned line;
} agent_config_env;

/* The variables of expanded values, as "NAME=" prefixes of an environment list. */
#define AGENT_CONFIG_VARIABLES "instance_id", "zone", "local_ipv4", "public_ipv4"

typedef struct agent_config {
        agent_config_role role;
        char *state_dir;          /* default /var/lib/bootagent */
        double renew_fraction;    /* re-issue certificates past this part of their lifetime */

        char *metadata_url;       /* default http://169.254.169.254 */
        /* The deadlines ("deadline_ms", default 60000, 60000, 120000) are per stage: every
         * request, retry and wait of the stage ends by then (bootagent/README.md). */
        long metadata_deadline_ms;  /* identity */
        char *metadata_socket;    /* a UNIX socket the metadata service listens on (the URL then
                                     gives only Host and path), or NULL: the URL's host */

        char *vault_addr;         /* e.g. https://vault.internal:8200; NULL only for role node
                                     without [vault] (then no [secret], [pki], [certificate]) */
        char *vault_socket;       /* a UNIX socket to reach Vault through, or NULL (as metadata_socket) */
        char *vault_ca_file;      /* NULL: system trust */
        char *vault_auth_mount;   /* default "exoscale" */
        char *vault_role;         /* default: the role name */
        char *kv_mount;           /* default "secret" */
        char *cloud_api_secret;   /* KV path of {api_key, api_secret, api_url}: "bootagent/cloud-api" */
        long vault_deadline_ms;     /* login, secrets, pki, seed, discover's KV read (each) */

        agent_config_secret *secrets;
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

        agent_config_cert *certs;
        size_t n_certs;
        agent_config_kubeconfig *kubeconfigs;
        size_t n_kubeconfigs;
        agent_config_env *envs;
        size_t n_envs;

        unsigned etcd_client_port, etcd_peer_port;
        char *etcd_data_dir;      /* default /var/lib/etcd; recreated 0700, owned like the key */
        char *etcd_name_prefix;   /* default "etcd-" */
        char *etcd_env_file;      /* default /etc/default/etcd-bootagent */
        long etcd_deadline_ms;    /* member (join), promote, leave (each) */

        /* [node]: the Kubernetes node role (token, endpoint and CA pin come from user-data) */
        char *node_kubeconfig;          /* default /var/lib/kubelet/kubeconfig */
        char *node_kubelet_config;      /* KubeletConfiguration; default /var/lib/kubelet/config.yaml */
        char *node_ca_file;             /* default /var/lib/kubelet/pki/ca.crt */
        char *node_cert_file;           /* default /var/lib/kubelet/pki/kubelet-client.crt */
        char *node_key_file;            /* default /var/lib/kubelet/pki/kubelet-client.key (0600) */
        char *node_env_file;            /* default /etc/default/kubelet-bootagent */
        long node_discovery_deadline_ms; /* cluster-info until signed and pinned */
        long node_csr_deadline_ms;      /* the CSR until it carries a certificate */
        long node_ready_deadline_ms;    /* the Node until Ready=True */

        /* [control-plane]: the Kubernetes control-plane role (bootagent/README.md); without the
         * section a control-plane agent only runs the generic stages and its units. The names
         * are of [certificate] and [kubeconfig] sections; the KV paths are under kv_mount. */
        bool cp_configured;             /* the file has a [control-plane] section */
        char *cp_endpoint;              /* the control-plane endpoint (https URL, expanded); required */
        char *cp_etcd_pool;             /* the etcd instance pool's name; required */
        unsigned cp_etcd_port;          /* its members' client port; default 2379 */
        char *cp_apiserver_cert;        /* serving; default "apiserver" (required) */
        char *cp_etcd_cert;             /* etcd client; default "apiserver-etcd-client" (required) */
        char *cp_kubelet_cert;          /* kubelet client; default "apiserver-kubelet-client" if present */
        char *cp_front_proxy_cert;      /* default "front-proxy-client" if present */
        char *cp_admin_cert;            /* the bootstrap identity (system:masters); default "admin" (required) */
        char *cp_controller_manager_kubeconfig; /* default "controller-manager" if present */
        char *cp_scheduler_kubeconfig;  /* default "scheduler" if present */
        char *cp_service_account_secret; /* KV: private_key, public_key (PEM); required */
        char *cp_encryption_secret;     /* KV: key (base64 of 32 bytes), name (optional); required */
        char *cp_bootstrap_token_secret; /* KV: token ("<id>.<secret>"); required */
        char *cp_cluster_signing_secret; /* KV: cert, key (PEM): the kubelet client signer; optional */
        char *cp_encryption_provider;   /* secretbox (default), aescbc or aesgcm */
        char *cp_service_cidr;          /* default 10.96.0.0/12 */
        char *cp_cluster_cidr;          /* pod network for kube-controller-manager; optional */
        unsigned cp_secure_port;        /* default 6443 */
        char *cp_pki_dir;               /* sa.key, sa.pub, client-ca.crt, cluster-signing.*; default /etc/kubernetes/pki */
        char *cp_encryption_config;     /* default /etc/kubernetes/encryption-config.yaml */
        char *cp_env_file;              /* the three components' flags; default /etc/default/kubernetes-bootagent */
        long cp_etcd_deadline_ms;       /* etcd-servers: discovery until a member answers; default 60000 */
        long cp_ready_deadline_ms;      /* readyz; default 120000 */
        long cp_bootstrap_deadline_ms;  /* bootstrap objects; default 60000 */

        bool units_exec;          /* "units = exec": run exec_start ourselves (hosts without systemd) */
        char **units;             /* units to start, in order */
        char *exec_start;         /* template for units = exec; ${VAR} from the role's environment */
} agent_config;

/* Parse configuration text (NUL-terminated; filename only names it in errors). User and group
 * names in "owner" are looked up on this host. On success *ret is a new config the caller frees
 * with agent_config_free(), defaults filled in. Returns 0, -EINVAL with "FILE:LINE: reason" in err
 * (err may be NULL), or -ENOMEM; *ret is untouched on failure. */
int agent_config_parse(const char *text, const char *filename, agent_config **ret, buf *err);
/* Check configuration text on another host than the image (the builder, before a build): like
 * agent_config_parse, but user and group names are only checked to be well-formed, not looked up.
 * Returns 0, -EINVAL with "FILE:LINE: reason" in err, or -ENOMEM. */
int agent_config_check(const char *text, const char *filename, buf *err);
/* Read (capped at 1 MiB) and parse a file as agent_config_parse does. Returns its results, or the
 * read error (negative errno) with "PATH: reason" in err. */
int agent_config_load(const char *path, agent_config **ret, buf *err);
/* Free a config and everything it owns. Accepts NULL. */
void agent_config_free(agent_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(agent_config *, agent_config_free);

/* The role's name as written in [agent] role ("etcd", "control-plane", ...): a static string. */
const char *agent_config_role_to_string(agent_config_role r);

/* The [certificate] section called name, or NULL. */
const agent_config_cert *agent_config_find_cert(const agent_config *c, const char *name);
/* The [kubeconfig] section called name, or NULL. */
const agent_config_kubeconfig *agent_config_find_kubeconfig(const agent_config *c, const char *name);

/* root + path as a new string the caller frees (root may be NULL or ""). NULL on ENOMEM. */
char *agent_config_path(const char *root, const char *path);
