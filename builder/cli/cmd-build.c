/* imgbuild build RECIPE: parse and validate the recipe (every variable needs a value), find or
 * build its base image, run the steps in a build VM (one cached layer per step) and install the
 * result as NAME@VERSION in the local template store (builder/store/templates.h). */
#include <getopt.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "build-steps.h"
#include "cli.h"
#include "base-definition.h"
#include "json.h"
#include "log.h"
#include "progress.h"
#include "provider-exoscale.h"
#include "qemu.h"
#include "runner.h"
#include "strv.h"
#include "export.h"
#include "templates.h"
#include "time-util.h"

typedef struct BuildOptions {
        RecipeOptions recipe;
        bool json;            /* machine-readable events on stdout */
        bool plan;            /* show which steps are cached and which would run, build nothing */
        const char *cache_dir;
        const char *bootagent;
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
               "      --json            one JSON event per line on stdout: step-start, step-end\n"
               "                        (key, cached, seconds), build-end (template path);\n"
               "                        with --plan, plan events (the base is index 0)\n"
               "      --plan            show the cache state of the base image and of each step\n"
               "                        (hit, or miss: would be built; a step after a miss runs\n"
               "                        too) and exit 0, without building or booting anything\n"
               "      --cache-dir DIR   image store: base images, step layers, templates\n"
               "                        (default $IMGBUILD_CACHE_DIR or ~/.cache/imgbuild)\n"
               "      --bootagent PATH  bootagent binary to bake into the base image\n"
               "      --provider NAME   qemu (default: local VM, cached step layers) or exoscale\n"
               "                        (see imgbuild build --provider exoscale --help)\n"
               CLI_VAR_OPTIONS_HELP
               "\n"
               "On a terminal each step shows as one line that counts its seconds while it runs\n"
               "(output and messages scroll above it); piped, plain lines.\n"
               "\n"
               "The template lands in STORE/templates/NAME/VERSION (disk.qcow2, vmlinuz,\n"
               "initrd.img, manifest.json); its directory is printed on success.\n"
               "\n"
               "Exit status: 0 on success, 2 if the recipe (or an agent config it installs) has\n"
               "errors, 1 on other errors (128+N when killed by signal N).\n");
}

static int print_json_line(json_t *event) {
        _cleanup_free_ char *text = event ? json_dump_compact(event) : NULL;
        json_decref(event);
        if (!text)
                return log_error_errno(-ENOMEM, "Out of memory");
        printf("%s\n", text);
        return 0;
}

/* Whether the base image and each step have a committed layer (hygiene follows the last step and
 * is not listed). Builds nothing: the keys are content keys, computable without the base disk. */
