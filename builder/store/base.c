#include "base.h"

#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "fs.h"
#include "json.h"
#include "log.h"
#include "logtail.h"
#include "spawn.h"
#include "strv.h"

/* Bumped whenever the way a base image is made changes, so old store entries are not reused. */
#define BASE_FORMAT "imgbuild-base-1"

/* Shared libraries bootagent links against (Debian 12 package names): the guest needs them for
 * the baked-in binary to run. libarchive13 is not linked but loaded with dlopen by the
 * communicator (`bootagent serve`, lib/comm.c) for put/get tar streams: keep it here. */
static const char *const bootagent_runtime_packages[] = {
        "libarchive13", "libcbor0.8", "libcurl4", "libjansson4", "libssl3", "libsystemd0", "libuuid1",
};

/* Started by udev only when the build VM has the communicator port, so templates booted
 * elsewhere never listen. */
static const char comm_unit[] =
        "[Unit]\n"
        "Description=imgbuild communicator (build VMs only)\n"
        "ConditionPathExists=/dev/virtio-ports/" BASE_COMM_PORT "\n"
        "\n"
        "[Service]\n"
        "ExecStart=/usr/local/bin/bootagent serve --device /dev/virtio-ports/" BASE_COMM_PORT "\n"
        "Restart=always\n"
        "RestartSec=1\n";

static const char comm_udev_rule[] =
        "SUBSYSTEM==\"virtio-ports\", ATTR{name}==\"" BASE_COMM_PORT "\", "
        "TAG+=\"systemd\", ENV{SYSTEMD_WANTS}+=\"bootagent-serve.service\"\n";

/* DHCP on whatever NIC a step that needs the mirror gets; no NIC, nothing happens. */
static const char dhcp_network[] =
        "[Match]\n"
        "Name=en* eth*\n"
        "\n"
        "[Network]\n"
        "DHCP=yes\n";

static int log_oom(void) { return log_error_errno(-ENOMEM, "Out of memory"); }

void base_image_done(base_image *b) {
        free(b->dir);
        free(b->kernel);
        free(b->initrd);
        free(b->disk);
        *b = (base_image) {};
}

int base_store_dir(const char *dir, char **ret) {
        const char *e;
        char *s;

        if (dir && dir[0] != '/') {
                /* Layers name their parents by absolute path: the store must not depend on the
                 * current directory. */
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                if (!cwd)
                        return negative_errno();
                if (asprintf(&s, "%s/%s", cwd, dir) < 0)
                        s = NULL;
        } else if (dir)
                s = strdup(dir);
        else if ((e = getenv("IMGBUILD_CACHE_DIR")) && *e)
                s = strdup(e);
        else if ((e = getenv("XDG_CACHE_HOME")) && *e) {
                if (asprintf(&s, "%s/imgbuild", e) < 0)
                        s = NULL;
        } else if ((e = getenv("HOME")) && *e) {
                if (asprintf(&s, "%s/.cache/imgbuild", e) < 0)
                        s = NULL;
        } else
                return -ENOENT;
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int base_find_bootagent(const char *explicit_path, char **ret) {
        const char *e = explicit_path ?: getenv("IMGBUILD_BOOTAGENT");
        char exe[PATH_MAX];
        char *p;

        if (e && *e) {
                p = realpath(e, NULL);
                if (!p)
                        return negative_errno();
                *ret = p;
                return 0;
        }
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n < 0)
                return negative_errno();
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (!slash)
                return -ENOENT;
        *slash = '\0';
        static const char *const candidates[] = { "bootagent", "../bootagent/bootagent" };
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                _cleanup_free_ char *c = NULL;
                if (asprintf(&c, "%s/%s", exe, candidates[i]) < 0)
                        return -ENOMEM;
                if (access(c, X_OK) == 0) {
                        p = realpath(c, NULL);
                        if (!p)
                                return negative_errno();
                        *ret = p;
                        return 0;
                }
        }
        return -ENOENT;
}

/* The definition's packages plus bootagent's runtime libraries, without duplicates. */
static int all_packages(const base_spec *spec, char ***ret) {
        _cleanup_strv_free_ char **l = strv_copy(spec->packages);
        int r;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(bootagent_runtime_packages); i++)
                if (!strv_contains(l, bootagent_runtime_packages[i])) {
                        r = strv_push(&l, bootagent_runtime_packages[i]);
                        if (r < 0)
                                return r;
                }
        *ret = TAKE_PTR(l);
        return 0;
}

