#include "templates.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "spawn.h"
#include "strv.h"

/* Hard link when the store is one file system (it normally is), else copy. */
static int link_or_copy(const char *from, const char *to) {
        int r, status;

        if (link(from, to) >= 0)
                return 0;
        char *argv[] = { (char *) "cp", (char *) "--reflink=auto", (char *) from, (char *) to, NULL };
        r = spawn_run(argv, NULL, &status);
        if (r < 0)
                return r;
        return status == 0 ? 0 : -EIO;
}

int template_install(const char *store, const Recipe *recipe, const base_image *base, const build_result *result,
                     progress *p, char **ret_dir) {
        _cleanup_free_ char *parent = NULL, *final = NULL, *tmp = NULL, *disk = NULL, *final_disk = NULL,
                            *kernel = NULL, *initrd = NULL, *manifest = NULL, *old = NULL;
        int r;

        if (asprintf(&parent, "%s/templates/%s", store, recipe->template_name) < 0 ||
            asprintf(&final, "%s/%s", parent, recipe->template_version) < 0 ||
            asprintf(&tmp, "%s/.%s.tmp-XXXXXX", parent, recipe->template_version) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = mkdir_p(parent, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", parent);
        if (!mkdtemp(tmp))
                return log_error_errno(errno, "Failed to create a directory in %s: %m", parent);
        (void) chmod(tmp, 0755);

        if (asprintf(&disk, "%s/disk.qcow2", tmp) < 0 || asprintf(&final_disk, "%s/disk.qcow2", final) < 0 ||
            asprintf(&kernel, "%s/vmlinuz", tmp) < 0 || asprintf(&initrd, "%s/initrd.img", tmp) < 0 ||
            asprintf(&manifest, "%s/manifest.json", tmp) < 0) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto fail;
        }
        r = build_export(result->disk, disk, p);
        if (r < 0)
                goto fail;
        r = link_or_copy(base->kernel, kernel);
        if (r >= 0)
                r = link_or_copy(base->initrd, initrd);
        if (r < 0) {
                log_error_errno(r, "Failed to copy the base's kernel and initrd into %s: %m", tmp);
                goto fail;
        }
        r = build_manifest_write(manifest, recipe, base, result, disk, final_disk);
        if (r < 0)
                goto fail;

        /* Swap with an older build of the same version, if any, so the name never points at a
         * partial directory; then drop the old one. */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) >= 0) {
                old = TAKE_PTR(tmp);
                r = rm_rf(old);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove the previous build in %s: %m", old);
        } else if (errno == ENOENT) {
                if (rename(tmp, final) < 0) {
                        r = log_error_errno(errno, "Failed to move %s to %s: %m", tmp, final);
                        goto fail;
                }
                free(TAKE_PTR(tmp));
        } else {
                r = log_error_errno(errno, "Failed to move %s to %s: %m", tmp, final);
                goto fail;
        }
        r = fsync_parent_dir(final);
        if (r < 0)
                log_warning_errno(r, "Failed to sync %s: %m", parent);
        if (ret_dir)
                *ret_dir = TAKE_PTR(final);
        return 0;
fail:
        (void) rm_rf(tmp);
        return r;
}

int template_open(const char *store, const char *ref, base_image *ret) {
        _cleanup_free_ char *name = NULL, *dir = NULL, *manifest = NULL;
        base_image b = {};
        const char *at = strchr(ref, '@');

        if (!at || at == ref || !at[1] || strchr(ref, '/') || ref[0] == '.')
                return -EINVAL;
        name = strndup(ref, (size_t) (at - ref));
        if (!name || asprintf(&dir, "%s/templates/%s/%s", store, name, at + 1) < 0 ||
            asprintf(&manifest, "%s/manifest.json", dir) < 0)
                return -ENOMEM;
        if (access(manifest, F_OK) < 0)
                return negative_errno();
        if (asprintf(&b.kernel, "%s/vmlinuz", dir) < 0 || asprintf(&b.initrd, "%s/initrd.img", dir) < 0 ||
            asprintf(&b.disk, "%s/disk.qcow2", dir) < 0) {
                base_image_done(&b);
                return -ENOMEM;
        }
        b.dir = TAKE_PTR(dir);
        *ret = b;
        return 0;
}

