/*
 * buf.c - growable text buffer with doubling capacity.
 */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

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

void tf_buf_json_string(tf_buf *b, const char *s, size_t len)
{
    char *tmp = NULL, esc[8];
    const char *end, *run;

    if (tf_utf8_check(s, len) < len) {
        size_t bad = 0;
        tmp = malloc(3 * len + 1);
        if (!tmp) {
            b->failed = 1;
            return;
        }
        len = tf_utf8_repair(s, len, tmp, &bad);
        s = tmp;
    }
    end = s + len;
    tf_buf_append(b, "\"", 1);
    while (s < end) {
        for (run = s; s < end && (unsigned char)*s >= 0x20 && *s != '"' && *s != '\\'; s++)
            ;
        tf_buf_append(b, run, (size_t)(s - run));
        if (s >= end)
            break;
        switch (*s) {
        case '"': tf_buf_append(b, "\\\"", 2); break;
        case '\\': tf_buf_append(b, "\\\\", 2); break;
        case '\n': tf_buf_append(b, "\\n", 2); break;
        case '\r': tf_buf_append(b, "\\r", 2); break;
        case '\t': tf_buf_append(b, "\\t", 2); break;
        case '\b': tf_buf_append(b, "\\b", 2); break;
        case '\f': tf_buf_append(b, "\\f", 2); break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char)*s);
            tf_buf_append(b, esc, 6);
            break;
        }
        s++;
    }
    tf_buf_append(b, "\"", 1);
    free(tmp);
}

int tf_buf_ok(const tf_buf *b)
{
    return !b->failed;
}
