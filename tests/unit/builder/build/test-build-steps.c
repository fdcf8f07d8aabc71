/* builder/build/build-steps: a recipe's copy, download and run steps in a real VM, run by the
 * qemu provider (qemu_build_steps_run; only when IMGBUILD_TEST_BASE_DIR names a built base image,
 * as tests/e2e/test-recipe-steps.sh does); without it, only what needs no VM. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build-steps.h"
#include "export.h"
#include "check.h"
#include "crypto.h"
#include "fs.h"
#include "qemu-build.h"
#include "runner.h"
#include "spawn.h"
#include "strv.h"

static char root[] = "/var/tmp/test-build-steps-XXXXXX";

static void put(const char *rel, const char *text, mode_t mode) {
        char path[512], dir[512];
        snprintf(path, sizeof(path), "%s/%s", root, rel);
        snprintf(dir, sizeof(dir), "%s", path);
        *strrchr(dir, '/') = '\0';
        CHECK_OK(mkdir_p(dir, 0755));
        CHECK_OK(write_file_atomic(path, text, strlen(text), mode, (uid_t) -1, (gid_t) -1));
}

static Recipe *parse(const char *text) {
        char path[512];
        Diagnostics diag = {};
        Recipe *recipe = NULL;
        RecipeOptions o = { .no_environment = true, .require_values = true };

        put("recipes/t.recipe", text, 0644);
        snprintf(path, sizeof(path), "%s/recipes/t.recipe", root);
        int r = recipe_parse_file(path, &o, &diag, &recipe);
        if (r < 0)
                diagnostics_print(&diag, stderr);
        diagnostics_free(&diag);
        CHECK_OK(r);
        return recipe;
}

static void test_vm(const char *base_dir) {
        char store[600], kernel[600], initrd[600], disk[600], hex[SHA256_HEX_SIZE];
        const char *key = strrchr(base_dir, '/') + 1;
        base_image base = { .dir = (char *) base_dir, .kernel = kernel, .initrd = initrd, .disk = disk };
        snprintf(base.key, sizeof(base.key), "%s", key);
        snprintf(kernel, sizeof(kernel), "%s/vmlinuz", base_dir);
        snprintf(initrd, sizeof(initrd), "%s/initrd.img", base_dir);
        snprintf(disk, sizeof(disk), "%s/disk.qcow2", base_dir);
        snprintf(store, sizeof(store), "%s/store", root);

        put("recipes/files/conf", "secret-ish\n", 0644);
        put("recipes/files/dir/a.sh", "#!/bin/sh\necho from-a\n", 0755);
        put("recipes/files/dir/sub/b.txt", "bee\n", 0640);
        put("recipes/files/dl.sh", "#!/bin/sh\necho downloaded\n", 0644);
        char dl[600];
        snprintf(dl, sizeof(dl), "%s/recipes/files/dl.sh", root);
        CHECK_OK(sha256_file_hex(dl, hex));

        char text[2048];
        snprintf(text, sizeof(text),
                 "template t 1\n"
                 "base debian-12\n"
                 "qemu disk=3G\n"
                 "env GREETING=hello\n"
                 "copy files/conf /etc/t/conf mode=0600 owner=nobody:nogroup\n"
                 "copy files/dir /opt/t owner=daemon:daemon\n"
                 "download files/dl.sh /usr/local/bin/dl sha256=%s mode=0755\n"
                 "run echo \"greeting=$GREETING\"; stat -c 'conf %%a %%U:%%G' /etc/t/conf; "
                 "stat -c 'a.sh %%a %%U' /opt/t/a.sh; stat -c 'b.txt %%a' /opt/t/sub/b.txt; /opt/t/a.sh; /usr/local/bin/dl; "
                 "test $(($(stat -f -c '%%b*%%S' /))) -gt 2800000000 && echo grown\n",
                 hex);
        _cleanup_(recipe_freep) Recipe *recipe = parse(text);
        CHECK(recipe->n_steps == 4);

        /* The steps' output goes to our stdout: catch it. */
        int out = memfd_create("steps-out", MFD_CLOEXEC);
        CHECK(out >= 0);
        fflush(stdout);
        int saved = dup(STDOUT_FILENO);
        CHECK(saved >= 0 && dup2(out, STDOUT_FILENO) == STDOUT_FILENO);
        _cleanup_(build_result_done) build_result res = {};
        int r = qemu_build_steps_run(recipe, &base, store, NULL, &res);
        CHECK(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO);
        close(saved);
        CHECK_OK(r);
        char got[4096] = {};
        CHECK(pread(out, got, sizeof(got) - 1, 0) > 0);
        close(out);
        fprintf(stderr, "steps printed:\n%s", got);
        CHECK_STREQ(got, "greeting=hello\n"
                         "conf 600 nobody:nogroup\n"
                         "a.sh 755 daemon\n"
                         "b.txt 640\n"
                         "from-a\n"
                         "downloaded\n"
                         "grown\n");
        CHECK(strstr(res.disk, "/layers/"));
        CHECK(res.n_steps == 5); /* the recipe's four, then hygiene */
        for (size_t i = 0; i < res.n_steps; i++)
                CHECK(!res.steps[i].cached && res.steps[i].seconds > 0);
        CHECK(strneq(res.steps[4].name, "hygiene", 7));

        /* The export is one flat image holding the steps' files, after hygiene. */
        char exported[700], raw[700];
        snprintf(exported, sizeof(exported), "%s/t.qcow2", root);
        snprintf(raw, sizeof(raw), "%s/t.raw", root);
        CHECK_OK(build_export(res.disk, exported, NULL));
        char *info[] = { (char *) "qemu-img", (char *) "info", (char *) "--output=json", exported, NULL };
        buf qi = BUF_INIT(1 << 20);
        int status;
        CHECK_OK(spawn_capture(info, NULL, &qi, &status));
        CHECK(status == 0 && !strstr(qi.data, "backing-filename"));
        buf_free(&qi);
        char *to_raw[] = { (char *) "qemu-img", (char *) "convert", (char *) "-O", (char *) "raw", exported, raw, NULL };
        CHECK_OK(spawn_run(to_raw, NULL, &status));
        CHECK(status == 0);
        char *conf[] = { (char *) "debugfs", (char *) "-R", (char *) "cat /etc/t/conf", raw, NULL };
        qi = BUF_INIT(1 << 20);
        CHECK_OK(spawn_capture(conf, NULL, &qi, &status));
        CHECK_STREQ(qi.data, "secret-ish\n");
        buf_free(&qi);
        char *mid[] = { (char *) "debugfs", (char *) "-R", (char *) "stat /etc/machine-id", raw, NULL };
        qi = BUF_INIT(1 << 20);
        CHECK_OK(spawn_capture(mid, NULL, &qi, &status));
        CHECK(strstr(qi.data, "Size: 0\n"));
        buf_free(&qi);
        CHECK(unlink(raw) == 0);

        /* The manifest names the output by checksum and lists every step. */
        char manifest[700], want[200];
        snprintf(manifest, sizeof(manifest), "%s/manifest.json", root);
        CHECK_OK(build_manifest_write(manifest, recipe, &base, &res, exported, NULL));
        char *m = NULL, out_hex[SHA256_HEX_SIZE];
        CHECK_OK(read_file(manifest, 1 << 20, &m, NULL));
        CHECK_OK(sha256_file_hex(exported, out_hex));
        snprintf(want, sizeof(want), "\"sha256\":\"%s\"", out_hex);
        CHECK(strstr(m, want));
        snprintf(want, sizeof(want), "\"key\":\"%s\"", res.steps[0].key);
        CHECK(strstr(m, want));
        CHECK(strstr(m, "\"name\":\"t\"") && strstr(m, "\"linux-image-cloud-amd64\""));
        /* The installed packages, as dpkg in the guest saw them. */
        CHECK(json_array_size(res.packages) > 100);
        CHECK(strstr(m, "{\"arch\":\"amd64\",\"name\":\"linux-image-cloud-amd64\",\"version\":"));
        free(m);

        /* Rebuild: every step cached, nothing boots. */
        _cleanup_(build_result_done) build_result again = {};
        CHECK_OK(qemu_build_steps_run(recipe, &base, store, NULL, &again));
        CHECK(again.n_steps == 5 && again.steps[0].cached && again.steps[4].cached);
        CHECK(json_equal(again.packages, res.packages));
        CHECK_STREQ(again.disk, res.disk);

        /* A pin the file does not match fails the download step (a new key: it runs again and
         * checks); the copies before it stay cached. */
        char wrong[SHA256_HEX_SIZE];
        memset(wrong, 'a', SHA256_HEX_SIZE - 1);
        wrong[SHA256_HEX_SIZE - 1] = '\0';
        char *pin = strstr(text, hex);
        CHECK(pin);
        memcpy(pin, wrong, SHA256_HEX_SIZE - 1);
        _cleanup_(recipe_freep) Recipe *changed = parse(text);
        CHECK(qemu_build_steps_run(changed, &base, store, NULL, NULL) == -EBADMSG);
}

