/* wipe: realloc_wiped moves the bytes and zeroes the old block before freeing it. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wipe.h"

/* wipe.c's calls to explicit_bzero bind to this definition (the executable's), so the test sees
 * which block was zeroed, and how much of it. */
static void *zeroed;
static size_t zeroed_len;
void explicit_bzero(void *p, size_t n) {
        volatile unsigned char *v = p;
        for (size_t i = 0; i < n; i++)
                v[i] = 0;
        zeroed = p;
        zeroed_len = n;
}

int main(void) {
        char *p = malloc(16);
        CHECK(p);
        memcpy(p, "token-abcdefghij", 16);

        char *q = realloc_wiped(p, 16, 4096);
        CHECK(q && q != p);
        CHECK(memcmp(q, "token-abcdefghij", 16) == 0);
        CHECK(zeroed == p && zeroed_len >= 16);

        /* Shrinking copies only what fits. */
        char *r = realloc_wiped(q, 16, 5);
        CHECK(r && memcmp(r, "token", 5) == 0);
        CHECK(zeroed == q && zeroed_len >= 4096);

        /* From nothing: a fresh block, nothing to wipe. */
        zeroed = NULL;
        char *s = realloc_wiped(NULL, 0, 8);
        CHECK(s && !zeroed);

        free_wiped(r);
        CHECK(zeroed == r);
        free_wiped(s);
        free_wiped(NULL);
        return 0;
}
