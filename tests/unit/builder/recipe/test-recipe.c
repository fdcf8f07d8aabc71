/* Recipe parser, CLI and cache keys. Golden files under recipes/: for every bad-*.recipe the
 * exact stderr of "imgbuild validate" in bad-*.expected; for every good-*.recipe the stdout of
 * "imgbuild inspect --json" in good-*.json and of "imgbuild inspect" in good-*.txt. Run with
 * IMGBUILD_UPDATE_GOLDEN=1 to rewrite them (then review the diff). */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "fs.h"
#include "image.h"
#include "parse-util.h"
#include "recipe.h"
#include "strv.h"

static char *source_dir;

static char *read_fd_all(int fd) {
        char *data = NULL;
        size_t len = 0;
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        for (;;) {
                char b[4096];
                ssize_t n = read(fd, b, sizeof(b));
                CHECK(n >= 0);
                if (n == 0)
                        break;
                data = realloc(data, len + (size_t) n + 1);
                CHECK(data);
                memcpy(data + len, b, (size_t) n);
                len += (size_t) n;
        }
        if (!data)
                data = strdup("");
        else
                data[len] = '\0';
        return data;
}

/* Run imgbuild in-process with stdout and stderr captured. */
static int run_cli(char **ret_out, char **ret_err, ...) {
        char *argv[32] = { (char *) "imgbuild" };
        int argc = 1;
        va_list ap;
        va_start(ap, ret_err);
        for (const char *a; (a = va_arg(ap, const char *));)
                argv[argc++] = (char *) a;
        va_end(ap);

        FILE *out = tmpfile(), *err = tmpfile();
        CHECK(out && err);
        fflush(stdout);
        fflush(stderr);
        int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
        CHECK(dup2(fileno(out), STDOUT_FILENO) >= 0 && dup2(fileno(err), STDERR_FILENO) >= 0);
        int rc = imgbuild_main(argc, argv);
        fflush(stdout);
        fflush(stderr);
        CHECK(dup2(saved_out, STDOUT_FILENO) >= 0 && dup2(saved_err, STDERR_FILENO) >= 0);
        close(saved_out);
        close(saved_err);
        *ret_out = read_fd_all(fileno(out));
        *ret_err = read_fd_all(fileno(err));
        fclose(out);
        fclose(err);
        return rc;
}

static void golden(const char *path, const char *actual) {
        if (getenv("IMGBUILD_UPDATE_GOLDEN")) {
                FILE *f = fopen(path, "we");
                CHECK(f);
                fputs(actual, f);
                CHECK(fclose(f) == 0);
                return;
        }
        char *expected = NULL;
        CHECK_OK(read_file(path, 1 << 20, &expected, NULL));
        if (!streq(expected, actual)) {
                fprintf(stderr, "golden mismatch for %s\n--- expected\n%s--- actual\n%s---\n", path, expected, actual);
                exit(1);
        }
        free(expected);
}

static char *replace_suffix(const char *name, const char *suffix) {
        const char *dot = strrchr(name, '.');
        char *s;
        CHECK(asprintf(&s, "%.*s%s", (int) (dot - name), name, suffix) > 0);
        return s;
}

static void test_golden(void) {
        glob_t g;
        size_t n_bad = 0, n_good = 0;

        CHECK(glob("*.recipe", 0, NULL, &g) == 0);
        for (size_t i = 0; i < g.gl_pathc; i++) {
                const char *name = g.gl_pathv[i];
                char *out, *err;
                if (startswith(name, "bad-")) {
                        char *expected = replace_suffix(name, ".expected");
                        int rc = run_cli(&out, &err, "validate", name, NULL);
                        if (rc != EXIT_RECIPE_ERROR)
                                fprintf(stderr, "%s: exit %d\n%s", name, rc, err);
                        CHECK(rc == EXIT_RECIPE_ERROR);
                        CHECK_STREQ(out, "");
                        golden(expected, err);
                        free(expected);
                        n_bad++;
                } else if (startswith(name, "good-")) {
                        char *json = replace_suffix(name, ".json"), *txt = replace_suffix(name, ".txt");
                        int rc = run_cli(&out, &err, "inspect", "--json", name, NULL);
                        if (rc != 0)
                                fprintf(stderr, "%s: exit %d\n%s", name, rc, err);
                        CHECK(rc == 0);
                        CHECK_STREQ(err, "");
                        golden(json, out);
                        /* Secret values never reach the output. */
                        CHECK(!strstr(out, "hunter2"));
                        free(out);
                        free(err);
                        CHECK(run_cli(&out, &err, "inspect", name, NULL) == 0);
                        golden(txt, out);
                        CHECK(!strstr(out, "hunter2"));
                        free(json);
                        free(txt);
                        n_good++;
                } else
                        continue;
                free(out);
                free(err);
        }
        globfree(&g);
        CHECK(n_bad >= 5 && n_good >= 2);

        /* A secret given on the command line stays hidden; its source is shown. */
        char *out, *err;
        CHECK(run_cli(&out, &err, "inspect", "--json", "--var", "token=s3kr1t", "good-full.recipe", NULL) == 0);
        CHECK(!strstr(out, "s3kr1t"));
        CHECK(strstr(out, "\"source\": \"command line\""));
        free(out);
        free(err);

        /* A bad agent config stops a build before it looks at the store, let alone boots. */
        CHECK(run_cli(&out, &err, "build", "--cache-dir", "/dev/null/store", "bad-agent-config.recipe", NULL) ==
              EXIT_RECIPE_ERROR);
        CHECK(startswith(err, "files/bad-agent.conf:5: error: unknown key 'bogus' in [agent]\n"));
        CHECK(!strstr(err, "/dev/null/store"));
        free(out);
        free(err);

        /* validate goes on after a bad recipe and reports the good ones. */
        CHECK(run_cli(&out, &err, "validate", "bad-utf8.recipe", "good-minimal.recipe", NULL) == EXIT_RECIPE_ERROR);
        CHECK_STREQ(out, "good-minimal.recipe: ok\n");
        CHECK(startswith(err, "bad-utf8.recipe:4:10: error: invalid UTF-8\n"));
        free(out);
        free(err);
}

