/* The HTTP/1.1 server of the project's local services (metadata, Vault-compatible secrets, pool
 * API) and of the test fakes: libmicrohttpd (MHD) underneath, one MHD daemon per listener, all
 * driven from one poll() loop in the caller's thread, so handlers run one at a time and need no
 * locks. One request per connection (every reply says "Connection: close"). Each listener
 * carries a tag so a handler knows which port the caller came through (that is how local
 * services bind a caller's identity, the way a source IP does in the cloud). */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct http_server http_server;

typedef struct http_server_request {
        const char *method;
        const char *path;          /* decoded path, without query */
        const char *raw_path;      /* path as sent (escaped), without query */
        const char *query;         /* raw query string after '?', "" if none */
        char **headers;            /* "name: value", names lower-cased */
        const char *body;          /* NUL-terminated for convenience */
        size_t body_len;
        const char *peer_addr;     /* textual peer IP; "" on a UNIX socket */
        const char *listener_tag;  /* tag given to http_server_listen() */
        /* TLS listeners (http_server_listen_tls()) only; false/NULL on plain HTTP. */
        bool tls;
        /* The client certificate (its leaf), when the client sent one and it verified against
         * the listener's client CA (chain, validity period, clientAuth usage when the
         * certificate restricts usages): its subject's CN (NULL if it has none) and O values
         * (NULL-terminated; empty when none). client_cert_verified says whether these are set. */
        bool client_cert_verified;
        /* The client sent a certificate that did not verify (servers such as kube-apiserver
         * answer 401 then); the identity fields stay NULL. */
        bool client_cert_rejected;
        const char *client_cn;
        char **client_orgs;
} http_server_request;

/* A streamed reply body (a Kubernetes watch): produce appends what it has to out and returns 0
 * to go on, > 0 to end the body once out is sent, < 0 to cut the connection (the client sees a
 * truncated chunked body). It is called from http_server_step(): once right after the handler
 * returned, then every interval_ms (<= 0: 200). out is capped at HTTP_SERVER_MAX_STREAM_BUFFER
 * unsent bytes (-ENOBUFS from buf_append: return < 0 then, the client is too slow). free_fn
 * (may be NULL) gets userdata once the connection is gone, whether the stream ended, failed or
 * the client went away (noticed at the next write) or the listener closed. */
typedef struct http_server_stream {
        int (*produce)(void *userdata, buf *out);
        void (*free_fn)(void *userdata);
        void *userdata;
        int interval_ms;
} http_server_stream;

typedef struct http_server_response {
        int status;                /* default 200 */
        const char *content_type;  /* default "application/json" (static string) */
        char **headers;            /* extra "Name: value" headers, owned */
        buf body;
        /* Set produce to stream the body after body's bytes, with chunked transfer encoding
         * (HTTP/1.1). The connection is then exempt from the I/O timeout: the stream decides
         * when it ends. If the handler fails (returns < 0), free_fn is called at once. */
        http_server_stream stream;
} http_server_response;

/* Handler: fill resp. A negative return sends 500 with a JSON error body. Runs in the thread
 * that calls http_server_step()/http_server_run(). */
typedef int (*http_server_handler)(const http_server_request *req, http_server_response *resp,
                                   void *userdata);

/* Returns 0 and a server without listeners in *ret, or -ENOMEM. */
int http_server_new(http_server_handler handler, void *userdata, http_server **ret);
/* Listen on addr:port (numeric IPv4 or IPv6 address, NULL: 127.0.0.1; port 0 = ephemeral). tag
 * is copied (may be NULL: ""). May be called between steps of a running server and from a
 * handler. Returns the bound port (> 0) or -errno (-EADDRINUSE, ...). */
int http_server_listen(http_server *h, const char *addr, uint16_t port, const char *tag);
/* Listen on a UNIX stream socket at path (absolute, shorter than sun_path's 108 bytes), so only
 * who may open the file can connect: the file gets mode 0600 right after bind(), and until then
 * only its directory guards it, so put it in a directory only its user can enter (0700). A
 * socket file left at path by a server that is gone (its connect is refused) is replaced; a live
 * one is not (-EADDRINUSE), nor anything that is not a socket (-EEXIST). tag as for
 * http_server_listen(); peer_addr is "" on such a listener. The file is removed when the
 * listener is closed (http_server_unlisten(), http_server_free()), unless another file has taken
 * its place since. Returns 0, -ENAMETOOLONG, -EINVAL (relative path) or another -errno of
 * bind() (-EACCES, -ENOENT for a missing directory, ...). */
int http_server_listen_unix(http_server *h, const char *path, const char *tag);
/* TLS for one listener (libmicrohttpd over GnuTLS). All PEM text; copied, so the caller may
 * free (and wipe) its copies once http_server_listen_tls() returns. */
