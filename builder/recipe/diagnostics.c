#include "diagnostics.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fs.h"

int diagnostics_addv(Diagnostics *d, bool warning, const char *file, unsigned line, unsigned col,
                     const char *source_line, const char *fmt, va_list ap) {
        _cleanup_buf_ buf msg = BUF_INIT(0);
        int r = buf_vprintf(&msg, fmt, ap);
        if (r < 0)
                return r;

        Diagnostic *items = reallocarray(d->items, d->n + 1, sizeof(Diagnostic));
        if (!items)
                return -ENOMEM;
        d->items = items;

        Diagnostic *x = &d->items[d->n];
        *x = (Diagnostic) {
                .file = strdup(file),
                .line = line,
                .col = col,
                .warning = warning,
                .message = buf_steal(&msg),
                .source_line = source_line ? strdup(source_line) : NULL,
        };
        if (!x->file || !x->message || (source_line && !x->source_line)) {
                free(x->file);
                free(x->message);
                free(x->source_line);
                return -ENOMEM;
        }
        d->n++;
        if (!warning)
                d->n_errors++;
        return 0;
}

int diagnostics_add(Diagnostics *d, bool warning, const char *file, unsigned line, unsigned col,
                    const char *source_line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = diagnostics_addv(d, warning, file, line, col, source_line, fmt, ap);
        va_end(ap);
        return r;
}

void diagnostics_print(const Diagnostics *d, FILE *f) {
        for (size_t i = 0; i < d->n; i++) {
                const Diagnostic *x = &d->items[i];
                const char *kind = x->warning ? "warning" : "error";

                if (x->line == 0) {
                        fprintf(f, "%s: %s: %s\n", x->file, kind, x->message);
                        continue;
                }
                fprintf(f, "%s:%u:%u: %s: %s\n", x->file, x->line, x->col, kind, x->message);
                if (!x->source_line)
                        continue;
                fprintf(f, "%5u | %s\n", x->line, x->source_line);
                fputs("      | ", f);
                /* Copy tabs from the source so the caret lines up however tabs are shown. */
                size_t len = strlen(x->source_line);
                for (unsigned c = 1; c < x->col; c++)
                        fputc(c - 1 < len && x->source_line[c - 1] == '\t' ? '\t' : ' ', f);
                fputs("^\n", f);
        }
}

void diagnostics_free(Diagnostics *d) {
        for (size_t i = 0; i < d->n; i++) {
                free(d->items[i].file);
                free(d->items[i].message);
                free(d->items[i].source_line);
        }
        free(d->items);
        *d = (Diagnostics) {};
}

int diagnostics_read_file(Diagnostics *d, const char *path, size_t max, const char *what, char **ret_text,
                          size_t *ret_len) {
        int r = read_file(path, max, ret_text, ret_len);
        if (r == -ENOMEM || r >= 0)
                return r;
        errno = -r;
        r = diagnostics_add(d, false, path, 0, 0, NULL, "cannot read %s: %m", what);
        return r < 0 ? r : -EINVAL;
}

unsigned diagnostics_edit_distance(const char *a, const char *b, unsigned cap) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return cap + 1;
        unsigned row[65];
        for (size_t j = 0; j <= lb; j++)
                row[j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++) {
                unsigned diag = row[0], best;
                row[0] = (unsigned) i;
                best = row[0];
                for (size_t j = 1; j <= lb; j++) {
                        unsigned up = row[j];
                        unsigned v = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < v)
                                v = up + 1;
                        if (row[j - 1] + 1 < v)
                                v = row[j - 1] + 1;
                        row[j] = v;
                        diag = up;
                        if (v < best)
                                best = v;
                }
                if (best > cap)
                        return cap + 1;
        }
        return row[lb] > cap ? cap + 1 : row[lb];
}

const char *diagnostics_closest_name(const char *s, const char *const *candidates) {
        const char *best = NULL;
        unsigned best_d = 3;
        for (size_t i = 0; candidates && candidates[i]; i++) {
                unsigned d = diagnostics_edit_distance(s, candidates[i], 2);
                if (d < best_d) {
                        best_d = d;
                        best = candidates[i];
                }
        }
        return best;
}
