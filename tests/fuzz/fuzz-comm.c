/* Fuzz the communicator's frame handling as the server sees it: a byte stream of frames is read
 * message by message (comm_recv), every valid message is re-encoded and must parse back the same,
 * and put requests extract their tar stream into a scratch directory (comm_recv_tar), as
 * `bootagent serve` does. exec is not run here: it would run fuzzer-chosen commands. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "comm.h"
#include "frame.h"
#include "fs.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const comm_msg *m) {
        _cleanup_cbor_ cbor_item_t *item = NULL;
        comm_msg again = {};

        if (comm_msg_build(m, &item) < 0)
                abort();
        if (comm_msg_parse(item, &again, NULL) < 0)
                abort();
        if (again.type != m->type || again.id != m->id || again.size != m->size ||
            strv_length(again.argv) != strv_length(m->argv) || !!again.path != !!m->path)
                abort();
        comm_msg_done(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_close_ int fd = memfd_create("fuzz-comm", MFD_CLOEXEC);
        char dir[] = "/tmp/fuzz-comm-XXXXXX";

        if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t) size) || lseek(fd, 0, SEEK_SET) != 0)
                abort();
        if (!mkdtemp(dir))
                abort();

        for (;;) {
                comm_msg m = {};
                int r = comm_recv(fd, &m, NULL);
                if (r == -EBADMSG)
                        continue;
                if (r < 0)
                        break;
                check_roundtrip(&m);
                if (m.type == COMM_PUT)
                        /* Extract below the scratch directory whatever path was asked for. */
                        (void) comm_recv_tar(fd, m.id, dir, false, NULL);
                comm_msg_done(&m);
        }
        (void) rm_rf(dir);
        return 0;
}