typedef struct http_server_tls {
        const char *cert_pem;       /* the server certificate, then any intermediates */
        const char *key_pem;        /* its private key (unencrypted PEM) */
        /* CA certificate(s) for client certificates, or NULL. When set, every handshake asks for
         * a client certificate but does not require one (as kube-apiserver does, so bearer
         * tokens still work); the handler sees the outcome in http_server_request. */
        const char *client_ca_pem;
} http_server_tls;

/* Like http_server_listen(), over TLS. Returns the bound port, -EINVAL when GnuTLS refuses the
 * certificate, key or CA (malformed PEM, a key that does not match), or what
 * http_server_listen() returns. */
int http_server_listen_tls(http_server *h, const char *addr, uint16_t port, const char *tag,
                           const http_server_tls *tls);
/* Close every listener whose tag is tag, with its open connections: its port stops answering
 * (connection refused). From a handler, the close happens at the end of the current step.
 * Returns the number of listeners closed (0 if none had the tag). */
int http_server_unlisten(http_server *h, const char *tag);
/* Serve until *stop becomes non-zero (checked at least every 200 ms) or an error occurs.
 * Handlers run in the loop, so a slow handler delays everyone; slow clients do not (all socket
 * I/O is non-blocking). Returns 0 when stopped or -errno. */
int http_server_run(http_server *h, volatile sig_atomic_t *stop);
/* Serve at most one poll round of up to timeout_ms; for callers that drive the loop themselves.
 * Returns 0 or -errno. */
int http_server_step(http_server *h, int timeout_ms);
/* Shapes the body of the replies the server sends on its own: 400 for a malformed request,
 * 413 for a body over the cap, 500 when the handler failed. listener_tag and userdata as for the
 * handler; message is a short English text. Fill body (JSON; sent as application/json) and
 * return 0; a negative return or an empty body falls back to {"error":"message"}. */
typedef int (*http_server_error_body_fn)(const char *listener_tag, int status, const char *message,
                                         buf *body, void *userdata);
/* Install (or with NULL remove) the error body shaper. MHD's own replies (414, 431, and those for
 * requests it cannot parse) keep MHD's HTML bodies. */
void http_server_set_error_body(http_server *h, http_server_error_body_fn fn);
/* Change the per-connection I/O timeout for connections accepted from now on (default
 * HTTP_SERVER_IO_TIMEOUT_MS; <= 0 restores it). */
void http_server_set_io_timeout(http_server *h, int timeout_ms);
void http_server_free(http_server *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(http_server *, http_server_free);

/* Lookup a request header (name case-insensitive). Returns the value or NULL. */
const char *http_server_request_header(const http_server_request *req, const char *name);
/* Lookup a query parameter (decoded copy, caller frees) or NULL. Names and values are
 * percent-decoded with '+' meaning space; the first match wins. A parameter without '='
 * yields "". */
char *http_server_query_param(const http_server_request *req, const char *name);
/* Convenience: set status and a JSON body from a printf format. Returns 0 or -ENOMEM/-ENOBUFS. */
int http_server_respond(http_server_response *resp, int status, const char *fmt, ...) _printf_(3, 4);

/* Limits on one request.
 * - The head (request line and headers) must fit MHD's per-connection memory pool of
 *   HTTP_SERVER_MAX_HEAD bytes, which also holds MHD's own bookkeeping, so the usable head is
 *   a few KiB less. Over it: 431 (headers) or 414 (request line), sent by MHD.
 * - A body over HTTP_SERVER_MAX_BODY gets 413: from the Content-Length before any of the body
 *   is read, or, for a chunked body, as soon as the running total passes the cap.
 * - A connection whose request is not complete within the I/O timeout after accept (or whose
 *   reply is not taken within it after the handler ran) is closed without a reply; trickling
 *   bytes does not extend it.
 * - At most HTTP_SERVER_MAX_CONNECTIONS open connections per listener; more wait in the
 *   kernel's backlog. */
#define HTTP_SERVER_MAX_HEAD (64u * 1024u)
#define HTTP_SERVER_MAX_BODY (8u * 1024u * 1024u)
#define HTTP_SERVER_IO_TIMEOUT_MS 10000
#define HTTP_SERVER_MAX_CONNECTIONS 512
#define HTTP_SERVER_MAX_STREAM_BUFFER (16u * 1024u * 1024u)

/* The part of request parsing that is ours (MHD parses the rest): the request target as sent.
 * It must be origin-form ("/path[?query]", visible ASCII only). */
typedef struct http_server_target {
        char *raw_path;            /* as sent, without query */
        char *path;                /* percent-decoded ('+' stays '+') */
        char *query;               /* after '?', "" if none */
} http_server_target;

/* Split and decode the len bytes of target into *ret (free with http_server_target_done()).
 * Returns 0; -EBADMSG for a target that is not origin-form, has bytes outside visible ASCII,
 * a malformed escape or an encoded NUL in the path (400); -ENOMEM. */
int http_server_parse_target(const char *target, size_t len, http_server_target *ret);
void http_server_target_done(http_server_target *t);
/* Lookup a parameter in a raw query string, as http_server_query_param() does. */
char *http_server_query_lookup(const char *query, const char *name);
