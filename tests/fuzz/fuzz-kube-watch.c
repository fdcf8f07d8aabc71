/* Fuzz the watch stream decoder: the first byte sets the piece size (1-64 bytes), the rest is
 * the stream, fed in pieces as a chunked reply would arrive; events are checked and counted. */
#include <stdint.h>
#include <stdlib.h>

#include "kube-client.h"

static int on_event(const char *type, json_t *object, void *userdata) {
        unsigned *count = userdata;
        if (!type || !json_is_object(object))
                abort();
        (void) json_path_string(object, "metadata.resourceVersion");
        return ++*count > 1000 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        kube_watch_decoder d;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        unsigned count = 0;
        int r = 0;

        if (size == 0)
                return 0;
        size_t piece = (size_t) (data[0] % 64) + 1;
        kube_watch_decoder_init(&d, 16384);
        for (size_t i = 1; i < size && r == 0; i += piece) {
                size_t n = size - i < piece ? size - i : piece;
                r = kube_watch_decoder_feed(&d, data + i, n, on_event, &count, &err);
        }
        (void) kube_watch_decoder_idle(&d);
        kube_watch_decoder_done(&d);
        return 0;
}
