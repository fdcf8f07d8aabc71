/* Sizes as people write them in configuration: "512M", "2G", "10". Shared by the recipe's qemu
 * and exoscale lines and image.conf's disk-size. Does not log or allocate. */
#pragma once

#include <stdint.h>

/* Parse a size: decimal digits with an optional K, M, G or T suffix (binary units, upper case
 * only; nothing may follow the suffix). A bare number is multiplied by default_unit (0 leaves it
 * 0). Returns 0, -EINVAL (not of that form), -ERANGE (does not fit in 64 bits); *ret is untouched
 * on failure. */
int parse_size(const char *s, uint64_t default_unit, uint64_t *ret);
