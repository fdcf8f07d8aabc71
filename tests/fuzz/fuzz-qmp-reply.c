/* Fuzz QEMU's QMP replies as imgbuild reads them (builder/provider/qemu/qemu.c): the input is
 * what the QMP socket sends, given through a pipe to qemu_qmp_read_reply. Checked against
 * qemu_qmp_parse_line applied to each line by hand: the reader returns the result of the first
 * line that is not skipped (an answer, an error, garbage), -EPIPE when the input ends first, and
 * leaves the bytes after that line unread. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io-util.h"
#include "qemu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *) data;
        int expected = -EPIPE, fds[2];
        size_t off = 0, consumed = size;
        char rest[16 * 1024];

        /* The reader takes a byte per read: keep inputs small enough to run fast and to fit the
         * pipe without a writer thread. */
        if (size > sizeof(rest))
                return 0;
        for (;;) {
                const char *nl = memchr(text + off, '\n', size - off);
                if (!nl)
                        break;
                int r = qemu_qmp_parse_line(text + off, (size_t) (nl - text - off));
                if (r != 1 && r != 0 && r != -EREMOTEIO && r != -EBADMSG)
                        abort();
                off = (size_t) (nl - text) + 1;
                if (r <= 0) {
                        expected = r;
                        consumed = off;
                        break;
                }
        }

        if (pipe2(fds, O_CLOEXEC) < 0)
                abort();
        if (loop_write(fds[1], data, size) < 0)
                abort();
        close(fds[1]);
        if (qemu_qmp_read_reply(fds[0], 10000) != expected)
                abort();
        ssize_t n = read(fds[0], rest, sizeof(rest));
        close(fds[0]);
        if (n != (ssize_t) (size - consumed) || memcmp(rest, text + consumed, (size_t) n) != 0)
                abort();
        return 0;
}
