/* Fuzz exoapi_operation_parse() on any JSON the API (or something posing as it) may return for
 * GET /operation/ID. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "exoapi.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *j = NULL;
        exoapi_operation op;

        if (json_parse((const char *) data, size, &j, NULL) < 0)
                return 0;
        int r = exoapi_operation_parse(j, &op);
        if (r == 0 && (!op.id || !*op.id || op.state > EXOAPI_OP_TIMEOUT))
                abort();
        if (r != 0 && r != -EBADMSG)
                abort();
        json_decref(j);
        return 0;
}
