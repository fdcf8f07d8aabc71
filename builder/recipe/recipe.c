/* The recipe model: freeing it, the names of its enums, and the path helpers the parser shares.
 * The parser itself is split by concern; recipe-internal.h lists the files. */
#include "recipe-internal.h"

#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "strv.h"

const char *recipe_step_kind_to_string(RecipeStepKind k) {
        static const char *const names[] = {
                [RECIPE_STEP_PACKAGES] = "packages",
                [RECIPE_STEP_COPY] = "copy",
                [RECIPE_STEP_RUN] = "run",
                [RECIPE_STEP_AGENT] = "agent",
                [RECIPE_STEP_DOWNLOAD] = "download",
        };
        return (unsigned) k < ELEMENTSOF(names) ? names[k] : NULL;
}

const char *recipe_var_source_to_string(RecipeVarSource s) {
        static const char *const names[] = {
                [RECIPE_VAR_UNSET] = "unset",
                [RECIPE_VAR_DEFAULT] = "default",
                [RECIPE_VAR_ENVIRONMENT] = "environment",
                [RECIPE_VAR_FILE] = "var-file",
                [RECIPE_VAR_COMMAND_LINE] = "command line",
        };
        return (unsigned) s < ELEMENTSOF(names) ? names[s] : NULL;
}

const char *recipe_digest_to_string(RecipeDigest d) {
        static const char *const names[] = {
                [RECIPE_DIGEST_SHA256] = "sha256",
                [RECIPE_DIGEST_SHA512] = "sha512",
        };
        return (unsigned) d < ELEMENTSOF(names) ? names[d] : NULL;
}

void recipe_format_size(uint64_t bytes, char out[32]) {
        static const char suffixes[] = "KMGT";
        int i = -1;
        while (i < 3 && bytes >= 1024 && bytes % 1024 == 0) {
                bytes /= 1024;
                i++;
        }
        if (i < 0)
                snprintf(out, 32, "%llu", (unsigned long long) bytes);
        else
                snprintf(out, 32, "%llu%c", (unsigned long long) bytes, suffixes[i]);
}

void recipe_step_done(RecipeStep *s) {
        free(s->file);
        strv_free(s->display_args);
        strv_free(s->packages);
        if (s->secret) {
                for (char **a = s->args; a && *a; a++)
                        explicit_bzero(*a, strlen(*a));
                if (s->command)
                        explicit_bzero(s->command, strlen(s->command));
                if (s->canonical)
                        explicit_bzero(s->canonical, s->canonical_len);
        }
        /* Env entries may hold secret values too. */
        for (char **e = s->env; e && *e; e++)
                explicit_bzero(*e, strlen(*e));
        strv_free(s->args);
        strv_free(s->env);
        strv_free(s->display_env);
        free(s->command);
        free(s->source);
        free(s->url);
        free(s->digest);
        free(s->dest);
        free(s->owner);
        free(s->role);
        free(s->config);
        strv_free(s->host_files);
        strv_free(s->host_names);
        strv_free(s->host_dirs);
        free(s->canonical);
}

Recipe *recipe_free(Recipe *r) {
        if (!r)
                return NULL;
        free(r->path);
        free(r->template_name);
        free(r->template_version);
        free(r->base_name);
        free(r->base_dir);
        free(r->base_definition);
        for (size_t i = 0; i < r->n_vars; i++) {
                free(r->vars[i].name);
                if (r->vars[i].secret)
                        free_secret(r->vars[i].value);
                else
                        free(r->vars[i].value);
                free(r->vars[i].file);
        }
        free(r->vars);
        free(r->exoscale.zone);
        free(r->exoscale.instance_type);
        free(r->exoscale.template);
        for (size_t i = 0; i < r->n_steps; i++)
                recipe_step_done(&r->steps[i]);
        free(r->steps);
        strv_free(r->files);
        free(r);
        return NULL;
}

/* ---- paths ---- */

char *recipe_path_join(const char *dir, const char *rel) {
        char *s;
        if (rel[0] == '/' || streq(dir, "."))
                return strdup(rel);
        size_t n = strlen(dir);
        if (asprintf(&s, "%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", rel) < 0)
                return NULL;
        return s;
}

/* The parent of a directory given as a display path, kept relative when it was relative. */
char *recipe_parent_dir(const char *dir) {
        const char *last = strrchr(dir, '/');
        last = last ? last + 1 : dir;
        if (streq(last, "..") || streq(dir, "."))
                return recipe_path_join(dir, "..");
        if (streq(dir, "/"))
                return strdup("/");
        return path_dirname(dir);
}

