/* Fuzz the part of request parsing that is ours since libmicrohttpd parses the rest: the request
 * target as sent (http_server_parse_target: origin-form check, path/query split, path decoding)
 * and the query-parameter lookup over what it accepts. Input: a request target, e.g.
 * "/v1/a%20b?x=1&y". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http-server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        http_server_target t = {};

        if (size > HTTP_SERVER_MAX_HEAD)
                return 0;
        if (http_server_parse_target((const char *) data, size, &t) < 0)
                return 0;

        /* What the parser accepts must be usable the way the server uses it. */
        if (t.raw_path[0] != '/' || t.path[0] != '/' || strlen(t.path) > strlen(t.raw_path) ||
            strlen(t.raw_path) + (memchr(data, '?', size) ? 1 + strlen(t.query) : 0) != size)
                abort();
        http_server_request req = { .method = "GET", .path = t.path, .raw_path = t.raw_path,
                                    .query = t.query, .body = "" };
        free(http_server_query_param(&req, "a"));
        free(http_server_query_param(&req, ""));
        free(http_server_query_param(&req, "version"));
        /* The query parser on arbitrary bytes too (it must not need a valid target). */
        char *raw = strndup((const char *) data, size);
        if (raw) {
                free(http_server_query_lookup(raw, "a"));
                free(raw);
        }
        http_server_target_done(&t);
        return 0;
}
