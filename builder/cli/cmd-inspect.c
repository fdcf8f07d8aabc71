/* imgbuild inspect RECIPE [--json]: the resolved model, secrets masked. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "json.h"
#include "log.h"

static void inspect_help(void) {
        printf("Usage: imgbuild inspect [OPTIONS] RECIPE\n"
               "\n"
               "Show a recipe as the builder sees it: template, base, variables with their\n"
               "values and where each value came from (secret values as <secret>), provider\n"
               "settings, and every step with its location and expanded arguments.\n"
               "\n"
               "Options:\n"
               "  -h, --help            show this help\n"
               "      --json            print JSON instead of text\n"
               CLI_VAR_OPTIONS_HELP
               "\n"
               "Exit status: 0 on success, 2 if the recipe has errors, 1 on usage errors.\n");
}

static void print_text(const Recipe *r) {
        char mem[32], disk[32];

        printf("recipe:   %s\n", r->path);
        printf("template: %s %s\n", r->template_name, r->template_version);
        printf("base:     %s (%s)\n", r->base_name, r->base_dir ? r->base_dir : "not resolved");
        printf("variables:\n");
        if (r->n_vars == 0)
                printf("  (none)\n");
        for (size_t i = 0; i < r->n_vars; i++) {
                const RecipeVar *v = &r->vars[i];
                if (!v->value)
                        printf("  %s: no value (required)\n", v->name);
                else
                        printf("  %s = \"%s\" (%s%s)\n", v->name, v->secret ? "<secret>" : v->value,
                               v->secret ? "secret, " : "", recipe_var_source_to_string(v->source));
        }
        recipe_format_size(r->qemu.memory, mem);
        recipe_format_size(r->qemu.disk, disk);
        printf("qemu:     memory=%s cpus=%u disk=%s\n", mem, r->qemu.cpus, disk);
        if (r->exoscale.set)
                printf("exoscale: zone=%s instance-type=%s template=\"%s\" disk=%u\n", r->exoscale.zone,
                       r->exoscale.instance_type, r->exoscale.template, r->exoscale.disk_gb);
        printf("steps:\n");
        if (r->n_steps == 0)
                printf("  (none)\n");
        for (size_t i = 0; i < r->n_steps; i++) {
                const RecipeStep *s = &r->steps[i];
                printf("  %zu. %s:%u: %s", i + 1, s->file, s->line, recipe_step_kind_to_string(s->kind));
                for (char **a = s->display_args; a && *a; a++)
                        printf(" %s", *a);
                printf("\n");
                for (char **e = s->display_env; e && *e; e++)
                        printf("       env %s\n", *e);
                for (char **f = s->host_files; f && *f; f++)
                        printf("       reads %s\n", *f);
        }
}

static int inspect_option(int opt, const char *arg, void *userdata) {
        bool *json = userdata;
        switch (opt) {
        case 'h':
                inspect_help();
                return 1;
        case 'j':
                *json = true;
                return 0;
        default:
                return -EINVAL;
        }
}

int cmd_inspect(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                CLI_VAR_OPTIONS,
                {}
        };
        _cleanup_(cli_recipe_options_done) RecipeOptions o = {};
        _cleanup_(recipe_freep) Recipe *recipe = NULL;
        bool json = false;
        int r;

        r = cli_parse_options(argc, argv, options, &o, inspect_option, &json);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_FAILURE_GENERIC;
        if (optind + 1 != argc) {
                log_error("inspect needs exactly one recipe (see imgbuild inspect --help)");
                return EXIT_FAILURE_GENERIC;
        }

        r = cli_load_recipe(argv[optind], &o, &recipe);
        if (r < 0)
                return r == -EINVAL ? EXIT_RECIPE_ERROR : EXIT_FAILURE_GENERIC;

        if (!json) {
                print_text(recipe);
                return EXIT_OK;
        }
        _cleanup_json_ json_t *j = recipe_to_json(recipe);
        _cleanup_free_ char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        if (!text) {
                log_error_errno(-ENOMEM, "Failed to format JSON: %m");
                return EXIT_FAILURE_GENERIC;
        }
        printf("%s\n", text);
        return EXIT_OK;
}
