/* builder/qemu without booting anything: the acceleration decision, overlays, and attaching to a
 * detached VM (its communicator socket played by a child process). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "comm.h"
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

/* A detached VM's directory: comm.sock served by a child that first sends a reply an earlier
 * client left unread (id 99), then answers one ping. */
static void test_attach(void) {
        char dir[] = "/tmp/test-qemu-attach-XXXXXX";
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        qemu_vm *vm = NULL;
        int status;

        CHECK(mkdtemp(dir));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/comm.sock", dir);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(lfd >= 0);
        CHECK(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        CHECK(listen(lfd, 1) == 0);
        pid_t server = fork();
        CHECK(server >= 0);
        if (server == 0) {
                comm_msg m = {};
                int fd = accept(lfd, NULL, NULL);
                if (fd < 0 || comm_send_simple(fd, COMM_OK, 99) < 0 || comm_recv(fd, &m, NULL) < 0 ||
                    m.type != COMM_PING || comm_send_simple(fd, COMM_OK, m.id) < 0)
                        _exit(1);
                /* Keep the process up until the parent is done with it. */
                char c;
                while (read(fd, &c, 1) > 0)
                        ;
                _exit(0);
        }
        close(lfd);

        /* Not running: nothing to attach to. */
        CHECK(qemu_vm_attach(dir, 999999999, 5, &vm) == -ESRCH);
        /* The "VM" is the server process: attach, the stale reply is skipped, the ping answered. */
        CHECK_OK(qemu_vm_attach(dir, server, 5, &vm));
        CHECK_OK(qemu_vm_wait_ready(vm, 10));
        /* Freeing an attached VM leaves it running. */
        vm = qemu_vm_free(vm);
        CHECK(kill(server, 0) == 0);
        CHECK(waitpid(server, &status, 0) == server);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK_OK(rm_rf(dir));
}

int main(void) {
        test_accel();
        test_overlay();
        test_attach();
        return 0;
}
