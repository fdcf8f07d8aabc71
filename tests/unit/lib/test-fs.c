#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"

static char dir[] = "/tmp/test-fs-XXXXXX";

static char *path_in(const char *name) {
        char *p;
        CHECK(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

/* Number of entries in dir other than . and .. */
static int count_entries(const char *d) {
        DIR *dp = opendir(d);
        CHECK(dp);
        int n = 0;
        struct dirent *de;
        while ((de = readdir(dp)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(dp);
        return n;
}

static void make_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");
        CHECK(f);
        CHECK(fputs(content, f) >= 0);
        CHECK(fclose(f) == 0);
}

static void test_write_atomic(void) {
        _cleanup_free_ char *p = path_in("a.conf");
        char *data;
        size_t len;
        struct stat st;

        CHECK_OK(write_file_atomic(p, "hello\n", 6, 0640, (uid_t) -1, (gid_t) -1));
        CHECK_OK(read_file(p, 100, &data, &len));
        CHECK(len == 6);
        CHECK_STREQ(data, "hello\n");
        free(data);
        CHECK(stat(p, &st) == 0);
        CHECK((st.st_mode & 07777) == 0640);
        CHECK(count_entries(dir) == 1); /* no temporary file left behind */

        /* Overwrite, with an owner change when we can. */
        uid_t uid = geteuid() == 0 ? 4321 : (uid_t) -1;
        gid_t gid = geteuid() == 0 ? 8765 : (gid_t) -1;
        CHECK_OK(write_file_atomic(p, "x", 1, 0600, uid, gid));
        CHECK(stat(p, &st) == 0);
        CHECK((st.st_mode & 07777) == 0600);
        CHECK(st.st_size == 1);
        if (geteuid() == 0) {
                CHECK(st.st_uid == 4321);
                CHECK(st.st_gid == 8765);
        }

        /* Empty content is a valid file. */
        CHECK_OK(write_file_atomic(p, "", 0, 0644, (uid_t) -1, (gid_t) -1));
        CHECK(stat(p, &st) == 0 && st.st_size == 0);
        CHECK(count_entries(dir) == 1);
        CHECK(unlink(p) == 0);
}

static void test_write_atomic_failures(void) {
        _cleanup_free_ char *file = path_in("plain");
        _cleanup_free_ char *under_file = path_in("plain/child");
        _cleanup_free_ char *target = path_in("keep");
        _cleanup_free_ char *subdir = path_in("subdir");
        _cleanup_free_ char *subdir_content = path_in("subdir/inside");
        char *data;

        /* Parent is a regular file: nothing can be created. */
        make_file(file, "plain");
        CHECK(write_file_atomic(under_file, "x", 1, 0644, (uid_t) -1, (gid_t) -1) == -ENOTDIR);

        /* rename() over a non-empty directory fails after the temporary file was written: the
         * temporary must be gone and the directory untouched. */
        CHECK(mkdir(subdir, 0755) == 0);
        make_file(subdir_content, "inside");
        int before = count_entries(dir);
        CHECK(write_file_atomic(subdir, "x", 1, 0644, (uid_t) -1, (gid_t) -1) == -EISDIR);
        CHECK(count_entries(dir) == before);
        CHECK(count_entries(subdir) == 1);

        /* The write itself fails (file size limit): the old content must survive. */
        make_file(target, "old content");
        struct rlimit old_limit, small = { .rlim_cur = 1024 };
        CHECK(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
        small.rlim_max = old_limit.rlim_max;
        CHECK(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
        CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
        static char big[8192];
        memset(big, 'b', sizeof(big));
        int r = write_file_atomic(target, big, sizeof(big), 0644, (uid_t) -1, (gid_t) -1);
        CHECK(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
        CHECK(r == -EFBIG);
        CHECK(count_entries(dir) == before + 1);
        CHECK_OK(read_file(target, 100, &data, NULL));
        CHECK_STREQ(data, "old content");
        free(data);

        /* Missing directory. */
        CHECK(write_file_atomic("/nonexistent-dir-for-test/x", "x", 1, 0644, (uid_t) -1, (gid_t) -1) ==
              -ENOENT);
}

static void test_write_if_changed(void) {
        _cleanup_free_ char *p = path_in("if-changed");
        struct stat st1, st2;

        CHECK(write_file_atomic_if_changed(p, "abc", 3, 0600, (uid_t) -1, (gid_t) -1) == 1);
        CHECK(stat(p, &st1) == 0);
        CHECK(write_file_atomic_if_changed(p, "abc", 3, 0600, (uid_t) -1, (gid_t) -1) == 0);
        CHECK(stat(p, &st2) == 0);
        CHECK(st1.st_ino == st2.st_ino); /* not replaced */

        /* Same size, different bytes. */
        CHECK(write_file_atomic_if_changed(p, "abd", 3, 0600, (uid_t) -1, (gid_t) -1) == 1);
        /* Prefix of the current content. */
        CHECK(write_file_atomic_if_changed(p, "ab", 2, 0600, (uid_t) -1, (gid_t) -1) == 1);
        /* Mode differs. */
        CHECK(write_file_atomic_if_changed(p, "ab", 2, 0644, (uid_t) -1, (gid_t) -1) == 1);
        CHECK(stat(p, &st1) == 0 && (st1.st_mode & 07777) == 0644);
        CHECK(write_file_atomic_if_changed(p, "ab", 2, 0644, (uid_t) -1, (gid_t) -1) == 0);
        if (geteuid() == 0) {
                /* Owner differs. */
                CHECK(write_file_atomic_if_changed(p, "ab", 2, 0644, 1000, 1000) == 1);
                CHECK(stat(p, &st1) == 0 && st1.st_uid == 1000 && st1.st_gid == 1000);
                CHECK(write_file_atomic_if_changed(p, "ab", 2, 0644, 1000, 1000) == 0);
                CHECK(write_file_atomic_if_changed(p, "ab", 2, 0644, 1000, 0) == 1);
        }

        /* A symlink at path is replaced by a regular file, not written through. */
        _cleanup_free_ char *link_target = path_in("link-target");
        _cleanup_free_ char *link = path_in("link");
        make_file(link_target, "ab");
        CHECK(chmod(link_target, 0644) == 0);
        CHECK(symlink(link_target, link) == 0);
        CHECK(write_file_atomic_if_changed(link, "ab", 2, 0644, (uid_t) -1, (gid_t) -1) == 1);
        CHECK(lstat(link, &st1) == 0 && S_ISREG(st1.st_mode));
}

static void test_read_file(void) {
        _cleanup_free_ char *p = path_in("hundred");
        _cleanup_free_ char *empty = path_in("empty");
        char content[101];
        char *data;
        size_t len;

        memset(content, 'z', 100);
        content[100] = 0;
        make_file(p, content);
        CHECK(read_file(p, 99, &data, &len) == -EFBIG);
        CHECK_OK(read_file(p, 100, &data, &len));
        CHECK(len == 100);
        CHECK(data[100] == 0);
        CHECK(memcmp(data, content, 100) == 0);
        free(data);

        make_file(empty, "");
        CHECK_OK(read_file(empty, 0, &data, &len));
        CHECK(len == 0 && data[0] == 0);
        free(data);

        /* /proc files report size 0; the content must still be read and capped. */
        CHECK_OK(read_file("/proc/self/status", 1 << 20, &data, NULL));
        CHECK(strstr(data, "Name:"));
        free(data);
        CHECK(read_file("/proc/self/status", 10, &data, NULL) == -EFBIG);

        CHECK(read_file("/nonexistent-file-for-test", 10, &data, NULL) == -ENOENT);
        CHECK(read_file(dir, 10, &data, NULL) == -EISDIR);
}

static void test_mkdir_p(void) {
        _cleanup_free_ char *deep = path_in("m/n//o/p/");
        _cleanup_free_ char *check = path_in("m/n/o/p");
        _cleanup_free_ char *file = path_in("m/file");
        _cleanup_free_ char *under_file = path_in("m/file/q");
        struct stat st;

        CHECK_OK(mkdir_p(deep, 0750));
        CHECK(stat(check, &st) == 0 && S_ISDIR(st.st_mode));
        CHECK_OK(mkdir_p(deep, 0750)); /* existing is fine */
        CHECK_OK(mkdir_p("/", 0755));
        make_file(file, "f");
        CHECK(mkdir_p(file, 0755) == -ENOTDIR);
        CHECK(mkdir_p(under_file, 0755) == -ENOTDIR);
        CHECK(mkdir_p("", 0755) == -EINVAL);
}

static void test_rm_rf(void) {
        _cleanup_free_ char *tree = path_in("tree");
        _cleanup_free_ char *outside = path_in("outside");
        _cleanup_free_ char *outside_file = path_in("outside/precious");
        _cleanup_free_ char *inner = path_in("tree/a/b/c");
        _cleanup_free_ char *f1 = path_in("tree/a/file");
        _cleanup_free_ char *f2 = path_in("tree/a/b/c/file");
        _cleanup_free_ char *dirlink = path_in("tree/a/dirlink");
        _cleanup_free_ char *toplink = path_in("toplink");
        struct stat st;

        CHECK_OK(mkdir_p(inner, 0755));
        CHECK_OK(mkdir_p(outside, 0755));
        make_file(f1, "1");
        make_file(f2, "2");
        make_file(outside_file, "keep me");
        CHECK(symlink(outside, dirlink) == 0);

        CHECK_OK(rm_rf(tree));
        CHECK(lstat(tree, &st) < 0 && errno == ENOENT);
        CHECK(stat(outside_file, &st) == 0); /* the symlink was not followed */

        /* A symlink given as path is removed itself. */
        CHECK(symlink(outside, toplink) == 0);
        CHECK_OK(rm_rf(toplink));
        CHECK(lstat(toplink, &st) < 0);
        CHECK(stat(outside_file, &st) == 0);

        CHECK_OK(rm_rf(tree)); /* missing is fine */
        CHECK_OK(rm_rf(outside_file)); /* a plain file */
        CHECK(stat(outside_file, &st) < 0);
}

/* rm_rf must not empty a file system mounted inside the tree. Needs mount privileges. */
static void test_rm_rf_mount_point(void) {
        _cleanup_free_ char *tree = path_in("mtree");
        _cleanup_free_ char *mnt = path_in("mtree/mnt");
        _cleanup_free_ char *inside = path_in("mtree/mnt/file");
        _cleanup_free_ char *sibling = path_in("mtree/sibling");
        struct stat st;

        CHECK_OK(mkdir_p(mnt, 0755));
        if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) {
                fprintf(stderr, "mount tmpfs: %m; skipping the mount point case\n");
                CHECK_OK(rm_rf(tree));
                return;
        }
        make_file(inside, "on another fs");
        make_file(sibling, "s");
        int r = rm_rf(tree);
        CHECK(stat(inside, &st) == 0);
        CHECK(umount(mnt) == 0);
        CHECK(r == -EBUSY);
        CHECK(stat(sibling, &st) < 0); /* the rest was removed */
        CHECK_OK(rm_rf(tree));
}

static void test_fsync_parent_dir(void) {
        _cleanup_free_ char *p = path_in("whatever");
        CHECK_OK(fsync_parent_dir(p));
        CHECK(fsync_parent_dir("/nonexistent-dir-for-test/x") == -ENOENT);
        CHECK_OK(fsync_parent_dir("relative-name"));
}

/* A process killed while writing leaves no temporary file behind (they may hold secrets). */
static void test_write_atomic_killed(void) {
        _cleanup_free_ char *sub = path_in("killed"), *target = path_in("killed/secret");
        CHECK_OK(mkdir_p(sub, 0700));
        for (int round = 0; round < 3; round++) {
                pid_t pid = fork();
                CHECK(pid >= 0);
                if (pid == 0) {
                        size_t len = 64u << 20;
                        char *data = malloc(len);
                        if (!data)
                                _exit(1);
                        memset(data, 's', len);
                        for (;;)
                                (void) write_file_atomic(target, data, len, 0640, (uid_t) -1, (gid_t) -1);
                }
                usleep(150000 + 100000 * round);
                CHECK(kill(pid, SIGKILL) == 0);
                CHECK(waitpid(pid, NULL, 0) == pid);
                DIR *dp = opendir(sub);
                CHECK(dp);
                struct dirent *de;
                while ((de = readdir(dp)))
                        if (!streq(de->d_name, ".") && !streq(de->d_name, "..") && !streq(de->d_name, "secret")) {
                                fprintf(stderr, "left behind: %s\n", de->d_name);
                                CHECK(!"a temporary file outlived the writer");
                        }
                closedir(dp);
        }
        CHECK_OK(rm_rf(sub));
}

int main(void) {
        CHECK(mkdtemp(dir));
        test_write_atomic_killed();
        test_write_atomic();
        test_write_atomic_failures();
        test_write_if_changed();
        test_read_file();
        test_mkdir_p();
        test_rm_rf();
        test_rm_rf_mount_point();
        test_fsync_parent_dir();
        CHECK_OK(rm_rf(dir));
        struct stat st;
        CHECK(stat(dir, &st) < 0 && errno == ENOENT);
        return 0;
}
