#include "qemu-build.h"

#include <stdio.h>
#include <unistd.h>

#include "base-definition.h"
#include "build-steps.h"
#include "export.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "progress.h"
#include "runner.h"
#include "strv.h"
#include "templates.h"
#include "time-util.h"

enum { OPT_JSON = BUILD_PROVIDER_OPT_FIRST, OPT_PLAN };

typedef struct qemu_build {
        bool json;                  /* machine-readable events on stdout */
        bool plan;                  /* show which steps are cached and which would run, build nothing */
        const build_context *ctx;
        progress *display;
        progress *own_display;      /* display, when ours */
        const base_image *base;
        base_image own_base;        /* base, when ours */
        bool store_locked;          /* store_lock_fd holds the store's shared lock (gc waits) */
        int store_lock_fd;
        char **keys;                /* the recipe's steps' cache keys */
        RecipeStepInputs *inputs;   /* the host files each key was computed from */
        size_t n_inputs;
        struct qemu_step { const RecipeStep *step; const RecipeStepInputs *inputs; } *recipe_steps;
        char **names;               /* their display names */
        char hygiene_key[SHA256_HEX_SIZE];
        char *packages;             /* STORE/layers/KEY.packages.json of the hygiene layer */
        runner_step *steps;         /* the recipe's steps, then hygiene */
        size_t n;
        runner_config config;
        runner *runner;
        build_result result;
        int64_t t0;
} qemu_build;

static int qemu_parse_option(void *state, int opt, const char *arg) {
        qemu_build *q = state;
        switch (opt) {
        case OPT_JSON:
                q->json = true;
                return 0;
        case OPT_PLAN:
                q->plan = true;
                return 0;
        default:
                return -EINVAL;
        }
}

