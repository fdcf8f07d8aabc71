/* The interface between the provider-neutral pool core (pool.c: membership, persistence, rolling
 * upgrades, etcd health gates) and one kind of machine (pool-host.c: host processes; a VM-backed
 * provider implements the same operations).
 *
 * Ownership:
 * - The core owns the pool file (pool.json) and the member list in it. It records a member before
 *   the provider makes it real (reserve_member, then start_member) and forgets it only after
 *   destroy_member succeeded, so a killed CLI never loses track of anything it started.
 * - The provider owns its own JSON object inside pool.json ("provider"), which it may change in
 *   any operation; the core saves it atomically together with the members after each operation.
 *   Everything else the provider creates lives under the pool directory it is given.
 * - Every operation is idempotent: the core calls it again after a crash. Operations return 0 or
 *   a negative errno; on failure they fill err (one line, no secrets) and never log. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "macro.h"

typedef struct pool_member {
        char *id;        /* instance id */
        char *ip;        /* private IP */
        char *template;  /* template reference, "etcd@2" */
        char *state;     /* "joining", "active" or "leaving" (core-owned bookkeeping) */
} pool_member;

/* Where the core looks to judge a member's health. Strings owned by the struct. */
typedef struct pool_health_inputs {
        char *etcd_url;     /* the member's etcd client URL, "https://127.0.0.11:30001" */
        char *ca_file;      /* TLS files the core uses to talk to etcd (may be NULL) */
        char *cert_file;
        char *key_file;
        char *connect_to;   /* "host:port" to connect to instead of the URL's (a port forward to
                             * the member's address; TLS still checks the URL's), or NULL */
} pool_health_inputs;

void pool_health_inputs_done(pool_health_inputs *h);

typedef struct pool_provider pool_provider;
struct pool_provider {
        const char *name;   /* "host", "qemu" */
        char *dir;          /* the pool directory (owned) */
        json_t *state;      /* the provider's object in pool.json (borrowed from the pool) */

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
        int (*health_inputs)(pool_provider *p, const pool_member *m, pool_health_inputs *ret, buf *err);
        /* The member agent's own report (`bootagent status --json`: outcome, stages with
         * timeline); a new reference. */
        int (*agent_status)(pool_provider *p, const pool_member *m, json_t **ret, buf *err);
};

/* Whether the etcd at h->etcd_url answers /health with "true" (for providers that wait for a
 * member themselves). */
bool pool_etcd_healthy(const pool_health_inputs *h);

/* Create the provider called name for the pool in dir, with its state object (created empty by
 * the core for a new pool). Returns 0, -EINVAL for an unknown provider, -ENOMEM. */
int pool_provider_new(const char *name, const char *dir, json_t *state, pool_provider **ret);
void pool_provider_free(pool_provider *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(pool_provider *, pool_provider_free);
