/* HTTP client over libcurl: timeouts, capped bodies, retries with jittered backoff under a hard
 * deadline. Errors carry the method, URL and status so callers can log one clear line. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct http_request {
        const char *method;        /* "GET", "POST", "PUT", "DELETE", "HEAD"; NULL means GET */
        const char *url;
        char *const *headers;      /* "Name: value" strings, NULL-terminated; may be NULL */
        const void *body;          /* sent exactly as given (sign these bytes) */
        size_t body_len;
        long timeout_ms;           /* per attempt; 0: 10000 */
        size_t max_body;           /* cap on response body; 0: 4 MiB */
        /* Retries: transport errors, and statuses in retry_status (or 429/5xx when retry_status
         * is NULL) are retried with exponential jittered backoff starting at backoff_ms (0: 200)
         * and capped at backoff_max_ms (0: 5000), until attempts are used up (0: 1 attempt)
         * or deadline_ms (total, 0: none) would be exceeded. */
        unsigned attempts;
        long backoff_ms;
        long backoff_max_ms;
        long deadline_ms;
        const int *retry_status;   /* 0-terminated list */
        /* TLS: CA bundle file, client certificate and key (PEM paths); all may be NULL. */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
} http_request;

typedef struct http_response {
        long status;               /* HTTP status of the final attempt; 0 if none arrived */
        buf body;                  /* response body (NUL-terminated) */
        char *content_type;        /* may be NULL */
} http_response;

/* Perform the request. Returns 0 when a response arrived (any status: check resp->status),
 * or a negative errno when none did after all attempts (-ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -ENOBUFS for a body over the cap, -EIO otherwise). On failure err (may be NULL)
 * receives a one-line reason: "GET http://x/y: Connection refused (3 attempts)". The response is
 * reset first and must be freed with http_response_free() either way. Secrets in headers or
 * body are never put into err. */
int http_do(const http_request *req, http_response *resp, buf *err);

void http_response_free(http_response *resp);

/* Percent-encode s for a URL path segment or query value (unreserved characters stay).
 * Returns a new string or NULL. */
char *http_escape(const char *s);

/* Global libcurl init; call once from main() before threads. Returns 0 or -EIO. */
int http_global_init(void);
