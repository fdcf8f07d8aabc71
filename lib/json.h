/* JSON helpers over jansson. Objects are jansson's json_t; these add capped parsing with a
 * one-line error and typed lookups by dotted path. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "macro.h"

/* jansson provides json_decrefp(). */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Parse text (len bytes, need not be NUL-terminated). Returns 0 and a new reference, or -EBADMSG
 * with "line L column C: reason" in err (may be NULL; its old content is replaced). Rejects
 * duplicate keys in objects and NUL bytes in strings; any value (not only objects) is accepted
 * at the top level. */
int json_parse(const char *text, size_t len, json_t **ret, buf *err);

/* Make jansson zero every block it frees (process-wide; call once from main() before any JSON
 * is made): parsed replies and built requests carry tokens, keys and KV values. */
void json_wipe_on_free(void);

/* Look up a dotted path ("data.data.token"); NULL if any part is missing. A part made of decimal
 * digits indexes an array ("kvs.0.value"). Borrowed reference. */
json_t *json_path(json_t *root, const char *path);
/* Typed lookups by dotted path: NULL / false when missing or of another type. Borrowed. */
const char *json_path_string(json_t *root, const char *path);
/* Accept an integer, or a string of decimal digits (etcd sends 64-bit values as strings; only
 * json_path_i64 accepts a leading '-'; no '+', spaces or other bytes). Returns 0, -ENOENT when
 * missing, -EBADMSG when of another type or out of range (*ret untouched on failure). */
int json_path_u64(json_t *root, const char *path, uint64_t *ret);
int json_path_i64(json_t *root, const char *path, int64_t *ret);
bool json_path_bool(json_t *root, const char *path);

/* Serialize compactly with sorted keys. Returns a new string or NULL. */
char *json_dump_compact(const json_t *j);
