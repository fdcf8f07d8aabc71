#include "recipe-lex.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void lex_file_init(LexFile *f, const char *path, char *text, size_t len, Diagnostics *diag) {
        *f = (LexFile) {
                .path = strdup(path),
                .text = text,
                .len = len,
                .next_line = 1,
                .diag = diag,
        };
}

void lex_file_done(LexFile *f) {
        free(f->path);
        free(f->text);
        *f = (LexFile) {};
}

void lex_line_done(LexLine *l) {
        free(l->text);
        free(l->lines);
        free(l->cols);
        *l = (LexLine) {};
}

/* Offset of the first byte that is not part of valid UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF), or (size_t) -1. */
static size_t utf8_invalid_offset(const char *text, size_t len) {
        const unsigned char *s = (const unsigned char *) text;
        for (size_t i = 0; i < len;) {
                unsigned char c = s[i];
                size_t n;
                unsigned cp;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else
                        return i;
                for (size_t k = 1; k <= n; k++) {
                        if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                                return i;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return i;
                i += n + 1;
        }
        return (size_t) -1;
}

/* Length of the physical line starting at p (without the newline). */
static size_t physical_length(const LexFile *f, size_t p) {
        const char *nl = memchr(f->text + p, '\n', f->len - p);
        return nl ? (size_t) (nl - (f->text + p)) : f->len - p;
}

static bool is_blank_or_comment(const char *s, size_t len) {
        size_t i = 0;
        while (i < len && ascii_isblank(s[i]))
                i++;
        return i == len || s[i] == '#';
}

static int lex_next_line_any(LexFile *f, LexLine *ret);

int lex_next_line(LexFile *f, LexLine *ret) {
        for (;;) {
                LexLine l;
                int r = lex_next_line_any(f, &l);
                if (r <= 0)
                        return r;

                /* Recipes are UTF-8 text: everything downstream (JSON output, the guest) expects it. */
                size_t bad = utf8_invalid_offset(l.text, l.len);
                if (bad == (size_t) -1) {
                        *ret = l;
                        return 1;
                }
                r = diagnostics_full(f->diag) ? 0 : lex_error(&l, bad, "invalid UTF-8");
                lex_line_done(&l);
                if (r < 0)
                        return r;
        }
}

/* The next logical line that is not blank or a comment, whatever its bytes. */
static int lex_next_line_any(LexFile *f, LexLine *ret) {
        /* Skip blank lines and comments. */
        for (;;) {
                if (f->pos >= f->len)
                        return 0;
                size_t n = physical_length(f, f->pos);
                if (!is_blank_or_comment(f->text + f->pos, n))
                        break;
                f->pos += n + 1;
                f->next_line++;
        }

        LexLine l = { .file = f };
        size_t cap = 0;
        for (;;) {
                size_t n = physical_length(f, f->pos);
                const char *p = f->text + f->pos;
                bool cont = n > 0 && p[n - 1] == '\\' && f->pos + n < f->len;
                size_t take = cont ? n - 1 : n;

                if (l.len + take + 1 > cap) {
                        cap = (l.len + take + 1) * 2;
                        char *t = realloc(l.text, cap);
                        unsigned *ls = reallocarray(l.lines, cap, sizeof(unsigned));
                        unsigned *cs = reallocarray(l.cols, cap, sizeof(unsigned));
                        if (t)
                                l.text = t;
                        if (ls)
                                l.lines = ls;
                        if (cs)
                                l.cols = cs;
                        if (!t || !ls || !cs) {
                                lex_line_done(&l);
                                return -ENOMEM;
                        }
                }
                for (size_t i = 0; i < take; i++) {
                        /* A NUL byte would cut strings short: treat it as a blank. */
                        l.text[l.len] = p[i] ? p[i] : ' ';
                        l.lines[l.len] = f->next_line;
                        l.cols[l.len] = (unsigned) (i + 1);
                        l.len++;
                }
                /* The end position points just past the last byte, on the last physical line. */
                l.text[l.len] = '\0';
                l.lines[l.len] = f->next_line;
                l.cols[l.len] = (unsigned) (take + 1);

                f->pos += n + 1;
                f->next_line++;
                if (!cont)
                        break;
        }

        *ret = l;
        return 1;
}

char *lex_physical_line(const LexFile *f, unsigned line) {
        size_t p = 0;
        for (unsigned i = 1; i < line && p < f->len; i++)
                p += physical_length(f, p) + 1;
        if (p > f->len)
                return NULL;
        size_t n = p < f->len ? physical_length(f, p) : 0;
        char *s = strndup(f->text + p, n);
        if (s)
                for (char *c = s; *c; c++)
                        if (*c == '\r')
                                *c = ' ';
        return s;
}

_printf_(4, 0)
static int lex_diagv(const LexLine *l, bool warning, size_t offset, const char *fmt, va_list ap) {
        if (offset > l->len)
                offset = l->len;
        unsigned line = l->lines[offset], col = l->cols[offset];
        _cleanup_free_ char *src = NULL;
        if (!l->file->hide_source && !(src = lex_physical_line(l->file, line)))
                return -ENOMEM;
        return diagnostics_addv(l->file->diag, warning, l->file->path, line, col, src, fmt, ap);
}

int lex_error(const LexLine *l, size_t offset, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = lex_diagv(l, false, offset, fmt, ap);
        va_end(ap);
        return r;
}

int lex_warning(const LexLine *l, size_t offset, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = lex_diagv(l, true, offset, fmt, ap);
        va_end(ap);
        return r;
}

static bool is_name_char(char c, bool first) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
               (!first && c >= '0' && c <= '9');
}

