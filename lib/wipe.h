/* Memory that may hold secrets (tokens, keys, KV values): freed or moved only after zeroing, so
 * secrets do not linger in freed heap memory. */
#pragma once

#include <stddef.h>

/* Zero the whole allocation p (malloc_usable_size) and free it. NULL is fine. */
void free_wiped(void *p);

/* Like realloc(p, size), but the old block is zeroed before it is freed: a fresh block is
 * allocated and the first used bytes are copied. On failure p is untouched and NULL returned. */
void *realloc_wiped(void *p, size_t used, size_t size);
