/* Small value parsers shared by the recipe parser, the agent.conf parser and the credentials file
 * reader, so that a mode or a user name means the same in all of them. None of these log or
 * allocate. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Strip leading and trailing white space (isspace) in place. Returns a pointer into s. */
char *parse_strip(char *s);

/* A decimal number in [min, max]: digits only (no sign, no white space). Returns 0 or -EINVAL;
 * *ret is untouched on failure. */
int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *ret);

/* "yes"/"true"/"1" or "no"/"false"/"0". Returns 0 or -EINVAL; *ret is untouched on failure. */
int parse_bool(const char *s, bool *ret);

/* Permission bits as 3 or 4 octal digits ("640", "0640"). Returns 0 or -EINVAL; *ret is untouched
 * on failure. */
int parse_mode(const char *s, mode_t *ret);

/* Whether the n bytes at s are a user or group name as Debian's useradd accepts it by default
 * (lower case letter or '_' first, then lower case letters, digits, '_' and '-'), or a numeric id;
 * 1 to 32 bytes. Only the form is checked, not whether the account exists. */
bool parse_user_name_valid(const char *s, size_t n);

/* Parse a size: decimal digits with an optional K, M, G or T suffix (binary units, upper case
 * only; nothing may follow the suffix). A bare number is multiplied by default_unit (0 leaves it
 * 0). Returns 0, -EINVAL (not of that form), -ERANGE (does not fit in 64 bits); *ret is untouched
 * on failure. */
/* Whether s is a UUID in its 36-character text form (8-4-4-4-12 hex digits), as cloud ids are. */
bool parse_uuid_valid(const char *s);

int parse_size(const char *s, uint64_t default_unit, uint64_t *ret);