/* Handle a '$' at l->text[*i]: appends to w and advances *i. Returns the number of errors (0 or
 * 1) or -ENOMEM. */
static int expand_dollar(const LexLine *l, size_t *i, const LexScope *scope, LexWord *w,
                         buf *value, buf *display) {
        const char *t = l->text;
        size_t start = *i;
        int r;

        if (t[start + 1] == '$') {
                *i += 2;
                r = buf_puts(value, "$");
                return r < 0 ? r : buf_puts(display, "$");
        }
        if (t[start + 1] != '{') {
                *i += 1;
                r = buf_puts(value, "$");
                return r < 0 ? r : buf_puts(display, "$");
        }

        size_t name_start = start + 2, e = name_start;
        while (e < l->len && t[e] != '}' && t[e] != '"' && !ascii_isblank(t[e]))
                e++;
        if (e >= l->len || t[e] != '}') {
                *i = e;
                r = lex_error(l, start, "unterminated variable reference: missing '}'");
                return r < 0 ? r : 1;
        }
        *i = e + 1;

        _cleanup_free_ char *name = strndup(t + name_start, e - name_start);
        if (!name)
                return -ENOMEM;
        bool valid = name[0] != '\0';
        for (size_t k = 0; name[k]; k++)
                if (!is_name_char(name[k], k == 0))
                        valid = false;
        if (!valid) {
                r = lex_error(l, start, "invalid variable name '%s' in reference", name);
                return r < 0 ? r : 1;
        }

        const char *v = NULL;
        bool secret = false;
        if (!scope) {
                r = lex_error(l, start, "variable references are not allowed here; write $${%s} for a literal ${%s}",
                              name, name);
                return r < 0 ? r : 1;
        }
        if (scope->lookup(scope->userdata, name, &v, &secret) == 0) {
                const char *hint = scope->suggest ? scope->suggest(scope->userdata, name) : NULL;
                if (hint)
                        r = lex_error(l, start, "undefined variable '%s'; did you mean '%s'?", name, hint);
                else
                        r = lex_error(l, start,
                                      "undefined variable '%s' (declare it with 'var %s' before use, or write $${%s} for a literal ${%s})",
                                      name, name, name, name);
                return r < 0 ? r : 1;
        }
        if (!v) {
                if (scope->require_values) {
                        r = lex_error(l, start,
                                      "variable '%s' has no value; set it with --var %s=VALUE, a --var-file or IMGBUILD_VAR_%s",
                                      name, name, name);
                        return r < 0 ? r : 1;
                }
                w->unresolved = true;
                r = buf_printf(value, "${%s}", name);
                return r < 0 ? r : buf_printf(display, "${%s}", name);
        }
        if (value->len + strlen(v) > LEX_MAX_WORD) {
                r = lex_error(l, start, "value of '%s' makes this word longer than %u bytes", name,
                              LEX_MAX_WORD);
                return r < 0 ? r : 1;
        }
        if (secret)
                w->secret = true;
        r = buf_puts(value, v);
        return r < 0 ? r : buf_puts(display, secret ? "<secret>" : v);
}

static int finish_word(LexWord *w, buf *value, buf *display) {
        w->value = buf_steal(value);
        w->display = buf_steal(display);
        if (!w->value || !w->display) {
                lex_word_done(w);
                return -ENOMEM;
        }
        return 0;
}

