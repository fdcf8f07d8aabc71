/* imgbuild build RECIPE: parse and validate the recipe (every variable needs a value), then run
 * the build with the selected provider (builder/provider/build-providers.h; default qemu: find or
 * build the base image, run the steps in a local VM with one cached layer per step, install the
 * result as NAME@VERSION in the local template store). One option parser: the common options
 * below plus the provider's own, from its table. */
#include <assert.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base.h"
#include "build-providers.h"
#include "build-steps.h"
#include "cli.h"
#include "interrupt.h"
#include "log.h"
#include "strv.h"

enum { OPT_CACHE_DIR = CLI_OPT_FIRST_FREE, OPT_BOOTAGENT, OPT_PROVIDER };
/* getopt values for the other providers' options (build_option refuses them). */
#define OPT_FOREIGN BUILD_PROVIDER_OPT_LAST
_Static_assert(CLI_OPT_FIRST_FREE + 3 <= BUILD_PROVIDER_OPT_FIRST, "option values overlap");

static const struct option common_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
        { "bootagent", required_argument, NULL, OPT_BOOTAGENT },
        { "provider", required_argument, NULL, OPT_PROVIDER },
        CLI_VAR_OPTIONS,
};

/* A row of another provider's options in the table: its name and whose it is. */
typedef struct foreign_option {
        const char *name;
        const build_provider_ops *owner;
} foreign_option;

typedef struct build_options {
        RecipeOptions recipe;
        const char *cache_dir;
        const char *bootagent;
        const build_provider_ops *ops;
        void *state;              /* the provider's, ops->state_size bytes */
        foreign_option *foreign;  /* the other providers' options (merge_options) */
} build_options;

static void build_options_done(build_options *o) {
        cli_recipe_options_done(&o->recipe);
        if (o->state && o->ops->done)
                o->ops->done(o->state);
        free(o->state);
        o->state = NULL;
        free(o->foreign);
        o->foreign = NULL;
}

static void build_help(const build_provider_ops *ops) {
        if (streq(ops->name, BUILD_PROVIDER_DEFAULT))
                printf("Usage: imgbuild build [OPTIONS] RECIPE\n"
                       "       imgbuild RECIPE [OPTIONS]\n");
        else
                printf("Usage: imgbuild build --provider %s [OPTIONS] RECIPE\n", ops->name);
        printf("\n%s\nOptions:\n"
               "  -h, --help            show this help\n"
               "%s"
               "      --provider NAME   where to build (imgbuild build --provider NAME --help):\n",
               ops->description, ops->options_help);
        for (size_t i = 0; build_providers[i]; i++)
                printf("                          %-9s %s\n", build_providers[i]->name, build_providers[i]->summary);
        printf(CLI_VAR_OPTIONS_HELP "\n%s", ops->notes);
}

/* "qemu or exoscale": every provider's name, for messages. NULL when out of memory. */
static char *provider_names(void) {
        _cleanup_free_ char *names = NULL;
        for (size_t i = 0; build_providers[i]; i++) {
                char *s;
                if (asprintf(&s, "%s%s%s", strempty(names), i == 0 ? "" : " or ", build_providers[i]->name) < 0)
                        return NULL;
                free(names);
                names = s;
        }
        return TAKE_PTR(names);
}

/* The --provider value, looked at before the options are parsed (they depend on it). Returns 0
 * and the provider, or -EINVAL for an unknown one (logged). */
static int find_provider(int argc, char **argv, const build_provider_ops **ret) {
        const char *name = NULL;

        for (int i = 1; i < argc && !streq(argv[i], "--"); i++) {
                if (streq(argv[i], "--provider") && i + 1 < argc)
                        name = argv[++i];
                else if (startswith(argv[i], "--provider="))
                        name = argv[i] + strlen("--provider=");
                else
                        continue;
                break;
        }
        const build_provider_ops *ops = build_providers_find(name);
        if (!ops) {
                _cleanup_free_ char *names = provider_names();
                if (!names)
                        return log_error_errno(-ENOMEM, "Out of memory");
                log_error("Unknown provider '%s' (%s)", name, names);
                return -EINVAL;
        }
        *ret = ops;
        return 0;
}

/* The getopt table of a build with provider ops: the common rows, its rows, then every other
 * provider's rows (renumbered from OPT_FOREIGN: the index into *ret_foreign, which says whose they
 * are), so an option of another provider gets a clear error instead of getopt's "unrecognized
 * option". Returns 0, or -ENOMEM. */
