/* The interface between the provider-neutral pool core (pool.c: membership, persistence, rolling
 * upgrades through the role's gates, pool-role.h) and one kind of machine: pool-host.c (host processes),
 * pool-qemu.c (VMs) and pool-exoscale.c (an Exoscale instance pool). Each provider is one
 * constant pool_provider_ops table; the registry (pool-providers.h) is the only place that names
 * them, so the core and the command line stay provider-neutral.
 *
 * Ownership:
 * - The core owns the pool file (pool.json) and the member list in it. It records a member before
 *   the provider makes it real (reserve_member, then start_member) and forgets it only after
 *   destroy_member succeeded, so a killed CLI never loses track of anything it started.
 * - The provider owns its own JSON object inside pool.json ("provider"), which it may change in
 *   any operation; the core saves it atomically together with the members after each operation.
 *   Everything else the provider creates lives under the pool directory it is given.
 * - Every operation is idempotent: the core calls it again after a crash. Operations return 0 or
 *   a negative errno; on failure they fill err (one line, no secrets) and never log.
 * - Providers use pool-health.h and pool-cloud.h, never the core (pool.c) or the registry: the
 *   calls go one way only, core -> ops table -> provider -> health/local cloud. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "macro.h"
#include "pool-health.h"

typedef struct pool_member {
        char *id;        /* instance id */
        char *ip;        /* private IP */
        char *template;  /* template reference, "etcd@2" */
        char *state;     /* "joining", "active" or "leaving" (core-owned bookkeeping) */
} pool_member;

/* What `imgbuild pool create` is told; each provider's configure takes the fields it knows and
 * ignores the others. Strings are borrowed. */
typedef struct pool_create_options {
        const char *pool_name;          /* the imgbuild pool's name */
        const char *template;           /* the pool's first template reference */

        /* The role (pool-role.h). The command line's --role (NULL: the template's, else etcd);
         * a provider's configure is given the role the core chose (never NULL). */
        const char *role;
        const char *kubeconfig;         /* an admin kubeconfig (roles that talk to Kubernetes) */

        /* Local providers (host, qemu). */
        int port_base;                  /* the first of the pool's ports; 0: a random one */
        const char *cache_dir;          /* qemu: the template store; NULL: the default store */

        /* host, role node: what each member runs and the user-data it joins with (bootagent's
         * node user-data: kube_endpoint, kube_ca_pin, kube_token; node_name is the provider's). */
        const char *kubelet;            /* the kubelet binary (or a stand-in with its flags) */
        const char *kube_endpoint;      /* https://HOST:PORT of the control plane */
        const char *kube_ca_pin;        /* sha256:<64 hex> of the cluster CA's public key */
        const char *kube_token_file;    /* a file holding the bootstrap token (never argv) */

        /* exoscale */
        const char *zone;               /* required */
        const char *instance_type;      /* id or FAMILY.SIZE; NULL: standard.small */
        unsigned disk_size_gb;          /* 0: 10 */
        char *const *security_groups;   /* ids; may be NULL */
        const char *private_network;    /* id of a managed private network; required */
        const char *etcd_ca, *etcd_cert, *etcd_key;   /* the operator's etcd client TLS files; required */
        unsigned etcd_port;             /* the members' etcd client port; 0: 2379 */
        unsigned start_timeout_s;       /* how long a new member may take to boot and join; 0: 900 */
        const char *api_endpoint;       /* NULL: $EXOSCALE_API_ENDPOINT, else EXOAPI_DEFAULT_ENDPOINT */
        const char *credentials_file;   /* NULL: EXOSCALE_API_KEY / EXOSCALE_API_SECRET */
} pool_create_options;

typedef struct pool_provider pool_provider;

typedef struct pool_provider_ops {
        const char *name;   /* "host", "qemu", "exoscale" */
        /* Its paragraph of `imgbuild pool --help`: lines of at most 80 columns, each ending in
         * a newline. */
        const char *help;
        /* Whether its templates are the image store's NAME@VERSION (qemu), whose manifests say
         * which role their members have (pool-roles.h); false: templates are labels (host) or the
         * cloud's (exoscale), and the role comes from `pool create --role`. */
        bool store_templates;

        /* Check the create options and record them in state, the provider's object of a new pool
         * (created empty by the core). Returns 0, or a negative errno with err set (the message
         * names the option at fault). NULL: the provider takes no options. */
        int (*configure)(json_t *state, const pool_create_options *o, buf *err);
        /* Bring up what the pool needs before its first member (host: the local cloud). */
        int (*setup)(pool_provider *p, buf *err);
        /* Stop and remove everything setup and the members left behind (after destroy_member
         * of every member). */
        int (*teardown)(pool_provider *p, buf *err);
        /* Choose the identity of a new member on template: fills id and ip (nothing runs yet). */
        int (*reserve_member)(pool_provider *p, const char *template, char **ret_id, char **ret_ip, buf *err);
        /* Optional: make a reserved member's machine boot and return without waiting, so that
         * several members boot at once (start_member then waits for each). */
        int (*boot_member)(pool_provider *p, const pool_member *m, buf *err);
        /* Make a reserved member real and run its first boot; returns when the agent finished.
         * Called again on a running member it repairs it (restarts what died). */
        int (*start_member)(pool_provider *p, const pool_member *m, buf *err);
        /* Decommission: the member's agent leaves the cluster (bootagent leave). NULL when the
         * provider cannot reach the agent (exoscale: no SSH): the core then removes the member
         * through the etcd API with the health_inputs' TLS files. */
        int (*leave_member)(pool_provider *p, const pool_member *m, buf *err);
        /* Stop and delete the member; nothing of it remains. Missing members are fine. */
        int (*destroy_member)(pool_provider *p, const pool_member *m, buf *err);
        /* Whether the member's machine is up ("running") or not ("stopped"): static string. */
        const char *(*member_state)(pool_provider *p, const pool_member *m);
        /* Where the core looks to judge the member's health (pool-health.h); ret is filled only
         * on success and the caller frees it with pool_health_inputs_done(). */
        int (*health_inputs)(pool_provider *p, const pool_member *m, pool_health_inputs *ret, buf *err);
        /* The member agent's own report (`bootagent status --json`: outcome, stages with
         * timeline); a new reference. */
        int (*agent_status)(pool_provider *p, const pool_member *m, json_t **ret, buf *err);
        /* Optional: the name of the Kubernetes Node the member's agent registers (bootagent's
         * node role: node_name from the user-data the provider gives it, else the host name),
         * a new string. NULL: the provider cannot make members of the node role. */
        int (*node_name)(pool_provider *p, const pool_member *m, char **ret, buf *err);
} pool_provider_ops;

/* One provider working on one pool: what every operation gets. */
struct pool_provider {
        const pool_provider_ops *ops;   /* static */
        char *dir;          /* the pool directory (owned) */
        json_t *state;      /* the provider's object in pool.json (borrowed from the pool) */
};

/* A provider of kind ops for the pool in dir, with its state object (borrowed: it must outlive
 * the provider). Returns 0 or -ENOMEM. */
int pool_provider_new(const pool_provider_ops *ops, const char *dir, json_t *state, pool_provider **ret);
void pool_provider_free(pool_provider *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(pool_provider *, pool_provider_free);
