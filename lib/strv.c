#include "strv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

size_t strv_length(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

int strv_consume(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **p = realloc(*l, (n + 2) * sizeof(char *));
        if (!p) {
                free(s);
                return -ENOMEM;
        }
        p[n] = s;
        p[n + 1] = NULL;
        *l = p;
        return 0;
}

int strv_push(char ***l, const char *s) {
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        return strv_consume(l, c);
}

int strv_pushf(char ***l, const char *fmt, ...) {
        char *s;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        return strv_consume(l, s);
}

bool strv_contains(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

char *strv_join(char *const *l, const char *sep) {
        size_t n = 0, seplen = strlen(sep);
        for (size_t i = 0; l && l[i]; i++)
                n += strlen(l[i]) + (i ? seplen : 0);
        char *s = malloc(n + 1), *p = s;
        if (!s)
                return NULL;
        for (size_t i = 0; l && l[i]; i++) {
                if (i)
                        p = stpcpy(p, sep);
                p = stpcpy(p, l[i]);
        }
        *p = 0;
        return s;
}

int strv_split(const char *s, const char *separators, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        /* Start with an empty vector so a string with no fields gives [] rather than NULL. */
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        while (*s) {
                size_t skip = strspn(s, separators);
                s += skip;
                size_t len = strcspn(s, separators);
                if (len == 0)
                        break;
                char *f = strndup(s, len);
                if (!f || strv_consume(&l, f) < 0)
                        return -ENOMEM;
                s += len;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

char **strv_copy(char *const *l) {
        _cleanup_strv_free_ char **c = calloc(1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; l && l[i]; i++)
                if (strv_push(&c, l[i]) < 0)
                        return NULL;
        return TAKE_PTR(c);
}

const char *strv_env_get(char *const *env, const char *name, size_t len) {
        for (; env && *env; env++)
                if (strneq(*env, name, len) && (*env)[len] == '=')
                        return *env + len + 1;
        return NULL;
}

int strv_env_expand(const char *tmpl, char *const *env, char **ret) {
        _cleanup_buf_ buf out = BUF_INIT(64 * 1024);
        int r;
        for (const char *p = tmpl; *p;) {
                if (p[0] == '$' && p[1] == '{') {
                        const char *end = strchr(p + 2, '}');
                        if (!end)
                                return -EINVAL;
                        const char *v = strv_env_get(env, p + 2, (size_t) (end - p - 2));
                        if (!v)
                                return -EINVAL;
                        r = buf_puts(&out, v);
                        p = end + 1;
                } else
                        r = buf_append(&out, p++, 1);
                if (r < 0)
                        return r;
        }
        char *s = buf_steal(&out);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

void strv_sort(char **l) {
        /* qsort's array argument must not be NULL, even for zero elements. */
        if (l)
                qsort(l, strv_length(l), sizeof(char *), cmp);
}

void strv_free(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
}