int base_key(const base_spec *spec, const char *bootagent, char ret[SHA256_HEX_SIZE]) {
        _cleanup_strv_free_ char **packages = NULL;
        char agent_hex[SHA256_HEX_SIZE];
        int r;

        r = sha256_file_hex(bootagent, agent_hex);
        if (r < 0)
                return r;
        r = all_packages(spec, &packages);
        if (r < 0)
                return r;
        sha256_ctx *c = sha256_new();
        if (!c)
                return -ENOMEM;
        sha256_update_str(c, BASE_FORMAT);
        sha256_update_str(c, spec->definition);
        for (char **p = packages; *p; p++)
                sha256_update_str(c, *p);
        sha256_update_str(c, agent_hex);
        sha256_final_hex(c, ret);
        return 0;
}

static int base_image_fill(const char *store, const char *key, base_image *ret) {
        base_image b = {};

        memcpy(b.key, key, SHA256_HEX_SIZE);
        if (asprintf(&b.dir, "%s/base/%s", store, key) < 0)
                b.dir = NULL;
        if (!b.dir || asprintf(&b.kernel, "%s/vmlinuz", b.dir) < 0 ||
            asprintf(&b.initrd, "%s/initrd.img", b.dir) < 0 || asprintf(&b.disk, "%s/disk.qcow2", b.dir) < 0) {
                base_image_done(&b);
                return -ENOMEM;
        }
        *ret = b;
        return 0;
}

int base_lookup(const char *store, const base_spec *spec, const char *bootagent, base_image *ret) {
        char key[SHA256_HEX_SIZE];
        base_image b;
        int r;

        r = base_key(spec, bootagent, key);
        if (r < 0)
                return r;
        r = base_image_fill(store, key, &b);
        if (r < 0)
                return r;
        /* Complete entries only ever appear by rename, so the directory existing is enough. */
        if (access(b.disk, F_OK) < 0) {
                r = errno == ENOENT ? 0 : negative_errno();
                base_image_done(&b);
                return r;
        }
        *ret = b;
        return 1;
}

/* Single-quote s for the shell strings mmdebstrap hooks are. */
static char *shell_quote(const char *s) {
        _cleanup_buf_ buf b = BUF_INIT(0);
        if (buf_puts(&b, "'") < 0)
                return NULL;
        for (const char *p = s; *p; p++)
                if ((*p == '\'' ? buf_puts(&b, "'\\''") : buf_append(&b, p, 1)) < 0)
                        return NULL;
        if (buf_puts(&b, "'") < 0)
                return NULL;
        return buf_steal(&b);
}

/* Run a tool with its output appended to log_fd. Returns 0, or -errno, or -EPROTO when it exited
 * non-zero (logged). */
static int run_tool(char *const argv[], int log_fd, const char *log_path) {
        _cleanup_free_ char *cmdline = spawn_argv_to_string(argv);
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        int r, status;

        log_debug("Running %s", strempty(cmdline));
        dprintf(log_fd, "$ %s\n", strempty(cmdline));
        opts.stdout_fd = log_fd;
        opts.stderr_fd = log_fd;
        r = spawn_run(argv, &opts, &status);
        if (r < 0)
                return log_error_errno(r, "Failed to run %s: %m", argv[0]);
        if (status != 0) {
                log_error("%s failed with status %d; last lines of %s:", argv[0], status, log_path);
                log_file_tail(log_path, 25);
                return -EPROTO;
        }
        return 0;
}

static int write_tree_file(const char *root, const char *rel, const char *text, mode_t mode) {
        _cleanup_free_ char *path = NULL, *parent = NULL;
        int r;

        if (asprintf(&path, "%s/%s", root, rel) < 0)
                return -ENOMEM;
        parent = strdup(path);
        if (!parent)
                return -ENOMEM;
        *strrchr(parent, '/') = '\0';
        r = mkdir_p(parent, 0755);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), mode, 0, 0);
}