/* The shipped recipes must validate, from the repository root. */
static void test_real_recipes(void) {
        char *out, *err;
        CHECK(chdir(source_dir) == 0);
        int rc = run_cli(&out, &err, "validate", "recipes/control-plane.recipe", "recipes/etcd.recipe",
                         "recipes/node.recipe", "recipes/vault.recipe", NULL);
        if (rc != 0)
                fprintf(stderr, "%s", err);
        CHECK(rc == 0);
        CHECK_STREQ(out, "recipes/control-plane.recipe: ok\nrecipes/etcd.recipe: ok\n"
                         "recipes/node.recipe: ok\nrecipes/vault.recipe: ok\n");
        CHECK_STREQ(err, "");
        free(out);
        free(err);

        /* etcd builds with defaults only (no unreachable download): the recipe is accepted and the
         * build gets as far as the image store (an impossible one here; the real build is
         * tests/e2e/test-build-etcd.sh). */
        rc = run_cli(&out, &err, "build", "--cache-dir", "/dev/null/store", "recipes/etcd.recipe", NULL);
        CHECK(rc == EXIT_FAILURE_GENERIC);
        CHECK_STREQ(err, "imgbuild: error: Failed to look up the base image in /dev/null/store: Not a directory\n");
        free(out);
        free(err);
        /* The Kubernetes recipes pin a release with its published sha512s: they build with
         * defaults only too (here, as far as the store). */
        static const char *const kube_recipes[] = { "recipes/control-plane.recipe", "recipes/node.recipe" };
        for (size_t i = 0; i < 2; i++) {
                rc = run_cli(&out, &err, "build", "--cache-dir", "/dev/null/store", kube_recipes[i], NULL);
                CHECK(rc == EXIT_FAILURE_GENERIC);
                CHECK_STREQ(err, "imgbuild: error: Failed to look up the base image in /dev/null/store: Not a directory\n");
                free(out);
                free(err);
        }
        /* The shorthand and build options. */
        rc = run_cli(&out, &err, "recipes/etcd.recipe", "--plan", "--json", "--cache-dir", "/dev/null/store", NULL);
        CHECK(rc == EXIT_FAILURE_GENERIC);
        CHECK(strstr(err, "/dev/null/store: Not a directory"));
        free(out);
        free(err);
        /* vault needs its sha256 to build, not to validate. */
        rc = run_cli(&out, &err, "build", "recipes/vault.recipe", NULL);
        CHECK(rc == EXIT_RECIPE_ERROR);
        CHECK(strstr(err, "recipes/vault.recipe:14:49: error: variable 'vault_sha256' has no value"));
        free(out);
        free(err);
        /* An unknown --var is an error. */
        rc = run_cli(&out, &err, "validate", "--var", "etcd_versoin=1", "recipes/etcd.recipe", NULL);
        CHECK(rc == EXIT_RECIPE_ERROR);
        CHECK_STREQ(err, "recipes/etcd.recipe: error: --var etcd_versoin: no such variable in this recipe\n");
        free(out);
        free(err);
        /* Unknown commands, usage. */
        CHECK(run_cli(&out, &err, "valdate", NULL) == EXIT_FAILURE_GENERIC);
        CHECK_STREQ(err, "imgbuild: error: unknown command 'valdate'; did you mean 'validate'?\n");
        free(out);
        free(err);
        CHECK(run_cli(&out, &err, "inspect", "--help", NULL) == 0);
        CHECK(strstr(out, "Usage: imgbuild inspect"));
        free(out);
        free(err);

        Diagnostics diag = {};
        Image *img = NULL;
        CHECK_OK(image_parse_file("images/debian-12/image.conf", &diag, &img));
        CHECK(diag.n == 0);
        CHECK_STREQ(img->suite, "bookworm");
        CHECK_STREQ(img->variant, "minbase");
        CHECK(strv_contains(img->packages, "linux-image-cloud-amd64"));
        CHECK(strv_contains(img->initrd_modules, "virtio_console"));
        CHECK(img->disk_size == 2ull << 30);
        CHECK(strv_contains(img->dpkg_paths, "path-exclude=/usr/share/man/*"));
        image_free(img);
        diagnostics_free(&diag);

        /* dpkg's path filters keep their order: a later include wins over an earlier exclude. */
        static const char conf[] = "suite bookworm\nmirror http://deb.debian.org/debian\npackages udev\n"
                                   "path-exclude /usr/share/doc/* /usr/share/man/*\npath-include /usr/share/doc/*/copyright\n"
                                   "path-exclude /usr/share/locale/*\n";
        CHECK_OK(image_parse_buffer("image.conf", conf, strlen(conf), &diag, &img));
        CHECK(strv_length(img->dpkg_paths) == 4);
        CHECK_STREQ(img->dpkg_paths[0], "path-exclude=/usr/share/doc/*");
        CHECK_STREQ(img->dpkg_paths[1], "path-exclude=/usr/share/man/*");
        CHECK_STREQ(img->dpkg_paths[2], "path-include=/usr/share/doc/*/copyright");
        CHECK_STREQ(img->dpkg_paths[3], "path-exclude=/usr/share/locale/*");
        image_free(img);
        diagnostics_free(&diag);
        static const char bare[] = "suite bookworm\nmirror http://deb.debian.org/debian\npackages udev\npath-include\n";
        CHECK(image_parse_buffer("image.conf", bare, strlen(bare), &diag, &img) == -EINVAL);
        CHECK(diag.n == 1 && diag.items[0].line == 4);
        CHECK_STREQ(diag.items[0].message, "'path-include' needs at least one absolute path pattern");
        diagnostics_free(&diag);
}

