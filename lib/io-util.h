/* Blocking read and write loops that retry EINTR and short transfers (systemd's io-util). For
 * descriptors that need poll(), non-blocking handling or a deadline, loop by hand instead. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Read from fd into buf until nbytes bytes have arrived or EOF. Returns the number of bytes read
 * (less than nbytes only at EOF; 0 at EOF right away) or -errno (-EAGAIN on an empty
 * non-blocking descriptor). Bytes read before an error are in buf but not counted. */
ssize_t loop_read(int fd, void *buf, size_t nbytes);

/* Write all nbytes bytes of buf to fd. Returns 0, or -errno (-EIO if write() makes no progress).
 * On failure an unknown prefix of buf may have been written. */
int loop_write(int fd, const void *buf, size_t nbytes);
