#include "wipe.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

void free_wiped(void *p) {
        if (p) {
                explicit_bzero(p, malloc_usable_size(p));
                free(p);
        }
}

void *realloc_wiped(void *p, size_t used, size_t size) {
        void *n = malloc(size ? size : 1);
        if (!n)
                return NULL;
        if (p)
                memcpy(n, p, used < size ? used : size);
        free_wiped(p);
        return n;
}
