#include "json.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>

#include "wipe.h"

int json_parse(const char *text, size_t len, json_t **ret, buf *err) {
        json_error_t e;
        json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
        if (!j) {
                if (err) {
                        buf_clear(err);
                        (void) buf_printf(err, "line %d column %d: %s", e.line, e.column, e.text);
                }
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

static bool all_digits(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char) s[i]))
                        return false;
        return true;
}

json_t *json_path(json_t *root, const char *path) {
        json_t *j = root;
        const char *p = path;
        for (;;) {
                size_t n = strcspn(p, ".");
                if (n == 0 || !j)
                        return NULL;
                if (json_is_object(j)) {
                        j = json_object_getn(j, p, n);
                } else if (json_is_array(j) && all_digits(p, n) && n < 10) {
                        /* Array index ("kvs.0.value"); capped at 9 digits so it cannot overflow. */
                        j = json_array_get(j, strtoul(p, NULL, 10));
                } else
                        return NULL;
                if (p[n] == 0)
                        return j;
                p += n + 1;
        }
}

const char *json_path_string(json_t *root, const char *path) {
        return json_string_value(json_path(root, path));
}

bool json_path_bool(json_t *root, const char *path) { return json_is_true(json_path(root, path)); }

/* Strictly parse decimal digits with an optional leading '-' (when allowed): no whitespace, no
 * '+', no trailing bytes. Strings come from JSON so may contain NULs; use the length. */
static int parse_decimal(json_t *j, bool allow_minus, bool *ret_negative, uint64_t *ret_magnitude) {
        const char *s = json_string_value(j);
        size_t n = json_string_length(j);
        bool negative = false;
        if (allow_minus && n > 0 && s[0] == '-') {
                negative = true;
                s++;
                n--;
        }
        if (!all_digits(s, n))
                return -EBADMSG;
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
        }
        *ret_negative = negative;
        *ret_magnitude = v;
        return 0;
}

int json_path_u64(json_t *root, const char *path, uint64_t *ret) {
        json_t *j = json_path(root, path);
        if (!j)
                return -ENOENT;
        if (json_is_integer(j)) {
                json_int_t v = json_integer_value(j);
                if (v < 0)
                        return -EBADMSG;
                *ret = (uint64_t) v;
                return 0;
        }
        if (!json_is_string(j))
                return -EBADMSG;
        bool negative;
        uint64_t v;
        int r = parse_decimal(j, false, &negative, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int json_path_i64(json_t *root, const char *path, int64_t *ret) {
        json_t *j = json_path(root, path);
        if (!j)
                return -ENOENT;
        if (json_is_integer(j)) {
                *ret = (int64_t) json_integer_value(j);
                return 0;
        }
        if (!json_is_string(j))
                return -EBADMSG;
        bool negative;
        uint64_t v;
        int r = parse_decimal(j, true, &negative, &v);
        if (r < 0)
                return r;
        if (negative) {
                if (v > (uint64_t) INT64_MAX + 1)
                        return -EBADMSG;
                *ret = v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v;
        } else {
                if (v > INT64_MAX)
                        return -EBADMSG;
                *ret = (int64_t) v;
        }
        return 0;
}

char *json_dump_compact(const json_t *j) {
        return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

void json_wipe_on_free(void) {
        json_set_alloc_funcs(malloc, free_wiped);
}
