#include "image.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"
#include "strv.h"

bool image_package_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n < 2 || !(islower((unsigned char) s[0]) || isdigit((unsigned char) s[0])))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!islower((unsigned char) s[i]) && !isdigit((unsigned char) s[i]) &&
                    !strchr("+.-", s[i]))
                        return false;
        return true;
}

Image *image_free(Image *i) {
        if (!i)
                return NULL;
        free(i->path);
        free(i->suite);
        free(i->mirror);
        free(i->variant);
        strv_free(i->packages);
        strv_free(i->initrd_modules);
        strv_free(i->dpkg_paths);
        free(i);
        return NULL;
}

static bool module_name_valid(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && *s != '_' && *s != '-')
                        return false;
        return true;
}

static const char *const mmdebstrap_variants[] = {
        "extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important",
        "debootstrap", "standard", NULL
};

static const char *const image_keywords[] = {
        "suite", "mirror", "variant", "packages", "initrd-modules", "disk-size", "path-exclude",
        "path-include", NULL
};

/* Set a single-value field once. Returns the number of errors or -ENOMEM. */
static int set_once(const LexLine *l, const LexWords *ws, char **field) {
        int r;
        if (ws->n != 2) {
                r = lex_error(l, ws->n > 2 ? ws->items[2].offset : l->len,
                              "'%s' takes exactly one argument", ws->items[0].value);
                return r < 0 ? r : 1;
        }
        if (*field) {
                r = lex_error(l, ws->items[0].offset, "'%s' is given twice", ws->items[0].value);
                return r < 0 ? r : 1;
        }
        *field = strdup(ws->items[1].value);
        return *field ? 0 : -ENOMEM;
}

static int image_line(Image *img, const LexLine *l, const LexWords *ws, bool *disk_set) {
        const char *kw = ws->items[0].value;
        int r = 0;

        if (streq(kw, "suite")) {
                r = set_once(l, ws, &img->suite);
                if (r == 0 && !image_package_name_valid(img->suite)) {
                        r = lex_error(l, ws->items[1].offset, "invalid suite name '%s'", img->suite);
                        return r < 0 ? r : 1;
                }
                return r;
        }
        if (streq(kw, "mirror")) {
                r = set_once(l, ws, &img->mirror);
                if (r == 0 && !startswith(img->mirror, "http://") && !startswith(img->mirror, "https://")) {
                        r = lex_error(l, ws->items[1].offset, "mirror must be an http:// or https:// URL");
                        return r < 0 ? r : 1;
                }
                return r;
        }
        if (streq(kw, "variant")) {
                r = set_once(l, ws, &img->variant);
                if (r == 0 && !strv_contains((char *const *) mmdebstrap_variants, img->variant)) {
                        r = lex_error(l, ws->items[1].offset, "unknown mmdebstrap variant '%s'", img->variant);
                        return r < 0 ? r : 1;
                }
                return r;
        }
        if (streq(kw, "packages") || streq(kw, "initrd-modules")) {
                bool pkgs = streq(kw, "packages");
                int errors = 0;
                if (ws->n < 2) {
                        r = lex_error(l, l->len, "'%s' needs at least one name", kw);
                        return r < 0 ? r : 1;
                }
                for (size_t i = 1; i < ws->n; i++) {
                        const char *v = ws->items[i].value;
                        if (pkgs ? !image_package_name_valid(v) : !module_name_valid(v)) {
                                r = lex_error(l, ws->items[i].offset, "invalid %s name '%s'",
                                              pkgs ? "package" : "module", v);
                                if (r < 0)
                                        return r;
                                errors++;
                                continue;
                        }
                        r = strv_push(pkgs ? &img->packages : &img->initrd_modules, v);
                        if (r < 0)
                                return r;
                }
                return errors;
        }
        if (streq(kw, "path-exclude") || streq(kw, "path-include")) {
                int errors = 0;
                if (ws->n < 2) {
                        r = lex_error(l, l->len, "'%s' needs at least one absolute path pattern", kw);
                        return r < 0 ? r : 1;
                }
                for (size_t i = 1; i < ws->n; i++) {
                        const char *v = ws->items[i].value;
                        /* dpkg matches the package's absolute paths: a relative pattern matches nothing */
                        if (v[0] != '/' || strpbrk(v, " \t\n")) {
                                r = lex_error(l, ws->items[i].offset,
                                              "invalid path pattern '%s': expected an absolute path glob such as /usr/share/man/*", v);
                                if (r < 0)
                                        return r;
                                errors++;
                                continue;
                        }
                        _cleanup_free_ char *opt = NULL;
                        if (asprintf(&opt, "%s=%s", kw, v) < 0)
                                return -ENOMEM;
                        r = strv_push(&img->dpkg_paths, opt);
                        if (r < 0)
                                return r;
                }
                return errors;
        }
        if (streq(kw, "disk-size")) {
                if (ws->n != 2) {
                        r = lex_error(l, l->len, "'disk-size' takes exactly one argument");
                        return r < 0 ? r : 1;
                }
                if (*disk_set) {
                        r = lex_error(l, ws->items[0].offset, "'disk-size' is given twice");
                        return r < 0 ? r : 1;
                }
                *disk_set = true;
                uint64_t v;
                if (parse_size(ws->items[1].value, 0, &v) < 0 || !strpbrk(ws->items[1].value, "KMGT") ||
                    v < (256ull << 20) || v > (2ull << 40)) {
                        r = lex_error(l, ws->items[1].offset,
                                      "invalid disk size '%s': expected a size from 256M to 2T with a K, M, G or T suffix",
                                      ws->items[1].value);
                        return r < 0 ? r : 1;
                }
                img->disk_size = v;
                return 0;
        }

        const char *hint = diagnostics_closest_name(kw, image_keywords);
        if (hint)
                r = lex_error(l, ws->items[0].offset, "unknown instruction '%s'; did you mean '%s'?", kw, hint);
        else
                r = lex_error(l, ws->items[0].offset, "unknown instruction '%s'", kw);
        return r < 0 ? r : 1;
}

