#include "build-steps.h"

#include <stdio.h>
#include <sys/stat.h>

#include "comm-client.h"
#include "crypto.h"
#include "log.h"
#include "runner.h"
#include "strv.h"

/* Where copied files wait in the guest before they are installed at their destination. */
#define GUEST_STAGING "/run/imgbuild-staging"

/* Run argv in the guest with the step's env, output streamed to ours. 0 only on exit status 0. */
static int guest_run(comm_client *c, const RecipeStep *s, char *const *argv, char *const *extra_env) {
        _cleanup_strv_free_ char **env = strv_copy(s->env ? s->env : (char *[]) { NULL });
        _cleanup_free_ char *error = NULL;
        int r, status;

        if (!env)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (char *const *e = extra_env; e && *e; e++)
                if (strv_push(&env, *e) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
        r = comm_client_exec(c, argv, env, "/", STDOUT_FILENO, STDERR_FILENO, &status, &error);
        if (r == -EREMOTEIO) {
                log_error("%s:%u: Failed to start %s in the VM: %s", s->file, s->line, argv[0], error);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "%s:%u: Lost the VM while running %s: %m", s->file, s->line, argv[0]);
        if (status != 0) {
                log_error("%s:%u: %s exited with status %d", s->file, s->line, argv[0], status);
                return -EPROTO;
        }
        return 0;
}

static int step_packages(comm_client *c, const RecipeStep *s) {
        static char *const apt_env[] = { (char *) "DEBIAN_FRONTEND=noninteractive", NULL };
        /* The base image does not wait for the network at boot. */
        char *wait[] = { (char *) "/lib/systemd/systemd-networkd-wait-online", (char *) "--any",
                         (char *) "--timeout=90", NULL };
        char *update[] = { (char *) "apt-get", (char *) "update", (char *) "-q", NULL };
        _cleanup_strv_free_ char **install = NULL;
        int r;

        r = strv_split("apt-get install -y -q --no-install-recommends", " ", &install);
        for (char **p = s->packages; r >= 0 && p && *p; p++)
                r = strv_push(&install, *p);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        r = guest_run(c, s, wait, NULL);
        if (r >= 0)
                r = guest_run(c, s, update, apt_env);
        if (r >= 0)
                r = guest_run(c, s, install, apt_env);
        return r;
}

static int step_run(comm_client *c, const RecipeStep *s) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", s->command, NULL };
        return guest_run(c, s, argv, NULL);
}

/* Put a host file or directory into a fresh staging directory in the guest. */
static int put_staged(comm_client *c, const RecipeStep *s, const char *source) {
        char *clean[] = { (char *) "rm", (char *) "-rf", (char *) GUEST_STAGING, NULL };
        _cleanup_free_ char *error = NULL;
        int r;

        r = guest_run(c, s, clean, NULL);
        if (r < 0)
                return r;
        r = comm_client_put(c, source, GUEST_STAGING, &error);
        if (r == -EREMOTEIO)
                return log_error("%s:%u: Failed to copy %s into the VM: %s", s->file, s->line, source, error), r;
        if (r < 0)
                return log_error_errno(r, "%s:%u: Failed to copy %s into the VM: %m", s->file, s->line, source);
        return 0;
}

/* Install the staged file NAME at dest with mode and owner (owner NULL: root). */
static int install_staged_file(comm_client *c, const RecipeStep *s, const char *name, const char *dest,
                               mode_t mode, const char *owner) {
        static const char script[] =
                "set -e; mkdir -p \"$(dirname \"$2\")\"; cp -f \"$1\" \"$2\"; "
                "chown \"$3\" \"$2\"; chmod \"$4\" \"$2\"; rm -rf " GUEST_STAGING;
        _cleanup_free_ char *staged = NULL;
        char mode_text[16];

        if (asprintf(&staged, GUEST_STAGING "/%s", name) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        snprintf(mode_text, sizeof(mode_text), "%04o", (unsigned) mode);
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, (char *) "sh", staged,
                         (char *) dest, (char *) (owner ?: "root:root"), mode_text, NULL };
        return guest_run(c, s, argv, NULL);
}

static int step_copy(comm_client *c, const RecipeStep *s) {
        struct stat st;
        int r;

        if (stat(s->source, &st) < 0)
                return log_error_errno(errno, "%s:%u: %s: %m", s->file, s->line, s->source);
        r = put_staged(c, s, s->source);
        if (r < 0)
                return r;
        if (!S_ISDIR(st.st_mode)) {
                const char *base = strrchr(s->source, '/');
                return install_staged_file(c, s, base ? base + 1 : s->source, s->dest, s->mode, s->owner);
        }
        static const char script[] =
                "set -e; mkdir -p \"$1\"; cp -a " GUEST_STAGING "/. \"$1\"/; chown -R \"$2\" \"$1\"; "
                "rm -rf " GUEST_STAGING;
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, (char *) "sh", s->dest, s->owner, NULL };
        return guest_run(c, s, argv, NULL);
}

