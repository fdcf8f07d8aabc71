#include "recipe.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "fs.h"
#include "image.h"
#include "json.h"
#include "parse-util.h"
#include "strv.h"

typedef struct Override {
        char *name;
        char *value;
        char *file;      /* var file, or NULL for --var */
        unsigned line, col;
        bool used;
} Override;

typedef struct Parser {
        Recipe *recipe;
        const RecipeOptions *opts;
        Diagnostics *diag;
        LexScope scope;
        char **env;              /* NAME=VALUE, sorted */
        char **env_display;      /* the same with secret values masked */
        char **include_stack;    /* canonical paths of the files being parsed */
        char **include_display;  /* their display paths */
        char *template_at, *base_at, *qemu_at, *exoscale_at; /* "file:line" of header lines */
        Override *overrides;     /* var files first, then --var, in order: the last match wins */
        size_t n_overrides;
} Parser;

static const char *const instructions[] = {
        "template", "base", "var", "secret", "qemu", "exoscale", "include", "env",
        "packages", "copy", "run", "agent", "download", NULL
};

static const char *const agent_roles[] = { "vault", "etcd", "control-plane", "node", NULL };

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

static void step_done(RecipeStep *s) {
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
        free(s->sha256);
        free(s->dest);
        free(s->owner);
        free(s->role);
        free(s->config);
        strv_free(s->host_files);
        strv_free(s->host_names);
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
                step_done(&r->steps[i]);
        free(r->steps);
        strv_free(r->files);
        free(r);
        return NULL;
}

/* ---- paths ---- */

static char *path_join(const char *dir, const char *rel) {
        char *s;
        if (rel[0] == '/' || streq(dir, "."))
                return strdup(rel);
        size_t n = strlen(dir);
        if (asprintf(&s, "%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", rel) < 0)
                return NULL;
        return s;
}

/* The parent of a directory given as a display path, kept relative when it was relative. */
static char *parent_dir(const char *dir) {
        const char *last = strrchr(dir, '/');
        last = last ? last + 1 : dir;
        if (streq(last, "..") || streq(dir, "."))
                return path_join(dir, "..");
        if (streq(dir, "/"))
                return strdup("/");
        return path_dirname(dir);
}

/* ---- small validators ---- */

