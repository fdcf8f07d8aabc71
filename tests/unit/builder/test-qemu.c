/* builder/qemu without booting anything: the acceleration decision and overlays. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "qemu.h"
#include "spawn.h"

static bool host_has_vmx_or_svm(void) {
        char *cpuinfo = NULL;
        CHECK_OK(read_file("/proc/cpuinfo", 16u << 20, &cpuinfo, NULL));
        bool found = strstr(cpuinfo, " vmx") || strstr(cpuinfo, " svm");
        free(cpuinfo);
        return found;
}

static void test_accel(void) {
        const char *a = qemu_accel();
        CHECK(streq(a, "kvm") || streq(a, "tcg"));
        if (!host_has_vmx_or_svm())
                CHECK_STREQ(a, "tcg");
        if (streq(a, "kvm")) {
                int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
                CHECK(fd >= 0);
                close(fd);
        }
        /* Decided once. */
        CHECK(qemu_accel() == a);
}

static void test_overlay(void) {
        char dir[] = "/tmp/test-qemu-XXXXXX", parent[300], child[300];
        int status;

        CHECK(mkdtemp(dir));
        snprintf(parent, sizeof(parent), "%s/parent.qcow2", dir);
        snprintf(child, sizeof(child), "%s/child.qcow2", dir);
        char *create[] = { (char *) "qemu-img", (char *) "create", (char *) "-q", (char *) "-f", (char *) "qcow2",
                           parent, (char *) "16M", NULL };
        if (spawn_run(create, NULL, &status) == -ENOENT)
                TEST_SKIP("qemu-img not installed");
        CHECK(status == 0);

        CHECK(qemu_overlay_create(parent, child, 0) == 0);
        uint64_t size;
        CHECK_OK(qemu_image_virtual_size(child, &size));
        CHECK(size == 16u << 20);
        char *info[] = { (char *) "qemu-img", (char *) "info", (char *) "--output=json", child, NULL };
        buf out = BUF_INIT(1 << 20);
        CHECK_OK(spawn_capture(info, NULL, &out, &status));
        CHECK(status == 0);
        CHECK(strstr(out.data, "\"backing-filename-format\": \"qcow2\""));
        char want[400];
        snprintf(want, sizeof(want), "\"backing-filename\": \"%s\"", parent);
        CHECK(strstr(out.data, want));
        buf_free(&out);

        /* Grown on request, never shrunk. */
        char grown[300], same[300];
        snprintf(grown, sizeof(grown), "%s/grown.qcow2", dir);
        snprintf(same, sizeof(same), "%s/same.qcow2", dir);
        CHECK(qemu_overlay_create(parent, grown, 64u << 20) == 1);
        CHECK_OK(qemu_image_virtual_size(grown, &size));
        CHECK(size == 64u << 20);
        CHECK(qemu_overlay_create(parent, same, 8u << 20) == 0);
        CHECK_OK(qemu_image_virtual_size(same, &size));
        CHECK(size == 16u << 20);

        /* A missing parent fails cleanly. */
        snprintf(parent, sizeof(parent), "%s/missing.qcow2", dir);
        snprintf(child, sizeof(child), "%s/child2.qcow2", dir);
        CHECK(qemu_overlay_create(parent, child, 0) < 0);
        CHECK_OK(rm_rf(dir));
}

int main(void) {
        test_accel();
        test_overlay();
        return 0;
}
