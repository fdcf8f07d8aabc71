/* imgbuild command-line entry: one dispatch table (cli.c), one function per command in
 * builder/cli/cmd-<name>.c. A command gets argv with argv[0] = its name and parses its own options
 * with getopt_long (optind is reset before each command). It returns the process exit status. */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include "recipe.h"

/* Exit statuses shared by all commands. */
enum {
        EXIT_OK = 0,
        EXIT_FAILURE_GENERIC = 1,  /* usage errors, I/O failures */
        EXIT_RECIPE_ERROR = 2,     /* the recipe (or a var file, or the base definition) is wrong */
        EXIT_NOT_IMPLEMENTED = 3,
};

int imgbuild_main(int argc, char **argv);

/* Commands. Add new ones here and as a row in the table in cli.c. */
int cmd_build(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_templates(int argc, char **argv);
int cmd_gc(int argc, char **argv);
/* Exit status: 0, 1 for errors, 128+N when interrupted by signal N (after cleaning up). */
int cmd_push(int argc, char **argv);
/* Exit status 2 for usage errors (both). */
int cmd_base(int argc, char **argv);
int cmd_vm_exec(int argc, char **argv);
/* Exit status: 0 after SIGTERM/SIGINT, 1 for usage or system errors (a port in use), 2 when
 * DIR/cloud.json is invalid. */
int cmd_serve(int argc, char **argv);
/* Exit status: 0, 1 for errors (a busy pool among them), 4 when the cluster was not healthy
 * enough for the next step (the quorum floor). */
int cmd_pool(int argc, char **argv);
/* Exit status: 0 after SIGTERM/SIGINT, 1 for invalid flags or errors. */
int cmd_kube_apiserver(int argc, char **argv);

/* Options every recipe-reading command shares: --var NAME=VALUE and --var-file FILE. Returns 1
 * if opt was one of them (and records it), 0 if not, -ENOMEM. */
#define CLI_VAR_OPTIONS                                         \
        { "var", required_argument, NULL, CLI_OPT_VAR },        \
        { "var-file", required_argument, NULL, CLI_OPT_VAR_FILE }
enum { CLI_OPT_VAR = 0x100, CLI_OPT_VAR_FILE, CLI_OPT_FIRST_FREE };
int cli_var_option(RecipeOptions *o, int opt, const char *arg);
/* The option loop of a recipe-reading command: getopt_long over argv (short options: "h" only)
 * with options, which include CLI_VAR_OPTIONS; --var and --var-file go into o, every other option
 * to handle(opt, its argument, userdata), which returns 0 to go on, 1 to end the command with
 * EXIT_OK (it printed the help), or -errno (logged). Returns 0 once every option is read (optind:
 * the first operand), 1 (end with EXIT_OK), or -errno (logged, or getopt's message). */
int cli_parse_options(int argc, char **argv, const struct option *options, RecipeOptions *o,
                      int (*handle)(int opt, const char *arg, void *userdata), void *userdata);
void cli_recipe_options_done(RecipeOptions *o);
#define CLI_VAR_OPTIONS_HELP                                                                  \
        "      --var NAME=VALUE  set a variable (repeatable; overrides everything else)\n"  \
        "      --var-file FILE   read NAME = \"VALUE\" lines (repeatable; later files win)\n" \
        "Variables also come from IMGBUILD_VAR_<NAME> in the environment, which a\n"        \
        "--var-file or --var overrides.\n"

/* Parse a recipe and print its diagnostics to stderr. Returns 0 and the recipe, -EINVAL
 * (diagnostics were printed), or -ENOMEM (logged). */
int cli_load_recipe(const char *path, const RecipeOptions *o, Recipe **ret);

/* Whether an argument looks like a recipe rather than a command: it ends in ".recipe" or names
 * an existing regular file. */
bool cli_is_recipe_argument(const char *arg);