static Recipe *parse_text(const char *text, const RecipeOptions *o, int expect) {
        Diagnostics diag = {};
        Recipe *r = NULL;
        int k = recipe_parse_buffer("test.recipe", text, strlen(text), o, &diag, &r);
        if (k != expect)
                diagnostics_print(&diag, stderr);
        CHECK(k == expect);
        diagnostics_free(&diag);
        return r;
}

static void write_text(const char *path, const char *text) {
        CHECK_OK(write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1));
}

static void test_override_order(void) {
        static const char *text = "template t 1\nbase b\nvar x = \"default\"\nsecret var s\nrun echo ${x}\n";
        char dir[] = "/tmp/test-recipe-XXXXXX", f1[64], f2[64];
        CHECK(mkdtemp(dir));
        snprintf(f1, sizeof(f1), "%s/one.vars", dir);
        snprintf(f2, sizeof(f2), "%s/two.vars", dir);
        write_text(f1, "# first\nx = \"file one\"\nunrelated = \"ignored\"\n");
        write_text(f2, "x=file-two\n");

        RecipeOptions o = { .no_host_files = true };
        unsetenv("IMGBUILD_VAR_x");
        Recipe *r = parse_text(text, &o, 0);
        CHECK_STREQ(r->vars[0].value, "default");
        CHECK(r->vars[0].source == RECIPE_VAR_DEFAULT);
        CHECK(!r->vars[1].value && r->vars[1].required && r->vars[1].secret);
        CHECK_STREQ(r->steps[0].command, "echo default");
        recipe_free(r);

        setenv("IMGBUILD_VAR_x", "from env", 1);
        r = parse_text(text, &o, 0);
        CHECK_STREQ(r->vars[0].value, "from env");
        CHECK(r->vars[0].source == RECIPE_VAR_ENVIRONMENT);
        recipe_free(r);

        o.no_environment = true;
        r = parse_text(text, &o, 0);
        CHECK_STREQ(r->vars[0].value, "default");
        recipe_free(r);
        o.no_environment = false;

        char *files[] = { f1, NULL };
        o.var_files = files;
        r = parse_text(text, &o, 0);
        CHECK_STREQ(r->vars[0].value, "file one");
        CHECK(r->vars[0].source == RECIPE_VAR_FILE);
        recipe_free(r);

        char *two_files[] = { f1, f2, NULL };
        o.var_files = two_files;
        r = parse_text(text, &o, 0);
        CHECK_STREQ(r->vars[0].value, "file-two");
        recipe_free(r);

        char *vars[] = { (char *) "x=cli one", (char *) "s=pssst", (char *) "x=cli two", NULL };
        o.vars = vars;
        r = parse_text(text, &o, 0);
        CHECK_STREQ(r->vars[0].value, "cli two");
        CHECK(r->vars[0].source == RECIPE_VAR_COMMAND_LINE);
        CHECK_STREQ(r->vars[1].value, "pssst");
        CHECK_STREQ(r->steps[0].command, "echo cli two");
        recipe_free(r);

        /* A build needs every referenced variable; validate does not. */
        static const char *needs = "template t 1\nbase b\nvar y\nrun echo ${y}\n";
        o.vars = NULL;
        o.var_files = NULL;
        r = parse_text(needs, &o, 0);
        CHECK(r->steps[0].unresolved);
        CHECK_STREQ(r->steps[0].command, "echo ${y}");
        recipe_free(r);
        /* ... also through another variable's default. */
        r = parse_text("template t 1\nbase b\nvar y\nvar z = \"a-${y}\"\ncopy ${z} /z\n", &o, 0);
        CHECK(!r->vars[1].value && !r->vars[1].required && r->vars[1].source == RECIPE_VAR_UNSET);
        CHECK(r->steps[0].unresolved);
        recipe_free(r);
        o.require_values = true;
        parse_text(needs, &o, -EINVAL);
        char *y[] = { (char *) "y=1", NULL };
        o.vars = y;
        r = parse_text(needs, &o, 0);
        CHECK_STREQ(r->steps[0].command, "echo 1");
        recipe_free(r);

        /* Unknown names: an error on the command line, a warning in a var file. */
        char *unknown[] = { (char *) "nope=1", NULL };
        o.vars = unknown;
        o.require_values = false;
        parse_text(text, &o, -EINVAL);
        o.vars = NULL;
        o.var_files = files;
        Diagnostics diag = {};
        CHECK(recipe_parse_buffer("test.recipe", text, strlen(text), &o, &diag, &r) == 0);
        CHECK(diag.n == 1 && diag.items[0].warning && diag.items[0].line == 3);
        CHECK(strstr(diag.items[0].message, "'unrelated' is not declared"));
        diagnostics_free(&diag);
        recipe_free(r);

        /* Mistakes in a var file are reported at their place. */
        char bad[80];
        snprintf(bad, sizeof(bad), "%s/bad.vars", dir);
        write_text(bad, "x = \"ok\"\n  what is this\n9x=1\n");
        char *bad_files[] = { bad, NULL };
        o.var_files = bad_files;
        CHECK(recipe_parse_buffer("test.recipe", text, strlen(text), &o, &diag, &r) == -EINVAL);
        CHECK(diag.n == 2);
        CHECK(diag.items[0].line == 2 && diag.items[0].col == 3);
        CHECK_STREQ(diag.items[0].message, "expected NAME = \"VALUE\"");
        CHECK(diag.items[1].line == 3 && diag.items[1].col == 1);
        /* Var files may hold secrets: their lines are never echoed. */
        CHECK(!diag.items[0].source_line && !diag.items[1].source_line);
        CHECK_STREQ(diag.items[1].message, "invalid variable name '9x'");
        diagnostics_free(&diag);
        unlink(bad);

        unsetenv("IMGBUILD_VAR_x");
        unlink(f1);
        unlink(f2);
        rmdir(dir);
}

