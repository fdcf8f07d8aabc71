#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wipe.h"

static size_t buf_limit(const buf *b) { return b->max ? b->max : BUF_DEFAULT_MAX; }

static int buf_reserve(buf *b, size_t extra) {
        if (extra > buf_limit(b) || b->len > buf_limit(b) - extra)
                return -ENOBUFS;
        size_t need = b->len + extra + 1;
        if (need <= b->cap)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
                cap *= 2;
        /* Any buffer may hold a secret (tokens, keys, request bodies): the old block is wiped. */
        char *p = realloc_wiped(b->data, b->len, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

int buf_append(buf *b, const void *data, size_t len) {
        int r = buf_reserve(b, len);
        if (r < 0)
                return r;
        if (len)
                memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = 0;
        return 0;
}

int buf_puts(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_vprintf(buf *b, const char *fmt, va_list ap) {
        /* %m formats errno twice (sizing, then output) with realloc in between, and callers read
         * errno afterwards: keep it as the caller left it. */
        int saved_errno = errno;
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0) {
                errno = saved_errno;
                return -EINVAL;
        }
        int r = buf_reserve(b, (size_t) n);
        if (r < 0) {
                errno = saved_errno;
                return r;
        }
        errno = saved_errno;
        vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
        b->len += (size_t) n;
        errno = saved_errno;
        return 0;
}

int buf_printf(buf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

void buf_clear(buf *b) {
        b->len = 0;
        if (b->data)
                b->data[0] = 0;
}

char *buf_steal(buf *b) {
        char *p = b->data ? b->data : strdup("");
        b->data = NULL;
        b->len = b->cap = 0;
        return p;
}

void buf_free(buf *b) {
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

void buf_free_secret(buf *b) {
        if (b->data)
                explicit_bzero(b->data, b->cap);
        buf_free(b);
}
