/* Exoscale API v2 request signing (EXO2-HMAC-SHA256), see shared reference protocols.md §1.
 * Used by the API client (builder and bootagent discovery) and by servers that verify requests. */
#pragma once

#include <stdint.h>
#include <time.h>

#include "buf.h"

/* Build the Authorization header value for one request:
 *   "EXO2-HMAC-SHA256 credential=KEY[,signed-query-args=a;b],expires=T,signature=SIG"
 * method: "GET"...; path: escaped path as sent, including "/v2"; query: raw query string without
 * '?' (may be NULL or ""), values percent-encoded as on the wire (they are decoded before signing;
 * multi-valued parameters are not signed); body/body_len: exact bytes sent. Appends to out.
 * The secret is never copied anywhere but the HMAC. Returns 0 or -errno. */
int exo_sign(const char *method, const char *path, const char *query, const void *body,
             size_t body_len, const char *api_key, const char *api_secret, int64_t expires,
             buf *out);

/* Verify an Authorization header the way the API does: parse it, check the key is api_key,
 * recompute the signature over the request with api_secret, and check expires > now.
 * Returns 0, -EACCES for a wrong signature or key, -ETIME for an expired request, -EBADMSG for a
 * malformed header. */
int exo_verify(const char *authorization, const char *method, const char *path, const char *query,
               const void *body, size_t body_len, const char *api_key, const char *api_secret,
               time_t now);
