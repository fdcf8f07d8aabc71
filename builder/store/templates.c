#include "templates.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "spawn.h"
#include "strv.h"

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

/* The template's manifest.json, parsed. */
static int manifest_load(const base_image *tmpl, json_t **ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "%s/manifest.json", tmpl->dir) < 0)
                return -ENOMEM;
        r = read_file(path, 4 * 1024 * 1024, &text, NULL);
        if (r < 0)
                return r;
        return json_parse(text, strlen(text), ret, NULL);
}

int template_disk_sha256(const base_image *tmpl, char ret[SHA256_HEX_SIZE]) {
        _cleanup_json_ json_t *manifest = NULL;
        int r = manifest_load(tmpl, &manifest);
        if (r < 0)
                return r;
        const char *digest = json_path_string(manifest, "output.sha256");
        if (!digest || strlen(digest) != SHA256_HEX_SIZE - 1)
                return -EBADMSG;
        memcpy(ret, digest, SHA256_HEX_SIZE);
        return 0;
}

int template_agent_role(const base_image *tmpl, char **ret) {
        _cleanup_json_ json_t *manifest = NULL;
        int r = manifest_load(tmpl, &manifest);
        if (r < 0)
                return r;
        const char *role = json_path_string(manifest, "agent.role");
        if (!role)
                return -ENODATA;
        char *s = strdup(role);
        if (!s)
                return -ENOMEM;
        *ret = s;
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

int store_lock(const char *store, bool exclusive, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        r = mkdir_p(store, 0755);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/.lock", store) < 0)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return negative_errno();
                if (exclusive)
                        return -EBUSY;
                log_info("Waiting for imgbuild gc to finish with %s", store);
                if (flock(fd, LOCK_SH) < 0)
                        return negative_errno();
        }
        *ret_fd = TAKE_FD(fd);
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
