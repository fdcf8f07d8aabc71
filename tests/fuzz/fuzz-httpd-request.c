/* Fuzz the HTTP request head parser (httpd_parse_request_head) and the query lookup on what it
 * accepts. Input: raw bytes as a client would send them before the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        httpd_request_head h = {};

        if (size > HTTPD_MAX_HEAD)
                return 0;
        if (httpd_parse_request_head((const char *) data, size, &h) < 0)
                return 0;

        /* What the parser accepts must be usable the way the server uses it. */
        httpd_request req = {
                .method = h.method,
                .path = h.path,
                .raw_path = h.raw_path,
                .query = h.query,
                .headers = h.headers,
                .body = "",
        };
        if (h.raw_path[0] != '/' || h.content_length > HTTPD_MAX_BODY)
                abort();
        for (char **hd = h.headers; *hd; hd++)
                if (!strstr(*hd, ": ") || strpbrk(*hd, "\r\n"))
                        abort();
        free(httpd_query_param(&req, "a"));
        free(httpd_query_param(&req, ""));
        (void) httpd_request_header(&req, "host");
        httpd_request_head_done(&h);
        return 0;
}
