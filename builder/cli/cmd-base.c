/* imgbuild base [--cache-dir DIR] [--bootagent PATH] [--force] IMAGE: build (or find) the base
 * image of an image definition and print its directory. */
#include <getopt.h>
#include <stdio.h>

#include "base-definition.h"
#include "cli.h"
#include "log.h"

int cmd_base(int argc, char **argv) {
        static const char usage[] =
                "Usage: imgbuild base [--cache-dir DIR] [--bootagent PATH] [--force] IMAGE\n"
                "Build the base image (kernel, initrd, qcow2 disk) for images/NAME into the image store.\n";
        enum { ARG_CACHE_DIR = 0x100, ARG_BOOTAGENT, ARG_FORCE };
        static const struct option options[] = {
                { "cache-dir", required_argument, NULL, ARG_CACHE_DIR },
                { "bootagent", required_argument, NULL, ARG_BOOTAGENT },
                { "force", no_argument, NULL, ARG_FORCE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(base_image_done) base_image b = {};
        const char *cache_dir = NULL, *bootagent = NULL;
        bool force = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_CACHE_DIR:
                        cache_dir = optarg;
                        break;
                case ARG_BOOTAGENT:
                        bootagent = optarg;
                        break;
                case ARG_FORCE:
                        force = true;
                        break;
                case 'h':
                        printf("%s", usage);
                        return 0;
                default:
                        fprintf(stderr, "%s", usage);
                        return 2;
                }
        if (optind != argc - 1) {
                fprintf(stderr, "%s", usage);
                return 2;
        }
        r = base_ensure(argv[optind], cache_dir, bootagent, force, &b);
        if (r < 0)
                return 1;
        printf("%s\n", b.dir);
        return 0;
}
