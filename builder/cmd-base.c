#include "cmd-base.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "base.h"
#include "fs.h"
#include "image.h"
#include "log.h"
#include "strv.h"
#include "qemu.h"
#include "templates.h"

typedef struct base_args {
        const char *cache_dir;
        const char *bootagent;
        bool force;
        bool network;
        unsigned timeout;
        char **puts;          /* vm-exec --put LOCAL:/GUEST/DIR */
        const char *template_ref;
} base_args;

static void base_args_done(base_args *a) { strv_free(a->puts); }

/* IMAGE may name the definition file or the directory holding image.conf. */
static int definition_path(const char *image, char **ret) {
        struct stat st;
        char *p;

        if (stat(image, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode)) {
                if (asprintf(&p, "%s/image.conf", image) < 0)
                        return -ENOMEM;
        } else if (!(p = strdup(image)))
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* An image definition, parsed, with the store and bootagent binary its base image is for. */
typedef struct base_definition {
        char *text, *store, *bootagent;
        Image *img;
        base_spec spec;  /* borrows from text and img */
} base_definition;

static void base_definition_done(base_definition *d) {
        free(d->text);
        free(d->store);
        free(d->bootagent);
        image_free(d->img);
}

static int base_definition_load(const char *image, const char *cache_dir, const char *bootagent_path,
                                base_definition *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(base_definition_done) base_definition d = {};
        Diagnostics diag = {};
        int r;

        r = definition_path(image, &path);
        if (r < 0)
                return log_error_errno(r, "Failed to find the image definition %s: %m", image);
        r = read_file(path, IMAGE_MAX_SIZE, &d.text, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        r = image_parse_file(path, &diag, &d.img);
        if (r < 0) {
                diagnostics_print(&diag, stderr);
                diagnostics_free(&diag);
                return log_error_errno(r, "Failed to parse %s: %m", path);
        }
        diagnostics_print(&diag, stderr); /* warnings */
        diagnostics_free(&diag);

        r = base_store_dir(cache_dir, &d.store);
        if (r < 0)
                return log_error_errno(r, "Failed to find the image store (set --cache-dir or IMGBUILD_CACHE_DIR): %m");
        r = base_find_bootagent(bootagent_path, &d.bootagent);
        if (r < 0)
                return log_error_errno(r, "Failed to find the bootagent binary to bake in (use --bootagent): %m");

        d.spec = (base_spec) {
                .definition = d.text,
                .suite = d.img->suite,
                .mirror = d.img->mirror,
                .variant = d.img->variant,
                .packages = d.img->packages,
                .initrd_modules = d.img->initrd_modules,
                .disk_size = d.img->disk_size,
        };
        *ret = d;
        d = (base_definition) {};
        return 0;
}

int base_ensure(const char *image, const char *cache_dir, const char *bootagent_path, bool force,
                base_image *ret) {
        _cleanup_(base_definition_done) base_definition d = {};
        int r;

        r = base_definition_load(image, cache_dir, bootagent_path, &d);
        if (r < 0)
                return r;
        r = base_build(d.store, &d.spec, d.bootagent, force, ret);
        return r < 0 ? r : 0;
}

int base_find(const char *image, const char *cache_dir, const char *bootagent_path, char ret_key[SHA256_HEX_SIZE]) {
        _cleanup_(base_definition_done) base_definition d = {};
        _cleanup_(base_image_done) base_image b = {};
        char key[SHA256_HEX_SIZE];
        int r;

        r = base_definition_load(image, cache_dir, bootagent_path, &d);
        if (r < 0)
                return r;
        r = base_key(&d.spec, d.bootagent, key);
        if (r < 0)
                return log_error_errno(r, "Failed to compute the base image key: %m");
        r = base_lookup(d.store, &d.spec, d.bootagent, &b);
        if (r < 0)
                return log_error_errno(r, "Failed to look up the base image in %s: %m", d.store);
        memcpy(ret_key, key, SHA256_HEX_SIZE);
        return r;
}

enum { ARG_CACHE_DIR = 0x100, ARG_BOOTAGENT, ARG_FORCE, ARG_NET, ARG_TIMEOUT, ARG_PUT, ARG_TEMPLATE };

static int parse_args(int argc, char **argv, bool vm, base_args *args, const char *usage) {
        static const struct option options[] = {
                { "cache-dir", required_argument, NULL, ARG_CACHE_DIR },
                { "bootagent", required_argument, NULL, ARG_BOOTAGENT },
                { "force", no_argument, NULL, ARG_FORCE },
                { "net", no_argument, NULL, ARG_NET },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "put", required_argument, NULL, ARG_PUT },
                { "template", required_argument, NULL, ARG_TEMPLATE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        optind = 1;
        /* '+': stop at the first operand, so the VM command's own options are left alone. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case ARG_CACHE_DIR:
                        args->cache_dir = optarg;
                        break;
                case ARG_BOOTAGENT:
                        args->bootagent = optarg;
                        break;
                case ARG_FORCE:
                        if (vm)
                                goto bad;
                        args->force = true;
                        break;
                case ARG_TEMPLATE:
                        if (!vm)
                                goto bad;
                        args->template_ref = optarg;
                        break;
                case ARG_NET:
                        if (!vm)
                                goto bad;
                        args->network = true;
                        break;
                case ARG_TIMEOUT: {
                        char *end;
                        unsigned long t = strtoul(optarg, &end, 10);
                        if (!vm || *end || end == optarg || t == 0 || t > 86400) {
                                log_error("Invalid --timeout: %s", optarg);
                                return -EINVAL;
                        }
                        args->timeout = (unsigned) t;
                        break;
                }
                case ARG_PUT:
                        /* LOCAL:GUEST_DIR; the last ':' splits, so LOCAL may contain one. */
                        if (!vm || !strrchr(optarg, ':') || strrchr(optarg, ':')[1] != '/') {
                                log_error("Invalid --put (expected LOCAL:/GUEST/DIR): %s", optarg);
                                return -EINVAL;
                        }
                        if (strv_push(&args->puts, optarg) < 0)
                                return log_error_errno(-ENOMEM, "Out of memory");
                        break;
                case 'h':
                        printf("%s", usage);
                        return 0;
                default:
                bad:
                        fprintf(stderr, "%s", usage);
                        return -EINVAL;
                }
        return 1;
}

int cmd_base(int argc, char **argv) {
        static const char usage[] =
                "Usage: imgbuild base [--cache-dir DIR] [--bootagent PATH] [--force] IMAGE\n"
                "Build the base image (kernel, initrd, qcow2 disk) for images/NAME into the image store.\n";
        _cleanup_(base_image_done) base_image b = {};
        base_args args = {};
        int r;

        r = parse_args(argc, argv, false, &args, usage);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (optind != argc - 1) {
                fprintf(stderr, "%s", usage);
                return 2;
        }
        r = base_ensure(argv[optind], args.cache_dir, args.bootagent, args.force, &b);
        if (r < 0)
                return 1;
        printf("%s\n", b.dir);
        return 0;
}

/* Boot, run, power off. Returns the command's exit status, or -errno (logged). */
static int vm_exec(const base_image *b, const base_args *args, char **command) {
        _cleanup_(qemu_vm_freep) qemu_vm *vm = NULL;
        char dir[] = "/tmp/imgbuild-run-XXXXXX";
        _cleanup_free_ char *overlay = NULL;
        _cleanup_free_ char *error = NULL;
        int r, status = 0;

        if (!mkdtemp(dir))
                return log_error_errno(errno, "Failed to create a temporary directory: %m");
        if (asprintf(&overlay, "%s/disk.qcow2", dir) < 0) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto out;
        }
        r = qemu_overlay_create(b->disk, overlay, 0);
        if (r < 0)
                goto out;

        qemu_vm_config config = { .kernel = b->kernel, .initrd = b->initrd, .disk = overlay, .network = args->network };
        r = qemu_vm_start(&config, &vm);
        if (r < 0)
                goto out;
        r = qemu_vm_wait_ready(vm, args->timeout ?: 300);
        if (r < 0)
                goto out;

        for (char **p = args->puts; p && *p; p++) {
                _cleanup_free_ char *local = strndup(*p, (size_t) (strrchr(*p, ':') - *p));
                if (!local) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        goto out;
                }
                r = comm_client_put(qemu_vm_comm(vm), local, strrchr(*p, ':') + 1, &error);
                if (r < 0) {
                        r = log_error_errno(r, "Failed to copy %s into the VM: %s", local,
                                            error ? error : strerror(-r));
                        goto out;
                }
        }

        qemu_vm_set_deadline(vm, args->timeout ?: 3600);
        r = comm_client_exec(qemu_vm_comm(vm), command, NULL, "/", STDOUT_FILENO, STDERR_FILENO, &status, &error);
        qemu_vm_set_deadline(vm, 0);
        if (r == -EREMOTEIO) {
                log_error("Failed to run %s in the VM: %s", command[0], error);
                goto out;
        }
        if (r < 0) {
                if (qemu_interrupted())
                        r = log_error_errno(-EINTR, "Interrupted, VM stopped");
                else if (qemu_deadline_expired())
                        r = log_error_errno(-ETIMEDOUT, "Command in the VM did not finish in time, VM stopped");
                else {
                        log_error_errno(r, "Communicator failed while running %s: %m", command[0]);
                        qemu_vm_show_console(vm, 20);
                }
                goto out;
        }
        r = qemu_vm_powerdown(vm, 120);
        if (r >= 0)
                r = status;
out:
        vm = qemu_vm_free(vm);
        int q = rm_rf(dir);
        if (q < 0)
                log_warning_errno(q, "Failed to remove %s: %m", dir);
        return r;
}

