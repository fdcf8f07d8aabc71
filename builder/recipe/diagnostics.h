/* Diagnostics of the line-oriented languages (recipes, image definitions, variable files),
 * printed like gcc's, and the "did you mean" helper their messages use. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "macro.h"

typedef struct Diagnostic {
        char *file;        /* path as shown to the user */
        unsigned line;     /* 1-based; 0 when the message is about the whole file */
        unsigned col;      /* 1-based byte column */
        bool warning;
        char *message;
        char *source_line; /* the physical line, for the caret display; may be NULL */
} Diagnostic;

typedef struct Diagnostics {
        Diagnostic *items;
        size_t n;
        size_t n_errors;
} Diagnostics;

/* Stop collecting after this many errors: later ones are usually consequences. */
#define DIAGNOSTICS_MAX 50

/* Record a diagnostic. Returns 0 or -ENOMEM. */
int diagnostics_add(Diagnostics *d, bool warning, const char *file, unsigned line, unsigned col,
                    const char *source_line, const char *fmt, ...) _printf_(7, 8);
int diagnostics_addv(Diagnostics *d, bool warning, const char *file, unsigned line, unsigned col,
                     const char *source_line, const char *fmt, va_list ap) _printf_(7, 0);
/* Print every diagnostic as "file:line:col: error: message", the line and a caret under col. */
void diagnostics_print(const Diagnostics *d, FILE *f);
void diagnostics_free(Diagnostics *d);
static inline bool diagnostics_full(const Diagnostics *d) { return d->n_errors >= DIAGNOSTICS_MAX; }

/* Read a whole file of at most max bytes into *ret_text (NUL-terminated, caller frees) and its
 * length into *ret_len. A file that cannot be read is reported to d as "cannot read WHAT: ..."
 * and returns -EINVAL; -ENOMEM on allocation failure; 0 on success. */
int diagnostics_read_file(Diagnostics *d, const char *path, size_t max, const char *what, char **ret_text,
                          size_t *ret_len);

/* Levenshtein distance, capped: returns at most cap + 1. For "did you mean" suggestions. */
unsigned diagnostics_edit_distance(const char *a, const char *b, unsigned cap);
/* The closest of candidates (NULL-terminated) to s within distance 2, or NULL. */
const char *diagnostics_closest_name(const char *s, const char *const *candidates);