/* Read all of fd from the start (a memfd the test wrote into). */
static char *fd_text(int fd) {
        static char text[8192];
        ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
        CHECK(n >= 0);
        text[n] = '\0';
        return text;
}

/* Both checks of a download step's content, without a VM: the host's for a local source and the
 * guest's script (run here, on the host, with curl on a file:// URL), for sha256 and sha512. A
 * mismatch names both digests and installs nothing. "abc" has the FIPS 180-2 digests. */
static void test_download_checks(void) {
        static const char abc256[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        static const char abc512[] = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                                     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
        char wrong512[SHA512_HEX_SIZE], text[1024], src[600], url[620], dest[600], want[1024];
        memset(wrong512, 'a', SHA512_HEX_SIZE - 1);
        wrong512[SHA512_HEX_SIZE - 1] = '\0';
        put("recipes/files/abc", "abc", 0644);
        snprintf(src, sizeof(src), "%s/recipes/files/abc", root);
        snprintf(url, sizeof(url), "file://%s", src);

        struct { const char *algo, *good; } cases[] = { { "sha256", abc256 }, { "sha512", abc512 } };
        for (size_t i = 0; i < 2; i++) {
                snprintf(text, sizeof(text), "template d 1\nbase debian-12\ndownload files/abc /x %s=%s\n",
                         cases[i].algo, cases[i].good);
                _cleanup_(recipe_freep) Recipe *r = parse(text);
                CHECK_OK(build_download_check_local(&r->steps[0]));
        }

        /* The host check: a wrong sha512 fails with both digests in the message. */
        snprintf(text, sizeof(text), "template d 1\nbase debian-12\ndownload files/abc /x sha512=%s\n", wrong512);
        _cleanup_(recipe_freep) Recipe *wrong = parse(text);
        int err = memfd_create("check-err", MFD_CLOEXEC);
        CHECK(err >= 0);
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        CHECK(saved >= 0 && dup2(err, STDERR_FILENO) == STDERR_FILENO);
        int r = build_download_check_local(&wrong->steps[0]);
        fflush(stderr);
        CHECK(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
        close(saved);
        CHECK(r == -EBADMSG);
        snprintf(want, sizeof(want), "has sha512 %s, the recipe pins %s", abc512, wrong512);
        CHECK(strstr(fd_text(err), want));
        close(err);

        /* The guest script: good digests install DEST with the mode; a wrong one exits 1 with both
         * digests on stderr and leaves DEST absent. */
        for (size_t i = 0; i < 3; i++) {
                const char *algo = i == 0 ? "sha256" : "sha512", *pin = i == 0 ? abc256 : i == 1 ? abc512 : wrong512;
                snprintf(dest, sizeof(dest), "%s/guest/%zu/bin/x", root, i);
                char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) build_download_script, (char *) "sh", url,
                                 (char *) algo, (char *) pin, dest, (char *) "0750", NULL };
                err = memfd_create("script-err", MFD_CLOEXEC);
                CHECK(err >= 0);
                spawn_options o = { .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = err };
                int status = -1;
                CHECK_OK(spawn_run(argv, &o, &status));
                struct stat st;
                if (i < 2) {
                        if (status != 0)
                                fprintf(stderr, "%s", fd_text(err));
                        CHECK(status == 0);
                        CHECK(stat(dest, &st) == 0 && (st.st_mode & 07777) == 0750 && st.st_size == 3);
                } else {
                        CHECK(status == 1);
                        snprintf(want, sizeof(want), "%s has sha512 %s, the recipe pins %s", url, abc512, wrong512);
                        CHECK(strstr(fd_text(err), want));
                        CHECK(stat(dest, &st) < 0 && errno == ENOENT);
                }
                close(err);
        }
}

