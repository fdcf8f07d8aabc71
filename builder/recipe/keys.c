/* A step's identity: its canonical encoding and the cache key chain over all steps. */
#include "recipe-internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "strv.h"

static int netstring(buf *b, const char *s) {
        return buf_printf(b, "%zu:%s,", strlen(s), s);
}

static int netstring_count(buf *b, size_t n) {
        char count[32];
        snprintf(count, sizeof(count), "%zu", n);
        return netstring(b, count);
}

int recipe_step_canonical(RecipeStep *s) {
        _cleanup_buf_ buf b = BUF_INIT(0);
        int r = netstring(&b, "imgbuild-step/1");
        if (r >= 0)
                r = netstring(&b, recipe_step_kind_to_string(s->kind));
        if (r >= 0)
                r = netstring_count(&b, strv_length(s->args));
        for (char **a = s->args; r >= 0 && a && *a; a++)
                r = netstring(&b, *a);
        if (r >= 0)
                r = netstring_count(&b, strv_length(s->env));
        for (char **e = s->env; r >= 0 && e && *e; e++)
                r = netstring(&b, *e);
        if (r < 0) {
                buf_free_secret(&b);
                return r;
        }
        s->canonical_len = b.len;
        s->canonical = buf_steal(&b);
        return s->canonical ? 0 : -ENOMEM;
}

/* ---- cache keys ---- */

void recipe_step_inputs_done(RecipeStepInputs *in) {
        for (size_t i = 0; i < in->n; i++)
                free(in->items[i].path);
        free(in->items);
        *in = (RecipeStepInputs) {};
}

/* One input as it is now: lstat, and for a file the sha256 of its content (through a symlink,
 * as the copy reads it). */
RecipeStepInputs *recipe_step_inputs_free(RecipeStepInputs *a, size_t n) {
        for (size_t i = 0; a && i < n; i++)
                recipe_step_inputs_done(&a[i]);
        free(a);
        return NULL;
}

static int input_read(const char *path, bool file, RecipeHostInput *ret) {
        RecipeHostInput in = {};
        struct stat st;
        int r;

        if (lstat(path, &st) < 0)
                return negative_errno();
        in.mode = st.st_mode;
        in.ctime = st.st_ctim;
        if (file) {
                r = sha256_file_hex(path, in.sha256);
                if (r < 0)
                        return r;
        }
        in.path = strdup(path);
        if (!in.path)
                return -ENOMEM;
        *ret = in;
        return 0;
}

static int inputs_add(RecipeStepInputs *in, const char *path, bool file, char **ret_failed) {
        RecipeHostInput *items = reallocarray(in->items, in->n + 1, sizeof(*items));
        int r;

        if (!items)
                return -ENOMEM;
        in->items = items;
        r = input_read(path, file, &in->items[in->n]);
        in->items[in->n].file = file;
        if (r < 0) {
                if (ret_failed && r != -ENOMEM)
                        *ret_failed = strdup(path);
                return r;
        }
        in->n++;
        return 0;
}

int recipe_step_inputs_read(const RecipeStep *s, RecipeStepInputs *ret, char **ret_failed_path) {
        _cleanup_(recipe_step_inputs_done) RecipeStepInputs in = {};
        int r;

        for (size_t j = 0; s->host_files && s->host_files[j]; j++)
                if ((r = inputs_add(&in, s->host_files[j], true, ret_failed_path)) < 0)
                        return r;
        for (size_t j = 0; s->host_dirs && s->host_dirs[j]; j++) {
                _cleanup_free_ char *path = recipe_path_join(s->source, s->host_dirs[j]);
                if (!path)
                        return -ENOMEM;
                if ((r = inputs_add(&in, path, false, ret_failed_path)) < 0)
                        return r;
        }
        /* A local download's content is pinned by its sha256, which is in the key: it is here
         * only to be checked again after the step sent it. */
        if (s->kind == RECIPE_STEP_DOWNLOAD && s->source && (r = inputs_add(&in, s->source, true, ret_failed_path)) < 0)
                return r;
        *ret = in;
        in = (RecipeStepInputs) {};
        return 0;
}

static void hash_mode(sha256_ctx *c, const char *name, mode_t mode) {
        char text[32];
        snprintf(text, sizeof(text), "%06o", (unsigned) mode);
        sha256_update_str(c, name);
        sha256_update_str(c, text);
}

/* The part of a step's key that comes from the host (in, as recipe_step_inputs_read saw it):
 * each file's name and content, and for a copied directory the mode of every file and directory
 * in it (empty directories too). */
static void hash_host_inputs(sha256_ctx *c, const RecipeStep *s, const RecipeStepInputs *in) {
        size_t n_files = strv_length(s->host_files), n_dirs = strv_length(s->host_dirs);
        char count[32];

        snprintf(count, sizeof(count), "%zu", n_files);
        sha256_update_str(c, count);
        for (size_t j = 0; j < n_files; j++) {
                sha256_update_str(c, s->host_names[j]);
                sha256_update_str(c, in->items[j].sha256);
        }
        if (!s->host_dirs)
                return;
        snprintf(count, sizeof(count), "%zu", n_dirs);
        sha256_update_str(c, count);
        for (size_t j = 0; j < n_dirs; j++)
                hash_mode(c, s->host_dirs[j], in->items[n_files + j].mode);
        for (size_t j = 0; j < n_files; j++)
                hash_mode(c, s->host_names[j], in->items[j].mode);
}

