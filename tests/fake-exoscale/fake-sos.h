/* The fake object store of fake-exoscale (test code, not product): a path-style S3 subset under
 * /sos/{zone}/BUCKET/KEY, the calls lib/sos.h makes, every request checked with sigv4_verify()
 * (credential region = the zone, service "s3"; header form with X-Amz-Content-Sha256 matched
 * against the body, or a presigned URL) and refused with S3's XML errors (403
 * SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied, RequestTimeTooSkewed; 400
 * XAmzContentSHA256Mismatch, AuthorizationHeaderMalformed; 404 NoSuchBucket, NoSuchKey,
 * NoSuchUpload; 400 InvalidPart, InvalidPartOrder, EntityTooSmall). Objects live in memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "exoapi.h"
#include "http-server.h"
#include "json.h"

typedef struct fake_sos fake_sos;

/* zones: NULL-terminated, borrowed for the store's life. */
int fake_sos_new(const exoapi_credentials *creds, const char *const *zones, fake_sos **ret);
void fake_sos_free(fake_sos *s);
/* Buckets exist only when added (--sos-bucket); S3's minimum size of a part that is not the
 * last (default 5 MiB; --sos-min-part-size for small test files). */
int fake_sos_add_bucket(fake_sos *s, const char *name);
void fake_sos_set_min_part_size(fake_sos *s, size_t size);
/* The fake's own port: fake_sos_fetch() only downloads from http://127.0.0.1:PORT/sos/... */
void fake_sos_set_port(fake_sos *s, int port);

/* Test knobs: hold makes every part numbered 2 or more wait forever (the request is answered
 * with a body that never ends), counted in fake_sos_held(); fail_next_part answers the next part
 * 500 InternalError (storing nothing). */
void fake_sos_hold_parts(fake_sos *s);
void fake_sos_fail_next_part(fake_sos *s);
/* While on, every object DELETE is answered 500 InternalError. */
void fake_sos_fail_deletes(fake_sos *s, bool on);
long fake_sos_held(const fake_sos *s);

/* Serve a request whose path starts with "/sos/". Returns 0 or -ENOMEM. */
int fake_sos_handle(fake_sos *s, const http_server_request *req, http_server_response *resp);

/* What template registration does with its URL: GET it (checked exactly as a GET request to the
 * store, so only a valid presigned URL of this store works) and hash the object. Returns 0 with
 * the MD5 (hex) and size, or -errno with err saying what a download would have failed with. */
int fake_sos_fetch(fake_sos *s, const char *url, char md5_hex[33], size_t *ret_size, buf *err);

/* {"objects": ["BUCKET/KEY"...], "uploads": [{"bucket", "key", "id", "parts"}...], "puts": N,
 * "puts-with-content-md5": M} (new reference). A Content-MD5 that does not match the body is
 * refused with 400 BadDigest. */
json_t *fake_sos_state(const fake_sos *s);
