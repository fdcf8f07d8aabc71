#include "io-util.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <unistd.h>

#include "macro.h"

ssize_t loop_read(int fd, void *buf, size_t nbytes) {
        uint8_t *p = buf;
        size_t done = 0;

        if (nbytes > SSIZE_MAX)
                return -EINVAL;
        while (done < nbytes) {
                ssize_t n = read(fd, p + done, nbytes - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

int loop_write(int fd, const void *buf, size_t nbytes) {
        const uint8_t *p = buf;

        while (nbytes > 0) {
                ssize_t n = write(fd, p, nbytes);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                /* write() returns 0 only for a zero-length request; treat it as an error rather
                 * than spin. */
                if (n == 0)
                        return -EIO;
                p += n;
                nbytes -= (size_t) n;
        }
        return 0;
}
