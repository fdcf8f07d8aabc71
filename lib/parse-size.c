#include "parse-size.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>

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
