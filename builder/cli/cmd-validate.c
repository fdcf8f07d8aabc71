/* imgbuild validate RECIPE...: parse and check every recipe, its includes, copied files, agent
 * configs and base definition, without building. */
#include <getopt.h>
#include <stdio.h>

#include "build-steps.h"
#include "cli.h"
#include "log.h"

static void validate_help(void) {
        printf("Usage: imgbuild validate [OPTIONS] RECIPE...\n"
               "\n"
               "Check recipes without building: syntax, variables, provider settings, included\n"
               "files, copied files, agent configs (all but user and group names, which are\n"
               "looked up in the build VM) and the base image definition. Prints \"RECIPE: ok\"\n"
               "for each good recipe and gcc-style errors for the others. Variables without a\n"
               "value are allowed here (a build needs them).\n"
               "\n"
               "Options:\n"
               "  -h, --help            show this help\n"
               CLI_VAR_OPTIONS_HELP
               "\n"
               "Exit status: 0 if all are valid, 2 if any has errors, 1 on usage errors.\n");
}

static int validate_option(int opt, const char *arg, void *userdata) {
        if (opt == 'h') {
                validate_help();
                return 1;
        }
        return -EINVAL;
}

int cmd_validate(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                CLI_VAR_OPTIONS,
                {}
        };
        _cleanup_(cli_recipe_options_done) RecipeOptions o = {};
        int r;

        r = cli_parse_options(argc, argv, options, &o, validate_option, NULL);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_FAILURE_GENERIC;
        if (optind >= argc) {
                log_error("validate needs at least one recipe (see imgbuild validate --help)");
                return EXIT_FAILURE_GENERIC;
        }

        int status = EXIT_OK;
        for (int i = optind; i < argc; i++) {
                _cleanup_(recipe_freep) Recipe *recipe = NULL;
                r = cli_load_recipe(argv[i], &o, &recipe);
                if (r >= 0)
                        r = build_steps_check(recipe);
                if (r == -ENOMEM)
                        return EXIT_FAILURE_GENERIC;
                if (r < 0) {
                        status = EXIT_RECIPE_ERROR;
                        continue;
                }
                printf("%s: ok\n", argv[i]);
        }
        return status;
}
