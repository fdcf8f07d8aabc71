#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "frame.h"

static cbor_item_t *sample(void) {
        cbor_item_t *m = cbor_new_indefinite_map();
        CHECK(m);
        CHECK_OK(cbor_map_put_string(m, "type", "exec"));
        CHECK_OK(cbor_map_put_uint(m, "id", 7));
        CHECK_OK(cbor_map_put_uint(m, "big", UINT64_MAX));
        _cleanup_cbor_ cbor_item_t *argv = cbor_new_indefinite_array();
        _cleanup_cbor_ cbor_item_t *a0 = cbor_build_string("qemu-img");
        _cleanup_cbor_ cbor_item_t *a1 = cbor_build_string("a b");
        CHECK(cbor_array_push(argv, a0) && cbor_array_push(argv, a1));
        CHECK_OK(cbor_map_put(m, "argv", argv));
        _cleanup_cbor_ cbor_item_t *bytes = cbor_build_bytestring((cbor_data) "\0\1\2", 3);
        CHECK_OK(cbor_map_put(m, "data", bytes));
        return m;
}

static void check_sample(const cbor_item_t *m) {
        uint64_t u;
        char *s = cbor_map_get_string(m, "type");
        CHECK_STREQ(s, "exec");
        free(s);
        CHECK_OK(cbor_map_get_uint(m, "id", &u));
        CHECK(u == 7);
        CHECK_OK(cbor_map_get_uint(m, "big", &u));
        CHECK(u == UINT64_MAX);
        cbor_item_t *argv = cbor_map_get(m, "argv");
        CHECK(argv && cbor_isa_array(argv) && cbor_array_size(argv) == 2);
        cbor_item_t *a1 = cbor_array_get(argv, 1);
        CHECK(cbor_string_length(a1) == 3 && memcmp(cbor_string_handle(a1), "a b", 3) == 0);
        cbor_decref(&a1);
        cbor_item_t *data = cbor_map_get(m, "data");
        CHECK(data && cbor_isa_bytestring(data) && cbor_bytestring_length(data) == 3);
        CHECK(memcmp(cbor_bytestring_handle(data), "\0\1\2", 3) == 0);
}

static void test_map_helpers(void) {
        _cleanup_cbor_ cbor_item_t *m = cbor_new_definite_map(2);
        uint64_t u = 99;

        CHECK_OK(cbor_map_put_uint(m, "n", 5));
        _cleanup_cbor_ cbor_item_t *v = cbor_build_string("x\0y");
        CHECK(v);
        _cleanup_cbor_ cbor_item_t *nul = cbor_build_stringn("x\0y", 3);
        CHECK_OK(cbor_map_put(m, "nul", nul));
        CHECK(nul->refcount == 2); /* the map took its own reference */
        CHECK(cbor_map_put_string(m, "full", "x") == -ENOSPC);
        CHECK(cbor_map_put(m, "null", NULL) == -ENOMEM);

        CHECK(cbor_map_get(m, "n"));
        CHECK(!cbor_map_get(m, "missing"));
        CHECK(!cbor_map_get(m, "N"));
        CHECK(!cbor_map_get(m, "nu"));
        CHECK(!cbor_map_get_string(m, "n"));     /* not text */
        CHECK(!cbor_map_get_string(m, "nul"));   /* embedded NUL */
        CHECK(cbor_map_get_uint(m, "nul", &u) == -EBADMSG);
        CHECK(cbor_map_get_uint(m, "missing", &u) == -ENOENT);
        CHECK(u == 99);
        CHECK_OK(cbor_map_get_uint(m, "n", &u));
        CHECK(u == 5);
        CHECK(!cbor_map_get(v, "n")); /* not a map */
        CHECK(!cbor_map_get(NULL, "n"));

        /* Non-text keys are skipped; a negative integer is not a uint. */
        _cleanup_cbor_ cbor_item_t *m2 = cbor_new_indefinite_map();
        _cleanup_cbor_ cbor_item_t *k1 = cbor_build_uint8(1);
        _cleanup_cbor_ cbor_item_t *neg = cbor_build_negint8(0);
        CHECK(cbor_map_add(m2, (struct cbor_pair){ .key = k1, .value = neg }));
        CHECK_OK(cbor_map_put(m2, "neg", neg));
        CHECK(cbor_map_get_uint(m2, "neg", &u) == -EBADMSG);
        CHECK(!cbor_map_get(m2, "\x01"));
}

