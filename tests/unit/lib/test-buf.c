#include <errno.h>
#include <stdint.h>

#include "buf.h"
#include "check.h"

static void test_append(void) {
        _cleanup_buf_ buf b = BUF_INIT(0);

        /* An empty buffer has no data until something is appended; then it is NUL-terminated. */
        CHECK(b.len == 0 && !b.data);
        CHECK_OK(buf_append(&b, "", 0));
        CHECK(b.data && b.data[0] == 0 && b.len == 0);
        CHECK_OK(buf_append(&b, "ab", 2));
        CHECK_OK(buf_puts(&b, "cd"));
        CHECK_OK(buf_printf(&b, "-%d-%s", 42, "x"));
        CHECK_STREQ(b.data, "abcd-42-x");
        CHECK(b.len == 9);

        /* Binary data with NULs; growth past the initial allocation. */
        buf_clear(&b);
        CHECK(b.len == 0 && b.data[0] == 0);
        for (int i = 0; i < 1000; i++)
                CHECK_OK(buf_append(&b, "\0\1\2", 3));
        CHECK(b.len == 3000);
        CHECK(b.data[2999] == 2 && b.data[3000] == 0);
        CHECK(b.cap > b.len);
}

static void test_cap(void) {
        _cleanup_buf_ buf b = BUF_INIT(8);

        CHECK_OK(buf_append(&b, "12345", 5));
        CHECK(buf_append(&b, "6789", 4) == -ENOBUFS);
        CHECK_STREQ(b.data, "12345"); /* unchanged */
        CHECK_OK(buf_append(&b, "678", 3)); /* exactly at the cap */
        CHECK_STREQ(b.data, "12345678");
        CHECK(buf_append(&b, "9", 1) == -ENOBUFS);
        CHECK(buf_printf(&b, "%s", "") == 0);
        CHECK(buf_printf(&b, "%d", 1) == -ENOBUFS);
        CHECK(buf_puts(&b, "x") == -ENOBUFS);
        CHECK(b.len == 8);

        /* Lengths that would overflow size_t arithmetic are refused, not wrapped. */
        CHECK(buf_append(&b, "x", SIZE_MAX) == -ENOBUFS);
        CHECK(buf_append(&b, "x", SIZE_MAX - 4) == -ENOBUFS);

        buf d = BUF_INIT(0);
        CHECK(buf_append(&d, "x", BUF_DEFAULT_MAX + 1) == -ENOBUFS);
        CHECK(!d.data);
        buf_free(&d);

        /* printf output exactly at the cap, then over it. */
        buf p = BUF_INIT(4);
        CHECK_OK(buf_printf(&p, "%04d", 7));
        CHECK_STREQ(p.data, "0007");
        buf_clear(&p);
        CHECK(buf_printf(&p, "%05d", 7) == -ENOBUFS);
        CHECK(p.len == 0 && p.data[0] == 0);
        buf_free(&p);
}

static void test_steal_free(void) {
        buf b = BUF_INIT(0);
        char *s = buf_steal(&b);
        CHECK_STREQ(s, ""); /* never NULL for an empty buffer */
        free(s);

        CHECK_OK(buf_puts(&b, "hello"));
        s = buf_steal(&b);
        CHECK_STREQ(s, "hello");
        CHECK(!b.data && b.len == 0 && b.cap == 0);
        free(s);

        /* Usable again after steal and free. */
        CHECK_OK(buf_puts(&b, "again"));
        CHECK_STREQ(b.data, "again");
        buf_free(&b);
        CHECK(!b.data && b.len == 0);
        buf_free(&b); /* twice is fine */

        CHECK_OK(buf_puts(&b, "secret"));
        buf_free_secret(&b);
        CHECK(!b.data && b.len == 0 && b.cap == 0);
        buf_free_secret(&b);
}

/* buf_printf keeps errno: %m and a "return buf_printf(...), -errno" both see the caller's error,
 * also when the buffer grows (realloc) in between. */
static void test_printf_errno(void) {
        _cleanup_buf_ buf b = BUF_INIT(0);
        char big[1000];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;

        errno = EACCES;
        CHECK_OK(buf_printf(&b, "%s: %m", big));
        CHECK(errno == EACCES);
        CHECK(strstr(b.data, strerror(EACCES)));

        _cleanup_buf_ buf small = BUF_INIT(4);
        errno = ENOENT;
        CHECK(buf_printf(&small, "%s", big) == -ENOBUFS);
        CHECK(errno == ENOENT);
}

int main(void) {
        test_printf_errno();
        test_append();
        test_cap();
        test_steal_free();
        return 0;
}
