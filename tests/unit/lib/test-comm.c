/* lib/comm: message encoding/decoding and tar streams over a socketpair. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "comm.h"
#include "frame.h"
#include "fs.h"
#include "strv.h"

static void roundtrip(const comm_msg *in, comm_msg *out) {
        _cleanup_cbor_ cbor_item_t *item = NULL;
        CHECK_OK(comm_msg_build(in, &item));
        uint64_t id = 99;
        CHECK_OK(comm_msg_parse(item, out, &id));
        CHECK(id == in->id);
        CHECK(out->type == in->type);
        CHECK(out->id == in->id);
}

static void test_messages(void) {
        comm_msg m = {};
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) "echo hi", NULL };
        char *env[] = { (char *) "A=1", (char *) "B=", NULL };

        roundtrip(&(comm_msg) { .type = COMM_EXEC, .id = 7, .argv = argv, .env = env, .cwd = (char *) "/tmp" }, &m);
        CHECK(strv_length(m.argv) == 3);
        CHECK_STREQ(m.argv[2], "echo hi");
        CHECK(strv_length(m.env) == 2);
        CHECK_STREQ(m.env[1], "B=");
        CHECK_STREQ(m.cwd, "/tmp");
        comm_msg_done(&m);

        roundtrip(&(comm_msg) { .type = COMM_EXEC, .id = 8, .argv = argv }, &m);
        CHECK(!m.env && !m.cwd);
        comm_msg_done(&m);

        roundtrip(&(comm_msg) { .type = COMM_PUT, .id = 1, .path = (char *) "/etc" }, &m);
        CHECK_STREQ(m.path, "/etc");
        comm_msg_done(&m);

        roundtrip(&(comm_msg) { .type = COMM_STDERR, .id = 2, .data = (uint8_t *) "a\0b", .size = 3 }, &m);
        CHECK(m.size == 3 && memcmp(m.data, "a\0b", 3) == 0);
        comm_msg_done(&m);

        roundtrip(&(comm_msg) { .type = COMM_EXIT, .id = 3, .status = 137 }, &m);
        CHECK(m.status == 137);
        comm_msg_done(&m);

        roundtrip(&(comm_msg) { .type = COMM_ERROR, .id = 4, .error = (char *) "nope" }, &m);
        CHECK_STREQ(m.error, "nope");
        comm_msg_done(&m);

        comm_type simple[] = { COMM_PING, COMM_SHUTDOWN, COMM_END, COMM_OK };
        for (size_t i = 0; i < ELEMENTSOF(simple); i++) {
                roundtrip(&(comm_msg) { .type = simple[i], .id = i }, &m);
                comm_msg_done(&m);
        }

        /* Builders refuse incomplete messages. */
        cbor_item_t *item = NULL;
        CHECK(comm_msg_build(&(comm_msg) { .type = COMM_EXEC, .id = 1 }, &item) == -EINVAL);
        CHECK(comm_msg_build(&(comm_msg) { .type = COMM_GET, .id = 1 }, &item) == -EINVAL);
        CHECK(comm_msg_build(&(comm_msg) { .type = COMM_DATA, .id = 1, .data = (uint8_t *) "x",
                                           .size = COMM_CHUNK_MAX + 1 }, &item) == -EINVAL);
}

/* Parse a map built by hand; returns comm_msg_parse's result. */
static int parse_map(cbor_item_t *map, uint64_t *ret_id) {
        comm_msg m = {};
        int r = comm_msg_parse(map, &m, ret_id);
        comm_msg_done(&m);
        cbor_decref(&map);
        return r;
}

static cbor_item_t *map_with_id(uint64_t id) {
        cbor_item_t *map = cbor_new_definite_map(4);
        CHECK(map);
        CHECK_OK(cbor_map_put_uint(map, "id", id));
        return map;
}