static char **keys_of(const char *recipe_path, const char *base_digest) {
        Diagnostics diag = {};
        Recipe *r = NULL;
        char **keys = NULL;
        if (recipe_parse_file(recipe_path, NULL, &diag, &r) < 0) {
                diagnostics_print(&diag, stderr);
                CHECK(false);
        }
        CHECK_OK(recipe_step_keys(r, base_digest, &keys, NULL));
        CHECK(strv_length(keys) == r->n_steps);
        recipe_free(r);
        diagnostics_free(&diag);
        return keys;
}

/* A fresh directory dir (a mkdtemp template), made the current one, with a base images/b and
 * the files the keys tests copy: r/files/d/{one,sub/two} and r/files/f. */
static void make_tree(char *dir) {
        CHECK(mkdtemp(dir));
        CHECK(chdir(dir) == 0);
        CHECK_OK(mkdir_p("images/b", 0755));
        CHECK_OK(mkdir_p("r/files/d/sub", 0755));
        write_text("images/b/image.conf", "suite bookworm\nmirror http://deb.debian.org/debian\npackages udev\n");
        write_text("r/files/d/one", "one\n");
        write_text("r/files/d/sub/two", "two\n");
        write_text("r/files/f", "f\n");
}

static void test_cache_keys(void) {
        char dir[] = "/tmp/test-recipe-XXXXXX", path[256];
        make_tree(dir);
        static const char *recipe = "template t 1\nbase b\n"
                                    "packages curl\n"                   /* 0 */
                                    "copy files/d /opt/d\n"              /* 1 */
                                    "run echo hi\n"                      /* 2 */
                                    "copy files/f /etc/f mode=0600\n"    /* 3 */
                                    "run echo bye\n";                    /* 4 */
        write_text("r/t.recipe", recipe);

        /* The canonical encoding is the documented netstring form, and copy lists every file. */
        Diagnostics diag = {};
        Recipe *r = NULL;
        CHECK_OK(recipe_parse_file("r/t.recipe", NULL, &diag, &r));
        CHECK_STREQ(r->steps[2].canonical, "15:imgbuild-step/1,3:run,1:1,7:echo hi,1:0,");
        CHECK_STREQ(r->steps[3].canonical,
                    "15:imgbuild-step/1,4:copy,1:4,7:files/f,6:/etc/f,9:mode=0600,15:owner=root:root,1:0,");
        CHECK(strv_length(r->steps[1].host_files) == 2);
        CHECK_STREQ(r->steps[1].host_files[0], "r/files/d/one");
        CHECK_STREQ(r->steps[1].host_names[1], "sub/two");
        CHECK_STREQ(r->base_dir, "images/b");
        recipe_free(r);
        diagnostics_free(&diag);

        char **k1 = keys_of("r/t.recipe", "base-1");
        for (size_t i = 0; i < 5; i++)
                CHECK(strlen(k1[i]) == 64);
        char **again = keys_of("r/t.recipe", "base-1");
        for (size_t i = 0; i < 5; i++)
                CHECK_STREQ(k1[i], again[i]);
        strv_free(again);

        /* A copied file's content changes its step and every later step, not the earlier ones. */
        write_text("r/files/f", "f changed\n");
        char **k2 = keys_of("r/t.recipe", "base-1");
        for (size_t i = 0; i < 3; i++)
                CHECK_STREQ(k1[i], k2[i]);
        for (size_t i = 3; i < 5; i++)
                CHECK(!streq(k1[i], k2[i]));

        /* A file deep in a copied directory counts too. */
        write_text("r/files/d/sub/two", "two changed\n");
        char **k3 = keys_of("r/t.recipe", "base-1");
        CHECK_STREQ(k2[0], k3[0]);
        for (size_t i = 1; i < 5; i++)
                CHECK(!streq(k2[i], k3[i]));

        /* The directory copy keeps modes: a chmod in the tree, or a new empty directory, changes
         * its key and the later ones. A single-file copy sets its mode itself: chmod is no input. */
        CHECK(chmod("r/files/d/sub/two", 0755) == 0);
        char **k_mode = keys_of("r/t.recipe", "base-1");
        CHECK_STREQ(k3[0], k_mode[0]);
        for (size_t i = 1; i < 5; i++)
                CHECK(!streq(k3[i], k_mode[i]));
        CHECK(chmod("r/files/d/sub/two", 0644) == 0);
        char **k_back = keys_of("r/t.recipe", "base-1");
        for (size_t i = 0; i < 5; i++)
                CHECK_STREQ(k3[i], k_back[i]);
        CHECK_OK(mkdir_p("r/files/d/empty", 0755));
        char **k_dir = keys_of("r/t.recipe", "base-1");
        for (size_t i = 1; i < 5; i++)
                CHECK(!streq(k3[i], k_dir[i]));
        CHECK(rmdir("r/files/d/empty") == 0);
        CHECK(chmod("r/files/d", 0700) == 0);
        char **k_root = keys_of("r/t.recipe", "base-1");
        CHECK(!streq(k3[1], k_root[1]));
        CHECK(chmod("r/files/d", 0755) == 0);
        CHECK(chmod("r/files/f", 0600) == 0);
        char **k_single = keys_of("r/t.recipe", "base-1");
        for (size_t i = 0; i < 5; i++)
                CHECK_STREQ(k3[i], k_single[i]);
        strv_free(k_mode);
        strv_free(k_back);
        strv_free(k_dir);
        strv_free(k_root);
        strv_free(k_single);

        /* Another base changes everything. */
        char **k4 = keys_of("r/t.recipe", "base-2");
        for (size_t i = 0; i < 5; i++)
                CHECK(!streq(k3[i], k4[i]));

        /* An env line changes the keys of the steps after it only. */
        snprintf(path, sizeof(path), "%s", "r/t.recipe");
        write_text(path, "template t 1\nbase b\npackages curl\ncopy files/d /opt/d\nenv A=1\nrun echo hi\n"
                         "copy files/f /etc/f mode=0600\nrun echo bye\n");
        char **k5 = keys_of("r/t.recipe", "base-1");
        CHECK_STREQ(k3[0], k5[0]);
        CHECK_STREQ(k3[1], k5[1]);
        for (size_t i = 2; i < 5; i++)
                CHECK(!streq(k3[i], k5[i]));

        /* A vanished file is reported. */
        CHECK_OK(recipe_parse_file("r/t.recipe", NULL, &diag, &r));
        unlink("r/files/f");
        char **k6 = NULL, *failed = NULL;
        CHECK(recipe_step_keys(r, "base-1", &k6, &failed) == -ENOENT);
        CHECK_STREQ(failed, "r/files/f");
        free(failed);
        recipe_free(r);
        diagnostics_free(&diag);

        strv_free(k1);
        strv_free(k2);
        strv_free(k3);
        strv_free(k4);
        strv_free(k5);
        CHECK(chdir("/") == 0);
        CHECK_OK(rm_rf(dir));
}

