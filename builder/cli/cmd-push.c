/* imgbuild push NAME@VERSION --zone ZONE --bucket BUCKET [...]: a local template to Exoscale
 * (builder/provider/exoscale/exo-push.h). */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "base.h"
#include "cli.h"
#include "exo-push.h"
#include "exoapi.h"
#include "interrupt.h"
#include "log.h"
#include "progress.h"
#include "sos.h"
#include "strv.h"

static const char help_text[] =
        "Usage: imgbuild push NAME@VERSION --zone ZONE --bucket BUCKET [OPTIONS]\n"
        "Upload a template of the local store to Exoscale and register it there, as Packer's\n"
        "exoscale-import post-processor does:\n"
        "  1. check the disk (a qcow2, with the sha256 its manifest records) and hash it (MD5);\n"
        "  2. upload it to the zone's object storage (SOS, S3 API with SigV4 signatures) as\n"
        "     BUCKET/imgbuild/NAME-VERSION-ID.qcow2: one PUT, or a multipart upload in parts of\n"
        "     --part-size when it is larger (parts are retried; a failed upload is aborted);\n"
        "  3. register template NAME-VERSION in ZONE from a presigned URL of the object, with its\n"
        "     MD5 checksum and boot mode, and wait for it;\n"
        "  4. copy it to each --copy-to-zone and wait;\n"
        "  5. delete the object, and write the template ids per zone to\n"
        "     STORE/exoscale/NAME/VERSION/manifest.json (as cloud builds do).\n"
        "Every resource (object, templates) is journaled in STORE/cloud before it is created: a\n"
        "failed or interrupted (SIGINT/SIGTERM) push deletes what it made, a killed one is\n"
        "cleaned up by `imgbuild gc`. A template pushed once is not pushed again (the manifest\n"
        "exists): bump the version.\n"
        "\n"
        "Options:\n"
        "      --zone ZONE          zone to register in (required)\n"
        "      --copy-to-zone ZONE  also copy the template to ZONE (repeatable)\n"
        "      --bucket BUCKET      object storage bucket in ZONE for the upload (required; it\n"
        "                           must exist)\n"
        "      --boot-mode MODE     legacy or uefi (default: the template manifest's\n"
        "                           \"boot-mode\", else legacy; the API's own default is legacy)\n"
        "      --default-user USER  the template's default user (default: none)\n"
        "      --part-size SIZE     multipart upload above this size, in parts of it (bytes, or\n"
        "                           with K, M, G; default 64M; S3 wants at least 5M but the last)\n"
        "      --url-expires SEC    how long the presigned URL lets the registration download\n"
        "                           the disk (60 to 604800; default 86400)\n"
        "      --credentials FILE   api_key / api_secret lines (mode 0600); default\n"
        "                           EXOSCALE_API_KEY and EXOSCALE_API_SECRET (SOS takes the same key)\n"
        "      --cache-dir DIR      image store (default $IMGBUILD_CACHE_DIR or ~/.cache/imgbuild)\n"
        "\n"
        "EXOSCALE_API_ENDPOINT overrides the API endpoint (default " EXOAPI_DEFAULT_ENDPOINT "),\n"
        "EXOSCALE_SOS_ENDPOINT the object storage endpoint (default " SOS_DEFAULT_ENDPOINT ")\n"
        "and IMGBUILD_EXOSCALE_POLL_MS the operation polling interval (default 3000).\n"
        "Exit status: 0 on success, 1 on errors (128+N when interrupted by signal N).\n";

static int parse_size(const char *s, size_t *ret) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        unsigned long long mult = 1;
        if (errno || end == s)
                return -EINVAL;
        if (*end == 'K' || *end == 'k')
                mult = 1024ull, end++;
        else if (*end == 'M' || *end == 'm')
                mult = 1024ull * 1024, end++;
        else if (*end == 'G' || *end == 'g')
                mult = 1024ull * 1024 * 1024, end++;
        if (*end || v == 0 || v > SOS_MAX_PART_SIZE / mult)
                return -EINVAL;
        *ret = (size_t) (v * mult);
        return 0;
}