static void test_packages_from_dpkg(void) {
        json_t *list = NULL;
        CHECK_OK(build_packages_from_dpkg("ii  zlib1g 1:1.2.13.dfsg-1 amd64\n"
                                          "rc  etcd-old 3.3 amd64\n"
                                          "ii  etcd-server 3.4.23-4+b6 amd64\n"
                                          "ii  base-files 12.4+deb12u8 amd64\n", &list));
        char *text = json_dump_compact(list);
        CHECK_STREQ(text, "[{\"arch\":\"amd64\",\"name\":\"base-files\",\"version\":\"12.4+deb12u8\"},"
                          "{\"arch\":\"amd64\",\"name\":\"etcd-server\",\"version\":\"3.4.23-4+b6\"},"
                          "{\"arch\":\"amd64\",\"name\":\"zlib1g\",\"version\":\"1:1.2.13.dfsg-1\"}]");
        free(text);
        json_decref(list);
        CHECK_OK(build_packages_from_dpkg("", &list));
        CHECK(json_array_size(list) == 0);
        json_decref(list);
        CHECK(build_packages_from_dpkg("ii  broken\n", &list) == -EBADMSG);
}

/* A copied file edited after the keys were computed (so what the step sends is not what its key
 * covers): the step fails with a message that names the file, so its layer is not committed. */