static int name_compare(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorted entries of dir that do not start with '.'. Missing dir: none. */
static int list_dir(const char *dir, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        DIR *d = opendir(dir);

        if (!d) {
                if (errno != ENOENT)
                        return negative_errno();
        } else {
                struct dirent *de;
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.' && strv_push(&names, de->d_name) < 0) {
                                closedir(d);
                                return -ENOMEM;
                        }
                closedir(d);
        }
        if (names)
                qsort(names, strv_length(names), sizeof(char *), name_compare);
        *ret = TAKE_PTR(names);
        return 0;
}

int templates_list(const char *store, json_t **ret) {
        _cleanup_(json_decrefp) json_t *all = json_array();
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *top = NULL;
        int r;

        if (!all || asprintf(&top, "%s/templates", store) < 0)
                return -ENOMEM;
        r = list_dir(top, &names);
        if (r < 0)
                return r;
        for (char **n = names; n && *n; n++) {
                _cleanup_strv_free_ char **versions = NULL;
                _cleanup_free_ char *parent = NULL;
                if (asprintf(&parent, "%s/%s", top, *n) < 0)
                        return -ENOMEM;
                r = list_dir(parent, &versions);
                if (r < 0)
                        return r;
                for (char **v = versions; v && *v; v++) {
                        _cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;
                        json_t *manifest = NULL;
                        if (asprintf(&dir, "%s/%s", parent, *v) < 0 || asprintf(&path, "%s/manifest.json", dir) < 0)
                                return -ENOMEM;
                        r = read_file(path, 4 * 1024 * 1024, &text, NULL);
                        if (r == -ENOENT || r == -ENOTDIR)
                                continue;
                        if (r >= 0)
                                r = json_parse(text, strlen(text), &manifest, NULL);
                        if (r < 0)
                                return r;
                        if (json_array_append_new(all, json_pack("{s:s, s:s, s:s, s:o}", "name", *n, "version", *v,
                                                                 "dir", dir, "manifest", manifest)) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(all);
        return 0;
}

int build_record_write(const char *store, const Recipe *recipe, char *const *keys) {
        _cleanup_free_ char *dir = NULL, *path = NULL, *abs = NULL, *text = NULL;
        char hex[SHA256_HEX_SIZE];
        int r;

        abs = realpath(recipe->path, NULL);
        if (!abs)
                return negative_errno();
        sha256_hex(abs, strlen(abs), hex);
        if (asprintf(&dir, "%s/builds", store) < 0 || asprintf(&path, "%s/%s.json", dir, hex) < 0)
                return -ENOMEM;
        _cleanup_(json_decrefp) json_t *list = json_array();
        if (!list)
                return -ENOMEM;
        for (char *const *k = keys; k && *k; k++)
                if (json_array_append_new(list, json_string(*k)) < 0)
                        return -ENOMEM;
        _cleanup_(json_decrefp) json_t *record = json_pack("{s:s, s:O}", "recipe", abs, "keys", list);
        if (!record || !(text = json_dump_compact(record)))
                return -ENOMEM;
        r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1);
}

int template_current(const char *store, const Recipe *recipe, const build_result *result) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_(json_decrefp) json_t *manifest = NULL;
        int r;

        if (asprintf(&path, "%s/templates/%s/%s/manifest.json", store, recipe->template_name,
                     recipe->template_version) < 0)
                return -ENOMEM;
        r = read_file(path, 4 * 1024 * 1024, &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r >= 0)
                r = json_parse(text, strlen(text), &manifest, NULL);
        if (r < 0)
                return r;
        json_t *steps = json_path(manifest, "steps");
        if (json_array_size(steps) != result->n_steps)
                return 0;
        for (size_t i = 0; i < result->n_steps; i++) {
                const char *key = json_string_value(json_object_get(json_array_get(steps, i), "key"));
                if (!key || !streq(key, result->steps[i].key))
                        return 0;
        }
        return 1;
}