static void qemu_done(void *state) {
        qemu_build *q = state;
        q->runner = runner_free(q->runner);
        build_result_done(&q->result);
        free(q->steps);
        free(q->packages);
        strv_free(q->names);
        strv_free(q->keys);
        /* (not through q->ctx: the recipe may be gone by now) */
        q->inputs = recipe_step_inputs_free(q->inputs, q->n_inputs);
        free(q->recipe_steps);
        q->recipe_steps = NULL;
        base_image_done(&q->own_base);
        q->own_display = progress_free(q->own_display);
        if (q->store_locked)
                close(q->store_lock_fd);
        q->store_locked = false;
        q->display = NULL;
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
static int build_plan(const qemu_build *q) {
        const Recipe *recipe = q->ctx->recipe;
        const char *store = q->ctx->store;
        _cleanup_strv_free_ char **keys = NULL;
        _cleanup_free_ char *failed = NULL;
        char base_key[SHA256_HEX_SIZE];
        int r;

        r = base_find(recipe->base_definition, store, q->ctx->bootagent, base_key);
        if (r < 0)
                return r;
        /* Without the base, every step runs, whatever the store holds. */
        bool miss = r == 0;
        if (q->json)
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
                if (q->json)
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

/* The step, then whether what it sent is what its key covers: its layer is committed only then. */
static int run_recipe_step(comm_client *c, void *userdata) {
        const struct qemu_step *s = userdata;
        return build_step_run_checked(c, s->step, s->inputs);
}

static int run_hygiene(comm_client *c, void *userdata) {
        const qemu_build *q = userdata;
        const Recipe *recipe = q->ctx->recipe;
        return build_hygiene_run(c, recipe->n_steps > 0 ? &recipe->steps[recipe->n_steps - 1] : NULL, q->packages);
}

/* The runner's step table: one layer per recipe step, keyed by the recipe, then hygiene, whose
 * key follows the last step's, so it is cached with it. */
static int make_steps(qemu_build *q) {
        const Recipe *recipe = q->ctx->recipe;
        int r;

        q->n = recipe->n_steps + 1;
        q->steps = calloc(q->n, sizeof(*q->steps));
        q->recipe_steps = calloc(q->n, sizeof(*q->recipe_steps));
        if (!q->steps || !q->recipe_steps)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (size_t i = 0; i < recipe->n_steps; i++) {
                const RecipeStep *s = &recipe->steps[i];
                q->recipe_steps[i] = (struct qemu_step) { .step = s, .inputs = &q->inputs[i] };
                r = strv_consume(&q->names, build_step_name(s));
                if (r < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
                q->steps[i] = (runner_step) {
                        .key = q->keys[i],
                        .name = q->names[i],
                        .network = s->kind == RECIPE_STEP_PACKAGES || (s->kind == RECIPE_STEP_DOWNLOAD && !s->source),
                        .run = run_recipe_step,
                        .userdata = &q->recipe_steps[i],
                };
        }
        if (build_hygiene_key(recipe->n_steps > 0 ? q->keys[recipe->n_steps - 1] : q->base->key, q->hygiene_key) < 0 ||
            asprintf(&q->packages, "%s/layers/%s.packages.json", q->ctx->store, q->hygiene_key) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        q->steps[recipe->n_steps] = (runner_step) {
                .key = q->hygiene_key,
                .name = BUILD_HYGIENE_NAME,
                .run = run_hygiene,
                .userdata = q,
        };
        return 0;
}

/* The step table and the runner, for a recipe on q->base. */
static int setup_steps(qemu_build *q) {
        const Recipe *recipe = q->ctx->recipe;
        _cleanup_free_ char *failed = NULL;
        int r;

        r = recipe_step_keys_inputs(recipe, q->base->key, &q->keys, &q->inputs, &failed);
        if (r >= 0)
                q->n_inputs = recipe->n_steps;
        if (r < 0)
                return log_error_errno(r, "Failed to compute step keys (reading %s): %m", strempty(failed));
        r = make_steps(q);
        if (r < 0)
                return r;
        q->config = (runner_config) {
                .store = q->ctx->store,
                .base = q->base,
                .memory_mb = (unsigned) (recipe->qemu.memory / (1024 * 1024)),
                .cpus = recipe->qemu.cpus,
                .disk_size = recipe->qemu.disk,
                .progress = q->display,
        };
        return runner_new(&q->config, q->steps, q->n, &q->runner);
}

static int qemu_prepare(void *state, const build_context *ctx) {
        qemu_build *q = state;
        const Recipe *recipe = ctx->recipe;
        int r;

        q->ctx = ctx;
        if (q->plan) {
                r = build_plan(q);
                /* Not a recipe error: the plan only looks. */
                return r < 0 ? (r == -EINVAL ? -EIO : r) : 1;
        }

        /* Live lines only for a person watching: not when piped, not for --json. */
        const char *term = getenv("TERM");
        progress_mode mode = q->json ? PROGRESS_JSON
                : isatty(STDERR_FILENO) && !(term && streq(term, "dumb")) ? PROGRESS_LIVE : PROGRESS_PLAIN;
        r = progress_new(mode, &q->own_display);
        if (r < 0 && mode == PROGRESS_LIVE) {
                log_warning_errno(r, "Failed to set up the progress display, showing plain lines: %m");
                r = progress_new(PROGRESS_PLAIN, &q->own_display);
        }
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        q->display = q->own_display;

        progress_task_start(q->display, "base image", NULL);
        r = base_ensure(recipe->base_definition, ctx->store, ctx->bootagent, false, &q->own_base);
        progress_task_end(q->display, r >= 0);
        if (r < 0)
                return r;
        q->base = &q->own_base;

        /* gc (which removes step layers, not base images) must not drop the layers this build
         * reads or is about to record. */
        r = store_lock(ctx->store, false, &q->store_lock_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to lock the image store %s: %m", ctx->store);
        q->store_locked = true;

        /* Recorded before the steps run, so gc keeps what an interrupted build resumes from. */
        _cleanup_strv_free_ char **keys = NULL;
        r = recipe_step_keys(recipe, q->base->key, &keys, NULL);
        if (r >= 0)
                r = build_record_write(ctx->store, recipe, keys);
        if (r < 0)
                log_warning_errno(r, "Failed to record this build's steps for gc: %m");
        q->t0 = time_now_ms();
        r = setup_steps(q);
        return r == -EINVAL ? -EIO : r;
}

static int qemu_connect(void *state, comm_client **ret) {
        qemu_build *q = state;
        return runner_boot(q->runner, ret);
}

static int qemu_run_step(void *state, comm_client *c, size_t i) {
        qemu_build *q = state;
        return runner_run_step(q->runner, i);
}

/* The result: each step's key, cache state and time, the last layer and its package list. */
static int collect_result(qemu_build *q) {
        _cleanup_(build_result_done) build_result res = { .steps = calloc(q->n, sizeof(build_step_result)) };
        int r;

        if (!res.steps)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (size_t i = 0; i < q->n; i++) {
                res.steps[i] = (build_step_result) { .key = strdup(q->steps[i].key), .name = strdup(q->steps[i].name),
                                                     .cached = q->steps[i].cached, .seconds = q->steps[i].seconds };
                res.n_steps++;
                if (!res.steps[i].key || !res.steps[i].name)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }
        res.disk = runner_disk(q->runner);
        if (!res.disk)
                return log_error_errno(-ENOMEM, "Out of memory");
        /* Cached or just built, the hygiene layer's package list is next to it. */
        _cleanup_free_ char *list = NULL;
        r = read_file(q->packages, 16 * 1024 * 1024, &list, NULL);
        if (r >= 0)
                r = json_parse(list, strlen(list), &res.packages, NULL);
        if (r >= 0 && !json_is_array(res.packages))
                r = -EBADMSG;
        if (r < 0)
                return log_error_errno(r, "Failed to read the package list %s (remove %.*s.done to rebuild the "
                                       "layer): %m", q->packages, (int) (strlen(q->packages) - strlen(".packages.json")),
                                       q->packages);
        q->result = res;
        res = (build_result) {};
        return 0;
}

static int qemu_finish(void *state, int r) {
        qemu_build *q = state;
        if (r >= 0 && q->runner)
                r = collect_result(q);
        /* The VM is off after the last step (its layer frozen by the power-off); after a failure
         * it is killed and the unfinished layer goes. */
        q->runner = runner_free(q->runner);
        return r;
}

static int qemu_export(void *state) {
        qemu_build *q = state;
        const Recipe *recipe = q->ctx->recipe;
        const char *store = q->ctx->store;
        _cleanup_free_ char *template_dir = NULL;
        int r;

        r = template_current(store, recipe, &q->result);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the previous build of %s@%s, exporting again: %m",
                                  recipe->template_name, recipe->template_version);
                r = 0;
        }
        if (r > 0) {
                log_info("Template %s@%s is up to date", recipe->template_name, recipe->template_version);
                r = asprintf(&template_dir, "%s/templates/%s/%s", store, recipe->template_name,
                             recipe->template_version) < 0 ? log_error_errno(-ENOMEM, "Out of memory") : 0;
        } else
                r = template_install(store, recipe, q->base, &q->result, q->display, &template_dir);
        if (r < 0)
                return r;
        q->own_display = progress_free(q->own_display);
        q->display = NULL;

        double seconds = (double) (time_now_ms() - q->t0) / 1000.0;
        const build_result *result = &q->result;
        size_t ran = 0;
        for (size_t i = 0; i < result->n_steps; i++)
                ran += !result->steps[i].cached;
        if (q->json)
                return print_json_line(json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:f}", "event", "build-end",
                                                 "template", recipe->template_name, "version",
                                                 recipe->template_version, "path", template_dir, "steps",
                                                 (json_int_t) result->n_steps, "built", (json_int_t) ran,
                                                 "seconds", seconds));
        printf("%s@%s: %zu of %zu steps built, %zu cached, %.1f s\n%s\n", recipe->template_name,
               recipe->template_version, ran, result->n_steps, result->n_steps - ran, seconds, template_dir);
        return 0;
}

int qemu_build_steps_run(const Recipe *recipe, const base_image *base, const char *store, progress *p,
                         build_result *ret) {
        build_context ctx = { .recipe = recipe, .store = store };
        qemu_build q = { .ctx = &ctx, .base = base, .display = p };
        comm_client *c = NULL;
        int r;

        r = build_steps_resolved(recipe);
        if (r >= 0)
                r = setup_steps(&q);
        if (r >= 0)
                r = runner_boot(q.runner, &c);
        for (size_t i = 0; r >= 0 && i < q.n; i++)
                r = runner_run_step(q.runner, i);
        r = qemu_finish(&q, r);
        if (r >= 0 && ret) {
                *ret = q.result;
                q.result = (build_result) {};
        }
        qemu_done(&q);
        return r;
}

static const struct option qemu_options[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "plan", no_argument, NULL, OPT_PLAN },
        {}
};