static bool name_valid(const char *s, bool allow_dash) {
        if (!s[0] || !(isalpha((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; s[i]; i++)
                if (!isalnum((unsigned char) s[i]) && s[i] != '_' && !(allow_dash && s[i] == '-'))
                        return false;
        return true;
}

static bool lower_dash_valid(const char *s) {
        if (!s[0] || s[0] == '-')
                return false;
        for (; *s; s++)
                if (!islower((unsigned char) *s) && !isdigit((unsigned char) *s) && *s != '-')
                        return false;
        return true;
}

/* A directory name under images/: no path separators, no leading dot, no "..". */
static bool base_name_valid(const char *s) {
        if (!islower((unsigned char) s[0]) && !isdigit((unsigned char) s[0]))
                return false;
        if (strstr(s, ".."))
                return false;
        for (; *s; s++)
                if (!islower((unsigned char) *s) && !isdigit((unsigned char) *s) && *s != '-' && *s != '.')
                        return false;
        return true;
}

static bool version_valid(const char *s) {
        unsigned parts = 0;
        for (;;) {
                if (!isdigit((unsigned char) *s))
                        return false;
                while (isdigit((unsigned char) *s))
                        s++;
                parts++;
                if (!*s)
                        return parts <= 3;
                if (*s != '.')
                        return false;
                s++;
        }
}

static bool owner_valid(const char *s) {
        const char *colon = strchr(s, ':');
        return colon && parse_user_name_valid(s, (size_t) (colon - s)) &&
               parse_user_name_valid(colon + 1, strlen(colon + 1));
}

static bool sha256_valid(const char *s) {
        if (strlen(s) != 64)
                return false;
        for (; *s; s++)
                if (!isxdigit((unsigned char) *s))
                        return false;
        return true;
}

/* ---- variables ---- */

static RecipeVar *find_var(const Recipe *r, const char *name) {
        for (size_t i = 0; i < r->n_vars; i++)
                if (streq(r->vars[i].name, name))
                        return &r->vars[i];
        return NULL;
}

static int scope_lookup(void *userdata, const char *name, const char **ret_value, bool *ret_secret) {
        Parser *p = userdata;
        RecipeVar *v = find_var(p->recipe, name);
        if (!v)
                return 0;
        *ret_value = v->value;
        *ret_secret = v->secret;
        return 1;
}

static const char *scope_suggest(void *userdata, const char *name) {
        Parser *p = userdata;
        const char *best = NULL;
        unsigned best_d = 3;
        for (size_t i = 0; i < p->recipe->n_vars; i++) {
                unsigned d = edit_distance(name, p->recipe->vars[i].name, 2);
                if (d < best_d) {
                        best_d = d;
                        best = p->recipe->vars[i].name;
                }
        }
        return best;
}

static int override_add(Parser *p, const char *name, const char *value, const char *file,
                        unsigned line, unsigned col) {
        Override *o = reallocarray(p->overrides, p->n_overrides + 1, sizeof(Override));
        if (!o)
                return -ENOMEM;
        p->overrides = o;
        o = &p->overrides[p->n_overrides];
        *o = (Override) {
                .name = strdup(name),
                .value = strdup(value),
                .file = file ? strdup(file) : NULL,
                .line = line,
                .col = col,
        };
        if (!o->name || !o->value || (file && !o->file)) {
                free(o->name);
                free_secret(o->value);
                free(o->file);
                return -ENOMEM;
        }
        p->n_overrides++;
        return 0;
}

/* Variable files: "NAME = VALUE" or "NAME=VALUE" per line, same lexical rules, no references. */
static int load_var_file(Parser *p, const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        LexFile f;
        int r;

        r = read_file(path, RECIPE_MAX_SIZE, &text, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                errno = -r;
                return diagnostics_add(p->diag, false, path, 0, 0, NULL, "cannot read variable file: %m");
        }
        lex_file_init(&f, path, TAKE_PTR(text), len, p->diag);
        if (!f.path) {
                lex_file_done(&f);
                return -ENOMEM;
        }
        /* Variable files hold values, some of them secret: never echo their lines. */
        f.hide_source = true;
        for (;;) {
                _cleanup_(lex_line_done) LexLine l = {};
                _cleanup_(lex_words_done) LexWords ws = {};
                _cleanup_free_ char *name = NULL;
                const char *value;

                r = lex_next_line(&f, &l);
                if (r <= 0)
                        break;
                r = lex_words(&l, 0, NULL, &ws);
                if (r < 0)
                        break;
                if (r > 0 || ws.n == 0)
                        continue;
                if (ws.n == 3 && streq(ws.items[1].value, "=")) {
                        name = strdup(ws.items[0].value);
                        value = ws.items[2].value;
                } else if (ws.n == 1 && ws.items[0].eq_offset != (size_t) -1) {
                        const char *eq = strchr(ws.items[0].value, '=');
                        name = strndup(ws.items[0].value, (size_t) (eq - ws.items[0].value));
                        value = eq + 1;
                } else {
                        r = lex_error(&l, ws.items[0].offset, "expected NAME = \"VALUE\"");
                        if (r < 0)
                                break;
                        continue;
                }
                if (!name) {
                        r = -ENOMEM;
                        break;
                }
                if (!name_valid(name, false)) {
                        r = lex_error(&l, ws.items[0].offset, "invalid variable name '%s'", name);
                        if (r < 0)
                                break;
                        continue;
                }
                r = override_add(p, name, value, path, l.lines[0], ws.items[0].offset + 1);
                if (r < 0)
                        break;
        }
        lex_file_done(&f);
        return r < 0 ? r : 0;
}

static int load_overrides(Parser *p) {
        int r;
        for (char **f = p->opts ? p->opts->var_files : NULL; f && *f; f++) {
                r = load_var_file(p, *f);
                if (r < 0)
                        return r;
        }
        for (char **v = p->opts ? p->opts->vars : NULL; v && *v; v++) {
                const char *eq = strchr(*v, '=');
                _cleanup_free_ char *name = eq ? strndup(*v, (size_t) (eq - *v)) : NULL;
                if (!eq || !name_valid(name, false)) {
                        r = diagnostics_add(p->diag, false, p->recipe->path, 0, 0, NULL,
                                            "--var '%s': expected NAME=VALUE", *v);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = override_add(p, name, eq + 1, NULL, 0, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- instruction handlers: each returns the number of errors reported, or -ENOMEM ---- */

#define REPORT(l, off, ...) ({ int _r = lex_error((l), (off), __VA_ARGS__); _r < 0 ? _r : 1; })

static char *location(const LexLine *l) {
        char *s;
        return asprintf(&s, "%s:%u", l->file->path, l->lines[0]) < 0 ? NULL : s;
}

/* A header instruction may appear once: remember where it was. */
static int header_once(const LexLine *l, const char *kw, char **at) {
        size_t b = 0;
        while (b < l->len && ascii_isblank(l->text[b]))
                b++;
        if (*at)
                return REPORT(l, b, "duplicate '%s' instruction (first given at %s)", kw, *at);
        *at = location(l);
        return *at ? 0 : -ENOMEM;
}

static int do_template(Parser *p, const LexLine *l, const LexWords *ws) {
        int r = header_once(l, "template", &p->template_at);
        if (r != 0)
                return r;
        if (ws->n != 3)
                return REPORT(l, ws->n > 3 ? ws->items[3].offset : l->len,
                              "expected 'template NAME VERSION'");
        if (!lower_dash_valid(ws->items[1].value))
                return REPORT(l, ws->items[1].offset,
                              "invalid template name '%s': use lower-case letters, digits and '-'",
                              ws->items[1].value);
        if (!version_valid(ws->items[2].value))
                return REPORT(l, ws->items[2].offset,
                              "invalid template version '%s': expected N, N.N or N.N.N", ws->items[2].value);
        p->recipe->template_name = strdup(ws->items[1].value);
        p->recipe->template_version = strdup(ws->items[2].value);
        return p->recipe->template_name && p->recipe->template_version ? 0 : -ENOMEM;
}

static int do_base(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
        int r = header_once(l, "base", &p->base_at);
        if (r != 0)
                return r;
        if (ws->n != 2)
                return REPORT(l, ws->n > 2 ? ws->items[2].offset : l->len, "expected 'base NAME'");
        const char *name = ws->items[1].value;
        if (!base_name_valid(name))
                return REPORT(l, ws->items[1].offset,
                              "invalid base image name '%s': use lower-case letters, digits, '-' and '.'", name);
        p->recipe->base_name = strdup(name);
        if (!p->recipe->base_name)
                return -ENOMEM;
        if (p->opts && p->opts->no_host_files)
                return 0;

        /* Look next to the recipe directory first (a checkout's own images), then under the
         * current directory taken as the repository root. */
        _cleanup_free_ char *parent = parent_dir(dir), *rel = NULL;
        if (!parent || asprintf(&rel, "images/%s", name) < 0)
                return -ENOMEM;
        _cleanup_free_ char *a = path_join(parent, rel);
        if (!a)
                return -ENOMEM;
        const char *candidates[] = { a, rel };
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                _cleanup_free_ char *def = path_join(candidates[i], "image.conf");
                if (!def)
                        return -ENOMEM;
                if (access(def, R_OK) < 0)
                        continue;
                _cleanup_(image_freep) Image *img = NULL;
                r = image_parse_file(def, p->diag, &img);
                if (r == -ENOMEM)
                        return r;
                p->recipe->base_dir = strdup(candidates[i]);
                p->recipe->base_definition = TAKE_PTR(def);
                return p->recipe->base_dir ? 0 : -ENOMEM;
        }
        return REPORT(l, ws->items[1].offset,
                      "base image '%s' not found: no %s/image.conf or %s/image.conf", name, a, rel);
}

static int do_var(Parser *p, const LexLine *l, const LexWords *ws, size_t first, bool secret) {
        const LexWord *nw = first < ws->n ? &ws->items[first] : NULL;
        _cleanup_free_ char *name = NULL;
        const LexWord *def = NULL;
        const char *def_value = NULL;
        size_t n = ws->n - first;

        if (n == 1 && nw->eq_offset == (size_t) -1)
                name = strdup(nw->value);
        else if (n == 3 && streq(ws->items[first + 1].value, "=")) {
                name = strdup(nw->value);
                def = &ws->items[first + 2];
                def_value = def->value;
        } else if (n == 1) {
                const char *eq = strchr(nw->value, '=');
                name = strndup(nw->value, (size_t) (eq - nw->value));
                def = nw;
                def_value = eq + 1;
        } else
                return REPORT(l, nw ? nw->offset : l->len, "expected 'var NAME' or 'var NAME = \"VALUE\"'");
        if (!name)
                return -ENOMEM;
        if (!name_valid(name, false))
                return REPORT(l, nw->offset, "invalid variable name '%s': use letters, digits and '_'", name);
        RecipeVar *old = find_var(p->recipe, name);
        if (old)
                return REPORT(l, nw->offset, "variable '%s' is already declared at %s:%u", name, old->file,
                              old->line);

        /* A default built from a variable without a value has no value either. */
        if (def && def->unresolved)
                def_value = NULL;

        RecipeVar v = {
                .name = TAKE_PTR(name),
                .secret = secret || (def && def->secret),
                .required = !def,
                .source = def_value ? RECIPE_VAR_DEFAULT : RECIPE_VAR_UNSET,
                .file = strdup(l->file->path),
                .line = l->lines[0],
        };
        const char *value = def_value;

        if (!(p->opts && p->opts->no_environment)) {
                _cleanup_free_ char *env_name = NULL;
                if (asprintf(&env_name, "IMGBUILD_VAR_%s", v.name) < 0) {
                        free(v.name);
                        free(v.file);
                        return -ENOMEM;
                }
                const char *e = getenv(env_name);
                if (e) {
                        value = e;
                        v.source = RECIPE_VAR_ENVIRONMENT;
                }
        }
        for (size_t i = 0; i < p->n_overrides; i++)
                if (streq(p->overrides[i].name, v.name)) {
                        value = p->overrides[i].value;
                        v.source = p->overrides[i].file ? RECIPE_VAR_FILE : RECIPE_VAR_COMMAND_LINE;
                        p->overrides[i].used = true;
                }
        v.value = value ? strdup(value) : NULL;

        RecipeVar *vars = reallocarray(p->recipe->vars, p->recipe->n_vars + 1, sizeof(RecipeVar));
        if (!v.file || (value && !v.value) || !vars) {
                if (vars)
                        p->recipe->vars = vars;
                free(v.name);
                free(v.file);
                free_secret(v.value);
                return -ENOMEM;
        }
        p->recipe->vars = vars;
        p->recipe->vars[p->recipe->n_vars++] = v;
        return 0;
}

/* Split KEY=VALUE words against a list of known keys. Values land in vals[] (borrowed, indexed
 * like keys) and their words in words[]. Words without '=' are collected as positionals. */
static int key_values(const LexLine *l, const LexWords *ws, size_t first, const char *const *keys,
                      const LexWord **words, const char **vals, const LexWord **positionals,
                      size_t max_positionals, size_t *ret_n_positionals) {
        size_t np = 0;
        int errors = 0;

        for (size_t i = first; i < ws->n; i++) {
                const LexWord *w = &ws->items[i];
                const char *eq = w->eq_offset != (size_t) -1 ? strchr(w->value, '=') : NULL;
                size_t k = 0;

                if (eq) {
                        for (; keys[k]; k++)
                                if (strlen(keys[k]) == (size_t) (eq - w->value) &&
                                    strneq(w->value, keys[k], (size_t) (eq - w->value)))
                                        break;
                }
                if (!eq || !keys[k]) {
                        if (np < max_positionals) {
                                positionals[np++] = w;
                                continue;
                        }
                        _cleanup_free_ char *key = eq ? strndup(w->value, (size_t) (eq - w->value)) : NULL;
                        int r;
                        if (eq && !key)
                                return -ENOMEM;
                        const char *hint = key ? closest_name(key, keys) : NULL;
                        if (hint)
                                r = lex_error(l, w->offset, "unknown key '%s'; did you mean '%s'?", key, hint);
                        else if (key)
                                r = lex_error(l, w->offset, "unknown key '%s'", key);
                        else
                                r = lex_error(l, w->offset, "unexpected argument '%s'", w->display);
                        if (r < 0)
                                return r;
                        errors++;
                        continue;
                }
                if (vals[k]) {
                        int r = lex_error(l, w->offset, "key '%s' is given twice", keys[k]);
                        if (r < 0)
                                return r;
                        errors++;
                        continue;
                }
                vals[k] = eq + 1;
                words[k] = w;
        }
        if (ret_n_positionals)
                *ret_n_positionals = np;
        return errors;
}

static size_t value_offset(const LexWord *w) {
        return w->eq_offset != (size_t) -1 ? w->eq_offset + 1 : w->offset;
}

static int do_qemu(Parser *p, const LexLine *l, const LexWords *ws) {
        static const char *const keys[] = { "memory", "cpus", "disk", NULL };
        const LexWord *words[3] = {};
        const char *vals[3] = {};
        int r = header_once(l, "qemu", &p->qemu_at);
        if (r != 0)
                return r;
        int errors = key_values(l, ws, 1, keys, words, vals, NULL, 0, NULL);
        if (errors < 0)
                return errors;

        RecipeQemu *q = &p->recipe->qemu;
        uint64_t v;
        if (vals[0]) {
                if (parse_size(vals[0], 1ull << 20, &v) < 0 || v < (128ull << 20) || v > (1ull << 40))
                        errors += REPORT(l, value_offset(words[0]),
                                         "invalid memory size '%s': expected 128M to 1T (a bare number means MiB)",
                                         vals[0]);
                else
                        q->memory = v;
        }
        if (vals[1]) {
                if (parse_size(vals[1], 1, &v) < 0 || strpbrk(vals[1], "KMGT") || v < 1 || v > 64)
                        errors += REPORT(l, value_offset(words[1]),
                                         "invalid cpus '%s': expected an integer from 1 to 64", vals[1]);
                else
                        q->cpus = (unsigned) v;
        }
        if (vals[2]) {
                if (parse_size(vals[2], 0, &v) < 0 || !strpbrk(vals[2], "KMGT") || v < (1ull << 30) ||
                    v > (2ull << 40))
                        errors += REPORT(l, value_offset(words[2]),
                                         "invalid disk size '%s': expected 1G to 2T with a K, M, G or T suffix",
                                         vals[2]);
                else
                        q->disk = v;
        }
        return errors;
}

static bool instance_type_valid(const char *s) {
        const char *dot = strchr(s, '.');
        if (!dot || dot == s || !dot[1] || strchr(dot + 1, '.'))
                return false;
        for (; *s; s++)
                if (*s != '.' && !islower((unsigned char) *s) && !isdigit((unsigned char) *s))
                        return false;
        return true;
}

static int do_exoscale(Parser *p, const LexLine *l, const LexWords *ws) {
        static const char *const keys[] = { "zone", "instance-type", "template", "disk", NULL };
        const LexWord *words[4] = {};
        const char *vals[4] = {};
        int r = header_once(l, "exoscale", &p->exoscale_at);
        if (r != 0)
                return r;
        int errors = key_values(l, ws, 1, keys, words, vals, NULL, 0, NULL);
        if (errors < 0)
                return errors;

        RecipeExoscale *e = &p->recipe->exoscale;
        e->set = true;
        if (!vals[0])
                errors += REPORT(l, l->len, "exoscale needs zone=ZONE");
        else if (!lower_dash_valid(vals[0]))
                errors += REPORT(l, value_offset(words[0]), "invalid zone '%s'", vals[0]);
        else if (!(e->zone = strdup(vals[0])))
                return -ENOMEM;
        if (vals[1]) {
                if (!instance_type_valid(vals[1]))
                        errors += REPORT(l, value_offset(words[1]),
                                         "invalid instance type '%s': expected FAMILY.SIZE, e.g. standard.medium",
                                         vals[1]);
                else {
                        free(e->instance_type);
                        if (!(e->instance_type = strdup(vals[1])))
                                return -ENOMEM;
                }
        }
        if (vals[2]) {
                if (!vals[2][0])
                        errors += REPORT(l, value_offset(words[2]), "template name must not be empty");
                else {
                        free(e->template);
                        if (!(e->template = strdup(vals[2])))
                                return -ENOMEM;
                }
        }
        if (vals[3]) {
                uint64_t v;
                if (parse_size(vals[3], 1, &v) < 0 || strpbrk(vals[3], "KMGT") || v < 10 || v > 51200)
                        errors += REPORT(l, value_offset(words[3]),
                                         "invalid disk '%s': expected an integer number of GB from 10 to 51200",
                                         vals[3]);
                else
                        e->disk_gb = (unsigned) v;
        }
        return errors;
}

static int do_env(Parser *p, const LexLine *l, const LexWords *ws) {
        if (ws->n != 2 || ws->items[1].eq_offset == (size_t) -1)
                return REPORT(l, ws->n > 1 ? ws->items[1].offset : l->len, "expected 'env NAME=VALUE'");
        const char *v = ws->items[1].value, *eq = strchr(v, '=');
        _cleanup_free_ char *name = strndup(v, (size_t) (eq - v));
        if (!name)
                return -ENOMEM;
        if (!name_valid(name, false))
                return REPORT(l, ws->items[1].offset, "invalid environment variable name '%s'", name);
        size_t nl = strlen(name);
        char **e = p->env, **d = p->env_display;
        for (size_t i = 0; e && e[i]; i++)
                if (strneq(e[i], v, nl + 1)) {
                        free_secret(e[i]);
                        free(d[i]);
                        memmove(&e[i], &e[i + 1], (strv_length(e) - i) * sizeof(char *));
                        memmove(&d[i], &d[i + 1], (strv_length(d) - i) * sizeof(char *));
                        break;
                }
        /* Sorting by the whole entry sorts by name (names are unique and end at '='), so both
         * lists stay in the same order. */
        int r = strv_push(&p->env, v);
        if (r < 0)
                return r;
        r = strv_push(&p->env_display, ws->items[1].display);
        if (r < 0)
                return r;
        strv_sort(p->env);
        strv_sort(p->env_display);
        return 0;
}

/* ---- steps ---- */

static int netstring(buf *b, const char *s) {
        return buf_printf(b, "%zu:%s,", strlen(s), s);
}

static int netstring_count(buf *b, size_t n) {
        char count[32];
        snprintf(count, sizeof(count), "%zu", n);
        return netstring(b, count);
}

static int step_canonical(RecipeStep *s) {
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
                step_done(s);
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

/* Finish a step: compute its canonical form and keep it, or drop it after errors. */
static int step_commit(Parser *p, RecipeStep *s, int errors) {
        if (errors != 0) {
                step_done(s);
                return errors;
        }
        if (!s->args && (s->args = strv_copy((char *[]) { NULL })) == NULL) {
                step_done(s);
                return -ENOMEM;
        }
        int r = step_canonical(s);
        if (r < 0) {
                step_done(s);
                return r;
        }
        p->recipe->n_steps++;
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Collect regular files under dir (relative names under prefix). Returns errors or -errno. */
static int walk_dir(const LexLine *l, size_t off, const char *dir, const char *prefix, char ***names,
                    unsigned depth) {
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
                _cleanup_free_ char *path = path_join(dir, *e), *rel = NULL;
                struct stat st;
                if (!path || asprintf(&rel, "%s%s%s", prefix, *prefix ? "/" : "", *e) < 0)
                        return -ENOMEM;
                if (lstat(path, &st) < 0) {
                        errors += REPORT(l, off, "cannot stat '%s': %m", path);
                        continue;
                }
                if (S_ISDIR(st.st_mode))
                        r = walk_dir(l, off, path, rel, names, depth + 1);
                else if (S_ISREG(st.st_mode))
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

static int do_copy(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
        static const char *const keys[] = { "mode", "owner", NULL };
        const LexWord *words[2] = {}, *pos[2] = {};
        const char *vals[2] = {};
        size_t np;
        RecipeStep *s;
        int errors = key_values(l, ws, 1, keys, words, vals, pos, 2, &np), r;
        if (errors < 0)
                return errors;
        if (np != 2)
                return errors + REPORT(l, l->len, "expected 'copy SRC DEST [mode=0644] [owner=root:root]'");

        r = step_new(p, l, RECIPE_STEP_COPY, &s);
        if (r < 0)
                return r;
        const LexWord *src = pos[0], *dest = pos[1];
        if (!src->value[0] || src->value[0] == '/')
                errors += REPORT(l, src->offset, "copy source must be a path relative to the recipe's directory");
        if (!dest->unresolved && dest->value[0] != '/')
                errors += REPORT(l, dest->offset, "copy destination must be an absolute path");
        s->mode = 0644;
        if (vals[0] && parse_mode(vals[0], &s->mode) < 0)
                errors += REPORT(l, value_offset(words[0]), "invalid mode '%s': expected octal such as 0644",
                                 vals[0]);
        if (vals[1] && !owner_valid(vals[1]))
                errors += REPORT(l, value_offset(words[1]), "invalid owner '%s': expected USER:GROUP", vals[1]);
        if (errors > 0)
                return step_commit(p, s, errors);

        char mode[16];
        snprintf(mode, sizeof(mode), "mode=%04o", (unsigned) s->mode);
        _cleanup_free_ char *owner = NULL;
        if (asprintf(&owner, "owner=%s", vals[1] ? vals[1] : "root:root") < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = step_arg_word(s, src);
        if (r >= 0)
                r = step_arg_word(s, dest);
        if (r >= 0)
                r = step_arg(s, mode, mode);
        if (r >= 0)
                r = step_arg(s, owner, owner);
        if (r >= 0) {
                s->source = path_join(dir, src->value);
                s->dest = strdup(dest->value);
                s->owner = strdup(owner + strlen("owner="));
                if (!s->source || !s->dest || !s->owner)
                        r = -ENOMEM;
        }
        if (r < 0) {
                step_done(s);
                return r;
        }

        if (!(p->opts && p->opts->no_host_files) && !src->unresolved) {
                struct stat st;
                if (lstat(s->source, &st) < 0)
                        errors += REPORT(l, src->offset, "copy source '%s' not found: %m", s->source);
                else if (S_ISDIR(st.st_mode)) {
                        r = walk_dir(l, src->offset, s->source, "", &s->host_names, 0);
                        if (r < 0) {
                                step_done(s);
                                return r;
                        }
                        errors += r;
                } else if (S_ISREG(st.st_mode)) {
                        const char *base = strrchr(s->source, '/');
                        r = strv_push(&s->host_names, base ? base + 1 : s->source);
                } else
                        errors += REPORT(l, src->offset, "copy source '%s' is not a regular file or directory",
                                         s->source);
                for (char **n = s->host_names; r >= 0 && n && *n; n++) {
                        if (S_ISDIR(st.st_mode))
                                r = strv_consume(&s->host_files, path_join(s->source, *n));
                        else
                                r = strv_push(&s->host_files, s->source);
                }
                if (r < 0) {
                        step_done(s);
                        return r;
                }
        }
        return step_commit(p, s, errors);
}

static int do_packages(Parser *p, const LexLine *l, const LexWords *ws) {
        RecipeStep *s;
        int errors = 0, r;

        if (ws->n < 2)
                return REPORT(l, l->len, "'packages' needs at least one package name");
        r = step_new(p, l, RECIPE_STEP_PACKAGES, &s);
        if (r < 0)
                return r;
        for (size_t i = 1; i < ws->n; i++) {
                const LexWord *w = &ws->items[i];
                if (!w->unresolved && !debian_package_name_valid(w->value)) {
                        errors += REPORT(l, w->offset, "invalid package name '%s'", w->display);
                        continue;
                }
                r = step_arg_word(s, w);
                if (r < 0) {
                        step_done(s);
                        return r;
                }
        }
        s->packages = strv_copy(s->args ? s->args : (char *[]) { NULL });
        if (!s->packages) {
                step_done(s);
                return -ENOMEM;
        }
        return step_commit(p, s, errors);
}

static int do_run(Parser *p, const LexLine *l, size_t start) {
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
                        step_done(s);
        }
        lex_word_done(&w);
        return r < 0 ? r : step_commit(p, s, 0);
}

static int do_agent(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
        static const char *const keys[] = { "role", "config", NULL };
        const LexWord *words[2] = {};
        const char *vals[2] = {};
        RecipeStep *s;
        int errors = key_values(l, ws, 1, keys, words, vals, NULL, 0, NULL), r;
        if (errors < 0)
                return errors;
        if (!vals[0])
                return errors + REPORT(l, l->len, "'agent' needs role=ROLE (vault, etcd, control-plane or node)");
        if (!words[0]->unresolved && !strv_contains((char *const *) agent_roles, vals[0])) {
                const char *hint = closest_name(vals[0], agent_roles);
                if (hint)
                        errors += REPORT(l, value_offset(words[0]), "unknown agent role '%s'; did you mean '%s'?",
                                         vals[0], hint);
                else
                        errors += REPORT(l, value_offset(words[0]),
                                         "unknown agent role '%s': expected vault, etcd, control-plane or node",
                                         vals[0]);
        }
        if (errors > 0)
                return errors;

        r = step_new(p, l, RECIPE_STEP_AGENT, &s);
        if (r < 0)
                return r;
        _cleanup_free_ char *role = NULL, *config = NULL, *config_display = NULL;
        if (asprintf(&role, "role=%s", vals[0]) < 0 ||
            (vals[1] && asprintf(&config, "config=%s", vals[1]) < 0) ||
            (vals[1] && asprintf(&config_display, "config=%s", words[1]->display + (value_offset(words[1]) - words[1]->offset)) < 0))
                r = -ENOMEM;
        if (r >= 0)
                r = step_arg(s, role, role);
        if (r >= 0 && config)
                r = step_arg(s, config, config_display);
        if (r >= 0 && !(s->role = strdup(vals[0])))
                r = -ENOMEM;
        if (r >= 0 && vals[1] && !(s->config = path_join(dir, vals[1])))
                r = -ENOMEM;
        if (r < 0) {
                step_done(s);
                return r;
        }
        s->secret = words[0]->secret || (words[1] && words[1]->secret);
        s->unresolved = words[0]->unresolved || (words[1] && words[1]->unresolved);

        if (vals[1] && !(p->opts && p->opts->no_host_files) && !words[1]->unresolved) {
                struct stat st;
                if (!vals[1][0] || vals[1][0] == '/')
                        errors += REPORT(l, value_offset(words[1]),
                                         "agent config must be a path relative to the recipe's directory");
                else if (stat(s->config, &st) < 0)
                        errors += REPORT(l, value_offset(words[1]), "agent config '%s' not found: %m", s->config);
                else if (!S_ISREG(st.st_mode))
                        errors += REPORT(l, value_offset(words[1]), "agent config '%s' is not a regular file",
                                         s->config);
                else {
                        const char *base = strrchr(s->config, '/');
                        r = strv_push(&s->host_files, s->config);
                        if (r >= 0)
                                r = strv_push(&s->host_names, base ? base + 1 : s->config);
                        if (r < 0) {
                                step_done(s);
                                return r;
                        }
                }
        }
        return step_commit(p, s, errors);
}

static int do_download(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
        static const char *const keys[] = { "sha256", "mode", NULL };
        const LexWord *words[2] = {}, *pos[2] = {};
        const char *vals[2] = {};
        size_t np;
        RecipeStep *s;
        int errors = key_values(l, ws, 1, keys, words, vals, pos, 2, &np), r;
        if (errors < 0)
                return errors;
        if (np != 2)
                return errors + REPORT(l, l->len, "expected 'download URL DEST sha256=HEX [mode=0644]'");
        if (!vals[0])
                return errors + REPORT(l, l->len, "'download' needs sha256=HEX of the file");

        r = step_new(p, l, RECIPE_STEP_DOWNLOAD, &s);
        if (r < 0)
                return r;
        const LexWord *url = pos[0], *dest = pos[1];
        s->mode = 0644;
        if (!words[0]->unresolved && !sha256_valid(vals[0]))
                errors += REPORT(l, value_offset(words[0]), "invalid sha256 '%s': expected 64 hex digits",
                                 words[0]->display + (value_offset(words[0]) - words[0]->offset));
        if (vals[1] && parse_mode(vals[1], &s->mode) < 0)
                errors += REPORT(l, value_offset(words[1]), "invalid mode '%s': expected octal such as 0755",
                                 vals[1]);
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

        char mode[16];
        snprintf(mode, sizeof(mode), "mode=%04o", (unsigned) s->mode);
        _cleanup_free_ char *sha = strdup(vals[0]), *sha_arg = NULL;
        if (!sha) {
                step_done(s);
                return -ENOMEM;
        }
        for (char *c = sha; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        if (asprintf(&sha_arg, "sha256=%s", sha) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = step_arg_word(s, url);
        if (r >= 0)
                r = step_arg_word(s, dest);
        if (r >= 0)
                r = step_arg(s, sha_arg, sha_arg);
        if (r >= 0)
                r = step_arg(s, mode, mode);
        if (r >= 0) {
                s->secret = s->secret || words[0]->secret;
                s->unresolved = s->unresolved || words[0]->unresolved;
                s->url = strdup(u);
                s->dest = strdup(dest->value);
                s->sha256 = TAKE_PTR(sha);
                s->source = local ? path_join(dir, local) : NULL;
                if (!s->url || !s->dest || (local && !s->source))
                        r = -ENOMEM;
        }
        if (r < 0) {
                step_done(s);
                return r;
        }
        if (s->source && !(p->opts && p->opts->no_host_files) && !url->unresolved) {
                struct stat st;
                if (stat(s->source, &st) < 0)
                        errors += REPORT(l, url->offset, "download source '%s' not found: %m", s->source);
                else if (!S_ISREG(st.st_mode))
                        errors += REPORT(l, url->offset, "download source '%s' is not a regular file", s->source);
        }
        return step_commit(p, s, errors);
}

static int parse_text(Parser *p, LexFile *f);

static int do_include(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
        if (ws->n != 2)
                return REPORT(l, ws->n > 2 ? ws->items[2].offset : l->len, "expected 'include PATH'");
        const LexWord *w = &ws->items[1];
        if (p->opts && p->opts->no_host_files)
                return REPORT(l, w->offset, "includes are disabled here");
        if (strv_length(p->include_stack) >= RECIPE_MAX_INCLUDE_DEPTH)
                return REPORT(l, w->offset, "includes nested more than %u deep", RECIPE_MAX_INCLUDE_DEPTH);

        _cleanup_free_ char *path = path_join(dir, w->value), *real = NULL, *text = NULL;
        if (!path)
                return -ENOMEM;
        real = realpath(path, NULL);
        if (!real)
                return errno == ENOMEM ? -ENOMEM : REPORT(l, w->offset, "cannot include '%s': %m", path);
        for (size_t i = 0; p->include_stack[i]; i++)
                if (streq(p->include_stack[i], real)) {
                        _cleanup_free_ char *chain = strv_join(p->include_display + i, " -> ");
                        if (!chain)
                                return -ENOMEM;
                        return REPORT(l, w->offset, "include cycle: %s -> %s", chain, path);
                }

        size_t len;
        int r = read_file(path, RECIPE_MAX_SIZE, &text, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                errno = -r;
                return REPORT(l, w->offset, "cannot include '%s': %m", path);
        }
        LexFile inc;
        lex_file_init(&inc, path, TAKE_PTR(text), len, p->diag);
        if (!inc.path) {
                lex_file_done(&inc);
                return -ENOMEM;
        }
        r = strv_push(&p->include_stack, real);
        if (r >= 0)
                r = strv_push(&p->include_display, path);
        if (r >= 0)
                r = strv_push(&p->recipe->files, path);
        if (r >= 0)
                r = parse_text(p, &inc);
        lex_file_done(&inc);
        if (r < 0)
                return r;
        size_t n = strv_length(p->include_stack);
        free(p->include_stack[n - 1]);
        p->include_stack[n - 1] = NULL;
        free(p->include_display[n - 1]);
        p->include_display[n - 1] = NULL;
        return 0;
}

static int unknown_instruction(const LexLine *l, size_t offset, const char *kw) {
        const char *hint = closest_name(kw, instructions);
        if (hint)
                return REPORT(l, offset, "unknown instruction '%s'; did you mean '%s'?", kw, hint);
        return REPORT(l, offset, "unknown instruction '%s'", kw);
}

static int parse_line(Parser *p, const LexLine *l, const char *dir) {
        _cleanup_(lex_words_done) LexWords ws = {};
        size_t b = 0, e;
        int r;

        while (b < l->len && ascii_isblank(l->text[b]))
                b++;
        for (e = b; e < l->len && !ascii_isblank(l->text[e]);)
                e++;
        _cleanup_free_ char *kw = strndup(l->text + b, e - b);
        if (!kw)
                return -ENOMEM;

        if (streq(kw, "run")) {
                while (e < l->len && ascii_isblank(l->text[e]))
                        e++;
                return do_run(p, l, e);
        }
        if (!strv_contains((char *const *) instructions, kw))
                return unknown_instruction(l, b, kw);

        r = lex_words(l, 0, &p->scope, &ws);
        if (r != 0)
                return r;

        if (streq(kw, "template"))
                return do_template(p, l, &ws);
        if (streq(kw, "base"))
                return do_base(p, l, &ws, dir);
        if (streq(kw, "var"))
                return do_var(p, l, &ws, 1, false);
        if (streq(kw, "secret")) {
                if (ws.n < 2 || !streq(ws.items[1].value, "var"))
                        return REPORT(l, ws.n < 2 ? l->len : ws.items[1].offset, "expected 'secret var NAME'");
                return do_var(p, l, &ws, 2, true);
        }
        if (streq(kw, "qemu"))
                return do_qemu(p, l, &ws);
        if (streq(kw, "exoscale"))
                return do_exoscale(p, l, &ws);
        if (streq(kw, "include"))
                return do_include(p, l, &ws, dir);
        if (streq(kw, "env"))
                return do_env(p, l, &ws);
        if (streq(kw, "packages"))
                return do_packages(p, l, &ws);
        if (streq(kw, "copy"))
                return do_copy(p, l, &ws, dir);
        if (streq(kw, "agent"))
                return do_agent(p, l, &ws, dir);
        return do_download(p, l, &ws, dir);
}

static int parse_text(Parser *p, LexFile *f) {
        _cleanup_free_ char *dir = path_dirname(f->path);
        if (!dir)
                return -ENOMEM;
        for (;;) {
                _cleanup_(lex_line_done) LexLine l = {};
                if (diagnostics_full(p->diag))
                        return 0;
                int r = lex_next_line(f, &l);
                if (r <= 0)
                        return r;
                r = parse_line(p, &l, dir);
                if (r < 0)
                        return r;
        }
}

static void parser_done(Parser *p) {
        for (char **e = p->env; e && *e; e++)
                explicit_bzero(*e, strlen(*e));
        strv_free(p->env);
        strv_free(p->env_display);
        strv_free(p->include_stack);
        strv_free(p->include_display);
        free(p->template_at);
        free(p->base_at);
        free(p->qemu_at);
        free(p->exoscale_at);
        for (size_t i = 0; i < p->n_overrides; i++) {
                free(p->overrides[i].name);
                free_secret(p->overrides[i].value);
                free(p->overrides[i].file);
        }
        free(p->overrides);
}

/* After the whole recipe: report what is missing and overrides nothing declared. */
static int parse_finish(Parser *p) {
        Recipe *rc = p->recipe;
        int r = 0;

        if (!rc->template_name && !p->template_at)
                r = diagnostics_add(p->diag, false, rc->path, 0, 0, NULL, "missing 'template NAME VERSION'");
        if (r >= 0 && !rc->base_name && !p->base_at)
                r = diagnostics_add(p->diag, false, rc->path, 0, 0, NULL, "missing 'base NAME'");
        for (size_t i = 0; r >= 0 && i < p->n_overrides; i++) {
                Override *o = &p->overrides[i];
                if (o->used)
                        continue;
                _cleanup_strv_free_ char **names = NULL;
                for (size_t j = 0; r >= 0 && j < rc->n_vars; j++)
                        r = strv_push(&names, rc->vars[j].name);
                if (r < 0)
                        break;
                const char *hint = closest_name(o->name, (const char *const *) names);
                _cleanup_free_ char *suffix = NULL;
                if (hint && asprintf(&suffix, "; did you mean '%s'?", hint) < 0)
                        return -ENOMEM;
                /* A --var for nothing is a mistake; a shared variable file may well hold values
                 * for other recipes, so there it is only a warning (as in Packer). */
                if (o->file)
                        r = diagnostics_add(p->diag, true, o->file, o->line, o->col, NULL,
                                            "variable '%s' is not declared in %s%s", o->name, rc->path,
                                            strempty(suffix));
                else
                        r = diagnostics_add(p->diag, false, rc->path, 0, 0, NULL,
                                            "--var %s: no such variable in this recipe%s", o->name,
                                            strempty(suffix));
        }
        return r;
}

int recipe_parse_buffer(const char *name, const char *text, size_t len, const RecipeOptions *o,
                        Diagnostics *diag, Recipe **ret) {
        _cleanup_(recipe_freep) Recipe *rc = calloc(1, sizeof(Recipe));
        size_t errors_before = diag->n_errors;
        LexFile f = {};
        int r;

        if (!rc)
                return -ENOMEM;
        Parser p = {
                .recipe = rc,
                .opts = o,
                .diag = diag,
        };
        p.scope = (LexScope) {
                .lookup = scope_lookup,
                .suggest = scope_suggest,
                .userdata = &p,
                .require_values = o && o->require_values,
        };
        rc->path = strdup(name);
        rc->qemu = (RecipeQemu) { .memory = 1024ull << 20, .cpus = 2, .disk = 4ull << 30 };
        rc->exoscale.instance_type = strdup("standard.medium");
        rc->exoscale.template = strdup("Linux Debian 12 (Bookworm) 64-bit");
        rc->exoscale.disk_gb = 10;
        char *copy = malloc(len + 1);
        if (!rc->path || !rc->exoscale.instance_type || !rc->exoscale.template || !copy) {
                free(copy);
                r = -ENOMEM;
                goto out;
        }
        memcpy(copy, text, len);
        copy[len] = '\0';
        lex_file_init(&f, name, copy, len, diag);
        if (!f.path) {
                r = -ENOMEM;
                goto out;
        }

        r = strv_push(&rc->files, name);
        if (r < 0)
                goto out;
        if (!(o && o->no_host_files)) {
                char *real = realpath(name, NULL);
                /* A buffer that is not a file cannot be part of a cycle: keep its name. */
                r = strv_consume(&p.include_stack, real ? real : strdup(name));
                if (r >= 0)
                        r = strv_push(&p.include_display, name);
        } else {
                r = strv_push(&p.include_stack, name);
                if (r >= 0)
                        r = strv_push(&p.include_display, name);
        }
        if (r < 0)
                goto out;

        r = load_overrides(&p);
        if (r >= 0)
                r = parse_text(&p, &f);
        if (r >= 0)
                r = parse_finish(&p);
        if (r < 0)
                goto out;

        r = diag->n_errors > errors_before ? -EINVAL : 0;
        if (r == 0)
                *ret = TAKE_PTR(rc);
out:
        lex_file_done(&f);
        parser_done(&p);
        return r;
}

int recipe_parse_file(const char *path, const RecipeOptions *o, Diagnostics *diag, Recipe **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file(path, RECIPE_MAX_SIZE, &text, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                errno = -r;
                r = diagnostics_add(diag, false, path, 0, 0, NULL, "cannot read recipe: %m");
                return r < 0 ? r : -EINVAL;
        }
        return recipe_parse_buffer(path, text, len, o, diag, ret);
}

/* ---- cache keys ---- */

int recipe_step_keys(const Recipe *r, const char *base_digest, char ***ret_keys, char **ret_failed_path) {
        _cleanup_strv_free_ char **keys = NULL;
        const char *parent = base_digest;
        int k;

        for (size_t i = 0; i < r->n_steps; i++) {
                const RecipeStep *s = &r->steps[i];
                char hex[SHA256_HEX_SIZE], count[32];
                sha256_ctx *c = sha256_new();
                if (!c)
                        return -ENOMEM;
                sha256_update_str(c, "imgbuild-step-key/1");
                sha256_update_str(c, parent);
                sha256_update(c, s->canonical, s->canonical_len);
                snprintf(count, sizeof(count), "%zu", strv_length(s->host_files));
                sha256_update_str(c, count);
                for (size_t j = 0; s->host_files && s->host_files[j]; j++) {
                        char file_hex[SHA256_HEX_SIZE];
                        k = sha256_file_hex(s->host_files[j], file_hex);
                        if (k < 0) {
                                sha256_free(c);
                                if (ret_failed_path)
                                        *ret_failed_path = strdup(s->host_files[j]);
                                return k;
                        }
                        sha256_update_str(c, s->host_names[j]);
                        sha256_update_str(c, file_hex);
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

/* ---- JSON ---- */

static json_t *strv_to_json(char *const *l) {
        json_t *a = json_array();
        for (size_t i = 0; a && l && l[i]; i++)
                if (json_array_append_new(a, json_string(l[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

json_t *recipe_to_json(const Recipe *r) {
        _cleanup_json_ json_t *root = json_object(), *vars = json_array(), *steps = json_array();
        char mem[32], disk[32];
        if (!root || !vars || !steps)
                return NULL;

        for (size_t i = 0; i < r->n_vars; i++) {
                const RecipeVar *v = &r->vars[i];
                char declared[PATH_MAX + 32];
                snprintf(declared, sizeof(declared), "%s:%u", v->file, v->line);
                json_t *o = json_pack("{s:s, s:b, s:b, s:s, s:s}", "name", v->name, "secret", v->secret,
                                      "required", v->required, "source", recipe_var_source_to_string(v->source),
                                      "declared", declared);
                if (!o)
                        return NULL;
                if (json_array_append_new(vars, o) < 0 ||
                    json_object_set_new(o, "value", !v->value ? json_null() :
                                        json_string(v->secret ? "<secret>" : v->value)) < 0)
                        return NULL;
        }
        for (size_t i = 0; i < r->n_steps; i++) {
                const RecipeStep *s = &r->steps[i];
                char loc[PATH_MAX + 32];
                snprintf(loc, sizeof(loc), "%s:%u", s->file, s->line);
                json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:b}", "index", (json_int_t) i + 1, "kind",
                                      recipe_step_kind_to_string(s->kind), "location", loc, "args",
                                      strv_to_json(s->display_args), "env", strv_to_json(s->display_env), "files",
                                      strv_to_json(s->host_files), "unresolved", s->unresolved);
                if (!o || json_array_append_new(steps, o) < 0)
                        return NULL;
        }
        recipe_format_size(r->qemu.memory, mem);
        recipe_format_size(r->qemu.disk, disk);
        json_t *providers = json_pack("{s:{s:s, s:i, s:s}}", "qemu", "memory", mem, "cpus", (int) r->qemu.cpus,
                                      "disk", disk);
        if (!providers)
                return NULL;
        if (r->exoscale.set &&
            json_object_set_new(providers, "exoscale",
                                json_pack("{s:s, s:s, s:s, s:i}", "zone", r->exoscale.zone, "instance-type",
                                          r->exoscale.instance_type, "template", r->exoscale.template, "disk",
                                          (int) r->exoscale.disk_gb)) < 0) {
                json_decref(providers);
                return NULL;
        }
        if (json_object_set_new(root, "recipe", json_string(r->path)) < 0 ||
            json_object_set_new(root, "template", json_pack("{s:s, s:s}", "name", r->template_name, "version",
                                                            r->template_version)) < 0 ||
            json_object_set_new(root, "base", json_pack("{s:s, s:s?}", "name", r->base_name, "path",
                                                        r->base_dir)) < 0 ||
            json_object_set_new(root, "variables", TAKE_PTR(vars)) < 0 ||
            json_object_set_new(root, "providers", providers) < 0 ||
            json_object_set_new(root, "steps", TAKE_PTR(steps)) < 0 ||
            json_object_set_new(root, "files", strv_to_json(r->files)) < 0)
                return NULL;
        return TAKE_PTR(root);
}
