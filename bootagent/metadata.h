/* Instance identity from the metadata service (Exoscale paths, protocols.md §3). */
#pragma once

#include "buf.h"
#include "macro.h"
#include "request.h"

typedef struct identity {
        char *instance_id;
        char *zone;
        char *local_ipv4;
        char *public_ipv4;
} identity;

/* Validate one metadata value: plain text, one line (a trailing newline is dropped), printable,
 * 1..255 bytes. Returns 0 and a new string, or -EBADMSG. */
int metadata_parse_value(const char *body, size_t len, char **ret);

/* GET <base>/latest/meta-data/<key> with jittered retries until the deadline dl (its requests
 * counted there), through the UNIX socket unix_socket when not NULL (the URL then gives only
 * Host and path). Returns 0, -ENOENT for 404, -EBADMSG for a malformed value, -EPROTO for
 * another status, or the transport error; a one-line reason goes to err. */
int metadata_get(const char *base_url, const char *unix_socket, const char *key, request_deadline *dl, char **ret,
                 buf *err);

/* Fetch instance-id, availability-zone, local-ipv4 and public-ipv4 (base_url and unix_socket as
 * for metadata_get()), all under dl: with dl->at set, the four keys together (retries included)
 * end by then. */
int identity_fetch(const char *base_url, const char *unix_socket, request_deadline *dl, identity *ret, buf *err);

/* GET <base>/latest/user-data (the text the platform gave the instance) with jittered retries
 * until the deadline dl, capped at max bytes (base_url and unix_socket as for metadata_get()).
 * Returns 0 and the body (NUL-terminated, may hold secrets: free_secret) in *ret with its length
 * in *ret_len, -ENOENT for 404, -ENOBUFS over the cap, -EPROTO for another status, or the
 * transport error; a one-line reason goes to err. */
int metadata_user_data(const char *base_url, const char *unix_socket, request_deadline *dl, size_t max, char **ret,
                       size_t *ret_len, buf *err);
void identity_done(identity *id);
