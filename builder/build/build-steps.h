/* A recipe's steps, run in a build VM through the communicator (builder/provider/qemu/runner.h keeps one layer
 * per step under the recipe's cache keys). What each step does in the guest:
 *   packages  wait for the network, apt-get update, apt-get install -y --no-install-recommends
 *             (DEBIAN_FRONTEND=noninteractive); the VM gets outbound user-mode networking.
 *   copy      a file lands at DEST with mode and owner; a directory's contents land under DEST
 *             keeping their own modes, owned by owner.
 *   run       /bin/sh -c COMMAND in /, with the step's env.
 *   download  a local source (file:// or a plain path) is checked against sha256 on the host and
 *             copied in; an http(s) URL is fetched in the guest with curl (the package mirror is
 *             the only network here) and checked there. Installed at DEST with mode.
 *   agent     bootagent install-units in the guest: the units embedded in the baked-in binary
 *             into /etc/systemd/system (the role's drop-ins too), config=FILE checked there and
 *             installed as /etc/bootagent/agent.conf 0600; then firstboot and the renew timer are
 *             enabled. packages steps run with a policy-rc.d that keeps every daemon stopped.
 * Every step's stdout/stderr is streamed to ours. After the last step a hygiene step (its own
 * layer, keyed after the last step) records the installed packages (dpkg-query) in
 * STORE/layers/KEY.packages.json, written before the layer is committed so a cached rebuild still
 * has them; then it empties /etc/machine-id and removes SSH host keys, apt lists and caches, /tmp,
 * shell history and logs, so the last layer is ready to export. */
#pragma once

#include "base.h"
#include "comm-client.h"
#include "json.h"
#include "progress.h"
#include "recipe.h"

typedef struct build_step_result {
        char *key;
        char *name;      /* display form, secrets masked */
        bool cached;
        double seconds;  /* 0 when cached */
} build_step_result;

typedef struct build_result {
        char *disk;                /* the last layer (after hygiene) */
        build_step_result *steps;  /* the recipe's steps, then hygiene */
        size_t n_steps;
        json_t *packages;          /* installed in the last layer: [{name, version, arch}], sorted */
} build_result;

void build_result_done(build_result *r);

/* What can be checked on the host before anything boots: each agent step's config, with
 * bootagent's own parser (user and group names are left to the guest, where they exist). Errors
 * go to stderr as "FILE:LINE: error: ..." and a note at the step. Returns 0, -EINVAL or -ENOMEM. */
int build_steps_check(const Recipe *recipe);

/* Run every step not cached yet, then hygiene, shown through progress (NULL: plain log lines).
 * On success fills *ret (may be NULL). Returns 0 or -errno (logged). */
int build_steps_run(const Recipe *recipe, const base_image *base, const char *store, progress *p,
                    build_result *ret);

/* One recipe step, or the hygiene step that follows last (NULL: the recipe has no steps), run in
 * the guest through c: what build_steps_run does in each layer, for providers without layers.
 * Hygiene first writes the guest's installed packages to packages_path (JSON as
 * build_packages_from_dpkg gives; NULL: not asked). Return 0 or -errno (logged). */
int build_step_run(comm_client *c, const RecipeStep *s);
int build_hygiene_run(comm_client *c, const RecipeStep *last, const char *packages_path);
/* "run systemctl mask ..." for progress lines: display arguments only (secrets masked), cut
 * short. Returns a new string or NULL. */
char *build_step_name(const RecipeStep *s);

/* The installed packages in dpkg-query output (DPKG_QUERY_FORMAT in build-steps.c: "STATUS NAME
 * VERSION ARCH" lines) as [{name, version, arch}] sorted by name, only those installed ("ii").
 * Returns 0, -EBADMSG for a malformed line, or -ENOMEM. */
int build_packages_from_dpkg(const char *text, json_t **ret);
