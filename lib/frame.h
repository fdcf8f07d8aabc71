/* Length-prefixed CBOR frames (libcbor): a 4-byte big-endian length, then one CBOR item.
 * Used by the communicator channel and by on-disk records (step cache, agent journal). */
#pragma once

#include <cbor.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "macro.h"

#define FRAME_MAX_DEFAULT (16u * 1024u * 1024u)

static inline void cbor_decref_one(cbor_item_t *item) { cbor_decref(&item); }
DEFINE_TRIVIAL_CLEANUP_FUNC(cbor_item_t *, cbor_decref_one);
#define _cleanup_cbor_ _cleanup_(cbor_decref_onep)

/* Serialize item into a frame appended to out. Returns 0 or -errno (-EMSGSIZE over max). */
int frame_encode(const cbor_item_t *item, size_t max, buf *out);
/* Write one frame to fd (handles short writes, EINTR). */
int frame_write(int fd, const cbor_item_t *item, size_t max);
/* Read one frame from fd. Returns 0 and a new item, -EMSGSIZE when the length exceeds max
 * (checked before allocating; the 4-byte header has been read but not the payload, so the stream
 * cannot be resynchronised: drop it), -EBADMSG for bytes that are not exactly one well-formed
 * CBOR item (also: a declared array/map/string size larger than the rest of the payload,
 * nesting deeper than 64, or any tag: frames carry untagged items only), -EPIPE on clean EOF before a frame, -EIO on EOF inside a frame. */
int frame_read(int fd, size_t max, cbor_item_t **ret);
/* Decode one frame from the start of data. Returns the number of bytes consumed (> 0), 0 if more
 * data is needed, or a negative errno as frame_read. */
ssize_t frame_decode(const void *data, size_t len, size_t max, cbor_item_t **ret);

/* Map helpers. Keys are definite-length text strings; other keys are skipped.
 * cbor_map_get: value for a text key or NULL (borrowed). */
cbor_item_t *cbor_map_get(const cbor_item_t *map, const char *key);
/* Copy a text string value; NULL if missing, not definite-length text, containing a NUL byte,
 * or on ENOMEM. */
char *cbor_map_get_string(const cbor_item_t *map, const char *key);
/* Unsigned integer value; -ENOENT if missing, -EBADMSG if not an unsigned int. */
int cbor_map_get_uint(const cbor_item_t *map, const char *key, uint64_t *ret);
/* Add key -> value to a definite or indefinite map; takes its own references (caller keeps theirs).
 * Returns 0, -ENOSPC when a definite map is full, -ENOMEM (also when value is NULL, so a failed
 * cbor_build_*() can be passed straight in). Integers are stored in the smallest width. */
int cbor_map_put(cbor_item_t *map, const char *key, cbor_item_t *value);
int cbor_map_put_string(cbor_item_t *map, const char *key, const char *value);
int cbor_map_put_uint(cbor_item_t *map, const char *key, uint64_t value);
