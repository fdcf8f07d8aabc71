/* Growable byte buffer with a hard cap, for anything that grows from network or file input.
 * The data is always NUL-terminated (not counted in len) so text can be used as a C string. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#include "macro.h"

typedef struct buf {
        char *data;
        size_t len;
        size_t cap; /* allocated bytes */
        size_t max; /* hard limit on len; 0 means BUF_DEFAULT_MAX */
} buf;

#define BUF_DEFAULT_MAX (64u * 1024u * 1024u)
#define BUF_INIT(limit) ((buf){ .max = (limit) })

/* Append bytes. Returns 0, -ENOBUFS when the cap would be exceeded (buffer unchanged), -ENOMEM. */
int buf_append(buf *b, const void *data, size_t len);
int buf_puts(buf *b, const char *s);
/* Append formatted text. Returns 0, -ENOBUFS (buffer unchanged), -ENOMEM or -EINVAL. errno is
 * left as the caller set it, so %m prints the caller's error even when the buffer grows. */
int buf_printf(buf *b, const char *fmt, ...) _printf_(2, 3);
int buf_vprintf(buf *b, const char *fmt, va_list ap) _printf_(2, 0);
/* Drop the contents, keep the allocation. */
void buf_clear(buf *b);
/* Take the data (NUL-terminated, caller frees) and reset the buffer. Never NULL on success:
 * returns an empty string for an empty buffer, NULL only on allocation failure. */
char *buf_steal(buf *b);
/* Free the data. If wipe is true, the contents are zeroed first (for secrets). */
void buf_free(buf *b);
void buf_free_secret(buf *b);
static inline void buf_freep(buf *b) { buf_free(b); }
#define _cleanup_buf_ _cleanup_(buf_freep)
