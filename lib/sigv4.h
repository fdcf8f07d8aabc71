/* AWS Signature Version 4 (AWS4-HMAC-SHA256), as S3-compatible object stores (Exoscale SOS)
 * take it: the Authorization header form and the query-string (presigned URL) form, and the
 * verification of both for servers that check requests (the test fake).
 *
 * Canonical request: METHOD \n canonical URI \n canonical query \n canonical headers \n
 * signed header names \n payload hash. This is the S3 flavour: the URI path is not normalized
 * ("." and ".." segments and repeated slashes stay) and its segments are encoded once (the
 * decoded path re-encoded with RFC 3986 unreserved characters kept, '/' kept). Query names and
 * values are decoded ('+' stays '+') and re-encoded the same way ('/' encoded), sorted by name
 * then value; X-Amz-Signature is never part of it. Header names are lower-cased, values trimmed
 * with inner runs of blanks collapsed to one space, headers sorted by name, repeated names joined
 * with ','. String to sign: "AWS4-HMAC-SHA256\nDATE\nSCOPE\nhex(sha256(canonical request))"
 * with SCOPE "YYYYMMDD/REGION/SERVICE/aws4_request"; the key is HMAC-chained from "AWS4"+secret
 * over the date, region, service and "aws4_request".
 *
 * Reproduces the AWS SigV4 test-suite vectors and the S3 documentation's examples
 * (tests/unit/lib/test-sigv4.c). The secret is used only as HMAC key and never copied. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* sha256 of the empty string: the payload hash of a request without a body. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_DATE_SIZE 17        /* "20150830T123600Z" and NUL */
#define SIGV4_SIGNATURE_SIZE 65   /* 64 hex digits and NUL */
/* How far a header-signed request's X-Amz-Date may be from the server's clock (S3: 15 min). */
#define SIGV4_MAX_SKEW_S 900
/* The longest X-Amz-Expires of a presigned URL (S3: 7 days). */
#define SIGV4_MAX_EXPIRES_S 604800

typedef struct sigv4_credentials {
        const char *access_key;
        const char *secret;
        const char *region;       /* Exoscale SOS: the zone, e.g. "ch-gva-2" */
        const char *service;      /* "s3" */
} sigv4_credentials;

/* t as "YYYYMMDDTHHMMSSZ" (UTC) into out. */
void sigv4_format_date(time_t t, char out[SIGV4_DATE_SIZE]);

/* Append the canonical request to out. path: as sent on the wire, without query ("" means "/");
 * query: raw query string without '?' (may be NULL); headers: "Name: value" strings,
 * NULL-terminated; only those named in signed_names (';'-separated lower-case names, NULL: all)
 * are included, and every name in signed_names must be present (-ENOENT otherwise). When
 * signed_names is NULL, the ';'-joined sorted names are appended to ret_signed_names (may be
 * NULL). Returns 0, -EBADMSG for a malformed escape or header, -ENOENT, -ENOMEM. */
int sigv4_canonical_request(const char *method, const char *path, const char *query, char *const *headers,
                            const char *signed_names, const char *payload_hash, buf *out,
                            buf *ret_signed_names);

/* The hex signature of a canonical request made at amz_date with creds. Returns 0, -EINVAL
 * (malformed date or missing credentials), -ENOMEM. */
int sigv4_signature(const sigv4_credentials *creds, const char *amz_date, const char *canonical_request,
                    char out[SIGV4_SIGNATURE_SIZE]);

/* The Authorization header value for a request carrying headers (which must include Host and
 * X-Amz-Date = amz_date, and for S3 X-Amz-Content-Sha256 = payload_hash), signing all of them:
 *   "AWS4-HMAC-SHA256 Credential=KEY/SCOPE, SignedHeaders=a;b, Signature=HEX"
 * appended to out. Returns 0 or what the functions above return. */
int sigv4_authorization(const sigv4_credentials *creds, const char *amz_date, const char *method,
                        const char *path, const char *query, char *const *headers, const char *payload_hash,
                        buf *out);

/* A presigned URL for method on url ("scheme://host[:port]/path[?query]"; the path as it goes on
 * the wire) valid for expires_s seconds (1..SIGV4_MAX_EXPIRES_S) from amz_date, signing only the
 * Host header (the URL's host[:port]) and UNSIGNED-PAYLOAD. The X-Amz-* parameters are appended
 * to the URL's query. Returns 0 and a new string in *ret, -EINVAL (malformed URL, expiry out
 * of range), -ENOMEM. */
int sigv4_presign(const sigv4_credentials *creds, const char *amz_date, const char *method, const char *url,
                  long expires_s, char **ret);

/* Check a request the way S3 does, in the header form (Authorization: AWS4-HMAC-SHA256 ...) or
 * the query form (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
 * X-Amz-SignedHeaders, X-Amz-Signature). headers: as received ("name: value", any case); the
 * header form needs X-Amz-Date (or Date is refused) and X-Amz-Content-Sha256, which must be
 * UNSIGNED-PAYLOAD or equal body_sha256 (the hex sha256 of the body received). The credential
 * must name creds->access_key, creds->region and creds->service. Returns
 *   0           good
 *   -EACCES     signature mismatch (S3: SignatureDoesNotMatch)
 *   -EPERM      unknown access key (InvalidAccessKeyId)
 *   -ETIME      presigned URL expired, or X-Amz-Date too far from now (AccessDenied /
 *               RequestTimeTooSkewed)
 *   -EILSEQ     X-Amz-Content-Sha256 does not match the body (XAmzContentSHA256Mismatch)
 *   -ENOKEY     no signature at all (AccessDenied)
 *   -EBADMSG    malformed (AuthorizationHeaderMalformed / AuthorizationQueryParametersError),
 *               including a wrong region or service in the scope
 *   -ENOMEM
 * and err (may be NULL) gets one line saying why (never the secret). */
int sigv4_verify(const sigv4_credentials *creds, const char *method, const char *raw_path, const char *query,
                 char *const *headers, const char *body_sha256, time_t now, buf *err);

/* Percent-encode the len bytes at s as SigV4 wants: unreserved characters (A-Z a-z 0-9 - _ . ~)
 * stay, '/' stays when keep_slash, everything else becomes %XX (upper-case hex). Appends to out.
 * Returns 0 or -ENOMEM. */
int sigv4_uri_encode(const char *s, size_t len, bool keep_slash, buf *out);