static int build_plan(const Recipe *recipe, const BuildOptions *o, const char *store) {
        _cleanup_strv_free_ char **keys = NULL;
        _cleanup_free_ char *failed = NULL;
        char base_key[SHA256_HEX_SIZE];
        int r;

        r = base_find(recipe->base_definition, store, o->bootagent, base_key);
        if (r < 0)
                return r;
        /* Without the base, every step runs, whatever the store holds. */
        bool miss = r == 0;
        if (o->json)
                r = print_json_line(json_pack("{s:s, s:I, s:s, s:s, s:s}", "event", "plan", "index", (json_int_t) 0,
                                              "step", "base", "key", base_key, "state", miss ? "miss" : "hit"));
        else
                r = printf("%-4s %2d %.12s base %s%s\n", miss ? "miss" : "hit", 0, base_key,
                           recipe->base_definition, miss ? " (will be built)" : "") < 0 ? -EIO : 0;
        if (r < 0)
                return r;

        r = recipe_step_keys(recipe, base_key, &keys, &failed);
        if (r < 0)
                return log_error_errno(r, "Failed to compute step keys (reading %s): %m", strempty(failed));
        for (size_t i = 0; i < recipe->n_steps; i++) {
                const RecipeStep *s = &recipe->steps[i];
                _cleanup_free_ char *layer = NULL, *done = NULL, *args = NULL;
                r = runner_layer_path(store, keys[i], &layer);
                if (r < 0 || asprintf(&done, "%.*s.done", (int) (strlen(layer) - strlen(".qcow2")), layer) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
                miss = miss || access(done, F_OK) < 0;
                args = strv_join(s->display_args ? s->display_args : (char *[]) { NULL }, " ");
                if (!args)
                        return log_error_errno(-ENOMEM, "Out of memory");
                if (o->json)
                        r = print_json_line(json_pack("{s:s, s:I, s:s, s:s, s:s}", "event", "plan", "index",
                                                      (json_int_t) i + 1, "step", recipe_step_kind_to_string(s->kind),
                                                      "key", keys[i], "state", miss ? "miss" : "hit"));
                else
                        r = printf("%-4s %2zu %.12s %s %.60s\n", miss ? "miss" : "hit", i + 1, keys[i],
                                   recipe_step_kind_to_string(s->kind), args) < 0 ? -EIO : 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

int cmd_build(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "plan", no_argument, NULL, 'p' },
                { "cache-dir", required_argument, NULL, 'c' },
                { "bootagent", required_argument, NULL, 'b' },
                { "provider", required_argument, NULL, 'P' },
                CLI_VAR_OPTIONS,
                {}
        };
        _cleanup_(build_options_done) BuildOptions o = { .recipe = { .require_values = true } };
        _cleanup_(recipe_freep) Recipe *recipe = NULL;
        int c, r;

        r = build_provider_is_exoscale(argc, argv);
        if (r != 0)
                return r > 0 ? cmd_build_exoscale(argc, argv) : EXIT_FAILURE_GENERIC;
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
                case 'b':
                        o.bootagent = optarg;
                        break;
                case 'P':
                        break; /* qemu: build_provider_is_exoscale() checked it */
                default:
                        return EXIT_FAILURE_GENERIC;
                }
        }
        if (optind + 1 != argc) {
                log_error("build needs exactly one recipe (see imgbuild build --help)");
                return EXIT_FAILURE_GENERIC;
        }

        r = cli_load_recipe(argv[optind], &o.recipe, &recipe);
        if (r >= 0)
                r = build_steps_check(recipe);
        if (r < 0)
                return r == -EINVAL ? EXIT_RECIPE_ERROR : EXIT_FAILURE_GENERIC;

        _cleanup_(base_image_done) base_image base = {};
        _cleanup_free_ char *store = NULL, *template_dir = NULL;
        r = base_store_dir(o.cache_dir, &store);
        if (r < 0) {
                log_error_errno(r, "Failed to find the image store (set --cache-dir or IMGBUILD_CACHE_DIR): %m");
                return EXIT_FAILURE_GENERIC;
        }
        if (o.plan)
                return build_plan(recipe, &o, store) < 0 ? EXIT_FAILURE_GENERIC : EXIT_OK;

        /* Live lines only for a person watching: not when piped, not for --json. */
        _cleanup_(progress_freep) progress *display = NULL;
        const char *term = getenv("TERM");
        progress_mode mode = o.json ? PROGRESS_JSON
                : isatty(STDERR_FILENO) && !(term && streq(term, "dumb")) ? PROGRESS_LIVE : PROGRESS_PLAIN;
        r = progress_new(mode, &display);
        if (r < 0 && mode == PROGRESS_LIVE) {
                log_warning_errno(r, "Failed to set up the progress display, showing plain lines: %m");
                r = progress_new(PROGRESS_PLAIN, &display);
        }
        if (r < 0) {
                log_error_errno(r, "Out of memory");
                return EXIT_FAILURE_GENERIC;
        }

        progress_task_start(display, "base image", NULL);
        r = base_ensure(recipe->base_definition, store, o.bootagent, false, &base);
        progress_task_end(display, r >= 0);
        if (r < 0)
                return r == -EINVAL ? EXIT_RECIPE_ERROR : EXIT_FAILURE_GENERIC;

        /* Recorded before the steps run, so gc keeps what an interrupted build resumes from. */
        _cleanup_strv_free_ char **keys = NULL;
        r = recipe_step_keys(recipe, base.key, &keys, NULL);
        if (r >= 0)
                r = build_record_write(store, recipe, keys);
        if (r < 0)
                log_warning_errno(r, "Failed to record this build's steps for gc: %m");

        _cleanup_(build_result_done) build_result result = {};
        int64_t t0 = time_now_ms();
        r = build_steps_run(recipe, &base, store, display, &result);
        if (r >= 0) {
                r = template_current(store, recipe, &result);
                if (r < 0) {
                        log_warning_errno(r, "Failed to read the previous build of %s@%s, exporting again: %m",
                                          recipe->template_name, recipe->template_version);
                        r = 0;
                }
        }
        if (r > 0) {
                log_info("Template %s@%s is up to date", recipe->template_name, recipe->template_version);
                r = asprintf(&template_dir, "%s/templates/%s/%s", store, recipe->template_name,
                             recipe->template_version) < 0 ? log_error_errno(-ENOMEM, "Out of memory") : 0;
        } else if (r >= 0)
                r = template_install(store, recipe, &base, &result, display, &template_dir);
        if (r < 0) {
                if (qemu_interrupted())
                        return 128 + qemu_interrupted();
                return r == -EINVAL ? EXIT_RECIPE_ERROR : EXIT_FAILURE_GENERIC;
        }
        display = progress_free(display);
        double seconds = (double) (time_now_ms() - t0) / 1000.0;
        size_t ran = 0;
        for (size_t i = 0; i < result.n_steps; i++)
                ran += !result.steps[i].cached;
        if (o.json)
                return print_json_line(json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:f}", "event", "build-end",
                                                 "template", recipe->template_name, "version",
                                                 recipe->template_version, "path", template_dir, "steps",
                                                 (json_int_t) result.n_steps, "built", (json_int_t) ran,
                                                 "seconds", seconds)) < 0 ? EXIT_FAILURE_GENERIC : EXIT_OK;
        printf("%s@%s: %zu of %zu steps built, %zu cached, %.1f s\n%s\n", recipe->template_name,
               recipe->template_version, ran, result.n_steps, result.n_steps - ran, seconds, template_dir);
        return EXIT_OK;
}
