/* Minimal test helpers for unit tests: CHECK prints file:line and the failed expression, then
 * aborts the test binary (exit 1). Exit 77 means skipped (ctest SKIP_RETURN_CODE). */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(expr)                                                                        \
        do {                                                                               \
                if (!(expr)) {                                                             \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        exit(1);                                                           \
                }                                                                          \
        } while (0)

#define CHECK_OK(r)                                                                        \
        do {                                                                               \
                long _r = (long) (r);                                                      \
                if (_r < 0) {                                                              \
                        fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #r,  \
                                strerror((int) -_r));                                      \
                        exit(1);                                                           \
                }                                                                          \
        } while (0)

#define CHECK_STREQ(a, b)                                                                  \
        do {                                                                               \
                const char *_a = (a), *_b = (b);                                           \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                   \
                        fprintf(stderr, "%s:%d: expected %s == %s\n  got:      \"%s\"\n  expected: \"%s\"\n", \
                                __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
                        exit(1);                                                           \
                }                                                                          \
        } while (0)

#define TEST_SKIP(...)                                                                     \
        do {                                                                               \
                fprintf(stderr, "skipped: " __VA_ARGS__);                                  \
                fputc('\n', stderr);                                                       \
                exit(77);                                                                  \
        } while (0)
