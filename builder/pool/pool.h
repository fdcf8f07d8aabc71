/* Instance pools: the provider- and role-neutral model (members, template references), its
 * persistence (DIR/pool.json, written atomically after every step) and the rolling upgrade, each
 * step passing the role's gate. Machines come from a pool_provider (pool-provider.h); what the
 * members are (an etcd cluster, Kubernetes nodes) and what a change needs on their side comes from
 * a pool_role (pool-role.h).
 *
 * Pool directory: $IMGBUILD_STATE_DIR/pools/NAME, else $XDG_STATE_HOME/imgbuild/pools/NAME, else
 * ~/.local/state/imgbuild/pools/NAME. Commands that change a pool hold an flock on DIR/lock;
 * `pool status` only reads pool.json and asks the members. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "macro.h"
#include "pool-provider.h"
#include "pool-role.h"

/* The most voting members a pool may have (create, scale, and pool.json when loaded). */
#define POOL_SIZE_MAX 15

typedef struct pool {
        char *name;
        char *dir;
        char *template;      /* the template new members get */
        char *roll_target;   /* non-NULL while a roll is in progress (checkpointed) */
        unsigned size;       /* the wanted number of voting members */
        pool_member *members;
        size_t n_members;
        char *provider_name;
        json_t *provider_state;
        pool_provider *provider;
        json_t *role_state;  /* the role's object in pool.json ("role_config") */
        pool_role *role;     /* pool.json's "role"; a file without one is an etcd pool */
        long drain_timeout_ms;  /* roll option for roles that drain (node); default 300 s */
        int lock_fd;
} pool;

/* The directory of pool name (see above). Returns 0, -EINVAL for a name that is not
 * [A-Za-z0-9_-]{1,63}, -ENOENT when no state directory can be found, -ENOMEM. */
int pool_dir_for(const char *name, char **ret);

/* A new pool in memory with its directory created and locked; -EEXIST if it exists. Its role is
 * etcd until pool_configure() says otherwise. */
int pool_new(const char *name, const char *provider, const char *template, unsigned size, pool **ret, buf *err);
/* Record a new pool's create options: its role (pool_role_choose(): o->role, or what the
 * template's manifest says) with the role's options (o->kubeconfig), then the provider's (the
 * options it does not use are ignored). Call once, after pool_new() and before the first
 * pool_converge(). Returns 0, or a negative errno with err saying which option is wrong. */
int pool_configure(pool *p, const pool_create_options *o, buf *err);
/* Load a pool; lock it first (for changes) when lock is true (-EBUSY: another command holds it).
 * -ENOENT when there is no such pool. */
int pool_load(const char *name, bool lock, pool **ret, buf *err);
int pool_save(pool *p, buf *err);
void pool_free(pool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(pool *, pool_free);

/* Bring the pool to its size: set the provider up, finish or undo half-done members, add members
 * one at a time (each must become a healthy voting member) or remove surplus ones. Used by
 * create and scale; resumes after a crash. */
int pool_converge(pool *p, buf *err);
/* Replace every member not on target with one on target, one at a time (surge, wait until the
 * new member serves (etcd: votes and is healthy), then the old member leaves and is destroyed).
 * Checkpointed: a second call resumes. -POOL_EUNHEALTHY when the role's gate refuses a step. */
int pool_roll(pool *p, const char *target, buf *err);
/* Stop a roll: the member in flight is finished or undone so every member is old or new, all
 * serving, size members. A leaving member whose role can take it back (cancel_leave: node) and
 * whose machine runs is put back in service, and the newest member leaves instead. */
int pool_roll_abort(pool *p, buf *err);
/* Destroy every member (no leave, no drain; the role's after_destroy runs: node, the Node object
 * goes) and what the provider set up, then remove the pool directory. */
int pool_delete(pool *p, buf *err);

/* Status: {"name","template","size","roll_target","provider","role","members":[{"id","ip",
 * "template","state","machine",ROLE:{...},"agent":{...}}]} where ROLE is the role's name and its
 * object the role's member_status (etcd: {"role","healthy"}). A new reference. */
int pool_status(pool *p, json_t **ret, buf *err);
