/* Where a build runs: the interface every build provider fills in, one static table each
 * (provider/qemu/qemu-build.c: a local VM with a cached layer per step; provider/exoscale/
 * provider-exoscale.c: a cloud instance, no step cache). builder/provider/build-providers.c is the
 * registry; `imgbuild build` (cli/cmd-build.c) is the one caller, through build_provider_run.
 *
 * A build is: parse the provider's options into its state, prepare (find or build the base, or
 * set up the cloud client), connect (boot the VM or create the instance: a communicator to
 * `bootagent serve`), run each step (the recipe's, then hygiene), finish (stop the machine, also
 * after a failure), export (install the template in the local store, or turn the instance into
 * cloud templates) and print what was made. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "comm-client.h"
#include "recipe.h"

/* What the command hands every provider (all borrowed, valid for the whole build). */
typedef struct build_context {
        const Recipe *recipe;    /* checked: every step's variables have values */
        const char *store;       /* image store directory (may not exist yet) */
        const char *bootagent;   /* --bootagent; NULL: found as base_find_bootagent does */
} build_context;

/* getopt values of provider options: from BUILD_PROVIDER_OPT_FIRST (below are the command's own)
 * to before BUILD_PROVIDER_OPT_LAST (from there the command numbers other providers' options, to
 * refuse them by name). */
#define BUILD_PROVIDER_OPT_FIRST 0x200
#define BUILD_PROVIDER_OPT_LAST 0x1000

typedef struct build_provider_ops {
        const char *name;          /* --provider NAME */
        const char *summary;       /* one line for the --provider list in `imgbuild build --help` */
        const char *description;   /* --help: the paragraph after the usage line */
        const char *options_help;  /* --help: its option lines ("      --zone ZONE ...\n"), with
                                    * what --cache-dir and --bootagent mean to it */
        const char *notes;         /* --help: what follows the options (output, exit status) */
        const struct option *options; /* its getopt_long rows ({} ends them; val in
                                        * [BUILD_PROVIDER_OPT_FIRST, BUILD_PROVIDER_OPT_LAST));
                                        * NULL: none */

        size_t state_size;         /* the caller allocates this much, zeroed, for the build */
        void (*init)(void *state);                                 /* defaults; may be NULL */
        /* One of its options. Returns 0, or -errno after logging (a bad value: -EINVAL). */
        int (*parse_option)(void *state, int opt, const char *arg);
        void (*done)(void *state);                                 /* frees; also after a failure */

        /* Check what the provider needs from the recipe and set up: base image and cached steps,
         * or API client and cloud lookups. Returns 0, 1 when the command is complete without
         * building (qemu --plan printed the cache state), -EINVAL when the recipe (or base
         * definition) is wrong, or -errno; all logged. */
        int (*prepare)(void *state, const build_context *ctx);
        /* Boot the machine, or create and reach the instance. *ret: the communicator to `bootagent
         * serve` in it (borrowed until finish), NULL when no step needs to run (all cached).
         * Returns 0 or -errno (logged). */
        int (*connect)(void *state, comm_client **ret);
        /* Step i of n_steps + 1: recipe->steps[i], or hygiene for i == n_steps. A provider with a
         * step cache skips a cached one (c may then be NULL) and shows it as such; each shows its
         * own progress. Returns 0 or -errno (logged; -EINTR when interrupted). */
        int (*run_step)(void *state, comm_client *c, size_t i);
        /* Always called once prepare ran, with the build's result so far: stops the machine (power
         * off, end the session), and after a failure cleans up what the build made. Returns the
         * new result: r, or -errno (logged). */
        int (*finish)(void *state, int r);
        /* After a successful finish: install the template in the local store, or snapshot,
         * promote or register and copy it in the cloud; then print what was made on stdout.
         * Returns 0 or -errno (logged). */
        int (*export)(void *state);
} build_provider_ops;

/* Run a whole build with provider ops and its parsed state: prepare, connect, the steps, finish,
 * export. Returns 0 (also when prepare completed the command), -EINVAL when prepare found the
 * recipe wrong, or another -errno (logged; interrupt_signal() says whether a signal caused it). */
int build_provider_run(const build_provider_ops *ops, void *state, const build_context *ctx);
