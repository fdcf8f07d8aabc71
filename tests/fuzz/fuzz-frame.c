/* Fuzz the frame decoder: decode every frame in the input; each decoded item must re-encode into
 * a frame that decodes again. */
#include <stdint.h>
#include <stdlib.h>

#include "frame.h"

#define FUZZ_FRAME_MAX (1u << 20)

static void check_reencode(const cbor_item_t *item) {
        _cleanup_buf_ buf b = BUF_INIT(0);
        if (frame_encode(item, FUZZ_FRAME_MAX * 2, &b) < 0)
                return; /* allocation failure or a larger encoding than the input: not a bug */
        cbor_item_t *again = NULL;
        if (frame_decode(b.data, b.len, FUZZ_FRAME_MAX * 2, &again) != (ssize_t) b.len)
                abort();
        cbor_decref(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        while (size > 0) {
                cbor_item_t *item = NULL;
                ssize_t n = frame_decode(data, size, FUZZ_FRAME_MAX, &item);
                if (n <= 0)
                        break;
                if ((size_t) n > size || !item)
                        abort();
                check_reencode(item);
                cbor_decref(&item);
                data += n;
                size -= (size_t) n;
        }
        return 0;
}
