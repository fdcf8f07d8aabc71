/* Variables: declarations (var, secret var), their values from the environment, variable files
 * and --var, and the lookup the lexer uses for ${name}. */
#include "recipe-internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "strv.h"


bool recipe_var_name_valid(const char *s, bool allow_dash) {
        if (!s[0] || !(isalpha((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; s[i]; i++)
                if (!isalnum((unsigned char) s[i]) && s[i] != '_' && !(allow_dash && s[i] == '-'))
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

int recipe_var_lookup(void *userdata, const char *name, const char **ret_value, bool *ret_secret) {
        Parser *p = userdata;
        RecipeVar *v = find_var(p->recipe, name);
        if (!v)
                return 0;
        *ret_value = v->value;
        *ret_secret = v->secret;
        return 1;
}

const char *recipe_var_suggest(void *userdata, const char *name) {
        Parser *p = userdata;
        const char *best = NULL;
        unsigned best_d = 3;
        for (size_t i = 0; i < p->recipe->n_vars; i++) {
                unsigned d = diagnostics_edit_distance(name, p->recipe->vars[i].name, 2);
                if (d < best_d) {
                        best_d = d;
                        best = p->recipe->vars[i].name;
                }
        }
        return best;
}

static void override_done(Override *o) {
        free(o->name);
        free_secret(o->value);
        free(o->file);
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
                override_done(o);
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

        r = diagnostics_read_file(p->diag, path, RECIPE_MAX_SIZE, "variable file", &text, &len);
        if (r < 0)
                return r == -EINVAL ? 0 : r; /* reported; the other files are still worth reading */
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
                if (!recipe_var_name_valid(name, false)) {
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

int recipe_load_overrides(Parser *p) {
        int r;
        for (char **f = p->opts ? p->opts->var_files : NULL; f && *f; f++) {
                r = load_var_file(p, *f);
                if (r < 0)
                        return r;
        }
        for (char **v = p->opts ? p->opts->vars : NULL; v && *v; v++) {
                const char *eq = strchr(*v, '=');
                _cleanup_free_ char *name = eq ? strndup(*v, (size_t) (eq - *v)) : NULL;
                if (!eq || !recipe_var_name_valid(name, false)) {
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

int recipe_do_var(Parser *p, const LexLine *l, const LexWords *ws, size_t first, bool secret) {
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
        if (!recipe_var_name_valid(name, false))
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


/* After the whole recipe: an override for no declared variable is a mistake on the command line,
 * and worth a warning in a variable file. */
int recipe_overrides_check(Parser *p) {
        int r = 0;

        for (size_t i = 0; i < p->n_overrides; i++) {
                Override *o = &p->overrides[i];
                if (o->used)
                        continue;
                _cleanup_strv_free_ char **names = NULL;
                for (size_t j = 0; r >= 0 && j < p->recipe->n_vars; j++)
                        r = strv_push(&names, p->recipe->vars[j].name);
                if (r < 0)
                        return r;
                const char *hint = diagnostics_closest_name(o->name, (const char *const *) names);
                _cleanup_free_ char *suffix = NULL;
                if (hint && asprintf(&suffix, "; did you mean '%s'?", hint) < 0)
                        return -ENOMEM;
                /* A --var for nothing is a mistake; a shared variable file may well hold values
                 * for other recipes, so there it is only a warning (as in Packer). */
                if (o->file)
                        r = diagnostics_add(p->diag, true, o->file, o->line, o->col, NULL,
                                            "variable '%s' is not declared in %s%s", o->name, p->recipe->path,
                                            strempty(suffix));
                else
                        r = diagnostics_add(p->diag, false, p->recipe->path, 0, 0, NULL,
                                            "--var %s: no such variable in this recipe%s", o->name,
                                            strempty(suffix));
                if (r < 0)
                        return r;
        }
        return 0;
}

void recipe_overrides_free(Parser *p) {
        for (size_t i = 0; i < p->n_overrides; i++)
                override_done(&p->overrides[i]);
        free(p->overrides);
        p->overrides = NULL;
        p->n_overrides = 0;
}
