/* http_do for the agent's clients: the transport's reason goes to err only when no response
 * arrived, so a retried error status is described once, by the caller that reads the body. */
#pragma once

#include "http.h"

static inline int request_do(const http_request *req, http_response *resp, buf *err) {
        _cleanup_buf_ buf e = BUF_INIT(1024);
        int r = http_do(req, resp, &e);
        if (r < 0 && err && e.data)
                buf_puts(err, e.data);
        return r;
}
