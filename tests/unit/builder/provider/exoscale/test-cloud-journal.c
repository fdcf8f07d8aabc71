/* The cloud build journal: what is on disk after each change, the lock a running build holds,
 * and when a journal may be removed. (Deleting resources through the API is covered by
 * tests/integration/test-exoscale-build.sh against fake-exoscale.) */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "cloud-journal.h"
#include "fs.h"
#include "json.h"

static json_t *load(const char *path) {
        _cleanup_free_ char *text = NULL;
        json_t *j = NULL;
        CHECK_OK(read_file(path, 1024 * 1024, &text, NULL));
        CHECK_OK(json_parse(text, strlen(text), &j, NULL));
        return j;
}

int main(void) {
        char store[] = "/tmp/test-cloud-journal-XXXXXX";
        _cleanup_free_ char *path = NULL, *bad = NULL;
        cloud_journal *j = NULL, *other = NULL;
        size_t key, inst, tmpl;

        CHECK(mkdtemp(store));
        CHECK(asprintf(&path, "%s/cloud/b1.json", store) > 0);

        CHECK_OK(cloud_journal_create(store, "b1", &j));
        CHECK_STREQ(cloud_journal_path(j), path);
        CHECK_STREQ(cloud_journal_build_id(j), "b1");
        CHECK(cloud_journal_create(store, "b1", &other) == -EEXIST);

        /* Journaled before creation, so a kill right after the API call still leaves a record. */
        CHECK_OK(cloud_journal_add(j, "ssh-key", "imgbuild-x-b1", "ch-gva-2", NULL, &key));
        CHECK_OK(cloud_journal_add(j, "instance", "imgbuild-x-b1", "ch-gva-2", NULL, &inst));
        json_t *on_disk = load(path);
        CHECK_STREQ(json_path_string(json_array_get(json_object_get(on_disk, "resources"), 1), "state"), "creating");
        CHECK(!json_path_string(json_array_get(json_object_get(on_disk, "resources"), 1), "id"));
        json_decref(on_disk);

        CHECK_OK(cloud_journal_created(j, key, "imgbuild-x-b1"));
        CHECK_OK(cloud_journal_created(j, inst, "i-1"));
        CHECK_OK(cloud_journal_add(j, "template", "x-1", "de-fra-1", NULL, &tmpl));
        CHECK_OK(cloud_journal_created(j, tmpl, "t-1"));
        CHECK(cloud_journal_pending(j) == 3);
        CHECK_OK(cloud_journal_keep(j, "template"));
        CHECK(cloud_journal_pending(j) == 2);
        on_disk = load(path);
        json_t *e = json_array_get(json_object_get(on_disk, "resources"), 1);
        CHECK_STREQ(json_path_string(e, "id"), "i-1");
        CHECK_STREQ(json_path_string(e, "state"), "created");
        CHECK_STREQ(json_path_string(json_array_get(json_object_get(on_disk, "resources"), 2), "state"), "kept");
        json_decref(on_disk);

        /* A running build holds its journal: gc must leave it alone. */
        CHECK(cloud_journal_open(path, &other) == -EBUSY);
        CHECK(cloud_journal_remove(j) == -EBUSY); /* resources are pending */
        cloud_journal_free(j);

        CHECK_OK(cloud_journal_open(path, &other));
        CHECK(cloud_journal_pending(other) == 2);
        CHECK_OK(cloud_journal_set_state(other, key, "deleted"));
        CHECK_OK(cloud_journal_set_state(other, inst, "deleted"));
        CHECK(cloud_journal_pending(other) == 0);
        CHECK_OK(cloud_journal_remove(other));
        CHECK(access(path, F_OK) < 0 && errno == ENOENT);
        cloud_journal_free(other);

        CHECK(asprintf(&bad, "%s/cloud/bad.json", store) > 0);
        CHECK_OK(write_file_atomic(bad, "[1]", 3, 0600, (uid_t) -1, (gid_t) -1));
        CHECK(cloud_journal_open(bad, &other) == -EBADMSG);

        CHECK_OK(rm_rf(store));
        return 0;
}
