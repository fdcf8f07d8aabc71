/* The resolved model as JSON, for inspect --json. */
#include "recipe-internal.h"

#include <limits.h>
#include <stdio.h>

#include "json.h"
#include "strv.h"

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
