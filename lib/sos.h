/* Exoscale Simple Object Storage (SOS), an S3-compatible object store: the few S3 calls a template
 * upload needs, signed with AWS SigV4 (lib/sigv4.h; region = the zone, service "s3"), path-style
 * URLs ENDPOINT/BUCKET/KEY on the zone's endpoint https://sos-{zone}.exo.io.
 *
 * Errors: every call returns >= 0 or a negative errno; the one-line reason for the last failure
 * is then in sos_error(), e.g.
 *   "PUT https://sos-ch-gva-2.exo.io/bucket/key?partNumber=2&uploadId=ID: HTTP 403: SignatureDoesNotMatch: The request signature ..."
 * It never holds the secret. HTTP statuses map to errno as in exoapi.h: 400 -EINVAL, 401/403
 * -EACCES, 404 -ENOENT, 409 -EEXIST, 5xx -EIO, others -EPROTO. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

#define SOS_DEFAULT_ENDPOINT "https://sos-{zone}.exo.io"
/* S3's limits on a multipart upload: parts 1..10000, each but the last at least 5 MiB, each at
 * most 5 GiB; a single PUT at most 5 GiB. */
#define SOS_MAX_PARTS 10000u
#define SOS_MIN_PART_SIZE (5u * 1024u * 1024u)
#define SOS_MAX_PART_SIZE (5ull * 1024u * 1024u * 1024u)

typedef struct sos sos;

/* New client for zone; copies key and secret (the Exoscale API key pair: SOS takes the same).
 * Returns 0, -EINVAL (an empty argument), -ENOMEM. */
int sos_new(const char *key, const char *secret, const char *zone, sos **ret);
void sos_free(sos *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(sos *, sos_free);

/* Endpoint URL without the trailing '/', "{zone}" replaced by the zone (default
 * SOS_DEFAULT_ENDPOINT; the test fake: "http://127.0.0.1:PORT/sos/{zone}"). Returns 0 or -ENOMEM. */
int sos_set_endpoint(sos *s, const char *url_template);
int sos_set_zone(sos *s, const char *zone);
/* As exoapi_set_cancel(): once *cancel is nonzero, calls fail with -ECANCELED within a second. */
void sos_set_cancel(sos *s, const volatile sig_atomic_t *cancel);
/* The reason for the last failed call (never NULL). */
const char *sos_error(const sos *s);

/* PUT the len bytes at data as BUCKET/KEY (one request; at most 5 GiB). *ret_etag (may be NULL)
 * gets the ETag the store answered, quotes included. Retried on 5xx and transport errors. */
int sos_put_object(sos *s, const char *bucket, const char *key, const void *data, size_t len, char **ret_etag);
/* DELETE BUCKET/KEY; deleting an object that does not exist succeeds, as in S3. */
int sos_delete_object(sos *s, const char *bucket, const char *key);

/* Multipart upload: create (returns the upload id), put parts 1..n (each returns its ETag),
 * complete with the ETags in part order (etags: NULL-terminated, etags[i] for part i+1), or
 * abort (the parts are dropped; aborting an unknown upload is -ENOENT). A complete that the
 * store answers 200 with an <Error> body fails (-EIO) as S3 documents. Creating and completing
 * are not retried; parts are. */
int sos_multipart_create(sos *s, const char *bucket, const char *key, char **ret_upload_id);
int sos_multipart_put_part(sos *s, const char *bucket, const char *key, const char *upload_id, unsigned part,
                           const void *data, size_t len, char **ret_etag);
int sos_multipart_complete(sos *s, const char *bucket, const char *key, const char *upload_id, char *const *etags);
int sos_multipart_abort(sos *s, const char *bucket, const char *key, const char *upload_id);
/* The ids of the unfinished multipart uploads of exactly BUCKET/KEY (first page of
 * ListMultipartUploads with prefix KEY: up to 1000). *ret may be NULL when there are none. */
int sos_multipart_list(sos *s, const char *bucket, const char *key, char ***ret_upload_ids);

/* A presigned URL for method on BUCKET/KEY, valid expires_s seconds from now. Returns 0,
 * -EINVAL, -ENOMEM. */
int sos_presign(sos *s, const char *method, const char *bucket, const char *key, long expires_s, char **ret_url);

/* S3 XML replies (untrusted input; fuzzed by tests/fuzz/fuzz-sos-xml.c). No DTDs, namespaces
 * ignored, elements found by name:
 * sos_xml_element: the next element <tag ...>...</tag> at or after *pos in the len bytes at xml
 * (a self-closing <tag/> is empty); returns 1 with its raw inner content (borrowed) and *pos past
 * it, 0 when there is none, -EBADMSG when it is not closed. */
int sos_xml_element(const char *xml, size_t len, size_t *pos, const char *tag, const char **ret_inner,
                    size_t *ret_inner_len);
/* The text of the first <tag> in xml with the five predefined entities and &#N; / &#xN; decoded
 * (at most 64 KiB; markup inside is kept as it is). Returns 0 and a new string, -ENOENT, -EBADMSG
 * (unclosed element, bad entity, NUL), -ENOMEM. */
int sos_xml_text(const char *xml, size_t len, const char *tag, char **ret);
/* "Code: Message" of an S3 <Error> body (each cut at 200 and 300 bytes), else the body's first
 * 200 bytes; control characters replaced by spaces. Returns a new string ("" for an empty body) or NULL on ENOMEM. */
char *sos_error_message(const char *body, size_t len);
