#include "logtail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include "buf.h"
#include "macro.h"

#define TAIL_MAX (64 * 1024)

/* The last TAIL_MAX bytes of path, NUL-terminated, in *ret. Returns their length or -errno. */
static ssize_t read_tail(const char *path, char **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *data = NULL;
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        off_t start = st.st_size > TAIL_MAX ? st.st_size - TAIL_MAX : 0;
        data = malloc(TAIL_MAX + 1);
        if (!data)
                return -ENOMEM;
        ssize_t n = pread(fd, data, TAIL_MAX, start);
        if (n < 0)
                return negative_errno();
        data[n] = '\0';
        *ret = TAKE_PTR(data);
        return n;
}

static bool blank(const char *s, const char *end) {
        for (; s < end; s++)
                if (*s != ' ' && *s != '\t' && *s != '\r')
                        return false;
        return true;
}

int log_file_tail_line(const char *path, unsigned lines, size_t max, char **ret) {
        _cleanup_free_ char *data = NULL;
        _cleanup_buf_ buf out = BUF_INIT(TAIL_MAX + 1);
        ssize_t n = read_tail(path, &data);
        if (n < 0)
                return (int) n;

        /* Walk back over `lines` non-blank lines. */
        ssize_t i = n;
        unsigned seen = 0;
        while (i > 0 && seen < lines) {
                ssize_t end = i;
                if (data[end - 1] == '\n')
                        end--;
                ssize_t begin = end;
                while (begin > 0 && data[begin - 1] != '\n')
                        begin--;
                if (!blank(data + begin, data + end))
                        seen++;
                i = begin;
        }
        for (char *line = data + i, *end; *line; line = *end ? end + 1 : end) {
                end = strchrnul(line, '\n');
                char *s = line, *e = end;
                while (s < e && (*s == ' ' || *s == '\t'))
                        s++;
                while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                        e--;
                if (s == e)
                        continue;
                if ((out.len > 0 && buf_puts(&out, " | ") < 0) || buf_append(&out, s, (size_t) (e - s)) < 0)
                        return -ENOMEM;
        }
        if (out.len > max) {
                /* Keep the end, which says most about why the program stopped. */
                size_t keep = max > 3 ? max - 3 : 0;
                char *cut = NULL;
                if (asprintf(&cut, "...%s", out.data + out.len - keep) < 0)
                        return -ENOMEM;
                *ret = cut;
                return 0;
        }
        *ret = buf_steal(&out);
        return *ret ? 0 : -ENOMEM;
}

void log_file_tail(const char *path, unsigned lines) {
        _cleanup_free_ char *data = NULL;
        ssize_t n = read_tail(path, &data);
        if (n <= 0)
                return;

        /* Walk back over `lines` line ends (a final newline does not start a line). */
        ssize_t i = n;
        if (i > 0 && data[i - 1] == '\n')
                i--;
        unsigned seen = 0;
        while (i > 0) {
                if (data[i - 1] == '\n' && ++seen == lines)
                        break;
                i--;
        }
        for (char *line = data + i, *end; *line; line = end) {
                end = strchrnul(line, '\n');
                fprintf(stderr, "    %.*s\n", (int) (end - line), line);
                if (*end)
                        end++;
        }
}