static void test_malformed(void) {
        uint64_t id;
        cbor_item_t *map;

        /* Not a map at all. */
        cbor_item_t *n = cbor_build_uint8(5);
        CHECK(parse_map(n, &id) == -EBADMSG && id == 0);

        /* No id. */
        map = cbor_new_definite_map(1);
        CHECK_OK(cbor_map_put_string(map, "op", "ping"));
        CHECK(parse_map(map, &id) == -EBADMSG);

        /* Unknown op: the id is still reported so the error can name the request. */
        map = map_with_id(42);
        CHECK_OK(cbor_map_put_string(map, "op", "reboot"));
        CHECK(parse_map(map, &id) == -EBADMSG && id == 42);

        /* exec without argv, with an empty argv, with a non-text argument, with bad env. */
        map = map_with_id(1);
        CHECK_OK(cbor_map_put_string(map, "op", "exec"));
        CHECK(parse_map(map, &id) == -EBADMSG);

        map = map_with_id(1);
        CHECK_OK(cbor_map_put_string(map, "op", "exec"));
        cbor_item_t *a = cbor_new_definite_array(0);
        CHECK_OK(cbor_map_put(map, "argv", a));
        cbor_decref(&a);
        CHECK(parse_map(map, &id) == -EBADMSG);

        map = map_with_id(1);
        CHECK_OK(cbor_map_put_string(map, "op", "exec"));
        a = cbor_new_definite_array(1);
        cbor_item_t *num = cbor_build_uint8(1);
        CHECK(cbor_array_push(a, num));
        cbor_decref(&num);
        CHECK_OK(cbor_map_put(map, "argv", a));
        cbor_decref(&a);
        CHECK(parse_map(map, &id) == -EBADMSG);

        map = map_with_id(1);
        CHECK_OK(cbor_map_put_string(map, "op", "exec"));
        a = cbor_new_definite_array(1);
        cbor_item_t *s = cbor_build_string("true");
        CHECK(cbor_array_push(a, s));
        cbor_decref(&s);
        CHECK_OK(cbor_map_put(map, "argv", a));
        cbor_decref(&a);
        a = cbor_new_definite_array(1);
        s = cbor_build_string("NOEQUALS");
        CHECK(cbor_array_push(a, s));
        cbor_decref(&s);
        CHECK_OK(cbor_map_put(map, "env", a));
        cbor_decref(&a);
        CHECK(parse_map(map, &id) == -EBADMSG);

        /* Text with an embedded NUL would be cut short: refused. */
        map = map_with_id(1);
        CHECK_OK(cbor_map_put_string(map, "op", "get"));
        s = cbor_build_stringn("/etc\0/x", 7);
        CHECK_OK(cbor_map_put(map, "path", s));
        cbor_decref(&s);
        CHECK(parse_map(map, &id) == -EBADMSG);

        /* Two reply kinds in one frame, exit out of range, end that is not true. */
        map = map_with_id(1);
        CHECK_OK(cbor_map_put_uint(map, "exit", 0));
        CHECK_OK(cbor_map_put_string(map, "error", "x"));
        CHECK(parse_map(map, &id) == -EBADMSG);

        map = map_with_id(1);
        CHECK_OK(cbor_map_put_uint(map, "exit", 256));
        CHECK(parse_map(map, &id) == -EBADMSG);

        map = map_with_id(1);
        cbor_item_t *f = cbor_build_bool(false);
        CHECK_OK(cbor_map_put(map, "end", f));
        cbor_decref(&f);
        CHECK(parse_map(map, &id) == -EBADMSG);

        /* Text where bytes belong. */
        map = map_with_id(1);
        CHECK_OK(cbor_map_put_string(map, "stdout", "text"));
        CHECK(parse_map(map, &id) == -EBADMSG);
}

static char *tmpdir(void) {
        char *d = strdup("/tmp/test-comm-XXXXXX");
        CHECK(d && mkdtemp(d));
        return d;
}

static void write_mode(const char *dir, const char *name, const char *content, mode_t mode) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        CHECK(write(fd, content, strlen(content)) == (ssize_t) strlen(content));
        CHECK(fchmod(fd, mode) == 0);
        close(fd);
}

static void check_file(const char *dir, const char *name, const char *content, mode_t mode) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        CHECK(lstat(path, &st) == 0);
        if ((st.st_mode & 07777) != mode) {
                fprintf(stderr, "%s: mode %o, expected %o\n", path, st.st_mode & 07777, mode);
                exit(1);
        }
        if (content) {
                char *data = NULL;
                CHECK_OK(read_file(path, 1 << 20, &data, NULL));
                CHECK_STREQ(data, content);
                free(data);
        }
}

