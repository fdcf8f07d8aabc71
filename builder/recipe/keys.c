/* A step's identity: its canonical encoding and the cache key chain over all steps. */
#include "recipe-internal.h"

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

/* Hash "name mode" of path, for a copied tree whose modes the copy keeps. */
static int hash_mode(sha256_ctx *c, const char *name, const char *path) {
        struct stat st;
        char text[32];

        if (lstat(path, &st) < 0)
                return negative_errno();
        snprintf(text, sizeof(text), "%06o", (unsigned) st.st_mode);
        sha256_update_str(c, name);
        sha256_update_str(c, text);
        return 0;
}

/* The part of a step's key that comes from the host: each file's name and content, and for a
 * copied directory the mode of every file and directory in it (empty directories too). */
static int hash_host_inputs(sha256_ctx *c, const RecipeStep *s, const char **failed) {
        char count[32];
        int r;

        snprintf(count, sizeof(count), "%zu", strv_length(s->host_files));
        sha256_update_str(c, count);
        for (size_t j = 0; s->host_files && s->host_files[j]; j++) {
                char file_hex[SHA256_HEX_SIZE];
                r = sha256_file_hex(s->host_files[j], file_hex);
                if (r < 0) {
                        *failed = s->host_files[j];
                        return r;
                }
                sha256_update_str(c, s->host_names[j]);
                sha256_update_str(c, file_hex);
        }
        if (!s->host_dirs)
                return 0;
        snprintf(count, sizeof(count), "%zu", strv_length(s->host_dirs));
        sha256_update_str(c, count);
        for (size_t j = 0; s->host_dirs[j]; j++) {
                _cleanup_free_ char *path = recipe_path_join(s->source, s->host_dirs[j]);
                if (!path)
                        return -ENOMEM;
                if ((r = hash_mode(c, s->host_dirs[j], path)) < 0) {
                        *failed = s->source;
                        return r;
                }
        }
        for (size_t j = 0; s->host_files && s->host_files[j]; j++)
                if ((r = hash_mode(c, s->host_names[j], s->host_files[j])) < 0) {
                        *failed = s->host_files[j];
                        return r;
                }
        return 0;
}

int recipe_step_keys(const Recipe *r, const char *base_digest, char ***ret_keys, char **ret_failed_path) {
        _cleanup_strv_free_ char **keys = NULL;
        const char *parent = base_digest;
        int k;

        for (size_t i = 0; i < r->n_steps; i++) {
                const RecipeStep *s = &r->steps[i];
                char hex[SHA256_HEX_SIZE];
                sha256_ctx *c = sha256_new();
                if (!c)
                        return -ENOMEM;
                sha256_update_str(c, "imgbuild-step-key/1");
                sha256_update_str(c, parent);
                sha256_update(c, s->canonical, s->canonical_len);
                const char *failed = NULL;
                k = hash_host_inputs(c, s, &failed);
                if (k < 0) {
                        sha256_free(c);
                        if (ret_failed_path && failed)
                                *ret_failed_path = strdup(failed);
                        return k;
                }
                sha256_final_hex(c, hex);
                k = strv_push(&keys, hex);
                if (k < 0)
                        return k;
                parent = keys[i];
        }
        if (!keys && !(keys = strv_copy((char *[]) { NULL })))
                return -ENOMEM;
        *ret_keys = TAKE_PTR(keys);
        return 0;
}