/* Files laid over the tree once packages are installed. */
static int write_late_tree(const char *late, const base_spec *spec, const char *bootagent) {
        _cleanup_free_ char *agent = NULL, *modules = NULL;
        size_t agent_len;
        int r;

        r = read_file(bootagent, 256u * 1024u * 1024u, &agent, &agent_len);
        if (r < 0)
                return r;
        r = mkdir_p(late, 0755);
        if (r >= 0) {
                _cleanup_free_ char *bin = NULL;
                if (asprintf(&bin, "%s/usr/local/bin", late) < 0)
                        return -ENOMEM;
                r = mkdir_p(bin, 0755);
                if (r >= 0) {
                        _cleanup_free_ char *path = NULL;
                        if (asprintf(&path, "%s/bootagent", bin) < 0)
                                return -ENOMEM;
                        r = write_file_atomic(path, agent, agent_len, 0755, 0, 0);
                }
        }
        if (r < 0)
                return r;

        modules = strv_join(spec->initrd_modules, "\n");
        if (!modules)
                return -ENOMEM;
        _cleanup_free_ char *modules_file = NULL;
        if (asprintf(&modules_file, "# Written by imgbuild: the initrd holds only these modules.\n%s\n", modules) < 0)
                return -ENOMEM;

        struct { const char *rel, *text; } files[] = {
                { "etc/initramfs-tools/modules", modules_file },
                { "etc/systemd/system/bootagent-serve.service", comm_unit },
                { "etc/udev/rules.d/90-imgbuild-comm.rules", comm_udev_rule },
                { "etc/systemd/network/99-imgbuild-dhcp.network", dhcp_network },
                { "etc/fstab", "LABEL=rootfs / ext4 defaults 0 1\n" },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                r = write_tree_file(late, files[i].rel, files[i].text, 0644);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Exactly one file matching pattern. */
static int glob_one(const char *pattern, char **ret) {
        glob_t g = {};
        int r = glob(pattern, 0, NULL, &g);
        if (r != 0 || g.gl_pathc != 1) {
                globfree(&g);
                return r == 0 ? -ENOTUNIQ : -ENOENT;
        }
        *ret = strdup(g.gl_pathv[0]);
        globfree(&g);
        return *ret ? 0 : -ENOMEM;
}

static int copy_file(const char *from, const char *to) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r;

        r = read_file(from, 512u * 1024u * 1024u, &data, &len);
        if (r < 0)
                return r;
        return write_file_atomic(to, data, len, 0644, (uid_t) -1, (gid_t) -1);
}

static int write_info(const char *path, const base_spec *spec, char *const *packages, const char *key) {
        _cleanup_(json_decrefp) json_t *list = json_array();
        if (!list)
                return -ENOMEM;
        for (char *const *p = packages; *p; p++)
                if (json_array_append_new(list, json_string(*p)) < 0)
                        return -ENOMEM;
        _cleanup_(json_decrefp) json_t *info = json_pack("{s:s, s:s, s:s, s:s, s:O, s:I}",
                "key", key, "suite", spec->suite, "mirror", spec->mirror, "variant", spec->variant,
                "packages", list, "created", (json_int_t) time(NULL));
        if (!info)
                return -ENOMEM;
        _cleanup_free_ char *text = json_dump_compact(info);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1);
}

