/* The step instructions: packages, copy, run, agent, download. Each step becomes one cache unit. */
#include "recipe-internal.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"
#include "parse-util.h"
#include "strv.h"

static const char *const agent_roles[] = { "vault", "etcd", "control-plane", "node", NULL };

static bool owner_valid(const char *s) {
        const char *colon = strchr(s, ':');
        return colon && parse_user_name_valid(s, (size_t) (colon - s)) &&
               parse_user_name_valid(colon + 1, strlen(colon + 1));
}

static bool hex_digits_valid(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (; *s; s++)
                if (!isxdigit((unsigned char) *s))
                        return false;
        return true;
}

/* Start a step from the words after the keyword. */
static int step_new(Parser *p, const LexLine *l, RecipeStepKind kind, RecipeStep **ret) {
        RecipeStep *steps = reallocarray(p->recipe->steps, p->recipe->n_steps + 1, sizeof(RecipeStep));
        if (!steps)
                return -ENOMEM;
        p->recipe->steps = steps;
        RecipeStep *s = &steps[p->recipe->n_steps];
        *s = (RecipeStep) {
                .kind = kind,
                .file = strdup(l->file->path),
                .line = l->lines[0],
                .env = strv_copy(p->env ? p->env : (char *[]) { NULL }),
                .display_env = strv_copy(p->env_display ? p->env_display : (char *[]) { NULL }),
        };
        if (!s->file || !s->env || !s->display_env) {
                recipe_step_done(s);
                return -ENOMEM;
        }
        /* An env entry that differs from its display form holds a secret. */
        for (size_t i = 0; s->env[i]; i++)
                if (!streq(s->env[i], s->display_env[i]))
                        s->secret = true;
        *ret = s;
        return 0;
}

static int step_arg(RecipeStep *s, const char *value, const char *display) {
        int r = strv_push(&s->args, value);
        if (r < 0)
                return r;
        return strv_push(&s->display_args, display);
}

static int step_arg_word(RecipeStep *s, const LexWord *w) {
        s->secret = s->secret || w->secret;
        s->unresolved = s->unresolved || w->unresolved;
        return step_arg(s, w->value, w->display);
}

/* Drop a step that is not kept (errors in its line, or r < 0); returns r. */
static int step_drop(RecipeStep *s, int r) {
        recipe_step_done(s);
        return r;
}

/* Finish a step: compute its canonical form and keep it, or drop it after errors. */
static int step_commit(Parser *p, RecipeStep *s, int errors) {
        if (errors != 0)
                return step_drop(s, errors);
        if (!s->args && (s->args = strv_copy((char *[]) { NULL })) == NULL)
                return step_drop(s, -ENOMEM);
        int r = recipe_step_canonical(s);
        if (r < 0)
                return step_drop(s, r);
        p->recipe->n_steps++;
        return 0;
}

/* The arguments of a step written as positionals and KEY=VALUE words: vals[] and words[] are
 * indexed like the step's keys, pos[] holds the positionals in order. */
typedef struct StepArgs {
        const LexWord *words[3];
        const char *vals[3];
        const LexWord *pos[2];
        char mode[16];          /* "mode=OCTAL", from step_mode */
} StepArgs;

/* The prologue of copy, download and agent: split the words after the keyword against keys (at
 * most three), require exactly n_pos positionals (else report "usage") and, when needs_first is
 * set, the first key (else report needs_first); then start the step. Returns the number of
 * errors so far or -ENOMEM, and *ret the new step, left untouched when the line is too broken to
 * start one (the result is then not 0). */
