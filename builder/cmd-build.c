/* imgbuild build RECIPE: parse and validate the recipe (every variable needs a value), then
 * build. The build itself belongs to the qemu provider, which is not part of this file yet. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "log.h"

typedef struct BuildOptions {
        RecipeOptions recipe;
        bool json;            /* machine-readable events on stdout */
        bool plan;            /* show which steps are cached and which would run, build nothing */
        const char *cache_dir;
} BuildOptions;

static void build_options_done(BuildOptions *o) {
        cli_recipe_options_done(&o->recipe);
}

static void build_help(void) {
        printf("Usage: imgbuild build [OPTIONS] RECIPE\n"
               "       imgbuild RECIPE [OPTIONS]\n"
               "\n"
               "Build a template from a recipe. Every variable a step refers to needs a value.\n"
               "\n"
               "Options:\n"
               "  -h, --help            show this help\n"
               "      --json            machine-readable events\n"
               "      --plan            show the steps and their cache state, build nothing\n"
               "      --cache-dir DIR   where step layers are kept\n"
               CLI_VAR_OPTIONS_HELP
               "\n"
               "Exit status: 0 on success, 2 if the recipe has errors, 3 while the qemu provider\n"
               "is not implemented, 1 on other errors.\n");
}

int cmd_build(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "plan", no_argument, NULL, 'p' },
                { "cache-dir", required_argument, NULL, 'c' },
                CLI_VAR_OPTIONS,
                {}
        };
        _cleanup_(build_options_done) BuildOptions o = { .recipe = { .require_values = true } };
        _cleanup_(recipe_freep) Recipe *recipe = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                r = cli_var_option(&o.recipe, c, optarg);
                if (r < 0) {
                        log_error_errno(r, "Failed to record option: %m");
                        return EXIT_FAILURE_GENERIC;
                }
                if (r > 0)
                        continue;
                switch (c) {
                case 'h':
                        build_help();
                        return EXIT_OK;
                case 'j':
                        o.json = true;
                        break;
                case 'p':
                        o.plan = true;
                        break;
                case 'c':
                        o.cache_dir = optarg;
                        break;
                default:
                        return EXIT_FAILURE_GENERIC;
                }
        }
        if (optind + 1 != argc) {
                log_error("build needs exactly one recipe (see imgbuild build --help)");
                return EXIT_FAILURE_GENERIC;
        }

        r = cli_load_recipe(argv[optind], &o.recipe, &recipe);
        if (r < 0)
                return r == -EINVAL ? EXIT_RECIPE_ERROR : EXIT_FAILURE_GENERIC;

        log_error("the qemu provider is not implemented yet");
        return EXIT_NOT_IMPLEMENTED;
}
