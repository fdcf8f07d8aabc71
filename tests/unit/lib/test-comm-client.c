/* builder/comm-client against the real `bootagent serve --stdio` binary over a socketpair. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "comm-client.h"
#include "fs.h"
#include "spawn.h"

static pid_t start_bootagent(int *ret_fd) {
        const char *bindir = getenv("IMGBUILD_BINARY_DIR");
        char path[512];
        int sv[2];
        pid_t pid;

        if (!bindir)
                TEST_SKIP("IMGBUILD_BINARY_DIR not set (run through ctest)");
        snprintf(path, sizeof(path), "%s/bootagent/bootagent", bindir);
        if (access(path, X_OK) < 0)
                TEST_SKIP("%s not built", path);

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        char *argv[] = { path, (char *) "serve", (char *) "--stdio", NULL };
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        opts.stdin_fd = sv[1];
        opts.stdout_fd = sv[1];
        CHECK_OK(spawn_start(argv, &opts, &pid));
        close(sv[1]);
        *ret_fd = sv[0];
        return pid;
}

static void write_text(const char *path, const char *text, mode_t mode) {
        CHECK_OK(write_file_atomic(path, text, strlen(text), mode, (uid_t) -1, (gid_t) -1));
}

static off_t fd_size(int fd) {
        struct stat st;
        CHECK(fstat(fd, &st) == 0);
        return st.st_size;
}

/* comm_client_exec_capped: output up to the cap arrives whole; beyond it, -EFBIG and out_fd never
 * holds more than the cap, although the command goes on writing. */
static void test_exec_capped(void) {
        int fd, status;
        pid_t pid = start_bootagent(&fd);
        comm_client c = COMM_CLIENT_INIT(fd);
        const uint64_t cap = 200000;

        int out = memfd_create("capped", MFD_CLOEXEC);
        CHECK(out >= 0);
        char *exact[] = { (char *) "sh", (char *) "-c", (char *) "head -c 200000 /dev/zero", NULL };
        CHECK_OK(comm_client_exec_capped(&c, exact, NULL, NULL, out, cap, -1, &status, NULL));
        CHECK(status == 0);
        CHECK(fd_size(out) == (off_t) cap);

        /* The session is usable after a command within the cap; stdout over the cap goes elsewhere
         * unbounded (the cap is on out_fd only, stderr is not counted). */
        CHECK(ftruncate(out, 0) == 0 && lseek(out, 0, SEEK_SET) == 0);
        char *noisy[] = { (char *) "sh", (char *) "-c", (char *) "head -c 300000 /dev/zero >&2; echo ok", NULL };
        CHECK_OK(comm_client_exec_capped(&c, noisy, NULL, NULL, out, cap, -1, &status, NULL));
        CHECK(status == 0 && fd_size(out) == 3);

        /* An endless writer: stopped at the cap, not when it exits. */
        CHECK(ftruncate(out, 0) == 0 && lseek(out, 0, SEEK_SET) == 0);
        char *endless[] = { (char *) "sh", (char *) "-c", (char *) "cat /dev/zero", NULL };
        CHECK(comm_client_exec_capped(&c, endless, NULL, NULL, out, cap, -1, &status, NULL) == -EFBIG);
        CHECK(fd_size(out) <= (off_t) cap);
        CHECK(fd_size(out) > 0);
        close(out);

        /* Closing the session stops the server and the command it runs. */
        close(fd);
        CHECK_OK(spawn_wait(pid, &status));
}

int main(void) {
        int fd, status;
        pid_t pid = start_bootagent(&fd);
        comm_client c = COMM_CLIENT_INIT(fd);
        _cleanup_free_ char *error = NULL;

        CHECK_OK(comm_client_ping(&c, NULL));

        /* exec: output streamed to our fds, exit status returned. */
        char outpath[] = "/tmp/test-comm-client-out-XXXXXX";
        int out = mkostemp(outpath, O_CLOEXEC);
        CHECK(out >= 0);
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) "echo \"$X\"; echo e >&2; exit 7", NULL };
        char *env[] = { (char *) "X=from-client", NULL };
        CHECK_OK(comm_client_exec(&c, argv, env, NULL, out, -1, &status, NULL));
        CHECK(status == 7);
        _cleanup_free_ char *text = NULL;
        CHECK_OK(read_file(outpath, 4096, &text, NULL));
        CHECK_STREQ(text, "from-client\n");
        close(out);
        unlink(outpath);

        char *missing[] = { (char *) "no-such-program-imgbuild", NULL };
        CHECK(comm_client_exec(&c, missing, NULL, NULL, -1, -1, &status, &error) == -EREMOTEIO);
        CHECK(strstr(error, "no-such-program-imgbuild"));

        /* put a directory with modes, get it back, compare. */
        char base[] = "/tmp/test-comm-client-XXXXXX";
        CHECK(mkdtemp(base));
        char src[300], remote[300], back[300], p[400];
        snprintf(src, sizeof(src), "%s/src", base);
        snprintf(remote, sizeof(remote), "%s/remote", base);
        snprintf(back, sizeof(back), "%s/back", base);
        CHECK_OK(mkdir_p(src, 0755));
        snprintf(p, sizeof(p), "%s/run.sh", src);
        write_text(p, "#!/bin/sh\necho ran\n", 0750);
        snprintf(p, sizeof(p), "%s/conf.d", src);
        CHECK(mkdir(p, 0710) == 0);
        snprintf(p, sizeof(p), "%s/conf.d/a.conf", src);
        write_text(p, "a=1\n", 0604);

        CHECK_OK(comm_client_put(&c, src, remote, NULL));
        /* The copied script runs on the other side. */
        snprintf(p, sizeof(p), "%s/run.sh", remote);
        char *run[] = { p, NULL };
        CHECK_OK(comm_client_exec(&c, run, NULL, NULL, -1, -1, &status, NULL));
        CHECK(status == 0);

        CHECK_OK(comm_client_get(&c, remote, back, NULL));
        struct stat st;
        snprintf(p, sizeof(p), "%s/run.sh", back);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0750);
        snprintf(p, sizeof(p), "%s/conf.d", back);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0710);
        snprintf(p, sizeof(p), "%s/conf.d/a.conf", back);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0604);
        free(text);
        text = NULL;
        CHECK_OK(read_file(p, 4096, &text, NULL));
        CHECK_STREQ(text, "a=1\n");

        /* Errors from the server end one request, not the session. */
        free(error);
        error = NULL;
        CHECK(comm_client_get(&c, "/nonexistent/imgbuild", back, &error) == -EREMOTEIO);
        CHECK(error);
        snprintf(p, sizeof(p), "%s/does-not-exist", base);
        CHECK(comm_client_put(&c, p, remote, NULL) == -ENOENT);
        CHECK_OK(comm_client_ping(&c, NULL));

        /* shutdown: the --stdio server just exits. */
        CHECK_OK(comm_client_shutdown(&c, NULL));
        CHECK_OK(spawn_wait(pid, &status));
        CHECK(status == 0);
        close(fd);
        CHECK_OK(rm_rf(base));

        test_exec_capped();
        return 0;
}
