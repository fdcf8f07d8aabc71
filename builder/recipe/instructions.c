/* The header instructions (template, base, qemu, exoscale, env) and the KEY=VALUE argument
 * splitter the step instructions share. */
#include "recipe-internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "parse-util.h"
#include "strv.h"

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

int recipe_do_template(Parser *p, const LexLine *l, const LexWords *ws) {
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

int recipe_do_base(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
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
        _cleanup_free_ char *parent = recipe_parent_dir(dir), *rel = NULL;
        if (!parent || asprintf(&rel, "images/%s", name) < 0)
                return -ENOMEM;
        _cleanup_free_ char *a = recipe_path_join(parent, rel);
        if (!a)
                return -ENOMEM;
        const char *candidates[] = { a, rel };
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                _cleanup_free_ char *def = recipe_path_join(candidates[i], "image.conf");
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

/* Split KEY=VALUE words against a list of known keys. Values land in vals[] (borrowed, indexed
 * like keys) and their words in words[]. Words without '=' are collected as positionals. */
int recipe_key_values(const LexLine *l, const LexWords *ws, size_t first, const char *const *keys,
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
                        const char *hint = key ? diagnostics_closest_name(key, keys) : NULL;
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

size_t recipe_value_offset(const LexWord *w) {
        return w->eq_offset != (size_t) -1 ? w->eq_offset + 1 : w->offset;
}

int recipe_do_qemu(Parser *p, const LexLine *l, const LexWords *ws) {
        static const char *const keys[] = { "memory", "cpus", "disk", NULL };
        const LexWord *words[3] = {};
        const char *vals[3] = {};
        int r = header_once(l, "qemu", &p->qemu_at);
        if (r != 0)
                return r;
        int errors = recipe_key_values(l, ws, 1, keys, words, vals, NULL, 0, NULL);
        if (errors < 0)
                return errors;

        RecipeQemu *q = &p->recipe->qemu;
        uint64_t v;
        if (vals[0]) {
                if (parse_size(vals[0], 1ull << 20, &v) < 0 || v < (128ull << 20) || v > (1ull << 40))
                        errors += REPORT(l, recipe_value_offset(words[0]),
                                         "invalid memory size '%s': expected 128M to 1T (a bare number means MiB)",
                                         vals[0]);
                else
                        q->memory = v;
        }
        if (vals[1]) {
                if (parse_size(vals[1], 1, &v) < 0 || strpbrk(vals[1], "KMGT") || v < 1 || v > 64)
                        errors += REPORT(l, recipe_value_offset(words[1]),
                                         "invalid cpus '%s': expected an integer from 1 to 64", vals[1]);
                else
                        q->cpus = (unsigned) v;
        }
        if (vals[2]) {
                if (parse_size(vals[2], 0, &v) < 0 || !strpbrk(vals[2], "KMGT") || v < (1ull << 30) ||
                    v > (2ull << 40))
                        errors += REPORT(l, recipe_value_offset(words[2]),
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

int recipe_do_exoscale(Parser *p, const LexLine *l, const LexWords *ws) {
        static const char *const keys[] = { "zone", "instance-type", "template", "disk", NULL };
        const LexWord *words[4] = {};
        const char *vals[4] = {};
        int r = header_once(l, "exoscale", &p->exoscale_at);
        if (r != 0)
                return r;
        int errors = recipe_key_values(l, ws, 1, keys, words, vals, NULL, 0, NULL);
        if (errors < 0)
                return errors;

        RecipeExoscale *e = &p->recipe->exoscale;
        e->set = true;
        if (!vals[0])
                errors += REPORT(l, l->len, "exoscale needs zone=ZONE");
        else if (!lower_dash_valid(vals[0]))
                errors += REPORT(l, recipe_value_offset(words[0]), "invalid zone '%s'", vals[0]);
        else if (!(e->zone = strdup(vals[0])))
                return -ENOMEM;
        if (vals[1]) {
                if (!instance_type_valid(vals[1]))
                        errors += REPORT(l, recipe_value_offset(words[1]),
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
                        errors += REPORT(l, recipe_value_offset(words[2]), "template name must not be empty");
                else {
                        free(e->template);
                        if (!(e->template = strdup(vals[2])))
                                return -ENOMEM;
                }
        }
        if (vals[3]) {
                uint64_t v;
                if (parse_size(vals[3], 1, &v) < 0 || strpbrk(vals[3], "KMGT") || v < 10 || v > 51200)
                        errors += REPORT(l, recipe_value_offset(words[3]),
                                         "invalid disk '%s': expected an integer number of GB from 10 to 51200",
                                         vals[3]);
                else
                        e->disk_gb = (unsigned) v;
        }
        return errors;
}

int recipe_do_env(Parser *p, const LexLine *l, const LexWords *ws) {
        if (ws->n != 2 || ws->items[1].eq_offset == (size_t) -1)
                return REPORT(l, ws->n > 1 ? ws->items[1].offset : l->len, "expected 'env NAME=VALUE'");
        const char *v = ws->items[1].value, *eq = strchr(v, '=');
        _cleanup_free_ char *name = strndup(v, (size_t) (eq - v));
        if (!name)
                return -ENOMEM;
        if (!recipe_var_name_valid(name, false))
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