int cmd_vm_exec(int argc, char **argv) {
        static const char usage[] =
                "Usage: imgbuild vm-exec [--cache-dir DIR] [--bootagent PATH] [--net] [--timeout SEC]\n"
                "                        [--put LOCAL:/GUEST/DIR]... IMAGE -- COMMAND...\n"
                "       imgbuild vm-exec [OPTIONS] --template NAME@VERSION -- COMMAND...\n"
                "Boot IMAGE's base image (or a built template) on a throw-away overlay, copy each\n"
                "--put file or directory into the guest directory, run COMMAND through the\n"
                "communicator, power off. Exits with COMMAND's status.\n";
        _cleanup_(base_image_done) base_image b = {};
        _cleanup_(base_args_done) base_args args = {};
        int r;

        r = parse_args(argc, argv, true, &args, usage);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        /* IMAGE (unless --template), then "--", then at least one word of command. getopt
         * consumes a "--" that directly follows the options. */
        int image = args.template_ref ? 0 : 1;
        if (args.template_ref && optind > 0 && streq(argv[optind - 1], "--"))
                optind--;
        if (argc - optind < 2 + image || !streq(argv[optind + image], "--")) {
                fprintf(stderr, "%s", usage);
                return 2;
        }
        if (args.template_ref) {
                _cleanup_free_ char *store = NULL;
                r = base_store_dir(args.cache_dir, &store);
                if (r >= 0)
                        r = template_open(store, args.template_ref, &b);
                if (r < 0) {
                        log_error_errno(r, "Failed to find template %s: %m", args.template_ref);
                        return 1;
                }
        } else {
                r = base_ensure(argv[optind], args.cache_dir, args.bootagent, args.force, &b);
                if (r < 0)
                        return 1;
        }
        r = vm_exec(&b, &args, argv + optind + image + 1);
        if (qemu_interrupted())
                return 128 + qemu_interrupted();
        return r < 0 ? 1 : r;
}
