#include "fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "io-util.h"
#include "wipe.h"

char *path_dirname(const char *path) {
        const char *slash = strrchr(path, '/');
        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

int fsync_parent_dir(const char *path) {
        _cleanup_free_ char *dir = path_dirname(path);
        if (!dir)
                return -ENOMEM;
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

/* Write, own, mode and sync the open file fd. */
static int fill_file(int fd, const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid) {
        int r = loop_write(fd, data, len);
        if (r < 0)
                return r;
        if ((uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0)
                return -errno;
        /* After fchown: chown clears set-id bits, so the mode must come second. */
        if (fchmod(fd, mode & 07777) < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *dir = path_dirname(path);
        if (!dir)
                return -ENOMEM;
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        if (!*base)
                return -EISDIR;

        /* A hidden name in the same directory, so rename() stays on one file system. */
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s/.#%sXXXXXX", dir, base) < 0)
                return -ENOMEM;

        /* Written as an unnamed file (O_TMPFILE) and given the hidden name only once complete:
         * a process killed while writing leaves nothing behind, not even part of a secret. */
        int r, fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0 && access("/proc/self/fd", F_OK) < 0) {
                /* linkat below goes through /proc (a chroot may lack it). */
                close(fd);
                fd = -1;
                errno = EOPNOTSUPP;
        }
        if (fd >= 0) {
                char proc[64];
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                r = fill_file(fd, data, len, mode, uid, gid);
                /* linkat wants a name that does not exist yet: the pattern with random letters. */
                for (unsigned attempt = 0; r >= 0; attempt++) {
                        snprintf(tmp + strlen(tmp) - 6, 7, "%06" PRIx64, random_u64() & 0xffffff);
                        if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0)
                                break;
                        if (errno != EEXIST || attempt >= 16)
                                r = -errno;
                }
                close(fd);
                if (r < 0)
                        return r;
        } else if (errno == EOPNOTSUPP || errno == EISDIR) {
                /* No O_TMPFILE here (file system, or no /proc): a named temporary from the start. */
                fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 until fill_file */
                if (fd < 0)
                        return -errno;
                r = fill_file(fd, data, len, mode, uid, gid);
                if (close(fd) < 0 && r >= 0)
                        r = -errno;
                if (r < 0) {
                        (void) unlink(tmp);
                        return r;
                }
        } else
                return -errno;

        if (rename(tmp, path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return r;
        }
        return fsync_parent_dir(path);
}

/* Whether path holds exactly data with this mode and owner ((uid_t)-1/(gid_t)-1: any owner).
 * Returns 1 if it does, 0 if not (or missing), -errno on errors other than a missing file. */
static int file_is_up_to_date(const char *path, const void *data, size_t len, mode_t mode,
                              uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT || errno == ELOOP ? 0 : -errno;

        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != (mode & 07777) ||
            (uid != (uid_t) -1 && st.st_uid != uid) || (gid != (gid_t) -1 && st.st_gid != gid) ||
            (uint64_t) st.st_size != (uint64_t) len)
                return 0;

        /* Compare in chunks; the size may have changed since fstat, so a short file is a mismatch. */
        const char *p = data;
        size_t done = 0;
        char chunk[16384];
        for (;;) {
                ssize_t n = loop_read(fd, chunk, sizeof(chunk));
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return done == len;
                if ((size_t) n > len - done || memcmp(chunk, p + done, (size_t) n) != 0)
                        return 0;
                done += (size_t) n;
        }
}

int write_file_atomic_if_changed(const char *path, const void *data, size_t len, mode_t mode,
                                 uid_t uid, gid_t gid) {
        int r = file_is_up_to_date(path, data, len, mode, uid, gid);
        if (r < 0)
                return r;
        if (r > 0)
                return 0;
        r = write_file_atomic(path, data, len, mode, uid, gid);
        if (r < 0)
                return r;
        return 1;
}

int read_file(const char *path, size_t max, char **ret_data, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return read_fd(fd, max, ret_data, ret_len);
}

int read_fd(int fd, size_t max, char **ret_data, size_t *ret_len) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > (uint64_t) max)
                return -EFBIG;

        /* Read until EOF rather than trusting st_size: /proc files and pipes report 0. One byte
         * beyond max is allowed into the buffer only to detect that the file is too large. */
        _cleanup_free_ char *data = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return -EFBIG;
                        size_t want = cap ? cap * 2 : 4096;
                        if (want > max + 1)
                                want = max + 1;
                        /* Files read whole may be keys or tokens: the old block is wiped. */
                        char *p = realloc_wiped(data, len, want + 1);
                        if (!p)
                                return -ENOMEM;
                        data = p;
                        cap = want;
                }
                ssize_t n = loop_read(fd, data + len, cap - len);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }
        if (!data) {
                data = malloc(1);
                if (!data)
                        return -ENOMEM;
        }
        data[len] = 0;
        *ret_data = TAKE_PTR(data);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int mkdir_p(const char *path, mode_t mode) {
        if (!*path)
                return -EINVAL;
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;

        /* Create every prefix that ends before a '/', then the whole path. */
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != 0)
                        continue;
                char saved = *s;
                *s = 0;
                if (mkdir(p, mode) < 0) {
                        if (errno != EEXIST)
                                return -errno;
                        struct stat st;
                        if (stat(p, &st) < 0)
                                return -errno;
                        if (!S_ISDIR(st.st_mode))
                                return -ENOTDIR;
                }
                *s = saved;
                if (saved == 0)
                        return 0;
                while (s[1] == '/')
                        s++;
                if (s[1] == 0)
                        return 0;
        }
}

/* Remove everything inside the directory open at dfd (takes ownership of dfd). Does not follow
 * symlinks and does not descend into other file systems. */
static int rm_rf_children(int dfd, dev_t dev) {
        DIR *d = fdopendir(dfd);
        if (!d) {
                int r = -errno;
                close(dfd);
                return r;
        }

        int r = 0;
        struct dirent *de;
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0 && r == 0)
                                r = -errno;
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;

                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT && r == 0)
                                r = -errno;
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        if (st.st_dev != dev) {
                                /* A mount point: removing its content would reach outside. */
                                if (r == 0)
                                        r = -EBUSY;
                                continue;
                        }
                        int cfd = openat(dirfd(d), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0) {
                                if (errno != ENOENT && r == 0)
                                        r = -errno;
                                continue;
                        }
                        int q = rm_rf_children(cfd, dev);
                        if (q < 0 && r == 0)
                                r = q;
                        if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT &&
                            r == 0)
                                r = -errno;
                } else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && r == 0)
                        r = -errno;
        }
        closedir(d);
        return r;
}

int rm_rf(const char *path) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlink(path) < 0 && errno != ENOENT ? -errno : 0;

        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = rm_rf_children(fd, st.st_dev);
        if (r < 0)
                return r;
        if (rmdir(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}
