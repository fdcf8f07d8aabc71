#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "http.h"
#include "interrupt.h"
#include "json.h"
#include "log.h"
#include "strv.h"

typedef struct Command {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
} Command;

/* The one dispatch table: a command is a row here, its cmd_<name>() declared in cli.h and
 * defined in cmd-<name>.c. */
static const Command commands[] = {
        { "build", cmd_build, "Build a template from a recipe (also: imgbuild RECIPE)" },
        { "validate", cmd_validate, "Check recipes for errors without building" },
        { "inspect", cmd_inspect, "Show a recipe's variables, provider settings and steps" },
        { "base", cmd_base, "Build (or find) the base image of an image definition" },
        { "vm-exec", cmd_vm_exec, "Boot a base image and run one command in it" },
        { "templates", cmd_templates, "List the templates in the local store" },
        { "gc", cmd_gc, "Remove step layers no template or newest build refers to" },
        { "push", cmd_push, "Upload a local template to Exoscale and register it" },
        { "serve", cmd_serve, "Run the local cloud services (metadata, Vault, API) for a state dir" },
        { "pool", cmd_pool, "Create, inspect, scale, roll and delete local instance pools" },
        { "kube-apiserver", cmd_kube_apiserver, "Run the local Kubernetes API stand-in (kube-apiserver flags)" },
};

static void help(void) {
        printf("Usage: imgbuild [--help] [--version] [-v|--verbose] COMMAND [ARGS...]\n"
               "       imgbuild RECIPE [BUILD OPTIONS...]   (same as imgbuild build RECIPE)\n"
               "\n"
               "Bakes VM templates from recipes.\n"
               "\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-10s %s\n", commands[i].name, commands[i].summary);
        printf("\n"
               "Run 'imgbuild COMMAND --help' for a command's options.\n"
               "Exit status: 0 success, 1 usage or system error, 2 recipe errors, 3 not implemented.\n");
}

int cli_var_option(RecipeOptions *o, int opt, const char *arg) {
        int r;
        switch (opt) {
        case CLI_OPT_VAR:
                r = strv_push(&o->vars, arg);
                break;
        case CLI_OPT_VAR_FILE:
                r = strv_push(&o->var_files, arg);
                break;
        default:
                return 0;
        }
        return r < 0 ? r : 1;
}

int cli_parse_options(int argc, char **argv, const struct option *options, RecipeOptions *o,
                      int (*handle)(int opt, const char *arg, void *userdata), void *userdata) {
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == '?')
                        return -EINVAL; /* getopt said what was wrong */
                r = cli_var_option(o, c, optarg);
                if (r < 0)
                        return log_error_errno(r, "Failed to record option: %m");
                if (r > 0)
                        continue;
                r = handle(c, optarg, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

void cli_recipe_options_done(RecipeOptions *o) {
        /* --var values may be secrets. */
        for (char **v = o->vars; v && *v; v++)
                explicit_bzero(*v, strlen(*v));
        strv_free(o->vars);
        strv_free(o->var_files);
        o->vars = o->var_files = NULL;
}

int cli_load_recipe(const char *path, const RecipeOptions *o, Recipe **ret) {
        Diagnostics diag = {};
        int r = recipe_parse_file(path, o, &diag, ret);
        diagnostics_print(&diag, stderr);
        diagnostics_free(&diag);
        if (r == -ENOMEM)
                return log_error_errno(r, "Failed to parse %s: %m", path);
        if (r >= 0)
                log_debug("%s: template %s %s, %zu variables, %zu steps", path, (*ret)->template_name,
                          (*ret)->template_version, (*ret)->n_vars, (*ret)->n_steps);
        return r;
}

bool cli_is_recipe_argument(const char *arg) {
        size_t n = strlen(arg);
        struct stat st;
        if (n > 7 && streq(arg + n - 7, ".recipe"))
                return true;
        return stat(arg, &st) == 0 && S_ISREG(st.st_mode);
}

static const Command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static int run_command(const Command *c, int argc, char **argv) {
        /* Each command parses its own options from the start of its argv. */
        optind = 0;
        return c->run(argc, argv);
}

int imgbuild_main(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "verbose", no_argument, NULL, 'v' },
                {}
        };
        int c;

        log_set_program("imgbuild");
        /* A command-line tool: plain "imgbuild: error: ..." lines even when piped. */
        log_set_journal_style(0);
        /* The one signal policy of every command: a signal kills the VMs and sessions registered
         * with lib/interrupt.h, or the process when there are none; services (serve, kube-apiserver)
         * hold it and stop their loop when interrupt_signal_flag() is set. */
        interrupt_install();

        optind = 0;
        /* '+': stop at the command name; the rest belongs to the command. */
        while ((c = getopt_long(argc, argv, "+hVv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'V':
                        printf("imgbuild %s\n", IMGBUILD_VERSION);
                        return EXIT_OK;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return EXIT_FAILURE_GENERIC;
                }

        if (optind >= argc) {
                help();
                return EXIT_FAILURE_GENERIC;
        }
        /* Once, before any thread (progress.c starts one; curl_global_init is not thread-safe),
         * as http.h asks. */
        if (http_global_init() < 0) {
                log_error("Failed to initialize libcurl");
                return EXIT_FAILURE_GENERIC;
        }
        /* imgbuild serve holds the local Vault's tokens, keys and KV values in jansson objects. */
        json_wipe_on_free();

        const char *name = argv[optind];
        const Command *cmd = find_command(name);
        if (cmd)
                return run_command(cmd, argc - optind, argv + optind);

        if (cli_is_recipe_argument(name)) {
                /* imgbuild RECIPE [options]: build, with the recipe as its argument. */
                _cleanup_free_ char **args = calloc((size_t) (argc - optind) + 2, sizeof(char *));
                if (!args) {
                        log_error_errno(-ENOMEM, "Failed to allocate: %m");
                        return EXIT_FAILURE_GENERIC;
                }
                args[0] = (char *) "build";
                for (int i = optind; i < argc; i++)
                        args[i - optind + 1] = argv[i];
                return run_command(find_command("build"), argc - optind + 1, args);
        }

        const char *names[ELEMENTSOF(commands) + 1] = {};
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                names[i] = commands[i].name;
        const char *hint = diagnostics_closest_name(name, names);
        if (hint)
                log_error("unknown command '%s'; did you mean '%s'?", name, hint);
        else
                log_error("unknown command '%s' (see imgbuild --help)", name);
        return EXIT_FAILURE_GENERIC;
}
