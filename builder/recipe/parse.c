/* Parsing a recipe: files, logical lines, the instruction dispatch and includes. */
#include "recipe-internal.h"

#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "strv.h"

static const char *const instructions[] = {
        "template", "base", "var", "secret", "qemu", "exoscale", "include", "env",
        "packages", "copy", "run", "agent", "download", NULL
};

static int parse_text(Parser *p, LexFile *f);

static int do_include(Parser *p, const LexLine *l, const LexWords *ws, const char *dir) {
        if (ws->n != 2)
                return REPORT(l, ws->n > 2 ? ws->items[2].offset : l->len, "expected 'include PATH'");
        const LexWord *w = &ws->items[1];
        if (p->opts && p->opts->no_host_files)
                return REPORT(l, w->offset, "includes are disabled here");
        if (strv_length(p->include_stack) >= RECIPE_MAX_INCLUDE_DEPTH)
                return REPORT(l, w->offset, "includes nested more than %u deep", RECIPE_MAX_INCLUDE_DEPTH);

        _cleanup_free_ char *path = recipe_path_join(dir, w->value), *real = NULL, *text = NULL;
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
        const char *hint = diagnostics_closest_name(kw, instructions);
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
                return recipe_do_run(p, l, e);
        }
        if (!strv_contains((char *const *) instructions, kw))
                return unknown_instruction(l, b, kw);

        r = lex_words(l, 0, &p->scope, &ws);
        if (r != 0)
                return r;

        if (streq(kw, "template"))
                return recipe_do_template(p, l, &ws);
        if (streq(kw, "base"))
                return recipe_do_base(p, l, &ws, dir);
        if (streq(kw, "var"))
                return recipe_do_var(p, l, &ws, 1, false);
        if (streq(kw, "secret")) {
                if (ws.n < 2 || !streq(ws.items[1].value, "var"))
                        return REPORT(l, ws.n < 2 ? l->len : ws.items[1].offset, "expected 'secret var NAME'");
                return recipe_do_var(p, l, &ws, 2, true);
        }
        if (streq(kw, "qemu"))
                return recipe_do_qemu(p, l, &ws);
        if (streq(kw, "exoscale"))
                return recipe_do_exoscale(p, l, &ws);
        if (streq(kw, "include"))
                return do_include(p, l, &ws, dir);
        if (streq(kw, "env"))
                return recipe_do_env(p, l, &ws);
        if (streq(kw, "packages"))
                return recipe_do_packages(p, l, &ws);
        if (streq(kw, "copy"))
                return recipe_do_copy(p, l, &ws, dir);
        if (streq(kw, "agent"))
                return recipe_do_agent(p, l, &ws, dir);
        return recipe_do_download(p, l, &ws, dir);
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
        recipe_overrides_free(p);
}

/* After the whole recipe: report what is missing and overrides of nothing declared. */
static int parse_finish(Parser *p) {
        Recipe *rc = p->recipe;
        int r = 0;

        if (!rc->template_name && !p->template_at)
                r = diagnostics_add(p->diag, false, rc->path, 0, 0, NULL, "missing 'template NAME VERSION'");
        if (r >= 0 && !rc->base_name && !p->base_at)
                r = diagnostics_add(p->diag, false, rc->path, 0, 0, NULL, "missing 'base NAME'");
        if (r >= 0)
                r = recipe_overrides_check(p);
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
                .lookup = recipe_var_lookup,
                .suggest = recipe_var_suggest,
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

        r = recipe_load_overrides(&p);
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
        int r = diagnostics_read_file(diag, path, RECIPE_MAX_SIZE, "recipe", &text, &len);
        if (r < 0)
                return r;
        return recipe_parse_buffer(path, text, len, o, diag, ret);
}
