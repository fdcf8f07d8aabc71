/* A recipe's steps, run in a build machine through the communicator by a build provider
 * (build-provider.h; the qemu one keeps a layer per step under the recipe's cache keys). What each
 * step does in the guest:
 *   packages  wait for the network, apt-get update, apt-get install -y --no-install-recommends
 *             (DEBIAN_FRONTEND=noninteractive); the VM gets outbound user-mode networking.
 *   copy      a file lands at DEST with mode and owner; a directory's contents land under DEST
 *             keeping their own modes, owned by owner.
 *   run       /bin/sh -c COMMAND in /, with the step's env.
 *   download  a local source (file:// or a plain path) is checked against its sha256 or sha512
 *             on the host and copied in; an http(s) URL is fetched in the guest with curl (the
 *             package mirror is the only network here) and checked there with sha256sum or
 *             sha512sum. Installed at DEST with mode. A mismatch fails the step with both digests.
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
#include "crypto.h"
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

/* Every step's variables have values (a build needs them; validate does not). Returns 0, or
 * -EINVAL after logging the first step without. */
int build_steps_resolved(const Recipe *recipe);

/* Cache key of the hygiene step that follows the step (or base) with previous_key: it changes
 * with what hygiene does. Returns 0 or -ENOMEM. */
int build_hygiene_key(const char *previous_key, char ret[SHA256_HEX_SIZE]);

/* Run argv in the guest in / with env (NULL: the agent's), stdout to out_fd, stderr to ours.
 * Failures are logged as "<where>Failed to start <what> in the VM: ...", "<where>Lost the VM while
 * running <what>" or "<where><what> exited with status N" (where may be NULL, "FILE:LINE: " for a
 * step). Returns 0 only on exit status 0, else -EREMOTEIO (not started), -EPROTO (non-zero status)
 * or -errno (the connection). */
int build_guest_exec(comm_client *c, char *const *argv, char *const *env, int out_fd, const char *where,
                     const char *what);

/* One recipe step, or the hygiene step that follows last (NULL: the recipe has no steps), run in
 * the guest through c: what a build provider runs for each step (the qemu one in a layer each).
 * Hygiene first writes the guest's installed packages to packages_path (JSON as
 * build_packages_from_dpkg gives; NULL: not asked). Return 0 or -errno (logged). */
int build_step_run(comm_client *c, const RecipeStep *s);
/* build_step_run, then the check that the host files the step read are still as its cache key saw
 * them (before, from recipe_step_keys_inputs): otherwise the step fails with "FILE:LINE: PATH
 * changed during the build; run again" and -ESTALE, so nothing is kept under a key that does not
 * describe what was sent. Returns 0 or -errno (logged). */
int build_step_run_checked(comm_client *c, const RecipeStep *s, const RecipeStepInputs *before);
/* The check alone. Returns 0, -ESTALE or -ENOMEM (logged). */
int build_step_inputs_unchanged(const RecipeStep *s, const RecipeStepInputs *before);
int build_hygiene_run(comm_client *c, const RecipeStep *last, const char *packages_path);
/* The two checks of a download step's content, each run by build_step_run and shown here so they
 * can be tested without a VM. build_download_check_local: the host file of a local source
 * (s->source) against s->digest under s->digest_kind; returns 0, -EBADMSG on a mismatch (logged
 * as "FILE:LINE: SOURCE has sha512 GOT, the recipe pins WANT") or -errno when it cannot be read
 * (logged). build_download_script: the /bin/sh -c script that fetches an http(s) URL in the
 * guest, with arguments URL, "sha256" or "sha512", the pinned digest, DEST and the octal mode; on
 * a mismatch it prints both digests the same way to stderr and exits 1 before installing. */
int build_download_check_local(const RecipeStep *s);
extern const char build_download_script[];
/* How the hygiene step shows in progress lines and manifests. */
#define BUILD_HYGIENE_NAME "hygiene (machine-id, host keys, apt lists, logs, history, trim)"
/* "run systemctl mask ..." for progress lines: display arguments only (secrets masked), cut
 * short. Returns a new string or NULL. */
char *build_step_name(const RecipeStep *s);

/* The installed packages in dpkg-query output (DPKG_QUERY_FORMAT in build-steps.c: "STATUS NAME
 * VERSION ARCH" lines) as [{name, version, arch}] sorted by name, only those installed ("ii").
 * Returns 0, -EBADMSG for a malformed line, or -ENOMEM. */
int build_packages_from_dpkg(const char *text, json_t **ret);
