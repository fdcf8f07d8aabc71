#include "base-definition.h"

#include <stdio.h>
#include <sys/stat.h>

#include "fs.h"
#include "image.h"
#include "log.h"

/* IMAGE may name the definition file or the directory holding image.conf. */
static int definition_path(const char *image, char **ret) {
        struct stat st;
        char *p;

        if (stat(image, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode)) {
                if (asprintf(&p, "%s/image.conf", image) < 0)
                        return -ENOMEM;
        } else if (!(p = strdup(image)))
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* An image definition, parsed, with the store and bootagent binary its base image is for. */
typedef struct base_definition {
        char *text, *store, *bootagent;
        Image *img;
        base_spec spec;  /* borrows from text and img */
} base_definition;

static void base_definition_done(base_definition *d) {
        free(d->text);
        free(d->store);
        free(d->bootagent);
        image_free(d->img);
}

static int base_definition_load(const char *image, const char *cache_dir, const char *bootagent_path,
                                base_definition *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(base_definition_done) base_definition d = {};
        Diagnostics diag = {};
        int r;

        r = definition_path(image, &path);
        if (r < 0)
                return log_error_errno(r, "Failed to find the image definition %s: %m", image);
        r = read_file(path, IMAGE_MAX_SIZE, &d.text, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        r = image_parse_file(path, &diag, &d.img);
        if (r < 0) {
                diagnostics_print(&diag, stderr);
                diagnostics_free(&diag);
                return log_error_errno(r, "Failed to parse %s: %m", path);
        }
        diagnostics_print(&diag, stderr); /* warnings */
        diagnostics_free(&diag);

        r = base_store_dir(cache_dir, &d.store);
        if (r < 0)
                return log_error_errno(r, "Failed to find the image store (set --cache-dir or IMGBUILD_CACHE_DIR): %m");
        r = base_find_bootagent(bootagent_path, &d.bootagent);
        if (r < 0)
                return log_error_errno(r, "Failed to find the bootagent binary to bake in (use --bootagent): %m");

        d.spec = (base_spec) {
                .definition = d.text,
                .suite = d.img->suite,
                .mirror = d.img->mirror,
                .variant = d.img->variant,
                .packages = d.img->packages,
                .initrd_modules = d.img->initrd_modules,
                .dpkg_paths = d.img->dpkg_paths,
                .disk_size = d.img->disk_size,
        };
        *ret = d;
        d = (base_definition) {};
        return 0;
}

int base_ensure(const char *image, const char *cache_dir, const char *bootagent_path, bool force,
                base_image *ret) {
        _cleanup_(base_definition_done) base_definition d = {};
        int r;

        r = base_definition_load(image, cache_dir, bootagent_path, &d);
        if (r < 0)
                return r;
        r = base_build(d.store, &d.spec, d.bootagent, force, ret);
        return r < 0 ? r : 0;
}

int base_find(const char *image, const char *cache_dir, const char *bootagent_path, char ret_key[SHA256_HEX_SIZE]) {
        _cleanup_(base_definition_done) base_definition d = {};
        _cleanup_(base_image_done) base_image b = {};
        char key[SHA256_HEX_SIZE];
        int r;

        r = base_definition_load(image, cache_dir, bootagent_path, &d);
        if (r < 0)
                return r;
        r = base_key(&d.spec, d.bootagent, key);
        if (r < 0)
                return log_error_errno(r, "Failed to compute the base image key: %m");
        r = base_lookup(d.store, &d.spec, d.bootagent, &b);
        if (r < 0)
                return log_error_errno(r, "Failed to look up the base image in %s: %m", d.store);
        memcpy(ret_key, key, SHA256_HEX_SIZE);
        return r;
}
