/* Fuzz cloud.json parsing and validation. Input: the file's content. Any input must give either
 * a state whose lookups work or -EINVAL with a message. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "cloudstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        cloud_state *s = NULL;
        buf err = BUF_INIT(4096);

        int r = cloud_state_parse((const char *) data, size, &s, &err);
        if (r == -EINVAL && err.len == 0)
                abort();
        if (r >= 0)
                for (size_t i = 0; i < s->n_instances; i++)
                        if (cloud_find_instance(s, s->instances[i].id) == NULL ||
                            (s->instances[i].pool && !cloud_find_pool(s, s->instances[i].pool)))
                                abort();
        cloud_state_free(s);
        buf_free(&err);
        return 0;
}
