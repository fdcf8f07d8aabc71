/* Shared pieces of the line-oriented languages (recipes, image definitions, variable files): a
 * lexer that turns a file into logical lines and words, reporting to diagnostics.h.
 *
 * Syntax common to all of them:
 *   - a line whose first non-blank character is '#' is a comment;
 *   - a '\' at the very end of a line joins the next line to it;
 *   - words are separated by blanks; "double quoted" parts may hold blanks and the escapes
 *     \" \\ \$ \n \t; quoted and unquoted parts concatenate (key="a b" is one word);
 *   - ${name} is replaced by a variable's value, $$ is a literal '$', any other '$' is kept. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "diagnostics.h"
#include "macro.h"

/* One source file split into logical lines. */
typedef struct LexFile {
        char *path;     /* display path */
        char *text;     /* whole content, NUL-terminated */
        size_t len;
        size_t pos;     /* where the next logical line starts */
        unsigned next_line;
        Diagnostics *diag;
        bool hide_source; /* diagnostics leave out the line (it may hold a secret value) */
} LexFile;

/* A logical line: physical lines joined at '\' continuations, with the position of every byte. */
typedef struct LexLine {
        char *text;
        size_t len;
        unsigned *lines;  /* physical line of text[i] (len + 1 entries) */
        unsigned *cols;   /* column of text[i] */
        LexFile *file;
} LexLine;

/* Variable lookup for ${name}: returns 1 and the value (borrowed) if known, 0 if not declared.
 * *ret_secret says whether the value must be masked in displays; a NULL *ret_value means the
 * variable is declared but has no value yet (a required variable). */
typedef int (*lex_lookup_t)(void *userdata, const char *name, const char **ret_value, bool *ret_secret);
/* Suggest a close name for an undeclared one (may return NULL). */
typedef const char *(*lex_suggest_t)(void *userdata, const char *name);

typedef struct LexScope {
        lex_lookup_t lookup;
        lex_suggest_t suggest;
        void *userdata;
        /* When true, a reference to a variable without a value is an error; otherwise the
         * reference is kept as written and the word is marked unresolved. */
        bool require_values;
} LexScope;

/* Expanded words are capped so that variables built from variables cannot grow without bound. */
#define LEX_MAX_WORD (64u * 1024u)
/* And so are all the words of a line together. */
#define LEX_MAX_LINE (1024u * 1024u)

typedef struct LexWord {
        char *value;       /* expanded */
        char *display;     /* expanded with secret values shown as <secret> */
        size_t offset;     /* offset of the word's first byte in the logical line */
        size_t eq_offset;  /* offset of the first unquoted '=' or (size_t) -1 */
        bool quoted;       /* some part was quoted */
        bool secret;       /* holds a secret value */
        bool unresolved;   /* holds a reference to a variable without a value */
} LexWord;

typedef struct LexWords {
        LexWord *items;
        size_t n;
} LexWords;

void lex_file_init(LexFile *f, const char *path, char *text, size_t len, Diagnostics *diag);
void lex_file_done(LexFile *f);
/* Read the next logical line that is not blank or a comment. Returns 1 and fills *ret, 0 at the
 * end of the file, -ENOMEM. */
int lex_next_line(LexFile *f, LexLine *ret);
void lex_line_done(LexLine *l);
/* A copy of physical line number line (1-based) for display, or NULL on ENOMEM. */
char *lex_physical_line(const LexFile *f, unsigned line);

/* Report a diagnostic at an offset of a logical line. Returns 0 or -ENOMEM. */
int lex_error(const LexLine *l, size_t offset, const char *fmt, ...) _printf_(3, 4);
int lex_warning(const LexLine *l, size_t offset, const char *fmt, ...) _printf_(3, 4);

/* Split l->text[start..] into words. Errors (bad quoting, unknown variables) are reported to the
 * file's diagnostics. Returns the number of errors found (>= 0) or -ENOMEM. */
int lex_words(const LexLine *l, size_t start, const LexScope *scope, LexWords *ret);
/* Expand ${name} and $$ in l->text[start..] without word splitting or quote handling (for shell
 * commands, which keep their own quoting). Same return values. */
int lex_expand_raw(const LexLine *l, size_t start, const LexScope *scope, LexWord *ret);
void lex_word_done(LexWord *w);
void lex_words_done(LexWords *w);

static inline bool ascii_isblank(char c) { return c == ' ' || c == '\t' || c == '\r'; }