static int step_download(comm_client *c, const RecipeStep *s) {
        int r;

        if (s->source) {
                char hex[SHA256_HEX_SIZE];
                r = sha256_file_hex(s->source, hex);
                if (r < 0)
                        return log_error_errno(r, "%s:%u: Failed to read %s: %m", s->file, s->line, s->source);
                if (!streq(hex, s->sha256)) {
                        log_error("%s:%u: %s has sha256 %s, the recipe pins %s", s->file, s->line, s->source, hex,
                                  s->sha256);
                        return -EBADMSG;
                }
                r = put_staged(c, s, s->source);
                if (r < 0)
                        return r;
                const char *base = strrchr(s->source, '/');
                return install_staged_file(c, s, base ? base + 1 : s->source, s->dest, s->mode, NULL);
        }

        static const char script[] =
                "set -e; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; "
                "curl -fsSL --retry 3 -o \"$d/f\" \"$1\"; echo \"$2  $d/f\" | sha256sum -c --quiet -; "
                "mkdir -p \"$(dirname \"$3\")\"; install -m \"$4\" \"$d/f\" \"$3\"";
        char mode_text[16];
        snprintf(mode_text, sizeof(mode_text), "%04o", (unsigned) s->mode);
        char *wait[] = { (char *) "/lib/systemd/systemd-networkd-wait-online", (char *) "--any",
                         (char *) "--timeout=90", NULL };
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, (char *) "sh", s->url, s->sha256,
                         s->dest, mode_text, NULL };
        r = guest_run(c, s, wait, NULL);
        if (r < 0)
                return r;
        return guest_run(c, s, argv, NULL);
}

static int run_recipe_step(comm_client *c, void *userdata) {
        const RecipeStep *s = userdata;

        switch (s->kind) {
        case RECIPE_STEP_PACKAGES:
                return step_packages(c, s);
        case RECIPE_STEP_COPY:
                return step_copy(c, s);
        case RECIPE_STEP_RUN:
                return step_run(c, s);
        case RECIPE_STEP_DOWNLOAD:
                return step_download(c, s);
        case RECIPE_STEP_AGENT:
        default:
                log_error("%s:%u: '%s' steps cannot be run by the builder yet", s->file, s->line,
                          recipe_step_kind_to_string(s->kind));
                return -EOPNOTSUPP;
        }
}

/* "run systemctl mask ..." for progress lines: display arguments only (secrets masked), cut short. */
static char *step_name(const RecipeStep *s) {
        _cleanup_free_ char *args = strv_join(s->display_args ? s->display_args : (char *[]) { NULL }, " ");
        char *name;
        if (!args || asprintf(&name, "%s %.60s%s", recipe_step_kind_to_string(s->kind), args,
                              strlen(args) > 60 ? "..." : "") < 0)
                return NULL;
        return name;
}

int build_steps_run(const Recipe *recipe, const base_image *base, const char *store, char **ret_disk) {
        _cleanup_strv_free_ char **keys = NULL, **names = NULL;
        _cleanup_free_ char *failed = NULL;
        _cleanup_free_ runner_step *steps = NULL;
        int r;

        for (size_t i = 0; i < recipe->n_steps; i++)
                if (recipe->steps[i].unresolved) {
                        log_error("%s:%u: step refers to a variable without a value", recipe->steps[i].file,
                                  recipe->steps[i].line);
                        return -EINVAL;
                }
        r = recipe_step_keys(recipe, base->key, &keys, &failed);
        if (r < 0)
                return log_error_errno(r, "Failed to compute step keys (reading %s): %m", strempty(failed));

        steps = calloc(recipe->n_steps + 1, sizeof(*steps));
        if (!steps)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (size_t i = 0; i < recipe->n_steps; i++) {
                const RecipeStep *s = &recipe->steps[i];
                r = strv_consume(&names, step_name(s));
                if (r < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
                steps[i] = (runner_step) {
                        .key = keys[i],
                        .name = names[i],
                        .network = s->kind == RECIPE_STEP_PACKAGES || (s->kind == RECIPE_STEP_DOWNLOAD && !s->source),
                        .run = run_recipe_step,
                        .userdata = (void *) s,
                };
        }

        runner_config config = {
                .store = store,
                .base = base,
                .memory_mb = (unsigned) (recipe->qemu.memory / (1024 * 1024)),
                .cpus = recipe->qemu.cpus,
        };
        return runner_run(&config, steps, recipe->n_steps, ret_disk);
}
