/* Fuzz the API stand-in's protobuf body decoder (kube-proto.c): any input either fails cleanly
 * or gives a JSON object with kind and apiVersion. */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"
#include "kube-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *j = NULL;
        int r = kube_proto_decode(data, size, &j);
        if (r == 0 && (!json_is_object(j) || !json_is_string(json_object_get(j, "kind")) ||
                       !json_is_string(json_object_get(j, "apiVersion"))))
                abort();
        if (r < 0 && j)
                abort();
        json_decref(j);
        return 0;
}
