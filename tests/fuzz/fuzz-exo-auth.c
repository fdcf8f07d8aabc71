/* Fuzz exo_verify's Authorization header parser. Input: the header value; the request it is
 * checked against is fixed (one with a query, so signed-query-args matters). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exoscale.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *header = malloc(size + 1);
        if (!header)
                return 0;
        memcpy(header, data, size);
        header[size] = 0;

        int r = exo_verify(header, "GET", "/v2/zone", "k1=v1&k2=v2", NULL, 0,
                           "EXOxxxxxxxxxxxxxxxxxxxxxxxx",
                           "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", 3376684000);
        if (r != 0 && r != -EACCES && r != -ETIME && r != -EBADMSG && r != -ENOMEM)
                abort();
        free(header);
        return 0;
}