/* A symlink is not copied (its target is no input of the key, and the guest would get another
 * file than the one hashed): one in a copied tree, or the copy source itself, refuses the recipe
 * at the copy's FILE:LINE:COL, whether it points at a file or a directory. */
static void test_copy_symlinks(void) {
        char dir[] = "/tmp/test-recipe-XXXXXX";
        make_tree(dir);
        write_text("r/t.recipe", "template t 1\nbase b\n"
                                 "packages curl\n"
                                 "copy files/d /opt/d\n"   /* line 4 */
                                 "copy files/l /etc/l\n"   /* line 5 */
                                 "run echo bye\n");
        CHECK(symlink("one", "r/files/d/sub/to-file") == 0);
        CHECK(symlink("/etc", "r/files/d/to-dir") == 0);
        CHECK(symlink("f", "r/files/l") == 0);

        Diagnostics diag = {};
        Recipe *r = NULL;
        CHECK(recipe_parse_file("r/t.recipe", NULL, &diag, &r) < 0);
        CHECK(!r);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        CHECK(f);
        diagnostics_print(&diag, f);
        CHECK(fclose(f) == 0);
        CHECK(strstr(text, "r/t.recipe:4:6: error: copy source holds 'r/files/d/sub/to-file', which is not a "
                           "regular file or directory"));
        CHECK(strstr(text, "r/t.recipe:4:6: error: copy source holds 'r/files/d/to-dir', which is not a "
                           "regular file or directory"));
        CHECK(strstr(text, "r/t.recipe:5:6: error: copy source 'r/files/l' is not a regular file or directory"));
        free(text);
        diagnostics_free(&diag);

        /* Without them the same recipe parses. */
        CHECK(unlink("r/files/d/sub/to-file") == 0 && unlink("r/files/d/to-dir") == 0 && unlink("r/files/l") == 0);
        write_text("r/files/l", "l\n");
        diag = (Diagnostics){};
        CHECK_OK(recipe_parse_file("r/t.recipe", NULL, &diag, &r));
        recipe_free(r);
        diagnostics_free(&diag);
        CHECK(chdir("/") == 0);
        CHECK_OK(rm_rf(dir));
}

