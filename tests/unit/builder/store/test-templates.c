/* builder/templates: installing a build as NAME@VERSION (assembled aside, swapped in), finding it
 * again, listing the store, recognizing an unchanged build, and the build record gc reads. Uses
 * qemu-img for a tiny layer; no VM. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "crypto.h"
#include "fs.h"
#include "spawn.h"
#include "export.h"
#include "templates.h"

static char root[] = "/var/tmp/test-templates-XXXXXX";

static char *at(const char *rel) {
        char *p;
        CHECK(asprintf(&p, "%s/%s", root, rel) > 0);
        return p;
}

static void put(const char *rel, const char *text) {
        _cleanup_free_ char *path = at(rel), *dir = path_dirname(path);
        CHECK_OK(mkdir_p(dir, 0755));
        CHECK_OK(write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1));
}

static Recipe *parse(const char *text) {
        _cleanup_free_ char *path = at("recipes/t.recipe");
        Diagnostics diag = {};
        Recipe *recipe = NULL;
        RecipeOptions o = { .no_environment = true, .require_values = true, .no_host_files = true };

        put("recipes/t.recipe", text);
        int r = recipe_parse_file(path, &o, &diag, &recipe);
        if (r < 0)
                diagnostics_print(&diag, stderr);
        diagnostics_free(&diag);
        CHECK_OK(r);
        return recipe;
}

static void make_layer(const char *path) {
        char *argv[] = { (char *) "qemu-img", (char *) "create", (char *) "-q", (char *) "-f", (char *) "qcow2",
                         (char *) path, (char *) "16M", NULL };
        int status;
        CHECK_OK(spawn_run(argv, NULL, &status));
        CHECK(status == 0);
}

int main(void) {
        int status;
        char *probe[] = { (char *) "qemu-img", (char *) "--version", NULL };
        if (spawn_run(probe, NULL, &status) < 0 || status != 0)
                TEST_SKIP("qemu-img not available");
        CHECK(mkdtemp(root));

        _cleanup_free_ char *store = at("store"), *layer = at("layer.qcow2");
        put("base/vmlinuz", "kernel");
        put("base/initrd.img", "initrd");
        put("base/base.json", "{\"packages\": [\"systemd\"]}");
        base_image base = { .dir = at("base"), .kernel = at("base/vmlinuz"), .initrd = at("base/initrd.img") };
        snprintf(base.key, sizeof(base.key), "%064d", 0);
        make_layer(layer);

        _cleanup_(recipe_freep) Recipe *recipe = parse("template web 2\nbase debian-12\nrun true\n");
        build_step_result steps[] = {
                { .key = (char *) "aaaa", .name = (char *) "run true" },
                { .key = (char *) "bbbb", .name = (char *) "hygiene", .cached = true },
        };
        build_result result = { .disk = layer, .steps = steps, .n_steps = 2 };

        /* Nothing there yet. */
        base_image t = {};
        CHECK(template_open(store, "web@2", &t) == -ENOENT);
        CHECK(template_open(store, "web", &t) == -EINVAL);
        CHECK(template_open(store, "../x@1", &t) == -EINVAL);
        CHECK(template_current(store, recipe, &result) == 0);

        /* Installed: complete directory, manifest naming the final disk path. */
        _cleanup_free_ char *dir = NULL;
        CHECK_OK(template_install(store, recipe, &base, &result, NULL, &dir));
        _cleanup_free_ char *want = at("store/templates/web/2");
        CHECK_STREQ(dir, want);
        CHECK_OK(template_open(store, "web@2", &t));
        CHECK(access(t.disk, R_OK) == 0 && access(t.kernel, R_OK) == 0 && access(t.initrd, R_OK) == 0);
        _cleanup_free_ char *m = NULL, *manifest = NULL;
        CHECK(asprintf(&manifest, "%s/manifest.json", dir) > 0);
        CHECK_OK(read_file(manifest, 1 << 20, &m, NULL));
        _cleanup_free_ char *disk_field = NULL;
        CHECK(asprintf(&disk_field, "\"path\":\"%s\"", t.disk) > 0);
        CHECK(strstr(m, disk_field));
        /* The manifest's disk digest is the disk's: what pool members check their base against. */
        char digest[SHA256_HEX_SIZE], actual[SHA256_HEX_SIZE];
        CHECK_OK(template_disk_sha256(&t, digest));
        CHECK_OK(sha256_file_hex(t.disk, actual));
        CHECK_STREQ(digest, actual);
        base_image_done(&t);
        CHECK(template_current(store, recipe, &result) == 1);

        /* Same keys but a different step list: not current. */
        result.steps[1].key = (char *) "cccc";
        CHECK(template_current(store, recipe, &result) == 0);

        /* An exported version is never replaced (pool members' overlays name its disk): a
         * rebuild with other content is refused, the old one stays as it was, and no temporary
         * is left next to it. */
        _cleanup_free_ char *dir2 = NULL;
        struct stat before, after;
        CHECK(stat(dir, &before) == 0);
        CHECK(template_install(store, recipe, &base, &result, NULL, &dir2) == -EEXIST);
        CHECK(!dir2);
        CHECK(stat(dir, &after) == 0 && after.st_ino == before.st_ino);
        CHECK(template_current(store, recipe, &result) == 0);
        result.steps[1].key = (char *) "bbbb";
        CHECK(template_current(store, recipe, &result) == 1);
        result.steps[1].key = (char *) "cccc";

        /* Once the old version is deleted, the new content installs under the same name. */
        CHECK_OK(rm_rf(dir));
        CHECK_OK(template_install(store, recipe, &base, &result, NULL, &dir2));
        CHECK(template_current(store, recipe, &result) == 1);
        _cleanup_free_ char *parent = at("store/templates/web");
        char *ls[] = { (char *) "sh", (char *) "-c", (char *) "ls -A \"$0\" | tr '\\n' ' '", parent, NULL };
        buf out = BUF_INIT(4096);
        CHECK_OK(spawn_capture(ls, NULL, &out, &status));
        CHECK_STREQ(out.data, "2 ");
        buf_free(&out);

        /* Listing: one entry with its manifest; an incomplete directory is not a template. */
        put("store/templates/web/3/disk.qcow2", "partial");
        _cleanup_(json_decrefp) json_t *list = NULL;
        CHECK_OK(templates_list(store, &list));
        CHECK(json_array_size(list) == 1);
        CHECK_STREQ(json_path_string(json_array_get(list, 0), "version"), "2");
        CHECK_STREQ(json_path_string(json_array_get(list, 0), "manifest.steps.1.key"), "cccc");

        /* The role of the recipe's agent step is in the manifest (what `pool create` reads); a
         * recipe without one records none. */
        _cleanup_free_ char *role = NULL;
        CHECK_OK(template_open(store, "web@2", &t));
        CHECK(template_agent_role(&t, &role) == -ENODATA && !role);
        base_image_done(&t);
        {
                _cleanup_(recipe_freep) Recipe *worker = parse("template worker 1\nbase debian-12\nagent role=node\n");
                _cleanup_free_ char *wdir = NULL;
                CHECK_OK(template_install(store, worker, &base, &result, NULL, &wdir));
                CHECK_OK(template_open(store, "worker@1", &t));
                CHECK_OK(template_agent_role(&t, &role));
                CHECK_STREQ(role, "node");
                base_image_done(&t);
        }

        /* Build record: keyed by the recipe path, holds the keys. */
        char *keys[] = { (char *) "k1", (char *) "k2", NULL };
        CHECK_OK(build_record_write(store, recipe, keys));
        char *cat[] = { (char *) "sh", (char *) "-c", (char *) "cat \"$0\"/builds/*.json", store, NULL };
        out = BUF_INIT(4096);
        CHECK_OK(spawn_capture(cat, NULL, &out, &status));
        CHECK(strstr(out.data, "\"keys\":[\"k1\",\"k2\"]"));
        buf_free(&out);

        /* The store lock: builds share it, gc needs it alone and does not wait. */
        int build1, build2, gc;
        CHECK_OK(store_lock(store, false, &build1));
        CHECK_OK(store_lock(store, false, &build2));
        CHECK(store_lock(store, true, &gc) == -EBUSY);
        close(build1);
        CHECK(store_lock(store, true, &gc) == -EBUSY);
        close(build2);
        CHECK_OK(store_lock(store, true, &gc));
        close(gc);

        base_image_done(&base);
        CHECK_OK(rm_rf(root));
        return 0;
}
