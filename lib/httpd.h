/* A small single-threaded HTTP/1.1 server for the project's local services (metadata, Vault-
 * compatible secrets, pool API) and for test fakes. One request per connection (Connection:
 * close), request size capped, poll() loop. Several listeners may be added; each carries a tag
 * so a handler knows which port the caller came through (that is how local services bind a
 * caller's identity, the way a source IP does in the cloud). */
#pragma once

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct httpd httpd;

typedef struct httpd_request {
        const char *method;
        const char *path;          /* decoded path, without query */
        const char *raw_path;      /* path as sent (escaped), without query */
        const char *query;         /* raw query string after '?', "" if none */
        char **headers;            /* "name: value", names lower-cased */
        const char *body;          /* NUL-terminated for convenience */
        size_t body_len;
        const char *peer_addr;     /* textual peer IP */
        const char *listener_tag;  /* tag given to httpd_listen() */
} httpd_request;

typedef struct httpd_response {
        int status;                /* default 200 */
        const char *content_type;  /* default "application/json" (static string) */
        char **headers;            /* extra "Name: value" headers, owned */
        buf body;
} httpd_response;

/* Handler: fill resp. A negative return sends 500 with a JSON error body. */
typedef int (*httpd_handler)(const httpd_request *req, httpd_response *resp, void *userdata);

int httpd_new(httpd_handler handler, void *userdata, httpd **ret);
/* Listen on addr:port (numeric IPv4 or IPv6 address; port 0 = ephemeral). tag is copied (may be
 * NULL: ""). May be called between steps of a running server. Returns the bound port (> 0) or
 * -errno. */
int httpd_listen(httpd *h, const char *addr, uint16_t port, const char *tag);
/* Serve until *stop becomes non-zero (checked at least every 200 ms) or an error occurs.
 * Handlers run in the loop, so a slow handler delays everyone; slow clients do not (all socket
 * I/O is non-blocking). Returns 0 when stopped or -errno. */
int httpd_run(httpd *h, volatile sig_atomic_t *stop);
/* Serve at most one poll round of up to timeout_ms; for tests that drive the loop themselves. */
int httpd_step(httpd *h, int timeout_ms);
/* Change the per-connection I/O timeout (default HTTPD_READ_TIMEOUT_MS; <= 0 restores it). */
void httpd_set_io_timeout(httpd *h, int timeout_ms);
void httpd_free(httpd *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(httpd *, httpd_free);

/* Lookup a request header (name case-insensitive). Returns the value or NULL. */
const char *httpd_request_header(const httpd_request *req, const char *name);
/* Lookup a query parameter (decoded copy, caller frees) or NULL. Names and values are
 * percent-decoded with '+' meaning space; the first match wins. A parameter without '='
 * yields "". */
char *httpd_query_param(const httpd_request *req, const char *name);
/* Convenience: set status and a JSON body from a printf format. */
int httpd_respond(httpd_response *resp, int status, const char *fmt, ...) _printf_(3, 4);

/* Limits on one request. A head over the limit gets 431, a Content-Length over the body limit
 * 413. A connection whose request is not complete within the I/O timeout after accept (or whose
 * reply is not taken within it) is closed. */
#define HTTPD_MAX_HEAD (64u * 1024u)
#define HTTPD_MAX_BODY (8u * 1024u * 1024u)
#define HTTPD_READ_TIMEOUT_MS 10000

/* The request parser, exposed for tests and the fuzzer. */
typedef struct httpd_request_head {
        char *method;
        char *raw_path;            /* as sent, without query */
        char *path;                /* percent-decoded ('+' stays '+') */
        char *query;               /* after '?', "" if none */
        char **headers;            /* "name: value", names lower-cased, values trimmed */
        size_t content_length;     /* 0 when absent */
} httpd_request_head;

/* Parse a request head: the request line and header lines, each ending in CRLF, then the empty
 * line; len covers exactly that (no body). Fills *ret (free with httpd_request_head_done()).
 * Returns 0; -EBADMSG for malformed input (400); -EMSGSIZE for a Content-Length over
 * HTTPD_MAX_BODY (413); -ENOTSUP for Transfer-Encoding (chunked bodies are not supported:
 * 411); -ENOMEM. */
int httpd_parse_request_head(const char *head, size_t len, httpd_request_head *ret);
void httpd_request_head_done(httpd_request_head *h);
