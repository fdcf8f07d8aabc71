#include "export.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "spawn.h"
#include "strv.h"

/* sha256 over the names and contents of every file the recipe was read from. */
int build_recipe_digest(const Recipe *recipe, char out[SHA256_HEX_SIZE]) {
        sha256_ctx *ctx = sha256_new();
        if (!ctx)
                return -ENOMEM;
        for (char **f = recipe->files; f && *f; f++) {
                char hex[SHA256_HEX_SIZE];
                int r = sha256_file_hex(*f, hex);
                if (r < 0) {
                        sha256_free(ctx);
                        return r;
                }
                const char *base = strrchr(*f, '/');
                sha256_update_str(ctx, base ? base + 1 : *f);
                sha256_update_str(ctx, hex);
        }
        sha256_final_hex(ctx, out);
        return 0;
}

int build_manifest_write(const char *path, const Recipe *recipe, const base_image *base,
                         const build_result *result, const char *export_path, const char *output_path) {
        char digest[SHA256_HEX_SIZE], output[SHA256_HEX_SIZE];
        _cleanup_free_ char *base_info_path = NULL, *base_info_text = NULL, *text = NULL;
        _cleanup_(json_decrefp) json_t *base_info = NULL;
        int r;

        r = build_recipe_digest(recipe, digest);
        if (r < 0)
                return log_error_errno(r, "Failed to hash the recipe's files: %m");
        r = sha256_file_hex(export_path, output);
        if (r < 0)
                return log_error_errno(r, "Failed to hash %s: %m", export_path);
        if (asprintf(&base_info_path, "%s/base.json", base->dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = read_file(base_info_path, 1024 * 1024, &base_info_text, NULL);
        if (r >= 0)
                r = json_parse(base_info_text, strlen(base_info_text), &base_info, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", base_info_path);
        json_t *base_packages = json_path(base_info, "packages");

        _cleanup_(json_decrefp) json_t *requested = json_array(), *steps = json_array();
        if (!requested || !steps)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (size_t i = 0; i < recipe->n_steps; i++)
                for (char **p = recipe->steps[i].packages; p && *p; p++)
                        if (json_array_append_new(requested, json_string(*p)) < 0)
                                return log_error_errno(-ENOMEM, "Out of memory");
        for (size_t i = 0; i < result->n_steps; i++) {
                const build_step_result *s = &result->steps[i];
                if (json_array_append_new(steps, json_pack("{s:s, s:s, s:b, s:f}", "key", s->key, "name", s->name,
                                                           "cached", s->cached, "seconds", s->seconds)) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }
        /* The role of the recipe's agent step (the last one, as the agent installed last wins): what
         * `pool create` reads to know what the template's members are. */
        const char *role = NULL;
        for (size_t i = 0; i < recipe->n_steps; i++)
                if (recipe->steps[i].kind == RECIPE_STEP_AGENT)
                        role = recipe->steps[i].role;
        _cleanup_(json_decrefp) json_t *agent = role ? json_pack("{s:s}", "role", role) : NULL;
        if (role && !agent)
                return log_error_errno(-ENOMEM, "Out of memory");
        _cleanup_(json_decrefp) json_t *m = json_pack(
                "{s:{s:s, s:s}, s:{s:s, s:s, s:O}, s:{s:s, s:O*}, s:O*, s:O, s:O*, s:{s:s, s:s}, s:I}",
                "template", "name", recipe->template_name, "version", recipe->template_version,
                "recipe", "path", recipe->path, "digest", digest, "packages", requested,
                "base", "key", base->key, "packages", base_packages,
                "packages", result->packages,
                "steps", steps,
                "agent", agent,
                "output", "path", output_path ?: export_path, "sha256", output,
                "created", (json_int_t) time(NULL));
        if (!m)
                return log_error_errno(-ENOMEM, "Failed to build the manifest");
        text = json_dump_compact(m);
        if (!text)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

int build_export(const char *layer, const char *out, progress *p) {
        _cleanup_free_ char *tmp = NULL;
        int r, status;

        if (asprintf(&tmp, "%s.tmp-XXXXXX", out) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create a file next to %s: %m", out);
        /* zstd: several times faster than the default zlib for the same size class. */
        char *argv[] = { (char *) "qemu-img", (char *) "convert", (char *) "-c", (char *) "-O", (char *) "qcow2",
                         (char *) "-o", (char *) "compression_type=zstd", (char *) layer, tmp, NULL };
        log_info("Exporting %s to %s", layer, out);
        if (p)
                progress_task_start(p, "exporting the template disk", tmp);
        r = spawn_run(argv, NULL, &status);
        if (p)
                progress_task_end(p, r >= 0 && status == 0);
        if (r < 0) {
                log_error_errno(r, "Failed to run qemu-img: %m");
                goto fail;
        }
        if (status != 0) {
                log_error("qemu-img convert failed with status %d", status);
                r = -EPROTO;
                goto fail;
        }
        if (fsync(fd) < 0 || rename(tmp, out) < 0) {
                r = log_error_errno(errno, "Failed to move the export into place at %s: %m", out);
                goto fail;
        }
        r = fsync_parent_dir(out);
        if (r < 0)
                log_warning_errno(r, "Failed to sync the directory of %s: %m", out);
        return 0;
fail:
        (void) unlink(tmp);
        return r;
}

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

/* An exported version is never replaced: pool members' disks are overlays on its disk, by path,
 * and would start on other content. */
static int refuse_replace(const Recipe *recipe, const char *dir) {
        log_error("Template %s@%s already exists in %s with other content, and exported versions are never "
                  "replaced (pool members' disks are overlays on it). Give the recipe's 'template' line a new "
                  "version, or delete %s if no pool member uses it.",
                  recipe->template_name, recipe->template_version, dir, dir);
        return -EEXIST;
}

int template_install(const char *store, const Recipe *recipe, const base_image *base, const build_result *result,
                     progress *p, char **ret_dir) {
        _cleanup_free_ char *parent = NULL, *final = NULL, *tmp = NULL, *disk = NULL, *final_disk = NULL,
                            *kernel = NULL, *initrd = NULL, *manifest = NULL;
        int r;

        if (asprintf(&parent, "%s/templates/%s", store, recipe->template_name) < 0 ||
            asprintf(&final, "%s/%s", parent, recipe->template_version) < 0 ||
            asprintf(&tmp, "%s/.%s.tmp-XXXXXX", parent, recipe->template_version) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(final, F_OK) == 0)
                return refuse_replace(recipe, final);
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

        /* RENAME_NOREPLACE: a build of the same version that finished meanwhile wins. */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
                if (errno == EEXIST)
                        r = refuse_replace(recipe, final);
                else
                        r = log_error_errno(errno, "Failed to move %s to %s: %m", tmp, final);
                goto fail;
        }
        free(TAKE_PTR(tmp));
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