static void test_inputs_changed(void) {
        char path[600], expected[800];
        put("recipes/files/motd", "as hashed\n", 0644);
        _cleanup_(recipe_freep) Recipe *recipe = parse("template c 1\nbase debian-12\nrun true\n"
                                                       "copy files/motd /etc/motd\n");
        char **keys = NULL;
        RecipeStepInputs *in = NULL;
        CHECK_OK(recipe_step_keys_inputs(recipe, "base", &keys, &in, NULL));
        CHECK_OK(build_step_inputs_unchanged(&recipe->steps[1], &in[1]));

        put("recipes/files/motd", "edited while the build ran\n", 0644);
        int saved = dup(STDERR_FILENO), log = memfd_create("log", MFD_CLOEXEC);
        CHECK(saved >= 0 && log >= 0 && dup2(log, STDERR_FILENO) == STDERR_FILENO);
        int r = build_step_inputs_unchanged(&recipe->steps[1], &in[1]);
        int q = build_step_inputs_unchanged(&recipe->steps[0], &in[0]);
        CHECK(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
        close(saved);
        CHECK(r == -ESTALE);
        CHECK_OK(q); /* the run step reads no host file */
        char text[4096] = "";
        CHECK(pread(log, text, sizeof(text) - 1, 0) > 0);
        close(log);
        snprintf(path, sizeof(path), "%s/recipes/t.recipe", root);
        snprintf(expected, sizeof(expected), "%s:4: %s/recipes/files/motd changed during the build; run again", path,
                 root);
        if (!strstr(text, expected))
                fprintf(stderr, "got: %s\nexpected: %s\n", text, expected);
        CHECK(strstr(text, expected));
        in = recipe_step_inputs_free(in, recipe->n_steps);
        strv_free(keys);
}

int main(void) {
        const char *src = getenv("IMGBUILD_SOURCE_DIR");
        const char *base_dir = getenv("IMGBUILD_TEST_BASE_DIR");
        char images[600], link[600];

        if (!src)
                TEST_SKIP("IMGBUILD_SOURCE_DIR not set (run through ctest)");
        CHECK(mkdtemp(root));
        test_packages_from_dpkg();
        /* The recipe finds its base as images/NAME next to its own directory. */
        snprintf(images, sizeof(images), "%s/images", src);
        snprintf(link, sizeof(link), "%s/images", root);
        CHECK(symlink(images, link) == 0);
        test_inputs_changed();

        /* No VM needed: a step with a variable that has no value is refused before anything runs. */
        Diagnostics diag = {};
        Recipe *recipe = NULL;
        RecipeOptions o = { .no_environment = true };
        put("recipes/u.recipe", "template u 1\nbase debian-12\nvar missing\nrun echo ${missing}\n", 0644);
        char path[600];
        snprintf(path, sizeof(path), "%s/recipes/u.recipe", root);
        CHECK_OK(recipe_parse_file(path, &o, &diag, &recipe));
        diagnostics_free(&diag);
        base_image none = { .disk = (char *) "/nonexistent" };
        CHECK(qemu_build_steps_run(recipe, &none, "/nonexistent-store", NULL, NULL) == -EINVAL);
        recipe_free(recipe);
        test_download_checks();

        if (base_dir)
                test_vm(base_dir);
        CHECK_OK(rm_rf(root));
        if (!base_dir) {
                /* The host half passed; the steps themselves need a VM: say so, as ctest's skip. */
                fprintf(stderr, "skipped: the VM half needs IMGBUILD_TEST_BASE_DIR (tests/e2e/test-recipe-steps.sh runs it)\n");
                return 77;
        }
        return 0;
}
