/* NULL-terminated string vectors (char **), owned: every element and the array are heap memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

size_t strv_length(char *const *l);
/* Append a copy of s. Returns 0 or -ENOMEM (l unchanged). */
int strv_push(char ***l, const char *s);
/* Append s itself, taking ownership in every case: s is freed if this fails (-ENOMEM). */
int strv_consume(char ***l, char *s);
int strv_pushf(char ***l, const char *fmt, ...) _printf_(2, 3);
bool strv_contains(char *const *l, const char *s);
/* Join with sep; returns a new string or NULL on ENOMEM. */
char *strv_join(char *const *l, const char *sep);
/* Split s at any of the separator characters, dropping empty fields. */
int strv_split(const char *s, const char *separators, char ***ret);
char **strv_copy(char *const *l);
/* The value of name (len bytes, not NUL-terminated) in an environment-style list of
 * "NAME=value" strings (borrowed), or NULL. */
const char *strv_env_get(char *const *env, const char *name, size_t len);
/* Expand every "${NAME}" in tmpl from env ("NAME=value" strings; nothing else is special).
 * Returns 0 and a new string in *ret, -EINVAL for an unknown NAME or an unclosed "${",
 * -ENOBUFS past 64 KiB, or -ENOMEM. */
int strv_env_expand(const char *tmpl, char *const *env, char **ret);
void strv_sort(char **l);
void strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)
