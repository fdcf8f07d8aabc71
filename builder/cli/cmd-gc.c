/* imgbuild gc [--cache-dir DIR] [--dry-run]: remove step layers nothing refers to, and delete
 * through the Exoscale API what killed cloud builds left (their journals in STORE/cloud). */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"
#include "cli.h"
#include "cloud-journal.h"
#include "exoapi.h"
#include "provider-exoscale.h"
#include "fs.h"
#include "log.h"
#include "strv.h"
#include "templates.h"

/* Every key a template's manifest or a recipe's newest build record (STORE/builds) names. */
static int referenced_keys(const char *store, char ***ret) {
        _cleanup_(json_decrefp) json_t *list = NULL;
        _cleanup_strv_free_ char **keys = NULL;
        _cleanup_free_ char *builds = NULL;
        size_t i, j;
        json_t *t, *s;
        int r;

        r = templates_list(store, &list);
        if (r < 0)
                return r;
        json_array_foreach(list, i, t)
                json_array_foreach(json_path(t, "manifest.steps"), j, s)
                        if (json_path_string(s, "key") && strv_push(&keys, json_path_string(s, "key")) < 0)
                                return -ENOMEM;

        if (asprintf(&builds, "%s/builds", store) < 0)
                return -ENOMEM;
        DIR *d = opendir(builds);
        if (!d && errno != ENOENT)
                return negative_errno();
        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_free_ char *path = NULL, *text = NULL;
                _cleanup_(json_decrefp) json_t *record = NULL;
                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&path, "%s/%s", builds, de->d_name) < 0)
                        r = -ENOMEM;
                else
                        r = read_file(path, 4 * 1024 * 1024, &text, NULL);
                if (r >= 0)
                        r = json_parse(text, strlen(text), &record, NULL);
                json_array_foreach(r >= 0 ? json_path(record, "keys") : NULL, j, s)
                        if (json_is_string(s) && strv_push(&keys, json_string_value(s)) < 0)
                                r = -ENOMEM;
                if (r < 0) {
                        closedir(d);
                        return r;
                }
        }
        if (d)
                closedir(d);
        *ret = TAKE_PTR(keys);
        return 0;
}

/* Open every journal in STORE/cloud that still lists resources, except those a running build
 * holds (said on stdout). Journals with nothing left are removed. */
static int pending_journals(const char *store, bool dry_run, cloud_journal ***ret, size_t *ret_n) {
        _cleanup_free_ char *dir = NULL;
        cloud_journal **list = NULL;
        size_t n = 0;
        int r = 0;

        if (asprintf(&dir, "%s/cloud", store) < 0)
                return -ENOMEM;
        DIR *d = opendir(dir);
        if (!d && errno != ENOENT)
                return negative_errno();
        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_free_ char *path = NULL;
                cloud_journal *j = NULL;
                const char *dot = strrchr(de->d_name, '.');

                if (de->d_name[0] == '.' || !dot || !streq(dot, ".json"))
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = cloud_journal_open(path, &j);
                if (r == -EBUSY) {
                        printf("skipped %s: a running build holds it\n", path);
                        r = 0;
                        continue;
                }
                if (r < 0) {
                        log_error_errno(r, "Failed to read the build journal %s: %m", path);
                        break;
                }
                if (cloud_journal_pending(j) == 0) {
                        if (!dry_run)
                                (void) cloud_journal_remove(j);
                        cloud_journal_free(j);
                        continue;
                }
                cloud_journal **grown = reallocarray(list, n + 1, sizeof(*list));
                if (!grown) {
                        cloud_journal_free(j);
                        r = -ENOMEM;
                        break;
                }
                list = grown;
                list[n++] = j;
        }
        if (d)
                closedir(d);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        cloud_journal_free(list[i]);
                free(list);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