int image_parse_buffer(const char *name, const char *text, size_t len, Diagnostics *diag, Image **ret) {
        _cleanup_(image_freep) Image *img = calloc(1, sizeof(Image));
        size_t errors_before = diag->n_errors;
        bool disk_set = false;
        LexFile f;
        int r;

        if (!img)
                return -ENOMEM;
        img->path = strdup(name);
        char *copy = malloc(len + 1);
        if (!img->path || !copy) {
                free(copy);
                return -ENOMEM;
        }
        memcpy(copy, text, len);
        copy[len] = '\0';
        lex_file_init(&f, name, copy, len, diag);
        if (!f.path) {
                lex_file_done(&f);
                return -ENOMEM;
        }

        for (;;) {
                _cleanup_(lex_line_done) LexLine l = {};
                _cleanup_(lex_words_done) LexWords ws = {};

                if (diagnostics_full(diag))
                        break;
                r = lex_next_line(&f, &l);
                if (r < 0)
                        goto out;
                if (r == 0)
                        break;
                r = lex_words(&l, 0, NULL, &ws);
                if (r < 0)
                        goto out;
                if (r > 0 || ws.n == 0)
                        continue;
                r = image_line(img, &l, &ws, &disk_set);
                if (r < 0)
                        goto out;
        }

        const char *missing[] = {
                !img->suite ? "suite" : NULL,
                !img->mirror ? "mirror" : NULL,
                !img->packages ? "packages" : NULL,
        };
        for (size_t i = 0; i < ELEMENTSOF(missing); i++)
                if (missing[i]) {
                        r = diagnostics_add(diag, false, name, 0, 0, NULL, "missing '%s' instruction", missing[i]);
                        if (r < 0)
                                goto out;
                }
        if (!img->variant && !(img->variant = strdup("minbase"))) {
                r = -ENOMEM;
                goto out;
        }
        if (!disk_set)
                img->disk_size = 2ull << 30;

        r = diag->n_errors > errors_before ? -EINVAL : 0;
        if (r == 0)
                *ret = TAKE_PTR(img);
out:
        lex_file_done(&f);
        return r;
}

int image_parse_file(const char *path, Diagnostics *diag, Image **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = diagnostics_read_file(diag, path, IMAGE_MAX_SIZE, "image definition", &text, &len);
        if (r < 0)
                return r;
        return image_parse_buffer(path, text, len, diag, ret);
}
