/* Fuzz the Kubernetes API reply handling: the first byte picks the HTTP status, the rest is the
 * body, which goes through kube_parse_reply (JSON objects on 2xx, metav1.Status or quoted text
 * otherwise) with and without an error buffer. */
#include <stdint.h>
#include <stdlib.h>

#include "kube-client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const long statuses[] = { 200, 201, 204, 400, 401, 403, 404, 409, 410, 422, 429, 500, 502, 503, 302, 0 };
        _cleanup_buf_ buf err = BUF_INIT(4096);
        json_t *j = NULL;

        if (size == 0)
                return 0;
        long status = statuses[data[0] % 16];
        int r = kube_parse_reply("GET", "https://127.0.0.1:6443/api/v1/nodes", status, (const char *) data + 1,
                                 size - 1, &j, &err);
        if (r == 0) {
                if (!j)
                        abort();
                json_decref(j);
        } else if (r > 0 || j || !err.data)
                abort(); /* an error always says something */
        (void) kube_parse_reply("GET", "u", status, (const char *) data + 1, size - 1, NULL, NULL);
        return 0;
}
