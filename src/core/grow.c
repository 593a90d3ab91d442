#include "core/grow.h"

#include <stdint.h>
#include <stdlib.h>

void *cf_grow(void *v, size_t *cap, size_t n, size_t elem_size, size_t first)
{
    if (n < *cap)
        return v;
    size_t want = *cap ? *cap : first ? first : 1;
    if (*cap) {
        if (want > SIZE_MAX / 2)
            return NULL;
        want *= 2;
    }
    if (elem_size && want > SIZE_MAX / elem_size)
        return NULL;
    void *p = realloc(v, want * elem_size);
    if (!p)
        return NULL;
    *cap = want;
    return p;
}
