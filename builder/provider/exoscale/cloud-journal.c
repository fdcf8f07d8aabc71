#include "cloud-journal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fs.h"
#include "json.h"
#include "log.h"
#include "strv.h"

#define JOURNAL_MAX (1024u * 1024u)

struct cloud_journal {
        char *path;
        char *lock_path;
        int lock_fd;
        json_t *root;
};

void cloud_journal_free(cloud_journal *j) {
        if (!j)
                return;
        if (j->lock_fd >= 0)
                close(j->lock_fd);
        json_decref(j->root);
        free(j->path);
        free(j->lock_path);
        free(j);
}

const char *cloud_journal_build_id(const cloud_journal *j) {
        return json_string_value(json_object_get(j->root, "build"));
}

const char *cloud_journal_path(const cloud_journal *j) {
        return j->path;
}

int cloud_journal_write_failed(const cloud_journal *j, int r) {
        return log_error_errno(r, "Failed to write the cloud journal %s, not creating anything more: %m",
                               cloud_journal_path(j));
}

static int journal_write(cloud_journal *j) {
        _cleanup_free_ char *text = json_dump_compact(j->root);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(j->path, text, strlen(text), 0600, (uid_t) -1, (gid_t) -1);
}

/* path "DIR/ID.json" -> lock "DIR/ID.lock", taken without waiting. */
static int journal_lock(cloud_journal *j) {
        size_t n = strlen(j->path);
        if (n < 5 || !streq(j->path + n - 5, ".json"))
                return -EINVAL;
        if (asprintf(&j->lock_path, "%.*s.lock", (int) (n - 5), j->path) < 0)
                return -ENOMEM;
        j->lock_fd = open(j->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (j->lock_fd < 0)
                return negative_errno();
        if (flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : negative_errno();
        return 0;
}

int cloud_journal_create(const char *store, const char *build_id, cloud_journal **ret) {
        _cleanup_(cloud_journal_freep) cloud_journal *j = calloc(1, sizeof(*j));
        _cleanup_free_ char *dir = NULL;
        int r;

        if (!j)
                return -ENOMEM;
        j->lock_fd = -1;
        if (asprintf(&dir, "%s/cloud", store) < 0 || asprintf(&j->path, "%s/%s.json", dir, build_id) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        if (access(j->path, F_OK) == 0)
                return -EEXIST;
        r = journal_lock(j);
        if (r < 0)
                return r;
        j->root = json_pack("{s:s, s:[]}", "build", build_id, "resources");
        if (!j->root)
                return -ENOMEM;
        r = journal_write(j);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}

int cloud_journal_open(const char *path, cloud_journal **ret) {
        _cleanup_(cloud_journal_freep) cloud_journal *j = calloc(1, sizeof(*j));
        _cleanup_free_ char *text = NULL;
        int r;

        if (!j)
                return -ENOMEM;
        j->lock_fd = -1;
        j->path = strdup(path);
        if (!j->path)
                return -ENOMEM;
        r = journal_lock(j);
        if (r < 0)
                return r;
        r = read_file(path, JOURNAL_MAX, &text, NULL);
        if (r < 0)
                return r;
        if (json_parse(text, strlen(text), &j->root, NULL) < 0 || !json_is_string(json_object_get(j->root, "build")) ||
            !json_is_array(json_object_get(j->root, "resources")))
                return -EBADMSG;
        *ret = TAKE_PTR(j);
        return 0;
}

int cloud_journal_add(cloud_journal *j, const char *kind, const char *name, const char *zone,
                      const char *parent, size_t *ret_index) {
        json_t *list = json_object_get(j->root, "resources");
        json_t *entry = json_pack("{s:s, s:s?, s:s, s:s?, s:s}", "kind", kind, "name", name, "zone", zone,
                                  "parent", parent, "state", "creating");
        int r;

        if (!entry || json_array_append_new(list, entry) < 0)
                return -ENOMEM;
        r = journal_write(j);
        if (r < 0) {
                json_array_remove(list, json_array_size(list) - 1);
                return r;
        }
        *ret_index = json_array_size(list) - 1;
        return 0;
}

static json_t *entry_at(cloud_journal *j, size_t index) {
        return json_array_get(json_object_get(j->root, "resources"), index);
}

int cloud_journal_created(cloud_journal *j, size_t index, const char *id) {
        json_t *e = entry_at(j, index);
        if (!e)
                return -EINVAL;
        if (json_object_set_new(e, "id", json_string(id)) < 0 ||
            json_object_set_new(e, "state", json_string("created")) < 0)
                return -ENOMEM;
        return journal_write(j);
}

int cloud_journal_set_state(cloud_journal *j, size_t index, const char *state) {
        json_t *e = entry_at(j, index);
        if (!e)
                return -EINVAL;
        if (json_object_set_new(e, "state", json_string(state)) < 0)
                return -ENOMEM;
        return journal_write(j);
}

int cloud_journal_keep(cloud_journal *j, const char *kind) {
        json_t *e;
        size_t i;

        json_array_foreach(json_object_get(j->root, "resources"), i, e)
                if (streq(strempty(json_path_string(e, "kind")), kind) &&
                    streq(strempty(json_path_string(e, "state")), "created") &&
                    json_object_set_new(e, "state", json_string("kept")) < 0)
                        return -ENOMEM;
        return journal_write(j);
}

static bool entry_pending(json_t *e) {
        const char *state = json_path_string(e, "state");
        return !state || (!streq(state, "deleted") && !streq(state, "kept"));
}

size_t cloud_journal_pending(const cloud_journal *j) {
        json_t *e;
        size_t i, n = 0;

        json_array_foreach(json_object_get(j->root, "resources"), i, e)
                n += entry_pending(e);
        return n;
}

/* The first object of list (GET path?query, the array under key) whose field equals value. */
static int find_in_list(exoapi *api, const char *path, const char *query, const char *key, const char *field,
                        const char *value, char **ret_id) {
        _cleanup_(json_decrefp) json_t *resp = NULL;
        json_t *item;
        size_t i;
        int r;

        r = exoapi_request(api, "GET", path, query, NULL, &resp);
        if (r < 0)
                return r;
        json_array_foreach(json_object_get(resp, key), i, item) {
                const char *v = json_path_string(item, field), *id = json_path_string(item, "id");
                if (v && id && streq(v, value)) {
                        *ret_id = strdup(id);
                        return *ret_id ? 1 : -ENOMEM;
                }
        }
        return 0;
}

/* The id of a resource journaled as "creating": 1 and the id, 0 when the API has no such thing
 * (it was never created), or -errno. */
static int resolve_id(exoapi *api, const char *build_id, json_t *e, char **ret_id) {
        const char *kind = json_path_string(e, "kind"), *name = json_path_string(e, "name");
        const char *parent = json_path_string(e, "parent");
        _cleanup_free_ char *description = NULL;

        if (streq(kind, "ssh-key")) {
                *ret_id = name ? strdup(name) : NULL;
                return *ret_id ? 1 : -EBADMSG;
        }
        if (streq(kind, "instance") && name)
                return find_in_list(api, "/instance", NULL, "instances", "name", name, ret_id);
        if (streq(kind, "security-group") && name)
                return find_in_list(api, "/security-group", NULL, "security-groups", "name", name, ret_id);
        if (streq(kind, "snapshot")) {
                if (!parent)
                        return 0; /* killed before the instance had an id: it has no snapshot */
                return find_in_list(api, "/snapshot", NULL, "snapshots", "instance.id", parent, ret_id);
        }
        if (streq(kind, "template")) {
                /* Made by a build or by a push (exo-push.h), whose descriptions differ. */
                static const char *const prefixes[] = { "imgbuild build", "imgbuild push" };
                for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                        int r;
                        free(description);
                        if (asprintf(&description, "%s %s", prefixes[i], build_id) < 0)
                                return -ENOMEM;
                        r = find_in_list(api, "/template", "visibility=private", "templates", "description",
                                         description, ret_id);
                        if (r != 0)
                                return r;
                }
                return 0;
        }
        return -EBADMSG;
}

static int delete_resource(exoapi *api, const char *kind, const char *id) {
        if (streq(kind, "instance"))
                return exoapi_instance_delete(api, id);
        if (streq(kind, "security-group"))
                return exoapi_security_group_delete(api, id);
        if (streq(kind, "ssh-key"))
                return exoapi_ssh_key_delete(api, id);
        if (streq(kind, "template"))
                return exoapi_template_delete(api, id);
        if (streq(kind, "snapshot")) {
                _cleanup_(json_decrefp) json_t *op = NULL;
                _cleanup_free_ char *path = NULL;
                int r;
                if (asprintf(&path, "/snapshot/%s", id) < 0)
                        return -ENOMEM;
                r = exoapi_request(api, "DELETE", path, NULL, NULL, &op);
                if (r < 0)
                        return r;
                return exoapi_wait_operation(api, op, NULL);
        }
        return -EBADMSG;
}

/* An uploaded object (name: its key, parent: its bucket): every unfinished multipart upload of
 * the key is aborted, then the object deleted (S3 deletes of a missing object succeed). */
static int delete_object(sos *store, const char *bucket, const char *key, FILE *out, bool dry_run) {
        _cleanup_strv_free_ char **uploads = NULL;
        int r;

        r = sos_multipart_list(store, bucket, key, &uploads);
        if (r < 0)
                return r;
        for (char **u = uploads; u && *u; u++) {
                if (dry_run) {
                        fprintf(out, "would abort the multipart upload %s of %s/%s\n", *u, bucket, key);
                        continue;
                }
                r = sos_multipart_abort(store, bucket, key, *u);
                if (r < 0 && r != -ENOENT)
                        return r;
                fprintf(out, "aborted the multipart upload %s of %s/%s\n", *u, bucket, key);
        }
        return dry_run ? 0 : sos_delete_object(store, bucket, key);
}

/* The kinds of resource a build journals (cloud_journal_add's callers). */
static const char *const journal_kinds[] = {
        "instance", "security-group", "ssh-key", "snapshot", "template", "sos-object", NULL
};

/* Whether an entry's kind is one a build journals and its strings (which gc prints, one line per
 * resource) have no control characters: anything else did not come from imgbuild. */
static bool entry_well_formed(json_t *e) {
        static const char *const fields[] = { "kind", "name", "zone", "id", "parent" };
        if (!strv_contains((char *const *) journal_kinds, strempty(json_path_string(e, "kind"))))
                return false;
        for (size_t f = 0; f < ELEMENTSOF(fields); f++)
                for (const char *c = json_path_string(e, fields[f]); c && *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                return false;
        return true;
}

int cloud_journal_cleanup(cloud_journal *j, exoapi *api, sos *store, bool dry_run, FILE *out) {
        json_t *list = json_object_get(j->root, "resources");
        int ret = 0, r;

        for (size_t i = json_array_size(list); i-- > 0;) {
                json_t *e = json_array_get(list, i);
                const char *kind = json_path_string(e, "kind"), *zone = json_path_string(e, "zone");
                const char *name = json_path_string(e, "name");
                _cleanup_free_ char *id = NULL;

                if (!entry_pending(e))
                        continue;
                if (!kind || !zone || !entry_well_formed(e)) {
                        log_error("%s: resource %zu has no kind or zone, an unknown kind or a control character, skipped",
                                  j->path, i);
                        ret = ret ?: -EBADMSG;
                        continue;
                }
                if (streq(kind, "sos-object")) {
                        const char *bucket = json_path_string(e, "parent");
                        if (!store || !bucket || !name) {
                                log_error("%s: object %s in %s cannot be deleted: %s", j->path, strempty(name), zone,
                                          store ? "no bucket recorded" : "no object store client");
                                ret = ret ?: -EBADMSG;
                                continue;
                        }
                        r = sos_set_zone(store, zone);
                        if (r >= 0)
                                r = delete_object(store, bucket, name, out, dry_run);
                        if (r < 0) {
                                log_error("Failed to delete object %s/%s in %s: %s", bucket, name, zone, sos_error(store));
                                ret = ret ?: r;
                                continue;
                        }
                        if (dry_run) {
                                fprintf(out, "would delete object %s/%s in %s\n", bucket, name, zone);
                                continue;
                        }
                        fprintf(out, "deleted object %s/%s in %s\n", bucket, name, zone);
                        r = cloud_journal_set_state(j, i, "deleted");
                        if (r < 0) {
                                log_error_errno(r, "Failed to update %s: %m", j->path);
                                ret = ret ?: r;
                        }
                        continue;
                }
                r = exoapi_set_zone(api, zone);
                if (r < 0)
                        return r;
                if (json_path_string(e, "id")) {
                        id = strdup(json_path_string(e, "id"));
                        r = id ? 1 : -ENOMEM;
                } else
                        r = resolve_id(api, cloud_journal_build_id(j), e, &id);
                if (r < 0) {
                        log_error("Failed to look up %s %s in %s: %s", kind, strempty(name), zone, exoapi_error(api));
                        ret = ret ?: r;
                        continue;
                }
                if (r > 0 && dry_run) {
                        fprintf(out, "would delete %s %s (%s) in %s\n", kind, strempty(name), id, zone);
                        continue;
                }
                if (r > 0) {
                        r = delete_resource(api, kind, id);
                        if (r < 0 && r != -ENOENT) {
                                log_error("Failed to delete %s %s (%s) in %s: %s", kind, strempty(name), id, zone,
                                          exoapi_error(api));
                                ret = ret ?: r;
                                continue;
                        }
                        fprintf(out, "deleted %s %s (%s) in %s%s\n", kind, strempty(name), id, zone,
                                r == -ENOENT ? ": it was already gone" : "");
                }
                if (dry_run)
                        continue;
                r = cloud_journal_set_state(j, i, "deleted");
                if (r < 0) {
                        log_error_errno(r, "Failed to update %s: %m", j->path);
                        ret = ret ?: r;
                }
        }
        fflush(out);
        return ret;
}

int cloud_journal_remove(cloud_journal *j) {
        if (cloud_journal_pending(j) > 0)
                return -EBUSY;
        if (unlink(j->path) < 0 && errno != ENOENT)
                return negative_errno();
        if (j->lock_path && unlink(j->lock_path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}
