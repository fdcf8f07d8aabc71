/* Instance pools: the provider-neutral model (members, template references), its persistence
 * (DIR/pool.json, written atomically after every step) and the rolling upgrade gated on etcd
 * health. Machines come from a pool_provider (pool-provider.h).
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

/* Returned (negated) when the cluster is not healthy enough to take the next step: the quorum
 * floor. Nothing was changed by the refused step. */
#define POOL_EUNHEALTHY EHOSTDOWN

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
        int lock_fd;
} pool;

/* The directory of pool name (see above). Returns 0, -EINVAL for a name that is not
 * [A-Za-z0-9_-]{1,63}, -ENOENT when no state directory can be found, -ENOMEM. */
int pool_dir_for(const char *name, char **ret);

/* A new pool in memory with its directory created and locked; -EEXIST if it exists. */
int pool_new(const char *name, const char *provider, const char *template, unsigned size, pool **ret, buf *err);
/* Record a new pool's create options in its provider state (the provider's configure; the
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
 * new member votes and is healthy, then the old member leaves and is destroyed). Checkpointed:
 * a second call resumes. -POOL_EUNHEALTHY when the quorum floor refuses a step. */
int pool_roll(pool *p, const char *target, buf *err);
/* Stop a roll: the member in flight is finished or undone so every member is old or new, all
 * voting, size members. */
int pool_roll_abort(pool *p, buf *err);
/* Destroy every member and what the provider set up, then remove the pool directory. */
int pool_delete(pool *p, buf *err);

/* Status: {"name","template","size","roll_target","members":[{"id","ip","template","state",
 * "machine","etcd":{"role","healthy","reason"},"agent":{...}}]}. A new reference. */
int pool_status(pool *p, json_t **ret, buf *err);