static void test_encode_decode(void) {
        _cleanup_cbor_ cbor_item_t *m = sample();
        _cleanup_buf_ buf b = BUF_INIT(0);
        cbor_item_t *item;

        CHECK_OK(frame_encode(m, FRAME_MAX_DEFAULT, &b));
        size_t frame_len = b.len;
        CHECK(frame_len > 4);
        CHECK(((size_t) (uint8_t) b.data[2] << 8 | (uint8_t) b.data[3]) == frame_len - 4);

        /* Every proper prefix needs more data. */
        for (size_t n = 0; n < frame_len; n++)
                CHECK(frame_decode(b.data, n, FRAME_MAX_DEFAULT, &item) == 0);
        /* A second frame after the first: one frame is consumed at a time. */
        CHECK_OK(frame_encode(m, FRAME_MAX_DEFAULT, &b));
        CHECK(frame_decode(b.data, b.len, FRAME_MAX_DEFAULT, &item) == (ssize_t) frame_len);
        check_sample(item);
        cbor_decref(&item);
        CHECK(frame_decode(b.data + frame_len, b.len - frame_len, FRAME_MAX_DEFAULT, &item) ==
              (ssize_t) frame_len);
        cbor_decref(&item);

        /* Over the limit: by payload size, not counting the header. */
        CHECK(frame_decode(b.data, frame_len, frame_len - 5, &item) == -EMSGSIZE);
        CHECK(frame_decode(b.data, 4, frame_len - 5, &item) == -EMSGSIZE);
        CHECK(frame_decode(b.data, frame_len, frame_len - 4, &item) == (ssize_t) frame_len);
        cbor_decref(&item);

        /* Encoding over the limit leaves out unchanged; so does hitting out's own cap. */
        buf_clear(&b);
        CHECK_OK(buf_puts(&b, "keep"));
        CHECK(frame_encode(m, frame_len - 5, &b) == -EMSGSIZE);
        CHECK(b.len == 4);
        b.max = frame_len + 2;
        CHECK(frame_encode(m, FRAME_MAX_DEFAULT, &b) == -ENOBUFS);
        CHECK_STREQ(b.data, "keep");
        b.max = 0;

        /* Exact bytes: smallest integer width, definite map. */
        _cleanup_cbor_ cbor_item_t *small = cbor_new_definite_map(1);
        CHECK_OK(cbor_map_put_uint(small, "a", 5));
        buf_clear(&b);
        CHECK_OK(frame_encode(small, 100, &b));
        CHECK(b.len == 8 && memcmp(b.data, "\0\0\0\4\xa1\x61\x61\x05", 8) == 0);
        _cleanup_cbor_ cbor_item_t *wide = cbor_new_definite_map(1);
        CHECK_OK(cbor_map_put_uint(wide, "a", 0x10000));
        buf_clear(&b);
        CHECK_OK(frame_encode(wide, 100, &b));
        CHECK(b.len == 4 + 3 + 5);
}

/* Payloads that are not exactly one well-formed item. */
static void test_bad_payloads(void) {
        static const struct {
                const char *what;
                const char *bytes;
                size_t len;
        } bad[] = {
                { "empty", "", 0 },
                { "break at top level", "\xff", 1 },
                { "trailing item", "\x01\x02", 2 },
                { "array missing an element", "\x82\x01", 2 },
                { "string longer than payload", "\x65" "abc", 4 },
                { "reserved additional info", "\x1c", 1 },
                { "truncated argument", "\x19\x01", 2 },
                { "array of 2^32 elements", "\x9b\x00\x00\x00\x01\x00\x00\x00\x00", 9 },
                { "map of 2^63 pairs", "\xbb\x80\x00\x00\x00\x00\x00\x00\x00", 9 },
                { "string of 2^64-1 bytes", "\x7b\xff\xff\xff\xff\xff\xff\xff\xff", 9 },
                { "indefinite array without break", "\x9f\x01\x02", 3 },
                { "indefinite map with odd count", "\xbf\x61\x61\xff", 4 },
                { "indefinite string with int chunk", "\x7f\x01\xff", 3 },
                { "indefinite integer", "\x1f", 1 },
                { "tag without item", "\xc1", 1 },
                { "tag", "\xc1\x01", 2 },
                { "tag libcbor cannot read back", "\xc9\x01", 2 },
        };
        cbor_item_t *item = (cbor_item_t *) 0x1;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint8_t frame[64] = { 0, 0, 0, (uint8_t) bad[i].len };
                memcpy(frame + 4, bad[i].bytes, bad[i].len);
                ssize_t r = frame_decode(frame, 4 + bad[i].len, FRAME_MAX_DEFAULT, &item);
                if (r != -EBADMSG) {
                        fprintf(stderr, "%s: got %zd\n", bad[i].what, r);
                        CHECK(0);
                }
                CHECK(item == (cbor_item_t *) 0x1);
        }

        /* Nesting: 64 levels are fine, 65 are not. */
        uint8_t deep[4 + 66];
        for (unsigned levels = 64; levels <= 65; levels++) {
                memset(deep, 0x81, sizeof(deep));
                memcpy(deep, "\0\0\0", 3);
                deep[3] = (uint8_t) (levels + 1);
                deep[4 + levels] = 0x00;
                ssize_t r = frame_decode(deep, 4 + levels + 1, FRAME_MAX_DEFAULT, &item);
                if (levels == 64) {
                        CHECK(r == 4 + 65);
                        cbor_decref(&item);
                } else
                        CHECK(r == -EBADMSG);
        }

        /* Valid odd shapes: indefinite text split in chunks, 32-bit int, half float, simple. */
        static const uint8_t good[] = { 0, 0, 0, 17, 0x84, 0x7f, 0x62, 'a', 'b', 0x61, 'c', 0xff,
                                        0x1a, 0, 0, 0, 1, 0xf9, 0x3c, 0x00, 0xf5 };
        CHECK(frame_decode(good, sizeof(good), FRAME_MAX_DEFAULT, &item) == (ssize_t) sizeof(good));
        CHECK(cbor_isa_array(item) && cbor_array_size(item) == 4);
        cbor_decref(&item);
}