int cmd_push(int argc, char **argv) {
        enum { OPT_ZONE = 0x100, OPT_COPY, OPT_BUCKET, OPT_BOOT_MODE, OPT_DEFAULT_USER, OPT_PART_SIZE, OPT_EXPIRES,
               OPT_CREDENTIALS, OPT_CACHE_DIR };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "zone", required_argument, NULL, OPT_ZONE },
                { "copy-to-zone", required_argument, NULL, OPT_COPY },
                { "bucket", required_argument, NULL, OPT_BUCKET },
                { "boot-mode", required_argument, NULL, OPT_BOOT_MODE },
                { "default-user", required_argument, NULL, OPT_DEFAULT_USER },
                { "part-size", required_argument, NULL, OPT_PART_SIZE },
                { "url-expires", required_argument, NULL, OPT_EXPIRES },
                { "credentials", required_argument, NULL, OPT_CREDENTIALS },
                { "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
                {}
        };
        _cleanup_strv_free_ char **copy_zones = NULL;
        _cleanup_free_ char *store = NULL;
        _cleanup_(progress_freep) progress *display = NULL;
        exo_push_options o = { .part_size = EXO_PUSH_DEFAULT_PART_SIZE, .url_expires_s = EXO_PUSH_DEFAULT_URL_EXPIRES_S };
        const char *cache_dir = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        fputs(help_text, stdout);
                        return EXIT_OK;
                case OPT_ZONE:
                        o.zone = optarg;
                        break;
                case OPT_COPY:
                        if (strv_push(&copy_zones, optarg) < 0)
                                return log_error_errno(-ENOMEM, "Out of memory"), EXIT_FAILURE_GENERIC;
                        break;
                case OPT_BUCKET:
                        o.bucket = optarg;
                        break;
                case OPT_BOOT_MODE:
                        if (!streq(optarg, "legacy") && !streq(optarg, "uefi")) {
                                log_error("--boot-mode: expected legacy or uefi, got '%s'", optarg);
                                return EXIT_FAILURE_GENERIC;
                        }
                        o.boot_mode = optarg;
                        break;
                case OPT_DEFAULT_USER:
                        o.default_user = optarg;
                        break;
                case OPT_PART_SIZE:
                        if (parse_size(optarg, &o.part_size) < 0 || o.part_size < 1024) {
                                log_error("--part-size: expected a size from 1K to 5G, got '%s'", optarg);
                                return EXIT_FAILURE_GENERIC;
                        }
                        break;
                case OPT_EXPIRES: {
                        char *end;
                        errno = 0;
                        long v = strtol(optarg, &end, 10);
                        if (errno || end == optarg || *end || v < 60 || v > 604800) {
                                log_error("--url-expires: expected 60..604800 seconds, got '%s'", optarg);
                                return EXIT_FAILURE_GENERIC;
                        }
                        o.url_expires_s = v;
                        break;
                }
                case OPT_CREDENTIALS:
                        o.credentials = optarg;
                        break;
                case OPT_CACHE_DIR:
                        cache_dir = optarg;
                        break;
                default:
                        return EXIT_FAILURE_GENERIC;
                }
        if (optind + 1 != argc) {
                log_error("push takes one template, NAME@VERSION (see imgbuild push --help)");
                return EXIT_FAILURE_GENERIC;
        }
        if (!o.zone) {
                log_error("--zone is required");
                return EXIT_FAILURE_GENERIC;
        }
        o.ref = argv[optind];
        o.copy_zones = copy_zones;
        r = base_store_dir(cache_dir, &store);
        if (r < 0) {
                log_error_errno(r, "Failed to find the image store: %m");
                return EXIT_FAILURE_GENERIC;
        }
        o.store = store;

        const char *term = getenv("TERM");
        progress_mode mode = isatty(STDERR_FILENO) && !(term && streq(term, "dumb")) ? PROGRESS_LIVE : PROGRESS_PLAIN;
        if (progress_new(mode, &display) < 0 && (mode != PROGRESS_LIVE || progress_new(PROGRESS_PLAIN, &display) < 0))
                return log_error_errno(-ENOMEM, "Out of memory"), EXIT_FAILURE_GENERIC;
        o.progress = display;

        r = exo_push(&o);
        /* The display goes before the exit status is decided: it owns stderr while live. */
        display = progress_free(TAKE_PTR(display));
        if (r == -EINTR && interrupt_signal())
                return 128 + interrupt_signal();
        return r < 0 ? EXIT_FAILURE_GENERIC : EXIT_OK;
}
