/* imgbuild vm-exec [--cache-dir DIR] [--timeout SEC] [--net] [--put LOCAL:/DIR] IMAGE_DIR|--template
 * NAME@VERSION -- COMMAND...: boot the base image (or a built template, store/templates.h) on a
 * throw-away overlay, run COMMAND through the communicator, shut down. Exits with the command's
 * status. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "base-definition.h"
#include "cli.h"
#include "fs.h"
#include "interrupt.h"
#include "log.h"
#include "qemu.h"
#include "strv.h"
#include "templates.h"

typedef struct vm_exec_args {
        const char *cache_dir;
        const char *bootagent;
        bool network;
        unsigned timeout;
        char **puts;          /* vm-exec --put LOCAL:/GUEST/DIR */
        const char *template_ref;
} vm_exec_args;

static void vm_exec_args_done(vm_exec_args *a) { strv_free(a->puts); }

enum { ARG_CACHE_DIR = 0x100, ARG_BOOTAGENT, ARG_NET, ARG_TIMEOUT, ARG_PUT, ARG_TEMPLATE };

static int parse_args(int argc, char **argv, vm_exec_args *args, const char *usage) {
        static const struct option options[] = {
                { "cache-dir", required_argument, NULL, ARG_CACHE_DIR },
                { "bootagent", required_argument, NULL, ARG_BOOTAGENT },
                { "net", no_argument, NULL, ARG_NET },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "put", required_argument, NULL, ARG_PUT },
                { "template", required_argument, NULL, ARG_TEMPLATE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        /* '+': stop at the first operand, so the VM command's own options are left alone. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case ARG_CACHE_DIR:
                        args->cache_dir = optarg;
                        break;
                case ARG_BOOTAGENT:
                        args->bootagent = optarg;
                        break;
                case ARG_TEMPLATE:
                        args->template_ref = optarg;
                        break;
                case ARG_NET:
                        args->network = true;
                        break;
                case ARG_TIMEOUT: {
                        char *end;
                        unsigned long t = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || t == 0 || t > 86400) {
                                log_error("Invalid --timeout: %s", optarg);
                                return -EINVAL;
                        }
                        args->timeout = (unsigned) t;
                        break;
                }
                case ARG_PUT:
                        /* LOCAL:GUEST_DIR; the last ':' splits, so LOCAL may contain one. */
                        if (!strrchr(optarg, ':') || strrchr(optarg, ':')[1] != '/') {
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
                        fprintf(stderr, "%s", usage);
                        return -EINVAL;
                }
        return 1;
}

/* Boot, run, power off. Returns the command's exit status, or -errno (logged). */
static int vm_exec(const base_image *b, const vm_exec_args *args, char **command) {
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
                if (interrupt_signal())
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
        _cleanup_(vm_exec_args_done) vm_exec_args args = {};
        int r;

        r = parse_args(argc, argv, &args, usage);
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
                r = base_ensure(argv[optind], args.cache_dir, args.bootagent, false, &b);
                if (r < 0)
                        return 1;
        }
        r = vm_exec(&b, &args, argv + optind + image + 1);
        if (interrupt_signal())
                return 128 + interrupt_signal();
        return r < 0 ? 1 : r;
}
