/* Fuzz the node role's user-data parser (bootagent/node-userdata.c): any input either parses
 * into a complete, valid result or fails with a reason that never carries the token's secret. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node-userdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        node_userdata u = { 0 };
        int r = node_userdata_parse((const char *) data, size, &u, &err);
        if (r >= 0) {
                if (!u.endpoint || !u.ca_pin || !node_userdata_endpoint_valid(u.endpoint) ||
                    strlen(u.token.id) != KUBE_TOKEN_ID_LEN || strlen(u.token.secret) != KUBE_TOKEN_SECRET_LEN ||
                    kube_bootstrap_pin_parse(u.ca_pin, (uint8_t[32]){ 0 }) < 0 ||
                    (u.node_name && !node_userdata_name_valid(u.node_name)))
                        abort();
                node_userdata_done(&u);
                return 0;
        }
        if (r != -EINVAL && r != -ENOMEM)
                abort();
        if (u.endpoint || u.ca_pin || u.node_name)
                abort();
        return 0;
}
