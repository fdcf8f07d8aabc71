/* Fuzz the recipe and image definition parsers from memory. no_host_files keeps the recipe
 * parser off the filesystem (includes are errors, copied files and the base are not checked) and
 * no_environment keeps runs reproducible. Successful parses also go through the JSON model, and
 * every diagnostic through the printer. */
#include <stdint.h>
#include <stdio.h>

#include "image.h"
#include "json.h"
#include "recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        RecipeOptions o = { .no_host_files = true, .no_environment = true };
        Diagnostics diag = {};
        Recipe *r = NULL;

        if (size > 64 * 1024)
                return 0;
        if (recipe_parse_buffer("fuzz.recipe", (const char *) data, size, &o, &diag, &r) >= 0) {
                json_t *j = recipe_to_json(r);
                char *s = j ? json_dumps(j, JSON_SORT_KEYS) : NULL;
                free(s);
                json_decref(j);
                recipe_free(r);
        }
        /* Base image definitions share the lexer: parse the same bytes as one. */
        Image *img = NULL;
        if (image_parse_buffer("fuzz.conf", (const char *) data, size, &diag, &img) >= 0)
                image_free(img);

        FILE *devnull = fopen("/dev/null", "we");
        if (devnull) {
                diagnostics_print(&diag, devnull);
                fclose(devnull);
        }
        diagnostics_free(&diag);
        return 0;
}
