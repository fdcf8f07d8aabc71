/* log_file_tail_line: the end of a log as one line for an error message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "logtail.h"

static char dir[] = "/tmp/test-logtail.XXXXXX";

static char *tail_of(const char *text, unsigned lines, size_t max) {
        char path[64];
        char *s = NULL;
        snprintf(path, sizeof(path), "%s/log", dir);
        CHECK_OK(write_file_atomic(path, text, strlen(text), 0600, (uid_t) -1, (gid_t) -1));
        CHECK_OK(log_file_tail_line(path, lines, max, &s));
        return s;
}

int main(void) {
        char *s;
        CHECK(mkdtemp(dir));

        /* Blank lines do not count, lines are trimmed and joined. */
        s = tail_of("first\n\n  second  \n\tthird\n\n", 2, 1024);
        CHECK_STREQ(s, "second | third");
        free(s);
        s = tail_of("first\n\n  second  \n\tthird\n\n", 10, 1024);
        CHECK_STREQ(s, "first | second | third");
        free(s);
        /* No final newline; CRLF. */
        s = tail_of("a\r\nb", 5, 1024);
        CHECK_STREQ(s, "a | b");
        free(s);
        s = tail_of("", 5, 1024);
        CHECK_STREQ(s, "");
        free(s);
        /* Over max: the front is cut, the end kept. */
        s = tail_of("0123456789\nabcdefghij\n", 2, 12);
        CHECK_STREQ(s, "...bcdefghij");
        CHECK(strlen(s) == 12);
        free(s);

        char path[64];
        snprintf(path, sizeof(path), "%s/missing", dir);
        CHECK(log_file_tail_line(path, 3, 100, &s) == -ENOENT);

        snprintf(path, sizeof(path), "%s/log", dir);
        CHECK(unlink(path) == 0);
        CHECK(rmdir(dir) == 0);
        return 0;
}