static int merge_options(const build_provider_ops *ops, struct option **ret, foreign_option **ret_foreign) {
        size_t n = ELEMENTSOF(common_options);
        for (size_t i = 0; build_providers[i]; i++)
                for (const struct option *o = build_providers[i]->options; o && o->name; o++)
                        n++;
        _cleanup_free_ struct option *all = calloc(n + 1, sizeof(*all));
        _cleanup_free_ foreign_option *foreign = calloc(n + 1, sizeof(*foreign));
        if (!all || !foreign)
                return -ENOMEM;

        size_t k = 0, n_foreign = 0;
        for (size_t i = 0; i < ELEMENTSOF(common_options); i++)
                all[k++] = common_options[i];
        for (const struct option *o = ops->options; o && o->name; o++) {
                assert(o->val >= BUILD_PROVIDER_OPT_FIRST && o->val < OPT_FOREIGN);
                all[k++] = *o;
        }
        for (size_t i = 0; build_providers[i]; i++)
                for (const struct option *o = build_providers[i]->options; build_providers[i] != ops && o && o->name; o++) {
                        all[k] = *o;
                        all[k++].val = OPT_FOREIGN + (int) n_foreign;
                        foreign[n_foreign++] = (foreign_option) { .name = o->name, .owner = build_providers[i] };
                }
        *ret = TAKE_PTR(all);
        *ret_foreign = TAKE_PTR(foreign);
        return 0;
}

static int build_option(int opt, const char *arg, void *userdata) {
        build_options *o = userdata;
        switch (opt) {
        case 'h':
                build_help(o->ops);
                return 1;
        case OPT_CACHE_DIR:
                o->cache_dir = arg;
                return 0;
        case OPT_BOOTAGENT:
                o->bootagent = arg;
                return 0;
        case OPT_PROVIDER:
                return 0; /* find_provider() read it */
        default:
                if (opt >= OPT_FOREIGN) {
                        const foreign_option *f = &o->foreign[opt - OPT_FOREIGN];
                        log_error("--%s is an option of --provider %s, not of %s (see imgbuild build --provider %s --help)",
                                  f->name, f->owner->name, o->ops->name, o->ops->name);
                        return -EINVAL;
                }
                if (opt >= BUILD_PROVIDER_OPT_FIRST && o->ops->parse_option)
                        return o->ops->parse_option(o->state, opt, arg);
                return -EINVAL;
        }
}

int cmd_build(int argc, char **argv) {
        _cleanup_(build_options_done) build_options o = { .recipe = { .require_values = true } };
        _cleanup_(recipe_freep) Recipe *recipe = NULL;
        _cleanup_free_ struct option *options = NULL;
        _cleanup_free_ char *store = NULL;
        int r;

        r = find_provider(argc, argv, &o.ops);
        if (r < 0)
                return EXIT_FAILURE_GENERIC;
        r = merge_options(o.ops, &options, &o.foreign);
        o.state = calloc(1, o.ops->state_size);
        if (r < 0 || !o.state) {
                log_error_errno(-ENOMEM, "Out of memory");
                return EXIT_FAILURE_GENERIC;
        }
        if (o.ops->init)
                o.ops->init(o.state);
        r = cli_parse_options(argc, argv, options, &o.recipe, build_option, &o);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_FAILURE_GENERIC;
        if (optind + 1 != argc) {
                if (streq(o.ops->name, BUILD_PROVIDER_DEFAULT))
                        log_error("build needs exactly one recipe (see imgbuild build --help)");
                else
                        log_error("build needs exactly one recipe (see imgbuild build --provider %s --help)",
                                  o.ops->name);
                return EXIT_FAILURE_GENERIC;
        }

        r = cli_load_recipe(argv[optind], &o.recipe, &recipe);
        if (r >= 0)
                r = build_steps_check(recipe);
        if (r >= 0)
                r = build_steps_resolved(recipe);
        if (r < 0)
                return r == -EINVAL ? EXIT_RECIPE_ERROR : EXIT_FAILURE_GENERIC;

        r = base_store_dir(o.cache_dir, &store);
        if (r < 0) {
                log_error_errno(r, "Failed to find the image store (set --cache-dir or IMGBUILD_CACHE_DIR): %m");
                return EXIT_FAILURE_GENERIC;
        }

        build_context ctx = { .recipe = recipe, .store = store, .bootagent = o.bootagent };
        r = build_provider_run(o.ops, o.state, &ctx);
        if (r < 0) {
                if (interrupt_signal())
                        return 128 + interrupt_signal();
                return r == -EINVAL ? EXIT_RECIPE_ERROR : EXIT_FAILURE_GENERIC;
        }
        return EXIT_OK;
}
