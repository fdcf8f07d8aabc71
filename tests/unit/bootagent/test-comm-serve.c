/* bootagent serve: the server loop over a socketpair, driven with raw protocol frames. */
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "comm.h"
#include "frame.h"
#include "fs.h"
#include "comm-serve.h"

static pid_t server_pid;

/* Start comm_serve_loop in a child on one end of a socketpair; returns the other end. */
static int start_server(void) {
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        server_pid = fork();
        CHECK(server_pid >= 0);
        if (server_pid == 0) {
                close(sv[0]);
                int r = comm_serve_loop(sv[1], sv[1]);
                _exit(r < 0 ? 100 : r);
        }
        close(sv[1]);
        return sv[0];
}

static int stop_server(int fd) {
        int status;
        close(fd);
        CHECK(waitpid(server_pid, &status, 0) == server_pid);
        CHECK(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void recv_msg(int fd, comm_msg *m) {
        *m = (comm_msg) {};
        CHECK_OK(comm_recv(fd, m, NULL));
}

static void expect_ok(int fd, uint64_t id) {
        comm_msg m;
        recv_msg(fd, &m);
        CHECK(m.type == COMM_OK && m.id == id);
        comm_msg_done(&m);
}

static void expect_error(int fd, uint64_t id) {
        comm_msg m;
        recv_msg(fd, &m);
        if (m.type != COMM_ERROR || m.id != id) {
                fprintf(stderr, "expected error for %llu, got %s for %llu\n", (unsigned long long) id,
                        comm_type_to_string(m.type), (unsigned long long) m.id);
                exit(1);
        }
        CHECK(m.error && m.error[0]);
        comm_msg_done(&m);
}

/* Run an exec request, collecting stdout and stderr; returns the exit status or -1 for an error frame. */
static int run(int fd, uint64_t id, char **argv, char **env, const char *cwd, buf *out, buf *err) {
        CHECK_OK(comm_send(fd, &(comm_msg) { .type = COMM_EXEC, .id = id, .argv = argv, .env = env, .cwd = (char *) cwd }));
        for (;;) {
                comm_msg m;
                recv_msg(fd, &m);
                CHECK(m.id == id);
                if (m.type == COMM_STDOUT || m.type == COMM_STDERR) {
                        CHECK_OK(buf_append(m.type == COMM_STDOUT ? out : err, m.data, m.size));
                        comm_msg_done(&m);
                        continue;
                }
                int status = m.type == COMM_EXIT ? (int) m.status : -1;
                CHECK(m.type == COMM_EXIT || m.type == COMM_ERROR);
                comm_msg_done(&m);
                return status;
        }
}

static void test_exec(void) {
        int fd = start_server();
        _cleanup_buf_ buf out = BUF_INIT(0), err = BUF_INIT(0);

        CHECK_OK(comm_send_simple(fd, COMM_PING, 1));
        expect_ok(fd, 1);

        char *sh[] = { (char *) "sh", (char *) "-c",
                       (char *) "echo out; echo err >&2; echo \"$GREETING\"; pwd; exit 3", NULL };
        char *env[] = { (char *) "GREETING=hello there", NULL };
        CHECK(run(fd, 2, sh, env, "/usr", &out, &err) == 3);
        CHECK_STREQ(out.data, "out\nhello there\n/usr\n");
        CHECK_STREQ(err.data, "err\n");

        /* Output larger than a chunk arrives complete and in order. */
        buf_clear(&out);
        buf_clear(&err);
        char *big[] = { (char *) "sh", (char *) "-c", (char *) "seq 1 100000", NULL };
        CHECK(run(fd, 3, big, NULL, NULL, &out, &err) == 0);
        CHECK(out.len == 588895);
        CHECK(strneq(out.data, "1\n2\n3\n", 6));
        CHECK(strcmp(out.data + out.len - 7, "100000\n") == 0);

        /* Killed by a signal: 128+9. */
        char *kill9[] = { (char *) "sh", (char *) "-c", (char *) "kill -9 $$", NULL };
        CHECK(run(fd, 4, kill9, NULL, NULL, &out, &err) == 137);

        /* A program that does not exist, or a bad cwd: an error frame, and the session goes on. */
        char *missing[] = { (char *) "/nonexistent/program", NULL };
        CHECK(run(fd, 5, missing, NULL, NULL, &out, &err) == -1);
        char *pwd[] = { (char *) "pwd", NULL };
        CHECK(run(fd, 6, pwd, NULL, "/nonexistent-dir", &out, &err) != 0);

        CHECK_OK(comm_send_simple(fd, COMM_PING, 7));
        expect_ok(fd, 7);
        CHECK(stop_server(fd) == 0);
}

static void test_malformed(void) {
        int fd = start_server();

        /* Bytes that are not CBOR, inside a valid length prefix. */
        const uint8_t garbage[] = { 0, 0, 0, 3, 0xff, 0xff, 0xff };
        CHECK(write(fd, garbage, sizeof(garbage)) == sizeof(garbage));
        expect_error(fd, 0);

        /* Valid CBOR that is not a message; a message of the wrong direction. */
        _cleanup_cbor_ cbor_item_t *n = cbor_build_uint8(1);
        CHECK_OK(frame_write(fd, n, COMM_FRAME_MAX));
        expect_error(fd, 0);
        CHECK_OK(comm_send_simple(fd, COMM_OK, 11));
        expect_error(fd, 11);
        CHECK_OK(comm_send_data(fd, COMM_DATA, 12, "x", 1));
        expect_error(fd, 12);

        /* Still serving. */
        CHECK_OK(comm_send_simple(fd, COMM_PING, 13));
        expect_ok(fd, 13);

        /* A length over the cap ends the session after an error frame. */
        const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff };
        CHECK(write(fd, huge, sizeof(huge)) == sizeof(huge));
        expect_error(fd, 0);
        CHECK(stop_server(fd) == 100);
}

static void test_put_get(void) {
        char src[] = "/tmp/test-serve-src-XXXXXX", dst[] = "/tmp/test-serve-dst-XXXXXX";
        char path[256];
        CHECK(mkdtemp(src) && mkdtemp(dst));
        snprintf(path, sizeof(path), "%s/f", src);
        FILE *f = fopen(path, "we");
        CHECK(f);
        fputs("content\n", f);
        fclose(f);
        CHECK(chmod(path, 0751) == 0);

        int fd = start_server();
        /* put: the server extracts into dst/inner (created). */
        char remote[256];
        snprintf(remote, sizeof(remote), "%s/inner", dst);
        CHECK_OK(comm_send(fd, &(comm_msg) { .type = COMM_PUT, .id = 20, .path = remote }));
        CHECK_OK(comm_send_tar(fd, 20, src));
        expect_ok(fd, 20);
        snprintf(path, sizeof(path), "%s/inner/f", dst);
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0751 && st.st_size == 8);

        /* get it back into a third place. */
        char back[] = "/tmp/test-serve-back-XXXXXX";
        CHECK(mkdtemp(back));
        CHECK_OK(comm_send(fd, &(comm_msg) { .type = COMM_GET, .id = 21, .path = remote }));
        CHECK_OK(comm_recv_tar(fd, 21, back, false, NULL));
        snprintf(path, sizeof(path), "%s/f", back);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0751 && st.st_size == 8);

        /* get of a missing path: an error frame ends the request. */
        _cleanup_free_ char *text = NULL;
        CHECK_OK(comm_send(fd, &(comm_msg) { .type = COMM_GET, .id = 22, .path = (char *) "/nonexistent/x" }));
        CHECK(comm_recv_tar(fd, 22, back, false, &text) == -EREMOTEIO);
        CHECK(strstr(text, "/nonexistent/x"));

        /* put aborted by the client: the server answers with an error and goes on. */
        CHECK_OK(comm_send(fd, &(comm_msg) { .type = COMM_PUT, .id = 23, .path = remote }));
        CHECK_OK(comm_send_error(fd, 23, "client gave up"));
        expect_error(fd, 23);

        CHECK_OK(comm_send_simple(fd, COMM_SHUTDOWN, 24));
        expect_ok(fd, 24);
        CHECK(stop_server(fd) == 1);

        CHECK_OK(rm_rf(src));
        CHECK_OK(rm_rf(dst));
        CHECK_OK(rm_rf(back));
}

int main(void) {
        test_exec();
        test_malformed();
        test_put_get();
        return 0;
}
