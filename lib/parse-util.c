#include "parse-util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

char *parse_strip(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char) s[l - 1]))
                s[--l] = 0;
        return s;
}

int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *ret) {
        char *end;
        /* strtoul alone would take white space and a sign. */
        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        unsigned long n = strtoul(s, &end, 10);
        if (errno || *end || n < min || n > max)
                return -EINVAL;
        *ret = n;
        return 0;
}

int parse_bool(const char *s, bool *ret) {
        if (streq(s, "yes") || streq(s, "true") || streq(s, "1"))
                *ret = true;
        else if (streq(s, "no") || streq(s, "false") || streq(s, "0"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

int parse_mode(const char *s, mode_t *ret) {
        size_t n = strlen(s);
        if (n < 3 || n > 4)
                return -EINVAL;
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '7')
                        return -EINVAL;
                v = v * 8 + (unsigned) (s[i] - '0');
        }
        *ret = (mode_t) v;
        return 0;
}

bool parse_user_name_valid(const char *s, size_t n) {
        if (n == 0 || n > 32)
                return false;
        bool digits = true;
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char) s[i]))
                        digits = false;
        if (digits)
                return true;
        if (!(islower((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!islower((unsigned char) s[i]) && !isdigit((unsigned char) s[i]) && s[i] != '_' &&
                    s[i] != '-')
                        return false;
        return true;
}

int parse_size(const char *s, uint64_t default_unit, uint64_t *ret) {
        uint64_t v = 0, unit = default_unit;
        size_t i = 0;

        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        for (; isdigit((unsigned char) s[i]); i++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (s[i]) {
                switch (s[i]) {
                case 'K': unit = 1ull << 10; break;
                case 'M': unit = 1ull << 20; break;
                case 'G': unit = 1ull << 30; break;
                case 'T': unit = 1ull << 40; break;
                default: return -EINVAL;
                }
                if (s[i + 1])
                        return -EINVAL;
        }
        if (unit && v > UINT64_MAX / unit)
                return -ERANGE;
        *ret = v * unit;
        return 0;
}

bool parse_uuid_valid(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !isxdigit((unsigned char) s[i]))
                        return false;
        }
        return true;
}
