/*
 * grow.c - the growable array (see grow.h).
 */
#include "base/grow.h"

#include <stdint.h>
#include <stdlib.h>

int tf_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap ? *cap : 16;
    void *q;

    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    if (elem && c > SIZE_MAX / elem)
        return -1;
    q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}
