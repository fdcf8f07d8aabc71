/* Shared internals of the recipe parser, which is split by concern:
 *   recipe.c        the model: free, names of kinds and sources, paths
 *   parse.c         files, lines and includes; recipe_parse_buffer/recipe_parse_file
 *   vars.c          variables: declarations, variable files, --var overrides
 *   instructions.c  the header instructions (template, base, qemu, exoscale, env) and KEY=VALUE
 *                   arguments
 *   steps.c         the step instructions (packages, copy, run, agent, download)
 *   keys.c          the canonical encoding of a step and the cache key chain
 *   json.c          recipe_to_json
 * Not for use outside builder/recipe/. */
#pragma once

#include "recipe.h"

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

#define REPORT(l, off, ...) ({ int _r = lex_error((l), (off), __VA_ARGS__); _r < 0 ? _r : 1; })

/* ---- recipe.c ---- */

void recipe_step_done(RecipeStep *s);
/* dir/rel, or rel when it is absolute or dir is ".". NULL on ENOMEM. */
char *recipe_path_join(const char *dir, const char *rel);
/* The parent of a directory given as a display path, kept relative when it was relative. */
char *recipe_parent_dir(const char *dir);

/* ---- vars.c ---- */

bool recipe_var_name_valid(const char *s, bool allow_dash);
/* The lex_lookup_t and lex_suggest_t of a Parser (userdata). */
int recipe_var_lookup(void *userdata, const char *name, const char **ret_value, bool *ret_secret);
const char *recipe_var_suggest(void *userdata, const char *name);
/* Read --var-file files and --var values into p->overrides. Returns 0 or -ENOMEM. */
int recipe_load_overrides(Parser *p);
/* Report the overrides that matched no declared variable. Returns 0 or -ENOMEM. */
int recipe_overrides_check(Parser *p);
void recipe_overrides_free(Parser *p);

/* ---- instruction handlers: each returns the number of errors reported, or -ENOMEM ---- */

int recipe_do_var(Parser *p, const LexLine *l, const LexWords *ws, size_t first, bool secret);
int recipe_do_template(Parser *p, const LexLine *l, const LexWords *ws);
int recipe_do_base(Parser *p, const LexLine *l, const LexWords *ws, const char *dir);
int recipe_do_qemu(Parser *p, const LexLine *l, const LexWords *ws);
int recipe_do_exoscale(Parser *p, const LexLine *l, const LexWords *ws);
int recipe_do_env(Parser *p, const LexLine *l, const LexWords *ws);
int recipe_do_packages(Parser *p, const LexLine *l, const LexWords *ws);
int recipe_do_copy(Parser *p, const LexLine *l, const LexWords *ws, const char *dir);
int recipe_do_run(Parser *p, const LexLine *l, size_t start);
int recipe_do_agent(Parser *p, const LexLine *l, const LexWords *ws, const char *dir);
int recipe_do_download(Parser *p, const LexLine *l, const LexWords *ws, const char *dir);

/* Split KEY=VALUE words against a list of known keys. Values land in vals[] (borrowed, indexed
 * like keys) and their words in words[]. Words without '=' are collected as positionals. */
int recipe_key_values(const LexLine *l, const LexWords *ws, size_t first, const char *const *keys,
                      const LexWord **words, const char **vals, const LexWord **positionals,
                      size_t max_positionals, size_t *ret_n_positionals);
/* Where the value of a KEY=VALUE word starts. */
size_t recipe_value_offset(const LexWord *w);

/* ---- keys.c ---- */

/* Fill s->canonical (see RecipeStep). Returns 0 or -ENOMEM. */
int recipe_step_canonical(RecipeStep *s);
