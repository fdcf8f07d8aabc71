/* The interface between the pool core (pool.c: membership, pool.json, converge, roll, abort) and
 * what the members of a pool are: an etcd cluster (pool-role-etcd.c), Kubernetes worker nodes
 * (pool-role-node.c). Each role is one constant pool_role_ops table; the registry
 * (pool-roles.h) is the only place that names them, so the core stays role-neutral as it stays
 * provider-neutral.
 *
 * The core owns the member list and its states (joining, active, leaving) and the order of every
 * membership change; a role says what the change needs on its side:
 *   before a change       gate           (etcd: the quorum floor, repairing a down member once)
 *   after start_member    wait_joined    (etcd: a healthy voting member)
 *   before destroy_member before_destroy (etcd: the member leaves, else it is removed)
 *   after destroy_member  after_destroy  (node: the Node object is deleted)
 *
 * Roles sit below the core, next to the providers: a role sees the pool only through the
 * pool_view the core hands to each call (the members, read-only, and the provider), and reaches
 * the machines only through the provider's ops table. The calls go one way: core -> role ops ->
 * provider ops / pool-health.h / pool-kube.h; a role never includes pool.h or the registries.
 * Like the core (and unlike providers) a role logs the progress of long waits and repairs; its
 * errors go in err (one line) and as a negative errno. Every operation may be called again after
 * a crash and must then finish or repeat its work. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "macro.h"
#include "pool-provider.h"

/* Returned (negated) by a gate when the members are not healthy enough to take the next step
 * (etcd: the quorum floor). Nothing was changed by the refused step. */
#define POOL_EUNHEALTHY EHOSTDOWN

/* The default of `pool roll --drain-timeout`: how long draining one node may take. */
#define POOL_DRAIN_TIMEOUT_MS_DEFAULT 300000L

/* What a role sees of the pool, built by the core for each call (nothing in it outlives the
 * call). */
typedef struct pool_view {
        const char *name;               /* the pool's name, for messages */
        const pool_member *members;     /* every member, in the core's order (borrowed) */
        size_t n_members;
        pool_provider *provider;        /* the pool's machines */
        long drain_timeout_ms;          /* roll option: how long a drain may take */
} pool_view;

typedef struct pool_role pool_role;

typedef struct pool_role_ops {
        const char *name;   /* "etcd", "node": pool.json's "role" and the key of the member's
                             * health object in `pool status --json` */
        /* What a member that passed wait_joined is, for the log: "a healthy voting member". */
        const char *serving;
        /* Its paragraph of `imgbuild pool --help` (lines of at most 80 columns, each ending in a
         * newline). */
        const char *help;
        /* Whether a pool of this role needs `pool create --kubeconfig` (an admin kubeconfig). */
        bool needs_kubeconfig;
        /* Whether the role needs the provider's node_name (the members' Kubernetes Node names):
         * `pool create` refuses the role on a provider without it. */
        bool needs_node_names;

        /* Check the create options this role takes and record them in state, the role's object
         * in pool.json ("role_config", created empty by the core). NULL: the role takes none. */
        int (*configure)(json_t *state, const pool_create_options *o, buf *err);
        /* Free what the role made in r->data. NULL: it makes nothing. */
        void (*done)(pool_role *r);

        /* The gate before every membership change (not before the first member of a new pool).
         * Returns 0, -POOL_EUNHEALTHY with the reasons in err (the step is refused), or another
         * negative errno. */
        int (*gate)(pool_role *r, const pool_view *v, buf *err);
        /* Wait (bounded) until m, just started by the provider, serves: returns 0, or
         * -ETIMEDOUT with what is missing in err. */
        int (*wait_joined)(pool_role *r, const pool_view *v, const pool_member *m, buf *err);
        /* m is about to be destroyed (its state is "leaving"): take it out of service. */
        int (*before_destroy)(pool_role *r, const pool_view *v, const pool_member *m, buf *err);
        /* m was destroyed (still in the list, state "leaving"): clean up after it. NULL: none. */
        int (*after_destroy)(pool_role *r, const pool_view *v, const pool_member *m, buf *err);
        /* `pool roll --abort` found m leaving with its machine running: put it back in service
         * (node: uncordon) and return 0, and the core makes it active again. NULL: a leaving
         * member always finishes leaving (etcd: it may have left the cluster already). */
        int (*cancel_leave)(pool_role *r, const pool_view *v, const pool_member *m, buf *err);
        /* The member's health for `pool status` (etcd: {"role","healthy"}): a new reference,
         * never NULL unless out of memory; errors are reported inside it. */
        json_t *(*member_status)(pool_role *r, const pool_view *v, const pool_member *m);
} pool_role_ops;

/* One role working for one pool. */
struct pool_role {
        const pool_role_ops *ops;       /* static */
        json_t *state;                  /* the role's object in pool.json (borrowed from the pool) */
        void *data;                     /* the role's own (a Kubernetes client), made on first use */
};

/* A role of kind ops with its state object (borrowed: it must outlive the role). Returns 0 or
 * -ENOMEM. */
int pool_role_new(const pool_role_ops *ops, json_t *state, pool_role **ret);
/* Calls ops->done, frees r. Accepts NULL. */
void pool_role_free(pool_role *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(pool_role *, pool_role_free);
