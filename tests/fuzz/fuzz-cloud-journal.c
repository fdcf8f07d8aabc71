/* Fuzz the cloud journal `imgbuild gc` reads (STORE/cloud/BUILD-ID.json,
 * builder/provider/exoscale/cloud-journal.c) with the file's content, and its cleanup against an
 * API client whose every call fails at once (an endpoint curl refuses: no network). Checked: open
 * gives a journal with a build id or -EBADMSG; a dry run prints only "would delete" lines, at most
 * one per pending resource, and changes nothing in memory or on disk; a real cleanup never adds
 * pending resources, succeeds only when none is left, and what it recorded reads back from the
 * file (same pending count after reopening); remove works exactly when nothing is pending. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud-journal.h"
#include "fuzz-util.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static exoapi *failing_api(void) {
        static exoapi *api;
        if (!api) {
                exoapi_credentials creds = { .key = (char *) "EXOfuzz", .secret = (char *) "fuzz" };
                if (exoapi_new(&creds, "ch-gva-2", &api) < 0 || exoapi_set_endpoint(api, "fuzz-nothing://api/v2") < 0)
                        abort();
                log_set_max_level(-1); /* cleanup logs each failure */
        }
        return api;
}

static size_t count_lines(const char *text, size_t len, const char *prefix) {
        size_t n = 0;
        for (const char *l = text; l < text + len; l = strchr(l, '\n') + 1) {
                if (!startswith(l, prefix) || !strchr(l, '\n'))
                        abort();
                n++;
        }
        return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(cloud_journal_freep) cloud_journal *j = NULL;
        _cleanup_free_ char *out = NULL, *on_disk = NULL;
        size_t out_len = 0, disk_len;
        char path[128];
        int r;

        if (size > 256 * 1024)
                return 0;
        snprintf(path, sizeof(path), "%s/fuzz.json", fuzz_dir());
        if (write_file_atomic(path, data, size, 0600, (uid_t) -1, (gid_t) -1) < 0)
                abort();
        r = cloud_journal_open(path, &j);
        if (r < 0) {
                if (r != -EBADMSG || j)
                        abort();
                return 0;
        }
        if (!cloud_journal_build_id(j) || !streq(cloud_journal_path(j), path))
                abort();
        size_t pending = cloud_journal_pending(j);

        FILE *f = open_memstream(&out, &out_len);
        if (!f)
                abort();
        (void) cloud_journal_cleanup(j, failing_api(), NULL, true, f);
        fclose(f);
        if (count_lines(out, out_len, "would delete ") > pending || cloud_journal_pending(j) != pending)
                abort();
        if (read_file(path, 16 * 1024 * 1024, &on_disk, &disk_len) < 0 || disk_len != size || memcmp(on_disk, data, size) != 0)
                abort();

        free(out);
        out = NULL;
        f = open_memstream(&out, &out_len);
        if (!f)
                abort();
        r = cloud_journal_cleanup(j, failing_api(), NULL, false, f);
        fclose(f);
        size_t left = cloud_journal_pending(j);
        if (left > pending || (r == 0 && left != 0) || r > 0 || count_lines(out, out_len, "deleted ") > 0)
                abort();
        cloud_journal_free(j);
        j = NULL;

        if (cloud_journal_open(path, &j) < 0 || cloud_journal_pending(j) != left)
                abort();
        r = cloud_journal_remove(j);
        if (left > 0 ? r != -EBUSY : r != 0)
                abort();
        return 0;
}