static int build_into(const char *tmp, const base_spec *spec, const char *bootagent, const char *key) {
        _cleanup_free_ char *rootfs = NULL, *early = NULL, *late = NULL, *log_path = NULL, *raw = NULL,
                            *qcow2 = NULL, *include = NULL, *early_hook = NULL, *late_hook = NULL,
                            *q_early = NULL, *q_late = NULL, *size = NULL;
        _cleanup_strv_free_ char **packages = NULL;
        _cleanup_close_ int log_fd = -1;
        int r;

        if (asprintf(&rootfs, "%s/rootfs", tmp) < 0 || asprintf(&early, "%s/early", tmp) < 0 ||
            asprintf(&late, "%s/late", tmp) < 0 || asprintf(&log_path, "%s/build.log", tmp) < 0 ||
            asprintf(&raw, "%s/disk.raw", tmp) < 0 || asprintf(&qcow2, "%s/disk.qcow2", tmp) < 0 ||
            asprintf(&size, "%" PRIu64 "k", spec->disk_size / 1024) < 0)
                return log_oom();

        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0)
                return log_error_errno(errno, "Failed to create %s: %m", log_path);

        /* Set before packages are installed, so the first initrd is already the small one. */
        r = write_tree_file(early, "etc/initramfs-tools/conf.d/imgbuild", "MODULES=list\n", 0644);
        if (r >= 0)
                r = write_late_tree(late, spec, bootagent);
        if (r < 0)
                return log_error_errno(r, "Failed to prepare files for the image: %m");

        r = all_packages(spec, &packages);
        if (r < 0)
                return log_oom();
        include = strv_join(packages, ",");
        q_early = shell_quote(early);
        q_late = shell_quote(late);
        if (!include || !q_early || !q_late)
                return log_oom();
        if (asprintf(&early_hook, "cp -a %s/. \"$1\"/", q_early) < 0 ||
            asprintf(&late_hook, "cp -a %s/. \"$1\"/", q_late) < 0)
                return log_oom();
        _cleanup_free_ char *variant = NULL, *include_arg = NULL;
        if (asprintf(&variant, "--variant=%s", spec->variant) < 0 ||
            asprintf(&include_arg, "--include=%s", include) < 0)
                return log_oom();

        log_info("Building base image %.12s: mmdebstrap %s (%zu packages), log in %s",
                 key, spec->suite, strv_length(packages), log_path);
        const char *const head[] = {
                "mmdebstrap", "--mode=root", variant, include_arg,
                "--setup-hook", early_hook,
                "--customize-hook", late_hook,
                "--customize-hook", "systemctl --root=\"$1\" enable systemd-networkd.service",
                /* Nothing may take the dpkg lock or stall boot behind a build's back. */
                "--customize-hook",
                "systemctl --root=\"$1\" mask apt-daily.timer apt-daily-upgrade.timer "
                "systemd-networkd-wait-online.service e2scrub_all.timer fstrim.timer",
                "--customize-hook", "chroot \"$1\" update-initramfs -u -k all",
        };
        _cleanup_strv_free_ char **mmdebstrap = NULL;
        for (size_t i = 0; i < ELEMENTSOF(head); i++)
                if (strv_push(&mmdebstrap, head[i]) < 0)
                        return log_oom();
        /* dpkg's path filters: mmdebstrap applies them to the essential packages it unpacks
         * itself too, and keeps them in the image for the recipes' packages steps. */
        for (char *const *p = spec->dpkg_paths; p && *p; p++) {
                _cleanup_free_ char *opt = NULL;
                if (asprintf(&opt, "--dpkgopt=%s", *p) < 0 || strv_push(&mmdebstrap, opt) < 0)
                        return log_oom();
        }
        if (strv_push(&mmdebstrap, spec->suite) < 0 || strv_push(&mmdebstrap, rootfs) < 0 ||
            strv_push(&mmdebstrap, spec->mirror) < 0)
                return log_oom();
        r = run_tool(mmdebstrap, log_fd, log_path);
        if (r < 0)
                return r;

        /* mmdebstrap manages these itself during the build; set them for the VM afterwards.
         * slirp's DNS address, used when a step gets the network. An empty machine-id makes each
         * boot generate its own. */
        struct { const char *rel, *text; } after[] = {
                { "etc/resolv.conf", "nameserver 10.0.2.3\n" },
                { "etc/hostname", "imgbuild\n" },
                { "etc/machine-id", "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(after); i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", rootfs, after[i].rel) < 0)
                        return log_oom();
                /* resolv.conf may be a dangling symlink left by a package: replace it. */
                (void) unlink(path);
                r = write_file_atomic(path, after[i].text, strlen(after[i].text), 0644, 0, 0);
                if (r < 0)
                        return log_error_errno(r, "Failed to write %s: %m", path);
        }

        _cleanup_free_ char *kernel_glob = NULL, *initrd_glob = NULL, *kernel = NULL, *initrd = NULL,
                            *kernel_out = NULL, *initrd_out = NULL;
        if (asprintf(&kernel_glob, "%s/boot/vmlinuz-*", rootfs) < 0 ||
            asprintf(&initrd_glob, "%s/boot/initrd.img-*", rootfs) < 0 ||
            asprintf(&kernel_out, "%s/vmlinuz", tmp) < 0 || asprintf(&initrd_out, "%s/initrd.img", tmp) < 0)
                return log_oom();
        r = glob_one(kernel_glob, &kernel);
        if (r >= 0)
                r = glob_one(initrd_glob, &initrd);
        if (r < 0)
                return log_error_errno(r, "Failed to find exactly one kernel and initrd in %s/boot: %m", rootfs);
        r = copy_file(kernel, kernel_out);
        if (r >= 0)
                r = copy_file(initrd, initrd_out);
        if (r < 0)
                return log_error_errno(r, "Failed to copy the kernel and initrd: %m");

        log_info("Building base image %.12s: ext4 disk of %s", key, size);
        char *mkfs[] = { (char *) "mkfs.ext4", (char *) "-q", (char *) "-F", (char *) "-L", (char *) "rootfs",
                         (char *) "-d", rootfs, raw, size, NULL };
        r = run_tool(mkfs, log_fd, log_path);
        if (r < 0)
                return r;
        char *convert[] = { (char *) "qemu-img", (char *) "convert", (char *) "-O", (char *) "qcow2", raw, qcow2, NULL };
        r = run_tool(convert, log_fd, log_path);
        if (r < 0)
                return r;

        _cleanup_free_ char *info = NULL;
        if (asprintf(&info, "%s/base.json", tmp) < 0)
                return log_oom();
        r = write_info(info, spec, packages, key);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", info);

        /* Only the artifacts move into the store. */
        const char *drop[] = { rootfs, early, late, raw };
        for (size_t i = 0; i < ELEMENTSOF(drop); i++) {
                r = rm_rf(drop[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to remove %s: %m", drop[i]);
        }
        return 0;
}

/* One build per key at a time: an exclusive lock on BASE/.KEY.lock, released when fd closes. */
static int lock_key(const char *base_dir, const char *key, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/.%.12s.lock", base_dir, key) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return negative_errno();
                log_info("Waiting for another build of base image %.12s", key);
                if (flock(fd, LOCK_EX) < 0)
                        return negative_errno();
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int remove_stale(const char *base_dir, const char *key) {
        _cleanup_free_ char *pattern = NULL;
        glob_t g = {};
        int r = 0;

        if (asprintf(&pattern, "%s/.tmp-%.12s-*", base_dir, key) < 0)
                return -ENOMEM;
        if (glob(pattern, GLOB_NOSORT, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc && r >= 0; i++)
                        r = rm_rf(g.gl_pathv[i]);
        globfree(&g);
        return r;
}

int base_build(const char *store, const base_spec *spec, const char *bootagent, bool force, base_image *ret) {
        _cleanup_(base_image_done) base_image b = {};
        _cleanup_free_ char *base_dir = NULL, *tmp = NULL;
        _cleanup_close_ int lock_fd = -1;
        int r;

        r = base_lookup(store, spec, bootagent, &b);
        if (r < 0)
                return log_error_errno(r, "Failed to look up the base image in %s: %m", store);
        if (r > 0 && !force) {
                log_info("Base image %.12s is up to date: %s", b.key, b.dir);
                *ret = b;
                b = (base_image) {};
                return 0;
        }
        base_image_done(&b);
        char key[SHA256_HEX_SIZE];
        r = base_key(spec, bootagent, key);
        if (r < 0)
                return log_error_errno(r, "Failed to compute the base image key: %m");
        r = base_image_fill(store, key, &b);
        if (r < 0)
                return log_oom();

        if (asprintf(&base_dir, "%s/base", store) < 0 || asprintf(&tmp, "%s/.tmp-%.12s-XXXXXX", base_dir, key) < 0)
                return log_oom();
        r = mkdir_p(base_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", base_dir);
        r = lock_key(base_dir, key, &lock_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to lock the base image %.12s: %m", key);
        /* Holding the lock, anything left in a temporary directory for this key is from a build
         * that was killed: reclaim the space. */
        r = remove_stale(base_dir, key);
        if (r < 0)
                log_warning_errno(r, "Failed to remove what a killed build left in %s: %m", base_dir);
        /* Another build may have finished it while we waited for the lock. */
        if (!force && access(b.disk, F_OK) == 0) {
                log_info("Base image %.12s is up to date: %s", b.key, b.dir);
                *ret = b;
                b = (base_image) {};
                return 0;
        }
        if (!mkdtemp(tmp))
                return log_error_errno(errno, "Failed to create a directory in %s: %m", base_dir);
        /* mkdtemp makes it 0700; the store is readable like any cache. */
        (void) chmod(tmp, 0755);

        r = build_into(tmp, spec, bootagent, key);
        if (r >= 0 && force) {
                r = rm_rf(b.dir);
                if (r < 0)
                        log_error_errno(r, "Failed to remove the old %s: %m", b.dir);
        }
        if (r >= 0 && rename(tmp, b.dir) < 0) {
                if (errno == ENOTEMPTY || errno == EEXIST)
                        /* Someone else finished the same build first: theirs is as good. */
                        r = 0;
                else
                        r = log_error_errno(errno, "Failed to move the image into %s: %m", b.dir);
        } else if (r >= 0) {
                tmp[0] = '\0';
                r = fsync_parent_dir(b.dir);
                if (r < 0)
                        log_warning_errno(r, "Failed to sync %s: %m", base_dir);
                r = 0;
        }
        if (tmp[0]) {
                int q = rm_rf(tmp);
                if (q < 0)
                        log_warning_errno(q, "Failed to remove %s: %m", tmp);
        }
        if (r < 0)
                return r;
        log_info("Base image %.12s ready: %s", b.key, b.dir);
        *ret = b;
        b = (base_image) {};
        return 1;
}
