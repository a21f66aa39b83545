/*
 * buf.c - growable text buffer with doubling capacity.
 */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tf_buf_init(tf_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void tf_buf_free(tf_buf *b)
{
    free(b->p);
    tf_buf_init(b);
}

void tf_buf_reset(tf_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static int reserve(tf_buf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 256;
    char *p;

    if (b->failed)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    while (cap < b->len + extra + 1)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void tf_buf_append(tf_buf *b, const char *s, size_t len)
{
    if (reserve(b, len) < 0)
        return;
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void tf_buf_printf(tf_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int tf_buf_ok(const tf_buf *b)
{
    return !b->failed;
}