static void test_tar_roundtrip(void) {
        _cleanup_free_ char *src = tmpdir(), *dst = tmpdir();
        char path[512];
        int sv[2];

        write_mode(src, "plain", "hello\n", 0640);
        write_mode(src, "tool", "#!/bin/sh\necho tool\n", 0755);
        snprintf(path, sizeof(path), "%s/sub", src);
        CHECK(mkdir(path, 0700) == 0);
        write_mode(src, "sub/secret", "s3cret", 0600);
        snprintf(path, sizeof(path), "%s/link", src);
        CHECK(symlink("plain", path) == 0);
        /* A file bigger than one chunk, to cross frame boundaries. */
        char *big = malloc(200000 + 1);
        CHECK(big);
        for (size_t i = 0; i < 200000; i++)
                big[i] = (char) ('a' + i % 26);
        big[200000] = '\0';
        write_mode(src, "sub/big", big, 0644);
        if (geteuid() == 0) {
                snprintf(path, sizeof(path), "%s/plain", src);
                CHECK(chown(path, 1234, 4321) == 0);
        }

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                _exit(comm_send_tar(sv[1], 5, src) < 0 ? 1 : 0);
        }
        close(sv[1]);
        CHECK_OK(comm_recv_tar(sv[0], 5, dst, geteuid() == 0, NULL));
        int status;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(sv[0]);

        check_file(dst, "plain", "hello\n", 0640);
        check_file(dst, "tool", "#!/bin/sh\necho tool\n", 0755);
        check_file(dst, "sub", NULL, 0700);
        check_file(dst, "sub/secret", "s3cret", 0600);
        check_file(dst, "sub/big", big, 0644);
        char target[64] = {};
        snprintf(path, sizeof(path), "%s/link", dst);
        CHECK(readlink(path, target, sizeof(target) - 1) == 5);
        CHECK_STREQ(target, "plain");
        if (geteuid() == 0) {
                struct stat st;
                snprintf(path, sizeof(path), "%s/plain", dst);
                CHECK(stat(path, &st) == 0 && st.st_uid == 1234 && st.st_gid == 4321);
        }
        /* The target directory's own mode is not taken from the stream. */
        struct stat st;
        CHECK(stat(dst, &st) == 0 && (st.st_mode & 07777) == 0700);

        /* A single file arrives under its base name. */
        _cleanup_free_ char *one = tmpdir();
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        snprintf(path, sizeof(path), "%s/tool", src);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                _exit(comm_send_tar(sv[1], 6, path) < 0 ? 1 : 0);
        }
        close(sv[1]);
        CHECK_OK(comm_recv_tar(sv[0], 6, one, false, NULL));
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(sv[0]);
        check_file(one, "tool", "#!/bin/sh\necho tool\n", 0755);

        free(big);
        CHECK_OK(rm_rf(src));
        CHECK_OK(rm_rf(dst));
        CHECK_OK(rm_rf(one));
}

static la_ssize_t mem_write(struct archive *a, void *userdata, const void *p, size_t n) {
        CHECK_OK(buf_append(userdata, p, n));
        return (la_ssize_t) n;
}

/* A tar stream holding one file with the given name. */
static void make_tar(const char *name, buf *out) {
        struct archive *a = archive_write_new();
        CHECK(a);
        CHECK(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
        CHECK(archive_write_open(a, out, NULL, mem_write, NULL) == ARCHIVE_OK);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 3);
        CHECK(archive_write_header(a, e) == ARCHIVE_OK);
        CHECK(archive_write_data(a, "bad", 3) == 3);
        archive_entry_free(e);
        CHECK(archive_write_close(a) == ARCHIVE_OK);
        archive_write_free(a);
}

static void test_tar_unsafe(void) {
        const char *names[] = { "../escape", "a/../../escape", "/abs/escape" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *parent = tmpdir();
                char dir[512], escaped[512];
                _cleanup_buf_ buf tar = BUF_INIT(0);
                int sv[2];

                snprintf(dir, sizeof(dir), "%s/target", parent);
                make_tar(names[i], &tar);
                CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
                /* Small enough for the socket buffer: write everything, then read. */
                CHECK_OK(comm_send_data(sv[1], COMM_DATA, 9, tar.data, tar.len));
                CHECK_OK(comm_send_simple(sv[1], COMM_END, 9));
                CHECK_OK(comm_send_simple(sv[1], COMM_PING, 10));
                CHECK(comm_recv_tar(sv[0], 9, dir, false, NULL) == -EPERM);
                /* The rest of the stream was consumed: the next frame is the ping. */
                comm_msg m = {};
                CHECK_OK(comm_recv(sv[0], &m, NULL));
                CHECK(m.type == COMM_PING && m.id == 10);
                comm_msg_done(&m);
                snprintf(escaped, sizeof(escaped), "%s/escape", parent);
                CHECK(access(escaped, F_OK) < 0);
                close(sv[0]);
                close(sv[1]);
                CHECK_OK(rm_rf(parent));
        }
}

static void test_tar_remote_error(void) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *text = NULL;
        int sv[2];

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        CHECK_OK(comm_send_error(sv[1], 3, "no such file"));
        CHECK(comm_recv_tar(sv[0], 3, dir, false, &text) == -EREMOTEIO);
        CHECK_STREQ(text, "no such file");

        /* Garbage instead of a tar stream. */
        CHECK_OK(comm_send_data(sv[1], COMM_DATA, 4, "this is not a tar archive", 25));
        CHECK_OK(comm_send_simple(sv[1], COMM_END, 4));
        CHECK(comm_recv_tar(sv[0], 4, dir, false, NULL) < 0);

        /* The peer closing mid-stream. */
        CHECK_OK(comm_send_data(sv[1], COMM_DATA, 5, "x", 1));
        close(sv[1]);
        int r = comm_recv_tar(sv[0], 5, dir, false, NULL);
        CHECK(r == -EPIPE || r == -EIO || r == -EBADMSG);
        close(sv[0]);
        CHECK_OK(rm_rf(dir));
}

int main(void) {
        test_messages();
        test_malformed();
        test_tar_roundtrip();
        test_tar_unsafe();
        test_tar_remote_error();
        return 0;
}
