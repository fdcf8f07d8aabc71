/* builder/base: store location precedence, content keys, store lookup. */
#include <stdio.h>
#include <unistd.h>

#include "base.h"
#include "check.h"
#include "fs.h"

static void test_store_dir(void) {
        char *s = NULL;

        CHECK_OK(setenv("IMGBUILD_CACHE_DIR", "/env/cache", 1));
        CHECK_OK(setenv("XDG_CACHE_HOME", "/xdg", 1));
        CHECK_OK(setenv("HOME", "/home/u", 1));
        CHECK_OK(base_store_dir("/explicit", &s));
        CHECK_STREQ(s, "/explicit");
        free(s);
        CHECK_OK(base_store_dir("rel/store", &s));
        char *cwd = getcwd(NULL, 0), want[4200];
        snprintf(want, sizeof(want), "%s/rel/store", cwd);
        CHECK_STREQ(s, want);
        free(s);
        free(cwd);
        CHECK_OK(base_store_dir(NULL, &s));
        CHECK_STREQ(s, "/env/cache");
        free(s);
        CHECK_OK(unsetenv("IMGBUILD_CACHE_DIR"));
        CHECK_OK(base_store_dir(NULL, &s));
        CHECK_STREQ(s, "/xdg/imgbuild");
        free(s);
        CHECK_OK(unsetenv("XDG_CACHE_HOME"));
        CHECK_OK(base_store_dir(NULL, &s));
        CHECK_STREQ(s, "/home/u/.cache/imgbuild");
        free(s);
        CHECK_OK(unsetenv("HOME"));
        CHECK(base_store_dir(NULL, &s) == -ENOENT);
}

static void test_key_and_lookup(void) {
        char dir[] = "/tmp/test-base-XXXXXX", agent[300], k1[SHA256_HEX_SIZE], k2[SHA256_HEX_SIZE];
        char *packages[] = { (char *) "systemd-sysv", (char *) "udev", NULL };
        char *modules[] = { (char *) "virtio_blk", NULL };
        base_spec spec = { .definition = "suite bookworm\n", .suite = "bookworm", .mirror = "http://deb.debian.org/debian",
                           .variant = "minbase", .packages = packages, .initrd_modules = modules,
                           .disk_size = 2ull << 30 };
        base_image b = {};

        CHECK(mkdtemp(dir));
        snprintf(agent, sizeof(agent), "%s/bootagent", dir);
        CHECK_OK(write_file_atomic(agent, "v1", 2, 0755, (uid_t) -1, (gid_t) -1));

        CHECK_OK(base_key(&spec, agent, k1));
        CHECK_OK(base_key(&spec, agent, k2));
        CHECK_STREQ(k1, k2);
        CHECK(strlen(k1) == 64);

        /* A different bootagent binary or definition is a different base image. */
        CHECK_OK(write_file_atomic(agent, "v2", 2, 0755, (uid_t) -1, (gid_t) -1));
        CHECK_OK(base_key(&spec, agent, k2));
        CHECK(!streq(k1, k2));
        CHECK_OK(base_key(&spec, agent, k1));
        spec.definition = "suite bookworm\npackages vim\n";
        CHECK_OK(base_key(&spec, agent, k2));
        CHECK(!streq(k1, k2));

        /* Lookup finds an entry only once its disk is in place. */
        CHECK(base_lookup(dir, &spec, agent, &b) == 0);
        char disk[400];
        snprintf(disk, sizeof(disk), "%s/base/%s", dir, k2);
        CHECK_OK(mkdir_p(disk, 0755));
        CHECK(base_lookup(dir, &spec, agent, &b) == 0);
        snprintf(disk, sizeof(disk), "%s/base/%s/disk.qcow2", dir, k2);
        CHECK_OK(write_file_atomic(disk, "", 0, 0644, (uid_t) -1, (gid_t) -1));
        CHECK(base_lookup(dir, &spec, agent, &b) == 1);
        CHECK_STREQ(b.key, k2);
        CHECK_STREQ(b.disk, disk);
        CHECK(strstr(b.kernel, "/vmlinuz") && strstr(b.initrd, "/initrd.img"));
        base_image_done(&b);

        /* The bootagent found by explicit path is made absolute. */
        char *found = NULL;
        CHECK_OK(base_find_bootagent(agent, &found));
        CHECK_STREQ(found, agent);
        free(found);
        CHECK(base_find_bootagent("/nonexistent/bootagent", &found) == -ENOENT);
        CHECK_OK(rm_rf(dir));
}

int main(void) {
        test_key_and_lookup();
        test_store_dir();
        return 0;
}
