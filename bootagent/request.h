/* http_do for the agent's clients, under the deadline of the stage that makes the request. The
 * transport's reason goes to err only when no response arrived, so a retried error status is
 * described once, by the caller that reads the body. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "http.h"

/* One stage's time budget (stage.h: stage_deadline()): every request of the stage, its retries
 * and waits included, ends by at. */
typedef struct request_deadline {
        int64_t at;          /* time_now_ms() value; 0: none, each request gets ms of its own */
        long ms;             /* the configured length */
        unsigned requests;   /* HTTP attempts made under it */
        bool reached;        /* a request was stopped by it */
} request_deadline;

/* Perform req under dl (may be NULL): deadline_at becomes dl->at, and a deadline_ms of 0 becomes
 * dl->ms (a request's own shorter deadline_ms still applies). Counts the attempts in dl. */
static inline int request_do(const http_request *req, request_deadline *dl, http_response *resp, buf *err) {
        _cleanup_buf_ buf e = BUF_INIT(1024);
        http_request q = *req;
        if (dl) {
                if (q.deadline_ms == 0)
                        q.deadline_ms = dl->ms;
                q.deadline_at = dl->at;
        }
        int r = http_do(&q, resp, &e);
        if (dl) {
                dl->requests += resp->attempts;
                dl->reached = dl->reached || resp->deadline_reached;
        }
        if (r < 0 && err && e.data)
                buf_puts(err, e.data);
        return r;
}
