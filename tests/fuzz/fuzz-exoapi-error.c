/* Fuzz exoapi_error_message(): any response body gives one bounded line without control
 * characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exoapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *m = exoapi_error_message((const char *) data, size);
        if (!m)
                return 0;
        size_t n = strlen(m);
        if (n > 512)
                abort();
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) m[i] < 0x20 || m[i] == 0x7f)
                        abort();
        free(m);
        return 0;
}
