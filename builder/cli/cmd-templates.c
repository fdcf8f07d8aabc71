/* imgbuild templates [--cache-dir DIR] [--json]: the local template store, one line each. */
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "base.h"
#include "cli.h"
#include "log.h"
#include "templates.h"

int cmd_templates(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "cache-dir", required_argument, NULL, 'c' },
                {}
        };
        _cleanup_(json_decrefp) json_t *list = NULL;
        _cleanup_free_ char *store = NULL;
        const char *cache_dir = NULL;
        bool json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: imgbuild templates [--cache-dir DIR] [--json]\n"
                               "List the templates built into the image store: NAME@VERSION, disk size,\n"
                               "build date (UTC) and the disk's sha256.\n");
                        return EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case 'c':
                        cache_dir = optarg;
                        break;
                default:
                        return EXIT_FAILURE_GENERIC;
                }
        if (optind != argc) {
                log_error("templates takes no arguments");
                return EXIT_FAILURE_GENERIC;
        }
        r = base_store_dir(cache_dir, &store);
        if (r >= 0)
                r = templates_list(store, &list);
        if (r < 0) {
                log_error_errno(r, "Failed to list the templates in %s: %m", store ?: "the image store");
                return EXIT_FAILURE_GENERIC;
        }

        size_t i;
        json_t *t;
        json_array_foreach(list, i, t) {
                _cleanup_free_ char *disk = NULL;
                const char *name = json_path_string(t, "name"), *version = json_path_string(t, "version");
                const char *sha = json_path_string(t, "manifest.output.sha256");
                int64_t created = 0;
                struct stat st = {};
                char date[32] = "-";
                struct tm tm;

                (void) json_path_i64(t, "manifest.created", &created);
                time_t when = (time_t) created;
                if (created > 0 && gmtime_r(&when, &tm))
                        strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
                if (asprintf(&disk, "%s/disk.qcow2", json_path_string(t, "dir")) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory"), EXIT_FAILURE_GENERIC;
                if (stat(disk, &st) < 0)
                        log_warning_errno(errno, "Failed to stat %s: %m", disk);
                if (json) {
                        _cleanup_free_ char *text = NULL;
                        _cleanup_(json_decrefp) json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "name", name,
                                                                     "version", version, "disk", disk, "size",
                                                                     (json_int_t) st.st_size, "created",
                                                                     (json_int_t) created, "sha256", sha ?: "-");
                        if (!o || !(text = json_dump_compact(o)))
                                return log_error_errno(-ENOMEM, "Out of memory"), EXIT_FAILURE_GENERIC;
                        printf("%s\n", text);
                } else {
                        _cleanup_free_ char *ref = NULL;
                        if (asprintf(&ref, "%s@%s", name, version) < 0)
                                return log_error_errno(-ENOMEM, "Out of memory"), EXIT_FAILURE_GENERIC;
                        printf("%-24s %8.1f MiB  %s  %s\n", ref, (double) st.st_size / (1024.0 * 1024.0), date,
                               sha ?: "-");
                }
        }
        return EXIT_OK;
}
