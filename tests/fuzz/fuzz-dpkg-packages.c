/* Fuzz the dpkg-query parser (build_packages_from_dpkg, builder/build/build-steps.c): the output
 * of dpkg-query in the guest becomes the template's package list. Checked: errors are -EBADMSG
 * (nothing here runs out of memory); an accepted list holds one {name, version, arch} of
 * non-empty strings without separators per "ii " line, sorted by name, and printing it back as
 * dpkg-query lines parses to the same list. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build-steps.h"
#include "buf.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool field_ok(json_t *e, const char *key) {
        const char *s = json_string_value(json_object_get(e, key));
        return s && *s && !strpbrk(s, " \n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 64 * 1024)
                return 0;
        /* The caller reads the output into a C string: a NUL ends it. */
        _cleanup_free_ char *text = strndup((const char *) data, size);
        _cleanup_(json_decrefp) json_t *list = NULL, *again = NULL;
        _cleanup_buf_ buf printed = BUF_INIT(1024 * 1024);
        json_t *e;
        size_t i, installed = 0;

        if (!text)
                return 0;
        int r = build_packages_from_dpkg(text, &list);
        if (r < 0) {
                if (r != -EBADMSG || list)
                        abort();
                return 0;
        }
        /* One entry per "ii " line (lines split on '\n', empty ones dropped). */
        for (const char *l = text; *l; l += strcspn(l, "\n"), l += *l == '\n')
                installed += strncmp(l, "ii ", 3) == 0;
        if (!json_is_array(list) || json_array_size(list) != installed)
                abort();
        const char *prev = NULL;
        json_array_foreach(list, i, e) {
                if (!field_ok(e, "name") || !field_ok(e, "version") || !field_ok(e, "arch") || json_object_size(e) != 3)
                        abort();
                const char *name = json_string_value(json_object_get(e, "name"));
                if (prev && strcmp(prev, name) > 0)
                        abort(); /* sorted by name */
                prev = name;
                if (buf_printf(&printed, "ii  %s %s %s\n", name, json_string_value(json_object_get(e, "version")),
                               json_string_value(json_object_get(e, "arch"))) < 0)
                        abort();
        }
        if (build_packages_from_dpkg(printed.data ?: "", &again) < 0 || !json_equal(list, again))
                abort();
        return 0;
}
