/*
 * buf.h - a growable byte buffer for building text (SQL array literals, JSON, log values).
 * The content is always NUL-terminated; a failed allocation is sticky (err set once,
 * further appends are ignored) so that callers check once at the end.
 */
#ifndef TF_BUF_H
#define TF_BUF_H

#include <stddef.h>

typedef struct tf_buf {
    char *p;
    size_t len, cap;
    int failed;
} tf_buf;

void tf_buf_init(tf_buf *b);
void tf_buf_free(tf_buf *b);
void tf_buf_reset(tf_buf *b);
void tf_buf_append(tf_buf *b, const char *s, size_t len);
void tf_buf_printf(tf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s[0..len) as a JSON string literal: the escapes JSON requires, \u00XX for other
 * control characters, and every ill-formed UTF-8 subpart replaced by U+FFFD, so the result
 * is valid JSON whatever the bytes (the one JSON escaper: wire/json.h and the log use it). */
void tf_buf_json_string(tf_buf *b, const char *s, size_t len);
/* 1 when every append succeeded, 0 after an allocation failure. */
int tf_buf_ok(const tf_buf *b);

#endif