int lex_expand_raw(const LexLine *l, size_t start, const LexScope *scope, LexWord *ret) {
        _cleanup_buf_ buf value = BUF_INIT(0), display = BUF_INIT(0);
        LexWord w = { .offset = start, .eq_offset = (size_t) -1 };
        int errors = 0, r;

        for (size_t i = start; i < l->len;) {
                if (l->text[i] == '$') {
                        r = expand_dollar(l, &i, scope, &w, &value, &display);
                        if (r < 0)
                                return r;
                        errors += r;
                        continue;
                }
                r = buf_append(&value, &l->text[i], 1);
                if (r >= 0)
                        r = buf_append(&display, &l->text[i], 1);
                if (r < 0)
                        return r;
                i++;
        }
        r = finish_word(&w, &value, &display);
        if (r < 0)
                return r;
        *ret = w;
        return errors;
}

static int words_push(LexWords *ws, LexWord *w) {
        LexWord *items = reallocarray(ws->items, ws->n + 1, sizeof(LexWord));
        if (!items)
                return -ENOMEM;
        ws->items = items;
        ws->items[ws->n++] = *w;
        *w = (LexWord) {};
        return 0;
}

int lex_words(const LexLine *l, size_t start, const LexScope *scope, LexWords *ret) {
        const char *t = l->text;
        LexWords ws = {};
        int errors = 0, r;
        size_t i = start, total = 0;

        for (;;) {
                while (i < l->len && ascii_isblank(t[i]))
                        i++;
                if (i >= l->len)
                        break;

                _cleanup_buf_ buf value = BUF_INIT(0), display = BUF_INIT(0);
                LexWord w = { .offset = i, .eq_offset = (size_t) -1 };
                bool in_quotes = false;
                size_t quote_start = 0;

                while (i < l->len && (in_quotes || !ascii_isblank(t[i]))) {
                        char c = t[i];
                        if (c == '"') {
                                in_quotes = !in_quotes;
                                w.quoted = true;
                                quote_start = i;
                                i++;
                                continue;
                        }
                        if (c == '$') {
                                r = expand_dollar(l, &i, scope, &w, &value, &display);
                                if (r < 0)
                                        goto fail;
                                errors += r;
                                continue;
                        }
                        if (c == '\\' && in_quotes) {
                                char e = i + 1 < l->len ? t[i + 1] : '\0';
                                const char *out = e == '"' ? "\"" : e == '\\' ? "\\" : e == '$' ? "$" :
                                                  e == 'n' ? "\n" : e == 't' ? "\t" : NULL;
                                if (!out) {
                                        r = lex_error(l, i, "unknown escape sequence in quoted string");
                                        if (r < 0)
                                                goto fail;
                                        errors++;
                                        i += e ? 2 : 1;
                                        continue;
                                }
                                r = buf_puts(&value, out);
                                if (r >= 0)
                                        r = buf_puts(&display, out);
                                if (r < 0)
                                        goto fail;
                                i += 2;
                                continue;
                        }
                        if (c == '=' && !in_quotes && w.eq_offset == (size_t) -1)
                                w.eq_offset = i;
                        r = buf_append(&value, &c, 1);
                        if (r >= 0)
                                r = buf_append(&display, &c, 1);
                        if (r < 0)
                                goto fail;
                        i++;
                }
                if (in_quotes) {
                        r = lex_error(l, quote_start, "unterminated quoted string");
                        if (r < 0)
                                goto fail;
                        errors++;
                }
                total += value.len;
                if (total > LEX_MAX_LINE) {
                        r = lex_error(l, w.offset, "line expands to more than %u bytes", LEX_MAX_LINE);
                        if (r < 0)
                                goto fail;
                        errors++;
                        break;
                }
                r = finish_word(&w, &value, &display);
                if (r < 0)
                        goto fail;
                r = words_push(&ws, &w);
                if (r < 0) {
                        lex_word_done(&w);
                        goto fail;
                }
        }
        *ret = ws;
        return errors;

fail:
        lex_words_done(&ws);
        return r;
}

void lex_word_done(LexWord *w) {
        /* The display form never holds secrets; the value may. */
        if (w->secret)
                free_secret(w->value);
        else
                free(w->value);
        free(w->display);
        *w = (LexWord) {};
}

void lex_words_done(LexWords *ws) {
        for (size_t i = 0; i < ws->n; i++)
                lex_word_done(&ws->items[i]);
        free(ws->items);
        *ws = (LexWords) {};
}
