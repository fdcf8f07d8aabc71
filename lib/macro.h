/* Small macros shared by the whole tree: cleanup attributes and ownership hand-off. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _unused_ __attribute__((unused))
#define _warn_unused_result_ __attribute__((warn_unused_result))

/* Hand ownership of a pointer/fd on: returns the value and clears the variable so its cleanup
 * handler does nothing. */
#define TAKE_PTR(p) ({ __typeof__(p) _p_ = (p); (p) = NULL; _p_; })
#define TAKE_FD(fd) ({ int _fd_ = (fd); (fd) = -1; _fd_; })

static inline void freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

/* Wipe memory that held a secret, then free it. Accepts NULL. */
static inline void free_secret(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}
static inline void free_secretp(char **s) { free_secret(*s); }
#define _cleanup_secret_ _cleanup_(free_secretp)

/* Define name##p(type **) that calls func(*p) when non-NULL, for use with _cleanup_(). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)          \
        static inline void func##p(type *p) {            \
                if (*p)                                  \
                        func(*p);                        \
        }

static inline int negative_errno(void) { return errno > 0 ? -errno : -EIO; }

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}
static inline const char *strempty(const char *s) { return s ? s : ""; }
/* Replace the string *p owns with a copy of s. Returns 0, or -ENOMEM with *p unchanged. */
static inline int free_and_strdup(char **p, const char *s) {
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        free(*p);
        *p = copy;
        return 0;
}