const build_provider_ops qemu_build_provider = {
        .name = "qemu",
        .summary = "local VM, cached step layers (default)",
        .description = "Build a template from a recipe. Every variable a step refers to needs a value.\n",
        .options_help =
                "      --json            one JSON event per line on stdout: step-start, step-end\n"
                "                        (key, cached, seconds), build-end (template path);\n"
                "                        with --plan, plan events (the base is index 0)\n"
                "      --plan            show the cache state of the base image and of each step\n"
                "                        (hit, or miss: would be built; a step after a miss runs\n"
                "                        too) and exit 0, without building or booting anything\n"
                "      --cache-dir DIR   image store: base images, step layers, templates\n"
                "                        (default $IMGBUILD_CACHE_DIR or ~/.cache/imgbuild)\n"
                "      --bootagent PATH  bootagent binary to bake into the base image\n",
        .notes =
                "On a terminal each step shows as one line that counts its seconds while it runs\n"
                "(output and messages scroll above it); piped, plain lines.\n"
                "\n"
                "The template lands in STORE/templates/NAME/VERSION (disk.qcow2, vmlinuz,\n"
                "initrd.img, manifest.json); its directory is printed on success.\n"
                "\n"
                "Exit status: 0 on success, 2 if the recipe (or an agent config it installs) has\n"
                "errors, 1 on other errors (128+N when killed by signal N).\n",
        .options = qemu_options,
        .state_size = sizeof(qemu_build),
        .parse_option = qemu_parse_option,
        .done = qemu_done,
        .prepare = qemu_prepare,
        .connect = qemu_connect,
        .run_step = qemu_run_step,
        .finish = qemu_finish,
        .export = qemu_export,
};