static int step_new_keyed(Parser *p, const LexLine *l, const LexWords *ws, RecipeStepKind kind,
                          const char *const *keys, size_t n_pos, const char *usage, const char *needs_first,
                          StepArgs *a, RecipeStep **ret) {
        size_t np = 0;
        int errors = recipe_key_values(l, ws, 1, keys, a->words, a->vals, a->pos, n_pos, &np), r;
        if (errors < 0)
                return errors;
        if (np != n_pos)
                return errors + REPORT(l, l->len, "%s", usage);
        if (needs_first && !a->vals[0])
                return errors + REPORT(l, l->len, "%s", needs_first);
        r = step_new(p, l, kind, ret);
        return r < 0 ? r : errors;
}

/* The arguments of copy and download: the two positionals as written, then two normalized
 * KEY=VALUE arguments, shown as they are (a caller whose key may hold a secret marks the step). */
static int step_args_keyed(RecipeStep *s, const StepArgs *a, const char *key0, const char *key1) {
        int r = step_arg_word(s, a->pos[0]);
        if (r >= 0)
                r = step_arg_word(s, a->pos[1]);
        if (r >= 0)
                r = step_arg(s, key0, key0);
        if (r >= 0)
                r = step_arg(s, key1, key1);
        return r;
}

/* The mode=OCTAL key of copy and download (a->vals[key]): s->mode (0644 when not given) and its
 * argument in a->mode. Returns the number of errors. */
static int step_mode(const LexLine *l, RecipeStep *s, StepArgs *a, size_t key, const char *example) {
        const char *value = a->vals[key];
        s->mode = 0644;
        if (value && parse_mode(value, &s->mode) < 0)
                return REPORT(l, recipe_value_offset(a->words[key]), "invalid mode '%s': expected octal such as %s",
                              value, example);
        snprintf(a->mode, sizeof(a->mode), "mode=%04o", (unsigned) s->mode);
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Collect the regular files (names) and directories (dirs) under dir, as relative names under
 * prefix, sorted. Returns errors or -errno. */
static int walk_dir(const LexLine *l, size_t off, const char *dir, const char *prefix, char ***names,
                    char ***dirs, unsigned depth) {
        _cleanup_strv_free_ char **entries = NULL;
        int errors = 0, r;

        if (depth > 32)
                return REPORT(l, off, "copy source '%s' is nested too deeply", dir);
        DIR *d = opendir(dir);
        if (!d)
                return REPORT(l, off, "cannot read directory '%s': %m", dir);
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
                    (r = strv_push(&entries, de->d_name)) < 0) {
                        closedir(d);
                        return r;
                }
        closedir(d);
        if (entries)
                qsort(entries, strv_length(entries), sizeof(char *), cmp_str);

        for (char **e = entries; e && *e; e++) {
                _cleanup_free_ char *path = recipe_path_join(dir, *e), *rel = NULL;
                struct stat st;
                if (!path || asprintf(&rel, "%s%s%s", prefix, *prefix ? "/" : "", *e) < 0)
                        return -ENOMEM;
                if (lstat(path, &st) < 0) {
                        errors += REPORT(l, off, "cannot stat '%s': %m", path);
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        r = strv_push(dirs, rel);
                        if (r >= 0)
                                r = walk_dir(l, off, path, rel, names, dirs, depth + 1);
                } else if (S_ISREG(st.st_mode))
                        r = strv_push(names, rel);
                else
                        r = REPORT(l, off, "copy source holds '%s', which is not a regular file or directory",
                                   path);
                if (r < 0)
                        return r;
                errors += r;
        }
        return errors;
}