/* The first entry of a copied directory the step's listing does not have (a file or directory
 * added since the recipe was read): its path, or NULL. */
static int find_new_entry(const RecipeStep *s, char **ret_path) {
        for (size_t j = 0; s->host_dirs && s->host_dirs[j]; j++) {
                const char *rel = s->host_dirs[j];
                _cleanup_free_ char *dir = recipe_path_join(s->source, rel);
                if (!dir)
                        return -ENOMEM;
                DIR *d = opendir(dir);
                if (!d) {
                        *ret_path = TAKE_PTR(dir);
                        return 1;
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        _cleanup_free_ char *name = NULL;
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        name = streq(rel, ".") ? strdup(de->d_name) : recipe_path_join(rel, de->d_name);
                        if (!name) {
                                closedir(d);
                                return -ENOMEM;
                        }
                        if (!strv_contains(s->host_names, name) && !strv_contains(s->host_dirs, name)) {
                                closedir(d);
                                *ret_path = recipe_path_join(s->source, name);
                                return *ret_path ? 1 : -ENOMEM;
                        }
                }
                closedir(d);
        }
        return 0;
}

/* Whether one input is still as before: gone, replaced, rewritten (even with the same bytes again)
 * or chmod-ed moves the inode's change time or mode, or the content. */
static int input_unchanged(const RecipeHostInput *before) {
        RecipeHostInput now = {};
        int r = input_read(before->path, before->file, &now);
        if (r == -ENOMEM)
                return r;
        bool same = r >= 0 && now.mode == before->mode && streq(now.sha256, before->sha256) &&
                    now.ctime.tv_sec == before->ctime.tv_sec && now.ctime.tv_nsec == before->ctime.tv_nsec;
        free(now.path);
        return same;
}

int recipe_step_inputs_check(const RecipeStep *s, const RecipeStepInputs *before, char **ret_changed_path) {
        _cleanup_free_ char *added = NULL;
        int r;

        /* Files first, then an entry new to a copied tree, then the directories (whose change time
         * an added entry moves too): the most precise name comes first. */
        for (int pass = 0; pass < 3; pass++) {
                if (pass == 1) {
                        r = find_new_entry(s, &added);
                        if (r < 0)
                                return r;
                        if (r > 0) {
                                *ret_changed_path = TAKE_PTR(added);
                                return -ESTALE;
                        }
                        continue;
                }
                for (size_t i = 0; i < before->n; i++) {
                        const RecipeHostInput *b = &before->items[i];
                        if (b->file != (pass == 0))
                                continue;
                        r = input_unchanged(b);
                        if (r < 0)
                                return r;
                        if (r == 0) {
                                *ret_changed_path = strdup(b->path);
                                return *ret_changed_path ? -ESTALE : -ENOMEM;
                        }
                }
        }
        return 0;
}

int recipe_step_keys_inputs(const Recipe *r, const char *base_digest, char ***ret_keys, RecipeStepInputs **ret_inputs,
                            char **ret_failed_path) {
        _cleanup_strv_free_ char **keys = NULL;
        RecipeStepInputs *inputs = calloc(r->n_steps + 1, sizeof(RecipeStepInputs));
        const char *parent = base_digest;
        int k = 0;

        if (!inputs)
                return -ENOMEM;
        for (size_t i = 0; k >= 0 && i < r->n_steps; i++) {
                const RecipeStep *s = &r->steps[i];
                char hex[SHA256_HEX_SIZE];
                k = recipe_step_inputs_read(s, &inputs[i], ret_failed_path);
                if (k < 0)
                        break;
                sha256_ctx *c = sha256_new();
                if (!c) {
                        k = -ENOMEM;
                        break;
                }
                sha256_update_str(c, "imgbuild-step-key/1");
                sha256_update_str(c, parent);
                sha256_update(c, s->canonical, s->canonical_len);
                hash_host_inputs(c, s, &inputs[i]);
                sha256_final_hex(c, hex);
                k = strv_push(&keys, hex);
                if (k >= 0)
                        parent = keys[i];
        }
        if (k >= 0 && !keys && !(keys = strv_copy((char *[]) { NULL })))
                k = -ENOMEM;
        if (k < 0 || !ret_inputs)
                inputs = recipe_step_inputs_free(inputs, r->n_steps);
        if (k < 0)
                return k;
        *ret_keys = TAKE_PTR(keys);
        if (ret_inputs)
                *ret_inputs = inputs;
        return 0;
}

int recipe_step_keys(const Recipe *r, const char *base_digest, char ***ret_keys, char **ret_failed_path) {
        return recipe_step_keys_inputs(r, base_digest, ret_keys, NULL, ret_failed_path);
}

