/* builder/runner: the cached prefix without a VM; with IMGBUILD_TEST_BASE_DIR set (by
 * tests/e2e/test-step-layers.sh, to a built base image) the whole layer life cycle in real VMs. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "runner.h"
#include "spawn.h"

typedef struct fake_step {
        const char *command;
        int calls;
        int out_fd;
} fake_step;

static int run_command(comm_client *c, void *userdata) {
        fake_step *s = userdata;
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) s->command, NULL };
        int status, r;

        s->calls++;
        r = comm_client_exec(c, argv, NULL, "/", s->out_fd, STDERR_FILENO, &status, NULL);
        if (r < 0)
                return r;
        return status == 0 ? 0 : -EPROTO;
}

static void touch(const char *store, const char *key, const char *ext) {
        char path[512];
        snprintf(path, sizeof(path), "%s/layers/%s.%s", store, key, ext);
        CHECK_OK(write_file_atomic(path, "", 0, 0644, (uid_t) -1, (gid_t) -1));
}

static void test_cached_prefix(void) {
        char store[] = "/tmp/test-runner-XXXXXX", layers[300];
        runner_step steps[] = { { .key = "aaa", .name = "a" }, { .key = "bbb", .name = "b" }, { .key = "ccc", .name = "c" } };
        size_t n;

        CHECK(mkdtemp(store));
        CHECK_OK(runner_cached_prefix(store, steps, 3, &n));
        CHECK(n == 0);
        snprintf(layers, sizeof(layers), "%s/layers", store);
        CHECK_OK(mkdir_p(layers, 0755));
        touch(store, "aaa", "qcow2");
        touch(store, "aaa", "done");
        touch(store, "bbb", "qcow2"); /* written but never committed: not cached */
        touch(store, "ccc", "qcow2");
        touch(store, "ccc", "done");
        CHECK_OK(runner_cached_prefix(store, steps, 3, &n));
        CHECK(n == 1);
        /* Everything cached: nothing boots, the last layer is the result. */
        touch(store, "bbb", "done");
        CHECK_OK(runner_cached_prefix(store, steps, 3, &n));
        CHECK(n == 3);
        base_image base = { .disk = (char *) "/nonexistent/base.qcow2" };
        runner_config config = { .store = store, .base = &base };
        char *disk = NULL;
        CHECK_OK(runner_run(&config, steps, 3, &disk));
        CHECK(strstr(disk, "/layers/ccc.qcow2"));
        free(disk);
        CHECK_OK(runner_run(&config, steps, 0, &disk));
        CHECK_STREQ(disk, "/nonexistent/base.qcow2");
        free(disk);
        CHECK_OK(rm_rf(store));
}

static char *read_memfd(int fd) {
        char *data = calloc(1, 4096);
        CHECK(data);
        CHECK(pread(fd, data, 4095, 0) >= 0);
        return data;
}

static void test_vm(const char *base_dir) {
        char store[] = "/var/tmp/test-runner-vm-XXXXXX", kernel[400], initrd[400], disk[400];
        snprintf(kernel, sizeof(kernel), "%s/vmlinuz", base_dir);
        snprintf(initrd, sizeof(initrd), "%s/initrd.img", base_dir);
        snprintf(disk, sizeof(disk), "%s/disk.qcow2", base_dir);
        base_image base = { .kernel = kernel, .initrd = initrd, .disk = disk };
        CHECK(mkdtemp(store));
        runner_config config = { .store = store, .base = &base, .step_timeout = 300 };
        int out = memfd_create("runner-out", MFD_CLOEXEC);
        CHECK(out >= 0);

        fake_step one = { .command = "echo one > /layer-one", .out_fd = -1 };
        fake_step two = { .command = "cat /layer-one > /layer-two && echo two >> /layer-two", .out_fd = -1 };
        runner_step steps[] = {
                { .key = "1111", .name = "one", .run = run_command, .userdata = &one },
                { .key = "2222", .name = "two", .run = run_command, .userdata = &two },
        };
        char *last = NULL;
        CHECK_OK(runner_run(&config, steps, 2, &last));
        CHECK(one.calls == 1 && two.calls == 1);
        CHECK(strstr(last, "/layers/2222.qcow2"));

        /* Layer two is backed by layer one. */
        char *info[] = { (char *) "qemu-img", (char *) "info", (char *) "--output=json", last, NULL };
        buf text = BUF_INIT(1 << 20);
        int status;
        CHECK_OK(spawn_capture(info, NULL, &text, &status));
        CHECK(status == 0 && strstr(text.data, "/layers/1111.qcow2"));
        buf_free(&text);
        free(last);

        /* Same keys again: no VM, no step runs. */
        CHECK_OK(runner_run(&config, steps, 2, NULL));
        CHECK(one.calls == 1 && two.calls == 1);

        /* Step two changed, a third step fails: one is reused (its file is there for the new two),
         * the new two is kept, the failing three leaves nothing. */
        fake_step two_b = { .command = "cat /layer-one; test ! -e /layer-two", .out_fd = out };
        fake_step three = { .command = "exit 4", .out_fd = -1 };
        runner_step changed[] = {
                steps[0],
                { .key = "2b2b", .name = "two-b", .run = run_command, .userdata = &two_b },
                { .key = "3333", .name = "three", .run = run_command, .userdata = &three },
        };
        CHECK(runner_run(&config, changed, 3, NULL) < 0);
        CHECK(one.calls == 1 && two_b.calls == 1 && three.calls == 1);
        char *got = read_memfd(out);
        CHECK_STREQ(got, "one\n");
        free(got);
        size_t n;
        CHECK_OK(runner_cached_prefix(store, changed, 3, &n));
        CHECK(n == 2);
        char path[512];
        snprintf(path, sizeof(path), "%s/layers/3333.qcow2", store);
        CHECK(access(path, F_OK) < 0);
        close(out);
        CHECK_OK(rm_rf(store));
}

int main(void) {
        test_cached_prefix();
        const char *base_dir = getenv("IMGBUILD_TEST_BASE_DIR");
        if (!base_dir) {
                /* The host half passed; the layered runs need a VM: say so, as ctest's skip. */
                fprintf(stderr, "skipped: the VM half needs IMGBUILD_TEST_BASE_DIR (tests/e2e/test-step-layers.sh runs it)\n");
                return 77;
        }
        test_vm(base_dir);
        return 0;
}