/* Delete the leftovers of killed cloud builds. Needs credentials only when there are some. */
static int gc_cloud(const char *store, const char *credentials, bool dry_run) {
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        _cleanup_(sos_freep) sos *objstore = NULL;
        cloud_journal **journals = NULL;
        size_t n = 0;
        int r;

        r = pending_journals(store, dry_run, &journals, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to read the cloud build journals in %s/cloud: %m", store);
        if (n == 0)
                return 0;
        /* Each resource's zone is set before it is deleted. */
        r = exoscale_api_new(credentials, "ch-gva-2", &api);
        if (r >= 0)
                r = exoscale_sos_new(credentials, "ch-gva-2", &objstore);
        if (r < 0)
                log_error("%zu cloud build journals in %s/cloud list resources to delete; gc needs credentials for them",
                          n, store);
        for (size_t i = 0; i < n; i++) {
                if (r >= 0 || api) {
                        printf("build %s (%s):\n", cloud_journal_build_id(journals[i]), cloud_journal_path(journals[i]));
                        int q = cloud_journal_cleanup(journals[i], api, objstore, dry_run, stdout);
                        if (q >= 0 && !dry_run)
                                (void) cloud_journal_remove(journals[i]);
                        r = r < 0 ? r : q;
                }
                cloud_journal_free(journals[i]);
        }
        free(journals);
        return r;
}

int cmd_gc(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "cache-dir", required_argument, NULL, 'c' },
                { "dry-run", no_argument, NULL, 'n' },
                { "credentials", required_argument, NULL, 'C' },
                {}
        };
        _cleanup_strv_free_ char **keep = NULL;
        _cleanup_free_ char *store = NULL, *layers = NULL;
        _cleanup_close_ int lock_fd = -1;
        const char *cache_dir = NULL, *credentials = NULL;
        bool dry_run = false;
        uint64_t freed = 0;
        size_t removed = 0, kept = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "hn", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: imgbuild gc [--cache-dir DIR] [--dry-run] [--credentials FILE]\n"
                               "Remove step layers (STORE/layers/KEY.qcow2) that are neither named in the\n"
                               "manifest of a template in the store nor part of the newest build of a recipe\n"
                               "(STORE/builds: the step keys of the last build started from each recipe\n"
                               "file, finished or not, so an interrupted build still resumes). Base images\n"
                               "and templates are never removed. Do not run it while a build is running:\n"
                               "that build's hygiene layer is not recorded until its template is written.\n"
                               "Prints every layer removed and the space freed.\n"
                               "\n"
                               "Cloud builds journal each resource before creating it (STORE/cloud); gc deletes\n"
                               "through the Exoscale API whatever a killed build left (instance, security group,\n"
                               "SSH key, snapshot, unfinished templates) and prints each; `imgbuild push` journals\n"
                               "the same way, and gc deletes a killed push's uploaded object (aborting its\n"
                               "unfinished multipart uploads) and templates. That needs credentials\n"
                               "(EXOSCALE_API_KEY and EXOSCALE_API_SECRET, or --credentials FILE) only when\n"
                               "there is something to delete; journals of running builds are skipped.\n");
                        return EXIT_OK;
                case 'c':
                        cache_dir = optarg;
                        break;
                case 'n':
                        dry_run = true;
                        break;
                case 'C':
                        credentials = optarg;
                        break;
                default:
                        return EXIT_FAILURE_GENERIC;
                }
        if (optind != argc) {
                log_error("gc takes no arguments");
                return EXIT_FAILURE_GENERIC;
        }
        r = base_store_dir(cache_dir, &store);
        if (r >= 0) {
                /* Builds hold the store's lock shared while they run: their layers and build
                 * records are not final yet. */
                r = store_lock(store, true, &lock_fd);
                if (r == -EBUSY) {
                        log_error("A build is using the image store %s: run gc when it has finished", store);
                        return EXIT_FAILURE_GENERIC;
                }
        }
        if (r >= 0)
                r = referenced_keys(store, &keep);
        if (r < 0) {
                log_error_errno(r, "Failed to read the templates and build records of the image store: %m");
                return EXIT_FAILURE_GENERIC;
        }
        if (asprintf(&layers, "%s/layers", store) < 0)
                return log_error_errno(-ENOMEM, "Out of memory"), EXIT_FAILURE_GENERIC;
        DIR *d = opendir(layers);
        if (!d && errno != ENOENT) {
                log_error_errno(errno, "Failed to open %s: %m", layers);
                return EXIT_FAILURE_GENERIC;
        }
        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_free_ char *key = NULL, *layer = NULL, *done = NULL, *packages = NULL;
                const char *dot = strrchr(de->d_name, '.');
                struct stat st;

                /* The layer goes with its .done marker; anything else (temporaries) is left. */
                if (de->d_name[0] == '.' || !dot || !streq(dot, ".qcow2"))
                        continue;
                key = strndup(de->d_name, (size_t) (dot - de->d_name));
                if (!key || asprintf(&layer, "%s/%s", layers, de->d_name) < 0 ||
                    asprintf(&done, "%s/%s.done", layers, key) < 0 ||
                    asprintf(&packages, "%s/%s.packages.json", layers, key) < 0) {
                        closedir(d);
                        return log_error_errno(-ENOMEM, "Out of memory"), EXIT_FAILURE_GENERIC;
                }
                if (strv_contains(keep, key)) {
                        kept++;
                        continue;
                }
                if (stat(layer, &st) < 0)
                        continue;
                /* Marker first: a layer without one is never reused. */
                if (!dry_run && ((unlink(done) < 0 && errno != ENOENT) || unlink(layer) < 0)) {
                        log_warning_errno(errno, "Failed to remove %s: %m", layer);
                        continue;
                }
                /* A hygiene layer's package list (builder/build/build-steps.h) goes with it. */
                if (!dry_run)
                        (void) unlink(packages);
                printf("%s %s (%.1f MiB)\n", dry_run ? "would remove" : "removed", layer,
                       (double) st.st_blocks * 512.0 / (1024.0 * 1024.0));
                freed += (uint64_t) st.st_blocks * 512;
                removed++;
        }
        if (d)
                closedir(d);
        printf("%s %zu layers, %.1f MiB; kept %zu\n", dry_run ? "Would free" : "Freed", removed,
               (double) freed / (1024.0 * 1024.0), kept);
        return gc_cloud(store, credentials, dry_run) < 0 ? EXIT_FAILURE_GENERIC : EXIT_OK;
}
