/* Fuzz the metadata value validator (a reply body from the metadata service). */
#include <stdint.h>
#include <stdlib.h>

#include "metadata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *v = NULL;
        if (metadata_parse_value((const char *) data, size, &v) >= 0)
                free(v);
        return 0;
}