static void test_pipe(void) {
        int p[2];
        cbor_item_t *item;

        alarm(30); /* a frame_read that blocks is a failure, not a hang */

        /* Round trip several frames, then a clean EOF. */
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        _cleanup_cbor_ cbor_item_t *m = sample();
        for (int i = 0; i < 3; i++)
                CHECK_OK(frame_write(p[1], m, FRAME_MAX_DEFAULT));
        close(p[1]);
        for (int i = 0; i < 3; i++) {
                CHECK_OK(frame_read(p[0], FRAME_MAX_DEFAULT, &item));
                check_sample(item);
                cbor_decref(&item);
        }
        CHECK(frame_read(p[0], FRAME_MAX_DEFAULT, &item) == -EPIPE);
        close(p[0]);

        /* A frame bigger than the pipe buffer, written by a child while we read. */
        _cleanup_cbor_ cbor_item_t *big = cbor_new_definite_map(1);
        char *blob = malloc(1 << 20);
        CHECK(blob);
        memset(blob, 'q', 1 << 20);
        _cleanup_cbor_ cbor_item_t *blob_item = cbor_build_bytestring((cbor_data) blob, 1 << 20);
        free(blob);
        CHECK_OK(cbor_map_put(big, "blob", blob_item));
        CHECK(frame_write(-1, big, 1000) == -EMSGSIZE);
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                close(p[0]);
                _exit(frame_write(p[1], big, FRAME_MAX_DEFAULT) < 0);
        }
        close(p[1]);
        CHECK_OK(frame_read(p[0], FRAME_MAX_DEFAULT, &item));
        CHECK(cbor_bytestring_length(cbor_map_get(item, "blob")) == 1 << 20);
        cbor_decref(&item);
        int status;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(p[0]);

        /* Oversize length: rejected from the header alone, without waiting for (or allocating)
         * the payload; the writer stays open, so reading on would block. */
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        CHECK(write(p[1], "\xff\xff\xff\xf0", 4) == 4);
        CHECK(frame_read(p[0], FRAME_MAX_DEFAULT, &item) == -EMSGSIZE);
        CHECK(write(p[1], "\x00\x00\x00\x02\x01\x02", 6) == 6);
        CHECK(frame_read(p[0], 1, &item) == -EMSGSIZE);
        close(p[0]);
        close(p[1]);

        /* EOF inside the payload, and inside the header. */
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        CHECK(write(p[1], "\x00\x00\x00\x0a\x01\x02\x03", 7) == 7);
        close(p[1]);
        CHECK(frame_read(p[0], FRAME_MAX_DEFAULT, &item) == -EIO);
        close(p[0]);
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        CHECK(write(p[1], "\x00\x00", 2) == 2);
        close(p[1]);
        CHECK(frame_read(p[0], FRAME_MAX_DEFAULT, &item) == -EIO);
        close(p[0]);

        /* Garbage payload, then a good frame: the stream stays in sync after -EBADMSG. */
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        CHECK(write(p[1], "\x00\x00\x00\x02\xff\xff", 6) == 6);
        CHECK_OK(frame_write(p[1], m, FRAME_MAX_DEFAULT));
        close(p[1]);
        CHECK(frame_read(p[0], FRAME_MAX_DEFAULT, &item) == -EBADMSG);
        CHECK_OK(frame_read(p[0], FRAME_MAX_DEFAULT, &item));
        check_sample(item);
        cbor_decref(&item);
        CHECK(frame_read(p[0], FRAME_MAX_DEFAULT, &item) == -EPIPE);
        close(p[0]);

        /* Writing to a closed reader reports EPIPE (with SIGPIPE ignored). */
        CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        close(p[0]);
        CHECK(frame_write(p[1], m, FRAME_MAX_DEFAULT) == -EPIPE);
        close(p[1]);
        alarm(0);
}

int main(void) {
        test_map_helpers();
        test_encode_decode();
        test_bad_payloads();
        test_pipe();
        return 0;
}