int recipe_do_copy(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
        static const char *const keys[] = { "mode", "owner", NULL };
        StepArgs a = {};
        RecipeStep *s = NULL;
        int errors = step_new_keyed(p, l, ws, RECIPE_STEP_COPY, keys, 2,
                                    "expected 'copy SRC DEST [mode=0644] [owner=root:root]'", NULL, &a, &s), r = 0;
        if (!s)
                return errors;
        const LexWord *src = a.pos[0], *dest = a.pos[1];
        if (!src->value[0] || src->value[0] == '/')
                errors += REPORT(l, src->offset, "copy source must be a path relative to the recipe's directory");
        if (!dest->unresolved && dest->value[0] != '/')
                errors += REPORT(l, dest->offset, "copy destination must be an absolute path");
        errors += step_mode(l, s, &a, 0, "0644");
        if (a.vals[1] && !owner_valid(a.vals[1]))
                errors += REPORT(l, recipe_value_offset(a.words[1]), "invalid owner '%s': expected USER:GROUP",
                                 a.vals[1]);
        if (errors > 0)
                return step_commit(p, s, errors);

        _cleanup_free_ char *owner = NULL;
        if (asprintf(&owner, "owner=%s", a.vals[1] ? a.vals[1] : "root:root") < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = step_args_keyed(s, &a, a.mode, owner);
        if (r >= 0) {
                s->source = recipe_path_join(dir, src->value);
                s->dest = strdup(dest->value);
                s->owner = strdup(owner + strlen("owner="));
                if (!s->source || !s->dest || !s->owner)
                        r = -ENOMEM;
        }
        if (r < 0)
                return step_drop(s, r);

        if (!(p->opts && p->opts->no_host_files) && !src->unresolved) {
                struct stat st;
                if (lstat(s->source, &st) < 0)
                        errors += REPORT(l, src->offset, "copy source '%s' not found: %m", s->source);
                else if (S_ISDIR(st.st_mode)) {
                        r = strv_push(&s->host_dirs, ".");
                        if (r >= 0)
                                r = walk_dir(l, src->offset, s->source, "", &s->host_names, &s->host_dirs, 0);
                        if (r < 0)
                                return step_drop(s, r);
                        errors += r;
                } else if (S_ISREG(st.st_mode)) {
                        const char *base = strrchr(s->source, '/');
                        r = strv_push(&s->host_names, base ? base + 1 : s->source);
                } else
                        errors += REPORT(l, src->offset, "copy source '%s' is not a regular file or directory",
                                         s->source);
                for (char **n = s->host_names; r >= 0 && n && *n; n++) {
                        if (S_ISDIR(st.st_mode))
                                r = strv_consume(&s->host_files, recipe_path_join(s->source, *n));
                        else
                                r = strv_push(&s->host_files, s->source);
                }
                if (r < 0)
                        return step_drop(s, r);
        }
        return step_commit(p, s, errors);
}

int recipe_do_packages(Parser *p, const LexLine *l, const LexWords *ws) {
        RecipeStep *s;
        int errors = 0, r;

        if (ws->n < 2)
                return REPORT(l, l->len, "'packages' needs at least one package name");
        r = step_new(p, l, RECIPE_STEP_PACKAGES, &s);
        if (r < 0)
                return r;
        for (size_t i = 1; i < ws->n; i++) {
                const LexWord *w = &ws->items[i];
                if (!w->unresolved && !image_package_name_valid(w->value)) {
                        errors += REPORT(l, w->offset, "invalid package name '%s'", w->display);
                        continue;
                }
                r = step_arg_word(s, w);
                if (r < 0)
                        return step_drop(s, r);
        }
        s->packages = strv_copy(s->args ? s->args : (char *[]) { NULL });
        if (!s->packages)
                return step_drop(s, -ENOMEM);
        return step_commit(p, s, errors);
}

int recipe_do_run(Parser *p, const LexLine *l, size_t start) {
        RecipeStep *s;
        LexWord w = {};
        int errors, r;

        errors = lex_expand_raw(l, start, &p->scope, &w);
        if (errors != 0) {
                lex_word_done(&w);
                return errors;
        }
        /* Trailing blanks are not part of the command. */
        size_t n = strlen(w.value);
        while (n > 0 && ascii_isblank(w.value[n - 1]))
                w.value[--n] = '\0';
        n = strlen(w.display);
        while (n > 0 && ascii_isblank(w.display[n - 1]))
                w.display[--n] = '\0';
        if (!w.value[0]) {
                lex_word_done(&w);
                return REPORT(l, l->len, "'run' needs a command");
        }
        r = step_new(p, l, RECIPE_STEP_RUN, &s);
        if (r >= 0) {
                r = step_arg_word(s, &w);
                if (r >= 0 && !(s->command = strdup(w.value)))
                        r = -ENOMEM;
                if (r < 0)
                        recipe_step_done(s);
        }
        lex_word_done(&w);
        return r < 0 ? r : step_commit(p, s, 0);
}

int recipe_do_agent(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
        static const char *const keys[] = { "role", "config", NULL };
        StepArgs a = {};
        RecipeStep *s = NULL;
        int errors = step_new_keyed(p, l, ws, RECIPE_STEP_AGENT, keys, 0, NULL,
                                    "'agent' needs role=ROLE (vault, etcd, control-plane or node)", &a, &s), r = 0;
        if (!s)
                return errors;
        const LexWord *const *words = a.words;
        const char *const *vals = a.vals;
        if (!words[0]->unresolved && !strv_contains((char *const *) agent_roles, vals[0])) {
                const char *hint = diagnostics_closest_name(vals[0], agent_roles);
                if (hint)
                        errors += REPORT(l, recipe_value_offset(words[0]), "unknown agent role '%s'; did you mean '%s'?",
                                         vals[0], hint);
                else
                        errors += REPORT(l, recipe_value_offset(words[0]),
                                         "unknown agent role '%s': expected vault, etcd, control-plane or node",
                                         vals[0]);
        }
        if (errors > 0)
                return step_commit(p, s, errors);

        _cleanup_free_ char *role = NULL, *config = NULL, *config_display = NULL;
        if (asprintf(&role, "role=%s", vals[0]) < 0 ||
            (vals[1] && asprintf(&config, "config=%s", vals[1]) < 0) ||
            (vals[1] && asprintf(&config_display, "config=%s", words[1]->display + (recipe_value_offset(words[1]) - words[1]->offset)) < 0))
                r = -ENOMEM;
        if (r >= 0)
                r = step_arg(s, role, role);
        if (r >= 0 && config)
                r = step_arg(s, config, config_display);
        if (r >= 0 && !(s->role = strdup(vals[0])))
                r = -ENOMEM;
        if (r >= 0 && vals[1] && !(s->config = recipe_path_join(dir, vals[1])))
                r = -ENOMEM;
        if (r < 0)
                return step_drop(s, r);
        s->secret = words[0]->secret || (words[1] && words[1]->secret);
        s->unresolved = words[0]->unresolved || (words[1] && words[1]->unresolved);

        if (vals[1] && !(p->opts && p->opts->no_host_files) && !words[1]->unresolved) {
                struct stat st;
                if (!vals[1][0] || vals[1][0] == '/')
                        errors += REPORT(l, recipe_value_offset(words[1]),
                                         "agent config must be a path relative to the recipe's directory");
                else if (stat(s->config, &st) < 0)
                        errors += REPORT(l, recipe_value_offset(words[1]), "agent config '%s' not found: %m", s->config);
                else if (!S_ISREG(st.st_mode))
                        errors += REPORT(l, recipe_value_offset(words[1]), "agent config '%s' is not a regular file",
                                         s->config);
                else {
                        const char *base = strrchr(s->config, '/');
                        r = strv_push(&s->host_files, s->config);
                        if (r >= 0)
                                r = strv_push(&s->host_names, base ? base + 1 : s->config);
                        if (r < 0)
                                return step_drop(s, r);
                }
        }
        return step_commit(p, s, errors);
}

int recipe_do_download(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
        static const char *const keys[] = { "sha256", "sha512", "mode", NULL };
        static const size_t hex_len[] = { [RECIPE_DIGEST_SHA256] = 64, [RECIPE_DIGEST_SHA512] = 128 };
        StepArgs a = {};
        RecipeStep *s = NULL;
        int errors = step_new_keyed(p, l, ws, RECIPE_STEP_DOWNLOAD, keys, 2,
                                    "expected 'download URL DEST sha256=HEX|sha512=HEX [mode=0644]'", NULL, &a, &s),
            r = 0;
        if (!s)
                return errors;
        const LexWord *const *words = a.words;
        const char *const *vals = a.vals;
        const LexWord *url = a.pos[0], *dest = a.pos[1];
        /* keys[] lists the checksums in RecipeDigest order. */
        RecipeDigest kind = vals[RECIPE_DIGEST_SHA256] ? RECIPE_DIGEST_SHA256 : RECIPE_DIGEST_SHA512;
        const LexWord *sum = words[kind];
        if (vals[RECIPE_DIGEST_SHA256] && vals[RECIPE_DIGEST_SHA512])
                errors += REPORT(l, words[0]->offset > words[1]->offset ? words[0]->offset : words[1]->offset,
                                 "'download' takes one checksum: sha256=HEX or sha512=HEX, not both");
        else if (!sum)
                errors += REPORT(l, l->len, "'download' needs sha256=HEX or sha512=HEX of the file");
        else if (!sum->unresolved && !hex_digits_valid(vals[kind], hex_len[kind]))
                errors += REPORT(l, recipe_value_offset(sum), "invalid %s '%s': expected %zu hex digits",
                                 recipe_digest_to_string(kind), sum->display + (recipe_value_offset(sum) - sum->offset),
                                 hex_len[kind]);
        errors += step_mode(l, s, &a, 2, "0755");
        if (!dest->unresolved && dest->value[0] != '/')
                errors += REPORT(l, dest->offset, "download destination must be an absolute path");

        const char *u = url->value, *local = NULL;
        if (startswith(u, "http://") || startswith(u, "https://"))
                local = NULL;
        else if (startswith(u, "file://")) {
                local = u + strlen("file://");
                if (!url->unresolved && local[0] != '/')
                        errors += REPORT(l, url->offset, "file:// URLs need an absolute path (file:///path)");
        } else if (strstr(u, "://") && !url->unresolved)
                errors += REPORT(l, url->offset, "unsupported URL scheme in '%s': use http, https, file or a path",
                                 url->display);
        else if (!u[0])
                errors += REPORT(l, url->offset, "empty URL");
        else
                local = u;
        if (errors > 0)
                return step_commit(p, s, errors);

        /* The normalized checksum argument ("sha512=" and lower-case hex) is part of the canonical
         * form, so the cache key covers the algorithm and the digest. */
        _cleanup_free_ char *sha = strdup(vals[kind]), *sha_arg = NULL;
        if (!sha)
                return step_drop(s, -ENOMEM);
        for (char *c = sha; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        if (asprintf(&sha_arg, "%s=%s", recipe_digest_to_string(kind), sha) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = step_args_keyed(s, &a, sha_arg, a.mode);
        if (r >= 0) {
                s->secret = s->secret || sum->secret;
                s->unresolved = s->unresolved || sum->unresolved;
                s->url = strdup(u);
                s->dest = strdup(dest->value);
                s->digest_kind = kind;
                s->digest = TAKE_PTR(sha);
                s->source = local ? recipe_path_join(dir, local) : NULL;
                if (!s->url || !s->dest || (local && !s->source))
                        r = -ENOMEM;
        }
        if (r < 0)
                return step_drop(s, r);
        if (s->source && !(p->opts && p->opts->no_host_files) && !url->unresolved) {
                struct stat st;
                if (stat(s->source, &st) < 0)
                        errors += REPORT(l, url->offset, "download source '%s' not found: %m", s->source);
                else if (!S_ISREG(st.st_mode))
                        errors += REPORT(l, url->offset, "download source '%s' is not a regular file", s->source);
        }
        return step_commit(p, s, errors);
}

