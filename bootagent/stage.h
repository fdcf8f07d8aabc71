/* One run of a bootagent command: its context (config, journal, identity, Vault session,
 * certificate paths) and the journal bookkeeping of its stages. Everything a stage or a role
 * (role.h) may use of the driver is here. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent-config.h"
#include "buf.h"
#include "journal.h"
#include "metadata.h"
#include "vault.h"

typedef struct agent {
        agent_config *cfg;
        const char *root;       /* --root: prefixes every configured path (tests) */
        journal journal;
        uint64_t t0;            /* monotonic ms at start */
        uint64_t stage_start;
        uint64_t stage_wait;    /* ms spent waiting in the current stage */
        /* The current stage's deadline (stage_deadline()); the Vault session and the etcd role's
         * clients point here. */
        request_deadline deadline;
        identity id;
        vault vault;
        char *cert_file, *key_file, *ca_file, *state_dir; /* rooted */
} agent;

/* Parse --config/--root (and accept --json), load the config and, with open_journal, create
 * state_dir and open its journal. Returns 0 or a negative errno; call agent_done() on *a either
 * way. */
int agent_init(agent *a, int argc, char **argv, bool open_journal);
void agent_done(agent *a);
/* The configured path under --root as a new string in *ret (NULL for a NULL path). Returns 0 or
 * -ENOMEM. */
int agent_rooted(const agent *a, const char *path, char **ret);

/* Sleep ms with +-25% jitter, counted as waiting time of the current stage; never past the
 * stage's deadline. */
void agent_sleep(agent *a, long ms);
/* The instance's identity as the "NAME=value" variables of expanded config values (instance_id,
 * zone, local_ipv4, public_ipv4: agent-config.h, AGENT_CONFIG_VARIABLES). Returns 0 or -ENOMEM. */
int agent_identity_env(const agent *a, char ***ret);

/* Start a stage: its clock, and no deadline of its own (each request gets its client's). */
void stage_begin(agent *a);
/* Give the current stage ms from now: every request it makes (through a->deadline), every retry
 * and agent_sleep() end by then. Also for work after a stage that talks to a service. */
void stage_deadline(agent *a, long ms);
/* Whether the current stage's deadline has passed (false without one). */
bool stage_deadline_passed(const agent *a);
/* Record a stage in the journal. Returns 0, -ECANCELED when BOOTAGENT_ABORT_AFTER names it, or
 * the journal's error (logged). */
int stage_end(agent *a, const char *stage, bool ok, const char *detail);
/* Test hook inside a stage: -ECANCELED (with a notice) when BOOTAGENT_ABORT_AFTER names point,
 * else 0. */
int stage_abort_point(const char *point);
/* Log one clear reason (err, or strerror(-r) without one), record the failed stage, return r.
 * When the stage's deadline ended it, the reason says so: "deadline of 5000 ms exceeded after 7
 * requests: <err>" (or "deadline of 5000 ms: no time left for another retry after 7 requests: <err>"
 * when retrying stopped because the next wait would have ended past it). */
int stage_fail(agent *a, const char *stage, int r, const buf *err);

/* Write data to path atomically unless unchanged, creating the parent directories (0755) first.
 * Returns 1 when written, 0 when unchanged, or a negative errno. */
int stage_write_file(const char *path, const char *data, mode_t mode, uid_t uid, gid_t gid);
