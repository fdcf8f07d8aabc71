/* HTTP client over libcurl: timeouts, capped bodies, retries with jittered backoff under a hard
 * deadline. Errors carry the method, URL and status so callers can log one clear line. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct http_request {
        const char *method;        /* "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"; NULL: GET */
        const char *url;
        char *const *headers;      /* "Name: value" strings, NULL-terminated; may be NULL */
        const void *body;          /* sent exactly as given (sign these bytes) */
        size_t body_len;
        long timeout_ms;           /* per attempt; 0: 10000 */
        size_t max_body;           /* cap on response body; 0: 4 MiB */
        /* Retries: transport errors, and statuses in retry_status (or 429/5xx when retry_status
         * is NULL) are retried with exponential jittered backoff starting at backoff_ms (0: 200)
         * and capped at backoff_max_ms (0: 5000), until attempts are used up (0: 1 attempt)
         * or the deadline would be exceeded. Each wait is random in [d/2, d] for the current
         * delay d, which doubles after every attempt. A retried 429 or 503 with a Retry-After
         * (seconds or HTTP-date) waits at least that long; when that wait would end past the
         * deadline (or is over 600 s), retrying stops at once (err says so).
         * The deadline is the earlier of deadline_ms from the call's start and deadline_at (an
         * absolute time_now_ms() value, e.g. the end of a caller's stage that spans many
         * requests); 0 is none for each. It also cuts an attempt's own timeout short; a
         * deadline_at already passed fails before any attempt with -ETIMEDOUT. */
        unsigned attempts;
        long backoff_ms;
        long backoff_max_ms;
        long deadline_ms;
        int64_t deadline_at;
        const int *retry_status;   /* 0-terminated list */
        /* TLS: CA bundle file, client certificate and key (PEM paths); all may be NULL. */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
        /* The same as PEM text in memory (NUL-terminated; may be NULL), e.g. a kubeconfig's
         * *-data fields. A PEM given here wins over the file of the same kind. key_pem is not
         * copied by libcurl (the caller owns and wipes it). */
        const char *ca_pem;
        const char *cert_pem;
        const char *key_pem;
        /* Do not verify the server's certificate or name. Only for a reply that is verified by
         * other means before anything in it is trusted (kubeadm-style discovery: a signed
         * document whose CA is then pinned); never together with credentials. */
        bool tls_no_verify;
        /* "host:port" to connect to instead of the URL's (may be NULL). Everything else still
         * uses the URL: the Host header and TLS verification of the URL's name or IP (e.g. a
         * guest's address reached through a port forward on 127.0.0.1). */
        const char *connect_to;
        /* A UNIX socket to connect to instead of the URL's host and port (may be NULL; an
         * absolute path shorter than 108 bytes). The URL still gives the scheme, Host header and
         * path; no proxy applies. A socket that is missing or refused (e.g. EACCES: the caller
         * may not open it) is a connection failure, -ECONNREFUSED. */
        const char *unix_socket;
        /* Streaming: when set, the response body is handed to on_body as it arrives, together
         * with the response's status, instead of being collected in resp->body (which stays
         * empty; max_body does not apply: the callback caps what it keeps). A negative return
         * aborts the transfer and http_do() returns that value. A streamed request is never
         * retried (attempts is taken as 1): bytes already delivered cannot be taken back. */
        int (*on_body)(long status, const void *data, size_t len, void *userdata);
        void *on_body_userdata;
        /* Cancellation (may be NULL): once *cancel is nonzero (a flag a signal handler sets, e.g.
         * interrupt_signal_flag()), no attempt starts, a wait between attempts ends within
         * TIME_CANCEL_SLICE_MS (time-util.h) and a transfer under way is aborted from libcurl's
         * progress callback (libcurl calls it at least once a second while it waits, and at
         * once when a signal interrupts its poll). http_do() then returns -ECANCELED. */
        const volatile sig_atomic_t *cancel;
} http_request;

typedef struct http_response {
        long status;               /* HTTP status of the final attempt; 0 if none arrived */
        buf body;                  /* response body (NUL-terminated) */
        char *content_type;        /* may be NULL */
        /* The final response's headers, "name: value" with the name lower-cased (at most 200;
         * NULL-terminated, may be NULL); see http_response_header(). */
        char **headers;
        /* Set by http_do() also when it fails: the attempts it made, and whether the deadline
         * ended them (no time left for another attempt or wait, an attempt's timeout cut short
         * by it and expired, or a Retry-After past it). */
        unsigned attempts;
        bool deadline_reached;
} http_response;

/* Perform the request. resp must be zero-initialized or hold a previous response; it is reset
 * first and must be freed with http_response_free() either way.
 *
 * Headers and body go out exactly as given: libcurl's own form Content-Type and
 * "Expect: 100-continue" are suppressed (give Content-Type in headers). Every method but GET and
 * HEAD sends its body, "Content-Length: 0" when there is none. Loopback and the metadata address
 * never go through a proxy from the environment.
 *
 * Returns 0 when a response arrived (any status: check resp->status). When the final attempt
 * got a retryable status, err (may be NULL) still says "GET http://x/y: HTTP 503 (3 attempts)",
 * "... (3 attempts, deadline reached)" when the deadline stopped the retries, or
 * "GET http://x/y: HTTP 429 with Retry-After 30 s, past the deadline (1 attempt)".
 * When the final attempt failed in transit (a retryable transport error, e.g. its timeout cut
 * short by the deadline) after an earlier attempt was answered, that answer is returned.
 * Returns a negative errno when no response arrived after all attempts: -ETIMEDOUT,
 * -ECONNREFUSED, -EHOSTUNREACH (name did not resolve), -ECONNRESET (connection dropped),
 * -ENOBUFS (body over the cap; not retried), -ECANCELED (req->cancel), on_body's own negative return, -EINVAL (malformed URL or a scheme other than
 * http/https; not retried), -EINVAL or -EOPNOTSUPP when libcurl refuses one of the request's
 * options (err names it, "libcurl refused CURLOPT_CAINFO: ..."; not retried), -EIO otherwise (TLS trust failures among them; not retried), and err
 * receives one line: "GET http://x/y: Connection refused (3 attempts)", with ", deadline
 * reached" after the count when the deadline ended the attempts. Secrets in headers or
 * body are never put into err. */
int http_do(const http_request *req, http_response *resp, buf *err);

/* An error status of a REST API as -errno: 400 -EINVAL, 401/403 -EACCES, 404 -ENOENT, 409 -EEXIST,
 * 429 -EBUSY, 5xx -EIO, any other -EPROTO. */
int http_status_to_errno(long status);

void http_response_free(http_response *resp);

/* The value of response header name (case-insensitive; leading blanks skipped) of the final
 * response, or NULL. Borrowed from resp. */
const char *http_response_header(const http_response *resp, const char *name);

/* Percent-encode s for a URL path segment or query value (RFC 3986 unreserved characters stay,
 * everything else becomes %XX). Returns a new string or NULL. */
char *http_escape(const char *s);

/* Percent-decode the len bytes at s into a new NUL-terminated string in *ret. plus_is_space:
 * '+' decodes to ' ' (query strings, as HTML forms and Go's url.ParseQuery treat them).
 * Returns 0, -EBADMSG for a malformed escape or an encoded NUL byte, -ENOMEM. */
int http_unescape(const char *s, size_t len, bool plus_is_space, char **ret);

/* Global libcurl init; call once from main() before threads. Returns 0 or -EIO. */
int http_global_init(void);