/* The key of a download step covers its checksum's algorithm and digest (not the digest's case). */
static char *download_key(const char *sum, RecipeDigest want_kind, const char *want_digest) {
        RecipeOptions o = { .no_host_files = true };
        char text[512];
        char **keys = NULL;
        snprintf(text, sizeof(text), "template t 1\nbase b\ndownload https://example.com/f /f %s\n", sum);
        Recipe *r = parse_text(text, &o, 0);
        CHECK(r->n_steps == 1);
        CHECK(r->steps[0].digest_kind == want_kind);
        CHECK_STREQ(r->steps[0].digest, want_digest);
        CHECK_OK(recipe_step_keys(r, "base-1", &keys, NULL));
        char *key = strdup(keys[0]);
        CHECK(key);
        strv_free(keys);
        recipe_free(r);
        return key;
}

static void test_download_digests(void) {
        static const char h64[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char h128[129], upper[129], other[129], sum[160];
        snprintf(h128, sizeof(h128), "%s%s", h64, h64);
        for (size_t i = 0; i < 128; i++)
                upper[i] = (char) toupper((unsigned char) h128[i]);
        upper[128] = '\0';
        snprintf(other, sizeof(other), "%s", h128);
        other[127] = '0';

        snprintf(sum, sizeof(sum), "sha512=%s", h128);
        char *k512 = download_key(sum, RECIPE_DIGEST_SHA512, h128);
        snprintf(sum, sizeof(sum), "sha512=%s", upper);
        char *k512_upper = download_key(sum, RECIPE_DIGEST_SHA512, h128);
        snprintf(sum, sizeof(sum), "sha512=%s", other);
        char *k512_other = download_key(sum, RECIPE_DIGEST_SHA512, other);
        snprintf(sum, sizeof(sum), "sha256=%s", h64);
        char *k256 = download_key(sum, RECIPE_DIGEST_SHA256, h64);
        CHECK_STREQ(k512, k512_upper);
        CHECK(!streq(k512, k512_other));
        CHECK(!streq(k512, k256));

        /* The canonical form names the algorithm. */
        RecipeOptions o = { .no_host_files = true };
        char text[512], want[512];
        snprintf(text, sizeof(text), "template t 1\nbase b\ndownload https://example.com/f /f sha512=%s mode=0755\n",
                 upper);
        Recipe *r = parse_text(text, &o, 0);
        snprintf(want, sizeof(want),
                 "15:imgbuild-step/1,8:download,1:4,21:https://example.com/f,2:/f,135:sha512=%s,9:mode=0755,1:0,", h128);
        CHECK_STREQ(r->steps[0].canonical, want);
        CHECK(r->steps[0].mode == 0755);
        recipe_free(r);
        free(k512);
        free(k512_upper);
        free(k512_other);
        free(k256);
}

static void test_helpers(void) {
        uint64_t v;
        CHECK(parse_size("4G", 0, &v) == 0 && v == 4ull << 30);
        CHECK(parse_size("1024", 1ull << 20, &v) == 0 && v == 1ull << 30);
        CHECK(parse_size("4g", 0, &v) == -EINVAL);
        CHECK(parse_size("G", 0, &v) == -EINVAL);
        CHECK(parse_size("99999999999999999999", 1, &v) == -ERANGE);
        CHECK(parse_size("99999999999T", 0, &v) == -ERANGE);
        CHECK(image_package_name_valid("etcd-server"));
        CHECK(image_package_name_valid("g++"));
        CHECK(!image_package_name_valid("a"));
        CHECK(!image_package_name_valid("Etcd"));
        CHECK(!image_package_name_valid("-x"));
        CHECK(diagnostics_edit_distance("pakages", "packages", 2) == 1);
        CHECK(diagnostics_edit_distance("abc", "xyz", 2) == 3);
        char buf[32];
        recipe_format_size(1536ull << 20, buf);
        CHECK_STREQ(buf, "1536M");
        recipe_format_size(4ull << 30, buf);
        CHECK_STREQ(buf, "4G");
        recipe_format_size(1000, buf);
        CHECK_STREQ(buf, "1000");

        /* Continuations keep positions; secrets are masked in display forms. */
        RecipeOptions o = { .no_host_files = true, .no_environment = true };
        Recipe *r = parse_text("template t 1\nbase b\nsecret var s = \"pw\"\nenv P=${s}\n"
                               "run a \\\n  b ${s}\npackages x1 \\\n y2\n", &o, 0);
        CHECK(r->n_steps == 2);
        CHECK_STREQ(r->steps[0].command, "a   b pw");
        CHECK_STREQ(r->steps[0].display_args[0], "a   b <secret>");
        CHECK(r->steps[0].secret);
        CHECK_STREQ(r->steps[0].env[0], "P=pw");
        CHECK_STREQ(r->steps[0].display_env[0], "P=<secret>");
        CHECK(r->steps[1].line == 7);
        CHECK_STREQ(r->steps[1].packages[1], "y2");
        recipe_free(r);
}

/* Step index i's inputs, looked at again, are unchanged or name changed. */
static void check_inputs(const Recipe *r, const RecipeStepInputs *in, size_t i, const char *changed) {
        char *path = NULL;
        int k = recipe_step_inputs_check(&r->steps[i], &in[i], &path);
        if (!changed) {
                CHECK_OK(k);
                CHECK(!path);
                return;
        }
        CHECK(k == -ESTALE);
        CHECK_STREQ(path, changed);
        free(path);
}

/* A fresh look at step i, as if its key were computed now. */
static void look_again(const Recipe *r, RecipeStepInputs *in, size_t i) {
        recipe_step_inputs_done(&in[i]);
        CHECK_OK(recipe_step_inputs_read(&r->steps[i], &in[i], NULL));
}

/* What a step sends is read when it runs, after its key was computed: recipe_step_inputs_check
 * tells whether the host files still match what the key covers. */
static void test_inputs_check(void) {
        char dir[] = "/tmp/test-recipe-XXXXXX";
        make_tree(dir);
        write_text("r/files/agent.conf", "role = etcd\n");
        write_text("r/files/blob", "blob\n");
        write_text("r/t.recipe", "template t 1\nbase b\n"
                                 "copy files/d /opt/d\n"                          /* 0 */
                                 "copy files/f /etc/f\n"                          /* 1 */
                                 "agent role=etcd config=files/agent.conf\n"     /* 2 */
                                 "download files/blob /opt/blob sha256="
                                 "0000000000000000000000000000000000000000000000000000000000000000\n" /* 3 */
                                 "run echo hi\n");                                /* 4 */
        Diagnostics diag = {};
        Recipe *r = NULL;
        CHECK_OK(recipe_parse_file("r/t.recipe", NULL, &diag, &r));
        CHECK(r->n_steps == 5);

        /* A file added to the copied tree after the recipe was read, before the keys. */
        write_text("r/files/d/sub/late", "late\n");
        char **keys = NULL, **plain = NULL;
        RecipeStepInputs *in = NULL;
        CHECK_OK(recipe_step_keys_inputs(r, "base-1", &keys, &in, NULL));
        /* The same keys as without the look kept. */
        CHECK_OK(recipe_step_keys(r, "base-1", &plain, NULL));
        for (size_t i = 0; i < r->n_steps; i++)
                CHECK_STREQ(keys[i], plain[i]);
        CHECK(in[0].n == 4 && in[1].n == 1 && in[2].n == 1 && in[3].n == 1 && in[4].n == 0);

        /* Nothing changed since the keys: every step may be kept. Except the copied tree, which
         * holds a file its key does not cover. */
        check_inputs(r, in, 0, "r/files/d/sub/late");
        for (size_t i = 1; i < r->n_steps; i++)
                check_inputs(r, in, i, NULL);
        CHECK(unlink("r/files/d/sub/late") == 0);
        look_again(r, in, 0);
        check_inputs(r, in, 0, NULL);

        /* Edited, chmod-ed, rewritten with the same bytes, added, removed: each names the path. */
        write_text("r/files/f", "f edited\n");
        check_inputs(r, in, 1, "r/files/f");
        check_inputs(r, in, 0, NULL);
        look_again(r, in, 1);
        check_inputs(r, in, 1, NULL);
        CHECK(chmod("r/files/f", 0600) == 0);
        check_inputs(r, in, 1, "r/files/f");
        look_again(r, in, 1);
        /* The same bytes again (edited and put back while it was being sent): the change time moved.
         * The kernel's file timestamps are coarse: wait longer than one tick. */
        struct timespec tick = { 0, 50 * 1000000L };
        nanosleep(&tick, NULL);
        write_text("r/files/f", "f edited\n");
        CHECK(chmod("r/files/f", 0600) == 0);
        check_inputs(r, in, 1, "r/files/f");

        write_text("r/files/d/sub/two", "two edited\n");
        check_inputs(r, in, 0, "r/files/d/sub/two");
        look_again(r, in, 0);
        CHECK_OK(mkdir_p("r/files/d/sub/new", 0755));
        check_inputs(r, in, 0, "r/files/d/sub/new");
        CHECK(rmdir("r/files/d/sub/new") == 0);
        check_inputs(r, in, 0, "r/files/d/sub");  /* gone again, but its entries changed */
        look_again(r, in, 0);
        CHECK(chmod("r/files/d/sub", 0700) == 0);
        check_inputs(r, in, 0, "r/files/d/sub");
        look_again(r, in, 0);
        CHECK(unlink("r/files/d/one") == 0);
        check_inputs(r, in, 0, "r/files/d/one");

        write_text("r/files/agent.conf", "role = vault\n");
        check_inputs(r, in, 2, "r/files/agent.conf");
        write_text("r/files/blob", "another blob\n");
        check_inputs(r, in, 3, "r/files/blob");
        check_inputs(r, in, 4, NULL);

        in = recipe_step_inputs_free(in, r->n_steps);
        strv_free(keys);
        strv_free(plain);
        recipe_free(r);
        diagnostics_free(&diag);
        CHECK(chdir("/") == 0);
        CHECK_OK(rm_rf(dir));
}

int main(void) {
        const char *s = getenv("IMGBUILD_SOURCE_DIR");
        if (!s)
                TEST_SKIP("IMGBUILD_SOURCE_DIR is not set");
        source_dir = strdup(s);
        char *golden_dir;
        CHECK(asprintf(&golden_dir, "%s/tests/unit/builder/recipe/recipes", source_dir) > 0);
        CHECK(chdir(golden_dir) == 0);
        free(golden_dir);

        test_helpers();
        test_download_digests();
        test_golden();
        test_override_order();
        test_cache_keys();
        test_copy_symlinks();
        test_inputs_check();
        test_real_recipes();
        free(source_dir);
        return 0;
}
