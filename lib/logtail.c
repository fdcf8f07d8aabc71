#include "logtail.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "macro.h"

#define TAIL_MAX (64 * 1024)

void log_file_tail(const char *path, unsigned lines) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *data = NULL;
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return;
        off_t start = st.st_size > TAIL_MAX ? st.st_size - TAIL_MAX : 0;
        data = malloc(TAIL_MAX + 1);
        if (!data)
                return;
        ssize_t n = pread(fd, data, TAIL_MAX, start);
        if (n <= 0)
                return;
        data[n] = '\0';

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
